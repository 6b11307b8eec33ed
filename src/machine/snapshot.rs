//! A bare machine to a snapshot and back (the format: `crate::snapshot`).
//!
//! The machine derives serde's traits field by field; what is not saved (the TLB, the
//! decoded-instruction and block caches) comes back empty and refills as the guest runs,
//! so the restored machine runs on exactly as the saved one would have.

use super::Machine;
use crate::devices::vga::VRAM_SIZE;
use crate::snapshot::{self, Kind, SnapshotError};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

impl Machine {
    /// The whole machine as a snapshot file: CPU, RAM (without its zero pages), firmware,
    /// devices with their disk and floppy images, the clock. Fails only for state that
    /// cannot be written (a disk backend not held in memory).
    pub fn save(&self) -> Result<Vec<u8>, SnapshotError> {
        snapshot::encode(Kind::Machine, self)
    }

    /// A machine from a snapshot file made by [`Machine::save`]. A bad file (another
    /// format, another version, damaged, truncated, a VMM's) is an error, never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Machine, SnapshotError> {
        let m: Machine = snapshot::decode(Kind::Machine, bytes)?;
        m.check_restored()?;
        Ok(m)
    }

    /// The invariants the run loop indexes by, which the derived decoding cannot know.
    fn check_restored(&self) -> Result<(), SnapshotError> {
        let ram = self.bus.ram.len();
        if ram == 0 || ram % (1 << 20) != 0 || ram > 3072 << 20 {
            return Err(SnapshotError::Corrupt(format!("{ram} bytes of RAM: not a whole 1..=3072 MiB")));
        }
        check_board(&self.bus.board).map_err(SnapshotError::Corrupt)
    }
}

/// What a board restored for a machine or a VM must satisfy.
pub(crate) fn check_board(board: &super::Board) -> Result<(), String> {
    if board.vga.vram().len() != VRAM_SIZE {
        return Err(format!("{} bytes of VRAM, not {VRAM_SIZE}", board.vga.vram().len()));
    }
    let bios = board.bios.len();
    if bios % 0x1_0000 != 0 || bios > 0x10_0000 {
        return Err(format!("a BIOS of {bios} bytes"));
    }
    board.ide.check()?;
    Ok(())
}
