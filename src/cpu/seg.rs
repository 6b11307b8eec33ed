//! Segmentation: segment descriptors, the descriptor caches ("hidden parts") of the segment
//! registers, and loading a segment register with every check of SDM Vol. 3A §5.
//!
//! A descriptor (SDM Vol. 3A §3.4.5, Figure 3-8) is two dwords:
//! `lo` = limit 15:0 | base 15:0 << 16;
//! `hi` = base 23:16 | type 11:8 | S 12 | DPL 14:13 | P 15 | limit 19:16 | AVL 20 | D/B 22 | G 23 | base 31:24.

use super::decode::{CS, SS};
use super::exception::{selector_error, Exception};
use super::{Cpu, Res};
use crate::bus::Bus;
use serde::{Deserialize, Serialize};

/// Access-byte bits (byte 5 of a descriptor).
pub mod access {
    pub const ACCESSED: u8 = 1 << 0;
    /// Data: writable. Code: readable.
    pub const RW: u8 = 1 << 1;
    /// Data: expand-down. Code: conforming.
    pub const DC: u8 = 1 << 2;
    pub const CODE: u8 = 1 << 3;
    /// Code or data (as opposed to system).
    pub const S: u8 = 1 << 4;
    pub const PRESENT: u8 = 1 << 7;
}

/// System descriptor types (SDM Vol. 3A §3.5, Table 3-2).
pub mod systype {
    pub const TSS16_AVAIL: u8 = 1;
    pub const LDT: u8 = 2;
    pub const TSS16_BUSY: u8 = 3;
    pub const CALL_GATE16: u8 = 4;
    pub const TASK_GATE: u8 = 5;
    pub const INT_GATE16: u8 = 6;
    pub const TRAP_GATE16: u8 = 7;
    pub const TSS32_AVAIL: u8 = 9;
    pub const TSS32_BUSY: u8 = 11;
    pub const CALL_GATE32: u8 = 12;
    pub const INT_GATE32: u8 = 14;
    pub const TRAP_GATE32: u8 = 15;
}

/// A segment register's visible selector and its descriptor cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seg {
    pub sel: u16,
    pub base: u32,
    /// Byte-granular limit (G already applied).
    pub limit: u32,
    /// The access byte (P, DPL, S, type).
    pub access: u8,
    /// High nibble of descriptor byte 6: G (bit 3), D/B (bit 2), L (bit 1), AVL (bit 0).
    pub flags: u8,
    /// False for a null selector loaded in protected mode: any access is #GP(0).
    pub valid: bool,
}

impl Seg {
    /// A real-mode segment: base = selector << 4, limit 64 KiB, read/write data.
    pub const fn real(sel: u16) -> Seg {
        Seg {
            sel,
            base: (sel as u32) << 4,
            limit: 0xffff,
            access: access::PRESENT | access::S | access::RW | access::ACCESSED,
            flags: 0,
            valid: true,
        }
    }

    /// A null selector loaded in protected mode: the register is unusable until reloaded.
    pub const fn null(sel: u16) -> Seg {
        Seg { sel, base: 0, limit: 0xffff, access: 0, flags: 0, valid: false }
    }

    /// A flat 4 GiB ring-0 segment, 32-bit, code or data.
    pub const fn flat32(sel: u16, code: bool) -> Seg {
        Seg {
            sel,
            base: 0,
            limit: 0xffff_ffff,
            access: access::PRESENT | access::S | access::RW | access::ACCESSED | if code { access::CODE } else { 0 },
            flags: 0xc,
            valid: true,
        }
    }

    /// Build a cache from a descriptor's two dwords.
    pub fn from_descriptor(sel: u16, lo: u32, hi: u32) -> Seg {
        let base = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff00_0000);
        let mut limit = (lo & 0xffff) | (hi & 0x000f_0000);
        let flags = ((hi >> 20) & 0xf) as u8;
        if flags & 8 != 0 {
            limit = (limit << 12) | 0xfff;
        }
        Seg { sel, base, limit, access: (hi >> 8) as u8, flags, valid: true }
    }

    /// The D/B bit: 32-bit code / 32-bit stack / expand-down upper bound 4 GiB.
    #[inline]
    pub fn big(&self) -> bool {
        self.flags & 4 != 0
    }
    #[inline]
    pub fn dpl(&self) -> u8 {
        (self.access >> 5) & 3
    }
    #[inline]
    pub fn rpl(&self) -> u8 {
        (self.sel & 3) as u8
    }
    #[inline]
    pub fn present(&self) -> bool {
        self.access & access::PRESENT != 0
    }
    /// Code or data segment (S = 1).
    #[inline]
    pub fn is_user(&self) -> bool {
        self.access & access::S != 0
    }
    #[inline]
    pub fn is_code(&self) -> bool {
        self.is_user() && self.access & access::CODE != 0
    }
    #[inline]
    pub fn is_data(&self) -> bool {
        self.is_user() && self.access & access::CODE == 0
    }
    #[inline]
    pub fn conforming(&self) -> bool {
        self.is_code() && self.access & access::DC != 0
    }
    #[inline]
    pub fn readable(&self) -> bool {
        self.is_data() || (self.is_code() && self.access & access::RW != 0)
    }
    #[inline]
    pub fn writable(&self) -> bool {
        self.is_data() && self.access & access::RW != 0
    }
    #[inline]
    pub fn expand_down(&self) -> bool {
        self.is_data() && self.access & access::DC != 0
    }
    /// A 32-bit TSS, available or busy (SDM Vol. 3A Table 3-2), as TR holds.
    #[inline]
    pub fn is_tss32(&self) -> bool {
        matches!(self.sys_type(), systype::TSS32_AVAIL | systype::TSS32_BUSY)
    }
    /// System-descriptor type (S = 0).
    #[inline]
    pub fn sys_type(&self) -> u8 {
        self.access & 0xf
    }

    /// Whether bytes `off..=off+len-1` lie within the limit (SDM Vol. 3A §5.3).
    #[inline]
    pub fn in_limit(&self, off: u32, len: u32) -> bool {
        let last = match off.checked_add(len - 1) {
            Some(l) => l,
            None => return false,
        };
        if self.expand_down() {
            let upper = if self.big() { 0xffff_ffff } else { 0xffff };
            off > self.limit && last <= upper
        } else {
            last <= self.limit
        }
    }
}

/// A raw descriptor read from a table.
#[derive(Clone, Copy, Debug)]
pub struct Descriptor {
    pub lo: u32,
    pub hi: u32,
}

impl Descriptor {
    #[inline]
    pub fn access(&self) -> u8 {
        (self.hi >> 8) as u8
    }
    #[inline]
    pub fn dpl(&self) -> u8 {
        (self.access() >> 5) & 3
    }
    #[inline]
    pub fn present(&self) -> bool {
        self.access() & access::PRESENT != 0
    }
    #[inline]
    pub fn is_system(&self) -> bool {
        self.access() & access::S == 0
    }
    #[inline]
    pub fn sys_type(&self) -> u8 {
        self.access() & 0xf
    }
    pub fn seg(&self, sel: u16) -> Seg {
        Seg::from_descriptor(sel, self.lo, self.hi)
    }
    /// A gate's target selector (SDM Vol. 3A Figure 5-8, 6-2).
    pub fn gate_selector(&self) -> u16 {
        (self.lo >> 16) as u16
    }
    /// A gate's target offset (16-bit gates use only the low word).
    pub fn gate_offset(&self) -> u32 {
        (self.lo & 0xffff) | (self.hi & 0xffff_0000)
    }
    /// A call gate's parameter count.
    pub fn gate_params(&self) -> u8 {
        (self.hi & 0x1f) as u8
    }
}

impl Cpu {
    /// Read the descriptor `sel` names from the GDT or LDT; `Err(None)` when the selector's
    /// index is beyond the table limit (callers choose the exception), `Err(Some(e))` on a
    /// fault reading it.
    pub(crate) fn read_descriptor<B: Bus>(&mut self, bus: &mut B, sel: u16) -> Result<Descriptor, Option<Exception>> {
        let (base, limit) = if sel & 4 != 0 {
            if !self.ldtr.valid || !self.ldtr.present() {
                return Err(None);
            }
            (self.ldtr.base, self.ldtr.limit)
        } else {
            (self.gdtr.base, self.gdtr.limit as u32)
        };
        let off = (sel & !7) as u32;
        if off + 7 > limit {
            return Err(None);
        }
        let lin = base.wrapping_add(off);
        let lo = self.read_sys32(bus, lin).map_err(Some)?;
        let hi = self.read_sys32(bus, lin.wrapping_add(4)).map_err(Some)?;
        Ok(Descriptor { lo, hi })
    }

    /// Like [`Cpu::read_descriptor`], with an out-of-limit selector raising `#GP(sel)`.
    pub(crate) fn descriptor_or_gp<B: Bus>(&mut self, bus: &mut B, sel: u16) -> Res<Descriptor> {
        self.read_descriptor(bus, sel).map_err(|e| e.unwrap_or(Exception::GP(selector_error(sel))).into())
    }

    /// Set the accessed bit of a descriptor (SDM Vol. 3A §3.4.5.1) if it is clear.
    pub(crate) fn set_accessed<B: Bus>(&mut self, bus: &mut B, sel: u16, d: &mut Descriptor) -> Res<()> {
        if d.hi & (1 << 8) == 0 {
            d.hi |= 1 << 8;
            let base = if sel & 4 != 0 { self.ldtr.base } else { self.gdtr.base };
            let lin = base.wrapping_add((sel & !7) as u32 + 4);
            self.write_sys32(bus, lin, d.hi)?;
        }
        Ok(())
    }

    /// Load a data segment register (DS, ES, FS, GS) or SS with every protected-mode check
    /// (SDM Vol. 2B "MOV—Move", "POP", Vol. 3A §5.6, §5.7). In real and V86 mode the
    /// selector just sets the base.
    pub(crate) fn load_seg<B: Bus>(&mut self, bus: &mut B, reg: u8, sel: u16) -> Res<()> {
        if !self.pmode() {
            let mut s = Seg::real(sel);
            if !self.v86() {
                // Real mode keeps the cached limit and attributes ("unreal mode"); only
                // base and selector change (SDM Vol. 3A §20.1.1 / §9.9.2).
                let old = self.segs[reg as usize];
                s.limit = old.limit;
                s.flags = old.flags;
                s.access = old.access;
                if reg == CS {
                    s.access = old.access;
                }
            }
            self.segs[reg as usize] = s;
            if reg == SS {
                self.inhibit_irq = true;
            }
            return Ok(());
        }
        let rpl = (sel & 3) as u8;
        if reg == SS {
            if sel & !3 == 0 {
                return Err(Exception::GP(0).into());
            }
            let mut d = self.descriptor_or_gp(bus, sel)?;
            let s = d.seg(sel);
            if rpl != self.cpl || !s.writable() || s.dpl() != self.cpl {
                return Err(Exception::GP(selector_error(sel)).into());
            }
            if !s.present() {
                return Err(Exception::SS(selector_error(sel)).into());
            }
            self.set_accessed(bus, sel, &mut d)?;
            self.segs[SS as usize] = d.seg(sel);
            self.inhibit_irq = true;
            return Ok(());
        }
        if sel & !3 == 0 {
            // A null selector may be loaded into a data segment register; using it faults.
            self.segs[reg as usize] = Seg::null(sel);
            return Ok(());
        }
        let mut d = self.descriptor_or_gp(bus, sel)?;
        let s = d.seg(sel);
        if !s.readable() {
            return Err(Exception::GP(selector_error(sel)).into());
        }
        if !s.conforming() && (rpl > s.dpl() || self.cpl > s.dpl()) {
            return Err(Exception::GP(selector_error(sel)).into());
        }
        if !s.present() {
            return Err(Exception::NP(selector_error(sel)).into());
        }
        self.set_accessed(bus, sel, &mut d)?;
        self.segs[reg as usize] = d.seg(sel);
        Ok(())
    }

    /// After a privilege change to an outer level, data segment registers the new CPL may
    /// not use are nulled (SDM Vol. 2A "RET", Vol. 3A §5.8.6 step for RET/IRET).
    pub(crate) fn null_inaccessible_segs(&mut self) {
        for r in [super::ES, super::DS, super::FS, super::GS] {
            let s = self.segs[r as usize];
            if !s.valid {
                continue;
            }
            if (s.is_data() || !s.conforming()) && s.dpl() < self.cpl {
                self.segs[r as usize] = Seg::null(0);
            }
        }
    }

    /// Load CS from a descriptor cache and set CPL (a transfer has done its checks).
    pub(crate) fn set_cs(&mut self, s: Seg, cpl: u8) {
        let mut s = s;
        s.sel = (s.sel & !3) | cpl as u16;
        self.segs[CS as usize] = s;
        self.cpl = cpl;
    }
}
