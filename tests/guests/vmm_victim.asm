; vmm_victim.asm — the victim of tests/vmm_isolation.rs: a Multiboot v1 kernel that fills
; most of its RAM with a pattern derived from each word's address, then checks it again
; and again for as long as it runs.
;
; Built by tests/vmm_isolation.rs with `nasm -f bin` (a flat image at 1 MiB whose Multiboot
; header carries the a.out-kludge address fields, Multiboot Specification 0.6.96 §3.1.3)
; and run in a 16 MiB VM beside the attacker (tests/guests/vmm_attack.asm). It prints on
; the debug console (port 0xE9):
;   "victim: filled 00400000-00c00000"     once the pattern is written,
;   "victim: pass N ok"                    after every full verification pass,
;   "victim: CORRUPT at A read X want Y"   at the first word that differs, then stops
;                                          (CLI; HLT: the VMM ends the VM as DeadHalt).
;
; The kernel never leaves its RAM: no device memory, no paging, interrupts off. Its SLT
; therefore never changes while it runs, which lets the test hash the VM's second-level
; tables before and after the attack.
;
; Pattern: word at address A (4-aligned) = (A * 9E3779B1h) xor 5EED1E55h, mod 2^32 — a
; multiplicative hash (Knuth's golden-ratio constant), so no two words in the region are
; equal and a word copied elsewhere is recognisable; the test recomputes it host-side.

bits 32
org 0x100000

DEBUGCON        equ 0xe9
PATTERN_START   equ 0x00400000
PATTERN_END     equ 0x00c00000          ; 8 MiB of the VM's 16 MiB
PATTERN_MUL     equ 0x9e3779b1
PATTERN_XOR     equ 0x5eed1e55

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

%include "multiboot.inc"

; ---- Entry ------------------------------------------------------------------------------

entry:
    ; Multiboot §3.2: flat 32-bit CS and DS/ES/SS, interrupts off. The segments are used
    ; as the loader left them (nothing here reloads a selector).
    mov esp, stack_top
    cld

    ; Fill the region.
    mov edi, PATTERN_START
.fill:
    mov eax, edi
    imul eax, eax, PATTERN_MUL
    xor eax, PATTERN_XOR
    mov [edi], eax
    add edi, 4
    cmp edi, PATTERN_END
    jb .fill

    mov esi, msg_filled
    call puts
    mov eax, PATTERN_START
    call put_hex32
    mov al, '-'
    out DEBUGCON, al
    mov eax, PATTERN_END
    call put_hex32
    call newline

    xor ebx, ebx                        ; passes completed
.pass:
    mov edi, PATTERN_START
.check:
    mov eax, edi
    imul eax, eax, PATTERN_MUL
    xor eax, PATTERN_XOR
    cmp [edi], eax
    jne .corrupt
    add edi, 4
    cmp edi, PATTERN_END
    jb .check
    inc ebx
    mov esi, msg_pass
    call puts
    mov eax, ebx
    call put_dec
    mov esi, msg_ok
    call puts
    jmp .pass

.corrupt:
    mov edx, eax
    mov esi, msg_corrupt
    call puts
    mov eax, edi
    call put_hex32
    mov esi, msg_read
    call puts
    mov eax, [edi]
    call put_hex32
    mov esi, msg_want
    call puts
    mov eax, edx
    call put_hex32
    call newline
    cli
    hlt
    jmp $

; ---- Debug-console output ---------------------------------------------------------------

; Print the NUL-terminated string at ESI.
puts:
    push eax
    push esi
.next:
    lodsb
    test al, al
    jz .done
    out DEBUGCON, al
    jmp .next
.done:
    pop esi
    pop eax
    ret

newline:
    push eax
    mov al, 10
    out DEBUGCON, al
    pop eax
    ret

; EAX as eight lower-case hex digits.
put_hex32:
    push eax
    push ecx
    push edx
    mov edx, eax
    mov ecx, 8
.digit:
    rol edx, 4
    mov eax, edx
    and eax, 0xf
    mov al, [hex_digits + eax]
    out DEBUGCON, al
    dec ecx
    jnz .digit
    pop edx
    pop ecx
    pop eax
    ret

; EAX in decimal.
put_dec:
    push eax
    push ecx
    push edx
    push ebx
    mov ebx, 10
    xor ecx, ecx
.div:
    xor edx, edx
    div ebx
    push edx
    inc ecx
    test eax, eax
    jnz .div
.emit:
    pop eax
    add al, '0'
    out DEBUGCON, al
    dec ecx
    jnz .emit
    pop ebx
    pop edx
    pop ecx
    pop eax
    ret

; ---- Data -------------------------------------------------------------------------------

hex_digits:     db "0123456789abcdef"
msg_filled:     db "victim: filled ", 0
msg_pass:       db "victim: pass ", 0
msg_ok:         db " ok", 10, 0
msg_corrupt:    db "victim: CORRUPT at ", 0
msg_read:       db " read ", 0
msg_want:       db " want ", 0

align 4
file_end:

; ---- BSS --------------------------------------------------------------------------------

absolute file_end
alignb 16
                resb 4096
stack_top:
bss_end:
