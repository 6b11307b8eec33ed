//! The PC/AT's two Intel 8259A programmable interrupt controllers (master at 20h/21h, slave
//! at A0h/A1h, the slave's INT wired to the master's IR2) and the PIIX edge/level control
//! registers at 4D0h/4D1h. Devices raise and lower IRQ lines through [`Pic::set_irq`]; the
//! CPU sees [`Pic::intr`] and runs the interrupt-acknowledge cycle with
//! [`Pic::acknowledge`].
//!
//! The behaviour follows the Intel 8259A datasheet (section names are quoted in the
//! comments): the ICW1–ICW4 initialisation sequence, OCW1–OCW3, fully nested priority with
//! rotation, special mask mode, special fully nested mode, automatic EOI, poll mode, edge-
//! and level-triggered inputs and the default IR7 on an acknowledge that finds no request.
//! Both chips live in one struct because the cascade is a wire between them, not a call.

use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// Master 8259A, A0 = 0 (ICW1, OCW2, OCW3; reads IRR/ISR/poll word). IBM PC/AT Technical
/// Reference, I/O address map: 020h–03Fh "interrupt controller 1, 8259A, master".
pub const PIC_MASTER_COMMAND: u16 = 0x20;
/// Master 8259A, A0 = 1 (ICW2–ICW4, OCW1; reads the IMR).
pub const PIC_MASTER_DATA: u16 = 0x21;
/// Slave 8259A, A0 = 0. IBM PC/AT Technical Reference, I/O address map: 0A0h–0BFh
/// "interrupt controller 2, 8259A".
pub const PIC_SLAVE_COMMAND: u16 = 0xa0;
/// Slave 8259A, A0 = 1.
pub const PIC_SLAVE_DATA: u16 = 0xa1;
/// ELCR1: edge/level control for IRQ0–7. Intel 82371AB (PIIX4) datasheet, "ELCR1—Edge/Level
/// Control Register" (I/O address 4D0h).
pub const ELCR_MASTER: u16 = 0x4d0;
/// ELCR2: edge/level control for IRQ8–15 (PIIX4 datasheet, "ELCR2", I/O address 4D1h).
pub const ELCR_SLAVE: u16 = 0x4d1;

/// The master input the slave's INT output drives (IBM PC/AT Technical Reference, "System
/// Interrupts": interrupt level 2 of controller 1 is the cascade from controller 2).
pub const CASCADE_IR: u8 = 2;
/// Writable ELCR1 bits: IRQ0, IRQ1 and IRQ2 are reserved and must stay edge (PIIX4
/// datasheet, ELCR1 bits 2:0).
const ELCR_MASTER_WRITABLE: u8 = 0xf8;
/// Writable ELCR2 bits: IRQ8 and IRQ13 are reserved and must stay edge (PIIX4 datasheet,
/// ELCR2 bits 0 and 5).
const ELCR_SLAVE_WRITABLE: u8 = 0xde;

/// Where a chip is in its initialisation sequence (8259A datasheet, "Initialization Command
/// Words", flowchart: ICW1, ICW2, then ICW3 if SNGL = 0, then ICW4 if IC4 = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum InitStep {
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Chip {
    /// Hard-wired master (SP/EN high) or slave.
    master: bool,
    /// Interrupt request register: latched edges, or the sampled level of level inputs.
    irr: u8,
    /// Current level of the IR0–IR7 inputs.
    line: u8,
    /// In-service register.
    isr: u8,
    /// Interrupt mask register (OCW1).
    imr: u8,
    /// The PIIX's ELCR bits for this chip's inputs (1 = level-triggered).
    elcr: u8,
    /// ICW1 LTIM: all inputs level-triggered.
    ltim: bool,
    /// ICW1 SNGL: no cascade, ICW3 is skipped.
    single: bool,
    /// ICW1 IC4: an ICW4 follows.
    ic4: bool,
    step: InitStep,
    /// ICW2: T7–T3 of the vector in 8086 mode.
    icw2: u8,
    /// ICW3: on the master, one bit per input that has a slave; on a slave, its ID.
    icw3: u8,
    /// ICW4 AEOI: the ISR bit is not kept at the end of the acknowledge.
    auto_eoi: bool,
    /// ICW4 SFNM: special fully nested mode (meaningful on the master).
    sfnm: bool,
    /// The input with the lowest priority; the highest is the next one (rotation).
    lowest: u8,
    /// OCW2 "rotate in automatic EOI mode".
    rotate_aeoi: bool,
    /// OCW3 RR/RIS: reads of A0 = 0 return the ISR rather than the IRR.
    read_isr: bool,
    /// OCW3 P: the next read of A0 = 0 is a poll.
    poll: bool,
    /// OCW3 ESMM/SMM: special mask mode.
    special_mask: bool,
}

