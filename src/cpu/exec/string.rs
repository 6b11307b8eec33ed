//! String instructions (SDM Vol. 2B "MOVS", "CMPS", "STOS", "LODS", "SCAS", "INS", "OUTS",
//! and "REP/REPE/REPZ/REPNE/REPNZ"). ESI/EDI/ECX are used at the address size; DF picks the
//! direction. Each iteration commits its register updates, so a fault mid-way restarts the
//! instruction with the remaining count, as on hardware.
//!
//! A REP runs at most [`CHUNK`] iterations per step and then re-executes itself, so the run
//! loop can take interrupts and honour its budget during a long copy.

use super::super::decode::{Instr, Rep, DS, ES, SEG_DEFAULT};
use super::super::{Cpu, Res, EAX, ECX, EDI, ESI};
use super::AluOp;
use crate::bus::Bus;

/// Iterations of a REP string instruction per step.
const CHUNK: u32 = 4096;

impl Cpu {
    #[inline(always)]
    fn str_reg(&self, r: usize, ad32: bool) -> u32 {
        if ad32 {
            self.regs[r]
        } else {
            self.regs[r] & 0xffff
        }
    }

    #[inline(always)]
    fn str_advance(&mut self, r: usize, delta: u32, ad32: bool) {
        let v = self.regs[r].wrapping_add(delta);
        if ad32 {
            self.regs[r] = v;
        } else {
            self.regs[r] = (self.regs[r] & 0xffff_0000) | (v & 0xffff);
        }
    }

    pub(crate) fn string<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let size: u32 = if i.opcode & 1 == 0 {
            1
        } else if i.op32 {
            4
        } else {
            2
        };
        let delta = if self.flags.df() { size.wrapping_neg() } else { size };
        let src_seg = if i.seg == SEG_DEFAULT { DS } else { i.seg };
        let ad32 = i.ad32;
        let rep = Self::rep_active(i);
        let mut n = 0;
        loop {
            if rep {
                if self.str_reg(ECX, ad32) == 0 {
                    return Ok(());
                }
                if n == CHUNK {
                    self.eip = self.start_eip;
                    return Ok(());
                }
                n += 1;
            }
            let si = self.str_reg(ESI, ad32);
            let di = self.str_reg(EDI, ad32);
            let mut compare = false;
            match i.opcode {
                0xa4 | 0xa5 => {
                    let v = self.str_read(bus, src_seg, si, size)?;
                    self.str_write(bus, di, size, v)?;
                    self.str_advance(ESI, delta, ad32);
                    self.str_advance(EDI, delta, ad32);
                }
                0xa6 | 0xa7 => {
                    let a = self.str_read(bus, src_seg, si, size)?;
                    let b = self.str_read(bus, ES, di, size)?;
                    self.alu(AluOp::Cmp, (size * 8) as u8, a, b);
                    self.str_advance(ESI, delta, ad32);
                    self.str_advance(EDI, delta, ad32);
                    compare = true;
                }
                0xaa | 0xab => {
                    let v = self.regs[EAX];
                    self.str_write(bus, di, size, v)?;
                    self.str_advance(EDI, delta, ad32);
                }
                0xac | 0xad => {
                    let v = self.str_read(bus, src_seg, si, size)?;
                    match size {
                        1 => self.set_reg8(0, v as u8),
                        2 => self.set_regv(0, v, false),
                        _ => self.regs[EAX] = v,
                    }
                    self.str_advance(ESI, delta, ad32);
                }
                _ => {
                    // SCAS
                    let b = self.str_read(bus, ES, di, size)?;
                    let a = self.regs[EAX];
                    self.alu(AluOp::Cmp, (size * 8) as u8, a, b);
                    self.str_advance(EDI, delta, ad32);
                    compare = true;
                }
            }
            if !rep {
                return Ok(());
            }
            let c = self.str_reg(ECX, ad32).wrapping_sub(1);
            self.str_advance(ECX, u32::MAX, ad32);
            if compare {
                let zf = self.flags.zf();
                let stop = match i.rep {
                    Rep::Rep => !zf,
                    Rep::Repne => zf,
                    Rep::None => true,
                };
                if stop {
                    return Ok(());
                }
            }
            if c == 0 {
                return Ok(());
            }
        }
    }

    #[inline(always)]
    fn str_read<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, size: u32) -> Res<u32> {
        Ok(match size {
            1 => self.rd8(bus, seg, off)? as u32,
            2 => self.rd16(bus, seg, off)? as u32,
            _ => self.rd32(bus, seg, off)?,
        })
    }

    #[inline(always)]
    fn str_write<B: Bus>(&mut self, bus: &mut B, di: u32, size: u32, v: u32) -> Res<()> {
        match size {
            1 => self.wr8(bus, ES, di, v as u8),
            2 => self.wr16(bus, ES, di, v as u16),
            _ => self.wr32(bus, ES, di, v),
        }
    }

    /// INS / OUTS (6C–6F), with the I/O permission check once per instruction.
    pub(crate) fn string_io<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let size: u32 = if i.opcode & 1 == 0 {
            1
        } else if i.op32 {
            4
        } else {
            2
        };
        let port = self.regs[super::super::EDX] as u16;
        self.check_io(bus, port, size)?;
        let delta = if self.flags.df() { size.wrapping_neg() } else { size };
        let ad32 = i.ad32;
        let rep = Self::rep_active(i);
        let src_seg = if i.seg == SEG_DEFAULT { DS } else { i.seg };
        if self.v386.is_some() && !(rep && self.str_reg(ECX, ad32) == 0) {
            // V386 mode: the I/O bitmap, before the first iteration (docs/v386.md Table
            // 8-6: string, REP, address size, OUTS segment; the first element's address).
            let input = i.opcode <= 0x6d;
            let (seg, off) = if input { (ES, self.str_reg(EDI, ad32)) } else { (src_seg, self.str_reg(ESI, ad32)) };
            let lin = self.segs[seg as usize].base.wrapping_add(off);
            let bits = 1 << 4 | (rep as u64) << 5 | (ad32 as u64) << 7 | if input { 0 } else { (src_seg as u64) << 8 };
            let string = Some((bits, lin));
            self.vx_io(bus, super::super::v386::IoAccess { port, size, input, imm: false, value: 0, string })?;
        }
        let mut n = 0;
        loop {
            if rep {
                if self.str_reg(ECX, ad32) == 0 {
                    return Ok(());
                }
                if n == CHUNK {
                    self.eip = self.start_eip;
                    return Ok(());
                }
                n += 1;
            }
            if i.opcode <= 0x6d {
                let di = self.str_reg(EDI, ad32);
                // The destination is checked before the port is read (SDM Vol. 2A "INS").
                let lin = self.seg_lin(ES, di, size, true)?;
                self.translate(bus, lin, self.cpl == 3, true)?;
                let v = self.io_read_raw(bus, port, size);
                self.str_write(bus, di, size, v)?;
                self.str_advance(EDI, delta, ad32);
            } else {
                let si = self.str_reg(ESI, ad32);
                let v = self.str_read(bus, src_seg, si, size)?;
                self.io_write_raw(bus, port, size, v);
                self.str_advance(ESI, delta, ad32);
            }
            if !rep {
                return Ok(());
            }
            self.str_advance(ECX, u32::MAX, ad32);
            if self.str_reg(ECX, ad32) == 0 {
                return Ok(());
            }
        }
    }
}
