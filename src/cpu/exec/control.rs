//! Control transfers: near jumps, calls and returns, LOOP/JCXZ, far CALL/JMP/RET through
//! code segments, call gates, task gates and TSSs (SDM Vol. 2A "CALL", "JMP", Vol. 2B
//! "RET"; Vol. 3A §5.8), INT n and IRET (Vol. 2A "INT n", "IRET"), PUSHF/POPF, CLI/STI.

use super::super::decode::{Instr, CS, DS, ES, FS, GS, SS};
use super::super::exception::{selector_error, Exception};
use super::super::flags::{self, AC, ID, IF, IOPL, NT, RF, VIF, VIP, VM};
use super::super::interrupt::Kind;
use super::super::seg::{systype, Seg};
use super::super::task::Reason;
use super::super::{Cpu, Res, ECX, ESP};
use crate::bus::Bus;

impl Cpu {
    /// Jump to `target` within CS, checking the limit (#GP(0), SDM Vol. 2A "JMP").
    #[inline(always)]
    pub(crate) fn jump_abs(&mut self, target: u32, op32: bool) -> Res<()> {
        let t = if op32 { target } else { target & 0xffff };
        if t > self.segs[CS as usize].limit {
            return Err(Exception::GP(0).into());
        }
        self.eip = t;
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn jump_rel(&mut self, i: &Instr) -> Res<()> {
        let t = self.eip.wrapping_add(i.imm);
        self.jump_abs(t, i.op32)
    }

    /// CALL rel: the target is checked against the CS limit before anything is pushed
    /// (SDM Vol. 2A "CALL", Operation: the #GP(0) test precedes the push).
    #[inline(always)]
    pub(crate) fn call_rel<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let ret = self.eip;
        let t = ret.wrapping_add(i.imm);
        let t = if i.op32 { t } else { t & 0xffff };
        if t > self.segs[CS as usize].limit {
            return Err(Exception::GP(0).into());
        }
        self.push(bus, ret, i.op32)?;
        self.eip = t;
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn ret_near<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let t = self.peek(bus, 0, i.op32)?;
        let t = if i.op32 { t } else { t & 0xffff };
        if t > self.segs[CS as usize].limit {
            return Err(Exception::GP(0).into());
        }
        let n = if i.op32 { 4 } else { 2 };
        let extra = if i.opcode == 0xc2 { i.imm & 0xffff } else { 0 };
        self.set_sp(self.sp_add(n + extra));
        self.eip = t;
        Ok(())
    }

    /// LOOP, LOOPE, LOOPNE, JCXZ: the counter is CX or ECX by address size.
    pub(crate) fn loop_jcxz(&mut self, i: &Instr) -> Res<()> {
        let ad32 = i.ad32;
        let take = if i.opcode == 0xe3 {
            (if ad32 { self.regs[ECX] } else { self.regs[ECX] & 0xffff }) == 0
        } else {
            let c = if ad32 { self.regs[ECX].wrapping_sub(1) } else { self.regs[ECX].wrapping_sub(1) & 0xffff };
            let cond = match i.opcode {
                0xe0 => !self.flags.zf(),
                0xe1 => self.flags.zf(),
                _ => true,
            };
            let take = c != 0 && cond;
            let t = self.eip.wrapping_add(i.imm);
            let t = if i.op32 { t } else { t & 0xffff };
            if take && t > self.segs[CS as usize].limit {
                return Err(Exception::GP(0).into());
            }
            if ad32 {
                self.regs[ECX] = c;
            } else {
                self.regs[ECX] = (self.regs[ECX] & 0xffff_0000) | c;
            }
            take
        };
        if take {
            self.jump_rel(i)?;
        }
        Ok(())
    }

    /// Real and V86 far transfer target: CS base = selector << 4.
    fn load_cs_real(&mut self, sel: u16, off: u32, op32: bool) -> Res<()> {
        let off = if op32 { off } else { off & 0xffff };
        let mut s = self.segs[CS as usize];
        s.sel = sel;
        s.base = (sel as u32) << 4;
        if self.v86() {
            s = Seg::real(sel);
            s.access |= 3 << 5;
        }
        if off > s.limit {
            return Err(Exception::GP(0).into());
        }
        self.segs[CS as usize] = s;
        self.eip = off;
        Ok(())
    }

    /// Push a far return address (CS, then EIP) for a far CALL, checking that both fit
    /// before writing either, and leaving ESP as it was if a push faults.
    fn push_far_return<B: Bus>(&mut self, bus: &mut B, cs: u32, eip: u32, op32: bool) -> Res<()> {
        let n: u32 = if op32 { 4 } else { 2 };
        let lo = self.sp_add((2 * n).wrapping_neg());
        self.seg_lin(SS, lo, 2 * n, true)?;
        let esp = self.regs[ESP];
        let r = self.push(bus, cs, op32).and_then(|()| self.push(bus, eip, op32));
        if r.is_err() {
            self.regs[ESP] = esp;
        }
        r
    }

    pub(crate) fn jmp_far<B: Bus>(&mut self, bus: &mut B, sel: u16, off: u32, op32: bool) -> Res<()> {
        if !self.pmode() {
            return self.load_cs_real(sel, off, op32);
        }
        self.far_transfer(bus, sel, off, op32, false)
    }

    pub(crate) fn call_far<B: Bus>(&mut self, bus: &mut B, sel: u16, off: u32, op32: bool) -> Res<()> {
        if !self.pmode() {
            let target = if op32 { off } else { off & 0xffff };
            if target > self.segs[CS as usize].limit && !self.v86() {
                return Err(Exception::GP(0).into());
            }
            let (cs, eip, esp) = (self.segs[CS as usize].sel as u32, self.eip, self.regs[ESP]);
            self.push_far_return(bus, cs, eip, op32)?;
            if let Err(e) = self.load_cs_real(sel, off, op32) {
                self.regs[ESP] = esp;
                return Err(e);
            }
            return Ok(());
        }
        self.far_transfer(bus, sel, off, op32, true)
    }

    /// Protected-mode far CALL or JMP (SDM Vol. 2A "CALL" and "JMP" pseudocode).
    fn far_transfer<B: Bus>(&mut self, bus: &mut B, sel: u16, off: u32, op32: bool, call: bool) -> Res<()> {
        if sel & !3 == 0 {
            return Err(Exception::GP(0).into());
        }
        let d = self.descriptor_or_gp(bus, sel)?;
        let rpl = (sel & 3) as u8;
        let gp = Exception::GP(selector_error(sel));
        if !d.is_system() {
            let s = d.seg(sel);
            if !s.is_code() {
                return Err(gp.into());
            }
            if s.conforming() {
                if s.dpl() > self.cpl {
                    return Err(gp.into());
                }
            } else if rpl > self.cpl || s.dpl() != self.cpl {
                return Err(gp.into());
            }
            if !s.present() {
                return Err(Exception::NP(selector_error(sel)).into());
            }
            let target = if op32 { off } else { off & 0xffff };
            if target > s.limit {
                return Err(Exception::GP(0).into());
            }
            if call {
                let (cs, eip) = (self.segs[CS as usize].sel as u32, self.eip);
                self.push_far_return(bus, cs, eip, op32)?;
            }
            let mut dd = d;
            self.set_accessed(bus, sel, &mut dd)?;
            let cpl = self.cpl;
            self.set_cs(dd.seg(sel), cpl);
            self.eip = target;
            return Ok(());
        }
        match d.sys_type() {
            systype::CALL_GATE16 | systype::CALL_GATE32 => {
                if d.dpl() < self.cpl || d.dpl() < rpl {
                    return Err(gp.into());
                }
                if !d.present() {
                    return Err(Exception::NP(selector_error(sel)).into());
                }
                self.through_call_gate(bus, d, op32, call)
            }
            systype::TASK_GATE => {
                if d.dpl() < self.cpl || d.dpl() < rpl {
                    return Err(gp.into());
                }
                if !d.present() {
                    return Err(Exception::NP(selector_error(sel)).into());
                }
                let tss = d.gate_selector();
                let reason = if call { Reason::Call } else { Reason::Jmp };
                self.task_switch(bus, tss, reason, 0)?;
                self.check_eip_in_cs()
            }
            systype::TSS16_AVAIL | systype::TSS32_AVAIL => {
                if d.dpl() < self.cpl || d.dpl() < rpl {
                    return Err(gp.into());
                }
                let reason = if call { Reason::Call } else { Reason::Jmp };
                self.task_switch(bus, sel, reason, 0)?;
                self.check_eip_in_cs()
            }
            _ => Err(gp.into()),
        }
    }

    /// After a task switch, EIP must lie within the new CS (SDM Vol. 3A §7.3 step 14).
    fn check_eip_in_cs(&self) -> Res<()> {
        if self.eip > self.segs[CS as usize].limit {
            return Err(Exception::GP(0).into());
        }
        Ok(())
    }

    fn through_call_gate<B: Bus>(
        &mut self,
        bus: &mut B,
        gate: super::super::seg::Descriptor,
        op32: bool,
        call: bool,
    ) -> Res<()> {
        let _ = op32;
        let tsel = gate.gate_selector();
        if tsel & !3 == 0 {
            return Err(Exception::GP(0).into());
        }
        let mut td = self.descriptor_or_gp(bus, tsel)?;
        let cs = td.seg(tsel);
        let gp = Exception::GP(selector_error(tsel));
        if !cs.is_code() || cs.dpl() > self.cpl {
            return Err(gp.into());
        }
        if !call && !cs.conforming() && cs.dpl() != self.cpl {
            return Err(gp.into());
        }
        if !cs.present() {
            return Err(Exception::NP(selector_error(tsel)).into());
        }
        let gate32 = gate.sys_type() == systype::CALL_GATE32;
        let target = if gate32 { gate.gate_offset() } else { gate.gate_offset() & 0xffff };
        if target > cs.limit {
            return Err(Exception::GP(0).into());
        }
        let old_cs = self.segs[CS as usize].sel as u32;
        let old_eip = self.eip;
        if call && !cs.conforming() && cs.dpl() < self.cpl {
            // More privileged: new stack from the TSS, copy the parameters (§5.8.5).
            let new_cpl = cs.dpl();
            let (ss_sel, esp) = self.tss_stack(bus, new_cpl, 0)?;
            let ss = self.check_tss_ss(bus, ss_sel, new_cpl, 0)?;
            let params = gate.gate_params() as u32;
            let n: u32 = if gate32 { 4 } else { 2 };
            let frame = (4 + params) * n;
            let top = if ss.big() { esp } else { esp & 0xffff };
            if !ss.in_limit(top.wrapping_sub(frame), frame) {
                return Err(Exception::SS(selector_error(ss_sel)).into());
            }
            let mut args = [0u32; 32];
            for k in 0..params {
                args[k as usize] = self.peek(bus, k * n, gate32)?;
            }
            let old_ss = self.segs[SS as usize].sel as u32;
            let old_esp = self.regs[ESP];
            let saved = (self.segs, self.regs[ESP], self.cpl);
            self.segs[SS as usize] = ss;
            self.regs[ESP] = esp;
            self.cpl = new_cpl;
            let r = (|| -> Res<()> {
                self.push(bus, old_ss, gate32)?;
                self.push(bus, old_esp, gate32)?;
                for k in (0..params).rev() {
                    self.push(bus, args[k as usize], gate32)?;
                }
                self.push(bus, old_cs, gate32)?;
                self.push(bus, old_eip, gate32)?;
                Ok(())
            })();
            if let Err(e) = r {
                self.segs = saved.0;
                self.regs[ESP] = saved.1;
                self.cpl = saved.2;
                return Err(e);
            }
            self.set_accessed(bus, tsel, &mut td)?;
            self.set_cs(td.seg(tsel), new_cpl);
            self.eip = target;
            return Ok(());
        }
        if call {
            self.push_far_return(bus, old_cs, old_eip, gate32)?;
        }
        self.set_accessed(bus, tsel, &mut td)?;
        let cpl = self.cpl;
        self.set_cs(td.seg(tsel), cpl);
        self.eip = target;
        Ok(())
    }

    /// Far RET (SDM Vol. 2B "RET" pseudocode), `extra` bytes of parameters released.
    pub(crate) fn ret_far<B: Bus>(&mut self, bus: &mut B, op32: bool, extra: u32) -> Res<()> {
        let n: u32 = if op32 { 4 } else { 2 };
        let off = self.peek(bus, 0, op32)?;
        let sel = self.peek(bus, n, op32)? as u16;
        if !self.pmode() {
            self.load_cs_real(sel, off, op32)?;
            self.set_sp(self.sp_add(2 * n + extra));
            return Ok(());
        }
        let (cs, rpl) = self.check_return_cs(bus, sel)?;
        let target = if op32 { off } else { off & 0xffff };
        if rpl == self.cpl {
            if target > cs.limit {
                return Err(Exception::GP(0).into());
            }
            self.set_sp(self.sp_add(2 * n + extra));
            self.set_cs(cs, rpl);
            self.eip = target;
            return Ok(());
        }
        // Return to an outer level: SS:ESP follow the parameters.
        let new_esp = self.peek(bus, 2 * n + extra, op32)?;
        let ss_sel = self.peek(bus, 3 * n + extra, op32)? as u16;
        let ss = self.check_return_ss(bus, ss_sel, rpl)?;
        if target > cs.limit {
            return Err(Exception::GP(0).into());
        }
        self.set_cs(cs, rpl);
        self.eip = target;
        self.segs[SS as usize] = ss;
        let esp = new_esp.wrapping_add(extra);
        if ss.big() {
            self.regs[ESP] = esp;
        } else {
            self.regs[ESP] = (self.regs[ESP] & 0xffff_0000) | (esp & 0xffff);
        }
        self.null_inaccessible_segs();
        Ok(())
    }

    /// Checks on the CS selector a far RET or IRET returns to. Returns the cache and RPL.
    fn check_return_cs<B: Bus>(&mut self, bus: &mut B, sel: u16) -> Res<(Seg, u8)> {
        if sel & !3 == 0 {
            return Err(Exception::GP(0).into());
        }
        let mut d = self.descriptor_or_gp(bus, sel)?;
        let s = d.seg(sel);
        let rpl = (sel & 3) as u8;
        let gp = Exception::GP(selector_error(sel));
        if rpl < self.cpl || !s.is_code() {
            return Err(gp.into());
        }
        if s.conforming() && s.dpl() > rpl {
            return Err(gp.into());
        }
        if !s.conforming() && s.dpl() != rpl {
            return Err(gp.into());
        }
        if !s.present() {
            return Err(Exception::NP(selector_error(sel)).into());
        }
        self.set_accessed(bus, sel, &mut d)?;
        Ok((d.seg(sel), rpl))
    }

    fn check_return_ss<B: Bus>(&mut self, bus: &mut B, sel: u16, rpl: u8) -> Res<Seg> {
        if sel & !3 == 0 {
            return Err(Exception::GP(0).into());
        }
        let mut d = self.descriptor_or_gp(bus, sel)?;
        let s = d.seg(sel);
        let gp = Exception::GP(selector_error(sel));
        if (sel & 3) as u8 != rpl || !s.writable() || s.dpl() != rpl {
            return Err(gp.into());
        }
        if !s.present() {
            return Err(Exception::SS(selector_error(sel)).into());
        }
        self.set_accessed(bus, sel, &mut d)?;
        Ok(d.seg(sel))
    }

    /// INT n / INT3 / INTO / INT1. EIP already points past the instruction.
    pub(crate) fn int_n<B: Bus>(&mut self, bus: &mut B, vector: u8, kind: Kind) -> Res<()> {
        // In V86 mode INT n (CD only) is IOPL-sensitive (SDM Vol. 3A §20.2.7).
        if self.v86() && self.flags.iopl() < 3 && kind == Kind::Software && vector != 3 && vector != 4 {
            return Err(Exception::GP(0).into());
        }
        self.deliver(bus, vector, kind, None)
    }

    /// IRET / IRETD (SDM Vol. 2A "IRET" pseudocode).
    pub(crate) fn iret<B: Bus>(&mut self, bus: &mut B, op32: bool) -> Res<()> {
        let n: u32 = if op32 { 4 } else { 2 };
        if !self.protected() {
            let ip = self.peek(bus, 0, op32)?;
            let cs = self.peek(bus, n, op32)? as u16;
            let fl = self.peek(bus, 2 * n, op32)?;
            self.load_cs_real(cs, ip, op32)?;
            self.set_sp(self.sp_add(3 * n));
            let cur = self.flags.get();
            let v = if op32 { (fl & 0x257fd5) | (cur & 0x1a0000) } else { (cur & 0xffff_0000) | (fl & 0xffff) };
            self.flags.set(v);
            return Ok(());
        }
        if self.v86() {
            if self.flags.iopl() < 3 {
                return Err(Exception::GP(0).into());
            }
            let ip = self.peek(bus, 0, op32)?;
            let cs = self.peek(bus, n, op32)? as u16;
            let fl = self.peek(bus, 2 * n, op32)?;
            self.load_cs_real(cs, ip, op32)?;
            self.set_sp(self.sp_add(3 * n));
            let cur = self.flags.get();
            let keep = VM | IOPL | VIP | VIF;
            let v =
                if op32 { (fl & !keep) | (cur & keep) } else { (cur & (0xffff_0000 | IOPL)) | (fl & 0xffff & !IOPL) };
            self.flags.set(v);
            return Ok(());
        }
        if self.flags.bits & NT != 0 {
            // Return from a nested task: the back link is the TSS's first word (§7.4).
            let link = self.read_sys16(bus, self.tr.base)?;
            self.task_switch(bus, link, Reason::Iret, 0)?;
            return self.check_eip_in_cs();
        }
        let off = self.peek(bus, 0, op32)?;
        let sel = self.peek(bus, n, op32)? as u16;
        let fl = self.peek(bus, 2 * n, op32)?;
        if op32 && fl & VM != 0 && self.cpl == 0 {
            return self.iret_to_v86(bus, off, sel, fl);
        }
        let (cs, rpl) = self.check_return_cs(bus, sel)?;
        let target = if op32 { off } else { off & 0xffff };
        let old_cpl = self.cpl;
        let new_flags = self.popped_flags(fl, op32, old_cpl, true);
        if rpl == self.cpl {
            if target > cs.limit {
                return Err(Exception::GP(0).into());
            }
            self.set_sp(self.sp_add(3 * n));
            self.set_cs(cs, rpl);
            self.eip = target;
            self.flags.set(new_flags);
            return Ok(());
        }
        let new_esp = self.peek(bus, 3 * n, op32)?;
        let ss_sel = self.peek(bus, 4 * n, op32)? as u16;
        let ss = self.check_return_ss(bus, ss_sel, rpl)?;
        if target > cs.limit {
            return Err(Exception::GP(0).into());
        }
        self.set_cs(cs, rpl);
        self.eip = target;
        self.flags.set(new_flags);
        self.segs[SS as usize] = ss;
        if ss.big() {
            self.regs[ESP] = new_esp;
        } else {
            self.regs[ESP] = (self.regs[ESP] & 0xffff_0000) | (new_esp & 0xffff);
        }
        self.null_inaccessible_segs();
        Ok(())
    }

    /// IRETD from ring 0 with VM set in the popped EFLAGS: enter virtual-8086 mode
    /// (SDM Vol. 2A "IRET", RETURN-TO-VIRTUAL-8086-MODE).
    fn iret_to_v86<B: Bus>(&mut self, bus: &mut B, off: u32, cs: u16, fl: u32) -> Res<()> {
        let mut vals = [0u32; 6];
        for (k, v) in vals.iter_mut().enumerate() {
            *v = self.peek(bus, 12 + 4 * k as u32, true)?;
        }
        let [esp, ss, es, ds, fs, gs] = vals;
        self.flags.set(fl);
        let v86seg = |sel: u32| {
            let mut s = Seg::real(sel as u16);
            s.access |= 3 << 5;
            s
        };
        self.segs[CS as usize] = v86seg(cs as u32);
        self.segs[SS as usize] = v86seg(ss);
        self.segs[ES as usize] = v86seg(es);
        self.segs[DS as usize] = v86seg(ds);
        self.segs[FS as usize] = v86seg(fs);
        self.segs[GS as usize] = v86seg(gs);
        self.regs[ESP] = esp;
        self.eip = off & 0xffff;
        self.cpl = 3;
        Ok(())
    }

    /// The EFLAGS value POPF or IRET may install given the privilege (SDM Vol. 2B "POPF"
    /// table of "Operation" by CPL and IOPL): IOPL changes only at CPL 0, IF only at
    /// CPL <= IOPL; VM, VIP, VIF are kept; RF is cleared by POPF.
    fn popped_flags(&self, v: u32, op32: bool, cpl: u8, iret: bool) -> u32 {
        let cur = self.flags.get();
        let mut mask = flags::ARITH | flags::TF | flags::DF | NT;
        if op32 {
            mask |= AC | ID;
            if iret {
                mask |= RF;
            }
        }
        if cpl == 0 {
            mask |= IOPL;
        }
        if cpl <= self.flags.iopl() {
            mask |= IF;
        }
        if !op32 {
            mask &= 0xffff;
        }
        let mut r = (cur & !mask) | (v & mask);
        if !iret && op32 {
            r &= !RF;
        }
        r
    }

    pub(crate) fn pushf<B: Bus>(&mut self, bus: &mut B, op32: bool) -> Res<()> {
        if self.v86() && self.flags.iopl() < 3 {
            return Err(Exception::GP(0).into());
        }
        // VM and RF read as 0 in the pushed image (SDM Vol. 2B "PUSHF").
        let v = self.flags.get() & !(VM | RF);
        self.push(bus, v, op32)
    }

    pub(crate) fn popf<B: Bus>(&mut self, bus: &mut B, op32: bool) -> Res<()> {
        if self.v86() && self.flags.iopl() < 3 {
            return Err(Exception::GP(0).into());
        }
        let v = self.peek(bus, 0, op32)?;
        let new = if !self.protected() {
            // Real mode: everything but VM, VIP, VIF can change.
            let cur = self.flags.get();
            if op32 {
                (cur & (VM | VIP | VIF)) | (v & !(VM | VIP | VIF | RF))
            } else {
                (cur & 0xffff_0000) | (v & 0xffff)
            }
        } else if self.v86() {
            // V86 with IOPL 3: IOPL itself cannot change.
            let cur = self.flags.get();
            let keep = VM | IOPL | VIP | VIF | RF;
            if op32 {
                (cur & keep) | (v & !keep)
            } else {
                (cur & (0xffff_0000 | IOPL)) | (v & 0xffff & !IOPL)
            }
        } else {
            self.popped_flags(v, op32, self.cpl, false)
        };
        self.set_sp(self.sp_add(if op32 { 4 } else { 2 }));
        self.flags.set(new);
        Ok(())
    }

    pub(crate) fn cli(&mut self) -> Res<()> {
        if self.protected() && self.flags.iopl() < if self.v86() { 3 } else { self.cpl } {
            return Err(Exception::GP(0).into());
        }
        self.flags.set_bit(IF, false);
        Ok(())
    }

    pub(crate) fn sti(&mut self) -> Res<()> {
        if self.protected() && self.flags.iopl() < if self.v86() { 3 } else { self.cpl } {
            return Err(Exception::GP(0).into());
        }
        if !self.flags.if_() {
            // Interrupts stay blocked until after the next instruction (SDM Vol. 2B "STI").
            self.inhibit_irq = true;
        }
        self.flags.set_bit(IF, true);
        Ok(())
    }
}
