//! Paging (SDM Vol. 3A §4.3 "32-bit paging", §4.4 "PAE paging") and the TLB (§4.10).
//!
//! 32-bit paging: a two-level walk with 4 KiB pages, 4 MiB pages when CR4.PSE is set and the
//! PDE's PS bit is set (§4.3, Table 4-4), global pages kept across CR3 loads when CR4.PGE is
//! set (§4.10.2.4), and the CR0.WP / U/S / R/W rules of §4.6.
//!
//! PAE paging (CR4.PAE, §4.4): the four PDPTEs are loaded from CR3 by MOV to CR0/CR3/CR4
//! ([`Cpu::load_pdptes`], §4.4.1) and held in [`Cpu::pdpte`]; the walk then reads a 64-bit
//! PDE (a 2 MiB page when its PS bit is set, whatever CR4.PSE says: Table 4-9) and a 64-bit
//! PTE. MAXPHYADDR is 36 (§4.1.4: no CPUID leaf 80000008H, CPUID.01H:EDX.PAE = 1), so bits
//! 62:36 are reserved, and bit 63 is XD with EFER.NXE = 1, reserved otherwise (Tables 4-8
//! to 4-11). Physical frames above 4 GiB are accepted but unbacked: reads of them return
//! all ones and writes are dropped (the machine has at most 3 GiB).
//!
//! The TLB is direct-mapped, 1024 entries indexed by the low bits of the linear page number.
//! An entry records which of the six kinds of access (supervisor/user × read/write/fetch)
//! the walk allowed; a write is allowed only once the walk has set the dirty bit, so a hit
//! never needs to write the page tables. Code fetch tests the fetch bit alone, so
//! execute-disable costs nothing on a hit. With paging off, entries map linear = physical
//! with every access allowed, so the hot path is the same in both cases.

use super::exception::{pf, Exception};
use super::{cr0, cr4, Cpu};
use crate::bus::Bus;

/// Access kinds, as bits of [`TlbEntry::allow`].
pub const SUP_READ: u8 = 1;
pub const SUP_WRITE: u8 = 2;
pub const USER_READ: u8 = 4;
pub const USER_WRITE: u8 = 8;
/// Instruction fetch (SDM Vol. 3A §4.6: execute-disable applies only to fetches).
pub const SUP_EXEC: u8 = 16;
pub const USER_EXEC: u8 = 32;
/// Every kind of access.
pub const ALL: u8 = SUP_READ | SUP_WRITE | USER_READ | USER_WRITE | SUP_EXEC | USER_EXEC;

/// IA32_EFER.NXE (SDM Vol. 3A §2.2.1, Figure 2-4): execute-disable in PAE paging.
pub const EFER_NXE: u64 = 1 << 11;

/// Physical-address bits (MAXPHYADDR) with PAE and no CPUID leaf 80000008H: 36
/// (SDM Vol. 3A §4.1.4).
pub const MAXPHYADDR: u32 = 36;
/// The address field of a PAE entry, bits MAXPHYADDR-1:12.
const PAE_ADDR: u64 = ((1u64 << MAXPHYADDR) - 1) & !0xfff;
/// Bits 62:MAXPHYADDR, reserved in every PAE entry (Tables 4-8 to 4-11).
const PAE_RSVD_HIGH: u64 = ((1u64 << 63) - 1) & !((1u64 << MAXPHYADDR) - 1);
/// PDPTE reserved bits besides the high ones: 2:1 and 8:5 (Table 4-8); bit 63 (XD is not a
/// PDPTE bit in PAE paging).
const PDPTE_RSVD: u64 = PAE_RSVD_HIGH | (1 << 63) | 0x1e6;
/// A PDE mapping a 2 MiB page also reserves bits 20:13 (Table 4-9).
const PDE2M_RSVD: u64 = 0x001f_e000;
/// The execute-disable bit of a PAE PDE or PTE (Tables 4-9 to 4-11).
const XD: u64 = 1 << 63;

const ENTRIES: usize = 1024;

/// Page-table entry bits (SDM Vol. 3A Table 4-5, 4-6; the same positions in PAE entries,
/// Tables 4-9 to 4-11).
pub mod pte {
    pub const P: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const US: u32 = 1 << 2;
    pub const PWT: u32 = 1 << 3;
    pub const PCD: u32 = 1 << 4;
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
    /// Some entry since the last full flush came from a 2 MiB or 4 MiB page, so INVLPG
    /// must drop the whole large page (SDM Vol. 3A §4.10.4.1: it invalidates the
    /// translation for the page, whatever its size).
    pub has_large: bool,
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Tlb {
    pub fn new() -> Self {
        Tlb { entries: alloc::boxed::Box::new([EMPTY; ENTRIES]), has_large: false }
    }
    #[inline(always)]
    pub fn lookup(&self, lin_page: u32) -> &TlbEntry {
        &self.entries[lin_page as usize & (ENTRIES - 1)]
    }
    pub fn flush_all(&mut self) {
        self.entries.fill(EMPTY);
        self.has_large = false;
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
        if self.has_large {
            // Entries are per 4 KiB page: drop every one in the surrounding 4 MiB, which
            // covers a 4 MiB page or a 2 MiB one (flushing more than needed is allowed).
            for e in self.entries.iter_mut() {
                if e.lin_page != u32::MAX && e.lin_page >> 10 == lin_page >> 10 {
                    *e = EMPTY;
                }
            }
        }
    }
}

/// The access kind bit for an instruction fetch.
#[inline(always)]
pub fn exec_bit(user: bool) -> u8 {
    if user {
        USER_EXEC
    } else {
        SUP_EXEC
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
    /// Translate a linear address for a data access of kind `(user, write)`, walking the
    /// page tables on a TLB miss. Returns the filled TLB entry.
    #[inline(never)]
    pub(crate) fn tlb_fill<B: Bus>(
        &mut self,
        bus: &mut B,
        lin: u32,
        user: bool,
        write: bool,
    ) -> Result<TlbEntry, Exception> {
        self.tlb_fill_kind(bus, lin, user, write, false)
    }

    /// [`Self::tlb_fill`] for an instruction fetch.
    #[inline(never)]
    pub(crate) fn tlb_fill_fetch<B: Bus>(&mut self, bus: &mut B, lin: u32, user: bool) -> Result<TlbEntry, Exception> {
        self.tlb_fill_kind(bus, lin, user, false, true)
    }

    fn tlb_fill_kind<B: Bus>(
        &mut self,
        bus: &mut B,
        lin: u32,
        user: bool,
        write: bool,
        fetch: bool,
    ) -> Result<TlbEntry, Exception> {
        let page = lin >> 12;
        let entry = if self.cr0 & cr0::PG == 0 {
            TlbEntry {
                lin_page: page,
                phys_page: page,
                allow: ALL,
                direct: bus.is_direct_read(page),
                direct_write: bus.is_direct(page),
                global: false,
            }
        } else if self.cr4 & cr4::PAE != 0 {
            self.walk_pae(bus, lin, user, write, fetch)?
        } else {
            self.walk(bus, lin, user, write)?
        };
        let mut entry = entry;
        if self.v386.is_some() {
            // V386 mode: the guest's "physical" page is a guest-physical one, translated
            // again by the VMM's tables (docs/v386.md §6.4).
            entry = self.slt_fill(bus, entry, lin, user, write, fetch)?;
        }
        if !bus.a20_enabled() {
            // The A20 gate closed: physical address line 20 reads as 0, so the first MiB
            // wraps as on an 8086 (IBM PC/AT Technical Reference, "Address Line A20").
            // Applied to the final address; page-table reads are not masked.
            entry.phys_page &= !0x100;
            entry.direct = bus.is_direct_read(entry.phys_page);
            entry.direct_write = bus.is_direct(entry.phys_page);
        }
        self.tlb.entries[page as usize & (ENTRIES - 1)] = entry;
        Ok(entry)
    }

    /// PAE paging is in use: CR0.PG and CR4.PAE (SDM Vol. 3A §4.1.1).
    #[inline]
    pub fn pae_paging(&self) -> bool {
        self.cr0 & cr0::PG != 0 && self.cr4 & cr4::PAE != 0
    }

    /// Load the four PDPTEs from the 32-byte table at CR3 bits 31:5 (SDM Vol. 3A §4.4.1,
    /// Table 4-7). If a present PDPTE sets a reserved bit (Table 4-8) the MOV to CR that
    /// asked for the load raises #GP(0) and nothing is loaded: the caller then leaves the
    /// control register unchanged.
    pub(crate) fn load_pdptes<B: Bus>(&mut self, bus: &mut B, cr3: u32) -> Result<(), Exception> {
        let base = cr3 & 0xffff_ffe0;
        let mut p = [0u64; 4];
        for (i, e) in p.iter_mut().enumerate() {
            *e = self.pt_read64(bus, (base + 8 * i as u32) as u64, None)?;
            if *e & pte::P as u64 != 0 && *e & PDPTE_RSVD != 0 {
                return Err(Exception::GP(0));
            }
        }
        self.pdpte = p;
        Ok(())
    }

    /// The PAE walk (SDM Vol. 3A §4.4.2): PDPTE (already loaded), PDE, then PTE unless the
    /// PDE maps a 2 MiB page. Reserved bits fault with RSVD (§4.7); with EFER.NXE set, XD in
    /// the PDE or PTE forbids fetches, at any privilege (§4.6.1), and every fault of a fetch
    /// reports I/D (§4.7: I/D is reported when NXE is 1).
    fn walk_pae<B: Bus>(
        &mut self,
        bus: &mut B,
        lin: u32,
        user: bool,
        write: bool,
        fetch: bool,
    ) -> Result<TlbEntry, Exception> {
        let nxe = self.msr.efer & EFER_NXE != 0;
        let fault = |bits: u16| {
            let mut code = bits;
            if write {
                code |= pf::WRITE;
            }
            if user {
                code |= pf::USER;
            }
            if fetch && nxe {
                code |= pf::FETCH;
            }
            Exception::PF { addr: lin, code }
        };
        // XD is reserved unless NXE is set (Tables 4-9 to 4-11).
        let rsvd = if nxe { PAE_RSVD_HIGH } else { PAE_RSVD_HIGH | XD };
        let pdpte = self.pdpte[(lin >> 30) as usize];
        if pdpte & pte::P as u64 == 0 {
            return Err(fault(0));
        }
        let pde_addr = (pdpte & PAE_ADDR) | (((lin >> 21) & 0x1ff) as u64 * 8);
        let mut pde = self.pt_read64(bus, pde_addr, Some(lin))?;
        if pde & pte::P as u64 == 0 {
            return Err(fault(0));
        }
        let large = pde & pte::PS as u64 != 0;
        if pde & rsvd != 0 || (large && pde & PDE2M_RSVD != 0) {
            return Err(fault(pf::PRESENT | pf::RSVD));
        }
        let (phys, combined, pte_addr, mut pte_val) = if large {
            // 2 MiB page: bits 35:21 of the PDE are the frame (Table 4-9).
            let frame = (pde & PAE_ADDR & !0x1f_ffff) | (lin & 0x1f_f000) as u64;
            (frame, pde, pde_addr, pde)
        } else {
            let pte_addr = (pde & PAE_ADDR) | (((lin >> 12) & 0x1ff) as u64 * 8);
            let pte_val = self.pt_read64(bus, pte_addr, Some(lin))?;
            if pte_val & pte::P as u64 == 0 {
                return Err(fault(0));
            }
            if pte_val & rsvd != 0 {
                return Err(fault(pf::PRESENT | pf::RSVD));
            }
            // R/W and U/S combine by AND, XD by OR (§4.6.1).
            let combined = (pde & pte_val & !XD) | ((pde | pte_val) & XD);
            (pte_val & PAE_ADDR, combined, pte_addr, pte_val)
        };
        let mut allow = rights(combined as u32, self.cr0 & cr0::WP != 0);
        if nxe && combined & XD != 0 {
            allow &= !(SUP_EXEC | USER_EXEC);
        }
        let want = if fetch { exec_bit(user) } else { access_bit(user, write) };
        if allow & want == 0 {
            return Err(fault(pf::PRESENT));
        }
        // Accessed bits on every level walked, dirty on the final one for writes (§4.8);
        // they live in the low dword, which is all that is written back.
        if pde & pte::A as u64 == 0 {
            pde |= pte::A as u64;
            self.pt_write32(bus, pde_addr, pde as u32, lin)?;
            if large {
                pte_val = pde;
            }
        }
        let (a, d) = (pte::A as u64, pte::D as u64);
        if pte_val & a == 0 || (write && pte_val & d == 0) {
            pte_val |= a;
            if write {
                pte_val |= d;
            }
            self.pt_write32(bus, pte_addr, pte_val as u32, lin)?;
        }
        if pte_val & d == 0 {
            allow &= !(SUP_WRITE | USER_WRITE);
        }
        if large {
            self.tlb.has_large = true;
        }
        let global = pte_val & pte::G as u64 != 0 && self.cr4 & cr4::PGE != 0;
        let phys_page = (phys >> 12) as u32;
        // Frames above 4 GiB are never RAM: the slow path treats them as unbacked.
        let low = phys < 1 << 32;
        Ok(TlbEntry {
            lin_page: lin >> 12,
            phys_page,
            allow,
            direct: low && bus.is_direct_read(phys_page),
            direct_write: low && bus.is_direct(phys_page),
            global,
        })
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
        let mut pde = self.pt_read32(bus, pde_addr, lin)?;
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
            let pte_val = self.pt_read32(bus, pte_addr, lin)?;
            if pte_val & pte::P == 0 {
                return Err(fault(false));
            }
            (pte_val >> 12, pde & pte_val, pte_val & pte::G != 0, pte_addr, pte_val)
        };
        let mut allow = rights(combined, self.cr0 & cr0::WP != 0);
        if allow & access_bit(user, write) == 0 {
            return Err(fault(true));
        }
        // Accessed bits on every level walked, dirty on the final one for writes.
        if pde & pte::A == 0 {
            pde |= pte::A;
            self.pt_write32(bus, pde_addr as u64, pde, lin)?;
            if large {
                pte_val = pde;
            }
        }
        if pte_val & pte::A == 0 || (write && pte_val & pte::D == 0) {
            pte_val |= pte::A;
            if write {
                pte_val |= pte::D;
            }
            self.pt_write32(bus, pte_addr as u64, pte_val, lin)?;
        }
        let dirty = pte_val & pte::D != 0;
        if !dirty {
            allow &= !(SUP_WRITE | USER_WRITE);
        }
        if large {
            self.tlb.has_large = true;
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

/// Protection (SDM Vol. 3A §4.6) from the AND of the levels' R/W and U/S bits: user
/// accesses need U/S in both levels and, to write, R/W in both; supervisor writes need R/W
/// in both only when CR0.WP is set. Fetches need what reads need (execute-disable is the
/// PAE walk's business).
fn rights(combined: u32, wp: bool) -> u8 {
    let u_ok = combined & pte::US != 0;
    let w_ok = combined & pte::RW != 0;
    let mut allow = SUP_READ | SUP_EXEC;
    if w_ok || !wp {
        allow |= SUP_WRITE;
    }
    if u_ok {
        allow |= USER_READ | USER_EXEC;
        if w_ok {
            allow |= USER_WRITE;
        }
    }
    allow
}

/// A 64-bit paging-structure read at a 36-bit physical address; above 4 GiB nothing is
/// backed and the read returns all ones.
pub(crate) fn read_phys64<B: Bus>(bus: &mut B, addr: u64) -> u64 {
    if addr >= 1 << 32 {
        return u64::MAX;
    }
    let a = addr as u32;
    read_phys32(bus, a) as u64 | (read_phys32(bus, a.wrapping_add(4)) as u64) << 32
}

/// The low dword of a 64-bit entry (accessed and dirty bits); dropped above 4 GiB.
pub(crate) fn write_phys32_at<B: Bus>(bus: &mut B, addr: u64, v: u32) {
    if addr < 1 << 32 {
        write_phys32(bus, addr as u32, v);
    }
}

/// A page-table read: paging structures live in physical memory.
pub(crate) fn read_phys32<B: Bus>(bus: &mut B, addr: u32) -> u32 {
    let page = addr >> 12;
    if bus.is_direct(page) {
        let a = addr as usize;
        let r = bus.ram();
        u32::from_le_bytes([r[a], r[a + 1], r[a + 2], r[a + 3]])
    } else {
        bus.mmio_read(crate::addr::Phys(addr), crate::bus::IoSize::Dword)
    }
}

pub(crate) fn write_phys32<B: Bus>(bus: &mut B, addr: u32, v: u32) {
    let page = addr >> 12;
    if bus.is_direct(page) {
        let a = addr as usize;
        bus.ram()[a..a + 4].copy_from_slice(&v.to_le_bytes());
    } else {
        bus.mmio_write(crate::addr::Phys(addr), crate::bus::IoSize::Dword, v);
    }
}

/// One byte at a 36-bit physical address (the V386 I/O bitmap); all ones where nothing is.
pub(crate) fn read_phys8<B: Bus>(bus: &mut B, addr: u64) -> u8 {
    if addr >= 1 << 32 {
        return 0xff;
    }
    let a = addr as u32;
    if bus.is_direct_read(a >> 12) {
        bus.ram().get(a as usize).copied().unwrap_or(0xff)
    } else {
        bus.mmio_read(crate::addr::Phys(a), crate::bus::IoSize::Byte) as u8
    }
}
