//! The V386 control block (VCB) of docs/v386.md §4: its byte layout in memory and a typed
//! Rust copy of it. A host written in x86 code hands the processor a 4 KiB page in
//! memory (`VMENTER` reads and writes it through [`Vcb::read`] and [`Vcb::write`]); a
//! host written in Rust (`src/vmm/`) keeps a [`Vcb`] value and never serialises it. Both
//! go through the same entry and exit code in `super`.

use crate::cpu::fpu::{env, Fpu};
use crate::cpu::{Seg, TableReg};
use serde::{Deserialize, Serialize};

/// Size and alignment of a VCB (§4.1, §4.7).
pub const VCB_SIZE: usize = 4096;
/// The VCB revision this processor implements (`CPUID.8386_0001H:EAX[7:0]`, §2).
pub const REVISION: u32 = 1;

/// Byte offsets of the control and exit-information fields (§4.2, §4.4).
pub mod off {
    pub const REVISION: usize = 0x000;
    pub const VTAG: usize = 0x004;
    pub const TLB_CONTROL: usize = 0x006;
    pub const EXEC_CONTROLS: usize = 0x008;
    pub const INSTR_INTERCEPTS: usize = 0x00c;
    pub const EXCEPTION_BITMAP: usize = 0x010;
    pub const CR_READ_INTERCEPT: usize = 0x014;
    pub const CR_WRITE_INTERCEPT: usize = 0x015;
    pub const DR_READ_INTERCEPT: usize = 0x016;
    pub const DR_WRITE_INTERCEPT: usize = 0x017;
    pub const IO_BITMAP_ADDR: usize = 0x018;
    pub const SLT_ROOT: usize = 0x020;
    pub const TSC_OFFSET: usize = 0x028;
    pub const PREEMPT_TIMER: usize = 0x030;
    pub const EVENT_INJECT: usize = 0x034;
    pub const EVENT_ERROR_CODE: usize = 0x038;
    pub const EVENT_INSTR_LEN: usize = 0x03c;
    /// 040–0BF: reserved, must be zero (entry check, Table 9-1 error 4).
    pub const RESERVED: usize = 0x040;
    pub const RESERVED_END: usize = 0x0c0;
    pub const SOFTWARE: usize = 0x0c0;
    /// Start of the guest-state area (§4.3) and of the host-save area (§4.5).
    pub const GUEST: usize = 0x100;
    pub const HOST: usize = 0x400;
    pub const EXIT_REASON: usize = 0x300;
    pub const ENTRY_FAILURE_CHECK: usize = 0x304;
    pub const EXIT_QUALIFICATION: usize = 0x308;
    pub const GUEST_LINEAR_ADDRESS: usize = 0x310;
    pub const EXIT_INSTR_LEN: usize = 0x314;
    pub const GUEST_PHYSICAL_ADDRESS: usize = 0x318;
    pub const EXIT_INTR_INFO: usize = 0x320;
    pub const EXIT_INTR_ERROR_CODE: usize = 0x324;
    pub const IDT_VECTORING_INFO: usize = 0x328;
    pub const IDT_VECTORING_ERROR_CODE: usize = 0x32c;
    pub const EXIT_INSTR_BYTES: usize = 0x330;
    pub const GUEST_RETIRED: usize = 0x340;
}

/// Offsets inside a state area, relative to its start (guest 100H, host 400H): the two
/// areas share this layout except where [`StateLayout`] says otherwise (§4.3, §4.5).
mod rel {
    pub const REGS: usize = 0x00;
    pub const EIP: usize = 0x20;
    pub const EFLAGS: usize = 0x24;
    pub const CR0: usize = 0x28;
    pub const CR2: usize = 0x2c;
    pub const CR3: usize = 0x30;
    pub const CR4: usize = 0x34;
    pub const DR0: usize = 0x38;
    pub const DR6: usize = 0x48;
    pub const DR7: usize = 0x4c;
    /// ES, CS, SS, DS, FS, GS, LDTR, TR: 16-byte records.
    pub const SEGS: usize = 0x50;
    pub const GDTR: usize = 0xd0;
    pub const IDTR: usize = 0xd8;
    pub const EFER: usize = 0xf0;
    pub const PDPTE: usize = 0x100;
    pub const FPU: usize = 0x120;
}

/// Where the two areas differ: the CPL, the SYSENTER MSRs and the fields only a guest has.
struct StateLayout {
    base: usize,
    cpl: usize,
    sysenter: usize,
    /// Activity state and interruptibility (guest area only).
    activity: Option<usize>,
}

const GUEST_LAYOUT: StateLayout = StateLayout { base: off::GUEST, cpl: 0x1e0, sysenter: 0x1e4, activity: Some(0x1e1) };
const HOST_LAYOUT: StateLayout = StateLayout { base: off::HOST, cpl: 0x4ec, sysenter: 0x4e0, activity: None };

/// Size of the x87 image in a state area: the 32-bit protected-mode FSAVE format.
pub const FPU_IMAGE: usize = 108;

/// Table 4-1, `EXEC_CONTROLS`.
pub mod exec {
    pub const EXTINT_EXIT: u32 = 1 << 0;
    pub const NMI_EXIT: u32 = 1 << 1;
    pub const INTWIN_EXIT: u32 = 1 << 2;
    pub const PTIMER: u32 = 1 << 3;
    pub const FPU_SWAP: u32 = 1 << 4;
    pub const SLT_AD: u32 = 1 << 5;
    pub const DEFINED: u32 = (1 << 6) - 1;
}

/// Table 4-2, `INSTR_INTERCEPTS`.
pub mod intercept {
    pub const HLT: u32 = 1 << 0;
    pub const INVLPG: u32 = 1 << 1;
    pub const RDTSC: u32 = 1 << 2;
    pub const RDPMC: u32 = 1 << 3;
    pub const RDMSR: u32 = 1 << 4;
    pub const WRMSR: u32 = 1 << 5;
    pub const WBINVD: u32 = 1 << 6;
    pub const DESC_LOAD: u32 = 1 << 7;
    pub const DESC_STORE: u32 = 1 << 8;
    pub const CLI_STI: u32 = 1 << 9;
    pub const PUSHF_POPF: u32 = 1 << 10;
    pub const IRET: u32 = 1 << 11;
    pub const INT_N: u32 = 1 << 12;
    pub const TASK_SWITCH: u32 = 1 << 13;
    pub const DEFINED: u32 = (1 << 14) - 1;
}

/// Guest interruptibility bits (offset 1E2H).
pub mod interruptibility {
    pub const STI: u8 = 1 << 0;
    pub const MOV_SS: u8 = 1 << 1;
    pub const NMI: u8 = 1 << 2;
}

/// The control area (§4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    pub revision: u32,
    pub vtag: u16,
    pub tlb_control: u8,
    pub exec: u32,
    pub intercepts: u32,
    pub exception_bitmap: u32,
    pub cr_read: u8,
    pub cr_write: u8,
    pub dr_read: u8,
    pub dr_write: u8,
    pub io_bitmap: u64,
    pub slt_root: u64,
    pub tsc_offset: u64,
    pub preempt_timer: u32,
    pub event_inject: u32,
    pub event_error_code: u32,
    pub event_instr_len: u32,
    /// Some byte of the reserved range 040H–0BFH is not zero (entry check error 4).
    pub reserved_nonzero: bool,
    #[serde(with = "serde_big_array::BigArray")]
    pub software: [u8; 64],
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            revision: REVISION,
            vtag: 1,
            tlb_control: 0,
            exec: 0,
            intercepts: 0,
            exception_bitmap: 0,
            cr_read: 0,
            cr_write: 0,
            dr_read: 0,
            dr_write: 0,
            io_bitmap: 0,
            slt_root: 0,
            tsc_offset: 0,
            preempt_timer: 0,
            event_inject: 0,
            event_error_code: 0,
            event_instr_len: 0,
            reserved_nonzero: false,
            software: [0; 64],
        }
    }
}

/// A processor state as the guest-state area (§4.3) and the host-save area (§4.5) hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub regs: [u32; 8],
    pub eip: u32,
    pub eflags: u32,
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    /// DR0–DR3, then DR6 and DR7 (`dr[4]`, `dr[5]`).
    pub dr: [u32; 6],
    /// ES, CS, SS, DS, FS, GS.
    pub segs: [Seg; 6],
    pub ldtr: Seg,
    pub tr: Seg,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub cpl: u8,
    /// 0 active, 1 HLT (guest area only).
    pub activity: u8,
    /// [`interruptibility`] bits (guest area only).
    pub interruptibility: u8,
    pub sysenter_cs: u32,
    pub sysenter_esp: u32,
    pub sysenter_eip: u32,
    pub efer: u64,
    pub pdpte: [u64; 4],
    pub fpu: Fpu,
}

impl Default for State {
    /// The state of a processor after reset (SDM Vol. 3A §9.1.1, Table 9-1), real mode at
    /// F000:FFF0, as a guest starts when a VMM gives it a BIOS.
    fn default() -> Self {
        let mut cs = Seg::real(0xf000);
        cs.base = 0xffff_0000;
        State {
            regs: [0; 8],
            eip: 0xfff0,
            eflags: 2,
            cr0: crate::cpu::cr0::ET,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0, 0, 0, 0, 0xffff_0ff0, 0x400],
            segs: [Seg::real(0), cs, Seg::real(0), Seg::real(0), Seg::real(0), Seg::real(0)],
            ldtr: ldt_reset(),
            tr: tr_reset(),
            gdtr: TableReg { base: 0, limit: 0xffff },
            idtr: TableReg { base: 0, limit: 0xffff },
            cpl: 0,
            activity: 0,
            interruptibility: 0,
            sysenter_cs: 0,
            sysenter_esp: 0,
            sysenter_eip: 0,
            efer: 0,
            pdpte: [0; 4],
            fpu: Fpu::new(),
        }
    }
}

/// LDTR after reset: an LDT descriptor cache with base 0, limit FFFFH (Table 9-1).
fn ldt_reset() -> Seg {
    Seg { sel: 0, base: 0, limit: 0xffff, access: 0x82, flags: 0, valid: true }
}

/// TR after reset: a busy 32-bit TSS cache with base 0, limit FFFFH (Table 9-1).
fn tr_reset() -> Seg {
    Seg { sel: 0, base: 0, limit: 0xffff, access: 0x8b, flags: 0, valid: true }
}

/// The exit-information area (§4.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Bits 15:0 the basic reason (Table 8-1); bit 31 an entry failure.
    pub reason: u32,
    pub entry_failure_check: u32,
    pub qualification: u64,
    pub guest_linear: u32,
    pub instr_len: u32,
    pub guest_physical: u64,
    pub intr_info: u32,
    pub intr_error_code: u32,
    pub idt_vectoring_info: u32,
    pub idt_vectoring_error_code: u32,
    pub instr_bytes: [u8; 16],
    pub guest_retired: u64,
}

/// A whole VCB.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vcb {
    pub controls: Controls,
    pub guest: State,
    pub exit: ExitInfo,
    /// The host-save area: written at entry by `VMENTER`, unused by a Rust host.
    pub host: State,
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn rd64(b: &[u8], o: usize) -> u64 {
    rd32(b, o) as u64 | (rd32(b, o + 4) as u64) << 32
}
fn wr16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn wr32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn wr64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// Attribute word of a segment record (§4.3): access byte, flags nibble, bit 15 unusable.
pub fn seg_attributes(s: &Seg) -> u16 {
    s.access as u16 | ((s.flags as u16 & 0xf) << 8) | if s.valid { 0 } else { 0x8000 }
}

fn read_seg(b: &[u8], o: usize) -> Seg {
    let attr = rd16(b, o + 2);
    Seg {
        sel: rd16(b, o),
        access: attr as u8,
        flags: ((attr >> 8) & 0xf) as u8,
        valid: attr & 0x8000 == 0,
        base: rd32(b, o + 4),
        limit: rd32(b, o + 8),
    }
}

fn write_seg(b: &mut [u8], o: usize, s: &Seg) {
    wr16(b, o, s.sel);
    wr16(b, o + 2, seg_attributes(s));
    wr32(b, o + 4, s.base);
    wr32(b, o + 8, s.limit);
    wr32(b, o + 12, 0);
}

/// The raw attribute word of a record, for the entry checks on its reserved bits.
pub fn raw_attributes(b: &[u8; VCB_SIZE], area: usize, index: usize) -> u16 {
    rd16(b, area + rel::SEGS + 16 * index + 2)
}

impl State {
    fn read(b: &[u8], l: &StateLayout, fpu: bool) -> State {
        let base = l.base;
        let mut s = State::default();
        for (i, r) in s.regs.iter_mut().enumerate() {
            *r = rd32(b, base + rel::REGS + 4 * i);
        }
        s.eip = rd32(b, base + rel::EIP);
        s.eflags = rd32(b, base + rel::EFLAGS);
        s.cr0 = rd32(b, base + rel::CR0);
        s.cr2 = rd32(b, base + rel::CR2);
        s.cr3 = rd32(b, base + rel::CR3);
        s.cr4 = rd32(b, base + rel::CR4);
        for i in 0..4 {
            s.dr[i] = rd32(b, base + rel::DR0 + 4 * i);
        }
        s.dr[4] = rd32(b, base + rel::DR6);
        s.dr[5] = rd32(b, base + rel::DR7);
        for i in 0..6 {
            s.segs[i] = read_seg(b, base + rel::SEGS + 16 * i);
        }
        s.ldtr = read_seg(b, base + rel::SEGS + 16 * 6);
        s.tr = read_seg(b, base + rel::SEGS + 16 * 7);
        s.gdtr = TableReg { base: rd32(b, base + rel::GDTR), limit: rd16(b, base + rel::GDTR + 4) };
        s.idtr = TableReg { base: rd32(b, base + rel::IDTR), limit: rd16(b, base + rel::IDTR + 4) };
        s.cpl = b[l.cpl];
        if let Some(a) = l.activity {
            s.activity = b[a];
            s.interruptibility = b[a + 1];
        }
        s.sysenter_cs = rd32(b, l.sysenter);
        s.sysenter_esp = rd32(b, l.sysenter + 4);
        s.sysenter_eip = rd32(b, l.sysenter + 8);
        s.efer = rd64(b, base + rel::EFER);
        for i in 0..4 {
            s.pdpte[i] = rd64(b, base + rel::PDPTE + 8 * i);
        }
        if fpu {
            env::load_state(&mut s.fpu, true, true, &b[base + rel::FPU..base + rel::FPU + FPU_IMAGE]);
        }
        s
    }

    fn write(&self, b: &mut [u8], l: &StateLayout, fpu: bool) {
        let base = l.base;
        for (i, r) in self.regs.iter().enumerate() {
            wr32(b, base + rel::REGS + 4 * i, *r);
        }
        wr32(b, base + rel::EIP, self.eip);
        wr32(b, base + rel::EFLAGS, self.eflags);
        wr32(b, base + rel::CR0, self.cr0);
        wr32(b, base + rel::CR2, self.cr2);
        wr32(b, base + rel::CR3, self.cr3);
        wr32(b, base + rel::CR4, self.cr4);
        for i in 0..4 {
            wr32(b, base + rel::DR0 + 4 * i, self.dr[i]);
        }
        wr32(b, base + rel::DR6, self.dr[4]);
        wr32(b, base + rel::DR7, self.dr[5]);
        for i in 0..6 {
            write_seg(b, base + rel::SEGS + 16 * i, &self.segs[i]);
        }
        write_seg(b, base + rel::SEGS + 16 * 6, &self.ldtr);
        write_seg(b, base + rel::SEGS + 16 * 7, &self.tr);
        wr32(b, base + rel::GDTR, self.gdtr.base);
        wr16(b, base + rel::GDTR + 4, self.gdtr.limit);
        wr32(b, base + rel::IDTR, self.idtr.base);
        wr16(b, base + rel::IDTR + 4, self.idtr.limit);
        b[l.cpl] = self.cpl;
        if let Some(a) = l.activity {
            b[a] = self.activity;
            b[a + 1] = self.interruptibility;
        }
        wr32(b, l.sysenter, self.sysenter_cs);
        wr32(b, l.sysenter + 4, self.sysenter_esp);
        wr32(b, l.sysenter + 8, self.sysenter_eip);
        wr64(b, base + rel::EFER, self.efer);
        for i in 0..4 {
            wr64(b, base + rel::PDPTE + 8 * i, self.pdpte[i]);
        }
        if fpu {
            env::store_state(
                &self.fpu,
                true,
                true,
                self.fpu.fip,
                self.fpu.fdp,
                &mut b[base + rel::FPU..base + rel::FPU + FPU_IMAGE],
            );
        }
    }
}

impl Controls {
    fn read(b: &[u8]) -> Controls {
        let mut software = [0u8; 64];
        software.copy_from_slice(&b[off::SOFTWARE..off::SOFTWARE + 64]);
        Controls {
            revision: rd32(b, off::REVISION),
            vtag: rd16(b, off::VTAG),
            tlb_control: b[off::TLB_CONTROL],
            exec: rd32(b, off::EXEC_CONTROLS),
            intercepts: rd32(b, off::INSTR_INTERCEPTS),
            exception_bitmap: rd32(b, off::EXCEPTION_BITMAP),
            cr_read: b[off::CR_READ_INTERCEPT],
            cr_write: b[off::CR_WRITE_INTERCEPT],
            dr_read: b[off::DR_READ_INTERCEPT],
            dr_write: b[off::DR_WRITE_INTERCEPT],
            io_bitmap: rd64(b, off::IO_BITMAP_ADDR),
            slt_root: rd64(b, off::SLT_ROOT),
            tsc_offset: rd64(b, off::TSC_OFFSET),
            preempt_timer: rd32(b, off::PREEMPT_TIMER),
            event_inject: rd32(b, off::EVENT_INJECT),
            event_error_code: rd32(b, off::EVENT_ERROR_CODE),
            event_instr_len: rd32(b, off::EVENT_INSTR_LEN),
            reserved_nonzero: b[off::RESERVED..off::RESERVED_END].iter().any(|&x| x != 0) || b[0x007] != 0,
            software,
        }
    }

    fn write(&self, b: &mut [u8]) {
        wr32(b, off::REVISION, self.revision);
        wr16(b, off::VTAG, self.vtag);
        b[off::TLB_CONTROL] = self.tlb_control;
        wr32(b, off::EXEC_CONTROLS, self.exec);
        wr32(b, off::INSTR_INTERCEPTS, self.intercepts);
        wr32(b, off::EXCEPTION_BITMAP, self.exception_bitmap);
        b[off::CR_READ_INTERCEPT] = self.cr_read;
        b[off::CR_WRITE_INTERCEPT] = self.cr_write;
        b[off::DR_READ_INTERCEPT] = self.dr_read;
        b[off::DR_WRITE_INTERCEPT] = self.dr_write;
        wr64(b, off::IO_BITMAP_ADDR, self.io_bitmap);
        wr64(b, off::SLT_ROOT, self.slt_root);
        wr64(b, off::TSC_OFFSET, self.tsc_offset);
        wr32(b, off::PREEMPT_TIMER, self.preempt_timer);
        wr32(b, off::EVENT_INJECT, self.event_inject);
        wr32(b, off::EVENT_ERROR_CODE, self.event_error_code);
        wr32(b, off::EVENT_INSTR_LEN, self.event_instr_len);
        b[off::SOFTWARE..off::SOFTWARE + 64].copy_from_slice(&self.software);
    }
}

impl ExitInfo {
    fn read(b: &[u8]) -> ExitInfo {
        let mut instr_bytes = [0u8; 16];
        instr_bytes.copy_from_slice(&b[off::EXIT_INSTR_BYTES..off::EXIT_INSTR_BYTES + 16]);
        ExitInfo {
            reason: rd32(b, off::EXIT_REASON),
            entry_failure_check: rd32(b, off::ENTRY_FAILURE_CHECK),
            qualification: rd64(b, off::EXIT_QUALIFICATION),
            guest_linear: rd32(b, off::GUEST_LINEAR_ADDRESS),
            instr_len: rd32(b, off::EXIT_INSTR_LEN),
            guest_physical: rd64(b, off::GUEST_PHYSICAL_ADDRESS),
            intr_info: rd32(b, off::EXIT_INTR_INFO),
            intr_error_code: rd32(b, off::EXIT_INTR_ERROR_CODE),
            idt_vectoring_info: rd32(b, off::IDT_VECTORING_INFO),
            idt_vectoring_error_code: rd32(b, off::IDT_VECTORING_ERROR_CODE),
            instr_bytes,
            guest_retired: rd64(b, off::GUEST_RETIRED),
        }
    }

    fn write(&self, b: &mut [u8]) {
        wr32(b, off::EXIT_REASON, self.reason);
        wr32(b, off::ENTRY_FAILURE_CHECK, self.entry_failure_check);
        wr64(b, off::EXIT_QUALIFICATION, self.qualification);
        wr32(b, off::GUEST_LINEAR_ADDRESS, self.guest_linear);
        wr32(b, off::EXIT_INSTR_LEN, self.instr_len);
        wr64(b, off::GUEST_PHYSICAL_ADDRESS, self.guest_physical);
        wr32(b, off::EXIT_INTR_INFO, self.intr_info);
        wr32(b, off::EXIT_INTR_ERROR_CODE, self.intr_error_code);
        wr32(b, off::IDT_VECTORING_INFO, self.idt_vectoring_info);
        wr32(b, off::IDT_VECTORING_ERROR_CODE, self.idt_vectoring_error_code);
        b[off::EXIT_INSTR_BYTES..off::EXIT_INSTR_BYTES + 16].copy_from_slice(&self.instr_bytes);
        wr64(b, off::GUEST_RETIRED, self.guest_retired);
    }
}

impl Vcb {
    /// Decode a VCB page. The FPU images are read only when `FPU_SWAP` is set.
    pub fn read(b: &[u8; VCB_SIZE]) -> Vcb {
        let controls = Controls::read(b);
        let fpu = controls.exec & exec::FPU_SWAP != 0;
        Vcb {
            guest: State::read(b, &GUEST_LAYOUT, fpu),
            host: State::read(b, &HOST_LAYOUT, fpu),
            exit: ExitInfo::read(b),
            controls,
        }
    }

    /// Encode into a VCB page, leaving the reserved bytes as they are.
    pub fn write(&self, b: &mut [u8; VCB_SIZE]) {
        let fpu = self.controls.exec & exec::FPU_SWAP != 0;
        self.controls.write(b);
        self.guest.write(b, &GUEST_LAYOUT, fpu);
        self.host.write(b, &HOST_LAYOUT, fpu);
        self.exit.write(b);
    }

    /// Only what an exit changes: the control fields the processor writes back
    /// (`TLB_CONTROL`, `PREEMPT_TIMER`, `EVENT_INJECT`), the guest state, the exit
    /// information and the host-save area.
    pub fn write_exit(&self, b: &mut [u8; VCB_SIZE]) {
        b[off::TLB_CONTROL] = self.controls.tlb_control;
        wr32(b, off::PREEMPT_TIMER, self.controls.preempt_timer);
        wr32(b, off::EVENT_INJECT, self.controls.event_inject);
        let fpu = self.controls.exec & exec::FPU_SWAP != 0;
        self.guest.write(b, &GUEST_LAYOUT, fpu);
        self.exit.write(b);
    }

    /// Write only the host-save area (at entry).
    pub fn write_host(&self, b: &mut [u8; VCB_SIZE]) {
        let fpu = self.controls.exec & exec::FPU_SWAP != 0;
        self.host.write(b, &HOST_LAYOUT, fpu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every offset of docs/v386.md §4 against the encoder: write a distinct value into
    /// each field and find it at the documented offset.
    #[test]
    fn layout_matches_the_specification() {
        let mut v = Vcb::default();
        v.controls.vtag = 0x0abc;
        v.controls.tlb_control = 3;
        v.controls.exec = 0x11;
        v.controls.intercepts = 0x2222;
        v.controls.exception_bitmap = 0x3333_3333;
        v.controls.cr_read = 0x14;
        v.controls.cr_write = 0x15;
        v.controls.dr_read = 0x16;
        v.controls.dr_write = 0x17;
        v.controls.io_bitmap = 0x1_2345_6000;
        v.controls.slt_root = 0x7_8900_0000;
        v.controls.tsc_offset = 0x0102_0304_0506_0708;
        v.controls.preempt_timer = 0x3030_3030;
        v.controls.event_inject = 0x8000_0b0e;
        v.controls.event_error_code = 0x38;
        v.controls.event_instr_len = 2;
        v.guest.regs = [0x100, 0x104, 0x108, 0x10c, 0x110, 0x114, 0x118, 0x11c];
        v.guest.eip = 0x120;
        v.guest.eflags = 0x124;
        v.guest.cr0 = 0x128;
        v.guest.cr2 = 0x12c;
        v.guest.cr3 = 0x130;
        v.guest.cr4 = 0x134;
        v.guest.dr = [0x138, 0x13c, 0x140, 0x144, 0x148, 0x14c];
        v.guest.segs[1] = Seg { sel: 0x160, base: 0x164, limit: 0x168, access: 0x9b, flags: 0xc, valid: true };
        v.guest.tr = Seg { sel: 0x1c0, base: 0x1c4, limit: 0x1c8, access: 0x8b, flags: 0, valid: false };
        v.guest.gdtr = TableReg { base: 0x1d0, limit: 0x1d4 };
        v.guest.idtr = TableReg { base: 0x1d8, limit: 0x1dc };
        v.guest.cpl = 3;
        v.guest.activity = 1;
        v.guest.interruptibility = 2;
        v.guest.sysenter_cs = 0x1e4;
        v.guest.sysenter_esp = 0x1e8;
        v.guest.sysenter_eip = 0x1ec;
        v.guest.efer = 0x800;
        v.guest.pdpte = [0x200, 0x208, 0x210, 0x218];
        v.exit.reason = 0x8000_0021;
        v.exit.entry_failure_check = 0x304;
        v.exit.qualification = 0x308;
        v.exit.guest_linear = 0x310;
        v.exit.instr_len = 0x314;
        v.exit.guest_physical = 0x318;
        v.exit.intr_info = 0x320;
        v.exit.intr_error_code = 0x324;
        v.exit.idt_vectoring_info = 0x328;
        v.exit.idt_vectoring_error_code = 0x32c;
        v.exit.instr_bytes = [0x0f, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        v.exit.guest_retired = 0x340;
        v.host.regs[0] = 0x400;
        v.host.eip = 0x420;
        v.host.eflags = 0x424;
        v.host.cr0 = 0x428;
        v.host.cr4 = 0x434;
        v.host.dr[5] = 0x44c;
        v.host.segs[0].sel = 0x450;
        v.host.tr.sel = 0x4c0;
        v.host.gdtr.base = 0x4d0;
        v.host.idtr.base = 0x4d8;
        v.host.sysenter_cs = 0x4e0;
        v.host.sysenter_eip = 0x4e8;
        v.host.efer = 0x4f0;
        v.host.pdpte[3] = 0x518;
        let mut b = [0u8; VCB_SIZE];
        v.write(&mut b);
        let d = |o: usize| rd32(&b, o);
        assert_eq!(d(0x000), REVISION);
        assert_eq!(rd16(&b, 0x004), 0x0abc);
        assert_eq!(b[0x006], 3);
        assert_eq!((d(0x008), d(0x00c), d(0x010)), (0x11, 0x2222, 0x3333_3333));
        assert_eq!(b[0x014..0x018], [0x14, 0x15, 0x16, 0x17]);
        assert_eq!((rd64(&b, 0x018), rd64(&b, 0x020)), (0x1_2345_6000, 0x7_8900_0000));
        assert_eq!(rd64(&b, 0x028), 0x0102_0304_0506_0708);
        assert_eq!((d(0x030), d(0x034), d(0x038), d(0x03c)), (0x3030_3030, 0x8000_0b0e, 0x38, 2));
        for o in (0x100..0x120).step_by(4) {
            assert_eq!(d(o), o as u32, "GPR at {o:#x}");
        }
        for o in [0x120, 0x124, 0x128, 0x12c, 0x130, 0x134, 0x138, 0x13c, 0x140, 0x144, 0x148, 0x14c] {
            assert_eq!(d(o), o as u32, "guest field at {o:#x}");
        }
        assert_eq!((rd16(&b, 0x160), rd16(&b, 0x162), d(0x164), d(0x168)), (0x160, 0x0c9b, 0x164, 0x168));
        assert_eq!((rd16(&b, 0x1c0), rd16(&b, 0x1c2), d(0x1c4)), (0x1c0, 0x808b, 0x1c4));
        assert_eq!((d(0x1d0), rd16(&b, 0x1d4), d(0x1d8), rd16(&b, 0x1dc)), (0x1d0, 0x1d4, 0x1d8, 0x1dc));
        assert_eq!(b[0x1e0..0x1e3], [3, 1, 2]);
        assert_eq!((d(0x1e4), d(0x1e8), d(0x1ec), rd64(&b, 0x1f0)), (0x1e4, 0x1e8, 0x1ec, 0x800));
        assert_eq!((rd64(&b, 0x200), rd64(&b, 0x218)), (0x200, 0x218));
        for o in [0x304, 0x310, 0x314, 0x320, 0x324, 0x328, 0x32c] {
            assert_eq!(d(o), o as u32, "exit field at {o:#x}");
        }
        assert_eq!((d(0x300), rd64(&b, 0x308), rd64(&b, 0x318)), (0x8000_0021, 0x308, 0x318));
        assert_eq!((b[0x330], b[0x331], rd64(&b, 0x340)), (0x0f, 0x0c, 0x340));
        for o in [0x400, 0x420, 0x424, 0x428, 0x434, 0x44c, 0x4d0, 0x4d8, 0x4e0, 0x4e8, 0x4f0, 0x518] {
            assert_eq!(d(o), o as u32, "host field at {o:#x}");
        }
        assert_eq!((rd16(&b, 0x450), rd16(&b, 0x4c0)), (0x450, 0x4c0));
        // And back.
        let mut w = Vcb::read(&b);
        assert_eq!(w.controls, v.controls);
        w.guest.fpu = v.guest.fpu.clone();
        assert_eq!(w.guest, v.guest);
        assert_eq!(w.exit, v.exit);
    }

    #[test]
    fn reserved_control_bytes_are_noticed() {
        let mut b = [0u8; VCB_SIZE];
        Vcb::default().write(&mut b);
        assert!(!Vcb::read(&b).controls.reserved_nonzero);
        b[0x80] = 1;
        assert!(Vcb::read(&b).controls.reserved_nonzero);
    }
}
