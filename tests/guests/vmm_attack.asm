; vmm_attack.asm — the attacker of tests/vmm_isolation.rs: a Multiboot v1 kernel, run in a
; small VM (8 MiB) beside a victim VM, that tries to reach memory outside its allocation.
;
; Built by tests/vmm_isolation.rs with `nasm -f bin` (a flat image whose Multiboot header
; carries the a.out-kludge address fields, Multiboot Specification 0.6.96 §3.1.3). It is
; loaded at 1 MiB + 64 KiB so that its code stays put while step 3 closes the A20 gate
; (which folds 100000h-10FFFFh onto the first 64 KiB; docs/v386.md §5.6).
;
; Every step prints what it does and what it saw on the debug console (port 0xE9). A
; probe of an address reads the dword there, writes a marker (address xor A77AC4EDh) and
; reads again; the outcome is one of
;   open bus     both reads are FFFFFFFFh: nothing answers (a hole);
;   own device   the marker reads back outside RAM: the VM's own device memory (the VGA
;                framebuffer at E0000000h, a relocated device);
;   ODD          anything else — printed with both values; the test fails on it.
; The steps:
;   1. paging off: wild guest-physical addresses — every 1 MiB from the end of RAM to
;      FFF00000h, the local and I/O APIC (own devices), the top of the 4 GiB space,
;      accesses and string copies straddling the end of RAM, a code fetch from a hole,
;      and 17,000 distinct device pages (more than the VMM's device window holds).
;   2. 32-bit paging (SDM Vol. 3A §4.3) whose PTEs point at frames outside RAM, at the
;      VMM's structures (host-physical addresses used as guest-physical ones), at the page
;      tables themselves (a recursive slot), a page table that lives in a hole, 4 MiB pages
;      at the top of the space, and an access straddling RAM and a hole.
;   3. DMA and device programming: the 8237A (channel 2) and the floppy controller reading
;      a sector to addresses beyond RAM and writing one from there (a read of anything but
;      open bus would be a leak), to the victim's host-physical address (which is one of
;      this VM's guest-physical ones), and over code that has already run (the new code
;      must run); QEMU's fw_cfg DMA interface (port 514h), the A20 gate, the i440FX PAM
;      registers, the local APIC base MSR, the VGA's PCI BAR.
;   4. control-block tampering: the SLT roots, I/O bitmaps and RAM of both VMs, whose
;      host-physical addresses the test patches into `targets` before the VM runs, are
;      written as guest-physical addresses; VMENTER with a forged VCB naming the victim's
;      tag and tables (the VMM injects #UD: no nested V386, docs/v386.md §5.9); VCALL.
;   5. last: PAE paging (SDM Vol. 3A §4.4) with a PTE whose frame is at 4 GiB. The VMM
;      stops a VM that touches guest-physical memory above 4 GiB: a contained error that
;      ends this VM (the line before says so).
;
; Exceptions go to one handler that prints the vector, error code and EIP; when a step has
; set `recover` (an EIP to continue at) the handler resumes there, else the kernel stops
; (CLI; HLT).

bits 32
org 0x110000

DEBUGCON        equ 0xe9
RAM_END         equ 0x00800000          ; the VM's RAM: 8 MiB
MARK_XOR        equ 0xa77ac4ed
OPEN_BUS        equ 0xffffffff

; Guest-physical scratch areas (all inside RAM, outside the image).
DMA_BUF         equ 0x00020000          ; a sector read into own RAM
LEAK_BUF        equ 0x00021000          ; a sector written from beyond RAM, read back
FWCFG_DESC      equ 0x00022000          ; an fw_cfg DMA descriptor
FORGED_VCB      equ 0x00030000          ; the VCB handed to VMENTER
COPY_BUF        equ 0x00050000          ; string copies from across the end of RAM
CODE_BUF        equ 0x00060000          ; code, then a sector DMA'd over it
PD32            equ 0x00300000          ; step 2: page directory
PT_ATT          equ 0x00301000          ;         the attack page table (PDE 2)
PDPT            equ 0x00310000          ; step 5: PAE page-directory-pointer table
PD_PAE          equ 0x00311000          ;         PAE page directory
PT_PAE          equ 0x00312000          ;         PAE page table
PT_HOLE         equ 0x00900000          ; a "page table" in a hole (step 2)
WINDOW_SWEEP    equ 0x40000000          ; step 1: first of the many device pages
WINDOW_SWEEP_N  equ 17000               ; > the VMM's 16,384 window slots per VM

; Paging bits (SDM Vol. 3A Tables 4-5, 4-6, 4-9 to 4-11).
PG_P            equ 1 << 0
PG_RW           equ 1 << 1
PG_PS           equ 1 << 7
CR0_PG          equ 1 << 31
CR4_PSE         equ 1 << 4
CR4_PAE         equ 1 << 5
ATT_LIN         equ 0x00800000          ; linear base of PT_ATT's pages (PDE 2)
RECUR_LIN       equ 0x00c00000          ; PDE 3 = the page directory: page tables appear here
TOP4M_LIN       equ 0x01000000          ; PDE 4: 4 MiB page FFC00000h
APIC4M_LIN      equ 0x01400000          ; PDE 5: 4 MiB page FEC00000h (I/O APIC, local APIC)
HOLEPT_LIN      equ 0x01800000          ; PDE 6: its page table is at PT_HOLE
ALIAS_LIN       equ 0x01c00000          ; PDE 7: written through the self-map at run time

; Local APIC (SDM Vol. 3A §10.4.1, Table 10-1) and I/O APIC (82093AA datasheet §3.1).
LAPIC           equ 0xfee00000
LAPIC_VER       equ 0x030
IOAPIC          equ 0xfec00000
MSR_APIC_BASE   equ 0x1b

; Floppy controller (82077AA datasheet, "Register Description", Table 5-1) and DMA
; (8237A datasheet; IBM PC AT Technical Reference "DMA Page Registers": 81h = channel 2).
FDC_MSR         equ 0x3f4
FDC_FIFO        equ 0x3f5
FDC_READ        equ 0x46                ; READ DATA, MFM
FDC_WRITE       equ 0x45                ; WRITE DATA, MFM
DMA_TO_MEM      equ 0x44                ; mode: single, write transfer (device -> memory)
DMA_FROM_MEM    equ 0x48                ; mode: single, read transfer (memory -> device)
FLOPPY_SIG      equ 0x59504c46          ; "FLPY": the first dword of every test sector

; fw_cfg (QEMU docs/specs/fw_cfg.rst): selector 510h, data 511h, DMA address 514h (high
; half, big-endian) and 518h (low half; writing it starts the transfer).
FW_CFG_SEL      equ 0x510
FW_CFG_DATA     equ 0x511
FW_CFG_DMA_HI   equ 0x514
FW_CFG_DMA_LO   equ 0x518

; ---- Output macros ----------------------------------------------------------------------

%macro PRINT 1
    jmp %%over
%%s: db %1, 0
%%over:
    push esi
    mov esi, %%s
    call puts
    pop esi
%endmacro

%macro PRINTLN 1
    PRINT {%1, 10}
%endmacro

; PRINT a label and EAX in hex.
%macro PRINTHEX 1
    PRINT %1
    call put_hex32
%endmacro

; ---- Multiboot header (a.out kludge: flags bit 16) --------------------------------------

%include "multiboot.inc"

; The VMM's structures as host-physical addresses, patched in by the test after the VMs
; are created (it finds the magic). Order: victim RAM, victim pattern region, victim SLT
; root, victim I/O bitmap, attacker RAM, attacker SLT root, attacker I/O bitmap, the last
; host page in use, the victim's device window.
align 16
targets_magic:  db "V386TGT!"
target_count:   dd 0
targets:        times 16 dd 0

; ---- Entry ------------------------------------------------------------------------------

entry:
    mov esp, stack_top
    cld
    lgdt [gdt_desc]
    jmp 0x08:.reload
.reload:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    call build_idt
    lidt [idt_desc]

    PRINTLN "attack: start"
    mov eax, [target_count]
    PRINTHEX "attack: targets patched in: "
    call newline

    call step1
    call step2
    call step3
    call step4
    PRINTLN "attack: steps 1-4 done"
    jmp step5

; ---- Step 1: wild guest-physical addresses, paging off ----------------------------------

step1:
    PRINTLN "attack: step 1: wild guest-physical addresses, paging off"
    PRINTLN "attack: step 1: every 1 MiB from 00800000 to fff00000"
    mov edi, RAM_END
.sweep:
    cmp edi, IOAPIC
    je .next
    cmp edi, LAPIC
    je .next
    call probe
    cmp dword [last_class], 1
    jne .next
    mov eax, edi
    PRINTHEX "attack: own device memory at "
    call newline
.next:
    add edi, 0x100000
    jnc .sweep
    call print_counts

    ; The VM's own APICs: reading their version registers is fine.
    mov eax, [LAPIC + LAPIC_VER]
    mov [lapic_version], eax
    PRINTHEX "attack: own local APIC version "
    call newline
    mov dword [IOAPIC], 1               ; IOREGSEL := IOAPICVER
    mov eax, [IOAPIC + 0x10]
    PRINTHEX "attack: own I/O APIC version "
    call newline

    PRINTLN "attack: step 1: the top of the 4 GiB space"
    mov edi, 0xfffff000
    call probe
    mov edi, 0xfffffffc
    call probe
    call print_counts

    PRINTLN "attack: step 1: accesses straddling the end of RAM"
    mov dword [RAM_END - 2], 0x11223344
    mov eax, [RAM_END - 2]
    PRINTHEX "attack: dword written at 007ffffe reads back "
    call newline
    cmp eax, 0xffff3344
    je .straddle_ok
    PRINTLN "attack: ODD: the straddling write did not end at the end of RAM"
.straddle_ok:
    ; REP STOSD from 8 bytes before the end: 2 dwords land in RAM, 14 go nowhere.
    mov edi, RAM_END - 8
    mov ecx, 16
    mov eax, 0xdeadbeef
    rep stosd
    ; REP MOVSD from across the end into own RAM: what comes from the hole is open bus.
    mov esi, RAM_END - 8
    mov edi, COPY_BUF
    mov ecx, 16
    rep movsd
    mov esi, COPY_BUF
    call check_copy
    PRINTLN "attack: string copy across the end of RAM checked"

    PRINTLN "attack: step 1: executing from a hole"
    mov dword [recover], .after_fetch
    jmp 0x00900000
.after_fetch:
    mov eax, [last_vector]
    PRINTHEX "attack: the fetch from 00900000 ended with vector "
    call newline

    PRINTLN "attack: step 1: 17000 distinct device pages from 40000000 (more than the device window)"
    mov edi, WINDOW_SWEEP
    mov ecx, WINDOW_SWEEP_N
.many:
    call probe
    add edi, 0x1000
    loop .many
    ; The first pages again, after the window has wrapped.
    mov edi, WINDOW_SWEEP
    mov ecx, 64
.again:
    call probe
    add edi, 0x1000
    loop .again
    call print_counts
    PRINTLN "attack: step 1 done"
    ret

; Check the 16 dwords at ESI after a copy from RAM_END - 8: 2 of 0xdeadbeef, 14 of open bus.
check_copy:
    push ecx
    cmp dword [esi], 0xdeadbeef
    jne .bad
    cmp dword [esi + 4], 0xdeadbeef
    jne .bad
    add esi, 8
    mov ecx, 14
.hole:
    cmp dword [esi], OPEN_BUS
    jne .bad
    add esi, 4
    loop .hole
    pop ecx
    ret
.bad:
    mov eax, [esi]
    PRINTHEX "attack: ODD: a copy from across the end of RAM read "
    call newline
    pop ecx
    ret

; ---- Step 2: page-table tricks, 32-bit paging -------------------------------------------

step2:
    PRINTLN "attack: step 2: 32-bit paging, PTEs at frames outside RAM and at its own tables"
    mov edi, PD32
    mov ecx, 2048                       ; PD32 and PT_ATT
    xor eax, eax
    rep stosd
    mov dword [PD32 + 0 * 4], 0x00000000 | PG_PS | PG_RW | PG_P
    mov dword [PD32 + 1 * 4], 0x00400000 | PG_PS | PG_RW | PG_P
    mov dword [PD32 + 2 * 4], PT_ATT | PG_RW | PG_P
    mov dword [PD32 + 3 * 4], PD32 | PG_RW | PG_P
    mov dword [PD32 + 4 * 4], 0xffc00000 | PG_PS | PG_RW | PG_P
    mov dword [PD32 + 5 * 4], 0xfec00000 | PG_PS | PG_RW | PG_P
    mov dword [PD32 + 6 * 4], PT_HOLE | PG_RW | PG_P
    ; PT_ATT: the fixed frames, then the targets.
    mov esi, att_frames
    mov edi, PT_ATT
    mov ecx, ATT_FIXED
.fixed:
    lodsd
    or eax, PG_RW | PG_P
    stosd
    loop .fixed
    mov esi, targets
    mov ecx, [target_count]
    jecxz .no_targets
.tg:
    lodsd
    and eax, 0xfffff000
    or eax, PG_RW | PG_P
    stosd
    loop .tg
.no_targets:

    mov eax, cr4
    or eax, CR4_PSE
    mov cr4, eax
    mov eax, PD32
    mov cr3, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    PRINTLN "attack: paging on"

    ; Every PTE from 3 on: the fixed frames outside RAM, then the targets.
    mov ecx, 3
.probe_ptes:
    mov edi, ecx
    shl edi, 12
    add edi, ATT_LIN
    mov eax, [PT_ATT + ecx * 4]
    and eax, 0xfffff000
    PRINTHEX "attack: PTE frame "
    cmp eax, RAM_END
    jb .own_frame
    call probe
    mov eax, [last_class]
    call print_class
    jmp .next_pte
.own_frame:
    ; A frame inside own RAM (a host-physical address that is also one of this VM's
    ; guest-physical ones): the write must land in own RAM at that address, seen there
    ; through the identity map too.
    mov edx, eax
    mov dword [edi], 0x5a5a5a5a
    cmp dword [edx], 0x5a5a5a5a
    jne .own_bad
    PRINTLN " own RAM"
    jmp .next_pte
.own_bad:
    PRINTLN " ODD: not own RAM"
.next_pte:
    inc ecx
    mov eax, [target_count]
    add eax, ATT_FIXED
    cmp ecx, eax
    jb .probe_ptes
    call print_counts

    ; PTE 0 maps the page directory: read and write it through a linear address.
    mov eax, [ATT_LIN + 0 * 4]
    PRINTHEX "attack: PDE 0 read through a PTE: "
    call newline
    mov dword [ATT_LIN + 7 * 4], 0x00000000 | PG_PS | PG_RW | PG_P
    mov eax, [ALIAS_LIN + image_start]
    cmp eax, [image_start]
    jne .alias_bad
    PRINTLN "attack: a PDE written through the self-map aliases own RAM: ok"
    jmp .alias_done
.alias_bad:
    PRINTLN "attack: ODD: the PDE written through the self-map did not take"
.alias_done:

    ; The recursive slot: PT_ATT appears at RECUR_LIN + 2 * 4096. Repoint PTE 3 there.
    mov eax, [RECUR_LIN + 2 * 4096 + 3 * 4]
    PRINTHEX "attack: PTE 3 read through the recursive slot: "
    call newline
    mov dword [RECUR_LIN + 2 * 4096 + 3 * 4], 0xffffe000 | PG_RW | PG_P
    invlpg [ATT_LIN + 3 * 4096]
    mov edi, ATT_LIN + 3 * 4096
    call probe
    PRINT "attack: PTE 3 repointed to ffffe000 through the recursive slot:"
    mov eax, [last_class]
    call print_class

    ; PTE 2 is own last RAM page, PTE 3 a hole: a dword across the two.
    mov dword [ATT_LIN + 3 * 4096 - 2], 0x55667788
    mov eax, [ATT_LIN + 3 * 4096 - 2]
    PRINTHEX "attack: dword across own RAM and a hole (linear pages) reads back "
    call newline
    cmp eax, 0xffff7788
    je .lin_straddle_ok
    PRINTLN "attack: ODD: the straddling write through paging"
.lin_straddle_ok:
    mov dword [ATT_LIN + 3 * 4096 - 8], 0xdeadbeef
    mov dword [ATT_LIN + 3 * 4096 - 4], 0xdeadbeef
    mov esi, ATT_LIN + 3 * 4096 - 8
    mov edi, COPY_BUF
    mov ecx, 16
    rep movsd
    mov esi, COPY_BUF
    call check_copy
    PRINTLN "attack: string copy across linear pages (RAM, then a hole) checked"

    ; PDE 6's page table is in a hole: its PTEs read FFFFFFFFh (present, frame FFFFF000h).
    mov edi, HOLEPT_LIN
    call probe
    PRINT "attack: a page through a page table in a hole:"
    mov eax, [last_class]
    call print_class
    mov edi, HOLEPT_LIN + 0x123000
    call probe

    ; 4 MiB pages at the top of the space and over the APICs.
    mov edi, TOP4M_LIN
    call probe
    mov edi, TOP4M_LIN + 0x3ff000
    call probe
    call print_counts
    mov eax, [APIC4M_LIN + (LAPIC - IOAPIC) + LAPIC_VER]
    PRINTHEX "attack: own local APIC version through a 4 MiB page: "
    call newline
    cmp eax, [lapic_version]
    je .apic_ok
    PRINTLN "attack: ODD: the local APIC through paging differs"
.apic_ok:

    mov eax, cr0
    and eax, ~CR0_PG
    mov cr0, eax
    PRINTLN "attack: paging off"
    PRINTLN "attack: step 2 done"
    ret

; ---- Step 3: DMA and device programming -------------------------------------------------

step3:
    PRINTLN "attack: step 3: DMA and device programming"
    ; Control: a sector into own RAM, so the attack below is known to move data.
    mov eax, DMA_BUF
    mov ecx, 512
    mov bl, DMA_TO_MEM
    call dma2
    mov al, FDC_READ
    mov ah, 1
    call fdc_rw
    mov eax, [DMA_BUF]
    cmp eax, FLOPPY_SIG
    je .control_ok
    PRINTHEX "attack: FAILED: floppy DMA into own RAM read "
    call newline
    jmp .beyond
.control_ok:
    PRINTLN "attack: floppy DMA into own RAM: ok"

.beyond:
    mov esi, dma_wild
.wild:
    lodsd
    test eax, eax
    jz .wild_done
    mov edi, eax
    mov ecx, 512
    mov bl, DMA_TO_MEM
    call dma2
    mov al, FDC_READ
    mov ah, 1
    call fdc_rw
    mov eax, edi
    PRINTHEX "attack: floppy DMA to "
    mov eax, [edi]
    PRINTHEX " then reads "
    call newline
    cmp eax, OPEN_BUS
    je .wild
    PRINTLN "attack: ODD: DMA beyond RAM left data"
    jmp .wild
.wild_done:

    ; The victim's pattern region, host-physical, as a guest-physical DMA address: the
    ; 8237A's addresses are the VM's own, so the sector lands in own RAM.
    cmp dword [target_count], 2
    jb .no_target_dma
    mov edi, [targets + 1 * 4]
    cmp edi, 0x01000000 - 512
    jae .no_target_dma
    mov eax, edi
    mov ecx, 512
    mov bl, DMA_TO_MEM
    call dma2
    mov al, FDC_READ
    mov ah, 1
    call fdc_rw
    mov eax, edi
    PRINTHEX "attack: floppy DMA to the victim's pattern address "
    call newline
    cmp dword [edi], FLOPPY_SIG
    je .target_own
    PRINTLN "attack: ODD: that DMA did not land in own RAM"
    jmp .no_target_dma
.target_own:
    PRINTLN "attack: it landed in own RAM at that guest-physical address"
.no_target_dma:

    ; DMA over code that has run (and been decoded and cached): the new code must run.
    ; Sector 5 (LBA 4) holds "mov eax, 21414d44h; ret" at offset 8 (the test makes it).
    mov dword [CODE_BUF + 8], 0x111111b8 ; mov eax, 11111111h; ret
    mov dword [CODE_BUF + 12], 0x0000c311
    call CODE_BUF + 8
    call CODE_BUF + 8
    mov eax, CODE_BUF
    mov ecx, 512
    mov bl, DMA_TO_MEM
    call dma2
    mov al, FDC_READ
    mov ah, 5
    call fdc_rw
    call CODE_BUF + 8
    PRINTHEX "attack: code DMA'd over code that ran returns "
    call newline
    cmp eax, 0x21414d44
    je .code_ok
    PRINTLN "attack: ODD: stale code ran after a DMA over it"
.code_ok:

    ; A sector written from beyond RAM, then read back into own RAM: open bus, or a leak.
    mov eax, 0x00f00000
    mov ecx, 512
    mov bl, DMA_FROM_MEM
    call dma2
    mov al, FDC_WRITE
    mov ah, 3
    call fdc_rw
    mov eax, LEAK_BUF
    mov ecx, 512
    mov bl, DMA_TO_MEM
    call dma2
    mov al, FDC_READ
    mov ah, 3
    call fdc_rw
    mov esi, LEAK_BUF
    mov ecx, 128
.leak:
    lodsd
    cmp eax, OPEN_BUS
    jne .leaked
    loop .leak
    PRINTLN "attack: a sector DMA-written from 00f00000 reads back as open bus"
    jmp .fw_cfg
.leaked:
    PRINTHEX "attack: ODD: a sector DMA-written from beyond RAM holds "
    call newline

.fw_cfg:
    mov dx, FW_CFG_SEL
    xor ax, ax                          ; FW_CFG_SIGNATURE
    out dx, ax
    call fw_cfg_dword
    PRINTHEX "attack: fw_cfg signature "
    mov dx, FW_CFG_SEL
    mov ax, 1                           ; FW_CFG_ID (bit 1: DMA interface)
    out dx, ax
    call fw_cfg_dword
    PRINTHEX " id "
    call newline
    ; A DMA descriptor (big-endian): select item 0 and read 512 bytes to the victim's SLT
    ; root (host-physical) — or 00f00000 without targets.
    mov eax, 0x00f00000
    cmp dword [target_count], 3
    jb .desc
    mov eax, [targets + 2 * 4]
.desc:
    bswap eax
    mov [FWCFG_DESC + 12], eax
    mov dword [FWCFG_DESC + 8], 0
    mov eax, 0x200
    bswap eax
    mov [FWCFG_DESC + 4], eax
    mov eax, 0x0000000a                 ; item 0, SELECT | READ
    bswap eax
    mov [FWCFG_DESC], eax
    mov dx, FW_CFG_DMA_HI
    xor eax, eax
    out dx, eax
    mov dx, FW_CFG_DMA_LO
    mov eax, FWCFG_DESC
    bswap eax
    out dx, eax
    mov eax, [FWCFG_DESC]
    bswap eax
    PRINTHEX "attack: fw_cfg DMA descriptor control afterwards "
    call newline

    ; The A20 gate: the OR of port 92h bit 1 (bit 0 would reset the VM) and the keyboard
    ; controller's output port (IBM PC AT Technical Reference, "Address Line A20"; the
    ; DDh/DFh commands switch the latter). Closed, 10F000h is 0F000h.
    in al, 0x92
    and al, ~3
    out 0x92, al
    mov al, 0xdd                        ; i8042: A20 off
    out 0x64, al
    mov dword [0x0010f000], 0x20a20a20
    mov al, 0xdf                        ; i8042: A20 on
    out 0x64, al
    mov eax, [0x0000f000]
    PRINTHEX "attack: A20 closed, 0010f000 written, 0000f000 reads "
    call newline
    cmp eax, 0x20a20a20
    je .a20_ok
    PRINTLN "attack: ODD: the A20 fold"
.a20_ok:

    ; i440FX PAM1 (config register 5Ah): C0000h-C7FFFh to RAM, then to nothing.
    mov dx, 0xcf8
    mov eax, 0x80000058
    out dx, eax
    mov dx, 0xcfe
    mov al, 0x33
    out dx, al
    mov dword [0xc0000], 0x0c0ffee0
    mov eax, [0xc0000]
    PRINTHEX "attack: PAM1 = 33h, c0000 reads back "
    mov dx, 0xcfe
    mov al, 0x00
    out dx, al
    mov eax, [0xc0000]
    PRINTHEX ", PAM1 = 00h, c0000 reads "
    call newline

    ; The local APIC base MSR: move the APIC into a hole, then into own RAM, then back.
    mov ecx, MSR_APIC_BASE
    rdmsr
    mov [apic_base], eax
    and eax, 0xfff
    or eax, 0xd0000000
    xor edx, edx
    wrmsr
    mov eax, [0xd0000000 + LAPIC_VER]
    PRINTHEX "attack: local APIC moved to d0000000, version reads "
    call newline
    mov eax, [apic_base]
    and eax, 0xfff
    or eax, 0x00700000
    xor edx, edx
    wrmsr
    mov dword [0x00700030], 0x12121212
    mov eax, [0x00700030]
    PRINTHEX "attack: local APIC moved into own RAM at 00700000, 00700030 reads "
    call newline
    mov eax, [apic_base]
    xor edx, edx
    mov ecx, MSR_APIC_BASE
    wrmsr

    ; The VGA's framebuffer BAR (00:02.0, BAR 0; PCI Local Bus Specification 2.1 §6.2.5)
    ; just past the end of RAM, then back where the VGA model puts it by default.
    mov dx, 0xcf8
    mov eax, 0x80001004
    out dx, eax
    mov dx, 0xcfc
    in ax, dx
    or ax, 2                            ; command: memory space enable
    out dx, ax
    ; The BAR decodes 16 MiB, so its address is 16 MiB-aligned: 01000000h, where the
    ; victim's tables are in host-physical terms.
    mov eax, 0x01000000
    call set_vga_bar
    mov edi, 0x01001000
    call probe
    PRINT "attack: VGA framebuffer BAR moved to 01000000, 01001000:"
    mov eax, [last_class]
    call print_class
    mov eax, 0xe0000000
    call set_vga_bar
    mov edi, 0x01001000
    call probe
    PRINT "attack: VGA framebuffer BAR moved back to e0000000, 01001000:"
    mov eax, [last_class]
    call print_class
    call print_counts
    PRINTLN "attack: step 3 done"
    ret

; VGA BAR 0 := EAX.
set_vga_bar:
    push eax
    mov dx, 0xcf8
    mov eax, 0x80001010
    out dx, eax
    pop eax
    mov dx, 0xcfc
    out dx, eax
    ret

; Four bytes of the selected fw_cfg item into EAX (little-endian as read).
fw_cfg_dword:
    push ecx
    push edx
    mov dx, FW_CFG_DATA
    mov ecx, 4
.b:
    in al, dx
    ror eax, 8
    loop .b
    pop edx
    pop ecx
    ret

; Program 8237A channel 2: address EAX (24 bits), ECX bytes, mode BL (8237A datasheet,
; "Mode Register"; the page register 81h holds A23-A16).
dma2:
    push eax
    push ecx
    push eax
    mov al, 0x06                        ; mask channel 2
    out 0x0a, al
    out 0x0c, al                        ; clear the byte-pointer flip-flop
    mov al, bl
    or al, 2
    out 0x0b, al
    pop eax
    out 0x04, al
    mov al, ah
    out 0x04, al
    shr eax, 16
    out 0x81, al
    dec ecx
    mov al, cl
    out 0x05, al
    mov al, ch
    out 0x05, al
    mov al, 0x02                        ; unmask channel 2
    out 0x0a, al
    pop ecx
    pop eax
    ret

; A one-sector floppy command AL (READ or WRITE DATA) for sector AH of cylinder 0, head 0,
; drive 0, 512-byte sectors, 18 per track (82077AA datasheet Table 5-1), and its seven
; result bytes, which are kept in fdc_result.
fdc_rw:
    push esi
    push edi
    push ecx
    mov [fdc_cmd], al
    mov [fdc_cmd + 4], ah
    mov esi, fdc_cmd
    mov ecx, 9
.send:
    call fdc_wait_rqm
    jc .timeout
    and al, 0x40                        ; DIO must say host -> controller
    jnz .timeout
    lodsb
    mov dx, FDC_FIFO
    out dx, al
    loop .send
    mov edi, fdc_result
    mov ecx, 7
.result:
    call fdc_wait_rqm
    jc .timeout
    and al, 0x40
    jz .timeout
    mov dx, FDC_FIFO
    in al, dx
    stosb
    loop .result
    pop ecx
    pop edi
    pop esi
    ret
.timeout:
    PRINTLN "attack: FAILED: the floppy controller did not answer"
    pop ecx
    pop edi
    pop esi
    ret

; Wait for RQM in the main status register; AL = MSR. CF = 1 on timeout.
fdc_wait_rqm:
    push ecx
    mov ecx, 10000
    mov dx, FDC_MSR
.w:
    in al, dx
    test al, 0x80
    jnz .ok
    loop .w
    pop ecx
    stc
    ret
.ok:
    pop ecx
    clc
    ret

; ---- Step 4: the VMM's control structures -----------------------------------------------

step4:
    PRINTLN "attack: step 4: control-block tampering"
    xor ebx, ebx
.target:
    cmp ebx, [target_count]
    jae .targets_done
    mov edi, [targets + ebx * 4]
    mov eax, ebx
    PRINTHEX "attack: target "
    mov eax, edi
    PRINTHEX " at "
    cmp edi, RAM_END
    jae .outside
    ; Inside own RAM as a guest-physical address: only own memory. (The image and the
    ; page tables are skipped.)
    cmp edi, 0x00100000
    jb .own
    cmp edi, 0x00400000
    jb .skip
.own:
    mov dword [edi], 0x7a7a7a7a
    PRINTLN ": inside own RAM, written there"
    jmp .next_target
.skip:
    PRINTLN ": inside own image, skipped"
    jmp .next_target
.outside:
    call probe
    PRINT ":"
    mov eax, [last_class]
    call print_class
.next_target:
    inc ebx
    jmp .target
.targets_done:

    ; A forged VCB: the victim's tag (1), the victim's RAM as SLT root, its I/O bitmap.
    mov edi, FORGED_VCB
    mov ecx, 1024
    xor eax, eax
    rep stosd
    mov word [FORGED_VCB + 0x004], 1                    ; VTAG (docs/v386.md §4.2)
    mov eax, [targets + 0 * 4]
    mov [FORGED_VCB + 0x020], eax                       ; SLT_ROOT
    mov eax, [targets + 3 * 4]
    mov [FORGED_VCB + 0x018], eax                       ; IO_BITMAP_ADDR
    mov dword [last_vector], 0xffffffff
    mov dword [recover], .after_vmenter
    mov eax, FORGED_VCB
    db 0x0f, 0x0a                       ; VMENTER (docs/v386.md §7.1)
    mov dword [recover], 0
    PRINTHEX "attack: ODD: VMENTER returned, EAX = "
    call newline
    jmp .vcall
.after_vmenter:
    mov eax, [last_vector]
    PRINTHEX "attack: VMENTER with a forged VCB raised vector "
    call newline

.vcall:
    xor eax, eax                        ; VERSION
    db 0x0f, 0x0c                       ; VCALL (docs/v386.md §7.2)
    PRINTHEX "attack: VCALL 0 returned "
    mov eax, 0xdeadbeef
    db 0x0f, 0x0c
    PRINTHEX ", VCALL deadbeef returned "
    call newline

    ; An MSR nobody has: #GP(0).
    mov dword [recover], .after_msr
    mov ecx, 0x12345678
    rdmsr
    mov dword [recover], 0
    PRINTLN "attack: ODD: RDMSR 12345678 did not fault"
.after_msr:
    mov eax, [last_vector]
    PRINTHEX "attack: RDMSR 12345678 raised vector "
    call newline
    call print_counts
    PRINTLN "attack: step 4 done"
    ret

; ---- Step 5: PAE with a frame above 4 GiB -----------------------------------------------

step5:
    PRINTLN "attack: step 5: PAE paging with a PTE whose frame is at 4 GiB"
    mov edi, PDPT
    mov ecx, 3 * 1024
    xor eax, eax
    rep stosd
    mov dword [PDPT], PD_PAE | PG_P
    ; PDEs 0-3: 2 MiB pages, identity over the first 8 MiB; PDE 4: the page table.
    xor ecx, ecx
.pde:
    mov eax, ecx
    shl eax, 21
    or eax, PG_PS | PG_RW | PG_P
    mov [PD_PAE + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb .pde
    mov dword [PD_PAE + 4 * 8], PT_PAE | PG_RW | PG_P
    mov dword [PT_PAE], 0x00000000 | PG_RW | PG_P
    mov dword [PT_PAE + 4], 0x00000001  ; frame 1_0000_0000h
    mov eax, PDPT
    mov cr3, eax
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax
    PRINTLN "attack: PAE paging on"
    PRINTLN "attack: the next access is expected to stop this VM (guest-physical 100000000)"
    mov eax, [0x00800000]
    PRINTHEX "attack: UNEXPECTED: still running after reading guest-physical 100000000: "
    call newline
    ; Still here: end with a triple fault (no IDT), another contained stop.
    lidt [null_idt]
    int3
    jmp $

; ---- Probing ----------------------------------------------------------------------------

; Probe the dword at EDI (see the header): updates the counters and last_class (0 open
; bus, 1 own device, 2 ODD), prints ODD outcomes.
probe:
    push eax
    push edx
    mov edx, [edi]                      ; before
    mov eax, edi
    xor eax, MARK_XOR
    mov [edi], eax
    mov eax, [edi]                      ; after
    cmp edx, OPEN_BUS
    jne .not_open
    cmp eax, OPEN_BUS
    jne .not_open
    inc dword [n_open]
    mov dword [last_class], 0
    jmp .done
.not_open:
    push edx
    mov edx, edi
    xor edx, MARK_XOR
    cmp eax, edx
    pop edx
    jne .odd
    inc dword [n_dev]
    mov dword [last_class], 1
    jmp .done
.odd:
    inc dword [n_odd]
    mov dword [last_class], 2
    push eax
    mov eax, edi
    PRINTHEX "attack: ODD at "
    mov eax, edx
    PRINTHEX ": before "
    pop eax
    PRINTHEX " after "
    call newline
.done:
    pop edx
    pop eax
    ret

; Print " open bus" / " own device" / " ODD" for class EAX, and a newline.
print_class:
    cmp eax, 0
    jne .c1
    PRINTLN " open bus"
    ret
.c1:
    cmp eax, 1
    jne .c2
    PRINTLN " own device"
    ret
.c2:
    PRINTLN " ODD"
    ret

; Print and reset the probe counters.
print_counts:
    push eax
    mov eax, [n_open]
    PRINT "attack: probes: "
    call put_dec
    mov eax, [n_dev]
    PRINT " open bus, "
    call put_dec
    mov eax, [n_odd]
    PRINT " own device, "
    call put_dec
    PRINTLN " odd"
    mov dword [n_open], 0
    mov dword [n_dev], 0
    mov dword [n_odd], 0
    pop eax
    ret

; ---- Exceptions -------------------------------------------------------------------------

%macro ISR 1
isr_%1:
%if %1 = 8 || (%1 >= 10 && %1 <= 14) || %1 = 17
%else
    push dword 0                        ; no error code: keep the frame uniform
%endif
    push dword %1
    jmp isr_common
%endmacro

%assign v 0
%rep 32
ISR v
%assign v v + 1
%endrep

; Stack: EDI..EAX (PUSHAD), vector, error code, EIP, CS, EFLAGS.
isr_common:
    pushad
    mov eax, [esp + 32]
    mov [last_vector], eax
    PRINTHEX "attack: exception "
    mov eax, [esp + 36]
    PRINTHEX " error "
    mov eax, [esp + 40]
    PRINTHEX " at "
    call newline
    mov eax, [recover]
    test eax, eax
    jz .fatal
    mov [esp + 40], eax
    mov dword [recover], 0
    popad
    add esp, 8
    iret
.fatal:
    PRINTLN "attack: FAILED: unexpected exception, stopping"
    cli
    hlt
    jmp .fatal

build_idt:
    mov esi, isr_table
    mov edi, idt
    mov ecx, 32
.e:
    lodsd
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00          ; present, DPL 0, 32-bit interrupt gate
    shr eax, 16
    mov [edi + 6], ax
    add edi, 8
    loop .e
    ret

; ---- Debug-console output ---------------------------------------------------------------

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

put_dec:
    push eax
    push ebx
    push ecx
    push edx
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
    pop edx
    pop ecx
    pop ebx
    pop eax
    ret

; ---- Data -------------------------------------------------------------------------------

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff               ; 08h: flat 32-bit code
    dq 0x00cf92000000ffff               ; 10h: flat 32-bit data
gdt_desc:
    dw 3 * 8 - 1
    dd gdt
idt_desc:
    dw 32 * 8 - 1
    dd idt
null_idt:
    dw 0
    dd 0

isr_table:
%assign v 0
%rep 32
    dd isr_%[v]
%assign v v + 1
%endrep

; PT_ATT's fixed frames (PTE i maps ATT_LIN + i * 4096): its own page directory and page
; table, its last RAM page, then frames outside RAM — just past the end, 16 MiB, the start
; of the VMM's device windows (C0000000h) and the first two VMs' windows, the top page, and
; pages in the holes below the APICs and below the device windows.
att_frames:
    dd PD32, PT_ATT, RAM_END - 0x1000, RAM_END
    dd 0x01000000, 0xc0000000, 0xc4000000, 0xc8000000, 0xfffff000, 0xf0000000, 0xbffff000
ATT_FIXED equ ($ - att_frames) / 4

; Step 3's DMA targets beyond RAM (0-terminated).
dma_wild:
    dd RAM_END, 0x00f00000, 0x00fffe00, 0

fdc_cmd:        db FDC_READ, 0x00, 0, 0, 1, 2, 18, 0x1b, 0xff
hex_digits:     db "0123456789abcdef"

align 4
file_end:

; ---- BSS --------------------------------------------------------------------------------

absolute file_end
alignb 8
idt:            resb 32 * 8
recover:        resd 1
last_vector:    resd 1
last_class:     resd 1
n_open:         resd 1
n_dev:          resd 1
n_odd:          resd 1
lapic_version:  resd 1
apic_base:      resd 1
fdc_result:     resb 8
alignb 16
                resb 8192
stack_top:
bss_end:
