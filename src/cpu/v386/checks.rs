//! The VM-entry checks of docs/v386.md §9: the control checks of Table 9-1 (a failure
//! leaves no trace but CF and EAX) and the numbered guest-state checks of §9.3 (a
//! failure is an exit with reason 33 and the check's number).

use super::vcb::{exec, intercept, interruptibility, Controls, State, REVISION};
use crate::cpu::flags::{IF, VIF, VIP, VM};
use crate::cpu::mmu::EFER_NXE;
use crate::cpu::seg::access;
use crate::cpu::{cr0, cr4, Seg};

/// The highest VTAG (`CPUID.8386_0001H:EBX[11:0]`).
pub const MAX_VTAG: u16 = 4095;

/// CR0 bits a guest may hold (those `cpu::cr0` defines).
const CR0_DEFINED: u32 =
    cr0::PE | cr0::MP | cr0::EM | cr0::TS | cr0::ET | cr0::NE | cr0::WP | cr0::AM | cr0::NW | cr0::CD | cr0::PG;

/// Table 9-1: the error number of the first failing control check.
pub fn check_controls(c: &Controls) -> Result<(), u32> {
    if c.revision != REVISION {
        return Err(1);
    }
    if c.vtag == 0 || c.vtag > MAX_VTAG {
        return Err(2);
    }
    if c.tlb_control > 3 {
        return Err(3);
    }
    if c.exec & !exec::DEFINED != 0
        || c.intercepts & !intercept::DEFINED != 0
        || c.cr_read & !0x1d != 0
        || c.cr_write & !0x1d != 0
        || c.reserved_nonzero
    {
        return Err(4);
    }
    if c.io_bitmap & 0xfff != 0 || c.io_bitmap > (1 << 36) - 0x2000 {
        return Err(5);
    }
    if c.slt_root & 0xfff != 0 || c.slt_root >> 36 != 0 {
        return Err(6);
    }
    // Every feature control of Table 4-1 is implemented (CPUID.8386_0001H:EDX bits 3, 5, 6).
    if c.event_inject & (1 << 31) != 0 {
        let e = c.event_inject;
        let (vector, kind, code) = (e & 0xff, (e >> 8) & 7, e & (1 << 11) != 0);
        let kind_ok = matches!(kind, 0 | 2 | 3 | 4 | 6);
        let nmi_ok = kind != 2 || vector == 2;
        let exc_ok = kind != 3 || vector <= 31;
        let code_ok = !code || (kind == 3 && matches!(vector, 8 | 10..=14 | 17));
        if !kind_ok || !nmi_ok || !exc_ok || !code_ok || e & 0x7fff_f000 != 0 {
            return Err(8);
        }
        if matches!(kind, 4 | 6) && !(1..=15).contains(&c.event_instr_len) {
            return Err(9);
        }
    }
    Ok(())
}

/// A usable segment's limit agrees with its G bit and its reserved attribute bits are 0
/// (check 12).
fn limit_consistent(s: &Seg) -> bool {
    if !s.valid {
        return true;
    }
    let g = s.flags & 8 != 0;
    let l = s.flags & 2 != 0;
    !l && if g { s.limit & 0xfff == 0xfff } else { s.limit <= 0xf_ffff }
}

/// §9.3: the number of the first failing guest-state check.
pub fn check_guest(g: &State, c: &Controls) -> Result<(), u32> {
    let pe = g.cr0 & cr0::PE != 0;
    if g.cr0 & cr0::PG != 0 && !pe
        || g.cr0 & cr0::NW != 0 && g.cr0 & cr0::CD == 0
        || g.cr0 & cr0::ET == 0
        || g.cr0 & !CR0_DEFINED != 0
    {
        return Err(1);
    }
    if g.cr4 & !cr4::WRITABLE != 0 {
        return Err(2);
    }
    if g.cr0 & cr0::PG != 0 && g.cr4 & cr4::PAE != 0 {
        // Table 4-8: reserved bits of a present PDPTE (2:1, 8:5, 63:36).
        let rsvd = (!0u64 << 36) | 0x1e6;
        if g.pdpte.iter().any(|p| p & 1 != 0 && p & rsvd != 0) {
            return Err(3);
        }
    }
    if g.efer & !EFER_NXE != 0 {
        return Err(4);
    }
    let (dr6, dr7) = (g.dr[4], g.dr[5]);
    if dr7 & (1 << 10) == 0 || dr7 & 0xd800 != 0 || dr6 & 0xff0 != 0xff0 || dr6 & (1 << 12) != 0 {
        return Err(5);
    }
    let f = g.eflags;
    let vme = g.cr4 & (cr4::VME | cr4::PVI) != 0;
    if f & 2 == 0 || f & 0x8028 != 0 || f >> 22 != 0 || (!vme && f & (VIF | VIP) != 0) {
        return Err(6);
    }
    let v86 = f & VM != 0;
    if v86 {
        let ok = pe
            && g.cpl == 3
            && g.segs
                .iter()
                .all(|s| s.base == (s.sel as u32) << 4 && s.limit == 0xffff && super::vcb::seg_attributes(s) == 0xf3);
        if !ok {
            return Err(7);
        }
    }
    let ss = &g.segs[crate::cpu::SS as usize];
    let cpl_ok = if !pe {
        g.cpl == 0
    } else if v86 {
        g.cpl == 3
    } else {
        g.cpl == ss.dpl()
    };
    if !cpl_ok {
        return Err(8);
    }
    if pe && !v86 {
        let cs = &g.segs[crate::cpu::CS as usize];
        let ctype = cs.access & 0xf;
        let code_ok = cs.valid && cs.present() && cs.is_user() && matches!(ctype, 9 | 11 | 13 | 15);
        let conforming = ctype & 4 != 0;
        if !code_ok || (!conforming && cs.dpl() != g.cpl) || (conforming && cs.dpl() > g.cpl) {
            return Err(9);
        }
        let stype = ss.access & 0xf;
        if !ss.valid
            || !ss.present()
            || !ss.is_user()
            || !matches!(stype, 2 | 3 | 6 | 7)
            || ss.dpl() != g.cpl
            || ss.rpl() != g.cpl
        {
            return Err(10);
        }
        for s in [0usize, 3, 4, 5].map(|i| &g.segs[i]) {
            if !s.valid {
                continue;
            }
            let data_or_readable = s.access & access::CODE == 0 || s.access & access::RW != 0;
            if !s.present() || !s.is_user() || !data_or_readable || s.access & access::ACCESSED == 0 {
                return Err(11);
            }
        }
    }
    if !g.segs.iter().chain([&g.ldtr, &g.tr]).all(limit_consistent) {
        return Err(12);
    }
    if pe {
        let l = &g.ldtr;
        if l.valid && (l.access & 0x1f != 2 || !l.present() || l.sel & 4 != 0) {
            return Err(13);
        }
        let t = &g.tr;
        if !t.valid || !matches!(t.access & 0x1f, 3 | 11) || !t.present() || t.sel & 4 != 0 {
            return Err(14);
        }
    }
    // The GDTR/IDTR limits are 16-bit fields here, so check 15 always holds.
    let blocking = g.interruptibility & (interruptibility::STI | interruptibility::MOV_SS);
    if g.activity > 1
        || g.interruptibility & !7 != 0
        || (g.interruptibility & interruptibility::STI != 0 && f & IF == 0)
        || blocking == (interruptibility::STI | interruptibility::MOV_SS)
    {
        return Err(16);
    }
    let e = c.event_inject;
    if e & (1 << 31) != 0 && (e >> 8) & 7 == 0 && (f & IF == 0 || blocking != 0) {
        return Err(17);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::v386::vcb::Vcb;

    /// A valid flat 32-bit ring-0 guest.
    pub fn flat_guest() -> State {
        let mut g = State { cr0: cr0::PE | cr0::ET, segs: [Seg::flat32(0x10, false); 6], ..Default::default() };
        g.segs[crate::cpu::CS as usize] = Seg::flat32(0x08, true);
        g.segs.iter_mut().for_each(|s| s.access |= 1);
        g.eip = 0x1000;
        g
    }

    #[test]
    fn the_reset_state_and_a_flat_guest_pass() {
        let c = Controls::default();
        assert_eq!(check_guest(&State::default(), &c), Ok(()));
        assert_eq!(check_guest(&flat_guest(), &c), Ok(()));
        assert_eq!(check_controls(&c), Ok(()));
    }

    #[test]
    fn each_control_check_fails_alone() {
        type Case = (u32, fn(&mut Controls));
        let cases: [Case; 8] = [
            (1, |c| c.revision = 2),
            (2, |c| c.vtag = 0),
            (3, |c| c.tlb_control = 4),
            (4, |c| c.exec = 1 << 6),
            (5, |c| c.io_bitmap = 0x1001),
            (6, |c| c.slt_root = 1 << 36),
            (8, |c| c.event_inject = 0x8000_0100),
            (9, |c| c.event_inject = 0x8000_0480),
        ];
        for (n, f) in cases {
            let mut c = Controls::default();
            f(&mut c);
            assert_eq!(check_controls(&c), Err(n), "control check {n}");
        }
    }

    #[test]
    fn each_guest_check_fails_alone() {
        type Case = (u32, fn(&mut State));
        let cases: [Case; 15] = [
            (1, |g| g.cr0 = cr0::PG | cr0::ET),
            (2, |g| g.cr4 = 1 << 20),
            (3, |g| {
                g.cr0 |= cr0::PG;
                g.cr4 = cr4::PAE;
                g.pdpte[0] = 1 | 2;
            }),
            (4, |g| g.efer = 1),
            (5, |g| g.dr[5] = 0),
            (6, |g| g.eflags |= 1 << 22),
            (7, |g| g.eflags |= VM),
            (8, |g| g.cpl = 3),
            (9, |g| g.segs[1].access = 0x93),
            (10, |g| g.segs[2].access = 0x91),
            (11, |g| g.segs[3].access &= !access::ACCESSED),
            (12, |g| g.segs[3].limit = 0x1f_f000),
            (13, |g| g.ldtr.access = 0x89),
            (14, |g| g.tr.access = 0x89),
            (16, |g| g.activity = 2),
        ];
        for (n, f) in cases {
            let mut g = flat_guest();
            f(&mut g);
            assert_eq!(check_guest(&g, &Controls::default()), Err(n), "guest check {n}");
        }
        let mut v = Vcb { guest: flat_guest(), ..Default::default() };
        v.controls.event_inject = 0x8000_0020;
        assert_eq!(check_guest(&v.guest, &v.controls), Err(17));
    }
}
