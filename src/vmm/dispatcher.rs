//! The *dispatcher* (Popek & Goldberg): the loop that enters a VM, receives its exit,
//! logs it, hands it to the interpreter for its kind and enters again; and the scheduler
//! around it, which time-shares the one processor among the VMs round robin, a quantum
//! of guest instructions each, with the preemption timer (docs/v386.md §10.3). Interrupts
//! from a VM's devices are injected into that VM (§10.1), through an interrupt-window
//! exit when the guest cannot take them yet (§10.2).
//!
//! The live view's debugger lives here too ([`Breaks`]): `run` can stop right after an
//! exit of a chosen reason is logged, before its interpreter runs, and finish the same
//! call later as if it had not stopped; `step` runs one VM alone, an instruction or up to
//! its next exit, which it leaves pending the same way.

use super::allocator::PAGE;
use super::exit::VmExit;
use super::hostbus::HostBus;
use super::interp::{self, Action};
use super::vcpu::Vcpu;
use super::vm::{VmState, VmStop};
use super::Vmm;
use crate::cpu::v386::vcb::exec;
use crate::cpu::v386::{event, guest_can_take_interrupt};
use crate::cpu::StopReason;
use crate::machine::BoardBus;
use crate::machine::{ClockMode, NS_PER_INSTRUCTION};
use crate::monitor::{MonitorError, MonitorExit};
use alloc::format;
use alloc::vec::Vec;

/// Why [`Vmm::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// The instruction budget is spent; VMs are still running.
    BudgetSpent,
    /// Every VM has stopped.
    AllStopped,
    /// Every VM that has not stopped is halted until a device event that the host's clock
    /// has not reached yet (wall-clock VMs only): call again after some real time passed.
    Waiting,
    /// VM `vm` (its tag) exited with `reason`, one of the reasons to break on
    /// ([`Vmm::set_break_on`]), or [`Vmm::step`] stopped at an exit: it is logged and
    /// counted but not handled yet ([`Vmm::pending_exit`]); the VM's state is as the exit
    /// left it. The next `run` or `step` of that VM handles it first. A software-monitor
    /// VM's trap is handled before the break (nothing pends).
    Break { vm: u16, reason: u16 },
}

/// Break on exit: the reasons to stop at, the exits logged but not yet handled, and the
/// run a break interrupted. Empty unless a front end asks for breaks; then the dispatcher
/// tests one mask per exit and one vector slot per turn.
// Saved in snapshots: a machine paused at a break restores paused at it.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Breaks {
    /// Bit n: stop at exits of reason n (numbers < 128; Table 8-1 ends at 64).
    mask: u128,
    /// By VM index: an exit logged, not handled yet.
    pending: Vec<Option<VmExit>>,
    /// The `run` a break interrupted, to be finished by the next one.
    suspended: Option<RunState>,
}

impl Breaks {
    #[inline]
    fn hits(&self, reason: u32) -> bool {
        reason < 128 && self.mask >> reason & 1 != 0
    }

    fn park(&mut self, i: usize, exit: VmExit) {
        if self.pending.len() <= i {
            self.pending.resize(i + 1, None);
        }
        self.pending[i] = Some(exit);
    }

    #[inline]
    fn take(&mut self, i: usize) -> Option<VmExit> {
        self.pending.get_mut(i).and_then(Option::take)
    }
}

/// Where a `run` is: its budget, what it spent, the round of turns it is in, and the
/// turn a break interrupted (VM index and the instructions left of its quantum).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct RunState {
    budget: u64,
    spent: u64,
    /// Over the current round of turns: instructions retired, the shortest idle skip,
    /// and the turns left in it.
    round_retired: u64,
    round_idle: u64,
    round_left: usize,
    /// VMs of the current round that wait for the host's clock, and that ran at all.
    round_waiting: usize,
    round_live: usize,
    resume: Option<(usize, u64)>,
}

/// How a turn ended: instructions retired, idle time skipped (a halted VM), and the
/// reason of the break it stopped at (a V386 VM's exit is pending; a monitor VM's trap
/// was handled).
struct TurnEnd {
    retired: u64,
    idle: u64,
    broke: Option<u16>,
}

impl TurnEnd {
    fn of(retired: u64, idle: u64) -> Self {
        TurnEnd { retired, idle, broke: None }
    }
}

/// What [`Vmm::turn`] reports as the idle skip of a wall-clock VM that waits for real time.
const WAITING: u64 = u64::MAX;

/// An exit number as a bit of the break mask.
const fn bit(reason: crate::cpu::v386::ExitReason) -> u128 {
    1 << reason as u32
}

impl Vmm {
    /// Run the VMs for about `budget` guest instructions in all, turn by turn. When every
    /// VM is halted, the time they skip counts instead (as the instructions that would
    /// have run), so a machine of idle VMs still returns.
    ///
    /// After [`RunOutcome::Break`], the next call finishes the interrupted one: it handles
    /// the pending exit, goes on with that turn and spends what was left of *that* call's
    /// budget (`budget` is not used), so a run broken and resumed any number of times
    /// logs the same exits as one that was not.
    pub fn run(&mut self, budget: u64) -> RunOutcome {
        let mut st = self.brk.suspended.take().unwrap_or(RunState {
            budget,
            spent: 0,
            round_retired: 0,
            round_idle: u64::MAX,
            round_left: self.vms.len(),
            round_waiting: 0,
            round_live: 0,
            resume: None,
        });
        loop {
            let resume = st.resume.take();
            let i = match resume {
                Some((i, _)) => i,
                None => {
                    if self.vms.iter().all(|v| matches!(v.state, VmState::Stopped(_))) {
                        return RunOutcome::AllStopped;
                    }
                    if st.spent >= st.budget {
                        return RunOutcome::BudgetSpent;
                    }
                    let i = self.next_vm % self.vms.len();
                    self.next_vm = (i + 1) % self.vms.len();
                    i
                }
            };
            if !matches!(self.vms[i].state, VmState::Stopped(_)) {
                let quantum = match resume {
                    Some((_, left)) => left,
                    None => {
                        self.vms[i].counters.turns += 1;
                        (self.config.quantum as u64).min(st.budget - st.spent).max(1)
                    }
                };
                let t = self.turn(i, quantum);
                st.spent += t.retired;
                st.round_retired += t.retired;
                st.round_live += 1;
                if t.idle == WAITING {
                    st.round_waiting += 1;
                } else if t.idle > 0 {
                    st.round_idle = st.round_idle.min(t.idle);
                }
                if let Some(reason) = t.broke {
                    // A monitor VM that broke at its HLT has ended its turn (its trap is
                    // handled, nothing pends): the resumed turn is empty, so the VM idles
                    // from the next round as it would have without the break.
                    let vm = &self.vms[i];
                    let over = vm.monitor.is_some() && vm.state == VmState::Halted;
                    st.resume = Some((i, if over { 0 } else { quantum - t.retired }));
                    self.brk.suspended = Some(st);
                    return RunOutcome::Break { vm: self.vms[i].id, reason };
                }
            }
            st.round_left -= 1;
            if st.round_left == 0 {
                if st.round_retired == 0 && st.round_live > 0 && st.round_waiting == st.round_live {
                    return RunOutcome::Waiting;
                }
                if st.round_retired == 0 && st.round_idle != u64::MAX {
                    st.spent += st.round_idle;
                }
                (st.round_retired, st.round_idle, st.round_left) = (0, u64::MAX, self.vms.len());
                (st.round_waiting, st.round_live) = (0, 0);
            }
        }
    }

    /// Stop [`Vmm::run`] at every exit whose reason number n has bit n set in `reasons`
    /// (0: never). Exits are still logged and counted first.
    pub fn set_break_on(&mut self, reasons: u128) {
        self.brk.mask = reasons;
    }

    pub fn break_on(&self) -> u128 {
        self.brk.mask
    }

    /// The exit VM `i` (by index) stopped at and has not handled yet, after a break or a
    /// step. Its exit information is still in the VM's VCB.
    pub fn pending_exit(&self, i: usize) -> Option<VmExit> {
        self.brk.pending.get(i).copied().flatten()
    }

    /// Step VM `i` (by index) alone, the others standing still. With an exit pending, its
    /// interpreter completes the instruction first: for `max` = 1 that is the step. Then
    /// the VM runs at most `max` guest instructions (the preemption timer: 1 is a single step)
    /// and stops at its first exit that is not the timer's, which is logged and left
    /// pending as a break leaves it. A halted VM's time moves on to its next device event
    /// (as in `run`, skipped time counts against `max`): a single step of a halted VM is
    /// that wait, a larger `max` goes on to the exit after it wakes. Returns `Break` when
    /// an exit is pending afterwards, or when a monitor VM stopped at a trap (handled:
    /// the monitor leaves none pending).
    pub fn step(&mut self, i: usize, max: u64) -> RunOutcome {
        if i >= self.vms.len() || matches!(self.vms[i].state, VmState::Stopped(_)) {
            return RunOutcome::AllStopped;
        }
        let pending = self.brk.take(i);
        // A monitor VM's trap the step stopped at (handled, not pending).
        let mut trapped = None;
        if let Some(exit) = pending {
            match self.interpret(i, exit) {
                Action::Continue | Action::EndTurn => {}
                Action::Stop(why) => self.vms[i].state = VmState::Stopped(why),
                Action::Reset => self.reset_vm(i),
            }
        }
        if (pending.is_none() || max > 1) && !matches!(self.vms[i].state, VmState::Stopped(_)) {
            let mask = core::mem::replace(&mut self.brk.mask, !bit(crate::cpu::v386::ExitReason::PreemptionTimer));
            let mut left = max.max(1);
            loop {
                let t = self.turn(i, left);
                let used = t.retired.saturating_add(t.idle).max(1);
                trapped = t.broke.filter(|_| self.vms[i].monitor.is_some());
                if t.broke.is_some() || used >= left || matches!(self.vms[i].state, VmState::Stopped(_)) {
                    break;
                }
                left -= used;
            }
            self.brk.mask = mask;
        }
        let vm = &self.vms[i];
        match (self.pending_exit(i), trapped) {
            (Some(_), _) => RunOutcome::Break { vm: vm.id, reason: vm.vcb.exit.reason as u16 },
            _ if matches!(vm.state, VmState::Stopped(_)) => RunOutcome::AllStopped,
            (None, Some(reason)) => RunOutcome::Break { vm: vm.id, reason },
            (None, None) => RunOutcome::BudgetSpent,
        }
    }

    /// One turn of VM `i`: enter and handle exits until it has retired `quantum`
    /// instructions, halts or stops, or an exit to break at happens. An exit left pending
    /// by a break or a step is handled first.
    fn turn(&mut self, i: usize, quantum: u64) -> TurnEnd {
        if self.vms[i].monitor.is_some() {
            return self.monitor_turn(i, quantum);
        }
        if self.vms[i].emulated.is_some() {
            return self.emulated_turn(i, quantum);
        }
        let mut left = quantum;
        let mut pending = self.brk.take(i);
        loop {
            let exit = match pending.take() {
                Some(exit) => exit,
                None => {
                    let exit = match self.enter(i, &mut left, quantum) {
                        Ok(exit) => exit,
                        Err(end) => return end,
                    };
                    // Logged and counted, not handled: the front end sees the exit as it
                    // happened. (One test of a zero mask when no break is set.)
                    if self.brk.mask != 0 && self.brk.hits(self.vms[i].vcb.exit.reason & 0xffff) {
                        self.brk.park(i, exit);
                        let reason = self.vms[i].vcb.exit.reason as u16;
                        return TurnEnd { retired: quantum - left, idle: 0, broke: Some(reason) };
                    }
                    exit
                }
            };
            match self.interpret(i, exit) {
                Action::Continue => {}
                Action::EndTurn => return TurnEnd::of(quantum - left, 0),
                Action::Stop(why) => {
                    self.vms[i].state = VmState::Stopped(why);
                    return TurnEnd::of(quantum - left, 0);
                }
                Action::Reset => self.reset_vm(i),
            }
            if left == 0 {
                self.vms[i].counters.preemptions += 1;
                return TurnEnd::of(quantum, 0);
            }
        }
    }

    /// One turn of VM `i` under the software monitor (techniques 2–4): its world runs
    /// on the processor slice by slice, up to each device event, until it has retired
    /// `quantum` instructions, halts or stops, or a trap of a reason to break on happened.
    /// The monitor logs its traps as they happen; they are counted here by reason. A
    /// break comes after the trap is handled (the monitor leaves nothing pending, unlike
    /// a V386 exit): the guest's state is as the handler left it.
    fn monitor_turn(&mut self, i: usize, quantum: u64) -> TurnEnd {
        if quantum == 0 {
            // The rest of a turn that broke at the VM's HLT: that turn is over (see `run`).
            return TurnEnd::of(0, 0);
        }
        let mut left = quantum;
        loop {
            let slice = match self.ready(i, left, quantum) {
                Ok(s) => s,
                Err(end) => return end,
            };
            let vm = &mut self.vms[i];
            let Some(mut mon) = vm.monitor.take() else { return TurnEnd::of(quantum - left, 0) };
            let (id, before) = (vm.id, mon.counters.traps);
            let entry = self.cpu.icount;
            // The guest reads the processor's TSC (RDTSC at ring 1): its own time.
            let host_tsc = core::mem::replace(&mut self.cpu.msr.tsc_offset, vm.tsc_offset_at(entry));
            let r = {
                let (mut bus, _) = HostBus::new(&mut self.mem, vm, entry);
                mon.run(&mut self.cpu, &mut bus, &mut self.log, id, slice, self.brk.mask)
            };
            vm.keep_tsc_offset(core::mem::replace(&mut self.cpu.msr.tsc_offset, host_tsc), entry);
            let retired = self.cpu.icount - entry;
            vm.clock += retired;
            vm.counters.retired += retired;
            left = left.saturating_sub(retired);
            // A trap to break on that ended the run another way (a HLT, a page to map)
            // shows in the counts.
            let mut broke = None;
            for (r, (n, (now, then))) in
                vm.counters.by_reason.iter_mut().zip(mon.counters.traps.iter().zip(before)).enumerate()
            {
                *n += now - then;
                if *now != then && broke.is_none() && self.brk.hits(r as u32) {
                    broke = Some(r as u16);
                }
            }
            vm.monitor = Some(mon);
            let stop = match r {
                MonitorExit::BudgetSpent | MonitorExit::Yield => None,
                MonitorExit::Break(reason) => {
                    broke = Some(reason);
                    None
                }
                MonitorExit::Halted => {
                    vm.state = VmState::Halted;
                    return TurnEnd { retired: quantum - left, idle: 0, broke };
                }
                MonitorExit::MapPage(page) => {
                    vm.map_page(&mut self.mem, page).err().map(|e| VmStop::Error(format!("{e}")))
                }
                MonitorExit::DebugExit(v) => Some(VmStop::DebugExit(v)),
                MonitorExit::PowerOff => Some(VmStop::PowerOff),
                MonitorExit::DeadHalt => Some(VmStop::DeadHalt),
                MonitorExit::Error(MonitorError::Shutdown) => Some(VmStop::TripleFault),
                MonitorExit::Error(e) => Some(VmStop::Error(format!("{e}"))),
            };
            if let Some(why) = stop {
                vm.state = VmState::Stopped(why);
            }
            if matches!(vm.state, VmState::Stopped(_)) {
                return TurnEnd::of(quantum - left, 0);
            }
            if left == 0 {
                vm.counters.preemptions += 1;
                return TurnEnd { retired: quantum, idle: 0, broke };
            }
            if broke.is_some() {
                return TurnEnd { retired: quantum - left, idle: 0, broke };
            }
        }
    }

    /// One turn of VM `i` under emulation (technique 1): the VMM interprets the guest on
    /// the VM's own software processor over its RAM and board, slice by slice up to each
    /// device event, as the bare machine runs (`Machine::run`); the guest never reaches
    /// the host processor, so nothing exits. Its interrupts reach that processor
    /// directly from the board. The processor's state goes to the VCB's guest area after
    /// the turn, for the live view.
    fn emulated_turn(&mut self, i: usize, quantum: u64) -> TurnEnd {
        let mut left = quantum;
        let end = loop {
            let slice = match self.ready(i, left, quantum) {
                Ok(s) => s,
                Err(end) => break end,
            };
            let vm = &mut self.vms[i];
            let Some(mut cpu) = vm.emulated.take() else { break TurnEnd::of(quantum - left, 0) };
            let before = cpu.icount;
            cpu.msr.tsc_offset = vm.tsc_offset_at(before);
            let (base, len) = (vm.ram_base as usize, vm.ram_len);
            let mut bus = BoardBus { ram: &mut self.mem.bytes[base..base + len], board: &mut vm.board };
            let r = cpu.run(&mut bus, slice);
            let retired = cpu.icount - before;
            vm.keep_tsc_offset(cpu.msr.tsc_offset, before);
            vm.clock += retired;
            vm.counters.retired += retired;
            left = left.saturating_sub(retired);
            let halted_if = cpu.flags.if_();
            match r {
                StopReason::BudgetSpent | StopReason::Yield | StopReason::VmExit | StopReason::HostTrap => {}
                StopReason::Halted if halted_if => vm.state = VmState::Halted,
                StopReason::Halted => vm.state = VmState::Stopped(VmStop::DeadHalt),
                StopReason::DebugExit(v) => vm.state = VmState::Stopped(VmStop::DebugExit(v)),
                StopReason::PowerOff => vm.state = VmState::Stopped(VmStop::PowerOff),
                StopReason::Shutdown => vm.state = VmState::Stopped(VmStop::TripleFault),
                StopReason::Reset => {
                    // As `Machine::reset`: the processor's power-on state, the chipset's
                    // shadow RAM off.
                    cpu.reset();
                    vm.board.pci.reset();
                }
            }
            vm.emulated = Some(cpu);
            if vm.state != VmState::Runnable {
                break TurnEnd::of(quantum - left, 0);
            }
            if left == 0 {
                vm.counters.preemptions += 1;
                break TurnEnd::of(quantum, 0);
            }
        };
        let vm = &mut self.vms[i];
        if let Some(cpu) = vm.emulated.as_deref() {
            vm.vcb.guest = cpu.capture_state();
        }
        end
    }

    /// Bring VM `i`'s devices up to its time and see whether it can run: Ok(the
    /// instructions it may run before its next device event, at most `left`). `Err` ends
    /// the turn: the VM is halted with nothing to do (the instructions' worth of time it
    /// skipped), or stopped.
    fn ready(&mut self, i: usize, left: u64, quantum: u64) -> Result<u64, TurnEnd> {
        let vm = &mut self.vms[i];
        vm.board.set_icount(vm.clock);
        vm.board.update();
        if vm.board.take_memory_map_change() {
            if let Err(e) = vm.remap(&mut self.mem) {
                vm.state = VmState::Stopped(VmStop::Error(format!("{e}")));
                return Err(TurnEnd::of(quantum - left, 0));
            }
            if let Some(mon) = vm.monitor.as_mut() {
                mon.pmap_changed();
            }
        }
        if vm.state == VmState::Halted {
            if vm.board.interrupt_pending() {
                vm.state = VmState::Runnable;
            } else {
                // Nothing to do until its next device event: let its time pass there
                // (each VM has its own timeline in deterministic mode).
                let now = vm.board.now();
                let Some(t) = vm.board.next_event() else {
                    vm.state = VmState::Stopped(VmStop::DeadHalt);
                    return Err(TurnEnd::of(quantum - left, 0));
                };
                if vm.board.clock.mode() == ClockMode::Wall {
                    // Real time brings the event: `set_host_time` moves the clock.
                    return Err(TurnEnd::of(quantum - left, WAITING));
                }
                let idle = (t.saturating_sub(now) / NS_PER_INSTRUCTION).max(1);
                vm.board.clock.idle_until(t.max(now + 1), vm.clock);
                // The TSC counts through HLT (SDM Vol. 3B §18.17), as on the bare machine.
                vm.tsc_ahead = vm.tsc_ahead.wrapping_add(idle);
                return Err(TurnEnd::of(quantum - left, idle));
            }
        }
        // The slice ends at the end of the quantum or at the next device event,
        // whichever comes first, so timer interrupts reach the guest on time.
        let now = vm.board.now();
        Ok(match vm.board.next_event() {
            Some(t) if t > now => (t - now) / NS_PER_INSTRUCTION,
            Some(_) => 1,
            None => left,
        }
        .clamp(1, left.max(1)))
    }

    /// Bring VM `i`'s devices up to its time, enter it and return its exit, logged and
    /// counted; `left` loses the instructions it retired. `Err` ends the turn as
    /// [`Vmm::ready`] says.
    fn enter(&mut self, i: usize, left: &mut u64, quantum: u64) -> Result<VmExit, TurnEnd> {
        let slice = self.ready(i, *left, quantum)?;
        self.prepare_injection(i);
        let vm = &mut self.vms[i];
        vm.vcb.controls.preempt_timer = slice.min(u32::MAX as u64) as u32;
        if core::mem::take(&mut vm.flush_tlb) {
            vm.vcb.controls.tlb_control = 1;
        }
        // DMA that ran in an interpreter (an intercepted write to the floppy's or the
        // 8237A's ports) wrote the VM's RAM behind the processor's back: drop the code
        // it had decoded from those pages, as `Cpu::after_device_access` does after a
        // port the guest reaches directly. Pages past the VM's RAM (DMA addresses its
        // RAM does not back) are not its own and are skipped.
        let (base, pages) = (vm.ram_base / PAGE, vm.ram_len as u64 / PAGE);
        let icache = &mut self.cpu.icache;
        vm.board.for_each_dirty_page(&mut |p| {
            if (p as u64) < pages {
                icache.note_write((base + p as u64) as u32);
            }
        });
        let entry = self.cpu.icount;
        // The guest's TSC (the VCB's offset is added to the host's, §7): its own time.
        let host_tsc = self.cpu.msr.tsc_offset;
        vm.vcb.controls.tsc_offset = vm.tsc_offset_at(entry).wrapping_sub(host_tsc);
        let r = {
            let (mut bus, vcb) = HostBus::new(&mut self.mem, vm, entry);
            Vcpu::new(&mut self.cpu, vcb).run(&mut bus, u64::MAX)
        };
        let vm = &mut self.vms[i];
        vm.keep_tsc_offset(vm.vcb.controls.tsc_offset.wrapping_add(host_tsc), entry);
        let retired = vm.vcb.exit.guest_retired;
        vm.clock += retired;
        vm.counters.retired += retired;
        *left = left.saturating_sub(retired);
        let exit = match r {
            Ok(exit) => exit,
            Err(e) => {
                vm.state = VmState::Stopped(VmStop::Error(format!("{e}")));
                return Err(TurnEnd::of(quantum - *left, 0));
            }
        };
        let g = &vm.vcb.guest;
        let eip = g.segs[crate::cpu::CS as usize].base.wrapping_add(g.eip);
        let reason = vm.vcb.exit.reason & 0xffff;
        if let Some(c) = vm.counters.by_reason.get_mut(reason as usize) {
            *c += 1;
        }
        self.log.push(self.cpu.icount, vm.id, &vm.vcb.exit, eip, super::log::code_info(g));
        Ok(exit)
    }

    /// Wall-clock VMs: the host's monotonic time now, in nanoseconds, before a call to
    /// [`Vmm::run`]. Deterministic VMs ignore it.
    pub fn set_host_time(&mut self, ns: u64) {
        for vm in &mut self.vms {
            vm.board.clock.set_host_time(ns, vm.clock);
        }
    }

    /// Route an exit to its interpreter.
    fn interpret(&mut self, i: usize, exit: VmExit) -> Action {
        let vm = &mut self.vms[i];
        match exit {
            VmExit::IoOut { port, size, value } => interp::io_out(vm, &mut self.mem, port, size, value),
            VmExit::IoIn { port, size } => interp::io_in(vm, port, size),
            VmExit::Hlt => interp::hlt(vm),
            VmExit::Cpuid { leaf, .. } => interp::cpuid(vm, &self.cpu, leaf),
            VmExit::Hypercall { nr, args, .. } => interp::vcall(vm, nr, args),
            VmExit::Rdmsr { index } => interp::rdmsr(vm, index),
            VmExit::Wrmsr { index, value } => interp::wrmsr(vm, index, value),
            VmExit::NestedPageFault { gpa, access, present, .. } => {
                interp::nested_page_fault(vm, &mut self.mem, gpa, access, present)
            }
            // Asynchronous exits: the loop looks at the devices and the quantum again.
            VmExit::PreemptionTimer | VmExit::InterruptWindow | VmExit::ExternalInterrupt => Action::Continue,
            VmExit::Sensitive { id, .. } => interp::sensitive(vm, id),
            VmExit::TripleFault => Action::Stop(VmStop::TripleFault),
            VmExit::InvalidGuestState { check } => {
                Action::Stop(VmStop::Error(format!("invalid guest state (check {check})")))
            }
            other => Action::Stop(VmStop::Error(format!("unexpected exit {other:?}"))),
        }
    }

    /// An interrupt from the VM's devices: inject it if the guest can take it now, else
    /// ask for an interrupt-window exit.
    fn prepare_injection(&mut self, i: usize) {
        let vm = &mut self.vms[i];
        let c = &mut vm.vcb.controls;
        c.exec &= !exec::INTWIN_EXIT;
        if c.event_inject & event::VALID != 0 || !vm.board.interrupt_pending() {
            return;
        }
        if guest_can_take_interrupt(&vm.vcb.guest) {
            if let Some(v) = vm.board.acknowledge_interrupt() {
                vm.vcb.controls.event_inject = event::VALID | event::EXTERNAL << 8 | v as u32;
            }
        } else {
            vm.vcb.controls.exec |= exec::INTWIN_EXIT;
        }
    }

    /// The VM's reset line: its processor restarts at F000:FFF0, its chipset forgets the
    /// shadow RAM; RAM and devices keep their state (as `Machine::reset`).
    fn reset_vm(&mut self, i: usize) {
        let vm = &mut self.vms[i];
        vm.vcb.guest = crate::cpu::v386::State::default();
        vm.vcb.controls.event_inject = 0;
        vm.board.pci.reset();
        vm.state = VmState::Runnable;
        if let Err(e) = vm.remap(&mut self.mem) {
            vm.state = VmState::Stopped(VmStop::Error(format!("{e}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{ClockMode, Machine, MachineConfig, DEFAULT_RTC_START};
    use crate::vmm::VmmConfig;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A real-mode boot sector calls a routine at 7D00h twice (so its code is decoded and
    /// cached), has the floppy controller DMA a sector over it (8237A channel 2, READ DATA
    /// of C0 H0 R2: every port write is an exit, so the transfer runs in the interpreter),
    /// and calls it again. The routine prints 'A'; the sector's version prints 'B'.
    #[test]
    fn code_written_by_dma_during_an_exit_is_not_run_stale() {
        dma_over_cached_code(crate::vmm::Technique::V386);
    }

    /// The same boot sector on the VM's own software processor (emulation): the DMA
    /// happens while that processor runs, and the VM still prints "AAB".
    #[test]
    fn an_emulated_vm_boots_the_same_floppy() {
        dma_over_cached_code(crate::vmm::Technique::Emulation);
    }

    fn dma_over_cached_code(t: crate::vmm::Technique) {
        let mut code: Vec<u8> = Vec::new();
        let call_7d00 = |code: &mut Vec<u8>| {
            let next = 0x7c00 + code.len() as u16 + 3;
            code.push(0xe8);
            code.extend(0x7d00u16.wrapping_sub(next).to_le_bytes());
        };
        // mov al, v; out port, al
        let out = |code: &mut Vec<u8>, port: u8, v: u8| code.extend([0xb0, v, 0xe6, port]);
        call_7d00(&mut code);
        call_7d00(&mut code);
        // Channel 2: mask, clear the flip-flop, mode single/write, address 7D00h, page 0,
        // count 511, unmask (8237A datasheet; page register 81h).
        for (port, v) in [(0x0a, 6), (0x0c, 0), (0x0b, 0x46), (0x04, 0x00), (0x04, 0x7d), (0x81, 0)] {
            out(&mut code, port, v);
        }
        for (port, v) in [(0x05, 0xff), (0x05, 0x01), (0x0a, 0x02)] {
            out(&mut code, port, v);
        }
        // mov dx, 3F5h; READ DATA (82077AA Table 5-1): MFM, drive 0, C0 H0 R2 N2, EOT 18.
        code.extend([0xba, 0xf5, 0x03]);
        for b in [0x46, 0, 0, 0, 2, 2, 18, 0x1b, 0xff] {
            code.extend([0xb0, b, 0xee]);
        }
        call_7d00(&mut code);
        code.extend([0xfa, 0xf4]); // cli; hlt
        let mut img = vec![0u8; 1_474_560];
        img[..code.len()].copy_from_slice(&code);
        // mov al, 'A' / 'B'; out 0E9h, al; ret
        img[0x100..0x105].copy_from_slice(&[0xb0, b'A', 0xe6, 0xe9, 0xc3]);
        img[512..517].copy_from_slice(&[0xb0, b'B', 0xe6, 0xe9, 0xc3]);
        img[510] = 0x55;
        img[511] = 0xaa;

        let cfg = MachineConfig {
            mem_mb: 1,
            debug_exit_port: None,
            clock: ClockMode::Deterministic,
            rtc_start: DEFAULT_RTC_START,
        };
        let mut m = Machine::new(&cfg).unwrap();
        m.boot_floppy(&img).unwrap();
        m.insert_floppy(0, img).unwrap();
        let mut vmm = Vmm::new(VmmConfig::default());
        let id = vmm.add_machine_as("dma", m, t).unwrap();
        vmm.run(100_000);
        let vm = vmm.vm(id).unwrap();
        assert_eq!(vm.state, VmState::Stopped(VmStop::DeadHalt));
        assert_eq!(vm.board.debugcon.out, b"AAB");
    }
}
