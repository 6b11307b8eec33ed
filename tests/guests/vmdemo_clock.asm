; vmdemo_clock.asm — a demo guest for the VMM's live view: a clock driven by the PIT.
;
; A Multiboot v1 kernel (a flat image at 1 MiB whose header carries the a.out-kludge
; address fields, Multiboot Specification 0.6.96 §3.1.3), built with
;
;   nasm -f bin -I tests/guests/ -o vmdemo_clock.img tests/guests/vmdemo_clock.asm
;
; by tests/vmm_demo.rs and scripts/build-web.sh, and started as a VM's kernel
; (`MachineSpec { kernel: .. }`), without a BIOS. It also runs on the bare machine
; (`v386 -kernel`) and on `qemu-system-i386 -kernel`.
;
; What it does:
;  - its own GDT and IDT; both 8259A PICs re-initialised with vectors 20h-2Fh and every
;    IRQ but IRQ0 masked; PIT counter 0 in mode 2 at 100 Hz;
;  - IRQ0's handler counts the tick and ends it with a non-specific EOI (OUT 20h);
;  - between ticks the kernel idles in HLT;
;  - after every tick it redraws the VGA text screen (80x25 at B8000h): the title
;    "v386 VM demo: clock", the uptime in large digits and as text, the tick count, and a
;    bar that fills once a second;
;  - every second it writes "clock: N s" on COM1 (polling LSR bit 5 before each byte),
;    then measures its speed: it spins through one whole tick counting loops, and shows
;    the loops a tick and the MIPS they make (100 under deterministic time, 10 ns an
;    instruction).
;
; Under the VMM its exits are therefore IO (the PICs, the PIT, COM1, the CRTC), HLT
; between ticks, and PREEMPTION_TIMER during the busy tick (the VMM ends a turn after its
; quantum, or at the PIT's next event so that IRQ0 is injected on time; docs/v386.md
; §8.1, §10). Its time is the PIT's: nothing depends on the host's clock,
; so a run under deterministic time is the same every time.
;
; Robustness: every exception vector has a handler, which prints the vector, error code
; and EIP on the screen's last line and on COM1 and stops with CLI; HLT (the VMM ends the
; VM as a dead halt), so a fault never escalates to a triple fault.
;
; References: Intel SDM Vol. 3A §3.4.5 "Segment Descriptors", §6.10 "Interrupt Descriptor
; Table (IDT)", §6.11 "IDT Descriptors" (Figure 6-2), §6.12 "Exception and Interrupt
; Handling", §6.13 "Error Code"; Intel 8259A datasheet (ICW1-ICW4, OCW1, OCW2); Intel 8254
; datasheet (control word format, mode 2); National Semiconductor PC16550D datasheet
; (§8: LCR, LSR, FCR, MCR, divisor latch); IBM VGA Technical Reference (text mode 3 at
; B8000h, attribute bytes, CRTC register 0Ah Cursor Start bit 5 "cursor off").

bits 32
org 0x100000

; ---- Constants --------------------------------------------------------------------------

CODE_SEL        equ 0x08
DATA_SEL        equ 0x10

; 8259A: command and data ports of the master and the slave.
PIC1_CMD        equ 0x20
PIC1_DATA       equ 0x21
PIC2_CMD        equ 0xa0
PIC2_DATA       equ 0xa1
PIC_EOI         equ 0x20                ; OCW2: non-specific EOI
VEC_IRQ0        equ 0x20                ; ICW2 of the master: IRQ0-7 at 20h-27h
VEC_IRQ8        equ 0x28                ; ICW2 of the slave: IRQ8-15 at 28h-2Fh

; 8254: counter 0 and the control word register. Control word 34h: SC = 00 counter 0,
; RW = 11 LSB then MSB, M = 010 mode 2 (rate generator), BCD = 0 binary.
PIT_CH0         equ 0x40
PIT_CTRL        equ 0x43
PIT_MODE2       equ 0x34
HZ              equ 100
PIT_DIVISOR     equ 11932               ; 1.193182 MHz / 11932 = 99.998 Hz

