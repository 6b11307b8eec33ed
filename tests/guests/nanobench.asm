; nanobench.asm — the technique lab's workload: the nanobenchmarks of Adams & Agesen,
; "A Comparison of Software and Hardware Techniques for x86 Virtualization" (ASPLOS
; 2006), as a small 32-bit kernel with paging on, in a native and a paravirtual build.
;
;   nasm -f bin -I tests/guests/ -o nanobench.img    tests/guests/nanobench.asm
;   nasm -f bin -I tests/guests/ -o nanobench-pv.img -DPARAVIRT tests/guests/nanobench.asm
;
; A Multiboot v1 kernel (a flat image at 1 MiB with the a.out-kludge address fields,
; Multiboot Specification 0.6.96 §3.1.3), started without a BIOS (`-kernel`,
; `MachineSpec { kernel }`), on the bare machine or as a VM. src/lab/ runs it under each
; technique and docs/techniques.md explains the method and the figures.
;
; The benchmarks (A&A's names; each iteration of each loop does one of these):
;   1 syscall  INT 80h from ring 3 to a ring-0 handler that counts it and IRETs back: the
;              loop itself runs at CPL 3 (entered by IRET, left by INT 81h).
;   2 in       IN AL, DX from COM1's line-status register (3FDh): no side effect, a fixed
;              answer (THRE | TEMT), and a port every VMM intercepts.
;   3 cr8wr    A write of the task-priority register. 32-bit x86 has no CR8; CR8 is an
;              alias of the local APIC's TPR (SDM Vol. 3A §10.8.6.1, "Interaction of
;              Task Priorities between CR8 and APIC"), so the write goes to the TPR at
;              FEE00080h (§10.8.3.1), through a 4 MiB uncached mapping of the APIC page.
;   4 call/ret CALL to a RET.
;   5 pgfault  The loop unmaps a page (clears its PTE, INVLPG) and reads it: #PF; the
;              handler (checking CR2) maps it again and returns to the read, which then
;              completes (SDM Vol. 3A §4.10.4.1 INVLPG, §6.15 Interrupt 14).
;   6 divzero  DIV by zero: #DE; the handler checks the instruction and steps over it.
;   7 ptemod   A PTE changes (its frame alternates between two pages) and INVLPG drops
;              the stale translation.
;   8 forkwait The macro workload, after A&A's forkwait: a process is created, runs and
;              is waited for. "Fork" copies the page directory and the 4 MiB+ page table
;              into the child's, mapping the child a stack page of its own; the kernel
;              switches CR3 to the child, enters it at ring 3 by IRET, the child writes
;              its stack and exits with INT 82h, and the kernel switches CR3 back. The
;              same code in both builds: the child's tables are not in use while they
;              are written, so there is no page-table change to announce.
;
; The PARAVIRT build replaces each privileged operation by a hypercall (VCALL, 0F 0C,
; docs/v386.md §7.2; the call table is in src/vmm/interp.rs `hypercall`):
;   in      -> VCALL 3 IO_IN (EBX = port, ECX = size; EAX = the value),
;   cr8wr   -> VCALL 4 SET_TPR (EBX = the TPR value),
;   pgfault and ptemod: the guest writes its PTE itself and then calls
;           VCALL 5 PTE_UPDATE (EBX = the linear address it maps, ECX = the PTE's
;           guest-physical address) instead of INVLPG (lguest's set_pte notification).
; syscall, call/ret and divzero have nothing privileged in their loops and are the same
; code in both builds. The paravirtual build needs a VMM: on a processor outside V386
; mode its first VCALL is #UD, which it reports as an unexpected exception (MARK_FAIL). (A PV kernel for a deprivileged VMM would also want CR2 on a
; shared page and a hypercall IRET; the V386 VMM needs neither, so they are left out.)
;
; Iterations: N from the Multiboot command line (its first decimal number, e.g.
; "iterations=1000"; default 1000, at most 1,000,000). Each benchmark runs three times:
; a warm-up of N iterations (first touches: the APIC page's nested page fault under a
; VMM), then N, then 2N. The lab takes the difference of the last two, so everything
; that does not repeat per iteration (the markers, the setup, the ring changes around
; the syscall loop) cancels exactly: cost per iteration = (cost(2N) - cost(N)) / N.
;
; Markers: before and after every run the kernel writes a byte to the isa-debug-exit
; port F4h (`mov al, v; out 0F4h, al`): v = benchmark << 4 | phase (phase 0/1 warm-up
; start/end, 2/3 the N run, 4/5 the 2N run). The lab attaches the device at F4h: on the
; bare machine the write ends `Machine::run` (StopReason::DebugExit) with the retired
; count exact; in a VM it is an IO exit and the VMM stops the VM (VmStop::DebugExit) with
; its counters exact. Either way the lab takes a snapshot and resumes the guest. One
; mechanism, both runs, no guest-visible side effect but the port write.
;
; At the end the kernel checks itself (each handler counted 4N events, IN read THRE,
; the TPR holds what was written, a PTE change is seen after INVLPG or PTE_UPDATE and
; not before), prints a line on COM1 and writes MARK_PASS (01h) or MARK_FAIL (03h).
; An unexpected exception prints its vector, error code and EIP and writes MARK_FAIL.
; Interrupts stay off throughout (the PICs are masked; IF = 0).
;
; References: Intel SDM Vol. 3A §3.4.5 (segment descriptors), §4.3 (32-bit paging,
; 4 MiB pages with CR4.PSE), §4.10.4 (TLB invalidation), §5.8-5.12 (privilege levels,
; call and interrupt gates), §6.10-6.15 (IDT, exception and interrupt handling),
; §7.2.1 (TSS), §10.8.3.1 (TPR); Vol. 2 (INT n, IRET, IN, DIV, INVLPG).

bits 32
cpu 686
org 0x100000

; ---- Constants --------------------------------------------------------------------------

; The absolute address of a label in the image (a scalar nasm can shift and mask).
%define ABS(x) ((x) - $$ + 0x100000)

KCODE           equ 0x08
KDATA           equ 0x10
UCODE           equ 0x18 | 3
UDATA           equ 0x20 | 3
TSS_SEL         equ 0x28

MARK_PORT       equ 0xf4
MARK_PASS       equ 0x01
MARK_FAIL       equ 0x03

DEFAULT_N       equ 1000
MAX_N           equ 1000000

COM1            equ 0x3f8
UART_LSR        equ 5
LSR_THRE        equ 0x20
IN_PORT         equ COM1 + UART_LSR

; The local APIC (SDM Vol. 3A §10.4.1: FEE00000h after reset) and its TPR.
APIC_BASE       equ 0xfee00000
APIC_TPR        equ APIC_BASE + 0x80
; Register offsets (§10.4.1, Table 10-1), the SVR's enable bit (§10.9), the ICR's fixed
; self IPI (§10.6.1, Figure 10-19: destination shorthand 01b, level assert).
APIC_EOI        equ 0xb0
APIC_SVR        equ 0xf0
APIC_SVR_ENABLE equ 1 << 8
APIC_ICR_LO     equ 0x300
ICR_SELF        equ (1 << 18) | (1 << 14)
IPI_VECTOR      equ 0x40
TPR_VALUE       equ 0x10

; Paging (SDM Vol. 3A §4.3, Tables 4-4 to 4-6).
PG_P            equ 1 << 0
PG_W            equ 1 << 1
PG_U            equ 1 << 2
PG_PCD          equ 1 << 4
PG_PS           equ 1 << 7
CR0_PG          equ 1 << 31
CR4_PSE         equ 1 << 4

; The benchmark pages: 4 MiB and 4 MiB + 4 KiB, mapped by bench_pt (PDE 1).
PF_ADDR         equ 0x00400000
PM_ADDR         equ 0x00401000
SIG_A           equ 0x41414141              ; "AAAA": what frame A holds
SIG_B           equ 0x42424242

; Hypercalls (src/vmm/interp.rs `hypercall`).
HC_IO_IN        equ 3
HC_SET_TPR      equ 4
HC_PTE_UPDATE   equ 5
%macro VCALL 0
    db 0x0f, 0x0c
%endmacro

; MARK value: the byte to the marker port.
%macro MARK 1
    mov al, %1
    out MARK_PORT, al
%endmacro

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

MB_BOOT_MAGIC   equ 0x2BADB002
MBI_FLAGS_CMDLINE equ 1 << 2
MBI_CMDLINE     equ 16

%include "multiboot.inc"

; ---- Entry ------------------------------------------------------------------------------

entry:
    cli
    cld
    mov esp, stack_top
    ; The command line, before anything else touches memory the loader filled in.
    mov dword [iterations], DEFAULT_N
    cmp eax, MB_BOOT_MAGIC
    jne .no_cmdline
    test dword [ebx], MBI_FLAGS_CMDLINE
    jz .no_cmdline
    mov esi, [ebx + MBI_CMDLINE]
    call parse_iterations
.no_cmdline:
    mov eax, [iterations]
    shl eax, 1
    mov [iterations_2n], eax
    lgdt [gdt_desc]
    jmp KCODE:.reload
.reload:
    mov ax, KDATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov ax, TSS_SEL
    ltr ax
    call build_idt
    lidt [idt_desc]
    call pic_mask_all
    call paging_on

    ; Each benchmark: warm-up, N, 2N, bracketed by markers.
%macro BENCH 2                              ; number, function
    MARK (%1 << 4) | 0
    mov ebp, [iterations]
    call %2
    MARK (%1 << 4) | 1
    MARK (%1 << 4) | 2
    mov ebp, [iterations]
    call %2
    MARK (%1 << 4) | 3
    MARK (%1 << 4) | 4
    mov ebp, [iterations_2n]            ; the same instructions as the N run: only the
    call %2                             ; count differs, so the runs' difference is exact
    MARK (%1 << 4) | 5
%endmacro
    BENCH 1, bench_syscall
    BENCH 2, bench_in
    BENCH 3, bench_cr8wr
    BENCH 4, bench_callret
    BENCH 5, bench_pgfault
    BENCH 6, bench_divzero
    BENCH 7, bench_ptemod
    BENCH 8, bench_forkwait

    call probe_sensitive
    call check_and_report
    ; Not reached: check_and_report ends with the PASS or FAIL marker and halts.
.stop:
    cli
    hlt
    jmp .stop

; ---- The benchmarks: EBP = iterations (at least 1) --------------------------------------

; 1 syscall: the loop runs at CPL 3. IRET to it (DS, ES the user's data segment, which
; the ring-0 handlers use as is: it is flat), and INT 81h brings the kernel back here.
bench_syscall:
    mov [kernel_esp], esp
    mov ax, UDATA
    mov ds, ax
    mov es, ax
    push UDATA                          ; SS
    push user_stack_top                 ; ESP
    push 0x002                          ; EFLAGS: IF = 0, IOPL = 0
    push UCODE                          ; CS
    push user_syscall_loop              ; EIP
    iretd
user_syscall_loop:
    int 0x80
    dec ebp
    jnz user_syscall_loop
    int 0x81
; INT 81h from ring 3: back to the kernel's stack and data segments, and out of
; bench_syscall (its ring-3 frame on the TSS stack is simply dropped).
back_to_kernel:
    mov ax, KDATA
    mov ds, ax
    mov es, ax
    mov esp, [kernel_esp]
    ret

; INT 80h: the system call. It counts.
syscall_handler:
    inc dword [syscalls]
    iretd

; 2 in
bench_in:
%ifdef PARAVIRT
    mov ebx, IN_PORT
    mov ecx, 1
.loop:
    mov eax, HC_IO_IN
    VCALL
%else
    mov dx, IN_PORT
.loop:
    in al, dx
%endif
    dec ebp
    jnz .loop
    mov [in_value], al
    ret

; 3 cr8wr
bench_cr8wr:
%ifdef PARAVIRT
    mov ebx, TPR_VALUE
.loop:
    mov eax, HC_SET_TPR
    VCALL
%else
    mov eax, TPR_VALUE
.loop:
    mov [APIC_TPR], eax
%endif
    dec ebp
    jnz .loop
    mov eax, [APIC_TPR]
    mov [tpr_value], eax
    ret

; 4 call/ret
bench_callret:
.loop:
    call .leaf
    dec ebp
    jnz .loop
    ret
.leaf:
    ret

; 5 pgfault: unmap, then touch (#PF, the handler maps it, the read completes).
bench_pgfault:
%ifdef PARAVIRT
    mov ebx, PF_ADDR
    mov ecx, bench_pt + (PF_ADDR >> 12 & 0x3ff) * 4
.loop:
    mov dword [bench_pt + (PF_ADDR >> 12 & 0x3ff) * 4], 0
    mov eax, HC_PTE_UPDATE
    VCALL
%else
.loop:
    mov dword [bench_pt + (PF_ADDR >> 12 & 0x3ff) * 4], 0
    invlpg [PF_ADDR]
%endif
    mov eax, [PF_ADDR]
    dec ebp
    jnz .loop
    mov [pf_value], eax
    ret

; #PF: only the benchmark page may fault; map it and retry the access.
pf_handler:
    push eax
    mov eax, cr2
    cmp eax, PF_ADDR
    jne .unexpected
    mov dword [bench_pt + (PF_ADDR >> 12 & 0x3ff) * 4], pf_frame + PG_P + PG_W + PG_U
%ifdef PARAVIRT
    ; Not-present to present needs no INVLPG (no TLB holds a not-present entry, SDM
    ; Vol. 3A §4.10.2.3), but a VMM that shadows the tables must hear of every change.
    push ebx
    push ecx
    mov ebx, PF_ADDR
    mov ecx, bench_pt + (PF_ADDR >> 12 & 0x3ff) * 4
    mov eax, HC_PTE_UPDATE
    VCALL
    pop ecx
    pop ebx
%endif
    inc dword [pgfaults]
    pop eax
    add esp, 4                          ; the error code
    iretd
.unexpected:
    pop eax
    jmp exc_14

; 6 divzero
bench_divzero:
    xor ebx, ebx
.loop:
    mov eax, 1
    xor edx, edx
    div ebx                             ; F7 F3: #DE, stepped over by the handler
    dec ebp
    jnz .loop
    ret

; #DE: step over a DIV EBX (2 bytes); anything else is fatal.
de_handler:
    push eax
    mov eax, [esp + 4]
    cmp word [eax], 0xf3f7
    pop eax
    jne exc_0
    add dword [esp], 2
    inc dword [divzeros]
    iretd

; 7 ptemod: the PTE of PM_ADDR alternates between frames A and B (EDX = A ^ B).
PM_PTE          equ bench_pt + (PM_ADDR >> 12 & 0x3ff) * 4
bench_ptemod:
    mov edx, [pm_toggle_mask]
%ifdef PARAVIRT
    mov ebx, PM_ADDR
    mov ecx, PM_PTE
.loop:
    xor [PM_PTE], edx
    mov eax, HC_PTE_UPDATE
    VCALL
%else
.loop:
    xor [PM_PTE], edx
    invlpg [PM_ADDR]
%endif
    dec ebp
    jnz .loop
    ret

; 8 forkwait: fork a child (its own page directory and 4 MiB+ page table, a stack page of
; its own), run it at ring 3 until it exits (INT 82h), back to the parent's tables.
CHILD_STACK     equ 0x00402000              ; the child's stack page (bench_pt slot 2)
bench_forkwait:
.loop:
    push ebp
    call fork_and_wait
    pop ebp
    dec ebp
    jnz .loop
    ret

fork_and_wait:
    cld
    mov esi, page_dir
    mov edi, child_pd
    mov ecx, 1024
    rep movsd
    mov esi, bench_pt
    mov edi, child_pt
    mov ecx, 1024
    rep movsd
    mov dword [child_pt + (CHILD_STACK >> 12 & 0x3ff) * 4], child_frame + PG_P + PG_W + PG_U
    mov dword [child_pd + 1 * 4], child_pt + PG_P + PG_W + PG_U
    mov eax, child_pd
    mov cr3, eax                        ; the child's address space
    mov [kernel_esp], esp
    push UDATA                          ; SS
    push CHILD_STACK + 4096             ; ESP
    push 0x002                          ; EFLAGS: IF = 0, IOPL = 0
    push UCODE                          ; CS
    push child_main                     ; EIP
    iretd
; The child, at ring 3: it uses its stack (a page only it maps) and exits.
child_main:
    push dword 0x43484c44               ; "CHLD"
    pop eax
    int 0x82
; INT 82h: the child exited. The parent's address space, stack and data segments again;
; out of fork_and_wait (the child's frame on the TSS stack is dropped).
child_exit:
    mov ax, KDATA
    mov ds, ax
    mov es, ax
    mov eax, page_dir
    mov cr3, eax
    mov esp, [kernel_esp]
    inc dword [forks]
    ret

; One PTE change of PM_ADDR, made visible (INVLPG or PTE_UPDATE); clobbers EAX.
pm_toggle:
    mov eax, [pm_toggle_mask]
    xor [PM_PTE], eax
%ifdef PARAVIRT
    push ebx
    push ecx
    mov ebx, PM_ADDR
    mov ecx, PM_PTE
    mov eax, HC_PTE_UPDATE
    VCALL
    pop ecx
    pop ebx
%else
    invlpg [PM_ADDR]
%endif
    ret

; ---- The self-check and the report ------------------------------------------------------

; EXPECT what, value: unless what (a register or memory operand) equals value, note a
; failure (the report then says FAIL). Clobbers EAX.
%macro EXPECT 2
    mov eax, %1
    cmp eax, %2
    je %%ok
    mov dword [failed], 1
%%ok:
%endmacro

check_and_report:
    mov ecx, [iterations]
    shl ecx, 2                              ; warm-up + N + 2N
    EXPECT [syscalls], ecx
    EXPECT [pgfaults], ecx
    EXPECT [divzeros], ecx
    EXPECT [forks], ecx
    EXPECT [pf_value], SIG_PF
    mov eax, [in_value]
    and eax, LSR_THRE
    EXPECT eax, LSR_THRE
    mov eax, [tpr_value]
    and eax, 0xff
    EXPECT eax, TPR_VALUE
    ; ptemod toggled 4N times: frame A again. A change is seen once made visible.
    EXPECT [PM_ADDR], SIG_A
    call pm_toggle
    EXPECT [PM_ADDR], SIG_B
    call pm_toggle
    EXPECT [PM_ADDR], SIG_A

    mov esi, msg_report
    call com_puts
    mov eax, [iterations]
    call com_dec
    mov esi, msg_syscalls
    call com_puts
    mov eax, [syscalls]
    call com_dec
    mov esi, msg_pgfaults
    call com_puts
    mov eax, [pgfaults]
    call com_dec
    mov esi, msg_divzeros
    call com_puts
    mov eax, [divzeros]
    call com_dec
    mov esi, msg_forks
    call com_puts
    mov eax, [forks]
    call com_dec
    mov esi, msg_in
    call com_puts
    movzx eax, byte [in_value]
    call com_hex2
    mov esi, msg_tpr
    call com_puts
    mov eax, [tpr_value]
    call com_hex2
    mov esi, msg_wrong_n
    call com_puts
    mov eax, [wrong_results]
    call com_dec
    cmp dword [failed], 0
    jne .fail
    mov esi, msg_pass
    call com_puts
    MARK MARK_PASS
    jmp .halt
.fail:
    mov esi, msg_fail
    call com_puts
    MARK MARK_FAIL
.halt:
    cli
    hlt
    jmp .halt

; ---- The sensitive-instruction probe ----------------------------------------------------

; What the kernel should see of its own state, checked once after the benchmarks. On the
; classic x86 a kernel deprivileged to ring 1 gets other answers from these unprivileged
; instructions without any fault (docs/v386.md Table 3-2; Robin & Irvine 2000): each
; difference prints "nanobench: wrong: WHAT: got G, expected E" on COM1 and counts in
; [wrong_results]. They are reports, not self-check failures: the lab lists them.
%macro PROBE 3                              ; name string, got (r/m32), expected (imm/reg)
    cmp %2, %3
    je %%ok
    push eax
    push ebx
    mov eax, %2
    mov ebx, %3
    mov esi, %%name
    call report_wrong
    pop ebx
    pop eax
    jmp %%ok
%%name: db %1, 0
%%ok:
%endmacro

probe_sensitive:
    pushad
    ; SGDT / SIDT: the tables the kernel loaded.
    sgdt [probe_buf]
    movzx eax, word [probe_buf]
    PROBE "SGDT limit", eax, gdt_end - gdt - 1
    PROBE "SGDT base", dword [probe_buf + 2], gdt
    sidt [probe_buf]
    movzx eax, word [probe_buf]
    PROBE "SIDT limit", eax, 256 * 8 - 1
    PROBE "SIDT base", dword [probe_buf + 2], idt
    ; SLDT / STR: no LDT, the kernel's TSS.
    xor eax, eax
    sldt ax
    PROBE "SLDT", eax, 0
    xor eax, eax
    str ax
    PROBE "STR", eax, TSS_SEL
    ; SMSW: CR0's low half, as MOV from CR0 (privileged, so always right) reads it.
    mov ebx, cr0
    and ebx, 0xffff
    xor eax, eax
    smsw ax
    PROBE "SMSW", eax, ebx
    ; PUSH CS, MOV from SS: the kernel's selectors with RPL 0.
    push cs
    pop eax
    and eax, 0xffff
    PROBE "PUSH CS", eax, KCODE
    xor eax, eax
    mov ax, ss
    PROBE "MOV from SS", eax, KDATA
    ; PUSHF with interrupts off: IF = 0.
    cli
    pushfd
    pop eax
    and eax, 1 << 9
    PROBE "PUSHF IF after CLI", eax, 0
    ; POPF at CPL 0 sets IOPL; PUSHF shows it. Then IOPL 0 again.
    pushfd
    pop eax
    or eax, 3 << 12
    push eax
    popfd
    pushfd
    pop eax
    and eax, 3 << 12
    PROBE "POPF IOPL 3", eax, 3 << 12
    pushfd
    pop eax
    and eax, ~(3 << 12)
    push eax
    popfd
    ; POPF enabling interrupts: an interrupt pending while IF = 0 (a self IPI from the
    ; local APIC, SDM Vol. 3A §10.6.1) is taken right after the POPF that sets IF (POPF
    ; has no interrupt shadow, unlike STI: §6.8.3). Then STI, so a monitor holding it
    ; delivers it before the probe ends.
    mov dword [APIC_BASE + APIC_SVR], APIC_SVR_ENABLE | 0xff
    mov dword [ipi_seen], 0
    mov dword [APIC_BASE + APIC_ICR_LO], ICR_SELF | IPI_VECTOR
    mov eax, [ipi_seen]
    PROBE "interrupt taken with IF = 0", eax, 0
    push dword 0x202
    popfd
    mov eax, [ipi_seen]
    PROBE "POPF setting IF: pending interrupt taken", eax, 1
    sti
    nop
    cli
    mov eax, [ipi_seen]
    PROBE "the interrupt, once", eax, 1
    mov dword [APIC_BASE + APIC_SVR], 0xff
    ; LAR on the kernel's code segment: DPL 0 (access-rights bits 14:13).
    mov ebx, KCODE
    xor eax, eax
    lar eax, ebx
    and eax, 3 << 13
    PROBE "LAR KCODE DPL", eax, 0
    ; VERR on a selector past the GDT's limit: it must fail (ZF = 0).
    mov ebx, 0xffe8
    xor eax, eax
    verr bx
    setz al
    PROBE "VERR FFE8h (past the GDT)", eax, 0
    ; Self-modifying code: run a routine, change its immediate, run it again. Every
    ; technique must run the new code (scan-before-execute rescans).
    call smc_routine
    PROBE "code before the change", eax, 1
    mov dword [smc_routine + 1], 2
    call smc_routine
    PROBE "self-modified code", eax, 2
    popad
    ret

smc_routine:
    mov eax, 1
    ret

; The probe's self IPI: count it, end it (EOI).
ipi_handler:
    inc dword [ipi_seen]
    mov dword [APIC_BASE + APIC_EOI], 0
    iretd

; A wrong answer: ESI its name, EAX what came, EBX what was expected.
report_wrong:
    inc dword [wrong_results]
    push esi
    mov esi, msg_wrong
    call com_puts
    pop esi
    call com_puts
    mov esi, msg_got
    call com_puts
    call com_hex8
    mov esi, msg_expected
    call com_puts
    mov eax, ebx
    call com_hex8
    mov esi, msg_crlf
    call com_puts
    ret

; ---- Start-up ---------------------------------------------------------------------------

; The first decimal number in the NUL-terminated string at ESI, if any, into
; [iterations] (1..MAX_N; otherwise the default stays).
parse_iterations:
    xor eax, eax
.skip:
    mov dl, [esi]
    test dl, dl
    jz .done
    inc esi
    sub dl, '0'
    cmp dl, 9
    ja .skip
.digit:
    imul eax, eax, 10
    movzx edx, dl
    add eax, edx
    cmp eax, MAX_N
    ja .done
    mov dl, [esi]
    inc esi
    sub dl, '0'
    cmp dl, 9
    jbe .digit
    test eax, eax
    jz .done
    mov [iterations], eax
.done:
    ret

; Both 8259As initialised and masked: nothing interrupts the loops.
pic_mask_all:
    mov al, 0x11                        ; ICW1: edge, cascade, ICW4 follows
    out 0x20, al
    out 0xa0, al
    mov al, 0x20                        ; ICW2: vectors 20h and 28h
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04                        ; ICW3
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01                        ; ICW4: 8086 mode
    out 0x21, al
    out 0xa1, al
    mov al, 0xff                        ; OCW1: all masked
    out 0x21, al
    out 0xa1, al
    ret

; 32-bit paging: 0-4 MiB identity (user-accessible: the ring-3 loop runs in the kernel
; image), 4 MiB + the benchmark pages, and the APIC's 4 MiB page uncached, supervisor.
paging_on:
    ; PT 0: identity.
    xor ecx, ecx
.ident:
    mov eax, ecx
    shl eax, 12
    or eax, PG_P | PG_W | PG_U
    mov [ident_pt + ecx * 4], eax
    inc ecx
    cmp ecx, 1024
    jb .ident
    mov dword [page_dir + 0 * 4], ident_pt + PG_P + PG_W + PG_U
    mov dword [page_dir + 1 * 4], bench_pt + PG_P + PG_W + PG_U
    mov dword [page_dir + (APIC_BASE >> 22) * 4], (APIC_BASE & 0xffc00000) | PG_PS | PG_PCD | PG_P | PG_W
    ; The benchmark pages: PF_ADDR not present, PM_ADDR on frame A.
    mov dword [PM_PTE], pm_frame_a + PG_P + PG_W + PG_U
    mov dword [pm_frame_a], SIG_A
    mov dword [pm_frame_b], SIG_B
    mov dword [pf_frame], SIG_PF
    mov eax, pm_frame_a
    xor eax, pm_frame_b
    mov [pm_toggle_mask], eax
    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, page_dir
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    jmp .flush
.flush:
    ret
SIG_PF          equ 0x46504650              ; "PFPF": what the pgfault page holds

; ---- Interrupts and exceptions ----------------------------------------------------------

build_idt:
    xor ecx, ecx
.loop:
    mov eax, unexpected_int
    cmp ecx, 32
    jae .set
    mov eax, [exc_stubs + ecx * 4]
.set:
    mov edx, 0x8e00                     ; interrupt gate, DPL 0
    call set_gate
    inc ecx
    cmp ecx, 256
    jb .loop
    mov ecx, 0
    mov eax, de_handler
    call set_gate
    mov ecx, 14
    mov eax, pf_handler
    call set_gate
    mov ecx, IPI_VECTOR
    mov eax, ipi_handler
    call set_gate
    mov edx, 0xee00                     ; DPL 3: INT n from ring 3
    mov ecx, 0x80
    mov eax, syscall_handler
    call set_gate
    mov ecx, 0x81
    mov eax, back_to_kernel
    call set_gate
    mov ecx, 0x82
    mov eax, child_exit
    call set_gate
    ret

; IDT entry ECX: KCODE:EAX with type/DPL word DX (SDM Vol. 3A Figure 6-2).
set_gate:
    push eax
    push edi
    lea edi, [idt + ecx * 8]
    mov [edi], ax
    mov word [edi + 2], KCODE
    mov [edi + 4], dx
    shr eax, 16
    mov [edi + 6], ax
    pop edi
    pop eax
    ret

%include "exc_stubs.inc"

unexpected_int:
    push 0
    push 0xff
    jmp fatal

; "nanobench: EXCEPTION vv error eeeeeeee at EIP eeeeeeee" on COM1, the FAIL marker,
; and a halt with interrupts off.
fatal:
    cli
    mov ax, KDATA
    mov ds, ax
    mov es, ax
    mov esi, msg_exc
    call com_puts
    mov eax, [esp]
    call com_hex2
    mov esi, msg_exc_err
    call com_puts
    mov eax, [esp + 4]
    call com_hex8
    mov esi, msg_exc_eip
    call com_puts
    mov eax, [esp + 8]
    call com_hex8
    mov esi, msg_crlf
    call com_puts
    MARK MARK_FAIL
.stop:
    cli
    hlt
    jmp .stop

; ---- COM1 (polled; the loader left it at its reset settings, which the model accepts) ---

; AL on COM1 once LSR.THRE is set (bounded wait: never a hang).
com_putc:
    push eax
    push ecx
    push edx
    mov ah, al
    mov ecx, 100000
    mov dx, COM1 + UART_LSR
.wait:
    in al, dx
    test al, LSR_THRE
    jnz .ready
    dec ecx
    jnz .wait
.ready:
    mov al, ah
    mov dx, COM1
    out dx, al
    pop edx
    pop ecx
    pop eax
    ret

; The NUL-terminated string at ESI.
com_puts:
    push eax
    push esi
.next:
    lodsb
    test al, al
    jz .done
    call com_putc
    jmp .next
.done:
    pop esi
    pop eax
    ret

; EAX in decimal.
com_dec:
    pushad
    mov edi, numbuf_end
    mov byte [edi], 0
    mov ebx, 10
.div:
    xor edx, edx
    div ebx
    add dl, '0'
    dec edi
    mov [edi], dl
    test eax, eax
    jnz .div
    mov esi, edi
    call com_puts
    popad
    ret

; EAX as 8 (com_hex8) or 2 (com_hex2) hex digits.
com_hex8:
    push ecx
    mov ecx, 8
    jmp com_hex
com_hex2:
    push ecx
    mov ecx, 2
com_hex:
    pushad
    mov edi, numbuf_end
    mov byte [edi], 0
.digit:
    mov edx, eax
    and edx, 0xf
    mov dl, [hex_digits + edx]
    dec edi
    mov [edi], dl
    shr eax, 4
    dec ecx
    jnz .digit
    mov esi, edi
    call com_puts
    popad
    pop ecx
    ret

; ---- Data -------------------------------------------------------------------------------

align 8
; SDM Vol. 3A §3.4.5 (Figure 3-8), §7.2.2 (TSS descriptor, type 9).
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: ring-0 code, 4 GiB
    dq 0x00cf92000000ffff               ; 10h: ring-0 data
    dq 0x00cffa000000ffff               ; 18h: ring-3 code
    dq 0x00cff2000000ffff               ; 20h: ring-3 data
    dw tss_end - tss - 1                ; 28h: the TSS
    dw ABS(tss) & 0xffff
    db (ABS(tss) >> 16) & 0xff
    db 0x89                             ; present, DPL 0, 32-bit TSS (available)
    db 0x00
    db ABS(tss) >> 24
gdt_end:

; A 32-bit TSS (SDM Vol. 3A §7.2.1): SS0:ESP0 for INT 80h/81h from ring 3, on a stack of
; its own (the kernel's is in use by bench_syscall meanwhile); no I/O bitmap.
align 8
tss:
    dd 0
    dd trap_stack_top                   ; ESP0
    dd KDATA                            ; SS0
    times 22 dd 0
    dw 0
    dw tss_end - tss                    ; I/O map base past the limit
tss_end:

align 4
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt
align 4
idt_desc:
    dw 256 * 8 - 1
    dd idt

hex_digits:     db "0123456789ABCDEF"
%ifdef PARAVIRT
msg_report:     db "nanobench (paravirtual): iterations ", 0
%else
msg_report:     db "nanobench (native): iterations ", 0
%endif
msg_syscalls:   db ", syscalls ", 0
msg_pgfaults:   db ", page faults ", 0
msg_divzeros:   db ", divide errors ", 0
msg_forks:      db ", forks ", 0
msg_in:         db ", in ", 0
msg_tpr:        db ", TPR ", 0
msg_pass:       db ": PASS", 13, 10, 0
msg_fail:       db ": FAIL", 13, 10, 0
msg_exc:        db "nanobench: EXCEPTION ", 0
msg_exc_err:    db " error ", 0
msg_exc_eip:    db " at EIP ", 0
msg_crlf:       db 13, 10, 0
msg_wrong:      db "nanobench: wrong: ", 0
msg_got:        db ": got ", 0
msg_expected:   db ", expected ", 0
msg_wrong_n:    db ", wrong results ", 0

align 4
file_end:

; ---- BSS (zeroed by the loader) ---------------------------------------------------------

absolute file_end
alignb 4096
page_dir:       resb 4096
ident_pt:       resb 4096
bench_pt:       resb 4096
pf_frame:       resb 4096
pm_frame_a:     resb 4096
pm_frame_b:     resb 4096
child_pd:       resb 4096
child_pt:       resb 4096
child_frame:    resb 4096
idt:            resb 256 * 8
iterations:     resd 1
iterations_2n:  resd 1
kernel_esp:     resd 1
syscalls:       resd 1
pgfaults:       resd 1
divzeros:       resd 1
forks:          resd 1
in_value:       resd 1
tpr_value:      resd 1
pf_value:       resd 1
wrong_results:  resd 1
ipi_seen:       resd 1
probe_buf:      resb 8
failed:         resd 1
pm_toggle_mask: resd 1
numbuf:         resb 12
numbuf_end:     resb 4
alignb 16
                resb 4096
user_stack_top:
                resb 4096
trap_stack_top:
                resb 8192
stack_top:
bss_end: