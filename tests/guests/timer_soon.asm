; timer_soon.asm — does a timer programmed to fire sooner than the VMM's slice would end
; interrupt the guest on time?
;
; A Multiboot v1 kernel (flat image at 1 MiB, the a.out-kludge header of multiboot.inc),
; built by tests/vmm_timer.rs with
;
;   nasm -f bin -I tests/guests/ -o timer_soon.img tests/guests/timer_soon.asm
;
; What it does: its own GDT and an IDT with IRQ0 at vector 20h; both 8259A PICs
; re-initialised (vectors 20h-2Fh, every IRQ but IRQ0 masked); then PIT counter 0 in mode 2
; with a count of 100 (100 / 1.193182 MHz = 83.8 us, the first IRQ0 that far ahead); STI,
; and a loop of three instructions (inc, cmp, je) counting until IRQ0's handler sets a flag.
; Then Linux's PIT calibration of the TSC (counter 2 for 10 ms, polling port 61h), and the
; TSC ticks between two IRQ0s spent in HLT. It writes the loop count and the three TSC
; deltas (RDTSC, SDM Vol. 2B) on the debug console (port E9h) as eight-digit hex numbers
; and a newline, and stops with CLI; HLT.
;
; Before the PIT is programmed the VM has no device event, so the VMM sizes its slice by
; the quantum alone (100,000 instructions by default, 1 ms at 10 ns an instruction); the
; PIT's deadline falls inside it. A VMM that lets the slice run to its end delivers IRQ0
; late, and the count shows it: about 2,800 loops when IRQ0 comes on time, about 33,000
; when it comes at the end of the slice.
;
; References: Intel SDM Vol. 3A §3.4.5 "Segment Descriptors", §6.11 "IDT Descriptors"
; (Figure 6-2, a 32-bit interrupt gate); Intel 8259A datasheet (ICW1-ICW4, OCW1, OCW2);
; Intel 8254 datasheet (control word: counter 0, LSB then MSB, mode 2, binary).

bits 32
org 0x100000

CODE_SEL        equ 0x08
DATA_SEL        equ 0x10
PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xa0
PIC2_DATA       equ 0xa1
PIC_EOI         equ 0x20
VEC_IRQ0        equ 0x20
PIT_CH0         equ 0x40
PIT_CTRL        equ 0x43
PIT_MODE2       equ 0x34
PIT_COUNT       equ 100
DEBUGCON        equ 0xe9

%include "multiboot.inc"

entry:
    lgdt [gdtr]
    jmp CODE_SEL:.flat
.flat:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, stack_top

    ; IRQ0's gate: offset, selector, P = 1, DPL = 0, type 0Eh (32-bit interrupt gate).
    mov eax, irq0
    mov [idt + VEC_IRQ0 * 8], ax
    mov word [idt + VEC_IRQ0 * 8 + 2], CODE_SEL
    mov word [idt + VEC_IRQ0 * 8 + 4], 0x8e00
    shr eax, 16
    mov [idt + VEC_IRQ0 * 8 + 6], ax
    lidt [idtr]

    ; ICW1 (edge, cascade, ICW4 needed), ICW2 (vector base), ICW3, ICW4 (8086 mode).
    mov al, 0x11
    out PIC1_CMD, al
    out PIC2_CMD, al
    mov al, VEC_IRQ0
    out PIC1_DATA, al
    mov al, VEC_IRQ0 + 8
    out PIC2_DATA, al
    mov al, 4
    out PIC1_DATA, al
    mov al, 2
    out PIC2_DATA, al
    mov al, 1
    out PIC1_DATA, al
    out PIC2_DATA, al
    ; OCW1: only IRQ0 unmasked.
    mov al, 0xfe
    out PIC1_DATA, al
    mov al, 0xff
    out PIC2_DATA, al

    ; The PIT: the deadline is set by the count's MSB.
    mov al, PIT_MODE2
    out PIT_CTRL, al
    mov al, PIT_COUNT & 0xff
    out PIT_CH0, al
    mov al, PIT_COUNT >> 8
    out PIT_CH0, al

    rdtsc
    mov [tsc0], eax
    xor ecx, ecx
    sti
.spin:
    inc ecx
    cmp byte [ticked], 0
    je .spin
    cli

    mov edx, ecx
    call print_hex
    mov al, ' '
    out DEBUGCON, al
    mov edx, [tsc1]
    sub edx, [tsc0]
    call print_hex
    mov al, ' '
    out DEBUGCON, al

    ; Linux's PIT calibration of the TSC (arch/x86/kernel/tsc.c, pit_calibrate_tsc): PIT
    ; counter 2 in mode 0 with its gate on (port 61h bit 0, the speaker off), a count of
    ; 11932 (10 ms), then RDTSC in a loop until OUT2 (port 61h bit 5) goes high.
    in al, 0x61
    and al, 0xfd
    or al, 0x01
    out 0x61, al
    mov al, 0xb0
    out PIT_CTRL, al
    mov al, 11932 & 0xff
    out 0x42, al
    mov al, 11932 >> 8
    out 0x42, al
    rdtsc
    mov [tsc0], eax
.poll:
    rdtsc
    mov [tsc1], eax
    in al, 0x61
    test al, 0x20
    jz .poll
    mov edx, [tsc1]
    sub edx, [tsc0]
    call print_hex
    mov al, ' '
    out DEBUGCON, al

    ; The TSC across idle time: the ticks between two IRQ0s of counter 0 (still in mode 2,
    ; one every 100 PIT clocks, 83.8 us) while the processor waits in HLT. The TSC runs at
    ; a constant rate through HLT (SDM Vol. 3B §18.17, "Time-Stamp Counter").
    ; (The first IRQ0 is the one held while interrupts were off: the count starts at the
    ; second.)
    mov byte [ticked], 0
    sti
.wait0:
    hlt
    cmp byte [ticked], 0
    je .wait0
    mov byte [ticked], 0
.wait1:
    hlt
    cmp byte [ticked], 0
    je .wait1
    mov eax, [tsc1]
    mov [tsc0], eax
    mov byte [ticked], 0
.wait2:
    hlt
    cmp byte [ticked], 0
    je .wait2
    cli
    mov edx, [tsc1]
    sub edx, [tsc0]
    call print_hex
    mov al, 10
    out DEBUGCON, al
    hlt

; EDX as eight hex digits on the debug console, most significant first.
print_hex:
    mov ebx, 8
.digit:
    rol edx, 4
    mov eax, edx
    and eax, 0xf
    mov al, [hex + eax]
    out DEBUGCON, al
    dec ebx
    jnz .digit
    ret

irq0:
    push eax
    push edx
    rdtsc
    mov [tsc1], eax
    pop edx
    mov byte [ticked], 1
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop eax
    iret

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: code, base 0, 4 GiB, DPL 0
    dq 0x00cf92000000ffff               ; 10h: data, base 0, 4 GiB, DPL 0
gdtr:
    dw 3 * 8 - 1
    dd gdt
idtr:
    dw (VEC_IRQ0 + 1) * 8 - 1
    dd idt
hex:            db "0123456789abcdef"

align 4
file_end:

; ---- BSS (zeroed by the loader: Multiboot §3.1.3 bss_end_addr) ---------------------------

absolute file_end
alignb 8
idt:            resb (VEC_IRQ0 + 1) * 8
ticked:         resb 1
alignb 4
tsc0:           resd 1
tsc1:           resd 1
alignb 16
                resb 1024
stack_top:
bss_end:
