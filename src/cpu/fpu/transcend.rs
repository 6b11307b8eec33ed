//! The x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, FYL2X,
//! FYL2XP1, F2XM1 (SDM Vol. 2A, each instruction's page and its table of special cases).
//!
//! Accuracy, documented short of hardware's: the special cases, operand ranges, signs and
//! exception conditions are the SDM's, but the function values come from the `libm` crate
//! (Rust's port of musl's libm: `no_std`, MIT) in double precision, so a result carries
//! about 53 correct bits where a P6 delivers about 64 (its error bound is one unit in the
//! last place of the extended format, SDM Vol. 1 §8.3.10). Two things keep that from
//! getting worse than double precision: arguments of FSIN/FCOS/FSINCOS/FPTAN are reduced
//! modulo π/2 here, exactly against a 127-bit π/2, before they are narrowed to a double
//! (an argument near 2^62 would otherwise lose its low bits, hence everything); and the
//! logarithms split off the binary exponent in extended precision, so FYL2X works over
//! the whole extended range. Inexact results set PE; C1 (round-up) is then 0, since the
//! direction of the rounding is not known.

use super::float80::{self, pre1, Class, Env, Flags, F80, IE, PE, ZE};

/// π/2 × 2^126, to 127 bits.
const PIO2_127: u128 = 0x6487_ed51_10b4_611a_6263_3145_c06e_0e68;
/// ln 2 and log2 e as FLDLN2 and FLDL2E load them (round to nearest).
const LN2: F80 = F80 { se: 0x3ffe, sig: 0xb172_17f7_d1cf_79ac };
const L2E: F80 = F80 { se: 0x3fff, sig: 0xb8aa_3b29_5c17_f0bc };

/// Full precision, round to nearest, exceptions masked: for intermediate steps.
const NEAR: Env = Env { rc: float80::Rc::Nearest, prec: 64, om: true, um: true };

/// A finite value within the double range, rounded to a double.
fn to_f64(a: F80) -> f64 {
    let mut fl = Flags::default();
    f64::from_bits(float80::to_f64(a, NEAR, &mut fl))
}

/// A double result, exactly.
fn from_f64(v: f64) -> F80 {
    let mut fl = Flags::default();
    float80::from_f64(v.to_bits(), true, &mut fl)
}

/// `|x| = k·π/2 + r` with |r| ≤ π/4: (k mod 4, r as a double), for 1 ≤ |x| < 2^63.
fn reduce(a: F80) -> (u8, f64) {
    let f = a.fin();
    // Long division of m·2^e by π/2, both as 127-bit fixed point (bit 126 = 2^0).
    let steps = f.e as u32;
    let (mut r, mut q) = ((f.m as u128) << 63, 0u64);
    for step in 0..=steps {
        q = q.wrapping_shl(1);
        if r >= PIO2_127 {
            r -= PIO2_127;
            q |= 1;
        }
        if step < steps {
            r <<= 1;
        }
    }
    let scale = f64::from_bits((1023 - 126) << 52); // 2^-126
    if r > PIO2_127 / 2 {
        (q.wrapping_add(1) as u8 & 3, -((PIO2_127 - r) as f64) * scale)
    } else {
        (q as u8 & 3, r as f64 * scale)
    }
}

/// Sine and cosine of a finite value with |x| < 2^63 (both signs).
fn sin_cos(a: F80) -> (f64, f64) {
    let f = a.fin();
    let (k, r) = if f.e >= 0 { reduce(a.abs()) } else { (0, to_f64(a.abs())) };
    let (s, c) = (libm::sin(r), libm::cos(r));
    let (s, c) = match k {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    };
    (if f.sign { -s } else { s }, c)
}

/// The argument check shared by FSIN, FCOS, FSINCOS, FPTAN. `Err(None)`: out of range
/// (|x| ≥ 2^63: C2 = 1, operand unchanged); `Err(Some(r))`: the result is decided (NaN,
/// infinity); `Ok(c)`: compute.
fn trig_arg(a: F80, fl: &mut Flags) -> Result<Class, Option<F80>> {
    match pre1(a, fl) {
        Err(r) => Err(Some(r)),
        Ok(Class::Inf) => {
            fl.exc |= IE;
            Err(Some(F80::INDEFINITE))
        }
        Ok(c) if c != Class::Zero && a.fin().e >= 63 => Err(None),
        Ok(c) => Ok(c),
    }
}

/// Values so small that sin x and tan x round to x itself (|x| < 2^-40: the next term is
/// below 2^-80 relative): x, inexact.
fn tiny(a: F80) -> bool {
    a.class() != Class::Zero && a.fin().e < -40
}

/// FSIN. `None`: out of range.
pub fn fsin(a: F80, fl: &mut Flags) -> Option<F80> {
    match trig_arg(a, fl) {
        Err(r) => r,
        Ok(Class::Zero) => Some(a),
        Ok(_) => {
            fl.exc |= PE;
            if tiny(a) {
                return Some(a);
            }
            Some(from_f64(sin_cos(a).0))
        }
    }
}

/// FCOS. `None`: out of range.
pub fn fcos(a: F80, fl: &mut Flags) -> Option<F80> {
    match trig_arg(a, fl) {
        Err(r) => r,
        Ok(Class::Zero) => Some(F80::ONE),
        Ok(_) => {
            fl.exc |= PE;
            Some(from_f64(sin_cos(a).1))
        }
    }
}

/// FSINCOS: (sine, cosine). `None`: out of range.
pub fn fsincos(a: F80, fl: &mut Flags) -> Option<(F80, F80)> {
    match trig_arg(a, fl) {
        Err(r) => r.map(|r| (r, r)),
        Ok(Class::Zero) => Some((a, F80::ONE)),
        Ok(_) => {
            fl.exc |= PE;
            let (s, c) = sin_cos(a);
            Some((if tiny(a) { a } else { from_f64(s) }, from_f64(c)))
        }
    }
}

/// FPTAN's tangent (the caller pushes 1.0). `None`: out of range.
pub fn fptan(a: F80, fl: &mut Flags) -> Option<F80> {
    match trig_arg(a, fl) {
        Err(r) => r,
        Ok(Class::Zero) => Some(a),
        Ok(_) => {
            fl.exc |= PE;
            if tiny(a) {
                return Some(a);
            }
            let (s, c) = sin_cos(a);
            Some(from_f64(s / c))
        }
    }
}

/// FPATAN: arctan(y / x) in the quadrant of (x, y), y = ST(1), x = ST(0). The special
/// cases of the SDM's table are those of IEEE atan2 (signed zeros give ±0 or ±π, two
/// infinities ±π/4 or ±3π/4), which `libm::atan2` implements.
pub fn fpatan(y: F80, x: F80, fl: &mut Flags) -> F80 {
    let mut pf = Flags::default();
    let (cy, cx) = match (pre1(y, &mut pf), pre1(x, &mut pf)) {
        (Ok(cy), Ok(cx)) => (cy, cx),
        _ => {
            // A NaN or unsupported operand: the two-operand rules decide.
            return float80::add(y, x, false, NEAR, fl);
        }
    };
    fl.exc |= pf.exc;
    let special = |c: Class, v: F80| match c {
        Class::Zero => Some(if v.sign() { -0.0 } else { 0.0 }),
        Class::Inf => Some(if v.sign() { f64::NEG_INFINITY } else { f64::INFINITY }),
        _ => None,
    };
    let (fy, fx) = match (special(cy, y), special(cx, x)) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, if x.sign() { -1.0 } else { 1.0 }),
        (None, Some(b)) => (if y.sign() { -1.0 } else { 1.0 }, b),
        (None, None) => {
            let (ey, ex) = (y.fin().e, x.fin().e);
            if !x.sign() && ey < ex - 60 {
                // |y/x| < 2^-59: arctan(t) = t to well within the extended precision.
                fl.exc |= PE;
                return float80::div(y, x, NEAR, fl);
            }
            // Scale both by the same power of two into the double range.
            let k = ey.max(ex) as i64;
            let sy = float80::scale(y, F80::from_i64(-k), NEAR, &mut Flags::default());
            let sx = float80::scale(x, F80::from_i64(-k), NEAR, &mut Flags::default());
            (to_f64(sy), to_f64(sx))
        }
    };
    let r = libm::atan2(fy, fx);
    if r != 0.0 {
        fl.exc |= PE;
    }
    from_f64(r)
}

/// log2 of a finite positive value, in extended precision where it counts: the binary
/// exponent is split off and added exactly.
fn log2_pos(a: F80, fl: &mut Flags) -> F80 {
    let f = a.fin();
    if f.e == 0 || f.e == -1 {
        // Near 1: log1p of the exact difference keeps the relative accuracy.
        let t = float80::add(a, F80::ONE, true, NEAR, &mut Flags::default());
        if t.class() == Class::Zero {
            return F80::ZERO;
        }
        fl.exc |= PE;
        return from_f64(libm::log1p(to_f64(t)) * core::f64::consts::LOG2_E);
    }
    let frac = (f.m - (1 << 63)) as f64 * f64::from_bits((1023 - 63) << 52);
    let e = F80::from_i64(f.e as i64);
    if frac == 0.0 {
        return e;
    }
    fl.exc |= PE;
    let l = from_f64(libm::log1p(frac) * core::f64::consts::LOG2_E);
    float80::add(e, l, false, NEAR, fl)
}

/// FYL2X: ST(1) × log2 ST(0), x = ST(0), y = ST(1).
pub fn fyl2x(x: F80, y: F80, env: Env, fl: &mut Flags) -> F80 {
    let mut pf = Flags::default();
    let (cx, cy) = match (pre1(x, &mut pf), pre1(y, &mut pf)) {
        (Ok(cx), Ok(cy)) => (cx, cy),
        _ => return float80::add(y, x, false, NEAR, fl),
    };
    fl.exc |= pf.exc;
    if x.sign() && cx != Class::Zero {
        fl.exc |= IE;
        return F80::INDEFINITE;
    }
    let l = match cx {
        Class::Zero => {
            if matches!(cy, Class::Normal | Class::Denormal) {
                fl.exc |= ZE;
            }
            F80::inf(true)
        }
        Class::Inf => x,
        _ => log2_pos(x, fl),
    };
    float80::mul(y, l, env.ext(), fl)
}

/// FYL2XP1: ST(1) × log2(ST(0) + 1), x = ST(0), y = ST(1). The SDM defines it for
/// |x| < 1 − √2/2; outside that range it is computed the same way.
pub fn fyl2xp1(x: F80, y: F80, env: Env, fl: &mut Flags) -> F80 {
    let mut pf = Flags::default();
    let (cx, _) = match (pre1(x, &mut pf), pre1(y, &mut pf)) {
        (Ok(cx), Ok(cy)) => (cx, cy),
        _ => return float80::add(y, x, false, NEAR, fl),
    };
    fl.exc |= pf.exc;
    let l = match cx {
        Class::Zero => x,
        Class::Inf if !x.sign() => x,
        Class::Inf => {
            fl.exc |= IE;
            return F80::INDEFINITE;
        }
        _ => {
            let f = x.fin();
            if f.e < -1000 {
                // log2(1 + x) = x·log2 e to far beyond the extended precision.
                float80::mul(x, L2E, NEAR, fl)
            } else {
                let v = to_f64(x);
                if v < -1.0 || (v == -1.0 && f.e > 0) {
                    fl.exc |= IE;
                    return F80::INDEFINITE;
                }
                if v == -1.0 {
                    fl.exc |= ZE;
                    F80::inf(true)
                } else {
                    fl.exc |= PE;
                    from_f64(libm::log1p(v) * core::f64::consts::LOG2_E)
                }
            }
        }
    };
    float80::mul(y, l, env.ext(), fl)
}

/// F2XM1: 2^x − 1. Defined for −1 ≤ x ≤ +1; outside it computed the same way, with
/// 2^−∞ − 1 = −1 and 2^+∞ − 1 = +∞.
pub fn f2xm1(x: F80, env: Env, fl: &mut Flags) -> F80 {
    match pre1(x, fl) {
        Err(r) => r,
        Ok(Class::Zero) => x,
        Ok(Class::Inf) => {
            if x.sign() {
                -F80::ONE
            } else {
                x
            }
        }
        Ok(_) => {
            let f = x.fin();
            if f.e < -60 {
                // 2^x − 1 = x·ln 2 (the next term is below 2^-61 relative).
                return float80::mul(x, LN2, env.ext(), fl);
            }
            fl.exc |= PE;
            let v = if f.e > 20 {
                if x.sign() {
                    -2e6
                } else {
                    2e6
                }
            } else {
                to_f64(x)
            };
            from_f64(libm::expm1(v * core::f64::consts::LN_2))
        }
    }
}
