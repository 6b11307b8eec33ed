//! The Intel 82093AA I/O APIC at FEC0_0000h: 24 interrupt inputs, each with a
//! redirection-table entry that turns the pin's edge or level into an interrupt message for
//! the local APIC. It lives apart from the local APIC because on the PC it is a separate
//! chip on the system bus; the bus carries its messages to the CPU's APIC and the local
//! APIC's EOIs back (see the wiring notes in `lapic.rs`).
//!
//! Facts come from the Intel 82093AA I/O Advanced Programmable Interrupt Controller
//! (IOAPIC) datasheet (order number 290566-001), section 3.0 "Register Description" and
//! its register tables; comments quote them.
//!
//! # Use
//!
//! - Devices' interrupt lines drive [`IoApic::set_irq`] (the bus maps ISA IRQs and PCI
//!   INTx to pins as its firmware tables say; usually ISA IRQ n to pin n, except IRQ0 to
//!   pin 2).
//! - The bus drains [`IoApic::take_message`] into `Lapic::deliver` after any `set_irq`,
//!   MMIO access or [`IoApic::eoi`].
//! - The local APIC's EOI broadcasts (`Lapic::take_eoi_broadcast`) go to [`IoApic::eoi`].
//!
//! # Simplifications
//!
//! - There is one CPU and messages travel instantly. A message is "accepted" when the bus
//!   takes it: then the delivery status returns to idle and, for a level-triggered entry,
//!   remote IRR is set. Whether the destination (physical ID, logical set or broadcast)
//!   selects the local APIC is the local APIC's decision; a message for nobody is lost,
//!   as on a real system bus, and a lost level-triggered message leaves remote IRR set.
//! - Lowest-priority delivery goes to the only CPU if it is in the destination.
//! - Pending messages are taken lowest pin first; the APIC bus arbitration (ID register,
//!   arbitration register) is kept only as register contents.
//! - Physical destinations are bits 59:56 (82093AA, IOREDTBL "Destination Field"); the
//!   all-ones ID 0Fh is the broadcast of the P6 APIC bus and is passed on as FFh, the
//!   xAPIC broadcast.

use super::lapic::{DeliveryMode, InterruptMessage};
use crate::addr::Phys;
use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// Default base (82093AA datasheet, Table 2 "Memory Address of I/O APIC Registers":
/// FEC0_xy00h with x = y = 0 unless the PIIX3's APIC base register moves it).
pub const IOAPIC_DEFAULT_BASE: u32 = 0xfec0_0000;
/// IOREGSEL: I/O register select, bits 7:0 pick the register IOWIN shows (datasheet
/// §3.1.1 "IOREGSEL—I/O Register Select Register").
pub const IOREGSEL: u32 = 0x00;
/// IOWIN: I/O window, the selected register's 32 bits (§3.1.2 "IOWIN—I/O Window
/// Register").
pub const IOWIN: u32 = 0x10;
/// Bytes of MMIO the chip decodes from its base (IOREGSEL and IOWIN).
pub const IOAPIC_MMIO_LEN: u32 = 0x20;
/// Interrupt inputs INTIN0–INTIN23.
pub const IOAPIC_PINS: usize = 24;
/// IOAPICVER (§3.2.2): bits 7:0 version 11h, bits 23:16 maximum redirection entry 17h
/// (entries 0–23).
pub const IOAPIC_VERSION: u32 = 0x0017_0011;

/// Indirect register indices (datasheet Table 3 "IOAPIC Registers").
const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARBITRATION: u8 = 0x02;
/// IOREDTBL0 low at 10h, high at 11h, ... IOREDTBL23 at 3Eh/3Fh.
const REG_REDTBL: u8 = 0x10;
const REG_REDTBL_END: u8 = REG_REDTBL + 2 * IOAPIC_PINS as u8 - 1;

/// Redirection entry bits (§3.2.4 "IOREDTBL[23:0]—I/O Redirection Table Registers").
/// 7:0 vector, 10:8 delivery mode, 11 destination mode (1 = logical).
const RTE_LOGICAL: u64 = 1 << 11;
/// 12: delivery status, read-only (1 = send pending).
const RTE_DELIVERY_PENDING: u64 = 1 << 12;
/// 13: input polarity, 1 = active low.
const RTE_ACTIVE_LOW: u64 = 1 << 13;
/// 14: remote IRR, read-only.
const RTE_REMOTE_IRR: u64 = 1 << 14;
/// 15: trigger mode, 1 = level.
const RTE_LEVEL: u64 = 1 << 15;
/// 16: mask.
const RTE_MASKED: u64 = 1 << 16;
/// Writable bits: 7:0, 10:8, 11, 13, 15, 16 and the destination 63:56 (55:17 reserved).
const RTE_WRITABLE: u64 = 0xff00_0000_0001_afff;
/// After reset the datasheet defines only the mask bit (set); the other bits start as 0
/// here.
const RTE_RESET: u64 = RTE_MASKED;

/// The 82093AA.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IoApic {
    base: u32,
    /// IOREGSEL bits 7:0.
    select: u8,
    /// IOAPICID bits 27:24 (§3.2.1).
    id: u8,
    /// IOAPICARB bits 27:24 (§3.2.3: "This register is loaded when the IOAPIC ID Register
    /// is written").
    arbitration: u8,
    /// Writable bits of each redirection entry (delivery status and remote IRR are kept
    /// in `pending` and `remote_irr`).
    entries: [u64; IOAPIC_PINS],
    /// Raw input levels, one bit per pin.
    pins: u32,
    /// Delivery status: a message waits to be taken.
    pending: u32,
    /// Remote IRR of level-triggered entries.
    remote_irr: u32,
}

impl Default for IoApic {
    fn default() -> Self {
        Self::new()
    }
}

impl IoApic {
    /// After reset: ID 0 (datasheet IOAPICID default 00h), every entry masked, all inputs
    /// low, nothing pending.
    pub fn new() -> Self {
        Self {
            base: IOAPIC_DEFAULT_BASE,
            select: 0,
            id: 0,
            arbitration: 0,
            entries: [RTE_RESET; IOAPIC_PINS],
            pins: 0,
            pending: 0,
            remote_irr: 0,
        }
    }

    /// Where the registers start.
    pub fn base(&self) -> Phys {
        Phys(self.base)
    }

    /// Move the registers (the PIIX3 APIC base register does this on a PC).
    pub fn set_base(&mut self, base: Phys) {
        self.base = base.0;
    }

    /// Whether `addr` is one of the bytes the chip decodes.
    pub fn contains(&self, addr: Phys) -> bool {
        addr.0.wrapping_sub(self.base) < IOAPIC_MMIO_LEN
    }

    // ---- Inputs ---------------------------------------------------------------------

    /// Drive input `line` (0–23; others are ignored) to `level`. An edge-triggered entry
    /// sends on the transition to its active level if unmasked ("Edge-sensitive interrupts
    /// signaled on a masked interrupt pin are ignored (i.e., not delivered or held
    /// pending)", bit 16); a level-triggered entry sends while the input is active,
    /// unmasked and remote IRR is clear.
    pub fn set_irq(&mut self, line: u8, level: bool) {
        let pin = usize::from(line);
        if pin >= IOAPIC_PINS {
            return;
        }
        let bit = 1u32 << pin;
        let was_active = self.active(pin);
        self.pins = if level { self.pins | bit } else { self.pins & !bit };
        if self.level_triggered(pin) {
            self.update_level(pin);
        } else if self.active(pin) && !was_active && self.entries[pin] & RTE_MASKED == 0 && self.mode(pin).is_some() {
            self.pending |= bit;
        }
    }

    /// Whether the pin is at its active level (bit 13: 0 = high active, 1 = low active).
    fn active(&self, pin: usize) -> bool {
        let high = self.pins & (1 << pin) != 0;
        high != (self.entries[pin] & RTE_ACTIVE_LOW != 0)
    }

    fn mode(&self, pin: usize) -> Option<DeliveryMode> {
        match DeliveryMode::from_bits((self.entries[pin] >> 8) as u32) {
            // 110b is Start-Up only in the local APIC's ICR; reserved here.
            Some(DeliveryMode::StartUp) | None => None,
            m => m,
        }
    }

    /// Level semantics apply to fixed and lowest-priority entries with bit 15 set. SMI,
    /// NMI, INIT and ExtINT are treated as edge-triggered whatever bit 15 says: the
    /// datasheet's delivery-mode table (IOREDTBL bits 10:8) allows only edge trigger mode
    /// for them.
    fn level_triggered(&self, pin: usize) -> bool {
        self.entries[pin] & RTE_LEVEL != 0
            && matches!(self.mode(pin), Some(DeliveryMode::Fixed | DeliveryMode::LowestPriority))
    }

    /// A level-triggered entry has a message waiting exactly while its input is active,
    /// it is unmasked and no local APIC holds the previous one (remote IRR clear).
    fn update_level(&mut self, pin: usize) {
        let bit = 1u32 << pin;
        let send = self.active(pin) && self.entries[pin] & RTE_MASKED == 0 && self.remote_irr & bit == 0;
        self.pending = if send { self.pending | bit } else { self.pending & !bit };
    }

    // ---- Outputs --------------------------------------------------------------------

    /// The next interrupt message for the local APIC, lowest pin first. Taking it is its
    /// acceptance: the delivery status returns to idle and a level-triggered entry sets
    /// remote IRR ("set to 1 when local APIC(s) accept the level interrupt", bit 14).
    /// Entries with a reserved delivery mode send nothing.
    pub fn take_message(&mut self) -> Option<InterruptMessage> {
        while self.pending != 0 {
            let pin = self.pending.trailing_zeros() as usize;
            let bit = 1u32 << pin;
            self.pending &= !bit;
            let e = self.entries[pin];
            let Some(mode) = self.mode(pin) else { continue };
            if e & RTE_MASKED != 0 {
                continue;
            }
            let level_triggered = self.level_triggered(pin);
            if level_triggered {
                self.remote_irr |= bit;
            }
            let logical = e & RTE_LOGICAL != 0;
            let raw = (e >> 56) as u8;
            // Physical mode: bits 59:56 are the APIC ID; 0Fh addresses every APIC.
            let destination = match (logical, raw & 0x0f) {
                (true, _) => raw,
                (false, 0x0f) => 0xff,
                (false, id) => id,
            };
            return Some(InterruptMessage { vector: e as u8, mode, level_triggered, destination, logical });
        }
        None
    }

    /// Whether a message is waiting.
    pub fn has_message(&self) -> bool {
        self.pending != 0
    }

    /// The EOI message for `vector` from a local APIC: every entry with that vector
    /// clears remote IRR ("set to 0 when an EOI message with a matching interrupt vector
    /// is received", bit 14), and a level input still active sends again.
    pub fn eoi(&mut self, vector: u8) {
        for pin in 0..IOAPIC_PINS {
            if self.remote_irr & (1 << pin) != 0 && self.entries[pin] as u8 == vector {
                self.remote_irr &= !(1 << pin);
                if self.level_triggered(pin) {
                    self.update_level(pin);
                }
            }
        }
    }

    // ---- Registers ------------------------------------------------------------------

    /// Memory read. IOREGSEL (bits 7:0; 31:8 reserved, read 0) and IOWIN answer any width,
    /// byte by byte; other addresses read as all ones.
    pub fn mmio_read(&self, addr: Phys, size: IoSize) -> u32 {
        let mut value = 0;
        for i in 0..size as u32 {
            value |= u32::from(self.read_byte(addr.0.wrapping_add(i))) << (8 * i);
        }
        value
    }

    fn read_byte(&self, addr: u32) -> u8 {
        let off = addr.wrapping_sub(self.base);
        match off {
            0 => self.select,
            1..=3 => 0,
            0x10..=0x13 => (self.read_register(self.select) >> (8 * (off - 0x10))) as u8,
            _ => 0xff,
        }
    }

    /// Memory write. A write of fewer than four bytes of IOWIN is merged with the selected
    /// register's current value (the datasheet asks for 32-bit accesses).
    pub fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32) {
        let (mut mask, mut data) = (0u32, 0u32);
        for i in 0..size as u32 {
            let byte = (value >> (8 * i)) & 0xff;
            match addr.0.wrapping_add(i).wrapping_sub(self.base) {
                0 => self.select = byte as u8,
                off @ 0x10..=0x13 => {
                    mask |= 0xff << (8 * (off - 0x10));
                    data |= byte << (8 * (off - 0x10));
                }
                _ => {}
            }
        }
        if mask != 0 {
            let reg = self.select;
            let full = (self.read_register(reg) & !mask) | data;
            self.write_register(reg, full);
        }
    }

    /// The register `index` selects, as IOWIN reads it. Unimplemented indices read 0.
    fn read_register(&self, index: u8) -> u32 {
        match index {
            REG_ID => u32::from(self.id) << 24,
            REG_VERSION => IOAPIC_VERSION,
            REG_ARBITRATION => u32::from(self.arbitration) << 24,
            REG_REDTBL..=REG_REDTBL_END => {
                let pin = usize::from((index - REG_REDTBL) / 2);
                let e = self.entry(pin);
                if index & 1 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    /// A redirection entry with its read-only bits.
    fn entry(&self, pin: usize) -> u64 {
        let bit = 1u32 << pin;
        let mut e = self.entries[pin];
        if self.pending & bit != 0 {
            e |= RTE_DELIVERY_PENDING;
        }
        if self.remote_irr & bit != 0 {
            e |= RTE_REMOTE_IRR;
        }
        e
    }

    fn write_register(&mut self, index: u8, value: u32) {
        match index {
            REG_ID => {
                self.id = ((value >> 24) & 0x0f) as u8;
                self.arbitration = self.id;
            }
            REG_REDTBL..=REG_REDTBL_END => {
                let pin = usize::from((index - REG_REDTBL) / 2);
                let old = self.entries[pin];
                let new = if index & 1 == 0 {
                    (old & !0xffff_ffff) | u64::from(value)
                } else {
                    (old & 0xffff_ffff) | (u64::from(value) << 32)
                };
                self.write_entry(pin, new & RTE_WRITABLE);
            }
            // Version and arbitration are read-only; other indices are not implemented.
            _ => {}
        }
    }

    /// A new redirection entry. Masking drops an edge not yet sent (a masked pin's
    /// interrupts are "not delivered or held pending"); switching to edge clears remote
    /// IRR, whose meaning is undefined for edge-triggered entries (bit 14) and which
    /// operating systems clear this way on I/O APICs without an EOI register; a level
    /// entry re-evaluates its input at once.
    fn write_entry(&mut self, pin: usize, value: u64) {
        let bit = 1u32 << pin;
        self.entries[pin] = value;
        if value & RTE_MASKED != 0 || self.mode(pin).is_none() {
            self.pending &= !bit;
        }
        if self.level_triggered(pin) {
            self.update_level(pin);
        } else {
            // An edge entry does not fire on reprogramming, only on a new edge.
            self.remote_irr &= !bit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lapic::Lapic;
    use super::*;

    fn sel(io: &mut IoApic, index: u8) {
        io.mmio_write(Phys(IOAPIC_DEFAULT_BASE), IoSize::Dword, u32::from(index));
    }
    fn rd(io: &mut IoApic, index: u8) -> u32 {
        sel(io, index);
        io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + IOWIN), IoSize::Dword)
    }
    fn wr(io: &mut IoApic, index: u8, v: u32) {
        sel(io, index);
        io.mmio_write(Phys(IOAPIC_DEFAULT_BASE + IOWIN), IoSize::Dword, v);
    }
    /// Program entry `pin` (low then high dword).
    fn program(io: &mut IoApic, pin: u8, low: u32, high: u32) {
        wr(io, 0x10 + 2 * pin, low);
        wr(io, 0x11 + 2 * pin, high);
    }
    fn msg(vector: u8, level: bool) -> InterruptMessage {
        InterruptMessage { vector, mode: DeliveryMode::Fixed, level_triggered: level, destination: 0, logical: false }
    }

    #[test]
    fn reset_values() {
        let mut io = IoApic::new();
        assert_eq!(rd(&mut io, 0), 0);
        assert_eq!(rd(&mut io, 1), 0x0017_0011);
        assert_eq!(rd(&mut io, 2), 0);
        for pin in 0..24u8 {
            assert_eq!(rd(&mut io, 0x10 + 2 * pin), 0x0001_0000, "pin {pin} low");
            assert_eq!(rd(&mut io, 0x11 + 2 * pin), 0, "pin {pin} high");
        }
        assert_eq!(rd(&mut io, 0x40), 0);
        assert_eq!(rd(&mut io, 0xff), 0);
        assert!(!io.has_message());
    }

    #[test]
    fn ioregsel_and_iowin() {
        let mut io = IoApic::new();
        let base = Phys(IOAPIC_DEFAULT_BASE);
        io.mmio_write(base, IoSize::Dword, 0xffff_ff12);
        assert_eq!(io.mmio_read(base, IoSize::Dword), 0x12, "bits 31:8 reserved");
        assert_eq!(io.mmio_read(base, IoSize::Byte), 0x12);
        // Write the entry through the window and read it back.
        io.mmio_write(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Dword, 0xffff_ffff);
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Dword), 0x0001_afff, "RO and reserved bits");
        sel(&mut io, 0x13);
        io.mmio_write(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Dword, 0xffff_ffff);
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Dword), 0xff00_0000);
        // Narrow IOWIN access: the vector byte alone.
        sel(&mut io, 0x14);
        io.mmio_write(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Byte, 0x31);
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 0x10), IoSize::Dword), 0x0001_0031);
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 0x12), IoSize::Word), 0x0001);
        // Version and arbitration are read-only; the ID sets the arbitration ID.
        wr(&mut io, 1, 0);
        wr(&mut io, 2, 0x0f00_0000);
        assert_eq!(rd(&mut io, 1), IOAPIC_VERSION);
        assert_eq!(rd(&mut io, 2), 0);
        wr(&mut io, 0, 0xffff_ffff);
        assert_eq!(rd(&mut io, 0), 0x0f00_0000);
        assert_eq!(rd(&mut io, 2), 0x0f00_0000);
        // Undecoded addresses.
        assert!(io.contains(Phys(0xfec0_001f)));
        assert!(!io.contains(Phys(0xfec0_0020)));
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 4), IoSize::Dword), 0xffff_ffff);
        assert_eq!(io.mmio_read(Phys(IOAPIC_DEFAULT_BASE + 0x20), IoSize::Byte), 0xff);
    }

    #[test]
    fn edge_triggered_entry() {
        let mut io = IoApic::new();
        program(&mut io, 1, 0x31, 0);
        io.set_irq(1, true);
        assert!(io.has_message());
        assert_eq!(rd(&mut io, 0x12) & (1 << 12), 1 << 12, "delivery status: send pending");
        assert_eq!(io.take_message(), Some(msg(0x31, false)));
        assert_eq!(rd(&mut io, 0x12), 0x31, "idle, no remote IRR");
        assert_eq!(io.take_message(), None);
        // Held high: no new edge.
        io.set_irq(1, true);
        assert_eq!(io.take_message(), None);
        io.set_irq(1, false);
        assert_eq!(io.take_message(), None);
        io.set_irq(1, true);
        assert_eq!(io.take_message(), Some(msg(0x31, false)));
        // EOI does not matter for edge entries.
        io.eoi(0x31);
        assert_eq!(io.take_message(), None);
    }

    #[test]
    fn masked_entries_ignore_their_inputs() {
        let mut io = IoApic::new();
        // Reset state: everything masked.
        io.set_irq(4, true);
        assert_eq!(io.take_message(), None);
        io.set_irq(4, false);
        program(&mut io, 4, 0x0001_0034, 0);
        io.set_irq(4, true);
        assert_eq!(io.take_message(), None);
        // Unmasking does not replay the edge seen while masked.
        program(&mut io, 4, 0x34, 0);
        assert_eq!(io.take_message(), None);
        io.set_irq(4, false);
        io.set_irq(4, true);
        // Masking before the message is taken drops it.
        program(&mut io, 4, 0x0001_0034, 0);
        assert_eq!(io.take_message(), None);
        // A masked level entry: asserts and negates have no effect, unmasking while the
        // input is active sends.
        program(&mut io, 5, 0x0001_8035, 0);
        io.set_irq(5, true);
        assert_eq!(io.take_message(), None);
        assert_eq!(rd(&mut io, 0x1a) & (1 << 14), 0, "no remote IRR while masked");
        program(&mut io, 5, 0x8035, 0);
        assert_eq!(io.take_message(), Some(msg(0x35, true)));
    }

    #[test]
    fn level_triggered_entry_with_remote_irr() {
        let mut io = IoApic::new();
        program(&mut io, 10, 0x8041, 0);
        io.set_irq(10, true);
        assert_eq!(io.take_message(), Some(msg(0x41, true)));
        assert_eq!(rd(&mut io, 0x24), 0xc041, "remote IRR set");
        // Still asserted, but the local APIC holds it until EOI.
        io.set_irq(10, true);
        assert_eq!(io.take_message(), None);
        // An EOI for another vector does nothing.
        io.eoi(0x42);
        assert_eq!(io.take_message(), None);
        // EOI while the input is still active: delivered again.
        io.eoi(0x41);
        assert_eq!(rd(&mut io, 0x24), 0x9041, "remote IRR clear, send pending");
        assert_eq!(io.take_message(), Some(msg(0x41, true)));
        // The device lowers its line, then the EOI: nothing more.
        io.set_irq(10, false);
        io.eoi(0x41);
        assert_eq!(rd(&mut io, 0x24), 0x8041);
        assert_eq!(io.take_message(), None);
        // A level withdrawn before the message is taken is not sent.
        io.set_irq(10, true);
        io.set_irq(10, false);
        assert_eq!(io.take_message(), None);
    }

    #[test]
    fn active_low_polarity() {
        let mut io = IoApic::new();
        // PCI style: level, active low. The line idles high.
        io.set_irq(16, true);
        program(&mut io, 16, 0xa051, 0);
        assert_eq!(io.take_message(), None);
        io.set_irq(16, false);
        assert_eq!(io.take_message(), Some(msg(0x51, true)));
        io.set_irq(16, true);
        io.eoi(0x51);
        assert_eq!(io.take_message(), None);
        // Edge, active low: the falling edge sends.
        program(&mut io, 17, 0x2052, 0);
        io.set_irq(17, true);
        assert_eq!(io.take_message(), None);
        io.set_irq(17, false);
        assert_eq!(io.take_message(), Some(msg(0x52, false)));
    }

    #[test]
    fn switching_to_edge_clears_remote_irr() {
        let mut io = IoApic::new();
        program(&mut io, 9, 0x8049, 0);
        io.set_irq(9, true);
        assert!(io.take_message().is_some());
        wr(&mut io, 0x22, 0x0001_0049);
        assert_eq!(rd(&mut io, 0x22), 0x0001_0049);
        wr(&mut io, 0x22, 0x8049);
        assert_eq!(io.take_message(), Some(msg(0x49, true)), "level, active, unmasked again");
    }

    #[test]
    fn destinations_and_delivery_modes() {
        let mut io = IoApic::new();
        // Physical ID 3 (bits 63:60 ignored), physical broadcast, logical set.
        program(&mut io, 0, 0x20, 0xf300_0000);
        program(&mut io, 1, 0x21, 0x0f00_0000);
        program(&mut io, 2, 0x0822, 0x0500_0000);
        // NMI, ExtINT, SMI and INIT with the level bit set are still edge-triggered.
        program(&mut io, 3, 0x8400, 0);
        program(&mut io, 4, 0x8700, 0);
        program(&mut io, 5, 0x8200, 0);
        program(&mut io, 6, 0x8500, 0);
        program(&mut io, 7, 0x9123, 0);
        // Reserved modes never send.
        program(&mut io, 8, 0x0300, 0);
        program(&mut io, 11, 0x0600, 0);
        for pin in 0..12 {
            io.set_irq(pin, true);
        }
        let m = |vector, mode, level_triggered, destination, logical| InterruptMessage {
            vector,
            mode,
            level_triggered,
            destination,
            logical,
        };
        assert_eq!(io.take_message(), Some(m(0x20, DeliveryMode::Fixed, false, 3, false)));
        assert_eq!(io.take_message(), Some(m(0x21, DeliveryMode::Fixed, false, 0xff, false)));
        assert_eq!(io.take_message(), Some(m(0x22, DeliveryMode::Fixed, false, 0x05, true)));
        assert_eq!(io.take_message(), Some(m(0x00, DeliveryMode::Nmi, false, 0, false)));
        assert_eq!(io.take_message(), Some(m(0x00, DeliveryMode::ExtInt, false, 0, false)));
        assert_eq!(io.take_message(), Some(m(0x00, DeliveryMode::Smi, false, 0, false)));
        assert_eq!(io.take_message(), Some(m(0x00, DeliveryMode::Init, false, 0, false)));
        assert_eq!(io.take_message(), Some(m(0x23, DeliveryMode::LowestPriority, true, 0, false)));
        assert_eq!(io.take_message(), None);
        for (pin, index) in [(3u8, 0x16u8), (4, 0x18), (5, 0x1a), (6, 0x1c)] {
            assert_eq!(rd(&mut io, index) & (1 << 14), 0, "pin {pin}: no remote IRR");
        }
        assert_eq!(rd(&mut io, 0x1e) & (1 << 14), 1 << 14);
    }

    #[test]
    fn out_of_range_and_garbage() {
        let mut io = IoApic::new();
        io.set_irq(24, true);
        io.set_irq(255, true);
        assert!(!io.has_message());
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let addr = Phys(IOAPIC_DEFAULT_BASE.wrapping_add(x & 0x3f).wrapping_sub(8));
            let size = [IoSize::Byte, IoSize::Word, IoSize::Dword][(x % 3) as usize];
            if x & 0x100 != 0 {
                io.mmio_write(addr, size, x.rotate_left(11));
            } else {
                let _ = io.mmio_read(addr, size);
            }
            io.set_irq((x >> 20) as u8 & 31, x & 0x200 != 0);
            if x & 0x400 != 0 {
                io.eoi((x >> 12) as u8);
            }
            while io.take_message().is_some() {}
        }
        io.set_base(Phys(0xffff_fff0));
        let _ = io.mmio_read(Phys(0xffff_fffe), IoSize::Dword);
        io.mmio_write(Phys(0xffff_fffe), IoSize::Dword, 0);
        assert!(io.contains(Phys(0x0000_000f)), "the window wraps with the address space");
    }

    /// The bus's wiring, in miniature: a level-triggered PCI-style interrupt through the
    /// I/O APIC and local APIC, serviced with the EOI broadcast.
    #[test]
    fn level_interrupt_through_both_apics() {
        let mut io = IoApic::new();
        let mut lapic = Lapic::new();
        let route = |io: &mut IoApic, lapic: &mut Lapic| {
            while let Some(m) = io.take_message() {
                lapic.deliver(m);
            }
        };
        // PCI INTx: level-triggered, active low; the line idles high.
        io.set_irq(19, true);
        program(&mut io, 19, 0x0000_a0b3, 0);
        route(&mut io, &mut lapic);
        assert!(!lapic.has_interrupt(false));
        io.set_irq(19, false);
        route(&mut io, &mut lapic);
        assert!(lapic.has_interrupt(false));
        assert_eq!(lapic.acknowledge(false, || 0), Some(0xb3));
        // The handler does not quiet the device before EOI: the interrupt comes back.
        lapic.mmio_write(Phys(0xfee0_00b0), IoSize::Dword, 0, 0);
        let v = lapic.take_eoi_broadcast().expect("level-triggered EOI is broadcast");
        io.eoi(v);
        route(&mut io, &mut lapic);
        assert_eq!(lapic.acknowledge(false, || 0), Some(0xb3));
        // Now it does.
        io.set_irq(19, true);
        lapic.mmio_write(Phys(0xfee0_00b0), IoSize::Dword, 0, 0);
        while let Some(v) = lapic.take_eoi_broadcast() {
            io.eoi(v);
        }
        route(&mut io, &mut lapic);
        assert!(!lapic.has_interrupt(false));
        assert_eq!(rd(&mut io, 0x36) & (1 << 14), 0, "remote IRR cleared by the EOI");
    }
}
