//! The x87 forms of the differential test (D8–DF, 9B). An x87 instruction's effect is in
//! the FPU, which the harness's dump does not hold, so each case brings its own code
//! around the instruction:
//!
//!   pre:   FNINIT; FLDCW [cs:data]; FLD tword [cs:data+2+10k] for k < n  (n = 0..=8);
//!          in 8% of the cases then LMSW [cs:…] setting CR0.MP/EM/TS for #NM
//!   insn:  the instruction under test
//!   probe: FNSAVE [0x3014]
//!
//! and the data (a control word and up to eight 80-bit values) after the case's tail, where
//! nothing executes it. The probe writes the whole x87 state (environment and the eight
//! registers, empty or not: no stack fault can get in the way) into the dumped area, from
//! 0x3014 to its end; memory operands stay below 0x3014. Exceptions: FNSTENV and FNSAVE
//! themselves (their image is the result; no probe), FLDENV and FRSTOR (their operand may
//! be anywhere in the area; the probe writes over it at 0x3000 once it is consumed). A
//! fault skips the probe: those cases compare the fault itself. The instruction's memory
//! operand gets a value of its format: floats, integers, packed BCD, control words,
//! environment and FNSAVE images.
//!
//! Not generated (README "Forms left out, or partly"): the transcendental register forms
//! (F2XM1, FYL2X, FPTAN, FPATAN, FYL2XP1, FSINCOS, FSIN, FCOS: their last bits are
//! implementation-specific — QEMU and v386 both compute them in double precision, by
//! different routes), FISTTP (SSE3, #UD on a Pentium II; QEMU's TCG executes it), FPREM
//! and FPREM1 (QEMU 7.2 computes them in double precision: inexact remainders, PE set,
//! where the SDM's are exact), FLD ST(7) (it needs a full stack and overflows), and
//! precision control other than 64 bits (QEMU 7.2 also rounds loads such as FLD m64 and
//! FILD m64 to it, where the SDM applies it to FADD, FSUB, FMUL, FDIV, FSQRT only, Vol. 1
//! §8.1.5.2; and it rounds directed-mode results at 24 bits one unit too far: e.g. FADD of
//! 12691.75 and −215490517074543520 rounded up at 24 bits, QEMU BF64DD, exact BF64DE.
//! v386's precision control is checked against the host's IEEE arithmetic in the unit
//! tests instead).

use super::rng::Rng;
use v386::cpu::fpu::float80::{self, Flags, F80};

/// Where the probe's FNSAVE writes, by encoding (None: no probe).
pub fn probe_at(op: u16, reg: u8, is_mem: bool) -> Option<u32> {
    match (op, reg, is_mem) {
        (0xd9 | 0xdd, 6, true) => None,
        (0xd9 | 0xdd, 4, true) => Some(0x3000),
        _ => Some(0x3014),
    }
}

/// A memory operand's address: below the probe's image, or anywhere in the area for the
/// environment and state images.
pub fn target(rng: &mut Rng, size: u32) -> u32 {
    if size <= 20 {
        0x3000 + rng.below(20 - size + 1)
    } else {
        0x3000 + rng.below(128 - size + 1)
    }
}

/// The memory operand's size, for the encodings that have one.
pub fn mem_size(op: u16, reg: u8, op32: bool) -> u32 {
    match (op, reg) {
        (0xd8 | 0xda, _) | (0xd9, 0..=3) | (0xdb, 0..=3) => 4,
        (0xdc | 0xdd, 0..=3) | (0xdf, 5 | 7) => 8,
        (0xde, _) | (0xdf, 0..=3) | (0xd9, 5 | 7) | (0xdd, 7) => 2,
        (0xdb, 5 | 7) | (0xdf, 4 | 6) => 10,
        (0xd9, 4 | 6) => {
            if op32 {
                28
            } else {
                14
            }
        }
        _ => {
            if op32 {
                108
            } else {
                94
            }
        }
    }
}

/// Encodings not generated (see the module doc).
pub fn excluded(op: u16, reg: u8, is_mem: bool, rm: u8) -> bool {
    if is_mem {
        return matches!((op, reg), (0xdb | 0xdd | 0xdf, 1));
    }
    let (lo, hi) = need(op, reg, false, rm);
    lo > hi || matches!((op, reg, rm), (0xd9, 6, 0..=3 | 5) | (0xd9, 7, 0 | 1 | 3 | 6 | 7))
}

fn f80(v: f64) -> F80 {
    float80::from_f64(v.to_bits(), true, &mut Flags::default())
}

/// A double with a random significand and an exponent within ±`e`.
fn rand_f64(rng: &mut Rng, e: u32) -> f64 {
    let r = rng.next_u64();
    let ex = rng.below(2 * e + 1) as i64 - e as i64;
    f64::from_bits((r & ((1 << 52) - 1)) | (((ex + 1023) as u64) << 52) | (r >> 63 << 63))
}

/// An interesting register value.
pub fn value(rng: &mut Rng) -> F80 {
    let x = {
        match rng.below(20) {
            0 => F80::ZERO,
            1 => F80::ONE,
            2 => f80(rng.pick(&[0.5, 2.0, 3.0, 10.0, 0.1, 1.5, 2.5, -0.5, 1e10, 65535.5, 2147483647.5])),
            3 => f80((rng.u32() as i32 >> rng.below(31)) as f64 + rng.pick(&[0.0, 0.25, 0.5, 0.75])),
            4 => F80::inf(false),
            5 => {
                return rng.pick(&[
                    F80::INDEFINITE,
                    F80 { se: 0x7fff, sig: 0xc000_0000_1234_5678 },
                    F80 { se: 0xffff, sig: 0x8000_0000_0000_0001 },
                    F80 { se: 0x7fff, sig: 0xa000_0000_0000_0000 },
                ])
            }
            6 => {
                let sig = rng.next_u64() >> rng.below(63);
                F80 { se: 0, sig }
            }
            7 => {
                let se = rng.pick(&[1, 0x7ffe, 0x7ffe - 64, 64]);
                F80 { se, sig: rng.next_u64() | 1 << 63 }
            }
            8 => return f80(rand_f64(rng, 1000)),
            9 => return f80(rand_f64(rng, 60)),
            10 => {
                let se = 0x3fff + rng.below(70) as u16;
                F80 { se, sig: rng.next_u64() | 1 << 63 }
            }
            _ => {
                let se = 0x3fff - 40 + rng.below(80) as u16;
                F80 { se, sig: rng.next_u64() | 1 << 63 }
            }
        }
    };
    if rng.pct(50) {
        -x
    } else {
        x
    }
}

/// A control word: all masked or some unmasked, with a rounding control; precision
/// control 64 bits (see the module doc). Only the precision exception is ever unmasked:
/// QEMU 7.2 gives every x87 exception its masked response (README "QEMU vs SDM").
pub fn control_word(rng: &mut Rng) -> u16 {
    let masks = if rng.pct(70) { 0x3f } else { 0x1f };
    let pc = 3 << 8;
    let rc = (rng.below(4) as u16) << 10;
    0x0040 | masks | pc | rc
}

fn bcd(rng: &mut Rng) -> [u8; 10] {
    let mut b = [0u8; 10];
    let digits = rng.below(19);
    for k in 0..digits as usize {
        let d = rng.below(10) as u8;
        b[k / 2] |= if k % 2 == 0 { d } else { d << 4 };
    }
    b[9] = if rng.pct(50) { 0x80 } else { 0 };
    b
}

/// An environment or FNSAVE image (the layout by mode and operand size) with a
/// consistent status word: ES and B exactly when a flag is unmasked.
fn state_image(rng: &mut Rng, real: bool, op32: bool, save: bool) -> Vec<u8> {
    let cw = control_word(rng);
    let flags = if rng.pct(60) { 0 } else { rng.u8() as u16 & 0x7f };
    let mut sw = flags | (rng.u32() as u16 & 0x4700) | ((rng.below(8) as u16) << 11);
    if flags & !cw & 0x3f != 0 {
        sw |= 0x8080;
    }
    let tw = rng.u32() as u16;
    let (ip, dp, sel) = (rng.u32() & 0xffff, rng.u32() & 0xffff, rng.pick(&[0x08u16, 0x10, 0x1234]));
    let mut b = Vec::new();
    let put16 = |b: &mut Vec<u8>, v: u16| b.extend_from_slice(&v.to_le_bytes());
    if op32 {
        for v in [cw, sw, tw] {
            put16(&mut b, v);
            put16(&mut b, 0xffff);
        }
        if real {
            b.extend_from_slice(&ip.to_le_bytes());
            b.extend_from_slice(&(rng.u32() & 0x7ff).to_le_bytes());
            b.extend_from_slice(&dp.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
        } else {
            b.extend_from_slice(&ip.to_le_bytes());
            b.extend_from_slice(&((sel as u32) | (rng.u32() & 0x7ff) << 16).to_le_bytes());
            b.extend_from_slice(&dp.to_le_bytes());
            b.extend_from_slice(&(0xffff_0000 | sel as u32).to_le_bytes());
        }
    } else {
        for v in [cw, sw, tw, ip as u16, if real { 0 } else { sel }, dp as u16, if real { 0 } else { sel }] {
            put16(&mut b, v);
        }
    }
    if save {
        for _ in 0..8 {
            b.extend_from_slice(&value(rng).to_bytes());
        }
    }
    b
}

/// The bytes of the memory operand of a load-type encoding, or None for a store.
pub fn operand(rng: &mut Rng, op: u16, reg: u8, op32: bool, real: bool) -> Option<Vec<u8>> {
    let float32 = |rng: &mut Rng| -> Vec<u8> {
        let v: u32 = match rng.below(8) {
            0 => rng.pick(&[0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001, 0x0000_0001]),
            1 => rng.u32() & 0x807f_ffff,
            _ => (rand_f64(rng, 60) as f32).to_bits(),
        };
        v.to_le_bytes().to_vec()
    };
    let float64 = |rng: &mut Rng| -> Vec<u8> {
        let v: u64 = match rng.below(8) {
            0 => rng.pick(&[0, 1 << 63, 0x7ff0 << 48, 0xfff0 << 48, 0x7ff8 << 48, 0x7ff0_0000_0000_0001, 1]),
            1 => rng.next_u64() & 0x800f_ffff_ffff_ffff,
            2 => rand_f64(rng, 1000).to_bits(),
            _ => rand_f64(rng, 60).to_bits(),
        };
        v.to_le_bytes().to_vec()
    };
    let int = |rng: &mut Rng, n: usize| -> Vec<u8> {
        let v = match rng.below(4) {
            0 => rng.pick(&[0u64, 1, u64::MAX, 1 << 15, 1 << 31, 1 << 63, 0x7fff, 0x7fff_ffff]),
            _ => rng.next_u64() >> rng.below(64),
        };
        v.to_le_bytes()[..n].to_vec()
    };
    Some(match (op, reg) {
        (0xd8, _) | (0xd9, 0) => float32(rng),
        (0xdc, _) | (0xdd, 0) => float64(rng),
        (0xda, _) | (0xdb, 0) => int(rng, 4),
        (0xde, _) | (0xdf, 0) => int(rng, 2),
        (0xdf, 5) => int(rng, 8),
        (0xdb, 5) => value(rng).to_bytes().to_vec(),
        (0xdf, 4) => bcd(rng).to_vec(),
        (0xd9, 5) => control_word(rng).to_le_bytes().to_vec(),
        (0xd9, 4) => state_image(rng, real, op32, false),
        (0xdd, 4) => state_image(rng, real, op32, true),
        _ => return None,
    })
}

/// How many registers the pre must load for the encoding: at least as many as it reads,
/// at most as many as leave room for what it pushes. QEMU does not detect stack overflow
/// or underflow (README "QEMU vs SDM"), so no case has one.
pub fn need(op: u16, reg: u8, is_mem: bool, rm: u8) -> (u32, u32) {
    let i = rm as u32 + 1;
    if is_mem {
        return match (op, reg) {
            // loads: FLD, FILD, FBLD push one
            (0xd9, 0) | (0xdd, 0) | (0xdb, 0 | 5) | (0xdf, 0 | 4 | 5) => (0, 7),
            // control and state instructions: anything
            (0xd9, 4..=7) | (0xdd, 4 | 6 | 7) => (0, 8),
            // the rest read ST(0)
            _ => (1, 8),
        };
    }
    match (op, reg) {
        (0xd9, 0) => (i, 7),
        // FST/FSTP ST(i) (and aliases): ST(i) loaded too (README "QEMU vs SDM").
        (0xd9, 3) | (0xdd, 2 | 3) | (0xdf, 2 | 3) => (i.max(1), 8),
        (0xd9, 2) | (0xdb, 4) | (0xdd, 0) | (0xdf, 0) | (0xdf, 4) => (0, 8),
        (0xd9, 4) if rm == 5 => (0, 8),
        (0xd9, 5) => (0, 7),
        (0xd9, 6) if rm == 4 => (1, 6),
        (0xd9, 6) if rm >= 6 => (0, 8),
        (0xd9, 6 | 7) if matches!(rm, 0 | 5) || (reg == 7 && rm == 5) => (2, 8),
        (0xd9, 4 | 6 | 7) => (1, 8),
        (0xde, 3) | (0xda, 5) => (2, 8),
        _ => (i.max(1), 8),
    }
}

/// The pre, probe and data of a case whose code starts at `base` and whose instruction
/// is `insn_len` bytes; `tail_len` is the tail after the probe.
pub fn wrap(
    rng: &mut Rng,
    code32: bool,
    base: u32,
    insn_len: u32,
    tail_len: u32,
    probe_at: Option<u32>,
    need: (u32, u32),
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (lo, hi) = need;
    let n = if hi == 8 && rng.pct(10) { 8 } else { lo.max(rng.below(5).min(hi)) };
    // CR0.MP (2), EM (4), TS (8) for the device-not-available cases (SDM Vol. 3A Table 2-2).
    let msw = if rng.pct(8) { rng.pick(&[8u16, 4, 10, 6, 2, 14]) | code32 as u16 } else { 0 };
    let (ld, pr) = if code32 { (7, 6) } else { (5, 4) };
    let pre_len = 2 + ld * (1 + n) + if msw != 0 { ld + 1 } else { 0 };
    let probe_len = if probe_at.is_some() { pr } else { 0 };
    let data_at = base + pre_len + insn_len + probe_len + tail_len;
    let mut data = control_word(rng).to_le_bytes().to_vec();
    for _ in 0..n {
        data.extend_from_slice(&value(rng).to_bytes());
    }
    // CS-relative absolute operands: [cs:disp16] (ModR/M mod 00 rm 110) or [cs:disp32]
    // (mod 00 rm 101); reg = 5 for FLDCW (D9 /5) and FLD m80 (DB /5).
    let abs = |v: &mut Vec<u8>, prefix: Option<u8>, op: u8, reg: u8, a: u32| {
        v.extend(prefix);
        v.push(op);
        if code32 {
            v.push(reg << 3 | 5);
            v.extend_from_slice(&a.to_le_bytes());
        } else {
            v.push(reg << 3 | 6);
            v.extend_from_slice(&(a as u16).to_le_bytes());
        }
    };
    let mut pre = vec![0xdb, 0xe3];
    abs(&mut pre, Some(0x2e), 0xd9, 5, data_at);
    for k in 0..n {
        abs(&mut pre, Some(0x2e), 0xdb, 5, data_at + 2 + 10 * k);
    }
    if msw != 0 {
        // LMSW [cs:…] (0F 01 /6): loads PE (kept), MP, EM, TS without touching a register.
        let mut l = Vec::new();
        abs(&mut l, Some(0x2e), 0x01, 6, data_at + 2 + 10 * n);
        l.insert(1, 0x0f);
        pre.extend(l);
        data.extend_from_slice(&msw.to_le_bytes());
    }
    assert_eq!(pre.len() as u32, pre_len);
    let mut probe = Vec::new();
    if let Some(at) = probe_at {
        abs(&mut probe, None, 0xdd, 6, at);
    }
    assert_eq!(probe.len() as u32, probe_len);
    (pre, probe, data)
}

/// An x87 state image in the dumped area and what to ignore in it (see [`normalize`]).
#[derive(Clone, Copy, Debug)]
pub struct Image {
    /// Offset in the area.
    pub at: usize,
    /// The 32-bit layout.
    pub o32: bool,
    /// Ignore the pointers: after FLDENV and FRSTOR.
    pub ptrs: bool,
    /// Ignore the data pointer's upper half: an instruction with a 16-bit address.
    pub fdp16: bool,
    /// Ignore C0, C2, C3: the instruction leaves them undefined.
    pub cc: bool,
    /// Ignore the instruction pointer and opcode: FNOP, FNSTSW AX.
    pub ip: bool,
}

/// Whether the SDM defines C0, C2 and C3 after the encoding (compares, FXAM, FTST, and
/// the instructions that load or clear the whole status word); for the others its
/// "FPU Flags Affected" says "undefined".
fn cc_defined(op: u16, reg: u8, is_mem: bool, rm: u8) -> bool {
    if is_mem {
        return matches!((op, reg), (0xd8 | 0xdc | 0xda | 0xde, 2 | 3) | (0xd9 | 0xdd, 4 | 6 | 7) | (0xd9, 5));
    }
    matches!(
        (op, reg, rm),
        (0xd8 | 0xdc, 2 | 3, _)
            | (0xde, 2 | 3, _)
            | (0xdd, 4 | 5, _)
            | (0xda, 5, _)
            | (0xd9, 4, 4 | 5)
            | (0xdb, 4, _)
            | (0xdb | 0xdf, 5 | 6, _)
            | (0xdf, 4, _)
    )
}

/// Where FNSAVE/FNSTENV images are in the dumped area: the probe's, and the instruction's
/// own for FNSTENV and FNSAVE.
#[allow(clippy::too_many_arguments)]
pub fn images(
    probe_at: Option<u32>,
    op: u16,
    reg: u8,
    rm: u8,
    is_mem: bool,
    ea: u32,
    op32: bool,
    ad32: bool,
    code32: bool,
) -> Vec<Image> {
    let mut v = Vec::new();
    let loads = is_mem && matches!((op, reg), (0xd9 | 0xdd, 4));
    let fdp16 = is_mem && !ad32;
    let cc = op != 0x9b && !cc_defined(op, reg, is_mem, rm);
    let ip = !is_mem && ((op == 0xd9 && reg == 2) || (op == 0xdf && reg == 4));
    if let Some(at) = probe_at {
        v.push(Image { at: (at - 0x3000) as usize, o32: code32, ptrs: loads, fdp16, cc, ip });
    }
    if is_mem && matches!((op, reg), (0xd9 | 0xdd, 6)) && (0x3000..0x3080).contains(&ea) {
        v.push(Image { at: (ea - 0x3000) as usize, o32: op32, ptrs: false, fdp16: false, cc: false, ip: false });
    }
    v
}

/// What the comparison ignores in an x87 state image, in both dumps alike (README "QEMU vs
/// SDM"):
/// - C1 when PE is set: the SDM's round-up bit (Vol. 1 §8.1.3.1), which QEMU 7.2 does not
///   produce;
/// - DE: QEMU 7.2 does not report denormal operands (Vol. 1 §8.5.2);
/// - C0, C2, C3 where the SDM leaves them undefined, and after an unmasked invalid
///   operation (only FLDENV/FRSTOR images unmask it): QEMU sets them, the SDM's FCOM
///   leaves them ("If the invalid-arithmetic-operand exception is unmasked, the condition
///   code flags are not set");
/// - with a 16-bit address in protected mode, the upper half of the data pointer: QEMU
///   stores the address before its wrap to 16 bits (Vol. 1 §8.1.8: the operand's offset);
/// - the reserved upper halves of the 32-bit protected-mode layout (v386 writes ones as
///   the 486 and later do, QEMU zeros) and its opcode field (QEMU 7.2 keeps no last
///   opcode, Vol. 1 §8.1.9);
/// - in real mode, the words that hold the opcode and bits 31–16 of the linear
///   pointers: QEMU writes the protected-mode layout in every mode (Vol. 1 §8.1.10,
///   Figures 8-10 and 8-12 give the real-mode ones);
/// - after FLDENV/FRSTOR, the instruction and data pointers: QEMU 7.2 does not load them
///   (Vol. 2A "FLDENV": the whole environment is loaded);
/// - the control word's reserved bits 6 and 13–15: v386 holds them as the power-up value
///   0040H shows them (Vol. 3A Table 9-1), QEMU keeps whatever FLDENV/FRSTOR loaded (only
///   an image read from the paging tests' zero-filled read-only page has them other);
/// - after FNOP and FNSTSW AX, the instruction pointer and opcode: FNOP is not one of
///   the control instructions that keep them and FNSTSW is (Vol. 1 §8.1.8); QEMU 7.2
///   has it the other way round.
pub fn normalize(images: &[Image], real: bool, mem: &mut [u8; 128], other: &[u8; 128]) {
    for &Image { at, o32, ptrs, fdp16, cc, ip } in images {
        let len = if o32 { 28 } else { 14 };
        if at + len > 128 {
            continue;
        }
        let w = |m: &[u8; 128], o: usize| u16::from_le_bytes([m[at + o], m[at + o + 1]]);
        let (cwo, swo) = if o32 { (0, 4) } else { (0, 2) };
        let sw = w(mem, swo) | w(other, swo);
        let cw = w(mem, cwo);
        let mut v = w(mem, swo) & !0x0002;
        if sw & 0x20 != 0 {
            v &= !0x0200;
        }
        if cc || (sw & 1 != 0 && cw & 1 == 0) {
            v &= !0x4500;
        }
        mem[at + swo..at + swo + 2].copy_from_slice(&v.to_le_bytes());
        mem[at + cwo..at + cwo + 2].copy_from_slice(&(cw & !0xe040).to_le_bytes());
        let mut zero: Vec<usize> = Vec::new();
        match (o32, real) {
            (true, false) => zero.extend([2, 3, 6, 7, 10, 11, 18, 19, 26, 27]),
            (true, true) => zero.extend([2, 3, 6, 7, 10, 11, 14, 15, 16, 17, 18, 19, 22, 23, 24, 25, 26, 27]),
            (false, true) => zero.extend([8, 9, 12, 13]),
            (false, false) => {}
        }
        if ptrs {
            zero.extend(if o32 { 12..26 } else { 6..14 });
        }
        if fdp16 && o32 && !real {
            zero.extend([22, 23]);
        }
        if ip {
            zero.extend(if o32 { 12..20 } else { 6..10 });
        }
        for o in zero {
            mem[at + o] = 0;
        }
    }
}
