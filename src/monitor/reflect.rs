//! Events into the guest: the monitor delivers an exception or interrupt through the
//! *guest's* IDT as the processor would at the guest's privilege level (SDM Vol. 3A
//! §6.12: the gate, the stack switch to the guest TSS's SS0:ESP0 from ring 3, the frame,
//! IF cleared by an interrupt gate), and emulates the IRETs that return to the guest
//! kernel. The frame holds what the guest should see — CS with RPL 0, EFLAGS with its
//! own IF and IOPL — so an IRET to the kernel pops a selector with RPL 0 at ring 1,
//! which faults, and comes back here; an IRET to ring 3 runs on the processor.

use super::segments::visible;
use super::{MonitorError, MonitorExit, World};
use crate::cpu::decode::{CS, DS, ES, FS, GS, SS};
use crate::cpu::flags;
use crate::cpu::seg::systype;
use crate::cpu::TrapKind;
use crate::cpu::ESP;
use alloc::format;

use super::guest::MemError;

impl World<'_, '_> {
    /// Deliver `vector` to the guest.
    pub(crate) fn reflect(&mut self, vector: u8, kind: TrapKind, error: Option<u16>) -> Result<(), MonitorExit> {
        self.reflect_depth(vector, kind, error, 0)
    }

    fn reflect_depth(&mut self, vector: u8, kind: TrapKind, error: Option<u16>, depth: u8) -> Result<(), MonitorExit> {
        if depth >= 2 {
            return Err(MonitorExit::Error(MonitorError::Shutdown));
        }
        self.m.counters.reflected += 1;
        let ext = matches!(kind, TrapKind::Exception | TrapKind::External | TrapKind::Icebp) as u16;
        let idt_err = (vector as u16) << 3 | 2 | ext;
        let nested =
            |m: &mut World<'_, '_>, v: u8, code: u16| m.reflect_depth(v, TrapKind::Exception, Some(code), depth + 1);
        let off = vector as u32 * 8;
        if off + 7 > self.m.v.idtr.limit as u32 {
            return nested(self, 13, idt_err);
        }
        let (lo, hi) = match self.read_gate(off) {
            Ok(g) => g,
            Err(e) => return self.mem_fault(e, depth),
        };
        let gtype = ((hi >> 8) & 0x1f) as u8;
        let gate_dpl = ((hi >> 13) & 3) as u8;
        let vcpl = self.vcpl();
        if !matches!(gtype, systype::INT_GATE32 | systype::TRAP_GATE32) {
            return Err(MonitorExit::Error(MonitorError::Unsupported(format!(
                "IDT entry {vector:#x} of type {gtype} (only 32-bit interrupt and trap gates)"
            ))));
        }
        if kind == TrapKind::Software && gate_dpl < vcpl {
            return nested(self, 13, (vector as u16) << 3 | 2);
        }
        if hi & (1 << 15) == 0 {
            return nested(self, 11, idt_err);
        }
        let sel = (lo >> 16) as u16;
        let offset = (hi & 0xffff_0000) | (lo & 0xffff);
        let Some((_, dhi)) = self.guest_descriptor(sel) else { return nested(self, 13, sel & !3 | ext) };
        let target_dpl = ((dhi >> 13) & 3) as u8;
        if target_dpl != 0 {
            return Err(MonitorExit::Error(MonitorError::Unsupported(format!(
                "a handler at DPL {target_dpl} (vector {vector:#x})"
            ))));
        }
        let c = &self.cpu;
        let image = self.flags_image();
        let old_cs = visible(c.segs[CS as usize].sel);
        let old_ss = visible(c.segs[SS as usize].sel);
        let old_esp = c.regs[ESP];
        let eip = c.eip;
        let saved = (c.segs, c.regs[ESP], c.cpl);
        // At most SS, ESP, EFLAGS, CS, EIP and an error code (§6.12.1, Figure 6-4).
        let mut frame = [0u32; 6];
        let mut n = 0;
        let mut put = |v: u32| {
            frame[n] = v;
            n += 1;
        };
        if vcpl == 3 {
            // To ring 0 from ring 3: the guest TSS's stack (§7.2.1: ESP0 at 4, SS0 at 8).
            let esp0 = match self.read_lin32(self.m.v.tr_base.wrapping_add(4), false) {
                Ok(v) => v,
                Err(e) => return self.mem_fault(e, depth),
            };
            let ss0 = match self.read_lin32(self.m.v.tr_base.wrapping_add(8), false) {
                Ok(v) => v as u16,
                Err(e) => return self.mem_fault(e, depth),
            };
            if let Err((v, code)) = self.load_guest_seg(SS, ss0) {
                return nested(self, v, code);
            }
            // The frame goes on the kernel's stack with the kernel's rights (a
            // supervisor-only stack page is the rule): the new privilege level's.
            self.cpu.regs[ESP] = esp0;
            self.cpu.cpl = 1;
            put(old_ss as u32);
            put(old_esp);
        }
        put(image);
        put(old_cs as u32);
        put(eip);
        if let Some(code) = error {
            put(code as u32);
        }
        for &v in &frame[..n] {
            if let Err(e) = self.push32(v) {
                let c = &mut self.cpu;
                (c.segs, c.regs[ESP], c.cpl) = saved;
                return self.mem_fault(e, depth);
            }
        }
        if let Err((v, code)) = self.load_guest_seg(CS, sel) {
            let c = &mut self.cpu;
            (c.segs, c.regs[ESP], c.cpl) = saved;
            return nested(self, v, code);
        }
        let c = &mut self.cpu;
        c.eip = offset;
        let f = c.flags.get() & !(flags::TF | flags::NT | flags::RF | flags::VM);
        c.flags.set(f | flags::IF);
        c.halted = false;
        if gtype == systype::INT_GATE32 {
            self.m.v.iflag = false;
        }
        Ok(())
    }

    fn read_gate(&mut self, off: u32) -> Result<(u32, u32), MemError> {
        let base = self.m.v.idtr.base;
        Ok((self.read_lin32(base.wrapping_add(off), false)?, self.read_lin32(base.wrapping_add(off + 4), false)?))
    }

    /// A fault of the monitor's own access to guest memory while delivering: the guest
    /// gets the #PF (a double fault if that fails too).
    fn mem_fault(&mut self, e: MemError, depth: u8) -> Result<(), MonitorExit> {
        match e {
            MemError::Pf(pf) => {
                self.m.v.cr2 = pf.addr;
                self.reflect_depth(14, TrapKind::Exception, Some(pf.code), depth + 1)
            }
            MemError::NotRam(a) => Err(MonitorExit::Error(MonitorError::NotGuestMemory(a))),
        }
    }

    /// EFLAGS as the guest should see them: its IF and IOPL.
    pub(crate) fn flags_image(&self) -> u32 {
        let f = self.cpu.flags.get() & !(flags::IF | flags::IOPL | flags::VX | flags::RF);
        f | if self.m.v.iflag { flags::IF } else { 0 } | (self.m.v.iopl as u32) << 12
    }

    /// Take EFLAGS from the guest (POPF, IRET) at its privilege level `vcpl`: the
    /// arithmetic and control bits on the processor, IF and IOPL into the virtual state
    /// where that privilege allows (SDM Vol. 2B "POPF", Table 4-15).
    pub(crate) fn set_flags_image(&mut self, image: u32, mask: u32, vcpl: u8) {
        if vcpl <= self.m.v.iopl && mask & flags::IF != 0 {
            self.m.v.iflag = image & flags::IF != 0;
        }
        if vcpl == 0 && mask & flags::IOPL != 0 {
            self.m.v.iopl = ((image & flags::IOPL) >> 12) as u8;
        }
        let keep = !(mask & !(flags::IF | flags::IOPL | flags::VM | flags::VX | flags::RF));
        let c = &mut self.cpu;
        let f = (c.flags.get() & keep) | (image & !keep & !(flags::IF | flags::IOPL));
        c.flags.set(f | flags::IF | flags::FIXED1);
    }

    /// Push a dword on the guest's stack (SS:ESP, 32-bit stacks) with the rights of its
    /// privilege level.
    pub(crate) fn push32(&mut self, v: u32) -> Result<(), MemError> {
        let c = &self.cpu;
        let esp = c.regs[ESP].wrapping_sub(4);
        let lin = c.segs[SS as usize].base.wrapping_add(esp);
        let user = self.vcpl() == 3;
        self.write_lin(lin, &v.to_le_bytes(), user)?;
        self.cpu.regs[ESP] = esp;
        Ok(())
    }

    /// The dword at SS:ESP + `k`*4.
    pub(crate) fn peek32(&mut self, k: u32) -> Result<u32, MemError> {
        let c = &self.cpu;
        let lin = c.segs[SS as usize].base.wrapping_add(c.regs[ESP]).wrapping_add(k * 4);
        let user = self.vcpl() == 3;
        self.read_lin32(lin, user)
    }

    /// IRET (32-bit operand size) as the guest means it: to its kernel (CS RPL 0, held
    /// at ring 1) or to ring 3, restoring its IF and IOPL.
    pub(crate) fn emulate_iret(&mut self) -> Result<(), MonitorExit> {
        if self.cpu.flags.get() & flags::NT != 0 {
            return Err(MonitorExit::Error(MonitorError::Unsupported("IRET with NT (a task return)".into())));
        }
        let vcpl = self.vcpl();
        let (eip, cs, image) = match (self.peek32(0), self.peek32(1), self.peek32(2)) {
            (Ok(eip), Ok(cs), Ok(image)) => (eip, cs as u16, image),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return self.mem_fault(e, 0),
        };
        let rpl = (cs & 3) as u8;
        if rpl < vcpl || rpl == 1 || rpl == 2 {
            return self.reflect(13, TrapKind::Exception, Some(cs & !3));
        }
        let mask = if vcpl == 0 { !0 } else { !(flags::IOPL) };
        if rpl == vcpl {
            if let Err((v, code)) = self.load_guest_seg(CS, cs) {
                return self.reflect(v, TrapKind::Exception, Some(code));
            }
            self.cpu.regs[ESP] = self.cpu.regs[ESP].wrapping_add(12);
        } else {
            // To ring 3: ESP and SS too; data segments the new level may not use are
            // nulled (SDM Vol. 2A "IRET", RETURN-TO-OUTER-PRIVILEGE-LEVEL).
            let (esp, ss) = match (self.peek32(3), self.peek32(4)) {
                (Ok(a), Ok(b)) => (a, b as u16),
                (Err(e), _) | (_, Err(e)) => return self.mem_fault(e, 0),
            };
            let saved = (self.cpu.segs, self.cpu.cpl);
            if let Err((v, code)) = self.load_guest_seg(CS, cs).and_then(|_| self.load_guest_seg(SS, ss)) {
                (self.cpu.segs, self.cpu.cpl) = saved;
                return self.reflect(v, TrapKind::Exception, Some(code));
            }
            let c = &mut self.cpu;
            c.regs[ESP] = esp;
            for r in [DS, ES, FS, GS] {
                let s = &c.segs[r as usize];
                if s.valid && s.access & 0x10 != 0 && !(s.is_code() && s.conforming()) && s.dpl() < 3 {
                    c.segs[r as usize] = crate::cpu::seg::Seg::null(0);
                }
            }
        }
        self.cpu.eip = eip;
        // The privilege IRET ran at decides what may change (IF, IOPL).
        self.set_flags_image(image, mask, vcpl);
        if rpl == 3 {
            // The guest's user code runs with interrupts on as far as the monitor can
            // tell: ring 3 cannot change IF when IOPL < 3, so the guest's IF is 1 there.
            self.m.v.iflag = self.m.v.iflag || image & flags::IF != 0;
        }
        Ok(())
    }
}
