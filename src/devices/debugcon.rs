//! Bochs/QEMU debug console: a byte written to port 0xE9 is printed by the host (QEMU's
//! `-debugcon`, Bochs' "port e9 hack"). Guests and test programs use it for output that needs
//! no device set-up.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The debug console's port (Bochs "port 0xE9 hack", QEMU `isa-debugcon` default iobase).
pub const DEBUGCON_PORT: u16 = 0xe9;

/// Collects what the guest writes.
#[derive(Default, Clone, Debug, Serialize, Deserialize)]
pub struct DebugCon {
    #[serde(with = "serde_bytes")]
    pub out: Vec<u8>,
}

impl DebugCon {
    pub fn write(&mut self, b: u8) {
        self.out.push(b);
    }
}
