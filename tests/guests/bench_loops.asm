; bench_loops.asm — the guest of tests/node/bench.mjs: the two loops of the native
; benchmark (src/bin/bench.rs), in one boot sector, for v386 and npm's v86 alike.
;
; Boots from 0000:7C00 (a BIOS's floppy boot, or v386's direct floppy start), enters 32-bit
; protected mode with a flat GDT, builds identity page tables for the first 8 MiB and runs:
;   'R'  register loop, 6 instructions per iteration, paging off  'r'
;   'M'  memory loop,   7 instructions per iteration, 4 KiB paging on  'm'
; Each letter is written to COM1 (0x3F8) just before / after its loop, so the host can time
; the region between them; then "\n" and cli; hlt for good.
;
; The iteration counts are data at fixed offsets, so the host can read them (and patch them
; for a shorter or longer run) without reassembling:
;   offset 3:  "V386BNCH"   signature
;   offset 11: dd           register-loop iterations
;   offset 15: dd           memory-loop iterations
; Everything fits in the 512-byte sector: v386 without a BIOS loads only that.
;
; Build: nasm -f bin -o bench_loops.img bench_loops.asm   (padded to a 1.44 MB floppy)

%ifndef REG_ITERS
%define REG_ITERS 50000000
%endif
%ifndef MEM_ITERS
%define MEM_ITERS 40000000
%endif

PAGE_DIR    equ 0x10000          ; page directory; two page tables follow it
COM1        equ 0x3f8

bits 16
org 0x7c00

start:
    jmp short real_start
    nop
    db "V386BNCH"
reg_iters: dd REG_ITERS
mem_iters: dd MEM_ITERS

real_start:
    cli
    cld
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    jmp 0:.cs_zero               ; some BIOSes enter at 07C0:0000
.cs_zero:
    in al, 0x92                  ; fast A20 on (the loops never need it; page tables don't either)
    or al, 2
    and al, 0xfe
    out 0x92, al
    lgdt [gdt_desc]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, 0x7c00

    ; Identity-map 0..8 MiB with 4 KiB pages: PD at 0x10000, PTs at 0x11000 and 0x12000.
    mov edi, PAGE_DIR
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [PAGE_DIR], PAGE_DIR + 0x1000 + 7
    mov dword [PAGE_DIR + 4], PAGE_DIR + 0x2000 + 7
    mov edi, PAGE_DIR + 0x1000
    mov eax, 7                   ; present, writable, user
    mov ecx, 2048
.fill:
    stosd
    add eax, 0x1000
    loop .fill
    mov eax, PAGE_DIR
    mov cr3, eax

    ; Register loop (paging off).
    mov al, 'R'
    call putc
    mov ecx, [reg_iters]
    xor eax, eax
    mov ebx, 1
    xor edx, edx
    xor esi, esi
    align 16
.reg:
    add eax, ebx
    xor edx, eax
    inc ebx
    sub esi, edx
    dec ecx
    jnz .reg
    mov al, 'r'
    call putc

    ; Memory loop, 4 KiB paging on, over 256 KiB at 4 MiB.
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp .paged
.paged:
    mov al, 'M'
    call putc
    mov ecx, [mem_iters]
    mov esi, 0x400000
    align 16
.mem:
    mov eax, [esi]
    add eax, ecx
    mov [esi + 4], eax
    add esi, 8
    and esi, 0x43fff8
    dec ecx
    jnz .mem
    mov al, 'm'
    call putc
    mov al, 10
    call putc
.stop:
    cli
    hlt
    jmp .stop

; putc: AL to COM1 once the transmitter holding register is empty (LSR bit 5).
putc:
    push edx
    push eax
    mov dx, COM1 + 5
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    pop eax
    mov dx, COM1
    out dx, al
    pop edx
    ret

align 8
gdt:
    dq 0                         ; null
    dq 0x00cf9a000000ffff        ; 0x08: code, base 0, limit 4 GiB, 32-bit
    dq 0x00cf92000000ffff        ; 0x10: data, base 0, limit 4 GiB
gdt_desc:
    dw gdt_desc - gdt - 1
    dd gdt

times 510 - ($ - $$) db 0
dw 0xaa55
times 1474560 - ($ - $$) db 0