impl Chip {
    /// A chip as a PC BIOS leaves it: initialised in 8086 mode, edge-triggered, nothing
    /// masked, vectors at `vector_base`.
    fn new(master: bool, vector_base: u8, icw3: u8) -> Self {
        Self {
            master,
            irr: 0,
            line: 0,
            isr: 0,
            imr: 0,
            elcr: 0,
            ltim: false,
            single: false,
            ic4: true,
            step: InitStep::Ready,
            icw2: vector_base,
            icw3,
            auto_eoi: false,
            sfnm: false,
            lowest: 7,
            rotate_aeoi: false,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }

    /// Inputs that are level-triggered: all with ICW1 LTIM (8259A datasheet, ICW1 D3),
    /// otherwise those the ELCR marks. (The PIIX documents LTIM as replaced by the ELCR;
    /// honouring either keeps both kinds of guest working.)
    fn level_bits(&self) -> u8 {
        if self.ltim {
            0xff
        } else {
            self.elcr
        }
    }

    /// Inputs that have a slave behind them (only on a master in cascade mode).
    fn cascade_bits(&self) -> u8 {
        if self.master && !self.single {
            self.icw3
        } else {
            0
        }
    }

    /// Requests competing for service: the IRR, plus the live level of cascade inputs so a
    /// slave that keeps its INT high across an acknowledge (auto-EOI, special mask mode) is
    /// still heard without a new edge.
    fn requests(&self) -> u8 {
        self.irr | (self.line & self.cascade_bits())
    }

    /// An input changes level (8259A datasheet, "Edge and Level Triggered Modes"). An edge
    /// input latches its request on the rising edge and keeps it until acknowledged (the
    /// chip would drop it if the input fell before INTA, but emulated devices pulse their
    /// lines, so the latch is kept); a level input requests while it is high.
    fn set_input(&mut self, ir: u8, level: bool) {
        let bit = 1u8 << (ir & 7);
        let was_high = self.line & bit != 0;
        let is_level = self.level_bits() & bit != 0;
        if level {
            self.line |= bit;
            if is_level || !was_high {
                self.irr |= bit;
            }
        } else {
            self.line &= !bit;
            if is_level {
                self.irr &= !bit;
            }
        }
    }

    /// Level inputs follow their line again (after an ELCR change or an acknowledge).
    fn resample_levels(&mut self) {
        let level = self.level_bits();
        self.irr = (self.irr & !level) | (self.line & level);
    }

    /// Priority rank of an input: 0 is the highest (8259A datasheet, "Interrupt Sequence"
    /// and "Rotation": after rotation the serviced input becomes the lowest).
    fn rank(&self, ir: u8) -> u8 {
        ir.wrapping_sub(self.lowest).wrapping_sub(1) & 7
    }

    /// The highest-priority input among `bits`.
    fn highest(&self, bits: u8) -> Option<u8> {
        (1..=8u8).map(|k| self.lowest.wrapping_add(k) & 7).find(|&ir| bits & (1 << ir) != 0)
    }

    /// The request the priority resolver would hand to the CPU, if any (8259A datasheet,
    /// "Fully Nested Mode": a request is served only if its priority is higher than every
    /// in-service level; "Special Mask Mode": masked levels do not inhibit lower ones;
    /// "Special Fully Nested Mode": a cascade input is not locked out by its own ISR bit).
    fn select(&self) -> Option<u8> {
        let ir = self.highest(self.requests() & !self.imr)?;
        let blocking = if self.special_mask { self.isr & !self.imr } else { self.isr };
        match self.highest(blocking) {
            None => Some(ir),
            Some(s) if self.rank(ir) < self.rank(s) => Some(ir),
            Some(s) if s == ir && self.sfnm && self.cascade_bits() & (1 << ir) != 0 => Some(ir),
            Some(_) => None,
        }
    }

    /// The resolver's choice is taken by an INTA sequence (`inta`) or a poll read: the IRR
    /// bit is reset and the ISR bit set (8259A datasheet, "Interrupt Sequence" steps 4–5;
    /// "The Poll Command"). In auto-EOI mode the ISR bit is reset again at the end of the
    /// last INTA pulse, with rotation if "rotate in automatic EOI mode" is set ("Automatic
    /// End of Interrupt (AEOI) Mode", "Automatic Rotation").
    fn accept(&mut self, ir: u8, inta: bool) {
        let bit = 1u8 << ir;
        self.irr &= !bit;
        self.resample_levels();
        if inta && self.auto_eoi {
            if self.rotate_aeoi {
                self.lowest = ir;
            }
        } else {
            self.isr |= bit;
        }
    }

    /// The vector this chip drives in the second INTA cycle (8259A datasheet, ICW2: in
    /// 8086 mode T7–T3 come from ICW2 and the low three bits are the input).
    fn vector(&self, ir: u8) -> u8 {
        (self.icw2 & 0xf8) | (ir & 7)
    }

    /// A write with A0 = 0: ICW1 if D4 = 1, else OCW3 if D3 = 1, else OCW2.
    fn write_command(&mut self, v: u8) {
        if v & 0x10 != 0 {
            self.icw1(v);
        } else if v & 0x08 != 0 {
            self.ocw3(v);
        } else {
            self.ocw2(v);
        }
    }

    /// A write with A0 = 1: the next ICW of the sequence, or OCW1 (the IMR).
    fn write_data(&mut self, v: u8) {
        match self.step {
            InitStep::Icw2 => {
                self.icw2 = v;
                self.step = if !self.single {
                    InitStep::Icw3
                } else if self.ic4 {
                    InitStep::Icw4
                } else {
                    InitStep::Ready
                };
            }
            InitStep::Icw3 => {
                self.icw3 = v;
                self.step = if self.ic4 { InitStep::Icw4 } else { InitStep::Ready };
            }
            InitStep::Icw4 => {
                // 8259A datasheet, ICW4: D0 µPM (8086 mode), D1 AEOI, D3–D2 BUF and M/S
                // (buffered mode only; master/slave is wired here), D4 SFNM.
                self.auto_eoi = v & 0x02 != 0;
                self.sfnm = v & 0x10 != 0;
                self.step = InitStep::Ready;
            }
            InitStep::Ready => self.imr = v,
        }
    }

    /// ICW1 (8259A datasheet, "Initialization Command Words": "the edge sense circuit is
    /// reset ..., the Interrupt Mask Register is cleared, IR7 input is assigned priority 7,
    /// special mask mode is cleared and status read is set to IRR; if IC4 = 0 all functions
    /// selected in ICW4 are set to zero").
    fn icw1(&mut self, v: u8) {
        self.ic4 = v & 0x01 != 0;
        self.single = v & 0x02 != 0;
        self.ltim = v & 0x08 != 0;
        self.step = InitStep::Icw2;
        self.imr = 0;
        self.isr = 0;
        self.irr = 0;
        self.resample_levels();
        self.lowest = 7;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.rotate_aeoi = false;
        if !self.ic4 {
            self.auto_eoi = false;
            self.sfnm = false;
        }
    }

    /// OCW2: R, SL, EOI select the command, L2–L0 the level (8259A datasheet, OCW2 table).
    fn ocw2(&mut self, v: u8) {
        let level = v & 7;
        match v >> 5 {
            // 001: non-specific EOI (resets the highest-priority ISR bit).
            0b001 => {
                if let Some(ir) = self.highest(self.isr) {
                    self.isr &= !(1 << ir);
                }
            }
            // 011: specific EOI.
            0b011 => self.isr &= !(1 << level),
            // 101: rotate on non-specific EOI.
            0b101 => {
                if let Some(ir) = self.highest(self.isr) {
                    self.isr &= !(1 << ir);
                    self.lowest = ir;
                }
            }
            // 100 / 000: set / clear rotate in automatic EOI mode.
            0b100 => self.rotate_aeoi = true,
            0b000 => self.rotate_aeoi = false,
            // 111: rotate on specific EOI.
            0b111 => {
                self.isr &= !(1 << level);
                self.lowest = level;
            }
            // 110: set priority (L2–L0 becomes the lowest).
            0b110 => self.lowest = level,
            // 010: no operation.
            _ => {}
        }
    }

    /// OCW3: ESMM/SMM, P, RR/RIS (8259A datasheet, OCW3).
    fn ocw3(&mut self, v: u8) {
        if v & 0x40 != 0 {
            self.special_mask = v & 0x20 != 0;
        }
        if v & 0x04 != 0 {
            self.poll = true;
        }
        if v & 0x02 != 0 {
            self.read_isr = v & 0x01 != 0;
        }
    }

    /// A read with A0 = 0: the poll word after a poll command (8259A datasheet, "The Poll
    /// Command": D7 = 1 if an interrupt is requested, D2–D0 the highest level; the read is
    /// treated as an acknowledge), else the IRR or the ISR as OCW3 selected.
    fn read_command(&mut self) -> u8 {
        if self.poll {
            self.poll = false;
            return match self.select() {
                Some(ir) => {
                    self.accept(ir, false);
                    0x80 | ir
                }
                None => 0,
            };
        }
        if self.read_isr {
            self.isr
        } else {
            self.requests()
        }
    }
}

/// The cascaded pair of 8259As and the ELCR.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pic {
    master: Chip,
    slave: Chip,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// Both chips as a PC BIOS programs them (vectors 08h–0Fh and 70h–77h, slave on IR2
    /// with ID 2, 8086 mode, edge-triggered, non-buffered, nothing masked). The 8259A's
    /// state before ICW1 is undefined, so any guest that cares initialises it anyway.
    pub fn new() -> Self {
        Self { master: Chip::new(true, 0x08, 1 << CASCADE_IR), slave: Chip::new(false, 0x70, CASCADE_IR) }
    }

