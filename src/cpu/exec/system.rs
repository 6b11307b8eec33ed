//! System instructions: descriptor-table registers and selectors (group 6/7, LAR, LSL,
//! VERR/VERW, ARPL), control and debug registers, MSRs, RDTSC/RDPMC, SYSENTER/SYSEXIT and
//! port I/O with its IOPL and TSS-bitmap checks (SDM Vol. 1 §18.5.1, §18.5.2).

use super::super::decode::{Instr, SS};
use super::super::exception::{selector_error, Exception};
use super::super::flags::{IF, RF, VM, ZF};
use super::super::mmu::EFER_NXE;
use super::super::msr::index;
use super::super::seg::{systype, Seg};
use super::super::v386::IoAccess;
use super::super::{cr0, cr4, Cpu, Res, EAX, ECX, EDX, ESP};
use crate::bus::{Bus, IoSize};

fn io_size(size: u32) -> IoSize {
    match size {
        1 => IoSize::Byte,
        2 => IoSize::Word,
        _ => IoSize::Dword,
    }
}

impl Cpu {
    pub(crate) fn require_cpl0(&self) -> Res<()> {
        if self.cpl != 0 || self.v86() {
            return Err(Exception::GP(0).into());
        }
        Ok(())
    }

    /// Group 6 and the selector instructions exist only in protected mode (#UD in real and
    /// V86 mode, SDM Vol. 2A "SLDT", "LLDT", …).
    fn require_pmode(&self) -> Res<()> {
        if !self.pmode() {
            return Err(Exception::UD.into());
        }
        Ok(())
    }

    /// Store a selector-sized value: registers take the operand size, memory 16 bits.
    fn store_sel<B: Bus>(&mut self, bus: &mut B, i: &Instr, v: u32) -> Res<()> {
        if i.is_mem {
            let off = self.ea(i);
            self.wr16(bus, i.mem_seg(), off, v as u16)
        } else {
            self.set_regv(i.rm(), v, i.op32);
            Ok(())
        }
    }

