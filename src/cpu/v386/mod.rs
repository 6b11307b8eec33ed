//! V386 mode, the extension's third change (docs/v386.md §4–§10): entering a guest from a
//! control block, the guest running on its own copy of the privileged state, and VM exits
//! back to the host.
//!
//! Where behaviour lives:
//! - [`vcb`]: the control block's layout and its typed copy [`Vcb`].
//! - [`checks`]: the entry checks (§9).
//! - [`slt`]: second-level translation (§6); `mmu.rs` calls it on TLB misses.
//! - here: entry ([`Cpu::vmenter`] for the instruction, [`Cpu::vm_run`] for a host written
//!   in Rust), the intercepts ahead of the opcode dispatch ([`Cpu::vx_intercept`]), the
//!   asynchronous exits at instruction boundaries ([`Cpu::vx_boundary`]), and the exit
//!   itself ([`Cpu::complete_exit`]).
//!
//! One implementation serves both kinds of host. An exit is first *recorded* (the
//! exit-information fields, then `Fault::VmExit` unwinds the instruction like a fault, so
//! EIP is back at its start) and then *completed* by the run loop: the guest state goes
//! back into the VCB and the host state is restored. For an x86 host the VCB is written
//! to memory and the host goes on after its `VMENTER` with EAX = the reason; for a Rust
//! host [`Cpu::run`] returns [`StopReason::VmExit`] and [`Cpu::vm_run`] hands the VCB back.
//!
//! TLB tags (§6.5) are banks: the TLB in use is the current tag's, the others wait in
//! `Cpu::tlb_banks`, and entry and exit swap them. A hit therefore needs no tag compare.

use serde::{Deserialize, Serialize};
pub mod checks;
mod memory;
pub mod slt;
pub mod vcb;

use super::decode::{self, SliceFetch};
use super::exception::Exception;
use super::flags::{self, IF};
use super::interrupt::Kind;
use super::mmu::{exec_bit, Tlb};
use super::{Cpu, Fault, Res, StopReason, CS, EAX, ECX};
use crate::bus::Bus;
use alloc::boxed::Box;
use vcb::{exec, intercept, VCB_SIZE};
pub use vcb::{Controls, ExitInfo, State, Vcb};

/// Exit reasons (Table 8-1), numbered as VT-x numbers the same events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ExitReason {
    ExceptionNmi = 0,
    ExternalInterrupt = 1,
    TripleFault = 2,
    InterruptWindow = 7,
    TaskSwitch = 9,
    Cpuid = 10,
    Hlt = 12,
    Invlpg = 14,
    Vcall = 18,
    CrAccess = 28,
    DrAccess = 29,
    Io = 30,
    Rdmsr = 31,
    Wrmsr = 32,
    InvalidGuestState = 33,
    NestedPageFault = 48,
    SltMisconfig = 49,
    PreemptionTimer = 52,
    SensitiveInstruction = 64,
}

impl ExitReason {
    /// Every reason, in number order.
    pub const ALL: [ExitReason; 19] = [
        ExitReason::ExceptionNmi,
        ExitReason::ExternalInterrupt,
        ExitReason::TripleFault,
        ExitReason::InterruptWindow,
        ExitReason::TaskSwitch,
        ExitReason::Cpuid,
        ExitReason::Hlt,
        ExitReason::Invlpg,
        ExitReason::Vcall,
        ExitReason::CrAccess,
        ExitReason::DrAccess,
        ExitReason::Io,
        ExitReason::Rdmsr,
        ExitReason::Wrmsr,
        ExitReason::InvalidGuestState,
        ExitReason::NestedPageFault,
        ExitReason::SltMisconfig,
        ExitReason::PreemptionTimer,
        ExitReason::SensitiveInstruction,
    ];

    /// The reason with basic number `n` (bits 15:0 of `EXIT_REASON`).
    pub fn from_number(n: u32) -> Option<ExitReason> {
        Self::ALL.into_iter().find(|r| *r as u32 == n & 0xffff)
    }

    /// The specification's name (Table 8-1).
    pub fn name(self) -> &'static str {
        match self {
            ExitReason::ExceptionNmi => "EXCEPTION_NMI",
            ExitReason::ExternalInterrupt => "EXTERNAL_INTERRUPT",
            ExitReason::TripleFault => "TRIPLE_FAULT",
            ExitReason::InterruptWindow => "INTERRUPT_WINDOW",
            ExitReason::TaskSwitch => "TASK_SWITCH",
            ExitReason::Cpuid => "CPUID",
            ExitReason::Hlt => "HLT",
            ExitReason::Invlpg => "INVLPG",
            ExitReason::Vcall => "VCALL",
            ExitReason::CrAccess => "CR_ACCESS",
            ExitReason::DrAccess => "DR_ACCESS",
            ExitReason::Io => "IO",
            ExitReason::Rdmsr => "RDMSR",
            ExitReason::Wrmsr => "WRMSR",
            ExitReason::InvalidGuestState => "INVALID_GUEST_STATE",
            ExitReason::NestedPageFault => "NESTED_PAGE_FAULT",
            ExitReason::SltMisconfig => "SLT_MISCONFIG",
            ExitReason::PreemptionTimer => "PREEMPTION_TIMER",
            ExitReason::SensitiveInstruction => "SENSITIVE_INSTRUCTION",
        }
    }
}

/// `EXIT_REASON` bit 31: the exit is an entry failure (§9.1).
pub const ENTRY_FAILURE: u32 = 1 << 31;

/// Instruction IDs of `SENSITIVE_INSTRUCTION` exits (Table 8-7).
pub mod sensitive {
    pub const LGDT: u8 = 1;
    pub const LIDT: u8 = 2;
    pub const LLDT: u8 = 3;
    pub const LTR: u8 = 4;
    pub const SGDT: u8 = 5;
    pub const SIDT: u8 = 6;
    pub const SLDT: u8 = 7;
    pub const STR: u8 = 8;
    pub const RDTSC: u8 = 9;
    pub const RDPMC: u8 = 10;
    pub const INVD: u8 = 11;
    pub const WBINVD: u8 = 12;
    pub const CLI: u8 = 13;
    pub const STI: u8 = 14;
    pub const PUSHF: u8 = 15;
    pub const POPF: u8 = 16;
    pub const IRET: u8 = 17;
    pub const INT_N: u8 = 18;
    pub const VMENTER: u8 = 19;
}

/// Qualification bits of `NESTED_PAGE_FAULT` (Table 8-5).
pub mod npf {
    pub const READ: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const FETCH: u64 = 1 << 2;
    /// Bits 5:3: the effective permission.
    pub const PERM_SHIFT: u32 = 3;
    pub const PRESENT: u64 = 1 << 6;
    pub const GLA_VALID: u64 = 1 << 7;
    pub const FINAL: u64 = 1 << 8;
    pub const USER: u64 = 1 << 9;
    pub const SYSTEM: u64 = 1 << 10;
    pub const LEVEL_SHIFT: u32 = 12;
}

/// Event types of `EVENT_INJECT` and `EXIT_INTR_INFO` (Table 10-1).
pub mod event {
    pub const EXTERNAL: u32 = 0;
    pub const NMI: u32 = 2;
    pub const HARDWARE_EXCEPTION: u32 = 3;
    pub const SOFTWARE_INTERRUPT: u32 = 4;
    pub const SOFTWARE_EXCEPTION: u32 = 6;
    pub const ERROR_CODE: u32 = 1 << 11;
    pub const VALID: u32 = 1 << 31;
}

/// Who entered the guest, which decides what an exit does.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum Host {
    /// `VMENTER` with the VCB at this host-physical address: the exit writes it back and
    /// the host goes on after its `VMENTER`.
    Memory { vcb_addr: u32 },
    /// [`Cpu::vm_run`]: the exit returns from [`Cpu::run`].
    Rust,
}

/// How an exit gets its instruction length and bytes (§4.4).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum InstrInfo {
    /// Not caused by an instruction (or by a fetch): length 0.
    None,
    /// Raised while executing: the length is EIP minus the instruction's start.
    Executing,
    /// Raised by an access somewhere inside an instruction: decode it again.
    Decode,
}

/// The processor's V386 state while a guest runs (`Cpu::v386` is `Some`: EFLAGS.VX = 1).
/// The box is kept after an exit (`Cpu::vx_spare`) and reused, so a round trip through a
/// Rust host allocates nothing.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Active {
    /// Controls as read at entry; the guest state is stale until the exit saves it.
    pub vcb: Vcb,
    host: Host,
    /// The host's own state, restored at the exit.
    saved: State,
    /// The host's TSC offset (the guest's is the host's plus `TSC_OFFSET`).
    host_tsc_offset: u64,
    /// `icount` when the guest began to run.
    entry_icount: u64,
    /// `icount` at which the preemption timer reaches 0 (`u64::MAX` when off).
    pub deadline: u64,
    instr: InstrInfo,
}

impl Active {
    fn new() -> Self {
        Active {
            vcb: Vcb::default(),
            host: Host::Rust,
            saved: State::default(),
            host_tsc_offset: 0,
            entry_icount: 0,
            deadline: u64::MAX,
            instr: InstrInfo::None,
        }
    }
}

/// Most TLB banks kept for guests; the least recently entered is dropped (a flush of
/// that tag, which the architecture allows at any time).
const MAX_TLB_BANKS: usize = 16;

/// A port access as the I/O bitmap check sees it (Table 8-6).
pub(crate) struct IoAccess {
    pub port: u16,
    pub size: u32,
    pub input: bool,
    /// The port came as an immediate.
    pub imm: bool,
    /// The value of an OUT.
    pub value: u32,
    /// INS/OUTS: the qualification bits 4, 5, 7 and 10:8, and the first element's linear
    /// address.
    pub string: Option<(u64, u32)>,
}

/// The host's tag (§6.5): its TLB waits in a bank under this tag while a guest runs.
const HOST_TAG: u16 = 0;

/// What [`Cpu::vm_run`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmRun {
    /// The guest ran and exited; the VCB's exit-information area says why.
    Exit(ExitReason),
    /// A control check of Table 9-1 failed: nothing was entered.
    ControlError(u32),
}

impl Cpu {
    /// EFLAGS.VX: a guest is running (§5.1). Never visible in the guest's EFLAGS.
    #[inline]
    pub fn in_v386(&self) -> bool {
        self.v386.is_some()
    }

    /// The processor's architectural state as a state area holds it.
    pub fn capture_state(&self) -> State {
        let mut s = State::default();
        self.capture_into(&mut s, true);
        s
    }

    /// [`Cpu::capture_state`] into an existing area, leaving its FPU image alone unless
    /// `fpu` (no allocation, for the exit path).
    fn capture_into(&self, s: &mut State, fpu: bool) {
        s.regs = self.regs;
        s.eip = self.eip;
        s.eflags = self.flags.get();
        s.cr0 = self.cr0;
        s.cr2 = self.cr2;
        s.cr3 = self.cr3;
        s.cr4 = self.cr4;
        s.dr = [self.dr[0], self.dr[1], self.dr[2], self.dr[3], self.dr[6], self.dr[7]];
        s.segs = self.segs;
        s.ldtr = self.ldtr;
        s.tr = self.tr;
        s.gdtr = self.gdtr;
        s.idtr = self.idtr;
        s.cpl = self.cpl;
        s.activity = self.halted as u8;
        s.interruptibility = if self.inhibit_irq { vcb::interruptibility::STI } else { 0 };
        s.sysenter_cs = self.msr.sysenter_cs;
        s.sysenter_esp = self.msr.sysenter_esp;
        s.sysenter_eip = self.msr.sysenter_eip;
        s.efer = self.msr.efer;
        s.pdpte = self.pdpte;
        if fpu {
            s.fpu.clone_from(&self.fpu);
        }
    }

    /// Load a state area into the processor (the FPU only with `fpu`).
    fn load_state(&mut self, s: &State, fpu: bool) {
        self.regs = s.regs;
        self.eip = s.eip;
        self.flags.set(s.eflags);
        self.cr0 = s.cr0;
        self.cr2 = s.cr2;
        self.cr3 = s.cr3;
        self.cr4 = s.cr4;
        self.dr[..4].copy_from_slice(&s.dr[..4]);
        self.dr[4] = s.dr[4];
        self.dr[5] = s.dr[5];
        self.dr[6] = s.dr[4];
        self.dr[7] = s.dr[5];
        self.segs = s.segs;
        self.ldtr = s.ldtr;
        self.tr = s.tr;
        self.gdtr = s.gdtr;
        self.idtr = s.idtr;
        self.cpl = s.cpl;
        self.halted = s.activity == 1;
        self.inhibit_irq = s.interruptibility & 3 != 0;
        self.msr.sysenter_cs = s.sysenter_cs;
        self.msr.sysenter_esp = s.sysenter_esp;
        self.msr.sysenter_eip = s.sysenter_eip;
        self.msr.efer = s.efer;
        self.pdpte = s.pdpte;
        if fpu {
            self.fpu = s.fpu.clone();
        }
    }

    /// A hosted monitor's world switch (Sugerman, Venkitachalam & Lim, "Virtualizing I/O
    /// Devices on VMware Workstation's Hosted Virtual Machine Monitor", USENIX 2001, §3):
    /// the processor's architectural state, FPU included, and `world` trade places, and
    /// so do the TLB in use and bank `tag`'s — into the world when `entering`, back out
    /// when not. The software monitor (`crate::monitor`) runs its VMs' worlds on this
    /// processor outside V386 mode with it.
    pub fn world_switch(&mut self, world: &mut State, tag: u16, entering: bool) {
        let mine = self.capture_state();
        self.load_state(world, true);
        *world = mine;
        if entering {
            self.swap_tlb_bank(tag, HOST_TAG);
        } else {
            self.swap_tlb_bank(HOST_TAG, tag);
        }
    }

    /// VMENTER (0F 0A, §7.1) executed outside V386 mode; in a guest it exits first
    /// ([`Cpu::vx_intercept`]).
    #[inline(never)]
    pub(crate) fn vmenter<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        if !self.protected() || self.v86() || self.cpl > 0 {
            return Err(Exception::UD.into());
        }
        let addr = self.regs[EAX];
        if addr & 0xfff != 0 || !bus.is_direct(addr >> 12) {
            return Err(Exception::GP(0).into());
        }
        let mut page = [0u8; VCB_SIZE];
        page.copy_from_slice(&bus.ram()[addr as usize..addr as usize + VCB_SIZE]);
        let mut a = self.vx_spare.take().unwrap_or_else(|| Box::new(Active::new()));
        a.vcb = Vcb::read(&page);
        if let Err(n) = checks::check_controls(&a.vcb.controls) {
            self.vx_spare = Some(a);
            self.regs[EAX] = n;
            self.set_vm_result_flags(true);
            return Ok(());
        }
        // The host resumes after VMENTER, with the retired count that includes it.
        a.vcb.host = self.capture_state();
        a.vcb.write_host(&mut page);
        bus.ram()[addr as usize..addr as usize + VCB_SIZE].copy_from_slice(&page);
        let entry_icount = self.icount + 1;
        // An x86 host never stops the run loop: an exit at entry just resumes it.
        let _ = self.vm_enter(bus, a, Host::Memory { vcb_addr: addr }, entry_icount);
        Ok(())
    }

    /// Make the TLB of tag `to` the one in use; the one in use goes to a bank as tag
    /// `from`. Swaps in place, so switching tags allocates only for a tag never seen.
    fn swap_tlb_bank(&mut self, to: u16, from: u16) {
        let i = match self.tlb_banks.iter().position(|(t, _)| *t == to) {
            Some(i) => i,
            None if self.tlb_banks.len() < MAX_TLB_BANKS => {
                self.tlb_banks.push((to, Tlb::new()));
                self.tlb_banks.len() - 1
            }
            None => {
                // Reuse the oldest guest bank: a flush of that tag.
                let i = self.tlb_banks.iter().position(|(t, _)| *t != HOST_TAG).unwrap_or(0);
                self.tlb_banks[i].1.flush_all();
                i
            }
        };
        core::mem::swap(&mut self.tlb, &mut self.tlb_banks[i].1);
        self.tlb_banks[i].0 = from;
    }

    /// CF, ZF, SF, OF, AF, PF after VMENTER: CF = `failed`, the rest 0 (§7.1).
    fn set_vm_result_flags(&mut self, failed: bool) {
        let f = self.flags.get() & !flags::ARITH;
        self.flags.set(f | if failed { flags::CF } else { 0 });
    }

    /// Enter the guest described by `vcb` from a host written in Rust and run it until it
    /// exits or `budget` steps have passed (then the exit is a preemption-timer exit: the
    /// host took the processor back). The VCB comes back with the guest's state and the
    /// exit information; its host-save area is not used.
    pub fn vm_run<B: Bus>(&mut self, bus: &mut B, vcb: &mut Vcb, budget: u64) -> VmRun {
        if self.v386.is_some() {
            // A Rust host cannot enter a guest while an x86 host's guest runs.
            return VmRun::ControlError(0);
        }
        if let Err(n) = checks::check_controls(&vcb.controls) {
            return VmRun::ControlError(n);
        }
        // The caller's VCB is swapped into the (reused) active state and back at the
        // exit: two copies of it per round trip, no allocation.
        let mut a = self.vx_spare.take().unwrap_or_else(|| Box::new(Active::new()));
        core::mem::swap(&mut a.vcb, vcb);
        let entry = self.icount;
        let stop = match self.vm_enter(bus, a, Host::Rust, entry) {
            Some(r) => r,
            None => self.run(bus, budget),
        };
        if stop != StopReason::VmExit && self.v386.is_some() {
            // The host's budget ran out (or a device stopped the machine) while the guest
            // ran: exit as the preemption timer would, or as HLT for a halted guest; a
            // device asking for attention (a yield: one of the VM's interrupts was raised)
            // as an external interrupt.
            let reason = if self.halted {
                ExitReason::Hlt
            } else if stop == StopReason::Yield {
                ExitReason::ExternalInterrupt
            } else {
                ExitReason::PreemptionTimer
            };
            self.record_exit(reason, 0, false);
            self.complete_exit(bus);
        }
        if let Some(a) = self.vx_spare.as_deref_mut() {
            core::mem::swap(&mut a.vcb, vcb);
        }
        let reason = ExitReason::from_number(vcb.exit.reason).unwrap_or(ExitReason::InvalidGuestState);
        VmRun::Exit(reason)
    }

    /// The common part of entry (§7.1 after the control checks). Returns `Some` when the
    /// entry ended in an exit at once and the host is a Rust one.
    #[inline(never)]
    fn vm_enter<B: Bus>(
        &mut self,
        bus: &mut B,
        mut a: Box<Active>,
        host: Host,
        entry_icount: u64,
    ) -> Option<StopReason> {
        let fpu = a.vcb.controls.exec & exec::FPU_SWAP != 0;
        a.saved = self.capture_state();
        a.host = host;
        a.instr = InstrInfo::None;
        a.entry_icount = entry_icount;
        a.vcb.exit = ExitInfo::default();
        // Swap in the guest's TLB bank (§6.5), then act on TLB_CONTROL.
        self.swap_tlb_bank(a.vcb.controls.vtag, HOST_TAG);
        match a.vcb.controls.tlb_control {
            1 => self.tlb.flush_all(),
            2 => {
                self.tlb.flush_all();
                self.tlb_banks.iter_mut().for_each(|(_, t)| t.flush_all());
            }
            3 => self.tlb.flush_non_global(),
            _ => {}
        }
        a.vcb.controls.tlb_control = 0;
        let check = checks::check_guest(&a.vcb.guest, &a.vcb.controls);
        a.host_tsc_offset = self.msr.tsc_offset;
        a.deadline = if a.vcb.controls.exec & exec::PTIMER != 0 {
            entry_icount.saturating_add(a.vcb.controls.preempt_timer as u64)
        } else {
            u64::MAX
        };
        if check.is_ok() {
            self.load_state(&a.vcb.guest, fpu);
            self.msr.tsc_offset = a.host_tsc_offset.wrapping_add(a.vcb.controls.tsc_offset);
        }
        self.v386 = Some(a);
        if let Err(n) = check {
            // Entry failure (§9.1): nothing of the guest ran; its state stays as given.
            if let Some(a) = self.v386.as_deref_mut() {
                a.vcb.exit.reason = ExitReason::InvalidGuestState as u32 | ENTRY_FAILURE;
                a.vcb.exit.entry_failure_check = n;
                a.vcb.exit.qualification = n as u64;
            }
            return self.finish_exit(bus, false);
        }
        self.inject_event(bus)
    }

    /// Deliver `EVENT_INJECT` through the guest's IDT (§10.1).
    #[inline(never)]
    fn inject_event<B: Bus>(&mut self, bus: &mut B) -> Option<StopReason> {
        let a = self.v386.as_deref_mut()?;
        let e = a.vcb.controls.event_inject;
        if e & event::VALID == 0 {
            return None;
        }
        a.vcb.controls.event_inject = e & !event::VALID;
        let (len, code) = (a.vcb.controls.event_instr_len, a.vcb.controls.event_error_code);
        let vector = e as u8;
        let kind = match (e >> 8) & 7 {
            event::SOFTWARE_INTERRUPT | event::SOFTWARE_EXCEPTION => {
                self.eip = self.eip.wrapping_add(len);
                Kind::Software
            }
            event::HARDWARE_EXCEPTION => Kind::Exception,
            _ => Kind::External,
        };
        self.halted = false;
        let error = (e & event::ERROR_CODE != 0).then_some(code as u16);
        let start = self.eip;
        match self.deliver(bus, vector, kind, error) {
            Ok(()) => None,
            Err(Fault::Exc(x)) => {
                self.eip = start;
                self.raise(bus, x)
            }
            Err(Fault::VmExit) => self.complete_exit(bus),
            Err(_) => None,
        }
    }

    /// Record an exit of `reason` with `qual`; `instr` when an instruction caused it (the
    /// exit copies its length and bytes). Returns the fault that unwinds the instruction.
    pub(crate) fn record_exit(&mut self, reason: ExitReason, qual: u64, instr: bool) -> Fault {
        self.record_exit_with(reason, qual, if instr { InstrInfo::Executing } else { InstrInfo::None })
    }

    fn record_exit_with(&mut self, reason: ExitReason, qual: u64, instr: InstrInfo) -> Fault {
        if let Some(a) = self.v386.as_deref_mut() {
            a.vcb.exit.reason = reason as u32;
            a.vcb.exit.qualification = qual;
            a.instr = instr;
        }
        if instr == InstrInfo::Executing {
            self.exec_eip = self.eip;
        }
        Fault::VmExit
    }

    /// [`Cpu::record_exit`] for an access made somewhere inside an instruction (a nested
    /// page fault on data): its length is found by decoding it again.
    pub(crate) fn record_access_exit(&mut self, reason: ExitReason, qual: u64, data: bool) -> Fault {
        self.record_exit_with(reason, qual, if data { InstrInfo::Decode } else { InstrInfo::None })
    }

    /// The exit-information fields of the exit being recorded.
    pub(crate) fn exit_info_mut(&mut self) -> Option<&mut ExitInfo> {
        self.v386.as_deref_mut().map(|a| &mut a.vcb.exit)
    }

    /// Finish a recorded exit (the instruction is unwound, EIP is at its start or, for an
    /// asynchronous exit, at the next one): save the guest, restore the host. Returns
    /// `Some(VmExit)` for a Rust host (the run loop stops), `None` for an x86 one.
    #[inline(never)]
    pub(crate) fn complete_exit<B: Bus>(&mut self, bus: &mut B) -> Option<StopReason> {
        let instr = self.v386.as_deref().map_or(InstrInfo::None, |a| a.instr);
        if instr != InstrInfo::None {
            self.copy_exit_instruction(bus, instr == InstrInfo::Decode);
        }
        self.finish_exit(bus, true)
    }

    /// Copy the length and bytes of the instruction at the guest's CS:EIP into the exit
    /// information, through the TLB only (it was just fetched, so its page is there).
    #[inline(never)]
    fn copy_exit_instruction<B: Bus>(&mut self, bus: &mut B, decode: bool) {
        let cs = &self.segs[CS as usize];
        let code32 = cs.big();
        let base = cs.base.wrapping_add(if code32 { self.eip } else { self.eip & 0xffff });
        let user = self.cpl == 3;
        // While executing, EIP was already past the instruction (the exit put it back).
        let known = self.exec_eip.wrapping_sub(self.eip) & if code32 { u32::MAX } else { 0xffff };
        let want = if decode || !(1..=15).contains(&known) { 15 } else { known as usize };
        let mut bytes = [0u8; 16];
        let mut n = 0;
        while n < want {
            let lin = base.wrapping_add(n as u32);
            let e = *self.tlb.lookup(lin >> 12);
            if !(e.lin_page == lin >> 12 && e.allow & exec_bit(user) != 0 && e.direct) {
                break;
            }
            bytes[n] = bus.ram()[((e.phys_page as usize) << 12) | (lin & 0xfff) as usize];
            n += 1;
        }
        let len = if want < 15 {
            n
        } else {
            let mut f = SliceFetch { bytes: &bytes[..n], pos: 0 };
            decode::decode(&mut f, code32).map(|i| i.len as usize).unwrap_or(0)
        };
        if let Some(x) = self.exit_info_mut() {
            x.instr_len = len as u32;
            x.instr_bytes = [0; 16];
            x.instr_bytes[..len].copy_from_slice(&bytes[..len]);
        }
    }

    /// The second half of an exit. `guest_ran`: the guest state in the processor is the
    /// guest's (false for an entry failure, which never loaded it).
    #[inline(never)]
    fn finish_exit<B: Bus>(&mut self, bus: &mut B, guest_ran: bool) -> Option<StopReason> {
        let mut a = self.v386.take()?;
        let fpu = a.vcb.controls.exec & exec::FPU_SWAP != 0;
        if guest_ran {
            self.capture_into(&mut a.vcb.guest, fpu);
            a.vcb.exit.guest_retired = self.icount.saturating_sub(a.entry_icount);
            if a.deadline != u64::MAX {
                a.vcb.controls.preempt_timer = a.deadline.saturating_sub(self.icount).min(u32::MAX as u64) as u32;
            }
            a.vcb.controls.tsc_offset = self.msr.tsc_offset.wrapping_sub(a.host_tsc_offset);
        }
        // The guest's TLB goes back to its bank, the host's comes back.
        self.swap_tlb_bank(HOST_TAG, a.vcb.controls.vtag);
        self.load_state(&a.saved, fpu);
        self.msr.tsc_offset = a.host_tsc_offset;
        self.halted = false;
        self.inhibit_irq = false;
        let host = a.host;
        let reason = a.vcb.exit.reason;
        if let Host::Memory { vcb_addr } = host {
            let at = vcb_addr as usize;
            if let Some(page) = bus.ram().get_mut(at..at + VCB_SIZE) {
                let mut b = [0u8; VCB_SIZE];
                b.copy_from_slice(page);
                a.vcb.write_exit(&mut b);
                page.copy_from_slice(&b);
            }
            self.icache.note_write(vcb_addr >> 12);
        }
        self.vx_spare = Some(a);
        match host {
            Host::Memory { .. } => {
                self.regs[EAX] = reason;
                self.set_vm_result_flags(false);
                None
            }
            Host::Rust => Some(StopReason::VmExit),
        }
    }

    /// The asynchronous exits at an instruction boundary in V386 mode (§10.2, §10.3,
    /// §5.5): the preemption timer, the interrupt window and external interrupts, in that
    /// order. `Ok(cap)`: no exit, and the guest may retire at most `cap` instructions
    /// before the timer fires. `Err(r)`: an exit happened; `r` as from
    /// [`Cpu::complete_exit`].
    #[inline(never)]
    pub(crate) fn vx_boundary<B: Bus>(&mut self, bus: &mut B) -> Result<u64, Option<StopReason>> {
        let Some(a) = self.v386.as_deref() else { return Ok(u64::MAX) };
        let c = a.vcb.controls.exec;
        let reason = if self.icount >= a.deadline {
            Some(ExitReason::PreemptionTimer)
        } else if c & exec::INTWIN_EXIT != 0 && self.flags.if_() && !self.inhibit_irq {
            Some(ExitReason::InterruptWindow)
        } else if c & exec::EXTINT_EXIT != 0 && bus.interrupt_pending() {
            Some(ExitReason::ExternalInterrupt)
        } else {
            None
        };
        let deadline = a.deadline;
        match reason {
            Some(r) => {
                self.record_exit(r, 0, false);
                Err(self.complete_exit(bus))
            }
            None => Ok(deadline - self.icount),
        }
    }

    /// A guest exception about to be delivered (§5.5): exit instead when its bit is set in
    /// `EXCEPTION_BITMAP`. Returns the exit's outcome, or None to deliver it.
    #[inline(never)]
    pub(crate) fn vx_exception<B: Bus>(&mut self, bus: &mut B, e: Exception) -> Option<Option<StopReason>> {
        let a = self.v386.as_deref()?;
        let v = e.vector();
        if v >= 32 || a.vcb.controls.exception_bitmap & (1 << v) == 0 {
            return None;
        }
        let kind = if e.is_trap() { event::SOFTWARE_EXCEPTION } else { event::HARDWARE_EXCEPTION };
        let code = e.error_code();
        let qual = match e {
            Exception::PF { addr, .. } => addr as u64,
            _ => 0,
        };
        self.record_exit(ExitReason::ExceptionNmi, qual, false);
        if let Some(x) = self.exit_info_mut() {
            x.intr_info = event::VALID | (kind << 8) | v as u32 | if code.is_some() { event::ERROR_CODE } else { 0 };
            x.intr_error_code = code.unwrap_or(0) as u32;
        }
        Some(self.complete_exit(bus))
    }

    /// A triple fault in a guest (§5.5): always an exit.
    #[inline(never)]
    pub(crate) fn vx_triple_fault<B: Bus>(&mut self, bus: &mut B) -> Option<Option<StopReason>> {
        self.v386.as_deref()?;
        self.record_exit(ExitReason::TripleFault, 0, false);
        Some(self.complete_exit(bus))
    }

    /// The intercepts of Tables 4-2 and 5-1 that come before an instruction runs, after
    /// the faults based on the guest's CPL (§5.4 "Priority"). `Err(Fault::VmExit)` when
    /// `i` exits.
    #[inline(never)]
    pub(crate) fn vx_intercept(&mut self, i: &decode::Instr) -> Res<()> {
        let Some(a) = self.v386.as_deref() else { return Ok(()) };
        let c = &a.vcb.controls;
        let on = |bit: u32| c.intercepts & bit != 0;
        let cpl0 = self.cpl == 0 && !self.v86();
        let pm = self.pmode();
        // IOPL-sensitive instructions that would fault in V86 mode fault first.
        let v86_faults = self.v86() && self.flags.iopl() < 3;
        let sens = |id: u8| Some((ExitReason::SensitiveInstruction, id as u64));
        let reg = i.reg();
        let exit: Option<(ExitReason, u64)> = match i.opcode {
            0x10a => sens(sensitive::VMENTER),
            0x10c => Some((ExitReason::Vcall, self.cpl as u64 | (self.v86() as u64) << 2)),
            0x1a2 => Some((ExitReason::Cpuid, 0)),
            0x108 if cpl0 => sens(sensitive::INVD),
            0x109 if cpl0 && on(intercept::WBINVD) => sens(sensitive::WBINVD),
            0xf4 if cpl0 && on(intercept::HLT) => Some((ExitReason::Hlt, 0)),
            0x101 if reg == 7 && i.is_mem && cpl0 && on(intercept::INVLPG) => {
                let off = self.ea(i);
                let lin = self.segs[i.mem_seg() as usize].base.wrapping_add(off);
                Some((ExitReason::Invlpg, lin as u64))
            }
            0x131
                if on(intercept::RDTSC) && !(self.cr4 & super::cr4::TSD != 0 && self.cpl != 0 && self.protected()) =>
            {
                sens(sensitive::RDTSC)
            }
            0x133
                if on(intercept::RDPMC) && !(self.cr4 & super::cr4::PCE == 0 && self.cpl != 0 && self.protected()) =>
            {
                sens(sensitive::RDPMC)
            }
            0x132 if cpl0 && (on(intercept::RDMSR) || !guest_msr(self.regs[ECX])) => Some((ExitReason::Rdmsr, 0)),
            0x130 if cpl0 && (on(intercept::WRMSR) || !guest_msr(self.regs[ECX])) => Some((ExitReason::Wrmsr, 0)),
            0x101 if matches!(reg, 2 | 3) && i.is_mem && cpl0 && on(intercept::DESC_LOAD) => {
                sens(if reg == 2 { sensitive::LGDT } else { sensitive::LIDT })
            }
            0x100 if matches!(reg, 2 | 3) && pm && self.cpl == 0 && on(intercept::DESC_LOAD) => {
                sens(if reg == 2 { sensitive::LLDT } else { sensitive::LTR })
            }
            0x101 if matches!(reg, 0 | 1) && i.is_mem && on(intercept::DESC_STORE) => {
                sens(if reg == 0 { sensitive::SGDT } else { sensitive::SIDT })
            }
            0x100 if matches!(reg, 0 | 1) && pm && on(intercept::DESC_STORE) => {
                sens(if reg == 0 { sensitive::SLDT } else { sensitive::STR })
            }
            0xfa | 0xfb if on(intercept::CLI_STI) && self.cli_sti_allowed() => {
                sens(if i.opcode == 0xfa { sensitive::CLI } else { sensitive::STI })
            }
            0x9c | 0x9d if on(intercept::PUSHF_POPF) && !v86_faults => {
                sens(if i.opcode == 0x9c { sensitive::PUSHF } else { sensitive::POPF })
            }
            0xcf if on(intercept::IRET) && !v86_faults => sens(sensitive::IRET),
            0xcd if on(intercept::INT_N) && !v86_faults => {
                Some((ExitReason::SensitiveInstruction, sensitive::INT_N as u64 | (i.imm as u8 as u64) << 8))
            }
            // MOV from CR / to CR (0F 20 / 0F 22): ModR/M reg = CR number, r/m = GPR.
            0x120 if cpl0 && c.cr_read & (1 << (reg & 7)) != 0 => {
                Some((ExitReason::CrAccess, reg as u64 | 1 << 4 | (i.rm() as u64) << 8))
            }
            0x122 if cpl0 && c.cr_write & (1 << (reg & 7)) != 0 => {
                Some((ExitReason::CrAccess, reg as u64 | (i.rm() as u64) << 8))
            }
            0x106 if cpl0 && c.cr_write & 1 != 0 => Some((ExitReason::CrAccess, 2 << 4)),
            0x101 if reg == 6 && cpl0 && c.cr_write & 1 != 0 => {
                let (mem, gpr, lin) = self.msw_operand(i);
                let data = if i.is_mem { 0 } else { self.regs[i.rm() as usize] & 0xffff };
                if let Some(x) = self.exit_info_mut() {
                    x.guest_linear = lin;
                }
                Some((ExitReason::CrAccess, 3 << 4 | mem << 7 | gpr << 8 | (data as u64) << 16))
            }
            0x101 if reg == 4 && c.cr_read & 1 != 0 => {
                let (mem, gpr, lin) = self.msw_operand(i);
                if let Some(x) = self.exit_info_mut() {
                    x.guest_linear = lin;
                }
                Some((ExitReason::CrAccess, 4 << 4 | mem << 7 | gpr << 8))
            }
            // MOV from DR / to DR (0F 21 / 0F 23); DR4 and DR5 alias DR6 and DR7.
            0x121 | 0x123 if cpl0 => {
                let n = match reg {
                    4 => 6,
                    5 => 7,
                    r => r,
                };
                let bits = if i.opcode == 0x121 { c.dr_read } else { c.dr_write };
                (bits & (1 << n) != 0).then(|| {
                    let from = (i.opcode == 0x121) as u64;
                    (ExitReason::DrAccess, reg as u64 | from << 4 | (i.rm() as u64) << 8)
                })
            }
            _ => None,
        };
        match exit {
            Some((reason, qual)) => Err(self.record_exit(reason, qual, true)),
            None => Ok(()),
        }
    }

    /// A task switch to TSS `sel` with the `TASK_SWITCH` intercept on: exit (Table 8-2:
    /// selector, and the source in bits 31:30). CALL, JMP and IRET are instructions (the
    /// exit gives their bytes); a task gate in the IDT is an event being delivered.
    pub(crate) fn vx_task_switch(&mut self, sel: u16, reason: super::task::Reason) -> Res<()> {
        use super::task::Reason;
        let Some(a) = self.v386.as_deref() else { return Ok(()) };
        if a.vcb.controls.intercepts & intercept::TASK_SWITCH == 0 {
            return Ok(());
        }
        let source: u64 = match reason {
            Reason::Call => 0,
            Reason::Iret => 1,
            Reason::Jmp => 2,
            Reason::Interrupt => 3,
        };
        let instr = reason != Reason::Interrupt;
        Err(self.record_exit(ExitReason::TaskSwitch, sel as u64 | source << 30, instr))
    }

    /// SMSW/LMSW's operand for the qualification: (memory?, GPR, linear address).
    fn msw_operand(&self, i: &decode::Instr) -> (u64, u64, u32) {
        if i.is_mem {
            let lin = self.segs[i.mem_seg() as usize].base.wrapping_add(self.ea(i));
            (1, 0, lin)
        } else {
            (0, i.rm() as u64, 0)
        }
    }

    /// CLI/STI would run rather than fault (SDM Vol. 2A "CLI": IOPL, and VME/PVI's
    /// virtual IF, which is handled by the instruction itself and not intercepted).
    fn cli_sti_allowed(&self) -> bool {
        !self.protected() || if self.v86() { self.flags.iopl() == 3 } else { self.cpl <= self.flags.iopl() }
    }

    /// Port I/O in V386 mode, after the guest's own IOPL/TSS check (§4.6): exit when a
    /// bit of the I/O bitmap covers the access.
    #[inline(never)]
    pub(crate) fn vx_io<B: Bus>(&mut self, bus: &mut B, io: IoAccess) -> Res<()> {
        let IoAccess { port, size, input, imm, value, string } = io;
        let Some(a) = self.v386.as_deref() else { return Ok(()) };
        let bitmap = a.vcb.controls.io_bitmap;
        let last = port as u32 + size - 1;
        let mut hit = last > 0xffff;
        if !hit {
            for p in port as u32..=last {
                let at = bitmap + (p >> 3) as u64;
                let byte = super::mmu::read_phys8(bus, at);
                if byte & (1 << (p & 7)) != 0 {
                    hit = true;
                    break;
                }
            }
        }
        if !hit {
            return Ok(());
        }
        let mut qual = (size as u64 - 1) | (input as u64) << 3 | (imm as u64) << 6 | (port as u64) << 16;
        if let Some((bits, lin)) = string {
            qual |= bits;
            // The first element's linear and guest-physical addresses (§4.4, Table 8-6);
            // the GPA is 0 when the guest's page tables do not map it.
            let gpa = self.guest_physical_probe(bus, lin).unwrap_or(0);
            if let Some(x) = self.exit_info_mut() {
                x.guest_linear = lin;
                x.guest_physical = gpa;
            }
        } else if !input {
            let v = match size {
                1 => value & 0xff,
                2 => value & 0xffff,
                _ => value,
            };
            qual |= (v as u64) << 32;
        }
        Err(self.record_exit(ExitReason::Io, qual, true))
    }

    /// EFLAGS as a debugger shows it: the guest's, with VX (bit 22) set while a guest
    /// runs. No guest ever reads this value (§5.1).
    pub fn eflags_with_vx(&self) -> u32 {
        self.flags.get() | if self.v386.is_some() { flags::VX } else { 0 }
    }
}

/// MSRs a guest has its own copy of (§5.4): the TSC, SYSENTER_CS/ESP/EIP and EFER.
fn guest_msr(index: u32) -> bool {
    use super::msr::index::*;
    matches!(index, IA32_TIME_STAMP_COUNTER | IA32_SYSENTER_CS | IA32_SYSENTER_ESP | IA32_SYSENTER_EIP | IA32_EFER)
}

/// The guest's IF, for a VMM deciding whether it may inject an external interrupt.
pub fn guest_can_take_interrupt(g: &State) -> bool {
    g.eflags & IF != 0 && g.interruptibility & 3 == 0
}

#[cfg(test)]
mod tests;
