//! The PC's bus: what the CPU sees through [`Bus`] — RAM, the firmware ROMs, the port map
//! and the memory-mapped devices — and the wiring of device interrupt outputs to the
//! interrupt controller.
//!
//! Memory map (IBM PC/AT Technical Reference, "System Memory Map"; Intel 82441FX datasheet
//! §3.1 for the top-of-4-GiB BIOS alias):
//! - `0x00000–0x9FFFF` and `0x100000–` end of RAM: RAM, accessed directly by the CPU.
//! - `0xA0000–0xBFFFF`: the VGA's legacy window.
//! - `0xC0000–0xFFFFF`: option ROMs and the BIOS (its last 128 KiB appear at 0xE0000), or
//!   shadow RAM where the firmware has copied itself.
//! - the top of the 4 GiB space: the whole BIOS image, where the CPU starts after reset
//!   (SDM Vol. 3A §9.1.4: the first instruction is fetched at 0xFFFFFFF0).
//! - the VGA's linear framebuffer where its PCI BAR puts it.
//!
//! Time: the CPU tells the bus its retired-instruction count before every port or MMIO
//! access ([`Bus::sync`]), so timers read at exactly the time the instruction runs. The
//! machine sizes each run slice by the earliest device deadline ([`PcBus::next_event`]);
//! a write that brings a timer's deadline forward (PIT counter 0, RTC, local APIC timer,
//! ACPI PM timer) asks the CPU to end the slice ([`StopRequest::Yield`]) so the machine
//! sizes a new one and the interrupt is not late.
//!
//! FERR#: the CPU's x87 error output reaches IRQ13 as on the PC/AT; the machine copies
//! the CPU's level in with [`PcBus::set_ferr`] and, after a write to [`FPU_BUSY_PORT`],
//! acknowledges it in the CPU ([`PcBus::take_ferr_ack`]).

use super::clock::Clock;
use crate::addr::Phys;
use crate::bus::{Bus, IoSize, StopRequest};
use crate::devices::debugcon::{DebugCon, DEBUGCON_PORT};
use crate::devices::debugexit::DebugExit;
use crate::devices::dma::Dma;
use crate::devices::fdc::{self, Fdc, FDC_IRQ};
use crate::devices::fw_cfg::FwCfg;
use crate::devices::i8042::{AUX_IRQ, I8042, I8042_DATA_PORT, I8042_STATUS_PORT, KEYBOARD_IRQ};
use crate::devices::ide::{Ide, PRIMARY_IRQ, SECONDARY_IRQ};
use crate::devices::ioapic::IoApic;
use crate::devices::lapic::{Lapic, IA32_APIC_BASE};
use crate::devices::pci::{PciBus, DEVFN_HOST, DEVFN_VGA};
use crate::devices::pic::{
    Pic, ELCR_MASTER, ELCR_SLAVE, PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA,
};
use crate::devices::pit::{Pit, PIT_CONTROL, PIT_COUNTER0, PORT_B};
use crate::devices::port92::{Port92, PORT92};
use crate::devices::rtc::{Rtc, RTC_DATA, RTC_INDEX};
use crate::devices::uart::{Uart, COM1_BASE, COM1_IRQ, COM2_BASE, COM2_IRQ, UART_PORT_COUNT};
use crate::devices::vga::Vga;
use crate::devices::Nanos;
use alloc::vec::Vec;

/// SeaBIOS's debug output port (its `CONFIG_DEBUG_IO`, the port QEMU builds of SeaBIOS
/// write their log to).
pub const FIRMWARE_LOG_PORT: u16 = 0x402;

/// IRQ lines of the ISA interrupt controller (IBM PC/AT Technical Reference, "Hardware
/// Interrupt Listing").
const PIT_IRQ: u8 = 0;
const RTC_IRQ: u8 = 8;
/// The ACPI SCI: IRQ 9, as SeaBIOS's FADT and the PIIX4 PM function's interrupt line say.
const SCI_IRQ: u8 = 9;
/// The math coprocessor's error interrupt: FERR# (ERROR# of the 80287/387) on IRQ13 of
/// the slave 8259A (IBM PC/AT Technical Reference, "Hardware Interrupt Listing": IRQ13
/// coprocessor; Intel SDM Vol. 1 §8.7 and Appendix D, "MS-DOS compatibility" mode).
const FPU_IRQ: u8 = 13;

/// A write of any value clears the coprocessor busy/error latch that holds IRQ13 and lets
/// the processor go on past the failed instruction (IGNNE#): IBM PC/AT Technical
/// Reference, I/O address map, 0F0h "clear math coprocessor busy"; Intel SDM Vol. 1
/// Appendix D, "Guidelines for Writing x87 FPU Exception Handlers" (the handler's write
/// to port 0F0H). (0F1h, "reset math coprocessor", is not emulated.)
pub const FPU_BUSY_PORT: u16 = 0xf0;

/// Start of the legacy VGA window and of the ROM area, and the end of the first megabyte.
const VGA_WINDOW: u32 = 0xa_0000;
const ROM_AREA: u32 = 0xc_0000;
const ONE_MIB: u32 = 0x10_0000;

/// RAM, firmware and devices: the PC as the CPU sees it.
pub struct PcBus {
    pub ram: Vec<u8>,
    /// The system BIOS image (mapped below 4 GiB and, its last 128 KiB, below 1 MiB).
    pub bios: Vec<u8>,
    pub clock: Clock,
    /// The CPU's retired-instruction count at the last [`Bus::sync`].
    icount: u64,
    pub pic: Pic,
    pub pit: Pit,
    pub rtc: Rtc,
    pub kbd: I8042,
    pub port92: Port92,
    pub com1: Uart,
    pub com2: Uart,
    pub vga: Vga,
    pub ide: Ide,
    pub fdc: Fdc,
    pub dma: Dma,
    pub pci: PciBus,
    pub fw_cfg: FwCfg,
    /// The memory map changed (PAM shadowing, the A20 gate): the CPU must drop its TLB and
    /// cached code.
    map_changed: bool,
    /// The A20 gate as last seen, to notice changes.
    a20: bool,
    pub lapic: Lapic,
    pub ioapic: IoApic,
    /// Pages of RAM written by DMA since the CPU last looked (it drops cached code there).
    dirty_pages: Vec<u32>,
    pub debugcon: DebugCon,
    /// What the firmware wrote to [`FIRMWARE_LOG_PORT`].
    pub firmware_log: DebugCon,
    pub debug_exit: Option<DebugExit>,
    stop: Option<u32>,
    /// The CPU should end its run slice ([`StopRequest::Yield`]).
    yield_requested: bool,
    /// The CPU's FERR# output as the machine last copied it, gated by the board's latch
    /// (cleared by a write to [`FPU_BUSY_PORT`]): the IRQ13 level.
    ferr: bool,
    /// [`FPU_BUSY_PORT`] was written since the machine last looked.
    ferr_ack: bool,
}

impl PcBus {
    pub fn new(ram_bytes: usize, clock: Clock, debug_exit_port: Option<u16>, rtc_start_unix: u64) -> Self {
        Self {
            ram: alloc::vec![0; ram_bytes],
            bios: Vec::new(),
            clock,
            icount: 0,
            pic: Pic::new(),
            pit: Pit::new(),
            rtc: Rtc::new(rtc_start_unix),
            kbd: I8042::new(),
            port92: Port92::new(),
            com1: Uart::new(COM1_BASE),
            com2: Uart::new(COM2_BASE),
            vga: Vga::new(),
            ide: Ide::new(),
            fdc: Fdc::new(),
            dma: Dma::new(),
            pci: PciBus::new(),
            fw_cfg: FwCfg::new(ram_bytes as u64, 1),
            map_changed: false,
            a20: true,
            lapic: Lapic::new(),
            ioapic: IoApic::new(),
            dirty_pages: Vec::new(),
            debugcon: DebugCon::default(),
            firmware_log: DebugCon::default(),
            debug_exit: debug_exit_port.map(DebugExit::new),
            stop: None,
            yield_requested: false,
            ferr: false,
            ferr_ack: false,
        }
    }

    /// Virtual time now.
    pub fn now(&mut self) -> Nanos {
        self.clock.now(self.icount)
    }

    /// Record the CPU's instruction count (also done by the CPU before each access).
    pub fn set_icount(&mut self, icount: u64) {
        self.icount = icount;
    }

    /// The CPU's FERR# output (see `Cpu::fpu_irq13_pending`), copied in by the machine
    /// before it brings the devices up to date; IRQ13 follows it.
    pub fn set_ferr(&mut self, asserted: bool) {
        self.ferr = asserted;
    }

    /// Whether the guest wrote to [`FPU_BUSY_PORT`] since the last call: the machine then
    /// acknowledges FERR# in the CPU (IGNNE#, `Cpu::fpu_ack_irq13`).
    pub fn take_ferr_ack(&mut self) -> bool {
        core::mem::take(&mut self.ferr_ack)
    }

    /// A timer's register was written at `now`: its next interrupt was due at `before` and
    /// is now due at `after` (`None`: never). The CPU runs a slice that ends no later than
    /// the earliest deadline known when it began, so a later deadline is harmless, but an
    /// earlier one may fall inside the slice: end the slice so the machine sizes a new one.
    fn note_deadline(&mut self, before: Option<Nanos>, after: Option<Nanos>) {
        let sooner = match (before, after) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(b), Some(a)) => a < b,
        };
        self.yield_requested |= sooner;
    }

    /// Bring the clocked devices up to now and route every interrupt output to the PIC.
    pub fn update(&mut self) {
        let now = self.now();
        if self.pit.advance(now) > 0 {
            // Each rising edge of counter 0's OUT is an IRQ0 request; several edges since
            // the last look collapse into one, as the 8259's edge latch does.
            self.set_isa_irq(PIT_IRQ, true);
            self.set_isa_irq(PIT_IRQ, false);
        }
        self.rtc.advance(now);
        self.com1.advance(now);
        self.com2.advance(now);
        self.kbd.advance(now);
        self.lapic.advance(now);
        self.route_irqs();
    }

    /// An ISA interrupt line changed: both interrupt controllers see it. The I/O APIC's
    /// pins follow the MP and ACPI tables SeaBIOS builds: ISA IRQ n on pin n, except the
    /// timer, IRQ0, on pin 2 (the "interrupt source override" of ACPI's MADT).
    fn set_isa_irq(&mut self, irq: u8, level: bool) {
        self.pic.set_irq(irq, level);
        let pin = if irq == PIT_IRQ { 2 } else { irq };
        self.ioapic.set_irq(pin, level);
    }

    /// Level-triggered outputs to the interrupt controllers' inputs, then the I/O APIC's
    /// messages to the local APIC and the local APIC's EOIs back (SDM Vol. 3A §10.8.5).
    fn route_irqs(&mut self) {
        self.set_isa_irq(KEYBOARD_IRQ, self.kbd.irq1());
        self.set_isa_irq(AUX_IRQ, self.kbd.irq12());
        self.set_isa_irq(COM1_IRQ, self.com1.irq());
        self.set_isa_irq(COM2_IRQ, self.com2.irq());
        self.set_isa_irq(RTC_IRQ, self.rtc.irq());
        self.set_isa_irq(FDC_IRQ, self.fdc.irq6());
        self.set_isa_irq(PRIMARY_IRQ, self.ide.irq14());
        self.set_isa_irq(SECONDARY_IRQ, self.ide.irq15());
        self.set_isa_irq(FPU_IRQ, self.ferr);
        let now = self.now();
        let sci = self.pci.pm.sci_level(now);
        self.set_isa_irq(SCI_IRQ, sci);
        self.route_apic();
    }

    fn route_apic(&mut self) {
        while let Some(v) = self.lapic.take_eoi_broadcast() {
            self.ioapic.eoi(v);
        }
        while let Some(m) = self.ioapic.take_message() {
            self.lapic.deliver(m);
        }
    }

    /// The floppy controller and the DMA controller move data after a write to either.
    fn run_floppy_dma(&mut self) {
        let before = (0..4).map(|c| self.dma.address(c)).collect::<Vec<_>>();
        fdc::run_dma(&mut self.fdc, &mut self.dma, &mut self.ram);
        // Drop cached code in the pages the transfer wrote (at most a track: 18 KiB).
        for (c, start) in before.into_iter().enumerate() {
            let end = self.dma.address(c as u8);
            if end != start {
                let (lo, hi) = (start.min(end), start.max(end));
                for page in (lo >> 12)..=(hi >> 12) {
                    if !self.dirty_pages.contains(&page) {
                        self.dirty_pages.push(page);
                    }
                }
            }
        }
    }

    /// The earliest time a device needs attention (a timer edge, queued input).
    pub fn next_event(&mut self) -> Option<Nanos> {
        let now = self.now();
        [
            self.pit.next_event(now),
            self.rtc.next_event(now),
            self.com1.next_event(now),
            self.com2.next_event(now),
            self.kbd.next_event(now),
            self.lapic.next_event(now),
            self.pci.pm.next_event(now),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a device asked for a CPU reset since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        let kbd = self.kbd.take_reset_request();
        let p92 = self.port92.take_reset_request();
        let pci = self.pci.take_reset_request().is_some();
        kbd || p92 || pci
    }

    /// The byte at `addr` of the BIOS below 4 GiB or of the ROM area below 1 MiB (where
    /// the BIOS's last 128 KiB end at 0xFFFFF), if ROM answers reads there.
    fn rom_byte(&self, addr: u32) -> Option<u8> {
        let len = self.bios.len() as u32;
        if len != 0 && addr >= 0u32.wrapping_sub(len) {
            return Some(self.bios[(addr - 0u32.wrapping_sub(len)) as usize]);
        }
        if (ROM_AREA..ONE_MIB).contains(&addr) {
            let alias = len.min(0x2_0000);
            if alias != 0 && addr >= ONE_MIB - alias {
                return Some(self.bios[(len - (ONE_MIB - addr)) as usize]);
            }
            return Some(0xff);
        }
        None
    }

    /// A read of the ROM area: shadow RAM or ROM, as the i440FX's PAM registers say
    /// (82441FX datasheet §3.2.12). Elsewhere: ROM, RAM or nothing (all ones).
    fn mem_byte(&mut self, addr: u32) -> u8 {
        if let Some(m) = self.pci.host.pam_mode(addr) {
            if m.read_ram {
                return self.ram.get(addr as usize).copied().unwrap_or(0xff);
            }
        }
        if let Some(b) = self.rom_byte(addr) {
            return b;
        }
        self.ram.get(addr as usize).copied().unwrap_or(0xff)
    }

    fn write_mem_byte(&mut self, addr: u32, value: u8) {
        let to_ram = match self.pci.host.pam_mode(addr) {
            Some(m) => m.write_ram,
            None => self.rom_byte(addr).is_none(),
        };
        if to_ram {
            if let Some(r) = self.ram.get_mut(addr as usize) {
                *r = value;
            }
        }
    }

    /// The A20 gate moved: the CPU's TLB must be refilled with the new addresses.
    fn note_a20(&mut self) {
        let a20 = self.kbd.a20() || self.port92.a20();
        if a20 != self.a20 {
            self.a20 = a20;
            self.map_changed = true;
        }
    }

    /// Act on configuration changes: PAM (the memory map), the VGA's framebuffer BAR.
    fn apply_pci_changes(&mut self) {
        for (devfn, change) in self.pci.take_changes() {
            if devfn == DEVFN_HOST && change.device_specific {
                self.map_changed = true;
            }
            if devfn == DEVFN_VGA && change.bars != 0 {
                if let Some(base) = self.pci.vga.as_ref().and_then(|v| v.lfb_base()) {
                    self.vga.set_lfb_base(Phys(base));
                }
            }
        }
    }
}

impl Bus for PcBus {
    #[inline]
    fn ram(&mut self) -> &mut [u8] {
        &mut self.ram
    }

    #[inline]
    fn is_direct(&self, page: u32) -> bool {
        let addr = page << 12;
        if (page as usize) >= (self.ram.len() >> 12) || (VGA_WINDOW..ROM_AREA).contains(&addr) {
            return false;
        }
        match self.pci.host.pam_mode(addr) {
            // Shadow RAM that is both readable and writable is plain RAM.
            Some(m) => m.read_ram && m.write_ram,
            None => !(ROM_AREA..ONE_MIB).contains(&addr),
        }
    }

    #[inline]
    fn is_direct_read(&self, page: u32) -> bool {
        let addr = page << 12;
        match self.pci.host.pam_mode(addr) {
            Some(m) => m.read_ram && (page as usize) < (self.ram.len() >> 12),
            None => self.is_direct(page),
        }
    }

    fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32 {
        let a = addr.0;
        if self.vga.claims(addr) {
            return self.vga.mmio_read(addr, size);
        }
        if self.lapic.contains(addr) {
            let now = self.now();
            return self.lapic.mmio_read(addr, size, now);
        }
        if self.ioapic.contains(addr) {
            return self.ioapic.mmio_read(addr, size);
        }
        let mut v = 0u32;
        for i in 0..size as u32 {
            v |= (self.mem_byte(a.wrapping_add(i)) as u32) << (8 * i);
        }
        v
    }

    fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32) {
        let a = addr.0;
        if self.vga.claims(addr) {
            self.vga.mmio_write(addr, size, value);
            return;
        }
        if self.lapic.contains(addr) {
            // The timer's initial count, divide configuration and LVT entry are MMIO.
            let now = self.now();
            let before = self.lapic.next_event(now);
            self.lapic.mmio_write(addr, size, value, now);
            let after = self.lapic.next_event(now);
            self.note_deadline(before, after);
            self.route_apic();
            return;
        }
        if self.ioapic.contains(addr) {
            self.ioapic.mmio_write(addr, size, value);
            self.route_apic();
            return;
        }
        for i in 0..size as u32 {
            self.write_mem_byte(a.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn io_in(&mut self, port: u16, size: IoSize) -> u32 {
        let now = self.now();
        let v = match port {
            PIC_MASTER_COMMAND | PIC_MASTER_DATA | PIC_SLAVE_COMMAND | PIC_SLAVE_DATA | ELCR_MASTER | ELCR_SLAVE => {
                self.pic.read(port, size)
            }
            PIT_COUNTER0..=PIT_CONTROL | PORT_B => self.pit.read(port, size, now),
            I8042_DATA_PORT | I8042_STATUS_PORT => self.kbd.read(port, size),
            RTC_INDEX | RTC_DATA => self.rtc.read(port, size, now),
            PORT92 => self.port92.read(port, size),
            p if (COM1_BASE..COM1_BASE + UART_PORT_COUNT).contains(&p) => self.com1.read(port, size),
            p if (COM2_BASE..COM2_BASE + UART_PORT_COUNT).contains(&p) => self.com2.read(port, size),
            p if Vga::claims_port(p) => self.vga.read(port, size),
            p if Ide::claims(p) => self.ide.read(port, size),
            p if self.pci.owns_port(p) => self.pci.read(port, size),
            p if self.pci.pm.owns_port(p) => self.pci.pm.io_read(port, size, now),
            p if self.fw_cfg.owns_port(p) => self.fw_cfg.read(port, size),
            0x3f0..=0x3f5 | 0x3f7 => self.fdc.read(port, size),
            0x00..=0x0f | 0x80..=0x8f | 0xc0..=0xdf => self.dma.read(port, size),
            _ => all_ones(size),
        };
        self.route_irqs();
        v
    }

    fn io_out(&mut self, port: u16, size: IoSize, value: u32) {
        let now = self.now();
        match port {
            PIC_MASTER_COMMAND | PIC_MASTER_DATA | PIC_SLAVE_COMMAND | PIC_SLAVE_DATA | ELCR_MASTER | ELCR_SLAVE => {
                self.pic.write(port, size, value)
            }
            PIT_COUNTER0..=PIT_CONTROL | PORT_B => {
                // Only programming writes pay for the deadline search (latch commands,
                // which timer-polling guests issue in loops, do not).
                if Pit::programs_counter0(port, size, value) {
                    let before = self.pit.next_event(now);
                    self.pit.write(port, size, value, now);
                    let after = self.pit.next_event(now);
                    self.note_deadline(before, after);
                } else {
                    self.pit.write(port, size, value, now);
                }
            }
            I8042_DATA_PORT | I8042_STATUS_PORT => {
                self.kbd.write(port, size, value);
                self.note_a20();
            }
            RTC_INDEX | RTC_DATA => {
                // Registers A and B (periodic rate, interrupt enables) and the alarm.
                let before = self.rtc.next_event(now);
                self.rtc.write(port, size, value, now);
                let after = self.rtc.next_event(now);
                self.note_deadline(before, after);
            }
            FPU_BUSY_PORT => {
                // The board's latch drops IRQ13 at once; IGNNE# is the CPU's, so end the
                // slice for the machine to acknowledge FERR# there before the handler's
                // next instruction (typically FNCLEX).
                self.ferr = false;
                self.ferr_ack = true;
                self.yield_requested = true;
            }
            PORT92 => {
                self.port92.write(port, size, value);
                self.note_a20();
            }
            DEBUGCON_PORT => self.debugcon.write(value as u8),
            FIRMWARE_LOG_PORT => self.firmware_log.write(value as u8),
            p if (COM1_BASE..COM1_BASE + UART_PORT_COUNT).contains(&p) => self.com1.write(port, size, value),
            p if (COM2_BASE..COM2_BASE + UART_PORT_COUNT).contains(&p) => self.com2.write(port, size, value),
            p if Vga::claims_port(p) => self.vga.write(port, size, value),
            p if Ide::claims(p) => self.ide.write(port, size, value),
            p if self.pci.owns_port(p) => {
                self.pci.write(port, size, value);
                self.apply_pci_changes();
            }
            p if self.pci.pm.owns_port(p) => {
                // PM1_EN / PM1_CNT enable the PM timer's overflow interrupt (SCI).
                let before = self.pci.pm.next_event(now);
                self.pci.pm.io_write(port, size, value, now);
                let after = self.pci.pm.next_event(now);
                self.note_deadline(before, after);
            }
            p if self.fw_cfg.owns_port(p) => self.fw_cfg.write(port, size, value),
            0x3f0..=0x3f5 | 0x3f7 => {
                self.fdc.write(port, size, value);
                self.run_floppy_dma();
            }
            0x00..=0x0f | 0x80..=0x8f | 0xc0..=0xdf => {
                self.dma.write(port, size, value);
                self.run_floppy_dma();
            }
            _ => {}
        }
        if let Some(d) = &self.debug_exit {
            if let Some(code) = d.write(port, size, value) {
                self.stop = Some(code);
            }
        }
        self.route_irqs();
    }

    fn sync(&mut self, icount: u64) {
        self.icount = icount;
    }

    fn take_stop_request(&mut self) -> Option<StopRequest> {
        if let Some(v) = self.stop.take() {
            return Some(StopRequest::DebugExit(v));
        }
        if self.pci.pm.power_off_requested() {
            return Some(StopRequest::PowerOff);
        }
        if self.take_reset_request() {
            return Some(StopRequest::Reset);
        }
        core::mem::take(&mut self.yield_requested).then_some(StopRequest::Yield)
    }

    fn interrupt_pending(&self) -> bool {
        self.lapic.has_interrupt(self.pic.intr())
    }

    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let pic = &mut self.pic;
        let intr = pic.intr();
        self.lapic.acknowledge(intr, || pic.acknowledge())
    }

    fn rdmsr(&mut self, index: u32) -> Option<u64> {
        (index == IA32_APIC_BASE).then(|| self.lapic.base_msr())
    }

    fn wrmsr(&mut self, index: u32, value: u64) -> Option<bool> {
        (index == IA32_APIC_BASE).then(|| self.lapic.set_base_msr(value))
    }

    fn a20_enabled(&self) -> bool {
        self.kbd.a20() || self.port92.a20()
    }

    fn take_memory_map_change(&mut self) -> bool {
        core::mem::take(&mut self.map_changed)
    }

    fn for_each_dirty_page(&mut self, f: &mut dyn FnMut(u32)) {
        for p in self.dirty_pages.drain(..) {
            f(p);
        }
    }
}

fn all_ones(size: IoSize) -> u32 {
    match size {
        IoSize::Byte => 0xff,
        IoSize::Word => 0xffff,
        IoSize::Dword => 0xffff_ffff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::lapic::LAPIC_DEFAULT_BASE;
    use crate::machine::ClockMode;

    fn bus() -> PcBus {
        PcBus::new(1 << 20, Clock::new(ClockMode::Deterministic), None, 0)
    }

    fn outb(b: &mut PcBus, port: u16, v: u8) {
        b.io_out(port, IoSize::Byte, u32::from(v));
    }

    fn lapic_write(b: &mut PcBus, offset: u32, v: u32) {
        b.mmio_write(Phys(LAPIC_DEFAULT_BASE + offset), IoSize::Dword, v);
    }

    fn yields(b: &mut PcBus) -> bool {
        b.take_stop_request() == Some(StopRequest::Yield)
    }

    #[test]
    fn programming_the_pit_ends_the_slice_but_latching_it_does_not() {
        let mut b = bus();
        // Counter 0, LSB then MSB, mode 2: the control word stops the counter and the LSB
        // waits for the MSB (no deadline yet); the MSB starts it.
        outb(&mut b, PIT_CONTROL, 0x34);
        outb(&mut b, PIT_COUNTER0, 0x00);
        assert!(!yields(&mut b));
        outb(&mut b, PIT_COUNTER0, 0x10);
        assert!(yields(&mut b));
        assert!(!yields(&mut b), "the request is taken once");
        // Latching counter 0, programming counter 2 (the speaker), port 61h: no.
        outb(&mut b, PIT_CONTROL, 0x00);
        outb(&mut b, PIT_CONTROL, 0xb6);
        outb(&mut b, PIT_COUNTER0 + 2, 0x01);
        outb(&mut b, PIT_COUNTER0 + 2, 0x00);
        outb(&mut b, PORT_B, 0x03);
        assert!(!yields(&mut b));
        // In mode 2 a new count takes effect when the current period ends (8254 data
        // sheet, "Mode 2"): IRQ0's deadline stays where it was, so the slice goes on.
        outb(&mut b, PIT_COUNTER0, 0xff);
        outb(&mut b, PIT_COUNTER0, 0xff);
        assert!(!yields(&mut b));
    }

    #[test]
    fn enabling_the_rtc_periodic_interrupt_ends_the_slice_but_cmos_writes_do_not() {
        let mut b = bus();
        outb(&mut b, RTC_INDEX, 0x30);
        outb(&mut b, RTC_DATA, 0x55);
        assert!(!yields(&mut b));
        // Register B: PIE (1024 Hz, the power-on rate of register A) and 24-hour mode.
        outb(&mut b, RTC_INDEX, 0x0b);
        outb(&mut b, RTC_DATA, 0x42);
        assert!(yields(&mut b));
    }

    #[test]
    fn the_lapic_timer_ends_the_slice_but_an_eoi_does_not() {
        let mut b = bus();
        lapic_write(&mut b, 0x0f0, 0x1ff); // SVR: enabled
        lapic_write(&mut b, 0x3e0, 0x0b); // divide by 1
        lapic_write(&mut b, 0x320, 0x40); // LVT timer: one-shot, vector 40h
        assert!(!yields(&mut b));
        lapic_write(&mut b, 0x380, 1000); // initial count
        assert!(yields(&mut b));
        lapic_write(&mut b, 0x0b0, 0); // EOI
        assert!(!yields(&mut b));
        // Masking the timer takes its deadline away; unmasking brings it back.
        lapic_write(&mut b, 0x320, 0x1_0040);
        assert!(!yields(&mut b));
        lapic_write(&mut b, 0x320, 0x40);
        assert!(yields(&mut b));
    }

    #[test]
    fn ferr_drives_irq13_until_port_f0_is_written() {
        let mut b = bus();
        // The slave 8259A at 70h-77h with only IR5 (IRQ13) unmasked, behind master IR2.
        for (port, v) in [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xfb)] {
            outb(&mut b, port, v);
        }
        for (port, v) in [(0xa0, 0x11), (0xa1, 0x70), (0xa1, 0x02), (0xa1, 0x01), (0xa1, 0xdf)] {
            outb(&mut b, port, v);
        }
        b.set_ferr(true);
        b.update();
        assert!(b.interrupt_pending());
        assert_eq!(b.acknowledge_interrupt(), Some(0x75));
        assert!(!b.take_ferr_ack());
        outb(&mut b, FPU_BUSY_PORT, 0);
        assert!(yields(&mut b), "the machine must acknowledge FERR# in the CPU at once");
        assert!(b.take_ferr_ack());
        assert!(!b.take_ferr_ack());
    }
}
