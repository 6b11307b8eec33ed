//! Tests of the PCI bus and its functions, driven through ports 0CF8h/0CFCh the way
//! firmware drives them.

use super::*;
use crate::bus::IoSize::{Byte, Dword, Word};

/// CONFIG_ADDRESS value for bus 0, `devfn`, register `reg`.
fn addr(devfn: u8, reg: u8) -> u32 {
    0x8000_0000 | (u32::from(devfn) << 8) | u32::from(reg & 0xfc)
}

/// A configuration read as SeaBIOS's `pci_config_read[bwl]` does it.
fn cfg_read(bus: &mut PciBus, devfn: u8, reg: u8, size: IoSize) -> u32 {
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(devfn, reg));
    bus.read(PORT_CONFIG_DATA + u16::from(reg & 3), size)
}

/// A configuration write as SeaBIOS's `pci_config_write[bwl]` does it.
fn cfg_write(bus: &mut PciBus, devfn: u8, reg: u8, size: IoSize, value: u32) {
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(devfn, reg));
    bus.write(PORT_CONFIG_DATA + u16::from(reg & 3), size, value);
}

/// The SeaBIOS set-up of the PIIX4 PM function (`piix4_pm_config_setup`).
fn seabios_pm_setup(bus: &mut PciBus) {
    cfg_write(bus, DEVFN_PM, 0x3c, Byte, 9);
    cfg_write(bus, DEVFN_PM, 0x40, Dword, 0xb000 | 1);
    cfg_write(bus, DEVFN_PM, 0x80, Byte, 0x01);
    cfg_write(bus, DEVFN_PM, 0x90, Dword, 0xb100 | 1);
    cfg_write(bus, DEVFN_PM, 0xd2, Byte, 0x09);
}

const PM: u16 = 0xb000;

#[test]
fn ids_at_every_width_and_offset() {
    let mut bus = PciBus::new();
    let cases: [(u8, u16, u16); 5] = [
        (DEVFN_HOST, 0x8086, 0x1237),
        (DEVFN_ISA, 0x8086, 0x7000),
        (DEVFN_IDE, 0x8086, 0x7010),
        (DEVFN_PM, 0x8086, 0x7113),
        (DEVFN_VGA, 0x1234, 0x1111),
    ];
    for (devfn, vendor, device) in cases {
        let id = u32::from(vendor) | (u32::from(device) << 16);
        assert_eq!(cfg_read(&mut bus, devfn, 0, Dword), id, "devfn {devfn:#x}");
        assert_eq!(cfg_read(&mut bus, devfn, 0, Word), u32::from(vendor));
        assert_eq!(cfg_read(&mut bus, devfn, 2, Word), u32::from(device));
        for k in 0..4u8 {
            assert_eq!(cfg_read(&mut bus, devfn, k, Byte), (id >> (8 * k)) & 0xff, "byte {k}");
        }
        // With CONFIG_ADDRESS set once, every data port answers its byte lane.
        bus.write(PORT_CONFIG_ADDRESS, Dword, addr(devfn, 0));
        assert_eq!(bus.read(0xcfd, Byte), (id >> 8) & 0xff);
        assert_eq!(bus.read(0xcfe, Word), id >> 16);
        assert_eq!(bus.read(0xcfd, Word), (id >> 8) & 0xffff);
    }
}

#[test]
fn class_codes_header_types_and_pins() {
    let mut bus = PciBus::new();
    let class = |bus: &mut PciBus, d| cfg_read(bus, d, 0x08, Dword) >> 8;
    assert_eq!(class(&mut bus, DEVFN_HOST), 0x06_00_00);
    assert_eq!(class(&mut bus, DEVFN_ISA), 0x06_01_00);
    assert_eq!(class(&mut bus, DEVFN_IDE), 0x01_01_80);
    assert_eq!(class(&mut bus, DEVFN_PM), 0x06_80_00);
    assert_eq!(class(&mut bus, DEVFN_VGA), 0x03_00_00);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x08, Byte), 0x03, "PIIX4E/M revision");
    assert_eq!(cfg_read(&mut bus, DEVFN_ISA, 0x0e, Byte), 0x80, "multi-function");
    for d in [DEVFN_HOST, DEVFN_IDE, DEVFN_PM, DEVFN_VGA] {
        assert_eq!(cfg_read(&mut bus, d, 0x0e, Byte), 0x00);
    }
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x3d, Byte), 1, "PM uses INTA#");
    for d in [DEVFN_HOST, DEVFN_ISA, DEVFN_IDE, DEVFN_VGA] {
        assert_eq!(cfg_read(&mut bus, d, 0x3d, Byte), 0);
    }
    // The interrupt line is a scratch register where there is a pin.
    cfg_write(&mut bus, DEVFN_PM, 0x3c, Byte, 9);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x3c, Byte), 9);
    cfg_write(&mut bus, DEVFN_HOST, 0x3c, Byte, 9);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x3c, Byte), 0);
    // Command and status defaults.
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x04, Dword), 0x0280_0006);
    assert_eq!(cfg_read(&mut bus, DEVFN_ISA, 0x04, Dword), 0x0200_0007);
}

#[test]
fn missing_devices_read_all_ones() {
    let mut bus = PciBus::new();
    for devfn in [devfn(1, 2), devfn(3, 0), devfn(31, 7), devfn(0, 1)] {
        assert_eq!(cfg_read(&mut bus, devfn, 0, Dword), 0xffff_ffff);
        assert_eq!(cfg_read(&mut bus, devfn, 2, Word), 0xffff);
        assert_eq!(cfg_read(&mut bus, devfn, 3, Byte), 0xff);
        cfg_write(&mut bus, devfn, 0x10, Dword, 0x1234_5678);
    }
    // Bus 1: no bridge, nothing answers.
    bus.write(PORT_CONFIG_ADDRESS, Dword, 0x8001_0000);
    assert_eq!(bus.read(PORT_CONFIG_DATA, Dword), 0xffff_ffff);
    // Enable bit clear: the data window is not a configuration cycle.
    bus.write(PORT_CONFIG_ADDRESS, Dword, 0x0000_0000);
    assert_eq!(bus.read(PORT_CONFIG_DATA, Dword), 0xffff_ffff);
    bus.write(PORT_CONFIG_DATA, Dword, 0);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0, Word), 0x8086);
    assert!(bus.take_changes().is_empty());
    // Without the VGA function, 02.0 is empty too.
    bus.vga = None;
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0, Dword), 0xffff_ffff);
}

#[test]
fn config_address_latch() {
    let mut bus = PciBus::new();
    // SeaBIOS's pci_probe_host.
    bus.write(PORT_CONFIG_ADDRESS, Dword, 0x8000_0000);
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Dword), 0x8000_0000);
    // Reserved bits 30–24 and 1–0 read 0.
    bus.write(PORT_CONFIG_ADDRESS, Dword, 0xffff_ffff);
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Dword), 0x80ff_fffc);
    // Narrower accesses do not touch the latch.
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(DEVFN_HOST, 0));
    bus.write(PORT_CONFIG_ADDRESS, Byte, 0x55);
    bus.write(0xcfa, Word, 0x1234);
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Dword), addr(DEVFN_HOST, 0));
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Byte), 0xff);
    assert_eq!(bus.read(0xcfa, Word), 0xffff);
    // The register number's low bits come from the data port, not the latch.
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(DEVFN_HOST, 0) | 3);
    assert_eq!(bus.read(PORT_CONFIG_DATA, Word), 0x8086);
    assert!(!bus.owns_port(0xcf7) && bus.owns_port(0xcf8) && bus.owns_port(0xcff) && !bus.owns_port(0xd00));
    assert_eq!(bus.read(0x80, Byte), 0xff);
}

#[test]
fn accesses_running_past_the_window_split_into_bytes() {
    let mut bus = PciBus::new();
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(DEVFN_HOST, 0));
    // Bytes 0CFDh–0CFFh are vendor/device bytes 1–3; 0D00h answers all ones.
    assert_eq!(bus.read(0xcfd, Dword), 0xff12_3780);
    assert_eq!(bus.read(0xcff, Word), 0xff12);
    // 0CFAh–0CFDh: two empty ports, then two data bytes.
    assert_eq!(bus.read(0xcfa, Dword), 0x8086_ffff);
    // A split write reaches the bytes inside the window.
    bus.write(PORT_CONFIG_ADDRESS, Dword, addr(DEVFN_ISA, 0x60));
    bus.write(0xcff, Word, 0x0b);
    assert_eq!(bus.isa.pirq_registers()[3], 0x0b);
}

#[test]
fn bar_sizing_by_writing_all_ones() {
    let mut bus = PciBus::new();
    // VGA BAR 0: 16 MiB prefetchable memory.
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0x10, Dword), 0x0000_0008);
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xffff_ffff);
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0x10, Dword), 0xff00_0008);
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xfd00_0000);
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0x10, Dword), 0xfd00_0008);
    // Misaligned addresses lose their low bits.
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xfd12_3456);
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0x10, Dword), 0xfd00_0008);
    // Unimplemented BARs and the absent ROM BAR size to nothing.
    for reg in [0x14, 0x18, 0x1c, 0x20, 0x24, 0x30] {
        cfg_write(&mut bus, DEVFN_VGA, reg, Dword, 0xffff_ffff);
        assert_eq!(cfg_read(&mut bus, DEVFN_VGA, reg, Dword), 0, "reg {reg:#x}");
    }
    // Framebuffer mapping follows BAR 0 and the memory enable.
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xfd00_0000);
    assert_eq!(bus.vga.as_ref().unwrap().lfb_base(), None);
    cfg_write(&mut bus, DEVFN_VGA, 0x04, Word, 0x0003);
    assert_eq!(bus.vga.as_ref().unwrap().lfb_base(), Some(0xfd00_0000));
    // The IDE function has no BARs unless asked for the bus-master block.
    cfg_write(&mut bus, DEVFN_IDE, 0x20, Dword, 0xffff_ffff);
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x20, Dword), 0);
    bus.ide = IdeFunction::new(true);
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x20, Dword), 1);
    cfg_write(&mut bus, DEVFN_IDE, 0x20, Dword, 0xffff_ffff);
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x20, Dword), 0xffff_fff1, "16 bytes of I/O");
    cfg_write(&mut bus, DEVFN_IDE, 0x04, Word, 0x0005);
    assert_eq!(bus.ide.bus_master_base(), None, "above 64 KiB: not decodable");
    cfg_write(&mut bus, DEVFN_IDE, 0x04, Word, 0x0000);
    cfg_write(&mut bus, DEVFN_IDE, 0x20, Dword, 0xc000);
    assert_eq!(bus.ide.bus_master_base(), None, "I/O decode off");
    cfg_write(&mut bus, DEVFN_IDE, 0x04, Word, 0x0005);
    assert_eq!(bus.ide.bus_master_base(), Some(0xc000));
    assert!(bus.ide.bus_master_enabled());
}

#[test]
fn rom_bar_when_configured() {
    let mut bus = PciBus::new();
    bus.vga = Some(VgaFunction::new(40 * 1024));
    cfg_write(&mut bus, DEVFN_VGA, 0x30, Dword, 0xffff_fffe);
    assert_eq!(cfg_read(&mut bus, DEVFN_VGA, 0x30, Dword), 0xffff_0000, "64 KiB");
    cfg_write(&mut bus, DEVFN_VGA, 0x30, Dword, 0xfebc_0000);
    assert_eq!(bus.vga.as_ref().unwrap().rom_base(), None, "not enabled");
    cfg_write(&mut bus, DEVFN_VGA, 0x30, Dword, 0xfebc_0001);
    cfg_write(&mut bus, DEVFN_VGA, 0x04, Word, 0x0003);
    let vga = bus.vga.as_ref().unwrap();
    assert_eq!((vga.rom_base(), vga.rom_size()), (Some(0xfebc_0000), 0x10000));
}

#[test]
fn changes_are_reported_per_function() {
    let mut bus = PciBus::new();
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xfd00_0000);
    cfg_write(&mut bus, DEVFN_VGA, 0x04, Word, 0x0003);
    cfg_write(&mut bus, DEVFN_HOST, 0x59, Byte, 0x30);
    let changes = bus.take_changes();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0], (DEVFN_VGA, ConfigChange { command: true, bars: 1, rom: false, device_specific: false }));
    assert_eq!(changes[1], (DEVFN_HOST, ConfigChange { device_specific: true, ..ConfigChange::default() }));
    assert!(bus.take_changes().is_empty());
    // Same value again, read-only registers, missing devices: nothing to report.
    cfg_write(&mut bus, DEVFN_VGA, 0x10, Dword, 0xfd00_0000);
    cfg_write(&mut bus, DEVFN_HOST, 0x00, Dword, 0);
    cfg_write(&mut bus, devfn(9, 0), 0x04, Word, 7);
    assert!(bus.take_changes().is_empty());
    // Status error bits are write-1-to-clear, never set here, so writes change nothing.
    cfg_write(&mut bus, DEVFN_HOST, 0x04, Dword, 0xffff_0006);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x06, Word), 0x0280);
    assert!(bus.take_changes().is_empty());
}

#[test]
fn pam_decode() {
    let mut bus = PciBus::new();
    // Power-on: everything reads ROM and drops writes.
    assert!(bus.host.pam().iter().all(|m| *m == PamMode::default()));
    assert_eq!(PAM_RANGES[0], PamRange { base: 0xc0000, size: 0x4000 });
    assert_eq!(PAM_RANGES[11], PamRange { base: 0xec000, size: 0x4000 });
    assert_eq!(PAM_RANGES[12], PamRange { base: 0xf0000, size: 0x10000 });
    // SeaBIOS make_bios_writable: read the two dwords at 58h/5Ch, set PAM1–6 to 33h and
    // PAM0 to 30h, write them back.
    let lo = cfg_read(&mut bus, DEVFN_HOST, 0x58, Dword);
    let hi = cfg_read(&mut bus, DEVFN_HOST, 0x5c, Dword);
    assert_eq!((lo, hi), (0, 0));
    cfg_write(&mut bus, DEVFN_HOST, 0x58, Dword, 0x3333_3000);
    cfg_write(&mut bus, DEVFN_HOST, 0x5c, Dword, 0x3333_3333);
    let rw = PamMode { read_ram: true, write_ram: true };
    assert!(bus.host.pam().iter().all(|m| *m == rw));
    assert_eq!(bus.host.pam_registers(), [0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
    // make_bios_readonly: C0000h–C7FFFh read-only (11h), C8000h–CBFFFh read-only and
    // CC000h–CFFFFh read/write (31h), the rest left as it was, F0000h read-only (10h).
    cfg_write(&mut bus, DEVFN_HOST, 0x58, Dword, 0x3111_1000);
    let ro = PamMode { read_ram: true, write_ram: false };
    let pam = bus.host.pam();
    assert_eq!(&pam[0..4], &[ro, ro, ro, rw]);
    assert_eq!(pam[12], ro);
    assert_eq!(bus.host.pam_mode(0xf_fff0), Some(ro));
    assert_eq!(bus.host.pam_mode(0xc_8000), Some(ro));
    assert_eq!(bus.host.pam_mode(0xc_c000), Some(rw));
    assert_eq!(bus.host.pam_mode(0xe_ffff), Some(rw));
    assert_eq!(bus.host.pam_mode(0xb_ffff), None);
    assert_eq!(bus.host.pam_mode(0x10_0000), None);
    // Reserved bits and PAM0's low nibble stay 0; the write to DRAMT at 58h is stored.
    cfg_write(&mut bus, DEVFN_HOST, 0x58, Dword, 0xffff_ffff);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x58, Dword), 0x3333_30ff);
    // Byte and word accesses to single PAM registers.
    cfg_write(&mut bus, DEVFN_HOST, 0x5a, Byte, 0x01);
    assert_eq!(bus.host.pam()[0..2], [PamMode { read_ram: true, write_ram: false }, PamMode::default()]);
    cfg_write(&mut bus, DEVFN_HOST, 0x5e, Word, 0x2010);
    let p = bus.host.pam();
    let wo = PamMode { read_ram: false, write_ram: true };
    assert_eq!(p[8..12], [PamMode::default(), ro, PamMode::default(), wo], "E4000h read-only, EC000h write-only");
    bus.reset();
    assert!(bus.host.pam().iter().all(|m| *m == PamMode::default()));
}

#[test]
fn smram_register_and_lock() {
    let mut bus = PciBus::new();
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x72, Byte), 0x02);
    // SeaBIOS piix4_apmc_smm_setup opens the window (02h | 48h), then closes it (02h | 08h).
    cfg_write(&mut bus, DEVFN_HOST, 0x72, Byte, 0x4a);
    assert!(bus.host.smram_open());
    cfg_write(&mut bus, DEVFN_HOST, 0x72, Byte, 0x0a);
    assert!(!bus.host.smram_open());
    // The base segment is hard-wired.
    cfg_write(&mut bus, DEVFN_HOST, 0x72, Byte, 0x00);
    assert_eq!(bus.host.smram(), 0x02);
    // D_LCK clears D_OPEN and freezes everything but D_CLS.
    cfg_write(&mut bus, DEVFN_HOST, 0x72, Byte, 0x5a);
    assert_eq!(bus.host.smram(), 0x1a);
    cfg_write(&mut bus, DEVFN_HOST, 0x72, Byte, 0x60);
    assert_eq!(bus.host.smram(), 0x3a);
    assert!(!bus.host.smram_open());
    bus.reset();
    assert_eq!(bus.host.smram(), 0x02);
}

#[test]
fn subsystem_ids() {
    let mut bus = PciBus::new();
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x2c, Dword), 0);
    bus.host.set_subsystem(0x1af4, 0x1100);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x2c, Word), 0x1af4);
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x2e, Word), 0x1100);
    cfg_write(&mut bus, DEVFN_HOST, 0x2c, Dword, 0);
    bus.reset();
    assert_eq!(cfg_read(&mut bus, DEVFN_HOST, 0x2c, Dword), 0x1100_1af4);
}

#[test]
fn pirq_routing() {
    let mut bus = PciBus::new();
    assert_eq!(bus.isa.pirq_route(), [None; 4]);
    assert_eq!(cfg_read(&mut bus, DEVFN_ISA, 0x60, Dword), 0x8080_8080);
    // SeaBIOS piix_isa_bridge_setup: byte writes of 10, 10, 11, 11.
    for (i, irq) in [10u32, 10, 11, 11].into_iter().enumerate() {
        cfg_write(&mut bus, DEVFN_ISA, 0x60 + i as u8, Byte, irq);
    }
    assert_eq!(bus.isa.pirq_route(), [Some(10), Some(10), Some(11), Some(11)]);
    // Board wiring: slot 1 INTA# is PIRQA, slot 0 INTA# PIRQD, slot 2 INTA# PIRQB, slot 3
    // INTD# PIRQB.
    assert_eq!(board_pirq(1, 1), Some(0));
    assert_eq!(board_pirq(0, 1), Some(3));
    assert_eq!(board_pirq(2, 1), Some(1));
    assert_eq!(board_pirq(3, 4), Some(1));
    assert_eq!(board_pirq(2, 0), None);
    assert_eq!(board_pirq(2, 5), None);
    assert_eq!(bus.isa_irq_for(2, 1), Some(10));
    assert_eq!(bus.isa_irq_for(3, 1), Some(11));
    assert_eq!(bus.isa_irq_for(1, 4), Some(11));
    // The DSDT's link devices: _DIS sets bit 7, _SRS writes an IRQ; bits 6–4 are reserved.
    cfg_write(&mut bus, DEVFN_ISA, 0x61, Byte, 0x8a);
    cfg_write(&mut bus, DEVFN_ISA, 0x62, Byte, 0x75);
    assert_eq!(bus.isa.pirq_registers(), [0x0a, 0x8a, 0x05, 0x0b]);
    assert_eq!(bus.isa.pirq_route(), [Some(10), None, Some(5), Some(11)]);
    // Reserved IRQ numbers route nowhere.
    for (irq, routed) in [(0, false), (2, false), (3, true), (8, false), (9, true), (13, false), (15, true)] {
        cfg_write(&mut bus, DEVFN_ISA, 0x63, Byte, irq);
        assert_eq!(bus.isa.pirq_route()[3], routed.then_some(irq as u8), "irq {irq}");
    }
    // A dword write sets all four at once and is reported as a chipset change.
    bus.take_changes();
    cfg_write(&mut bus, DEVFN_ISA, 0x60, Dword, 0x0b0a_0b0a);
    assert_eq!(bus.isa.pirq_route(), [Some(10), Some(11), Some(10), Some(11)]);
    assert_eq!(bus.take_changes(), [(DEVFN_ISA, ConfigChange { device_specific: true, ..ConfigChange::default() })]);
}

#[test]
fn ide_timing_registers() {
    let mut bus = PciBus::new();
    assert!(!bus.ide.channel_enabled(0) && !bus.ide.channel_enabled(1));
    // SeaBIOS piix_ide_setup, then pci_bios_init_device's command enable.
    cfg_write(&mut bus, DEVFN_IDE, 0x40, Word, 0x8000);
    cfg_write(&mut bus, DEVFN_IDE, 0x42, Word, 0x8000);
    assert!(!bus.ide.channel_enabled(0));
    cfg_write(&mut bus, DEVFN_IDE, 0x04, Word, 0x0103);
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x04, Word), 0x0001, "only I/O and bus master writable");
    assert!(bus.ide.channel_enabled(0) && bus.ide.channel_enabled(1));
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x40, Dword), 0x8000_8000);
    cfg_write(&mut bus, DEVFN_IDE, 0x44, Byte, 0x5a);
    assert_eq!(cfg_read(&mut bus, DEVFN_IDE, 0x44, Byte), 0x5a);
    cfg_write(&mut bus, DEVFN_IDE, 0x42, Word, 0x0000);
    assert!(!bus.ide.channel_enabled(1));
}

#[test]
fn pm_block_configuration() {
    let mut bus = PciBus::new();
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x40, Dword), 1);
    assert_eq!(bus.pm.pm_io_base(), None);
    assert!(!bus.pm.owns_port(PM + 8));
    seabios_pm_setup(&mut bus);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x40, Dword), 0xb001);
    assert_eq!(bus.pm.pm_io_base(), Some(PM));
    assert!(bus.pm.owns_port(PM) && bus.pm.owns_port(PM + 0x3f) && !bus.pm.owns_port(PM + 0x40));
    assert!(bus.pm.owns_port(0xb2) && bus.pm.owns_port(0xb3) && bus.pm.owns_port(0xafe3));
    assert!(!bus.pm.owns_port(0xafe4));
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x90, Dword), 0xb101);
    assert_eq!(bus.pm.smbus_base(), None, "SMBus I/O enable still off");
    cfg_write(&mut bus, DEVFN_PM, 0x04, Word, 0x0007);
    assert_eq!(bus.pm.smbus_base(), Some(0xb100));
    // The base's low bits are not writable: 64-byte alignment.
    cfg_write(&mut bus, DEVFN_PM, 0x40, Dword, 0x0600_ffff);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x40, Dword), 0xffc1);
    cfg_write(&mut bus, DEVFN_PM, 0x40, Dword, 0x0601);
    assert_eq!(bus.pm.pm_io_base(), Some(0x600));
    cfg_write(&mut bus, DEVFN_PM, 0x80, Byte, 0);
    assert_eq!(bus.pm.pm_io_base(), None);
    assert_eq!(bus.pm.io_read(0x608, Dword, 0), 0xffff_ffff);
}

#[test]
fn apmc_en_preset_without_smm() {
    let mut bus = PciBus::new();
    // SeaBIOS smm_setup reads DEVACTB and skips SMM initialisation when bit 25 is set.
    assert_ne!(cfg_read(&mut bus, DEVFN_PM, 0x58, Dword) & (1 << 25), 0);
    cfg_write(&mut bus, DEVFN_PM, 0x58, Dword, 0);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x58, Dword), 1 << 25);
    cfg_write(&mut bus, DEVFN_PM, 0x58, Dword, 0x0000_00ff);
    assert_eq!(cfg_read(&mut bus, DEVFN_PM, 0x58, Dword), (1 << 25) | 0xff);
    let mut with_smm = PowerManagement::new(true);
    assert_eq!(with_smm.config_read(0x58, Dword), 0);
    with_smm.config_write(0x58, Dword, 1 << 25);
    assert_eq!(with_smm.config_read(0x58, Dword), 1 << 25);
}

#[test]
fn pm_timer_runs_at_3_579545_mhz() {
    let mut bus = PciBus::new();
    seabios_pm_setup(&mut bus);
    let t = |bus: &mut PciBus, now| bus.pm.io_read(PM + 8, Dword, now);
    assert_eq!(t(&mut bus, 0), 0);
    assert_eq!(t(&mut bus, 1_000_000_000), 3_579_545);
    assert_eq!(t(&mut bus, 1_000), 3, "3.58 ticks in a microsecond");
    assert_eq!(t(&mut bus, 279), 0, "one tick is 279.4 ns");
    assert_eq!(t(&mut bus, 280), 1);
    // 24 bits: wraps after 2^24 ticks ≈ 4.687 s.
    assert_eq!(t(&mut bus, 10_000_000_000), (35_795_450 % (1 << 24)) as u32);
    // Deterministic and monotonic between wraps.
    let mut last = 0;
    for i in 0..1000u64 {
        let v = t(&mut bus, i * 1_234_567);
        assert!(v >= last && v < 1 << 24);
        last = v;
    }
    // Bytes and words read the same count; bits 31–24 read 0.
    let now = 3_000_000_000;
    let full = t(&mut bus, now);
    assert_eq!(bus.pm.io_read(PM + 8, Word, now), full & 0xffff);
    assert_eq!(bus.pm.io_read(PM + 10, Byte, now), (full >> 16) & 0xff);
    assert_eq!(bus.pm.io_read(PM + 11, Byte, now), 0);
    // Writes are ignored.
    bus.pm.io_write(PM + 8, Dword, 0, now);
    assert_eq!(t(&mut bus, now), full);
}

#[test]
fn timer_overflow_status_and_sci() {
    let mut pm = PowerManagement::new(false);
    let mut bus = PciBus::new();
    seabios_pm_setup(&mut bus);
    core::mem::swap(&mut pm, &mut bus.pm);
    // Bit 23 first changes at 2^23 ticks.
    let flip = (1u64 << 23) * 1_000_000_000 / PM_TIMER_HZ + 1;
    assert_eq!(pm.io_read(PM, Word, flip - 2) & 1, 0);
    assert_eq!(pm.io_read(PM, Word, flip) & 1, 1);
    // Enable the event: no SCI before ACPI mode.
    pm.io_write(PM + 2, Word, u32::from(PM1_TMROF), 0);
    assert!(!pm.sci_level(flip));
    assert_eq!(pm.next_event(0), None);
    // ACPI mode through the APM port as Linux does it (FADT ACPI_ENABLE).
    pm.io_write(0xb2, Byte, 0xf1, 0);
    assert_eq!(pm.io_read(PM + 4, Word, 0) & 1, 1);
    let next = pm.next_event(0).unwrap();
    assert!(next >= flip - 1 && next <= flip, "{next} vs {flip}");
    assert!(!pm.sci_level(next - 1));
    assert!(pm.sci_level(next));
    // Clearing the status silences it until the next change of bit 23.
    pm.io_write(PM, Word, 1, next);
    assert!(!pm.sci_level(next));
    let again = pm.next_event(next).unwrap();
    assert!(again > next + 2_000_000_000 && again < next + 2_500_000_000);
    assert!(pm.sci_level(again));
    assert_eq!(pm.next_event(again), None, "already pending");
    // ACPI_DISABLE leaves ACPI mode.
    pm.io_write(0xb2, Byte, 0xf0, again);
    assert!(!pm.acpi_enabled() && !pm.sci_level(again));
    assert_eq!(pm.io_read(0xb2, Byte, 0), 0xf0);
    pm.io_write(0xb3, Byte, 0x5a, 0);
    assert_eq!(pm.io_read(0xb3, Byte, 0), 0x5a);
}

#[test]
fn pm1_control_power_off_and_sleep() {
    let mut bus = PciBus::new();
    seabios_pm_setup(&mut bus);
    let pm = &mut bus.pm;
    assert!(!pm.power_off_requested());
    // SCI_EN and the sleep type read back; SLP_EN is write-only.
    pm.io_write(PM + 4, Word, 0x0401, 0);
    assert_eq!(pm.io_read(PM + 4, Word, 0), 0x0401);
    assert_eq!(pm.take_sleep_request(), None);
    // S3-like request (SLP_TYP 1): reported, not acted on.
    pm.io_write(PM + 4, Word, 0x2401, 0);
    assert_eq!(pm.take_sleep_request(), Some(1));
    assert_eq!(pm.take_sleep_request(), None);
    assert_eq!(pm.io_read(PM + 4, Word, 0), 0x0401);
    assert!(!pm.power_off_requested());
    pm.wake();
    assert_eq!(pm.io_read(PM, Word, 0) & 0x8000, 0x8000);
    pm.io_write(PM, Word, 0x8000, 0);
    assert_eq!(pm.io_read(PM, Word, 0), 0);
    // SeaBIOS apm_shutdown: outw(0x2000, pm1a_cnt) — soft off.
    pm.io_write(PM + 4, Word, 0x2000, 0);
    assert!(pm.power_off_requested());
    // Byte writes work too: the high byte carries SLP_TYP and SLP_EN.
    let mut pm2 = PowerManagement::new(false);
    pm2.config_write(0x40, Dword, 0xb001);
    pm2.config_write(0x80, Byte, 1);
    pm2.io_write(PM + 5, Byte, 0x20, 0);
    assert!(pm2.power_off_requested());
    bus.reset();
    assert!(!bus.pm.power_off_requested());
}

#[test]
fn power_button_and_pm1_enable() {
    let mut bus = PciBus::new();
    seabios_pm_setup(&mut bus);
    let pm = &mut bus.pm;
    pm.io_write(PM + 2, Word, 0xffff, 0);
    assert_eq!(pm.io_read(PM + 2, Word, 0), 0x0521, "TMROF, GBL, PWRBTN, RTC enables");
    pm.io_write(PM + 2, Word, u32::from(PM1_PWRBTN), 0);
    pm.io_write(0xb2, Byte, 0xf1, 0);
    assert!(!pm.sci_level(0));
    pm.press_power_button();
    assert_eq!(pm.io_read(PM, Word, 0), 0x0100);
    assert!(pm.sci_level(0));
    // Writing 0 clears nothing; writing 1 clears it.
    pm.io_write(PM, Word, 0, 0);
    assert!(pm.sci_level(0));
    pm.io_write(PM + 1, Byte, 0x01, 0);
    assert!(!pm.sci_level(0));
    assert_eq!(pm.io_read(PM, Dword, 0), 0x0100_0000, "PM1_EN in the high half");
}

#[test]
fn gpe0_block_and_other_pm_registers() {
    let mut bus = PciBus::new();
    seabios_pm_setup(&mut bus);
    let pm = &mut bus.pm;
    assert_eq!(pm.io_read(0xafe0, Dword, 0), 0);
    pm.io_write(0xafe0, Dword, 0xffff_ffff, 0);
    assert_eq!(pm.io_read(0xafe0, Dword, 0), 0xffff_0000, "status 0, enables stored");
    // GLBEN and DEVCTL store; GLBSTS reads 0; P_LVL2 reads 0.
    pm.io_write(PM + 0x20, Word, 0x1234, 0);
    pm.io_write(PM + 0x2c, Dword, 0xdead_beef, 0);
    pm.io_write(PM + 0x18, Word, 0xffff, 0);
    assert_eq!(pm.io_read(PM + 0x20, Word, 0), 0x1234);
    assert_eq!(pm.io_read(PM + 0x2c, Dword, 0), 0xdead_beef);
    assert_eq!(pm.io_read(PM + 0x18, Word, 0), 0);
    assert_eq!(pm.io_read(PM + 0x14, Byte, 0), 0);
    // Ports outside everything answer all ones.
    assert_eq!(pm.io_read(0x1234, Byte, 0), 0xff);
}

#[test]
fn reset_control_register() {
    let mut bus = PciBus::new();
    assert_eq!(bus.read(PORT_RESET_CONTROL, Byte), 0);
    // SeaBIOS pci_reboot: read, then 02h, then 06h.
    let v = bus.read(PORT_RESET_CONTROL, Byte) & !6;
    bus.write(PORT_RESET_CONTROL, Byte, v | 2);
    assert_eq!(bus.take_reset_request(), None);
    bus.write(PORT_RESET_CONTROL, Byte, v | 6);
    assert_eq!(bus.take_reset_request(), Some(ResetKind::Hard));
    assert_eq!(bus.take_reset_request(), None);
    assert_eq!(bus.read(PORT_RESET_CONTROL, Byte), 6);
    // No new edge, no new request.
    bus.write(PORT_RESET_CONTROL, Byte, 6);
    assert_eq!(bus.take_reset_request(), None);
    bus.write(PORT_RESET_CONTROL, Byte, 0);
    bus.write(PORT_RESET_CONTROL, Byte, 4);
    assert_eq!(bus.take_reset_request(), Some(ResetKind::Soft));
    // Linux reboot=pci writes 0Eh; reserved bits read 0.
    bus.write(PORT_RESET_CONTROL, Byte, 0xf0);
    bus.write(PORT_RESET_CONTROL, Byte, 0x0e);
    assert_eq!(bus.take_reset_request(), Some(ResetKind::Hard));
    assert_eq!(bus.read(PORT_RESET_CONTROL, Byte), 0x0e);
    // A word write at 0CF8h reaches RC through its high byte; the latch is untouched.
    bus.write(PORT_CONFIG_ADDRESS, Dword, 0x8000_0000);
    bus.write(PORT_CONFIG_ADDRESS, Word, 0x0000);
    assert_eq!(bus.read(PORT_RESET_CONTROL, Byte), 0);
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Dword), 0x8000_0000);
    bus.reset();
    assert_eq!(bus.read(PORT_CONFIG_ADDRESS, Dword), 0);
}

/// A function added behind the trait: a plain device with one I/O BAR.
struct Extra(ConfigSpace);

impl PciFunction for Extra {
    fn config(&self) -> &ConfigSpace {
        &self.0
    }
    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.0
    }
}

#[test]
fn extra_functions() {
    let mut bus = PciBus::new();
    let mut cfg = ConfigSpace::new(0x10ec, 0x8029, 0x02_00_00, 0, 0);
    cfg.set_bar(0, BarKind::Io, 0x20);
    cfg.set_interrupt_pin(1);
    assert!(bus.add_function(devfn(3, 0), Box::new(Extra(cfg.clone()))).is_ok());
    assert!(bus.add_function(devfn(3, 0), Box::new(Extra(cfg.clone()))).is_err());
    assert!(bus.add_function(DEVFN_HOST, Box::new(Extra(cfg))).is_err());
    assert_eq!(cfg_read(&mut bus, devfn(3, 0), 0, Dword), 0x8029_10ec);
    cfg_write(&mut bus, devfn(3, 0), 0x10, Dword, 0xffff_ffff);
    assert_eq!(cfg_read(&mut bus, devfn(3, 0), 0x10, Dword), 0xffff_ffe1);
    assert_eq!(bus.take_changes(), [(devfn(3, 0), ConfigChange { bars: 1, ..ConfigChange::default() })]);
    assert_eq!(bus.isa_irq_for(3, 1), None, "PIRQs not routed yet");
    assert_eq!(bus.function(devfn(3, 0)).unwrap().config().bar_address(0), 0xffff_ffe0);
}

#[test]
fn guest_writes_never_panic() {
    // Every port of the window at every width with pseudo-random values and addresses.
    let mut bus = PciBus::new();
    let mut x: u32 = 0x1234_5678;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..20_000 {
        let port = 0xcf6 + (next() % 12) as u16;
        let size = [Byte, Word, Dword][(next() % 3) as usize];
        let value = next();
        let target = 0x8000_0000 | (next() & 0x0000_1ffc);
        bus.write(PORT_CONFIG_ADDRESS, Dword, target);
        if next() % 2 == 0 {
            bus.write(port, size, value);
        } else {
            bus.read(port, size);
        }
        let pm_port = [0xb2u16, 0xb3, 0xafe0, 0xafe3, 0xb000, 0xb004, 0xb008, 0xb03f][(next() % 8) as usize];
        bus.pm.io_write(pm_port, size, value, u64::from(next()));
        bus.pm.io_read(pm_port, size, u64::MAX);
        bus.pm.next_event(u64::from(next()) << 20);
        bus.take_reset_request();
    }
    bus.take_changes();
    let _ = bus.host.pam();
    let _ = bus.isa.pirq_route();
    let _ = bus.pm.next_event(u64::MAX);
}
