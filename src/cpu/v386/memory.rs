//! How the processor reaches memory in V386 mode (docs/v386.md §5.6, §6): TLB fills go
//! through the SLT after the guest's own walk, and the guest walk's own reads and writes
//! of its paging structures (guest-physical addresses) go through it too. Outside V386
//! mode these helpers are the plain physical accesses they replace.

use super::slt::{self, Access, SltFault};
use super::{npf, ExitReason};
use crate::bus::Bus;
use crate::cpu::exception::Exception;
use crate::cpu::mmu::{pte, USER_EXEC, USER_READ, USER_WRITE};
use crate::cpu::mmu::{read_phys32, read_phys64, write_phys32_at, TlbEntry, SUP_EXEC, SUP_READ, SUP_WRITE};
use crate::cpu::{cr0, cr4, Cpu};

/// Bits 35:12 of a PAE paging-structure entry: the next table or the frame (SDM Vol. 3A
/// §4.4.2, Tables 4-8 to 4-11; MAXPHYADDR is 36).
const PAE_FRAME: u64 = ((1 << 36) - 1) & !0xfff;

/// What a guest-physical access is, for the nested-page-fault qualification.
#[derive(Clone, Copy)]
struct Site {
    access: Access,
    /// The guest-linear address, when there is one.
    lin: Option<u32>,
    /// The final access of that linear address (else a guest paging-structure access).
    final_access: bool,
    user: bool,
    system: bool,
}

impl Cpu {
    /// Translate guest-physical `gpa` for `site`, recording a nested-page-fault or
    /// misconfiguration exit when the SLT refuses.
    fn slt_translate<B: Bus>(&mut self, bus: &mut B, gpa: u64, site: Site) -> Result<slt::Translation, Exception> {
        let Some(a) = self.v386.as_deref() else {
            return Ok(slt::Translation { hpa: gpa, perm: 7, dirty: true });
        };
        let root = a.vcb.controls.slt_root;
        let ad = a.vcb.controls.exec & super::vcb::exec::SLT_AD != 0;
        match slt::walk(bus, root, gpa, site.access, ad) {
            Ok(t) => Ok(t),
            Err(f) => {
                let (reason, qual) = match f {
                    SltFault::Violation { level, perm, present } => {
                        let kind = match site.access {
                            Access::Read => npf::READ,
                            Access::Write => npf::WRITE,
                            Access::Fetch => npf::FETCH,
                        };
                        let mut q = kind | (perm as u64) << npf::PERM_SHIFT | (level as u64) << npf::LEVEL_SHIFT;
                        if present {
                            q |= npf::PRESENT;
                        }
                        if site.lin.is_some() {
                            q |= npf::GLA_VALID;
                            if site.final_access {
                                q |= npf::FINAL;
                            }
                        }
                        if site.user {
                            q |= npf::USER;
                        }
                        if site.system {
                            q |= npf::SYSTEM;
                        }
                        (ExitReason::NestedPageFault, q)
                    }
                    SltFault::Misconfig { level } => (ExitReason::SltMisconfig, level as u64),
                };
                // Data accesses carry the instruction's bytes (§4.4); fetches cannot.
                self.record_access_exit(reason, qual, site.access != Access::Fetch);
                if let Some(x) = self.exit_info_mut() {
                    x.guest_physical = gpa;
                    x.guest_linear = site.lin.unwrap_or(0);
                }
                Err(Exception::VmExit)
            }
        }
    }

    /// The guest-physical address of guest-linear `lin` by the guest's own paging, for the
    /// exit information of string I/O (docs/v386.md §4.4 `GUEST_PHYSICAL_ADDRESS`, Table
    /// 8-6: "the first element's address"). A probe, not an access: the exit comes before
    /// the first iteration (§5.4 "Priority"), so it sets no accessed or dirty bit, checks no
    /// permission and raises nothing. None when the guest's tables do not map `lin` or the
    /// SLT does not map one of them. The walks are those of SDM Vol. 3A §4.3 (32-bit, with
    /// PSE 4 MiB pages) and §4.4.2 (PAE, with 2 MiB pages).
    pub(crate) fn guest_physical_probe<B: Bus>(&self, bus: &mut B, lin: u32) -> Option<u64> {
        if self.cr0 & cr0::PG == 0 {
            return Some(lin as u64);
        }
        let root = self.v386.as_deref()?.vcb.controls.slt_root;
        let mut entry = |gpa: u64| -> Option<u64> {
            let t = slt::walk(bus, root, gpa, Access::Read, false).ok()?;
            Some(read_phys64(bus, t.hpa))
        };
        let (p, ps) = (pte::P as u64, pte::PS as u64);
        if self.cr4 & cr4::PAE != 0 {
            let pdpte = self.pdpte[(lin >> 30) as usize];
            if pdpte & p == 0 {
                return None;
            }
            let pde = entry((pdpte & PAE_FRAME) | (((lin >> 21) & 0x1ff) as u64 * 8))?;
            if pde & p == 0 {
                return None;
            }
            if pde & ps != 0 {
                return Some((pde & PAE_FRAME & !0x1f_ffff) | (lin & 0x1f_ffff) as u64);
            }
            let pte = entry((pde & PAE_FRAME) | (((lin >> 12) & 0x1ff) as u64 * 8))?;
            return (pte & p != 0).then_some((pte & PAE_FRAME) | (lin & 0xfff) as u64);
        }
        let pde = entry(((self.cr3 & 0xffff_f000) | (lin >> 22) << 2) as u64)? as u32 as u64;
        if pde & p == 0 {
            return None;
        }
        if pde & ps != 0 && self.cr4 & cr4::PSE != 0 {
            return Some((pde & 0xffc0_0000) | (lin & 0x3f_ffff) as u64);
        }
        let pte = entry((pde & 0xffff_f000) | (((lin >> 12) & 0x3ff) as u64 * 4))? as u32 as u64;
        (pte & p != 0).then_some((pte & 0xffff_f000) | (lin & 0xfff) as u64)
    }

    /// The SLT half of a TLB fill: `entry` maps a linear page to a guest-physical page;
    /// make it map to the host-physical page, with the SLT's permissions ANDed in.
    pub(crate) fn slt_fill<B: Bus>(
        &mut self,
        bus: &mut B,
        mut entry: TlbEntry,
        lin: u32,
        user: bool,
        write: bool,
        fetch: bool,
    ) -> Result<TlbEntry, Exception> {
        let access = if fetch {
            Access::Fetch
        } else if write {
            Access::Write
        } else {
            Access::Read
        };
        let gpa = ((entry.phys_page as u64) << 12) | (lin & 0xfff) as u64;
        let site = Site { access, lin: Some(lin), final_access: true, user, system: self.sys_access };
        let t = self.slt_translate(bus, gpa, site)?;
        let mut allow = entry.allow;
        if t.perm & 1 == 0 {
            allow &= !(SUP_READ | USER_READ);
        }
        // Without the dirty bit a write must walk again so the walk can set it (§6.2).
        if t.perm & 2 == 0 || !t.dirty {
            allow &= !(SUP_WRITE | USER_WRITE);
        }
        if t.perm & 4 == 0 {
            allow &= !(SUP_EXEC | USER_EXEC);
        }
        let page = t.hpa >> 12;
        let low = page < 1 << 20;
        entry.phys_page = page as u32;
        entry.allow = allow;
        entry.direct = low && bus.is_direct_read(page as u32);
        entry.direct_write = low && bus.is_direct(page as u32);
        Ok(entry)
    }

    /// A read of a guest paging-structure entry (or of the PDPTEs, `lin` None) at
    /// physical address `addr`: guest-physical in V386 mode.
    pub(crate) fn pt_read64<B: Bus>(&mut self, bus: &mut B, addr: u64, lin: Option<u32>) -> Result<u64, Exception> {
        if self.v386.is_none() {
            return Ok(read_phys64(bus, addr));
        }
        let site = Site { access: Access::Read, lin, final_access: false, user: false, system: true };
        let t = self.slt_translate(bus, addr, site)?;
        Ok(read_phys64(bus, t.hpa))
    }

    /// [`Cpu::pt_read64`] for a 32-bit entry.
    pub(crate) fn pt_read32<B: Bus>(&mut self, bus: &mut B, addr: u32, lin: u32) -> Result<u32, Exception> {
        if self.v386.is_none() {
            return Ok(read_phys32(bus, addr));
        }
        let site = Site { access: Access::Read, lin: Some(lin), final_access: false, user: false, system: true };
        let t = self.slt_translate(bus, addr as u64, site)?;
        if t.hpa >> 32 != 0 {
            return Ok(u32::MAX);
        }
        Ok(read_phys32(bus, t.hpa as u32))
    }

    /// The guest walk setting an accessed or dirty bit (a write, §6.2).
    pub(crate) fn pt_write32<B: Bus>(&mut self, bus: &mut B, addr: u64, v: u32, lin: u32) -> Result<(), Exception> {
        if self.v386.is_none() {
            write_phys32_at(bus, addr, v);
            return Ok(());
        }
        let site = Site { access: Access::Write, lin: Some(lin), final_access: false, user: false, system: true };
        let t = self.slt_translate(bus, addr, site)?;
        write_phys32_at(bus, t.hpa, v);
        self.icache.note_write((t.hpa >> 12) as u32);
        Ok(())
    }
}
