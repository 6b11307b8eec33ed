//! One function's 256-byte configuration space: the bytes, which bits a guest may write, which
//! bits it clears by writing ones, and the base address registers. Every function in this
//! module keeps its registers here, so reads are plain byte reads and writes go through one
//! masked-write routine that also reports what changed.
//!
//! Layout and rules are the PCI Local Bus Specification 3.0, chapter 6 ("Configuration
//! Space"): the type 0 header (§6.1, figure 6-1), the command and status registers
//! (§6.2.2, §6.2.3), base address registers and their sizing by writing all ones (§6.2.5.1)
//! and the expansion ROM base address register (§6.2.5.2).

use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// Size of a conventional PCI configuration space in bytes (PCI 3.0 §6.1).
pub const CONFIG_SPACE_SIZE: usize = 256;

// Type 0 header offsets (PCI 3.0 §6.1, figure 6-1).
/// Vendor ID (16 bits, read-only).
pub const PCI_VENDOR_ID: u8 = 0x00;
/// Device ID (16 bits, read-only).
pub const PCI_DEVICE_ID: u8 = 0x02;
/// Command register (16 bits).
pub const PCI_COMMAND: u8 = 0x04;
/// Status register (16 bits; error bits are cleared by writing 1).
pub const PCI_STATUS: u8 = 0x06;
/// Revision ID (8 bits, read-only).
pub const PCI_REVISION_ID: u8 = 0x08;
/// Class code: programming interface at 09h, sub-class at 0Ah, base class at 0Bh.
pub const PCI_CLASS_PROG: u8 = 0x09;
/// Cache line size (8 bits).
pub const PCI_CACHE_LINE_SIZE: u8 = 0x0c;
/// Latency timer (8 bits).
pub const PCI_LATENCY_TIMER: u8 = 0x0d;
/// Header type: bits 6–0 the layout (0 = normal device), bit 7 multi-function.
pub const PCI_HEADER_TYPE: u8 = 0x0e;
/// First base address register; BAR n is at 10h + 4n (n = 0..5).
pub const PCI_BAR0: u8 = 0x10;
/// Subsystem vendor ID (16 bits).
pub const PCI_SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
/// Subsystem ID (16 bits).
pub const PCI_SUBSYSTEM_ID: u8 = 0x2e;
/// Expansion ROM base address (32 bits, §6.2.5.2).
pub const PCI_ROM_ADDRESS: u8 = 0x30;
/// Interrupt line: a scratch byte firmware fills with the ISA IRQ it routed (§6.2.4).
pub const PCI_INTERRUPT_LINE: u8 = 0x3c;
/// Interrupt pin: 0 = none, 1–4 = INTA#–INTD# (§6.2.4, read-only).
pub const PCI_INTERRUPT_PIN: u8 = 0x3d;
/// First device-specific register (§6.1: 40h–FFh are device specific).
pub const PCI_DEVICE_SPECIFIC: u8 = 0x40;

/// Header type bit 7: the device has more than one function (§6.2.1).
pub const HEADER_MULTI_FUNCTION: u8 = 0x80;

// Command register bits (PCI 3.0 §6.2.2, figure 6-2).
/// Bit 0: respond to I/O space accesses.
pub const CMD_IO: u16 = 1 << 0;
/// Bit 1: respond to memory space accesses.
pub const CMD_MEMORY: u16 = 1 << 1;
/// Bit 2: may act as a bus master.
pub const CMD_BUS_MASTER: u16 = 1 << 2;
/// Bit 3: monitor special cycles.
pub const CMD_SPECIAL_CYCLES: u16 = 1 << 3;
/// Bit 6: parity error response.
pub const CMD_PARITY: u16 = 1 << 6;
/// Bit 8: SERR# driver enable.
pub const CMD_SERR: u16 = 1 << 8;

// Status register bits (PCI 3.0 §6.2.3, figure 6-3).
/// Bit 7: fast back-to-back capable.
pub const STATUS_FAST_B2B: u16 = 1 << 7;
/// Bits 10–9 = 01: medium DEVSEL# timing.
pub const STATUS_DEVSEL_MEDIUM: u16 = 1 << 9;
/// The error bits software clears by writing 1: 15 detected parity error, 14 signalled
/// system error, 13 received master abort, 12 received target abort, 11 signalled target
/// abort, 8 master data parity error.
pub const STATUS_WRITE_1_TO_CLEAR: u16 = 0xf900;

/// What a base address register decodes (PCI 3.0 §6.2.5.1, figures 6-5 and 6-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space: bit 0 reads 1, the base is bits 31–2 (here the size's alignment).
    Io,
    /// 32-bit memory space anywhere below 4 GiB: bits 2–1 read 00, bit 3 is the
    /// prefetchable flag.
    Memory32 { prefetchable: bool },
}

/// Which registers a configuration write changed, so the machine can remap what depends on
/// them (decode enables, BARs, chipset registers such as PAM or PIRQ routing). Writes that
/// leave a register's value as it was report nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// The command register (04h–05h) changed: I/O, memory or bus-master enables.
    pub command: bool,
    /// Bit n set: base address register n (10h + 4n) changed.
    pub bars: u8,
    /// The expansion ROM base address register (30h–33h) changed.
    pub rom: bool,
    /// A device-specific register (40h–FFh) changed: chipset registers live here.
    pub device_specific: bool,
}

impl ConfigChange {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.command || self.bars != 0 || self.rom || self.device_specific
    }

    /// Accumulates `other` into `self`.
    pub fn merge(&mut self, other: ConfigChange) {
        self.command |= other.command;
        self.bars |= other.bars;
        self.rom |= other.rom;
        self.device_specific |= other.device_specific;
    }

    /// The change that writing byte `offset` from `old` to `new` amounts to.
    fn of_byte(offset: u8, old: u8, new: u8) -> ConfigChange {
        let mut c = ConfigChange::default();
        if old == new {
            return c;
        }
        match offset {
            0x04..=0x05 => c.command = true,
            0x10..=0x27 => c.bars = 1 << ((offset - PCI_BAR0) / 4),
            0x30..=0x33 => c.rom = true,
            0x40..=0xff => c.device_specific = true,
            _ => {}
        }
        c
    }
}

/// A function's configuration space: the register bytes plus, per byte, a write mask (bits
/// a write may change) and a write-1-to-clear mask (bits a write of 1 clears). Bits in
/// neither mask are read-only to the guest; the device model sets them through the
/// `set_*` methods, which ignore both masks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigSpace {
    #[serde(with = "serde_big_array::BigArray")]
    data: [u8; CONFIG_SPACE_SIZE],
    #[serde(with = "serde_big_array::BigArray")]
    wmask: [u8; CONFIG_SPACE_SIZE],
    #[serde(with = "serde_big_array::BigArray")]
    w1c: [u8; CONFIG_SPACE_SIZE],
    /// Size of each BAR in bytes (0 = not implemented), for [`ConfigSpace::bar_address`].
    bar_size: [u32; 6],
    /// Size of the expansion ROM (0 = none).
    rom_size: u32,
}

impl ConfigSpace {
    /// A type 0 header with the given identity: vendor and device IDs, the 24-bit class code
    /// (base class << 16 | sub-class << 8 | programming interface), the revision and the
    /// header type byte. Everything else reads 0 and is read-only until the device model
    /// opens it with the `set_wmask_*` methods; the interrupt line is writable as §6.2.4
    /// requires of any function with an interrupt pin (the model clears its mask otherwise).
    pub fn new(vendor: u16, device: u16, class: u32, revision: u8, header_type: u8) -> Self {
        let mut c = Self {
            data: [0; CONFIG_SPACE_SIZE],
            wmask: [0; CONFIG_SPACE_SIZE],
            w1c: [0; CONFIG_SPACE_SIZE],
            bar_size: [0; 6],
            rom_size: 0,
        };
        c.set_word(PCI_VENDOR_ID, vendor);
        c.set_word(PCI_DEVICE_ID, device);
        c.set_byte(PCI_REVISION_ID, revision);
        c.set_byte(PCI_CLASS_PROG, class as u8);
        c.set_byte(PCI_CLASS_PROG + 1, (class >> 8) as u8);
        c.set_byte(PCI_CLASS_PROG + 2, (class >> 16) as u8);
        c.set_byte(PCI_HEADER_TYPE, header_type);
        c.set_w1c_word(PCI_STATUS, STATUS_WRITE_1_TO_CLEAR);
        c.set_wmask_byte(PCI_INTERRUPT_LINE, 0xff);
        c
    }

    /// Reads `size` bytes at `offset`, little-endian. Bytes past the end of the space read
    /// as all ones (the bus never asks for them; this keeps the method total).
    pub fn read(&self, offset: u8, size: IoSize) -> u32 {
        let mut value = 0u32;
        for i in 0..size as usize {
            let byte = self.data.get(usize::from(offset) + i).copied().unwrap_or(0xff);
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// A guest write of `size` bytes at `offset`: each byte keeps its read-only bits, takes
    /// the written value in its writable bits and clears the write-1-to-clear bits written
    /// as 1. Bytes past the end of the space are dropped. Returns what changed.
    pub fn write(&mut self, offset: u8, size: IoSize, value: u32) -> ConfigChange {
        let mut change = ConfigChange::default();
        for i in 0..size as usize {
            let off = usize::from(offset) + i;
            if off >= CONFIG_SPACE_SIZE {
                break;
            }
            let v = (value >> (8 * i)) as u8;
            let old = self.data[off];
            let new = ((old & !self.wmask[off]) | (v & self.wmask[off])) & !(v & self.w1c[off]);
            self.data[off] = new;
            change.merge(ConfigChange::of_byte(off as u8, old, new));
        }
        change
    }

    /// The byte at `offset`.
    pub fn byte(&self, offset: u8) -> u8 {
        self.data[usize::from(offset)]
    }

    /// The little-endian word at `offset` (offset 0xff reads its missing high byte as 0xff).
    pub fn word(&self, offset: u8) -> u16 {
        self.read(offset, IoSize::Word) as u16
    }

    /// The little-endian dword at `offset`.
    pub fn dword(&self, offset: u8) -> u32 {
        self.read(offset, IoSize::Dword)
    }

    /// Sets a byte regardless of the masks (device-side update).
    pub fn set_byte(&mut self, offset: u8, value: u8) {
        self.data[usize::from(offset)] = value;
    }

    /// Sets a little-endian word regardless of the masks.
    pub fn set_word(&mut self, offset: u8, value: u16) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.set_byte(offset.wrapping_add(i as u8), b);
        }
    }

    /// Sets a little-endian dword regardless of the masks.
    pub fn set_dword(&mut self, offset: u8, value: u32) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.set_byte(offset.wrapping_add(i as u8), b);
        }
    }

    /// Which bits of the byte at `offset` a guest may write.
    pub fn set_wmask_byte(&mut self, offset: u8, mask: u8) {
        self.wmask[usize::from(offset)] = mask;
    }

    /// Which bits of the word at `offset` a guest may write.
    pub fn set_wmask_word(&mut self, offset: u8, mask: u16) {
        for (i, b) in mask.to_le_bytes().into_iter().enumerate() {
            self.set_wmask_byte(offset.wrapping_add(i as u8), b);
        }
    }

    /// Which bits of the dword at `offset` a guest may write.
    pub fn set_wmask_dword(&mut self, offset: u8, mask: u32) {
        for (i, b) in mask.to_le_bytes().into_iter().enumerate() {
            self.set_wmask_byte(offset.wrapping_add(i as u8), b);
        }
    }

    /// The write mask of the byte at `offset`.
    pub fn wmask_byte(&self, offset: u8) -> u8 {
        self.wmask[usize::from(offset)]
    }

    /// Which bits of the word at `offset` a write of 1 clears.
    pub fn set_w1c_word(&mut self, offset: u8, mask: u16) {
        for (i, b) in mask.to_le_bytes().into_iter().enumerate() {
            self.w1c[usize::from(offset.wrapping_add(i as u8))] = b;
        }
    }

    /// Declares a writable register of `len` bytes at `offset` holding `value` (little-endian;
    /// bytes beyond the fourth start at 0), every bit writable: chipset registers that are
    /// stored and read back.
    pub fn add_register(&mut self, offset: u8, len: u8, value: u32) {
        for i in 0..len {
            let off = offset.wrapping_add(i);
            self.set_byte(off, value.checked_shr(8 * u32::from(i)).unwrap_or(0) as u8);
            self.set_wmask_byte(off, 0xff);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.word(PCI_COMMAND)
    }

    /// Sets the command register's power-on value and which of its bits are writable.
    pub fn set_command(&mut self, value: u16, writable: u16) {
        self.set_word(PCI_COMMAND, value);
        self.set_wmask_word(PCI_COMMAND, writable);
    }

    /// Sets the status register's value (its error bits stay write-1-to-clear).
    pub fn set_status(&mut self, value: u16) {
        self.set_word(PCI_STATUS, value);
    }

    /// Sets the subsystem vendor and subsystem IDs (read-only to the guest).
    pub fn set_subsystem(&mut self, vendor: u16, device: u16) {
        self.set_word(PCI_SUBSYSTEM_VENDOR_ID, vendor);
        self.set_word(PCI_SUBSYSTEM_ID, device);
    }

    /// Sets the interrupt pin (0 = none, 1–4 = INTA#–INTD#). A function without a pin also
    /// gets a read-only interrupt line, as the Intel chipset datasheets list none for them.
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.set_byte(PCI_INTERRUPT_PIN, pin);
        self.set_wmask_byte(PCI_INTERRUPT_LINE, if pin == 0 { 0 } else { 0xff });
    }

    /// Implements BAR `index` (0–5) decoding `size` bytes of `kind` space. `size` is rounded
    /// up to a power of two no smaller than the minimum §6.2.5.1 allows (4 bytes of I/O, 16
    /// of memory). The address bits above the size are writable, so writing all ones and
    /// reading back yields the size: `!(size - 1) | type bits`.
    pub fn set_bar(&mut self, index: usize, kind: BarKind, size: u32) {
        let Some(slot) = self.bar_size.get_mut(index) else { return };
        let (min, type_bits) = match kind {
            BarKind::Io => (4, 0x1),
            BarKind::Memory32 { prefetchable } => (16, if prefetchable { 0x8 } else { 0x0 }),
        };
        let size = size.max(min).checked_next_power_of_two().unwrap_or(1 << 31);
        *slot = size;
        let offset = PCI_BAR0 + 4 * index as u8;
        // All address bits above the size are writable, I/O BARs included: the PC decodes
        // 16-bit I/O addresses, but SeaBIOS computes an I/O BAR's size as `!(value & !3) + 1`
        // over all 32 bits, which a hard-wired-zero upper half would turn into nonsense.
        self.set_dword(offset, type_bits);
        self.set_wmask_dword(offset, !(size - 1));
    }

    /// The base address BAR `index` holds, without its type bits (0 if unassigned or not
    /// implemented).
    pub fn bar_address(&self, index: usize) -> u32 {
        match self.bar_size.get(index) {
            Some(&size) if size != 0 => {
                let raw = self.dword(PCI_BAR0 + 4 * index as u8);
                if raw & 1 != 0 {
                    raw & !0x3
                } else {
                    raw & !0xf
                }
            }
            _ => 0,
        }
    }

    /// Implements the expansion ROM base address register for a ROM of `size` bytes (rounded
    /// up to a power of two, at least 2 KiB as §6.2.5.2 requires). Bit 0 enables decoding.
    /// `size` 0 leaves the register unimplemented (reads 0, sizing finds no ROM).
    pub fn set_rom_bar(&mut self, size: u32) {
        if size == 0 {
            self.rom_size = 0;
            self.set_dword(PCI_ROM_ADDRESS, 0);
            self.set_wmask_dword(PCI_ROM_ADDRESS, 0);
            return;
        }
        let size = size.max(0x800).checked_next_power_of_two().unwrap_or(1 << 31);
        self.rom_size = size;
        self.set_dword(PCI_ROM_ADDRESS, 0);
        self.set_wmask_dword(PCI_ROM_ADDRESS, !(size - 1) | 1);
    }

    /// Size of the expansion ROM the ROM BAR decodes (0 = no ROM BAR).
    pub fn rom_size(&self) -> u32 {
        self.rom_size
    }

    /// The expansion ROM's base address if the ROM BAR is implemented and its enable bit is
    /// set (the memory enable of the command register also gates it; callers check that).
    pub fn rom_address(&self) -> Option<u32> {
        let raw = self.dword(PCI_ROM_ADDRESS);
        (self.rom_size != 0 && raw & 1 != 0).then_some(raw & !0x7ff)
    }
}