; COM1, a 16550A (PC16550D datasheet §8, Table II): register offsets and bits.
COM1            equ 0x3f8
UART_THR        equ 0                   ; transmitter holding (DLAB = 0); DLL with DLAB = 1
UART_IER        equ 1                   ; interrupt enable (DLAB = 0); DLM with DLAB = 1
UART_FCR        equ 2
UART_LCR        equ 3
UART_MCR        equ 4
UART_LSR        equ 5
LCR_DLAB        equ 0x80
LCR_8N1         equ 0x03                ; 8 data bits, no parity, 1 stop bit
FCR_ENABLE      equ 0x07                ; FIFOs on, both cleared
MCR_DTR_RTS     equ 0x03
LSR_THRE        equ 0x20                ; transmitter holding register empty
THRE_TRIES      equ 100000              ; give up waiting after this many LSR reads

; VGA text mode 3: 80x25 cells of (character, attribute) at B8000h.
VGA             equ 0xb8000
COLS            equ 80
ROWS            equ 25
%define CELL(r, c) (VGA + ((r) * COLS + (c)) * 2)
CRTC_INDEX      equ 0x3d4
CRTC_DATA       equ 0x3d5
CRTC_CUR_START  equ 0x0a
CURSOR_OFF      equ 0x20                ; Cursor Start bit 5: cursor off

; Attributes: background in bits 6:4, foreground in bits 3:0 (CGA palette).
A_TITLE         equ 0x1f                ; white on blue
A_TEXT          equ 0x07                ; light grey on black
A_LABEL         equ 0x03                ; cyan
A_VALUE         equ 0x0e                ; yellow
A_NOTE          equ 0x08                ; dark grey
A_BAR_ON        equ 0x0a                ; light green
A_BAR_OFF       equ 0x08
A_BIG           equ 0x22                ; green on green: '#' cells show as solid blocks
A_FATAL         equ 0x4f                ; white on red

; Layout of the big uptime digits: 5 rows tall, each font column two cells wide.
BIG_ROW         equ 3
BIG_COL         equ 13
BAR_ROW         equ 12
BAR_COL         equ 15
BAR_LEN         equ 50                  ; one cell per 2 ticks
SPEED_ROW       equ 13
SPEED_COL       equ 15

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

%include "multiboot.inc"

; ---- Entry ------------------------------------------------------------------------------

entry:
    ; Multiboot §3.2: flat 32-bit segments, interrupts off, GDTR undefined: load our own.
    cli
    mov esp, stack_top
    cld
    lgdt [gdt_desc]
    jmp CODE_SEL:.reload
.reload:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax

    call build_idt
    lidt [idt_desc]
    call pic_init
    call pit_init
    call com_init
    call screen_init

    mov esi, msg_banner
    call com_puts

    sti

; The idle loop: redraw after every tick, then HLT until the next one. CLI around the
; test and STI;HLT close the race with the interrupt (STI's one-instruction shadow, SDM
; Vol. 2B "STI"): a tick that arrives after the test wakes the HLT.
main_loop:
    cli
    mov eax, [ticks]
    cmp eax, [drawn]
    jne .tick
    sti
    hlt
    jmp main_loop
.tick:
    sti
    mov [drawn], eax
    call draw
    ; A line on COM1 for every second that passed.
    mov eax, [drawn]
    xor edx, edx
    mov ecx, HZ
    div ecx
    cmp eax, [reported]
    je main_loop
    mov [reported], eax
    mov esi, msg_clock
    call com_puts
    call fmt_dec
    call com_puts
    mov esi, msg_seconds
    call com_puts
    call measure
    jmp main_loop

