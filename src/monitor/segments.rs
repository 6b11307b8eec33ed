//! Ring compression: the shadow GDT and LDT the processor uses while the guest runs.
//! Each of the guest's code and data descriptors is copied with DPL 0 made DPL 1, so the
//! kernel's selectors work at ring 1; system descriptors (the guest's TSS, LDTs, gates)
//! are left out, since the processor must never use them; the monitor's own LDT, code,
//! data and TSS descriptors sit at the GDT's end. Copies are made at LGDT and LLDT, and
//! kept up to date as below. The processor's LDTR holds the monitor's LDT descriptor, so
//! a plain SLDT shows the guest the monitor's selector.
//!
//! The pages the tables lie in are traced as the guest's page tables are
//! ([`TableFrame`]): a guest that edits a loaded table (Linux writes its threads' TLS
//! descriptors into its GDT at every context switch, without LGDT) faults to the monitor,
//! which performs the write and copies the descriptors it touched again — what VMware's
//! monitor did for the GDT (Adams & Agesen §2.4).
//!
//! A selector the guest loaded with RPL 0 is held by the processor with RPL 1: that is
//! what PUSH CS and MOV r, SS show the guest on the classic x86 ([`visible`] is what
//! they should show).

use super::{
    MonitorError, World, GDT_OFF, GDT_PAGES, LDT_OFF, LDT_PAGES, MONITOR_LIN, MON_CODE, MON_DATA, MON_LDT, MON_TSS,
    TSS_OFF,
};
use crate::bus::Bus;
use crate::cpu::decode::{CS, DS, ES, FS, GS, SS};
use crate::cpu::seg::Seg;
use alloc::format;

/// Descriptor access-byte bits (SDM Vol. 3A §3.4.5).
const S: u32 = 1 << 12;
const DPL_SHIFT: u32 = 13;
const ACCESSED: u32 = 1 << 8;

/// A guest frame holding part of its GDT (`ti` 0) or LDT (`ti` 4), and the linear address
/// of the table's page in it.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct TableFrame {
    pub frame: u32,
    pub lin: u32,
    pub ti: u16,
}

/// What the guest should see for a selector the processor holds (RPL 1 is the guest's
/// RPL 0).
pub(crate) fn visible(sel: u16) -> u16 {
    if sel & 3 == 1 {
        sel & !3
    } else {
        sel
    }
}

/// The selector the processor loads for one the guest names (RPL 0 → 1).
pub(crate) fn real(sel: u16) -> u16 {
    if sel & 3 == 0 && sel & !3 != 0 {
        sel | 1
    } else {
        sel
    }
}

impl World<'_, '_> {
    /// Host-physical address of the shadow descriptor for `sel` (TI picks the LDT).
    fn shadow_desc_addr(&self, sel: u16) -> usize {
        let table = if sel & 4 != 0 { LDT_OFF } else { GDT_OFF };
        (self.m.mon + table) as usize + (sel & !7) as usize
    }

    fn put_descriptor(&mut self, sel: u16, lo: u32, hi: u32) {
        let a = self.shadow_desc_addr(sel);
        self.bus.ram()[a..a + 4].copy_from_slice(&lo.to_le_bytes());
        self.bus.ram()[a + 4..a + 8].copy_from_slice(&hi.to_le_bytes());
    }

    fn shadow_descriptor(&self, sel: u16) -> (u32, u32) {
        let a = self.shadow_desc_addr(sel);
        let r = self.bus.bytes();
        (
            u32::from_le_bytes([r[a], r[a + 1], r[a + 2], r[a + 3]]),
            u32::from_le_bytes([r[a + 4], r[a + 5], r[a + 6], r[a + 7]]),
        )
    }

    /// Copy `entries` descriptors of the guest's GDT (`ti` 0) or LDT (`ti` 4) into the
    /// shadow, code and data only, compressing ring 0 into ring 1.
    fn copy_table(&mut self, ti: u16, first: u32, entries: u32) {
        for i in first..entries {
            let sel = (i * 8) as u16 | ti;
            let Some((lo, mut hi)) = self.guest_descriptor(sel) else { continue };
            if hi & S == 0 {
                continue;
            }
            if (hi >> DPL_SHIFT) & 3 == 0 {
                hi |= 1 << DPL_SHIFT;
            }
            // Accessed already, so loads never write the (read-only) shadow table.
            self.put_descriptor(sel, lo, hi | ACCESSED);
        }
    }

    /// Copy the guest's GDT into the shadow, compressing ring 0 into ring 1.
    pub(crate) fn rebuild_gdt(&mut self) {
        let a = (self.m.mon + GDT_OFF) as usize;
        self.bus.ram()[a..a + (GDT_PAGES * 4096) as usize].fill(0);
        let entries = ((self.m.v.gdtr.limit as u32 + 1) / 8).min(MON_LDT as u32 / 8);
        self.copy_table(0, 1, entries);
        self.put_ldt_descriptor();
        let gdtr = self.m.v.gdtr;
        self.trace_table(0, gdtr.base, gdtr.limit as u32);
        // Flat 4 GiB ring-1 code and data, the monitor's TSS (32-bit, busy, limit 103).
        self.put_descriptor(MON_CODE, 0x0000_ffff, 0x00cf_bb00);
        self.put_descriptor(MON_DATA, 0x0000_ffff, 0x00cf_b300);
        let base = MONITOR_LIN + TSS_OFF;
        self.put_descriptor(MON_TSS, (base << 16) | 103, (base & 0xff00_0000) | ((base >> 16) & 0xff) | 0x8b00);
    }

    /// The shadow LDT's descriptor in the shadow GDT, as long as the guest has an LDT.
    fn put_ldt_descriptor(&mut self) {
        if self.m.v.ldtr & !3 == 0 {
            self.put_descriptor(MON_LDT, 0, 0);
            return;
        }
        let entries = ((self.m.v.ldt_limit as u64 + 1) / 8).clamp(1, (LDT_PAGES * 512) as u64) as u32;
        let (base, limit) = (MONITOR_LIN + LDT_OFF, entries * 8 - 1);
        // Present, DPL 0, type 2 (LDT), byte granular (SDM Vol. 3A §3.5).
        let hi = (base & 0xff00_0000) | (limit & 0x000f_0000) | 0x8200 | ((base >> 16) & 0xff);
        self.put_descriptor(MON_LDT, (base << 16) | (limit & 0xffff), hi);
    }

    /// Copy the guest's LDT into the shadow one and point the processor's LDTR at it
    /// (a null LDTR when the guest has none).
    pub(crate) fn rebuild_ldt(&mut self) {
        let a = (self.m.mon + LDT_OFF) as usize;
        self.bus.ram()[a..a + (LDT_PAGES * 4096) as usize].fill(0);
        self.put_ldt_descriptor();
        if self.m.v.ldtr & !3 == 0 {
            self.m.tables.retain(|t| t.ti != 4);
            self.cpu.ldtr = Seg::null(0);
            return;
        }
        let entries = ((self.m.v.ldt_limit as u64 + 1) / 8).min((LDT_PAGES * 512) as u64) as u32;
        self.copy_table(4, 0, entries);
        self.cpu.ldtr = self.seg_from_shadow(MON_LDT);
        let (base, limit) = (self.m.v.ldt_base, self.m.v.ldt_limit);
        self.trace_table(4, base, limit);
    }

    /// Trace the guest frames of the table `ti` (0 the GDT, 4 the LDT) at linear `base`
    /// with `limit`: no shadow entry maps them writable from now on.
    fn trace_table(&mut self, ti: u16, base: u32, limit: u32) {
        self.m.tables.retain(|t| t.ti != ti);
        let mut lin = base & !0xfff;
        let last = base.wrapping_add(limit.min(0xffff)) & !0xfff;
        loop {
            if let Ok(w) = self.guest_walk(crate::addr::Linear(lin), false, false) {
                if w.gpa.0 < self.m.guest_ram {
                    let frame = w.gpa.page();
                    self.m.tables.push(TableFrame { frame, lin, ti });
                    self.write_protect(frame);
                }
            }
            if lin == last {
                break;
            }
            lin = lin.wrapping_add(0x1000);
        }
    }

    /// `len` bytes at `offset` in guest frame `frame`, part of its GDT or LDT, changed:
    /// copy the descriptors they touch into the shadow again (a segment register keeps
    /// what it loaded, as on the processor, until it is loaded again).
    pub(crate) fn table_wrote(&mut self, frame: u32, offset: u32, len: u32) {
        let hits: alloc::vec::Vec<(u32, u16)> =
            self.m.tables.iter().filter(|t| t.frame == frame).map(|t| (t.lin, t.ti)).collect();
        for (page_lin, ti) in hits {
            let (base, limit, entries) = if ti == 0 {
                (self.m.v.gdtr.base, self.m.v.gdtr.limit as i64, MON_LDT as i64 / 8)
            } else {
                (self.m.v.ldt_base, self.m.v.ldt_limit as i64, (LDT_PAGES * 512) as i64)
            };
            // Byte offsets in the table (negative: before its base on the page).
            let start = page_lin.wrapping_add(offset).wrapping_sub(base) as i32 as i64;
            let end = start + len as i64 - 1;
            let first = (start.max(0) / 8).max(if ti == 0 { 1 } else { 0 });
            let last = (end.min(limit) / 8).min(entries - 1);
            for idx in first..=last {
                let sel = (idx as u16) << 3 | ti;
                self.put_descriptor(sel, 0, 0);
                self.copy_table(ti, idx as u32, idx as u32 + 1);
            }
        }
    }

    /// LLDT `sel` (SDM Vol. 2A "LLDT"): the guest's LDT becomes the virtual LDTR and is
    /// copied into the shadow. Errors are the guest's #GP/#NP: (vector, error code).
    pub(crate) fn guest_lldt(&mut self, sel: u16) -> Result<(), (u8, u16)> {
        if sel & !3 == 0 {
            self.m.v.ldtr = sel;
            (self.m.v.ldt_base, self.m.v.ldt_limit) = (0, 0);
            self.rebuild_ldt();
            return Ok(());
        }
        if sel & 4 != 0 {
            return Err((13, sel & !3));
        }
        let (lo, hi) = self.guest_descriptor(sel).ok_or((13, sel & !3))?;
        if hi & S != 0 || (hi >> 8) & 0xf != 2 {
            return Err((13, sel & !3));
        }
        let seg = Seg::from_descriptor(sel, lo, hi);
        if !seg.present() {
            return Err((11, sel & !3));
        }
        self.m.v.ldtr = sel;
        (self.m.v.ldt_base, self.m.v.ldt_limit) = (seg.base, seg.limit);
        self.rebuild_ldt();
        Ok(())
    }

    /// The guest's segments as it left them at the start (flat, from the loader) become
    /// the monitor's flat ring-1 ones; TR is the monitor's TSS.
    pub(crate) fn load_monitor_segments(&mut self) {
        let code = self.seg_from_shadow(MON_CODE | 1);
        let data = self.seg_from_shadow(MON_DATA | 1);
        let tss = self.seg_from_shadow(MON_TSS);
        let c = &mut self.cpu;
        c.segs[CS as usize] = code;
        for r in [DS, ES, FS, GS, SS] {
            c.segs[r as usize] = data;
        }
        c.tr = tss;
        c.cpl = 1;
    }

    fn seg_from_shadow(&self, sel: u16) -> Seg {
        let (lo, hi) = self.shadow_descriptor(sel);
        Seg::from_descriptor(sel, lo, hi)
    }

    /// Load segment register `reg` with the guest's selector `sel` as the processor
    /// would at the guest's privilege level, from the shadow copy (RPL 0 held as 1).
    /// Errors are the guest's #GP/#SS/#NP to deliver: (vector, error code).
    pub(crate) fn load_guest_seg(&mut self, reg: u8, sel: u16) -> Result<(), (u8, u16)> {
        if sel & !3 == 0 {
            if reg == SS || reg == CS {
                return Err((13, 0));
            }
            self.cpu.segs[reg as usize] = Seg::null(sel);
            return Ok(());
        }
        let outside = if sel & 4 != 0 {
            self.m.v.ldtr & !3 == 0 || (sel | 7) as u32 > self.m.v.ldt_limit || (sel & !7) as u32 >= LDT_PAGES * 4096
        } else {
            (sel & !7) >= MON_LDT || (sel | 7) as u32 > self.m.v.gdtr.limit as u32
        };
        if outside {
            return Err((13, sel & !3));
        }
        let r = real(sel);
        let seg = self.seg_from_shadow(r);
        if seg.access & 0x10 == 0 {
            return Err((13, sel & !3));
        }
        if !seg.present() {
            return Err((if reg == SS { 12 } else { 11 }, sel & !3));
        }
        let c = &mut self.cpu;
        c.segs[reg as usize] = seg;
        if reg == CS {
            c.cpl = (r & 3) as u8;
        }
        Ok(())
    }

    /// LTR: the guest's TSS becomes the virtual TR (busy in the guest's GDT, as the
    /// processor marks it); the processor keeps the monitor's.
    pub(crate) fn guest_ltr(&mut self, sel: u16) -> Result<(), MonitorError> {
        let Some((lo, hi)) = self.guest_descriptor(sel) else {
            return Err(MonitorError::Unsupported(format!("LTR {sel:#x} outside the GDT")));
        };
        let seg = Seg::from_descriptor(sel, lo, hi);
        self.m.v.tr = sel;
        self.m.v.tr_base = seg.base;
        let at = self.m.v.gdtr.base.wrapping_add((sel & !7) as u32 + 4);
        let _ = self.write_lin(at, &(hi | 0x200).to_le_bytes(), false);
        Ok(())
    }
}
