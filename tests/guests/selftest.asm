; selftest.asm — a self-checking guest for v386 and QEMU.
;
; Build:  nasm -f bin -I tests/guests/ tests/guests/selftest.asm -o selftest.img
; QEMU:   pad to 1474560 bytes, then
;         qemu-system-i386 -cpu pentium2 -display none -nodefaults \
;             -drive file=selftest.img,if=floppy,format=raw -boot a \
;             -debugcon file:LOG -device isa-debug-exit,iobase=0xf4,iosize=4
; v386:   load flat at 0x7C00, start in real mode at 0000:7E00.
;
; What it does, in order (every step prints one or more lines on port 0xE9):
;   1. real mode -> protected mode (GDT: SDM Vol. 3A §3.4.5, CR0.PE: §9.9.1)
;   2. IDT with interrupt gates (§6.11) for every exception; #DF and anything unexpected
;      print "FAIL: ...", #GP (13) and #PF (14) have real handlers
;   3. three deliberate #GPs from protected-mode segment loads (§5.3, §5.5, §5.7;
;      §6.15 "Interrupt 13"):
;      a selector beyond the GDT limit, a read-only data segment into SS, a TSS into DS
;   4. paging (§4.3, 32-bit paging): identity map of the first 4 MiB plus an alias page,
;      checked by writing through the alias
;   5. three deliberate #PFs (§6.15 "Interrupt 14", error code §4.7): read of a not-present
;      page, write to a not-present page, supervisor write to a read-only page with CR0.WP=1;
;      the handler maps the page and the instruction is restarted
;   6. a virtual-8086 program (§20.2) entered by IRET with EFLAGS.VM=1 and IOPL=0: its
;      IOPL-sensitive instructions (CLI, STI, PUSHF, POPF, INT n, IRET: §20.2.7) raise #GP
;      into the ring-0 monitor, which decodes the opcode at CS:IP and emulates it with a
;      virtual IF, and reflects INT n through the real-mode IVT (§20.3.1.2); port I/O is
;      governed by the TSS I/O permission bitmap (§20.2.8.1; Vol. 1 "I/O Permission Bit Map");
;      a user-mode access to a supervisor page raises #PF; INT 30h returns to the monitor
;   7. hardware task switches (§7.3) to a second TSS: CALL (sets NT and the back link),
;      IRET (returns through the back link), then JMP there and JMP back (busy bits and NT,
;      §7.4 "Task Linking", Table 7-2)
;   8. "PASS", then value 0 to the isa-debug-exit port 0xF4 (nonzero after "FAIL: ...").
;
; Only deterministic values are printed so the output is byte-identical on every emulator.

%include "loader.inc"

; ---------------------------------------------------------------------------------------
; Constants
; ---------------------------------------------------------------------------------------

; Absolute (scalar) value of a label, for the shifts and masks nasm refuses on labels.
%define ABS(x) ((x) - $$ + 0x7c00)

DEBUGCON        equ 0xe9
DEBUG_EXIT      equ 0xf4

; GDT selectors (index << 3, TI = 0, RPL = 0; §3.4.2)
CODE_SEL        equ 0x08            ; 32-bit ring-0 code, base 0, limit 4 GiB
DATA_SEL        equ 0x10            ; 32-bit ring-0 data, base 0, limit 4 GiB
RODATA_SEL      equ 0x18            ; read-only data, base 0, limit 4 GiB
TSS0_SEL        equ 0x20            ; the main task (also the V86 monitor's task)
TSS1_SEL        equ 0x28            ; the second task
BAD_SEL         equ 0x0ff8          ; index 0x1FF: far beyond the GDT limit

; Physical memory map (everything below 1 MiB, so the A20 gate never matters)
V86_STACK_TOP   equ 0x6000          ; V86 SS:SP = 0000:6000
SUPER_PAGE      equ 0x3000          ; identity mapped, supervisor-only (U/S = 0); below the V86 stack page
IDT_BASE        equ 0x11000         ; 32 gates
STACK0_TOP      equ 0x18000         ; main task ring-0 stack
RING0_TOP       equ 0x19000         ; TSS0.ESP0: stack used when V86 code traps
STACK1_TOP      equ 0x1a000         ; second task's stack
PAGE_DIR        equ 0x20000         ; page directory (§4.3, Figure 4-4)
PT_LOW          equ 0x21000         ; page table for linear 0-4 MiB
PT_ALIAS        equ 0x22000         ; page table for linear 8-12 MiB
ALIAS_PHYS      equ 0x30000         ; linear 0x800000 maps here
BACK_PF_READ    equ 0x31000         ; the #PF handler maps the faulting pages to these
BACK_PF_WRITE   equ 0x32000
BACK_RO         equ 0x33000

ALIAS_LIN       equ 0x800000
PF_READ_LIN     equ 0x200000        ; not present
PF_WRITE_LIN    equ 0x201000        ; not present
PF_RO_LIN       equ 0x202000        ; present, read-only

; Page-table entry bits (§4.3, Table 4-6)
PTE_P           equ 0x001
PTE_RW          equ 0x002
PTE_US          equ 0x004

; EFLAGS bits (§2.3)
EFL_IF          equ 0x00000200
EFL_NT          equ 0x00004000
EFL_VM          equ 0x00020000
EFL_ARITH       equ 0x00000cd5      ; CF PF AF ZF SF DF OF: what an emulated POPF/IRET copies

; ---------------------------------------------------------------------------------------
; Macros
; ---------------------------------------------------------------------------------------

; PRINT "text", 10 — print a string on the debug console (32-bit code).
%macro PRINT 1+
        jmp     %%skip
%%str:  db      %1, 0
%%skip: push    esi
        mov     esi, %%str
        call    print_str
        pop     esi
%endmacro

; PRINT16 "text", 10 — the same from real-mode / V86 code (uses the port directly: in
; V86 mode this is allowed by the TSS I/O permission bitmap).
%macro PRINT16 1+
        jmp     %%skip
%%str:  db      %1, 0
%%skip: push    si
        mov     si, %%str
        call    print_str16
        pop     si
%endmacro

; HEX reg_or_imm, digits — print a value in upper-case hex (32-bit code).
%macro HEX 2
        push    eax
        push    ecx
        mov     eax, %1
        mov     ecx, %2
        call    print_hex
        pop     ecx
        pop     eax
%endmacro

; FAIL "reason" — print "FAIL: reason" and stop with exit value 1.
%macro FAIL 1
        PRINT   "FAIL: ", %1, 10
        jmp     fail_exit
%endmacro

; EXPECT value, expected, "what" — compare; on mismatch print
; "FAIL: what: got XXXXXXXX expected XXXXXXXX" and stop.
%macro EXPECT 3
        push    eax
        push    edx
        mov     eax, %1
        mov     edx, %2
        cmp     eax, edx
        je      %%ok
        jmp     %%bad
%%msg:  db      %3, 0
%%bad:  mov     esi, %%msg
        jmp     expect_failed
%%ok:   pop     edx
        pop     eax
%endmacro

; EXPECTB [mem], expected, "what" — the same for a zero-extended byte in memory.
%macro EXPECTB 3
        push    eax
        movzx   eax, byte %1
        EXPECT  eax, %2, %3
        pop     eax
%endmacro

; ---------------------------------------------------------------------------------------
; 1. Real mode: set up, mask the PICs, enter protected mode
; ---------------------------------------------------------------------------------------

        bits    16
start:                                  ; 0000:7E00
        cli
        cld
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7c00
        mov     al, 0xff                ; mask every IRQ on both 8259s (SeaBIOS left
        out     0x21, al                ; some unmasked; no PIC under v386 is harmless)
        out     0xa1, al
        PRINT16 "selftest: real mode", 10

        lgdt    [gdt_desc]
        mov     eax, cr0
        or      eax, 1                  ; CR0.PE (§2.5)
        mov     cr0, eax
        jmp     dword CODE_SEL:pm_entry ; far jump loads CS and flushes the prefetch (§9.9.1)

; print_str16: SI -> NUL-terminated string, written to port 0xE9.
print_str16:
        push    ax
.next:  lodsb
        test    al, al
        jz      .done
        out     DEBUGCON, al
        jmp     .next
.done:  pop     ax
        ret

; ---------------------------------------------------------------------------------------
; 2. Protected mode
; ---------------------------------------------------------------------------------------

        bits    32
pm_entry:
        mov     ax, DATA_SEL
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     esp, STACK0_TOP
        PRINT   "pm: ok", 10

        ; ---- IDT (§6.10, §6.11): 32 interrupt gates, each to its own stub that reports
        ; an unexpected exception; then #DF, #GP and #PF get their real handlers.
        mov     edi, IDT_BASE
        mov     ebx, exc_stubs
        xor     ecx, ecx
.gate:  mov     eax, ebx
        cmp     ecx, 8
        jne     .n8
        mov     eax, df_handler
.n8:    cmp     ecx, 13
        jne     .n13
        mov     eax, gp_handler
.n13:   cmp     ecx, 14
        jne     .n14
        mov     eax, pf_handler
.n14:   call    set_gate
        add     ebx, 8
        add     edi, 8
        inc     ecx
        cmp     ecx, 32
        jb      .gate
        lidt    [idt_desc]
        PRINT   "idt: ok", 10

        ; ---- Load the task register with the main task's TSS (§7.2.4). Needed for the
        ; ring-0 stack (SS0:ESP0) used when V86 code traps, and as the back link target.
        mov     ax, TSS0_SEL
        ltr     ax
        str     ax
        movzx   eax, ax
        EXPECT  eax, TSS0_SEL, "str after ltr"
        EXPECTB [gdt_tss0 + 5], 0x8b, "TSS0 descriptor busy after ltr"

; ---------------------------------------------------------------------------------------
; 3. #GP from protected-mode code
; ---------------------------------------------------------------------------------------
; The #GP handler resumes at [gp_resume] (and clears it); the error code lands in [gp_err].

        ; (a) A selector whose index is beyond the GDT limit: #GP(selector) (§5.3 limit
        ; checking of descriptor tables; error code format §6.13).
        mov     dword [gp_resume], .gp1_done
        mov     ax, BAD_SEL
        mov     ds, ax                  ; faults; never completes
        FAIL    "loading a bad selector did not fault"
.gp1_done:
        mov     ax, DATA_SEL
        mov     ds, ax
        PRINT   "#GP handled: bad selector, err="
        HEX     [gp_err], 4
        PRINT   10
        EXPECT  [gp_err], BAD_SEL, "#GP error code for bad selector"

        ; (b) A read-only data segment loaded into SS: SS must be writable, #GP(selector)
        ; (§5.7 "Privilege Level Checking When Loading the SS Register"; §6.15 Int 13). (A data write through a read-only
        ; segment would also #GP(0) on hardware, but QEMU's TCG does not check segment
        ; rights on data accesses, so it cannot be part of an output both must agree on.)
        mov     dword [gp_resume], .gp2_done
        mov     ax, RODATA_SEL
        mov     ss, ax                  ; faults; SS stays DATA_SEL
        FAIL    "loading a read-only segment into SS did not fault"
.gp2_done:
        PRINT   "#GP handled: read-only segment into SS, err="
        HEX     [gp_err], 4
        PRINT   10
        EXPECT  [gp_err], RODATA_SEL, "#GP error code for read-only SS"
        mov     ax, ss
        movzx   eax, ax
        EXPECT  eax, DATA_SEL, "SS after the faulting MOV SS"

        ; (c) A system descriptor (the TSS) loaded into DS: #GP(selector) (§5.5 type
        ; checking: only code/data descriptors can be loaded into a data segment register).
        mov     dword [gp_resume], .gp3_done
        mov     ax, TSS0_SEL
        mov     ds, ax
        FAIL    "loading a TSS selector into DS did not fault"
.gp3_done:
        mov     ax, DATA_SEL
        mov     ds, ax
        PRINT   "#GP handled: TSS selector into DS, err="
        HEX     [gp_err], 4
        PRINT   10
        EXPECT  [gp_err], TSS0_SEL, "#GP error code for TSS selector in DS"

; ---------------------------------------------------------------------------------------
; 4. Paging (§4.3: 32-bit paging, 4-KiB pages)
; ---------------------------------------------------------------------------------------

        ; Clear the page directory and both page tables.
        mov     edi, PAGE_DIR
        mov     ecx, 3 * 1024
        xor     eax, eax
        rep     stosd

        ; PDE 0 -> PT_LOW (linear 0-4 MiB), PDE 2 -> PT_ALIAS (linear 8-12 MiB).
        ; User + writable in the PDE: the PTEs decide (§4.6, combined rights).
        mov     dword [PAGE_DIR + 0*4], PT_LOW | PTE_US | PTE_RW | PTE_P
        mov     dword [PAGE_DIR + 2*4], PT_ALIAS | PTE_US | PTE_RW | PTE_P

        ; PT_LOW: identity map of the first 4 MiB, user + writable (the V86 program runs
        ; at CPL 3 and needs user pages; §20.2.1).
        mov     edi, PT_LOW
        mov     eax, PTE_US | PTE_RW | PTE_P
        mov     ecx, 1024
.ident: stosd
        add     eax, 0x1000
        loop    .ident

        ; The exceptions to the identity map:
        mov     dword [PT_LOW + (PF_READ_LIN >> 12)*4], 0          ; not present
        mov     dword [PT_LOW + (PF_WRITE_LIN >> 12)*4], 0         ; not present
        mov     dword [PT_LOW + (PF_RO_LIN >> 12)*4], BACK_RO | PTE_US | PTE_P ; read-only
        mov     dword [PT_LOW + (SUPER_PAGE >> 12)*4], SUPER_PAGE | PTE_RW | PTE_P ; supervisor
        ; Linear 0x800000 is an alias of physical ALIAS_PHYS.
        mov     dword [PT_ALIAS + 0], ALIAS_PHYS | PTE_RW | PTE_P

        mov     eax, PAGE_DIR
        mov     cr3, eax
        mov     eax, cr0
        or      eax, 0x80000000         ; CR0.PG (§2.5)
        mov     cr0, eax
        jmp     .paged                  ; (not architecturally needed on P6; customary)
.paged:
        ; Write through the alias, read back through the identity map.
        mov     dword [ALIAS_PHYS + 0x10], 0
        mov     dword [ALIAS_LIN + 0x10], 0x12345678
        mov     eax, [ALIAS_PHYS + 0x10]
        EXPECT  eax, 0x12345678, "alias page write not seen at its physical address"
        mov     eax, cr0
        and     eax, 0x80000001
        EXPECT  eax, 0x80000001, "CR0.PG|PE"
        PRINT   "paging: ok (linear "
        HEX     ALIAS_LIN + 0x10, 8
        PRINT   " -> physical "
        HEX     ALIAS_PHYS + 0x10, 8
        PRINT   ")", 10

; ---------------------------------------------------------------------------------------
; 5. #PF (§4.7, §6.15 "Interrupt 14")
; ---------------------------------------------------------------------------------------
; The #PF handler records CR2 and the error code, maps the faulting page (see pf_handler)
; and returns, so the faulting instruction is restarted and completes.

        ; Patterns in the backing pages, to prove the restarted access used the new mapping.
        mov     dword [BACK_PF_READ + 0x120], 0xfeedf00d
        mov     dword [BACK_PF_WRITE + 0x454], 0
        mov     dword [BACK_RO + 0x7f8], 0x11111111
        mov     word [SUPER_PAGE], 0x5a5a       ; read by the V86 program below

        ; (a) Read from a not-present page: error code 0 (P=0, W/R=0, U/S=0).
        mov     eax, [PF_READ_LIN + 0x120]
        EXPECT  eax, 0xfeedf00d, "value read after #PF (not-present read)"
        call    report_pf
        EXPECT  [pf_cr2], PF_READ_LIN + 0x120, "CR2 for not-present read"
        EXPECT  [pf_err], 0, "#PF error code for not-present read"

        ; (b) Write to a not-present page: error code 2 (W/R=1).
        mov     dword [PF_WRITE_LIN + 0x454], 0xcafebabe
        EXPECT  [BACK_PF_WRITE + 0x454], 0xcafebabe, "value written after #PF (not-present write)"
        call    report_pf
        EXPECT  [pf_cr2], PF_WRITE_LIN + 0x454, "CR2 for not-present write"
        EXPECT  [pf_err], 2, "#PF error code for not-present write"

        ; (c) Supervisor write to a read-only page with CR0.WP=1 (§4.6): error code 3.
        mov     eax, cr0
        or      eax, 0x00010000         ; CR0.WP
        mov     cr0, eax
        mov     eax, [PF_RO_LIN + 0x7f8] ; reading is allowed
        EXPECT  eax, 0x11111111, "read from read-only page"
        EXPECT  [pf_count], 2, "a read of a read-only page faulted"
        mov     dword [PF_RO_LIN + 0x7f8], 0x22222222
        EXPECT  [BACK_RO + 0x7f8], 0x22222222, "value written after #PF (read-only write)"
        call    report_pf
        EXPECT  [pf_cr2], PF_RO_LIN + 0x7f8, "CR2 for read-only write"
        EXPECT  [pf_err], 3, "#PF error code for read-only write"
        EXPECT  [pf_count], 3, "number of page faults"

; ---------------------------------------------------------------------------------------
; 6. Virtual-8086 mode (§20.2, §20.3)
; ---------------------------------------------------------------------------------------

        ; Real-mode interrupt vector 31h (at linear 0xC4) -> v86_int31, for the monitor's
        ; reflection of INT 31h through the IVT (§20.3.1.2).
        mov     word [0x31*4], v86_int31
        mov     word [0x31*4 + 2], 0

        PRINT   "v86: entering", 10
        ; IRET with EFLAGS.VM=1 from CPL 0 enters V86 mode (§20.2.5). The frame holds
        ; EIP, CS, EFLAGS, ESP, SS, ES, DS, FS, GS. IOPL = 0 < 3, so the IOPL-sensitive
        ; instructions fault (§20.2.7). IF = 0: the monitor virtualises it.
        mov     [v86_saved_esp], esp
        push    dword 0                 ; GS
        push    dword 0                 ; FS
        push    dword 0                 ; DS
        push    dword 0                 ; ES
        push    dword 0                 ; SS
        push    dword V86_STACK_TOP     ; ESP
        push    dword EFL_VM | 2        ; EFLAGS: VM=1, IOPL=0, IF=0, reserved bit 1
        push    dword 0                 ; CS
        push    dword v86_entry         ; EIP
        iret

v86_returned:                           ; the monitor comes here on INT 30h
        mov     ax, DATA_SEL
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        PRINT   "v86: back in monitor, ax="
        HEX     [v86_exit_ax], 4
        PRINT   10
        EXPECT  [v86_exit_ax], 0x600d, "AX at V86 exit"
        EXPECT  [v86_trap_count], 12, "number of V86 #GP traps"
        EXPECT  [v86_flags_cli], 0, "V86 PUSHF image IF after CLI"
        EXPECT  [v86_flags_sti], EFL_IF, "V86 PUSHF image IF after STI"
        EXPECT  [v86_flags_popf], 0, "V86 PUSHF image IF after POPF 0"
        EXPECT  [v86_flags_int], 0, "V86 PUSHF image IF inside the reflected INT 31h"
        EXPECT  [v86_int31_bx], 0xb0b0, "BX set by the reflected INT 31h handler"
        EXPECT  [v86_vif], 1, "virtual IF after the V86 IRET"
        EXPECT  [v86_super_read], 0x5a5a, "V86 read of the supervisor page after #PF"
        EXPECT  [pf_cr2], SUPER_PAGE, "CR2 for the V86 supervisor-page read"
        EXPECT  [pf_err], 5, "#PF error code for the V86 supervisor-page read"
        EXPECT  [pf_count], 4, "number of page faults after V86"
        pushfd
        pop     eax
        and     eax, EFL_VM | EFL_IF
        EXPECT  eax, 0, "EFLAGS.VM|IF back in the monitor"
        PRINT   "v86: ok", 10

; ---------------------------------------------------------------------------------------
; 7. Hardware task switches (§7.3)
; ---------------------------------------------------------------------------------------

        ; (a) CALL through the TSS descriptor: saves our state in TSS0, loads TSS1, sets
        ; EFLAGS.NT in the new task and TSS1's previous-task link = TSS0_SEL; both busy.
        mov     eax, 0x7a5c0de0         ; the new task must see its own EAX (from TSS1)
        call    TSS1_SEL:0
        ; ... task 1 IRETs (NT=1) back here.
        mov     [task0_eax], eax        ; our EAX is restored from TSS0
        PRINT   "task switch: back in task 0 after IRET", 10
        EXPECT  [task0_eax], 0x7a5c0de0, "task 0 EAX after the round trip"
        str     ax
        movzx   eax, ax
        EXPECT  eax, TSS0_SEL, "TR after IRET"
        EXPECT  [task1_seen_eax], 0x1badc0de, "task 1 EAX loaded from TSS1"
        EXPECT  [task1_link], TSS0_SEL, "TSS1 previous-task link"
        EXPECT  [task1_nt], EFL_NT, "EFLAGS.NT in the called task"
        EXPECT  [task1_tr], TSS1_SEL, "TR in the called task"
        EXPECT  [task1_tss0_type], 0x8b, "TSS0 busy while nested"
        EXPECT  [task1_ts], 8, "CR0.TS after the task switch"
        EXPECTB [gdt_tss1 + 5], 0x89, "TSS1 busy bit after IRET (should be clear)"
        EXPECT  [tss1 + 0x20], task1_resume, "EIP saved in TSS1 by IRET"
        mov     eax, [tss1 + 0x24]
        and     eax, EFL_NT
        EXPECT  eax, 0, "NT in the EFLAGS image saved by IRET"
        PRINT   "task switch: back link="
        HEX     [task1_link], 4
        PRINT   " ok", 10

        ; (b) JMP to the task and JMP back: no nesting, the old task's busy bit is cleared.
        mov     eax, cr0                ; CR0.TS was set again by the IRET switch
        and     eax, 8
        EXPECT  eax, 8, "CR0.TS after the IRET task switch"
        clts
        jmp     TSS1_SEL:0
        ; ... task 1 JMPs back here.
        PRINT   "task switch: back in task 0 after JMP", 10
        EXPECT  [task1_nt2], 0, "EFLAGS.NT in a task entered by JMP"
        EXPECT  [task1_tss0_type2], 0x89, "TSS0 busy bit after JMP away (should be clear)"
        EXPECTB [gdt_tss0 + 5], 0x8b, "TSS0 busy after JMP back"
        EXPECTB [gdt_tss1 + 5], 0x89, "TSS1 busy bit after JMP away (should be clear)"
        clts
        PRINT   "task switch: ok", 10

; ---------------------------------------------------------------------------------------
; 8. Done
; ---------------------------------------------------------------------------------------
        PRINT   "PASS", 10
        mov     al, 0
        out     DEBUG_EXIT, al
        cli
.halt:  hlt
        jmp     .halt

; ---------------------------------------------------------------------------------------
; Task 1 (entered by the CALL and the JMP above; runs at ring 0 on its own stack)
; ---------------------------------------------------------------------------------------
task1_entry:
        mov     [task1_seen_eax], eax
        PRINT   "task 1: entered by CALL", 10
        str     ax
        movzx   eax, ax
        mov     [task1_tr], eax
        movzx   eax, word [tss1 + 0]    ; previous-task link (§7.2.1)
        mov     [task1_link], eax
        pushfd
        pop     eax
        and     eax, EFL_NT
        mov     [task1_nt], eax
        movzx   eax, byte [gdt_tss0 + 5]
        mov     [task1_tss0_type], eax
        mov     eax, cr0
        and     eax, 8                  ; CR0.TS (§2.5: set on every task switch)
        mov     [task1_ts], eax
        clts
        iret                            ; NT=1: task return to the back link (§7.4)
task1_resume:                           ; the JMP from task 0 resumes here
        PRINT   "task 1: entered by JMP", 10
        pushfd
        pop     eax
        and     eax, EFL_NT
        mov     [task1_nt2], eax
        movzx   eax, byte [gdt_tss0 + 5]
        mov     [task1_tss0_type2], eax
        clts
        jmp     TSS0_SEL:0
        FAIL    "JMP back to task 0 fell through"

; ---------------------------------------------------------------------------------------
; Helpers (32-bit)
; ---------------------------------------------------------------------------------------

; set_gate: EDI -> IDT slot, EAX = handler offset. 32-bit interrupt gate, DPL 0 (§6.11,
; Figure 6-2): offset 15..0, selector, 0x8E00 (P=1, DPL=0, type 1110b), offset 31..16.
set_gate:
        mov     [edi], ax
        mov     word [edi + 2], CODE_SEL
        mov     word [edi + 4], 0x8e00
        shr     eax, 16
        mov     [edi + 6], ax
        ret

; print_str: ESI -> NUL-terminated string.
print_str:
        push    eax
        push    esi
.next:  lodsb
        test    al, al
        jz      .done
        out     DEBUGCON, al
        jmp     .next
.done:  pop     esi
        pop     eax
        ret

; print_hex: EAX = value, ECX = number of hex digits (low ones), upper-case.
print_hex:
        push    eax
        push    ebx
        push    ecx
        push    edx
        mov     edx, eax
        mov     ebx, ecx
        shl     ecx, 2                  ; rotate so the first digit printed is in the top
        neg     ecx
        add     ecx, 32
        rol     edx, cl                 ; nibble ... (cl = 32 - 4*digits; 0 for 8 digits)
        mov     ecx, ebx
.digit: rol     edx, 4
        mov     al, dl
        and     al, 0x0f
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'A' - '9' - 1
.out:   out     DEBUGCON, al
        loop    .digit
        pop     edx
        pop     ecx
        pop     ebx
        pop     eax
        ret

; expect_failed: ESI = what, EAX = got, EDX = expected.
expect_failed:
        push    esi
        PRINT   "FAIL: "
        pop     esi
        call    print_str
        PRINT   ": got "
        HEX     eax, 8
        PRINT   " expected "
        HEX     edx, 8
        PRINT   10
fail_exit:
        mov     al, 1
        out     DEBUG_EXIT, al
        cli
.halt:  hlt
        jmp     .halt

; report_pf: print the last page fault.
report_pf:
        PRINT   "#PF handled: cr2="
        HEX     [pf_cr2], 8
        PRINT   " err="
        HEX     [pf_err], 8
        PRINT   10
        ret

; ---------------------------------------------------------------------------------------
; Exception handlers
; ---------------------------------------------------------------------------------------

; One 8-byte stub per vector 0..31 for the unexpected ones: push the vector, report.
        align   8
exc_stubs:
%assign v 0
%rep 32
        push    byte v                  ; 2 bytes
        jmp     near unexpected_exc     ; 5 bytes
        align   8
%assign v v+1
%endrep

unexpected_exc:
        mov     ax, DATA_SEL            ; DS may be null (V86) or anything
        mov     ds, ax
        mov     es, ax
        PRINT   "FAIL: unexpected exception, vector="
        pop     eax
        HEX     eax, 2
        PRINT   10
        jmp     fail_exit

; #DF (vector 8): nothing here should ever cause one.
df_handler:
        mov     ax, DATA_SEL
        mov     ds, ax
        mov     es, ax
        FAIL    "double fault"

; Frame layout after `push ds; push es; pushad` in the handlers below (offsets from EBP):
F_ERR           equ 40                  ; error code pushed by the CPU
F_EIP           equ 44
F_CS            equ 48
F_EFLAGS        equ 52
F_ESP           equ 56                  ; only for a privilege change / from V86 (§6.12.1)
F_SS            equ 60
F_V86_ES        equ 64                  ; only from V86 (§20.3.1.1: ES DS FS GS pushed too)
F_V86_DS        equ 68
F_V86_FS        equ 72
F_V86_GS        equ 76
F_EAX           equ 28                  ; pushad order: EAX ECX EDX EBX ESP EBP ESI EDI
F_EBX           equ 16

; #GP (vector 13). From protected-mode code: record the error code and resume at
; [gp_resume]. From V86 code (EFLAGS.VM=1 in the frame): the V86 monitor.
gp_handler:
        push    ds
        push    es
        pushad
        mov     ebp, esp
        mov     ax, DATA_SEL            ; from V86 mode DS..GS arrive null (§20.3.1.1)
        mov     ds, ax
        mov     es, ax
        test    dword [ebp + F_EFLAGS], EFL_VM
        jnz     v86_monitor
        mov     eax, [ebp + F_ERR]
        mov     [gp_err], eax
        mov     eax, [gp_resume]
        test    eax, eax
        jz      .unexpected
        mov     [ebp + F_EIP], eax
        mov     dword [gp_resume], 0
        popad
        pop     es
        pop     ds
        add     esp, 4                  ; drop the error code
        iret
.unexpected:
        PRINT   "FAIL: unexpected #GP, err="
        HEX     [ebp + F_ERR], 8
        PRINT   " eip="
        HEX     [ebp + F_EIP], 8
        PRINT   10
        jmp     fail_exit

; #PF (vector 14): record CR2 and the error code, then fix the page so the restarted
; instruction succeeds. Only the pages this test faults on are handled.
pf_handler:
        push    ds
        push    es
        pushad
        mov     ebp, esp
        mov     ax, DATA_SEL
        mov     ds, ax
        mov     es, ax
        mov     eax, cr2                ; the faulting linear address (§2.5)
        mov     [pf_cr2], eax
        mov     ecx, [ebp + F_ERR]
        mov     [pf_err], ecx
        inc     dword [pf_count]
        and     eax, 0xfffff000
        mov     edx, BACK_PF_READ | PTE_US | PTE_RW | PTE_P
        cmp     eax, PF_READ_LIN
        je      .map
        mov     edx, BACK_PF_WRITE | PTE_US | PTE_RW | PTE_P
        cmp     eax, PF_WRITE_LIN
        je      .map
        mov     edx, BACK_RO | PTE_US | PTE_RW | PTE_P
        cmp     eax, PF_RO_LIN
        je      .map
        mov     edx, SUPER_PAGE | PTE_US | PTE_RW | PTE_P
        cmp     eax, SUPER_PAGE
        je      .map
        PRINT   "FAIL: unexpected #PF, cr2="
        HEX     [pf_cr2], 8
        PRINT   " err="
        HEX     [pf_err], 8
        PRINT   " eip="
        HEX     [ebp + F_EIP], 8
        PRINT   10
        jmp     fail_exit
.map:   shr     eax, 12
        mov     [PT_LOW + eax*4], edx
        mov     eax, cr3                ; flush the TLB (§4.10.4.1)
        mov     cr3, eax
        test    dword [ebp + F_EFLAGS], EFL_VM
        jz      .ret
        PRINT   "#PF handled (v86): cr2="
        HEX     [pf_cr2], 8
        PRINT   " err="
        HEX     [pf_err], 8
        PRINT   10
.ret:   popad
        pop     es
        pop     ds
        add     esp, 4
        iret

; ---------------------------------------------------------------------------------------
; The V86 monitor (entered from gp_handler with EBP -> frame, DS = ES = DATA_SEL)
; ---------------------------------------------------------------------------------------
; The V86 task's CS:IP is in the frame; the linear address of the faulting instruction is
; CS*16 + IP (§20.1.1). Every IOPL-sensitive instruction raises #GP(0) (§20.2.7); the
; monitor emulates it against a virtual interrupt flag [v86_vif] and skips it.

v86_monitor:
        inc     dword [v86_trap_count]
        EXPECT  [ebp + F_ERR], 0, "#GP error code from V86"
        movzx   esi, word [ebp + F_CS]
        shl     esi, 4
        movzx   eax, word [ebp + F_EIP]
        add     esi, eax                ; ESI = linear CS:IP
        movzx   eax, byte [esi]         ; the opcode (this test uses no prefixes)
        cmp     al, 0xfa
        je      .cli
        cmp     al, 0xfb
        je      .sti
        cmp     al, 0x9c
        je      .pushf
        cmp     al, 0x9d
        je      .popf
        cmp     al, 0xcd
        je      .int
        cmp     al, 0xcf
        je      .iret
        cmp     al, 0xe6
        je      .out_imm
        PRINT   "FAIL: V86 monitor: unhandled opcode "
        HEX     eax, 2
        PRINT   " at "
        call    .where
        PRINT   10
        jmp     fail_exit

.cli:   PRINT   "v86: cli trapped at "
        call    .where
        PRINT   10
        mov     dword [v86_vif], 0
        jmp     .skip1
.sti:   PRINT   "v86: sti trapped at "
        call    .where
        PRINT   10
        mov     dword [v86_vif], 1
        jmp     .skip1
.pushf: PRINT   "v86: pushf trapped at "
        call    .where
        PRINT   10
        call    .flags_image
        call    .push16
        jmp     .skip1
.popf:  PRINT   "v86: popf trapped at "
        call    .where
        PRINT   10
        call    .pop16
        call    .set_flags
        jmp     .skip1
.int:   movzx   ebx, byte [esi + 1]     ; the vector n
        cmp     bl, 0x30
        je      .exit
        PRINT   "v86: int "
        HEX     ebx, 2
        PRINT   " trapped at "
        call    .where
        PRINT   ", reflected through the IVT", 10
        ; As the 8086 would: push FLAGS, CS, IP (of the next instruction), clear IF and
        ; TF, load CS:IP from the real-mode IVT at linear n*4.
        call    .flags_image
        call    .push16
        movzx   eax, word [ebp + F_CS]
        call    .push16
        movzx   eax, word [ebp + F_EIP]
        add     eax, 2
        call    .push16
        mov     dword [v86_vif], 0
        and     dword [ebp + F_EFLAGS], ~0x100
        movzx   eax, word [ebx*4]
        mov     [ebp + F_EIP], eax
        movzx   eax, word [ebx*4 + 2]
        mov     [ebp + F_CS], eax
        jmp     .resume
.iret:  PRINT   "v86: iret trapped at "
        call    .where
        PRINT   10
        call    .pop16
        mov     [ebp + F_EIP], eax
        call    .pop16
        mov     [ebp + F_CS], eax
        call    .pop16
        call    .set_flags
        jmp     .resume
.out_imm:
        PRINT   "v86: out "
        movzx   eax, byte [esi + 1]
        HEX     eax, 2
        PRINT   " denied by the I/O bitmap at "
        call    .where
        PRINT   10
        add     word [ebp + F_EIP], 2
        jmp     .resume
.exit:  PRINT   "v86: int 30 trapped at "
        call    .where
        PRINT   ", exit", 10
        movzx   eax, word [ebp + F_EAX]
        mov     [v86_exit_ax], eax
        mov     esp, [v86_saved_esp]    ; abandon the V86 frame
        jmp     v86_returned

.skip1: inc     word [ebp + F_EIP]      ; IP wraps within 64 KiB like the 8086
.resume:
        popad
        pop     es
        pop     ds
        add     esp, 4
        iret                            ; back to V86 (VM=1 in the frame)

; .where: print CS:IP of the trapping V86 instruction as "CCCC:IIII".
.where: HEX     [ebp + F_CS], 4
        PRINT   ":"
        HEX     [ebp + F_EIP], 4
        ret
; .flags_image -> EAX: the 16-bit FLAGS the V86 program should see: real flags with IF
; replaced by the virtual IF (and IOPL as it is, 0).
.flags_image:
        mov     eax, [ebp + F_EFLAGS]
        and     eax, 0xffff & ~EFL_IF
        cmp     dword [v86_vif], 0
        je      .fi
        or      eax, EFL_IF
.fi:    ret
; .set_flags: EAX = popped FLAGS: copy the arithmetic flags, IF -> virtual IF.
.set_flags:
        mov     edx, eax
        and     edx, EFL_IF
        shr     edx, 9
        mov     [v86_vif], edx
        and     eax, EFL_ARITH
        and     dword [ebp + F_EFLAGS], ~EFL_ARITH
        or      [ebp + F_EFLAGS], eax
        ret
; .push16: push AX on the V86 stack (SS:SP from the frame).
.push16:
        push    ebx
        sub     word [ebp + F_ESP], 2
        movzx   ebx, word [ebp + F_SS]
        shl     ebx, 4
        movzx   edx, word [ebp + F_ESP]
        mov     [ebx + edx], ax
        pop     ebx
        ret
; .pop16 -> EAX: pop a word from the V86 stack.
.pop16:
        push    ebx
        movzx   ebx, word [ebp + F_SS]
        shl     ebx, 4
        movzx   edx, word [ebp + F_ESP]
        movzx   eax, word [ebx + edx]
        add     word [ebp + F_ESP], 2
        pop     ebx
        ret

; ---------------------------------------------------------------------------------------
; The V86 program (runs at 0000:xxxx, CPL 3, IOPL 0)
; ---------------------------------------------------------------------------------------
        bits    16
v86_entry:
        ; Port 0xE9 is open in the I/O permission bitmap, so this prints directly.
        PRINT16 "v86: hello from virtual-8086 mode (port e9 allowed by the I/O bitmap)", 10
        cli                             ; #GP -> monitor: VIF = 0
        pushf                           ; #GP -> monitor pushes FLAGS with IF = VIF = 0
        pop     ax
        and     ax, 0x200
        mov     [v86_flags_cli], ax
        sti                             ; #GP -> monitor: VIF = 1
        pushf                           ; #GP -> IF = 1 in the image
        pop     ax
        and     ax, 0x200
        mov     [v86_flags_sti], ax
        push    word 0
        popf                            ; #GP -> monitor: VIF = 0
        pushf                           ; #GP
        pop     ax
        and     ax, 0x200
        mov     [v86_flags_popf], ax
        sti                             ; #GP -> VIF = 1 again
        xor     bx, bx
        int     0x31                    ; #GP -> reflected to v86_int31 (whose IRET traps)
        mov     [v86_int31_bx], bx
        out     0x80, al                ; port 0x80 is closed in the bitmap: #GP
        mov     ax, [SUPER_PAGE]        ; supervisor page, CPL 3: #PF (err = U/S|P = 5)
        mov     [v86_super_read], ax
        mov     ax, 0x600d
        int     0x30                    ; #GP -> monitor: exit
        ; not reached
        hlt