; Once a second, the processor's speed as this guest sees it: spin until the next tick,
; then count loops of three instructions until the one after (a whole tick, 10 ms of
; guest time). Under the VMM this busy tick is where the preemption timer ends the VM's
; turns (every quantum, and at the PIT's next event) instead of HLT.
measure:
    pushad
    mov eax, [ticks]
.sync:
    cmp eax, [ticks]
    je .sync
    mov eax, [ticks]
    xor ecx, ecx
.spin:
    inc ecx                             ; three instructions a loop
    cmp eax, [ticks]
    je .spin
    mov [loops], ecx
    ; MIPS = loops * 3 instructions * HZ ticks per second / 10^6.
    mov eax, ecx
    mov ecx, 3 * HZ
    mul ecx
    mov ecx, 1000000
    div ecx
    mov [mips], eax
    ; "Speed: N loops a tick = M MIPS", then blanks over what a longer line left.
    mov edi, CELL(SPEED_ROW, SPEED_COL)
    mov bl, A_VALUE
    mov eax, [loops]
    call fmt_dec
    call vga_puts
    mov bl, A_TEXT
    mov esi, lbl_loops
    call vga_puts
    mov bl, A_VALUE
    mov eax, [mips]
    call fmt_dec
    call vga_puts
    mov bl, A_TEXT
    mov esi, lbl_mips
    call vga_puts
    mov eax, (A_TEXT << 8) | ' '
    mov ecx, 8
    rep stosw
    popad
    ret

; ---- Drawing ----------------------------------------------------------------------------

; The static parts: a clear screen, the title bar, labels and notes; the cursor off.
screen_init:
    mov edi, VGA
    mov eax, (A_TEXT << 8) | ' '
    mov ecx, COLS * ROWS
    rep stosw
    mov edi, CELL(0, 0)
    mov eax, (A_TITLE << 8) | ' '
    mov ecx, COLS
    rep stosw
    mov esi, msg_title
    mov edi, CELL(0, 1)
    mov bl, A_TITLE
    call vga_puts
    mov esi, msg_title_right
    mov edi, CELL(0, COLS - msg_title_right_len - 1)
    call vga_puts

    mov bl, A_LABEL
    mov esi, lbl_uptime
    mov edi, CELL(10, 15)
    call vga_puts
    mov esi, lbl_ticks
    mov edi, CELL(10, 38)
    call vga_puts
    mov esi, lbl_seconds
    mov edi, CELL(10, 55)
    call vga_puts
    mov esi, lbl_bar
    mov edi, CELL(BAR_ROW, BAR_COL - 7)
    call vga_puts
    mov esi, lbl_speed
    mov edi, CELL(SPEED_ROW, SPEED_COL - 7)
    call vga_puts
    mov bl, A_NOTE
    mov esi, msg_measuring
    mov edi, CELL(SPEED_ROW, SPEED_COL)
    call vga_puts

    ; The notes, one per row from row 15.
    mov bl, A_NOTE
    mov esi, notes
    mov edx, CELL(15, 2)
.note:
    mov edi, edx
    call vga_puts
.skip:
    lodsb
    test al, al
    jnz .skip
    add edx, COLS * 2
    cmp byte [esi], 0
    jne .note

    ; CRTC Cursor Start register bit 5: no blinking cursor over the picture.
    mov dx, CRTC_INDEX
    mov al, CRTC_CUR_START
    out dx, al
    mov dx, CRTC_DATA
    mov al, CURSOR_OFF
    out dx, al
    ret

; Redraw the values for tick count EAX.
draw:
    pushad
    mov [cur_ticks], eax
    xor edx, edx
    mov ecx, HZ
    div ecx                             ; EAX = seconds, EDX = hundredths
    mov [cur_secs], eax
    mov [cur_hund], edx
    xor edx, edx
    mov ecx, 60
    div ecx
    mov [cur_s], edx
    xor edx, edx
    div ecx
    mov [cur_m], edx
    xor edx, edx
    mov ecx, 100                        ; hours shown modulo 100
    div ecx
    mov [cur_h], edx

    ; Large HH:MM:SS.
    mov edi, CELL(BIG_ROW, BIG_COL)
    mov eax, [cur_h]
    call big_pair
    call big_colon
    mov eax, [cur_m]
    call big_pair
    call big_colon
    mov eax, [cur_s]
    call big_pair

    ; "Uptime: HH:MM:SS.cc"
    mov edi, CELL(10, 23)
    mov bl, A_VALUE
    mov eax, [cur_h]
    call vga_two
    mov al, ':'
    call vga_char
    mov eax, [cur_m]
    call vga_two
    mov al, ':'
    call vga_char
    mov eax, [cur_s]
    call vga_two
    mov al, '.'
    call vga_char
    mov eax, [cur_hund]
    call vga_two

    mov eax, [cur_ticks]
    call fmt_dec
    mov edi, CELL(10, 45)
    mov ecx, 10
    call vga_field
    mov eax, [cur_secs]
    call fmt_dec
    mov edi, CELL(10, 64)
    mov ecx, 10
    call vga_field

    ; The bar: cell i is lit when i < hundredths / 2.
    mov edi, CELL(BAR_ROW, BAR_COL)
    mov eax, [cur_hund]
    shr eax, 1
    xor ecx, ecx
.bar:
    cmp ecx, eax
    jb .on
    mov word [edi], (A_BAR_OFF << 8) | '.'
    jmp .next
.on:
    mov word [edi], (A_BAR_ON << 8) | '='
.next:
    add edi, 2
    inc ecx
    cmp ecx, BAR_LEN
    jb .bar
    popad
    ret

; EAX (0-99) as two large digits at EDI; EDI moves past them and a 2-cell gap.
big_pair:
    push eax
    push edx
    push ecx
    xor edx, edx
    mov ecx, 10
    div ecx
    call big_digit
    mov eax, edx
    call big_digit
    pop ecx
    pop edx
    pop eax
    ret

; Digit EAX (0-9) in the 3x5 font at EDI: 6 cells wide, then a 2-cell gap.
big_digit:
    pushad
    lea esi, [font + eax * 4 + eax]     ; 5 bytes per digit
    mov edx, 5
.row:
    lodsb
    mov ah, al
    push edi
    mov ecx, 3
.col:
    test ah, 4                          ; bit 2 is the leftmost column
    jz .off
    mov dword [edi], (A_BIG << 24) | ('#' << 16) | (A_BIG << 8) | '#'
    jmp .done_col
.off:
    mov dword [edi], (A_TEXT << 24) | (' ' << 16) | (A_TEXT << 8) | ' '
.done_col:
    add edi, 4
    shl ah, 1
    dec ecx
    jnz .col
    pop edi
    add edi, COLS * 2
    dec edx
    jnz .row
    popad
    add edi, 8 * 2
    ret

; A colon (rows 1 and 3 of the digit box) at EDI, 2 cells wide; EDI moves 4 cells on.
big_colon:
    mov dword [edi + 1 * COLS * 2], (A_BIG << 24) | ('#' << 16) | (A_BIG << 8) | '#'
    mov dword [edi + 3 * COLS * 2], (A_BIG << 24) | ('#' << 16) | (A_BIG << 8) | '#'
    add edi, 4 * 2
    ret

; ---- Shared with the other demo kernel: screen text, numbers, COM1, PIC, PIT, gates ---

%include "demo_kernel.inc"

; ---- Text-screen output -----------------------------------------------------------------

; EAX (0-99) as two decimal digits at EDI in attribute BL.
vga_two:
    push eax
    push ecx
    push edx
    xor edx, edx
    mov ecx, 10
    div ecx
    add al, '0'
    call vga_char
    mov al, dl
    add al, '0'
    call vga_char
    pop edx
    pop ecx
    pop eax
    ret

; ---- Interrupts and exceptions ----------------------------------------------------------

; IDT: exceptions 0-31 to their stubs, IRQ0 to the tick handler, the other IRQ vectors to
; an EOI-only handler, everything else (software INT n only) to a bare IRET.
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

; Exception stubs: push a 0 error code where the processor pushes none (SDM Vol. 3A §6.13,
; Table 6-1: 8, 10-14 and 17 push one), then the vector.
%include "exc_stubs.inc"

; An exception: "EXCEPTION vv error eeeeeeee at eip eeeeeeee" on the last screen row and
; on COM1, then stop for good (CLI; HLT).
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
    mov al, 10
    call com_putc
.stop:
    cli
    hlt
    jmp .stop

; EAX as ECX hex digits on the screen (EDI, BL) and on COM1.
fatal_hex:
    push eax
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
    call vga_puts
    call com_puts
    pop eax
    ret

; ---- Data -------------------------------------------------------------------------------

align 8
; Flat code and data, base 0, limit 4 GiB, DPL 0 (SDM Vol. 3A §3.4.5, Figure 3-8).
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: code, execute/read, 32-bit, 4 KiB granular
    dq 0x00cf92000000ffff               ; 10h: data, read/write
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
idt_desc:
    dw 256 * 8 - 1
    dd idt

; The 3x5 font: per digit five rows, bit 2 the leftmost column.
font:
    db 7, 5, 5, 5, 7                    ; 0
    db 2, 6, 2, 2, 7                    ; 1
    db 7, 1, 7, 4, 7                    ; 2
    db 7, 1, 7, 1, 7                    ; 3
    db 5, 5, 7, 1, 1                    ; 4
    db 7, 4, 7, 1, 7                    ; 5
    db 7, 4, 7, 5, 7                    ; 6
    db 7, 1, 2, 2, 2                    ; 7
    db 7, 5, 7, 5, 7                    ; 8
    db 7, 5, 7, 1, 7                    ; 9

hex_digits:     db "0123456789ABCDEF"
msg_title:      db "v386 VM demo: clock", 0
msg_title_right: db "PIT 100 Hz, IRQ0, HLT"
msg_title_right_len equ $ - msg_title_right
                db 0
msg_banner:     db "v386 VM demo: clock (PIT 100 Hz on IRQ0, vector 20h; HLT between ticks)", 13, 10, 0
msg_clock:      db "clock: ", 0
msg_seconds:    db " s", 13, 10, 0
lbl_uptime:     db "Uptime:", 0
lbl_ticks:      db "Ticks:", 0
lbl_seconds:    db "Seconds:", 0
lbl_bar:        db "Second", 0
lbl_speed:      db "Speed:", 0
lbl_loops:      db " loops a tick = ", 0
lbl_mips:       db " MIPS", 0
msg_measuring:  db "(measured once a second)", 0
notes:
    db "PIT counter 0, mode 2, divisor 11932: 100 Hz on 8259A IRQ0, vector 20h.", 0
    db "Each tick the VMM injects IRQ0; the handler counts it and sends EOI (OUT 20h).", 0
    db "Between ticks the guest runs HLT: a HLT exit gives the processor back.", 0
    db "Once a second it spins for a tick to measure its speed: the VMM preempts it.", 0
    db "Each second a line goes out on COM1 (IN 3FDh, OUT 3F8h: an IO exit each).", 0
    db "The screen is VGA memory (B8000h): its writes do not exit.", 0
    db 0
msg_exc:        db "EXCEPTION ", 0
msg_exc_err:    db " error ", 0
msg_exc_eip:    db " at EIP ", 0

align 4
file_end:

; ---- BSS (zeroed by the loader: Multiboot §3.1.3 bss_end_addr) --------------------------

absolute file_end
alignb 8
idt:            resb 256 * 8
ticks:          resd 1                  ; IRQ0 count
drawn:          resd 1                  ; the tick count last drawn
reported:       resd 1                  ; the last second written on COM1
cur_ticks:      resd 1
cur_secs:       resd 1
cur_hund:       resd 1
cur_h:          resd 1
cur_m:          resd 1
cur_s:          resd 1
loops:          resd 1                  ; the last speed measurement
mips:           resd 1
numbuf:         resb 12
numbuf_end:     resb 4
alignb 16
                resb 4096
stack_top:
bss_end:
