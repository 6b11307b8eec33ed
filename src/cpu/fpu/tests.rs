//! Tests of the x87: the soft float against known values and against the host's IEEE
//! arithmetic (double and single precision through precision control), rounding modes,
//! integer and BCD conversions, and small guest programs on [`FlatBus`] for stack faults,
//! FXAM, comparisons (C0/C2/C3 and EFLAGS), FNSAVE/FRSTOR and FNSTENV layouts, and the
//! delivery of #NM, #UD and #MF (or FERR#/IRQ13). The programs were assembled with nasm;
//! each carries its listing.

use super::float80::{self, Class, Cmp, Env, Flags, Rc, DE, F80, IE, OE, PE, UE, ZE};
use super::sw;
use crate::bus::FlatBus;
use crate::cpu::{cr0, Cpu, StopReason, EAX, EBX, ECX, EDX};

fn env(rc: Rc, prec: u32) -> Env {
    Env { rc, prec, om: true, um: true }
}
const NEAR: Env = Env { rc: Rc::Nearest, prec: 64, om: true, um: true };

fn f(v: f64) -> F80 {
    float80::from_f64(v.to_bits(), true, &mut Flags::default())
}
fn host(x: F80) -> f64 {
    f64::from_bits(float80::to_f64(x, NEAR, &mut Flags::default()))
}
fn x80(se: u16, sig: u64) -> F80 {
    F80 { se, sig }
}

// ----- arithmetic -------------------------------------------------------------------------

#[test]
fn one_third_in_every_rounding_mode() {
    let third = |rc, prec, neg: bool| {
        let mut fl = Flags::default();
        let r = float80::div(f(if neg { -1.0 } else { 1.0 }), f(3.0), env(rc, prec), &mut fl);
        (r, fl)
    };
    let (r, fl) = third(Rc::Nearest, 64, false);
    assert_eq!(r, x80(0x3ffd, 0xaaaa_aaaa_aaaa_aaab));
    assert_eq!(fl, Flags { exc: PE, up: true });
    let (r, fl) = third(Rc::Zero, 64, false);
    assert_eq!(r, x80(0x3ffd, 0xaaaa_aaaa_aaaa_aaaa));
    assert_eq!(fl, Flags { exc: PE, up: false });
    assert_eq!(third(Rc::Down, 64, false).0.sig, 0xaaaa_aaaa_aaaa_aaaa);
    assert_eq!(third(Rc::Up, 64, false).0.sig, 0xaaaa_aaaa_aaaa_aaab);
    assert_eq!(third(Rc::Down, 64, true).0, x80(0xbffd, 0xaaaa_aaaa_aaaa_aaab));
    assert_eq!(third(Rc::Up, 64, true).0, x80(0xbffd, 0xaaaa_aaaa_aaaa_aaaa));
    // Precision control: 24 and 53 bits, same exponent range.
    assert_eq!(third(Rc::Nearest, 24, false).0, x80(0x3ffd, 0xaaaa_ab00_0000_0000));
    assert_eq!(third(Rc::Nearest, 53, false).0, x80(0x3ffd, 0xaaaa_aaaa_aaaa_a800));
    assert_eq!(third(Rc::Up, 53, false).0.sig, 0xaaaa_aaaa_aaaa_b000);
}

#[test]
fn ties_round_to_even() {
    let one = F80::ONE;
    let tiny = x80(0x3fff - 64, 1 << 63); // 2^-64: half an ulp of 1.0
    let mut fl = Flags::default();
    assert_eq!(float80::add(one, tiny, false, NEAR, &mut fl), one);
    assert_eq!(fl.exc, PE);
    let one_ulp = x80(0x3fff, (1 << 63) | 1);
    assert_eq!(float80::add(one_ulp, tiny, false, NEAR, &mut fl), x80(0x3fff, (1 << 63) | 2));
    assert_eq!(float80::add(one, tiny, false, env(Rc::Up, 64), &mut fl), one_ulp);
    // With 24-bit precision the tie is at 2^-24.
    let t24 = x80(0x3fff - 24, 1 << 63);
    assert_eq!(float80::add(one, t24, false, env(Rc::Nearest, 24), &mut fl), one);
    let odd = x80(0x3fff, (1 << 63) | (1 << 40));
    assert_eq!(float80::add(odd, t24, false, env(Rc::Nearest, 24), &mut fl), x80(0x3fff, (1 << 63) | (2 << 40)));
}

#[test]
fn signed_zero_sums() {
    let mut fl = Flags::default();
    let x = f(1.5);
    assert_eq!(float80::add(x, x, true, NEAR, &mut fl), F80::zero(false));
    assert_eq!(float80::add(x, x, true, env(Rc::Down, 64), &mut fl), F80::zero(true));
    assert_eq!(float80::add(F80::zero(true), F80::zero(true), false, NEAR, &mut fl), F80::zero(true));
    assert_eq!(float80::add(F80::zero(true), F80::zero(false), false, NEAR, &mut fl), F80::zero(false));
    assert_eq!(fl.exc, 0);
}

#[test]
fn invalid_and_zero_divide() {
    let mut fl = Flags::default();
    assert_eq!(float80::add(F80::inf(false), F80::inf(false), true, NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::mul(F80::inf(true), F80::ZERO, NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::div(f(-2.0), F80::ZERO, NEAR, &mut fl), F80::inf(true));
    assert_eq!(fl.exc, ZE);
    let mut fl = Flags::default();
    assert_eq!(float80::div(F80::ZERO, F80::ZERO, NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::sqrt(f(-4.0), NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::sqrt(F80::zero(true), NEAR, &mut fl), F80::zero(true));
    assert_eq!(fl.exc, 0);
    // Unsupported encodings (an unnormal: exponent set, J clear) are invalid operands.
    let mut fl = Flags::default();
    assert_eq!(float80::add(x80(0x3fff, 0x4000_0000_0000_0000), F80::ONE, false, NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
}

#[test]
fn nan_propagation() {
    let q = x80(0x7fff, 0xc000_0000_0000_1234);
    let s = x80(0x7fff, 0x8000_0000_0000_5678);
    let mut fl = Flags::default();
    assert_eq!(float80::add(F80::ONE, s, false, NEAR, &mut fl), s.quiet());
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::mul(s, q, NEAR, &mut fl), q, "a QNaN wins over an SNaN");
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    let q2 = x80(0xffff, 0xc000_0000_0000_9999);
    assert_eq!(float80::div(q, q2, NEAR, &mut fl), q2, "the larger significand wins");
    assert_eq!(fl.exc, 0);
}

#[test]
fn square_roots() {
    let mut fl = Flags::default();
    assert_eq!(float80::sqrt(f(2.0), NEAR, &mut fl), x80(0x3fff, 0xb504_f333_f9de_6484));
    assert_eq!(fl, Flags { exc: PE, up: false });
    let mut fl = Flags::default();
    assert_eq!(float80::sqrt(f(2.0), env(Rc::Up, 64), &mut fl), x80(0x3fff, 0xb504_f333_f9de_6485));
    assert!(fl.up);
    let mut fl = Flags::default();
    assert_eq!(float80::sqrt(f(0.25), NEAR, &mut fl), f(0.5));
    assert_eq!(float80::sqrt(f(9.0 * 2f64.powi(200)), NEAR, &mut fl), f(3.0 * 2f64.powi(100)));
    assert_eq!(fl.exc, 0);
    // A denormal operand: DE, and the root of 2^-16400 is exact.
    let mut fl = Flags::default();
    let d = x80(0, 1 << 45); // 2^-16382-18 = 2^-16400
    assert_eq!(float80::sqrt(d, NEAR, &mut fl), x80(0x3fff - 8200, 1 << 63));
    assert_eq!(fl.exc, DE);
}

/// A small xorshift generator for the randomized comparisons.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A double with a random significand and an exponent in ±`range`.
    fn f64(&mut self, range: i64) -> f64 {
        let r = self.next();
        let e = (r >> 52) as i64 % (2 * range + 1) - range;
        let bits = (r & ((1 << 52) - 1)) | (((e + 1023) as u64) << 52) | (r >> 63 << 63);
        f64::from_bits(bits)
    }
}

/// With precision control at 53 or 24 bits and results in the normal range, the x87
/// rounds once to the host's format: results must equal the host's IEEE operations.
#[test]
fn matches_host_ieee_at_reduced_precision() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let e53 = env(Rc::Nearest, 53);
    let e24 = env(Rc::Nearest, 24);
    for _ in 0..20_000 {
        let (a, b) = (rng.f64(300), rng.f64(300));
        let mut fl = Flags::default();
        let (x, y) = (f(a), f(b));
        let check = |got: F80, want: f64, what: &str| {
            if want.is_finite() && (want == 0.0 || want.abs() >= f64::MIN_POSITIVE) {
                assert_eq!(host(got).to_bits(), want.to_bits(), "{what} {a:e} {b:e}");
            }
        };
        check(float80::add(x, y, false, e53, &mut fl), a + b, "add");
        check(float80::add(x, y, true, e53, &mut fl), a - b, "sub");
        check(float80::mul(x, y, e53, &mut fl), a * b, "mul");
        check(float80::div(x, y, e53, &mut fl), a / b, "div");
        check(float80::sqrt(x.abs(), e53, &mut fl), a.abs().sqrt(), "sqrt");
        let (a, b) = (a as f32, b as f32);
        if !(a.is_normal() && b.is_normal()) {
            continue;
        }
        let (x, y) = (f(a as f64), f(b as f64));
        let check = |got: F80, want: f32, what: &str| {
            if want.is_normal() {
                let g = float80::to_f32(got, NEAR, &mut Flags::default());
                assert_eq!(g, want.to_bits(), "{what} {a:e} {b:e}");
            }
        };
        check(float80::add(x, y, false, e24, &mut fl), a + b, "add32");
        check(float80::mul(x, y, e24, &mut fl), a * b, "mul32");
        check(float80::div(x, y, e24, &mut fl), a / b, "div32");
        check(float80::sqrt(x.abs(), e24, &mut fl), a.abs().sqrt(), "sqrt32");
    }
}

/// Full 64-bit precision: a product of two 32-bit integers is exact, a quotient times
/// the divisor comes back within the rounding error.
#[test]
fn extended_precision_is_exact_where_it_should_be() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5_000 {
        let (a, b) = ((rng.next() >> 33) as i64, (rng.next() >> 33 | 1) as i64);
        let mut fl = Flags::default();
        let p = float80::mul(F80::from_i64(a), F80::from_i64(b), NEAR, &mut fl);
        assert_eq!(fl.exc & PE, 0);
        assert_eq!(float80::to_int(p, 64, Rc::Nearest, &mut fl), a * b);
        let q = float80::div(F80::from_i64(a * b), F80::from_i64(b), NEAR, &mut fl);
        assert_eq!(q, F80::from_i64(a));
    }
}

#[test]
fn overflow_and_underflow() {
    let max = x80(0x7ffe, u64::MAX);
    let two = f(2.0);
    let mut fl = Flags::default();
    assert_eq!(float80::mul(max, two, NEAR, &mut fl), F80::inf(false));
    assert_eq!(fl, Flags { exc: OE | PE, up: true });
    let mut fl = Flags::default();
    assert_eq!(float80::mul(max, two, env(Rc::Zero, 64), &mut fl), max);
    assert_eq!(fl.exc, OE | PE);
    // Unmasked overflow with a register destination: the exponent is biased by 24576.
    let mut fl = Flags::default();
    let unmasked = Env { om: false, ..NEAR };
    assert_eq!(float80::mul(max, two, unmasked, &mut fl), x80(0x7fff - 24576, u64::MAX));
    assert_eq!(fl.exc, OE);
    // Masked underflow: exact denormals raise nothing, inexact ones UE and PE.
    let min = x80(1, 1 << 63);
    let mut fl = Flags::default();
    assert_eq!(float80::div(min, two, NEAR, &mut fl), x80(0, 1 << 62));
    assert_eq!(fl.exc, 0);
    let mut fl = Flags::default();
    let r = float80::div(min, f(3.0), NEAR, &mut fl);
    assert_eq!(r, x80(0, 0x2aaa_aaaa_aaaa_aaab));
    assert_eq!(fl.exc, UE | PE);
    // Unmasked underflow: reported even when exact, result biased up by 24576.
    let mut fl = Flags::default();
    let unmasked = Env { um: false, ..NEAR };
    assert_eq!(float80::div(min, two, unmasked, &mut fl), x80(24576, 1 << 63));
    assert_eq!(fl.exc, UE);
    // Storing to double: below its range the value becomes a double denormal.
    let mut fl = Flags::default();
    let tiny = x80(0x3fff - 1074, 1 << 63); // 2^-1074, the smallest double denormal
    assert_eq!(float80::to_f64(tiny, NEAR, &mut fl), 1);
    assert_eq!(fl.exc, 0);
    let mut fl = Flags::default();
    assert_eq!(float80::to_f64(x80(0x3fff - 1076, 1 << 63), NEAR, &mut fl), 0);
    assert_eq!(fl.exc, UE | PE);
    let mut fl = Flags::default();
    assert_eq!(float80::to_f32(f(1e39), NEAR, &mut fl), f32::INFINITY.to_bits());
    assert_eq!(fl.exc, OE | PE);
}

#[test]
fn integer_conversions_by_rounding_mode() {
    let cases: [(f64, [i64; 4]); 6] = [
        // value, [nearest, down, up, zero]
        (2.5, [2, 2, 3, 2]),
        (3.5, [4, 3, 4, 3]),
        (-2.5, [-2, -3, -2, -2]),
        (-0.25, [0, -1, 0, 0]),
        (0.75, [1, 0, 1, 0]),
        (-7.0, [-7, -7, -7, -7]),
    ];
    for (v, want) in cases {
        for (k, rc) in [Rc::Nearest, Rc::Down, Rc::Up, Rc::Zero].into_iter().enumerate() {
            let mut fl = Flags::default();
            assert_eq!(float80::to_int(f(v), 32, rc, &mut fl), want[k], "{v} {rc:?}");
            assert_eq!(fl.exc, if v.fract() != 0.0 { PE } else { 0 });
            let r = float80::round_to_int(f(v), env(rc, 24), &mut Flags::default());
            assert_eq!(host(r), want[k] as f64, "frndint {v} {rc:?}");
        }
    }
    let mut fl = Flags::default();
    assert_eq!(float80::to_int(f(-32768.0), 16, Rc::Nearest, &mut fl), -32768);
    assert_eq!(float80::to_int(f(32767.4), 16, Rc::Nearest, &mut fl), 32767);
    assert_eq!(fl.exc, PE);
    let mut fl = Flags::default();
    assert_eq!(float80::to_int(f(32767.5), 16, Rc::Nearest, &mut fl), -32768, "out of range: indefinite");
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::to_int(f(-(2f64.powi(63))), 64, Rc::Nearest, &mut fl), i64::MIN);
    assert_eq!(fl.exc, 0);
    assert_eq!(float80::to_int(f(2f64.powi(63)), 64, Rc::Nearest, &mut fl), i64::MIN);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::to_int(F80::INDEFINITE, 32, Rc::Nearest, &mut fl), i32::MIN as i64);
    assert_eq!(fl.exc, IE);
    for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 53 | 1] {
        assert_eq!(float80::to_int(F80::from_i64(v), 64, Rc::Nearest, &mut Flags::default()), v);
    }
}

#[test]
fn packed_bcd() {
    let v = -123_456_789_012_345_678i64;
    let mut fl = Flags::default();
    let b = float80::to_bcd(F80::from_i64(v), Rc::Nearest, &mut fl);
    assert_eq!(b, [0x78, 0x56, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x80]);
    assert_eq!(float80::from_bcd(&b), F80::from_i64(v));
    assert_eq!(float80::to_bcd(f(2.5), Rc::Nearest, &mut fl)[0], 0x02);
    assert_eq!(fl.exc, PE);
    let mut fl = Flags::default();
    assert_eq!(float80::to_bcd(f(1e18), Rc::Nearest, &mut fl), float80::BCD_INDEFINITE);
    assert_eq!(fl.exc, IE);
    assert_eq!(float80::from_bcd(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]), F80::zero(true));
}

#[test]
fn memory_format_conversions() {
    let mut fl = Flags::default();
    // A single-precision SNaN: invalid on FLD, quieted, payload kept.
    let r = float80::from_f32(0x7f80_0001, true, &mut fl);
    assert_eq!(r, x80(0x7fff, 0xc000_0100_0000_0000));
    assert_eq!(fl.exc, IE);
    // A double denormal: DE, normalized exactly.
    let mut fl = Flags::default();
    let r = float80::from_f64(1, true, &mut fl);
    assert_eq!(r, x80(0x3fff - 1074, 1 << 63));
    assert_eq!(fl.exc, DE);
    // The indefinite stored to single and double.
    let mut fl = Flags::default();
    assert_eq!(float80::to_f32(F80::INDEFINITE, NEAR, &mut fl), 0xffc0_0000);
    assert_eq!(float80::to_f64(F80::INDEFINITE, NEAR, &mut fl), 0xfff8_0000_0000_0000);
    assert_eq!(fl.exc, 0);
    // Rounding to single by RC.
    let v = f(1.0 + 2f64.powi(-30));
    assert_eq!(float80::to_f32(v, env(Rc::Up, 64), &mut fl), 0x3f80_0001);
    assert_eq!(float80::to_f32(v, NEAR, &mut fl), 0x3f80_0000);
}

#[test]
fn comparisons() {
    let mut fl = Flags::default();
    assert_eq!(float80::compare(f(1.0), f(2.0), false, &mut fl), Cmp::Less);
    assert_eq!(float80::compare(f(-1.0), f(-2.0), false, &mut fl), Cmp::Greater);
    assert_eq!(float80::compare(F80::zero(true), F80::ZERO, false, &mut fl), Cmp::Equal);
    assert_eq!(float80::compare(F80::inf(true), f(-1e300), false, &mut fl), Cmp::Less);
    assert_eq!(fl.exc, 0);
    let q = x80(0x7fff, 0xc000_0000_0000_0000);
    assert_eq!(float80::compare(q, F80::ONE, true, &mut fl), Cmp::Unordered);
    assert_eq!(fl.exc, 0, "FUCOM: a QNaN is no invalid operand");
    assert_eq!(float80::compare(q, F80::ONE, false, &mut fl), Cmp::Unordered);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    assert_eq!(float80::compare(x80(0, 1), F80::ZERO, false, &mut fl), Cmp::Greater);
    assert_eq!(fl.exc, DE);
}

#[test]
fn partial_remainders() {
    let mut fl = Flags::default();
    let (r, q, done) = float80::rem(f(7.0), f(3.0), false, NEAR, &mut fl);
    assert_eq!((host(r), q, done), (1.0, 2, true));
    let (r, q, _) = float80::rem(f(8.0), f(3.0), false, NEAR, &mut fl);
    assert_eq!((host(r), q), (2.0, 2));
    let (r, q, _) = float80::rem(f(8.0), f(3.0), true, NEAR, &mut fl);
    assert_eq!((host(r), q), (-1.0, 3));
    let (r, q, _) = float80::rem(f(-7.5), f(2.0), false, NEAR, &mut fl);
    assert_eq!((host(r), q), (-1.5, 3));
    let (r, q, _) = float80::rem(f(0.75), f(1.0), true, NEAR, &mut fl);
    assert_eq!((host(r), q), (-0.25, 1));
    assert_eq!(fl.exc, 0);
    // A huge exponent difference: partial (C2 = 1), and repeating converges to fmod.
    let (mut x, y) = (f(1e300), f(3.3));
    let mut rounds = 0;
    loop {
        let (r, _, done) = float80::rem(x, y, false, NEAR, &mut fl);
        x = r;
        rounds += 1;
        if done {
            break;
        }
    }
    assert!(rounds > 10, "{rounds}");
    assert_eq!(host(x), 1e300f64 % 3.3);
    let (r, _, _) = float80::rem(F80::inf(false), y, false, NEAR, &mut fl);
    assert_eq!(r, F80::INDEFINITE);
}

#[test]
fn scale_and_extract() {
    let mut fl = Flags::default();
    assert_eq!(host(float80::scale(f(1.5), f(10.7), NEAR, &mut fl)), 1536.0);
    assert_eq!(host(float80::scale(f(1.5), f(-2.9), NEAR, &mut fl)), 0.375);
    assert_eq!(float80::scale(f(1.5), F80::inf(true), NEAR, &mut fl), F80::ZERO);
    assert_eq!(fl.exc, 0);
    assert_eq!(float80::scale(F80::ZERO, F80::inf(false), NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
    let mut fl = Flags::default();
    let (e, s) = float80::xtract(f(-48.0), &mut fl);
    assert_eq!((host(e), host(s)), (5.0, -1.5));
    let (e, s) = float80::xtract(F80::zero(true), &mut fl);
    assert_eq!((e, s), (F80::inf(true), F80::zero(true)));
    assert_eq!(fl.exc, ZE);
}

#[test]
fn transcendentals_are_close() {
    use super::transcend;
    let close = |got: F80, want: f64| {
        let g = host(got);
        assert!((g - want).abs() <= want.abs() * 4e-16 + 1e-300, "{g} vs {want}");
    };
    let mut fl = Flags::default();
    for x in [0.5, 1.0, 2.0, 3.0, 10.0, -100.0, 1e6, 1e15, 4e18] {
        close(transcend::fsin(f(x), &mut fl).unwrap(), x.sin());
        close(transcend::fcos(f(x), &mut fl).unwrap(), x.cos());
        let (s, c) = transcend::fsincos(f(x), &mut fl).unwrap();
        close(s, x.sin());
        close(c, x.cos());
        if x.cos().abs() > 1e-3 {
            close(transcend::fptan(f(x), &mut fl).unwrap(), x.tan());
        }
    }
    assert_eq!(fl.exc, PE);
    // Out of range: |x| >= 2^63.
    assert_eq!(transcend::fsin(f(1e19), &mut fl), None);
    close(transcend::fpatan(f(1.0), f(-1.0), &mut fl), 3.0 * core::f64::consts::FRAC_PI_4);
    close(transcend::fyl2x(f(10.0), f(2.0), NEAR, &mut fl), 2.0 * 10f64.log2());
    close(transcend::fyl2x(f(0.999), f(1.0), NEAR, &mut fl), 0.999f64.log2());
    assert_eq!(host(transcend::fyl2x(f(1024.0), f(3.0), NEAR, &mut fl)), 30.0);
    close(transcend::fyl2xp1(f(1e-10), f(1.0), NEAR, &mut fl), 1e-10f64.ln_1p() / core::f64::consts::LN_2);
    close(transcend::f2xm1(f(0.5), NEAR, &mut fl), 2f64.sqrt() - 1.0);
    close(transcend::f2xm1(f(-1.0), NEAR, &mut fl), -0.5);
    let mut fl = Flags::default();
    assert_eq!(transcend::fyl2x(F80::ZERO, f(2.0), NEAR, &mut fl), F80::inf(true));
    assert_eq!(fl.exc, ZE);
    let mut fl = Flags::default();
    assert_eq!(transcend::fyl2x(f(-1.0), f(2.0), NEAR, &mut fl), F80::INDEFINITE);
    assert_eq!(fl.exc, IE);
}

#[test]
fn classes_and_tags() {
    assert_eq!(F80::ZERO.class(), Class::Zero);
    assert_eq!(x80(0, 1 << 63).class(), Class::Denormal, "pseudo-denormal");
    assert_eq!(x80(0x7fff, 1 << 63).class(), Class::Inf);
    assert_eq!(x80(0x7fff, 0).class(), Class::Unsupported, "pseudo-infinity");
    assert_eq!(x80(0x7fff, 0xc000_0000_0000_0000).class(), Class::QNaN);
    assert_eq!(x80(0x7fff, 0x8000_0000_0000_0001).class(), Class::SNaN);
    assert_eq!(x80(0x4000, 0x7fff_ffff_ffff_ffff).class(), Class::Unsupported, "unnormal");
    assert_eq!((F80::ONE.tag(), F80::ZERO.tag(), F80::INDEFINITE.tag()), (0, 1, 2));
}

// ----- guest programs ---------------------------------------------------------------------

/// Run `code` at 0x1000 until HLT, flat 32-bit protected mode or real mode. In real mode
/// the IVT sends every vector v to a handler that stores v at 0x600 and halts.
fn run(code: &[u8], bits32: bool, setup: impl FnOnce(&mut Cpu, &mut FlatBus)) -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(code);
    bus.mem[0x1000 + code.len()] = 0xf4;
    for v in 0..32u32 {
        let h = 0x2000 + 8 * v;
        bus.mem[h as usize..h as usize + 6].copy_from_slice(&[0xc6, 0x06, 0x00, 0x06, v as u8, 0xf4]);
        bus.mem[4 * v as usize..4 * v as usize + 4].copy_from_slice(&h.to_le_bytes());
    }
    bus.mem[0x600] = 0xff;
    let mut cpu = Cpu::new();
    if bits32 {
        cpu.start_flat32(0x1000, 0x8000);
    } else {
        cpu.start_real(0, 0x1000);
        cpu.regs[crate::cpu::ESP] = 0x8000;
    }
    setup(&mut cpu, &mut bus);
    // FERR# rising (CR0.NE = 0) ends a slice; nothing here routes it, so run on.
    let r = loop {
        match cpu.run(&mut bus, 10_000) {
            StopReason::Yield => continue,
            r => break r,
        }
    };
    assert_eq!(r, StopReason::Halted, "eip={:#x}", cpu.eip);
    (cpu, bus)
}

fn rd16(bus: &FlatBus, a: usize) -> u16 {
    u16::from_le_bytes([bus.mem[a], bus.mem[a + 1]])
}
fn rd32(bus: &FlatBus, a: usize) -> u32 {
    u32::from_le_bytes(bus.mem[a..a + 4].try_into().unwrap())
}
fn rd64(bus: &FlatBus, a: usize) -> u64 {
    u64::from_le_bytes(bus.mem[a..a + 8].try_into().unwrap())
}
fn put(bus: &mut FlatBus, a: usize, b: &[u8]) {
    bus.mem[a..a + b.len()].copy_from_slice(b);
}

#[test]
fn arithmetic_program() {
    let (c, bus) = run(ARITH32, true, |_, bus| {
        put(bus, 0x3000, &3f32.to_le_bytes());
        put(bus, 0x3004, &7i32.to_le_bytes());
        put(bus, 0x3008, &2i16.to_le_bytes());
        put(bus, 0x300a, &0x077fu16.to_le_bytes()); // RC = down
        put(bus, 0x3040, &2f64.to_le_bytes());
    });
    assert_eq!(f64::from_bits(rd64(&bus, 0x3010)), 6.0);
    assert_eq!(rd32(&bus, 0x3020), 4, "FIST 3.5, nearest-even");
    assert_eq!(rd32(&bus, 0x3024), 3, "FISTP 3.5, down");
    let mut pi = [0u8; 10];
    pi.copy_from_slice(&bus.mem[0x3030..0x303a]);
    assert_eq!(F80::from_bytes(&pi), x80(0x4000, 0xc90f_daa2_2168_c234), "FLDPI rounded down");
    assert_eq!(rd64(&bus, 0x3048), 0x3ff6_a09e_667f_3bcc, "sqrt 2 rounded down twice");
    assert_eq!(c.fpu.top(), 0);
    assert_eq!(c.fpu.tw, 0xffff);
    assert_eq!(c.fpu.sw & 0x3f, PE as u16);
}

#[test]
fn stack_overflow_is_masked_invalid_with_c1() {
    let (c, _) = run(OVERFLOW32, true, |_, _| {});
    let s = c.regs[EAX] as u16;
    assert_eq!(s & (IE as u16 | sw::SF | sw::C1 | sw::ES), IE as u16 | sw::SF | sw::C1);
    assert_eq!(c.fpu.top(), 7);
    assert_eq!(c.fpu.st(0), F80::INDEFINITE);
    assert_eq!(c.fpu.st(1), F80::ONE);
}

#[test]
fn stack_underflow_is_masked_invalid_without_c1() {
    let (c, bus) = run(UNDERFLOW32, true, |_, _| {});
    assert_eq!(c.regs[EAX] as u16, IE as u16 | sw::SF);
    assert_eq!(rd64(&bus, 0x3000), 0xfff8_0000_0000_0000, "the indefinite went to ST(0)");
    assert_eq!(c.fpu.tw, 0xffff);
}

#[test]
fn fxam_classes() {
    let vals = [
        -F80::ONE,                          // normal: C3 C2 C0 = 010, C1 = 1
        F80::ZERO,                          // zero 100
        F80::inf(false),                    // infinity 011
        F80::INDEFINITE,                    // NaN 001, C1 = 1
        x80(0, 0x1234),                     // denormal 110
        x80(0x4000, 0x1234),                // unsupported 000
        x80(0x7fff, 1 << 62),               // pseudo-NaN: unsupported
        x80(0x8000, 0x8000_0000_0000_0001), // pseudo-denormal, negative: denormal
    ];
    let (_, bus) = run(FXAM32, true, |_, bus| {
        for (k, v) in vals.iter().enumerate() {
            put(bus, 0x3000 + 10 * k, &v.to_bytes());
        }
    });
    let cc = |k: usize| {
        let s = rd16(&bus, 0x3100 + 2 * k);
        let b = |m: u16| (s & m != 0) as u8;
        (b(sw::C3), b(sw::C2), b(sw::C1), b(sw::C0))
    };
    assert_eq!(cc(0), (1, 0, cc(0).2, 1), "empty");
    let want = [
        (0, 1, 1, 0),
        (1, 0, 0, 0),
        (0, 1, 0, 1),
        (0, 0, 1, 1),
        (1, 1, 0, 0),
        (0, 0, 0, 0),
        (0, 0, 0, 0),
        (1, 1, 1, 0),
    ];
    for (k, w) in want.iter().enumerate() {
        assert_eq!(cc(k + 1), *w, "value {k}");
    }
}

#[test]
fn comparisons_set_condition_codes_and_eflags() {
    use crate::cpu::flags::{AF, CF, OF, PF, SF, ZF};
    let nan = f64::NAN;
    // (ST(1), ST(0), third operand for FCOM m64): expected ZF PF CF and C3 C2 C0.
    // FCOM compares what FUCOMIP left in ST(0): the value loaded as ST(1).
    type Case = (f64, f64, f64, u32, (u8, u8, u8));
    let cases: [Case; 4] = [
        (1.0, 2.0, 0.5, 0, (0, 0, 0)),
        (2.0, 1.0, 4.0, CF, (0, 0, 1)),
        (3.0, 3.0, 3.0, ZF, (1, 0, 0)),
        (nan, 1.0, nan, ZF | PF | CF, (1, 1, 1)),
    ];
    for (st1, st0, m, fl, cc) in cases {
        let (c, _) = run(FCOMI32, true, |cpu, bus| {
            put(bus, 0x3000, &st1.to_le_bytes());
            put(bus, 0x3008, &st0.to_le_bytes());
            put(bus, 0x3010, &m.to_le_bytes());
            cpu.flags.set_arith(OF | SF | AF);
        });
        let arith = CF | PF | AF | ZF | SF | OF;
        assert_eq!(c.regs[EBX] & arith, fl, "FCOMI {st0} {st1}");
        assert_eq!(c.regs[ECX] & arith, fl, "FUCOMIP {st0} {st1}");
        let s = c.regs[EAX] as u16;
        let b = |m: u16| (s & m != 0) as u8;
        assert_eq!((b(sw::C3), b(sw::C2), b(sw::C0)), cc, "FCOM {st1} {m}");
        // A QNaN: FCOMI and FCOM are invalid (masked), FUCOMIP is not.
        assert_eq!(s & IE as u16 != 0, st1.is_nan());
        assert_eq!(c.fpu.top(), 0);
    }
}

fn fpu_program_state(code: &[u8], bits32: bool, setup: impl Fn(&mut FlatBus)) -> (Cpu, FlatBus) {
    run(code, bits32, |_, bus| setup(bus))
}

#[test]
fn fnsave_frstor_round_trip_protected_32() {
    let setup = |bus: &mut FlatBus| {
        put(bus, 0x3000, &(-1.25e-3f64).to_le_bytes());
        put(bus, 0x3200, &0x0b7fu16.to_le_bytes()); // RC = up
    };
    let (pre, _) = fpu_program_state(SAVE32_PRE, true, setup);
    let (c, bus) = fpu_program_state(SAVE32, true, setup);
    assert_eq!(c.fpu, pre.fpu, "FRSTOR and FLDENV restore what FNSAVE and FNSTENV stored");
    // FNSAVE initialized the FPU.
    assert_eq!((rd16(&bus, 0x3300), rd16(&bus, 0x3302)), (0, 0x037f));
    // The image (Figure 8-9), reserved halves all ones.
    let img = 0x3100;
    assert_eq!(rd32(&bus, img), 0xffff_0b7f);
    assert_eq!(rd32(&bus, img + 4), 0xffff_0000 | pre.fpu.sw as u32);
    assert_eq!(pre.fpu.top(), 5);
    assert_eq!(rd32(&bus, img + 8), 0xffff_03ff, "R5–R7 valid, the rest empty");
    assert_eq!(rd32(&bus, img + 12), 0x1000 + 2 + 6 + 6 + 2 + 2 + 2, "FIP: the FXCH");
    assert_eq!(rd32(&bus, img + 16), 0x01ca_0008, "opcode D9 CA, CS 08");
    assert_eq!(rd32(&bus, img + 20), 0x3000, "FDP of the last memory operand");
    assert_eq!(rd32(&bus, img + 24), 0xffff_0010);
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&bus.mem[img + 28 + 10 * i..img + 38 + 10 * i]);
        assert_eq!(F80::from_bytes(&r), pre.fpu.st(i), "ST({i})");
    }
    assert_eq!(bus.mem[0x3400..0x341c], bus.mem[img..img + 28], "FNSTENV after FRSTOR");
}

#[test]
fn fnsave_frstor_round_trip_real_16_and_32() {
    let setup = |bus: &mut FlatBus| put(bus, 0x3000, &7.5f64.to_le_bytes());
    let (pre, _) = fpu_program_state(SAVE16_PRE, false, setup);
    let (c, bus) = fpu_program_state(SAVE16, false, setup);
    assert_eq!(c.fpu.regs, pre.fpu.regs);
    assert_eq!((c.fpu.cw, c.fpu.sw, c.fpu.tw, c.fpu.fop), (pre.fpu.cw, pre.fpu.sw, pre.fpu.tw, pre.fpu.fop));
    // FXCH at 0000:1000 + 2 + 4 + 2 + 2 + 2 (Figure 8-12: linear addresses).
    let fxch = 0x100c;
    let img = 0x3100;
    assert_eq!(rd16(&bus, img), 0x037f);
    assert_eq!(rd16(&bus, img + 6), fxch);
    assert_eq!(rd16(&bus, img + 8), 0x01ca);
    assert_eq!(rd16(&bus, img + 10), 0x3000);
    assert_eq!(rd16(&bus, img + 12), 0);
    assert_eq!(bus.mem[img + 14..img + 94], bus.mem[0x3200 + 28..0x3200 + 108], "registers");
    // The 32-bit real-mode layout (Figure 8-10).
    let img = 0x3200;
    assert_eq!(rd32(&bus, img + 12), 0xffff_0000 | fxch as u32);
    assert_eq!(rd32(&bus, img + 16), 0x01ca);
    assert_eq!(rd32(&bus, img + 20), 0xffff_3000);
    assert_eq!(rd32(&bus, img + 24), 0);
    // FNSTENV after the last FRSTOR, 16-bit: the same environment.
    assert_eq!(bus.mem[0x3400..0x340e], bus.mem[0x3100..0x310e]);
    // The pointers came back as linear addresses (selector 0): the same here.
    assert_eq!((c.fpu.fip, c.fpu.fdp), (fxch as u32, 0x3000));
}

#[test]
fn fnstenv_layouts_by_operand_size() {
    // ES: override on the load: FDS is ES's selector (0x10 in flat mode, 0x0020 real).
    let (c, bus) = run(ENV32, true, |_, bus| put(bus, 0x3000, &1f32.to_le_bytes()));
    assert_eq!(rd32(&bus, 0x3100 + 24), 0xffff_0010);
    assert_eq!(rd32(&bus, 0x3100 + 12), 0x1002);
    assert_eq!(rd32(&bus, 0x3100 + 16), 0x0105_0008, "opcode D9 05");
    // 16-bit protected mode (Figure 8-11): IP offset, CS, DP offset, DS; no opcode.
    let w: Vec<u16> = (0..7).map(|k| rd16(&bus, 0x3200 + 2 * k)).collect();
    assert_eq!(w, [0x037f, c.fpu.sw, c.fpu.tw, 0x1002, 0x0008, 0x3000, 0x0010]);
    let (_, bus) = run(ENV16, false, |cpu, bus| {
        put(bus, 0x3200, &1f32.to_le_bytes());
        cpu.segs[crate::cpu::ES as usize] = crate::cpu::Seg::real(0x20);
    });
    // ES = 0x20: the operand's linear address is 0x3200.
    assert_eq!(rd16(&bus, 0x3100 + 10), 0x3200);
    assert_eq!(rd16(&bus, 0x3100 + 8), 0x0106, "opcode D9 06");
    assert_eq!(rd32(&bus, 0x3200 + 20), 0xffff_3200);
}

#[test]
fn device_not_available() {
    // CR0.TS: an escape faults with #NM, the saved IP is the escape's.
    let (c, bus) = run(NM16, false, |cpu, _| cpu.cr0 |= cr0::TS);
    assert_eq!(bus.mem[0x600], 7);
    assert_eq!(rd16(&bus, 0x7ffa), 0x1001);
    assert_eq!(c.fpu.top(), 0);
    // CR0.EM alone: #NM too.
    let (_, bus) = run(NM16, false, |cpu, _| cpu.cr0 |= cr0::EM);
    assert_eq!(bus.mem[0x600], 7);
    // WAIT: #NM only with MP and TS (SDM Vol. 3A Table 2-2).
    for (bits, fault) in [(cr0::TS, false), (cr0::EM, false), (cr0::EM | cr0::MP, false), (cr0::MP | cr0::TS, true)] {
        let (_, bus) = run(WAIT16, false, |cpu, _| cpu.cr0 |= bits);
        assert_eq!(bus.mem[0x600] == 7, fault, "CR0 bits {bits:#x}");
    }
    // Without them the instruction runs.
    let (c, bus) = run(NM16, false, |cpu, _| {
        cpu.cr0 |= cr0::MP;
        cpu.fpu.init();
    });
    assert_eq!(bus.mem[0x600], 0xff);
    assert_eq!(c.fpu.st(0), F80::ONE);
}

#[test]
fn undefined_encodings_are_ud() {
    let (_, bus) = run(UD16, false, |_, _| {});
    assert_eq!(bus.mem[0x600], 6);
    let (c, bus) = run(FISTTP16, false, |_, _| {});
    assert_eq!(bus.mem[0x600], 6, "FISTTP is SSE3");
    assert_eq!(c.fpu.st(0), F80::ZERO);
    // …but under CR0.TS they are #NM first.
    let (_, bus) = run(UD16, false, |cpu, _| cpu.cr0 |= cr0::TS);
    assert_eq!(bus.mem[0x600], 7);
}

#[test]
fn unmasked_exception_is_mf_at_next_waiting_instruction() {
    let setup = |cpu: &mut Cpu, bus: &mut FlatBus, ne: bool| {
        put(bus, 0x3000, &0x037bu16.to_le_bytes()); // zero-divide unmasked
        if ne {
            cpu.cr0 |= cr0::NE;
        }
    };
    let (c, bus) = run(MF16, false, |cpu, bus| setup(cpu, bus, true));
    let s = rd16(&bus, 0x3002);
    assert_eq!(s & (ZE as u16 | sw::ES | sw::B), ZE as u16 | sw::ES | sw::B, "FNSTSW does not wait");
    assert_eq!(bus.mem[0x600], 16, "#MF");
    // The #MF is taken at the FNOP; FIP still names the FDIVP that caused it.
    let fnop = 0x1000 + 2 + 4 + 2 + 2 + 2 + 4;
    assert_eq!(rd16(&bus, 0x7ffa), fnop);
    assert_eq!(c.fpu.fip, fnop as u32 - 6);
    // The destination was left alone and nothing was popped.
    assert_eq!((c.fpu.st(0), c.fpu.st(1), c.fpu.top()), (F80::ZERO, F80::ONE, 6));
    assert!(!c.fpu_irq13_pending());
    // CR0.NE = 0: no #MF; FERR# is up for IRQ13 until the platform acknowledges it.
    let (mut c, bus) = run(MF16, false, |cpu, bus| setup(cpu, bus, false));
    assert_eq!(bus.mem[0x600], 0xff);
    assert!(c.fpu_irq13_pending());
    c.fpu_ack_irq13();
    assert!(!c.fpu_irq13_pending());
}

#[test]
fn cpuid_reports_the_fpu_and_cr0_et_is_fixed() {
    let (c, _) = run(CPUID32, true, |_, _| {});
    assert_eq!(c.regs[EDX] & 1, 1);
    assert_eq!(c.regs[EBX] & cr0::ET, cr0::ET);
    // Power-up x87 state (SDM Vol. 3A Table 9-1), and FNINIT's.
    let mut f = super::Fpu::new();
    assert_eq!((f.cw, f.sw, f.tw), (0x0040, 0, 0x5555));
    f.init();
    assert_eq!((f.cw, f.sw, f.tw, f.fip, f.fdp, f.fop), (0x037f, 0, 0xffff, 0, 0, 0));
}

#[test]
fn unmasked_overflow_to_memory_stores_nothing() {
    let big = x80(0x7ffe, 0xffff_ffff_ffff_ffff);
    let (c, bus) = run(STORE_OE32, true, |cpu, bus| {
        put(bus, 0x3000, &0x0377u16.to_le_bytes()); // overflow unmasked
        put(bus, 0x3010, &big.to_bytes());
        put(bus, 0x3100, &[0xaa; 16]);
        cpu.flags.set_arith(crate::cpu::flags::OF | crate::cpu::flags::SF | crate::cpu::flags::AF);
    });
    // FST m32 and FSTP m64: no store, no pop; OE and ES, no PE (SDM Vol. 1 §8.5.4).
    assert_eq!(bus.mem[0x3100..0x3110], [0xaa; 16]);
    assert_eq!(c.regs[EAX] as u16 & (0x3f | sw::ES), OE as u16 | sw::ES);
    assert_eq!((c.fpu.top(), c.fpu.st(0)), (7, big));
    // FNOP is no control instruction: it updates the instruction pointer (§8.1.8); the
    // data pointer stays that of the FSTP.
    assert_eq!(rd32(&bus, 0x3200 + 12), 0x101c);
    assert_eq!(rd32(&bus, 0x3200 + 20), 0x3108);
    // FNSTENV masked every exception, which takes ES (and with it FERR#) down again.
    assert_eq!(c.fpu.cw & 0x3f, 0x3f);
    assert!(c.fpu.sw & sw::ES == 0 && !c.fpu_irq13_pending());
    // FCOMI ST(0), ST(0): equal; OF SF AF cleared.
    use crate::cpu::flags::{AF, CF, OF, PF, SF, ZF};
    assert_eq!(c.flags.get() & (CF | PF | AF | ZF | SF | OF), ZF);
}

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D9E8              fld1
/// 00001004  D9E8              fld1
/// 00001006  DEC1              faddp st1
/// 00001008  D90500300000      fld dword [dword 0x3000]
/// 0000100E  DEC9              fmulp st1
/// 00001010  DD1D10300000      fstp qword [dword 0x3010]
/// 00001016  DB0504300000      fild dword [dword 0x3004]
/// 0000101C  DE3508300000      fidiv word [dword 0x3008]
/// 00001022  DB1520300000      fist dword [dword 0x3020]
/// 00001028  D92D0A300000      fldcw [dword 0x300a]
/// 0000102E  DB1D24300000      fistp dword [dword 0x3024]
/// 00001034  D9EB              fldpi
/// 00001036  DB3D30300000      fstp tword [dword 0x3030]
/// 0000103C  DD0540300000      fld qword [dword 0x3040]
/// 00001042  D9FA              fsqrt
/// 00001044  DD1D48300000      fstp qword [dword 0x3048]
/// ```
const ARITH32: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1, 0xd9, 0x05, 0x00, 0x30, 0x00, 0x00, 0xde, 0xc9, 0xdd, 0x1d, 0x10,
    0x30, 0x00, 0x00, 0xdb, 0x05, 0x04, 0x30, 0x00, 0x00, 0xde, 0x35, 0x08, 0x30, 0x00, 0x00, 0xdb, 0x15, 0x20, 0x30,
    0x00, 0x00, 0xd9, 0x2d, 0x0a, 0x30, 0x00, 0x00, 0xdb, 0x1d, 0x24, 0x30, 0x00, 0x00, 0xd9, 0xeb, 0xdb, 0x3d, 0x30,
    0x30, 0x00, 0x00, 0xdd, 0x05, 0x40, 0x30, 0x00, 0x00, 0xd9, 0xfa, 0xdd, 0x1d, 0x48, 0x30, 0x00, 0x00,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D9E8              fld1
/// 00001004  D9E8              fld1
/// 00001006  D9E8              fld1
/// 00001008  D9E8              fld1
/// 0000100A  D9E8              fld1
/// 0000100C  D9E8              fld1
/// 0000100E  D9E8              fld1
/// 00001010  D9E8              fld1
/// 00001012  D9E8              fld1
/// 00001014  DFE0              fnstsw ax
/// ```
const OVERFLOW32: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9, 0xe8, 0xd9,
    0xe8, 0xdf, 0xe0,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D8C1              fadd st1
/// 00001004  DFE0              fnstsw ax
/// 00001006  DD1D00300000      fstp qword [dword 0x3000]
/// 0000100C  DD3D08300000      fnstsw [dword 0x3008]
/// ```
const UNDERFLOW32: &[u8] =
    &[0xdb, 0xe3, 0xd8, 0xc1, 0xdf, 0xe0, 0xdd, 0x1d, 0x00, 0x30, 0x00, 0x00, 0xdd, 0x3d, 0x08, 0x30, 0x00, 0x00];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  DD0500300000      fld qword [dword 0x3000]
/// 00001008  DD0508300000      fld qword [dword 0x3008]
/// 0000100E  DBF1              fcomi st1
/// 00001010  9C                pushf
/// 00001011  5B                pop ebx
/// 00001012  DFE9              fucomip st1
/// 00001014  9C                pushf
/// 00001015  59                pop ecx
/// 00001016  DC1510300000      fcom qword [dword 0x3010]
/// 0000101C  DFE0              fnstsw ax
/// 0000101E  DDD8              fstp st0
/// ```
const FCOMI32: &[u8] = &[
    0xdb, 0xe3, 0xdd, 0x05, 0x00, 0x30, 0x00, 0x00, 0xdd, 0x05, 0x08, 0x30, 0x00, 0x00, 0xdb, 0xf1, 0x9c, 0x5b, 0xdf,
    0xe9, 0x9c, 0x59, 0xdc, 0x15, 0x10, 0x30, 0x00, 0x00, 0xdf, 0xe0, 0xdd, 0xd8,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D92D00320000      fldcw [dword 0x3200]
/// 00001008  DD0500300000      fld qword [dword 0x3000]
/// 0000100E  D9E8              fld1
/// 00001010  D9EB              fldpi
/// 00001012  D8F1              fdiv st1
/// 00001014  D9CA              fxch st2
/// 00001016  DD3500310000      fnsave [dword 0x3100]
/// 0000101C  DD3D00330000      fnstsw [dword 0x3300]
/// 00001022  D93D02330000      fnstcw [dword 0x3302]
/// 00001028  DD2500310000      frstor [dword 0x3100]
/// 0000102E  D93500340000      fnstenv [dword 0x3400]
/// 00001034  D92500340000      fldenv [dword 0x3400]
/// ```
const SAVE32: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0x2d, 0x00, 0x32, 0x00, 0x00, 0xdd, 0x05, 0x00, 0x30, 0x00, 0x00, 0xd9, 0xe8, 0xd9, 0xeb, 0xd8,
    0xf1, 0xd9, 0xca, 0xdd, 0x35, 0x00, 0x31, 0x00, 0x00, 0xdd, 0x3d, 0x00, 0x33, 0x00, 0x00, 0xd9, 0x3d, 0x02, 0x33,
    0x00, 0x00, 0xdd, 0x25, 0x00, 0x31, 0x00, 0x00, 0xd9, 0x35, 0x00, 0x34, 0x00, 0x00, 0xd9, 0x25, 0x00, 0x34, 0x00,
    0x00,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  DD060030          fld qword [0x3000]
/// 00001006  D9E8              fld1
/// 00001008  D9EB              fldpi
/// 0000100A  D8F1              fdiv st1
/// 0000100C  D9CA              fxch st2
/// 0000100E  DD360031          fnsave [0x3100]
/// 00001012  DD260031          frstor [0x3100]
/// 00001016  66DD360032        o32 fnsave [0x3200]
/// 0000101B  66DD260032        o32 frstor [0x3200]
/// 00001020  D9360034          fnstenv [0x3400]
/// ```
const SAVE16: &[u8] = &[
    0xdb, 0xe3, 0xdd, 0x06, 0x00, 0x30, 0xd9, 0xe8, 0xd9, 0xeb, 0xd8, 0xf1, 0xd9, 0xca, 0xdd, 0x36, 0x00, 0x31, 0xdd,
    0x26, 0x00, 0x31, 0x66, 0xdd, 0x36, 0x00, 0x32, 0x66, 0xdd, 0x26, 0x00, 0x32, 0xd9, 0x36, 0x00, 0x34,
];

/// ```text
/// 00001000  90                nop
/// 00001001  D9E8              fld1
/// ```
const NM16: &[u8] = &[0x90, 0xd9, 0xe8];

/// ```text
/// 00001000  90                nop
/// 00001001  9B                wait
/// ```
const WAIT16: &[u8] = &[0x90, 0x9b];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D92E0030          fldcw [0x3000]
/// 00001006  D9E8              fld1
/// 00001008  D9EE              fldz
/// 0000100A  DEF9              fdivp st1
/// 0000100C  DD3E0230          fnstsw [0x3002]
/// 00001010  D9D0              fnop
/// ```
const MF16: &[u8] =
    &[0xdb, 0xe3, 0xd9, 0x2e, 0x00, 0x30, 0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xdd, 0x3e, 0x02, 0x30, 0xd9, 0xd0];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D9                db 0xd9
/// 00001003  0E                push cs
/// 00001004  0030              add [bx+si],dh
/// ```
const UD16: &[u8] = &[0xdb, 0xe3, 0xd9, 0x0e, 0x00, 0x30];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D9EE              fldz
/// 00001004  DB0E0030          fisttp dword [0x3000]
/// ```
const FISTTP16: &[u8] = &[0xdb, 0xe3, 0xd9, 0xee, 0xdb, 0x0e, 0x00, 0x30];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  26D9060030        fld dword [es:0x3000]
/// 00001007  D9360031          fnstenv [0x3100]
/// 0000100B  66D9360032        o32 fnstenv [0x3200]
/// ```
const ENV16: &[u8] = &[0xdb, 0xe3, 0x26, 0xd9, 0x06, 0x00, 0x30, 0xd9, 0x36, 0x00, 0x31, 0x66, 0xd9, 0x36, 0x00, 0x32];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  26D90500300000    fld dword [dword es:0x3000]
/// 00001009  D93500310000      fnstenv [dword 0x3100]
/// 0000100F  66D93500320000    o16 fnstenv [dword 0x3200]
/// ```
const ENV32: &[u8] = &[
    0xdb, 0xe3, 0x26, 0xd9, 0x05, 0x00, 0x30, 0x00, 0x00, 0xd9, 0x35, 0x00, 0x31, 0x00, 0x00, 0x66, 0xd9, 0x35, 0x00,
    0x32, 0x00, 0x00,
];

/// ```text
/// 00001000  B801000000        mov eax,0x1
/// 00001005  0FA2              cpuid
/// 00001007  0F20C3            mov ebx,cr0
/// 0000100A  83E3EF            and ebx,byte -0x11
/// 0000100D  0F22C3            mov cr0,ebx
/// 00001010  0F20C3            mov ebx,cr0
/// ```
const CPUID32: &[u8] =
    &[0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0x0f, 0x20, 0xc3, 0x83, 0xe3, 0xef, 0x0f, 0x22, 0xc3, 0x0f, 0x20, 0xc3];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D9E5              fxam
/// 00001004  DD3D00310000      fnstsw [dword 0x3100]
/// 0000100A  DB2D00300000      fld tword [dword 0x3000]
/// 00001010  D9E5              fxam
/// 00001012  DD3D02310000      fnstsw [dword 0x3102]
/// 00001018  DDD8              fstp st0
/// 0000101A  DB2D0A300000      fld tword [dword 0x300a]
/// 00001020  D9E5              fxam
/// 00001022  DD3D04310000      fnstsw [dword 0x3104]
/// 00001028  DDD8              fstp st0
/// 0000102A  DB2D14300000      fld tword [dword 0x3014]
/// 00001030  D9E5              fxam
/// 00001032  DD3D06310000      fnstsw [dword 0x3106]
/// 00001038  DDD8              fstp st0
/// 0000103A  DB2D1E300000      fld tword [dword 0x301e]
/// 00001040  D9E5              fxam
/// 00001042  DD3D08310000      fnstsw [dword 0x3108]
/// 00001048  DDD8              fstp st0
/// 0000104A  DB2D28300000      fld tword [dword 0x3028]
/// 00001050  D9E5              fxam
/// 00001052  DD3D0A310000      fnstsw [dword 0x310a]
/// 00001058  DDD8              fstp st0
/// 0000105A  DB2D32300000      fld tword [dword 0x3032]
/// 00001060  D9E5              fxam
/// 00001062  DD3D0C310000      fnstsw [dword 0x310c]
/// 00001068  DDD8              fstp st0
/// 0000106A  DB2D3C300000      fld tword [dword 0x303c]
/// 00001070  D9E5              fxam
/// 00001072  DD3D0E310000      fnstsw [dword 0x310e]
/// 00001078  DDD8              fstp st0
/// 0000107A  DB2D46300000      fld tword [dword 0x3046]
/// 00001080  D9E5              fxam
/// 00001082  DD3D10310000      fnstsw [dword 0x3110]
/// 00001088  DDD8              fstp st0
/// ```
const FXAM32: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0xe5, 0xdd, 0x3d, 0x00, 0x31, 0x00, 0x00, 0xdb, 0x2d, 0x00, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd,
    0x3d, 0x02, 0x31, 0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d, 0x0a, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x04, 0x31,
    0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d, 0x14, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x06, 0x31, 0x00, 0x00, 0xdd,
    0xd8, 0xdb, 0x2d, 0x1e, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x08, 0x31, 0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d,
    0x28, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x0a, 0x31, 0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d, 0x32, 0x30, 0x00,
    0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x0c, 0x31, 0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d, 0x3c, 0x30, 0x00, 0x00, 0xd9, 0xe5,
    0xdd, 0x3d, 0x0e, 0x31, 0x00, 0x00, 0xdd, 0xd8, 0xdb, 0x2d, 0x46, 0x30, 0x00, 0x00, 0xd9, 0xe5, 0xdd, 0x3d, 0x10,
    0x31, 0x00, 0x00, 0xdd, 0xd8,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D92D00320000      fldcw [dword 0x3200]
/// 00001008  DD0500300000      fld qword [dword 0x3000]
/// 0000100E  D9E8              fld1
/// 00001010  D9EB              fldpi
/// 00001012  D8F1              fdiv st1
/// 00001014  D9CA              fxch st2
/// ```
const SAVE32_PRE: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0x2d, 0x00, 0x32, 0x00, 0x00, 0xdd, 0x05, 0x00, 0x30, 0x00, 0x00, 0xd9, 0xe8, 0xd9, 0xeb, 0xd8,
    0xf1, 0xd9, 0xca,
];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  DD060030          fld qword [0x3000]
/// 00001006  D9E8              fld1
/// 00001008  D9EB              fldpi
/// 0000100A  D8F1              fdiv st1
/// 0000100C  D9CA              fxch st2
/// ```
const SAVE16_PRE: &[u8] = &[0xdb, 0xe3, 0xdd, 0x06, 0x00, 0x30, 0xd9, 0xe8, 0xd9, 0xeb, 0xd8, 0xf1, 0xd9, 0xca];

/// ```text
/// 00001000  DBE3              fninit
/// 00001002  D92D00300000      fldcw [dword 0x3000]
/// 00001008  DB2D10300000      fld tword [dword 0x3010]
/// 0000100E  D91500310000      fst dword [dword 0x3100]
/// 00001014  DFE0              fnstsw ax
/// 00001016  DD1D08310000      fstp qword [dword 0x3108]
/// 0000101C  D9D0              fnop
/// 0000101E  D93500320000      fnstenv [dword 0x3200]
/// 00001024  DBF0              fcomi st0
/// ```
const STORE_OE32: &[u8] = &[
    0xdb, 0xe3, 0xd9, 0x2d, 0x00, 0x30, 0x00, 0x00, 0xdb, 0x2d, 0x10, 0x30, 0x00, 0x00, 0xd9, 0x15, 0x00, 0x31, 0x00,
    0x00, 0xdf, 0xe0, 0xdd, 0x1d, 0x08, 0x31, 0x00, 0x00, 0xd9, 0xd0, 0xd9, 0x35, 0x00, 0x32, 0x00, 0x00, 0xdb, 0xf0,
];
