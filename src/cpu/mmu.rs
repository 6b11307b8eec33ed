//! Paging (SDM Vol. 3A §4.3, "32-bit paging") and the TLB (§4.10).
//!
//! Two-level walk with 4 KiB pages, 4 MiB pages when CR4.PSE is set and the PDE's PS bit is
//! set (§4.3, Table 4-4), global pages kept across CR3 loads when CR4.PGE is set (§4.10.2.4),
//! and the CR0.WP / U/S / R/W rules of §4.6.
//!
//! The TLB is direct-mapped, 1024 entries indexed by the low bits of the linear page number.
//! An entry records which of the four kinds of access (supervisor/user × read/write) the walk
//! allowed; a write is allowed only once the walk has set the dirty bit, so a hit never needs
//! to write the page tables. With paging off, entries map linear = physical with every
//! access allowed, so the hot path is the same in both cases.

use super::exception::{pf, Exception};
use super::{cr0, cr4, Cpu};
use crate::bus::Bus;

/// Access kinds, as bits of [`TlbEntry::allow`].
pub const SUP_READ: u8 = 1;
pub const SUP_WRITE: u8 = 2;
pub const USER_READ: u8 = 4;
pub const USER_WRITE: u8 = 8;

const ENTRIES: usize = 1024;

/// Page-table entry bits (SDM Vol. 3A Table 4-5, 4-6).
pub mod pte {
    pub const P: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const US: u32 = 1 << 2;
    pub const A: u32 = 1 << 5;
    pub const D: u32 = 1 << 6;
    pub const PS: u32 = 1 << 7;
    pub const G: u32 = 1 << 8;
}

#[derive(Clone, Copy, Debug)]
pub struct TlbEntry {
    /// Linear page number, or `u32::MAX` when empty.
    pub lin_page: u32,
    /// Physical page number.
    pub phys_page: u32,
    /// Allowed access kinds.
    pub allow: u8,
    /// Reads of the physical page come straight from RAM ([`Bus::is_direct_read`]).
    pub direct: bool,
    /// Writes go straight to RAM too ([`Bus::is_direct`]); else through `mmio_write`
    /// (shadow RAM the chipset has made read-only, ROM).
    pub direct_write: bool,
    pub global: bool,
}

const EMPTY: TlbEntry =
    TlbEntry { lin_page: u32::MAX, phys_page: 0, allow: 0, direct: false, direct_write: false, global: false };

#[derive(Clone)]
pub struct Tlb {
    pub entries: alloc::boxed::Box<[TlbEntry; ENTRIES]>,
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    pub fn new() -> Self {
        Tlb { entries: alloc::boxed::Box::new([EMPTY; ENTRIES]) }
    }
    #[inline(always)]
    pub fn lookup(&self, lin_page: u32) -> &TlbEntry {
        &self.entries[lin_page as usize & (ENTRIES - 1)]
    }
    pub fn flush_all(&mut self) {
        self.entries.fill(EMPTY);
    }
    /// Flush all but global entries (a CR3 load with CR4.PGE set).
    pub fn flush_non_global(&mut self) {
        for e in self.entries.iter_mut() {
            if !e.global {
                *e = EMPTY;
            }
        }
    }
    /// INVLPG (SDM Vol. 2A "INVLPG"): the entry for one page, global or not.
    pub fn flush_page(&mut self, lin_page: u32) {
        let e = &mut self.entries[lin_page as usize & (ENTRIES - 1)];
        if e.lin_page == lin_page {
            *e = EMPTY;
        }
    }
}

/// The access kind bit for a (user, write) pair.
#[inline(always)]
pub fn access_bit(user: bool, write: bool) -> u8 {
    match (user, write) {
        (false, false) => SUP_READ,
        (false, true) => SUP_WRITE,
        (true, false) => USER_READ,
        (true, true) => USER_WRITE,
    }
}

impl Cpu {
    /// Translate a linear address for an access of kind `(user, write)`, walking the page
    /// tables on a TLB miss. Returns the filled TLB entry's physical page and whether it is
    /// direct RAM.
    #[inline(never)]
    pub(crate) fn tlb_fill<B: Bus>(
        &mut self,
        bus: &mut B,
        lin: u32,
        user: bool,
        write: bool,
    ) -> Result<TlbEntry, Exception> {
        let page = lin >> 12;
        let entry = if self.cr0 & cr0::PG == 0 {
            TlbEntry {
                lin_page: page,
                phys_page: page,
                allow: SUP_READ | SUP_WRITE | USER_READ | USER_WRITE,
                direct: bus.is_direct_read(page),
                direct_write: bus.is_direct(page),
                global: false,
            }
        } else {
            self.walk(bus, lin, user, write)?
        };
        self.tlb.entries[page as usize & (ENTRIES - 1)] = entry;
        Ok(entry)
    }

    /// The two-level walk (SDM Vol. 3A §4.3), setting accessed and dirty bits (§4.8).
    fn walk<B: Bus>(&mut self, bus: &mut B, lin: u32, user: bool, write: bool) -> Result<TlbEntry, Exception> {
        let fault = |present: bool| {
            let mut code = 0;
            if present {
                code |= pf::PRESENT;
            }
            if write {
                code |= pf::WRITE;
            }
            if user {
                code |= pf::USER;
            }
            Exception::PF { addr: lin, code }
        };
        let pde_addr = (self.cr3 & 0xffff_f000) | ((lin >> 22) << 2);
        let mut pde = read_phys32(bus, pde_addr);
        if pde & pte::P == 0 {
            return Err(fault(false));
        }
        let large = pde & pte::PS != 0 && self.cr4 & cr4::PSE != 0;
        let (phys_page, combined, global, pte_addr, mut pte_val) = if large {
            // 4 MiB page: bits 31:22 of the PDE are the frame (SDM Vol. 3A Table 4-4).
            let frame = (pde & 0xffc0_0000) | (lin & 0x003f_f000);
            (frame >> 12, pde, pde & pte::G != 0, pde_addr, pde)
        } else {
            let pte_addr = (pde & 0xffff_f000) | (((lin >> 12) & 0x3ff) << 2);
            let pte_val = read_phys32(bus, pte_addr);
            if pte_val & pte::P == 0 {
                return Err(fault(false));
            }
            (pte_val >> 12, pde & pte_val, pte_val & pte::G != 0, pte_addr, pte_val)
        };
        // Protection (SDM Vol. 3A §4.6): user accesses need U/S in both levels and, to
        // write, R/W in both; supervisor writes need R/W in both only when CR0.WP is set.
        let u_ok = combined & pte::US != 0;
        let w_ok = combined & pte::RW != 0;
        let wp = self.cr0 & cr0::WP != 0;
        let mut allow = SUP_READ;
        if w_ok || !wp {
            allow |= SUP_WRITE;
        }
        if u_ok {
            allow |= USER_READ;
            if w_ok {
                allow |= USER_WRITE;
            }
        }
        if allow & access_bit(user, write) == 0 {
            return Err(fault(true));
        }
        // Accessed bits on every level walked, dirty on the final one for writes.
        if pde & pte::A == 0 {
            pde |= pte::A;
            write_phys32(bus, pde_addr, pde);
            if large {
                pte_val = pde;
            }
        }
        if pte_val & pte::A == 0 || (write && pte_val & pte::D == 0) {
            pte_val |= pte::A;
            if write {
                pte_val |= pte::D;
            }
            write_phys32(bus, pte_addr, pte_val);
        }
        let dirty = pte_val & pte::D != 0;
        if !dirty {
            allow &= !(SUP_WRITE | USER_WRITE);
        }
        let global = global && self.cr4 & cr4::PGE != 0;
        Ok(TlbEntry {
            lin_page: lin >> 12,
            phys_page,
            allow,
            direct: bus.is_direct_read(phys_page),
            direct_write: bus.is_direct(phys_page),
            global,
        })
    }
}

/// A page-table read: paging structures live in physical memory.
fn read_phys32<B: Bus>(bus: &mut B, addr: u32) -> u32 {
    let page = addr >> 12;
    if bus.is_direct(page) {
        let a = addr as usize;
        let r = bus.ram();
        u32::from_le_bytes([r[a], r[a + 1], r[a + 2], r[a + 3]])
    } else {
        bus.mmio_read(crate::addr::Phys(addr), crate::bus::IoSize::Dword)
    }
}

fn write_phys32<B: Bus>(bus: &mut B, addr: u32, v: u32) {
    let page = addr >> 12;
    if bus.is_direct(page) {
        let a = addr as usize;
        bus.ram()[a..a + 4].copy_from_slice(&v.to_le_bytes());
    } else {
        bus.mmio_write(crate::addr::Phys(addr), crate::bus::IoSize::Dword, v);
    }
}
