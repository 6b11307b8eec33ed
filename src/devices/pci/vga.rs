//! 02.0: the PCI face of the VGA adapter in `devices::vga` — the "stdvga" IDs 1234:1111
//! that SeaVGABIOS (`vgabios-stdvga.bin`) and Linux's bochs driver look for, class 03:00:00
//! (VGA-compatible display), and BAR 0, the 16 MiB prefetchable linear framebuffer. The
//! VGA's legacy ports and the A0000h window decode regardless of this function; the
//! machine maps the framebuffer at [`VgaFunction::lfb_base`] when it changes.
//!
//! Expansion ROM: the ROM BAR at 30h is optional ([`VgaFunction::new`] takes the ROM size;
//! 0 leaves it unimplemented, reading 0). SeaBIOS's QEMU build does not find a VGA BIOS
//! placed at C0000h in advance: it clears the option-ROM area from C0000h up and then loads
//! the VGA ROM from the fw_cfg file "pci1234,1111.rom", else through this ROM BAR, else
//! from fw_cfg "vgaroms/*". Without a ROM BAR the machine must therefore hand the VGA
//! BIOS over as the fw_cfg file "pci1234,1111.rom"; with one, it must decode
//! [`VgaFunction::rom_base`].
//!
//! Sources: PCI Local Bus Specification 3.0 §6.1–§6.2 (header, BARs, ROM BAR), PCI Code
//! and ID Assignment Specification (class 03h sub-class 00h: VGA-compatible controller);
//! the IDs are the Bochs/QEMU "stdvga" ones SeaVGABIOS's `bochsvga` driver matches.

use super::config::*;
use super::PciFunction;
use serde::{Deserialize, Serialize};

/// Size of the linear framebuffer BAR.
pub const VGA_LFB_SIZE: u32 = 16 << 20;
/// The framebuffer BAR.
pub const VGA_LFB_BAR: usize = 0;

/// The VGA function.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VgaFunction {
    cfg: ConfigSpace,
    rom_size: u32,
}

impl VgaFunction {
    /// Power-on state: 1234:1111, class 03:00:00, revision 00h, no interrupt pin, PCICMD
    /// 0000h (I/O and memory enables writable), BAR 0 the 16 MiB prefetchable 32-bit
    /// framebuffer (unassigned), and a ROM BAR decoding `rom_size` bytes (rounded up to a
    /// power of two; 0 = no ROM BAR).
    pub fn new(rom_size: u32) -> Self {
        let mut cfg = ConfigSpace::new(0x1234, 0x1111, 0x03_00_00, 0x00, 0x00);
        cfg.set_command(0, CMD_IO | CMD_MEMORY);
        cfg.set_status(STATUS_DEVSEL_MEDIUM);
        cfg.set_interrupt_pin(0);
        cfg.set_bar(VGA_LFB_BAR, BarKind::Memory32 { prefetchable: true }, VGA_LFB_SIZE);
        cfg.set_rom_bar(rom_size);
        Self { cfg, rom_size }
    }

    /// Sets the subsystem IDs (QEMU's stdvga reports 1AF4:1100; nothing SeaBIOS or Linux
    /// does depends on them).
    pub fn set_subsystem(&mut self, vendor: u16, device: u16) {
        self.cfg.set_subsystem(vendor, device);
    }

    /// Where the framebuffer is mapped: BAR 0's address while memory decoding is on and the
    /// BAR is assigned.
    pub fn lfb_base(&self) -> Option<u32> {
        let base = self.cfg.bar_address(VGA_LFB_BAR);
        (self.cfg.command() & CMD_MEMORY != 0 && base != 0).then_some(base)
    }

    /// Where the expansion ROM is mapped: the ROM BAR's address while it is enabled and
    /// memory decoding is on.
    pub fn rom_base(&self) -> Option<u32> {
        let base = self.cfg.rom_address()?;
        (self.cfg.command() & CMD_MEMORY != 0 && base != 0).then_some(base)
    }

    /// Size of the ROM the ROM BAR decodes (0 = none).
    pub fn rom_size(&self) -> u32 {
        self.cfg.rom_size()
    }
}

impl PciFunction for VgaFunction {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    fn reset(&mut self) {
        let sub = (self.cfg.word(PCI_SUBSYSTEM_VENDOR_ID), self.cfg.word(PCI_SUBSYSTEM_ID));
        *self = Self::new(self.rom_size);
        self.cfg.set_subsystem(sub.0, sub.1);
    }
}
