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
}

impl Default for ICache {
    fn default() -> Self {
        Self::new()
    }
}

impl ICache {
    pub fn new() -> Self {
        ICache { entries: vec![EMPTY; ENTRIES].into_boxed_slice(), page_gen: Vec::new() }
    }

    /// Size the page table for `ram_len` bytes of RAM (done when the run starts).
    #[inline]
    pub fn fit(&mut self, ram_len: usize) {
        let pages = ram_len >> 12;
        if self.page_gen.len() != pages {
            self.page_gen = vec![0; pages];
            self.entries.fill(EMPTY);
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

    /// A write hit physical page `page`: stale its cached instructions, if any.
    #[inline(always)]
    pub fn note_write(&mut self, page: u32) {
        if let Some(g) = self.page_gen.get_mut(page as usize) {
            if *g & 1 != 0 {
                *g = g.wrapping_add(1);
            }
        }
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
