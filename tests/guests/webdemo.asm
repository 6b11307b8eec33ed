; webdemo.asm — the page's default machine: a floppy boot sector booted by SeaBIOS.
;
; It prints a banner with the BIOS teletype (INT 10h AH=0Eh), which SeaBIOS's serial
; console mirrors on COM1, then echoes forever: keys typed on the PS/2 keyboard (INT 16h)
; and bytes arriving on COM1 (Line Status bit 0) appear on the screen and the line.
;
;   nasm -f bin -o webdemo.img tests/guests/webdemo.asm
;   qemu-system-i386 -fda webdemo.img -serial stdio

        bits 16
        cpu 686
        org 0x7c00

COM1    equ 0x3f8                       ; 16550A: +0 THR/RBR, +5 LSR (PC16550D datasheet)
LSR_DR  equ 0x01                        ; data ready

start:  cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7c00
        sti
        cld
        mov si, banner
.next:  lodsb
        test al, al
        jz echo
        call putc
        jmp .next

echo:   mov ah, 0x01                    ; INT 16h AH=01h: keystroke waiting? (ZF=0 if so)
        int 0x16
        jz .serial
        xor ah, ah                      ; AH=00h: take it, AL = ASCII
        int 0x16
        call putc
.serial:
        mov dx, COM1 + 5
        in al, dx
        test al, LSR_DR
        jz .idle
        mov dx, COM1
        in al, dx
        call putc
        jmp echo
.idle:  hlt                             ; the timer tick (IRQ 0) wakes us
        jmp echo

; putc: AL on the screen (and, through SeaBIOS, on COM1); CR also gets an LF.
putc:   push ax
        mov ah, 0x0e
        mov bx, 0x0007
        int 0x10
        pop ax
        cmp al, 13
        jne .done
        mov al, 10
        jmp putc
.done:  ret

banner: db "v386 web demo: booted from a floppy by SeaBIOS.", 13
        db "Type here (keyboard) or in the terminal (COM1); both echo.", 13, 0

        times 510 - ($ - $$) db 0
        dw 0xaa55

        times 1474560 - ($ - $$) db 0   ; a whole 1.44 MB floppy, as the controller expects
