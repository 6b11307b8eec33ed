//! A software virtual machine monitor for the *classic* x86: the guest kernel deprivileged
//! to ring 1 (its user code stays at ring 3), the monitor's own GDT, IDT and TSS in the
//! processor's registers, shadow page tables, and every trap handled here — the
//! trap-and-emulate design the x86 of the 1990s could not support faithfully (Robin &
//! Irvine; the seed's §2). It is the lab's columns 2–4 (docs/techniques.md):
//!
//! - **trap-and-emulate** (`Options::default()`): privileged instructions fault at ring 1
//!   and are emulated; the sensitive unprivileged ones (SGDT, SIDT, STR, PUSHF, POPF,
//!   PUSH CS, LAR…) run and give the guest wrong answers, silently;
//! - **with PSI** (`psi: true`): CR4.PSI, the V386 extension's first change
//!   (docs/v386.md §3), makes those fault too; the monitor emulates them from the
//!   guest's virtual state and the wrong answers are gone;
//! - **scan-before-execute** (`scan: true`, `scan.rs`): as Plex86 first did, the
//!   monitor scans guest kernel code before it runs and plants breakpoints on sensitive
//!   instructions and on branches out of scanned code, and write-protects what it
//!   scanned.
//!
//! The hardware is the unchanged processor of the bare machine; its one concession is
//! [`Cpu::trap_events`](crate::cpu::Cpu::trap_events), which hands every exception and
//! interrupt to Rust instead of vectoring it — the monitor's IDT gates, with the
//! monitor's ring-0 handlers written in Rust. The guest sees its own state only through
//! what the monitor emulates.
//!
//! Where behaviour lives:
//! - here: [`Monitor`], the memory layout, the run loop and the dispatch of traps;
//! - `guest.rs`: the guest's linear memory and descriptors through its own tables;
//! - `shadow.rs`: the shadow page tables and the tracing of guest page tables;
//! - `segments.rs`: the shadow GDT (ring compression: DPL 0 → 1) and segment loads;
//! - `reflect.rs`: delivering events through the guest's IDT, and IRET;
//! - `emulate.rs`: the interpreters of instructions that fault at ring 1;
//! - `scan.rs`: scan-before-execute.
//!
//! Limits (each an error, never a panic): protected-mode guests only (Multiboot
//! kernels); no PAE, LDTs, task gates, virtual-8086 mode or guest ring 1/2; the guest
//! must leave the top 4 MiB of linear space to the monitor.

mod emulate;
mod guest;
mod reflect;
mod scan;
mod segments;
mod shadow;

use crate::cpu::v386::ExitReason;
use crate::cpu::{cr0, cr4, flags, Cpu, StopReason, TableReg, TrapEvent, TrapKind};
use crate::machine::Machine;
use crate::vmm::log::REASONS;
use alloc::string::String;
use scan::Scanner;
use shadow::Shadow;

/// The monitor's 4 MiB of linear space (the top of the 4 GiB), one page-directory slot.
pub const MONITOR_LIN: u32 = 0xffc0_0000;
pub(crate) const MONITOR_SLOT: usize = 1023;
/// The machine RAM the monitor keeps above the guest's.
pub const MONITOR_BYTES: u32 = 4 << 20;
/// Offsets in the monitor's area (machine-physical `guest_ram + …`, linear
/// `MONITOR_LIN + …` for the first four).
const GDT_OFF: u32 = 0;
const GDT_PAGES: u32 = 16;
const IDT_OFF: u32 = 0x1_0000;
const TSS_OFF: u32 = 0x1_1000;
const MON_PT_OFF: u32 = 0x1_2000;
const SHADOW_PD_OFF: u32 = 0x1_3000;
const POOL_OFF: u32 = 0x1_4000;
/// The monitor's descriptors, at the end of the shadow GDT (past any guest's table of
/// up to 8,189 entries): flat ring-1 code and data for the start, its TSS.
pub(crate) const MON_CODE: u16 = 8189 << 3;
pub(crate) const MON_DATA: u16 = 8190 << 3;
pub(crate) const MON_TSS: u16 = 8191 << 3;

/// Which technique the monitor models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Set CR4.PSI: sensitive unprivileged instructions fault and are emulated.
    pub psi: bool,
    /// Scan-before-execute: breakpoints on sensitive instructions in guest kernel code.
    pub scan: bool,
}

/// What the monitor counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Traps by the VT-x exit reason that reports the same event (an exception or INT n:
    /// `EXCEPTION_NMI`; IN/OUT: `IO`; MOV CRn: `CR_ACCESS`; INVLPG; HLT; every other
    /// instruction emulated: `SENSITIVE_INSTRUCTION`; an interrupt: `EXTERNAL_INTERRUPT`).
    pub traps: [u64; REASONS],
    /// Hidden page faults: shadow entries filled from the guest's tables.
    pub shadow_fills: u64,
    /// Writes to traced guest page tables, performed by the monitor.
    pub traced_writes: u64,
    /// Times the whole shadow was thrown away.
    pub shadow_resets: u64,
    /// Exceptions and interrupts delivered to the guest through its IDT.
    pub reflected: u64,
    /// Scan-before-execute: code runs scanned, breakpoints hit, pages rescanned after a
    /// write.
    pub scans: u64,
    pub breakpoints: u64,
    pub rescans: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            traps: [0; REASONS],
            shadow_fills: 0,
            traced_writes: 0,
            shadow_resets: 0,
            reflected: 0,
            scans: 0,
            breakpoints: 0,
            rescans: 0,
        }
    }
}

impl Counters {
    pub fn all_traps(&self) -> u64 {
        self.traps.iter().sum()
    }
}

/// Why the monitor cannot go on with a guest (a host-side error: the guest did
/// something this monitor does not model, or what no VMM could run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorError {
    /// The machine has no room for the monitor above the guest's RAM.
    NoRoom,
    /// The guest is not in protected mode (or left it): ring compression needs it.
    NotProtected,
    /// The guest touched the monitor's linear area (this address).
    MonitorArea(u32),
    /// The guest mapped machine RAM that is the monitor's (this guest-physical address).
    NotGuestMemory(u32),
    /// Something the monitor does not model.
    Unsupported(String),
    /// The guest's exception handling faulted twice: what a real processor would shut
    /// down on.
    Shutdown,
}

impl core::fmt::Display for MonitorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MonitorError::NoRoom => write!(f, "the machine needs 4 MiB of RAM above the guest's for the monitor"),
            MonitorError::NotProtected => write!(f, "the guest is not in protected mode"),
            MonitorError::MonitorArea(a) => write!(f, "the guest touched the monitor's linear area at {a:#010x}"),
            MonitorError::NotGuestMemory(a) => write!(f, "the guest mapped {a:#010x}, the monitor's memory"),
            MonitorError::Unsupported(what) => write!(f, "not modelled by the monitor: {what}"),
            MonitorError::Shutdown => write!(f, "the guest's fault handling faulted again: shutdown"),
        }
    }
}

/// Why [`Monitor::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MonitorExit {
    BudgetSpent,
    /// The guest wrote this to its isa-debug-exit port (the instruction completed).
    DebugExit(u32),
    PowerOff,
    /// HLT with the guest's interrupts off and nothing to wake it.
    DeadHalt,
    Error(MonitorError),
}

/// The guest's view of the privileged state: what the processor would hold if the guest
/// ran at ring 0.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Virtual {
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub ldtr: u16,
    pub tr: u16,
    /// The guest TSS's base (for SS0:ESP0 on a ring change).
    pub tr_base: u32,
    /// EFLAGS.IF and IOPL as the guest set them (the processor's stay 1 and 0).
    pub iflag: bool,
    pub iopl: u8,
}

/// One guest on the classic x86 under the software monitor.
pub struct Monitor {
    /// The machine: the processor, the board, and RAM = the guest's + the monitor's.
    pub machine: Machine,
    pub options: Options,
    pub counters: Counters,
    /// Bytes of RAM that are the guest's, from 0.
    guest_ram: u32,
    /// Machine-physical base of the monitor's area (= `guest_ram`).
    mon: u32,
    pub(crate) v: Virtual,
    pub(crate) shadow: Shadow,
    pub(crate) scanner: Scanner,
    /// An interrupt acknowledged while the guest had its interrupts off.
    pending_irq: Option<u8>,
    /// What a stepped instruction ended with, handled next.
    carry: Option<StopReason>,
}

impl Monitor {
    /// Take over `machine`, whose guest is in protected mode (a Multiboot kernel at its
    /// entry): its first `guest_ram` bytes of RAM are the guest's, the 4 MiB above are
    /// the monitor's.
    pub fn new(machine: Machine, guest_ram: u32, options: Options) -> Result<Monitor, MonitorError> {
        if guest_ram % 4096 != 0 || machine.bus.ram.len() < guest_ram as usize + MONITOR_BYTES as usize {
            return Err(MonitorError::NoRoom);
        }
        let c = &machine.cpu;
        if c.cr0 & cr0::PE == 0 || c.flags.get() & flags::VM != 0 {
            return Err(MonitorError::NotProtected);
        }
        let v = Virtual {
            cr0: c.cr0,
            cr2: c.cr2,
            cr3: c.cr3,
            cr4: c.cr4,
            gdtr: c.gdtr,
            idtr: c.idtr,
            ldtr: c.ldtr.sel,
            tr: c.tr.sel,
            tr_base: c.tr.base,
            iflag: c.flags.if_(),
            iopl: ((c.flags.get() & flags::IOPL) >> 12) as u8,
        };
        let mon = guest_ram;
        let pool = (mon + POOL_OFF..mon + MONITOR_BYTES).step_by(4096);
        let mut m = Monitor {
            machine,
            options,
            counters: Counters::default(),
            guest_ram,
            mon,
            v,
            shadow: Shadow::new(mon + SHADOW_PD_OFF, pool),
            scanner: Scanner::default(),
            pending_irq: None,
            carry: None,
        };
        m.build_monitor_area();
        m.rebuild_gdt();
        m.enter_deprivileged();
        m.ensure_scanned();
        Ok(m)
    }

    /// The monitor's page table (linear top 4 MiB → its GDT, IDT and TSS, read-only,
    /// supervisor), its IDT (empty: `trap_events` hands events over before any gate is
    /// read) and TSS (no I/O bitmap: every IN and OUT at ring 1 faults).
    fn build_monitor_area(&mut self) {
        let mon = self.mon as usize;
        self.machine.bus.ram[mon..mon + MONITOR_BYTES as usize].fill(0);
        let pt = self.mon + MON_PT_OFF;
        for i in 0..(MON_PT_OFF / 4096) {
            let e = (self.mon + i * 4096) | guest::pte::P | guest::pte::A;
            self.machine.bus.ram[(pt + i * 4) as usize..(pt + i * 4 + 4) as usize].copy_from_slice(&e.to_le_bytes());
        }
        let pd = self.shadow.pd + MONITOR_SLOT as u32 * 4;
        let e = pt | guest::pte::P | guest::pte::RW;
        self.machine.bus.ram[pd as usize..pd as usize + 4].copy_from_slice(&e.to_le_bytes());
        // TSS: the I/O map base (offset 102) past the limit.
        let tss = (self.mon + TSS_OFF) as usize;
        self.machine.bus.ram[tss + 102..tss + 104].copy_from_slice(&104u16.to_le_bytes());
    }

    /// Load the processor with the monitor's state around the guest's: ring 1, the
    /// shadow GDT, the monitor's IDT and TSS, the shadow page directory, IF on and IOPL 0.
    fn enter_deprivileged(&mut self) {
        self.shadow_reset();
        let c = &mut self.machine.cpu;
        c.gdtr = TableReg { base: MONITOR_LIN + GDT_OFF, limit: 0xffff };
        c.idtr = TableReg { base: MONITOR_LIN + IDT_OFF, limit: 0x7ff };
        c.cr3 = self.shadow.pd;
        self.sync_real_control();
        let c = &mut self.machine.cpu;
        let f = (c.flags.get() & !(flags::IOPL | flags::VX)) | flags::IF;
        c.flags.set(f);
        c.trap_events = true;
        self.load_monitor_segments();
    }

    /// CR0 and CR4 as the processor needs them: paging always on with write protection
    /// honoured at ring 1 (tracing depends on it), the guest's FPU bits, PSI per option.
    pub(crate) fn sync_real_control(&mut self) {
        let keep0 = cr0::MP | cr0::EM | cr0::TS | cr0::ET | cr0::NE | cr0::AM;
        let c = &mut self.machine.cpu;
        c.cr0 = (self.v.cr0 & keep0) | cr0::PE | cr0::PG | cr0::WP;
        c.cr4 = if self.options.psi { cr4::PSI } else { 0 };
        c.tlb.flush_all();
    }

    fn paging(&self) -> bool {
        self.v.cr0 & cr0::PG != 0
    }

    /// The guest's privilege level: 0 for its kernel (at ring 1), 3 for its user code.
    pub(crate) fn vcpl(&self) -> u8 {
        if self.machine.cpu.cpl == 3 {
            3
        } else {
            0
        }
    }

    /// Run the guest for at most `budget` instructions.
    pub fn run(&mut self, budget: u64) -> MonitorExit {
        let end = self.machine.cpu.icount.saturating_add(budget);
        loop {
            let r = match self.carry.take() {
                Some(r) => r,
                None => {
                    let left = end.saturating_sub(self.machine.cpu.icount);
                    if left == 0 {
                        return MonitorExit::BudgetSpent;
                    }
                    self.machine.run(left)
                }
            };
            match r {
                StopReason::HostTrap => {
                    let Some(ev) = self.machine.cpu.trapped.take() else { continue };
                    if let Err(x) = self.handle(ev) {
                        return x;
                    }
                    if let Err(x) = self.inject_pending() {
                        return x;
                    }
                    self.ensure_scanned();
                }
                StopReason::BudgetSpent | StopReason::Yield | StopReason::VmExit => {
                    if self.machine.cpu.icount >= end {
                        return MonitorExit::BudgetSpent;
                    }
                }
                StopReason::DebugExit(v) => return MonitorExit::DebugExit(v),
                StopReason::PowerOff => return MonitorExit::PowerOff,
                StopReason::Halted => return MonitorExit::DeadHalt,
                StopReason::Shutdown => return MonitorExit::Error(MonitorError::Shutdown),
                StopReason::Reset => return MonitorExit::Error(MonitorError::Unsupported("a reset".into())),
            }
        }
    }

    /// One trap: the monitor's ring-0 handler for it.
    fn handle(&mut self, ev: TrapEvent) -> Result<(), MonitorExit> {
        match ev.kind {
            TrapKind::Exception if ev.vector == 14 => self.page_fault(ev.error.unwrap_or(0)),
            TrapKind::Exception if ev.vector == 13 => self.general_protection(ev.error.unwrap_or(0)),
            // The scanner's breakpoints are INT3 (CCh), a software interrupt.
            TrapKind::Software if ev.vector == 3 && self.options.scan => self.scan_breakpoint(),
            TrapKind::Exception | TrapKind::Icebp => {
                self.count(ExitReason::ExceptionNmi);
                self.reflect(ev.vector, ev.kind, ev.error)
            }
            TrapKind::Software => {
                self.count(ExitReason::ExceptionNmi);
                self.reflect(ev.vector, ev.kind, None)
            }
            TrapKind::External => {
                self.count(ExitReason::ExternalInterrupt);
                if self.v.iflag {
                    self.reflect(ev.vector, ev.kind, None)
                } else {
                    self.pending_irq = Some(ev.vector);
                    Ok(())
                }
            }
        }
    }

    pub(crate) fn has_pending_irq(&self) -> bool {
        self.pending_irq.is_some()
    }

    /// Deliver an interrupt held while the guest had IF clear, once it has set it (and
    /// after a stepped instruction's own trap, which comes first).
    fn inject_pending(&mut self) -> Result<(), MonitorExit> {
        if self.v.iflag && !self.machine.cpu.inhibit_irq && self.carry.is_none() {
            if let Some(v) = self.pending_irq.take() {
                return self.reflect(v, TrapKind::External, None);
            }
        }
        Ok(())
    }

    pub(crate) fn count(&mut self, r: ExitReason) {
        self.counters.traps[r as usize] += 1;
    }

    /// A page fault at ring 1 or 3: hidden (the shadow lacks what the guest maps), a
    /// write to a traced page, or the guest's own (reflected with CR2).
    fn page_fault(&mut self, code: u16) -> Result<(), MonitorExit> {
        self.count(ExitReason::ExceptionNmi);
        let lin = crate::addr::Linear(self.machine.cpu.cr2);
        let write = code & 2 != 0;
        let user = code & 4 != 0;
        if lin.0 >= MONITOR_LIN {
            return Err(MonitorExit::Error(MonitorError::MonitorArea(lin.0)));
        }
        match self.guest_walk(lin, write, user) {
            Err(pf) => {
                self.v.cr2 = pf.addr;
                self.reflect(14, TrapKind::Exception, Some(pf.code))
            }
            Ok(w) if write && code & 1 != 0 && w.gpa.0 < self.guest_ram && self.protected(w.gpa.page()) => {
                self.traced_write(lin, &w).map_err(MonitorExit::Error)
            }
            Ok(w) => self.shadow_fill(lin, &w).map_err(MonitorExit::Error),
        }
    }

