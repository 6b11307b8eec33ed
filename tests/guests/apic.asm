; apic.asm — a Multiboot v1 kernel that tests the local APIC and the I/O APIC.
;
; Built by tests/apic_kernel.rs with `nasm -f bin` (a flat image at 1 MiB whose Multiboot
; header carries the a.out-kludge address fields) and booted with v386's
; `Machine::load_kernel` and with `qemu-system-i386 -kernel`; both must print the same
; thing on the debug console (port 0xE9). The kernel ends through isa-debug-exit (port
; 0xF4): value 0 after "PASS", 1 after "FAIL: <step>".
;
; Steps:
;  1. Own GDT and an IDT whose every vector reports itself as unexpected, except the two
;     under test and the spurious vector. Both 8259As are re-initialised (vectors 20h-2Fh)
;     and fully masked, so only the APICs can interrupt.
;  2. Local APIC: IA32_APIC_BASE says enabled at FEE00000h, CPUID says present, the
;     version register is checked, the APIC is software-enabled through the SVR, LINT0 is
;     masked.
;  3. Local APIC timer in periodic mode with vector VEC_TIMER: N interrupts, each found
;     in service in the ISR by its handler and ended with an EOI. The current count and
;     the ESR are checked, the timer is stopped.
;  4. I/O APIC: the version register is checked, redirection entry 2 (ISA IRQ0, the PIT,
;     is wired to pin 2 on PCs: the ACPI MADT's interrupt source override) is programmed
;     edge / active high / fixed / physical destination APIC ID 0 / vector VEC_PIT, PIT
;     channel 0 runs in mode 2, N interrupts arrive through that route.
;
; References: Intel SDM Vol. 3A chapter 10 "Advanced Programmable Interrupt Controller"
; (chapter 11 in editions from 2023 on; the section numbers below are chapter 10's),
; Intel 82093AA I/O APIC datasheet (290566-001) section 3, Intel 8254 and 8259A data
; sheets.

bits 32
org 0x100000

; ---- Constants --------------------------------------------------------------------------

DEBUGCON        equ 0xe9
DEBUG_EXIT      equ 0xf4

; Interrupts counted per source.
N_TICKS         equ 8

; Vectors: each in its own priority class (SDM §10.8.3.1: class = vector bits 7:4).
VEC_TIMER       equ 0x40
VEC_PIT         equ 0x51
; Spurious-interrupt vector. On P6 and Pentium processors bits 3:0 are hardwired to 1
; (SDM §10.9, Figure 10-23), so FFh is valid everywhere.
VEC_SPURIOUS    equ 0xff

; IA32_APIC_BASE (SDM §10.4.4, Figure 10-5): bit 8 BSP, bit 11 global enable, bits 31:12
; the register page.
MSR_APIC_BASE   equ 0x1b
APIC_BASE_EN    equ 1 << 11
; CPUID.01H:EDX bit 9: "APIC On-Chip" (SDM §10.4.2).
CPUID_APIC      equ 1 << 9

; Local APIC registers: offsets from the base (SDM §10.4.1, Table 10-1 "Local APIC
; Register Address Map").
LAPIC           equ 0xfee00000
LAPIC_ID        equ 0x020           ; bits 31:24 APIC ID (Figure 10-6)
LAPIC_VER       equ 0x030           ; Figure 10-7
LAPIC_TPR       equ 0x080           ; Task Priority Register (§10.8.3.1)
LAPIC_EOI       equ 0x0b0           ; write 0 (§10.8.5)
LAPIC_SVR       equ 0x0f0           ; Spurious-Interrupt Vector Register (§10.9)
LAPIC_ISR       equ 0x100           ; ISR bits 31:0; bits 32k+31:32k at + 10h * k
LAPIC_ESR       equ 0x280           ; Error Status Register (§10.5.3)
LAPIC_LVT_TIMER equ 0x320           ; LVT entries (§10.5.1, Figure 10-8)
LAPIC_LVT_LINT0 equ 0x350
LAPIC_TMR_INIT  equ 0x380           ; Initial Count (§10.5.4, Figure 10-11)
LAPIC_TMR_CUR   equ 0x390           ; Current Count
LAPIC_TMR_DIV   equ 0x3e0           ; Divide Configuration (Figure 10-10)

SVR_ENABLE      equ 1 << 8          ; APIC software enable/disable (Figure 10-23)
LVT_MASKED      equ 1 << 16         ; Figure 10-8: mask bit
LVT_PERIODIC    equ 1 << 17         ; timer mode bits 18:17 = 01b: periodic
DIV_BY_16       equ 0x3             ; DCR bits 3,1:0 = 0,11b: divide by 16

; Version register (Figure 10-7): bits 7:0 version, 1xH for an integrated APIC; bits
; 23:16 "Max LVT Entry", the number of LVT entries minus 1. QEMU and v386 both model the
; Pentium 4's xAPIC: version 14h, six entries (timer, thermal, performance, LINT0, LINT1,
; error).
LAPIC_VERSION   equ 0x00050014

; I/O APIC (82093AA datasheet §3.1, Table 2): IOREGSEL at FEC0_xy00h, IOWIN at
; FEC0_xy10h, with x = y = 0 at reset.
IOAPIC          equ 0xfec00000
IOREGSEL        equ 0x00            ; §3.1.1: bits 7:0 select the register IOWIN shows
IOWIN           equ 0x10            ; §3.1.2
; Indirect registers (Table 3 "IOAPIC Registers").
IOAPICVER       equ 0x01            ; §3.2.2: bits 7:0 version, 23:16 max redirection entry
IOREDTBL        equ 0x10            ; §3.2.4: entry n at 10h + 2n (bits 31:0), 11h + 2n (63:32)
; The 82093AA's version register reads 0017_0011h: version 11h, 24 entries (0-23). QEMU
; is run with `-global ioapic.version=0x11` to model that chip (its default is 20h).
IOAPIC_VERSION  equ 0x00170011
; IOREDTBL bits (§3.2.4): 7:0 vector, 10:8 delivery mode (000 fixed), 11 destination mode
; (0 physical), 12 delivery status (read-only), 13 polarity (0 high), 14 remote IRR
; (read-only), 15 trigger mode (0 edge), 16 mask; 63:56 destination (APIC ID).
RTE_DELIVS      equ 1 << 12
RTE_MASKED      equ 1 << 16
PIT_PIN         equ 2

; 8254 PIT: counter 0 and the control word register. Control word 34h: SC = 00 counter 0,
; RW = 11 LSB then MSB, M = 010 mode 2 (rate generator), binary.
PIT_CH0         equ 0x40
PIT_CTRL        equ 0x43
PIT_MODE2       equ 0x34
PIT_DIVISOR     equ 11932           ; 1.193182 MHz / 11932: 100 Hz

; 8259A: command and data ports of the master and the slave.
PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xa0
PIC2_DATA       equ 0xa1

; LAPIC timer: divide by 16 and this initial count. v386's APIC clock is 100 MHz
; (~10 ms per interrupt), QEMU's 1 GHz: the test counts interrupts, not time.
TIMER_COUNT     equ 0x10000
; The one-shot test: a short count (2048 APIC clocks: 20 us on v386, 2 us on QEMU), and
; a busy loop of 2 x BUSY_LOOPS instructions that outlasts it on both.
ONESHOT_COUNT   equ 128
BUSY_LOOPS      equ 5000

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

%include "multiboot.inc"

; ---- Entry ------------------------------------------------------------------------------

entry:
    ; Multiboot: EAX = 2BADB002h, flat 32-bit segments, interrupts off, GDTR undefined.
    mov esp, stack_top
    cld
    mov esi, msg_magic
    cmp eax, 0x2BADB002
    jne fail

    lgdt [gdt_desc]
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax

    call build_idt
    lidt [idt_desc]
    call mask_pics

    ; ---- Local APIC: present, enabled, where expected ----
    mov esi, msg_cpuid
    mov eax, 1
    cpuid
    test edx, CPUID_APIC
    jz fail
    mov esi, msg_apic_base
    mov ecx, MSR_APIC_BASE
    rdmsr
    test eax, APIC_BASE_EN
    jz fail
    and eax, 0xfffff000
    cmp eax, LAPIC
    jne fail

    mov esi, msg_lapic_ver
    call puts
    mov eax, [LAPIC + LAPIC_VER]
    call put_hex32
    call newline
    mov esi, msg_lapic_ver_bad
    cmp eax, LAPIC_VERSION
    jne fail

    ; Software-enable with the spurious vector; accept every priority class; LINT0 (the
    ; 8259A's virtual wire) masked.
    mov dword [LAPIC + LAPIC_SVR], SVR_ENABLE | VEC_SPURIOUS
    mov dword [LAPIC + LAPIC_TPR], 0
    mov dword [LAPIC + LAPIC_LVT_LINT0], LVT_MASKED
    mov esi, msg_svr
    mov eax, [LAPIC + LAPIC_SVR]
    and eax, 0x1ff
    cmp eax, SVR_ENABLE | VEC_SPURIOUS
    jne fail

    ; ---- Local APIC timer, periodic ----
    mov dword [LAPIC + LAPIC_TMR_DIV], DIV_BY_16
    mov dword [LAPIC + LAPIC_LVT_TIMER], LVT_PERIODIC | VEC_TIMER
    mov dword [LAPIC + LAPIC_TMR_INIT], TIMER_COUNT
    ; The countdown has started: 0 < current count <= initial count.
    mov esi, msg_timer_count
    mov eax, [LAPIC + LAPIC_TMR_CUR]
    test eax, eax
    jz fail
    cmp eax, TIMER_COUNT
    ja fail

    mov ebx, timer_ticks
    mov ecx, N_TICKS
    call wait_ticks

    ; Stop it: masked, and an initial count of 0 stops the timer (§10.5.4).
    mov dword [LAPIC + LAPIC_LVT_TIMER], LVT_MASKED | LVT_PERIODIC | VEC_TIMER
    mov dword [LAPIC + LAPIC_TMR_INIT], 0
    mov esi, msg_timer_stop
    cmp dword [LAPIC + LAPIC_TMR_CUR], 0
    jne fail

    mov esi, msg_isr_timer
    cmp byte [timer_isr_missing], 0
    jne fail
    ; After the last EOI nothing of the class is in service.
    test dword [LAPIC + LAPIC_ISR + (VEC_TIMER / 32) * 0x10], 1 << (VEC_TIMER % 32)
    jnz fail

    ; §10.5.3: write the ESR before reading it; no error may have been logged.
    mov dword [LAPIC + LAPIC_ESR], 0
    mov esi, msg_esr
    cmp dword [LAPIC + LAPIC_ESR], 0
    jne fail

    mov esi, msg_timer_ok
    call puts
    mov al, VEC_TIMER
    call put_hex8
    call newline

    ; ---- Local APIC timer, one-shot, expiring while the CPU is busy ----
    ; Timer mode 00b: one-shot (Figure 10-8). The interrupt is taken during the busy loop,
    ; or at the latest by the HLT after it.
    mov dword [timer_ticks], 0
    mov dword [LAPIC + LAPIC_LVT_TIMER], VEC_TIMER
    sti
    mov dword [LAPIC + LAPIC_TMR_INIT], ONESHOT_COUNT
    mov ecx, BUSY_LOOPS
.busy:
    dec ecx
    jnz .busy
    mov ebx, timer_ticks
    mov ecx, 1
    call wait_ticks
    ; Expired for good: the current count stays 0 (§10.5.4).
    mov esi, msg_oneshot
    cmp dword [LAPIC + LAPIC_TMR_CUR], 0
    jne fail
    cmp byte [timer_isr_missing], 0
    jne fail
    mov dword [LAPIC + LAPIC_LVT_TIMER], LVT_MASKED | VEC_TIMER
    mov esi, msg_oneshot_ok
    call puts

    ; ---- I/O APIC ----
    mov esi, msg_ioapic_ver
    call puts
    mov eax, IOAPICVER
    call ioapic_read
    call put_hex32
    call newline
    mov esi, msg_ioapic_ver_bad
    cmp eax, IOAPIC_VERSION
    jne fail

    ; Physical destination 0 must be this CPU's APIC.
    mov esi, msg_lapic_id
    test dword [LAPIC + LAPIC_ID], 0xff000000
    jnz fail

    ; Redirection entry 2: destination first (high half), then the low half, which
    ; unmasks it.
    mov eax, IOREDTBL + 2 * PIT_PIN + 1
    mov edx, 0 << 24                    ; destination APIC ID 0 (bits 63:56)
    call ioapic_write
    mov eax, IOREDTBL + 2 * PIT_PIN
    mov edx, VEC_PIT                    ; fixed, physical, active high, edge, unmasked
    call ioapic_write
    mov esi, msg_rte
    mov eax, IOREDTBL + 2 * PIT_PIN
    call ioapic_read
    and eax, ~RTE_DELIVS
    cmp eax, VEC_PIT
    jne fail
    mov eax, IOREDTBL + 2 * PIT_PIN + 1
    call ioapic_read
    cmp eax, 0
    jne fail

    ; PIT counter 0, mode 2, 100 Hz.
    mov al, PIT_MODE2
    out PIT_CTRL, al
    mov al, PIT_DIVISOR & 0xff
    out PIT_CH0, al
    mov al, PIT_DIVISOR >> 8
    out PIT_CH0, al

    mov ebx, pit_ticks
    mov ecx, N_TICKS
    call wait_ticks

    ; Mask the entry again.
    mov eax, IOREDTBL + 2 * PIT_PIN
    mov edx, RTE_MASKED | VEC_PIT
    call ioapic_write

    mov esi, msg_isr_pit
    cmp byte [pit_isr_missing], 0
    jne fail
    test dword [LAPIC + LAPIC_ISR + (VEC_PIT / 32) * 0x10], 1 << (VEC_PIT % 32)
    jnz fail
    mov dword [LAPIC + LAPIC_ESR], 0
    mov esi, msg_esr
    cmp dword [LAPIC + LAPIC_ESR], 0
    jne fail

    mov esi, msg_pit_ok
    call puts
    mov al, VEC_PIT
    call put_hex8
    call newline

    mov esi, msg_pass
    call puts
    mov al, 0
    out DEBUG_EXIT, al
    cli
    hlt

; Wait with interrupts on until the counter at [EBX] reaches ECX. A source that never
; interrupts hangs here; the test harness's budget or timeout ends the run, and the last
; line printed names the step.
wait_ticks:
    sti
.wait:
    cmp [ebx], ecx
    jae .done
    hlt
    jmp .wait
.done:
    cli
    ret

; I/O APIC indirect access: register EAX; read into EAX, or write EDX.
ioapic_read:
    mov [IOAPIC + IOREGSEL], eax
    mov eax, [IOAPIC + IOWIN]
    ret

ioapic_write:
    mov [IOAPIC + IOREGSEL], eax
    mov [IOAPIC + IOWIN], edx
    ret

; ---- 8259A pair: re-initialise (vectors 20h-2Fh) and mask every input ------------------

mask_pics:
    mov al, 0x11                        ; ICW1: edge, cascade, ICW4 follows
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, 0x20                        ; ICW2: vector bases
    out PIC1_DATA, al
    mov al, 0x28
    out PIC2_DATA, al
    mov al, 0x04                        ; ICW3: slave on master IR2
    out PIC1_DATA, al
    mov al, 0x02                        ; ICW3: slave ID 2
    out PIC2_DATA, al
    mov al, 0x01                        ; ICW4: 8086 mode
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xff                        ; OCW1: all masked
    out PIC1_DATA, al
    out PIC2_DATA, al
    ret

; ---- Interrupt handlers -----------------------------------------------------------------

; The local APIC timer: its vector must be in service (ISR) while the handler runs.
timer_isr:
    test dword [LAPIC + LAPIC_ISR + (VEC_TIMER / 32) * 0x10], 1 << (VEC_TIMER % 32)
    jnz .in_service
    mov byte [timer_isr_missing], 1
.in_service:
    inc dword [timer_ticks]
    mov dword [LAPIC + LAPIC_EOI], 0
    iret

; The PIT through I/O APIC pin 2.
pit_isr:
    test dword [LAPIC + LAPIC_ISR + (VEC_PIT / 32) * 0x10], 1 << (VEC_PIT % 32)
    jnz .in_service
    mov byte [pit_isr_missing], 1
.in_service:
    inc dword [pit_ticks]
    mov dword [LAPIC + LAPIC_EOI], 0
    iret

; A spurious interrupt is not in service: no EOI (§10.9).
spurious_isr:
    iret

; Every other vector: one 16-byte stub each, pushing its number.
unexpected_stubs:
%assign v 0
%rep 256
    push strict dword v
    jmp strict near unexpected
    align 16, db 0xcc
%assign v v + 1
%endrep

unexpected:
    mov esi, msg_unexpected
    call puts
    pop eax
    call put_hex8
    call newline
    mov al, 1
    out DEBUG_EXIT, al
    cli
    hlt

; ---- IDT --------------------------------------------------------------------------------

; 32-bit interrupt gates (SDM Vol. 3A §6.11, Figure 6-2): offset 15:0, selector 08h,
; type 8Eh (present, DPL 0, 32-bit interrupt gate), offset 31:16.
build_idt:
    xor ecx, ecx
.next:
    mov eax, ecx
    shl eax, 4
    add eax, unexpected_stubs
    cmp ecx, VEC_TIMER
    jne .not_timer
    mov eax, timer_isr
.not_timer:
    cmp ecx, VEC_PIT
    jne .not_pit
    mov eax, pit_isr
.not_pit:
    cmp ecx, VEC_SPURIOUS
    jne .not_spurious
    mov eax, spurious_isr
.not_spurious:
    mov edx, eax
    and eax, 0xffff
    or eax, 0x08 << 16
    mov [idt + ecx * 8], eax
    and edx, 0xffff0000
    or edx, 0x8e00
    mov [idt + ecx * 8 + 4], edx
    inc ecx
    cmp ecx, 256
    jb .next
    ret

; ---- Output -----------------------------------------------------------------------------

fail:
    push esi
    mov esi, msg_fail
    call puts
    pop esi
    call puts
    call newline
    mov al, 1
    out DEBUG_EXIT, al
    cli
    hlt

; Registers are kept.
newline:
    push eax
    mov al, 10
    call putc
    pop eax
    ret

putc:
    out DEBUGCON, al
    ret

puts:
    push eax
.next:
    lodsb
    test al, al
    jz .done
    call putc
    jmp .next
.done:
    pop eax
    ret

; EAX as 8 hex digits (EAX kept).
put_hex32:
    push eax
    shr eax, 16
    call put_hex16
    pop eax
put_hex16:
    push eax
    shr eax, 8
    call put_hex8
    pop eax
; AL as 2 hex digits.
put_hex8:
    push eax
    shr al, 4
    call put_nibble
    pop eax
    push eax
    call put_nibble
    pop eax
    ret
put_nibble:
    and al, 0xf
    add al, '0'
    cmp al, '9'
    jbe putc
    add al, 'a' - '0' - 10
    jmp putc

; ---- Data -------------------------------------------------------------------------------

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: code, base 0, 4 GiB, 32-bit
    dq 0x00cf92000000ffff               ; 10h: data, base 0, 4 GiB
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt

msg_magic:          db "multiboot magic", 0
msg_cpuid:          db "CPUID.01H:EDX.APIC is clear", 0
msg_apic_base:      db "IA32_APIC_BASE: not enabled at FEE00000h", 0
msg_lapic_ver:      db "LAPIC version ", 0
msg_lapic_ver_bad:  db "LAPIC version register", 0
msg_svr:            db "LAPIC SVR read-back", 0
msg_timer_count:    db "LAPIC timer current count after start", 0
msg_timer_stop:     db "LAPIC timer current count after stop", 0
msg_isr_timer:      db "LAPIC timer vector not in service in its handler, or still after EOI", 0
msg_esr:            db "LAPIC ESR logged an error", 0
msg_timer_ok:       db "LAPIC timer: 8 periodic interrupts on vector ", 0
msg_oneshot:        db "LAPIC one-shot timer", 0
msg_oneshot_ok:     db "LAPIC timer: one-shot interrupt", 10, 0
msg_ioapic_ver:     db "IOAPIC version ", 0
msg_ioapic_ver_bad: db "IOAPIC version register", 0
msg_lapic_id:       db "LAPIC ID is not 0", 0
msg_rte:            db "IOAPIC redirection entry 2 read-back", 0
msg_isr_pit:        db "PIT vector not in service in its handler, or still after EOI", 0
msg_pit_ok:         db "IOAPIC pin 2 (PIT, ISA IRQ0): 8 interrupts on vector ", 0
msg_unexpected:     db "FAIL: unexpected interrupt or exception, vector ", 0
msg_pass:           db "PASS", 10, 0
msg_fail:           db "FAIL: ", 0

%if N_TICKS != 8
%error "the messages say 8 interrupts"
%endif

file_end:

; ---- bss --------------------------------------------------------------------------------

absolute file_end
alignb 8
idt:                resb 256 * 8
timer_ticks:        resd 1
pit_ticks:          resd 1
timer_isr_missing:  resb 1
pit_isr_missing:    resb 1
alignb 16
                    resb 8192
stack_top:
bss_end:
