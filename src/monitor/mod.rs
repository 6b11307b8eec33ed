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
//! It is one of the ways the VMM (`crate::vmm`) runs a VM, chosen per VM
//! ([`Technique`](crate::vmm::Technique)): the VM's RAM, board and second-level map
//! are the allocator's as for a V386 VM, and the VMM's dispatcher gives its turns to
//! [`Monitor::run`] instead of `Cpu::vm_run`. The processor is the VMM's one processor,
//! outside V386 mode: the monitor enters its VM's *world* (every architectural register
//! as the guest left it at ring 1, the shadow page directory in CR3, the monitor's
//! GDT, IDT and TSS) with a world switch and leaves it the same way, as VMware's hosted
//! monitor did (Sugerman, Venkitachalam & Lim, USENIX 2001, §3). Shadow page-table
//! entries hold host-physical frames: guest RAM is the VM's RAM in host memory, and
//! device pages go to the VM's device window through its second-level map (the pmap).
//!
//! The processor's one concession is
//! [`Cpu::trap_events`](crate::cpu::Cpu::trap_events), which hands every exception and
//! interrupt to Rust instead of vectoring it — the monitor's IDT gates, with the
//! monitor's ring-0 handlers written in Rust. The guest sees its own state only through
//! what the monitor emulates. Every trap goes to the VMM's exit log, under the VT-x
//! exit reason that reports the same event, beside the V386 VMs' exits.
//!
//! Where behaviour lives:
//! - here: [`Monitor`] (what persists between turns), [`World`] (the monitor at work on
//!   the processor and its VM's bus), the memory layout, the run loop and the dispatch
//!   of traps;
//! - `guest.rs`: the guest's linear memory and descriptors through its own tables;
//! - `shadow.rs`: the shadow page tables and the tracing of guest page tables;
//! - `segments.rs`: the shadow GDT (ring compression: DPL 0 → 1) and segment loads;
//! - `reflect.rs`: delivering events through the guest's IDT, and IRET;
//! - `emulate.rs`: the interpreters of instructions that fault at ring 1;
//! - `scan.rs`: scan-before-execute.
//!
//! Limits (each an error, never a panic): protected-mode guests only (Multiboot
//! kernels, Linux at its 32-bit entry); no PAE, task gates, virtual-8086 mode or guest ring 1/2; the guest
//! must leave the top 4 MiB of linear space to the monitor; writes to ROM are not
//! emulated.

mod emulate;
mod guest;
mod reflect;
mod scan;
mod segments;
mod shadow;

use crate::bus::Bus;
use crate::cpu::v386::{ExitInfo, ExitReason, State};
use crate::cpu::{cr0, cr4, flags, Cpu, StopReason, TableReg, TrapEvent, TrapKind, CS};
use crate::vmm::hostbus::HostBus;
use crate::vmm::log::{info, ExitLog, REASONS};
use alloc::string::String;
use scan::Scanner;
use serde::{Deserialize, Serialize};
use shadow::Shadow;

/// The monitor's 4 MiB of linear space (the top of the 4 GiB), one page-directory slot.
pub const MONITOR_LIN: u32 = 0xffc0_0000;
pub(crate) const MONITOR_SLOT: usize = 1023;
/// The host memory the monitor keeps for each VM it runs (its tables, GDT, IDT, TSS).
pub const MONITOR_BYTES: u32 = 4 << 20;
/// Offsets in the monitor's area (host-physical `mon + …`, linear `MONITOR_LIN + …` for
/// the first four).
const GDT_OFF: u32 = 0;
const GDT_PAGES: u32 = 16;
const IDT_OFF: u32 = 0x1_0000;
const TSS_OFF: u32 = 0x1_1000;
const LDT_OFF: u32 = 0x1_2000;
const LDT_PAGES: u32 = 16;
const MON_PT_OFF: u32 = 0x2_2000;
const SHADOW_PD_OFF: u32 = 0x2_3000;
const POOL_OFF: u32 = 0x2_4000;
/// The monitor's descriptors, at the end of the shadow GDT (past any guest's table of
/// up to 8,188 entries): the shadow LDT, flat ring-1 code and data for the start, its
/// TSS.
pub(crate) const MON_LDT: u16 = 8188 << 3;
pub(crate) const MON_CODE: u16 = 8189 << 3;
pub(crate) const MON_DATA: u16 = 8190 << 3;
pub(crate) const MON_TSS: u16 = 8191 << 3;

/// Which technique the monitor models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Set CR4.PSI: sensitive unprivileged instructions fault and are emulated.
    pub psi: bool,
    /// Scan-before-execute: breakpoints on sensitive instructions in guest kernel code.
    pub scan: bool,
}

/// What the monitor counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Traps by the VT-x exit reason that reports the same event (an exception or INT n:
    /// `EXCEPTION_NMI`; IN/OUT: `IO`; MOV CRn: `CR_ACCESS`; INVLPG; HLT; every other
    /// instruction emulated: `SENSITIVE_INSTRUCTION`; an interrupt: `EXTERNAL_INTERRUPT`).
    #[serde(with = "serde_big_array::BigArray")]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonitorError {
    /// The guest's RAM is not whole pages, or sits where 32-bit shadow entries cannot
    /// reach it.
    NoRoom,
    /// The guest is not in protected mode (or left it): ring compression needs it.
    NotProtected,
    /// The guest touched the monitor's linear area (this address).
    MonitorArea(u32),
    /// The guest mapped a guest-physical address that is not its RAM where the monitor
    /// needs RAM (this address).
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
            MonitorError::NoRoom => {
                write!(f, "the guest's RAM is not where the monitor's 32-bit shadow tables can map it")
            }
            MonitorError::NotProtected => write!(f, "the guest is not in protected mode"),
            MonitorError::MonitorArea(a) => write!(f, "the guest touched the monitor's linear area at {a:#010x}"),
            MonitorError::NotGuestMemory(a) => write!(f, "the guest needs RAM at {a:#010x}, which is not its RAM"),
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
    /// HLT with the guest's interrupts on: the VM waits for its devices.
    Halted,
    /// HLT with the guest's interrupts off: nothing can wake it.
    DeadHalt,
    /// The guest maps this guest page, which the VM's second-level map does not map yet
    /// (device memory not used before): the VMM maps it and runs the VM again, which
    /// repeats the access.
    MapPage(u32),
    /// A device asked for the slice to end (it raised an interrupt, or a timer now fires
    /// before the slice would have ended): bring the devices up to the VM's time, size a
    /// new slice and run again.
    Yield,
    /// A trap of a reason to break on was counted, logged and handled (the monitor has no
    /// half-handled state to leave pending, unlike a V386 exit): the guest's state is as
    /// the handler left it. Running again goes on from there.
    Break(u16),
    Error(MonitorError),
}

/// The guest's view of the privileged state: what the processor would hold if the guest
/// ran at ring 0.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Virtual {
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub ldtr: u16,
    /// The guest's LDT (from its descriptor at LLDT): base and limit.
    pub ldt_base: u32,
    pub ldt_limit: u32,
    pub tr: u16,
    /// The guest TSS's base (for SS0:ESP0 on a ring change).
    pub tr_base: u32,
    /// EFLAGS.IF and IOPL as the guest set them (the processor's stay 1 and 0).
    pub iflag: bool,
    pub iopl: u8,
    /// IA32_SYSENTER_CS, _ESP and _EIP as the guest wrote them: the processor's CS
    /// stays 0, so SYSENTER faults to the monitor instead of entering ring 0.
    pub sysenter: [u32; 3],
}

/// One VM on the classic x86 under the software monitor: what lasts between its turns.
#[derive(Serialize, Deserialize)]
pub struct Monitor {
    pub options: Options,
    pub counters: Counters,
    /// Bytes of RAM that are the guest's, from guest-physical 0…
    guest_ram: u32,
    /// …at this host-physical address.
    ram_base: u32,
    /// Host-physical base of the monitor's area for this VM.
    mon: u32,
    /// The VM's second-level map (guest page → host page): where guest pages other than
    /// RAM (ROM, device memory) are.
    slt_root: u64,
    pub(crate) v: Virtual,
    pub(crate) shadow: Shadow,
    pub(crate) scanner: Scanner,
    /// The guest frames its GDT and LDT lie in, traced like its page tables.
    pub(crate) tables: alloc::vec::Vec<segments::TableFrame>,
    /// What a stepped instruction ended with, handled next.
    carry: Option<StopReason>,
    /// The processor state of the VM's world while it is not on the processor.
    world: State,
    /// The monitor's area is built and the guest deprivileged (at its first turn).
    started: bool,
    /// The VM's second-level map changed (the chipset moved ROM or RAM): the shadow,
    /// built from the old one, goes at the next run.
    pmap_stale: bool,
}

impl Monitor {
    /// A monitor for a guest in protected mode whose processor state is `start` (a
    /// Multiboot kernel at its entry): `ram_len` bytes of RAM at host-physical
    /// `ram_base`, its second-level map at `slt_root`, and [`MONITOR_BYTES`] of host
    /// memory at `mon` for the monitor's tables. The guest is deprivileged at its first
    /// run.
    pub fn new(
        start: State,
        ram_base: u64,
        ram_len: usize,
        mon: u64,
        slt_root: u64,
        options: Options,
    ) -> Result<Monitor, MonitorError> {
        let fits = |a: u64| a < 1 << 32;
        if ram_len % 4096 != 0 || !fits(ram_base + ram_len as u64) || !fits(mon + MONITOR_BYTES as u64) {
            return Err(MonitorError::NoRoom);
        }
        Self::check_guest(&start)?;
        let v = Virtual {
            cr0: start.cr0,
            cr2: start.cr2,
            cr3: start.cr3,
            cr4: start.cr4,
            gdtr: start.gdtr,
            idtr: start.idtr,
            ldtr: start.ldtr.sel,
            ldt_base: start.ldtr.base,
            ldt_limit: start.ldtr.limit,
            tr: start.tr.sel,
            tr_base: start.tr.base,
            iflag: start.eflags & flags::IF != 0,
            iopl: ((start.eflags & flags::IOPL) >> 12) as u8,
            sysenter: [start.sysenter_cs, start.sysenter_esp, start.sysenter_eip],
        };
        let mon = mon as u32;
        let pool = (mon + POOL_OFF..mon + MONITOR_BYTES).step_by(4096);
        Ok(Monitor {
            options,
            counters: Counters::default(),
            guest_ram: ram_len as u32,
            ram_base: ram_base as u32,
            mon,
            slt_root,
            v,
            shadow: Shadow::new(mon + SHADOW_PD_OFF, pool),
            scanner: Scanner::default(),
            tables: alloc::vec::Vec::new(),
            carry: None,
            world: start,
            started: false,
            pmap_stale: false,
        })
    }

    /// Whether the monitor can take a guest that starts in state `start`: ring
    /// compression needs protected mode, outside virtual-8086 mode.
    pub fn check_guest(start: &State) -> Result<(), MonitorError> {
        if start.cr0 & cr0::PE == 0 || start.eflags & flags::VM != 0 {
            return Err(MonitorError::NotProtected);
        }
        Ok(())
    }

    /// The guest's processor state as it is between turns (at ring 1: the real
    /// registers; the privileged ones are the monitor's). For the live view.
    pub fn world(&self) -> &State {
        &self.world
    }

    /// The privileged state as the guest sees it (its CR0–CR4, GDTR, IDTR, LDTR, TR,
    /// IF and IOPL), for the live view.
    pub fn virtual_state(&self) -> &Virtual {
        &self.v
    }

    /// The VM's second-level map changed: shadow entries may name old host pages.
    pub fn pmap_changed(&mut self) {
        self.pmap_stale = true;
    }

    /// The guest's virtual EFLAGS.IF: it takes interrupts.
    pub fn interrupts_on(&self) -> bool {
        self.v.iflag
    }

    /// Run VM `vm` (its tag: its TLB bank, its exit-log records) for at most `budget`
    /// guest instructions on `cpu`, over `bus`, its traps logged to `log`. A trap whose
    /// reason number n has bit n set in `break_on` ends the run once it is handled
    /// ([`MonitorExit::Break`]).
    pub fn run(
        &mut self,
        cpu: &mut Cpu,
        bus: &mut HostBus<'_>,
        log: &mut ExitLog,
        vm: u16,
        budget: u64,
        break_on: u128,
    ) -> MonitorExit {
        cpu.world_switch(&mut self.world, vm, true);
        cpu.trap_events = true;
        let mut w = World { m: self, cpu, bus, log, vm, here: None, mute: false, break_on, broke: None };
        let r = w.run(budget);
        w.cpu.trap_events = false;
        w.cpu.trapped = None;
        let World { m, cpu, .. } = w;
        cpu.world_switch(&mut m.world, vm, false);
        r
    }
}

/// The monitor at work for one run: its state, the processor with the VM's world
/// switched in, the VM's bus, and the exit log its traps go to.
pub(crate) struct World<'a, 'b> {
    pub(crate) m: &'a mut Monitor,
    pub(crate) cpu: &'a mut Cpu,
    pub(crate) bus: &'a mut HostBus<'b>,
    log: &'a mut ExitLog,
    vm: u16,
    /// The instruction `decode_here` last read: its linear address and bytes, for the
    /// exit log.
    here: Option<(u32, [u8; 15], u8)>,
    /// Traps are not counted (an interpreter run for a trap already counted).
    mute: bool,
    /// The trap reasons to stop at (bit n: reason n), and the first one this run counted.
    break_on: u128,
    broke: Option<u16>,
}

impl World<'_, '_> {
    /// The host-physical address of guest RAM at `gpa` (< `guest_ram`).
    #[inline]
    pub(crate) fn hpa(&self, gpa: u32) -> u32 {
        self.m.ram_base + gpa
    }

    /// The monitor's page table (linear top 4 MiB → its GDT, IDT and TSS, read-only,
    /// supervisor), its IDT (empty: `trap_events` hands events over before any gate is
    /// read) and TSS (no I/O bitmap: every IN and OUT at ring 1 faults).
    fn build_monitor_area(&mut self) {
        let mon = self.m.mon;
        self.bus.ram()[mon as usize..(mon + MONITOR_BYTES) as usize].fill(0);
        let pt = mon + MON_PT_OFF;
        for i in 0..(MON_PT_OFF / 4096) {
            let e = (mon + i * 4096) | guest::pte::P | guest::pte::A;
            self.bus.ram()[(pt + i * 4) as usize..(pt + i * 4 + 4) as usize].copy_from_slice(&e.to_le_bytes());
        }
        let pd = self.m.shadow.pd + MONITOR_SLOT as u32 * 4;
        let e = pt | guest::pte::P | guest::pte::RW;
        self.bus.ram()[pd as usize..pd as usize + 4].copy_from_slice(&e.to_le_bytes());
        // TSS: the I/O map base (offset 102) past the limit.
        let tss = (mon + TSS_OFF) as usize;
        self.bus.ram()[tss + 102..tss + 104].copy_from_slice(&104u16.to_le_bytes());
    }

    /// Load the processor with the monitor's state around the guest's: ring 1, the
    /// shadow GDT, the monitor's IDT and TSS, the shadow page directory, IF on and IOPL 0.
    fn enter_deprivileged(&mut self) {
        self.shadow_reset();
        let c = &mut *self.cpu;
        c.gdtr = TableReg { base: MONITOR_LIN + GDT_OFF, limit: 0xffff };
        c.idtr = TableReg { base: MONITOR_LIN + IDT_OFF, limit: 0x7ff };
        c.cr3 = self.m.shadow.pd;
        self.sync_real_control();
        let c = &mut *self.cpu;
        let f = (c.flags.get() & !(flags::IOPL | flags::VX)) | flags::IF;
        c.flags.set(f);
        // SYSENTER must fault to the monitor (the guest's MSRs are in `Virtual`).
        c.msr.sysenter_cs = 0;
        self.load_monitor_segments();
    }

    /// CR0 and CR4 as the processor needs them: paging always on with write protection
    /// honoured at ring 1 (tracing depends on it), the guest's FPU bits, PSI per option.
    pub(crate) fn sync_real_control(&mut self) {
        let keep0 = cr0::MP | cr0::EM | cr0::TS | cr0::ET | cr0::NE | cr0::AM;
        let c = &mut *self.cpu;
        c.cr0 = (self.m.v.cr0 & keep0) | cr0::PE | cr0::PG | cr0::WP;
        c.cr4 = if self.m.options.psi { cr4::PSI } else { 0 };
        c.tlb.flush_all();
    }

    fn paging(&self) -> bool {
        self.m.v.cr0 & cr0::PG != 0
    }

    /// The guest's privilege level: 0 for its kernel (at ring 1), 3 for its user code.
    pub(crate) fn vcpl(&self) -> u8 {
        if self.cpu.cpl == 3 {
            3
        } else {
            0
        }
    }

    /// Run the guest for at most `budget` instructions.
    fn run(&mut self, budget: u64) -> MonitorExit {
        if !self.m.started {
            self.m.started = true;
            self.build_monitor_area();
            self.rebuild_gdt();
            self.rebuild_ldt();
            self.enter_deprivileged();
        } else if core::mem::take(&mut self.m.pmap_stale) {
            self.shadow_reset();
        }
        // A turn starts on the guest's code: scanned, and with any interrupt its devices
        // raised while it waited delivered first.
        if let Err(x) = self.deliver_interrupt() {
            return x;
        }
        self.ensure_scanned();
        let end = self.cpu.icount.saturating_add(budget);
        loop {
            let r = match self.m.carry.take() {
                Some(r) => r,
                None => {
                    let left = end.saturating_sub(self.cpu.icount);
                    if left == 0 {
                        return MonitorExit::BudgetSpent;
                    }
                    self.cpu.run(self.bus, left)
                }
            };
            match r {
                StopReason::HostTrap => {
                    let Some(ev) = self.cpu.trapped.take() else { continue };
                    if let Err(x) = self.handle(ev) {
                        return x;
                    }
                    if self.cpu.halted {
                        return if self.m.v.iflag { MonitorExit::Halted } else { MonitorExit::DeadHalt };
                    }
                    if let Err(x) = self.deliver_interrupt() {
                        return x;
                    }
                    self.ensure_scanned();
                    if let Some(reason) = self.broke.take() {
                        return MonitorExit::Break(reason);
                    }
                }
                // A device raised one of the VM's interrupts, or a timer was programmed to
                // fire before the slice ends (the bus ended the run): the VMM brings the
                // devices up to now and sizes a new slice; the next run delivers first.
                StopReason::Yield => return MonitorExit::Yield,
                StopReason::BudgetSpent | StopReason::VmExit => {
                    if self.cpu.icount >= end {
                        return MonitorExit::BudgetSpent;
                    }
                }
                StopReason::DebugExit(v) => return MonitorExit::DebugExit(v),
                StopReason::PowerOff => return MonitorExit::PowerOff,
                // A halted guest whose turn came without an interrupt to deliver.
                StopReason::Halted if self.m.v.iflag => return MonitorExit::Halted,
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
            TrapKind::Software if ev.vector == 3 && self.m.options.scan => self.scan_breakpoint(),
            TrapKind::Exception | TrapKind::Icebp => {
                self.count_event(ExitReason::ExceptionNmi, ev.vector.into());
                self.reflect(ev.vector, ev.kind, ev.error)
            }
            TrapKind::Software => {
                self.count_event(ExitReason::ExceptionNmi, ev.vector.into());
                self.reflect(ev.vector, ev.kind, None)
            }
            // The VM's bus has no interrupt line: its interrupts come through
            // `deliver_interrupt`.
            TrapKind::External => Ok(()),
        }
    }

    /// The guest has its interrupts on and the instruction before allows one: take the
    /// highest-priority interrupt its devices raise and deliver it through its IDT. An
    /// interrupt raised while the guest has them off waits in its interrupt controller
    /// until a trap finds them on again (on the classic x86 a POPF that sets IF does not
    /// trap: the interrupt waits for the next one).
    fn deliver_interrupt(&mut self) -> Result<(), MonitorExit> {
        if !self.m.v.iflag || self.cpu.inhibit_irq || self.m.carry.is_some() {
            return Ok(());
        }
        let board = self.bus.board();
        if !board.interrupt_pending() {
            return Ok(());
        }
        let Some(v) = board.acknowledge_interrupt() else { return Ok(()) };
        self.cpu.halted = false;
        self.count_event(ExitReason::ExternalInterrupt, v.into());
        self.reflect(v, TrapKind::External, None)
    }

    /// Count a trap and log it, at the instruction at CS:EIP.
    pub(crate) fn count(&mut self, r: ExitReason) {
        self.count_event(r, 0);
    }

    /// Count a trap and log it with `qualification` (a vector, a port…).
    pub(crate) fn count_event(&mut self, r: ExitReason, qualification: u64) {
        if self.mute {
            return;
        }
        self.m.counters.traps[r as usize] += 1;
        if self.break_on >> (r as u32) & 1 != 0 {
            self.broke.get_or_insert(r as u16);
        }
        let c = &*self.cpu;
        let eip = c.segs[CS as usize].base.wrapping_add(c.eip);
        let mut x = ExitInfo { reason: r as u32, qualification, ..Default::default() };
        if let Some((_, bytes, len)) = self.here.filter(|h| h.0 == eip) {
            x.instr_len = len as u32;
            x.instr_bytes[..15].copy_from_slice(&bytes);
        }
        let code = info::PROTECTED | if c.segs[CS as usize].big() { info::CODE32 } else { 0 };
        self.log.push(c.icount, self.vm, &x, eip, code);
    }

    /// A page fault at ring 1 or 3: hidden (the shadow lacks what the guest maps), a
    /// write to a traced page, or the guest's own (reflected with CR2).
    fn page_fault(&mut self, code: u16) -> Result<(), MonitorExit> {
        let lin = crate::addr::Linear(self.cpu.cr2);
        self.count_event(ExitReason::ExceptionNmi, 14);
        let write = code & 2 != 0;
        let user = code & 4 != 0;
        if lin.0 >= MONITOR_LIN {
            return Err(MonitorExit::Error(MonitorError::MonitorArea(lin.0)));
        }
        match self.guest_walk(lin, write, user) {
            Err(pf) => {
                self.m.v.cr2 = pf.addr;
                self.reflect(14, TrapKind::Exception, Some(pf.code))
            }
            Ok(w) if write && code & 1 != 0 && w.gpa.0 < self.m.guest_ram && self.protected(w.gpa.page()) => {
                self.traced_write(lin, &w).map_err(MonitorExit::Error)
            }
            Ok(w) => self.shadow_fill(lin, &w, write),
        }
    }

    /// Run the guest one instruction (the monitor's single step); whatever stopped it
    /// other than the budget is handled next.
    pub(crate) fn step_guest(&mut self) {
        let r = self.cpu.run(self.bus, 1);
        if !matches!(r, StopReason::BudgetSpent) {
            self.m.carry = Some(r);
        }
    }

    /// Forget what a stepped instruction ended with (its interpreter handled it).
    pub(crate) fn take_carry(&mut self) {
        self.m.carry = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Machine, MachineConfig, StartMode};
    use crate::vmm::{Technique, VmState, VmStop, Vmm, VmmConfig, VmmError};

    /// A VMM with one VM of 4 MiB running `code` at 1 MiB in flat 32-bit protected
    /// mode, under technique `t`.
    fn vmm_with(code: &[u8], t: Technique) -> Vmm {
        let mut m = Machine::new(&MachineConfig { mem_mb: 4, debug_exit_port: Some(0xf4), ..Default::default() })
            .expect("machine");
        m.load_flat(code, 0x10_0000, 0x10_0000, StartMode::Pm32).expect("load");
        let mut vmm = Vmm::new(VmmConfig::default());
        vmm.add_machine_as("t", m, t).expect("VM");
        vmm
    }

    fn monitor(vmm: &Vmm) -> &Monitor {
        vmm.vms[0].monitor.as_deref().expect("a monitor VM")
    }

    #[test]
    fn the_guest_kernel_runs_at_ring_1_and_its_io_is_emulated() {
        // mov al, 7; out 0xf4, al  (the isa-debug-exit port)
        let mut vmm = vmm_with(&[0xb0, 0x07, 0xe6, 0xf4], Technique::TrapAndEmulate);
        vmm.run(100);
        assert_eq!(vmm.vms[0].state, VmState::Stopped(VmStop::DebugExit(7)));
        assert_eq!(monitor(&vmm).world().cpl, 1);
        assert_eq!(monitor(&vmm).counters.traps[ExitReason::Io as usize], 1);
        // The OUT was emulated, not retired by the processor: one guest instruction.
        assert_eq!(vmm.vms[0].counters.retired, 1);
        // The trap is in the VMM's exit log, with the instruction that caused it.
        let r = vmm.log.iter().last().expect("a logged trap");
        assert_eq!((r.vm, r.reason, r.instr(), r.guest_eip), (1, ExitReason::Io as u16, &[0xe6, 0xf4][..], 0x10_0002));
    }

    #[test]
    fn sensitive_instructions_answer_wrong_without_psi_and_right_with_it() {
        // mov esp, 90000h (below the ROM area); push cs; pop ebx; mov al, 1; out 0xf4, al
        let code = [0xbc, 0x00, 0x00, 0x09, 0x00, 0x0e, 0x5b, 0xb0, 0x01, 0xe6, 0xf4];
        let ebx = |vmm: &Vmm| monitor(vmm).world().regs[3];
        let mut plain = vmm_with(&code, Technique::TrapAndEmulate);
        plain.run(100);
        assert_eq!(ebx(&plain) & 0xfff0, u32::from(MON_CODE & 0xfff0));
        assert_eq!(ebx(&plain) & 3, 1, "the classic x86 shows ring 1");
        let mut psi = vmm_with(&code, Technique::TrapAndEmulatePsi);
        psi.run(100);
        assert_eq!(ebx(&psi) & 3, 0, "PSI: the monitor answers with RPL 0");
        assert_eq!(monitor(&psi).counters.traps[ExitReason::SensitiveInstruction as usize], 1);
        let mut scan = vmm_with(&code, Technique::ScanBeforeExecute);
        scan.run(100);
        assert_eq!(ebx(&scan) & 3, 0, "the scanner's breakpoint: RPL 0");
        assert_eq!(monitor(&scan).counters.breakpoints, 1);
    }

    #[test]
    fn a_monitor_vm_and_a_v386_vm_share_the_vmm() {
        // The same guest twice, each with its own technique: both finish, each trap or
        // exit logged under its VM's tag, and neither sees the other's memory.
        let code = [0xbc, 0x00, 0x00, 0x09, 0x00, 0x0e, 0x5b, 0xb0, 0x01, 0xe6, 0xf4];
        let mut vmm = vmm_with(&code, Technique::TrapAndEmulate);
        let mut m = Machine::new(&MachineConfig { mem_mb: 4, debug_exit_port: Some(0xf4), ..Default::default() })
            .expect("machine");
        m.load_flat(&code, 0x10_0000, 0x10_0000, StartMode::Pm32).expect("load");
        vmm.add_machine_as("v", m, Technique::V386).expect("VM");
        vmm.run(1_000);
        for vm in &vmm.vms {
            assert_eq!(vm.state, VmState::Stopped(VmStop::DebugExit(1)), "{}", vm.name);
        }
        assert_eq!(vmm.vms[1].vcb.guest.regs[3] & 3, 0, "V386: the guest's own CS");
        assert_eq!(monitor(&vmm).world().regs[3] & 3, 1);
        let tags: alloc::vec::Vec<u16> = vmm.log.iter().map(|r| r.vm).collect();
        assert!(tags.contains(&1) && tags.contains(&2), "{tags:?}");
    }

    #[test]
    fn nothing_a_guest_does_panics_the_monitor() {
        // Pseudo-random code (a fixed LCG, so the test is the same every run) under each
        // technique: it ends in an error, a halt or the budget, never a panic.
        let mut x: u32 = 0x1234_5678;
        let techniques = [Technique::TrapAndEmulate, Technique::TrapAndEmulatePsi, Technique::ScanBeforeExecute];
        for round in 0..48 {
            let code: alloc::vec::Vec<u8> = (0..256)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect();
            let mut vmm = vmm_with(&code, techniques[round % 3]);
            let _ = vmm.run(2_000);
        }
    }

    #[test]
    fn the_monitor_needs_protected_mode() {
        let m = Machine::new(&MachineConfig { mem_mb: 4, ..Default::default() }).expect("machine");
        let mut vmm = Vmm::new(VmmConfig::default());
        let r = vmm.add_machine_as("real", m, Technique::TrapAndEmulate);
        assert!(matches!(r, Err(VmmError::Monitor(MonitorError::NotProtected))));
        assert!(vmm.vms.is_empty());
    }
}