    pub(crate) fn group6<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        self.require_pmode()?;
        match i.reg() {
            0 => {
                let v = self.ldtr.sel as u32;
                self.store_sel(bus, i, v)
            }
            1 => {
                let v = self.tr.sel as u32;
                self.store_sel(bus, i, v)
            }
            2 => {
                self.require_cpl0()?;
                let sel = self.rm16(bus, i)?;
                if sel & !3 == 0 {
                    self.ldtr = Seg::null(sel);
                    return Ok(());
                }
                if sel & 4 != 0 {
                    return Err(Exception::GP(selector_error(sel)).into());
                }
                let d = self.descriptor_or_gp(bus, sel)?;
                if !d.is_system() || d.sys_type() != systype::LDT {
                    return Err(Exception::GP(selector_error(sel)).into());
                }
                if !d.present() {
                    return Err(Exception::NP(selector_error(sel)).into());
                }
                self.ldtr = d.seg(sel);
                Ok(())
            }
            3 => {
                self.require_cpl0()?;
                let sel = self.rm16(bus, i)?;
                if sel & !3 == 0 {
                    return Err(Exception::GP(0).into());
                }
                if sel & 4 != 0 {
                    return Err(Exception::GP(selector_error(sel)).into());
                }
                let mut d = self.descriptor_or_gp(bus, sel)?;
                if !d.is_system() || !matches!(d.sys_type(), systype::TSS16_AVAIL | systype::TSS32_AVAIL) {
                    return Err(Exception::GP(selector_error(sel)).into());
                }
                if !d.present() {
                    return Err(Exception::NP(selector_error(sel)).into());
                }
                d.hi |= 2 << 8;
                let lin = self.gdtr.base.wrapping_add((sel & !7) as u32 + 4);
                self.write_sys32(bus, lin, d.hi)?;
                self.tr = d.seg(sel);
                Ok(())
            }
            4 | 5 => {
                let sel = self.rm16(bus, i)?;
                let ok = self.verify(bus, sel, i.reg() == 5)?;
                self.flags.set_bit(ZF, ok);
                Ok(())
            }
            _ => Err(Exception::UD.into()),
        }
    }

    /// VERR / VERW: is the segment readable / writable from here? (SDM Vol. 2B "VERR").
    fn verify<B: Bus>(&mut self, bus: &mut B, sel: u16, write: bool) -> Res<bool> {
        if sel & !3 == 0 {
            return Ok(false);
        }
        let d = match self.read_descriptor(bus, sel) {
            Ok(d) => d,
            Err(Some(e)) => return Err(e.into()),
            Err(None) => return Ok(false),
        };
        if d.is_system() {
            return Ok(false);
        }
        let s = d.seg(sel);
        let rpl = (sel & 3) as u8;
        if !s.conforming() && (s.dpl() < self.cpl || s.dpl() < rpl) {
            return Ok(false);
        }
        Ok(if write { s.writable() } else { s.readable() })
    }

    /// LAR / LSL (SDM Vol. 2A "LAR", Vol. 2B "LSL").
    pub(crate) fn lar_lsl<B: Bus>(&mut self, bus: &mut B, i: &Instr, lar: bool) -> Res<()> {
        self.require_pmode()?;
        let sel = self.rm16(bus, i)?;
        let d = if sel & !3 == 0 {
            None
        } else {
            match self.read_descriptor(bus, sel) {
                Ok(d) => Some(d),
                Err(Some(e)) => return Err(e.into()),
                Err(None) => None,
            }
        };
        let valid = d.filter(|d| {
            let rpl = (sel & 3) as u8;
            if d.is_system() {
                let ok_types: &[u8] = if lar { &[1, 2, 3, 4, 5, 9, 11, 12] } else { &[1, 2, 3, 9, 11] };
                ok_types.contains(&d.sys_type()) && d.dpl() >= self.cpl && d.dpl() >= rpl
            } else {
                let s = d.seg(sel);
                s.conforming() || (d.dpl() >= self.cpl && d.dpl() >= rpl)
            }
        });
        match valid {
            Some(d) => {
                let v = if lar { d.hi & 0x00f0_ff00 } else { d.seg(sel).limit };
                self.set_regv(i.reg(), v, i.op32);
                self.flags.set_bit(ZF, true);
            }
            None => self.flags.set_bit(ZF, false),
        }
        Ok(())
    }

    /// ARPL (SDM Vol. 2A "ARPL"): #UD outside protected mode.
    pub(crate) fn arpl<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        self.require_pmode()?;
        let src = self.regs[i.reg() as usize] as u16;
        let mut adjusted = false;
        let write = |d: u32| -> Option<u32> {
            if d & 3 < (src & 3) as u32 {
                Some((d & !3) | (src & 3) as u32)
            } else {
                None
            }
        };
        if i.is_mem {
            // A read-modify-write cycle: the operand is written back even when unchanged,
            // so a read-only page faults and a clean one becomes dirty either way.
            let off = self.ea(i);
            let seg = i.mem_seg();
            let d = self.rd16(bus, seg, off)? as u32;
            let r = write(d);
            adjusted = r.is_some();
            self.wr16(bus, seg, off, r.unwrap_or(d) as u16)?;
        } else {
            let d = self.regs[i.rm() as usize] & 0xffff;
            if let Some(r) = write(d) {
                self.set_regv(i.rm(), r, false);
                adjusted = true;
            }
        }
        self.flags.set_bit(ZF, adjusted);
        Ok(())
    }

    pub(crate) fn group7<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        match i.reg() {
            0 | 1 => {
                let t = if i.reg() == 0 { self.gdtr } else { self.idtr };
                let off = self.ea(i);
                let seg = i.mem_seg();
                // With a 16-bit operand only 24 bits of the base are stored, the fourth byte
                // as zero (SDM Vol. 2B "SGDT", 80286 compatibility).
                let base = if i.op32 { t.base } else { t.base & 0x00ff_ffff };
                self.seg_lin(seg, off, 6, true)?;
                self.wr16(bus, seg, off, t.limit)?;
                self.wr32(bus, seg, off.wrapping_add(2), base)
            }
            2 | 3 => {
                self.require_cpl0()?;
                let off = self.ea(i);
                let seg = i.mem_seg();
                let limit = self.rd16(bus, seg, off)?;
                let mut base = self.rd32(bus, seg, off.wrapping_add(2))?;
                if !i.op32 {
                    base &= 0x00ff_ffff;
                }
                let t = super::super::TableReg { base, limit };
                if i.reg() == 2 {
                    self.gdtr = t;
                } else {
                    self.idtr = t;
                }
                Ok(())
            }
            4 => {
                let v = self.cr0;
                if i.is_mem {
                    let off = self.ea(i);
                    self.wr16(bus, i.mem_seg(), off, v as u16)
                } else {
                    self.set_regv(i.rm(), v, i.op32);
                    Ok(())
                }
            }
            6 => {
                self.require_cpl0()?;
                let v = self.rm16(bus, i)? as u32;
                // LMSW loads PE, MP, EM, TS; it can set PE but never clear it.
                let new = (self.cr0 & !0xe) | (v & 0xf) | (self.cr0 & cr0::PE);
                self.write_cr0(bus, new)
            }
            7 => {
                self.require_cpl0()?;
                let off = self.ea(i);
                let lin = self.segs[i.mem_seg() as usize].base.wrapping_add(off);
                self.tlb.flush_page(lin >> 12);
                Ok(())
            }
            _ => Err(Exception::UD.into()),
        }
    }

    fn write_cr0<B: Bus>(&mut self, bus: &mut B, v: u32) -> Res<()> {
        // PG without PE, or NW without CD, is #GP(0) (SDM Vol. 3A §2.5, "MOV CRn").
        if (v & cr0::PG != 0 && v & cr0::PE == 0) || (v & cr0::NW != 0 && v & cr0::CD == 0) {
            return Err(Exception::GP(0).into());
        }
        let v = v | cr0::ET;
        let changed = self.cr0 ^ v;
        // With PAE paging in use afterwards, a change of CD, NW or PG reloads the PDPTEs;
        // a reserved bit in one is #GP(0) with CR0 unchanged (SDM Vol. 3A §4.4.1).
        if v & cr0::PG != 0 && self.cr4 & cr4::PAE != 0 && changed & (cr0::CD | cr0::NW | cr0::PG) != 0 {
            self.load_pdptes(bus, self.cr3)?;
        }
        self.cr0 = v;
        if changed & (cr0::PG | cr0::WP | cr0::PE) != 0 {
            self.tlb.flush_all();
        }
        if changed & cr0::PE != 0 && v & cr0::PE == 0 {
            self.cpl = 0;
        }
        Ok(())
    }

    pub(crate) fn clts(&mut self) -> Res<()> {
        self.require_cpl0()?;
        self.cr0 &= !cr0::TS;
        Ok(())
    }

    pub(crate) fn mov_from_cr(&mut self, i: &Instr) -> Res<()> {
        self.require_cpl0()?;
        let v = match i.reg() {
            0 => self.cr0,
            2 => self.cr2,
            3 => self.cr3,
            4 => self.cr4,
            _ => return Err(Exception::UD.into()),
        };
        self.regs[i.rm() as usize] = v;
        Ok(())
    }

    pub(crate) fn mov_to_cr<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        if !matches!(i.reg(), 0 | 2 | 3 | 4) {
            return Err(Exception::UD.into());
        }
        self.require_cpl0()?;
        let v = self.regs[i.rm() as usize];
        match i.reg() {
            0 => self.write_cr0(bus, v)?,
            2 => self.cr2 = v,
            3 => {
                // All 32 bits are kept: PAE paging takes the PDPT address from bits 31:5
                // (SDM Vol. 3A Table 4-7); 32-bit paging ignores bits 11:5 (Table 4-3).
                if self.pae_paging() {
                    self.load_pdptes(bus, v)?;
                }
                self.cr3 = v;
                self.flush_tlb_cr3();
            }
            _ => {
                if v & !cr4::WRITABLE != 0 {
                    return Err(Exception::GP(0).into());
                }
                let changed = self.cr4 ^ v;
                // PAE paging in use afterwards and PAE, PGE or PSE changing: reload the
                // PDPTEs, #GP(0) with CR4 unchanged on a reserved bit (SDM Vol. 3A §4.4.1).
                if self.cr0 & cr0::PG != 0 && v & cr4::PAE != 0 && changed & (cr4::PAE | cr4::PGE | cr4::PSE) != 0 {
                    self.load_pdptes(bus, self.cr3)?;
                }
                self.cr4 = v;
                if changed & (cr4::PSE | cr4::PGE | cr4::PAE) != 0 {
                    self.tlb.flush_all();
                }
            }
        }
        Ok(())
    }

    /// DR4/DR5 alias DR6/DR7 unless CR4.DE is set, when they are #UD (SDM Vol. 3A §17.2.2).
    fn dr_index(&self, n: u8) -> Res<usize> {
        match n {
            4 | 5 if self.cr4 & cr4::DE != 0 => Err(Exception::UD.into()),
            4 | 5 => Ok(n as usize + 2),
            _ => Ok(n as usize),
        }
    }

    pub(crate) fn mov_from_dr(&mut self, i: &Instr) -> Res<()> {
        self.require_cpl0()?;
        let n = self.dr_index(i.reg())?;
        self.regs[i.rm() as usize] = self.dr[n];
        Ok(())
    }

    pub(crate) fn mov_to_dr(&mut self, i: &Instr) -> Res<()> {
        self.require_cpl0()?;
        let n = self.dr_index(i.reg())?;
        let v = self.regs[i.rm() as usize];
        self.dr[n] = match n {
            6 => (v & 0x0000_e00f) | 0xffff_0ff0,
            7 => (v & 0xffff_2bff) | 0x400,
            _ => v,
        };
        Ok(())
    }

    /// The time-stamp counter: retired instructions plus the offset WRMSR set.
    pub fn tsc(&self) -> u64 {
        self.icount.wrapping_add(self.msr.tsc_offset)
    }

    pub(crate) fn rdtsc(&mut self) -> Res<()> {
        if self.cr4 & cr4::TSD != 0 && self.cpl != 0 && self.protected() {
            return Err(Exception::GP(0).into());
        }
        let t = self.tsc();
        self.regs[EAX] = t as u32;
        self.regs[EDX] = (t >> 32) as u32;
        Ok(())
    }

    pub(crate) fn rdpmc(&mut self) -> Res<()> {
        // Two counters exist on P6 (ECX = 0 or 1); we count nothing, so they read 0.
        if self.cr4 & cr4::PCE == 0 && self.cpl != 0 && self.protected() {
            return Err(Exception::GP(0).into());
        }
        if self.regs[ECX] > 1 {
            return Err(Exception::GP(0).into());
        }
        self.regs[EAX] = 0;
        self.regs[EDX] = 0;
        Ok(())
    }

    pub(crate) fn rdmsr<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        self.require_cpl0()?;
        let v: u64 = match self.regs[ECX] {
            index::IA32_P5_MC_ADDR | index::IA32_P5_MC_TYPE => 0,
            index::IA32_TIME_STAMP_COUNTER => self.tsc(),
            index::IA32_PLATFORM_ID => 0,
            index::IA32_BIOS_SIGN_ID => self.msr.bios_sign_id,
            index::IA32_SYSENTER_CS => self.msr.sysenter_cs as u64,
            index::IA32_SYSENTER_ESP => self.msr.sysenter_esp as u64,
            index::IA32_SYSENTER_EIP => self.msr.sysenter_eip as u64,
            index::IA32_MISC_ENABLE => self.msr.misc_enable,
            index::IA32_EFER => self.msr.efer,
            other => bus.rdmsr(other).ok_or(Exception::GP(0))?,
        };
        self.regs[EAX] = v as u32;
        self.regs[EDX] = (v >> 32) as u32;
        Ok(())
    }

    pub(crate) fn wrmsr<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        self.require_cpl0()?;
        let v = ((self.regs[EDX] as u64) << 32) | self.regs[EAX] as u64;
        match self.regs[ECX] {
            index::IA32_P5_MC_ADDR | index::IA32_P5_MC_TYPE | index::IA32_PLATFORM_ID => {}
            index::IA32_TIME_STAMP_COUNTER => self.msr.tsc_offset = v.wrapping_sub(self.icount),
            index::IA32_BIOS_SIGN_ID => self.msr.bios_sign_id = v,
            index::IA32_SYSENTER_CS => self.msr.sysenter_cs = v as u32,
            index::IA32_SYSENTER_ESP => self.msr.sysenter_esp = v as u32,
            index::IA32_SYSENTER_EIP => self.msr.sysenter_eip = v as u32,
            index::IA32_MISC_ENABLE => self.msr.misc_enable = v,
            index::IA32_EFER => {
                // Only NXE is implemented; LME, SCE and the rest are reserved on a CPU
                // without IA-32e mode, so setting one is #GP(0) (see `Msrs::efer`).
                if v & !EFER_NXE != 0 {
                    return Err(Exception::GP(0).into());
                }
                if (self.msr.efer ^ v) & EFER_NXE != 0 {
                    // Fetch rights and reserved bits in the TLB depend on NXE.
                    self.tlb.flush_all();
                }
                self.msr.efer = v;
            }
            other => {
                if bus.wrmsr(other, v) != Some(true) {
                    return Err(Exception::GP(0).into());
                }
            }
        }
        Ok(())
    }

    /// SYSENTER (SDM Vol. 2B "SYSENTER"): flat ring-0 CS/SS from IA32_SYSENTER_CS.
    pub(crate) fn sysenter(&mut self) -> Res<()> {
        if !self.protected() || self.msr.sysenter_cs & 0xfffc == 0 {
            return Err(Exception::GP(0).into());
        }
        let f = self.flags.get() & !(VM | IF | RF);
        self.flags.set(f);
        let cs = (self.msr.sysenter_cs & 0xfffc) as u16;
        self.set_cs(Seg::flat32(cs, true), 0);
        self.segs[SS as usize] = Seg::flat32(cs + 8, false);
        self.regs[ESP] = self.msr.sysenter_esp;
        self.eip = self.msr.sysenter_eip;
        Ok(())
    }

    /// SYSEXIT (SDM Vol. 2B "SYSEXIT"): flat ring-3 CS/SS, EIP = EDX, ESP = ECX.
    pub(crate) fn sysexit(&mut self) -> Res<()> {
        if !self.protected() || self.v86() || self.cpl != 0 || self.msr.sysenter_cs & 0xfffc == 0 {
            return Err(Exception::GP(0).into());
        }
        let base = (self.msr.sysenter_cs & 0xfffc) as u16;
        let mut cs = Seg::flat32(base + 16, true);
        cs.access |= 3 << 5;
        let mut ss = Seg::flat32((base + 24) | 3, false);
        ss.access |= 3 << 5;
        self.set_cs(cs, 3);
        self.segs[SS as usize] = ss;
        self.regs[ESP] = self.regs[ECX];
        self.eip = self.regs[EDX];
        Ok(())
    }

    // ----- port I/O ---------------------------------------------------------------------

    /// The I/O permission check (SDM Vol. 1 §18.5): in protected mode with CPL > IOPL, and
    /// always in V86 mode, every bit of the port range must be clear in the TSS bitmap.
    pub(crate) fn check_io<B: Bus>(&mut self, bus: &mut B, port: u16, size: u32) -> Res<()> {
        if !self.protected() || (!self.v86() && self.cpl <= self.flags.iopl()) {
            return Ok(());
        }
        let tss32 = self.tr.is_tss32();
        if !self.tr.valid || !tss32 || self.tr.limit < 0x67 {
            return Err(Exception::GP(0).into());
        }
        let base = self.read_sys16(bus, self.tr.base.wrapping_add(0x66))? as u32;
        let byte = base + (port as u32 >> 3);
        if byte + 1 > self.tr.limit {
            return Err(Exception::GP(0).into());
        }
        let bits = self.read_sys16(bus, self.tr.base.wrapping_add(byte))? as u32;
        let m = ((1u32 << size) - 1) << (port & 7);
        if bits & m != 0 {
            return Err(Exception::GP(0).into());
        }
        Ok(())
    }

    pub(crate) fn io_read_raw<B: Bus>(&mut self, bus: &mut B, port: u16, size: u32) -> u32 {
        self.did_io = true;
        bus.sync(self.icount);
        bus.io_in(port, io_size(size))
    }

    pub(crate) fn io_write_raw<B: Bus>(&mut self, bus: &mut B, port: u16, size: u32, v: u32) {
        self.did_io = true;
        bus.sync(self.icount);
        let v = match size {
            1 => v & 0xff,
            2 => v & 0xffff,
            _ => v,
        };
        bus.io_out(port, io_size(size), v);
    }

    /// IN; `imm`: the port came as an immediate (for the V386 exit qualification).
    pub(crate) fn port_in<B: Bus>(&mut self, bus: &mut B, port: u16, size: u32, imm: bool) -> Res<u32> {
        self.check_io(bus, port, size)?;
        if self.v386.is_some() {
            self.vx_io(bus, IoAccess { port, size, input: true, imm, value: 0, string: None })?;
        }
        Ok(self.io_read_raw(bus, port, size))
    }

    /// OUT; `imm` as for [`Cpu::port_in`].
    pub(crate) fn port_out<B: Bus>(&mut self, bus: &mut B, port: u16, size: u32, v: u32, imm: bool) -> Res<()> {
        self.check_io(bus, port, size)?;
        if self.v386.is_some() {
            self.vx_io(bus, IoAccess { port, size, input: false, imm, value: v, string: None })?;
        }
        self.io_write_raw(bus, port, size, v);
        Ok(())
    }
}
