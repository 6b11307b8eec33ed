//! QEMU's `isa-debug-exit` device: a guest write of V to its port ends the run, and the
//! emulator exits with status (V << 1) | 1 (QEMU's hw/misc/debugexit.c behaviour, which
//! test suites such as kvm-unit-tests rely on).

use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// The usual iobase (`-device isa-debug-exit,iobase=0xf4`); the device spans 4 ports.
pub const DEFAULT_DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct DebugExit {
    pub iobase: u16,
}

impl DebugExit {
    pub fn new(iobase: u16) -> Self {
        Self { iobase }
    }

    /// A write to the device's port: the value to report, if this write hits it.
    pub fn write(&self, port: u16, size: IoSize, value: u32) -> Option<u32> {
        if port != self.iobase {
            return None;
        }
        Some(match size {
            IoSize::Byte => value & 0xff,
            IoSize::Word => value & 0xffff,
            IoSize::Dword => value,
        })
    }

    /// The process exit status QEMU gives for a reported value.
    pub fn exit_status(value: u32) -> i32 {
        ((value << 1) | 1) as i32
    }
}