    /// Run the guest one instruction (the monitor's single step); whatever stopped it
    /// other than the budget is handled next.
    pub(crate) fn step_guest(&mut self) {
        let r = self.machine.run(1);
        if !matches!(r, StopReason::BudgetSpent) {
            self.carry = Some(r);
        }
    }

    /// Forget what a stepped instruction ended with (its interpreter handled it).
    pub(crate) fn take_carry(&mut self) {
        self.carry = None;
    }

    /// The processor, for the lab's counters.
    pub fn cpu(&self) -> &Cpu {
        &self.machine.cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{MachineConfig, StartMode};

    /// A machine of 4 MiB guest RAM + the monitor's 4, running `code` at 1 MiB in flat
    /// 32-bit protected mode, under the monitor.
    fn monitor(code: &[u8], options: Options) -> Monitor {
        let mut m = Machine::new(&MachineConfig { mem_mb: 8, debug_exit_port: Some(0xf4), ..Default::default() })
            .expect("machine");
        m.load_flat(code, 0x10_0000, 0x10_0000, StartMode::Pm32).expect("load");
        Monitor::new(m, 4 << 20, options).expect("monitor")
    }

    #[test]
    fn the_guest_kernel_runs_at_ring_1_and_its_io_is_emulated() {
        // mov al, 7; out 0xf4, al  (the isa-debug-exit port)
        let mut mon = monitor(&[0xb0, 0x07, 0xe6, 0xf4], Options::default());
        assert_eq!(mon.cpu().cpl, 1);
        assert_eq!(mon.run(100), MonitorExit::DebugExit(7));
        assert_eq!(mon.counters.traps[ExitReason::Io as usize], 1);
        // The OUT was emulated, not retired by the processor: one guest instruction.
        assert_eq!(mon.cpu().icount, 1);
    }

    #[test]
    fn sensitive_instructions_answer_wrong_without_psi_and_right_with_it() {
        // mov esp, 90000h (below the ROM area); push cs; pop ebx; mov al, 1; out 0xf4, al
        let code = [0xbc, 0x00, 0x00, 0x09, 0x00, 0x0e, 0x5b, 0xb0, 0x01, 0xe6, 0xf4];
        let mut plain = monitor(&code, Options::default());
        plain.run(100);
        assert_eq!(plain.cpu().regs[3] & 0xfff0, u32::from(MON_CODE & 0xfff0));
        assert_eq!(plain.cpu().regs[3] & 3, 1, "the classic x86 shows ring 1");
        let mut psi = monitor(&code, Options { psi: true, scan: false });
        psi.run(100);
        assert_eq!(psi.cpu().regs[3] & 3, 0, "PSI: the monitor answers with RPL 0");
        assert_eq!(psi.counters.traps[ExitReason::SensitiveInstruction as usize], 1);
        let mut scan = monitor(&code, Options { psi: false, scan: true });
        scan.run(100);
        assert_eq!(scan.cpu().regs[3] & 3, 0, "the scanner's breakpoint: RPL 0");
        assert_eq!(scan.counters.breakpoints, 1);
    }

    #[test]
    fn nothing_a_guest_does_panics_the_monitor() {
        // Pseudo-random code (a fixed LCG, so the test is the same every run) under each
        // technique: it ends in an error, a halt or the budget, never a panic.
        let mut x: u32 = 0x1234_5678;
        for round in 0..48 {
            let code: alloc::vec::Vec<u8> = (0..256)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            let options = [Options::default(), Options { psi: true, scan: false }, Options { psi: false, scan: true }];
            let mut mon = monitor(&code, options[round % 3]);
            let _ = mon.run(2_000);
        }
    }

    #[test]
    fn the_monitor_needs_room_and_protected_mode() {
        let m = Machine::new(&MachineConfig { mem_mb: 4, ..Default::default() }).expect("machine");
        assert_eq!(Monitor::new(m, 4 << 20, Options::default()).err(), Some(MonitorError::NoRoom));
        let m = Machine::new(&MachineConfig { mem_mb: 8, ..Default::default() }).expect("machine");
        assert_eq!(Monitor::new(m, 4 << 20, Options::default()).err(), Some(MonitorError::NotProtected));
    }
}
