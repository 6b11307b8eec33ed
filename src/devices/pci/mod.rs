//! The PCI side of the PC: configuration mechanism #1 at ports 0CF8h–0CFFh over bus 0, and
//! the functions of an Intel 440FX/PIIX3 board (the machine QEMU calls `pc` and SeaBIOS is
//! built for), plus the "stdvga" display function SeaVGABIOS drives.
//!
//! Where things live:
//! - this file: [`PciBus`] (the CONFIG_ADDRESS latch, the CONFIG_DATA window, the PIIX3
//!   reset control register at 0CF9h, dispatch to functions, change reports), the
//!   [`PciFunction`] trait and the board's interrupt wiring ([`board_pirq`]);
//! - `config.rs`: [`ConfigSpace`], one function's 256 bytes with write masks, BARs and
//!   change detection;
//! - `host.rs`: 00.0, the 82441FX PCI and memory controller ([`HostBridge`]): PAM shadow
//!   RAM control and SMRAM;
//! - `piix3.rs`: 01.0, the PIIX3 PCI-to-ISA bridge ([`IsaBridge`], PIRQ routing) and 01.1,
//!   its IDE function ([`IdeFunction`]);
//! - `pm.rs`: 01.3, the PIIX4 power-management function ([`PowerManagement`]): the ACPI
//!   PM1 registers, the PM timer, the APM control port;
//! - `vga.rs`: 02.0, the 1234:1111 VGA function ([`VgaFunction`]) with its framebuffer BAR.
//!
//! Configuration mechanism #1 (PCI Local Bus Specification 3.0 §3.2.2.3.2): a 32-bit write
//! to 0CF8h latches CONFIG_ADDRESS — bit 31 enable, bits 23–16 bus, 15–11 device, 10–8
//! function, 7–2 register; bits 30–24 and 1–0 read back as 0. While the enable bit is set,
//! accesses to 0CFCh–0CFFh reach the addressed dword, the low two port bits selecting the
//! byte, in byte, word or dword width. Only a 32-bit access to 0CF8h touches the latch;
//! narrower ones are ordinary I/O cycles (the byte at 0CF9h is the PIIX3's reset control
//! register, the others decode nothing). With the enable bit clear, or for a bus other than
//! 0 (there are no bridges), or a device/function nobody implements, reads return all ones
//! (the master abort the specification prescribes) and writes are dropped. An access that
//! runs past 0CFFh is split into bytes, and the bytes past the window answer all ones.
//!
//! Functions are fields of [`PciBus`] so the machine reaches their typed state (PAM modes,
//! PIRQ routing, the PM block) directly; further functions can be added behind the
//! [`PciFunction`] trait. After configuration writes the machine calls
//! [`PciBus::take_changes`] to learn which function's command register, BARs or chipset
//! registers changed, and remaps memory and I/O accordingly. Devices never call each other.

use crate::bus::IoSize;
use alloc::boxed::Box;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

mod config;
mod host;
mod piix3;
mod pm;
mod vga;

#[cfg(test)]
mod tests;

pub use config::*;
pub use host::*;
pub use piix3::*;
pub use pm::*;
pub use vga::*;

/// CONFIG_ADDRESS (PCI 3.0 §3.2.2.3.2): 32-bit accesses only.
pub const PORT_CONFIG_ADDRESS: u16 = 0xcf8;
/// CONFIG_DATA: 0CFCh–0CFFh, byte, word or dword.
pub const PORT_CONFIG_DATA: u16 = 0xcfc;
/// PIIX3 reset control register (82371SB datasheet, "RC—Reset Control Register", I/O
/// address 0CF9h).
pub const PORT_RESET_CONTROL: u16 = 0xcf9;

/// CONFIG_ADDRESS bit 31: configuration cycles enabled.
const CONFIG_ENABLE: u32 = 1 << 31;
/// The CONFIG_ADDRESS bits that hold state: enable, bus, device, function, register.
const CONFIG_ADDRESS_STORED: u32 = CONFIG_ENABLE | 0x00ff_fffc;

/// RC bit 1, System Reset (SRST): the reset RCPU starts is a hard (full system) reset when 1,
/// a soft reset (INIT of the processor) when 0.
const RC_SRST: u8 = 1 << 1;
/// RC bit 2, Reset CPU (RCPU): a 0→1 transition starts the reset SRST selects.
const RC_RCPU: u8 = 1 << 2;
/// RC bit 3, full reset (the PIIX4 adds it; Linux's `reboot=pci` sets it). Stored only.
const RC_FULL: u8 = 1 << 3;

/// Device/function number on bus 0 in CONFIG_ADDRESS bits 15–8 form (device << 3 | fn).
pub const fn devfn(device: u8, function: u8) -> u8 {
    (device << 3) | (function & 7)
}

/// 00.0: the 82441FX host bridge.
pub const DEVFN_HOST: u8 = devfn(0, 0);
/// 01.0: the PIIX3 PCI-to-ISA bridge.
pub const DEVFN_ISA: u8 = devfn(1, 0);
/// 01.1: the PIIX3 IDE function.
pub const DEVFN_IDE: u8 = devfn(1, 1);
/// 01.3: the PIIX4 power-management function.
pub const DEVFN_PM: u8 = devfn(1, 3);
/// 02.0: the VGA function.
pub const DEVFN_VGA: u8 = devfn(2, 0);

/// Which PIRQ line (0 = PIRQA … 3 = PIRQD) the board wires `pin` (1 = INTA# … 4 = INTD#)
/// of a device in `slot` to: the rotation `(slot + pin − 2) mod 4` of QEMU's PC board,
/// which is what SeaBIOS's `$PIR` table (`piix_pci_slot_get_irq`) and its DSDT `_PRT`
/// describe, so guests that trust either agree with the wiring. `None` for pin 0 or > 4.
pub fn board_pirq(slot: u8, pin: u8) -> Option<u8> {
    if !(1..=4).contains(&pin) {
        return None;
    }
    Some(((u16::from(slot) + u16::from(pin) + 2) % 4) as u8)
}

/// One PCI function as the bus sees it: a configuration space with per-register write
/// rules. The defaults do a masked read/write of [`PciFunction::config`]; functions with
/// side effects override [`PciFunction::config_write`] or react in
/// [`PciFunction::config_changed`].
pub trait PciFunction {
    /// The function's configuration space.
    fn config(&self) -> &ConfigSpace;

    /// The function's configuration space, mutable.
    fn config_mut(&mut self) -> &mut ConfigSpace;

    /// A configuration read of `size` bytes at `offset` (the access stays within one dword).
    fn config_read(&mut self, offset: u8, size: IoSize) -> u32 {
        self.config().read(offset, size)
    }

    /// A configuration write of `size` bytes at `offset`; returns what changed.
    fn config_write(&mut self, offset: u8, size: IoSize, value: u32) -> ConfigChange {
        let change = self.config_mut().write(offset, size, value);
        if change.any() {
            self.config_changed(change);
        }
        change
    }

    /// Hook run after a write changed registers: fix up state derived from them.
    fn config_changed(&mut self, _change: ConfigChange) {}

    /// Back to the power-on state (PCI RST#). The default does nothing.
    fn reset(&mut self) {}
}

/// The reset the PIIX3 reset control register asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetKind {
    /// SRST = 1: reset the whole system (processor and chipset).
    Hard,
    /// SRST = 0: INIT the processor only.
    Soft,
}

/// Bus 0 of the PC with its built-in functions and configuration mechanism #1.
#[derive(Serialize, Deserialize)]
pub struct PciBus {
    /// CONFIG_ADDRESS as last written.
    config_address: u32,
    /// The PIIX3 RC register.
    reset_control: u8,
    reset_request: Option<ResetKind>,
    /// 00.0.
    pub host: HostBridge,
    /// 01.0.
    pub isa: IsaBridge,
    /// 01.1.
    pub ide: IdeFunction,
    /// 01.3.
    pub pm: PowerManagement,
    /// 02.0, if the machine has the PCI VGA.
    pub vga: Option<VgaFunction>,
    /// Further functions, by device/function number.
    #[serde(with = "crate::snapshot::no_extra_functions")]
    extra: Vec<(u8, Box<dyn PciFunction>)>,
    /// Changes not yet collected by [`PciBus::take_changes`], one entry per function.
    changes: Vec<(u8, ConfigChange)>,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    /// The board at power-on: host bridge, ISA bridge, IDE without a bus-master BAR, power
    /// management without SMM, and the VGA function without an expansion ROM BAR. Replace
    /// the public fields before the guest runs to configure otherwise.
    pub fn new() -> Self {
        Self {
            config_address: 0,
            reset_control: 0,
            reset_request: None,
            host: HostBridge::new(),
            isa: IsaBridge::new(),
            ide: IdeFunction::new(false),
            pm: PowerManagement::new(false),
            vga: Some(VgaFunction::new(0)),
            extra: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// PCI RST#: every function back to its power-on state, CONFIG_ADDRESS and RC cleared.
    /// Pending change reports and reset requests are dropped.
    pub fn reset(&mut self) {
        self.config_address = 0;
        self.reset_control = 0;
        self.reset_request = None;
        self.host.reset();
        self.isa.reset();
        self.ide.reset();
        self.pm.reset();
        if let Some(vga) = &mut self.vga {
            vga.reset();
        }
        for (_, f) in &mut self.extra {
            f.reset();
        }
        self.changes.clear();
    }

    /// Adds a function at `devfn` on bus 0. Fails (returning the function) if the number is
    /// taken. A function other than 0 of a device is only found by software that scans all
    /// functions if function 0 sets the multi-function bit.
    pub fn add_function(&mut self, devfn: u8, function: Box<dyn PciFunction>) -> Result<(), Box<dyn PciFunction>> {
        if self.function(devfn).is_some() {
            return Err(function);
        }
        self.extra.push((devfn, function));
        Ok(())
    }

    /// The function at `devfn`, if one is present.
    pub fn function(&self, devfn: u8) -> Option<&dyn PciFunction> {
        match devfn {
            DEVFN_HOST => Some(&self.host),
            DEVFN_ISA => Some(&self.isa),
            DEVFN_IDE => Some(&self.ide),
            DEVFN_PM => Some(&self.pm),
            DEVFN_VGA if self.vga.is_some() => self.vga.as_ref().map(|v| v as &dyn PciFunction),
            _ => self.extra.iter().find(|(d, _)| *d == devfn).map(|(_, f)| f.as_ref()),
        }
    }

    /// The function at `devfn`, mutable.
    pub fn function_mut(&mut self, devfn: u8) -> Option<&mut dyn PciFunction> {
        match devfn {
            DEVFN_HOST => Some(&mut self.host),
            DEVFN_ISA => Some(&mut self.isa),
            DEVFN_IDE => Some(&mut self.ide),
            DEVFN_PM => Some(&mut self.pm),
            DEVFN_VGA if self.vga.is_some() => self.vga.as_mut().map(|v| v as &mut dyn PciFunction),
            _ => self.extra.iter_mut().find(|(d, _)| *d == devfn).map(|(_, f)| f.as_mut() as &mut dyn PciFunction),
        }
    }

    /// Configuration read of bus 0, `devfn`, `size` bytes at `offset` (within one dword).
    /// All ones if no function answers.
    pub fn config_read(&mut self, devfn: u8, offset: u8, size: IoSize) -> u32 {
        match self.function_mut(devfn) {
            Some(f) => f.config_read(offset, size),
            None => size.all_ones(),
        }
    }

    /// Configuration write of bus 0, `devfn`, `size` bytes at `offset` (within one dword).
    /// Dropped if no function answers; changes are queued for [`PciBus::take_changes`].
    pub fn config_write(&mut self, devfn: u8, offset: u8, size: IoSize, value: u32) {
        let Some(f) = self.function_mut(devfn) else { return };
        let change = f.config_write(offset, size, value);
        if !change.any() {
            return;
        }
        match self.changes.iter_mut().find(|(d, _)| *d == devfn) {
            Some((_, c)) => c.merge(change),
            None => self.changes.push((devfn, change)),
        }
    }

    /// The configuration changes since the last call, one entry per function (device/function
    /// number and what changed), in the order the functions were first written.
    pub fn take_changes(&mut self) -> Vec<(u8, ConfigChange)> {
        core::mem::take(&mut self.changes)
    }

    /// The reset the guest requested through 0CF9h, once.
    pub fn take_reset_request(&mut self) -> Option<ResetKind> {
        self.reset_request.take()
    }

    /// The ISA IRQ that interrupt pin `pin` (1–4) of a device in `slot` reaches through the
    /// board wiring ([`board_pirq`]) and the PIIX3's PIRQ route control registers, if routed.
    pub fn isa_irq_for(&self, slot: u8, pin: u8) -> Option<u8> {
        let pirq = board_pirq(slot, pin)?;
        self.isa.pirq_route()[usize::from(pirq)]
    }

    /// Whether `port` is one of the ports this bus decodes (0CF8h–0CFFh).
    pub fn owns_port(&self, port: u16) -> bool {
        (PORT_CONFIG_ADDRESS..=PORT_CONFIG_DATA + 3).contains(&port)
    }

    /// `IN` from `port`. Ports outside 0CF8h–0CFFh answer all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        if port == PORT_CONFIG_ADDRESS && size == IoSize::Dword {
            return self.config_address;
        }
        if let Some(k) = self.data_window_offset(port, size) {
            return self.data_read(k, size);
        }
        let mut value = 0u32;
        for i in 0..size as u16 {
            let p = port.wrapping_add(i);
            let byte = match p {
                PORT_RESET_CONTROL => self.reset_control,
                _ if self.data_window_offset(p, IoSize::Byte).is_some() => {
                    self.data_read((p - PORT_CONFIG_DATA) as u8, IoSize::Byte) as u8
                }
                _ => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to `port`. Ports outside 0CF8h–0CFFh are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        if port == PORT_CONFIG_ADDRESS && size == IoSize::Dword {
            self.config_address = value & CONFIG_ADDRESS_STORED;
            return;
        }
        if let Some(k) = self.data_window_offset(port, size) {
            self.data_write(k, size, value);
            return;
        }
        for i in 0..size as u16 {
            let p = port.wrapping_add(i);
            let byte = (value >> (8 * i)) as u8;
            if p == PORT_RESET_CONTROL {
                self.write_reset_control(byte);
            } else if self.data_window_offset(p, IoSize::Byte).is_some() {
                self.data_write((p - PORT_CONFIG_DATA) as u8, IoSize::Byte, u32::from(byte));
            }
        }
    }

    /// The byte offset within CONFIG_DATA if an access of `size` at `port` lies entirely in
    /// 0CFCh–0CFFh.
    fn data_window_offset(&self, port: u16, size: IoSize) -> Option<u8> {
        let k = port.checked_sub(PORT_CONFIG_DATA)?;
        (k + size as u16 <= 4).then_some(k as u8)
    }

    /// The bus 0 device/function and register a CONFIG_DATA access reaches, if enabled.
    fn target(&self) -> Option<(u8, u8)> {
        let a = self.config_address;
        if a & CONFIG_ENABLE == 0 || (a >> 16) & 0xff != 0 {
            return None;
        }
        Some(((a >> 8) as u8, (a & 0xfc) as u8))
    }

    fn data_read(&mut self, k: u8, size: IoSize) -> u32 {
        match self.target() {
            Some((devfn, reg)) => self.config_read(devfn, reg | k, size),
            None => size.all_ones(),
        }
    }

    fn data_write(&mut self, k: u8, size: IoSize, value: u32) {
        if let Some((devfn, reg)) = self.target() {
            self.config_write(devfn, reg | k, size, value);
        }
    }

    /// RC write (82371SB datasheet, "RC—Reset Control Register"): SRST and the PIIX4's
    /// full-reset bit are stored; a 0→1 transition of RCPU requests the reset SRST selects.
    fn write_reset_control(&mut self, v: u8) {
        let rising = v & RC_RCPU != 0 && self.reset_control & RC_RCPU == 0;
        self.reset_control = v & (RC_SRST | RC_RCPU | RC_FULL);
        if rising {
            self.reset_request = Some(if v & RC_SRST != 0 { ResetKind::Hard } else { ResetKind::Soft });
        }
    }
}
