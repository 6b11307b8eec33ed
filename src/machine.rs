//! The machine: one [`Machine`] owns all emulated state — the CPU, RAM and the devices —
//! and is the API the command-line runner, the tests and (later) the wasm façade drive.
//! No shared pointers: the CPU borrows the bus (RAM + devices) for each run slice.

use crate::addr::Phys;
use crate::bus::{Bus, IoSize};
use crate::cpu::{Cpu, StopReason};
use crate::devices::debugcon::{DebugCon, DEBUGCON_PORT};
use crate::devices::debugexit::DebugExit;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// How a raw (`--flat`) image is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Real mode: CS = 0 and IP = entry when entry < 64 KiB, else CS = entry >> 4.
    Real,
    /// 32-bit protected mode, paging off, flat 4 GiB code (selector 0x08) and data (0x10)
    /// segments loaded into the descriptor caches (no GDT in memory), ESP = load address.
    Pm32,
}

/// What the machine is built with.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Guest RAM in MiB.
    pub mem_mb: u32,
    /// Port of the isa-debug-exit device, if one is attached.
    pub debug_exit_port: Option<u16>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        Self { mem_mb: 32, debug_exit_port: None }
    }
}

/// Host errors: bad configuration or images. Never caused by what a guest does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// RAM size outside 1..=3072 MiB.
    BadMemorySize(u32),
    /// The image does not fit in RAM at the load address.
    ImageTooLarge { addr: u32, len: usize },
    /// A real-mode entry point above 1 MiB.
    BadEntry(u32),
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineError::BadMemorySize(m) => write!(f, "memory size {m} MiB is outside 1..=3072"),
            MachineError::ImageTooLarge { addr, len } => {
                write!(f, "an image of {len} bytes at {addr:#x} does not fit in RAM")
            }
            MachineError::BadEntry(e) => write!(f, "real-mode entry point {e:#x} is above 1 MiB"),
        }
    }
}

/// RAM and devices: what the CPU sees through [`Bus`].
pub struct PcBus {
    pub ram: Vec<u8>,
    pub debugcon: DebugCon,
    pub debug_exit: Option<DebugExit>,
    stop: Option<u32>,
}

impl Bus for PcBus {
    #[inline]
    fn ram(&mut self) -> &mut [u8] {
        &mut self.ram
    }
    #[inline]
    fn is_direct(&self, page: u32) -> bool {
        (page as usize) < (self.ram.len() >> 12)
    }
    fn mmio_read(&mut self, _addr: Phys, size: IoSize) -> u32 {
        all_ones(size)
    }
    fn mmio_write(&mut self, _addr: Phys, _size: IoSize, _value: u32) {}
    fn io_in(&mut self, _port: u16, size: IoSize) -> u32 {
        all_ones(size)
    }
    fn io_out(&mut self, port: u16, size: IoSize, value: u32) {
        if port == DEBUGCON_PORT {
            self.debugcon.write(value as u8);
        }
        if let Some(d) = &self.debug_exit {
            if let Some(code) = d.write(port, size, value) {
                self.stop = Some(code);
            }
        }
    }
    fn take_stop_request(&mut self) -> Option<u32> {
        self.stop.take()
    }
}

fn all_ones(size: IoSize) -> u32 {
    match size {
        IoSize::Byte => 0xff,
        IoSize::Word => 0xffff,
        IoSize::Dword => 0xffff_ffff,
    }
}

/// The whole emulated PC.
pub struct Machine {
    pub cpu: Cpu,
    pub bus: PcBus,
}

impl Machine {
    pub fn new(cfg: &MachineConfig) -> Result<Self, MachineError> {
        if cfg.mem_mb == 0 || cfg.mem_mb > 3072 {
            return Err(MachineError::BadMemorySize(cfg.mem_mb));
        }
        let bus = PcBus {
            ram: vec![0; cfg.mem_mb as usize * 1024 * 1024],
            debugcon: DebugCon::default(),
            debug_exit: cfg.debug_exit_port.map(DebugExit::new),
            stop: None,
        };
        Ok(Self { cpu: Cpu::new(), bus })
    }

    /// Copy `image` into RAM at physical `addr`.
    pub fn load(&mut self, image: &[u8], addr: u32) -> Result<(), MachineError> {
        let end = addr as usize + image.len();
        if end > self.bus.ram.len() {
            return Err(MachineError::ImageTooLarge { addr, len: image.len() });
        }
        self.bus.ram[addr as usize..end].copy_from_slice(image);
        self.cpu.icache.invalidate_all();
        Ok(())
    }

    /// Load a raw binary and point the CPU at its entry, as `--flat` does.
    pub fn load_flat(&mut self, image: &[u8], load_addr: u32, entry: u32, mode: StartMode) -> Result<(), MachineError> {
        self.load(image, load_addr)?;
        match mode {
            StartMode::Real => {
                if entry >= 0x10_0000 {
                    return Err(MachineError::BadEntry(entry));
                }
                let (cs, ip) =
                    if entry < 0x1_0000 { (0, entry) } else { ((entry >> 4) as u16 & 0xf000, entry & 0xffff) };
                self.cpu.start_real(cs, ip as u16);
            }
            StartMode::Pm32 => self.cpu.start_flat32(entry, load_addr),
        }
        Ok(())
    }

    /// Until the BIOS exists: load a floppy's boot sector at 0000:7C00 and start it in real
    /// mode with DL = 0, as a BIOS would.
    pub fn boot_floppy(&mut self, image: &[u8]) -> Result<(), MachineError> {
        let n = image.len().min(512);
        self.load(&image[..n], 0x7c00)?;
        self.cpu.start_real(0, 0x7c00);
        self.cpu.regs[crate::cpu::EDX] = 0;
        Ok(())
    }

    /// Run until `max_instructions` more have retired or something stops the CPU.
    pub fn run(&mut self, max_instructions: u64) -> StopReason {
        self.cpu.run(&mut self.bus, max_instructions)
    }

    /// Bytes the guest wrote to the debug console (port 0xE9) since the last call.
    pub fn take_debugcon(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.bus.debugcon.out)
    }
}
