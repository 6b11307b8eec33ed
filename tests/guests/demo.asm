; demo.asm — the v386 demo: one 512-byte floppy boot sector that needs no BIOS service.
;
; It prints on the debug console (port 0xE9) a banner, the CPU's vendor string, a count,
; the primes below 100 (sieve of Eratosthenes), the first Fibonacci numbers and the CRC-32
; of "123456789" checked against its published check value, then writes 0 to the
; isa-debug-exit port 0xF4 (exit status (0 << 1) | 1 = 1). Without that device it halts.
;
;   nasm -f bin -o demo.img tests/guests/demo.asm
;   v386 -fda demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4
;   qemu-system-i386 -fda demo.img -debugcon stdio -device isa-debug-exit,iobase=0xf4 -display none
;
; (`bash scripts/run.sh` does the first two.) Only the CPUID vendor line differs between
; emulators.

        bits 16
        cpu 686
        org 0x7c00

SIEVE   equ 0x8000                      ; scratch: one byte per number below N
N       equ 100
FIBS    equ 24                          ; F(24) = 46368 still fits in 16 bits

start:  cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, 0x7c00
        cld

        call newline
        call rule
        mov si, s_banner
        call puts
        call rule
        call newline

; --- CPUID leaf 0: the vendor string (EBX, EDX, ECX) -------------------------------------
        xor eax, eax
        cpuid
        mov [vendor], ebx
        mov [vendor + 4], edx
        mov [vendor + 8], ecx
        mov si, s_cpu
        call puts                       ; "cpu      " then the vendor, then newline

; --- count to ten ------------------------------------------------------------------------
        mov si, s_count
        call puts
        mov ax, 1
.count: call putdec_sp
        inc ax
        cmp ax, 10
        jbe .count
        call newline

; --- primes below N ----------------------------------------------------------------------
        mov si, s_primes
        call puts
        mov di, SIEVE
        mov cx, N
        xor al, al
        rep stosb                       ; 0 = not crossed out
        mov bx, 2
.prime: cmp byte [SIEVE + bx], 0
        jne .next
        mov ax, bx
        call putdec_sp
        mul bx                          ; cross out from bx*bx
        mov di, ax
.cross: cmp di, N
        jae .next
        mov byte [SIEVE + di], 1
        add di, bx
        jmp .cross
.next:  inc bx
        cmp bx, N
        jb .prime
        call newline

; --- Fibonacci ---------------------------------------------------------------------------
        mov si, s_fib
        call puts
        xor bx, bx                      ; F(0)
        mov ax, 1                       ; F(1)
        mov cx, FIBS
.fib:   call putdec_sp
        xadd ax, bx                     ; (ax, bx) = (ax + bx, ax)
        loop .fib
        call newline

; --- CRC-32 (reflected, polynomial 0xEDB88320) of "123456789" -------------------------------
        mov si, s_crc
        call puts
        mov si, check
        mov cx, 9
        or edx, -1
.byte:  lodsb
        xor dl, al
        mov bx, 8
.bit:   shr edx, 1
        jnc .nox
        xor edx, 0xedb88320
.nox:   dec bx
        jnz .bit
        loop .byte
        not edx
        mov eax, edx
        call puthex32
        mov si, s_ok
        cmp eax, 0xcbf43926
        je .good
        mov si, s_bad
.good:  call puts

        mov si, s_bye
        call puts
        xor al, al
        out 0xf4, al                    ; isa-debug-exit: exit status 1
.halt:  hlt
        jmp .halt

; --- output helpers (port 0xE9) ----------------------------------------------------------
; puts: print the NUL-terminated string at si; si ends past the NUL.
puts:   push ax
.l:     lodsb
        test al, al
        jz .e
        out 0xe9, al
        jmp .l
.e:     pop ax
        ret

; putdec_sp: print ax as unsigned decimal followed by a space; keeps every register.
putdec_sp:
        pusha
        mov bx, 10
        xor cx, cx
.div:   xor dx, dx
        div bx
        push dx
        inc cx
        test ax, ax
        jnz .div
.out:   pop ax
        add al, '0'
        out 0xe9, al
        loop .out
        mov al, ' '
        out 0xe9, al
        popa
        ret

; puthex32: print eax as 8 hex digits; keeps every register.
puthex32:
        pushad
        mov cx, 8
.h:     rol eax, 4
        push ax
        and al, 0x0f
        add al, '0'
        cmp al, '9'
        jbe .w
        add al, 'a' - '9' - 1
.w:     out 0xe9, al
        pop ax
        loop .h
        popad
        ret

; rule: print "  +----...----+" and a newline.
rule:   mov si, s_indent
        call puts
        mov cx, 42
        mov al, '-'
.r:     out 0xe9, al
        loop .r
        mov al, '+'
        out 0xe9, al
newline:
        push ax
        mov al, 10
        out 0xe9, al
        pop ax
        ret

; --- strings -----------------------------------------------------------------------------
s_banner: db "  |  v386: hello from a 512-byte boot sector |", 10, 0
s_indent: db "  +", 0
s_cpu:  db "  cpu     "
vendor: db "????????????", 10, 0
s_count: db "  count   ", 0
s_primes: db "  primes  ", 0
s_fib:  db "  fib     ", 0
s_crc:  db '  crc32   "'
check:  db '123456789" = 0x', 0
s_ok:   db " ok", 10, 0
s_bad:  db " WRONG", 10, 0
s_bye:  db 10, "  bye (out 0xf4)", 10, 0

        times 510 - ($ - $$) db 0
        dw 0xaa55
