; v386_host.asm — an x86 host (a tiny VMM) that uses the V386 extension's instructions to
; run small guests and handles their VM exits itself. Self-checking: one test per exit
; reason of docs/v386.md Table 8-1, plus the guest's own privileged state (§5.3) and
; isolation through the second-level tables (§6).
;
; Build:  nasm -f bin -I tests/guests/ tests/guests/v386_host.asm -o v386_host.img
; v386:   load flat at 0x7C00, start in real mode at 0000:7E00, debug-exit port 0xF4
;         (tests/v386_host.rs). QEMU has no V386, so this guest runs on v386 only.
;
; Output: one line per case on port 0xE9, "NAME: ok" or "FAIL: NAME what=GOT want EXPECTED",
; then "PASS" and 0 to the isa-debug-exit port (1 after any FAIL). Only deterministic
; values are printed (tests/golden/v386_host.txt holds the exact output).
;
; Host-physical memory map (the machine has 32 MiB):
;   0x07C00  this image (loader sector + program)
;   0x10000  host IDT (256 interrupt gates)
;   0x12000  the guest console's buffer
;   0x90000  host stack top
;   0x200000 VCB (docs/v386.md §4)
;   0x202000 I/O bitmap, 8 KiB (§4.6): every port intercepted but 80h-8Fh
;   0x204000 SLT level 3 (root), 0x205000 level 2, 0x206000 level 1 (§6.2)
;   0x400000 guest RAM, 64 KiB: GPA 0 -> HPA 0x400000 (page by page through level 1)
;
; Guest-physical map:
;   0x1000  guest code (copied from guest_blob below)
;   0x6000  stack top (grows into page 5); GDT at 0x6000, IDT at 0x6800
;   0x7000  TSS of the running guest task, 0x7080 a second TSS
;   0x8000  the guest's results
;   0x9000  guest page directory, 0xA000 guest page table (isolation case)
;   0xD000  read-only in the SLT (R+X)
;   0xE000  not mapped until the NESTED_PAGE_FAULT case maps it
;   0xF000  misconfigured (W without R) during the SLT_MISCONFIG case

%include "loader.inc"

%define ABS(x) ((x) - $$ + 0x7c00)

DEBUGCON        equ 0xe9
DEBUG_EXIT      equ 0xf4

; Host
HOST_CODE       equ 0x08
HOST_DATA       equ 0x10
HOST_TSS_SEL    equ 0x18
HOST_IDT        equ 0x10000
CONS_BUF        equ 0x12000
HOST_STACK      equ 0x90000

VCB             equ 0x200000
IOBM            equ 0x202000
SLT3            equ 0x204000
SLT2            equ 0x205000
SLT1            equ 0x206000
GUEST_HPA       equ 0x400000
GUEST_PAGES     equ 16

; Guest-physical addresses
GCODE           equ 0x1000
GSTACK          equ 0x6000
GGDT            equ 0x6000
GGDT_LIMIT      equ 0x37
GIDT            equ 0x6800
GIDT_LIMIT      equ 0x3ff
GTSS0           equ 0x7000
GTSS1           equ 0x7080
GDATA           equ 0x8000
GPD             equ 0x9000
GPT             equ 0xa000
GRO_PAGE        equ 0xd000
GDEMAND_PAGE    equ 0xe000
GMISCONF_PAGE   equ 0xf000

; Guest selectors (guest GDT at GGDT)
G_CODE0         equ 0x08
G_DATA0         equ 0x10
G_CODE3         equ 0x1b
G_DATA3         equ 0x23
G_TSS0          equ 0x28
G_TSS1          equ 0x30

; SLT entry bits (Table 6-1)
SLT_R           equ 1
SLT_W           equ 2
SLT_X           equ 4
SLT_RWX         equ 7

; VCB control area (§4.2)
C_REVISION      equ 0x000
C_VTAG          equ 0x004
C_TLB           equ 0x006
C_EXEC          equ 0x008
C_INTERCEPTS    equ 0x00c
C_EXCBITMAP     equ 0x010
C_CR_READ       equ 0x014
C_CR_WRITE      equ 0x015
C_DR_READ       equ 0x016
C_DR_WRITE      equ 0x017
C_IOBM          equ 0x018
C_SLT_ROOT      equ 0x020
C_PTIMER        equ 0x030
C_INJECT        equ 0x034
; Guest-state area (§4.3)
G_EAX           equ 0x100
G_ECX           equ 0x104
G_EDX           equ 0x108
G_EBX           equ 0x10c
G_ESP           equ 0x110
G_ESI           equ 0x118
G_EIP           equ 0x120
G_EFLAGS        equ 0x124
G_CR0           equ 0x128
G_CR3           equ 0x130
G_DR6           equ 0x148
G_DR7           equ 0x14c
G_ES            equ 0x150
G_CS            equ 0x160
G_SS            equ 0x170
G_DS            equ 0x180
G_FS            equ 0x190
G_GS            equ 0x1a0
G_LDTR          equ 0x1b0
G_TR            equ 0x1c0
G_GDTR          equ 0x1d0
G_IDTR          equ 0x1d8
G_CPL           equ 0x1e0
G_SYSENTER_CS   equ 0x1e4
; Exit-information area (§4.4)
X_REASON        equ 0x300
X_CHECK         equ 0x304
X_QUAL          equ 0x308
X_GLA           equ 0x310
X_LEN           equ 0x314
X_GPA           equ 0x318
X_INTR_INFO     equ 0x320
X_INTR_ERR      equ 0x324
X_IDT_VEC       equ 0x328
X_BYTES         equ 0x330
X_RETIRED       equ 0x340
; Host-save area (§4.5)
H_EIP           equ 0x420
H_CR0           equ 0x428
H_CPL           equ 0x4ec

; EXEC_CONTROLS (Table 4-1) and INSTR_INTERCEPTS (Table 4-2)
EX_EXTINT       equ 1 << 0
EX_INTWIN       equ 1 << 2
EX_PTIMER       equ 1 << 3
IC_HLT          equ 1 << 0
IC_INVLPG       equ 1 << 1
IC_DESC_STORE   equ 1 << 8
IC_CLI_STI      equ 1 << 9
IC_INT_N        equ 1 << 12
IC_TASK_SWITCH  equ 1 << 13

; Exit reasons (Table 8-1)
R_EXCEPTION_NMI equ 0
R_EXTINT        equ 1
R_TRIPLE_FAULT  equ 2
R_INTWIN        equ 7
R_TASK_SWITCH   equ 9
R_CPUID         equ 10
R_HLT           equ 12
R_INVLPG        equ 14
R_VCALL         equ 18
R_CR_ACCESS     equ 28
R_DR_ACCESS     equ 29
R_IO            equ 30
R_RDMSR         equ 31
R_WRMSR         equ 32
R_INVALID_GUEST equ 33
R_NPF           equ 48
R_SLT_MISCONFIG equ 49
R_PTIMER        equ 52
R_SENSITIVE     equ 64

; NESTED_PAGE_FAULT qualification bits (Table 8-5)
NPF_READ        equ 1 << 0
NPF_WRITE       equ 1 << 1
NPF_FETCH       equ 1 << 2
NPF_PERM_R      equ 1 << 3
NPF_PERM_W      equ 1 << 4
NPF_PERM_X      equ 1 << 5
NPF_PRESENT     equ 1 << 6
NPF_GLA         equ 1 << 7
NPF_FINAL       equ 1 << 8
NPF_SYSTEM      equ 1 << 10
NPF_L1          equ 1 << 12
NPF_L2          equ 2 << 12
NPF_L3          equ 3 << 12

; The guest's marker for writes that must never land in host memory.
MARKER          equ 0x0badc0de

; A guest address: where a label of guest_blob lands in guest-physical memory.
%define G(x) ((x) - guest_blob + GCODE)

; ---------------------------------------------------------------------------------------
; Macros
; ---------------------------------------------------------------------------------------

; VMENTER (0F 0A, docs/v386.md §7.1) and VCALL (0F 0C, §7.2): nasm does not know them.
%macro VMENTER 0
        db      0x0f, 0x0a
%endmacro
%macro VCALL 0
        db      0x0f, 0x0c
%endmacro

; PRINT "text", 10 — print on the debug console; preserves every register.
%macro PRINT 1+
        call    print_inline
        db      %1, 0
%endmacro

; HEX value, digits — print a value in upper-case hex; preserves every register.
%macro HEX 2
        push    eax
        push    ecx
        mov     eax, %1
        mov     ecx, %2
        call    print_hex
        pop     ecx
        pop     eax
%endmacro

; CASE "NAME" — first thing in a case routine: names the case and remembers the stack
; so a failed CHECK can return from the routine (check_failed).
%macro CASE 1
        mov     [case_esp], esp
        mov     dword [case_name], %%n
        jmp     %%go
%%n:    db      %1, 0
%%go:
%endmacro

; NAME "NAME" — rename the case half-way (a routine testing two reasons).
%macro NAME 1
        mov     dword [case_name], %%n
        jmp     %%go
%%n:    db      %1, 0
%%go:
%endmacro

; OK — the case passed: print "NAME: ok".
%macro OK 0
        call    print_ok
%endmacro

; CHECK got, want, "what" — on a mismatch print "FAIL: NAME what=GOT want WANT" and
; return from the case routine. `want` must not be EAX.
%macro CHECK 3
        push    eax
        push    edx
        mov     eax, %1
        mov     edx, %2
        cmp     eax, edx
        jne     %%bad
        pop     edx
        pop     eax
        jmp     %%ok
%%bad:  call    check_failed
        db      %3, 0
%%ok:
%endmacro

; CHECK_NE got, other, "what" — the opposite: the values must differ (the guest's own
; state against the host's).
%macro CHECK_NE 3
        push    eax
        push    edx
        mov     eax, %1
        mov     edx, %2
        cmp     eax, edx
        je      %%bad
        pop     edx
        pop     eax
        jmp     %%ok
%%bad:  call    check_same_failed
        db      %3, 0
%%ok:
%endmacro

; EXIT_IS reason, qualification, length — the exit the last VMENTER returned (EAX) and
; its exit information (§4.4; qualification bits 63:32 must be 0).
%macro EXIT_IS 3
        CHECK   eax, %1, "reason"
        CHECK   [VCB+X_QUAL], %2, "qual"
        CHECK   [VCB+X_QUAL+4], 0, "qual_hi"
        CHECK   [VCB+X_LEN], %3, "len"
%endmacro

; EIP_IS label — the guest EIP in the VCB is that guest label's address.
%macro EIP_IS 1
        CHECK   [VCB+G_EIP], G(%1), "eip"
%endmacro

; SEGREC offset, selector, attributes, base, limit — a segment record (§4.3).
%macro SEGREC 5
        mov     word [VCB+%1], %2
        mov     word [VCB+%1+2], %3
        mov     dword [VCB+%1+4], %4
        mov     dword [VCB+%1+8], %5
%endmacro

; SLT1_SET page, entry — level-1 SLT entry of guest page `page` (64-bit, high half 0).
%macro SLT1_SET 2
        mov     dword [SLT1 + 8 * (%1)], %2
        mov     dword [SLT1 + 8 * (%1) + 4], 0
%endmacro

; ---------------------------------------------------------------------------------------
; Real mode: A20, GDT, protected mode (SDM Vol. 3A §9.9.1)
; ---------------------------------------------------------------------------------------

        bits    16
start:                                  ; 0000:7E00
        cli
        cld
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7c00
        in      al, 0x92                ; fast A20 (port 92h bit 1), keeping bit 0 (reset) 0
        or      al, 2
        and     al, 0xfe
        out     0x92, al
        lgdt    [host_gdt_desc]
        mov     eax, cr0
        or      eax, 1                  ; CR0.PE
        mov     cr0, eax
        jmp     dword HOST_CODE:pm_entry

        bits    32
pm_entry:
        mov     ax, HOST_DATA
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     esp, HOST_STACK
        PRINT   "v386 host: protected mode", 10

        ; The host's own privileged state, chosen to differ from every guest's: CR0 with
        ; MP and NE (the guests run with PE|ET only), a TSS in TR (selector 18h; the guests
        ; use 28h), an IDT at 0x10000 (the guests': 0x6800).
        mov     eax, cr0
        or      eax, 0x22               ; MP (bit 1), NE (bit 5)
        mov     cr0, eax
        mov     ax, HOST_TSS_SEL
        ltr     ax
        call    build_host_idt
        lidt    [host_idt_desc]
        call    init_pic

        ; 1. Is V386 there? (docs/v386.md §2)
        mov     eax, 0x83860000
        cpuid
        cmp     ebx, 0x36383356         ; "V386"
        je      .sig_ok
        PRINT   "FAIL: CPUID 83860000h: no V386 signature", 10
        jmp     fail_exit
.sig_ok:
        mov     eax, 0x83860001
        cpuid
        test    edx, 2                  ; EDX bit 1: V386 mode
        jnz     .v386_ok
        PRINT   "FAIL: CPUID 83860001h: EDX.V386 = 0", 10
        jmp     fail_exit
.v386_ok:
        PRINT   "v386 host: CPUID 83860001h EAX="
        HEX     eax, 8
        PRINT   " EDX="
        HEX     edx, 8
        PRINT   10

        ; 2. The I/O bitmap, the SLT and the guest's memory.
        call    build_vm
        PRINT   "v386 host: guest RAM 64 KiB at GPA 0 -> HPA 00400000", 10

        ; 3. One case per exit reason.
        call    case_io
        call    case_hlt
        call    case_cpuid
        call    case_vcall
        call    case_exception
        call    case_triple_fault
        call    case_interrupt_window
        call    case_external_interrupt
        call    case_preemption_timer
        call    case_npf
        call    case_slt_misconfig
        call    case_invalid_guest_state
        call    case_control_checks
        call    case_cr_access
        call    case_dr_access
        call    case_msr
        call    case_invlpg
        call    case_sensitive
        call    case_task_switch
        ; 4. The guest sees its own privileged state.
        call    case_guest_state
        ; 5. Isolation.
        call    case_isolation

        cmp     byte [failed], 0
        jne     fail_exit
        PRINT   "PASS", 10
        mov     al, 0
        out     DEBUG_EXIT, al
        hlt

fail_exit:
        PRINT   "FAIL", 10
        mov     al, 1
        out     DEBUG_EXIT, al
        hlt

; ---------------------------------------------------------------------------------------
; Console and check helpers
; ---------------------------------------------------------------------------------------

; print_inline: the NUL-terminated string after the CALL; returns after it.
print_inline:
        xchg    esi, [esp]
        push    eax
.next:  lodsb
        test    al, al
        jz      .done
        out     DEBUGCON, al
        jmp     .next
.done:  pop     eax
        xchg    esi, [esp]
        ret

; print_str: ESI -> NUL-terminated string.
print_str:
        push    eax
        push    esi
.next:  lodsb
        test    al, al
        jz      .done
        out     DEBUGCON, al
        jmp     .next
.done:  pop     esi
        pop     eax
        ret

; print_hex: EAX in ECX hex digits.
print_hex:
        push    eax
        push    ebx
        push    ecx
        push    edx
        mov     edx, eax
        mov     ebx, ecx
        shl     ecx, 2
        ror     edx, cl                 ; the wanted digits go to the top
.next:  rol     edx, 4
        mov     al, dl
        and     al, 0x0f
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'A' - '0' - 10
.out:   out     DEBUGCON, al
        dec     ebx
        jnz     .next
        pop     edx
        pop     ecx
        pop     ebx
        pop     eax
        ret

; print_ok: "NAME: ok".
print_ok:
        push    esi
        mov     esi, [case_name]
        call    print_str
        pop     esi
        PRINT   ": ok", 10
        ret

; check_failed: called by CHECK with EAX = got, EDX = want and the "what" string after
; the CALL (the CHECK's pushes are abandoned with the rest of the case's stack).
check_failed:
        pop     esi
        PRINT   "FAIL: "
        push    esi
        mov     esi, [case_name]
        call    print_str
        pop     esi
        PRINT   " "
        call    print_str
        PRINT   "="
        HEX     eax, 8
        PRINT   " want "
        HEX     edx, 8
        PRINT   10
        jmp     case_abort

check_same_failed:
        pop     esi
        PRINT   "FAIL: "
        push    esi
        mov     esi, [case_name]
        call    print_str
        pop     esi
        PRINT   " "
        call    print_str
        PRINT   "="
        HEX     eax, 8
        PRINT   ", must differ", 10
case_abort:
        mov     byte [failed], 1
        cli
        mov     al, 0xff                ; leave IRQ0 masked whatever the case did
        out     0x21, al
        mov     esp, [case_esp]
        ret                             ; from the case routine

; ---------------------------------------------------------------------------------------
; Host set-up
; ---------------------------------------------------------------------------------------

; build_host_idt: 256 interrupt gates (SDM Vol. 3A §6.11) to host_unexpected, but
; vector 20h (IRQ0 after init_pic) to host_irq0.
build_host_idt:
        mov     edi, HOST_IDT
        mov     ecx, 256
.gate:  mov     eax, host_unexpected
        cmp     ecx, 256 - 0x20
        jne     .set
        mov     eax, host_irq0
.set:   mov     edx, eax
        and     eax, 0xffff
        or      eax, HOST_CODE << 16
        and     edx, 0xffff0000
        or      edx, 0x8e00             ; present, DPL 0, 32-bit interrupt gate
        mov     [edi], eax
        mov     [edi + 4], edx
        add     edi, 8
        loop    .gate
        ret

; init_pic: both 8259As initialised (ICW1-ICW4), master at vectors 20h-27h, slave at
; 28h-2Fh, every IRQ masked.
init_pic:
        mov     al, 0x11
        out     0x20, al
        out     0xa0, al
        mov     al, 0x20
        out     0x21, al
        mov     al, 0x28
        out     0xa1, al
        mov     al, 0x04
        out     0x21, al
        mov     al, 0x02
        out     0xa1, al
        mov     al, 0x01
        out     0x21, al
        out     0xa1, al
        mov     al, 0xff
        out     0x21, al
        out     0xa1, al
        ret

host_unexpected:
        PRINT   "FAIL: unexpected interrupt or exception in the host", 10
        jmp     fail_exit

host_irq0:
        push    eax
        inc     dword [irq0_count]
        mov     al, 0x20                ; non-specific EOI
        out     0x20, al
        pop     eax
        iret

; build_vm: the I/O bitmap (§4.6), the SLT (§6.2) mapping guest-physical 0-64 KiB onto
; host-physical 0x400000 page by page, and the guest's memory: code, GDT, TSS.
build_vm:
        ; I/O bitmap: all ports intercepted but the DMA page registers 80h-8Fh, which
        ; pass through to the real device.
        mov     edi, IOBM
        mov     ecx, 8192 / 4
        mov     eax, 0xffffffff
        rep     stosd
        mov     word [IOBM + 0x80 / 8], 0
        ; SLT: three zeroed tables, then level 3 entry 0 -> level 2, level 2 entry 0 ->
        ; level 1, level 1 entries 0-15 -> the guest's pages.
        mov     edi, SLT3
        mov     ecx, 3 * 4096 / 4
        xor     eax, eax
        rep     stosd
        mov     dword [SLT3], SLT2 | SLT_RWX
        mov     dword [SLT2], SLT1 | SLT_RWX
        call    slt_map_all
        ; Guest RAM: zero, then the code, the GDT and nothing else.
        mov     edi, GUEST_HPA
        mov     ecx, GUEST_PAGES * 4096 / 4
        xor     eax, eax
        rep     stosd
        mov     esi, guest_blob
        mov     edi, GUEST_HPA + GCODE
        mov     ecx, guest_blob_end - guest_blob
        rep     movsb
        mov     esi, guest_gdt
        mov     edi, GUEST_HPA + GGDT
        mov     ecx, guest_gdt_end - guest_gdt
        rep     movsb
        ret

; slt_map_all: the level-1 entries as every case expects them: pages 0-15 RWX except
; 0xD000 (R+X: read-only) and 0xE000 (not present).
slt_map_all:
        push    eax
        push    ecx
        push    edi
        mov     edi, SLT1
        mov     eax, GUEST_HPA | SLT_RWX
        mov     ecx, GUEST_PAGES
.next:  mov     [edi], eax
        mov     dword [edi + 4], 0
        add     eax, 0x1000
        add     edi, 8
        loop    .next
        SLT1_SET GRO_PAGE >> 12, (GUEST_HPA + GRO_PAGE) | SLT_R | SLT_X
        SLT1_SET GDEMAND_PAGE >> 12, 0
        pop     edi
        pop     ecx
        pop     eax
        ret

; vcb_reset: EAX = guest EIP. A fresh VCB: controls with the I/O bitmap and the SLT,
; VTAG 1 with TLB_CONTROL = 1 (flush: the SLT may have changed since the last case,
; §6.5), and a flat 32-bit ring-0 guest in protected mode, paging off, IF = 0, its own
; GDT/IDT/TR (§4.3; the values every check of §9.3 accepts).
vcb_reset:
        push    eax
        push    ecx
        push    edi
        mov     edi, VCB
        mov     ecx, 4096 / 4
        xor     eax, eax
        rep     stosd
        mov     edi, GUEST_HPA + GDATA  ; and the guest's results of the last case
        mov     ecx, 256 / 4
        rep     stosd
        pop     edi
        pop     ecx
        pop     eax
        mov     [VCB+G_EIP], eax
        mov     dword [VCB+C_REVISION], 1
        mov     word [VCB+C_VTAG], 1
        mov     byte [VCB+C_TLB], 1
        mov     dword [VCB+C_IOBM], IOBM
        mov     dword [VCB+C_SLT_ROOT], SLT3
        mov     dword [VCB+G_ESP], GSTACK
        mov     dword [VCB+G_EFLAGS], 0x2               ; bit 1 is always 1
        mov     dword [VCB+G_CR0], 0x11                 ; PE | ET
        mov     dword [VCB+G_DR6], 0xffff0ff0
        mov     dword [VCB+G_DR7], 0x400
        SEGREC  G_ES, G_DATA0, 0x0c93, 0, 0xffffffff
        SEGREC  G_CS, G_CODE0, 0x0c9b, 0, 0xffffffff
        SEGREC  G_SS, G_DATA0, 0x0c93, 0, 0xffffffff
        SEGREC  G_DS, G_DATA0, 0x0c93, 0, 0xffffffff
        SEGREC  G_FS, G_DATA0, 0x0c93, 0, 0xffffffff
        SEGREC  G_GS, G_DATA0, 0x0c93, 0, 0xffffffff
        SEGREC  G_LDTR, 0, 0x8000, 0, 0                 ; unusable
        SEGREC  G_TR, G_TSS0, 0x008b, GTSS0, 0x67       ; busy 32-bit TSS
        mov     dword [VCB+G_GDTR], GGDT
        mov     word [VCB+G_GDTR+4], GGDT_LIMIT
        mov     dword [VCB+G_IDTR], GIDT
        mov     word [VCB+G_IDTR+4], GIDT_LIMIT
        ret

; vcb_ring3: make the reset guest a ring-3 one (CPL 3, DPL 3 code and data).
vcb_ring3:
        SEGREC  G_ES, G_DATA3, 0x0cf3, 0, 0xffffffff
        SEGREC  G_CS, G_CODE3, 0x0cfb, 0, 0xffffffff
        SEGREC  G_SS, G_DATA3, 0x0cf3, 0, 0xffffffff
        SEGREC  G_DS, G_DATA3, 0x0cf3, 0, 0xffffffff
        SEGREC  G_FS, G_DATA3, 0x0cf3, 0, 0xffffffff
        SEGREC  G_GS, G_DATA3, 0x0cf3, 0, 0xffffffff
        mov     byte [VCB+G_CPL], 3
        ret

; vmrun: VMENTER the VCB; returns EAX = exit reason with CF = 0. CF = 1 (a control check
; failed, nothing entered) is a failure of the case.
vmrun:
        mov     eax, VCB
        VMENTER
.after: jc      .failed
        ret
.failed:
        xor     edx, edx
        call    check_failed
        db      "VMENTER error", 0

; advance: the VMM emulated the exiting instruction: guest EIP += EXIT_INSTR_LEN (§8.1).
advance:
        push    eax
        mov     eax, [VCB+X_LEN]
        add     [VCB+G_EIP], eax
        pop     eax
        ret

; ---------------------------------------------------------------------------------------
; The cases. Each starts with CASE, builds a VCB, enters, checks the exit information.
; ---------------------------------------------------------------------------------------

; IO (30): a console device emulated by the host. The guest writes a string with OUT DX
; (port 500h) and one byte with OUT imm8 (port E0h), reads a word with IN AX, DX (port
; 502h; the host supplies BEEFh), writes a second string with REP OUTSB (port 501h; the
; host emulates the whole string from guest memory), and uses ports 80h and 84h, which the
; bitmap lets through to the real DMA page registers. Qualification: Table 8-6.
case_io:
        CASE    "IO"
        mov     al, 0xa5                ; the passthrough port the guest will read
        out     0x84, al
        mov     edi, CONS_BUF           ; the console's output so far
        mov     eax, G(g_io)
        call    vcb_reset
.loop:  call    vmrun
        cmp     eax, R_VCALL
        je      .done
        CHECK   eax, R_IO, "reason"
        mov     ebx, [VCB+X_QUAL]
        test    ebx, 0x10               ; bit 4: string
        jnz     .string
        test    ebx, 0x08               ; bit 3: IN
        jnz     .in
        ; OUT: the value is in bits 63:32.
        mov     eax, ebx
        shr     eax, 16
        cmp     eax, 0xe0
        je      .out_imm
        CHECK   ebx, 0x05000000, "qual (OUT DX, AL)"
        CHECK   [VCB+X_LEN], 1, "len (OUT DX, AL)"
        movzx   eax, byte [VCB+X_BYTES]
        CHECK   eax, 0xee, "opcode (OUT DX, AL)"
        jmp     .put
.out_imm:
        CHECK   ebx, 0x00e00040, "qual (OUT E0h, AL)"       ; bit 6: immediate port
        CHECK   [VCB+X_LEN], 2, "len (OUT E0h, AL)"
        movzx   eax, word [VCB+X_BYTES]
        CHECK   eax, 0xe0e6, "bytes (OUT E0h, AL)"
.put:   mov     eax, [VCB+X_QUAL+4]     ; bits 63:32: the byte written
        mov     edx, eax
        shr     edx, 8
        CHECK   edx, 0, "OUT value above 8 bits"
        mov     [edi], al
        inc     edi
        call    advance
        jmp     .loop
.in:    CHECK   ebx, 0x05020009, "qual (IN AX, DX)"         ; word, IN, port 502h
        CHECK   [VCB+X_LEN], 2, "len (IN AX, DX)"
        mov     word [VCB+G_EAX], 0xbeef                    ; the result goes to AX
        inc     byte [io_in_seen]
        call    advance
        jmp     .loop
.string:
        ; REP OUTSB: string (4), REP (5), 32-bit addresses (7), DS (3 << 8), port 501h.
        CHECK   ebx, 0x050103b0, "qual (REP OUTSB)"
        CHECK   [VCB+X_LEN], 2, "len (REP OUTSB)"
        CHECK   [VCB+X_GLA], G(g_io_msg2), "linear address (REP OUTSB)"
        CHECK   [VCB+X_GPA], G(g_io_msg2), "guest-physical address (REP OUTSB)"
        CHECK   [VCB+X_GPA+4], 0, "guest-physical address high"
        ; Emulate the whole string: ECX bytes from DS:ESI, then ESI += ECX, ECX = 0.
        mov     esi, [VCB+G_ESI]
        add     esi, GUEST_HPA          ; guest-physical -> host-physical (the SLT's map)
        mov     ecx, [VCB+G_ECX]
        add     [VCB+G_ESI], ecx
        mov     dword [VCB+G_ECX], 0
        rep     movsb
        inc     byte [io_string_seen]
        call    advance
        jmp     .loop
.done:  mov     byte [edi], 0
        CHECK   [VCB+X_QUAL], 0, "VCALL qual"
        movzx   eax, byte [io_in_seen]
        CHECK   eax, 1, "IN exits"
        movzx   eax, byte [io_string_seen]
        CHECK   eax, 1, "OUTS exits"
        PRINT   'IO: guest console "'
        mov     esi, CONS_BUF
        call    print_str
        PRINT   '"', 10
        ; The guest got BEEFh from the host's IN, A5h from the real port 84h, and its
        ; OUT 80h, 5Ah reached the real port.
        CHECK   [GUEST_HPA + GDATA], 0xbeef, "IN AX result in the guest"
        movzx   eax, byte [GUEST_HPA + GDATA + 4]
        CHECK   eax, 0xa5, "passthrough IN from port 84h"
        xor     eax, eax
        in      al, 0x80
        CHECK   eax, 0x5a, "passthrough OUT to port 80h"
        OK
        ret

; HLT (12): intercept bit 0.
case_hlt:
        CASE    "HLT"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     dword [VCB+C_INTERCEPTS], IC_HLT
        call    vmrun
        pushfd                          ; after an exit: CF, ZF, SF, OF, AF, PF = 0 (§7.1)
        pop     ebx
        and     ebx, 0x8d5
        CHECK   ebx, 0, "arithmetic flags after the exit"
        EXIT_IS R_HLT, 0, 1
        EIP_IS  g_hlt
        movzx   eax, byte [VCB+X_BYTES]
        CHECK   eax, 0xf4, "opcode"
        CHECK   [VCB+X_RETIRED], 0, "retired"
        ; The host-save area (§4.5): VMENTER stored the host's resume EIP, CR0 and CPL.
        CHECK   [VCB+H_EIP], vmrun.after, "host-save EIP"
        mov     ebx, cr0
        CHECK   [VCB+H_CR0], ebx, "host-save CR0"
        movzx   eax, byte [VCB+H_CPL]
        CHECK   eax, 0, "host-save CPL"
        movzx   eax, byte [VCB+C_TLB]   ; self-clearing (§4.2); vcb_reset set it to 1
        CHECK   eax, 0, "TLB_CONTROL after entry"
        OK
        ret

; CPUID (10): always exits; the host answers with its own values.
case_cpuid:
        CASE    "CPUID"
        mov     eax, G(g_cpuid)
        call    vcb_reset
        call    vmrun
        EXIT_IS R_CPUID, 0, 2
        EIP_IS  g_cpuid_insn
        CHECK   [VCB+G_EAX], 0x83860000, "leaf"
        ; The VMM hides V386 from its guest (§2: no nested V386) and makes up the rest.
        mov     dword [VCB+G_EAX], 0x12345678
        mov     dword [VCB+G_EBX], 0
        mov     dword [VCB+G_ECX], 0x9abcdef0
        mov     dword [VCB+G_EDX], 0x0fedcba9
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0x12345678, "guest EAX"
        CHECK   [GUEST_HPA + GDATA + 4], 0, "guest EBX"
        CHECK   [GUEST_HPA + GDATA + 8], 0x9abcdef0, "guest ECX"
        CHECK   [GUEST_HPA + GDATA + 12], 0x0fedcba9, "guest EDX"
        OK
        ret

; VCALL (18): a hypercall at guest CPL 0 (qualification 0) with a result in EAX, then one
; from guest CPL 3 (qualification 3, Table 8-4).
case_vcall:
        CASE    "VCALL"
        mov     eax, G(g_vcall)
        call    vcb_reset
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        EIP_IS  g_vcall_insn
        movzx   eax, word [VCB+X_BYTES]
        CHECK   eax, 0x0c0f, "bytes"
        CHECK   [VCB+G_EAX], 1, "call number"
        CHECK   [VCB+G_EBX], 0x11, "argument"
        mov     dword [VCB+G_EAX], 0x600d
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0x600d, "result in the guest"
        ; Guest CPL 3.
        mov     eax, G(g_vcall3)
        call    vcb_reset
        call    vcb_ring3
        call    vmrun
        EXIT_IS R_VCALL, 3, 2
        EIP_IS  g_vcall3
        OK
        ret

; EXCEPTION_NMI (0): UD2 with EXCEPTION_BITMAP bit 6, then a #GP with an error code
; (bit 13). EXIT_INTR_INFO: valid, type 3 (hardware exception), error-code bit (Table
; 10-1). (NMI_EXIT is not tested: the PC has no NMI source to raise.)
case_exception:
        CASE    "EXCEPTION_NMI"
        mov     eax, G(g_ud2)
        call    vcb_reset
        mov     dword [VCB+C_EXCBITMAP], 1 << 6
        call    vmrun
        EXIT_IS R_EXCEPTION_NMI, 0, 0
        EIP_IS  g_ud2
        CHECK   [VCB+X_INTR_INFO], 0x80000306, "intr info (#UD)"
        mov     eax, G(g_gp)
        call    vcb_reset
        mov     dword [VCB+C_EXCBITMAP], 1 << 13
        call    vmrun
        EXIT_IS R_EXCEPTION_NMI, 0, 0
        EIP_IS  g_gp_insn
        CHECK   [VCB+X_INTR_INFO], 0x80000b0d, "intr info (#GP)"
        CHECK   [VCB+X_INTR_ERR], 0x7f8, "error code (#GP)"
        OK
        ret

; TRIPLE_FAULT (2): UD2 with a guest IDT of limit 0: #UD -> #GP -> #DF -> shutdown, which
; exits (§5.5) instead of resetting the machine.
case_triple_fault:
        CASE    "TRIPLE_FAULT"
        mov     eax, G(g_ud2)
        call    vcb_reset
        mov     word [VCB+G_IDTR+4], 0
        call    vmrun
        EXIT_IS R_TRIPLE_FAULT, 0, 0
        EIP_IS  g_ud2
        OK
        ret

; INTERRUPT_WINDOW (7): the guest starts with IF = 0 and runs NOP, NOP, STI, NOP: the
; window opens after the instruction following STI (§10.2). Then a guest entered with
; IF = 1 exits before its first instruction.
case_interrupt_window:
        CASE    "INTERRUPT_WINDOW"
        mov     eax, G(g_intwin)
        call    vcb_reset
        mov     dword [VCB+C_EXEC], EX_INTWIN
        call    vmrun
        EXIT_IS R_INTWIN, 0, 0
        EIP_IS  g_intwin_end
        CHECK   [VCB+X_RETIRED], 4, "retired"
        mov     eax, [VCB+G_EFLAGS]
        and     eax, 0x200
        CHECK   eax, 0x200, "guest IF"
        mov     eax, G(g_intwin)
        call    vcb_reset
        mov     dword [VCB+C_EXEC], EX_INTWIN
        mov     dword [VCB+G_EFLAGS], 0x202
        call    vmrun
        EXIT_IS R_INTWIN, 0, 0
        EIP_IS  g_intwin
        CHECK   [VCB+X_RETIRED], 0, "retired (IF = 1 at entry)"
        OK
        ret

; EXTERNAL_INTERRUPT (1): the PIT's counter 0 in mode 0 raises IRQ0 while the guest
; spins with IF = 0; EXTINT_EXIT makes it an exit, not acknowledged (EXIT_INTR_INFO = 0),
; and the host takes it through its own IDT once it sets IF (§5.5).
case_external_interrupt:
        CASE    "EXTERNAL_INTERRUPT"
        mov     eax, G(g_spin)
        call    vcb_reset
        mov     dword [VCB+C_EXEC], EX_EXTINT
        mov     dword [irq0_count], 0
        mov     al, 0x30                ; counter 0, LSB then MSB, mode 0, binary
        out     0x43, al
        mov     al, 200 & 0xff          ; 200 PIT ticks, about 168 us
        out     0x40, al
        mov     al, 200 >> 8
        out     0x40, al
        mov     al, 0xfe                ; unmask IRQ0 only
        out     0x21, al
        call    vmrun                   ; host IF = 0 throughout
        EXIT_IS R_EXTINT, 0, 0
        EIP_IS  g_spin
        CHECK   [VCB+X_INTR_INFO], 0, "intr info"
        CHECK   [irq0_count], 0, "IRQ0 taken before STI"
        mov     ecx, 100000
        sti
.wait:  cmp     dword [irq0_count], 0
        jne     .taken
        loop    .wait
.taken: cli
        mov     al, 0xff
        out     0x21, al
        CHECK   [irq0_count], 1, "IRQ0 taken by the host after STI"
        OK
        ret

; PREEMPTION_TIMER (52): PTIMER with 1000 on an endless loop exits after exactly 1000
; guest instructions (§10.3).
case_preemption_timer:
        CASE    "PREEMPTION_TIMER"
        mov     eax, G(g_spin)
        call    vcb_reset
        mov     dword [VCB+C_EXEC], EX_PTIMER
        mov     dword [VCB+C_PTIMER], 1000
        call    vmrun
        EXIT_IS R_PTIMER, 0, 0
        EIP_IS  g_spin
        CHECK   [VCB+X_RETIRED], 1000, "retired"
        CHECK   [VCB+X_RETIRED+4], 0, "retired high"
        CHECK   [VCB+C_PTIMER], 0, "timer left"
        OK
        ret

; NESTED_PAGE_FAULT (48): a read of an unmapped GPA (not present at level 1), which the
; host then maps and re-enters so the read completes; a write to a read-only page
; (present, permission R+X); a fetch from an unmapped GPA (Table 8-5); and one during the
; delivery of a guest exception, which the host re-injects.
case_npf:
        CASE    "NESTED_PAGE_FAULT"
        mov     dword [GUEST_HPA + GDEMAND_PAGE], 0xcafef00d
        mov     eax, G(g_npf)
        call    vcb_reset
        call    vmrun
        EXIT_IS R_NPF, NPF_READ | NPF_GLA | NPF_FINAL | NPF_L1, 5
        EIP_IS  g_npf
        CHECK   [VCB+X_GPA], GDEMAND_PAGE, "GPA (read)"
        CHECK   [VCB+X_GPA+4], 0, "GPA high"
        CHECK   [VCB+X_GLA], GDEMAND_PAGE, "GLA (read)"
        movzx   eax, byte [VCB+X_BYTES]
        CHECK   eax, 0xa1, "opcode (read)"
        ; Map the page, flush this VTAG (§6.5) and let the guest retry.
        SLT1_SET GDEMAND_PAGE >> 12, (GUEST_HPA + GDEMAND_PAGE) | SLT_RWX
        mov     byte [VCB+C_TLB], 1
        call    vmrun
        EXIT_IS R_NPF, NPF_WRITE | NPF_PERM_R | NPF_PERM_X | NPF_PRESENT | NPF_GLA | NPF_FINAL | NPF_L1, 10
        EIP_IS  g_npf_ro
        CHECK   [VCB+X_GPA], GRO_PAGE, "GPA (write)"
        CHECK   [GUEST_HPA + GDATA], 0xcafef00d, "value read after mapping"
        CHECK   [GUEST_HPA + GRO_PAGE], 0, "read-only page written"
        call    advance                 ; the VMM drops the write
        call    vmrun
        EXIT_IS R_NPF, NPF_FETCH | NPF_GLA | NPF_FINAL | NPF_L1, 0
        CHECK   [VCB+G_EIP], 0x20000, "eip (fetch)"
        CHECK   [VCB+X_GPA], 0x20000, "GPA (fetch)"
        mov     dword [VCB+G_EIP], G(g_npf_back)
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        call    slt_map_all             ; unmap the page again
        ; During event delivery (§5.5): the guest's IDT lies in the unmapped page, so
        ; delivering its #UD reads the gate at GPA E030h and exits (an implicit system
        ; access, bit 10) with the #UD in IDT_VECTORING_INFO. The VMM maps the page with a
        ; gate in it and re-injects the event (§10.1); the guest's handler runs.
        mov     eax, G(g_ud2)
        call    vcb_reset
        mov     dword [VCB+G_IDTR], GDEMAND_PAGE
        call    vmrun
        CHECK   eax, R_NPF, "reason (IDT)"
        CHECK   [VCB+X_QUAL], NPF_READ | NPF_GLA | NPF_FINAL | NPF_SYSTEM | NPF_L1, "qual (IDT)"
        CHECK   [VCB+X_GPA], GDEMAND_PAGE + 6 * 8, "GPA (IDT)"
        CHECK   [VCB+X_IDT_VEC], 0x80000306, "IDT_VECTORING_INFO"
        EIP_IS  g_ud2
        mov     eax, G(g_ud_handler)    ; interrupt gate 6 -> 08h:g_ud_handler
        and     eax, 0xffff
        or      eax, G_CODE0 << 16
        mov     [GUEST_HPA + GDEMAND_PAGE + 6 * 8], eax
        mov     eax, G(g_ud_handler)
        and     eax, 0xffff0000
        or      eax, 0x8e00
        mov     [GUEST_HPA + GDEMAND_PAGE + 6 * 8 + 4], eax
        SLT1_SET GDEMAND_PAGE >> 12, (GUEST_HPA + GDEMAND_PAGE) | SLT_RWX
        mov     byte [VCB+C_TLB], 1
        mov     eax, [VCB+X_IDT_VEC]
        mov     [VCB+C_INJECT], eax
        call    vmrun
        call    slt_map_all
        EXIT_IS R_VCALL, 0, 2
        EIP_IS  g_ud_handler
        CHECK   [VCB+C_INJECT], 0x00000306, "EVENT_INJECT after delivery"
        CHECK   [VCB+G_ESP], GSTACK - 12, "guest ESP in the handler"
        CHECK   [GUEST_HPA + GSTACK - 12], G(g_ud2), "EIP pushed by the #UD"
        OK
        ret

; SLT_MISCONFIG (49): a level-1 entry with W but not R; qualification = the level.
case_slt_misconfig:
        CASE    "SLT_MISCONFIG"
        SLT1_SET GMISCONF_PAGE >> 12, (GUEST_HPA + GMISCONF_PAGE) | SLT_W
        mov     eax, G(g_misconfig)
        call    vcb_reset
        call    vmrun
        call    slt_map_all
        CHECK   eax, R_SLT_MISCONFIG, "reason"
        CHECK   [VCB+X_QUAL], 1, "qual (level)"
        CHECK   [VCB+X_GPA], GMISCONF_PAGE, "GPA"
        EIP_IS  g_misconfig
        OK
        ret

; INVALID_GUEST_STATE (33 with bit 31): guest-state checks of §9.3 failing, each
; reported with its number. The host's state comes back (CF = 0).
case_invalid_guest_state:
        CASE    "INVALID_GUEST_STATE"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     byte [VCB+G_CPL], 3     ; CPL 3 with a ring-0 SS: check 8
        call    vmrun
        CHECK   eax, 0x80000021, "EAX"
        CHECK   [VCB+X_REASON], 0x80000021, "EXIT_REASON"
        CHECK   [VCB+X_CHECK], 8, "ENTRY_FAILURE_CHECK (CPL)"
        CHECK   [VCB+X_QUAL], 8, "qual"
        EIP_IS  g_hlt
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     dword [VCB+G_EFLAGS], 0 ; bit 1 clear: check 6
        call    vmrun
        CHECK   eax, 0x80000021, "EAX"
        CHECK   [VCB+X_CHECK], 6, "ENTRY_FAILURE_CHECK (EFLAGS)"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     word [VCB+G_TR+2], 0x0089 ; an available TSS in TR: check 14
        call    vmrun
        CHECK   eax, 0x80000021, "EAX"
        CHECK   [VCB+X_CHECK], 14, "ENTRY_FAILURE_CHECK (TR)"
        OK
        ret

; Control checks (Table 9-1): CF = 1, EAX = the error, nothing entered or written.
; %1 = error number, %2 = what; the VCB is set up by the caller.
%macro CONTROL_FAILS 2
        mov     dword [VCB+X_REASON], 0xffffffff
        mov     eax, VCB
        VMENTER
        pushfd                          ; CF = 1, ZF, SF, OF, AF, PF = 0 (§7.1)
        pop     ebx
        and     ebx, 0x8d5
        CHECK   ebx, 1, %2
        CHECK   eax, %1, %2
        CHECK   [VCB+X_REASON], 0xffffffff, "EXIT_REASON written"
%endmacro

case_control_checks:
        CASE    "CONTROL_CHECKS"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     dword [VCB+C_REVISION], 2
        CONTROL_FAILS 1, "REVISION = 2"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     word [VCB+C_VTAG], 0
        CONTROL_FAILS 2, "VTAG = 0"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     dword [VCB+C_EXEC], 1 << 6
        CONTROL_FAILS 4, "reserved EXEC_CONTROLS bit"
        mov     eax, G(g_hlt)
        call    vcb_reset
        mov     dword [VCB+C_IOBM], IOBM + 8
        CONTROL_FAILS 5, "IO_BITMAP_ADDR unaligned"
        OK
        ret

; CR_ACCESS (28): MOV to CR3, MOV from CR0, CLTS, LMSW, SMSW, each intercepted and
; emulated by the host on the guest's CR copy in the VCB (qualification: Table 8-3).
case_cr_access:
        CASE    "CR_ACCESS"
        mov     eax, G(g_cr)
        call    vcb_reset
        mov     byte [VCB+C_CR_WRITE], (1 << 3) | (1 << 0)
        mov     byte [VCB+C_CR_READ], 1 << 0
        call    vmrun
        EXIT_IS R_CR_ACCESS, 0x303, 3   ; CR3, MOV to CR, EBX
        EIP_IS  g_cr_mov_cr3
        mov     eax, [VCB+G_EBX]
        mov     [VCB+G_CR3], eax
        call    advance
        call    vmrun
        EXIT_IS R_CR_ACCESS, 0x110, 3   ; CR0, MOV from CR, ECX
        mov     eax, [VCB+G_CR0]
        mov     [VCB+G_ECX], eax
        call    advance
        call    vmrun
        EXIT_IS R_CR_ACCESS, 0x20, 2    ; CLTS
        and     dword [VCB+G_CR0], ~8
        call    advance
        call    vmrun
        EXIT_IS R_CR_ACCESS, 0x00110030, 3 ; LMSW AX with AX = 0011h
        call    advance
        call    vmrun
        EXIT_IS R_CR_ACCESS, 0x240, 3   ; SMSW EDX
        movzx   eax, word [VCB+G_CR0]
        mov     [VCB+G_EDX], eax
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0x9000, "guest CR3 as emulated"
        CHECK   [GUEST_HPA + GDATA + 4], 0x11, "guest CR0 as emulated"
        CHECK   [GUEST_HPA + GDATA + 8], 0x11, "guest MSW as emulated"
        CHECK   [VCB+G_CR3], 0x9000, "CR3 in the VCB"
        OK
        ret

; DR_ACCESS (29): MOV to DR7 and MOV from DR6.
case_dr_access:
        CASE    "DR_ACCESS"
        mov     eax, G(g_dr)
        call    vcb_reset
        mov     byte [VCB+C_DR_WRITE], 1 << 7
        mov     byte [VCB+C_DR_READ], 1 << 6
        call    vmrun
        EXIT_IS R_DR_ACCESS, 7, 3       ; DR7, to DR, EAX
        EIP_IS  g_dr_insn
        mov     eax, [VCB+G_EAX]
        mov     [VCB+G_DR7], eax
        call    advance
        call    vmrun
        EXIT_IS R_DR_ACCESS, 0x216, 3   ; DR6, from DR, EDX
        mov     dword [VCB+G_EDX], 0xffff4ff0
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0xffff4ff0, "DR6 as emulated"
        CHECK   [VCB+G_DR7], 0x400, "DR7 in the VCB"
        OK
        ret

; RDMSR (31) and WRMSR (32): MSR 1Bh (APIC base) has no guest copy, so both exit without
; an intercept bit (§5.4); SYSENTER_CS has one and is read without an exit.
case_msr:
        CASE    "RDMSR"
        mov     eax, G(g_msr)
        call    vcb_reset
        mov     dword [VCB+G_SYSENTER_CS], 0x808
        call    vmrun
        EXIT_IS R_RDMSR, 0, 2
        EIP_IS  g_msr_rd
        CHECK   [VCB+G_ECX], 0x1b, "MSR index"
        mov     dword [VCB+G_EAX], 0xfee00900
        mov     dword [VCB+G_EDX], 0
        call    advance
        call    vmrun
        NAME    "WRMSR"
        EXIT_IS R_WRMSR, 0, 2
        EIP_IS  g_msr_wr
        CHECK   [VCB+G_ECX], 0x1b, "MSR index"
        CHECK   [VCB+G_EAX], 0xfee00800, "EAX"
        CHECK   [VCB+G_EDX], 0, "EDX"
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0xfee00900, "RDMSR result in the guest"
        CHECK   [GUEST_HPA + GDATA + 8], 0x808, "guest SYSENTER_CS"
        NAME    "RDMSR"
        OK
        NAME    "WRMSR"
        OK
        ret

; INVLPG (14): intercept bit 1; the qualification is the linear address.
case_invlpg:
        CASE    "INVLPG"
        mov     eax, G(g_invlpg)
        call    vcb_reset
        mov     dword [VCB+C_INTERCEPTS], IC_INVLPG
        call    vmrun
        EXIT_IS R_INVLPG, 0x12345010, 4
        EIP_IS  g_invlpg_insn
        OK
        ret

; SENSITIVE_INSTRUCTION (64): SGDT (bit 8, ID 5), CLI (bit 9, ID 13), INT 21h (bit 12,
; ID 18 with the vector in bits 15:8) and VMENTER in the guest (always, ID 19). Table 8-7.
case_sensitive:
        CASE    "SENSITIVE_INSTRUCTION"
        mov     eax, G(g_sens)
        call    vcb_reset
        mov     dword [VCB+C_INTERCEPTS], IC_DESC_STORE | IC_CLI_STI | IC_INT_N
        call    vmrun
        EXIT_IS R_SENSITIVE, 5, 7
        EIP_IS  g_sens
        call    advance
        call    vmrun
        EXIT_IS R_SENSITIVE, 13, 1
        call    advance
        call    vmrun
        EXIT_IS R_SENSITIVE, 18 | 0x21 << 8, 2
        call    advance
        call    vmrun
        EXIT_IS R_SENSITIVE, 19, 2
        EIP_IS  g_sens_vmenter
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        CHECK   [GUEST_HPA + GDATA], 0, "SGDT stored although intercepted"
        OK
        ret

; TASK_SWITCH (9): a far JMP and a far CALL to a TSS selector with intercept bit 13;
; qualification = selector | source << 30 (Table 8-2).
case_task_switch:
        CASE    "TASK_SWITCH"
        mov     eax, G(g_task)
        call    vcb_reset
        mov     dword [VCB+C_INTERCEPTS], IC_TASK_SWITCH
        call    vmrun
        EXIT_IS R_TASK_SWITCH, G_TSS1 | 2 << 30, 7
        EIP_IS  g_task
        movzx   eax, byte [VCB+X_BYTES]
        CHECK   eax, 0xea, "opcode (JMP)"
        call    advance
        call    vmrun
        EXIT_IS R_TASK_SWITCH, G_TSS1, 7
        movzx   eax, byte [VCB+X_BYTES]
        CHECK   eax, 0x9a, "opcode (CALL)"
        movzx   eax, word [VCB+G_TR]
        CHECK   eax, G_TSS0, "guest TR unchanged"
        OK
        ret

; The guest's own privileged state (docs/v386.md §5.3): with no intercepts SGDT, SIDT,
; SMSW, STR, PUSHFD and MOV from CR0 run natively and return the guest's values from the
; VCB, not the host's (which differ).
case_guest_state:
        CASE    "GUEST_STATE"
        mov     eax, G(g_state)
        call    vcb_reset
        mov     dword [VCB+G_EFLAGS], 0x3082 ; IOPL 3, SF
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        ; The host's own values, to show they differ.
        sgdt    [host_scratch]
        sidt    [host_scratch + 8]
        smsw    eax
        mov     [host_scratch + 16], eax
        str     word [host_scratch + 20]
        pushfd
        pop     dword [host_scratch + 24]
        ; SGDT
        movzx   eax, word [GUEST_HPA + GDATA]
        CHECK   eax, GGDT_LIMIT, "SGDT limit"
        CHECK   [GUEST_HPA + GDATA + 2], GGDT, "SGDT base"
        movzx   edx, word [VCB+G_GDTR+4]
        CHECK   eax, edx, "SGDT limit vs VCB"
        CHECK   [GUEST_HPA + GDATA + 2], [VCB+G_GDTR], "SGDT base vs VCB"
        CHECK_NE [GUEST_HPA + GDATA + 2], [host_scratch + 2], "SGDT base"
        ; SIDT
        movzx   eax, word [GUEST_HPA + GDATA + 8]
        CHECK   eax, GIDT_LIMIT, "SIDT limit"
        CHECK   [GUEST_HPA + GDATA + 10], [VCB+G_IDTR], "SIDT base"
        CHECK_NE [GUEST_HPA + GDATA + 10], [host_scratch + 10], "SIDT base"
        ; SMSW: CR0[15:0]
        movzx   eax, word [GUEST_HPA + GDATA + 16]
        movzx   edx, word [VCB+G_CR0]
        CHECK   eax, edx, "SMSW"
        movzx   edx, word [host_scratch + 16]
        CHECK_NE eax, edx, "SMSW"
        ; STR
        movzx   eax, word [GUEST_HPA + GDATA + 20]
        movzx   edx, word [VCB+G_TR]
        CHECK   eax, edx, "STR"
        movzx   edx, word [host_scratch + 20]
        CHECK_NE eax, edx, "STR"
        ; PUSHFD: the guest's EFLAGS at entry (IOPL 3 is the guest's; VX is hidden).
        CHECK   [GUEST_HPA + GDATA + 24], 0x3082, "PUSHFD"
        CHECK_NE [GUEST_HPA + GDATA + 24], [host_scratch + 24], "PUSHFD"
        ; MOV EAX, CR0
        CHECK   [GUEST_HPA + GDATA + 28], [VCB+G_CR0], "MOV from CR0"
        ; And the host has its own back.
        movzx   eax, word [host_scratch]
        CHECK   eax, host_gdt_end - host_gdt - 1, "host GDTR limit after the exit"
        CHECK   [host_scratch + 2], host_gdt, "host GDTR base after the exit"
        CHECK   [host_scratch + 10], HOST_IDT, "host IDTR base after the exit"
        movzx   eax, word [host_scratch + 20]
        CHECK   eax, HOST_TSS_SEL, "host TR after the exit"
        PRINT   "GUEST_STATE: GDTR="
        HEX     [GUEST_HPA + GDATA + 2], 8
        PRINT   ":"
        HEX     [GUEST_HPA + GDATA], 4
        PRINT   " IDTR="
        HEX     [GUEST_HPA + GDATA + 10], 8
        PRINT   ":"
        HEX     [GUEST_HPA + GDATA + 8], 4
        PRINT   " MSW="
        HEX     [GUEST_HPA + GDATA + 16], 4
        PRINT   " TR="
        HEX     [GUEST_HPA + GDATA + 20], 4
        PRINT   " EFLAGS="
        HEX     [GUEST_HPA + GDATA + 24], 8
        PRINT   10
        OK
        ret

; Isolation (§4.1, §6): a guest that tries to reach memory outside its 64 KiB. Wild GPAs
; (0FFFF000h: not present at level 2; FFFFF000h: at level 3), writes to the GPAs equal to
; the VCB's and the SLT's host-physical addresses, and a guest page table that maps a
; linear page onto the VCB's address (final access: bit 8 = 1) and a page directory entry
; pointing at a page table outside its memory (the guest walk's own read: bit 8 = 0,
; bit 10 = 1). After each exit the host skips the instruction (an MMIO-like "nothing
; there"). Then the host's VCB controls, I/O bitmap and SLT must be as before.
case_isolation:
        CASE    "ISOLATION"
        mov     eax, G(g_iso)
        call    vcb_reset
        call    host_checksum
        mov     [iso_sum], eax
        call    vmrun
        EXIT_IS R_NPF, NPF_READ | NPF_GLA | NPF_FINAL | NPF_L2, 5
        CHECK   [VCB+X_GPA], 0x0ffff000, "GPA 0FFFF000h"
        call    advance
        call    vmrun
        EXIT_IS R_NPF, NPF_READ | NPF_GLA | NPF_FINAL | NPF_L3, 5
        CHECK   [VCB+X_GPA], 0xfffff000, "GPA FFFFF000h"
        call    advance
        call    vmrun
        EXIT_IS R_NPF, NPF_WRITE | NPF_GLA | NPF_FINAL | NPF_L2, 10
        CHECK   [VCB+X_GPA], VCB, "GPA of the VCB"
        call    advance
        call    vmrun
        EXIT_IS R_NPF, NPF_WRITE | NPF_GLA | NPF_FINAL | NPF_L2, 10
        CHECK   [VCB+X_GPA], SLT3, "GPA of the SLT"
        call    advance
        ; Guest paging on: linear 10000h -> GPA of the VCB.
        call    vmrun
        EXIT_IS R_NPF, NPF_READ | NPF_GLA | NPF_FINAL | NPF_L2, 5
        CHECK   [VCB+X_GPA], VCB, "GPA (guest PTE -> VCB)"
        CHECK   [VCB+X_GLA], 0x10000, "GLA (guest PTE -> VCB)"
        EIP_IS  g_iso_paged
        mov     eax, [VCB+G_CR0]
        CHECK   eax, 0x80000011, "guest CR0 with PG"
        call    advance
        call    vmrun
        EXIT_IS R_NPF, NPF_WRITE | NPF_GLA | NPF_FINAL | NPF_L2, 10
        CHECK   [VCB+X_GPA], VCB, "GPA (write via guest PTE)"
        call    advance
        ; Linear 400000h: its page table at GPA 300000h is outside the guest.
        call    vmrun
        EXIT_IS R_NPF, NPF_READ | NPF_GLA | NPF_SYSTEM | NPF_L2, 5
        CHECK   [VCB+X_GPA], 0x300000, "GPA (guest page table)"
        CHECK   [VCB+X_GLA], 0x400000, "GLA (guest page table)"
        call    advance
        call    vmrun
        EXIT_IS R_VCALL, 0, 2
        ; Nothing of the host changed.
        call    host_checksum
        CHECK   eax, [iso_sum], "host checksum"
        CHECK   [VCB+C_REVISION], 1, "VCB revision"
        CHECK   [VCB+C_SLT_ROOT], SLT3, "VCB SLT root"
        mov     esi, VCB                ; and the guest's marker is nowhere in the VCB
.scan:  CHECK_NE [esi], MARKER, "VCB dword"
        add     esi, 4
        cmp     esi, VCB + 4096
        jb      .scan
        OK
        ret

; host_checksum: EAX = sum of the dwords of the I/O bitmap and the SLT (0x202000-0x206FFF)
; and of the VCB's controls the processor never writes (revision to TSC offset).
host_checksum:
        push    ecx
        push    esi
        xor     eax, eax
        mov     esi, IOBM
        mov     ecx, (SLT1 + 4096 - IOBM) / 4
.sum:   add     eax, [esi]
        rol     eax, 1
        add     esi, 4
        loop    .sum
        add     eax, [VCB+C_REVISION]
        movzx   ecx, word [VCB+C_VTAG]  ; (not TLB_CONTROL: it clears itself)
        add     eax, ecx
        add     eax, [VCB+C_EXEC]
        add     eax, [VCB+C_IOBM]
        add     eax, [VCB+C_SLT_ROOT]
        pop     esi
        pop     ecx
        ret

; ---------------------------------------------------------------------------------------
; Host data
; ---------------------------------------------------------------------------------------

        align   8
host_gdt:
        dq      0
        dq      0x00cf9a000000ffff      ; 08h: code, base 0, limit 4 GiB
        dq      0x00cf92000000ffff      ; 10h: data
        dw      0x67, ABS(host_tss) & 0xffff                    ; 18h: available TSS
        db      (ABS(host_tss) >> 16) & 0xff, 0x89, 0x00, ABS(host_tss) >> 24
host_gdt_end:
host_gdt_desc:
        dw      host_gdt_end - host_gdt - 1
        dd      host_gdt
host_idt_desc:
        dw      256 * 8 - 1
        dd      HOST_IDT

        align   4
host_tss:
        times   104 db 0
case_esp:       dd 0
case_name:      dd 0
failed:         db 0
io_in_seen:     db 0
io_string_seen: db 0
        align   4
irq0_count:     dd 0
iso_sum:        dd 0
host_scratch:   times 32 db 0

; The guest's GDT (copied to GPA 6000h).
        align   8
guest_gdt:
        dq      0
        dq      0x00cf9a000000ffff      ; 08h: ring-0 code
        dq      0x00cf92000000ffff      ; 10h: ring-0 data
        dq      0x00cffa000000ffff      ; 18h: ring-3 code
        dq      0x00cff2000000ffff      ; 20h: ring-3 data
        dq      0x00008b0070000067      ; 28h: busy TSS at 7000h (the running task)
        dq      0x0000890070800067      ; 30h: available TSS at 7080h
guest_gdt_end:

; ---------------------------------------------------------------------------------------
; Guest code (copied to GPA 1000h; every absolute address in it goes through G()).
; ---------------------------------------------------------------------------------------

        align   16
guest_blob:

g_io:
        mov     esi, G(g_io_msg1)
        mov     dx, 0x500
.next:  lodsb
        test    al, al
        jz      .sent
        out     dx, al                  ; exits: OUT DX, AL
        jmp     .next
.sent:  mov     al, '!'
        out     0xe0, al                ; exits: OUT imm8
        mov     dx, 0x502
        xor     eax, eax
        in      ax, dx                  ; exits: the host supplies AX
        mov     [GDATA], eax
        in      al, 0x84                ; passthrough: the real port
        mov     [GDATA + 4], al
        mov     al, 0x5a
        out     0x80, al                ; passthrough
        mov     esi, G(g_io_msg2)
        mov     ecx, g_io_msg2_end - g_io_msg2
        mov     dx, 0x501
        rep     outsb                   ; exits once, before the first byte
        VCALL
g_io_msg1:
        db      "Hello from the guest", 0
g_io_msg2:
        db      " (and REP OUTSB)"
g_io_msg2_end:

g_hlt:
        hlt

g_cpuid:
        mov     eax, 0x83860000
        xor     ecx, ecx
g_cpuid_insn:
        cpuid
        mov     [GDATA], eax
        mov     [GDATA + 4], ebx
        mov     [GDATA + 8], ecx
        mov     [GDATA + 12], edx
        VCALL

g_vcall:
        mov     eax, 1
        mov     ebx, 0x11
g_vcall_insn:
        VCALL
        mov     [GDATA], eax
        VCALL

g_vcall3:
        VCALL

g_ud2:
        ud2

g_gp:
        mov     ax, 0x7f8               ; index FFh: beyond the guest GDT's limit
g_gp_insn:
        mov     ds, ax

g_intwin:
        nop
        nop
        sti
        nop
g_intwin_end:
        hlt

g_spin:
        jmp     g_spin

g_npf:
        mov     eax, [GDEMAND_PAGE]     ; not mapped until the host maps it
        mov     [GDATA], eax
g_npf_ro:
        mov     dword [GRO_PAGE], 1     ; read-only in the SLT
        mov     eax, 0x20000
        jmp     eax                     ; fetch from an unmapped GPA
g_npf_back:
        VCALL

g_ud_handler:
        VCALL

g_misconfig:
        mov     eax, [GMISCONF_PAGE]

g_cr:
        mov     ebx, 0x9000
g_cr_mov_cr3:
        mov     cr3, ebx
        mov     ecx, cr0
        clts
        mov     ax, 0x0011
        lmsw    ax
        smsw    edx
        mov     eax, cr3                ; not intercepted: the emulated value
        mov     [GDATA], eax
        mov     [GDATA + 4], ecx
        mov     [GDATA + 8], edx
        VCALL

g_dr:
        mov     eax, 0x400
g_dr_insn:
        mov     dr7, eax
        mov     edx, dr6
        mov     [GDATA], edx
        VCALL

g_msr:
        mov     ecx, 0x1b
g_msr_rd:
        rdmsr
        mov     [GDATA], eax
        mov     [GDATA + 4], edx
        mov     ecx, 0x1b
        mov     eax, 0xfee00800
        xor     edx, edx
g_msr_wr:
        wrmsr
        mov     ecx, 0x174              ; SYSENTER_CS: the guest's own copy
        rdmsr
        mov     [GDATA + 8], eax
        VCALL

g_invlpg:
        mov     ebx, 0x12345000
g_invlpg_insn:
        invlpg  [ebx + 0x10]

g_sens:
        sgdt    [GDATA]
        cli
        int     0x21
g_sens_vmenter:
        VMENTER
        VCALL

g_task:
        jmp     G_TSS1:0
        call    G_TSS1:0

g_state:
        pushfd
        pop     dword [GDATA + 24]
        sgdt    [GDATA]
        sidt    [GDATA + 8]
        smsw    eax
        mov     [GDATA + 16], eax
        str     word [GDATA + 20]
        mov     eax, cr0
        mov     [GDATA + 28], eax
        VCALL

g_iso:
        mov     eax, [0x0ffff000]
        mov     eax, [0xfffff000]
        mov     dword [VCB], MARKER
        mov     dword [SLT3], MARKER
        ; Its own page tables: linear 0-CFFFh identity, 10000h -> GPA 200000h (where
        ; the VCB is in host-physical memory), 400000h-7FFFFFh through a page table at
        ; GPA 300000h.
        mov     edi, GPT
        mov     eax, 0x003              ; present, writable
        mov     ecx, 13
.pte:   stosd
        add     eax, 0x1000
        loop    .pte
        mov     dword [GPT + 0x10 * 4], VCB | 0x003
        mov     dword [GPD], GPT | 0x003
        mov     dword [GPD + 4], 0x300000 | 0x003
        mov     eax, GPD
        mov     cr3, eax
        mov     eax, cr0
        or      eax, 0x80000000         ; PG
        mov     cr0, eax
g_iso_paged:
        mov     eax, [0x10000]
        mov     dword [0x10000], MARKER
        mov     eax, [0x400000]
        VCALL

guest_blob_end:

program_end:
