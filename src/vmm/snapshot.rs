//! The VMM to a snapshot and back (the format: `crate::snapshot`): the processor, host
//! memory with its owners, every VM (control block, board, RAM placement, SLT, ROM and
//! device-window maps, state, clock, counters, MSRs), the exit log, the configuration
//! and whose turn is next.
//!
//! Not saved: the processor's TLB banks and decoded-code caches. A restored VMM's guests
//! start with empty ones, which only costs refills; the turn order, every VM's time and
//! every exit the VMs take are those the saved VMM would have had.

use super::allocator::{MAX_VMS, PAGE};
use super::Vmm;
use crate::machine::snapshot::check_board;
use crate::snapshot::{self, Kind, SnapshotError};
use alloc::format;
use alloc::vec::Vec;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

impl Vmm {
    /// The whole monitor as a snapshot file. Call it between [`Vmm::run`]s (no guest is
    /// inside the processor then).
    pub fn save(&self) -> Result<Vec<u8>, SnapshotError> {
        snapshot::encode(Kind::Vmm, self)
    }

    /// A monitor from a snapshot file made by [`Vmm::save`]. A bad file is an error,
    /// never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Vmm, SnapshotError> {
        let vmm: Vmm = snapshot::decode(Kind::Vmm, bytes)?;
        vmm.check_restored().map_err(SnapshotError::Corrupt)?;
        Ok(vmm)
    }

    /// The invariants the dispatcher and the host bus index by.
    fn check_restored(&self) -> Result<(), alloc::string::String> {
        if !self.mem.is_consistent() {
            return Err("host memory is not whole pages with one owner each".into());
        }
        if self.cpu.v386.is_some() {
            return Err("a guest was inside the processor".into());
        }
        if self.vms.len() >= MAX_VMS {
            return Err(format!("{} VMs", self.vms.len()));
        }
        let host = self.mem.bytes.len() as u64;
        for (i, vm) in self.vms.iter().enumerate() {
            if vm.id as usize != i + 1 {
                return Err(format!("VM {i} has tag {}", vm.id));
            }
            let end = vm.ram_base.checked_add(vm.ram_len as u64);
            if vm.ram_len as u64 % PAGE != 0 || vm.ram_base % PAGE != 0 || end.map_or(true, |e| e > host) {
                return Err(format!("VM {}'s RAM lies outside host memory", vm.id));
            }
            if vm.slt.root % PAGE != 0 || vm.slt.root >= host {
                return Err(format!("VM {}'s second-level tables lie outside host memory", vm.id));
            }
            check_board(&vm.board)?;
        }
        Ok(())
    }
}

/// `ExitLog::capacity` as read back: the ring is indexed modulo it, so it is never 0.
pub(crate) fn log_capacity<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(D::Error::custom("an exit log of capacity 0")),
        n => Ok(n),
    }
}
