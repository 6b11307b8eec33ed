#!/bin/sh
# Manual check (not part of `cargo test`): run the README "QEMU vs SDM" cases under Bochs 2.7
# (Debian `bochs`, CPU model p2_klamath) and print what Bochs does: t.asm (real mode: entries
# 4, 5, 8), p.asm (32-bit protected mode, then paging with CR0.WP: entries 1, 3, 6, 9, 2, 7).
# Needs nasm and bochs. Output comes from the guest on port 0xE9.
#   tests/diff/bochs-check.sh
# Bochs here has no `nogui` display library: the RFB one is used without waiting for a client,
# the built-in debugger is told to continue (`c` on stdin), and Bochs is stopped after a
# timeout (the guest ends with cli; hlt). ~25 s for both programs.
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
cat > p.asm <<'ASM'
%include "loader.inc"
; README "QEMU vs SDM" entries 1, 2, 3, 6, 7, 9: 32-bit protected mode, then paging.
%macro PUTS 1
        jmp     %%o
%%s:    db      %1, 0
%%o:    mov     esi, %%s
        call    puts
%endmacro
%macro RESUME 1                         ; where the fault handler continues
        mov     dword [resume], %1
%endmacro
        bits 16
        cli
        xor     ax, ax
        mov     ds, ax
        lgdt    [gdtr]
        mov     eax, cr0
        or      al, 1
        mov     cr0, eax
        jmp     dword 0x08:pm
        bits 32
pm:     mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     esp, 0x7000
        mov     ebx, 6                  ; IDT gates for #UD, #GP, #PF
        mov     eax, v6
        call    gate
        mov     ebx, 13
        mov     eax, v13
        call    gate
        mov     ebx, 14
        mov     eax, v14
        call    gate
        lidt    [idtr]
        ; README 1: data-segment limit (0x18: limit 0xFF; 0x20: expand-down, limit 0xFFF)
        mov     ax, 0x18
        mov     ds, ax
        mov     eax, [0x10]
        mov     ax, 0x10
        mov     ds, ax
        PUTS    {"1a mov eax,[ds:0x10] limit 0xFF: no fault", 10}
        RESUME  n1b
        PUTS    "1b mov eax,[ds:0x100] limit 0xFF: "
        mov     ax, 0x18
        mov     ds, ax
        mov     eax, [0x100]
        PUTS    {"no fault", 10}
n1b:    RESUME  n1c
        PUTS    "1c mov eax,[ds:0xFE] limit 0xFF: "
        mov     ax, 0x18
        mov     ds, ax
        mov     eax, [0xfe]
        PUTS    {"no fault", 10}
n1c:    RESUME  n1d
        PUTS    "1d mov eax,[es:0x10] expand-down limit 0xFFF: "
        mov     ax, 0x20
        mov     es, ax
        mov     eax, [es:0x10]
        PUTS    {"no fault", 10}
n1d:    mov     ax, 0x20
        mov     es, ax
        mov     eax, [es:0x2000]
        mov     ax, 0x10
        mov     es, ax
        PUTS    {"1e mov eax,[es:0x2000] expand-down limit 0xFFF: no fault", 10}
        ; README 3: write through a CS override
        RESUME  n3
        PUTS    "3  mov [cs:scratch],eax: "
        mov     [cs:scratch], eax
        PUTS    {"no fault", 10}
n3:     ; README 6: LTR with a null selector
        RESUME  n6
        PUTS    "6  ltr ax (AX=0): "
        xor     eax, eax
        ltr     ax
        str     ax
        PUTS    "no fault, STR="
        call    hex32
        PUTS    {10}
n6:     ; README 9: accessed bit of CS descriptors with A=0 after far JMP/CALL/RETF/IRETD
        jmp     0x28:j9
j9:     call    0x30:farfn
        push    dword 0x38
        push    dword rt9
        retf
rt9:     pushfd
        push    dword 0x40
        push    dword i9
        iretd
i9:     mov     ax, 0x48                ; data descriptor with A=0 (control)
        mov     ds, ax
        mov     ax, 0x10
        mov     ds, ax
        jmp     0x08:b9
b9:     PUTS    "9  access bytes after far JMP 28, CALL 30, RETF 38, IRETD 40, MOV DS 48: "
        mov     ebx, 0x28
.l:     movzx   eax, byte [gdt+ebx+5]
        call    hex8
        PUTS    " "
        add     ebx, 8
        cmp     ebx, 0x50
        jb      .l
        PUTS    {"(9A = A clear, 9B/93 = A set)", 10}
        ; paging: PD 0x20000; PT0 0x21000 identity 0-4 MB, 0x81000 read-only;
        ; PDE1 -> PT1 0x22000 (all not present), PDE2 -> PT2 0x23000 (PTE0: present, RO)
        mov     edi, 0x20000
        mov     ecx, 4*1024
        xor     eax, eax
        rep stosd
        mov     dword [0x20000], 0x21000 | 0x23   ; A set
        mov     dword [0x20004], 0x22000 | 3      ; A clear
        mov     dword [0x20008], 0x23000 | 3      ; A clear
        mov     dword [0x23000], 0x00000 | 1      ; present, read-only, A clear
        mov     edi, 0x21000
        mov     eax, 3
.pt:    stosd
        add     eax, 0x1000
        cmp     edi, 0x22000
        jb      .pt
        and     dword [0x21000 + 0x81*4], ~2
        mov     dword [0x81000], 0x80000001
        mov     dword [0x81004], 0x00000080
        mov     eax, 0x20000
        mov     cr3, eax
        mov     eax, cr0
        or      eax, 0x80010000         ; PG, WP
        mov     cr0, eax
        jmp     $+2
        ; README 2: accessed bits on a walk that faults
        RESUME  n2a
        PUTS    "2a mov eax,[0x400000] (PDE1 A=0, PTE not present): "
        mov     eax, [0x400000]
        PUTS    {"no fault", 10}
n2a:    PUTS    "   PDE1="
        mov     eax, [0x20004]
        call    hex32
        PUTS    {10}
        RESUME  n2b
        PUTS    "2b mov [0x800000],eax (PDE2 A=0, PTE read-only A=0, WP=1): "
        mov     [0x800000], eax
        PUTS    {"no fault", 10}
n2b:    PUTS    "   PDE2="
        mov     eax, [0x20008]
        call    hex32
        PUTS    " PTE="
        mov     eax, [0x23000]
        call    hex32
        PUTS    {10}
        ; README 7: RCL/RCR on a memory operand whose store faults
        RESUME  n7a
        PUTS    "7a rcl dword [0x81000],1 (=80000001, CF=0 OF=0 -> CF=1 OF=1): "
        push    dword 0x002
        popfd
        rcl     dword [0x81000], 1
        PUTS    {"no fault", 10}
n7a:    RESUME  n7b
        PUTS    "7b rcr byte [0x81004],cl (=80, CL=1, CF=1 OF=1 -> CF=0 OF=0): "
        mov     cl, 1
        push    dword 0x803
        popfd
        rcr     byte [0x81004], cl
        PUTS    {"no fault", 10}
n7b:    PUTS    "   memory after: "
        mov     eax, [0x81000]
        call    hex32
        PUTS    " "
        mov     eax, [0x81004]
        call    hex32
        PUTS    {10, "done", 10}
        cli
        hlt
        jmp     $-2
farfn:  retf
; handlers: [esp] handler-entry EFLAGS, vector, error code, EIP, CS, EFLAGS
v6:     push    dword 0
        push    dword 6
        jmp     exc
v13:    push    dword 13
        jmp     exc
v14:    push    dword 14
exc:    pushfd
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        PUTS    "vector "
        mov     eax, [esp+4]
        call    hex8
        PUTS    " err="
        mov     eax, [esp+8]
        call    hex32
        PUTS    " EIP="
        mov     eax, [esp+12]
        call    hex32
        PUTS    " frame EFLAGS="
        mov     eax, [esp+20]
        call    hex32
        PUTS    " handler EFLAGS="
        mov     eax, [esp]
        call    hex32
        cmp     dword [esp+4], 14
        jne     .n
        PUTS    " CR2="
        mov     eax, cr2
        call    hex32
.n:     PUTS    {10}
        mov     eax, [resume]
        mov     [esp+12], eax
        add     esp, 12
        iretd
gate:   mov     [idt+ebx*8], ax         ; EAX = handler, EBX = vector
        mov     word [idt+ebx*8+2], 0x08
        mov     word [idt+ebx*8+4], 0x8e00
        shr     eax, 16
        mov     [idt+ebx*8+6], ax
        ret
puts:   lodsb
        test    al, al
        jz      .r
        out     0xe9, al
        jmp     puts
.r:     ret
hex8:   push    ecx
        mov     ecx, 2
        rol     eax, 24
        jmp     hexl
hex32:  push    ecx
        mov     ecx, 8
hexl:   rol     eax, 4
        push    eax
        and     al, 15
        add     al, '0'
        cmp     al, '9'
        jbe     .d
        add     al, 7
.d:     out     0xe9, al
        pop     eax
        loop    hexl
        pop     ecx
        ret
%macro DESC 3                           ; base 0: limit, access byte, flags (G/B nibble)
        dw      (%1) & 0xffff, 0
        db      0, %2, (((%1) >> 16) & 0xf) | %3, 0
%endmacro
        align 8
gdt:    dq      0
        DESC    0xfffff, 0x9b, 0xc0     ; 08 code, flat
        DESC    0xfffff, 0x93, 0xc0     ; 10 data, flat
        DESC    0xff, 0x93, 0x40        ; 18 data, limit 0xFF
        DESC    0xfff, 0x97, 0x40       ; 20 data, expand-down, limit 0xFFF, B=1
        DESC    0xfffff, 0x9a, 0xc0     ; 28 code, A clear (far JMP)
        DESC    0xfffff, 0x9a, 0xc0     ; 30 code, A clear (far CALL)
        DESC    0xfffff, 0x9a, 0xc0     ; 38 code, A clear (RETF)
        DESC    0xfffff, 0x9a, 0xc0     ; 40 code, A clear (IRETD)
        DESC    0xfffff, 0x92, 0xc0     ; 48 data, A clear (MOV DS)
gdt_end:
gdtr:   dw      gdt_end - gdt - 1
        dd      gdt
idtr:   dw      15*8 - 1
        dd      idt
resume: dd      0
scratch: dd     0
        align 8
idt:    times 15*8 db 0
        align 512, db 0
program_end:
ASM
cat > bochsrc <<'RC'
megs: 16
cpu: model=p2_klamath
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
floppya: 1_44=img, status=inserted
boot: floppy
display_library: rfb, options="timeout=0"
port_e9_hack: enabled=1
log: bochs.log
plugin_ctrl: speaker=0, sb16=0, es1370=0, usb_uhci=0, serial=0, parallel=0, e1000=0, ne2k=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
RC
run() {
    nasm -f bin -I "$root/tests/guests/" "$1.asm" -o img
    truncate -s 1474560 img
    (echo c; sleep 12) | timeout 8 bochs -q -f bochsrc > out.txt 2>&1 || true
    # the guest's lines (everything after the debugger's `c`)
    sed -n '/<bochs:1> c/,$p' out.txt | sed 1d | grep -v -E '^[0-9]{11}[a-z]\[|^ALSA'
}
echo "== real mode (t.asm)"
run t
echo "== protected mode / paging (p.asm)"
run p
