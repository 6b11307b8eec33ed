//! The fixed part of every test image (nasm source): the setup for the mode, `prep` (load one
//! case's state from its blob and jump to its code), `post` (save the state, dump it on port
//! 0xE9, go to the next case), the exception/interrupt stubs, the GDT. The per-case code and
//! blobs are generated in Rust and included with `incbin`.
//!
//! Memory map (linear = physical):
//!   0x0000 real-mode IVT   0x1000 PM IDT (256 gates)   0x1800 GDT (copied there)   0x2000 TSS   0x2100 LDT
//!   0x2E00 variables              0x2FA8 the dump record (SV)   0x3000 scratch (64 bytes)
//!   0x3040 stack area (64 bytes)  0x5000 page directory         0x6000 page table
//!   0x7000 top of the harness stack  0x7C00 loader  0x7E00 prologue (post at 0x7E10)
//!   0x9400 case code (< 0xFF00)   0x10000 case blobs            0x80000 not-present page
//!   0x81000 read-only page (paging mode)

use super::gen::{Mode, BLOB_BASE, CODE_BASE, POST};

pub fn prologue(mode: Mode) -> String {
    let mut s = String::new();
    let paging = mode == Mode::Pm32Pg;
    s.push_str(&format!(
        r#"%include "loader.inc"
%define SV 0x2FA8
%define SCR 0x3000
%define DSTACK 0x7000
%define cur 0x2E00
%define var_entry 0x2E04
%define var_esi 0x2E08
%define var_ebx 0x2E0C
%define var_ds 0x2E10
%define var_fs 0x2E12
%define BLOB_SZ 192
%define DUMP_LEN 216
%define IDT 0x1000
%define PD 0x5000
%define PT 0x6000
%define NP_PAGE 0x80000
%define RO_PAGE 0x81000
%define CODE_BASE {CODE_BASE:#x}
%define BLOB_BASE {BLOB_BASE:#x}
%define POST {POST:#x}
%define PAGING {paging}
%define CR0_BASE {cr0:#x}
%define CR3_BASE {cr3:#x}
        bits 16
prog:   jmp near start
        times 8-($-prog) db 0
first_blob: dd BLOB_BASE
        times 16-($-prog) db 0
"#,
        paging = paging as u8,
        cr0 = mode.cr0_base(),
        cr3 = if paging { 0x5000 } else { 0 }
    ));
    if mode == Mode::Real {
        s.push_str(REAL);
    } else {
        s.push_str(PM);
    }
    s.push_str(COMMON_TAIL);
    s
}

const REAL: &str = r#"
post:   mov [cs:SV+4], eax
        mov [cs:SV+8], ecx
        mov [cs:SV+12], edx
        mov [cs:SV+16], ebx
        mov [cs:SV+20], esp
        mov [cs:SV+24], ebp
        mov [cs:SV+28], esi
        mov [cs:SV+32], edi
        mov [cs:SV+40], es
        mov [cs:SV+44], ss
        mov [cs:SV+46], ds
        mov [cs:SV+48], fs
        mov [cs:SV+50], gs
        mov ax, 0
        mov ss, ax
        mov esp, DSTACK
        pushfd
        pop dword [cs:SV+36]
        cli
        cld
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov eax, cr0
        mov [SV+52], eax
        mov eax, cr2
        mov [SV+56], eax
        mov eax, cr3
        mov [SV+60], eax
        mov eax, cr4
        mov [SV+64], eax
        o32 sgdt [SV+68]
        o32 sidt [SV+74]
        mov dword [SV+80], 0
        mov dword [SV+84], 0
        o32 lgdt [base_gdtr]
        o32 lidt [base_idtr]
        xor eax, eax
        mov cr2, eax
        mov cr3, eax
        mov cr4, eax
        mov eax, 0x10
        mov cr0, eax
        mov si, SV
        mov cx, DUMP_LEN
.d:     mov al, [si]
        out 0xe9, al
        inc si
        dec cx
        jnz .d
        add dword [cur], BLOB_SZ
        jmp prep

start:  cli
        mov al, 0xff
        out 0x21, al
        out 0xa1, al
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, DSTACK
        mov si, gdt
        mov di, 0x1800
.g:     mov eax, [si]
        mov [di], eax
        add si, 4
        add di, 4
        cmp si, gdt_end
        jne .g
        o32 lgdt [base_gdtr]
        o32 lidt [base_idtr]
        mov eax, 0x10
        mov cr0, eax
        xor eax, eax
        mov cr2, eax
        mov cr3, eax
        mov cr4, eax
        xor di, di
        mov ax, stubs
.ivt:   mov [di], ax
        mov word [di+2], 0
        add ax, 9
        add di, 4
        cmp di, 1024
        jne .ivt
        mov eax, [first_blob]
        mov [cur], eax
        ; fall into prep

prep:   cli
        cld
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, DSTACK
        mov eax, [cur]
        cmp eax, blobs_end
        jae finish
        mov ebx, eax
        shr eax, 4
        mov fs, ax
        and bx, 15
        xor di, di
.cp:    mov eax, [fs:bx+di+64]
        mov [di+SCR], eax
        add di, 4
        cmp di, 128
        jne .cp
        mov byte [SV], 0x43
        mov byte [SV+1], 0xff
        mov ax, [fs:bx]
        mov [SV+2], ax
        mov word [SV+42], 0
        mov eax, [fs:bx+4]
        mov [var_entry], eax
        mov eax, [fs:bx+8+12]
        mov [var_ebx], eax
        mov eax, [fs:bx+8+24]
        mov [var_esi], eax
        mov ax, [fs:bx+50]
        mov [var_ds], ax
        mov ax, [fs:bx+52]
        mov [var_fs], ax
        mov eax, [fs:bx+44]
        mov cr0, eax
        push dword [fs:bx+40]
        popfd
        mov es, [fs:bx+48]
        mov gs, [fs:bx+54]
        mov ss, [fs:bx+56]
        mov esp, [fs:bx+8+16]
        mov eax, [fs:bx+8]
        mov ecx, [fs:bx+8+4]
        mov edx, [fs:bx+8+8]
        mov ebp, [fs:bx+8+20]
        mov edi, [fs:bx+8+28]
        mov fs, [cs:var_fs]
        mov ebx, [cs:var_ebx]
        mov esi, [cs:var_esi]
        mov ds, [cs:var_ds]
        jmp word [cs:var_entry]

finish: mov al, 0
        out 0xf4, al
.h:     hlt
        jmp .h

stubs:
%assign v 0
%rep 256
        mov byte [cs:SV+1], v
        jmp near post
%assign v v+1
%endrep
%if ($-stubs) != 256*9
%error stub size
%endif
%define IDT_BASE 0
%define IDT_LIMIT 0x3ff
"#;

const PM: &str = r#"
        bits 32
post:   mov [SV+4], eax
        mov [SV+8], ecx
        mov [SV+12], edx
        mov [SV+16], ebx
        mov [SV+20], esp
        mov [SV+24], ebp
        mov [SV+28], esi
        mov [SV+32], edi
        mov [SV+40], es
        mov [SV+44], ss
        mov [SV+46], ds
        mov [SV+48], fs
        mov [SV+50], gs
        mov ax, 0x10
        mov ss, ax
        mov esp, DSTACK
        pushfd
        pop dword [SV+36]
        cli
        cld
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov eax, cr0
        mov [SV+52], eax
        mov eax, cr2
        mov [SV+56], eax
        mov eax, cr3
        mov [SV+60], eax
        mov eax, cr4
        mov [SV+64], eax
        sgdt [SV+68]
        sidt [SV+74]
        str word [SV+80]
        sldt word [SV+82]
%if PAGING
        mov eax, [PT+12]
        mov [SV+84], eax
%else
        mov dword [SV+84], 0
%endif
        lgdt [base_gdtr]
        lidt [base_idtr]
        xor eax, eax
        lldt ax
        mov cr2, eax
        mov cr4, eax
        mov eax, CR3_BASE
        mov cr3, eax
        mov eax, CR0_BASE
        mov cr0, eax
        mov esi, SV
        mov ecx, DUMP_LEN
.d:     mov al, [esi]
        out 0xe9, al
        inc esi
        dec ecx
        jnz .d
        add dword [cur], BLOB_SZ
        jmp prep

        bits 16
start:  cli
        mov al, 0xff
        out 0x21, al
        out 0xa1, al
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, DSTACK
        mov si, gdt
        mov di, 0x1800
.g:     mov eax, [si]
        mov [di], eax
        add si, 4
        add di, 4
        cmp si, gdt_end
        jne .g
        o32 lgdt [base_gdtr]
        mov eax, 0x11
        mov cr0, eax
        jmp dword 0x08:pm32
        bits 32
pm32:   mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, DSTACK
        mov edi, IDT
        mov eax, stubs
        mov ecx, 256
.i:     mov [edi], ax
        mov word [edi+2], 0x08
        mov word [edi+4], 0x8E00
        mov edx, eax
        shr edx, 16
        mov [edi+6], dx
        add eax, 12
        add edi, 8
        dec ecx
        jnz .i
        lidt [base_idtr]
        mov dword [0x2100], 0x0000FFFF
        mov dword [0x2104], 0x00CF9200
        mov dword [0x2108], 0x0000FFFF
        mov dword [0x210C], 0x00CF9B00
        xor eax, eax
        mov edi, 0x2000
        mov ecx, 26
.t:     mov [edi], eax
        add edi, 4
        dec ecx
        jnz .t
        mov cr2, eax
        mov cr3, eax
        mov cr4, eax
%if PAGING
        mov edi, PT
        mov eax, 0x63
        mov ecx, 1024
.p:     mov [edi], eax
        add eax, 0x1000
        add edi, 4
        dec ecx
        jnz .p
        mov dword [PT + (NP_PAGE >> 12) * 4], 0
        mov dword [PT + (RO_PAGE >> 12) * 4], RO_PAGE | 0x61
        mov edi, PD
        mov ecx, 1024
        xor eax, eax
.q:     mov [edi], eax
        add edi, 4
        dec ecx
        jnz .q
        mov dword [PD], PT | 0x23
        mov edi, RO_PAGE
        mov ecx, 1024
.z:     mov [edi], eax
        add edi, 4
        dec ecx
        jnz .z
        mov eax, PD
        mov cr3, eax
%endif
        mov eax, CR0_BASE
        mov cr0, eax
        mov eax, [first_blob]
        mov [cur], eax

prep:   cli
        cld
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, DSTACK
        mov esi, [cur]
        cmp esi, blobs_end
        jae finish
        xor edi, edi
.cp:    mov eax, [esi+edi+64]
        mov [edi+SCR], eax
        add edi, 4
        cmp edi, 128
        jne .cp
%if PAGING
        and dword [PT+12], ~0x60
        invlpg [SCR]
%endif
        mov dword [0x1844], 0x00008900
        mov byte [SV], 0x43
        mov byte [SV+1], 0xff
        mov ax, [esi]
        mov [SV+2], ax
        mov word [SV+42], 0x08
        mov eax, [esi+4]
        mov [var_entry], eax
        mov eax, [esi+44]
        mov cr0, eax
        push dword [esi+40]
        popfd
        mov es, [esi+48]
        mov fs, [esi+52]
        mov gs, [esi+54]
        mov ss, [esi+56]
        mov esp, [esi+8+16]
        mov eax, [esi+8]
        mov ecx, [esi+8+4]
        mov edx, [esi+8+8]
        mov ebx, [esi+8+12]
        mov ebp, [esi+8+20]
        mov edi, [esi+8+28]
        mov ds, [esi+50]
        mov esi, [esi+8+24]
        jmp dword [cs:var_entry]

finish: mov al, 0
        out 0xf4, al
.h:     hlt
        jmp .h

stubs:
%assign v 0
%rep 256
        mov byte [SV+1], v
        jmp near post
%assign v v+1
%endrep
%if ($-stubs) != 256*12
%error stub size
%endif
%define IDT_BASE IDT
%define IDT_LIMIT 0x7ff
"#;

const COMMON_TAIL: &str = r#"
        align 8
; code descriptors have the accessed bit set: QEMU's TCG does not set it on CS loads
; (README "QEMU vs SDM")
gdt:    dq 0                            ; 0x00
        dd 0x0000FFFF, 0x00CF9B00       ; 0x08 code32 flat
        dd 0x0000FFFF, 0x00CF9200       ; 0x10 data flat
        dd 0x0000FFFF, 0x00CF9200       ; 0x18 data flat (alias)
        dd 0x0000FFFF, 0x00CF9B00       ; 0x20 code32 flat (alias)
        dd 0x0000FFFF, 0x00009B00       ; 0x28 code16, limit 64K
        dd 0x0000FFFF, 0x00CFF200       ; 0x30 data flat, DPL 3
        dd 0x0000FFFF, 0x00CF1200       ; 0x38 data, not present
        dd 0x20000067, 0x00008900       ; 0x40 TSS32 available at 0x2000
        dd 0x2100000F, 0x00008200       ; 0x48 LDT at 0x2100
        dd 0x00000FFF, 0x00409600       ; 0x50 data expand-down, limit 0xFFF
        dd 0x0000FFFF, 0x00CF9F00       ; 0x58 code32 conforming
        dd 0x0000FFFF, 0x00CFFB00       ; 0x60 code32 DPL 3
        dd 0x0000FFFF, 0x00CF9000       ; 0x68 data read-only
        dd 0x0000FFFF, 0x00CF9900       ; 0x70 code32 execute-only
gdt_end:
base_gdtr: dw gdt_end - gdt - 1
        dd 0x1800
base_idtr: dw IDT_LIMIT
        dd IDT_BASE
%if ($-$$) > CODE_BASE - 0x7c00
%error prologue too large
%endif
        times CODE_BASE - 0x7c00 - ($-$$) db 0
        incbin "code.bin"
        times BLOB_BASE - 0x7c00 - ($-$$) db 0
        incbin "blobs.bin"
blobs_end:
program_end:
"#;
