//! The x87 floating-point unit (SDM Vol. 1 ch. 8): its state, the register stack and the
//! exception bookkeeping shared by every instruction. What lives where:
//! - this file: [`Fpu`] (data registers, control/status/tag words, last-instruction and
//!   data pointers), stack access, stack overflow/underflow, recording exception flags
//!   with their masked or unmasked response, and the FERR#/IRQ13 line of the PC;
//! - `float80.rs`: the 80-bit arithmetic itself (a hand-written soft float; why no crate:
//!   see its module doc), conversions and comparisons;
//! - `transcend.rs`: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, FYL2X, FYL2XP1, F2XM1 (double
//!   precision accuracy, documented there);
//! - `exec.rs`: the instructions (D8–DF escapes, WAIT) on the [`Cpu`]: CR0.EM/TS/MP
//!   checks, pending-exception delivery, operand fetch and store;
//! - `env.rs`: the FNSTENV/FLDENV and FNSAVE/FRSTOR memory layouts;
//! - `tests.rs`: unit tests and small guest programs.
//!
//! Exceptions (SDM Vol. 1 §8.4–8.7): an operation reports its conditions as flags; each is
//! recorded in the status word. A masked condition gets the SDM's masked response (the
//! indefinite, a denormal, an infinity…) and execution goes on. An unmasked one also sets
//! ES (and B); for invalid, denormal and zero-divide the destination is left alone, for
//! overflow and underflow a register destination gets the exponent-biased result and a
//! memory destination nothing, precision keeps the result. The fault itself comes later,
//! before the next waiting x87 instruction or WAIT: #MF when CR0.NE = 1; with CR0.NE = 0
//! (MS-DOS compatibility, SDM Vol. 1 §8.7.2, Appendix D) the FPU asserts FERR#, which the
//! PC routes to IRQ13 — see [`Cpu::fpu_irq13_pending`].

pub(crate) mod env;
use serde::{Deserialize, Serialize};
mod exec;
pub mod float80;
mod transcend;

#[cfg(test)]
mod tests;

use super::{cr0, Cpu};
pub use float80::F80;
use float80::{Env, Flags, DE, IE, ZE};

/// Status word bits (SDM Vol. 1 §8.1.3, Figure 8-4). Bits 0–5 are the exception flags
/// (`float80::IE` … `float80::PE`).
pub mod sw {
    /// Stack fault (with IE: stack overflow or underflow; C1 tells which).
    pub const SF: u16 = 1 << 6;
    /// Exception summary: some unmasked exception flag is set.
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP: u16 = 7 << TOP_SHIFT;
    pub const C3: u16 = 1 << 14;
    /// Busy: mirrors ES since the 387 (§8.1.3).
    pub const B: u16 = 1 << 15;
    /// The condition codes.
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// Control word fields (SDM Vol. 1 §8.1.5, Figure 8-6). Bits 0–5 are the exception masks.
pub mod cw {
    pub const MASKS: u16 = 0x3f;
    /// Precision control, bits 8–9.
    pub const PC: u16 = 3 << 8;
    /// Rounding control, bits 10–11.
    pub const RC: u16 = 3 << 10;
    /// Infinity control (bit 12): kept for the 287's sake, without effect.
    pub const X: u16 = 1 << 12;
    /// Bit 6 is reserved and reads as 1 (the power-up value 0040H, SDM Vol. 3A Table 9-1).
    pub const RESERVED1: u16 = 1 << 6;
    /// The bits a load keeps; 13–15 are reserved and read as 0.
    pub const WRITABLE: u16 = MASKS | PC | RC | X;
}

/// Tag value of an empty register (SDM Vol. 1 §8.1.7).
const TAG_EMPTY: u16 = 3;

/// The x87 state (SDM Vol. 1 §8.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fpu {
    /// The physical data registers R0–R7; ST(i) is R((TOP + i) mod 8).
    pub regs: [F80; 8],
    /// Control word.
    pub cw: u16,
    /// Status word, TOP included.
    pub sw: u16,
    /// Tag word, two bits per physical register (§8.1.7). Non-empty tags always match
    /// the register's contents: they are computed whenever a register is written.
    pub tw: u16,
    /// Last instruction pointer: CS selector and EIP offset of the last non-control x87
    /// instruction, prefixes included (SDM Vol. 1 §8.1.8; Vol. 3A, "Architecture
    /// Compatibility", "CS and EIP For FPU Exceptions").
    pub fcs: u16,
    pub fip: u32,
    /// Last opcode: the low 3 bits of the first opcode byte and the ModR/M byte (§8.1.9).
    pub fop: u16,
    /// Last data pointer: segment selector and offset of its memory operand (§8.1.8).
    pub fds: u16,
    pub fdp: u32,
    /// IGNNE#: the platform has acknowledged FERR# (PC port F0h). Cleared by the next
    /// unmasked exception.
    pub ignne: bool,
}

impl Default for Fpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Fpu {
    /// The state after power-up or RESET (SDM Vol. 3A §9.1.1, Table 9-1: control word
    /// 0040H, status 0, tag word 5555H, registers +0.0, pointers 0). INIT leaves it alone.
    pub fn new() -> Self {
        Fpu {
            regs: [F80::ZERO; 8],
            cw: 0x0040,
            sw: 0,
            tw: 0x5555,
            fcs: 0,
            fip: 0,
            fop: 0,
            fds: 0,
            fdp: 0,
            ignne: false,
        }
    }

    /// FNINIT (SDM Vol. 2A "FINIT/FNINIT" operation): control word 037FH (all exceptions
    /// masked, 64-bit precision, round to nearest), status 0, all registers empty,
    /// pointers and opcode 0. Register contents are left as they are.
    pub fn init(&mut self) {
        self.cw = 0x037f;
        self.sw = 0;
        self.tw = 0xffff;
        self.fcs = 0;
        self.fip = 0;
        self.fop = 0;
        self.fds = 0;
        self.fdp = 0;
        self.ignne = false;
    }

    #[inline]
    pub fn top(&self) -> usize {
        ((self.sw & sw::TOP) >> sw::TOP_SHIFT) as usize
    }
    fn set_top(&mut self, t: usize) {
        self.sw = (self.sw & !sw::TOP) | ((t as u16 & 7) << sw::TOP_SHIFT);
    }
    /// The physical register of ST(i).
    #[inline]
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }
    pub fn tag(&self, p: usize) -> u16 {
        (self.tw >> (2 * p)) & 3
    }
    fn set_tag(&mut self, p: usize, t: u16) {
        self.tw = (self.tw & !(3 << (2 * p))) | (t << (2 * p));
    }
    pub fn is_empty(&self, i: usize) -> bool {
        self.tag(self.phys(i)) == TAG_EMPTY
    }
    /// ST(i), whatever its tag.
    pub fn st(&self, i: usize) -> F80 {
        self.regs[self.phys(i)]
    }
    /// ST(i) unless it is empty.
    pub fn get(&self, i: usize) -> Option<F80> {
        (!self.is_empty(i)).then(|| self.st(i))
    }
    /// Write ST(i), tagging it by its contents.
    pub fn set_st(&mut self, i: usize, v: F80) {
        let p = self.phys(i);
        self.regs[p] = v;
        self.set_tag(p, v.tag());
    }
    /// Push without checks (callers check for overflow first).
    pub fn push(&mut self, v: F80) {
        self.set_top(self.top().wrapping_sub(1));
        self.set_st(0, v);
    }
    /// Pop: ST(0) becomes empty, TOP moves up.
    pub fn pop(&mut self) {
        let p = self.phys(0);
        self.set_tag(p, TAG_EMPTY);
        self.set_top(self.top() + 1);
    }
    /// Mark ST(i) empty (FFREE).
    pub fn free(&mut self, i: usize) {
        let p = self.phys(i);
        self.set_tag(p, TAG_EMPTY);
    }
    /// Move TOP by `delta` (FINCSTP, FDECSTP): tags and contents stay.
    pub fn rotate(&mut self, delta: usize) {
        self.set_top(self.top().wrapping_add(delta));
    }

    /// The rounding environment with precision control (FADD, FSUB, FMUL, FDIV, FSQRT
    /// and their forms: SDM Vol. 1 §8.1.5.2).
    pub fn env(&self) -> Env {
        Env::from_cw(self.cw)
    }
    /// The same without precision control (every other instruction).
    pub fn env_ext(&self) -> Env {
        self.env().ext()
    }

    pub fn set_cc(&mut self, c0: bool, c1: bool, c2: bool, c3: bool) {
        let bit = |on: bool, m: u16| if on { m } else { 0 };
        self.sw = (self.sw & !sw::CC) | bit(c0, sw::C0) | bit(c1, sw::C1) | bit(c2, sw::C2) | bit(c3, sw::C3);
    }
    pub fn set_c1(&mut self, on: bool) {
        self.sw = (self.sw & !sw::C1) | if on { sw::C1 } else { 0 };
    }
    pub fn set_c2(&mut self, on: bool) {
        self.sw = (self.sw & !sw::C2) | if on { sw::C2 } else { 0 };
    }

    /// Recompute ES and B from the flags and masks: after FLDCW, FLDENV, FRSTOR an
    /// exception flag left set and now unmasked is delivered at the next waiting
    /// instruction (SDM Vol. 2A "FLDCW").
    pub fn update_es(&mut self) {
        if self.sw & !self.cw & cw::MASKS != 0 {
            if self.sw & sw::ES == 0 {
                self.ignne = false;
            }
            self.sw |= sw::ES | sw::B;
        } else {
            self.sw &= !(sw::ES | sw::B);
        }
    }

    /// Whether recording `fl` would suppress the result: an unmasked invalid, denormal or
    /// zero-divide (SDM Vol. 1 §8.5), and for a memory destination also an unmasked
    /// overflow or underflow (§8.5.4, §8.5.5).
    pub fn suppresses(&self, fl: Flags, store: bool) -> bool {
        let unmasked = fl.exc & !(self.cw as u8) & 0x3f;
        let fatal = IE | DE | ZE | if store { float80::OE | float80::UE } else { 0 };
        unmasked & fatal != 0
    }

    /// Record an operation's flags in the status word: the exception flags, ES and B when
    /// one is unmasked, C1 as the round-up bit of an inexact result (else 0). Returns
    /// whether the result is to be delivered (see [`Fpu::suppresses`]).
    pub fn signal(&mut self, fl: Flags, store: bool) -> bool {
        let exc = fl.exc & 0x3f;
        self.sw |= exc as u16;
        self.set_c1(exc & float80::PE != 0 && fl.up);
        self.update_es();
        !self.suppresses(fl, store)
    }

    /// Stack underflow (SDM Vol. 1 §8.5.1.1): IE and SF set, C1 cleared. Returns whether
    /// it is masked, i.e. whether the caller delivers the masked response (the indefinite).
    pub fn underflow(&mut self) -> bool {
        self.stack_fault(false)
    }
    /// Stack overflow: as [`Fpu::underflow`] with C1 set.
    pub fn overflow(&mut self) -> bool {
        self.stack_fault(true)
    }
    fn stack_fault(&mut self, over: bool) -> bool {
        self.sw |= IE as u16 | sw::SF;
        self.set_c1(over);
        self.update_es();
        self.cw & IE as u16 != 0
    }

    /// Push `v` after the overflow check: the register that becomes ST(0) must be empty.
    /// `fl` are the flags of computing `v`.
    pub fn push_checked(&mut self, v: F80, fl: Flags) {
        if !self.is_empty(7) {
            if self.overflow() {
                self.push(F80::INDEFINITE);
            }
            return;
        }
        if self.signal(fl, false) {
            self.push(v);
        }
    }
}

impl Cpu {
    /// FERR# as the PC routes it to IRQ13 (SDM Vol. 1 §8.7.2 and Appendix D.2: MS-DOS
    /// compatibility mode). True while CR0.NE = 0 and an unmasked x87 exception is pending
    /// (ES set), until the platform acknowledges it with [`Cpu::fpu_ack_irq13`]. The
    /// machine raises IRQ13 while it is true (polled between run slices; an x87
    /// instruction that makes it true ends the slice, so IRQ13 is taken before the next
    /// instruction when IF and the 8259As allow).
    ///
    /// Simplification: a real processor in this mode stops at the next waiting x87
    /// instruction until the IRQ13 handler has dealt with the exception; here that
    /// instruction runs on as if IGNNE# were asserted (only when IRQ13 could not be
    /// taken first: interrupts disabled or IRQ13 masked).
    pub fn fpu_irq13_pending(&self) -> bool {
        self.cr0 & cr0::NE == 0 && self.fpu.sw & sw::ES != 0 && !self.fpu.ignne
    }

    /// The PC's write to port F0h: clears the FERR# latch and asserts IGNNE#, so
    /// [`Cpu::fpu_irq13_pending`] stays false until the next unmasked exception.
    pub fn fpu_ack_irq13(&mut self) {
        self.fpu.ignne = true;
    }
}
