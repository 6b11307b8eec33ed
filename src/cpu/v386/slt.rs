//! Second-level translation, guest-physical → host-physical (docs/v386.md §6): the walk
//! of the VMM's three-level table and the nested-page-fault information it produces.
//!
//! The walk runs only when the TLB misses in V386 mode (`mmu.rs` calls it after the
//! guest's own walk): a TLB entry caches guest-linear → host-physical with the guest's
//! and the SLT's permissions combined, so a hit costs the same as on the bare machine.

use crate::bus::Bus;
use crate::cpu::mmu::{read_phys64, write_phys32_at};

/// SLT entry bits (Table 6-1).
pub mod bits {
    pub const R: u64 = 1 << 0;
    pub const W: u64 = 1 << 1;
    pub const X: u64 = 1 << 2;
    pub const RWX: u64 = R | W | X;
    /// Bits 6:3: reserved at every level.
    pub const RSVD_LOW: u64 = 0x78;
    pub const PS: u64 = 1 << 7;
    pub const A: u64 = 1 << 8;
    pub const D: u64 = 1 << 9;
    /// Bits 35:12: the next table or the frame.
    pub const ADDR: u64 = ((1 << 36) - 1) & !0xfff;
    /// Bits 51:36: reserved.
    pub const RSVD_HIGH: u64 = ((1 << 52) - 1) & !((1 << 36) - 1);
    /// Bits 20:12 of a level-2 entry that maps a 2 MiB page: reserved.
    pub const RSVD_2M: u64 = 0x1f_f000;
}

/// Guest-physical address width (`CPUID.8386_0001H:ECX[7:0]`).
pub const GPA_BITS: u32 = 36;

/// The kind of access, as the walk checks it (§6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

impl Access {
    fn needs(self) -> u64 {
        match self {
            Access::Read => bits::R,
            Access::Write => bits::W,
            Access::Fetch => bits::X,
        }
    }
}

/// A successful walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The host-physical address of the byte.
    pub hpa: u64,
    /// Effective permissions, R/W/X in bits 2:0 (AND over the levels).
    pub perm: u8,
    /// The leaf's dirty bit is set (always true without `SLT_AD`).
    pub dirty: bool,
}

/// Why a walk failed (§6.2, §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SltFault {
    /// A not-present entry at `level` (3, 2, 1), or a permission the access needs is
    /// missing (`present`); `perm` is the effective permission so far. Reason 48.
    Violation { level: u8, perm: u8, present: bool },
    /// A misconfigured entry at `level`. Reason 49.
    Misconfig { level: u8 },
}

/// Walk the SLT rooted at host-physical `root` for `gpa`. With `ad` (`EXEC_CONTROLS.SLT_AD`)
/// the accessed bits of the entries used and, for a write, the leaf's dirty bit are set.
pub fn walk<B: Bus>(bus: &mut B, root: u64, gpa: u64, access: Access, ad: bool) -> Result<Translation, SltFault> {
    if gpa >> GPA_BITS != 0 {
        return Err(SltFault::Violation { level: 3, perm: 0, present: false });
    }
    let mut table = root & bits::ADDR;
    let mut perm = bits::RWX;
    for level in [3u8, 2, 1] {
        let shift = 12 + 9 * (level as u32 - 1);
        let index = (gpa >> shift) & if level == 3 { 0x3f } else { 0x1ff };
        let addr = table + index * 8;
        let mut e = read_phys64(bus, addr);
        if e & bits::RWX == 0 {
            return Err(SltFault::Violation { level, perm: (perm & e) as u8, present: false });
        }
        let large = e & bits::PS != 0;
        let bad_ps = large && level != 2;
        if e & bits::W != 0 && e & bits::R == 0
            || e & (bits::RSVD_LOW | bits::RSVD_HIGH) != 0
            || bad_ps
            || (large && e & bits::RSVD_2M != 0)
        {
            return Err(SltFault::Misconfig { level });
        }
        perm &= e;
        let leaf = level == 1 || large;
        if leaf && perm & access.needs() == 0 {
            return Err(SltFault::Violation { level, perm: perm as u8, present: true });
        }
        if ad {
            let mut set = bits::A;
            if leaf && access == Access::Write {
                set |= bits::D;
            }
            if e & set != set {
                e |= set;
                write_phys32_at(bus, addr, e as u32);
            }
        }
        if leaf {
            let dirty = !ad || e & bits::D != 0;
            let hpa = if large {
                (e & bits::ADDR & !0x1f_ffff) | (gpa & 0x1f_ffff)
            } else {
                (e & bits::ADDR) | (gpa & 0xfff)
            };
            return Ok(Translation { hpa, perm: perm as u8, dirty });
        }
        table = e & bits::ADDR;
    }
    // Level 1 is always a leaf.
    Err(SltFault::Misconfig { level: 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::FlatBus;

    fn put(bus: &mut FlatBus, addr: u64, v: u64) {
        bus.mem[addr as usize..addr as usize + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Root at 0x10000, level 2 at 0x11000, level 1 at 0x12000: GPA 0x3000 → HPA 0x40000
    /// read-only, GPA 0x4000 → HPA 0x41000 RWX, GPA 0x200000.. → 2 MiB page at 0x400000.
    fn tables() -> FlatBus {
        let mut b = FlatBus::new(8 << 20);
        put(&mut b, 0x10000, 0x11000 | bits::RWX);
        put(&mut b, 0x11000, 0x12000 | bits::RWX);
        put(&mut b, 0x11008, 0x400000 | bits::PS | bits::R | bits::X);
        put(&mut b, 0x12000 + 3 * 8, 0x40000 | bits::R);
        put(&mut b, 0x12000 + 4 * 8, 0x41000 | bits::RWX);
        b
    }

    #[test]
    fn walks_translate_and_check_permissions() {
        let mut b = tables();
        let t = walk(&mut b, 0x10000, 0x3123, Access::Read, false).unwrap();
        assert_eq!((t.hpa, t.perm), (0x40123, 1));
        assert_eq!(
            walk(&mut b, 0x10000, 0x3123, Access::Write, false),
            Err(SltFault::Violation { level: 1, perm: 1, present: true })
        );
        assert_eq!(walk(&mut b, 0x10000, 0x4ffc, Access::Fetch, false).unwrap().hpa, 0x41ffc);
        assert_eq!(
            walk(&mut b, 0x10000, 0x5000, Access::Read, false),
            Err(SltFault::Violation { level: 1, perm: 0, present: false })
        );
        let big = walk(&mut b, 0x10000, 0x2f_1234, Access::Fetch, false).unwrap();
        assert_eq!((big.hpa, big.perm), (0x4f_1234, 5));
        // Above the first GiB nothing is mapped; above 36 bits nothing can be.
        assert!(matches!(
            walk(&mut b, 0x10000, 0x4000_0000, Access::Read, false),
            Err(SltFault::Violation { level: 3, .. })
        ));
        assert!(walk(&mut b, 0x10000, 1 << 36, Access::Read, false).is_err());
    }

    #[test]
    fn misconfigurations_are_reported_with_their_level() {
        let mut b = tables();
        // W without R.
        put(&mut b, 0x12000 + 5 * 8, 0x42000 | bits::W);
        assert_eq!(walk(&mut b, 0x10000, 0x5000, Access::Read, false), Err(SltFault::Misconfig { level: 1 }));
        // A reserved bit in level 2, PS in level 3.
        put(&mut b, 0x11010, 0x12000 | bits::RWX | 0x8);
        assert_eq!(walk(&mut b, 0x10000, 0x40_0000, Access::Read, false), Err(SltFault::Misconfig { level: 2 }));
        put(&mut b, 0x10008, bits::PS | bits::RWX);
        assert_eq!(walk(&mut b, 0x10000, 0x4000_0000, Access::Read, false), Err(SltFault::Misconfig { level: 3 }));
    }

    #[test]
    fn accessed_and_dirty_bits_are_set_with_slt_ad() {
        let mut b = tables();
        let rd = |b: &FlatBus, a: usize| u64::from_le_bytes(b.mem[a..a + 8].try_into().unwrap());
        let t = walk(&mut b, 0x10000, 0x4000, Access::Read, true).unwrap();
        assert!(!t.dirty);
        assert_eq!(rd(&b, 0x12020) & (bits::A | bits::D), bits::A);
        assert_eq!(rd(&b, 0x10000) & bits::A, bits::A);
        assert!(walk(&mut b, 0x10000, 0x4000, Access::Write, true).unwrap().dirty);
        assert_eq!(rd(&b, 0x12020) & (bits::A | bits::D), bits::A | bits::D);
    }
}
