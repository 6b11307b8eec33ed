; vmdemo_sensitive.asm — a demo guest for the VMM's live view: the classic sensitive
; instructions, and what a guest kernel sees when it runs them inside a V386 VM.
;
; A Multiboot v1 kernel (a flat image at 1 MiB whose header carries the a.out-kludge
; address fields, Multiboot Specification 0.6.96 §3.1.3), built with
;
;   nasm -f bin -I tests/guests/ -o vmdemo_sensitive.img tests/guests/vmdemo_sensitive.asm
;
; by tests/vmm_demo.rs and scripts/build-web.sh, and started as a VM's kernel
; (`MachineSpec { kernel: .. }`), without a BIOS.
;
; Robin & Irvine's sensitive-but-unprivileged instructions (docs/v386.md §3.3, Table 3-1)
; read state a classic VMM must virtualise: on a classic VMM the guest kernel runs at
; ring 1 and SGDT, SIDT, SLDT, STR, SMSW, PUSHF and MOV r,CS show the VMM's values
; without trapping. In V386 mode the processor runs on the guest's own copy of that state
; (§5.2, §5.3), so they show the guest's values and exit to nobody. This kernel loads its
; own GDT, IDT, LDT and TSS, and ten times a second (every second tick of the PIT at
; 20 Hz) runs:
;   SGDT, SIDT, SMSW, STR, SLDT, MOV r,CS, PUSHF (after STI and after CLI)  — no exit;
;   CPUID leaf 0 (the vendor), 8386_0000h (the V386 signature) and 8386_0001h (the
;     feature word: the VMM reports EDX = 1, PSI only, so a guest never tries to nest,
;     §2, §5.9)                                                              — CPUID exits;
;   RDTSC (the delta since the last sample, back to back, and around a CPUID) — no exit
;     (the VMM does not intercept RDTSC, Table 5-1);
;   VCALL with EAX = 0 (the VMM's version, 386h)                             — a VCALL exit;
; and shows the results on the VGA text screen (80x25 at B8000h). Every second it sends a
; short string to the VM's debug console with VCALL EAX = 1 (putchar BL, one exit per
; byte) and writes a summary line on COM1 ("sensitive: N s ...", polling LSR bit 5).
;
; Exits under the VMM: CPUID, VCALL, IO (the PICs, the PIT, COM1, the CRTC) and HLT (its
; work takes microseconds of every 100 ms, so the preemption timer seldom ends one of its
; turns while it runs). Nothing depends on the host's
; clock: under deterministic time a run is the same every time (the TSC counts the
; machine's retired instructions).
;
; On a processor not in V386 mode VCALL is #UD (§7.2): the #UD handler steps over it and
; the screen says so, so the kernel also runs on the bare machine. Every other exception
; prints the vector, error code and EIP on the last screen row and on COM1 and stops
; with CLI; HLT (the VMM ends the VM as a dead halt), so a fault never escalates to a
; triple fault.
;
; References: Intel SDM Vol. 2 (SGDT, SIDT, SLDT, STR, SMSW, PUSHF, CPUID, RDTSC); Vol. 3A
; §3.4.5 "Segment Descriptors", §3.5 "System Descriptor Types" (LDT descriptor),
; §7.2.1 "Task-State Segment (TSS)", §7.2.2 "TSS Descriptor", §6.10-§6.13 (IDT, gates,
; exception handling, error codes); Intel 8259A and 8254 datasheets; National
; Semiconductor PC16550D datasheet §8; IBM VGA Technical Reference (text mode 3, CRTC
; register 0Ah bit 5 "cursor off"); docs/v386.md §2, §3.3, §5, §7.2, §8.

bits 32
cpu 686
org 0x100000

; ---- Constants --------------------------------------------------------------------------

LOAD_ADDR       equ 0x100000
; The absolute address of a label (a scalar nasm can shift and mask).
%define ABS(x) ((x) - $$ + LOAD_ADDR)

CODE_SEL        equ 0x08
DATA_SEL        equ 0x10
LDT_SEL         equ 0x18
TSS_SEL         equ 0x20

PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xa0
PIC2_DATA       equ 0xa1
PIC_EOI         equ 0x20                ; OCW2: non-specific EOI
VEC_IRQ0        equ 0x20
VEC_IRQ8        equ 0x28

; 8254 counter 0, mode 2, binary, LSB then MSB (control word 34h) at 20 Hz. A sample every
; SAMPLE_EVERY ticks: 10 samples a second.
PIT_CH0         equ 0x40
PIT_CTRL        equ 0x43
PIT_MODE2       equ 0x34
HZ              equ 20
PIT_DIVISOR     equ 59659               ; 1.193182 MHz / 59659 = 20.000 Hz
SAMPLE_EVERY    equ 2

COM1            equ 0x3f8
UART_THR        equ 0
UART_IER        equ 1
UART_FCR        equ 2
UART_LCR        equ 3
UART_MCR        equ 4
UART_LSR        equ 5
LCR_DLAB        equ 0x80
LCR_8N1         equ 0x03
FCR_ENABLE      equ 0x07
MCR_DTR_RTS     equ 0x03
LSR_THRE        equ 0x20
THRE_TRIES      equ 100000

VGA             equ 0xb8000
COLS            equ 80
ROWS            equ 25
%define CELL(r, c) (VGA + ((r) * COLS + (c)) * 2)
CRTC_INDEX      equ 0x3d4
CRTC_DATA       equ 0x3d5
CRTC_CUR_START  equ 0x0a
CURSOR_OFF      equ 0x20

A_TITLE         equ 0x1f
A_TEXT          equ 0x07
A_LABEL         equ 0x03
A_VALUE         equ 0x0e
A_GOOD          equ 0x0a
A_NOTE          equ 0x08
A_FATAL         equ 0x4f

; CPUID leaves of the V386 extension (docs/v386.md §2).
V386_LEAF       equ 0x83860000
V386_SIGNATURE  equ 0x36383356          ; "V386"
FEAT_PSI        equ 1 << 0
FEAT_V386       equ 1 << 1

; VCALL (0F 0C) and the VMM's call numbers (src/vmm/interp.rs `hypercall`).
%macro VCALL 0
    db 0x0f, 0x0c
%endmacro
HC_VERSION      equ 0
HC_PUTCHAR      equ 1

; EFLAGS.IF (SDM Vol. 3A §2.3).
EFLAGS_IF       equ 1 << 9

; PUTS "text": the string at EDI in attribute BL (the string sits in the code, after a
; CALL that pushes its address).
%macro PUTS 1
    call %%after
    db %1, 0
%%after:
    pop esi
    call vga_puts
%endmacro
; HEX value, digits: at EDI in attribute BL.
%macro HEX 2
    mov eax, %1
    mov ecx, %2
    call vga_hex
%endmacro

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

%include "multiboot.inc"

; ---- Entry ------------------------------------------------------------------------------

entry:
    cli
    mov esp, stack_top
    cld
    ; The loader's GDTR, before ours replaces it.
    sgdt [entry_gdtr]
    lgdt [gdt_desc]
    jmp CODE_SEL:.reload
.reload:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    ; Our own LDT and task register: SLDT and STR should give these selectors back.
    mov ax, LDT_SEL
    lldt ax
    mov ax, TSS_SEL
    ltr ax

    call build_idt
    lidt [idt_desc]
    call pic_init
    call pit_init
    call com_init
    call screen_init

    mov esi, msg_banner
    call com_puts

    rdtsc
    mov [tsc_lo], eax
    mov [tsc_hi], edx
    sti

; Idle in HLT; after every SAMPLE_EVERY-th tick take a sample and redraw, and after every
; second greet the VMM's debug console and write a line on COM1. (CLI around the test and
; STI;HLT close the race with the tick, as in vmdemo_clock.asm.)
main_loop:
    cli
    mov eax, [ticks]
    cmp eax, [seen]
    jne .tick
    sti
    hlt
    jmp main_loop
.tick:
    sti
    mov [seen], eax
    xor edx, edx
    mov ecx, SAMPLE_EVERY
    div ecx
    cmp eax, [sampled]
    je main_loop
    mov [sampled], eax
    call sample
    call draw
    mov eax, [seen]
    xor edx, edx
    mov ecx, HZ
    div ecx
    cmp eax, [reported]
    je main_loop
    mov [reported], eax
    call greet
    call summary
    jmp main_loop

; ---- The sample -------------------------------------------------------------------------

sample:
    pushad
    inc dword [samples]
    ; Descriptor-table registers, MSW, task register, LDTR, CS: the guest's own copies.
    sgdt [r_gdtr]
    sidt [r_idtr]
    smsw ax
    movzx eax, ax
    mov [r_msw], eax
    str ax
    movzx eax, ax
    mov [r_tr], eax
    sldt ax
    movzx eax, ax
    mov [r_ldtr], eax
    mov ax, cs
    movzx eax, ax
    mov [r_cs], eax
    ; EFLAGS with interrupts on, and inside a CLI ... STI pair.
    pushfd
    pop eax
    mov [r_fl_sti], eax
    cli
    pushfd
    pop eax
    sti
    mov [r_fl_cli], eax

    ; CPUID (each one exits to the VMM).
    xor eax, eax
    cpuid
    mov [r_max_leaf], eax
    mov [r_vendor], ebx
    mov [r_vendor + 4], edx
    mov [r_vendor + 8], ecx
    mov eax, V386_LEAF
    cpuid
    mov [r_sig], ebx
    mov eax, V386_LEAF + 1
    cpuid
    mov [r_feat], edx

    ; RDTSC: since the last sample, back to back, and around a CPUID.
    rdtsc
    mov esi, eax
    mov edi, edx
    sub eax, [tsc_lo]
    sbb edx, [tsc_hi]
    mov [r_tsc_delta], eax
    mov [tsc_lo], esi
    mov [tsc_hi], edi
    rdtsc
    mov esi, eax
    rdtsc
    sub eax, esi
    mov [r_tsc_b2b], eax
    rdtsc
    mov esi, eax
    xor eax, eax
    cpuid
    rdtsc
    sub eax, esi
    mov [r_tsc_cpuid], eax

    ; VCALL 0: the VMM's version (EAX = -1 from the #UD handler outside a VM).
    mov eax, HC_VERSION
    VCALL
    mov [r_version], eax
    popad
    ret

; Every second: "hello from vmdemo_sensitive, second N" and a newline to the VM's debug
; console, one VCALL EAX = 1 per byte.
greet:
    pushad
    cmp byte [vcall_ud], 0
    jne .done
    mov esi, msg_hello
    call vcall_puts
    mov eax, [reported]
    call fmt_dec
    call vcall_puts
    mov esi, msg_newline
    call vcall_puts
.done:
    popad
    ret

; The NUL-terminated string at ESI, byte by byte, through VCALL PUTCHAR.
vcall_puts:
    push eax
    push ebx
    push esi
.next:
    lodsb
    test al, al
    jz .done
    movzx ebx, al
    mov eax, HC_PUTCHAR
    VCALL
    inc dword [putchars]
    jmp .next
.done:
    pop esi
    pop ebx
    pop eax
    ret

; "sensitive: N s, SGDT base/limit, CPUID vendor, VCALL version, samples" on COM1.
summary:
    pushad
    mov esi, msg_sum_1
    call com_puts
    mov eax, [reported]
    call fmt_dec
    call com_puts
    mov esi, msg_sum_2
    call com_puts
    mov eax, [r_gdtr + 2]
    mov ecx, 8
    call fmt_hex
    call com_puts
    mov al, '/'
    call com_putc
    movzx eax, word [r_gdtr]
    mov ecx, 4
    call fmt_hex
    call com_puts
    mov esi, msg_sum_3
    call com_puts
    mov esi, r_vendor
    call com_puts
    mov esi, msg_sum_4
    call com_puts
    mov eax, [r_version]
    mov ecx, 8
    call fmt_hex
    call com_puts
    mov esi, msg_sum_5
    call com_puts
    mov eax, [samples]
    call fmt_dec
    call com_puts
    mov esi, msg_crlf
    call com_puts
    popad
    ret

; ---- Drawing ----------------------------------------------------------------------------

screen_init:
    pushad
    mov edi, VGA
    mov eax, (A_TEXT << 8) | ' '
    mov ecx, COLS * ROWS
    rep stosw
    mov edi, CELL(0, 0)
    mov eax, (A_TITLE << 8) | ' '
    mov ecx, COLS
    rep stosw
    mov bl, A_TITLE
    mov edi, CELL(0, 1)
    PUTS "v386 VM demo: sensitive instructions"
    mov edi, CELL(0, 54)
    PUTS "exits: CPUID VCALL IO HLT"

    mov bl, A_TEXT
    mov edi, CELL(1, 1)
    PUTS "This guest's ring 0 reads its own state. In a V386 VM none of these trap;"
    mov edi, CELL(2, 1)
    PUTS "only CPUID, VCALL, port I/O and HLT exit to the VMM (docs/v386.md 5.3, 5.4)."

    mov bl, A_LABEL
    mov edi, CELL(4, 1)
    PUTS "SGDT"
    mov edi, CELL(6, 1)
    PUTS "SIDT"
    mov edi, CELL(7, 1)
    PUTS "SMSW"
    mov edi, CELL(7, 22)
    PUTS "STR"
    mov edi, CELL(7, 33)
    PUTS "SLDT"
    mov edi, CELL(7, 45)
    PUTS "MOV r,CS"
    mov edi, CELL(8, 1)
    PUTS "PUSHF"
    mov edi, CELL(10, 1)
    PUTS "CPUID"
    mov edi, CELL(12, 1)
    PUTS "RDTSC"
    mov edi, CELL(14, 1)
    PUTS "VCALL"
    mov edi, CELL(16, 1)
    PUTS "Samples"
    mov edi, CELL(16, 50)
    PUTS "Seconds"

    mov bl, A_NOTE
    mov edi, CELL(18, 1)
    PUTS "On a classic VMM the guest kernel runs at ring 1 and these do not trap either:"
    mov edi, CELL(19, 1)
    PUTS "SGDT, SIDT, STR and SLDT show the VMM's tables, SMSW the real CR0, PUSHF IF=1"
    mov edi, CELL(20, 1)
    PUTS "after CLI, MOV r,CS an RPL of 1 (Robin & Irvine; docs/v386.md 3.3). V386 runs"
    mov edi, CELL(21, 1)
    PUTS "the guest on a full copy of that state (5.2): they are right without an exit."
    mov edi, CELL(23, 1)
    PUTS "Ten samples a second (PIT 20 Hz, IRQ0); a line on COM1 every second."

    mov dx, CRTC_INDEX
    mov al, CRTC_CUR_START
    out dx, al
    mov dx, CRTC_DATA
    mov al, CURSOR_OFF
    out dx, al
    popad
    ret

; The values of the last sample.
draw:
    pushad
    ; Row 4-5: SGDT now, the LGDT operand, the loader's GDTR at entry.
    mov bl, A_VALUE
    mov edi, CELL(4, 9)
    mov esi, r_gdtr
    call show_dtr
    mov bl, A_TEXT
    PUTS "   loaded by LGDT: "
    mov esi, gdt_desc
    call show_dtr
    mov edi, CELL(5, 9)
    mov bl, A_NOTE
    PUTS "at entry (the Multiboot loader's GDT): "
    mov esi, entry_gdtr
    call show_dtr

    ; Row 6: SIDT and the LIDT operand.
    mov bl, A_VALUE
    mov edi, CELL(6, 9)
    mov esi, r_idtr
    call show_dtr
    mov bl, A_TEXT
    PUTS "   loaded by LIDT: "
    mov esi, idt_desc
    call show_dtr

    ; Row 7: SMSW, STR, SLDT, CS.
    mov bl, A_VALUE
    mov edi, CELL(7, 9)
    HEX [r_msw], 4
    mov bl, A_TEXT
    PUTS " (PE="
    mov eax, [r_msw]
    and eax, 1
    call vga_bit
    PUTS ")"
    mov bl, A_VALUE
    mov edi, CELL(7, 26)
    HEX [r_tr], 4
    mov edi, CELL(7, 38)
    HEX [r_ldtr], 4
    mov edi, CELL(7, 54)
    HEX [r_cs], 4
    mov bl, A_TEXT
    PUTS " (RPL "
    mov eax, [r_cs]
    and eax, 3
    call vga_bit
    PUTS ")"

    ; Row 8: PUSHF after STI and after CLI.
    mov edi, CELL(8, 9)
    mov bl, A_VALUE
    HEX [r_fl_sti], 8
    mov bl, A_TEXT
    PUTS " after STI (IF="
    mov eax, [r_fl_sti]
    call vga_if
    PUTS ")   "
    mov bl, A_VALUE
    HEX [r_fl_cli], 8
    mov bl, A_TEXT
    PUTS " after CLI (IF="
    mov eax, [r_fl_cli]
    call vga_if
    PUTS ")"

    ; Rows 10-11: CPUID.
    mov edi, CELL(10, 9)
    mov bl, A_TEXT
    PUTS "0: '"
    mov bl, A_VALUE
    mov esi, r_vendor
    mov ecx, 12
    call vga_field
    mov bl, A_TEXT
    PUTS "' max "
    mov bl, A_VALUE
    HEX [r_max_leaf], 8
    mov bl, A_TEXT
    PUTS "   83860000h: EBX '"
    mov bl, A_VALUE
    mov esi, r_sig
    mov ecx, 4
    call vga_field
    mov bl, A_TEXT
    PUTS "'"
    mov edi, CELL(11, 9)
    PUTS "83860001h: EDX "
    mov bl, A_VALUE
    HEX [r_feat], 8
    mov bl, A_TEXT
    PUTS "  PSI="
    mov eax, [r_feat]
    and eax, FEAT_PSI
    call vga_bit
    PUTS " V386="
    mov eax, [r_feat]
    shr eax, 1
    and eax, 1
    call vga_bit
    test dword [r_feat], FEAT_V386
    jnz .v386_shown
    PUTS "  (hidden: no nesting)"
    jmp .rdtsc
.v386_shown:
    PUTS "  (bare machine)      "

.rdtsc:
    ; Rows 12-13: RDTSC.
    mov edi, CELL(12, 9)
    mov bl, A_VALUE
    HEX [tsc_hi], 8
    HEX [tsc_lo], 8
    mov bl, A_TEXT
    PUTS "   since the last sample: +"
    mov eax, [r_tsc_delta]
    call fmt_dec
    mov ecx, 10
    mov bl, A_VALUE
    call vga_field
    mov edi, CELL(13, 9)
    mov bl, A_TEXT
    PUTS "back to back: +"
    mov bl, A_VALUE
    mov eax, [r_tsc_b2b]
    call fmt_dec
    mov ecx, 4
    call vga_field
    mov bl, A_TEXT
    PUTS "  around a CPUID: +"
    mov bl, A_VALUE
    mov eax, [r_tsc_cpuid]
    call fmt_dec
    mov ecx, 8
    call vga_field

    ; Row 14: VCALL.
    mov edi, CELL(14, 9)
    cmp byte [vcall_ud], 0
    jne .no_vcall
    mov bl, A_TEXT
    PUTS "EAX=0: version "
    mov bl, A_GOOD
    HEX [r_version], 8
    mov bl, A_TEXT
    PUTS "   EAX=1: putchar, bytes sent: "
    mov bl, A_VALUE
    mov eax, [putchars]
    call fmt_dec
    mov ecx, 8
    call vga_field
    jmp .counts
.no_vcall:
    mov bl, A_TEXT
    PUTS "#UD: not in a V386 VM (VCALL exits only in V386 mode, 7.2)"

.counts:
    ; Row 16: samples and seconds.
    mov bl, A_VALUE
    mov edi, CELL(16, 9)
    mov eax, [samples]
    call fmt_dec
    mov ecx, 8
    call vga_field
    mov bl, A_TEXT
    PUTS " (10 Hz)"
    mov edi, CELL(16, 58)
    mov bl, A_VALUE
    mov eax, [ticks]
    xor edx, edx
    mov ecx, HZ
    div ecx
    call fmt_dec
    mov ecx, 8
    call vga_field
    popad
    ret

