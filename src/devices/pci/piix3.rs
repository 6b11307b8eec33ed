//! 01.0 and 01.1: the Intel 82371SB PIIX3 PCI ISA IDE Xcelerator's PCI-to-ISA bridge and
//! IDE functions.
//!
//! The ISA bridge matters for its four PIRQ route control registers: the board wires the
//! PCI INTA#–INTD# lines of the slots to PIRQA#–PIRQD# (see [`super::board_pirq`]) and
//! these registers steer each PIRQ to an ISA IRQ. SeaBIOS programs them (10, 10, 11, 11)
//! and marks those IRQs level-triggered in the ELCR; an ACPI guest reprograms them through
//! the DSDT's link devices. The ELCR itself (I/O 4D0h/4D1h) lives with the 8259As in
//! `pic.rs`, and the reset control register at 0CF9h in [`super::PciBus`]. The other
//! function 0 registers are stored and read back without effect.
//!
//! The IDE function is the legacy-mode controller: its channels decode the ISA addresses
//! 1F0h/3F6h (IRQ 14) and 170h/376h (IRQ 15), so it has no I/O BARs and no interrupt pin.
//! The bus-master interface BAR (BMIBA, 20h) exists only when the machine asks for it.
//! The IDE timing registers are stored; their bit 15 is each channel's decode enable.
//!
//! Source: Intel "82371FB (PIIX) and 82371SB (PIIX3) PCI ISA IDE Xcelerator" datasheet
//! (order 290550), §2.2 "PCI to ISA/EIDE Bridge Configuration Registers (PCI Function 0)"
//! and §2.3 "PCI Configuration Registers—IDE Interface (Function 1)": identity, defaults,
//! PIRQRC[A:D] (60h–63h: bit 7 IRQROUTEN, 1 = not routed; bits 3–0 the ISA IRQ, IRQ 0–2,
//! 8 and 13 reserved), IDETIM (40h–43h), SIDETIM (44h), BMIBA (20h–23h).

use super::config::*;
use super::PciFunction;
use serde::{Deserialize, Serialize};

/// PIRQA route control; PIRQB–PIRQD follow at 61h–63h.
pub const PIIX_PIRQRC: u8 = 0x60;
/// PIRQRC bit 7: routing disabled when set.
pub const PIRQRC_DISABLE: u8 = 0x80;
/// PIRQRC bits 3–0: the ISA IRQ.
pub const PIRQRC_IRQ: u8 = 0x0f;
/// Primary channel IDE timing register (IDETIM); the secondary's is at 42h.
pub const PIIX_IDETIM_PRIMARY: u8 = 0x40;
/// Secondary channel IDE timing register.
pub const PIIX_IDETIM_SECONDARY: u8 = 0x42;
/// Slave IDE timing register (PIIX3).
pub const PIIX_SIDETIM: u8 = 0x44;
/// IDETIM bit 15: IDE decode enable for the channel.
pub const IDETIM_DECODE_ENABLE: u16 = 1 << 15;
/// BAR 4, the bus-master interface base address (16 bytes of I/O).
pub const PIIX_BMIBA_BAR: usize = 4;
/// Size of the bus-master register block.
pub const PIIX_BM_SIZE: u32 = 16;

/// The ISA IRQs a PIRQ may be steered to (PIRQRC: IRQ 0–2, 8 and 13 are reserved).
const PIRQ_VALID_IRQS: u16 = 0b1101_1110_1111_1000;

/// The PIIX3 PCI-to-ISA bridge function.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IsaBridge {
    cfg: ConfigSpace,
}

impl Default for IsaBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl IsaBridge {
    /// Power-on state: 8086:7000, class 06:01:00 (ISA bridge), revision 00h, header type
    /// 80h (multi-function: the IDE and power-management functions follow), PCICMD 0007h
    /// (I/O, memory and bus-master hard-wired on), PCISTS 0200h, every PIRQ unrouted (80h).
    pub fn new() -> Self {
        let mut cfg = ConfigSpace::new(0x8086, 0x7000, 0x06_01_00, 0x00, HEADER_MULTI_FUNCTION);
        cfg.set_command(CMD_IO | CMD_MEMORY | CMD_BUS_MASTER, CMD_SPECIAL_CYCLES | CMD_SERR);
        cfg.set_status(STATUS_DEVSEL_MEDIUM);
        cfg.set_interrupt_pin(0);
        // Stored registers with their datasheet defaults: IORT 4Ch, XBCS 4Eh, TOM 69h,
        // MSTAT 6Ah, MBIRQ0/1 70h–71h, MBDMA 76h–77h, PCSC 78h, APICBASE 80h, DLC 82h,
        // SMICNTL A0h, SMIEN A2h, SEE A4h, FTMR A8h, SMIREQ AAh, CTLTMR ACh, CTHTMR AEh.
        cfg.add_register(0x4c, 1, 0x4d);
        cfg.add_register(0x4e, 2, 0x0003);
        cfg.add_register(0x69, 1, 0x02);
        cfg.add_register(0x6a, 2, 0x0000);
        cfg.add_register(0x70, 2, 0x8080);
        cfg.add_register(0x76, 2, 0x0c0c);
        cfg.add_register(0x78, 2, 0x0002);
        cfg.add_register(0x80, 1, 0x00);
        cfg.add_register(0x82, 1, 0x00);
        cfg.add_register(0xa0, 1, 0x08);
        cfg.add_register(0xa2, 2, 0x0000);
        cfg.add_register(0xa4, 4, 0);
        cfg.add_register(0xa8, 1, 0x0f);
        cfg.add_register(0xaa, 2, 0x0000);
        cfg.add_register(0xac, 1, 0x00);
        cfg.add_register(0xae, 1, 0x00);
        for i in 0..4 {
            cfg.set_byte(PIIX_PIRQRC + i, PIRQRC_DISABLE);
            cfg.set_wmask_byte(PIIX_PIRQRC + i, PIRQRC_DISABLE | PIRQRC_IRQ);
        }
        Self { cfg }
    }

    /// The raw PIRQRC registers, PIRQA first.
    pub fn pirq_registers(&self) -> [u8; 4] {
        core::array::from_fn(|i| self.cfg.byte(PIIX_PIRQRC + i as u8))
    }

    /// The ISA IRQ each of PIRQA#–PIRQD# reaches: `None` when routing is disabled (bit 7)
    /// or the IRQ field names a reserved IRQ.
    pub fn pirq_route(&self) -> [Option<u8>; 4] {
        self.pirq_registers().map(|r| {
            let irq = r & PIRQRC_IRQ;
            (r & PIRQRC_DISABLE == 0 && PIRQ_VALID_IRQS & (1 << irq) != 0).then_some(irq)
        })
    }
}

impl PciFunction for IsaBridge {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    fn reset(&mut self) {
        *self = Self::new();
    }
}

/// The PIIX3 IDE function (legacy mode).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdeFunction {
    cfg: ConfigSpace,
    bus_master: bool,
}

impl IdeFunction {
    /// Power-on state: 8086:7010, class 01:01:80 (IDE, legacy mode on both channels, bus
    /// master capable), revision 00h, PCICMD 0000h (I/O enable and bus-master enable
    /// writable), PCISTS 0280h, IDE timing registers 0 (both channels' decode disabled until
    /// firmware sets IDETIM bit 15). With `bus_master`, BAR 4 is the 16-byte bus-master I/O
    /// block; without, it reads 0 and sizes to nothing.
    pub fn new(bus_master: bool) -> Self {
        let mut cfg = ConfigSpace::new(0x8086, 0x7010, 0x01_01_80, 0x00, 0x00);
        cfg.set_command(0, CMD_IO | CMD_BUS_MASTER);
        cfg.set_status(STATUS_FAST_B2B | STATUS_DEVSEL_MEDIUM);
        cfg.set_interrupt_pin(0);
        cfg.set_wmask_byte(PCI_LATENCY_TIMER, 0xf0);
        if bus_master {
            cfg.set_bar(PIIX_BMIBA_BAR, BarKind::Io, PIIX_BM_SIZE);
        }
        cfg.add_register(PIIX_IDETIM_PRIMARY, 2, 0);
        cfg.add_register(PIIX_IDETIM_SECONDARY, 2, 0);
        cfg.add_register(PIIX_SIDETIM, 1, 0);
        Self { cfg, bus_master }
    }

    /// IDE timing register of `channel` (0 primary, 1 secondary).
    pub fn idetim(&self, channel: usize) -> u16 {
        self.cfg.word(if channel == 0 { PIIX_IDETIM_PRIMARY } else { PIIX_IDETIM_SECONDARY })
    }

    /// Whether `channel` (0 primary, 1 secondary) decodes its legacy ports: the function's
    /// I/O enable and the channel's IDETIM decode-enable bit. SeaBIOS sets both before it
    /// probes the drives; a machine may choose to decode regardless.
    pub fn channel_enabled(&self, channel: usize) -> bool {
        self.cfg.command() & CMD_IO != 0 && self.idetim(channel) & IDETIM_DECODE_ENABLE != 0
    }

    /// The bus-master register block's I/O base, if the BAR exists, is assigned (below
    /// 64 KiB) and I/O decoding is on.
    pub fn bus_master_base(&self) -> Option<u16> {
        let base = u16::try_from(self.cfg.bar_address(PIIX_BMIBA_BAR)).ok()?;
        (self.bus_master && base != 0 && self.cfg.command() & CMD_IO != 0).then_some(base)
    }

    /// Whether the function may master the bus (PCICMD bit 2).
    pub fn bus_master_enabled(&self) -> bool {
        self.cfg.command() & CMD_BUS_MASTER != 0
    }
}

impl PciFunction for IdeFunction {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    fn reset(&mut self) {
        *self = Self::new(self.bus_master);
    }
}
