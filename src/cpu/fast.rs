//! Specialised handlers for the most frequent instruction shapes, chosen once when a block
//! is built ([`select`]) instead of being rediscovered from the opcode, operand size and
//! ModR/M on every run. A block holds [`Op`]s: the decoded instruction plus the handler and
//! its register operands. Every shape not listed here runs through the general executor
//! (`exec/`), so this file changes speed only, never behaviour; the differential and
//! per-instruction tests run through both paths.
//!
//! The shapes are the 32-bit forms compilers emit most (register and immediate ALU
//! operations, INC/DEC, MOV between registers, immediates and memory, LEA, PUSH/POP).
//! measured (callgrind, host instructions per guest instruction, `v386-bench` register /
//! paged memory loop): 89 / 112 through the general executor, 45 / 68 with these handlers
//! and the block-loop changes of `block.rs` (whose module doc has the steps, and the later
//! ones: 38.5 / 57.1 → 28.2 / 47.7 by another method).

use super::decode::{Instr, Rep, NO_REG};
use super::exec::AluOp;
use super::{Cpu, Fault, Res};
use crate::bus::Bus;

/// Which handler runs an [`Op`]. `u8`-sized so the dispatch is one jump table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Fast {
    /// The general executor.
    Generic,
    /// `op r32, r32`: `d` is the destination, `s` the source.
    AddRR,
    OrRR,
    AdcRR,
    SbbRR,
    AndRR,
    SubRR,
    XorRR,
    CmpRR,
    /// `op r32, imm`: `d` is the destination, the immediate is `instr.imm`.
    AddRI,
    OrRI,
    AdcRI,
    SbbRI,
    AndRI,
    SubRI,
    XorRI,
    CmpRI,
    /// `TEST r32, r32`.
    TestRR,
    /// `INC r32`, `DEC r32`.
    IncR,
    DecR,
    /// `MOV r32, r32` (`d` ← `s`), `MOV r32, imm32`.
    MovRR,
    MovRI,
    /// `MOV r32, [mem]` and `MOV [mem], r32` (`d`/`s` the register).
    Load,
    Store,
    /// `op r32, [mem]` (`d` the register; CMP included).
    AddRM,
    SubRM,
    CmpRM,
    /// `LEA r32, [mem]` with a 32-bit address.
    Lea,
    /// `PUSH r32`, `POP r32`.
    PushR,
    PopR,
    /// `Jcc rel` with a 32-bit operand size, one handler per condition code (SDM Vol. 1
    /// Table B-1 order) so each reads only the flags it needs.
    Jo,
    Jno,
    Jb,
    Jnb,
    Jz,
    Jnz,
    Jbe,
    Ja,
    Js,
    Jns,
    Jp,
    Jnp,
    Jl,
    Jge,
    Jle,
    Jg,
    /// `JMP rel`, `CALL rel`, `RET` with 32-bit operand size.
    JmpRel,
    CallRel,
    Ret,
}

/// The Jcc handlers in condition-code order.
const JCC: [Fast; 16] = [
    Fast::Jo,
    Fast::Jno,
    Fast::Jb,
    Fast::Jnb,
    Fast::Jz,
    Fast::Jnz,
    Fast::Jbe,
    Fast::Ja,
    Fast::Js,
    Fast::Jns,
    Fast::Jp,
    Fast::Jnp,
    Fast::Jl,
    Fast::Jge,
    Fast::Jle,
    Fast::Jg,
];

/// A decoded instruction ready to run: what a block holds.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub instr: Instr,
    pub(crate) fast: Fast,
    /// Destination and source register numbers of the specialised shapes, always below 8:
    /// the handlers index `regs` with `& 7`, one AND in place of a bounds test and branch.
    /// measured (callgrind, register / memory loop): 38.5 / 57.1 → 37.3 / 55.9 host
    /// instructions per guest instruction.
    pub(crate) d: u8,
    pub(crate) s: u8,
    /// Position in its block, so a faulting op tells the block loop where it stood
    /// without the loop counting ops.
    pub(crate) idx: u8,
    /// Offset of the instruction's first byte from the block's start (faults restore EIP
    /// from it, so the block loop does not keep EIP up to date instruction by instruction).
    pub(crate) start: u16,
}

/// The ALU operation of an opcode-map row (00, 08, … 38) or group-1 `reg` field.
const ALU_ROWS: [AluOp; 8] =
    [AluOp::Add, AluOp::Or, AluOp::Adc, AluOp::Sbb, AluOp::And, AluOp::Sub, AluOp::Xor, AluOp::Cmp];

fn alu_rr(op: AluOp) -> Fast {
    [Fast::AddRR, Fast::OrRR, Fast::AdcRR, Fast::SbbRR, Fast::AndRR, Fast::SubRR, Fast::XorRR, Fast::CmpRR][op as usize]
}

fn alu_ri(op: AluOp) -> Fast {
    [Fast::AddRI, Fast::OrRI, Fast::AdcRI, Fast::SbbRI, Fast::AndRI, Fast::SubRI, Fast::XorRI, Fast::CmpRI][op as usize]
}

/// Choose the handler for `i` (at block-build time). Only 32-bit operand shapes without
/// REP or LOCK are specialised; anything else is [`Fast::Generic`].
pub(crate) fn select(i: &Instr, start: u16, idx: u8) -> Op {
    let mut op = Op { instr: *i, fast: Fast::Generic, d: 0, s: 0, idx, start };
    if !i.op32 || i.lock || i.rep != Rep::None {
        return op;
    }
    let (reg, rm) = (i.reg(), i.rm());
    let (fast, d, s) = match i.opcode {
        // ALU rows: Ev,Gv (form 1) and Gv,Ev (form 3) register forms; eAX,Iz (form 5).
        o @ 0x00..=0x3f if o & 7 == 1 && !i.is_mem => (alu_rr(ALU_ROWS[(o >> 3) as usize]), rm, reg),
        o @ 0x00..=0x3f if o & 7 == 3 && !i.is_mem => (alu_rr(ALU_ROWS[(o >> 3) as usize]), reg, rm),
        o @ 0x00..=0x3f if o & 7 == 5 => (alu_ri(ALU_ROWS[(o >> 3) as usize]), 0, 0),
        0x03 if plain_mem(i) => (Fast::AddRM, reg, 0),
        0x2b if plain_mem(i) => (Fast::SubRM, reg, 0),
        0x3b if plain_mem(i) => (Fast::CmpRM, reg, 0),
        0x81 | 0x83 if !i.is_mem => (alu_ri(ALU_ROWS[reg as usize]), rm, 0),
        0x85 if !i.is_mem => (Fast::TestRR, rm, reg),
        o @ 0x40..=0x47 => (Fast::IncR, (o & 7) as u8, 0),
        o @ 0x48..=0x4f => (Fast::DecR, (o & 7) as u8, 0),
        o @ 0x50..=0x57 => (Fast::PushR, 0, (o & 7) as u8),
        o @ 0x58..=0x5f => (Fast::PopR, (o & 7) as u8, 0),
        0x89 if !i.is_mem => (Fast::MovRR, rm, reg),
        0x8b if !i.is_mem => (Fast::MovRR, reg, rm),
        0x89 if plain_mem(i) => (Fast::Store, 0, reg),
        0x8b if plain_mem(i) => (Fast::Load, reg, 0),
        0x8d if i.is_mem && i.ad32 => (Fast::Lea, reg, 0),
        o @ 0xb8..=0xbf => (Fast::MovRI, (o & 7) as u8, 0),
        o @ (0x70..=0x7f | 0x180..=0x18f) => (JCC[(o & 0xf) as usize], 0, 0),
        0xe9 | 0xeb => (Fast::JmpRel, 0, 0),
        0xe8 => (Fast::CallRel, 0, 0),
        0xc3 => (Fast::Ret, 0, 0),
        _ => return op,
    };
    op.fast = fast;
    op.d = d;
    op.s = s;
    op
}

/// A memory operand with a 32-bit address (the handlers compute it with [`Cpu::ea32`]).
fn plain_mem(i: &Instr) -> bool {
    i.is_mem && i.ad32
}

impl Cpu {
    /// A 32-bit effective address (SDM Vol. 2A §2.1.5).
    #[inline(always)]
    fn ea32(&self, i: &Instr) -> u32 {
        let mut a = i.disp;
        if i.base != NO_REG {
            a = a.wrapping_add(self.regs[(i.base & 7) as usize]);
        }
        if i.index != NO_REG {
            a = a.wrapping_add(self.regs[(i.index & 7) as usize] << i.scale);
        }
        a
    }

    #[inline(always)]
    fn alu_rr(&mut self, op: &Op, aop: AluOp) {
        let d = self.regs[(op.d & 7) as usize];
        let s = self.regs[(op.s & 7) as usize];
        if let Some(r) = self.alu(aop, 32, d, s) {
            self.regs[(op.d & 7) as usize] = r;
        }
    }

    #[inline(always)]
    fn alu_ri(&mut self, op: &Op, aop: AluOp) {
        let d = self.regs[(op.d & 7) as usize];
        if let Some(r) = self.alu(aop, 32, d, op.instr.imm) {
            self.regs[(op.d & 7) as usize] = r;
        }
    }

    #[inline(always)]
    fn alu_rm<B: Bus>(&mut self, bus: &mut B, op: &Op, aop: AluOp) -> Res<()> {
        let i = &op.instr;
        let s = self.rd32(bus, i.mem_seg(), self.ea32(i))?;
        let d = self.regs[(op.d & 7) as usize];
        if let Some(r) = self.alu(aop, 32, d, s) {
            self.regs[(op.d & 7) as usize] = r;
        }
        self.end_if_broken()
    }

    /// After an op that touched memory: [`Fault::Break`] if the block must end here (a
    /// write hit cached code, or MMIO ran). Register-only ops skip the test.
    #[inline(always)]
    fn end_if_broken(&self) -> Res<()> {
        if self.break_block {
            Err(Fault::Break)
        } else {
            Ok(())
        }
    }

    /// Jcc with the condition `cc` constant. EIP already points past the instruction.
    #[inline(always)]
    fn jcc_rel(&mut self, op: &Op, cc: u8) -> Res<()> {
        if self.flags.cond(cc) {
            return self.jump_abs(self.eip.wrapping_add(op.instr.imm), true);
        }
        Ok(())
    }

    /// Run one op of a block. EIP is not maintained here (see `block.rs`); only the
    /// general executor may read it, and the block loop sets it before a block's last op.
    /// An op that touched memory ends with [`Cpu::end_if_broken`].
    #[inline(always)]
    pub(crate) fn run_op<B: Bus>(&mut self, bus: &mut B, op: &Op) -> Res<()> {
        match op.fast {
            Fast::Generic => {
                self.execute_outlined(bus, &op.instr)?;
                return self.end_if_broken();
            }
            Fast::AddRR => self.alu_rr(op, AluOp::Add),
            Fast::OrRR => self.alu_rr(op, AluOp::Or),
            Fast::AdcRR => self.alu_rr(op, AluOp::Adc),
            Fast::SbbRR => self.alu_rr(op, AluOp::Sbb),
            Fast::AndRR => self.alu_rr(op, AluOp::And),
            Fast::SubRR => self.alu_rr(op, AluOp::Sub),
            Fast::XorRR => self.alu_rr(op, AluOp::Xor),
            Fast::CmpRR => self.alu_rr(op, AluOp::Cmp),
            Fast::AddRI => self.alu_ri(op, AluOp::Add),
            Fast::OrRI => self.alu_ri(op, AluOp::Or),
            Fast::AdcRI => self.alu_ri(op, AluOp::Adc),
            Fast::SbbRI => self.alu_ri(op, AluOp::Sbb),
            Fast::AndRI => self.alu_ri(op, AluOp::And),
            Fast::SubRI => self.alu_ri(op, AluOp::Sub),
            Fast::XorRI => self.alu_ri(op, AluOp::Xor),
            Fast::CmpRI => self.alu_ri(op, AluOp::Cmp),
            Fast::TestRR => {
                let (d, s) = (self.regs[(op.d & 7) as usize], self.regs[(op.s & 7) as usize]);
                self.alu(AluOp::And, 32, d, s);
            }
            Fast::IncR => {
                let r = self.inc_dec(true, 32, self.regs[(op.d & 7) as usize]);
                self.regs[(op.d & 7) as usize] = r;
            }
            Fast::DecR => {
                let r = self.inc_dec(false, 32, self.regs[(op.d & 7) as usize]);
                self.regs[(op.d & 7) as usize] = r;
            }
            Fast::MovRR => self.regs[(op.d & 7) as usize] = self.regs[(op.s & 7) as usize],
            Fast::MovRI => self.regs[(op.d & 7) as usize] = op.instr.imm,
            Fast::Load => {
                let i = &op.instr;
                self.regs[(op.d & 7) as usize] = self.rd32(bus, i.mem_seg(), self.ea32(i))?;
                return self.end_if_broken();
            }
            Fast::Store => {
                let i = &op.instr;
                self.wr32(bus, i.mem_seg(), self.ea32(i), self.regs[(op.s & 7) as usize])?;
                return self.end_if_broken();
            }
            Fast::AddRM => return self.alu_rm(bus, op, AluOp::Add),
            Fast::SubRM => return self.alu_rm(bus, op, AluOp::Sub),
            Fast::CmpRM => return self.alu_rm(bus, op, AluOp::Cmp),
            Fast::Lea => self.regs[(op.d & 7) as usize] = self.ea32(&op.instr),
            Fast::PushR => {
                self.push(bus, self.regs[(op.s & 7) as usize], true)?;
                return self.end_if_broken();
            }
            Fast::PopR => {
                let v = self.pop(bus, true)?;
                self.regs[(op.d & 7) as usize] = v;
                return self.end_if_broken();
            }
            Fast::Jo => return self.jcc_rel(op, 0),
            Fast::Jno => return self.jcc_rel(op, 1),
            Fast::Jb => return self.jcc_rel(op, 2),
            Fast::Jnb => return self.jcc_rel(op, 3),
            Fast::Jz => return self.jcc_rel(op, 4),
            Fast::Jnz => return self.jcc_rel(op, 5),
            Fast::Jbe => return self.jcc_rel(op, 6),
            Fast::Ja => return self.jcc_rel(op, 7),
            Fast::Js => return self.jcc_rel(op, 8),
            Fast::Jns => return self.jcc_rel(op, 9),
            Fast::Jp => return self.jcc_rel(op, 10),
            Fast::Jnp => return self.jcc_rel(op, 11),
            Fast::Jl => return self.jcc_rel(op, 12),
            Fast::Jge => return self.jcc_rel(op, 13),
            Fast::Jle => return self.jcc_rel(op, 14),
            Fast::Jg => return self.jcc_rel(op, 15),
            Fast::JmpRel => return self.jump_abs(self.eip.wrapping_add(op.instr.imm), true),
            Fast::CallRel => {
                self.call_rel(bus, &op.instr)?;
                return self.end_if_broken();
            }
            Fast::Ret => {
                self.ret_near(bus, &op.instr)?;
                return self.end_if_broken();
            }
        }
        Ok(())
    }
}
