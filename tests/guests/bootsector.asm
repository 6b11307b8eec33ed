; A boot sector that reports on the serial port: "V386 BOOT OK drive=XX" with the BIOS's
; boot drive number in DL (00 floppy, 80 hard disk, the CD's number for El Torito), then
; ends the run through isa-debug-exit (port 0xF4, value 0x10).
;
; It uses nothing but the 16550A's transmit register, polling the line status register's
; THRE bit (PC16550D datasheet, LSR bit 5), so it works the same wherever the BIOS loads it.
bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov [drive], dl
    mov si, msg
.next:
    lodsb
    test al, al
    jz .drive
    call putc
    jmp .next
.drive:
    mov al, [drive]
    call hex
    mov al, 10
    call putc
    mov dx, 0xf4
    mov al, 0x10
    out dx, al
.stop:
    hlt
    jmp .stop

; putc: send AL on COM1.
putc:
    push ax
    push dx
    mov ah, al
    mov dx, 0x3fd
.wait:
    in al, dx
    test al, 0x20
    jz .wait
    mov dx, 0x3f8
    mov al, ah
    out dx, al
    pop dx
    pop ax
    ret

; hex: send AL as two hexadecimal digits.
hex:
    push ax
    shr al, 4
    call nibble
    pop ax
    and al, 0x0f
nibble:
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 7
.out:
    jmp putc

msg: db "V386 BOOT OK drive=", 0
drive: db 0

times 510 - ($ - $$) db 0
dw 0xaa55
