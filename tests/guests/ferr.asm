; ferr.asm — x87 errors in MS-DOS compatibility mode (CR0.NE = 0) reach IRQ13, for v386
; and QEMU.
;
; Build and run: as selftest.asm (tests/guests.rs assembles it, runs it on v386 flat at
; 0x7C00 from 0000:7E00, and on QEMU booted from a floppy; both must print the same).
;
; With CR0.NE = 0 an unmasked x87 exception does not raise #MF: the FPU asserts FERR#,
; which the PC/AT wires to IRQ13 of the slave 8259A; the handler writes to port F0h to
; clear the board's latch (and assert IGNNE#), clears the exception with FNCLEX and ends
; the interrupt at both 8259As (Intel SDM Vol. 1 §8.7 "Handling x87 FPU Exceptions in
; Software" and Appendix D "Guidelines for Writing x87 FPU Exception Handlers"; IBM PC/AT
; Technical Reference: IRQ13 coprocessor, port 0F0h clear math coprocessor busy).
;
; Steps (each prints a line on port 0xE9):
;   1. 1/0 with zero-divide unmasked, then FWAIT: IRQ13 comes (once), the handler sees ZE
;      and ES in the status word.
;   2. The same with every exception masked (FNINIT): no IRQ13.
;   3. CR0.NE = 1 and zero-divide unmasked: #MF (vector 16) at the FWAIT, no IRQ13.
;   4. "PASS", then value 0 to the isa-debug-exit port 0xF4 (1 after "FAIL: ...").
;
; Only what QEMU and v386 agree on is printed: the status word's exception byte (QEMU
; stores a result and pops where the SDM says an unmasked zero-divide leaves the
; destination alone, so TOP may differ), and only one FERR# round, because QEMU keeps
; IGNNE# asserted after FNCLEX. On v386 IRQ13 arrives right after the failing FDIVP
; (FERR# is up from there), on QEMU at the FWAIT: the program waits for it either way.

%include "loader.inc"

        cpu 686

DEBUGCON        equ 0xe9
DEBUG_EXIT      equ 0xf4
FPU_BUSY        equ 0xf0            ; PC/AT: clear the coprocessor busy/error latch
VEC_IRQ13       equ 0x75            ; slave 8259A base 70h + 5, as a PC BIOS sets it
VEC_MF          equ 0x10            ; #MF (SDM Vol. 3A §6.15 "Interrupt 16")
CR0_NE          equ 1 << 5
CR0_TS          equ 1 << 3
CR0_EM          equ 1 << 2
CW_ZE_UNMASKED  equ 0x037b          ; FNINIT's 037Fh with ZM (bit 2) clear
WAIT_LOOPS      equ 0xffff          ; how long to wait for an interrupt

program:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        cld
        mov word [VEC_IRQ13 * 4], irq13
        mov [VEC_IRQ13 * 4 + 2], ax
        mov word [VEC_MF * 4], mf
        mov [VEC_MF * 4 + 2], ax

        ; Both 8259As as a PC BIOS leaves them (8259A data sheet, ICW1-ICW4): edge
        ; triggered, master vectors 08h-0Fh with the slave on IR2, slave vectors 70h-77h.
        ; Everything masked but the cascade and IRQ13 (slave IR5).
        mov al, 0x11
        out 0x20, al
        out 0xa0, al
        mov al, 0x08
        out 0x21, al
        mov al, 0x70
        out 0xa1, al
        mov al, 0x04
        out 0x21, al
        mov al, 0x02
        out 0xa1, al
        mov al, 0x01
        out 0x21, al
        out 0xa1, al
        mov al, 0xfb
        out 0x21, al
        mov al, 0xdf
        out 0xa1, al

        ; MS-DOS compatibility mode: CR0.NE = 0; and the FPU usable (EM = TS = 0).
        mov eax, cr0
        and eax, ~(CR0_NE | CR0_TS | CR0_EM)
        mov cr0, eax
        sti

; --- 1. an unmasked zero-divide raises IRQ13 -------------------------------------------
        fninit
        fldcw [cw_ze]
        fld1
        fldz
        fdivp st1, st0                  ; 1/0: ZE, unmasked: ES set, FERR# asserted
        fwait
        call wait_irq13
        cmp byte [irq13_count], 1
        jne fail_none
        mov si, s_irq13
        call puts
        mov al, [irq13_sw]
        call hex8
        call newline
        ; FNCLEX in the handler took ES down: no second interrupt.
        call wait_irq13
        cmp byte [irq13_count], 1
        jne fail_twice
        mov si, s_once
        call puts

; --- 2. a masked zero-divide does not ------------------------------------------------------
        fninit                          ; every exception masked
        fld1
        fldz
        fdivp st1, st0                  ; 1/0 = +inf, ZE recorded, no ES
        fwait
        call wait_irq13
        cmp byte [irq13_count], 1
        jne fail_masked
        fnstsw ax
        test al, 0x80
        jnz fail_masked
        mov si, s_masked
        call puts

; --- 3. with CR0.NE = 1 the same error is #MF ----------------------------------------------
        mov eax, cr0
        or eax, CR0_NE
        mov cr0, eax
        fninit
        fldcw [cw_ze]
        fld1
        fldz
        fdivp st1, st0
        fwait                           ; #MF here; the handler clears ES and returns to it
        call wait_irq13
        cmp byte [mf_count], 1
        jne fail_mf
        cmp byte [irq13_count], 1
        jne fail_mf
        mov si, s_mf
        call puts

        mov si, s_pass
        call puts
        xor al, al
        out DEBUG_EXIT, al
        cli
        hlt

fail_none:
        mov si, s_fail_none
        jmp fail
fail_twice:
        mov si, s_fail_twice
        jmp fail
fail_masked:
        mov si, s_fail_masked
        jmp fail
fail_mf:
        mov si, s_fail_mf
fail:   call puts
        mov al, 1
        out DEBUG_EXIT, al
        cli
        hlt

; Spin a while so a pending interrupt is taken (on QEMU it comes at the end of a
; translation block, not at once).
wait_irq13:
        mov cx, WAIT_LOOPS
.spin:  loop .spin
        ret

; IRQ13: acknowledge FERR# at the board (port F0h), record the status word, clear the
; exception, end the interrupt at the slave and at the master.
irq13:  push ax
        xor al, al
        out FPU_BUSY, al
        fnstsw ax
        mov [irq13_sw], al
        fnclex
        inc byte [irq13_count]
        mov al, 0x20
        out 0xa0, al
        out 0x20, al
        pop ax
        iret

; #MF: a fault at the waiting instruction; clear the exception and let it run again.
mf:     fnclex
        inc byte [mf_count]
        iret

; puts: print the NUL-terminated string at DS:SI.
puts:   lodsb
        test al, al
        jz .done
        out DEBUGCON, al
        jmp puts
.done:  ret

; hex8: print AL as two hex digits.
hex8:   push ax
        shr al, 4
        call .digit
        pop ax
        and al, 0x0f
.digit: add al, '0'
        cmp al, '9'
        jbe .out
        add al, 'a' - '0' - 10
.out:   out DEBUGCON, al
        ret

newline:
        mov al, 10
        out DEBUGCON, al
        ret

cw_ze:          dw CW_ZE_UNMASKED
irq13_count:    db 0
irq13_sw:       db 0
mf_count:       db 0
s_irq13:        db "x87 zero-divide with CR0.NE=0: IRQ13, status word low byte ", 0
s_once:         db "IRQ13 once: FNCLEX ended the error", 10, 0
s_masked:       db "masked zero-divide: no IRQ13", 10, 0
s_mf:           db "CR0.NE=1: #MF at FWAIT, no IRQ13", 10, 0
s_pass:         db "PASS", 10, 0
s_fail_none:    db "FAIL: no IRQ13 after an unmasked x87 error with CR0.NE=0", 10, 0
s_fail_twice:   db "FAIL: IRQ13 again after FNCLEX", 10, 0
s_fail_masked:  db "FAIL: IRQ13 or ES after a masked x87 error", 10, 0
s_fail_mf:      db "FAIL: no #MF (or an IRQ13) with CR0.NE=1", 10, 0

program_end:
