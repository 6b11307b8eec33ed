//! The *allocator* (Popek & Goldberg's term; docs/v386.md §12.3): the host's physical
//! memory and who owns each page of it, each VM's RAM, ROM copies and second-level
//! tables, the VM tags of the TLB, and the I/O-bitmap policy.
//!
//! Host memory is one array: a host-physical address is an index into it, as on the bare
//! machine, so the CPU's direct-RAM fast path and its decoded-code cache work unchanged.
//! Every page has an owner, and a page is handed out once: [`HostMemory::owner`] is what
//! the isolation tests check every SLT mapping against.
//!
//! Device memory of a VM (its VGA window, local APIC, I/O APIC, framebuffer, holes) is not
//! RAM: the SLT maps such a guest page, on its first access (a nested-page-fault exit),
//! to a page of that VM's *window* of host-physical space above host RAM, which the host
//! bus ([`super::hostbus`]) sends to the VM's own device models.

use crate::cpu::v386::slt::bits;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// 4 KiB.
pub const PAGE: u64 = 4096;

/// Who a host page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    Free,
    /// The VMM itself (I/O bitmaps, the sink page of nothing).
    Vmm,
    /// RAM, ROM copies or second-level tables of this VM.
    Vm(u16),
}

/// Host-physical memory.
#[derive(Serialize, Deserialize)]
pub struct HostMemory {
    #[serde(with = "crate::snapshot::sparse")]
    pub bytes: Vec<u8>,
    owners: Vec<Owner>,
}

/// Host-physical address where the VMs' device windows start; each VM has
/// [`WINDOW_PAGES`] pages there. Host RAM must stay below it.
pub const WINDOW_BASE: u64 = 0xc000_0000;
/// Pages of device window per VM (64 MiB: the VGA window, the APICs, a framebuffer).
pub const WINDOW_PAGES: u64 = 0x4000;
/// Most VMs (the windows must fit below 4 GiB: the CPU treats frames above as unbacked).
pub const MAX_VMS: usize = 16;

/// Why the allocator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// Host memory would reach the device windows.
    HostMemoryFull { wanted_pages: u64 },
    /// Too many VMs.
    TooManyVms,
}

impl core::fmt::Display for AllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AllocError::HostMemoryFull { wanted_pages } => {
                write!(
                    f,
                    "host memory full: {wanted_pages} more pages would reach the device windows at {WINDOW_BASE:#x}"
                )
            }
            AllocError::TooManyVms => write!(f, "at most {MAX_VMS} VMs"),
        }
    }
}

impl Default for HostMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl HostMemory {
    /// Host memory with the VMM's first page (never mapped into a guest).
    pub fn new() -> Self {
        HostMemory { bytes: vec![0; PAGE as usize], owners: vec![Owner::Vmm] }
    }

    /// Allocate `pages` zeroed pages for `owner`; the host-physical address of the first.
    /// Memory grows at the end, so an address once given never moves.
    pub fn alloc(&mut self, pages: u64, owner: Owner) -> Result<u64, AllocError> {
        let at = self.bytes.len() as u64;
        if at + pages * PAGE > WINDOW_BASE {
            return Err(AllocError::HostMemoryFull { wanted_pages: pages });
        }
        self.bytes.resize((at + pages * PAGE) as usize, 0);
        self.owners.resize(self.owners.len() + pages as usize, owner);
        Ok(at)
    }

    /// The owner of host page `page` (Free beyond the end).
    pub fn owner(&self, page: u64) -> Owner {
        self.owners.get(page as usize).copied().unwrap_or(Owner::Free)
    }

    pub fn read64(&self, hpa: u64) -> u64 {
        let a = hpa as usize;
        self.bytes.get(a..a + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    pub fn write64(&mut self, hpa: u64, v: u64) {
        let a = hpa as usize;
        if let Some(b) = self.bytes.get_mut(a..a + 8) {
            b.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// The host pages in use (for the host bus: everything below is direct RAM).
    pub fn pages(&self) -> u64 {
        self.bytes.len() as u64 / PAGE
    }

    /// Whole pages, below the device windows, each with an owner: what a host memory read
    /// back from a snapshot must be.
    pub(crate) fn is_consistent(&self) -> bool {
        let len = self.bytes.len() as u64;
        len % PAGE == 0 && len <= WINDOW_BASE && self.owners.len() as u64 == len / PAGE
    }
}

/// One VM's second-level tables (docs/v386.md §6): 4 KiB mappings, tables allocated on
/// demand from the VM's own pages.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Slt {
    pub root: u64,
    owner: Owner,
}

impl Slt {
    pub fn new(mem: &mut HostMemory, owner: Owner) -> Result<Self, AllocError> {
        Ok(Slt { root: mem.alloc(1, owner)?, owner })
    }

    /// The level-1 entry's address for `gpa`, creating tables when `create`.
    fn leaf(&self, mem: &mut HostMemory, gpa: u64, create: bool) -> Result<Option<u64>, AllocError> {
        let mut table = self.root;
        for level in [3u32, 2] {
            let shift = 12 + 9 * (level - 1);
            let index = (gpa >> shift) & if level == 3 { 0x3f } else { 0x1ff };
            let at = table + index * 8;
            let e = mem.read64(at);
            table = if e & bits::RWX != 0 {
                e & bits::ADDR
            } else if create {
                let t = mem.alloc(1, self.owner)?;
                mem.write64(at, t | bits::RWX);
                t
            } else {
                return Ok(None);
            };
        }
        Ok(Some(table + ((gpa >> 12) & 0x1ff) * 8))
    }

    /// Map guest page `gpa_page` to host page `hpa_page` with permissions `perm` (R/W/X).
    pub fn map(&self, mem: &mut HostMemory, gpa_page: u64, hpa_page: u64, perm: u64) -> Result<(), AllocError> {
        if let Some(at) = self.leaf(mem, gpa_page << 12, true)? {
            mem.write64(at, (hpa_page << 12) | (perm & bits::RWX));
        }
        Ok(())
    }

    /// Unmap a guest page (the next access is a nested page fault).
    pub fn unmap(&self, mem: &mut HostMemory, gpa_page: u64) {
        if let Ok(Some(at)) = self.leaf(mem, gpa_page << 12, false) {
            mem.write64(at, 0);
        }
    }

    /// The mapping of a guest page: (host page, permissions).
    pub fn lookup(&self, mem: &mut HostMemory, gpa_page: u64) -> Option<(u64, u64)> {
        slt_lookup(&mem.bytes, self.root, gpa_page)
    }

    /// Every mapping, as (guest page, host page, permissions): the isolation tests' view.
    pub fn mappings(&self, mem: &HostMemory) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        for i3 in 0..64u64 {
            let e3 = mem.read64(self.root + i3 * 8);
            if e3 & bits::RWX == 0 {
                continue;
            }
            for i2 in 0..512u64 {
                let e2 = mem.read64((e3 & bits::ADDR) + i2 * 8);
                if e2 & bits::RWX == 0 {
                    continue;
                }
                for i1 in 0..512u64 {
                    let e1 = mem.read64((e2 & bits::ADDR) + i1 * 8);
                    if e1 & bits::RWX != 0 {
                        let gpa_page = i3 << 18 | i2 << 9 | i1;
                        out.push((gpa_page, (e1 & bits::ADDR) >> 12, e1 & bits::RWX));
                    }
                }
            }
        }
        out
    }
}

/// The mapping of guest page `gpa_page` in the second-level tables at `root` in host
/// memory `bytes`: (host page, permissions), read without creating anything (the
/// software monitor's pmap lookup while the VM's bus holds host memory).
pub fn slt_lookup(bytes: &[u8], root: u64, gpa_page: u64) -> Option<(u64, u64)> {
    let read = |a: u64| -> Option<u64> {
        let b = bytes.get(a as usize..a as usize + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let gpa = gpa_page << 12;
    let mut table = root;
    for (shift, mask) in [(30u32, 0x3fu64), (21, 0x1ff)] {
        let e = read(table + ((gpa >> shift) & mask) * 8)?;
        if e & bits::RWX == 0 {
            return None;
        }
        table = e & bits::ADDR;
    }
    let e = read(table + ((gpa >> 12) & 0x1ff) * 8)?;
    (e & bits::RWX != 0).then_some(((e & bits::ADDR) >> 12, e & bits::RWX))
}

/// Which ports a VM's I/O bitmap lets through to its devices without an exit: the ports
/// guests drive with string I/O (a string exit would need the VMM to walk the guest's
/// page tables): the IDE data ports (`REP INSW`/`OUTSW`) and fw_cfg's selector and data
/// ports (SeaBIOS reads files with `REP INSB`). Every other port exits.
pub const PASSTHROUGH_PORTS: [u16; 4] = [0x1f0, 0x170, 0x510, 0x511];

/// Build a VM's I/O bitmap (docs/v386.md §4.6) in two fresh pages.
pub fn io_bitmap(mem: &mut HostMemory, owner: Owner) -> Result<u64, AllocError> {
    let at = mem.alloc(2, owner)?;
    mem.bytes[at as usize..(at + 2 * PAGE) as usize].fill(0xff);
    for p in PASSTHROUGH_PORTS {
        // A word access covers p and p+1; a dword one p..p+3.
        for q in p..p + 4 {
            mem.bytes[(at + (q as u64 >> 3)) as usize] &= !(1 << (q & 7));
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_one_owner_and_tables_map_and_unmap() {
        let mut m = HostMemory::new();
        let a = m.alloc(4, Owner::Vm(1)).unwrap();
        let b = m.alloc(2, Owner::Vm(2)).unwrap();
        assert_eq!((a, b), (PAGE, 5 * PAGE));
        assert_eq!(
            (m.owner(1), m.owner(4), m.owner(5), m.owner(7)),
            (Owner::Vm(1), Owner::Vm(1), Owner::Vm(2), Owner::Free)
        );
        let slt = Slt::new(&mut m, Owner::Vm(1)).unwrap();
        slt.map(&mut m, 0x100, a >> 12, bits::RWX).unwrap();
        slt.map(&mut m, 0xfffff, (a >> 12) + 1, bits::R | bits::X).unwrap();
        assert_eq!(slt.lookup(&mut m, 0x100), Some((a >> 12, bits::RWX)));
        assert_eq!(slt.mappings(&m).len(), 2);
        slt.unmap(&mut m, 0x100);
        assert_eq!(slt.lookup(&mut m, 0x100), None);
        // The tables came from the VM's own pages.
        assert!((slt.root >> 12..m.pages()).all(|p| m.owner(p) == Owner::Vm(1)));
    }

    #[test]
    fn the_io_bitmap_passes_only_the_ide_data_ports() {
        let mut m = HostMemory::new();
        let at = m.alloc(0, Owner::Vmm).unwrap();
        let bm = io_bitmap(&mut m, Owner::Vmm).unwrap();
        assert_eq!(at, bm);
        let bit = |p: u16| m.bytes[(bm + (p as u64 >> 3)) as usize] >> (p & 7) & 1;
        assert_eq!((bit(0x1f0), bit(0x1f1), bit(0x1f7), bit(0x3f8), bit(0x60)), (0, 0, 1, 1, 1));
    }
}