; The pseudo-descriptor at ESI (limit word, base dword) as "base XXXXXXXX limit XXXX" at
; EDI: the words in A_TEXT, the values in attribute BL. Clobbers EAX, ECX, ESI, BH.
show_dtr:
    push edx
    mov edx, esi
    mov bh, bl
    mov bl, A_TEXT
    PUTS "base "
    mov bl, bh
    HEX [edx + 2], 8
    mov bl, A_TEXT
    PUTS " limit "
    mov bl, bh
    movzx eax, word [edx]
    mov ecx, 4
    call vga_hex
    pop edx
    ret

; EAX's bit 0 as '0' or '1' at EDI in attribute BL.
vga_bit:
    push eax
    and al, 1
    add al, '0'
    call vga_char
    pop eax
    ret

; EFLAGS.IF of EAX as '0' or '1'.
vga_if:
    push eax
    shr eax, 9
    call vga_bit
    pop eax
    ret

; ---- Shared with the other demo kernel: screen text, numbers, COM1, PIC, PIT, gates ---

%include "demo_kernel.inc"

; ---- Text-screen output -----------------------------------------------------------------

; EAX as ECX hex digits at EDI in attribute BL.
vga_hex:
    push esi
    call fmt_hex
    call vga_puts
    pop esi
    ret

; ---- Numbers ----------------------------------------------------------------------------

; EAX as ECX (1-8) hex digits: ESI = the digits, NUL-terminated (in numbuf).
fmt_hex:
    push eax
    push ecx
    push edx
    mov esi, numbuf_end
    mov byte [esi], 0
.digit:
    mov edx, eax
    and edx, 0xf
    mov dl, [hex_digits + edx]
    dec esi
    mov [esi], dl
    shr eax, 4
    dec ecx
    jnz .digit
    pop edx
    pop ecx
    pop eax
    ret

; ---- Interrupts and exceptions ----------------------------------------------------------

build_idt:
    xor ecx, ecx
.loop:
    mov eax, soft_int
    cmp ecx, 32
    jae .not_exc
    mov eax, [exc_stubs + ecx * 4]
    jmp .set
.not_exc:
    cmp ecx, VEC_IRQ0
    jne .not_tick
    mov eax, irq0
    jmp .set
.not_tick:
    cmp ecx, VEC_IRQ0 + 1
    jb .set
    cmp ecx, VEC_IRQ8 + 8
    jae .set
    mov eax, irq_other
.set:
    call set_gate
    inc ecx
    cmp ecx, 256
    jb .loop
    ; #UD: VCALL outside V386 mode is stepped over.
    mov ecx, 6
    mov eax, ud_handler
    call set_gate
    ret

irq0:
    push eax
    inc dword [ticks]
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop eax
    iretd

soft_int:
    iretd

; #UD (no error code): at a VCALL (0F 0C) step over it with EAX = -1 and remember that
; this is not a V386 VM; any other invalid opcode is fatal.
ud_handler:
    push esi
    mov esi, [esp + 4]
    cmp word [esi], 0x0c0f
    pop esi
    jne exc_6
    add dword [esp], 2
    mov byte [vcall_ud], 1
    mov eax, -1
    iretd

%include "exc_stubs.inc"

; An exception: "EXCEPTION vv error eeeeeeee at EIP eeeeeeee" on the last screen row and
; on COM1, then CLI; HLT for good.
fatal:
    cli
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov edi, CELL(ROWS - 1, 0)
    mov eax, (A_FATAL << 8) | ' '
    mov ecx, COLS
    rep stosw
    mov edi, CELL(ROWS - 1, 1)
    mov bl, A_FATAL
    mov esi, msg_exc
    call vga_puts
    call com_puts
    mov eax, [esp]
    mov ecx, 2
    call fatal_hex
    mov esi, msg_exc_err
    call vga_puts
    call com_puts
    mov eax, [esp + 4]
    mov ecx, 8
    call fatal_hex
    mov esi, msg_exc_eip
    call vga_puts
    call com_puts
    mov eax, [esp + 8]
    mov ecx, 8
    call fatal_hex
    mov esi, msg_crlf
    call com_puts
