//! System control port A at 0x92: the PS/2 "fast A20 gate and fast reset" port that every PC
//! chipset since the IBM PS/2 carries beside the 8042. Operating systems use it because it is
//! much quicker than going through the keyboard controller (Linux `arch/x86/boot/a20.c` tries
//! it as one of its A20 methods; many boot loaders set bit 1 here).
//!
//! Bits (IBM PS/2 Technical Reference, "System Control Port A (hex 0092)"; Intel 82371AB
//! PIIX4 datasheet, "Port 92 Register"):
//! - bit 0: alternate fast reset. A 0→1 transition requests a processor reset; the bit reads
//!   back as written and must be cleared before it can trigger again.
//! - bit 1: alternate A20 gate. 1 lets address line 20 through.
//! - bit 3: security lock latch (PS/2): once set it stays set until power-on reset.
//! - bits 6–7: fixed-disk activity light (PS/2); stored and read back, no effect here.
//! - bits 2, 4, 5: reserved/status, read as 0.
//!
//! The machine combines [`Port92::a20`] with the 8042's output-port A20 line (the gate is
//! open when either source opens it) and polls [`Port92::take_reset_request`].

use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// The port's address (IBM PS/2 Technical Reference, "System Control Port A").
pub const PORT92: u16 = 0x92;

/// Bit 0: alternate fast reset (a 0→1 write pulses the reset line).
pub const PORT92_FAST_RESET: u8 = 0x01;
/// Bit 1: alternate gate A20.
pub const PORT92_A20: u8 = 0x02;
/// Bit 3: security lock latch, write-once until power-on.
pub const PORT92_SECURITY_LOCK: u8 = 0x08;
/// Bits 6–7: fixed-disk activity light.
pub const PORT92_DISK_LIGHT: u8 = 0xc0;

/// The bits that hold state and read back; the others read as 0.
const PORT92_STORED: u8 = PORT92_FAST_RESET | PORT92_A20 | PORT92_SECURITY_LOCK | PORT92_DISK_LIGHT;

/// System control port A.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Port92 {
    value: u8,
    reset_request: bool,
}

impl Port92 {
    /// Power-on state: every bit clear (PIIX4 datasheet: default value 00h), so this port
    /// keeps A20 masked until someone opens it.
    pub fn new() -> Self {
        Self::default()
    }

    /// `IN` from `port`. Ports other than 0x92 (including the upper bytes of a word or dword
    /// read) answer all ones, as an empty ISA bus does.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0u32;
        for i in 0..size as u16 {
            let byte = if port.wrapping_add(i) == PORT92 { self.value } else { 0xff };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to `port`. Only the byte that lands on 0x92 has an effect.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            if port.wrapping_add(i) == PORT92 {
                self.write_byte((value >> (8 * i)) as u8);
            }
        }
    }

    fn write_byte(&mut self, byte: u8) {
        let old = self.value;
        // The lock latch can be set but not cleared by software.
        let lock = (old | byte) & PORT92_SECURITY_LOCK;
        self.value = (byte & PORT92_STORED & !PORT92_SECURITY_LOCK) | lock;
        if old & PORT92_FAST_RESET == 0 && byte & PORT92_FAST_RESET != 0 {
            self.reset_request = true;
        }
    }

    /// Whether this port opens the A20 gate (bit 1).
    pub fn a20(&self) -> bool {
        self.value & PORT92_A20 != 0
    }

    /// Whether the guest pulsed the fast-reset bit since the last call (cleared by reading).
    pub fn take_reset_request(&mut self) -> bool {
        core::mem::take(&mut self.reset_request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_on_state() {
        let mut p = Port92::new();
        assert!(!p.a20());
        assert!(!p.take_reset_request());
        assert_eq!(p.read(PORT92, IoSize::Byte), 0);
    }

    #[test]
    fn a20_bit_reads_back() {
        let mut p = Port92::new();
        p.write(PORT92, IoSize::Byte, 0x02);
        assert!(p.a20());
        assert_eq!(p.read(PORT92, IoSize::Byte), 0x02);
        assert!(!p.take_reset_request());
        p.write(PORT92, IoSize::Byte, 0x00);
        assert!(!p.a20());
    }

    #[test]
    fn fast_reset_on_rising_edge_only() {
        let mut p = Port92::new();
        p.write(PORT92, IoSize::Byte, 0x03);
        assert!(p.take_reset_request());
        assert!(!p.take_reset_request(), "taking the request clears it");
        // Still 1: writing 1 again is no new edge.
        p.write(PORT92, IoSize::Byte, 0x03);
        assert!(!p.take_reset_request());
        assert_eq!(p.read(PORT92, IoSize::Byte), 0x03);
        // Clear, then set again: a second reset.
        p.write(PORT92, IoSize::Byte, 0x02);
        assert!(!p.take_reset_request());
        p.write(PORT92, IoSize::Byte, 0x01);
        assert!(p.take_reset_request());
        assert!(!p.a20());
    }

    #[test]
    fn linux_style_read_modify_write_does_not_reset() {
        // arch/x86/boot/a20.c: read, set bit 1, clear bit 0, write back.
        let mut p = Port92::new();
        let v = p.read(PORT92, IoSize::Byte) as u8;
        p.write(PORT92, IoSize::Byte, u32::from((v | 0x02) & !0x01));
        assert!(p.a20());
        assert!(!p.take_reset_request());
    }

    #[test]
    fn reserved_bits_read_zero_and_lock_is_sticky() {
        let mut p = Port92::new();
        p.write(PORT92, IoSize::Byte, 0x34);
        assert_eq!(p.read(PORT92, IoSize::Byte), 0x00);
        p.write(PORT92, IoSize::Byte, 0xc8);
        assert_eq!(p.read(PORT92, IoSize::Byte), 0xc8);
        p.write(PORT92, IoSize::Byte, 0x00);
        assert_eq!(p.read(PORT92, IoSize::Byte), u32::from(PORT92_SECURITY_LOCK));
    }

    #[test]
    fn other_ports_and_wide_accesses() {
        let mut p = Port92::new();
        assert_eq!(p.read(0x93, IoSize::Byte), 0xff);
        assert_eq!(p.read(0x60, IoSize::Word), 0xffff);
        p.write(0x91, IoSize::Byte, 0xff);
        assert!(!p.a20());
        assert!(!p.take_reset_request());
        // A word write at 0x91 puts its high byte on 0x92.
        p.write(0x91, IoSize::Word, 0x0200);
        assert!(p.a20());
        assert_eq!(p.read(PORT92, IoSize::Word), 0xff02);
        assert_eq!(p.read(0x90, IoSize::Dword), 0xff02_ffff);
    }
}
