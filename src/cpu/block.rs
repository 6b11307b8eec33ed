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
//! measured (callgrind, host instructions per guest instruction, register loop / paged
//! memory loop of `v386-bench`): 204 / 230 stepping through the per-instruction cache,
//! 106 / 131 with blocks; 65 / 54 → 71 / 80 M guest instructions/s.

use super::decode::{self, Instr, SliceFetch};
use super::icache::{ICache, MAX_BLOCK};
use super::mmu::access_bit;
use super::{Cpu, Fault, Res, CS};
use crate::bus::Bus;

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

impl Cpu {
    /// The cache slot of the block at CS:EIP, decoding it if need be. None when the fast
    /// path does not apply here (code outside direct RAM, a TLB miss, a CS limit inside the
    /// block, an instruction that straddles the page or fails to decode): the caller steps.
    #[inline(always)]
    pub(crate) fn block_at<B: Bus>(&mut self, bus: &mut B) -> Option<usize> {
        let cs = &self.segs[CS as usize];
        let code32 = cs.big();
        let off = if code32 { self.eip } else { self.eip & 0xffff };
        let lin = cs.base.wrapping_add(off);
        let limit = cs.limit;
        let e = *self.tlb.lookup(lin >> 12);
        if !(e.lin_page == lin >> 12 && e.allow & access_bit(self.cpl == 3, false) != 0 && e.direct) {
            return None;
        }
        let phys = (e.phys_page << 12) | (lin & 0xfff);
        let slot = match self.icache.block_get(phys, code32) {
            Some(s) => s,
            None => self.build_block(bus, phys, code32)?,
        };
        // The limit check still applies to cached bytes (SDM Vol. 3A §5.3); a 16-bit IP
        // wraps at 64 KiB. Near either, single steps give the exact fault.
        let end = off as u64 + self.icache.blocks[slot].bytes as u64 - 1;
        if end > limit as u64 || (!code32 && end > 0xffff) {
            return None;
        }
        Some(slot)
    }

    #[inline(never)]
    fn build_block<B: Bus>(&mut self, bus: &mut B, phys: u32, code32: bool) -> Option<usize> {
        let page_end = ((phys as usize) | 0xfff) + 1;
        if page_end > bus.ram().len() {
            return None;
        }
        let gen = self.icache.code_page_gen(phys)?;
        let slot = ICache::block_slot(phys);
        let mut instrs = core::mem::take(&mut self.icache.blocks[slot].instrs);
        instrs.clear();
        let ram = bus.ram();
        let mut pos = phys as usize;
        while instrs.len() < MAX_BLOCK {
            // Decoding from the page's slice: running off its end means the instruction
            // straddles the page, and it is left to the stepping path.
            let mut f = SliceFetch { bytes: &ram[pos..page_end], pos: 0 };
            let Ok(i) = decode::decode(&mut f, code32) else { break };
            pos += i.len as usize;
            instrs.push(i);
            if !simple(&i) {
                break;
            }
        }
        let b = &mut self.icache.blocks[slot];
        b.phys = if instrs.is_empty() { u32::MAX } else { phys };
        b.gen = gen;
        b.code32 = code32;
        b.bytes = pos as u32 - phys;
        let empty = instrs.is_empty();
        b.instrs = instrs;
        if empty {
            None
        } else {
            Some(slot)
        }
    }

    /// Run the block in `slot` (which [`Cpu::block_at`] returned). Returns the number of
    /// steps taken (instructions retired, plus one for a faulting instruction) and how the
    /// last one ended; on a fault EIP is back at the faulting instruction.
    #[inline(always)]
    pub(crate) fn run_block<B: Bus>(&mut self, bus: &mut B, slot: usize) -> (u64, Res<()>) {
        // Take the instructions out of the cache so they can be borrowed while `self`
        // changes. Nothing run here touches the block cache: only the run loop builds.
        let instrs = core::mem::take(&mut self.icache.blocks[slot].instrs);
        // A 16-bit IP wraps at 64 KiB: one AND instead of a test per instruction.
        let eip_mask = if self.icache.blocks[slot].code32 { u32::MAX } else { 0xffff };
        self.break_block = false;
        let start_icount = self.icount;
        let mut res = Ok(());
        for i in instrs.iter() {
            self.start_eip = self.eip;
            self.eip = self.eip.wrapping_add(i.len as u32) & eip_mask;
            if let Err(e) = self.execute(bus, i) {
                match e {
                    Fault::Exc(x) if x.is_trap() => self.icount += 1,
                    Fault::Exc(_) => {
                        self.eip = self.start_eip;
                        // A faulting instruction is a step of the budget, not retired.
                        self.icache.blocks[slot].instrs = instrs;
                        return (self.icount - start_icount + 1, Err(e));
                    }
                    Fault::Halt | Fault::Stop(_) => self.icount += 1,
                }
                res = Err(e);
                break;
            }
            self.icount += 1;
            if self.break_block {
                break;
            }
        }
        let n = self.icount - start_icount;
        self.icache.blocks[slot].instrs = instrs;
        if res.is_ok() && self.did_io {
            self.did_io = false;
            if let Some(v) = bus.take_stop_request() {
                res = Err(Fault::Stop(v));
            }
        }
        (n, res)
    }
}
