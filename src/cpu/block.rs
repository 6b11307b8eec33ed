//! Basic-block execution: the interpreter's fast path.
//!
//! A block ([`super::icache::Block`]) is decoded once and then run in a tight loop: one TLB
//! and cache look-up, one CS-limit check and one interrupt/TF/budget check per block rather
//! than per instruction. Every instruction but a block's last is "simple" ([`simple`]): it
//! can change registers, arithmetic flags, DF and memory, and it can fault, but it cannot
//! branch, change CS, the mode, IF or TF, do port I/O or inhibit interrupts. So between
//! two instructions of a block no interrupt can become deliverable and no single-step
//! trap can be due, and running the block is the same as stepping it.
//!
//! Two things a simple instruction can do end the block early (through
//! [`Cpu::break_block`]): a write to a page holding cached code (self-modifying code; the
//! next look-up sees the page's new generation and re-decodes) and an MMIO access (a
//! device may now raise an interrupt).
//!
//! Inside a block EIP is not updated instruction by instruction: each [`Op`] records its
//! offset from the block's start, so a fault restores EIP from it, and EIP is set once,
//! before the block's last instruction (the only one that may read it). Retired
//! instructions are counted once per block too.
//!
//! Chaining: when a block ends in a jump, call, return or simple instruction
//! ([`Block::chain`]) and the next EIP lies in the same page, the next block is looked up
//! by physical address right here, without the run loop's checks: none of those
//! instructions can change what the run loop checks (TF, IF, the interrupt-inhibit
//! shadow, CS, paging), and device state changes only through port I/O or MMIO, which end
//! the chain. The budget is still checked block by block.
//!
//! measured (callgrind, host instructions per guest instruction, register loop / paged
//! memory loop of `v386-bench`): 204 / 230 stepping through the per-instruction cache,
//! 106 / 131 with blocks, 89 / 112 with the jump-table ALU; then 67 / 87 with EIP and the
//! retired count kept per block, [`fast`] handlers and chaining; 54 / 76 with the jumps in
//! `fast` too and the last op run apart; 45 / 68 with [`Fault::Break`] in place of a
//! per-op flag test and the self-loop shortcut. Wall clock on this 2-core machine (other
//! jobs running): 164 / 130 → 282 / 237 M guest instructions/s.
//!
//! Later steps, measured by differencing two callgrind runs of `v386-bench N register` /
//! `memory` (N = 1 M and 4 M: the bare and the V386 runs together, so the figures read
//! lower than the ones above for the same code): 38.5 / 57.1, then 37.3 / 55.9 with
//! register numbers masked rather than bounds-checked, 35.5 / 53.3 with the op loop
//! iterating without a counter ([`Op`] carries its index), 29.8 / 48.1 with a block that
//! jumps to its own start rerun in an inner loop that keeps its set-up, 28.2 / 47.7 with
//! lazy flags storing fewer operands (`flags.rs`).

use super::decode::{self, Instr, SliceFetch};
use super::fast::{self, Op};
use super::icache::{Block, MAX_BLOCK};
use super::mmu::exec_bit;
use super::{Cpu, Fault, Res, CS};
use crate::bus::Bus;
use alloc::vec::Vec;

/// Whether `i` may stand anywhere in a block but its end (see the module comment).
fn simple(i: &Instr) -> bool {
    match i.opcode {
        // ALU forms; 06/07/0E/16/17/1E/1F are PUSH/POP sreg and 27/2F/37/3F BCD adjusts.
        op @ 0x00..=0x3f => op & 7 < 6,
        // INC, DEC, PUSH, POP reg; PUSH imm, IMUL imm.
        0x40..=0x5f | 0x68..=0x6b => true,
        // Group 1, TEST, XCHG, MOV r/m, LEA, POP r/m (not MOV Sreg: 8C, 8E).
        0x80..=0x8b | 0x8d | 0x8f => true,
        // NOP, XCHG eAX, CBW, CWD; MOV moffs; TEST imm; MOV reg, imm.
        0x90..=0x99 | 0xa0..=0xa3 | 0xa8 | 0xa9 | 0xb0..=0xbf => true,
        // Shifts, MOV r/m imm.
        0xc0 | 0xc1 | 0xc6 | 0xc7 | 0xd0..=0xd3 => true,
        // CMC, group 3, CLC, STC, CLD, STD.
        0xf5 | 0xf6 | 0xf7 | 0xf8 | 0xf9 | 0xfc | 0xfd => true,
        // Group 4 (INC/DEC r/m8); group 5 only INC, DEC and PUSH (not CALL/JMP).
        0xfe => true,
        0xff => matches!(i.reg(), 0 | 1 | 6),
        // CMOVcc, SETcc, BT*, SHLD/SHRD, IMUL, CMPXCHG, MOVZX/MOVSX, BSF/BSR, XADD, BSWAP.
        0x140..=0x14f | 0x190..=0x19f => true,
        0x1a3 | 0x1a4 | 0x1a5 | 0x1ab | 0x1ac | 0x1ad | 0x1af | 0x1b0 | 0x1b1 | 0x1b3 => true,
        0x1b6 | 0x1b7 | 0x1ba | 0x1bb | 0x1bc | 0x1bd | 0x1be | 0x1bf | 0x1c0 | 0x1c1 => true,
        0x1c8..=0x1cf => true,
        _ => false,
    }
}

