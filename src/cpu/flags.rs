//! EFLAGS (SDM Vol. 1 §3.4.3, Vol. 3A §2.3) with lazy evaluation of the arithmetic flags.
//!
//! Most instructions set CF, PF, AF, ZF, SF and OF, and most of those results are never
//! read. So the ALU records its operands, result and operation in [`Lazy`], and a flag is
//! computed only when something reads it. The other bits (IF, DF, IOPL, …) live in
//! `Flags::bits`, which never holds the six arithmetic flags while they are lazy.

use serde::{Deserialize, Serialize};

/// EFLAGS bit positions (SDM Vol. 1 Figure 3-8).
pub const CF: u32 = 1 << 0;
pub const PF: u32 = 1 << 2;
pub const AF: u32 = 1 << 4;
pub const ZF: u32 = 1 << 6;
pub const SF: u32 = 1 << 7;
pub const TF: u32 = 1 << 8;
pub const IF: u32 = 1 << 9;
pub const DF: u32 = 1 << 10;
pub const OF: u32 = 1 << 11;
pub const IOPL: u32 = 3 << 12;
pub const NT: u32 = 1 << 14;
pub const RF: u32 = 1 << 16;
pub const VM: u32 = 1 << 17;
pub const AC: u32 = 1 << 18;
pub const VIF: u32 = 1 << 19;
pub const VIP: u32 = 1 << 20;
pub const ID: u32 = 1 << 21;
/// V386 mode (docs/v386.md §5.1): bit 22, 1 while a guest runs. It is never stored here
/// and never part of a guest-visible image: the processor's mode is `Cpu::in_v386`.
pub const VX: u32 = 1 << 22;
/// The six arithmetic status flags.
pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
/// Bit 1 always reads as 1.
pub const FIXED1: u32 = 1 << 1;
/// Bits software can ever see set on this CPU (a P6: no VIF/VIP outside VME, which we lack).
pub const IMPLEMENTED: u32 = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | ID;

/// The operation that last set the arithmetic flags, with its operand width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Flags are in `Flags::bits` already.
    None,
    Add,
    Adc,
    Sub,
    Sbb,
    /// AND, OR, XOR, TEST: CF = OF = 0 (AF undefined; we clear it as P6 does).
    Logic,
    /// INC: CF preserved (kept in `Lazy::carry`).
    Inc,
    /// DEC: CF preserved.
    Dec,
}

/// Operands and result of the last flag-setting operation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Lazy {
    pub op: Op,
    /// Operand width in bits: 8, 16 or 32.
    pub size: u8,
    pub dst: u32,
    pub src: u32,
    pub res: u32,
    /// CF to report for INC/DEC (which preserve it).
    pub carry: bool,
}

/// EFLAGS, with the arithmetic flags possibly pending in `lazy`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Flags {
    /// Every bit; while `lazy.op != Op::None` the six arithmetic ones are stale.
    pub bits: u32,
    pub lazy: Lazy,
}

impl Default for Flags {
    fn default() -> Self {
        Self { bits: FIXED1, lazy: Lazy { op: Op::None, size: 32, dst: 0, src: 0, res: 0, carry: false } }
    }
}

#[inline]
fn sign_bit(size: u8) -> u32 {
    1u32 << (size - 1)
}

#[inline]
fn mask(size: u8) -> u32 {
    if size == 32 {
        u32::MAX
    } else {
        (1u32 << size) - 1
    }
}

static PARITY: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).count_ones() % 2 == 0;
        i += 1;
    }
    t
};

impl Flags {
    /// Record an operation whose flags are computed lazily. The arithmetic bits left in
    /// `bits` are stale from here on and nothing reads them until [`Flags::materialize`]
    /// rewrites them, so they are not cleared (one load and branch less per ALU op).
    ///
    /// The operands are kept masked to `size`, so [`Flags::cf`] compares them as they are.
    /// A logic operation's flags come from its result alone, so its operands are not
    /// stored (stale `dst`/`src` are never read while `op` is [`Op::Logic`]).
    /// measured (callgrind, `v386-bench` register / memory loop, method in `block.rs`):
    /// 29.8 / 48.1 → 28.2 / 47.7 host instructions per guest instruction.
    #[inline(always)]
    pub fn set_lazy(&mut self, op: Op, size: u8, dst: u32, src: u32, res: u32) {
        // `carry` is left alone: only INC/DEC read it, and they set it.
        self.lazy.op = op;
        self.lazy.size = size;
        if op != Op::Logic {
            self.lazy.dst = dst & mask(size);
            self.lazy.src = src & mask(size);
        }
        self.lazy.res = res & mask(size);
    }

    /// INC/DEC: like [`Flags::set_lazy`] but CF keeps its value. The source (1) is not
    /// stored: INC's and DEC's flags read only `dst`, `res` and `carry`.
    #[inline(always)]
    pub fn set_lazy_keep_cf(&mut self, op: Op, size: u8, dst: u32, res: u32) {
        let carry = self.cf();
        self.lazy.op = op;
        self.lazy.size = size;
        self.lazy.dst = dst & mask(size);
        self.lazy.res = res & mask(size);
        self.lazy.carry = carry;
    }

    #[inline(always)]
    pub fn cf(&self) -> bool {
        // `dst` and `src` are masked to the size already (see `set_lazy`).
        let l = &self.lazy;
        match l.op {
            Op::None => self.bits & CF != 0,
            Op::Add => l.res < l.dst,
            Op::Adc => l.res < l.dst || (l.res == l.dst && l.src != 0 && self.lazy_adc_carry_in()),
            Op::Sub => l.dst < l.src,
            Op::Sbb => {
                let (d, s) = (l.dst, l.src);
                // res = d - s - cin; borrow when d < s + cin.
                let cin = (d.wrapping_sub(s).wrapping_sub(l.res) & mask(l.size)) != 0;
                (d as u64) < s as u64 + cin as u64
            }
            Op::Logic => false,
            Op::Inc | Op::Dec => l.carry,
        }
    }

    #[inline]
    fn lazy_adc_carry_in(&self) -> bool {
        let l = &self.lazy;
        (l.dst.wrapping_add(l.src) & mask(l.size)) != l.res
    }

    #[inline(always)]
    pub fn zf(&self) -> bool {
        if self.lazy.op == Op::None {
            self.bits & ZF != 0
        } else {
            self.lazy.res == 0
        }
    }

    #[inline(always)]
    pub fn sf(&self) -> bool {
        if self.lazy.op == Op::None {
            self.bits & SF != 0
        } else {
            self.lazy.res & sign_bit(self.lazy.size) != 0
        }
    }

    #[inline(always)]
    pub fn pf(&self) -> bool {
        if self.lazy.op == Op::None {
            self.bits & PF != 0
        } else {
            PARITY[(self.lazy.res & 0xff) as usize]
        }
    }

    #[inline]
    pub fn af(&self) -> bool {
        let l = &self.lazy;
        match l.op {
            Op::None => self.bits & AF != 0,
            Op::Logic => false,
            Op::Inc | Op::Dec => ((l.dst ^ l.res ^ 1) & 0x10) != 0,
            _ => ((l.dst ^ l.src ^ l.res) & 0x10) != 0,
        }
    }

    #[inline(always)]
    pub fn of(&self) -> bool {
        let l = &self.lazy;
        let sb = sign_bit(l.size);
        match l.op {
            Op::None => self.bits & OF != 0,
            Op::Add | Op::Adc => ((l.dst ^ l.res) & (l.src ^ l.res) & sb) != 0,
            Op::Sub | Op::Sbb => ((l.dst ^ l.src) & (l.dst ^ l.res) & sb) != 0,
            Op::Logic => false,
            Op::Inc => l.res == sb,
            Op::Dec => l.res == sb - 1,
        }
    }

    /// Make every flag concrete in `bits` (before a full EFLAGS read or a partial write).
    #[inline]
    pub fn materialize(&mut self) {
        if self.lazy.op == Op::None {
            return;
        }
        let mut b = self.bits & !ARITH;
        if self.cf() {
            b |= CF;
        }
        if self.pf() {
            b |= PF;
        }
        if self.af() {
            b |= AF;
        }
        if self.zf() {
            b |= ZF;
        }
        if self.sf() {
            b |= SF;
        }
        if self.of() {
            b |= OF;
        }
        self.bits = b;
        self.lazy.op = Op::None;
    }

    /// The whole EFLAGS value.
    #[inline]
    pub fn get(&self) -> u32 {
        let mut c = *self;
        c.materialize();
        c.bits | FIXED1
    }

    /// Overwrite EFLAGS (the caller has applied privilege masks).
    #[inline]
    pub fn set(&mut self, v: u32) {
        self.lazy.op = Op::None;
        self.bits = (v & IMPLEMENTED) | FIXED1;
    }

    /// Set or clear one concrete flag bit (any bit, arithmetic ones included).
    #[inline]
    pub fn set_bit(&mut self, bit: u32, on: bool) {
        if bit & ARITH != 0 {
            self.materialize();
        }
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    /// Set the arithmetic flags from concrete values (shifts, multiplies, BCD, bit tests).
    #[inline]
    pub fn set_arith(&mut self, arith: u32) {
        self.materialize();
        self.bits = (self.bits & !ARITH) | (arith & ARITH);
    }

    /// SF, ZF, PF of a result of `size` bits, as bits.
    #[inline]
    pub fn szp(res: u32, size: u8) -> u32 {
        let r = res & mask(size);
        let mut f = 0;
        if r == 0 {
            f |= ZF;
        }
        if r & sign_bit(size) != 0 {
            f |= SF;
        }
        if PARITY[(r & 0xff) as usize] {
            f |= PF;
        }
        f
    }

    /// Evaluate condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc, SDM Vol. 1 Table B-1).
    #[inline(always)]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r ^ (cc & 1 != 0)
    }

    #[inline]
    pub fn iopl(&self) -> u8 {
        ((self.bits >> 12) & 3) as u8
    }
    #[inline]
    pub fn vm(&self) -> bool {
        self.bits & VM != 0
    }
    #[inline]
    pub fn if_(&self) -> bool {
        self.bits & IF != 0
    }
    #[inline]
    pub fn df(&self) -> bool {
        self.bits & DF != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(op: Op, size: u8, d: u32, s: u32, r: u32) -> u32 {
        let mut f = Flags::default();
        f.set_lazy(op, size, d, s, r);
        f.get() & ARITH
    }

    #[test]
    fn add_sub() {
        assert_eq!(flags_of(Op::Add, 8, 0xff, 1, 0x100), CF | ZF | PF | AF);
        assert_eq!(flags_of(Op::Add, 8, 0x7f, 1, 0x80), SF | OF | AF);
        assert_eq!(flags_of(Op::Sub, 32, 0, 1, u32::MAX), CF | SF | PF | AF);
        assert_eq!(flags_of(Op::Sub, 16, 0x8000, 1, 0x7fff), OF | PF | AF);
    }

    #[test]
    fn adc_sbb_with_carry() {
        // 0xff + 0xff + 1 = 0x1ff: CF set, result 0xff.
        assert!(
            Flags { bits: 0, lazy: Lazy { op: Op::Adc, size: 8, dst: 0xff, src: 0xff, res: 0xff, carry: false } }.cf()
        );
        // 0 - 0 - 1 = 0xff: borrow.
        assert!(Flags { bits: 0, lazy: Lazy { op: Op::Sbb, size: 8, dst: 0, src: 0, res: 0xff, carry: false } }.cf());
        // 5 - 5 - 0 = 0: no borrow.
        assert!(!Flags { bits: 0, lazy: Lazy { op: Op::Sbb, size: 8, dst: 5, src: 5, res: 0, carry: false } }.cf());
    }
}
