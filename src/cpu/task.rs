//! Hardware task switching (SDM Vol. 3A §7.3): JMP or CALL to a TSS or task gate, an
//! interrupt through a task gate, and IRET with EFLAGS.NT set.
//!
//! 32-bit TSS layout (Figure 7-2): 0x00 link, 0x04.. ESPn/SSn, 0x1C CR3, 0x20 EIP,
//! 0x24 EFLAGS, 0x28..0x44 EAX..EDI, 0x48..0x5C ES CS SS DS FS GS, 0x60 LDT, 0x64 T,
//! 0x66 I/O map base. 16-bit TSS (Figure 7-11): 0x00 link, 0x02.. SPn/SSn, 0x0E IP,
//! 0x10 FLAGS, 0x12..0x20 AX..DI, 0x22..0x28 ES CS SS DS, 0x2A LDT.

use super::decode::{CS, DS, ES, FS, GS, SS};
use super::exception::{selector_error, Exception};
use super::flags::{NT, VM};
use super::seg::{systype, Seg};
use super::{cr0, Cpu, Res};
use crate::bus::Bus;

/// What started the switch: it decides the busy bits, NT and the back link (Table 7-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    Jmp,
    Call,
    Iret,
    Interrupt,
}

impl Cpu {
    /// Switch to the task whose TSS selector is `sel`. EIP is the return address to save.
    pub(crate) fn task_switch<B: Bus>(&mut self, bus: &mut B, sel: u16, reason: Reason, ext: u16) -> Res<()> {
        if self.v386.is_some() {
            // V386 mode: an intercepted task switch exits before anything is checked
            // (docs/v386.md Table 4-2 bit 13, Table 8-2).
            self.vx_task_switch(sel, reason)?;
        }
        // The new TSS descriptor must be in the GDT (§7.2.2).
        if sel & 4 != 0 {
            return Err(Exception::GP(selector_error(sel) | ext).into());
        }
        let mut nd = match self.read_descriptor(bus, sel) {
            Ok(d) => d,
            Err(Some(e)) => return Err(e.into()),
            Err(None) => return Err(Exception::GP(selector_error(sel) | ext).into()),
        };
        let ty = nd.sys_type();
        let want_busy = reason == Reason::Iret;
        let ok_type = if want_busy {
            matches!(ty, systype::TSS16_BUSY | systype::TSS32_BUSY)
        } else {
            matches!(ty, systype::TSS16_AVAIL | systype::TSS32_AVAIL)
        };
        if !nd.is_system() || !ok_type {
            let e = if reason == Reason::Iret {
                Exception::TS(selector_error(sel))
            } else {
                Exception::GP(selector_error(sel) | ext)
            };
            return Err(e.into());
        }
        if !nd.present() {
            return Err(Exception::NP(selector_error(sel) | ext).into());
        }
        let new = nd.seg(sel);
        let new32 = ty & 8 != 0;
        if new.limit < if new32 { 0x67 } else { 0x2b } {
            return Err(Exception::TS(selector_error(sel) | ext).into());
        }

        // Save the outgoing task's dynamic state in its TSS (§7.3 step 8).
        let old = self.tr;
        let old32 = old.is_tss32();
        let mut eflags = self.flags.get();
        if reason == Reason::Iret {
            eflags &= !NT;
        }
        // Touch the new TSS first so a page fault there happens before anything changes.
        self.read_sys16(bus, new.base)?;
        self.read_sys16(bus, new.base.wrapping_add(new.limit))?;
        if old32 {
            let b = old.base;
            self.write_sys32(bus, b + 0x20, self.eip)?;
            self.write_sys32(bus, b + 0x24, eflags)?;
            for r in 0..8 {
                self.write_sys32(bus, b + 0x28 + r * 4, self.regs[r as usize])?;
            }
            for (i, s) in [ES, CS, SS, DS, FS, GS].iter().enumerate() {
                self.write_sys16(bus, b + 0x48 + i as u32 * 4, self.segs[*s as usize].sel)?;
            }
        } else {
            let b = old.base;
            self.write_sys16(bus, b + 0x0e, self.eip as u16)?;
            self.write_sys16(bus, b + 0x10, eflags as u16)?;
            for r in 0..8 {
                self.write_sys16(bus, b + 0x12 + r * 2, self.regs[r as usize] as u16)?;
            }
            for (i, s) in [ES, CS, SS, DS].iter().enumerate() {
                self.write_sys16(bus, b + 0x22 + i as u32 * 2, self.segs[*s as usize].sel)?;
            }
        }
        // Busy bits (§7.2.2): the old task stops being busy on JMP and IRET.
        if matches!(reason, Reason::Jmp | Reason::Iret) {
            if let Ok(mut od) = self.read_descriptor(bus, old.sel) {
                od.hi &= !(2 << 8);
                let lin = self.gdtr.base.wrapping_add((old.sel & !7) as u32 + 4);
                self.write_sys32(bus, lin, od.hi)?;
            }
        }
        if matches!(reason, Reason::Call | Reason::Interrupt) {
            self.write_sys16(bus, new.base, old.sel)?;
        }
        if reason != Reason::Iret {
            nd.hi |= 2 << 8;
            let lin = self.gdtr.base.wrapping_add((sel & !7) as u32 + 4);
            self.write_sys32(bus, lin, nd.hi)?;
        }
        let mut tr = nd.seg(sel);
        tr.access |= 2;
        self.tr = tr;
        self.cr0 |= cr0::TS;

        // Load the incoming task's state. From here on a fault belongs to the new task.
        let b = new.base;
        let (eip, mut nflags, regs, sels, ldt, cr3) = if new32 {
            let mut regs = [0u32; 8];
            for r in 0..8 {
                regs[r as usize] = self.read_sys32(bus, b + 0x28 + r * 4)?;
            }
            let mut sels = [0u16; 6];
            for (i, s) in sels.iter_mut().enumerate() {
                *s = self.read_sys16(bus, b + 0x48 + i as u32 * 4)?;
            }
            (
                self.read_sys32(bus, b + 0x20)?,
                self.read_sys32(bus, b + 0x24)?,
                regs,
                sels,
                self.read_sys16(bus, b + 0x60)?,
                Some(self.read_sys32(bus, b + 0x1c)?),
            )
        } else {
            let mut regs = [0u32; 8];
            for r in 0..8 {
                regs[r as usize] = 0xffff_0000 | self.read_sys16(bus, b + 0x12 + r * 2)? as u32;
            }
            let mut sels = [0u16; 6];
            for (i, s) in sels.iter_mut().take(4).enumerate() {
                *s = self.read_sys16(bus, b + 0x22 + i as u32 * 2)?;
            }
            let fl = self.read_sys16(bus, b + 0x10)? as u32;
            (self.read_sys16(bus, b + 0x0e)? as u32, fl, regs, sels, self.read_sys16(bus, b + 0x2a)?, None)
        };
        if matches!(reason, Reason::Call | Reason::Interrupt) {
            nflags |= NT;
        }
        if let Some(cr3) = cr3 {
            // A CR3 load with PAE paging in use loads the PDPTEs (SDM Vol. 3A §4.4.1).
            if self.pae_paging() {
                self.load_pdptes(bus, cr3)?;
            }
            if self.cr0 & cr0::PG != 0 && cr3 != self.cr3 {
                self.cr3 = cr3;
                self.flush_tlb_cr3();
            } else {
                self.cr3 = cr3;
            }
        }
        self.regs = regs;
        self.eip = eip;
        self.flags.set(nflags);
        // Selectors first, without checks, so a fault below reports in the new context.
        for (i, s) in [ES, CS, SS, DS, FS, GS].iter().enumerate() {
            self.segs[*s as usize].sel = sels[i];
        }
        self.ldtr.sel = ldt;
        if nflags & VM != 0 {
            for (i, s) in [ES, CS, SS, DS, FS, GS].iter().enumerate() {
                let mut seg = Seg::real(sels[i]);
                seg.access |= 3 << 5;
                self.segs[*s as usize] = seg;
            }
            self.cpl = 3;
            self.load_ldt_checked(bus, ldt)?;
            return Ok(());
        }
        self.load_ldt_checked(bus, ldt)?;
        let cpl = (sels[1] & 3) as u8;
        // CS (§7.3 step 13 / Table 7-1 checks).
        let cs_sel = sels[1];
        if cs_sel & !3 == 0 {
            return Err(Exception::TS(0).into());
        }
        let csd = self.read_descriptor(bus, cs_sel).map_err(|e| e.unwrap_or(Exception::TS(selector_error(cs_sel))))?;
        let cs = csd.seg(cs_sel);
        if !cs.is_code() || (cs.conforming() && cs.dpl() > cpl) || (!cs.conforming() && cs.dpl() != cpl) {
            return Err(Exception::TS(selector_error(cs_sel)).into());
        }
        if !cs.present() {
            return Err(Exception::NP(selector_error(cs_sel)).into());
        }
        self.set_cs(cs, cpl);
        // SS.
        let ss_sel = sels[2];
        if ss_sel & !3 == 0 {
            return Err(Exception::TS(0).into());
        }
        let ssd = self.read_descriptor(bus, ss_sel).map_err(|e| e.unwrap_or(Exception::TS(selector_error(ss_sel))))?;
        let ss = ssd.seg(ss_sel);
        if !ss.writable() || ss.dpl() != cpl || (ss_sel & 3) as u8 != cpl {
            return Err(Exception::TS(selector_error(ss_sel)).into());
        }
        if !ss.present() {
            return Err(Exception::SS(selector_error(ss_sel)).into());
        }
        self.segs[SS as usize] = ss;
        for (i, r) in [(0usize, ES), (3, DS), (4, FS), (5, GS)] {
            let s = sels[i];
            if s & !3 == 0 {
                self.segs[r as usize] = Seg::null(s);
                continue;
            }
            let d = self.read_descriptor(bus, s).map_err(|e| e.unwrap_or(Exception::TS(selector_error(s))))?;
            let seg = d.seg(s);
            if !seg.readable() || (!seg.conforming() && (seg.dpl() < cpl || seg.dpl() < (s & 3) as u8)) {
                return Err(Exception::TS(selector_error(s)).into());
            }
            if !seg.present() {
                return Err(Exception::NP(selector_error(s)).into());
            }
            self.segs[r as usize] = seg;
        }
        Ok(())
    }

    /// LDTR from a new task's TSS: null, or an LDT descriptor in the GDT (§7.3 step 12).
    fn load_ldt_checked<B: Bus>(&mut self, bus: &mut B, sel: u16) -> Res<()> {
        if sel & !3 == 0 {
            self.ldtr = Seg::null(sel);
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err(Exception::TS(selector_error(sel)).into());
        }
        let d = self.read_descriptor(bus, sel).map_err(|e| e.unwrap_or(Exception::TS(selector_error(sel))))?;
        if !d.is_system() || d.sys_type() != systype::LDT {
            return Err(Exception::TS(selector_error(sel)).into());
        }
        if !d.present() {
            return Err(Exception::TS(selector_error(sel)).into());
        }
        self.ldtr = d.seg(sel);
        Ok(())
    }

    /// A CR3 load: flush the TLB, keeping global pages when CR4.PGE is set (§4.10.4.1).
    pub(crate) fn flush_tlb_cr3(&mut self) {
        if self.cr4 & super::cr4::PGE != 0 {
            self.tlb.flush_non_global();
        } else {
            self.tlb.flush_all();
        }
    }
}