; The real-mode style handler for INT 31h, called through the IVT by the monitor.
v86_int31:
        pushf                           ; #GP: the reflected INT cleared VIF
        pop     cx
        and     cx, 0x200
        mov     [v86_flags_int], cx
        mov     bx, 0xb0b0
        iret                            ; #GP -> monitor emulates the 16-bit IRET, VIF = 1

; print_str16 is shared with the real-mode code above (it only uses LODSB and OUT).

        bits    32

; ---------------------------------------------------------------------------------------
; Data
; ---------------------------------------------------------------------------------------
        align   4
gp_resume:      dd 0
gp_err:         dd 0
pf_cr2:         dd 0
pf_err:         dd 0
pf_count:       dd 0
v86_saved_esp:  dd 0
v86_vif:        dd 0
v86_trap_count: dd 0
v86_exit_ax:    dd 0
v86_flags_cli:  dd 0x0000ffff           ; the V86 program stores words into the low halves
v86_flags_sti:  dd 0x0000ffff
v86_flags_popf: dd 0x0000ffff
v86_flags_int:  dd 0x0000ffff
v86_int31_bx:   dd 0x0000ffff
v86_super_read: dd 0x0000ffff
task0_eax:      dd 0
task1_seen_eax: dd 0
task1_tr:       dd 0
task1_link:     dd 0
task1_nt:       dd 0
task1_tss0_type: dd 0
task1_ts:       dd 0
task1_nt2:      dd 0
task1_tss0_type2: dd 0

; GDT (§3.4.5, Figure 3-8). Code/data: limit 0xFFFFF with G=1 (4 GiB), D/B=1 (32-bit).
; Access byte: P=1, DPL=0, S=1, type: 1010b execute/read, 0010b read/write, 0000b read-only.
; TSS descriptors (§7.2.2, Figure 7-3): S=0, type 1001b = available 32-bit TSS (1011b busy).
        align   8
gdt:
        dq      0                                       ; 0x00 null
        dq      0x00cf9a000000ffff                      ; 0x08 code
        dq      0x00cf92000000ffff                      ; 0x10 data
        dq      0x00cf90000000ffff                      ; 0x18 read-only data
%macro TSS_DESC 2                                       ; base, limit (byte granular)
        dw      (%2) & 0xffff
        dw      ABS(%1) & 0xffff
        db      (ABS(%1) >> 16) & 0xff
        db      0x89                                    ; P=1, DPL=0, type 1001b
        db      ((%2) >> 16) & 0x0f                     ; G=0
        db      (ABS(%1) >> 24) & 0xff
%endmacro
gdt_tss0:
        TSS_DESC tss0, tss0_end - tss0 - 1              ; 0x20
gdt_tss1:
        TSS_DESC tss1, tss1_end - tss1 - 1              ; 0x28
gdt_end:

gdt_desc:
        dw      gdt_end - gdt - 1
        dd      gdt
idt_desc:
        dw      32*8 - 1
        dd      IDT_BASE

; 32-bit TSS (§7.2.1, Figure 7-2). Only the static fields matter for the initial state of
; TSS0 (the CPU stores the dynamic fields into it on the first switch away); CR3 is not
; saved by a switch, so both TSSs carry the page directory (§7.2.1 "CR3 control register").
%macro TSS 6                                            ; eip, esp, eflags, eax, iomap, ss0:esp0
        dd      0                                       ; 0x00 previous task link
        dd      %6                                      ; 0x04 ESP0
        dd      DATA_SEL                                ; 0x08 SS0
        dd      0, 0, 0, 0                              ; 0x0C ESP1, SS1, ESP2, SS2
        dd      PAGE_DIR                                ; 0x1C CR3
        dd      %1                                      ; 0x20 EIP
        dd      %3                                      ; 0x24 EFLAGS
        dd      %4, 0, 0, 0                             ; 0x28 EAX ECX EDX EBX
        dd      %2, 0, 0, 0                             ; 0x38 ESP EBP ESI EDI
        dd      DATA_SEL, CODE_SEL, DATA_SEL, DATA_SEL  ; 0x48 ES CS SS DS
        dd      DATA_SEL, DATA_SEL                      ; 0x58 FS GS
        dd      0                                       ; 0x60 LDT selector (none)
        dw      0                                       ; 0x64 T (debug trap) = 0
        dw      %5                                      ; 0x66 I/O map base
%endmacro

        align   8
tss0:
        TSS     0, 0, 2, 0, iomap - tss0, RING0_TOP
; I/O permission bitmap (§20.2.8.1; Vol. 1 "I/O Permission Bit Map"): one bit per port,
; 1 = fault. Ports 0-0x3FF are covered
; (128 bytes); higher ports are beyond the TSS limit and therefore denied. Only 0xE9 is
; open. The trailing 0xFF byte is required because the CPU reads two bytes.
iomap:
        times   0xe9 / 8 db 0xff
        db      0xff & ~(1 << (0xe9 % 8))
        times   128 - 0xe9 / 8 - 1 db 0xff
        db      0xff
tss0_end:

        align   8
tss1:
        TSS     task1_entry, STACK1_TOP, 2, 0x1badc0de, tss1_end - tss1, 0
tss1_end:

program_end:
