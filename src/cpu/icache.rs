//! The decoded-instruction cache. Decoding is most of an interpreter's cost for simple
//! instructions, and most instructions run many times, so decoded [`Instr`]s are kept in a
//! direct-mapped cache indexed by the physical address of their first byte.
//!
//! Self-modifying code: every physical RAM page has a generation number whose low bit
//! says "instructions from this page are cached". A write to such a page (the direct-RAM
//! write path checks the bit) bumps the generation, which makes every cached instruction
//! of that page stale at once; an entry is used only if its recorded generation matches.
//! Only instructions that lie wholly inside one direct RAM page are cached.

use super::decode::Instr;
use super::fast::Op;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Number of entries (a power of two).
const ENTRIES: usize = 4096;

#[derive(Clone, Copy)]
pub struct Entry {
    /// Physical address of the first byte, `u32::MAX` when empty.
    pub phys: u32,
    /// Generation of its page when decoded.
    pub gen: u32,
    /// Decoded with a 32-bit code segment.
    pub code32: bool,
    pub instr: Instr,
}

const EMPTY: Entry = Entry { phys: u32::MAX, gen: 0, code32: false, instr: Instr::EMPTY };

#[derive(Clone)]
pub struct ICache {
    entries: Box<[Entry]>,
    /// Per physical RAM page: generation, low bit set while it holds cached code.
    pub(crate) page_gen: Vec<u32>,
    /// Basic blocks by physical address of their first instruction.
    pub(crate) blocks: Box<[Block]>,
}

impl Default for ICache {
    fn default() -> Self {
        Self::new()
    }
}

impl ICache {
    pub fn new() -> Self {
        let empty = Block { phys: u32::MAX, gen: 0, code32: false, chain: false, bytes: 0, ops: Vec::new() };
        ICache {
            entries: vec![EMPTY; ENTRIES].into_boxed_slice(),
            page_gen: Vec::new(),
            blocks: vec![empty; BLOCKS].into_boxed_slice(),
        }
    }

    /// Size the page table for `ram_len` bytes of RAM (done when the run starts).
    #[inline]
    pub fn fit(&mut self, ram_len: usize) {
        let pages = ram_len >> 12;
        if self.page_gen.len() != pages {
            self.page_gen = vec![0; pages];
            self.entries.fill(EMPTY);
            for b in self.blocks.iter_mut() {
                b.phys = u32::MAX;
            }
        }
    }

    /// A cached instruction at `phys`, if still valid.
    #[inline(always)]
    pub fn get(&self, phys: u32, code32: bool) -> Option<&Instr> {
        let e = &self.entries[phys as usize & (ENTRIES - 1)];
        if e.phys == phys && e.code32 == code32 {
            let g = *self.page_gen.get((phys >> 12) as usize)?;
            if g == e.gen {
                return Some(&e.instr);
            }
        }
        None
    }

    /// Remember `instr`, decoded from `phys` (which lies in a direct RAM page).
    #[inline]
    pub fn insert(&mut self, phys: u32, code32: bool, instr: Instr) {
        let page = (phys >> 12) as usize;
        let Some(g) = self.page_gen.get_mut(page) else { return };
        if *g & 1 == 0 {
            *g = g.wrapping_add(1);
        }
        self.entries[phys as usize & (ENTRIES - 1)] = Entry { phys, gen: *g, code32, instr };
    }

    /// A write hit physical page `page`: stale its cached instructions, if any. Returns
    /// whether the page held cached code (the running block must then stop).
    #[inline(always)]
    pub fn note_write(&mut self, page: u32) -> bool {
        if let Some(g) = self.page_gen.get_mut(page as usize) {
            if *g & 1 != 0 {
                *g = g.wrapping_add(1);
                return true;
            }
        }
        false
    }

    /// Forget everything (RAM was rewritten from outside the CPU).
    pub fn invalidate_all(&mut self) {
        for g in self.page_gen.iter_mut() {
            if *g & 1 != 0 {
                *g = g.wrapping_add(1);
            }
        }
    }
}

/// Number of basic-block slots (a power of two).
const BLOCKS: usize = 4096;
/// Most instructions in one block: long enough to amortise the block look-up, short enough
/// that a block rebuilt after a self-modifying write costs little.
pub const MAX_BLOCK: usize = 32;

/// A run of decoded instructions that lie in one direct RAM page and execute in sequence:
/// every instruction but the last is "simple" (cannot branch, change CS, mode, IF or TF,
/// do port I/O or inhibit interrupts), so the run loop checks for interrupts, TF, the
/// budget and code-page changes once per block instead of once per instruction.
#[derive(Clone)]
pub struct Block {
    /// Physical address of the first byte, `u32::MAX` when empty.
    pub phys: u32,
    /// Generation of its page when decoded.
    pub gen: u32,
    pub code32: bool,
    /// The last instruction cannot change CS, the mode, IF or TF, do port I/O or inhibit
    /// interrupts (a jump, a call, a return or a simple instruction), so the next block in
    /// the same page may follow without a trip through the run loop.
    pub chain: bool,
    /// Total length in bytes.
    pub bytes: u32,
    pub ops: Vec<Op>,
}

impl ICache {
    /// The slot a block starting at `phys` lives in.
    #[inline(always)]
    pub fn block_slot(phys: u32) -> usize {
        (phys ^ (phys >> 12)) as usize & (BLOCKS - 1)
    }

    /// The slot of a still-valid block at `phys` in `blocks` (the run loop holds the
    /// blocks while it runs), if one is cached.
    #[inline(always)]
    pub fn block_get(&self, blocks: &[Block], phys: u32, code32: bool) -> Option<usize> {
        let slot = Self::block_slot(phys);
        let b = &blocks[slot];
        if b.phys == phys && b.code32 == code32 && self.page_gen.get((phys >> 12) as usize) == Some(&b.gen) {
            Some(slot)
        } else {
            None
        }
    }

    /// Mark `phys`'s page as holding cached code and return its generation (None when the
    /// page is outside RAM).
    #[inline]
    pub fn code_page_gen(&mut self, phys: u32) -> Option<u32> {
        let g = self.page_gen.get_mut((phys >> 12) as usize)?;
        if *g & 1 == 0 {
            *g = g.wrapping_add(1);
        }
        Some(*g)
    }
}
