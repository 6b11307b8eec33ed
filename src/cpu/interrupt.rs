//! Delivering exceptions and interrupts (SDM Vol. 3A §6.12, Vol. 2A "INT n/INTO/INT3/INT1"):
//! through the real-mode IVT, or through IDT interrupt, trap and task gates with stack
//! switches to inner rings and out of virtual-8086 mode. Double faults and the triple-fault
//! shutdown follow §6.15, Table 6-5.

use super::decode::{CS, DS, ES, FS, GS, SS};
use super::exception::{idt_error, selector_error, Class, Exception};
use super::flags::{AC, IF, NT, RF, TF, VM};
use super::seg::{systype, Seg};
use super::{Cpu, Fault, Res, StopReason, ESP};
use crate::bus::Bus;

/// What caused an interrupt, which decides the privilege check and the EXT bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// INT n, INT3, INTO: the gate's DPL must be >= CPL.
    Software,
    /// INT1 (ICEBP, F1): delivered like a hardware #DB, no DPL check.
    Icebp,
    /// A processor exception: EXT set in error codes.
    Exception,
    /// An external interrupt (INTR): EXT set.
    External,
}

/// State to put back if delivery itself faults, so the next exception sees the original
/// context (the SDM's "the processor state is as before the instruction").
struct Snapshot {
    segs: [Seg; 6],
    esp: u32,
    eip: u32,
    flags: u32,
    cpl: u8,
}

impl Cpu {
    fn snapshot(&self) -> Snapshot {
        Snapshot { segs: self.segs, esp: self.regs[ESP], eip: self.eip, flags: self.flags.get(), cpl: self.cpl }
    }

    fn restore(&mut self, s: Snapshot) {
        self.segs = s.segs;
        self.regs[ESP] = s.esp;
        self.eip = s.eip;
        self.flags.set(s.flags);
        self.cpl = s.cpl;
    }

    /// Deliver exception `e` raised by the current instruction, escalating to #DF and to
    /// shutdown as §6.15 prescribes. Returns `Some(Shutdown)` on a triple fault.
    pub(crate) fn raise<B: Bus>(&mut self, bus: &mut B, e: Exception) -> Option<StopReason> {
        let mut e = e;
        if e == Exception::VmExit {
            return self.complete_exit(bus);
        }
        // Benign exceptions raised while delivering one are handled serially (Table 6-5),
        // and that can recur without end (an #AC on every push of a frame): give up after a
        // few rounds; the run loop retries on its next step, which the budget bounds.
        for _ in 0..8 {
            if self.v386.is_some() {
                // V386 mode: an intercepted exception exits before anything is pushed
                // (docs/v386.md §5.5).
                if let Some(r) = self.vx_exception(bus, e) {
                    return r;
                }
            }
            if let Exception::PF { addr, .. } = e {
                self.cr2 = addr;
            }
            let snap = self.snapshot();
            match self.deliver(bus, e.vector(), Kind::Exception, e.error_code()) {
                Ok(()) => return None,
                Err(Fault::HostTrap) => return Some(StopReason::HostTrap),
                Err(Fault::VmExit) | Err(Fault::Exc(Exception::VmExit)) => {
                    // The delivery itself exited (a nested page fault on the guest's IDT
                    // or stack): the VMM re-injects the event (IDT_VECTORING_INFO).
                    self.restore(snap);
                    self.note_vectoring(e);
                    return self.complete_exit(bus);
                }
                Err(Fault::Exc(e2)) => {
                    self.restore(snap);
                    let (c1, c2) = (e.class(), e2.class());
                    if c1 == Class::DoubleFault {
                        if let Some(r) = self.vx_triple_fault(bus) {
                            return r;
                        }
                        return Some(StopReason::Shutdown);
                    }
                    let double = (c1 == Class::Contributory && c2 == Class::Contributory)
                        || (c1 == Class::PageFault && matches!(c2, Class::Contributory | Class::PageFault));
                    e = if double { Exception::DF } else { e2 };
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Record exception `e` as the event whose delivery an exit interrupted (§5.5).
    fn note_vectoring(&mut self, e: Exception) {
        use super::v386::event;
        let kind = if e.is_trap() { event::SOFTWARE_EXCEPTION } else { event::HARDWARE_EXCEPTION };
        let code = e.error_code();
        if let Some(x) = self.exit_info_mut() {
            x.idt_vectoring_info =
                event::VALID | kind << 8 | e.vector() as u32 | if code.is_some() { event::ERROR_CODE } else { 0 };
            x.idt_vectoring_error_code = code.unwrap_or(0) as u32;
        }
    }

    /// Deliver an external interrupt the interrupt controller acknowledged.
    pub(crate) fn deliver_external<B: Bus>(&mut self, bus: &mut B, vector: u8) -> Option<StopReason> {
        self.halted = false;
        let snap = self.snapshot();
        match self.deliver(bus, vector, Kind::External, None) {
            Ok(()) => None,
            Err(Fault::HostTrap) => Some(StopReason::HostTrap),
            Err(Fault::VmExit) | Err(Fault::Exc(Exception::VmExit)) => {
                self.restore(snap);
                if let Some(x) = self.exit_info_mut() {
                    x.idt_vectoring_info = super::v386::event::VALID | vector as u32;
                }
                self.complete_exit(bus)
            }
            Err(Fault::Exc(e)) => {
                self.restore(snap);
                self.raise(bus, e)
            }
            Err(_) => None,
        }
    }

    /// Deliver interrupt `vector`; on return CS:EIP is the handler. EIP must already be the
    /// return address (next instruction for traps and INT n, the faulting one for faults).
    pub(crate) fn deliver<B: Bus>(&mut self, bus: &mut B, vector: u8, kind: Kind, error: Option<u16>) -> Res<()> {
        if self.trap_events && self.v386.is_none() {
            // A software monitor's IDT: the event goes to the host before anything is
            // read or pushed (`crate::monitor`).
            let kind = match kind {
                Kind::Software => super::TrapKind::Software,
                Kind::Icebp => super::TrapKind::Icebp,
                Kind::Exception => super::TrapKind::Exception,
                Kind::External => super::TrapKind::External,
            };
            self.trapped = Some(super::TrapEvent { vector, kind, error });
            return Err(Fault::HostTrap);
        }
        if !self.protected() {
            return self.deliver_real(bus, vector);
        }
        let ext: u16 = matches!(kind, Kind::Exception | Kind::External | Kind::Icebp) as u16;
        // The gate (SDM Vol. 3A §6.10, §6.11).
        let off = vector as u32 * 8;
        if off + 7 > self.idtr.limit as u32 {
            return Err(Exception::GP(idt_error(vector) | ext).into());
        }
        let lin = self.idtr.base.wrapping_add(off);
        let lo = self.read_sys32(bus, lin)?;
        let hi = self.read_sys32(bus, lin.wrapping_add(4))?;
        let gate = super::seg::Descriptor { lo, hi };
        let gtype = gate.sys_type();
        if gate.is_system()
            && !matches!(
                gtype,
                systype::TASK_GATE
                    | systype::INT_GATE16
                    | systype::INT_GATE32
                    | systype::TRAP_GATE16
                    | systype::TRAP_GATE32
            )
            || !gate.is_system()
        {
            return Err(Exception::GP(idt_error(vector) | ext).into());
        }
        if kind == Kind::Software && gate.dpl() < self.cpl {
            return Err(Exception::GP(idt_error(vector)).into());
        }
        if !gate.present() {
            return Err(Exception::NP(idt_error(vector) | ext).into());
        }
        if gtype == systype::TASK_GATE {
            let tss_sel = gate.gate_selector();
            self.task_switch(bus, tss_sel, super::task::Reason::Interrupt, ext)?;
            if let Some(code) = error {
                let big = self.segs[CS as usize].big() || self.tr.sys_type() == systype::TSS32_BUSY;
                self.push(bus, code as u32, big)?;
            }
            return Ok(());
        }
        let gate32 = matches!(gtype, systype::INT_GATE32 | systype::TRAP_GATE32);
        let sel = gate.gate_selector();
        if sel & !3 == 0 {
            return Err(Exception::GP(ext).into());
        }
        let d = match self.read_descriptor(bus, sel) {
            Ok(d) => d,
            Err(Some(e)) => return Err(e.into()),
            Err(None) => return Err(Exception::GP(selector_error(sel) | ext).into()),
        };
        let cs = d.seg(sel);
        if !cs.is_code() || cs.dpl() > self.cpl {
            return Err(Exception::GP(selector_error(sel) | ext).into());
        }
        if !cs.present() {
            return Err(Exception::NP(selector_error(sel) | ext).into());
        }
        let offset = if gate32 { gate.gate_offset() } else { gate.gate_offset() & 0xffff };
        let old_flags = self.flags.get();
        let old_cs = self.segs[CS as usize].sel;
        let old_eip = self.eip;
        let from_v86 = self.v86();

        if !cs.conforming() && cs.dpl() < self.cpl {
            // Inter-privilege: switch to the stack for the new ring from the TSS.
            let new_cpl = cs.dpl();
            if from_v86 && new_cpl != 0 {
                return Err(Exception::GP(selector_error(sel) | ext).into());
            }
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, ext)?;
            let ss = self.check_tss_ss(bus, ss_sel, new_cpl, ext)?;
            let old_ss = self.segs[SS as usize].sel;
            let old_esp = self.regs[ESP];
            let n = if gate32 { 4 } else { 2 };
            let count = if from_v86 { 9 } else { 5 } + error.is_some() as u32;
            // Check the whole frame fits before writing any of it (§6.12.1).
            let new_sp_top = if ss.big() { esp } else { esp & 0xffff };
            let frame_lo = new_sp_top.wrapping_sub(count * n);
            if !ss.in_limit(frame_lo, count * n) {
                return Err(Exception::SS(selector_error(ss_sel) | ext).into());
            }
            let saved = (self.segs, self.regs[ESP], self.cpl, self.flags.get());
            self.segs[SS as usize] = ss;
            self.regs[ESP] = esp;
            self.cpl = new_cpl;
            let r = (|| -> Res<()> {
                if from_v86 {
                    for s in [GS, FS, DS, ES] {
                        let v = saved.0[s as usize].sel as u32;
                        self.push(bus, v, gate32)?;
                    }
                }
                self.push(bus, old_ss as u32, gate32)?;
                self.push(bus, old_esp, gate32)?;
                self.push(bus, old_flags, gate32)?;
                self.push(bus, old_cs as u32, gate32)?;
                self.push(bus, old_eip, gate32)?;
                if let Some(code) = error {
                    self.push(bus, code as u32, gate32)?;
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.segs = saved.0;
                self.regs[ESP] = saved.1;
                self.cpl = saved.2;
                self.flags.set(saved.3);
                return Err(e);
            }
            if from_v86 {
                let null = Seg::null(0);
                for s in [GS, FS, DS, ES] {
                    self.segs[s as usize] = null;
                }
            }
            self.set_cs(cs, new_cpl);
        } else {
            if from_v86 {
                return Err(Exception::GP(selector_error(sel) | ext).into());
            }
            let n = if gate32 { 4 } else { 2 };
            let count = 3 + error.is_some() as u32;
            let lo = self.sp_add((count * n).wrapping_neg());
            if !self.segs[SS as usize].in_limit(lo, count * n) {
                return Err(Exception::SS(ext).into());
            }
            let esp = self.regs[ESP];
            let r = (|| -> Res<()> {
                self.push(bus, old_flags, gate32)?;
                self.push(bus, old_cs as u32, gate32)?;
                self.push(bus, old_eip, gate32)?;
                if let Some(code) = error {
                    self.push(bus, code as u32, gate32)?;
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.regs[ESP] = esp;
                return Err(e);
            }
            let cpl = self.cpl;
            self.set_cs(cs, cpl);
        }
        self.eip = offset;
        let mut clear = TF | VM | RF | NT;
        if matches!(gtype, systype::INT_GATE16 | systype::INT_GATE32) {
            clear |= IF;
        }
        let f = self.flags.get() & !clear;
        self.flags.set(f);
        Ok(())
    }

    /// Real-mode delivery through the IVT (SDM Vol. 3A §20.1.4).
    fn deliver_real<B: Bus>(&mut self, bus: &mut B, vector: u8) -> Res<()> {
        let off = vector as u32 * 4;
        if off + 3 > self.idtr.limit as u32 {
            return Err(Exception::GP(0).into());
        }
        let lin = self.idtr.base.wrapping_add(off);
        let ip = self.read_sys16(bus, lin)?;
        let cs = self.read_sys16(bus, lin.wrapping_add(2))?;
        let flags = self.flags.get();
        let esp = self.regs[ESP];
        let r = (|| -> Res<()> {
            self.push(bus, flags, false)?;
            let old_cs = self.segs[CS as usize].sel as u32;
            self.push(bus, old_cs, false)?;
            self.push(bus, self.eip, false)?;
            Ok(())
        })();
        if let Err(e) = r {
            self.regs[ESP] = esp;
            return Err(e);
        }
        self.flags.set(flags & !(IF | TF | AC | RF));
        self.load_seg(bus, CS, cs)?;
        self.eip = ip as u32;
        Ok(())
    }

    /// The stack for ring `dpl` from the current TSS (SDM Vol. 3A §7.2.1, Figures 7-2, 7-11).
    pub(crate) fn tss_stack<B: Bus>(&mut self, bus: &mut B, dpl: u8, ext: u16) -> Res<(u16, u32)> {
        let tss32 = self.tr.is_tss32();
        let tr_err = Exception::TS(selector_error(self.tr.sel) | ext);
        if tss32 {
            let off = 4 + dpl as u32 * 8;
            if off + 5 > self.tr.limit {
                return Err(tr_err.into());
            }
            let esp = self.read_sys32(bus, self.tr.base.wrapping_add(off))?;
            let ss = self.read_sys16(bus, self.tr.base.wrapping_add(off + 4))?;
            Ok((ss, esp))
        } else {
            let off = 2 + dpl as u32 * 4;
            if off + 3 > self.tr.limit {
                return Err(tr_err.into());
            }
            let sp = self.read_sys16(bus, self.tr.base.wrapping_add(off))?;
            let ss = self.read_sys16(bus, self.tr.base.wrapping_add(off + 2))?;
            Ok((ss, sp as u32))
        }
    }

    /// Check the stack segment taken from a TSS for ring `dpl` (§6.12.1.1 / "CALL" pseudocode).
    pub(crate) fn check_tss_ss<B: Bus>(&mut self, bus: &mut B, sel: u16, dpl: u8, ext: u16) -> Res<Seg> {
        if sel & !3 == 0 {
            return Err(Exception::TS(ext).into());
        }
        let mut d = match self.read_descriptor(bus, sel) {
            Ok(d) => d,
            Err(Some(e)) => return Err(e.into()),
            Err(None) => return Err(Exception::TS(selector_error(sel) | ext).into()),
        };
        let s = d.seg(sel);
        if (sel & 3) as u8 != dpl || s.dpl() != dpl || !s.writable() {
            return Err(Exception::TS(selector_error(sel) | ext).into());
        }
        if !s.present() {
            return Err(Exception::SS(selector_error(sel) | ext).into());
        }
        self.set_accessed(bus, sel, &mut d)?;
        Ok(d.seg(sel))
    }
}
