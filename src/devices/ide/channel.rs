//! One ATA cable and what its two devices share. Both devices see every write to the
//! command block registers and the Device Control register (ATA/ATAPI-6 §7: the registers
//! are written to both devices; only the device the DEV bit selects executes a command and
//! answers reads). This file decides who answers a read — the selected device, device 0
//! standing in for an absent device 1, or nobody (the bus floats) — and runs the
//! operations that involve both devices: software reset and EXECUTE DEVICE DIAGNOSTIC.
//!
//! "No device" behaviour, chosen so that SeaBIOS and Linux probing finish without waiting
//! out timeouts:
//! - Device 1 absent, device 0 present: device 0 answers for it (ATA/ATAPI-6 §7, register
//!   access with device 1 not present): Status and Alternate Status read 00h, the other
//!   command block registers read back as written, commands other than EXECUTE DEVICE
//!   DIAGNOSTIC are ignored. Status 00h is what both probes look for: Linux takes an ATA
//!   signature with status 0 for "no device", and SeaBIOS skips a position whose status
//!   reads 0.
//! - Nobody to answer (empty channel, or device 0 absent and selected): every register
//!   reads 7Fh — the floating bus with the 10 kΩ pull-down on DD7 that ATA/ATAPI-6 requires
//!   of the host for exactly this detection (BSY reads 0, so nothing waits for it; the
//!   55h/AAh write-read-back probe SeaBIOS and Linux use fails). Data reads return FF7Fh.

use super::drive::Drive;
use super::*;
use serde::{Deserialize, Serialize};

/// What a register read sees when no device drives the bus (DD7 pulled down, the rest
/// pulled up).
pub(super) const FLOATING: u8 = 0x7f;
/// A data-port read nobody answers.
pub(super) const FLOATING_DATA: u16 = 0xff7f;
/// Error register value after a passed diagnostic (ATA/ATAPI-6 §8, EXECUTE DEVICE
/// DIAGNOSTIC, "Diagnostic codes": 01h device 0 passed, device 1 passed or not present).
pub(super) const DIAG_PASSED: u8 = 0x01;
/// EXECUTE DEVICE DIAGNOSTIC, the one command every device acts on regardless of DEV.
pub(super) const CMD_EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;

/// Who answers a register read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Responder {
    /// The selected device.
    Selected(usize),
    /// Device 0 standing in for an absent device 1.
    StandIn(usize),
    /// Nobody: the bus floats.
    Nobody,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Channel {
    drives: [Option<Drive>; 2],
    /// The DEV bit as last written: the device the host addresses (0 or 1).
    selected: usize,
    /// Device Control register as last written (nIEN, SRST, HOB).
    devctl: u8,
}

impl Channel {
    pub(super) fn new() -> Self {
        Self { drives: [None, None], selected: 0, devctl: 0 }
    }

    /// Whether restored state holds what the accessors rely on: device 0 or 1 selected,
    /// each data pointer inside (or at the end of) its buffer.
    pub(super) fn check(&self) -> Result<(), &'static str> {
        if self.selected > 1 {
            return Err("an IDE channel selects a device other than 0 or 1");
        }
        if self.drives.iter().flatten().any(|d| d.pos > d.buf.len()) {
            return Err("an IDE data pointer lies past its buffer");
        }
        Ok(())
    }

    pub(super) fn drive(&self, slave: bool) -> Option<&Drive> {
        self.drives[usize::from(slave)].as_ref()
    }

    pub(super) fn drive_mut(&mut self, slave: bool) -> Option<&mut Drive> {
        self.drives[usize::from(slave)].as_mut()
    }

    pub(super) fn attach(&mut self, slave: bool, mut drive: Drive) {
        // The new device latches the registers' current DEV bit like its neighbour did.
        drive.regs.device = if self.selected == 1 { DEV_DEV } else { 0 };
        self.drives[usize::from(slave)] = Some(drive);
    }

    pub(super) fn detach(&mut self, slave: bool) -> Option<Drive> {
        self.drives[usize::from(slave)].take()
    }

    fn in_reset(&self) -> bool {
        self.devctl & DC_SRST != 0
    }

    fn responder(&self) -> Responder {
        if self.drives[self.selected].is_some() {
            Responder::Selected(self.selected)
        } else if self.selected == 1 && self.drives[0].is_some() {
            Responder::StandIn(0)
        } else {
            Responder::Nobody
        }
    }

    /// A read of command block register `off` (1–7).
    pub(super) fn read_register(&mut self, off: u16) -> u8 {
        let hob = self.devctl & DC_HOB != 0;
        let in_reset = self.in_reset();
        match self.responder() {
            Responder::Nobody => FLOATING,
            Responder::StandIn(i) => {
                if off == REG_STATUS_COMMAND {
                    return if in_reset { ST_BSY } else { 0 };
                }
                self.drives[i].as_ref().map_or(FLOATING, |d| d.read_register(off, hob))
            }
            Responder::Selected(i) => {
                let Some(d) = self.drives[i].as_mut() else { return FLOATING };
                if off == REG_STATUS_COMMAND {
                    d.read_status()
                } else {
                    d.read_register(off, hob)
                }
            }
        }
    }

    /// The Alternate Status register: Status without clearing the interrupt.
    pub(super) fn read_alt_status(&self) -> u8 {
        match self.responder() {
            Responder::Nobody => FLOATING,
            Responder::StandIn(_) => {
                if self.in_reset() {
                    ST_BSY
                } else {
                    0
                }
            }
            Responder::Selected(i) => self.drives[i].as_ref().map_or(FLOATING, Drive::status),
        }
    }

    /// A write of command block register `off` (1–7).
    pub(super) fn write_register(&mut self, off: u16, v: u8) {
        // ATA/ATAPI-6 §7, Device Control register: a write to any command block register
        // clears HOB.
        self.devctl &= !DC_HOB;
        if off == REG_STATUS_COMMAND {
            self.command(v);
            return;
        }
        if off == REG_DEVICE {
            self.selected = usize::from(v & DEV_DEV != 0);
        }
        for d in self.drives.iter_mut().flatten() {
            d.write_register(off, v);
        }
    }

    fn command(&mut self, cmd: u8) {
        if self.in_reset() {
            return;
        }
        if cmd == CMD_EXECUTE_DEVICE_DIAGNOSTIC && self.drives.iter().any(Option::is_some) {
            self.diagnostic();
            return;
        }
        if let Some(d) = self.drives[self.selected].as_mut() {
            d.command(cmd);
        }
    }

    /// Reset the devices to their signatures with passed diagnostics and select device 0
    /// (ATA/ATAPI-6 §9, software reset and EXECUTE DEVICE DIAGNOSTIC protocols: both
    /// devices post their signatures, the Device register reads 00h).
    fn post_signatures(&mut self) {
        self.selected = 0;
        for d in self.drives.iter_mut().flatten() {
            d.signature_reset(DIAG_PASSED);
            d.regs.device = 0;
        }
    }

    /// EXECUTE DEVICE DIAGNOSTIC (ATA/ATAPI-6 §8): both devices run their diagnostics and
    /// post signatures; device 0 reports for both and asserts INTRQ. (A lone device 1 sets
    /// its interrupt too; the line shows it once the host selects device 1.)
    fn diagnostic(&mut self) {
        self.post_signatures();
        if let Some(d) = self.drives.iter_mut().flatten().next() {
            d.intrq = true;
        }
    }

    /// A write of the Device Control register. SRST going 1 puts both devices in reset
    /// (BSY); going 0 completes the reset: signatures, diagnostic code in Error, no
    /// interrupt (ATA/ATAPI-6 §9, software reset protocol).
    pub(super) fn write_device_control(&mut self, v: u8) {
        let old = self.devctl;
        self.devctl = v;
        if v & DC_SRST != 0 && old & DC_SRST == 0 {
            for d in self.drives.iter_mut().flatten() {
                d.begin_reset();
            }
        } else if v & DC_SRST == 0 && old & DC_SRST != 0 {
            self.post_signatures();
        }
    }

    /// A data-port read.
    pub(super) fn read_data(&mut self) -> u16 {
        if self.in_reset() {
            return FLOATING_DATA;
        }
        self.drives[self.selected].as_mut().map_or(FLOATING_DATA, Drive::read_data)
    }

    /// A data-port write.
    pub(super) fn write_data(&mut self, v: u16) {
        if self.in_reset() {
            return;
        }
        if let Some(d) = self.drives[self.selected].as_mut() {
            d.write_data(v);
        }
    }

    /// INTRQ: driven by the selected device when it has an interrupt pending and nIEN is
    /// clear; otherwise released (ATA/ATAPI-6 §5, INTRQ; §7, nIEN).
    pub(super) fn irq(&self) -> bool {
        self.devctl & (DC_NIEN | DC_SRST) == 0 && self.drives[self.selected].as_ref().is_some_and(|d| d.intrq)
    }

    /// Hardware reset: every device back to power-on defaults, then signatures.
    pub(super) fn hardware_reset(&mut self) {
        self.devctl = 0;
        for d in self.drives.iter_mut().flatten() {
            d.power_on_defaults();
        }
        self.post_signatures();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot could say anything: a device index other than 0 or 1 is refused at
    /// restore rather than indexing out of bounds at the next port access.
    #[test]
    fn restored_state_is_checked() {
        let mut c = Channel::new();
        assert_eq!(c.check(), Ok(()));
        c.selected = 76;
        assert!(c.check().is_err());
    }
}
