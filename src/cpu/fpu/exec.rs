//! The x87 instructions on the [`Cpu`]: the D8–DF escapes and WAIT/FWAIT. Order of
//! checks for an escape (SDM Vol. 3A §2.5, Table 2-2, and "Interrupt 7", "Interrupt 16";
//! Vol. 1 §8.3.12 on waiting and non-waiting instructions):
//!
//! 1. CR0.EM or CR0.TS set: #NM, undefined encodings included (Vol. 3A, "Architecture
//!    Compatibility", FPU undefined opcodes).
//! 2. An undefined encoding: #UD.
//! 3. A waiting instruction (all but FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE)
//!    with an unmasked exception pending: #MF, or with CR0.NE = 0 the FERR# path.
//! 4. The instruction pointer, opcode and data pointer are recorded unless the
//!    instruction is one of the control instructions that leave them (Vol. 1 §8.1.8:
//!    FNINIT, FNCLEX, FLDCW, FNSTCW, FNSTSW, FNSTENV, FLDENV, FNSAVE, FRSTOR, WAIT).
//! 5. Memory operands are read (a fault leaves everything unchanged), the operation is
//!    computed, a store is written, and only then is the FPU state changed.
//!
//! The opcode map is SDM Vol. 2D Appendix A.4 (Tables ). Undocumented
//! register-form aliases that P6 processors execute are executed too: D9 D8+i (FSTP),
//! DC D0+i / DC D8+i (FCOM / FCOMP), DD C8+i and DF C8+i (FXCH), DE D0+i (FCOMP),
//! DF C0+i (FFREEP: free, then pop), DF D0+i / DF D8+i (FSTP); DB E0, E1, E4 (the 8087's
//! FNENI, FNDISI and the 287's FNSETPM) do nothing, as on the 387 and later. FISTTP (SSE3)
//! is #UD on this P6-class processor.

use super::float80::{self, Cmp, Flags, F80};
use super::{env, sw, transcend, Fpu};
use crate::bus::Bus;
use crate::cpu::decode::{Instr, CS};
use crate::cpu::exception::Exception;
use crate::cpu::{cr0, flags, Cpu, Res, EAX};

/// How an encoding behaves before it executes (see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Undefined,
    /// FNINIT, FNCLEX, FNSTSW, FNSTCW, FNSTENV, FNSAVE.
    NonWaiting,
    /// The 8087/287 no-ops FNENI, FNDISI, FNSETPM: not waiting, but (like FNOP) not in
    /// the list of instructions that keep the pointers.
    NonWaitingNop,
    /// FLDCW, FLDENV, FRSTOR: waiting, but the pointers stay.
    Control,
    Normal,
}

fn kind(i: &Instr) -> Kind {
    use Kind::*;
    let (op, reg, rm) = (i.opcode, i.reg(), i.rm());
    if i.is_mem {
        return match (op, reg) {
            (0xd9, 1) | (0xdb, 1) | (0xdb, 4) | (0xdb, 6) | (0xdd, 1) | (0xdd, 5) | (0xdf, 1) => Undefined,
            (0xd9, 4) | (0xd9, 5) | (0xdd, 4) => Control,
            (0xd9, 6) | (0xd9, 7) | (0xdd, 6) | (0xdd, 7) => NonWaiting,
            _ => Normal,
        };
    }
    match (op, reg) {
        (0xd9, 2) if rm != 0 => Undefined,
        (0xd9, 4) if matches!(rm, 2 | 3 | 6 | 7) => Undefined,
        (0xd9, 5) if rm == 7 => Undefined,
        (0xda, 4) | (0xda, 6) | (0xda, 7) => Undefined,
        (0xda, 5) if rm != 1 => Undefined,
        (0xdb, 4) => match rm {
            2 | 3 => NonWaiting,
            0 | 1 | 4 => NonWaitingNop,
            _ => Undefined,
        },
        (0xdb, 7) => Undefined,
        (0xdd, 6) | (0xdd, 7) => Undefined,
        (0xde, 3) if rm != 1 => Undefined,
        (0xdf, 4) => {
            if rm == 0 {
                NonWaiting
            } else {
                Undefined
            }
        }
        (0xdf, 7) => Undefined,
        _ => Normal,
    }
}

/// A second operand: a register, or a value read from memory with its conversion flags.
#[derive(Clone, Copy)]
enum Src {
    St(usize),
    Val(F80, Flags),
}

/// The arithmetic operations by the ModR/M reg field of D8 (SDM Vol. 2D Table A-7).
const ADD: u8 = 0;
const MUL: u8 = 1;
const SUB: u8 = 4;
const SUBR: u8 = 5;
const DIV: u8 = 6;
// 7: DIVR.

impl Fpu {
    /// `ST(d) = ST(d) op src` (with SUBR/DIVR reversed), popping after with `pop`.
    fn arith(&mut self, op: u8, d: usize, src: Src, pop: bool) {
        let (y, mut fl) = match src {
            Src::St(i) => (self.get(i), Flags::default()),
            Src::Val(v, f) => (Some(v), f),
        };
        let (Some(x), Some(y)) = (self.get(d), y) else {
            if self.underflow() {
                self.set_st(d, F80::INDEFINITE);
                if pop {
                    self.pop();
                }
            }
            return;
        };
        let env = self.env();
        let r = match op {
            ADD => float80::add(x, y, false, env, &mut fl),
            MUL => float80::mul(x, y, env, &mut fl),
            SUB => float80::add(x, y, true, env, &mut fl),
            SUBR => float80::add(y, x, true, env, &mut fl),
            DIV => float80::div(x, y, env, &mut fl),
            _ => float80::div(y, x, env, &mut fl), // DIVR
        };
        if self.signal(fl, false) {
            self.set_st(d, r);
            if pop {
                self.pop();
            }
        }
    }

    /// Compare ST(0) with `src` (FCOM, FUCOM, FICOM, FTST, FCOMI…): the result, or None
    /// when an unmasked exception stops the instruction. Pops `pops` times on success.
    /// A masked stack underflow or invalid operand compares unordered.
    fn compare(&mut self, src: Src, quiet: bool, pops: usize) -> Option<Cmp> {
        let (y, mut fl) = match src {
            Src::St(i) => (self.get(i), Flags::default()),
            Src::Val(v, f) => (Some(v), f),
        };
        let r = match (self.get(0), y) {
            (Some(x), Some(y)) => {
                let c = float80::compare(x, y, quiet, &mut fl);
                if !self.signal(fl, false) {
                    return None;
                }
                c
            }
            _ => {
                if !self.underflow() {
                    return None;
                }
                Cmp::Unordered
            }
        };
        for _ in 0..pops {
            self.pop();
        }
        Some(r)
    }

    /// Set C3, C2, C0 from a comparison (SDM Vol. 2A "FCOM" table); C1 = 0 unless a stack
    /// underflow left it so.
    fn set_cmp_cc(&mut self, c: Cmp) {
        let (c3, c2, c0) = match c {
            Cmp::Greater => (false, false, false),
            Cmp::Less => (false, false, true),
            Cmp::Equal => (true, false, false),
            Cmp::Unordered => (true, true, true),
        };
        let c1 = self.sw & sw::C1 != 0;
        self.set_cc(c0, c1, c2, c3);
    }

    /// A one-operand operation on ST(0) (FSQRT, FRNDINT, F2XM1, FCHS, FABS…).
    fn unary(&mut self, f: impl FnOnce(F80, &mut Flags) -> F80) {
        let Some(x) = self.get(0) else {
            if self.underflow() {
                self.set_st(0, F80::INDEFINITE);
            }
            return;
        };
        let mut fl = Flags::default();
        let r = f(x, &mut fl);
        if self.signal(fl, false) {
            self.set_st(0, r);
        }
    }

    /// A two-operand operation with the result in ST(1) and a pop (FPATAN, FYL2X,
    /// FYL2XP1): `f(ST(0), ST(1))`.
    fn binary_pop(&mut self, f: impl FnOnce(F80, F80, &mut Flags) -> F80) {
        let (Some(x), Some(y)) = (self.get(0), self.get(1)) else {
            if self.underflow() {
                self.set_st(1, F80::INDEFINITE);
                self.pop();
            }
            return;
        };
        let mut fl = Flags::default();
        let r = f(x, y, &mut fl);
        if self.signal(fl, false) {
            self.set_st(1, r);
            self.pop();
        }
    }

    /// FLD ST(i), FLD of a converted memory operand, the constants: push with the
    /// overflow check; `None` is an empty source register (stack underflow).
    fn load(&mut self, v: Option<F80>, fl: Flags) {
        match v {
            Some(v) => self.push_checked(v, fl),
            None => {
                if !self.is_empty(7) {
                    if self.overflow() {
                        self.push(F80::INDEFINITE);
                    }
                } else if self.underflow() {
                    self.push(F80::INDEFINITE);
                }
            }
        }
    }

    /// FXCH ST(i) (SDM Vol. 2A "FXCH": an empty register is stack underflow; the masked
    /// response exchanges with the indefinite in its place).
    fn fxch(&mut self, i: usize) {
        let (a, b) = (self.get(0), self.get(i));
        if a.is_none() || b.is_none() {
            if !self.underflow() {
                return;
            }
        } else {
            self.set_c1(false);
        }
        let (a, b) = (a.unwrap_or(F80::INDEFINITE), b.unwrap_or(F80::INDEFINITE));
        self.set_st(0, b);
        self.set_st(i, a);
    }

    /// FST/FSTP ST(i): a plain copy, no exceptions but underflow.
    fn fst_reg(&mut self, i: usize, pop: bool) {
        match self.get(0) {
            Some(v) => {
                self.set_c1(false);
                self.set_st(i, v);
            }
            None => {
                if !self.underflow() {
                    return;
                }
                self.set_st(i, F80::INDEFINITE);
            }
        }
        if pop {
            self.pop();
        }
    }

    /// FXAM (SDM Vol. 2A "FXAM" table): C3 C2 C0 classify ST(0), C1 is its sign.
    fn fxam(&mut self) {
        use float80::Class::*;
        let v = self.st(0);
        let (c3, c2, c0) = if self.is_empty(0) {
            (true, false, true)
        } else {
            match v.class() {
                Unsupported => (false, false, false),
                QNaN | SNaN => (false, false, true),
                Normal => (false, true, false),
                Inf => (false, true, true),
                Zero => (true, false, false),
                Denormal => (true, true, false),
            }
        };
        self.set_cc(c0, v.sign(), c2, c3);
    }

    /// FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (D9 E8–EE). The constants are
    /// held to more than 64 bits and rounded by RC (SDM Vol. 1 §8.3.5; Vol. 2A
    /// "FLD1/FLDL2T/…"): here as the 64-bit value rounded to nearest and whether the
    /// rest below it is above or below half an ulp (none lies exactly on it).
    fn load_const(&mut self, k: u8) {
        // (sign/exponent, significand rounded to nearest, that rounding went up)
        let (se, sig, rounded_up) = match k {
            0 => (0x3fff, 1u64 << 63, None),
            1 => (0x4000, 0xd49a_784b_cd1b_8afe, Some(false)),
            2 => (0x3fff, 0xb8aa_3b29_5c17_f0bc, Some(true)),
            3 => (0x4000, 0xc90f_daa2_2168_c235, Some(true)),
            4 => (0x3ffd, 0x9a20_9a84_fbcf_f799, Some(true)),
            5 => (0x3ffe, 0xb172_17f7_d1cf_79ac, Some(true)),
            _ => (0, 0, None),
        };
        let sig = match (rounded_up, self.env().rc) {
            (Some(true), float80::Rc::Down | float80::Rc::Zero) => sig - 1,
            (Some(false), float80::Rc::Up) => sig + 1,
            _ => sig,
        };
        self.load(Some(F80 { se, sig }), Flags::default());
    }

    /// FPREM (`nearest` = false) and FPREM1: C2 = reduction incomplete, C0 C3 C1 = the
    /// quotient's bits 2, 1, 0 (SDM Vol. 2A "FPREM").
    fn fprem(&mut self, nearest: bool) {
        let (Some(x), Some(y)) = (self.get(0), self.get(1)) else {
            if self.underflow() {
                self.set_st(0, F80::INDEFINITE);
            }
            return;
        };
        let mut fl = Flags::default();
        let (r, q, complete) = float80::rem(x, y, nearest, self.env_ext(), &mut fl);
        if self.signal(fl, false) {
            self.set_st(0, r);
            self.set_cc(q & 4 != 0, q & 1 != 0, !complete, q & 2 != 0);
        }
    }

    /// FXTRACT: ST(0) = exponent, then push the significand.
    fn fxtract(&mut self) {
        let Some(x) = self.get(0) else {
            if self.underflow() {
                self.set_st(0, F80::INDEFINITE);
                self.push(F80::INDEFINITE);
            }
            return;
        };
        if !self.is_empty(7) {
            if self.overflow() {
                self.set_st(0, F80::INDEFINITE);
                self.push(F80::INDEFINITE);
            }
            return;
        }
        let mut fl = Flags::default();
        let (e, s) = float80::xtract(x, &mut fl);
        if self.signal(fl, false) {
            self.set_st(0, e);
            self.push(s);
        }
    }

    /// FSIN, FCOS, FPTAN (with `push_one`) on ST(0): an operand out of range sets C2 and
    /// changes nothing else.
    fn trig(&mut self, f: fn(F80, &mut Flags) -> Option<F80>, push_one: bool) {
        let Some(x) = self.get(0) else {
            if self.underflow() {
                self.set_st(0, F80::INDEFINITE);
                if push_one {
                    self.push(F80::INDEFINITE);
                }
            }
            return;
        };
        if push_one && !self.is_empty(7) {
            if self.overflow() {
                self.set_st(0, F80::INDEFINITE);
                self.push(F80::INDEFINITE);
            }
            return;
        }
        let mut fl = Flags::default();
        match f(x, &mut fl) {
            None => {
                self.set_c2(true);
                self.set_c1(false);
            }
            Some(r) => {
                if self.signal(fl, false) {
                    self.set_c2(false);
                    self.set_st(0, r);
                    if push_one {
                        self.push(F80::ONE);
                    }
                }
            }
        }
    }

    /// FSINCOS: ST(0) = sine, then push the cosine.
    fn fsincos(&mut self) {
        let Some(x) = self.get(0) else {
            if self.underflow() {
                self.set_st(0, F80::INDEFINITE);
                self.push(F80::INDEFINITE);
            }
            return;
        };
        if !self.is_empty(7) {
            if self.overflow() {
                self.set_st(0, F80::INDEFINITE);
                self.push(F80::INDEFINITE);
            }
            return;
        }
        let mut fl = Flags::default();
        match transcend::fsincos(x, &mut fl) {
            None => {
                self.set_c2(true);
                self.set_c1(false);
            }
            Some((s, c)) => {
                if self.signal(fl, false) {
                    self.set_c2(false);
                    self.set_st(0, s);
                    self.push(c);
                }
            }
        }
    }

    /// FCMOVcc: ST(0) = ST(i) when `cond` (SDM Vol. 2A "FCMOVcc").
    fn fcmov(&mut self, i: usize, cond: bool) {
        match (self.get(0), self.get(i)) {
            (Some(_), Some(v)) => {
                self.set_c1(false);
                if cond {
                    self.set_st(0, v);
                }
            }
            _ => {
                if self.underflow() {
                    self.set_st(0, F80::INDEFINITE);
                }
            }
        }
    }
}

impl Cpu {
    /// An x87 escape (D8–DF). See the module doc for the order of checks.
    #[inline(never)]
    pub(crate) fn x87<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        if self.cr0 & (cr0::EM | cr0::TS) != 0 {
            return Err(Exception::NM.into());
        }
        let k = kind(i);
        if k == Kind::Undefined {
            return Err(Exception::UD.into());
        }
        if matches!(k, Kind::Normal | Kind::Control) {
            self.x87_pending()?;
        }
        if matches!(k, Kind::Normal | Kind::NonWaitingNop) {
            self.fpu.fcs = self.segs[CS as usize].sel;
            self.fpu.fip = self.start_eip;
            self.fpu.fop = ((i.opcode & 7) << 8) | i.modrm as u16;
            if i.is_mem {
                self.fpu.fds = self.segs[i.mem_seg() as usize].sel;
                self.fpu.fdp = self.ea(i);
            }
        }
        let ferr = self.fpu_irq13_pending();
        if i.is_mem {
            self.x87_mem(bus, i)?;
        } else {
            self.x87_reg(i);
        }
        if !ferr && self.fpu_irq13_pending() {
            // FERR# rose (an unmasked exception with CR0.NE = 0): end the run slice so
            // the machine routes it to IRQ13 before the next instruction rather than a
            // slice later (see `Cpu::fpu_irq13_pending`).
            self.end_slice = true;
        }
        Ok(())
    }

    /// WAIT/FWAIT (9B): #NM when CR0.MP and CR0.TS are both set (SDM Vol. 3A Table 2-2),
    /// then any pending unmasked exception.
    pub(crate) fn x87_wait(&mut self) -> Res<()> {
        if self.cr0 & cr0::MP != 0 && self.cr0 & cr0::TS != 0 {
            return Err(Exception::NM.into());
        }
        self.x87_pending()
    }

    /// A pending unmasked exception (ES) before a waiting instruction: #MF with CR0.NE,
    /// else (MS-DOS compatibility) FERR# is already asserted through ES and the
    /// instruction runs (see [`Cpu::fpu_irq13_pending`]).
    fn x87_pending(&mut self) -> Res<()> {
        if self.fpu.sw & sw::ES != 0 && self.cr0 & cr0::NE != 0 {
            return Err(Exception::MF.into());
        }
        Ok(())
    }

    /// Read `N` bytes at `seg:off`, all checked before any is used.
    fn x87_read<B: Bus, const N: usize>(&mut self, bus: &mut B, seg: u8, off: u32) -> Res<[u8; N]> {
        let lin = self.seg_lin(seg, off, N as u32, false)?;
        let user = self.cpl == 3;
        let mut out = [0u8; N];
        let mut k = 0;
        while k < N {
            let a = lin.wrapping_add(k as u32);
            if N - k >= 4 {
                out[k..k + 4].copy_from_slice(&self.read_lin_u32(bus, a, user)?.to_le_bytes());
                k += 4;
            } else if N - k >= 2 {
                out[k..k + 2].copy_from_slice(&self.read_lin_u16(bus, a, user)?.to_le_bytes());
                k += 2;
            } else {
                out[k] = self.read_lin_u8(bus, a, user)?;
                k += 1;
            }
        }
        Ok(out)
    }

    /// Write `b` at `seg:off`: the segment and both ends' pages are checked first, so a
    /// fault writes nothing.
    fn x87_write<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, b: &[u8]) -> Res<()> {
        let n = b.len() as u32;
        let lin = self.seg_lin(seg, off, n, true)?;
        let user = self.cpl == 3;
        self.translate(bus, lin, user, true)?;
        self.translate(bus, lin.wrapping_add(n - 1), user, true)?;
        let mut k = 0;
        while k < b.len() {
            let a = lin.wrapping_add(k as u32);
            let rest = b.len() - k;
            if rest >= 4 {
                let v = u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
                self.write_lin_u32(bus, a, v, user)?;
                k += 4;
            } else if rest >= 2 {
                self.write_lin_u16(bus, a, u16::from_le_bytes([b[k], b[k + 1]]), user)?;
                k += 2;
            } else {
                self.write_lin_u8(bus, a, b[k], user)?;
                k += 1;
            }
        }
        Ok(())
    }

    /// A store of ST(0) converted by `conv` (FST, FIST, FBSTP and their popping forms):
    /// the masked stack-underflow response stores `indefinite`; an unmasked exception
    /// stores nothing (SDM Vol. 1 §8.5).
    fn x87_store<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        i: &Instr,
        pop: bool,
        indefinite: [u8; N],
        conv: impl FnOnce(F80, &Fpu, &mut Flags) -> [u8; N],
    ) -> Res<()> {
        let (seg, off) = (i.mem_seg(), self.ea(i));
        let Some(v) = self.fpu.get(0) else {
            if self.fpu.cw & float80::IE as u16 != 0 {
                self.x87_write(bus, seg, off, &indefinite)?;
            }
            if self.fpu.underflow() && pop {
                self.fpu.pop();
            }
            return Ok(());
        };
        let mut fl = Flags::default();
        let bytes = conv(v, &self.fpu, &mut fl);
        if !self.fpu.suppresses(fl, true) {
            self.x87_write(bus, seg, off, &bytes)?;
        }
        if self.fpu.signal(fl, true) && pop {
            self.fpu.pop();
        }
        Ok(())
    }

    /// The linear addresses of the instruction and data pointers for the real-mode
    /// environment layouts (selector × 16 + offset).
    fn x87_lin_pointers(&self) -> (u32, u32) {
        let f = &self.fpu;
        (((f.fcs as u32) << 4).wrapping_add(f.fip), ((f.fds as u32) << 4).wrapping_add(f.fdp))
    }

    fn x87_mem<B: Bus>(&mut self, bus: &mut B, i: &Instr) -> Res<()> {
        let (seg, off) = (i.mem_seg(), self.ea(i));
        let reg = i.reg();
        match (i.opcode, reg) {
            // Arithmetic and compare with m32fp, m64fp, m32int, m16int (D8, DC, DA, DE).
            (0xd8 | 0xdc | 0xda | 0xde, _) => {
                let mut fl = Flags::default();
                let v = match i.opcode {
                    0xd8 => float80::from_f32(u32::from_le_bytes(self.x87_read(bus, seg, off)?), false, &mut fl),
                    0xdc => float80::from_f64(u64::from_le_bytes(self.x87_read(bus, seg, off)?), false, &mut fl),
                    0xda => F80::from_i64(i32::from_le_bytes(self.x87_read(bus, seg, off)?) as i64),
                    _ => F80::from_i64(i16::from_le_bytes(self.x87_read(bus, seg, off)?) as i64),
                };
                let src = Src::Val(v, fl);
                match reg {
                    2 | 3 => {
                        if let Some(c) = self.fpu.compare(src, false, (reg == 3) as usize) {
                            self.fpu.set_cmp_cc(c);
                        }
                    }
                    op => self.fpu.arith(op, 0, src, false),
                }
                Ok(())
            }
            // FLD m32fp, m64fp, m80fp; FILD m16, m32, m64; FBLD.
            (0xd9, 0) | (0xdd, 0) | (0xdb, 5) | (0xdf, 0) | (0xdb, 0) | (0xdf, 5) | (0xdf, 4) => {
                let mut fl = Flags::default();
                let v = match (i.opcode, reg) {
                    (0xd9, _) => float80::from_f32(u32::from_le_bytes(self.x87_read(bus, seg, off)?), true, &mut fl),
                    (0xdd, _) => float80::from_f64(u64::from_le_bytes(self.x87_read(bus, seg, off)?), true, &mut fl),
                    (0xdb, 5) => F80::from_bytes(&self.x87_read(bus, seg, off)?),
                    (0xdf, 0) => F80::from_i64(i16::from_le_bytes(self.x87_read(bus, seg, off)?) as i64),
                    (0xdb, _) => F80::from_i64(i32::from_le_bytes(self.x87_read(bus, seg, off)?) as i64),
                    (0xdf, 5) => F80::from_i64(i64::from_le_bytes(self.x87_read(bus, seg, off)?)),
                    _ => float80::from_bcd(&self.x87_read(bus, seg, off)?),
                };
                self.fpu.load(Some(v), fl);
                Ok(())
            }
            // FST/FSTP m32fp, m64fp; FSTP m80fp.
            (0xd9, 2 | 3) => self.x87_store(bus, i, reg == 3, 0xffc0_0000u32.to_le_bytes(), |v, f, fl| {
                float80::to_f32(v, f.env_ext(), fl).to_le_bytes()
            }),
            (0xdd, 2 | 3) => self.x87_store(bus, i, reg == 3, 0xfff8_0000_0000_0000u64.to_le_bytes(), |v, f, fl| {
                float80::to_f64(v, f.env_ext(), fl).to_le_bytes()
            }),
            (0xdb, 7) => self.x87_store(bus, i, true, F80::INDEFINITE.to_bytes(), |v, _, _| v.to_bytes()),
            // FIST/FISTP m16int, m32int; FISTP m64int; FBSTP.
            (0xdf, 2 | 3) => self.x87_store(bus, i, reg == 3, 0x8000u16.to_le_bytes(), |v, f, fl| {
                (float80::to_int(v, 16, f.env().rc, fl) as i16).to_le_bytes()
            }),
            (0xdb, 2 | 3) => self.x87_store(bus, i, reg == 3, 0x8000_0000u32.to_le_bytes(), |v, f, fl| {
                (float80::to_int(v, 32, f.env().rc, fl) as i32).to_le_bytes()
            }),
            (0xdf, 7) => self.x87_store(bus, i, true, (1u64 << 63).to_le_bytes(), |v, f, fl| {
                float80::to_int(v, 64, f.env().rc, fl).to_le_bytes()
            }),
            (0xdf, 6) => {
                self.x87_store(bus, i, true, float80::BCD_INDEFINITE, |v, f, fl| float80::to_bcd(v, f.env().rc, fl))
            }
            // FLDCW (SDM Vol. 2A "FLDCW").
            (0xd9, 5) => {
                let v = u16::from_le_bytes(self.x87_read(bus, seg, off)?);
                self.fpu.cw = (v & super::cw::WRITABLE) | super::cw::RESERVED1;
                self.fpu.update_es();
                Ok(())
            }
            // FNSTCW, FNSTSW m16.
            (0xd9, 7) => {
                let v = self.fpu.cw;
                self.x87_write(bus, seg, off, &v.to_le_bytes())
            }
            (0xdd, 7) => {
                let v = self.fpu.sw;
                self.x87_write(bus, seg, off, &v.to_le_bytes())
            }
            // FLDENV, FRSTOR.
            (0xd9, 4) | (0xdd, 4) => {
                let pm = self.pmode();
                let b: [u8; 108] = if reg == 4 && i.opcode == 0xd9 {
                    let mut b = [0u8; 108];
                    if i.op32 {
                        b[..28].copy_from_slice(&self.x87_read::<B, 28>(bus, seg, off)?);
                    } else {
                        b[..14].copy_from_slice(&self.x87_read::<B, 14>(bus, seg, off)?);
                    }
                    b
                } else if i.op32 {
                    self.x87_read::<B, 108>(bus, seg, off)?
                } else {
                    let mut b = [0u8; 108];
                    b[..94].copy_from_slice(&self.x87_read::<B, 94>(bus, seg, off)?);
                    b
                };
                if i.opcode == 0xd9 {
                    env::load_env(&mut self.fpu, pm, i.op32, &b);
                } else {
                    env::load_state(&mut self.fpu, pm, i.op32, &b);
                }
                Ok(())
            }
            // FNSTENV: then all exceptions are masked (SDM Vol. 2A "FSTENV").
            (0xd9, 6) => {
                let (ip, dp) = self.x87_lin_pointers();
                let mut b = [0u8; 28];
                env::store_env(&self.fpu, self.pmode(), i.op32, ip, dp, &mut b);
                self.x87_write(bus, seg, off, &b[..env::env_len(i.op32)])?;
                self.fpu.cw |= super::cw::MASKS;
                self.fpu.update_es();
                Ok(())
            }
            // FNSAVE: then the FPU is initialized as by FNINIT (SDM Vol. 2A "FSAVE").
            (0xdd, 6) => {
                let (ip, dp) = self.x87_lin_pointers();
                let mut b = [0u8; 108];
                env::store_state(&self.fpu, self.pmode(), i.op32, ip, dp, &mut b);
                self.x87_write(bus, seg, off, &b[..env::save_len(i.op32)])?;
                self.fpu.init();
                Ok(())
            }
            _ => Err(Exception::UD.into()),
        }
    }

    fn x87_reg(&mut self, i: &Instr) {
        let r = i.rm() as usize;
        let f = &mut self.fpu;
        match (i.opcode, i.reg()) {
            // FCOM, FCOMP (D8 D0/D8, and the DC D0/D8, DE D0 aliases); FCOMPP (DE D9).
            (0xd8 | 0xdc, 2) => {
                if let Some(c) = f.compare(Src::St(r), false, 0) {
                    f.set_cmp_cc(c);
                }
            }
            (0xd8 | 0xdc, 3) | (0xde, 2) => {
                if let Some(c) = f.compare(Src::St(r), false, 1) {
                    f.set_cmp_cc(c);
                }
            }
            (0xde, 3) => {
                if let Some(c) = f.compare(Src::St(1), false, 2) {
                    f.set_cmp_cc(c);
                }
            }
            // FADD FMUL FSUB FSUBR FDIV FDIVR ST(0), ST(i).
            (0xd8, op) => f.arith(op, 0, Src::St(r), false),
            // … ST(i), ST(0), and popping: the SUB/SUBR and DIV/DIVR rows are swapped
            // (DC E0+i is FSUBR ST(i),ST(0), DC E8+i FSUB: SDM Vol. 2A "FSUB", "FSUBR").
            (0xdc, op) => f.arith(if op >= 4 { op ^ 1 } else { op }, r, Src::St(0), false),
            (0xde, op) => f.arith(if op >= 4 { op ^ 1 } else { op }, r, Src::St(0), true),
            // FLD ST(i), FXCH (and the DD C8, DF C8 aliases), FNOP.
            (0xd9, 0) => {
                let v = f.get(r);
                f.load(v, Flags::default());
            }
            (0xd9, 1) | (0xdd, 1) | (0xdf, 1) => f.fxch(r),
            (0xd9, 2) => {}
            // FST, FSTP ST(i) (and the D9 D8, DF D0, DF D8 aliases).
            (0xdd, 2) => f.fst_reg(r, false),
            (0xdd, 3) | (0xd9, 3) | (0xdf, 2) | (0xdf, 3) => f.fst_reg(r, true),
            (0xd9, 4) => match r {
                0 => f.unary(|x, _| -x),
                1 => f.unary(|x, _| x.abs()),
                4 => {
                    let zero = Src::Val(F80::ZERO, Flags::default());
                    if let Some(c) = f.compare(zero, false, 0) {
                        f.set_cmp_cc(c);
                    }
                }
                _ => f.fxam(),
            },
            (0xd9, 5) => f.load_const(r as u8),
            (0xd9, 6) => match r {
                0 => {
                    let env = f.env_ext();
                    f.unary(|x, fl| transcend::f2xm1(x, env, fl));
                }
                1 => {
                    let env = f.env_ext();
                    f.binary_pop(|x, y, fl| transcend::fyl2x(x, y, env, fl));
                }
                2 => f.trig(transcend::fptan, true),
                3 => f.binary_pop(|x, y, fl| transcend::fpatan(y, x, fl)),
                4 => f.fxtract(),
                5 => f.fprem(true),
                6 => {
                    f.rotate(7);
                    f.set_c1(false);
                }
                _ => {
                    f.rotate(1);
                    f.set_c1(false);
                }
            },
            (0xd9, _) => match r {
                0 => f.fprem(false),
                1 => {
                    let env = f.env_ext();
                    f.binary_pop(|x, y, fl| transcend::fyl2xp1(x, y, env, fl));
                }
                2 => {
                    let env = f.env();
                    f.unary(|x, fl| float80::sqrt(x, env, fl));
                }
                3 => f.fsincos(),
                4 => {
                    let env = f.env_ext();
                    f.unary(|x, fl| float80::round_to_int(x, env, fl));
                }
                5 => {
                    let env = f.env_ext();
                    match f.get(1) {
                        Some(y) => f.unary(|x, fl| float80::scale(x, y, env, fl)),
                        None => {
                            if f.underflow() {
                                f.set_st(0, F80::INDEFINITE);
                            }
                        }
                    }
                }
                6 => f.trig(transcend::fsin, false),
                _ => f.trig(transcend::fcos, false),
            },
            // FCMOVcc (P6: SDM Vol. 2A "FCMOVcc"): B E BE U, and NB NE NBE NU.
            (0xda | 0xdb, cc @ 0..=3) => {
                let fl = &self.flags;
                let c = match cc {
                    0 => fl.cf(),
                    1 => fl.zf(),
                    2 => fl.cf() || fl.zf(),
                    _ => fl.pf(),
                };
                let c = c ^ (i.opcode == 0xdb);
                self.fpu.fcmov(r, c);
            }
            // FUCOMPP.
            (0xda, _) => {
                if let Some(c) = f.compare(Src::St(1), true, 2) {
                    f.set_cmp_cc(c);
                }
            }
            // FNCLEX, FNINIT; FNENI, FNDISI, FNSETPM do nothing.
            (0xdb, 4) => match r {
                2 => {
                    f.sw &= !(0x3f | sw::SF | sw::ES | sw::B);
                }
                3 => f.init(),
                _ => {}
            },
            // FUCOMI, FCOMI; FUCOMIP, FCOMIP.
            (0xdb | 0xdf, 5 | 6) => {
                let quiet = i.reg() == 5;
                let pops = (i.opcode == 0xdf) as usize;
                // ZF PF CF as the FCOMI table of SDM Vol. 2A (left alone when an unmasked
                // exception stops the instruction); OF SF AF cleared in any case.
                let bits = match f.compare(Src::St(r), quiet, pops) {
                    Some(Cmp::Greater) => 0,
                    Some(Cmp::Less) => flags::CF,
                    Some(Cmp::Equal) => flags::ZF,
                    Some(Cmp::Unordered) => flags::ZF | flags::PF | flags::CF,
                    None => self.flags.get() & (flags::ZF | flags::PF | flags::CF),
                };
                self.flags.set_arith(bits);
            }
            // FFREE; FFREEP (alias).
            (0xdd, 0) => f.free(r),
            (0xdf, 0) => {
                f.free(r);
                f.pop();
            }
            // FUCOM, FUCOMP.
            (0xdd, 4 | 5) => {
                if let Some(c) = f.compare(Src::St(r), true, (i.reg() == 5) as usize) {
                    f.set_cmp_cc(c);
                }
            }
            // FNSTSW AX.
            (0xdf, 4) => {
                let v = f.sw;
                self.regs[EAX] = (self.regs[EAX] & 0xffff_0000) | v as u32;
            }
            _ => {}
        }
    }
}
