//! 80-bit double extended-precision arithmetic for the x87 (SDM Vol. 1 §4.2.2, §4.8, §8.2):
//! the register format and its classes, correctly rounded add, subtract, multiply, divide
//! and square root under the control word's rounding and precision control, the exact
//! partial remainder, scaling, rounding to an integer, conversions to and from the memory
//! formats (single, double, 16/32/64-bit integers, 18-digit packed BCD) and comparison —
//! each reporting the exception conditions it meets as flags for the caller (`super`) to
//! mask, record and act on.
//!
//! Written here rather than taken from a crate: `rustc_apfloat` (the one well-kept
//! soft-float crate with an `X87DoubleExtended` type, `no_std`) has no square root, no
//! precision control (the x87 rounds the significand to 24 or 53 bits but keeps the 15-bit
//! exponent range, which is no IEEE format), no denormal-operand condition, no notion of
//! the x87's unsupported encodings or of its biased results for unmasked overflow and
//! underflow, and is licensed Apache-2.0 WITH LLVM-exception unlike this crate. All of that
//! would have to be built around it; the arithmetic itself is small with `u128`.
//!
//! Representation: [`F80`] is the register image (sign + 15-bit biased exponent, 64-bit
//! significand with its explicit integer bit J). Arithmetic unpacks finite operands to
//! `Fin` (sign, unbiased exponent, normalized significand), computes an exact result or
//! one with a sticky bit in a `u128`, and [`round`] rounds it once to the destination
//! format, so every basic operation is correctly rounded.

use serde::{Deserialize, Serialize};

/// Exception flags, at their bit positions in the status and control words (SDM Vol. 1
/// §8.1.3, Figure 8-5; §8.1.5, Figure 8-6).
pub const IE: u8 = 1 << 0;
pub const DE: u8 = 1 << 1;
pub const ZE: u8 = 1 << 2;
pub const OE: u8 = 1 << 3;
pub const UE: u8 = 1 << 4;
pub const PE: u8 = 1 << 5;

/// An x87 register value: `se` is sign (bit 15) and biased exponent (bits 14–0), `sig` the
/// significand with the integer bit J in bit 63 (SDM Vol. 1 §4.2.2, Figure 4-3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct F80 {
    pub se: u16,
    pub sig: u64,
}

/// The classes of an 80-bit encoding (SDM Vol. 1 §8.2.2, Table 8-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Zero,
    /// Exponent 0, significand non-zero; includes pseudo-denormals (J = 1), which the
    /// 387 and later accept as denormal operands but never produce.
    Denormal,
    Normal,
    Inf,
    QNaN,
    SNaN,
    /// Unnormals, pseudo-NaNs, pseudo-infinities (exponent non-zero, J = 0): an invalid
    /// operand since the 387.
    Unsupported,
}

/// Rounding control, the control word's RC field (SDM Vol. 1 §4.8.4, Table 4-8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    Nearest,
    Down,
    Up,
    Zero,
}

impl Rc {
    pub fn from_bits(b: u16) -> Rc {
        match b & 3 {
            0 => Rc::Nearest,
            1 => Rc::Down,
            2 => Rc::Up,
            _ => Rc::Zero,
        }
    }
}

/// What rounding needs from the control word: RC, the significand precision (PC for the
/// instructions it applies to, else 64) and whether overflow and underflow are masked
/// (an unmasked one with a register destination gets a biased result, SDM Vol. 1 §8.5.4–5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Env {
    pub rc: Rc,
    pub prec: u32,
    pub om: bool,
    pub um: bool,
}

impl Env {
    /// From a control word, with its precision control (SDM Vol. 1 §8.1.5.2, Table 8-2:
    /// 00 single, 10 double, 11 double extended; 01 is reserved and taken as 11 here).
    pub fn from_cw(cw: u16) -> Env {
        let prec = match (cw >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        };
        Env { rc: Rc::from_bits(cw >> 10), prec, om: cw & OE as u16 != 0, um: cw & UE as u16 != 0 }
    }
    /// The same with full precision: instructions that precision control does not affect.
    pub fn ext(self) -> Env {
        Env { prec: 64, ..self }
    }
}

/// The outcome of an operation besides its value: the exception flags it raised and, when
/// the result was inexact, whether it was rounded up in magnitude (C1, SDM Vol. 1 §8.1.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub exc: u8,
    pub up: bool,
}

/// A destination format (SDM Vol. 1 §4.2.2, Table 4-3): significand bits including the
/// integer bit, exponent range of normal numbers, exponent bias.
#[derive(Clone, Copy, Debug)]
pub struct Fmt {
    pub prec: u32,
    pub emin: i32,
    pub emax: i32,
    pub bias: i32,
}

pub const EXT: Fmt = Fmt { prec: 64, emin: -16382, emax: 16383, bias: 16383 };
pub const DBL: Fmt = Fmt { prec: 53, emin: -1022, emax: 1023, bias: 1023 };
pub const SGL: Fmt = Fmt { prec: 24, emin: -126, emax: 127, bias: 127 };

/// The exponent bias adjustment for unmasked overflow and underflow with a register
/// destination (SDM Vol. 1 §8.5.4, §8.5.5: 2^24576).
const BIAS_ADJUST: i32 = 24576;

/// A finite non-zero value `m * 2^(e - 63)` with `m` normalized (bit 63 set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fin {
    pub sign: bool,
    pub e: i32,
    pub m: u64,
}

/// A rounded result before packing: biased exponent (0 for denormals and zero) and the
/// significand's `prec` bits, integer bit included, right-aligned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packed {
    pub sign: bool,
    pub bexp: i32,
    pub mant: u64,
}

impl F80 {
    pub const ZERO: F80 = F80 { se: 0, sig: 0 };
    pub const ONE: F80 = F80 { se: 0x3fff, sig: 1 << 63 };
    /// The real indefinite, the masked response to an invalid operation (SDM Vol. 1
    /// §4.8.3.7, Table 4-3): negative QNaN with only the top fraction bit set.
    pub const INDEFINITE: F80 = F80 { se: 0xffff, sig: 0xc000_0000_0000_0000 };

    pub fn zero(sign: bool) -> F80 {
        F80 { se: (sign as u16) << 15, sig: 0 }
    }
    pub fn inf(sign: bool) -> F80 {
        F80 { se: (sign as u16) << 15 | 0x7fff, sig: 1 << 63 }
    }
    pub fn from_bytes(b: &[u8; 10]) -> F80 {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        F80 { sig: u64::from_le_bytes(s), se: u16::from_le_bytes([b[8], b[9]]) }
    }
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.sig.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    #[inline]
    pub fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }
    #[inline]
    pub fn exp(self) -> u16 {
        self.se & 0x7fff
    }
    pub fn abs(self) -> F80 {
        F80 { se: self.se & 0x7fff, ..self }
    }
    pub fn with_sign(self, sign: bool) -> F80 {
        F80 { se: (self.se & 0x7fff) | (sign as u16) << 15, ..self }
    }
    pub fn class(self) -> Class {
        let e = self.exp();
        if e == 0 {
            return if self.sig == 0 { Class::Zero } else { Class::Denormal };
        }
        if self.sig >> 63 == 0 {
            return Class::Unsupported;
        }
        if e == 0x7fff {
            if self.sig << 1 == 0 {
                Class::Inf
            } else if self.sig & (1 << 62) != 0 {
                Class::QNaN
            } else {
                Class::SNaN
            }
        } else {
            Class::Normal
        }
    }
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }
    /// A signaling NaN made quiet (SDM Vol. 1 §4.8.3.4: set the top fraction bit).
    pub fn quiet(self) -> F80 {
        F80 { sig: self.sig | 1 << 62, ..self }
    }
    /// The tag of a non-empty register holding this value (SDM Vol. 1 §8.1.7, Figure 8-7):
    /// 0 valid, 1 zero, 2 special (NaN, infinity, denormal, unsupported).
    pub fn tag(self) -> u16 {
        match self.class() {
            Class::Normal => 0,
            Class::Zero => 1,
            _ => 2,
        }
    }
    pub(crate) fn fin(self) -> Fin {
        let e = self.exp() as i32;
        if e == 0 {
            // Denormals (and pseudo-denormals) have the weight of exponent 1.
            let lz = self.sig.leading_zeros();
            Fin { sign: self.sign(), e: -16382 - lz as i32, m: self.sig << lz }
        } else {
            Fin { sign: self.sign(), e: e - 16383, m: self.sig }
        }
    }
    /// An integer, exactly (FILD, FBLD: SDM Vol. 2A "FILD").
    pub fn from_i64(v: i64) -> F80 {
        if v == 0 {
            return F80::ZERO;
        }
        let mag = v.unsigned_abs();
        let lz = mag.leading_zeros();
        F80 { se: ((v < 0) as u16) << 15 | (16383 + 63 - lz) as u16, sig: mag << lz }
    }
}

impl core::ops::Neg for F80 {
    type Output = F80;
    /// The sign flipped, whatever the class (FCHS).
    fn neg(self) -> F80 {
        F80 { se: self.se ^ 0x8000, ..self }
    }
}

/// Shift right, ORing whatever falls off into bit 0 (the sticky bit).
#[inline]
fn shr_sticky(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n >= 128 {
        (x != 0) as u128
    } else {
        (x >> n) | ((x & ((1u128 << n) - 1)) != 0) as u128
    }
}

/// Keep the top `prec` bits of `sig` (bit 127 is the top), rounded by `rc`: the kept bits
/// (possibly carried into bit `prec`), whether bits were lost, whether it rounded up.
#[inline]
fn round_bits(sig: u128, prec: u32, rc: Rc, sign: bool) -> (u128, bool, bool) {
    let drop = 128 - prec;
    let m = sig >> drop;
    let rest = sig & ((1u128 << drop) - 1);
    let half = 1u128 << (drop - 1);
    let inexact = rest != 0;
    let inc = match rc {
        Rc::Nearest => rest > half || (rest == half && m & 1 == 1),
        Rc::Zero => false,
        Rc::Up => inexact && !sign,
        Rc::Down => inexact && sign,
    };
    (m + inc as u128, inexact, inc)
}

/// Round `sig * 2^(e - 127)` (bit 127 of `sig` set) to `fmt` with `env.prec` bits at most,
/// recording the conditions in `fl` (SDM Vol. 1 §4.8.4 rounding; §4.9.1.4–6 overflow,
/// underflow, precision). `reg`: the destination is a register, so an unmasked overflow
/// or underflow delivers the result with its exponent biased by ∓24576 (§8.5.4, §8.5.5);
/// for a memory destination the caller stores nothing then.
pub(crate) fn round_packed(
    sign: bool,
    mut e: i32,
    mut sig: u128,
    fmt: Fmt,
    env: Env,
    reg: bool,
    fl: &mut Flags,
) -> Packed {
    let prec = fmt.prec.min(env.prec);
    if e < fmt.emin {
        // Tininess is judged after rounding with an unbounded exponent (§4.9.1.5).
        let tiny = e < fmt.emin - 1 || (round_bits(sig, prec, env.rc, sign).0 >> prec) == 0;
        if tiny {
            if !env.um && !reg {
                // Unmasked, memory destination: nothing is stored (§8.5.5), so the flag
                // is all there is to report.
                fl.exc |= UE;
                return Packed { sign, bexp: 0, mant: 0 };
            }
            if !env.um {
                fl.exc |= UE;
                e += BIAS_ADJUST;
            }
            if e < fmt.emin {
                if !env.um {
                    // Unmasked: reported whether exact or not (§4.9.1.5).
                    fl.exc |= UE;
                }
                // Denormalize, then round at the same bit position as a normal number
                // would be (the precision's last bit, at exponent emin).
                sig = shr_sticky(sig, (fmt.emin - e) as u32);
                let (m, inexact, up) = round_bits(sig, prec, env.rc, sign);
                if inexact {
                    fl.exc |= PE | if env.um { UE } else { 0 };
                    fl.up = up;
                }
                let bexp = (m >> (prec - 1) != 0) as i32;
                return Packed { sign, bexp, mant: m as u64 };
            }
        }
    }
    let (mut m, inexact, up) = round_bits(sig, prec, env.rc, sign);
    if m >> prec != 0 {
        m >>= 1;
        e += 1;
    }
    if inexact {
        fl.exc |= PE;
        fl.up = up;
    }
    if e > fmt.emax {
        if !env.om && !reg {
            // Unmasked, memory destination: nothing is stored (§8.5.4); only OE.
            fl.exc = (fl.exc & !PE) | OE;
            fl.up = false;
            return Packed { sign, bexp: 0, mant: 0 };
        }
        fl.exc |= OE;
        if !env.om {
            e -= BIAS_ADJUST;
        }
        if e > fmt.emax {
            // Masked response (§4.9.1.4, Table 4-10): infinity or the largest finite
            // number by the rounding direction; always inexact.
            fl.exc |= PE;
            let to_inf = match env.rc {
                Rc::Nearest => true,
                Rc::Zero => false,
                Rc::Up => !sign,
                Rc::Down => sign,
            };
            fl.up = to_inf;
            return if to_inf {
                Packed { sign, bexp: fmt.emax + fmt.bias + 1, mant: 1 << (prec - 1) }
            } else {
                Packed { sign, bexp: fmt.emax + fmt.bias, mant: u64::MAX >> (64 - prec) }
            };
        }
    }
    Packed { sign, bexp: e + fmt.bias, mant: m as u64 }
}

/// [`round_packed`] to the register format.
pub(crate) fn round(sign: bool, e: i32, sig: u128, fmt: Fmt, env: Env, reg: bool, fl: &mut Flags) -> F80 {
    let p = round_packed(sign, e, sig, fmt, env, reg, fl);
    let prec = fmt.prec.min(env.prec);
    F80 { se: (p.sign as u16) << 15 | p.bexp as u16, sig: p.mant << (64 - prec) }
}

/// Normalize a non-zero `s` whose bit 127 would weigh `2^e`, OR in a sticky bit, round.
fn finish(sign: bool, e: i32, s: u128, sticky: bool, env: Env, fl: &mut Flags) -> F80 {
    let lz = s.leading_zeros();
    let s = (s << lz) | sticky as u128;
    round(sign, e - lz as i32, s, EXT, env, true, fl)
}

/// Two-operand NaN handling (SDM Vol. 1 §4.8.3.5, Table 4-7, x87 column): an SNaN is
/// invalid and made quiet; of two NaNs a QNaN wins over an SNaN, else the larger
/// significand.
fn propagate(a: F80, b: F80, fl: &mut Flags) -> F80 {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::SNaN || cb == Class::SNaN {
        fl.exc |= IE;
    }
    match (a.is_nan(), b.is_nan()) {
        (true, false) => a.quiet(),
        (false, true) => b.quiet(),
        _ => {
            if ca != cb {
                if ca == Class::QNaN {
                    a
                } else {
                    b
                }
            } else if (b.sig << 1) > (a.sig << 1) {
                b.quiet()
            } else {
                a.quiet()
            }
        }
    }
}

/// Operand checks of a two-operand operation: unsupported encodings and NaNs decide the
/// result here (`Err`); denormal operands raise DE (SDM Vol. 1 §8.5.1, §8.5.2).
fn pre2(a: F80, b: F80, fl: &mut Flags) -> Result<(Class, Class), F80> {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        fl.exc |= IE;
        return Err(F80::INDEFINITE);
    }
    if a.is_nan() || b.is_nan() {
        return Err(propagate(a, b, fl));
    }
    if ca == Class::Denormal || cb == Class::Denormal {
        fl.exc |= DE;
    }
    Ok((ca, cb))
}

/// Operand checks of a one-operand operation (as [`pre2`]).
pub(crate) fn pre1(a: F80, fl: &mut Flags) -> Result<Class, F80> {
    match a.class() {
        Class::Unsupported => {
            fl.exc |= IE;
            Err(F80::INDEFINITE)
        }
        Class::SNaN => {
            fl.exc |= IE;
            Err(a.quiet())
        }
        Class::QNaN => Err(a),
        Class::Denormal => {
            fl.exc |= DE;
            Ok(Class::Denormal)
        }
        c => Ok(c),
    }
}

/// The invalid-operation result.
fn invalid(fl: &mut Flags) -> F80 {
    fl.exc |= IE;
    F80::INDEFINITE
}

/// `a + b`, or `a - b` with `sub` (SDM Vol. 2A "FADD", "FSUB": special cases in their
/// tables; an exact zero sum is +0 except when rounding down, §4.8.3.? "Signed Zeros").
pub fn add(a: F80, b: F80, sub: bool, env: Env, fl: &mut Flags) -> F80 {
    let (ca, cb) = match pre2(a, b, fl) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let sb = b.sign() ^ sub;
    match (ca, cb) {
        (Class::Inf, Class::Inf) => {
            if a.sign() == sb {
                a
            } else {
                invalid(fl)
            }
        }
        (Class::Inf, _) => a,
        (_, Class::Inf) => F80::inf(sb),
        (Class::Zero, Class::Zero) => F80::zero(if a.sign() == sb { sb } else { env.rc == Rc::Down }),
        (Class::Zero, _) => {
            let f = b.fin();
            finish(sb, f.e, (f.m as u128) << 64, false, env, fl)
        }
        (_, Class::Zero) => {
            let f = a.fin();
            finish(f.sign, f.e, (f.m as u128) << 64, false, env, fl)
        }
        _ => {
            let x = a.fin();
            let mut y = b.fin();
            y.sign = sb;
            add_fin(x, y, env, fl)
        }
    }
}

fn add_fin(x: Fin, y: Fin, env: Env, fl: &mut Flags) -> F80 {
    let (x, y) = if (x.e, x.m) >= (y.e, y.m) { (x, y) } else { (y, x) };
    let d = (x.e - y.e) as u32;
    // Bit 126 holds the larger operand's integer bit: a carry fits in bit 127.
    let xs = (x.m as u128) << 63;
    let ys = shr_sticky((y.m as u128) << 63, d);
    if x.sign == y.sign {
        finish(x.sign, x.e + 1, xs + ys, false, env, fl)
    } else {
        let s = xs - ys;
        if s == 0 {
            return F80::zero(env.rc == Rc::Down);
        }
        finish(x.sign, x.e + 1, s, false, env, fl)
    }
}

/// `a * b` (SDM Vol. 2A "FMUL": 0 × ∞ is invalid).
pub fn mul(a: F80, b: F80, env: Env, fl: &mut Flags) -> F80 {
    let (ca, cb) = match pre2(a, b, fl) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let sign = a.sign() ^ b.sign();
    match (ca, cb) {
        (Class::Inf, Class::Zero) | (Class::Zero, Class::Inf) => invalid(fl),
        (Class::Inf, _) | (_, Class::Inf) => F80::inf(sign),
        (Class::Zero, _) | (_, Class::Zero) => F80::zero(sign),
        _ => {
            let (x, y) = (a.fin(), b.fin());
            let p = (x.m as u128) * (y.m as u128);
            finish(sign, x.e + y.e + 1, p, false, env, fl)
        }
    }
}

/// `a / b` (SDM Vol. 2A "FDIV": 0/0 and ∞/∞ invalid, finite/0 divide-by-zero).
pub fn div(a: F80, b: F80, env: Env, fl: &mut Flags) -> F80 {
    let (ca, cb) = match pre2(a, b, fl) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let sign = a.sign() ^ b.sign();
    match (ca, cb) {
        (Class::Inf, Class::Inf) | (Class::Zero, Class::Zero) => invalid(fl),
        (Class::Inf, _) => F80::inf(sign),
        (_, Class::Inf) => F80::zero(sign),
        (Class::Zero, _) => F80::zero(sign),
        (_, Class::Zero) => {
            fl.exc |= ZE;
            F80::inf(sign)
        }
        _ => {
            let (x, y) = (a.fin(), b.fin());
            let (q, e, sticky) = div_sig(x.m, y.m);
            finish(sign, x.e - y.e + e, q, sticky, env, fl)
        }
    }
}

/// Quotient of two normalized significands: 128 quotient bits (top bit weighing `2^e`
/// relative to the exponent difference) and whether the remainder was non-zero.
fn div_sig(xm: u64, ym: u64) -> (u128, i32, bool) {
    let d = ym as u128;
    let n = (xm as u128) << 64;
    let (q1, r1) = (n / d, n % d);
    let n2 = r1 << 64;
    let (q2, r2) = (n2 / d, n2 % d);
    if q1 >> 64 != 0 {
        ((q1 << 63) | (q2 >> 1), 0, q2 & 1 != 0 || r2 != 0)
    } else {
        ((q1 << 64) | q2, -1, r2 != 0)
    }
}

/// Square root (SDM Vol. 2A "FSQRT": negative non-zero operands are invalid, √−0 = −0).
pub fn sqrt(a: F80, env: Env, fl: &mut Flags) -> F80 {
    let c = match pre1(a, fl) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match c {
        Class::Zero => a,
        Class::Inf if !a.sign() => a,
        _ if a.sign() => invalid(fl),
        _ => {
            let f = a.fin();
            // value = m * 2^k, k = e - 63; make k even.
            let k = f.e - 63;
            let (rad, k) = if k & 1 != 0 { ((f.m as u128) << 1, k - 1) } else { (f.m as u128, k) };
            // root = floor(sqrt(rad * 2^128)), bit by bit over the 196-bit radicand.
            let (mut root, mut rem) = (0u128, 0u128);
            for i in (0..98u32).rev() {
                let bits = if 2 * i >= 128 { (rad >> (2 * i - 128)) & 3 } else { 0 };
                rem = (rem << 2) | bits;
                let trial = (root << 2) | 1;
                root <<= 1;
                if rem >= trial {
                    rem -= trial;
                    root |= 1;
                }
            }
            // value = root * 2^(k/2 - 64): bit 127 of root weighs 2^(k/2 + 63).
            finish(false, k / 2 + 63, root, rem != 0, env, fl)
        }
    }
}

/// Round a finite value to an integer by `rc` (for magnitudes below 2^63): the magnitude,
/// whether it was inexact, whether it was rounded up in magnitude.
pub(crate) fn round_int(f: Fin, rc: Rc) -> (u64, bool, bool) {
    use core::cmp::Ordering;
    debug_assert!(f.e <= 62);
    let v = (f.m as u128) << 64; // value = v * 2^(e - 127)
    let sh = (127 - f.e) as u32;
    let (int, half_cmp, inexact) = if sh >= 129 {
        (0u128, Ordering::Less, true)
    } else if sh == 128 {
        (0, v.cmp(&(1u128 << 127)), true)
    } else {
        let rest = v & ((1u128 << sh) - 1);
        (v >> sh, rest.cmp(&(1u128 << (sh - 1))), rest != 0)
    };
    let inc = inexact
        && match rc {
            Rc::Nearest => half_cmp == Ordering::Greater || (half_cmp == Ordering::Equal && int & 1 == 1),
            Rc::Zero => false,
            Rc::Up => !f.sign,
            Rc::Down => f.sign,
        };
    ((int + inc as u128) as u64, inexact, inc)
}

/// FRNDINT (SDM Vol. 2A "FRNDINT"): round to an integral value by RC; precision control
/// does not apply.
pub fn round_to_int(a: F80, env: Env, fl: &mut Flags) -> F80 {
    match pre1(a, fl) {
        Err(r) => r,
        Ok(Class::Zero | Class::Inf) => a,
        Ok(_) => {
            let f = a.fin();
            if f.e >= 63 {
                return a;
            }
            let (mag, inexact, up) = round_int(f, env.rc);
            if inexact {
                fl.exc |= PE;
                fl.up = up;
            }
            if mag == 0 {
                F80::zero(f.sign)
            } else {
                let lz = mag.leading_zeros();
                F80 { se: (f.sign as u16) << 15 | (16383 + 63 - lz) as u16, sig: mag << lz }
            }
        }
    }
}

/// FIST/FISTP (SDM Vol. 2A "FIST/FISTP"): round by RC to a `bits`-wide signed integer.
/// Out of range, NaN, infinity and unsupported are invalid; the masked response is the
/// integer indefinite (the most negative value).
pub fn to_int(a: F80, bits: u32, rc: Rc, fl: &mut Flags) -> i64 {
    let indefinite = i64::MIN >> (64 - bits);
    match a.class() {
        Class::Zero => 0,
        Class::Normal | Class::Denormal => {
            let f = a.fin();
            let (mag, inexact, up) = if f.e <= 62 {
                round_int(f, rc)
            } else if f.e == 63 && f.sign && f.m == 1 << 63 {
                (1 << 63, false, false)
            } else {
                fl.exc |= IE;
                return indefinite;
            };
            let limit = (1u64 << (bits - 1)) - (!f.sign) as u64;
            if mag > limit {
                fl.exc |= IE;
                return indefinite;
            }
            if inexact {
                fl.exc |= PE;
                fl.up = up;
            }
            if f.sign {
                (mag as i64).wrapping_neg()
            } else {
                mag as i64
            }
        }
        _ => {
            fl.exc |= IE;
            indefinite
        }
    }
}

/// Packed BCD indefinite (SDM Vol. 1 §4.7, Table 4-4): the 80-bit pattern FFFF C000…0.
pub const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff];

/// FBLD (SDM Vol. 2A "FBLD"): 18 packed digits and a sign byte; exact. Invalid digits give
/// an undefined result: here each nibble simply counts with its value.
pub fn from_bcd(b: &[u8; 10]) -> F80 {
    let mut v: i64 = 0;
    for k in (0..9).rev() {
        v = v * 100 + (b[k] >> 4) as i64 * 10 + (b[k] & 15) as i64;
    }
    let sign = b[9] & 0x80 != 0;
    if v == 0 {
        F80::zero(sign)
    } else {
        F80::from_i64(v).with_sign(sign)
    }
}

/// FBSTP (SDM Vol. 2A "FBSTP"): round by RC, store 18 digits; |value| ≥ 10^18, NaN,
/// infinity and unsupported are invalid (masked response: the BCD indefinite).
pub fn to_bcd(a: F80, rc: Rc, fl: &mut Flags) -> [u8; 10] {
    let (sign, mag) = match a.class() {
        Class::Zero => (a.sign(), 0),
        Class::Normal | Class::Denormal => {
            let f = a.fin();
            if f.e > 62 {
                fl.exc |= IE;
                return BCD_INDEFINITE;
            }
            let (mag, inexact, up) = round_int(f, rc);
            if mag >= 1_000_000_000_000_000_000 {
                fl.exc |= IE;
                return BCD_INDEFINITE;
            }
            if inexact {
                fl.exc |= PE;
                fl.up = up;
            }
            (f.sign, mag)
        }
        _ => {
            fl.exc |= IE;
            return BCD_INDEFINITE;
        }
    };
    let mut out = [0u8; 10];
    let mut m = mag;
    for byte in out.iter_mut().take(9) {
        let lo = (m % 10) as u8;
        m /= 10;
        let hi = (m % 10) as u8;
        m /= 10;
        *byte = hi << 4 | lo;
    }
    out[9] = (sign as u8) << 7;
    out
}

/// A single or double value to the register format (FLD m32fp/m64fp, the arithmetic
/// instructions' memory operands): exact; a denormal raises DE (SDM Vol. 2A "FLD"). With
/// `quiet` (FLD) an SNaN is invalid and made quiet; without (an arithmetic operand) it
/// stays an SNaN for the operation's own NaN rules.
fn from_ieee(bits: u64, fmt: Fmt, quiet: bool, fl: &mut Flags) -> F80 {
    let fbits = fmt.prec - 1;
    let ebits = if fmt.prec == 24 { 8 } else { 11 };
    let sign = bits >> (fbits + ebits) & 1 != 0;
    let exp = (bits >> fbits) as i32 & ((1 << ebits) - 1);
    let frac = bits & ((1u64 << fbits) - 1);
    let s = (sign as u16) << 15;
    if exp == (1 << ebits) - 1 {
        if frac == 0 {
            return F80::inf(sign);
        }
        let nan = F80 { se: s | 0x7fff, sig: 1 << 63 | frac << (63 - fbits) };
        if quiet && nan.class() == Class::SNaN {
            fl.exc |= IE;
            return nan.quiet();
        }
        return nan;
    }
    if exp == 0 {
        if frac == 0 {
            return F80::zero(sign);
        }
        fl.exc |= DE;
        let lz = frac.leading_zeros();
        // value = frac * 2^(emin - fbits)
        let e = fmt.emin - fbits as i32 + 63 - lz as i32;
        return F80 { se: s | (e + 16383) as u16, sig: frac << lz };
    }
    F80 { se: s | (exp - fmt.bias + 16383) as u16, sig: 1 << 63 | frac << (63 - fbits) }
}

pub fn from_f32(bits: u32, quiet: bool, fl: &mut Flags) -> F80 {
    from_ieee(bits as u64, SGL, quiet, fl)
}
pub fn from_f64(bits: u64, quiet: bool, fl: &mut Flags) -> F80 {
    from_ieee(bits, DBL, quiet, fl)
}

/// The register value rounded to single or double (FST m32fp/m64fp, SDM Vol. 2A "FST"):
/// RC applies, PC does not; NaNs keep their top fraction bits; an unsupported encoding
/// or SNaN is invalid. The caller stores nothing on an unmasked IE, OE or UE.
fn to_ieee(a: F80, fmt: Fmt, env: Env, fl: &mut Flags) -> u64 {
    let fbits = fmt.prec - 1;
    let ebits = if fmt.prec == 24 { 8 } else { 11 };
    let emask = (1u64 << ebits) - 1;
    let sign = (a.sign() as u64) << (fbits + ebits);
    let nan = |sig: u64| sign | emask << fbits | (sig << 1 >> 1) >> (63 - fbits);
    match a.class() {
        Class::Zero => sign,
        Class::Inf => sign | emask << fbits,
        Class::QNaN => nan(a.sig),
        Class::SNaN => {
            fl.exc |= IE;
            nan(a.quiet().sig)
        }
        Class::Unsupported => {
            fl.exc |= IE;
            nan(F80::INDEFINITE.sig) | 1 << (fbits + ebits)
        }
        Class::Normal | Class::Denormal => {
            let f = a.fin();
            let env = Env { prec: 64, ..env };
            let p = round_packed(f.sign, f.e, (f.m as u128) << 64, fmt, env, false, fl);
            sign | (p.bexp as u64) << fbits | (p.mant & ((1u64 << fbits) - 1))
        }
    }
}

pub fn to_f32(a: F80, env: Env, fl: &mut Flags) -> u32 {
    to_ieee(a, SGL, env, fl) as u32
}
pub fn to_f64(a: F80, env: Env, fl: &mut Flags) -> u64 {
    to_ieee(a, DBL, env, fl)
}

/// The result of a comparison (SDM Vol. 2A "FCOM" and "FCOMI" tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Greater,
    Less,
    Equal,
    Unordered,
}

/// Compare `a` with `b`. NaN and unsupported operands are unordered; they are invalid
/// unless `quiet` (FUCOM*, FUCOMI*), where only SNaN and unsupported are (SDM Vol. 2A
/// "FUCOM", "FCOM"). Denormal operands raise DE.
pub fn compare(a: F80, b: F80, quiet: bool, fl: &mut Flags) -> Cmp {
    let (ca, cb) = (a.class(), b.class());
    let bad = |c| matches!(c, Class::SNaN | Class::Unsupported) || (!quiet && c == Class::QNaN);
    if matches!(ca, Class::QNaN | Class::SNaN | Class::Unsupported)
        || matches!(cb, Class::QNaN | Class::SNaN | Class::Unsupported)
    {
        if bad(ca) || bad(cb) {
            fl.exc |= IE;
        }
        return Cmp::Unordered;
    }
    if ca == Class::Denormal || cb == Class::Denormal {
        fl.exc |= DE;
    }
    // A key ordered like the magnitude: zero lowest, infinity highest.
    let key = |x: F80, c: Class| -> (i32, u64) {
        match c {
            Class::Zero => (i32::MIN, 0),
            Class::Inf => (i32::MAX, 0),
            _ => {
                let f = x.fin();
                (f.e, f.m)
            }
        }
    };
    let (ka, kb) = (key(a, ca), key(b, cb));
    let sa = a.sign() && ca != Class::Zero;
    let sb = b.sign() && cb != Class::Zero;
    let ord = match (sa, sb) {
        (false, true) => core::cmp::Ordering::Greater,
        (true, false) => core::cmp::Ordering::Less,
        (false, false) => ka.cmp(&kb),
        (true, true) => kb.cmp(&ka),
    };
    match ord {
        core::cmp::Ordering::Greater => Cmp::Greater,
        core::cmp::Ordering::Less => Cmp::Less,
        core::cmp::Ordering::Equal => Cmp::Equal,
    }
}

/// The partial remainder of FPREM (`nearest` = false: quotient truncated) and FPREM1
/// (`nearest`: quotient rounded to nearest-even), SDM Vol. 2A "FPREM", "FPREM1": the
/// result, the quotient's low three bits, and whether the reduction is complete (C2 = 0).
/// When the exponents differ by 64 or more only a partial reduction is done, by a quotient
/// of N + 1 bits where the SDM lets N be 32–63: we use 63.
pub fn rem(a: F80, b: F80, nearest: bool, env: Env, fl: &mut Flags) -> (F80, u8, bool) {
    let (ca, cb) = match pre2(a, b, fl) {
        Ok(c) => c,
        Err(r) => return (r, 0, true),
    };
    match (ca, cb) {
        (Class::Inf, _) | (_, Class::Zero) => return (invalid(fl), 0, true),
        (Class::Zero, _) | (_, Class::Inf) => return (a, 0, true),
        _ => {}
    }
    let (x, y) = (a.fin(), b.fin());
    let d = x.e - y.e;
    // The remainder is exact: only an unmasked underflow's biased result depends on env.
    let env = Env { rc: Rc::Nearest, prec: 64, ..env };
    if d < 0 {
        // |a| < |b|: quotient 0, except that FPREM1 rounds a quotient above 1/2 up.
        if nearest && d == -1 && x.m > y.m {
            // |b| - |a| with a's sign flipped; exact.
            let r = add(b.abs(), a.abs(), true, env, fl);
            return (r.with_sign(!x.sign), 1, true);
        }
        return (a, 0, true);
    }
    let partial = d >= 64;
    let steps = if partial { 63 } else { d as u32 };
    let ym = y.m as u128;
    let (mut r, mut q) = (x.m as u128, 0u64);
    for step in 0..=steps {
        q <<= 1;
        if r >= ym {
            r -= ym;
            q |= 1;
        }
        if step < steps {
            r <<= 1;
        }
    }
    let mut sign = x.sign;
    if nearest && !partial && (2 * r > ym || (2 * r == ym && q & 1 == 1)) {
        r = ym - r;
        q = q.wrapping_add(1);
        sign = !sign;
    }
    let q3 = (q & 7) as u8;
    if r == 0 {
        return (F80::zero(x.sign), q3, !partial);
    }
    // value = r * 2^(y.e - 63 + (d - steps)): bit 127 of r weighs 2^(y.e + d - steps + 64).
    let e = y.e + (d - steps as i32) + 64;
    (finish(sign, e, r, false, env, fl), q3, !partial)
}

/// FSCALE (SDM Vol. 2A "FSCALE"): `a * 2^trunc(b)`, with its table of special cases.
pub fn scale(a: F80, b: F80, env: Env, fl: &mut Flags) -> F80 {
    let (ca, cb) = match pre2(a, b, fl) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match (ca, cb) {
        (Class::Zero, Class::Inf) => {
            if b.sign() {
                a
            } else {
                invalid(fl)
            }
        }
        (Class::Inf, Class::Inf) => {
            if b.sign() {
                invalid(fl)
            } else {
                a
            }
        }
        (Class::Zero | Class::Inf, _) => a,
        (_, Class::Inf) => {
            if b.sign() {
                F80::zero(a.sign())
            } else {
                F80::inf(a.sign())
            }
        }
        (_, Class::Zero) => {
            let f = a.fin();
            finish(f.sign, f.e, (f.m as u128) << 64, false, env, fl)
        }
        _ => {
            let fb = b.fin();
            // trunc(b), clamped far beyond any exponent that could matter.
            let n: i32 = if fb.e < 0 {
                0
            } else if fb.e > 20 {
                1 << 20
            } else {
                (fb.m >> (63 - fb.e)) as i32
            };
            let n = if fb.sign { -n } else { n };
            let f = a.fin();
            finish(f.sign, f.e + n, (f.m as u128) << 64, false, env, fl)
        }
    }
}

/// FXTRACT (SDM Vol. 2A "FXTRACT"): (exponent as a value, significand with exponent 0).
/// ±0 raises divide-by-zero: exponent −∞, significand ±0.
pub fn xtract(a: F80, fl: &mut Flags) -> (F80, F80) {
    match pre1(a, fl) {
        Err(r) => (r, r),
        Ok(Class::Zero) => {
            fl.exc |= ZE;
            (F80::inf(true), a)
        }
        Ok(Class::Inf) => (F80::inf(false), a),
        Ok(_) => {
            let f = a.fin();
            (F80::from_i64(f.e as i64), F80 { se: (f.sign as u16) << 15 | 0x3fff, sig: f.m })
        }
    }
}
