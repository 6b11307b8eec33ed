//! The guest as the monitor sees it: its linear addresses translated by *its own* page
//! tables (two-level 32-bit paging with 4 MiB pages, SDM Vol. 3A §4.3), its memory read
//! and written through that translation, and its descriptor tables. The processor never
//! uses these tables while the guest runs — it walks the shadow tables (`shadow.rs`) —
//! so every walk here is the monitor's software walk.

use super::World;
use crate::addr::{GuestPhys, Linear};
use crate::bus::Bus;
use crate::cpu::cr0;
use crate::cpu::cr4;

/// PTE/PDE bits (SDM Vol. 3A §4.3, Tables 4-5 and 4-6): the MMU's.
pub use crate::cpu::mmu::pte;

/// A guest translation that succeeded.
#[derive(Clone, Copy, Debug)]
pub struct Walk {
    /// The guest-physical address.
    pub gpa: GuestPhys,
    /// The guest lets a write happen (its R/W bits, with CR0.WP for supervisor writes).
    pub writable: bool,
    /// The guest's U/S: ring 3 may access the page.
    pub user: bool,
    /// The guest's D bit is set (or the guest is not paging): a shadow entry may be
    /// writable without missing a dirty-bit update.
    pub dirty: bool,
    /// PCD | PWT from the guest's entry, kept in the shadow entry.
    pub cache: u32,
    /// The frame of the guest page table the walk read the PTE from (None for a 4 MiB page or no
    /// paging): the page the shadow entry depends on besides the page directory.
    pub pt_frame: Option<u32>,
}

/// A guest translation that failed: the #PF the guest must see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPf {
    pub addr: u32,
    /// The error code (SDM Vol. 3A §4.7): P, W/R, U/S.
    pub code: u16,
}

/// Why an access by the monitor to guest memory failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// The guest's tables say no: the guest gets this #PF.
    Pf(GuestPf),
    /// The guest-physical address is not the guest's RAM.
    NotRam(u32),
}

impl World<'_, '_> {
    /// Translate `lin` as the guest's MMU would for an access by `user` code, setting the
    /// accessed and dirty bits in the guest's entries as the processor does (§4.8).
    pub(crate) fn guest_walk(&mut self, lin: Linear, write: bool, user: bool) -> Result<Walk, GuestPf> {
        let lin = lin.0;
        let v = &self.m.v;
        if v.cr0 & cr0::PG == 0 {
            return Ok(Walk { gpa: GuestPhys(lin), writable: true, user: true, dirty: true, cache: 0, pt_frame: None });
        }
        let wp = v.cr0 & cr0::WP != 0;
        let pse = v.cr4 & cr4::PSE != 0;
        let pde_addr = (v.cr3 & !0xfff) | (lin >> 22) << 2;
        let fault =
            |present: bool| GuestPf { addr: lin, code: present as u16 | (write as u16) << 1 | (user as u16) << 2 };
        let pde = self.read_phys32(pde_addr);
        if pde & pte::P == 0 {
            return Err(fault(false));
        }
        let (entry, entry_addr, gpa, pt_frame, rights) = if pse && pde & pte::PS != 0 {
            (pde, pde_addr, (pde & 0xffc0_0000) | (lin & 0x003f_ffff), None, pde)
        } else {
            let pte_addr = (pde & !0xfff) | ((lin >> 12) & 0x3ff) << 2;
            let e = self.read_phys32(pte_addr);
            if e & pte::P == 0 {
                return Err(fault(false));
            }
            (e, pte_addr, (e & !0xfff) | (lin & 0xfff), Some(pde >> 12), pde & e)
        };
        let user_ok = rights & pte::US != 0;
        let rw = rights & pte::RW != 0;
        if user && !user_ok || write && !rw && (user || wp) {
            return Err(fault(true));
        }
        // Accessed bits on both levels, dirty on the last (SDM Vol. 3A §4.8).
        if pde & pte::A == 0 {
            self.write_phys32(pde_addr, pde | pte::A);
        }
        let mut e = entry | pte::A;
        if write {
            e |= pte::D;
        }
        if e != entry {
            self.write_phys32(entry_addr, e);
        }
        Ok(Walk {
            gpa: GuestPhys(gpa),
            writable: rw || !user && !wp,
            user: user_ok,
            dirty: e & pte::D != 0,
            cache: entry & (pte::PCD | pte::PWT),
            pt_frame,
        })
    }

    /// The guest's RAM at guest-physical `gpa`, as a dword (0 outside its RAM).
    pub(crate) fn read_phys32(&self, gpa: u32) -> u32 {
        if gpa.checked_add(4).map_or(true, |end| end > self.m.guest_ram) {
            return 0;
        }
        let a = self.hpa(gpa) as usize;
        let b = &self.bus.bytes()[a..a + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Write a dword of the guest's RAM (the monitor's own update: A/D bits, a pushed
    /// frame), keeping the shadow tables and the decoded-code cache in step with it.
    pub(crate) fn write_phys32(&mut self, gpa: u32, v: u32) {
        self.write_phys(gpa, &v.to_le_bytes());
    }

    pub(crate) fn write_phys(&mut self, gpa: u32, bytes: &[u8]) {
        if gpa as usize + bytes.len() > self.m.guest_ram as usize {
            return;
        }
        let a = self.hpa(gpa) as usize;
        self.bus.ram()[a..a + bytes.len()].copy_from_slice(bytes);
        self.cpu.icache.note_write(a as u32 >> 12);
        self.guest_wrote(GuestPhys(gpa), bytes.len() as u32);
    }

    /// Read `out.len()` bytes of guest-linear memory with the rights of `user` code.
    pub(crate) fn read_lin(&mut self, lin: u32, out: &mut [u8], user: bool) -> Result<(), MemError> {
        for (k, b) in out.iter_mut().enumerate() {
            let l = lin.wrapping_add(k as u32);
            let gpa = self.guest_walk(Linear(l), false, user).map_err(MemError::Pf)?.gpa.0;
            if gpa >= self.m.guest_ram {
                return Err(MemError::NotRam(gpa));
            }
            *b = self.bus.bytes()[self.hpa(gpa) as usize];
        }
        Ok(())
    }

    pub(crate) fn read_lin32(&mut self, lin: u32, user: bool) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        self.read_lin(lin, &mut b, user)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Write guest-linear memory with the rights of `user` code; the page-table checks
    /// come first for every byte, so a faulting write changes nothing.
    pub(crate) fn write_lin(&mut self, lin: u32, bytes: &[u8], user: bool) -> Result<(), MemError> {
        let mut gpas = [0u32; 16];
        for (k, g) in gpas.iter_mut().enumerate().take(bytes.len()) {
            let gpa = self.guest_walk(Linear(lin.wrapping_add(k as u32)), true, user).map_err(MemError::Pf)?.gpa.0;
            if gpa >= self.m.guest_ram {
                return Err(MemError::NotRam(gpa));
            }
            *g = gpa;
        }
        for (k, b) in bytes.iter().enumerate() {
            self.write_phys(gpas[k], &[*b]);
        }
        Ok(())
    }

    /// The guest's descriptor for `sel` from its GDT or (TI set) its LDT, or None when
    /// the selector is outside the table.
    pub(crate) fn guest_descriptor(&mut self, sel: u16) -> Option<(u32, u32)> {
        let (base, limit) = if sel & 4 != 0 {
            if self.m.v.ldtr & !3 == 0 {
                return None;
            }
            (self.m.v.ldt_base, self.m.v.ldt_limit)
        } else {
            (self.m.v.gdtr.base, self.m.v.gdtr.limit as u32)
        };
        let off = (sel & !7) as u32;
        if off + 7 > limit {
            return None;
        }
        let lo = self.read_lin32(base.wrapping_add(off), false).ok()?;
        let hi = self.read_lin32(base.wrapping_add(off + 4), false).ok()?;
        Some((lo, hi))
    }
}