    /// Drive ISA interrupt line `irq` (0–15; others are ignored). IRQ2 of the ISA bus is
    /// wired to the slave's IR1, i.e. IRQ9, since the master's IR2 carries the cascade (IBM
    /// PC/AT Technical Reference, "System Interrupts").
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        let irq = if irq == CASCADE_IR { 9 } else { irq };
        match irq {
            0..=7 => self.master.set_input(irq, level),
            8..=15 => self.slave.set_input(irq - 8, level),
            _ => return,
        }
        self.update_cascade();
    }

    /// The master's INT output: the CPU's INTR line.
    pub fn intr(&self) -> bool {
        self.master.select().is_some()
    }

    /// The INTA cycle: the vector the CPU receives. The master resolves priority; if the
    /// winner is a cascade input, the slave whose ID matches the CAS lines supplies the
    /// vector (8259A datasheet, "Cascading"). With no request left at acknowledge time
    /// the chip answers as for IR7 without setting an ISR bit (8259A datasheet,
    /// "Interrupt Sequence": "If no interrupt request is present at step 4 ... the 8259A
    /// will issue an interrupt level 7"): spurious IRQ7 from the master, or spurious
    /// IRQ15 from the slave, with the master's IR2 then in service.
    pub fn acknowledge(&mut self) -> u8 {
        self.update_cascade();
        let vector = match self.master.select() {
            None => self.master.vector(7),
            Some(ir) => {
                self.master.accept(ir, true);
                if self.master.cascade_bits() & (1 << ir) == 0 {
                    self.master.vector(ir)
                } else if ir == CASCADE_IR && self.slave.icw3 & 7 == ir {
                    match self.slave.select() {
                        Some(s) => {
                            self.slave.accept(s, true);
                            self.slave.vector(s)
                        }
                        None => self.slave.vector(7),
                    }
                } else {
                    // No slave answers on these CAS lines: the data bus floats high.
                    0xff
                }
            }
        };
        self.update_cascade();
        vector
    }

    /// Feed the slave's INT output into the master's IR2.
    fn update_cascade(&mut self) {
        let int = self.slave.select().is_some();
        self.master.set_input(CASCADE_IR, int);
    }

    /// `IN` from a port; byte accesses wider than 8 bits are split over consecutive ports
    /// as the ISA bus does. Ports that are not the PIC's read as all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0;
        for i in 0..size as u16 {
            value |= u32::from(self.read_byte(port.wrapping_add(i))) << (8 * i);
        }
        value
    }

    /// `OUT` to a port (wide accesses are split into bytes); writes to ports that are not
    /// the PIC's are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        let v = match port {
            PIC_MASTER_COMMAND => self.master.read_command(),
            PIC_MASTER_DATA => self.master.imr,
            PIC_SLAVE_COMMAND => self.slave.read_command(),
            PIC_SLAVE_DATA => self.slave.imr,
            ELCR_MASTER => self.master.elcr,
            ELCR_SLAVE => self.slave.elcr,
            _ => return 0xff,
        };
        // A poll read acknowledges.
        self.update_cascade();
        v
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            PIC_MASTER_COMMAND => self.master.write_command(v),
            PIC_MASTER_DATA => self.master.write_data(v),
            PIC_SLAVE_COMMAND => self.slave.write_command(v),
            PIC_SLAVE_DATA => self.slave.write_data(v),
            ELCR_MASTER => {
                self.master.elcr = v & ELCR_MASTER_WRITABLE;
                self.master.resample_levels();
            }
            ELCR_SLAVE => {
                self.slave.elcr = v & ELCR_SLAVE_WRITABLE;
                self.slave.resample_levels();
            }
            _ => return,
        }
        self.update_cascade();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outb(p: &mut Pic, port: u16, v: u8) {
        p.write(port, IoSize::Byte, u32::from(v));
    }
    fn inb(p: &mut Pic, port: u16) -> u8 {
        p.read(port, IoSize::Byte) as u8
    }

    /// The initialisation a PC BIOS or OS performs: ICW1 edge/cascade/ICW4, ICW2 base,
    /// ICW3 cascade, ICW4 8086 mode, then both masks.
    fn init(p: &mut Pic, master_base: u8, slave_base: u8) {
        outb(p, 0x20, 0x11);
        outb(p, 0x21, master_base);
        outb(p, 0x21, 0x04);
        outb(p, 0x21, 0x01);
        outb(p, 0xa0, 0x11);
        outb(p, 0xa1, slave_base);
        outb(p, 0xa1, 0x02);
        outb(p, 0xa1, 0x01);
        outb(p, 0x21, 0x00);
        outb(p, 0xa1, 0x00);
    }

    fn pulse(p: &mut Pic, irq: u8) {
        p.set_irq(irq, true);
        p.set_irq(irq, false);
    }

    fn read_isr(p: &mut Pic, port: u16) -> u8 {
        outb(p, port, 0x0b);
        inb(p, port)
    }
    fn read_irr(p: &mut Pic, port: u16) -> u8 {
        outb(p, port, 0x0a);
        inb(p, port)
    }

    #[test]
    fn init_sequence_sets_vectors_and_mask() {
        let mut p = Pic::new();
        init(&mut p, 0x20, 0x28);
        outb(&mut p, 0x21, 0xfa);
        assert_eq!(inb(&mut p, 0x21), 0xfa);
        pulse(&mut p, 0);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x20);
        assert_eq!(read_isr(&mut p, 0x20), 0x01);
        // IRQ1 is masked.
        pulse(&mut p, 1);
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
        assert_eq!(read_irr(&mut p, 0x20), 0x02);
        outb(&mut p, 0x21, 0x00);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x21);
    }

    #[test]
    fn icw1_clears_mask_and_requests() {
        let mut p = Pic::new();
        outb(&mut p, 0x21, 0xff);
        pulse(&mut p, 3);
        outb(&mut p, 0x20, 0x11);
        assert_eq!(inb(&mut p, 0x21), 0x00, "ICW1 clears the IMR");
        outb(&mut p, 0x21, 0x40);
        outb(&mut p, 0x21, 0x04);
        outb(&mut p, 0x21, 0x01);
        assert!(!p.intr(), "ICW1 resets the edge latches");
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x43);
    }

    #[test]
    fn single_mode_without_icw4_skips_icw3_and_icw4() {
        let mut p = Pic::new();
        outb(&mut p, 0x20, 0x12); // SNGL, no IC4
        outb(&mut p, 0x21, 0x50);
        outb(&mut p, 0x21, 0xfb); // already OCW1
        assert_eq!(inb(&mut p, 0x21), 0xfb);
        // In single mode IR2 is an ordinary input (the slave's INT).
        pulse(&mut p, 10);
        assert_eq!(p.acknowledge(), 0x52);
    }

    #[test]
    fn priority_nesting_and_eoi() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x0b);
        // A lower priority request waits while IRQ3 is in service.
        pulse(&mut p, 5);
        assert!(!p.intr());
        // A higher one nests.
        pulse(&mut p, 1);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x09);
        assert_eq!(read_isr(&mut p, 0x20), 0x0a);
        // Non-specific EOI ends the highest in-service level (IRQ1); IRQ3 still blocks 5.
        outb(&mut p, 0x20, 0x20);
        assert_eq!(read_isr(&mut p, 0x20), 0x08);
        assert!(!p.intr());
        // Specific EOI for IRQ3.
        outb(&mut p, 0x20, 0x63);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x0d);
        assert_eq!(read_irr(&mut p, 0x20), 0x00);
    }

    #[test]
    fn simultaneous_requests_resolve_by_priority() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        p.set_irq(6, true);
        p.set_irq(4, true);
        p.set_irq(7, true);
        assert_eq!(p.acknowledge(), 0x0c);
        outb(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x0e);
        outb(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x0f);
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
    }

    #[test]
    fn slave_interrupt_through_cascade() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        pulse(&mut p, 12);
        assert!(p.intr());
        assert_eq!(read_irr(&mut p, 0x20), 0x04);
        assert_eq!(p.acknowledge(), 0x74);
        assert_eq!(read_isr(&mut p, 0x20), 0x04);
        assert_eq!(read_isr(&mut p, 0xa0), 0x10);
        // IRQ8 outranks IRQ12 on the slave but IR2 is in service at the master.
        pulse(&mut p, 8);
        assert!(!p.intr());
        // IRQ1 outranks IR2 at the master.
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x09);
        outb(&mut p, 0x20, 0x20);
        outb(&mut p, 0xa0, 0x20);
        outb(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x70);
        outb(&mut p, 0xa0, 0x20);
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
        assert_eq!(read_isr(&mut p, 0x20), 0);
        assert_eq!(read_isr(&mut p, 0xa0), 0);
    }

    #[test]
    fn isa_irq2_is_irq9() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        pulse(&mut p, 2);
        assert_eq!(p.acknowledge(), 0x71);
    }

    #[test]
    fn special_fully_nested_mode_lets_higher_slave_requests_through() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        // Master ICW4 with SFNM.
        outb(&mut p, 0x20, 0x11);
        outb(&mut p, 0x21, 0x08);
        outb(&mut p, 0x21, 0x04);
        outb(&mut p, 0x21, 0x11);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), 0x74);
        pulse(&mut p, 8);
        assert!(p.intr(), "SFNM: the slave is not locked out by IR2 in service");
        assert_eq!(p.acknowledge(), 0x70);
        // Lower slave priority stays blocked by the slave's own ISR.
        pulse(&mut p, 14);
        assert!(!p.intr());
    }

    #[test]
    fn spurious_irq7_when_nothing_pending() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        assert!(!p.intr());
        assert_eq!(p.acknowledge(), 0x0f);
        assert_eq!(read_isr(&mut p, 0x20), 0, "no ISR bit for the default IR7");
        // A level request withdrawn before the acknowledge.
        outb(&mut p, 0x4d0, 0x20);
        p.set_irq(5, true);
        assert!(p.intr());
        p.set_irq(5, false);
        assert_eq!(p.acknowledge(), 0x0f);
        assert_eq!(read_isr(&mut p, 0x20), 0);
    }

    #[test]
    fn spurious_irq15_when_slave_request_vanishes() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        outb(&mut p, 0x4d1, 0x04); // IRQ10 level-triggered
        assert_eq!(inb(&mut p, 0x4d1), 0x04);
        p.set_irq(10, true);
        assert!(p.intr());
        p.set_irq(10, false);
        // The master latched the slave's INT edge on IR2.
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x77);
        assert_eq!(read_isr(&mut p, 0xa0), 0);
        assert_eq!(read_isr(&mut p, 0x20), 0x04, "the master's IR2 is in service");
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
    }

    #[test]
    fn level_triggered_input_reasserts_after_eoi() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        outb(&mut p, 0x4d1, 0x08); // IRQ11 level
        p.set_irq(11, true);
        assert_eq!(p.acknowledge(), 0x73);
        outb(&mut p, 0xa0, 0x20);
        outb(&mut p, 0x20, 0x20);
        assert!(p.intr(), "still high: requests again");
        assert_eq!(p.acknowledge(), 0x73);
        p.set_irq(11, false);
        outb(&mut p, 0xa0, 0x20);
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
        // An edge input requests once per rising edge.
        p.set_irq(4, true);
        assert_eq!(p.acknowledge(), 0x0c);
        outb(&mut p, 0x20, 0x20);
        assert!(!p.intr());
    }

    #[test]
    fn ltim_makes_all_inputs_level() {
        let mut p = Pic::new();
        outb(&mut p, 0x20, 0x19);
        outb(&mut p, 0x21, 0x08);
        outb(&mut p, 0x21, 0x04);
        outb(&mut p, 0x21, 0x01);
        p.set_irq(3, true);
        p.set_irq(3, false);
        assert!(!p.intr());
    }

    #[test]
    fn elcr_reserved_bits_read_zero() {
        let mut p = Pic::new();
        outb(&mut p, 0x4d0, 0xff);
        outb(&mut p, 0x4d1, 0xff);
        assert_eq!(inb(&mut p, 0x4d0), 0xf8);
        assert_eq!(inb(&mut p, 0x4d1), 0xde);
        assert_eq!(p.read(0x4d0, IoSize::Word), 0xdef8);
    }

    #[test]
    fn auto_eoi_and_rotation() {
        let mut p = Pic::new();
        outb(&mut p, 0x20, 0x11);
        outb(&mut p, 0x21, 0x08);
        outb(&mut p, 0x21, 0x04);
        outb(&mut p, 0x21, 0x03); // AEOI
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x0b);
        assert_eq!(read_isr(&mut p, 0x20), 0);
        // Rotate in AEOI mode: the serviced level becomes the lowest.
        outb(&mut p, 0x20, 0x80);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x0b);
        pulse(&mut p, 3);
        pulse(&mut p, 4);
        assert_eq!(p.acknowledge(), 0x0c, "IR4 now outranks IR3");
        assert_eq!(p.acknowledge(), 0x0b);
    }

    #[test]
    fn set_priority_and_rotate_on_eoi() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        // Set priority: IR4 lowest, so IR5 highest.
        outb(&mut p, 0x20, 0xc4);
        p.set_irq(0, true);
        p.set_irq(6, true);
        assert_eq!(p.acknowledge(), 0x0e);
        // Rotate on non-specific EOI: IR6 becomes lowest, IR7 highest, IR0 next.
        outb(&mut p, 0x20, 0xa0);
        assert_eq!(p.acknowledge(), 0x08);
        // Rotate on specific EOI for IR0.
        outb(&mut p, 0x20, 0xe0);
        assert_eq!(read_isr(&mut p, 0x20), 0);
        p.set_irq(7, true);
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), 0x09, "IR1 is highest after IR0 became lowest");
    }

    #[test]
    fn special_mask_mode_enables_lower_levels() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x0b);
        pulse(&mut p, 6);
        assert!(!p.intr());
        // Mask own level and enter special mask mode.
        outb(&mut p, 0x21, 0x08);
        outb(&mut p, 0x20, 0x68);
        assert!(p.intr());
        assert_eq!(p.acknowledge(), 0x0e);
        // Leave special mask mode: IR3 (and IR6) in service block again.
        outb(&mut p, 0x20, 0x48);
        pulse(&mut p, 7);
        assert!(!p.intr());
    }

    #[test]
    fn poll_mode() {
        let mut p = Pic::new();
        init(&mut p, 0x08, 0x70);
        outb(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x00, "poll with nothing pending");
        pulse(&mut p, 5);
        outb(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x85);
        assert_eq!(read_isr(&mut p, 0x20), 0x20, "the poll read acknowledged");
        // Poll is one-shot: the next read is the selected register again.
        assert_eq!(inb(&mut p, 0x20), 0x20);
        // Polling the cascade: the master reports IR2, the slave its own level.
        pulse(&mut p, 9);
        outb(&mut p, 0x20, 0x20);
        outb(&mut p, 0x20, 0x0c);
        assert_eq!(inb(&mut p, 0x20), 0x82);
        outb(&mut p, 0xa0, 0x0c);
        assert_eq!(inb(&mut p, 0xa0), 0x81);
    }

    #[test]
    fn foreign_ports_and_out_of_range_irqs() {
        let mut p = Pic::new();
        assert_eq!(p.read(0x22, IoSize::Byte), 0xff);
        assert_eq!(p.read(0x21, IoSize::Word), 0xff00);
        p.write(0x60, IoSize::Dword, 0xffff_ffff);
        p.set_irq(16, true);
        p.set_irq(255, true);
        assert!(!p.intr());
        // Garbage command sequences must not panic.
        for v in 0..=255u8 {
            outb(&mut p, 0x20, v);
            outb(&mut p, 0x21, v);
            outb(&mut p, 0xa0, v);
            outb(&mut p, 0xa1, v);
            p.set_irq(v & 15, v & 1 != 0);
            let _ = inb(&mut p, 0x20);
            let _ = inb(&mut p, 0xa0);
            let _ = p.acknowledge();
        }
    }
}