.stop:
    cli
    hlt
    jmp .stop

fatal_hex:
    call fmt_hex
    call vga_puts
    call com_puts
    ret

; ---- Data -------------------------------------------------------------------------------

align 8
; SDM Vol. 3A §3.4.5 (Figure 3-8), §3.5 (LDT descriptor, type 2), §7.2.2 (TSS
; descriptor, type 9: 32-bit TSS, available; LTR marks it busy).
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: code, execute/read, 32-bit, 4 KiB granular
    dq 0x00cf92000000ffff               ; 10h: data, read/write
    dw ldt_end - ldt - 1                ; 18h: the LDT
    dw ABS(ldt) & 0xffff
    db (ABS(ldt) >> 16) & 0xff
    db 0x82                             ; present, DPL 0, system, type 2
    db 0x00
    db ABS(ldt) >> 24
    dw tss_end - tss - 1                ; 20h: the TSS
    dw ABS(tss) & 0xffff
    db (ABS(tss) >> 16) & 0xff
    db 0x89                             ; present, DPL 0, system, type 9
    db 0x00
    db ABS(tss) >> 24
gdt_end:

; The LDT: one flat data segment (selector 04h), to give LDTR something to point at.
align 8
ldt:
    dq 0x00cf92000000ffff
ldt_end:

; A 32-bit TSS (SDM Vol. 3A §7.2.1, Figure 7-2): SS0:ESP0 for a privilege change that
; never happens here, the I/O map base past the limit (no I/O permission bitmap).
align 8
tss:
    dd 0                                ; previous task link
    dd stack_top                        ; ESP0
    dd DATA_SEL                         ; SS0
    times 22 dd 0
    dw 0                                ; T
    dw tss_end - tss                    ; I/O map base address
tss_end:

align 4
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
align 4
idt_desc:
    dw 256 * 8 - 1
    dd idt

hex_digits:     db "0123456789ABCDEF"
msg_banner:     db "v386 VM demo: sensitive instructions (SGDT SIDT SMSW STR SLDT PUSHF, CPUID, RDTSC, VCALL)", 13, 10, 0
msg_hello:      db "hello from vmdemo_sensitive (VCALL putchar), second ", 0
msg_newline:    db 10, 0
msg_sum_1:      db "sensitive: ", 0
msg_sum_2:      db " s, SGDT ", 0
msg_sum_3:      db ", CPUID '", 0
msg_sum_4:      db "', VCALL version ", 0
msg_sum_5:      db ", samples ", 0
msg_crlf:       db 13, 10, 0
msg_exc:        db "EXCEPTION ", 0
msg_exc_err:    db " error ", 0
msg_exc_eip:    db " at EIP ", 0

align 4
file_end:

; ---- BSS (zeroed by the loader) ---------------------------------------------------------

absolute file_end
alignb 8
idt:            resb 256 * 8
entry_gdtr:     resb 8                  ; SGDT at entry (limit word, base dword)
r_gdtr:         resb 8                  ; the last sample's SGDT
r_idtr:         resb 8                  ; ... SIDT
r_msw:          resd 1
r_tr:           resd 1
r_ldtr:         resd 1
r_cs:           resd 1
r_fl_sti:       resd 1
r_fl_cli:       resd 1
r_max_leaf:     resd 1
r_vendor:       resb 16                 ; 12 bytes and a NUL
r_sig:          resd 2                  ; 4 bytes and a NUL
r_feat:         resd 1
r_tsc_delta:    resd 1
r_tsc_b2b:      resd 1
r_tsc_cpuid:    resd 1
r_version:      resd 1
tsc_lo:         resd 1
tsc_hi:         resd 1
ticks:          resd 1
seen:           resd 1                  ; the tick count last looked at
sampled:        resd 1                  ; ticks / SAMPLE_EVERY at the last sample
reported:       resd 1                  ; the last second reported
samples:        resd 1
putchars:       resd 1
vcall_ud:       resb 1
alignb 4
numbuf:         resb 12
numbuf_end:     resb 4
alignb 16
                resb 4096
stack_top:
bss_end:
