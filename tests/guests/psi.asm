; psi.asm — a self-checking guest for CR4.PSI, "privileged sensitive instructions"
; (docs/v386.md §3). v386 only: no other emulator has the bit.
;
; Build:  nasm -f bin -I tests/guests/ tests/guests/psi.asm -o psi.img
; v386:   load flat at 0x7C00, start in real mode at 0000:7E00, isa-debug-exit on 0xF4
;         (tests/psi_guests.rs does exactly that).
;
; Section numbers without a document are SDM Vol. 3A; docs/v386.md is named where meant.
;
; What it does, in order (every step prints on port 0xE9):
;   1. real mode -> protected mode (SDM Vol. 3A §9.9.1), GDT (§3.4.5) with ring-0, ring-1
;      and ring-3 code/data, a conforming code segment (§5.8.1.2), a DPL-3 "probe" data
;      segment for LAR/LSL/VERR/VERW and the segment loads (§5.10), a TSS with SS0:ESP0
;      (§7.2.1) and an LDT (§3.5.1), so that STR and SLDT have something to show
;   2. CPUID.8386_0000H:EBX = "V386" and CPUID.8386_0001H:EDX.PSI = 1 (docs/v386.md §2),
;      then CR4[15] written and read back (docs/v386.md §3.1)
;   3. for every row of Table 3-2 (docs/v386.md §3.4), one line:
;        "<instruction>: cpl3 #GP ok, cpl1 #GP ok, cpl0 ok, nopsi cpl3 ok"
;      (a) CR4.PSI = 1, CPL 3: #GP(0), saved CS:EIP at the instruction (its first prefix
;          byte), nothing changed: register, memory, stack, flags, segment registers
;          and control flow as before (docs/v386.md §3.2);
;      (b) CR4.PSI = 1, CPL 1: the same;
;      (c) CR4.PSI = 1, CPL 0: the instruction runs and gives the right answer;
;      (d) CR4.PSI = 0, CPL 3: it runs too, and shows the classic x86 hole of Table 3-1:
;          SGDT/SIDT/SLDT/STR/SMSW reveal the real registers, PUSH CS shows RPL 3, POPF
;          and IRET drop the IF/IOPL change silently, VERR judges at the real CPL, ...
;   4. ordinary instructions at CPL 3 and 1 with PSI = 1 do not fault (add, mov, push/pop
;      of a general register, lea, near call/ret, INTO with OF = 0)
;   5. encodings that are #UD anyway keep their #UD with PSI = 1 (docs/v386.md §3.2:
;      the check comes after decoding): MOV to CS, segment register 6/7, far pointer
;      forms with a register operand, SGDT with a register operand, LOCK
;   6. a virtual-8086 program (§20.2; IOPL = 3 so that PUSHF/POPF/IRET/INT n run natively
;      without PSI, §20.2.7): Table 3-2's "all" rows fault in V86 mode with PSI = 1,
;      SLDT/STR/LAR/LSL/VERR/VERW stay #UD (§20.2.7, docs/v386.md Table 3-2 notes), the
;      segment-register forms are not sensitive there and run
;   7. "PASS", then value 0 to the isa-debug-exit port 0xF4 (1 after "FAIL: ...").
;
; How a case runs: run_case enters the case's routine at the chosen ring with an IRET
; (SDM Vol. 2A "IRET": return to an outer privilege level; for V86, §20.2.5), or with a
; plain jump at ring 0. The routine ends with `jmp case_exit`, a UD2: the #UD handler
; records the state at that point (general registers, segment registers, ESP, EFLAGS,
; CS:EIP) and returns to run_case's caller on the ring-0 stack. A #GP or an unexpected
; #UD inside the routine is recorded (vector, error code, CS:EIP, EFLAGS; §6.12.1 frame,
; §6.13 error code) and the routine resumes at the case's resume address, right after
; the sensitive instruction — the "skip" a VMM would do after emulating it.
;
; Only deterministic values are printed.

%include "loader.inc"

; Absolute (scalar) value of a label, for the shifts and masks nasm refuses on labels.
%define ABS(x) ((x) - $$ + 0x7c00)

DEBUGCON        equ 0xe9
DEBUG_EXIT      equ 0xf4

; GDT selectors (SDM Vol. 3A §3.4.2: index << 3 | TI | RPL)
CODE0_SEL       equ 0x08            ; ring-0 code, flat 32-bit
DATA0_SEL       equ 0x10            ; ring-0 data, flat
CODE1_SEL       equ 0x18 | 1        ; ring-1 code (a deprivileged guest kernel's ring)
DATA1_SEL       equ 0x20 | 1        ; ring-1 data/stack
CODE3_SEL       equ 0x28 | 3        ; ring-3 code
DATA3_SEL       equ 0x30 | 3        ; ring-3 data/stack
CONF_SEL        equ 0x38            ; conforming code, DPL 0: far CALL/JMP target from any ring
PROBE_SEL       equ 0x40 | 3        ; DPL-3 data, limit 0xBEEF: LAR/LSL/VERW and Sreg loads
TSS_SEL         equ 0x48
LDT_SEL         equ 0x50

; Memory (everything below 1 MiB; no paging)
MEMDST          equ 0x0600          ; 32 bytes of PATTERN before every run: the memory destination
V86_TOP         equ 0x7000          ; V86 SS:SP = 0000:7000
IDT_BASE        equ 0x1a000
IDT_VECTORS     equ 0x41            ; 0..31 exceptions, up to SOFT_VEC
RING3_TOP       equ 0x1c000         ; stack tops of the routines at each ring
RING1_TOP       equ 0x1d000
CASE0_TOP       equ 0x1e000
ESP0_TOP        equ 0x1f000         ; TSS.ESP0: handlers entered from ring 1, 3 and V86
MAIN_TOP        equ 0x20000         ; the driver's stack

PATTERN         equ 0xcccccccc
SENTINEL        equ 0x5a5a5a5a      ; a register a faulting instruction must not change
SOFT_VEC        equ 0x40            ; the INT n of the tests (gate DPL 3)

CR4_PSI         equ 1 << 15         ; docs/v386.md §3.1
V386_LEAF       equ 0x83860000      ; docs/v386.md §2
V386_SIG        equ 0x36383356      ; "V386"

; EFLAGS (SDM Vol. 1 §3.4.3, Vol. 3A §2.3)
EFL_ZF          equ 0x00000040
EFL_OF          equ 0x00000800
EFL_IOPL3       equ 0x00003000
EFL_VM          equ 0x00020000
EFL_LOW         equ 0x00007fff      ; compared bits: arithmetic, TF, IF, DF, IOPL, NT (not RF)
EFL_START       equ 0x00000002      ; every routine starts with IF = 0, IOPL = 0
FLAGS_CMP       equ 0x00000046      ; after `cmp x, x`: ZF, PF (and the fixed bit 1)
FLAGS_IMAGE     equ 0x00003ad7      ; popped by POPF/IRET: IOPL 3, IF, OF SF ZF AF PF CF
FLAGS_IMAGE_V86 equ 0x00000ad7      ; the 16-bit image for V86 (IOPL field 0: V86 keeps its own)

; ---------------------------------------------------------------------------------------
; Macros (32-bit code)
; ---------------------------------------------------------------------------------------

; PRINT "text", 10 — a string on the debug console.
%macro PRINT 1+
        jmp     %%skip
%%str:  db      %1, 0
%%skip: push    esi
        mov     esi, %%str
        call    print_str
        pop     esi
%endmacro

; HEX value, digits — upper-case hex.
%macro HEX 2
        push    eax
        push    ecx
        mov     eax, %1
        mov     ecx, %2
        call    print_hex
        pop     ecx
        pop     eax
%endmacro

; EXPECT got, want, "what" — 32-bit compare; `want` must not be EAX or EDX. On a mismatch
; "FAIL: <case> <phase>: what: got X expected Y" and stop.
%macro EXPECT 3
        push    eax
        push    edx
        mov     eax, %1
        mov     edx, %2
        cmp     eax, edx
        jne     %%bad
        pop     edx
        pop     eax
        jmp     %%ok
%%bad:  mov     esi, %%what
        jmp     expect_failed
%%what: db      %3, 0
%%ok:
%endmacro

; EXPECTW [mem], want, "what" — the same for a zero-extended word.
%macro EXPECTW 3
        push    eax
        movzx   eax, word %1
        EXPECT  eax, %2, %3
        pop     eax
%endmacro

; EXPECTM got, mask, want, "what" — (got AND mask) = want.
%macro EXPECTM 4
        push    eax
        mov     eax, %1
        and     eax, %2
        EXPECT  eax, %3, %4
        pop     eax
%endmacro

; TOP reg, n — reg = the routine's initial stack top minus n.
%macro TOP 2
        mov     %1, [cur_top]
        sub     %1, %2
%endmacro

; A case descriptor (see "Case descriptors" below), at the case's global label; the
; case's routine and checks follow as its local labels .run .insn .resume .bad .ok.
C_NAME          equ 0
C_RUN           equ 4
C_INSN          equ 8
C_RESUME        equ 12
C_BAD           equ 16
C_OK            equ 20
C_KIND          equ 24              ; V86 cases only
%macro CASE 1
        dd      %%name, .run, .insn, .resume, .bad, .ok
%%name: db      %1, 0
%endmacro

; ---------------------------------------------------------------------------------------
; 1. Real mode: set up, mask the PICs, enter protected mode
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
        mov     al, 0xff                ; mask every IRQ on both 8259s: the routines run
        out     0x21, al                ; with IF = 1 at times (POPF, IRET)
        out     0xa1, al
        lgdt    [gdt_desc]
        mov     eax, cr0
        or      eax, 1                  ; CR0.PE (§2.5, §9.9.1)
        mov     cr0, eax
        jmp     dword CODE0_SEL:pm_entry

; ---------------------------------------------------------------------------------------
; The V86 routines (16-bit code at 0000:xxxx; kept below 64 KiB with their data, see the
; check after the data). Each ends with `jmp v86_exit`. Descriptors and checks are with
; the protected-mode ones further down.
; ---------------------------------------------------------------------------------------

; -- Table 3-2 rows marked "all": fault in V86 mode with PSI (they run at IOPL 3 without)
vr_sgdt:
.insn:  sgdt    [MEMDST]
.resume:
        jmp     v86_exit
vr_sidt:
.insn:  sidt    [MEMDST]
.resume:
        jmp     v86_exit
vr_smsw:
.insn:  smsw    [MEMDST]
.resume:
        jmp     v86_exit
vr_pushf:
        cmp     ax, ax
.insn:  pushf
.resume:
        jmp     v86_exit
vr_popf:
        push    word FLAGS_IMAGE_V86
        cmp     ax, ax
.insn:  popf
.resume:
        jmp     v86_exit
vr_iret:
        push    word FLAGS_IMAGE_V86
        push    cs                      ; not sensitive in V86 mode
        push    word .target
        cmp     ax, ax
.insn:  iret
.resume:
        mov     word [marker], 1
        jmp     v86_exit
.target:
        mov     word [marker], 2
        jmp     v86_exit
vr_int:
.insn:  int     SOFT_VEC
.resume:
        jmp     v86_exit
vr_int3:
.insn:  int3
.resume:
        jmp     v86_exit
vr_into:
        mov     al, 0x7f
        add     al, 1                   ; OF = 1
.insn:  into
.resume:
        jmp     v86_exit

; -- #UD in V86 mode with or without PSI (SDM Vol. 2A/2B, the "Virtual-8086 Mode
;    Exceptions" of SLDT, STR, LAR, LSL, VERR, VERW: "#UD The instruction is not
;    recognized in virtual-8086 mode")
%macro V86_UD 2                         ; label, instruction
%1:     mov     eax, SENTINEL
        mov     ebx, PROBE_SEL
.insn:  %2
.resume:
        jmp     v86_exit
%endmacro
        V86_UD  vr_sldt, {sldt ax}
        V86_UD  vr_str, {str ax}
        V86_UD  vr_lar, {lar ax, bx}
        V86_UD  vr_lsl, {lsl ax, bx}
        V86_UD  vr_verr, {verr bx}
        V86_UD  vr_verw, {verw bx}

; -- Segment-register forms: in V86 mode a selector is a paragraph number (§20.1.1), not
;    sensitive (docs/v386.md Table 3-2 "protected mode only"): they run with PSI.
vr_push_cs:
.insn:  push    cs
.resume:
        jmp     v86_exit
vr_push_fs:
.insn:  push    fs
.resume:
        jmp     v86_exit
vr_pop_ds:
        push    word 0x1234
.insn:  pop     ds
.resume:
        jmp     v86_exit
vr_pop_gs:
        push    word 0x2345
.insn:  pop     gs
.resume:
        jmp     v86_exit
vr_mov_r_sreg:
        mov     eax, SENTINEL
.insn:  mov     ax, ss
.resume:
        jmp     v86_exit
vr_mov_sreg_r:
        mov     bx, 0x3456
.insn:  mov     es, bx
.resume:
        jmp     v86_exit
%macro V86_LOADFP 2                     ; label, instruction
%1:     mov     esi, SENTINEL
.insn:  %2
.resume:
        jmp     v86_exit
%endmacro
        V86_LOADFP vr_lds, {lds si, [v86_fp]}
        V86_LOADFP vr_les, {les si, [v86_fp]}
        V86_LOADFP vr_lfs, {lfs si, [v86_fp]}
        V86_LOADFP vr_lgs, {lgs si, [v86_fp]}
vr_lss:
.insn:  lss     sp, [v86_fp_stack]
.resume:
        jmp     v86_exit
vr_callf:
.insn:  call    0:v86_target
.resume:
        mov     word [marker], 1
        jmp     v86_exit
vr_callf_m:
.insn:  call    far [v86_fp_code]
.resume:
        mov     word [marker], 1
        jmp     v86_exit
vr_jmpf:
.insn:  jmp     0:v86_target
.resume:
        mov     word [marker], 1
        jmp     v86_exit
vr_jmpf_m:
.insn:  jmp     far [v86_fp_code]
.resume:
        mov     word [marker], 1
        jmp     v86_exit
vr_retf:
        push    cs
        push    word v86_target
.insn:  retf
.resume:
        mov     word [marker], 1
        jmp     v86_exit
vr_retf_imm:
        push    word 0x1111
        push    word 0x2222
        push    cs
        push    word v86_target
.insn:  retf    4
.resume:
        mov     word [marker], 1
        jmp     v86_exit

v86_target:
        mov     word [marker], 2
        jmp     v86_exit
v86_exit:
        ud2                             ; the end of a V86 routine: #UD to the monitor

; ---------------------------------------------------------------------------------------
; Data (below 64 KiB: the V86 routines address it with DS = 0)
; ---------------------------------------------------------------------------------------
        align   4
marker:         dd 0                    ; set by routines: 1 = fell through, 2 = transferred
runner_esp:     dd 0
cur_case:       dd 0                    ; the descriptor being run
cur_name:       dd 0                    ; for FAIL messages
cur_phase:      dd 0
cur_ring:       dd 0                    ; 0, 1, 3 or 4 (= V86)
cur_cs:         dd 0                    ; the routine's CS, data/stack selector, stack top
cur_ds:         dd 0
cur_top:        dd 0
resume:         dd 0                    ; where a recorded #GP/#UD continues
fault_count:    dd 0                    ; recorded #GP/#UD (not the case's own exit)
fault_vec:      dd 0
fault_err:      dd 0
fault_eip:      dd 0
fault_cs:       dd 0
fault_eflags:   dd 0
int_count:      dd 0                    ; INT n / INT3 / INTO that reached their handlers
int_vec:        dd 0
int_eip:        dd 0
int_cs:         dd 0
int_eflags:     dd 0
exit_eax:       dd 0                    ; the state at the routine's end (case_exit)
exit_ebx:       dd 0
exit_ecx:       dd 0
exit_edx:       dd 0
exit_esi:       dd 0
exit_edi:       dd 0
exit_esp:       dd 0
exit_eip:       dd 0
exit_cs:        dd 0
exit_eflags:    dd 0
exit_ss:        dd 0
exit_ds:        dd 0
exit_es:        dd 0
exit_fs:        dd 0
exit_gs:        dd 0

; Per ring (index 0, 1, 3; 4 = V86): the routine's CS, data and stack selector, stack top.
ring_cs:        dd CODE0_SEL, CODE1_SEL, 0, CODE3_SEL, 0
ring_ds:        dd DATA0_SEL, DATA1_SEL, 0, DATA3_SEL, 0
ring_top:       dd CASE0_TOP, RING1_TOP, 0, RING3_TOP, V86_TOP

; Far pointers (m16:32 for protected mode, m16:16 for V86)
fp_probe:       dd 0x12345678
                dw PROBE_SEL
fp_conf:        dd conf_target
                dw CONF_SEL
fp_stack:       dd 0                    ; filled in by the LSS routine
                dw 0
sel_probe:      dw PROBE_SEL
v86_fp:         dw 0x1111, 0x2222
v86_fp_stack:   dw 0x0100, 0x0060       ; SS:SP = 0060:0100
v86_fp_code:    dw v86_target, 0

; GDT (§3.4.5, Figure 3-8). Code/data: limit 0xFFFFF, G = 1, D/B = 1; access byte
; P | DPL | S | type: code 1010b (execute/read), conforming code 1110b, data 0010b
; (read/write; the probe 0011b, accessed already so LAR's answer never changes).
        align   8
gdt:
        dq      0                                       ; 0x00 null
        dq      0x00cf9a000000ffff                      ; 0x08 ring-0 code
        dq      0x00cf92000000ffff                      ; 0x10 ring-0 data
        dq      0x00cfba000000ffff                      ; 0x18 ring-1 code (DPL 1)
        dq      0x00cfb2000000ffff                      ; 0x20 ring-1 data (DPL 1)
        dq      0x00cffa000000ffff                      ; 0x28 ring-3 code (DPL 3)
        dq      0x00cff2000000ffff                      ; 0x30 ring-3 data (DPL 3)
        dq      0x00cf9e000000ffff                      ; 0x38 conforming code, DPL 0
        dq      0x0040f3000000beef                      ; 0x40 probe: DPL 3, limit 0xBEEF, G = 0
; System descriptors (§3.5, SDM Table 3-2 "System-Segment and Gate-Descriptor Types";
; TSS descriptor §7.2.2, Figure 7-3): byte granular, DPL 0.
%macro SYS_DESC 3                                       ; base, limit, type byte
        dw      (%2) & 0xffff
        dw      ABS(%1) & 0xffff
        db      (ABS(%1) >> 16) & 0xff
        db      %3
        db      ((%2) >> 16) & 0x0f
        db      (ABS(%1) >> 24) & 0xff
%endmacro
        SYS_DESC tss, tss_end - tss - 1, 0x89           ; 0x48 available 32-bit TSS
        SYS_DESC ldt, ldt_end - ldt - 1, 0x82           ; 0x50 LDT
gdt_end:
GDT_LIMIT       equ gdt_end - gdt - 1

gdt_desc:
        dw      GDT_LIMIT
        dd      gdt
idt_desc:
        dw      IDT_VECTORS * 8 - 1
        dd      IDT_BASE

; The LDT: one data descriptor (nothing loads it; SLDT only needs LDTR to be non-null).
        align   8
ldt:
        dq      0x00cff2000000ffff
ldt_end:

; The TSS (§7.2.1, Figure 7-2): only SS0:ESP0 is used (interrupts and exceptions from
; ring 1, ring 3 and V86 mode switch to that stack, §6.12.1). No I/O bitmap: its base
; is at the limit.
        align   8
tss:
        dd      0                       ; previous task link
        dd      ESP0_TOP                ; ESP0
        dd      DATA0_SEL               ; SS0
        times   22 dd 0                 ; ESP1 .. LDT selector
        dw      0                       ; T
        dw      tss_end - tss           ; I/O map base
tss_end:

; The V86 code and data above must stay addressable from V86 with CS = DS = 0.
        times   (ABS($) > 0x10000) * -1 db 0

; ---------------------------------------------------------------------------------------
; 2. Protected mode, ring 0
; ---------------------------------------------------------------------------------------

        bits    32
pm_entry:
        mov     ax, DATA0_SEL
        mov     ds, ax
        mov     es, ax
        mov     fs, ax
        mov     gs, ax
        mov     ss, ax
        mov     esp, MAIN_TOP
        PRINT   "psi: protected mode", 10

        ; ---- IDT (§6.10, §6.11): interrupt gates; #UD and #GP record, INT3 (3), INTO (4)
        ; and INT 40h have DPL 3 so that ring 3 and V86 (IOPL 3) can reach them without
        ; PSI (the gate's DPL is checked for INT n, INT3 and INTO only: §6.12.1,
        ; "Protection of Exception- and Interrupt-Handler Procedures"); every other
        ; vector reports an unexpected event.
        mov     edi, IDT_BASE
        mov     ebx, exc_stubs
        xor     ecx, ecx
.gate:  mov     eax, ebx
        mov     edx, 0x8e00             ; P, DPL 0, 32-bit interrupt gate
        cmp     ecx, 6
        jne     .n6
        mov     eax, ud_entry
.n6:    cmp     ecx, 13
        jne     .n13
        mov     eax, gp_entry
.n13:   cmp     ecx, 3
        jne     .n3
        mov     eax, soft3
        mov     edx, 0xee00             ; DPL 3
.n3:    cmp     ecx, 4
        jne     .n4
        mov     eax, soft4
        mov     edx, 0xee00
.n4:    cmp     ecx, SOFT_VEC
        jne     .nsoft
        mov     eax, soft40
        mov     edx, 0xee00
.nsoft: call    set_gate
        add     ebx, 8
        add     edi, 8
        inc     ecx
        cmp     ecx, IDT_VECTORS
        jb      .gate
        lidt    [idt_desc]

        ; ---- TR and LDTR (§7.2.4, §3.5.1): STR and SLDT return these.
        mov     ax, TSS_SEL
        ltr     ax
        mov     ax, LDT_SEL
        lldt    ax
        PRINT   "psi: gdt, idt, tss, ldt loaded", 10

        ; ---- CPUID (docs/v386.md §2): the signature first, then the PSI bit.
        mov     eax, V386_LEAF
        cpuid
        mov     [cpuid_eax], eax
        mov     [cpuid_ebx], ebx
        EXPECT  [cpuid_ebx], V386_SIG, "CPUID.8386_0000H:EBX signature"
        EXPECT  [cpuid_eax], V386_LEAF + 1, "CPUID.8386_0000H:EAX highest leaf"
        PRINT   "cpuid 83860000h: ebx=", '"'
        mov     eax, [cpuid_ebx]
        mov     ecx, 4
.sig:   out     DEBUGCON, al
        shr     eax, 8
        loop    .sig
        PRINT   '"', ", highest leaf 83860001h", 10
        mov     eax, V386_LEAF + 1
        cpuid
        mov     [cpuid_edx], edx
        EXPECTM [cpuid_edx], 1, 1, "CPUID.8386_0001H:EDX.PSI"
        PRINT   "cpuid 83860001h: edx.psi=1", 10

        ; ---- CR4.PSI can be set and cleared (docs/v386.md §3.1).
        call    psi_on
        mov     eax, cr4
        EXPECTM eax, CR4_PSI, CR4_PSI, "CR4.PSI after setting it"
        call    psi_off
        mov     eax, cr4
        EXPECTM eax, CR4_PSI, 0, "CR4.PSI after clearing it"
        PRINT   "cr4.psi: set and cleared", 10

; ---------------------------------------------------------------------------------------
; 3. Table 3-2 in protected mode
; ---------------------------------------------------------------------------------------
        mov     esi, pm_cases
.pm:    mov     eax, [esi]
        test    eax, eax
        jz      .pm_done
        push    esi
        mov     esi, eax
        call    test_pm_case
        pop     esi
        add     esi, 4
        jmp     .pm
.pm_done:

; ---------------------------------------------------------------------------------------
; 4. Ordinary instructions do not fault with PSI
; ---------------------------------------------------------------------------------------
        mov     dword [cur_case], c_plain
        mov     dword [cur_name], c_plain_name
        mov     esi, c_plain_name
        call    print_str
        PRINT   ": "
        call    psi_on
        mov     ecx, 3
        mov     dword [cur_phase], ph_cpl3_psi
        call    ok_round
        PRINT   "cpl3 psi ok, "
        mov     ecx, 1
        mov     dword [cur_phase], ph_cpl1_psi
        call    ok_round
        PRINT   "cpl1 psi ok", 10
        call    psi_off

; ---------------------------------------------------------------------------------------
; 5. #UD keeps priority over PSI (docs/v386.md §3.2)
; ---------------------------------------------------------------------------------------
        mov     esi, ud_cases
.ud:    mov     eax, [esi]
        test    eax, eax
        jz      .ud_done
        push    esi
        mov     esi, eax
        call    test_ud_case
        pop     esi
        add     esi, 4
        jmp     .ud
.ud_done:

; ---------------------------------------------------------------------------------------
; 6. Virtual-8086 mode (§20.2)
; ---------------------------------------------------------------------------------------
        mov     esi, v86_cases
.v86:   mov     eax, [esi]
        test    eax, eax
        jz      .v86_done
        push    esi
        mov     esi, eax
        call    test_v86_case
        pop     esi
        add     esi, 4
        jmp     .v86
.v86_done:

; ---------------------------------------------------------------------------------------
; 7. Done
; ---------------------------------------------------------------------------------------
        mov     eax, cr4
        EXPECTM eax, CR4_PSI, 0, "CR4.PSI at the end"
        PRINT   "PASS", 10
        mov     al, 0
        out     DEBUG_EXIT, al
        cli
.halt:  hlt
        jmp     .halt

; ---------------------------------------------------------------------------------------
; Drivers
; ---------------------------------------------------------------------------------------

; test_pm_case: ESI -> a protected-mode case. PSI at CPL 3 and 1 (#GP), at CPL 0 (runs),
; no PSI at CPL 3 (runs).
test_pm_case:
        mov     [cur_case], esi
        mov     eax, [esi + C_NAME]
        mov     [cur_name], eax
        mov     esi, eax
        call    print_str
        PRINT   ": "
        call    psi_on
        mov     ecx, 3
        mov     ebx, 13
        mov     dword [cur_phase], ph_cpl3_psi
        call    fault_round
        PRINT   "cpl3 #GP ok, "
        mov     ecx, 1
        mov     dword [cur_phase], ph_cpl1_psi
        call    fault_round
        PRINT   "cpl1 #GP ok, "
        mov     ecx, 0
        mov     dword [cur_phase], ph_cpl0_psi
        call    ok_round
        PRINT   "cpl0 ok, "
        call    psi_off
        mov     ecx, 3
        mov     dword [cur_phase], ph_cpl3_nopsi
        call    ok_round
        PRINT   "nopsi cpl3 ok", 10
        ret

; test_ud_case: ESI -> a case whose instruction is #UD: with PSI at CPL 3 and 1, and
; without PSI at CPL 3, the fault is #UD (vector 6), never #GP.
test_ud_case:
        mov     [cur_case], esi
        mov     eax, [esi + C_NAME]
        mov     [cur_name], eax
        mov     esi, eax
        call    print_str
        PRINT   ": "
        mov     ebx, 6
        call    psi_on
        mov     ecx, 3
        mov     dword [cur_phase], ph_cpl3_psi
        call    fault_round
        PRINT   "cpl3 psi #UD ok, "
        mov     ecx, 1
        mov     dword [cur_phase], ph_cpl1_psi
        call    fault_round
        PRINT   "cpl1 psi #UD ok, "
        call    psi_off
        mov     ecx, 3
        mov     dword [cur_phase], ph_cpl3_nopsi
        call    fault_round
        PRINT   "nopsi cpl3 #UD ok", 10
        ret

; test_v86_case: ESI -> a V86 case; its kind: 0 = sensitive (#GP with PSI, runs without),
; 1 = #UD either way, 2 = not sensitive in V86 mode (runs either way).
test_v86_case:
        mov     [cur_case], esi
        mov     eax, [esi + C_NAME]
        mov     [cur_name], eax
        PRINT   "v86 "
        push    esi
        mov     esi, eax
        call    print_str
        pop     esi
        PRINT   ": "
        mov     ecx, 4
        mov     eax, [esi + C_KIND]
        call    psi_on
        mov     dword [cur_phase], ph_v86_psi
        cmp     eax, 1
        je      .ud
        cmp     eax, 2
        je      .plain
        mov     ebx, 13
        call    fault_round
        PRINT   "psi #GP ok, "
        call    psi_off
        mov     dword [cur_phase], ph_v86_nopsi
        call    ok_round
        PRINT   "nopsi ok", 10
        ret
.ud:    mov     ebx, 6
        call    fault_round
        PRINT   "psi #UD ok, "
        call    psi_off
        mov     dword [cur_phase], ph_v86_nopsi
        call    fault_round
        PRINT   "nopsi #UD ok", 10
        ret
.plain: call    ok_round
        PRINT   "psi ok, "
        call    psi_off
        mov     dword [cur_phase], ph_v86_nopsi
        call    ok_round
        PRINT   "nopsi ok", 10
        ret

; fault_round: run [cur_case] at ring ECX and require exactly one fault, vector EBX, error
; code 0, at the instruction (CS:EIP of its first byte, §6.5 "fault": the saved EIP points
; at the faulting instruction), then the case's "nothing changed" check.
fault_round:
        pushad
        mov     esi, [cur_case]
        mov     eax, [esi + C_RESUME]
        mov     [resume], eax
        mov     eax, [esi + C_RUN]
        call    run_case
        mov     dword [resume], 0
        EXPECT  [fault_count], 1, "number of faults"
        EXPECT  [fault_vec], ebx, "vector"
        EXPECT  [fault_err], 0, "error code"
        mov     esi, [cur_case]
        mov     edi, [esi + C_INSN]
        EXPECT  [fault_eip], edi, "faulting EIP"
        mov     edi, [cur_cs]
        EXPECT  [fault_cs], edi, "faulting CS"
        mov     edi, 0
        cmp     ecx, 4
        jne     .pm
        mov     edi, EFL_VM
.pm:    EXPECTM [fault_eflags], EFL_VM, edi, "EFLAGS.VM in the fault frame"
        call    [esi + C_BAD]
        popad
        ret

; ok_round: run [cur_case] at ring ECX; no fault allowed; then the case's result check.
ok_round:
        pushad
        mov     esi, [cur_case]
        mov     eax, [esi + C_RESUME]
        mov     [resume], eax
        mov     eax, [esi + C_RUN]
        call    run_case
        mov     dword [resume], 0
        cmp     dword [fault_count], 0
        je      .clean
        mov     esi, .what
        mov     eax, [fault_vec]
        mov     edx, [fault_eip]
        jmp     fail_with
.what:  db      "fault where the instruction should run (got = vector, expected = EIP)", 0
.clean: mov     esi, [cur_case]
        call    [esi + C_OK]
        popad
        ret

; psi_on / psi_off: CR4[15] (docs/v386.md §3.1; MOV CR4, SDM Vol. 3A §2.5).
psi_on:
        push    eax
        mov     eax, cr4
        or      eax, CR4_PSI
        mov     cr4, eax
        pop     eax
        ret
psi_off:
        push    eax
        mov     eax, cr4
        and     eax, ~CR4_PSI
        mov     cr4, eax
        pop     eax
        ret

; run_case: EAX = routine, ECX = ring (0, 1, 3; 4 = V86 with IOPL 3). Resets the
; observations, refills MEMDST and the top of the routine's stack with PATTERN, enters
; the routine; returns when it reaches case_exit / v86_exit (see exit_case).
run_case:
        pushad
        mov     [runner_esp], esp
        mov     [cur_ring], ecx
        xor     edx, edx
        mov     [fault_count], edx
        mov     [int_count], edx
        mov     [marker], edx
        dec     edx
        mov     [fault_vec], edx
        mov     [fault_err], edx
        mov     [fault_eip], edx
        mov     [fault_cs], edx
        mov     [fault_eflags], edx
        mov     [int_vec], edx
        mov     [int_eip], edx
        mov     [int_cs], edx
        mov     [int_eflags], edx
        mov     edx, [ring_cs + ecx*4]
        mov     [cur_cs], edx
        mov     edx, [ring_ds + ecx*4]
        mov     [cur_ds], edx
        mov     edx, [ring_top + ecx*4]
        mov     [cur_top], edx
        push    eax
        push    ecx
        mov     eax, PATTERN
        mov     edi, MEMDST
        mov     ecx, 8
        rep     stosd
        lea     edi, [edx - 32]
        mov     ecx, 8
        rep     stosd
        pop     ecx
        pop     eax
        cmp     ecx, 4
        je      .v86
        test    ecx, ecx
        jz      .ring0
        ; Ring 1 or 3: IRET to an outer privilege level pops EIP, CS, EFLAGS, ESP, SS
        ; (SDM Vol. 2A "IRET"). DS..GS get the ring's data selector first: with a DPL
        ; below the new CPL the IRET would null them, and the routine cannot load them
        ; itself with PSI set.
        mov     edx, [cur_ds]
        push    edx                     ; SS
        push    dword [cur_top]         ; ESP
        push    dword EFL_START         ; EFLAGS
        push    dword [cur_cs]          ; CS
        push    eax                     ; EIP
        mov     ds, dx
        mov     es, dx
        mov     fs, dx
        mov     gs, dx
        iretd
.ring0: push    dword EFL_START
        popfd
        mov     esp, CASE0_TOP
        jmp     eax
.v86:   ; IRET with EFLAGS.VM = 1 from CPL 0 enters V86 mode (§20.2.5): it also pops
        ; ES, DS, FS, GS. IOPL 3: PUSHF, POPF, IRET, INT n run natively (§20.2.7).
        push    dword 0                 ; GS
        push    dword 0                 ; FS
        push    dword 0                 ; DS
        push    dword 0                 ; ES
        push    dword 0                 ; SS
        push    dword V86_TOP           ; ESP
        push    dword EFL_VM | EFL_IOPL3 | EFL_START
        push    dword 0                 ; CS
        push    eax                     ; EIP
        iretd

; ---------------------------------------------------------------------------------------
; Exception and interrupt handlers
; ---------------------------------------------------------------------------------------

; Frame in fault_common, offsets from EBP (§6.12.1, Figure 6-4; from V86 §20.3.1.1):
R_EDI           equ 0                   ; pushad
R_ESI           equ 4
R_EBX           equ 16
R_EDX           equ 20
R_ECX           equ 24
R_EAX           equ 28
R_DS            equ 32                  ; pushed by fault_common
R_ES            equ 36
R_FS            equ 40
R_GS            equ 44
R_VEC           equ 48                  ; pushed by the entry stub
R_ERR           equ 52                  ; by the CPU (#GP) or the stub (#UD: 0)
R_EIP           equ 56
R_CS            equ 60
R_EFLAGS        equ 64
R_ESP           equ 68                  ; from ring 1, 3 or V86 only
R_SS            equ 72
R_V86_ES        equ 76                  ; from V86 only
R_V86_DS        equ 80
R_V86_FS        equ 84
R_V86_GS        equ 88

; #UD (vector 6): the UD2 at case_exit / v86_exit ends a routine; any other #UD is
; recorded like a #GP.
ud_entry:
        push    dword 0
        push    dword 6
        jmp     fault_common
; #GP (vector 13, §6.15 "Interrupt 13"): recorded.
gp_entry:
        push    dword 13
fault_common:
        push    gs
        push    fs
        push    es
        push    ds
        pushad
        mov     ebp, esp
        mov     ax, DATA0_SEL
        mov     ds, ax
        mov     es, ax
        cld
        cmp     dword [ebp + R_VEC], 6
        jne     .record
        mov     eax, [ebp + R_EIP]
        test    dword [ebp + R_EFLAGS], EFL_VM
        jnz     .from_v86
        cmp     eax, case_exit
        je      exit_case
        jmp     .record
.from_v86:
        cmp     eax, v86_exit
        je      exit_case
.record:
        inc     dword [fault_count]
        mov     eax, [ebp + R_VEC]
        mov     [fault_vec], eax
        mov     eax, [ebp + R_ERR]
        mov     [fault_err], eax
        mov     eax, [ebp + R_EIP]
        mov     [fault_eip], eax
        movzx   eax, word [ebp + R_CS]
        mov     [fault_cs], eax
        mov     eax, [ebp + R_EFLAGS]
        mov     [fault_eflags], eax
        mov     eax, [resume]
        test    eax, eax
        jz      .unexpected
        mov     [ebp + R_EIP], eax      ; skip the instruction
        popad
        pop     ds
        pop     es
        pop     fs
        pop     gs
        add     esp, 8                  ; vector, error code
        iretd
.unexpected:
        PRINT   "FAIL: unexpected fault, vector="
        HEX     [ebp + R_VEC], 2
        PRINT   " err="
        HEX     [ebp + R_ERR], 4
        PRINT   " cs:eip="
        HEX     [ebp + R_CS], 4
        PRINT   ":"
        HEX     [ebp + R_EIP], 8
        PRINT   10
        jmp     fail_exit

; exit_case: the routine reached its UD2. Record its state and return from run_case.
exit_case:
        mov     eax, [ebp + R_EAX]
        mov     [exit_eax], eax
        mov     eax, [ebp + R_EBX]
        mov     [exit_ebx], eax
        mov     eax, [ebp + R_ECX]
        mov     [exit_ecx], eax
        mov     eax, [ebp + R_EDX]
        mov     [exit_edx], eax
        mov     eax, [ebp + R_ESI]
        mov     [exit_esi], eax
        mov     eax, [ebp + R_EDI]
        mov     [exit_edi], eax
        mov     eax, [ebp + R_EIP]
        mov     [exit_eip], eax
        movzx   eax, word [ebp + R_CS]
        mov     [exit_cs], eax
        mov     eax, [ebp + R_EFLAGS]
        mov     [exit_eflags], eax
        test    eax, EFL_VM
        jnz     .v86
        movzx   eax, word [ebp + R_DS]
        mov     [exit_ds], eax
        movzx   eax, word [ebp + R_ES]
        mov     [exit_es], eax
        movzx   eax, word [ebp + R_FS]
        mov     [exit_fs], eax
        movzx   eax, word [ebp + R_GS]
        mov     [exit_gs], eax
        test    byte [ebp + R_CS], 3
        jz      .same_ring
        mov     eax, [ebp + R_ESP]
        mov     [exit_esp], eax
        movzx   eax, word [ebp + R_SS]
        mov     [exit_ss], eax
        jmp     .back
.same_ring:                             ; no stack switch: the frame sat on its stack
        lea     eax, [ebp + R_ESP]
        mov     [exit_esp], eax
        mov     ax, ss
        movzx   eax, ax
        mov     [exit_ss], eax
        jmp     .back
.v86:   mov     eax, [ebp + R_ESP]
        mov     [exit_esp], eax
        movzx   eax, word [ebp + R_SS]
        mov     [exit_ss], eax
        movzx   eax, word [ebp + R_V86_DS]
        mov     [exit_ds], eax
        movzx   eax, word [ebp + R_V86_ES]
        mov     [exit_es], eax
        movzx   eax, word [ebp + R_V86_FS]
        mov     [exit_fs], eax
        movzx   eax, word [ebp + R_V86_GS]
        mov     [exit_gs], eax
.back:  mov     ax, DATA0_SEL
        mov     ss, ax
        mov     esp, [runner_esp]
        mov     fs, ax
        mov     gs, ax
        push    dword EFL_START
        popfd
        popad
        ret

; INT3 (3), INTO (4), INT 40h: count and record the frame, return (§6.3.3 software-
; generated interrupts, §6.4.2 software-generated exceptions).
soft3:  push    dword 3
        jmp     soft_common
soft4:  push    dword 4
        jmp     soft_common
soft40: push    dword SOFT_VEC
soft_common:
        push    ds
        push    eax
        mov     ax, DATA0_SEL           ; from V86 mode DS arrives null (§20.3.1.1)
        mov     ds, ax
        inc     dword [int_count]
        mov     eax, [esp + 8]
        mov     [int_vec], eax
        mov     eax, [esp + 12]
        mov     [int_eip], eax
        movzx   eax, word [esp + 16]
        mov     [int_cs], eax
        mov     eax, [esp + 20]
        mov     [int_eflags], eax
        pop     eax
        pop     ds
        add     esp, 4
        iretd

; One 8-byte stub per vector for the unexpected ones.
        align   8
exc_stubs:
%assign v 0
%rep IDT_VECTORS
        push    byte v
        jmp     near unexpected_event
        align   8
%assign v v+1
%endrep

unexpected_event:
        mov     ax, DATA0_SEL
        mov     ds, ax
        mov     es, ax
        PRINT   "FAIL: unexpected exception or interrupt, vector="
        pop     eax
        HEX     eax, 2
        PRINT   ", stack "
        HEX     [esp], 8
        PRINT   " "
        HEX     [esp + 4], 8
        PRINT   " "
        HEX     [esp + 8], 8
        PRINT   10
        jmp     fail_exit

; ---------------------------------------------------------------------------------------
; Helpers
; ---------------------------------------------------------------------------------------

; set_gate: EDI -> IDT slot, EAX = handler, DX = type word (§6.11, Figure 6-2).
set_gate:
        mov     [edi], ax
        mov     word [edi + 2], CODE0_SEL
        mov     [edi + 4], dx
        shr     eax, 16
        mov     [edi + 6], ax
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

; print_hex: EAX = value, ECX = number of low hex digits, upper case.
print_hex:
        pushad
        mov     edx, eax
        mov     ebx, ecx
        shl     ecx, 2
        neg     ecx
        add     ecx, 32
        rol     edx, cl                 ; the first digit to print is now in the top nibble
        mov     ecx, ebx
.digit: rol     edx, 4
        mov     al, dl
        and     al, 0x0f
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'A' - '9' - 1
.out:   out     DEBUGCON, al
        loop    .digit
        popad
        ret

; expect_failed: ESI = what, EAX = got, EDX = expected.
expect_failed:
fail_with:
        push    eax
        push    esi
        mov     ax, DATA0_SEL
        mov     ds, ax
        mov     es, ax
        PRINT   "FAIL: "
        mov     esi, [cur_name]
        test    esi, esi
        jnz     .named
        mov     esi, ph_setup
.named: call    print_str
        PRINT   " "
        mov     esi, [cur_phase]
        test    esi, esi
        jz      .what
        call    print_str
.what:  PRINT   ": "
        pop     esi
        call    print_str
        pop     eax
        PRINT   ": got "
        HEX     eax, 8
        PRINT   " expected "
        HEX     edx, 8
        PRINT   10
fail_exit:
        mov     al, 1
        out     DEBUG_EXIT, al
        cli
.halt:  hlt
        jmp     .halt

ph_setup:       db "setup", 0
ph_cpl3_psi:    db "cpl3 psi", 0
ph_cpl1_psi:    db "cpl1 psi", 0
ph_cpl0_psi:    db "cpl0 psi", 0
ph_cpl3_nopsi:  db "cpl3 nopsi", 0
ph_v86_psi:     db "v86 psi", 0
ph_v86_nopsi:   db "v86 nopsi", 0

        align   4
cpuid_eax:      dd 0
cpuid_ebx:      dd 0
cpuid_edx:      dd 0

; ---------------------------------------------------------------------------------------
; The end of every routine, and the far CALL/JMP target
; ---------------------------------------------------------------------------------------

case_exit:
        ud2                             ; #UD: exit_case

; In the conforming segment (CONF_SEL, DPL 0): a far CALL/JMP from any ring gets here
; without a privilege change, CS.RPL = CPL (§5.8.1.2).
conf_target:
        mov     dword [marker], 2
        jmp     case_exit

; Shared checks. no_push: ESP at the top, the stack slot below it untouched.
check_no_push:
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP (nothing pushed)"
        TOP     ebx, 4
        EXPECT  [ebx], PATTERN, "stack below ESP (nothing written)"
        ret
; pushed_sel: EDI = selector; one push of it.
check_pushed_sel:
        TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "ESP after the push"
        EXPECTW [ebx], edi, "selector pushed"
        ret
; memdst_untouched: the memory destination still holds PATTERN.
check_memdst_untouched:
        EXPECT  [MEMDST], PATTERN, "destination bytes 0-3 (nothing written)"
        EXPECT  [MEMDST + 4], PATTERN, "destination bytes 4-7 (nothing written)"
        ret
; int_not_taken / int_taken: INT n/INT3/INTO: EBX = vector.
check_int_not_taken:
        EXPECT  [int_count], 0, "handler entries"
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP"
        ret
check_int_taken:
        EXPECT  [int_count], 1, "handler entries"
        EXPECT  [int_vec], ebx, "vector delivered"
        mov     esi, [cur_case]
        mov     edi, [esi + C_RESUME]
        EXPECT  [int_eip], edi, "return EIP in the frame (the next instruction)"
        mov     edi, [cur_cs]
        EXPECT  [int_cs], edi, "CS in the frame (RPL = CPL)"
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the handler returned"
        ret
; marker: EBX = expected marker (1 = fell through after a fault, 2 = transferred).
check_marker:
        EXPECT  [marker], ebx, "where control went (1 = next instruction, 2 = target)"
        ret

; ---------------------------------------------------------------------------------------
; Protected-mode cases: one per row (and form) of docs/v386.md Table 3-2. Each: .run is
; the routine (any ring), .insn the sensitive instruction, .resume the instruction after
; it; .bad checks that nothing changed after the #GP, .ok the instruction's result
; (ECX = the ring, 0 or 3).
; ---------------------------------------------------------------------------------------

; SGDT (Table 3-1 row 1; SDM Vol. 2B "SGDT"). With an ES override: the fault must point
; at the prefix byte.
c_sgdt:
        CASE    "sgdt"
.run:
.insn:  sgdt    [es:MEMDST]
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    EXPECTW [MEMDST], GDT_LIMIT, "GDTR.limit stored"
        EXPECT  [MEMDST + 2], gdt, "GDTR.base stored"
        EXPECTW [MEMDST + 6], 0xcccc, "bytes after the 6-byte operand"
        ret

; SIDT (row 2; "SIDT").
c_sidt:
        CASE    "sidt"
.run:
.insn:  sidt    [MEMDST]
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    EXPECTW [MEMDST], IDT_VECTORS * 8 - 1, "IDTR.limit stored"
        EXPECT  [MEMDST + 2], IDT_BASE, "IDTR.base stored"
        ret

; SMSW (row 4; "SMSW"): CR0[15:0], PE = 1 (real CR0 whatever the guest believes).
c_smsw:
        CASE    "smsw"
.run:
.insn:  smsw    [MEMDST]
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    mov     ebx, cr0
        and     ebx, 0xffff
        EXPECTW [MEMDST], ebx, "machine status word stored"
        EXPECTW [MEMDST + 2], 0xcccc, "bytes after the word"
        ret

; SLDT (row 3; "SLDT").
c_sldt:
        CASE    "sldt"
.run:
.insn:  sldt    [MEMDST]
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    EXPECTW [MEMDST], LDT_SEL, "LDTR selector stored"
        EXPECTW [MEMDST + 2], 0xcccc, "bytes after the word"
        ret

; STR (row 5; "STR").
c_str:
        CASE    "str"
.run:
.insn:  str     [MEMDST]
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    EXPECTW [MEMDST], TSS_SEL, "TR selector stored"
        EXPECTW [MEMDST + 2], 0xcccc, "bytes after the word"
        ret

; LAR (row 8; "LAR"; §5.10.1): the probe's access rights (high dword AND 00F0FF00H), ZF = 1.
c_lar:
        CASE    "lar"
.run:   mov     eax, SENTINEL
        mov     ebx, PROBE_SEL
        test    ebx, ebx                ; ZF = 0
.insn:  lar     eax, ebx
.resume:
        jmp     case_exit
.bad:   EXPECT  [exit_eax], SENTINEL, "destination register (unchanged)"
        EXPECTM [exit_eflags], EFL_ZF, 0, "ZF (unchanged)"
        ret
.ok:    EXPECT  [exit_eax], 0x0040f300, "access rights"
        EXPECTM [exit_eflags], EFL_ZF, EFL_ZF, "ZF (valid)"
        ret

; LSL (row 9; "LSL"; §5.10.3): the probe's byte-granular limit.
c_lsl:
        CASE    "lsl"
.run:   mov     eax, SENTINEL
        mov     ebx, PROBE_SEL
        test    ebx, ebx
.insn:  lsl     eax, ebx
.resume:
        jmp     case_exit
.bad:   EXPECT  [exit_eax], SENTINEL, "destination register (unchanged)"
        EXPECTM [exit_eflags], EFL_ZF, 0, "ZF (unchanged)"
        ret
.ok:    EXPECT  [exit_eax], 0xbeef, "segment limit"
        EXPECTM [exit_eflags], EFL_ZF, EFL_ZF, "ZF (valid)"
        ret

; VERR (row 10; "VERR"; §5.10.2) on the ring-0 data segment: readable at CPL 0, not at
; CPL 3 (the hole: judged at the real CPL). ZF = 1 beforehand, so a VERR that ran at
; CPL 3 would show as ZF = 0.
c_verr:
        CASE    "verr"
.run:   mov     ebx, DATA0_SEL
        cmp     ebx, ebx                ; ZF = 1
.insn:  verr    bx
.resume:
        jmp     case_exit
.bad:   EXPECTM [exit_eflags], EFL_ZF, EFL_ZF, "ZF (unchanged)"
        ret
.ok:    mov     ebx, EFL_ZF             ; CPL 0: readable
        test    ecx, ecx
        jz      .want
        xor     ebx, ebx                ; CPL 3: DPL 0 < CPL, not accessible
.want:  EXPECTM [exit_eflags], EFL_ZF, ebx, "ZF (readable at this CPL)"
        ret

; VERW (row 11; "VERW") on the DPL-3 probe: writable from every ring.
c_verw:
        CASE    "verw"
.run:   mov     ebx, PROBE_SEL
        test    ebx, ebx                ; ZF = 0
.insn:  verw    bx
.resume:
        jmp     case_exit
.bad:   EXPECTM [exit_eflags], EFL_ZF, 0, "ZF (unchanged)"
        ret
.ok:    EXPECTM [exit_eflags], EFL_ZF, EFL_ZF, "ZF (writable)"
        ret

; PUSHFD (row 6; "PUSHF/PUSHFD"): the real EFLAGS image.
c_pushfd:
        CASE    "pushfd"
.run:   cmp     eax, eax
.insn:  pushfd
.resume:
        jmp     case_exit
.bad:   jmp     check_no_push
.ok:    TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "ESP after the push"
        EXPECT  [ebx], FLAGS_CMP, "EFLAGS image pushed"
        ret

; PUSHFW: the same with an operand-size prefix (66 9C); the fault points at the 66.
c_pushfw:
        CASE    "pushfw (66 prefix)"
.run:   cmp     eax, eax
.insn:  pushfw
.resume:
        jmp     case_exit
.bad:   jmp     check_no_push
.ok:    TOP     ebx, 2
        EXPECT  [exit_esp], ebx, "ESP after the push"
        EXPECTW [ebx], FLAGS_CMP, "FLAGS image pushed"
        test    ecx, ecx                ; (at CPL 0 the #UD frame of the exit lies below)
        jz      .done
        EXPECTW [ebx - 2], 0xcccc, "the word below it (a 16-bit push)"
.done:  ret

; POPFD (row 7; "POPF/POPFD"): at CPL 0 the image goes in whole; at CPL 3 without PSI
; the IF and IOPL changes are dropped silently (the hole).
c_popfd:
        CASE    "popfd"
.run:   push    dword FLAGS_IMAGE
        cmp     eax, eax
.insn:  popfd
.resume:
        jmp     case_exit
.bad:   TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        EXPECTM [exit_eflags], EFL_LOW, FLAGS_CMP, "EFLAGS (unchanged)"
        ret
.ok:    TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the pop"
        mov     ebx, FLAGS_IMAGE
        test    ecx, ecx
        jz      .want
        mov     ebx, FLAGS_IMAGE & ~(EFL_IOPL3 | 0x200)
.want:  EXPECTM [exit_eflags], EFL_LOW, ebx, "EFLAGS after the pop"
        ret

; IRETD (row 19; "IRET/IRETD"), to the same ring: like POPF for IF and IOPL.
c_iretd:
        CASE    "iretd"
.run:   push    dword FLAGS_IMAGE
        push    dword [cur_cs]          ; the routine cannot read CS itself with PSI
        push    dword .target
        cmp     eax, eax
.insn:  iretd
.resume:
        mov     dword [marker], 1
        jmp     case_exit
.target:
        mov     dword [marker], 2
        jmp     case_exit
.bad:   mov     ebx, 1
        call    check_marker
        TOP     ebx, 12
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        EXPECTM [exit_eflags], EFL_LOW, FLAGS_CMP, "EFLAGS (unchanged)"
        ret
.ok:    mov     ebx, 2
        call    check_marker
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the return"
        mov     ebx, FLAGS_IMAGE
        test    ecx, ecx
        jz      .want
        mov     ebx, FLAGS_IMAGE & ~(EFL_IOPL3 | 0x200)
.want:  EXPECTM [exit_eflags], EFL_LOW, ebx, "EFLAGS after the return"
        ret

; INT n (row 18; Vol. 2A "INT n/INTO/INT3/INT1"; §6.3.3) through a DPL-3 gate.
c_int:
        CASE    "int 40h"
.run:
.insn:  int     SOFT_VEC
.resume:
        jmp     case_exit
.bad:   jmp     check_int_not_taken
.ok:    mov     ebx, SOFT_VEC
        jmp     check_int_taken

; INT3 (CC; §6.4.2: a software-generated #BP).
c_int3:
        CASE    "int3"
.run:
.insn:  int3
.resume:
        jmp     case_exit
.bad:   jmp     check_int_not_taken
.ok:    mov     ebx, 3
        jmp     check_int_taken

; INTO with OF = 1 (§6.4.2; with OF = 0 it does nothing and is not sensitive: part 4).
c_into:
        CASE    "into (of=1)"
.run:   mov     al, 0x7f
        add     al, 1                   ; OF = 1
.insn:  into
.resume:
        jmp     case_exit
.bad:   EXPECTM [exit_eflags], EFL_OF, EFL_OF, "OF (unchanged)"
        jmp     check_int_not_taken
.ok:    mov     ebx, 4
        jmp     check_int_taken

; PUSH Sreg (row 12; "PUSH"): the selector with its real RPL (PUSH CS at CPL 3: RPL 3).
%macro PUSH_SREG 4                      ; label, name, sreg, the variable with the expected value
%1:     CASE    %2
.run:
.insn:  push    %3
.resume:
        jmp     case_exit
.bad:   jmp     check_no_push
.ok:    mov     edi, [%4]
        jmp     check_pushed_sel
%endmacro
        PUSH_SREG c_push_es, "push es", es, cur_ds
        PUSH_SREG c_push_cs, "push cs", cs, cur_cs
        PUSH_SREG c_push_ss, "push ss", ss, cur_ds
        PUSH_SREG c_push_ds, "push ds", ds, cur_ds
        PUSH_SREG c_push_fs, "push fs", fs, cur_ds
        PUSH_SREG c_push_gs, "push gs", gs, cur_ds

; POP Sreg (row 13; "POP"; §5.6): the DPL-3 probe loads at every CPL.
%macro POP_SREG 4                       ; label, name, sreg, exit variable
%1:     CASE    %2
.run:   push    dword PROBE_SEL
.insn:  pop     %3
.resume:
        jmp     case_exit
.bad:   TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        mov     ebx, [cur_ds]
        EXPECT  [%4], ebx, "segment register (unchanged)"
        ret
.ok:    TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the pop"
        EXPECT  [%4], PROBE_SEL, "segment register loaded"
        ret
%endmacro
        POP_SREG c_pop_es, "pop es", es, exit_es
        POP_SREG c_pop_ds, "pop ds", ds, exit_ds
        POP_SREG c_pop_fs, "pop fs", fs, exit_fs
        POP_SREG c_pop_gs, "pop gs", gs, exit_gs

; POP SS (§5.7: RPL = DPL = CPL): the ring's own stack selector again; ESP tells.
c_pop_ss:
        CASE    "pop ss"
.run:   push    dword [cur_ds]
.insn:  pop     ss
.resume:
        jmp     case_exit
.bad:   TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        ret
.ok:    TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the pop"
        mov     ebx, [cur_ds]
        EXPECT  [exit_ss], ebx, "SS"
        ret

; MOV r32, Sreg (row 14; "MOV"): CS with its RPL, zero-extended (P6).
c_mov_r_sreg:
        CASE    "mov r32,cs"
.run:   mov     eax, SENTINEL
.insn:  mov     eax, cs
.resume:
        jmp     case_exit
.bad:   EXPECT  [exit_eax], SENTINEL, "destination register (unchanged)"
        ret
.ok:    mov     ebx, [cur_cs]
        EXPECT  [exit_eax], ebx, "CS read"
        ret

; MOV m16, Sreg: a memory destination, always 16 bits.
c_mov_m_sreg:
        CASE    "mov m16,ss"
.run:
.insn:  mov     [MEMDST], ss
.resume:
        jmp     case_exit
.bad:   jmp     check_memdst_untouched
.ok:    mov     ebx, [cur_ds]
        EXPECTW [MEMDST], ebx, "SS stored"
        EXPECTW [MEMDST + 2], 0xcccc, "bytes after the word"
        ret

; MOV Sreg, r16.
c_mov_sreg_r:
        CASE    "mov fs,r16"
.run:   mov     ebx, PROBE_SEL
.insn:  mov     fs, bx
.resume:
        jmp     case_exit
.bad:   mov     ebx, [cur_ds]
        EXPECT  [exit_fs], ebx, "FS (unchanged)"
        ret
.ok:    EXPECT  [exit_fs], PROBE_SEL, "FS loaded"
        ret

; MOV Sreg, m16.
c_mov_sreg_m:
        CASE    "mov gs,m16"
.run:
.insn:  mov     gs, [sel_probe]
.resume:
        jmp     case_exit
.bad:   mov     ebx, [cur_ds]
        EXPECT  [exit_gs], ebx, "GS (unchanged)"
        ret
.ok:    EXPECT  [exit_gs], PROBE_SEL, "GS loaded"
        ret

; LDS, LES, LFS, LGS (row 14 +; "LDS/LES/LFS/LGS/LSS"): offset and the probe selector.
%macro LOAD_FP 4                        ; label, name, instruction, exit variable
%1:     CASE    %2
.run:   mov     eax, SENTINEL
.insn:  %3
.resume:
        jmp     case_exit
.bad:   EXPECT  [exit_eax], SENTINEL, "offset register (unchanged)"
        mov     ebx, [cur_ds]
        EXPECT  [%4], ebx, "segment register (unchanged)"
        ret
.ok:    EXPECT  [exit_eax], 0x12345678, "offset loaded"
        EXPECT  [%4], PROBE_SEL, "selector loaded"
        ret
%endmacro
        LOAD_FP c_lds, "lds", {lds eax, [fp_probe]}, exit_ds
        LOAD_FP c_les, "les", {les eax, [fp_probe]}, exit_es
        LOAD_FP c_lfs, "lfs", {lfs eax, [fp_probe]}, exit_fs
        LOAD_FP c_lgs, "lgs", {lgs eax, [fp_probe]}, exit_gs

; LSS: the ring's stack selector, 32 bytes lower.
c_lss:
        CASE    "lss"
.run:   mov     eax, [cur_ds]
        mov     [fp_stack + 4], ax
        mov     eax, [cur_top]
        sub     eax, 32
        mov     [fp_stack], eax
.insn:  lss     esp, [fp_stack]
.resume:
        jmp     case_exit
.bad:   TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP (unchanged)"
        ret
.ok:    TOP     ebx, 32
        EXPECT  [exit_esp], ebx, "ESP loaded"
        mov     ebx, [cur_ds]
        EXPECT  [exit_ss], ebx, "SS loaded"
        ret

; Far CALL and JMP (rows 15, 16; "CALL", "JMP"; §5.8.1.2) to the conforming segment:
; CPL stays, CS.RPL = CPL; CALL pushes CS (with the real RPL) and the return EIP.
check_far_not_taken:
        mov     ebx, 1
        call    check_marker
        jmp     check_no_push
check_far_call:
        mov     ebx, 2
        call    check_marker
        mov     ebx, CONF_SEL
        or      ebx, ecx
        EXPECT  [exit_cs], ebx, "CS at the target (conforming, RPL = CPL)"
        TOP     ebx, 8
        EXPECT  [exit_esp], ebx, "ESP after the call"
        mov     edi, [cur_cs]
        EXPECTW [ebx + 4], edi, "return CS pushed"
        mov     esi, [cur_case]
        mov     edi, [esi + C_RESUME]
        EXPECT  [ebx], edi, "return EIP pushed"
        ret
check_far_jmp:
        mov     ebx, 2
        call    check_marker
        mov     ebx, CONF_SEL
        or      ebx, ecx
        EXPECT  [exit_cs], ebx, "CS at the target (conforming, RPL = CPL)"
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the jump"
        ret
%macro FAR_XFER 4                       ; label, name, instruction, check
%1:     CASE    %2
.run:
.insn:  %3
.resume:
        mov     dword [marker], 1
        jmp     case_exit
.bad:   jmp     check_far_not_taken
.ok:    jmp     %4
%endmacro
        FAR_XFER c_callf, "call far ptr16:32", {call CONF_SEL:conf_target}, check_far_call
        FAR_XFER c_callf_m, "call far m16:32", {call far [fp_conf]}, check_far_call
        FAR_XFER c_jmpf, "jmp far ptr16:32", {jmp CONF_SEL:conf_target}, check_far_jmp
        FAR_XFER c_jmpf_m, "jmp far m16:32", {jmp far [fp_conf]}, check_far_jmp

; Far RET (row 17; "RET"; §5.8.6), to the same ring; with imm16 it also drops 8 bytes.
c_retf:
        CASE    "retf"
.run:   push    dword [cur_cs]
        push    dword .target
.insn:  retf
.resume:
        mov     dword [marker], 1
        jmp     case_exit
.target:
        mov     dword [marker], 2
        jmp     case_exit
.bad:   mov     ebx, 1
        call    check_marker
        TOP     ebx, 8
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        ret
.ok:    mov     ebx, 2
        call    check_marker
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the return"
        mov     ebx, [cur_cs]
        EXPECT  [exit_cs], ebx, "CS after the return"
        ret

c_retf_imm:
        CASE    "retf imm16"
.run:   push    dword 0x11111111
        push    dword 0x22222222
        push    dword [cur_cs]
        push    dword .target
.insn:  retf    8
.resume:
        mov     dword [marker], 1
        jmp     case_exit
.target:
        mov     dword [marker], 2
        jmp     case_exit
.bad:   mov     ebx, 1
        call    check_marker
        TOP     ebx, 16
        EXPECT  [exit_esp], ebx, "ESP (nothing popped)"
        ret
.ok:    mov     ebx, 2
        call    check_marker
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP after the return and release"
        mov     ebx, [cur_cs]
        EXPECT  [exit_cs], ebx, "CS after the return"
        ret

; ---------------------------------------------------------------------------------------
; Part 4: ordinary instructions with PSI at CPL 3 and 1 (not in Table 3-2).
; ---------------------------------------------------------------------------------------
c_plain:
        dd      c_plain_name, .run, 0, 0, 0, .ok
.run:   mov     eax, 5
        mov     ebx, 7
        add     eax, ebx                ; 12
        push    eax
        pop     edx                     ; 12
        mov     [MEMDST], edx
        lea     ecx, [eax + edx]        ; 24
        call    .near
        xor     esi, esi                ; OF = 0
        into                            ; not sensitive with OF = 0
        jmp     case_exit
.near:  inc     ecx                     ; 25
        ret
.ok:    EXPECT  [exit_eax], 12, "ADD result"
        EXPECT  [exit_edx], 12, "PUSH/POP result"
        EXPECT  [exit_ecx], 25, "LEA, CALL, INC result"
        EXPECT  [MEMDST], 12, "MOV to memory"
        EXPECT  [int_count], 0, "INTO with OF = 0 entered a handler"
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "ESP"
        ret
c_plain_name:
        db      "ordinary (add, mov, push/pop reg, lea, call/ret near, into of=0)", 0

; ---------------------------------------------------------------------------------------
; Part 5: encodings that are #UD whatever PSI says (SDM Vol. 2B "MOV": #UD "if attempt
; is made to load the CS register" and for a reserved segment register; a far pointer
; operand (Mp) or SGDT's memory operand given as a register; LOCK on a non-RMW
; instruction, Vol. 2A "LOCK"). docs/v386.md §3.2: the PSI check comes after decoding, so #UD wins.
; ---------------------------------------------------------------------------------------
%macro UD_CASE 3+                       ; label, name, bytes
%1:     CASE    %2
.run:   mov     eax, SENTINEL
.insn:  db      %3
.resume:
        jmp     case_exit
.bad:   EXPECT  [exit_eax], SENTINEL, "EAX (unchanged)"
        ret
.ok:    ret
%endmacro
        UD_CASE u_mov_cs, "mov cs,r16 (8e /1)", 0x8e, 0xc8
        UD_CASE u_mov_sreg6_w, "mov sreg6,r16 (8e /6)", 0x8e, 0xf0
        UD_CASE u_mov_sreg7_r, "mov r16,sreg7 (8c /7)", 0x66, 0x8c, 0xf8
        UD_CASE u_lds_reg, "lds r32,r32 (c5 mod=3)", 0xc5, 0xc0
        UD_CASE u_lss_reg, "lss r32,r32 (0f b2 mod=3)", 0x0f, 0xb2, 0xc0
        UD_CASE u_callf_reg, "call far r32 (ff /3 mod=3)", 0xff, 0xd8
        UD_CASE u_jmpf_reg, "jmp far r32 (ff /5 mod=3)", 0xff, 0xe8
        UD_CASE u_sgdt_reg, "sgdt r32 (0f 01 /0 mod=3)", 0x0f, 0x01, 0xc0
        UD_CASE u_lock_sgdt, "lock sgdt", 0xf0, 0x0f, 0x01, 0x05, 0x00, 0x06, 0x00, 0x00
        UD_CASE u_lock_push_cs, "lock push cs", 0xf0, 0x0e

; ---------------------------------------------------------------------------------------
; Part 6: V86 cases (routines vr_* above). Descriptor: name, routine, instruction,
; resume, check after a fault, check after running, kind (0 = #GP with PSI, 1 = #UD,
; 2 = runs).
; ---------------------------------------------------------------------------------------
%macro VCASE 6                          ; label, name, routine, bad, ok, kind
%1:     dd      %%name, %3, %3.insn, %3.resume, %4, %5, %6
%%name: db      %2, 0
%endmacro

v_check_pushf:
        TOP     ebx, 2
        EXPECT  [exit_esp], ebx, "SP after the push"
        EXPECTW [ebx], EFL_IOPL3 | FLAGS_CMP, "FLAGS image pushed"
        ret
v_bad_popf:
        TOP     ebx, 2
        EXPECT  [exit_esp], ebx, "SP (nothing popped)"
        EXPECTM [exit_eflags], EFL_LOW, EFL_IOPL3 | FLAGS_CMP, "FLAGS (unchanged)"
        ret
v_ok_popf:                              ; IF from the image, IOPL kept (§20.2.7)
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "SP after the pop"
        EXPECTM [exit_eflags], EFL_LOW, EFL_IOPL3 | FLAGS_IMAGE_V86, "FLAGS after the pop"
        ret
v_bad_iret:
        mov     ebx, 1
        call    check_marker
        TOP     ebx, 6
        EXPECT  [exit_esp], ebx, "SP (nothing popped)"
        EXPECTM [exit_eflags], EFL_LOW, EFL_IOPL3 | FLAGS_CMP, "FLAGS (unchanged)"
        ret
v_ok_iret:
        mov     ebx, 2
        call    check_marker
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "SP after the return"
        EXPECTM [exit_eflags], EFL_LOW, EFL_IOPL3 | FLAGS_IMAGE_V86, "FLAGS after the return"
        ret
v_ok_int:
        EXPECTM [int_eflags], EFL_VM, EFL_VM, "EFLAGS.VM in the frame"
        mov     ebx, SOFT_VEC
        jmp     check_int_taken
v_ok_int3:
        mov     ebx, 3
        jmp     check_int_taken
v_bad_into:
        EXPECTM [exit_eflags], EFL_OF, EFL_OF, "OF (unchanged)"
        jmp     check_int_not_taken
v_ok_into:
        mov     ebx, 4
        jmp     check_int_taken
v_bad_ud:
        EXPECTW [exit_eax], SENTINEL & 0xffff, "AX (unchanged)"
        ret
v_ok_push_sel:                          ; CS or FS = 0
        xor     edi, edi
        TOP     ebx, 2
        EXPECT  [exit_esp], ebx, "SP after the push"
        EXPECTW [ebx], edi, "paragraph pushed"
        ret
v_ok_pop_ds:
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "SP after the pop"
        EXPECT  [exit_ds], 0x1234, "DS loaded"
        ret
v_ok_pop_gs:
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "SP after the pop"
        EXPECT  [exit_gs], 0x2345, "GS loaded"
        ret
v_ok_mov_r_sreg:
        EXPECTW [exit_eax], 0, "AX = SS"
        ret
v_ok_mov_sreg_r:
        EXPECT  [exit_es], 0x3456, "ES loaded"
        ret
v_ok_lds:
        EXPECTW [exit_esi], 0x1111, "SI loaded"
        EXPECT  [exit_ds], 0x2222, "DS loaded"
        ret
v_ok_les:
        EXPECTW [exit_esi], 0x1111, "SI loaded"
        EXPECT  [exit_es], 0x2222, "ES loaded"
        ret
v_ok_lfs:
        EXPECTW [exit_esi], 0x1111, "SI loaded"
        EXPECT  [exit_fs], 0x2222, "FS loaded"
        ret
v_ok_lgs:
        EXPECTW [exit_esi], 0x1111, "SI loaded"
        EXPECT  [exit_gs], 0x2222, "GS loaded"
        ret
v_ok_lss:
        EXPECT  [exit_esp], 0x0100, "SP loaded"
        EXPECT  [exit_ss], 0x0060, "SS loaded"
        ret
v_ok_callf:
        mov     ebx, 2
        call    check_marker
        TOP     ebx, 4
        EXPECT  [exit_esp], ebx, "SP after the call"
        EXPECTW [ebx + 2], 0, "return CS pushed"
        mov     esi, [cur_case]
        mov     edi, [esi + C_RESUME]
        EXPECTW [ebx], edi, "return IP pushed"
        ret
v_ok_xfer:                              ; far JMP or RET: at the target, stack balanced
        mov     ebx, 2
        call    check_marker
        TOP     ebx, 0
        EXPECT  [exit_esp], ebx, "SP at the target"
        ret

        VCASE   v_sgdt, "sgdt", vr_sgdt, check_memdst_untouched, c_sgdt.ok, 0
        VCASE   v_sidt, "sidt", vr_sidt, check_memdst_untouched, c_sidt.ok, 0
        VCASE   v_smsw, "smsw", vr_smsw, check_memdst_untouched, c_smsw.ok, 0
        VCASE   v_pushf, "pushf", vr_pushf, check_no_push, v_check_pushf, 0
        VCASE   v_popf, "popf", vr_popf, v_bad_popf, v_ok_popf, 0
        VCASE   v_iret, "iret", vr_iret, v_bad_iret, v_ok_iret, 0
        VCASE   v_int, "int 40h", vr_int, check_int_not_taken, v_ok_int, 0
        VCASE   v_int3, "int3", vr_int3, check_int_not_taken, v_ok_int3, 0
        VCASE   v_into, "into (of=1)", vr_into, v_bad_into, v_ok_into, 0
        VCASE   v_sldt, "sldt", vr_sldt, v_bad_ud, 0, 1
        VCASE   v_str, "str", vr_str, v_bad_ud, 0, 1
        VCASE   v_lar, "lar", vr_lar, v_bad_ud, 0, 1
        VCASE   v_lsl, "lsl", vr_lsl, v_bad_ud, 0, 1
        VCASE   v_verr, "verr", vr_verr, v_bad_ud, 0, 1
        VCASE   v_verw, "verw", vr_verw, v_bad_ud, 0, 1
        VCASE   v_push_cs, "push cs", vr_push_cs, 0, v_ok_push_sel, 2
        VCASE   v_push_fs, "push fs", vr_push_fs, 0, v_ok_push_sel, 2
        VCASE   v_pop_ds, "pop ds", vr_pop_ds, 0, v_ok_pop_ds, 2
        VCASE   v_pop_gs, "pop gs", vr_pop_gs, 0, v_ok_pop_gs, 2
        VCASE   v_mov_r_sreg, "mov r16,ss", vr_mov_r_sreg, 0, v_ok_mov_r_sreg, 2
        VCASE   v_mov_sreg_r, "mov es,r16", vr_mov_sreg_r, 0, v_ok_mov_sreg_r, 2
        VCASE   v_lds, "lds", vr_lds, 0, v_ok_lds, 2
        VCASE   v_les, "les", vr_les, 0, v_ok_les, 2
        VCASE   v_lfs, "lfs", vr_lfs, 0, v_ok_lfs, 2
        VCASE   v_lgs, "lgs", vr_lgs, 0, v_ok_lgs, 2
        VCASE   v_lss, "lss", vr_lss, 0, v_ok_lss, 2
        VCASE   v_callf, "call far ptr16:16", vr_callf, 0, v_ok_callf, 2
        VCASE   v_callf_m, "call far m16:16", vr_callf_m, 0, v_ok_callf, 2
        VCASE   v_jmpf, "jmp far ptr16:16", vr_jmpf, 0, v_ok_xfer, 2
        VCASE   v_jmpf_m, "jmp far m16:16", vr_jmpf_m, 0, v_ok_xfer, 2
        VCASE   v_retf, "retf", vr_retf, 0, v_ok_xfer, 2
        VCASE   v_retf_imm, "retf imm16", vr_retf_imm, 0, v_ok_xfer, 2

; ---------------------------------------------------------------------------------------
; The case lists, in output order
; ---------------------------------------------------------------------------------------
        align   4
pm_cases:
        dd      c_sgdt, c_sidt, c_smsw, c_sldt, c_str, c_lar, c_lsl, c_verr, c_verw
        dd      c_pushfd, c_pushfw, c_popfd, c_iretd, c_int, c_int3, c_into
        dd      c_push_es, c_push_cs, c_push_ss, c_push_ds, c_push_fs, c_push_gs
        dd      c_pop_es, c_pop_ss, c_pop_ds, c_pop_fs, c_pop_gs
        dd      c_mov_r_sreg, c_mov_m_sreg, c_mov_sreg_r, c_mov_sreg_m
        dd      c_lds, c_les, c_lss, c_lfs, c_lgs
        dd      c_callf, c_callf_m, c_jmpf, c_jmpf_m, c_retf, c_retf_imm
        dd      0
ud_cases:
        dd      u_mov_cs, u_mov_sreg6_w, u_mov_sreg7_r, u_lds_reg, u_lss_reg
        dd      u_callf_reg, u_jmpf_reg, u_sgdt_reg, u_lock_sgdt, u_lock_push_cs
        dd      0
v86_cases:
        dd      v_sgdt, v_sidt, v_smsw, v_pushf, v_popf, v_iret, v_int, v_int3, v_into
        dd      v_sldt, v_str, v_lar, v_lsl, v_verr, v_verw
        dd      v_push_cs, v_push_fs, v_pop_ds, v_pop_gs, v_mov_r_sreg, v_mov_sreg_r
        dd      v_lds, v_les, v_lfs, v_lgs, v_lss
        dd      v_callf, v_callf_m, v_jmpf, v_jmpf_m, v_retf, v_retf_imm
        dd      0

; Everything above must end below the IDT.
        times   (ABS($) > IDT_BASE) * -1 db 0

program_end:
