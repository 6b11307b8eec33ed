//! Shadow page tables: the tables the processor really walks while the guest runs. They
//! map guest-linear pages straight to host-physical pages (guest RAM is the VM's RAM in
//! host memory, at `ram_base + gpa`; its ROM and device pages are where the VM's
//! second-level map puts them, the pmap of VMware's monitor), are filled on demand from the guest's own tables at *hidden* page faults, and stay right
//! by *tracing*: every guest page table the shadow was built from, and the guest's page
//! directory, is mapped read-only, so a guest write to one faults to the monitor, which
//! performs it and drops the shadow entries it changed. INVLPG and MOV CR3 are
//! privileged (#GP at ring 1) and reach the monitor too. This is the design Adams &
//! Agesen describe for VMware's monitor (§2.4, "tracing") and the one VT-x needed until
//! nested paging.
//!
//! Kept simple where it costs only speed: one shadow at a time (a CR3 load starts
//! afresh), 4 KiB shadow pages for the guest's 4 MiB ones, and a tracked page written by
//! a single-stepped instruction is compared before and after to find what changed.

use super::guest::{pte, Walk};
use super::{MonitorError, MonitorExit, World, MONITOR_SLOT};
use crate::addr::{GuestPhys, Linear};
use crate::bus::Bus;
use crate::cpu::v386::slt::bits as slt_bits;
use crate::vmm::allocator::slt_lookup;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

const PAGE: usize = 4096;

/// The shadow tables' bookkeeping.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Shadow {
    /// Host-physical address of the shadow page directory (CR3 while the guest runs).
    pub pd: u32,
    /// The shadow page table behind each directory slot (0: none).
    pts: Vec<u32>,
    /// Pages for shadow page tables not in use.
    free: Vec<u32>,
    /// Guest page tables the shadow was built from → the directory slots that use them.
    pt_users: BTreeMap<u32, Vec<u16>>,
    /// The guest page directory's frame while the guest pages.
    pd_frame: Option<u32>,
}

impl Shadow {
    pub fn new(pd: u32, pool: impl Iterator<Item = u32>) -> Shadow {
        Shadow { pd, pts: alloc::vec![0; 1024], free: pool.collect(), pt_users: BTreeMap::new(), pd_frame: None }
    }
}

impl World<'_, '_> {
    fn ram32(&self, pa: u32) -> u32 {
        let a = pa as usize;
        let b = &self.bus.bytes()[a..a + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn set_ram32(&mut self, pa: u32, v: u32) {
        let a = pa as usize;
        self.bus.ram()[a..a + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Throw the whole shadow away (a CR3 load, paging turned on or off, the pool ran
    /// dry): every slot but the monitor's, and the tracing with it.
    pub(crate) fn shadow_reset(&mut self) {
        for slot in 0..1024 {
            if slot != MONITOR_SLOT {
                self.drop_slot(slot);
            }
        }
        self.m.shadow.pt_users.clear();
        self.m.shadow.pd_frame = if self.paging() { Some(self.m.v.cr3 >> 12) } else { None };
        self.m.counters.shadow_resets += 1;
        self.cpu.tlb.flush_all();
    }

    /// Forget the shadow page table of directory slot `slot`.
    fn drop_slot(&mut self, slot: usize) {
        let pt = core::mem::take(&mut self.m.shadow.pts[slot]);
        if pt != 0 {
            self.bus.ram()[pt as usize..pt as usize + PAGE].fill(0);
            self.m.shadow.free.push(pt);
            for users in self.m.shadow.pt_users.values_mut() {
                users.retain(|s| *s as usize != slot);
            }
            self.m.shadow.pt_users.retain(|_, u| !u.is_empty());
        }
        let pd = self.m.shadow.pd;
        self.set_ram32(pd + slot as u32 * 4, 0);
    }

    /// Whether the guest may not write guest frame `frame` directly: a page table or
    /// directory the shadow depends on, a page of its GDT or LDT, or
    /// (scan-before-execute) scanned code.
    pub(crate) fn protected(&self, frame: u32) -> bool {
        self.m.shadow.pd_frame == Some(frame)
            || self.m.shadow.pt_users.contains_key(&frame)
            || self.m.tables.iter().any(|t| t.frame == frame)
            || self.scan_protects(frame)
    }

    /// A hidden page fault: the guest's tables map `lin` (`w`), the shadow did not.
    /// Enter the translation, read-only where the guest frame is protected or not dirty
    /// yet (so the first write sets the guest's D bit).
    pub(crate) fn shadow_fill(&mut self, lin: Linear, w: &Walk, write: bool) -> Result<(), MonitorExit> {
        let slot = (lin.0 >> 22) as usize;
        if slot == MONITOR_SLOT {
            return Err(MonitorExit::Error(MonitorError::MonitorArea(lin.0)));
        }
        // Where the VM's second-level map puts the page: RAM at `ram_base + gpa`, the
        // VGA window and other device memory in the VM's device window, ROM read-only.
        let (host_frame, host_writable) = match slt_lookup(self.bus.bytes(), self.m.slt_root, w.gpa.page() as u64) {
            Some((page, perm)) => ((page << 12) as u32, perm & slt_bits::W != 0),
            None => return Err(MonitorExit::MapPage(w.gpa.page())),
        };
        if write && !host_writable {
            let what = alloc::format!("a write to read-only memory at {:#010x}", w.gpa.0);
            return Err(MonitorExit::Error(MonitorError::Unsupported(what)));
        }
        // A page table outside the guest's RAM reads as zeros (`read_phys32`): nothing
        // there to trace.
        if let Some(f) = w.pt_frame.filter(|f| *f < self.m.guest_ram >> 12) {
            self.trace(f, slot as u16);
        }
        let pt = self.slot_table(slot);
        let frame = w.gpa.page();
        let mut e = host_frame | pte::P | w.cache;
        if w.user {
            e |= pte::US;
        }
        if w.writable && w.dirty && !self.protected(frame) && host_writable {
            e |= pte::RW;
        }
        self.set_ram32(pt + ((lin.0 >> 12) & 0x3ff) * 4, e);
        self.cpu.tlb.flush_page(lin.page());
        self.m.counters.shadow_fills += 1;
        Ok(())
    }

    /// The shadow page table of `slot`, made when missing (the pool refilled by a reset
    /// when it ran dry).
    fn slot_table(&mut self, slot: usize) -> u32 {
        if self.m.shadow.pts[slot] == 0 {
            if self.m.shadow.free.is_empty() {
                self.shadow_reset();
            }
            let pt = self.m.shadow.free.pop().unwrap_or(0);
            self.m.shadow.pts[slot] = pt;
            let pd = self.m.shadow.pd;
            self.set_ram32(pd + slot as u32 * 4, pt | pte::P | pte::RW | pte::US);
        }
        self.m.shadow.pts[slot]
    }

    /// Start tracing guest page table `frame` (used by directory slot `slot`): from now
    /// on no shadow entry maps it writable.
    fn trace(&mut self, frame: u32, slot: u16) {
        let new = !self.protected(frame);
        let users = self.m.shadow.pt_users.entry(frame).or_default();
        if !users.contains(&slot) {
            users.push(slot);
        }
        if new {
            self.write_protect(frame);
        }
    }

    /// Clear W in every shadow entry that maps guest frame `frame`.
    pub(crate) fn write_protect(&mut self, frame: u32) {
        if frame >= self.m.guest_ram >> 12 {
            // Not RAM: no shadow entry maps it writable to begin with.
            return;
        }
        let host_frame = self.hpa(frame << 12) >> 12;
        let mut changed = false;
        for slot in 0..1024 {
            let pt = self.m.shadow.pts[slot];
            if pt == 0 || slot == MONITOR_SLOT {
                continue;
            }
            for i in 0..1024u32 {
                let e = self.ram32(pt + i * 4);
                if e & pte::P != 0 && e & pte::RW != 0 && e >> 12 == host_frame {
                    self.set_ram32(pt + i * 4, e & !pte::RW);
                    changed = true;
                }
            }
        }
        if changed {
            self.cpu.tlb.flush_all();
        }
    }

    /// INVLPG: the shadow entry for `lin` goes (the guest's may have changed).
    pub(crate) fn shadow_invlpg(&mut self, lin: Linear) {
        let slot = (lin.0 >> 22) as usize;
        let pt = self.m.shadow.pts[slot];
        if pt != 0 && slot != MONITOR_SLOT {
            self.set_ram32(pt + ((lin.0 >> 12) & 0x3ff) * 4, 0);
        }
        self.cpu.tlb.flush_page(lin.page());
    }

    /// `len` bytes at `gpa` changed under the monitor's eyes (its own write, or an
    /// instruction it stepped on a protected page): drop the shadow entries built from
    /// them, and let the scanner forget code there.
    pub(crate) fn guest_wrote(&mut self, gpa: GuestPhys, len: u32) {
        let frame = gpa.page();
        let first = gpa.page_offset() / 4;
        let last = ((gpa.page_offset() + len.max(1) - 1) / 4).min(1023);
        let mut changed = false;
        if self.m.shadow.pd_frame == Some(frame) {
            for slot in first..=last {
                if slot as usize != MONITOR_SLOT && self.m.shadow.pts[slot as usize] != 0 {
                    self.drop_slot(slot as usize);
                    changed = true;
                }
            }
        }
        if let Some(users) = self.m.shadow.pt_users.get(&frame).cloned() {
            for slot in users {
                let pt = self.m.shadow.pts[slot as usize];
                for i in first..=last {
                    self.set_ram32(pt + i * 4, 0);
                }
                changed = true;
            }
        }
        if changed {
            self.cpu.tlb.flush_all();
        }
        if self.m.tables.iter().any(|t| t.frame == frame) {
            self.table_wrote(frame, gpa.page_offset(), len.max(1));
        }
        self.scan_note_write(frame);
    }

    /// A write fault on a protected page the guest may write: make the page writable for
    /// one instruction, step it, protect the page again and act on what changed.
    pub(crate) fn traced_write(&mut self, lin: Linear, w: &Walk) -> Result<(), MonitorError> {
        let slot = (lin.0 >> 22) as usize;
        let pt = self.slot_table(slot);
        let at = pt + ((lin.0 >> 12) & 0x3ff) * 4;
        let frame_gpa = w.gpa.0 & !0xfff;
        let frame_addr = self.hpa(frame_gpa) as usize;
        let before: Vec<u8> = self.bus.bytes()[frame_addr..frame_addr + PAGE].to_vec();
        let mut e = frame_addr as u32 | pte::P | pte::RW | w.cache;
        if w.user {
            e |= pte::US;
        }
        self.set_ram32(at, e);
        self.cpu.tlb.flush_page(lin.page());
        self.step_guest();
        // Read-only again: the next write faults to here at once.
        if self.m.shadow.pts[slot] == pt {
            self.set_ram32(at, e & !pte::RW);
        }
        self.cpu.tlb.flush_page(lin.page());
        let mut i = 0;
        while i < PAGE {
            if self.bus.bytes()[frame_addr + i..frame_addr + i + 4] != before[i..i + 4] {
                self.guest_wrote(GuestPhys(frame_gpa + i as u32), 4);
            }
            i += 4;
        }
        self.m.counters.traced_writes += 1;
        Ok(())
    }
}
