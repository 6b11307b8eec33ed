#!/bin/sh
# Manual check (not part of `cargo test`): run the README "QEMU vs SDM" cases that need no
# protected-mode set-up under Bochs 2.7 (Debian `bochs`, CPU model p2_klamath) and print what
# Bochs does. Needs nasm and bochs. Output comes from the guest on port 0xE9.
#   tests/diff/bochs-check.sh
# Bochs here has no `nogui` display library: the RFB one is used without waiting for a client,
# the built-in debugger is told to continue (`c` on stdin), and Bochs is stopped after a
# timeout (the guest ends with cli; hlt).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
cat > t.asm <<'ASM'
%include "loader.inc"
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7000
        mov word [1*4], h1
        mov word [1*4+2], 0
        mov word [6*4], h6
        mov word [6*4+2], 0
        ; case 1: INT1 (F1), README "QEMU vs SDM" 4
        mov si, m_int1
        call puts
c1:     db 0xf1
c1e:    nop
        ; case 2 (README 5): F6 /1 (TEST alias): AL=0x0F, test al,0xF0 -> ZF=1, no fault
        mov si, m_test
        call puts
        mov al, 0x0f
        xor bx, bx
c2:     db 0xf6, 0xc8, 0xf0     ; test al, 0xf0 via /1
        pushf
        pop ax
        and ax, 0x40
        mov si, m_zf0
        jz .z
        mov si, m_zf1
.z:     call puts
        ; case 3 (README 8): LOCK MOV [mem], reg -> #UD
        mov si, m_lock
        call puts
c3:     db 0xf0, 0x89, 0x1e, 0x00, 0x30   ; lock mov [0x3000], bx
        nop
        mov si, m_nofault
        call puts
c3x:    mov si, m_done
        call puts
        cli
        hlt
        jmp $-2
h1:     mov si, m_v1
        jmp hcommon
h6:     mov si, m_v6
hcommon:
        call puts
        mov bp, sp
        mov ax, [bp]
        call hex16
        mov si, m_nl
        call puts
        ; resume after the faulting/trapping instruction
        mov ax, [bp]
        cmp ax, c1
        jne .a
        mov word [bp], c1e
.a:     cmp ax, c3
        jne .b
        mov word [bp], c3x
.b:     iret
puts:   lodsb
        test al, al
        jz .r
        out 0xe9, al
        jmp puts
.r:     ret
hex16:  mov cx, 4
.l:     rol ax, 4
        push ax
        and al, 15
        add al, '0'
        cmp al, '9'
        jbe .d
        add al, 7
.d:     out 0xe9, al
        pop ax
        loop .l
        ret
m_int1: db "INT1 (F1 at c1): ", 0
m_test: db "F6 /1 test al,0xF0 (AL=0F): ", 0
m_zf0:  db "executed as TEST, ZF=0", 10, 0
m_zf1:  db "executed as TEST, ZF=1", 10, 0
m_lock: db "LOCK MOV [mem],reg: ", 0
m_nofault: db "no fault", 10, 0
m_v1:   db "vector 1 (#DB), saved IP=", 0
m_v6:   db "vector 6 (#UD), saved IP=", 0
m_nl:   db 10, 0
m_done: db "done", 10, 0
        align 512, db 0
program_end:
ASM
nasm -f bin -I "$root/tests/guests/" t.asm -o t.img
truncate -s 1474560 t.img
cat > bochsrc <<'RC'
megs: 16
cpu: model=p2_klamath
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
floppya: 1_44=t.img, status=inserted
boot: floppy
display_library: rfb, options="timeout=0"
port_e9_hack: enabled=1
log: bochs.log
plugin_ctrl: speaker=0, sb16=0, es1370=0, usb_uhci=0, serial=0, parallel=0, e1000=0, ne2k=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
RC
(echo c; sleep 12) | timeout 8 bochs -q -f bochsrc > out.txt 2>&1 || true
# the guest's lines (everything after the debugger's `c`)
sed -n '/<bochs:1> c/,$p' out.txt | sed 1d | grep -v -E '^[0-9]{11}[a-z]\[|^ALSA'