/// Whether a block ending in `i` may chain to the next (see the module comment): near
/// jumps, calls and returns with relative or stack targets, LOOP/JCXZ, or a simple
/// instruction (the block was cut at its size limit).
fn chains(i: &Instr) -> bool {
    matches!(i.opcode, 0x70..=0x7f | 0x180..=0x18f | 0xe0..=0xe3 | 0xe8 | 0xe9 | 0xeb | 0xc2 | 0xc3) || simple(i)
}

impl Cpu {
    /// The cache slot of the block at CS:EIP, decoding it if need be. None when the fast
    /// path does not apply here (code outside direct RAM, a TLB miss, a CS limit inside the
    /// block, an instruction that straddles the page or fails to decode): the caller steps.
    #[inline(always)]
    pub(crate) fn block_at<B: Bus>(&mut self, bus: &mut B, blocks: &mut [Block]) -> Option<usize> {
        let cs = &self.segs[CS as usize];
        let code32 = cs.big();
        let off = if code32 { self.eip } else { self.eip & 0xffff };
        let lin = cs.base.wrapping_add(off);
        let limit = cs.limit;
        let e = *self.tlb.lookup(lin >> 12);
        if !(e.lin_page == lin >> 12 && e.allow & exec_bit(self.cpl == 3) != 0 && e.direct) {
            return None;
        }
        let phys = (e.phys_page << 12) | (lin & 0xfff);
        let slot = match self.icache.block_get(blocks, phys, code32) {
            Some(s) => s,
            None => self.build_block(bus, blocks, phys, code32)?,
        };
        within_limit(off, blocks[slot].bytes, limit, code32).then_some(slot)
    }

    #[inline(never)]
    fn build_block<B: Bus>(&mut self, bus: &mut B, blocks: &mut [Block], phys: u32, code32: bool) -> Option<usize> {
        let page_end = ((phys as usize) | 0xfff) + 1;
        if page_end > bus.ram().len() {
            return None;
        }
        let gen = self.icache.code_page_gen(phys)?;
        let slot = super::icache::ICache::block_slot(phys);
        let b = &mut blocks[slot];
        let mut ops: Vec<Op> = core::mem::take(&mut b.ops);
        ops.clear();
        let ram = bus.ram();
        let mut pos = phys as usize;
        let mut last = Instr::EMPTY;
        while ops.len() < MAX_BLOCK {
            // Decoding from the page's slice: running off its end means the instruction
            // straddles the page, and it is left to the stepping path.
            let mut f = SliceFetch { bytes: &ram[pos..page_end], pos: 0 };
            let Ok(i) = decode::decode(&mut f, code32) else { break };
            ops.push(fast::select(&i, (pos - phys as usize) as u16, ops.len() as u8));
            pos += i.len as usize;
            last = i;
            if !simple(&i) {
                break;
            }
        }
        let empty = ops.is_empty();
        *b = Block {
            phys: if empty { u32::MAX } else { phys },
            gen,
            code32,
            chain: chains(&last),
            bytes: pos as u32 - phys,
            ops,
        };
        (!empty).then_some(slot)
    }

    /// Run the block in `slot` (which [`Cpu::block_at`] returned) and the blocks it chains
    /// to, taking at most `allowed` steps. Returns the number of steps taken (instructions
    /// retired, plus one for a faulting instruction) and how the last one ended; on a fault
    /// EIP is back at the faulting instruction.
    ///
    /// Inlined into `Cpu::run` natively, kept out of line on wasm: V8's register allocator
    /// spilled about 14 stack slots per op dispatch in the 57 KB inlined `run`, and the
    /// separate function took the wasm register loop from 58 to 131-218 M instructions/s
    /// (node 20, `tests/node/bench.mjs`); natively either way gives ~285 M/s.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(crate) fn run_blocks<B: Bus>(
        &mut self,
        bus: &mut B,
        blocks: &mut [Block],
        mut slot: usize,
        allowed: u64,
    ) -> (u64, Res<()>) {
        let mut steps = 0u64;
        loop {
            let b = &blocks[slot];
            // Blocks are never empty (`build_block`); `split_last` just spares the check.
            let Some((last_op, body)) = b.ops.split_last() else { return (steps, Ok(())) };
            let n = b.ops.len() as u64;
            // A 16-bit IP wraps at 64 KiB: one AND instead of a test per instruction.
            let eip_mask = if b.code32 { u32::MAX } else { 0xffff };
            let base = self.eip;
            let last_eip = base.wrapping_add(last_op.start as u32) & eip_mask;
            let end_eip = base.wrapping_add(b.bytes) & eip_mask;
            // Runs of this block: more than one when it jumps back to its own start.
            loop {
                self.break_block = false;
                // Every op but the last: simple instructions (EIP is not kept up to date).
                // Iterated without a counter: a faulting op knows its own index.
                for op in body {
                    if let Err(e) = self.run_op(bus, op) {
                        let k = op.idx as usize;
                        if e == Fault::Break {
                            // A write hit cached code, or MMIO: stop after this instruction.
                            self.icount += k as u64 + 1;
                            self.eip = base.wrapping_add(b.ops[k + 1].start as u32) & eip_mask;
                            let r = if self.did_io { self.after_device_access(bus) } else { Ok(()) };
                            return (steps + k as u64 + 1, r);
                        }
                        // Simple instructions only fault (no traps, no HLT, no I/O).
                        self.icount += k as u64;
                        self.eip = base.wrapping_add(op.start as u32) & eip_mask;
                        self.start_eip = self.eip;
                        return (steps + k as u64 + 1, Err(e));
                    }
                }
                // The last op may read EIP (jumps, calls) and may be any instruction.
                self.start_eip = last_eip;
                self.eip = end_eip;
                // Counted before it runs, so port and MMIO accesses see the exact count.
                self.icount += n - 1;
                if let Err(e) = self.run_op(bus, last_op) {
                    match e {
                        Fault::Exc(x) if x.is_trap() => self.icount += 1,
                        // A faulting instruction is a step of the budget, not retired.
                        Fault::Exc(_) | Fault::VmExit => self.eip = self.start_eip,
                        Fault::Halt | Fault::Stop(_) | Fault::HostTrap => self.icount += 1,
                        Fault::Break => {
                            self.icount += 1;
                            let r = if self.did_io { self.after_device_access(bus) } else { Ok(()) };
                            return (steps + n, r);
                        }
                    }
                    return (steps + n, Err(e));
                }
                self.icount += 1;
                steps += n;
                if self.did_io {
                    if let Err(e) = self.after_device_access(bus) {
                        return (steps, Err(e));
                    }
                    if self.end_slice {
                        return (steps, Ok(()));
                    }
                }
                if !b.chain {
                    return (steps, Ok(()));
                }
                // A loop back to this block's start: the same linear address, so the same
                // page and block, still valid (a write to its page would have ended the run
                // above) and inside the limit (checked on entry). Only interrupts and the
                // budget are checked, and the block's set-up above is kept.
                // measured (callgrind, register / memory loop): 35.5 / 53.3 → 29.8 / 48.1 host
                // instructions per guest instruction (the module comment has the method).
                if self.eip != base {
                    break;
                }
                if (self.flags.if_() && bus.interrupt_pending()) || n > allowed - steps {
                    return (steps, Ok(()));
                }
            }
            // Chain to the next block if it starts in the same page (see the module comment).
            let (phys, code32) = (b.phys, b.code32);
            let cs = &self.segs[CS as usize];
            let (lin0, off) = (cs.base.wrapping_add(base & eip_mask), self.eip);
            let lin = cs.base.wrapping_add(off);
            if (lin ^ lin0) >> 12 != 0 || (self.flags.if_() && bus.interrupt_pending()) {
                return (steps, Ok(()));
            }
            let next_phys = (phys & !0xfff) | (lin & 0xfff);
            let limit = cs.limit;
            let next = match self.icache.block_get(blocks, next_phys, code32) {
                Some(s) => s,
                None => match self.build_block(bus, blocks, next_phys, code32) {
                    Some(s) => s,
                    None => return (steps, Ok(())),
                },
            };
            let nb = &blocks[next];
            if !within_limit(off, nb.bytes, limit, code32) || nb.ops.len() as u64 > allowed - steps {
                return (steps, Ok(()));
            }
            slot = next;
        }
    }
}

/// A block of `bytes` bytes at offset `off` lies inside the CS limit (SDM Vol. 3A §5.3:
/// the check applies to cached bytes too) and, for 16-bit code, below the 64 KiB wrap.
/// Near either, single steps give the exact fault.
#[inline(always)]
fn within_limit(off: u32, bytes: u32, limit: u32, code32: bool) -> bool {
    let end = off as u64 + bytes as u64 - 1;
    end <= limit as u64 && (code32 || end <= 0xffff)
}
