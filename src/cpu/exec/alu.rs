//! Arithmetic, logic, shifts and rotates, multiply and divide, BCD adjust, bit tests and
//! scans (SDM Vol. 2A/2B, each instruction's "Operation" and "Flags Affected"). Where the
//! SDM leaves a flag undefined we do what P6 parts are documented or observed to do; the
//! differential tests mask those flags, each mask citing its page.

use super::super::decode::Instr;
use super::super::exception::Exception;
use super::super::flags::{self, Flags, Op, AF, CF, OF};
use super::super::{Cpu, Res, EAX, EDX};
use crate::bus::Bus;

/// The eight ALU operations in the order of the opcode map's rows (00, 08, … 38) and of
/// group 1's ModR/M reg field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AluOp {
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
}

#[inline(always)]
fn mask(bits: u8) -> u32 {
    if bits == 32 {
        u32::MAX
    } else {
        (1 << bits) - 1
    }
}

#[inline(always)]
fn msb(v: u32, bits: u8) -> bool {
    (v >> (bits - 1)) & 1 != 0
}

impl Cpu {
    /// One ALU operation; sets the flags and returns the result to store (None for CMP).
    #[inline(always)]
    pub(crate) fn alu(&mut self, op: AluOp, bits: u8, d: u32, s: u32) -> Option<u32> {
        let m = mask(bits);
        let (d, s) = (d & m, s & m);
        let (fop, r) = match op {
            AluOp::Add => (Op::Add, d.wrapping_add(s)),
            AluOp::Or => (Op::Logic, d | s),
            AluOp::Adc => {
                let c = self.flags.cf() as u32;
                (Op::Adc, d.wrapping_add(s).wrapping_add(c))
            }
            AluOp::Sbb => {
                let c = self.flags.cf() as u32;
                (Op::Sbb, d.wrapping_sub(s).wrapping_sub(c))
            }
            AluOp::And => (Op::Logic, d & s),
            AluOp::Sub | AluOp::Cmp => (Op::Sub, d.wrapping_sub(s)),
            AluOp::Xor => (Op::Logic, d ^ s),
        };
        self.flags.set_lazy(fop, bits, d, s, r);
        if op == AluOp::Cmp {
            None
        } else {
            Some(r & m)
        }
    }

    #[inline(always)]
    pub(crate) fn inc_dec(&mut self, inc: bool, bits: u8, v: u32) -> u32 {
        let m = mask(bits);
        let d = v & m;
        let r = if inc { d.wrapping_add(1) } else { d.wrapping_sub(1) } & m;
        self.flags.set_lazy_keep_cf(if inc { Op::Inc } else { Op::Dec }, bits, d, r);
        r
    }

    /// Shifts and rotates, group 2 (SDM Vol. 2B "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR").
    /// `kind` is the ModR/M reg field. The count is masked to 5 bits; a zero count changes
    /// no flags.
    pub(crate) fn shift(&mut self, kind: u8, bits: u8, d: u32, count: u8) -> Option<u32> {
        let m = mask(bits);
        let d = d & m;
        let count = (count & 0x1f) as u32;
        if count == 0 {
            return Some(d);
        }
        let cf_in = self.flags.cf();
        let mut f = self.flags.get() & flags::ARITH;
        let set = |f: &mut u32, bit: u32, on: bool| {
            if on {
                *f |= bit
            } else {
                *f &= !bit
            }
        };
        let r = match kind {
            0 => {
                // ROL
                let n = count % bits as u32;
                let r = if n == 0 { d } else { ((d << n) | (d >> (bits as u32 - n))) & m };
                let cf = r & 1 != 0;
                set(&mut f, CF, cf);
                set(&mut f, OF, msb(r, bits) ^ cf);
                r
            }
            1 => {
                // ROR
                let n = count % bits as u32;
                let r = if n == 0 { d } else { ((d >> n) | (d << (bits as u32 - n))) & m };
                set(&mut f, CF, msb(r, bits));
                set(&mut f, OF, msb(r, bits) ^ msb(r << 1, bits));
                r
            }
            2 => {
                // RCL: rotate through CF, a (bits+1)-bit rotation.
                let n = match bits {
                    8 => count % 9,
                    16 => count % 17,
                    _ => count,
                };
                if n == 0 {
                    return Some(d);
                }
                let wide = (d as u64) | ((cf_in as u64) << bits);
                let w = bits as u32 + 1;
                let rot = ((wide << n) | (wide >> (w - n))) & ((1u64 << w) - 1);
                let r = (rot as u32) & m;
                let cf = (rot >> bits) & 1 != 0;
                set(&mut f, CF, cf);
                set(&mut f, OF, msb(r, bits) ^ cf);
                r
            }
            3 => {
                // RCR
                let n = match bits {
                    8 => count % 9,
                    16 => count % 17,
                    _ => count,
                };
                if n == 0 {
                    return Some(d);
                }
                let wide = (d as u64) | ((cf_in as u64) << bits);
                let w = bits as u32 + 1;
                let rot = ((wide >> n) | (wide << (w - n))) & ((1u64 << w) - 1);
                let r = (rot as u32) & m;
                let cf = (rot >> bits) & 1 != 0;
                // OF = MSB(DEST) XOR CF, evaluated before the rotation (count 1 only).
                set(&mut f, OF, msb(d, bits) ^ cf_in);
                set(&mut f, CF, cf);
                r
            }
            4 | 6 => {
                // SHL / SAL
                let r = if count >= 32 { 0 } else { (d << count) & m };
                let cf = if count <= bits as u32 { (d >> (bits as u32 - count)) & 1 != 0 } else { false };
                f = Flags::szp(r, bits) | if cf { CF } else { 0 };
                set(&mut f, OF, msb(r, bits) ^ cf);
                r
            }
            5 => {
                // SHR
                let r = if count >= 32 { 0 } else { d >> count };
                let cf = if count <= 32 { (d >> (count - 1)) & 1 != 0 } else { false };
                f = Flags::szp(r, bits) | if cf { CF } else { 0 };
                set(&mut f, OF, msb(d, bits));
                r
            }
            _ => {
                // SAR
                let sd = ((d << (32 - bits as u32)) as i32) >> (32 - bits as u32);
                let n = count.min(31);
                let r = ((sd >> n) as u32) & m;
                let cf = ((sd >> (count - 1).min(31)) & 1) != 0;
                f = Flags::szp(r, bits) | if cf { CF } else { 0 };
                r
            }
        };
        self.flags.set_arith(f);
        Some(r)
    }

    /// SHLD / SHRD (SDM Vol. 2B "SHLD", "SHRD"): count masked to 5 bits, zero changes
    /// nothing; a count above the operand size leaves the result undefined.
    pub(crate) fn shld_shrd(&mut self, left: bool, bits: u8, d: u32, s: u32, count: u8) -> Option<u32> {
        let m = mask(bits);
        let (d, s) = (d & m, s & m);
        let n = (count & 0x1f) as u32;
        if n == 0 {
            return Some(d);
        }
        let b = bits as u32;
        // Build a 64-bit (or 48/32-bit) window and shift it: dest:src for SHLD, src:dest
        // for SHRD; for 16-bit operands the window repeats dest so counts 17..31 behave as
        // the P6 does (dest:src:dest).
        let (r, cf) = if left {
            let wide: u64 = if bits == 32 {
                ((d as u64) << 32) | s as u64
            } else {
                ((d as u64) << 32) | ((s as u64) << 16) | d as u64
            };
            let r = ((wide << n) >> 32) as u32 & m;
            // The last bit shifted out of the destination: bit (32 + size - n) of the window.
            let cf = (wide >> (32 + b - n)) & 1 != 0;
            (r, cf)
        } else {
            let wide: u64 = if bits == 32 {
                ((s as u64) << 32) | d as u64
            } else {
                ((d as u64) << 32) | ((s as u64) << 16) | d as u64
            };
            let r = (wide >> n) as u32 & m;
            let cf = (wide >> (n - 1)) & 1 != 0;
            (r, cf)
        };
        let mut f = Flags::szp(r, bits) | if cf { CF } else { 0 };
        if msb(r, bits) != msb(d, bits) {
            f |= OF;
        }
        self.flags.set_arith(f);
        Some(r)
    }

    /// Two- and three-operand IMUL: the truncated product, CF = OF = "it did not fit".
    pub(crate) fn imul2(&mut self, bits: u8, a: u32, b: u32) -> u32 {
        let (a, b) = if bits == 32 {
            (a as i32 as i64, b as i32 as i64)
        } else {
            (a as u16 as i16 as i64, b as u16 as i16 as i64)
        };
        let p = a * b;
        let r = p as u32 & mask(bits);
        let fits = if bits == 32 { p == p as i32 as i64 } else { p == p as i16 as i64 };
        let mut f = Flags::szp(r, bits);
        if !fits {
            f |= CF | OF;
        }
        self.flags.set_arith(f);
        r
    }

    /// Group 3 on a byte operand: TEST, NOT, NEG, MUL, IMUL, DIV, IDIV.
    pub(crate) fn group3_8<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        match i.reg() {
            0 | 1 => {
                let v = self.rm8(bus, i)? as u32;
                self.alu(AluOp::And, 8, v, i.imm & 0xff);
                Ok(())
            }
            2 => self.rmw8(bus, i, |_, d| Some(!d & 0xff)),
            3 => self.rmw8(bus, i, |c, d| {
                let r = 0u32.wrapping_sub(d) & 0xff;
                c.flags.set_lazy(Op::Sub, 8, 0, d, r);
                Some(r)
            }),
            4 => {
                let v = self.rm8(bus, i)? as u32;
                let p = (self.regs[EAX] & 0xff) * v;
                self.set_regv(0, p, false);
                let mut f = Flags::szp(p, 8);
                if p > 0xff {
                    f |= CF | OF;
                }
                self.flags.set_arith(f);
                Ok(())
            }
            5 => {
                let v = self.rm8(bus, i)? as i8 as i32;
                let p = (self.regs[EAX] as i8 as i32) * v;
                self.set_regv(0, p as u32, false);
                let mut f = Flags::szp(p as u32, 8);
                if p != p as i8 as i32 {
                    f |= CF | OF;
                }
                self.flags.set_arith(f);
                Ok(())
            }
            6 => {
                let v = self.rm8(bus, i)? as u32;
                let ax = self.regs[EAX] & 0xffff;
                if v == 0 || ax / v > 0xff {
                    return Err(Exception::DE.into());
                }
                let q = ax / v;
                let r = ax % v;
                self.set_regv(0, (r << 8) | q, false);
                Ok(())
            }
            _ => {
                let v = self.rm8(bus, i)? as i8 as i32;
                let ax = self.regs[EAX] as u16 as i16 as i32;
                if v == 0 {
                    return Err(Exception::DE.into());
                }
                let q = ax / v;
                let r = ax % v;
                if q != q as i8 as i32 {
                    return Err(Exception::DE.into());
                }
                self.set_regv(0, ((r as u32 & 0xff) << 8) | (q as u32 & 0xff), false);
                Ok(())
            }
        }
    }

    /// Group 3 on a word/dword operand.
    pub(crate) fn group3_v<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let bits = Self::vbits(i);
        let m = mask(bits);
        match i.reg() {
            0 | 1 => {
                let v = self.rmv(bus, i)?;
                self.alu(AluOp::And, bits, v, i.imm);
                Ok(())
            }
            2 => self.rmwv(bus, i, |_, d| Some(!d & m)),
            3 => self.rmwv(bus, i, |c, d| {
                let r = 0u32.wrapping_sub(d) & m;
                c.flags.set_lazy(Op::Sub, bits, 0, d, r);
                Some(r)
            }),
            4 => {
                let v = self.rmv(bus, i)? as u64;
                let a = (self.regs[EAX] & m) as u64;
                let p = a * v;
                let (lo, hi) = (p as u32 & m, (p >> bits) as u32 & m);
                self.set_regv(0, lo, i.op32);
                self.set_regv(EDX as u8, hi, i.op32);
                let mut f = Flags::szp(lo, bits);
                if hi != 0 {
                    f |= CF | OF;
                }
                self.flags.set_arith(f);
                Ok(())
            }
            5 => {
                let v = self.rmv(bus, i)?;
                let (a, v) = if i.op32 {
                    (self.regs[EAX] as i32 as i64, v as i32 as i64)
                } else {
                    (self.regs[EAX] as u16 as i16 as i64, v as u16 as i16 as i64)
                };
                let p = a * v;
                let lo = p as u32 & m;
                let hi = (p >> bits) as u32 & m;
                self.set_regv(0, lo, i.op32);
                self.set_regv(EDX as u8, hi, i.op32);
                let fits = if i.op32 { p == p as i32 as i64 } else { p == p as i16 as i64 };
                let mut f = Flags::szp(lo, bits);
                if !fits {
                    f |= CF | OF;
                }
                self.flags.set_arith(f);
                Ok(())
            }
            6 => {
                let v = self.rmv(bus, i)? as u64;
                let n = ((self.regs[EDX] & m) as u64) << bits | (self.regs[EAX] & m) as u64;
                if v == 0 || n / v > m as u64 {
                    return Err(Exception::DE.into());
                }
                self.set_regv(0, (n / v) as u32, i.op32);
                self.set_regv(EDX as u8, (n % v) as u32, i.op32);
                Ok(())
            }
            _ => {
                let v = self.rmv(bus, i)?;
                let (n, v): (i64, i64) = if i.op32 {
                    ((((self.regs[EDX] as u64) << 32) | self.regs[EAX] as u64) as i64, v as i32 as i64)
                } else {
                    (
                        (((self.regs[EDX] & 0xffff) << 16) | (self.regs[EAX] & 0xffff)) as i32 as i64,
                        v as u16 as i16 as i64,
                    )
                };
                if v == 0 {
                    return Err(Exception::DE.into());
                }
                // i64::MIN / -1 cannot occur: n is at most 64 bits of a sign-extended
                // 32-bit pair only for op32, so guard it explicitly.
                let (q, r) = match (n.checked_div(v), n.checked_rem(v)) {
                    (Some(q), Some(r)) => (q, r),
                    _ => return Err(Exception::DE.into()),
                };
                let fits = if i.op32 { q == q as i32 as i64 } else { q == q as i16 as i64 };
                if !fits {
                    return Err(Exception::DE.into());
                }
                self.set_regv(0, q as u32, i.op32);
                self.set_regv(EDX as u8, r as u32, i.op32);
                Ok(())
            }
        }
    }

    // ----- BCD (SDM Vol. 2A "AAA", "AAD", "AAM", "AAS", "DAA", "DAS") --------------------

    pub(crate) fn daa(&mut self) -> Res<()> {
        let al = self.regs[EAX] as u8;
        let (old_cf, af) = (self.flags.cf(), self.flags.af());
        let mut r = al;
        let adjust_low = al & 0xf > 9 || af;
        if adjust_low {
            r = r.wrapping_add(6);
        }
        // The second step decides CF alone (SDM Vol. 2A "DAA" operation).
        let cf = al > 0x99 || old_cf;
        if cf {
            r = r.wrapping_add(0x60);
        }
        self.set_reg8(0, r);
        let mut f = Flags::szp(r as u32, 8);
        if cf {
            f |= CF;
        }
        if adjust_low {
            f |= AF;
        }
        self.flags.set_arith(f);
        Ok(())
    }

    pub(crate) fn das(&mut self) -> Res<()> {
        let al = self.regs[EAX] as u8;
        let (old_cf, af) = (self.flags.cf(), self.flags.af());
        let mut r = al;
        let mut cf = false;
        let mut naf = false;
        if al & 0xf > 9 || af {
            let (v, b) = r.overflowing_sub(6);
            r = v;
            cf = old_cf || b;
            naf = true;
        }
        if al > 0x99 || old_cf {
            r = r.wrapping_sub(0x60);
            cf = true;
        }
        self.set_reg8(0, r);
        let mut f = Flags::szp(r as u32, 8);
        if cf {
            f |= CF;
        }
        if naf {
            f |= AF;
        }
        self.flags.set_arith(f);
        Ok(())
    }

    pub(crate) fn aaa(&mut self) -> Res<()> {
        let ax = self.regs[EAX] as u16;
        let adjust = ax & 0xf > 9 || self.flags.af();
        let r = if adjust { ax.wrapping_add(0x106) } else { ax } & 0xff0f;
        self.set_regv(0, r as u32, false);
        let mut f = Flags::szp(r as u32 & 0xff, 8);
        if adjust {
            f |= AF | CF;
        }
        self.flags.set_arith(f);
        Ok(())
    }

    pub(crate) fn aas(&mut self) -> Res<()> {
        let ax = self.regs[EAX] as u16;
        let adjust = ax & 0xf > 9 || self.flags.af();
        let r = if adjust {
            // AX ← AX − 6 (the borrow reaches AH), then AH ← AH − 1 (SDM Vol. 2A "AAS").
            ax.wrapping_sub(6).wrapping_sub(0x100)
        } else {
            ax
        } & 0xff0f;
        self.set_regv(0, r as u32, false);
        let mut f = Flags::szp(r as u32 & 0xff, 8);
        if adjust {
            f |= AF | CF;
        }
        self.flags.set_arith(f);
        Ok(())
    }

    pub(crate) fn aam(&mut self, base: u8) -> Res<()> {
        if base == 0 {
            return Err(Exception::DE.into());
        }
        let al = self.regs[EAX] as u8;
        let r = (((al / base) as u32) << 8) | (al % base) as u32;
        self.set_regv(0, r, false);
        self.flags.set_arith(Flags::szp(r & 0xff, 8));
        Ok(())
    }

    pub(crate) fn aad(&mut self, base: u8) -> Res<()> {
        let al = self.regs[EAX] as u8;
        let ah = (self.regs[EAX] >> 8) as u8;
        let r = al.wrapping_add(ah.wrapping_mul(base));
        self.set_regv(0, r as u32, false);
        self.flags.set_arith(Flags::szp(r as u32, 8));
        Ok(())
    }

    // ----- bits (SDM Vol. 2A "BT", "BTC", "BTR", "BTS", "BSF", "BSR") -------------------

    pub(crate) fn bit_test<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let bits = Self::vbits(i) as u32;
        // 0 = BT, 1 = BTS, 2 = BTR, 3 = BTC.
        let kind = match i.opcode {
            0x1a3 => 0,
            0x1ab => 1,
            0x1b3 => 2,
            0x1bb => 3,
            _ => (i.reg() & 3) as u32,
        };
        let imm_form = i.opcode == 0x1ba;
        let offset = if imm_form { i.imm & 0xff } else { self.regv(i.reg(), i.op32) };
        let apply = |v: u32, bit: u32| -> (bool, Option<u32>) {
            let set = (v >> bit) & 1 != 0;
            let r = match kind {
                0 => None,
                1 => Some(v | (1 << bit)),
                2 => Some(v & !(1 << bit)),
                _ => Some(v ^ (1 << bit)),
            };
            (set, r)
        };
        let cf;
        if !i.is_mem {
            let v = self.regv(i.rm(), i.op32);
            let (c, r) = apply(v, offset % bits);
            cf = c;
            if let Some(r) = r {
                self.set_regv(i.rm(), r, i.op32);
            }
        } else {
            let mut off = self.ea(i);
            let bit = offset % bits;
            if !imm_form {
                // The register bit offset is signed and selects a word/dword relative to
                // the operand's address (SDM Vol. 2A "BT", Figure 3-2).
                let disp = if i.op32 { ((offset as i32) >> 5) * 4 } else { ((offset as u16 as i16 as i32) >> 4) * 2 };
                off = off.wrapping_add(disp as u32);
                if !i.ad32 {
                    off &= 0xffff;
                }
            }
            let seg = i.mem_seg();
            let v = self.rdv(bus, seg, off, i.op32)?;
            let (c, r) = apply(v, bit);
            cf = c;
            if let Some(r) = r {
                self.wrv(bus, seg, off, r, i.op32)?;
            }
        }
        self.flags.set_bit(CF, cf);
        Ok(())
    }

    pub(crate) fn bsf_bsr<B: Bus>(&mut self, bus: &mut B, i: &Instr, forward: bool) -> Res<()> {
        let v = self.rmv(bus, i)?;
        let f = self.flags.get() & flags::ARITH;
        if v == 0 {
            // Destination unchanged (undefined in the SDM; P6 leaves it), ZF = 1.
            self.flags.set_arith(f | flags::ZF);
            return Ok(());
        }
        let r = if forward { v.trailing_zeros() } else { 31 - v.leading_zeros() };
        self.set_regv(i.reg(), r, i.op32);
        self.flags.set_arith(f & !flags::ZF);
        Ok(())
    }
}
