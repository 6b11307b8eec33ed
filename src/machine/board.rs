//! The PC's board: the firmware ROM, the clock and every device — the port map, the
//! memory-mapped devices, the chipset's view of the memory map and the wiring of device
//! interrupt outputs to the interrupt controllers — without the RAM. RAM is not part of
//! the device set: [`PcBus`](super::PcBus) owns one machine's RAM and hands it in, and a
//! VMM running several guests on one CPU hands each [`Board`] its guest's slice of host
//! memory. Methods that touch RAM take it as `ram`: guest-physical RAM from address 0, its
//! length the RAM size.
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
//! [`Board::page_kind`] says, page by page, what backs this map, for a VMM building its
//! second-level tables: RAM, shadow RAM that is read-only, ROM, or something every access
//! of which must go through [`Board::mmio_read`] / [`Board::mmio_write`].
//!
//! Time: the CPU tells the board its retired-instruction count before every port or MMIO
//! access ([`Board::sync`]), so timers read at exactly the time the instruction runs. The
//! machine sizes each run slice by the earliest device deadline ([`Board::next_event`]);
//! a write that brings a timer's deadline forward (PIT counter 0, RTC, local APIC timer,
//! ACPI PM timer) asks the CPU to end the slice ([`StopRequest::Yield`]) so the machine
//! sizes a new one and the interrupt is not late.
//!
//! FERR#: the CPU's x87 error output reaches IRQ13 as on the PC/AT; the machine copies
//! the CPU's level in with [`Board::set_ferr`] and, after a write to [`FPU_BUSY_PORT`],
//! acknowledges it in the CPU ([`Board::take_ferr_ack`]).

use super::clock::Clock;
use crate::addr::Phys;
use crate::bus::{IoSize, StopRequest};
use crate::devices::debugcon::{DebugCon, DEBUGCON_PORT};
use crate::devices::debugexit::DebugExit;
use crate::devices::dma::Dma;
use crate::devices::fdc::{self, Fdc, FDC_IRQ};
use crate::devices::fw_cfg::FwCfg;
use crate::devices::i8042::{AUX_IRQ, I8042, I8042_DATA_PORT, I8042_STATUS_PORT, KEYBOARD_IRQ};
use crate::devices::ide::{Ide, PRIMARY_IRQ, SECONDARY_IRQ};
use crate::devices::ioapic::{IoApic, IOAPIC_MMIO_LEN};
use crate::devices::lapic::{Lapic, IA32_APIC_BASE};
use crate::devices::pci::{PciBus, DEVFN_HOST, DEVFN_VGA};
use crate::devices::pic::{
    Pic, ELCR_MASTER, ELCR_SLAVE, PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA,
};
use crate::devices::pit::{Pit, PIT_CONTROL, PIT_COUNTER0, PORT_B};
use crate::devices::port92::{Port92, PORT92};
use crate::devices::rtc::{Rtc, RTC_DATA, RTC_INDEX};
use crate::devices::uart::{Uart, COM1_BASE, COM1_IRQ, COM2_BASE, COM2_IRQ, UART_PORT_COUNT};
use crate::devices::vga::{Vga, LEGACY_WINDOW_BASE, LEGACY_WINDOW_SIZE};
use crate::devices::Nanos;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

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

/// Bytes in a page: the 4 KiB granule of paging (SDM Vol. 3A §4.3) and of [`PageKind`].
pub const PAGE_SIZE: usize = 4096;

/// What the ROM area answers where no ROM image is mapped: an empty bus reads all ones.
static EMPTY_ROM_PAGE: [u8; PAGE_SIZE] = [0xff; PAGE_SIZE];

/// What backs one 4 KiB guest-physical page (see [`Board::page_kind`]). Only the first
/// three are promises; [`PageKind::Mmio`] is always a correct answer, since
/// [`Board::mmio_read`] and [`Board::mmio_write`] implement every page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// RAM at the same offset of `ram`: reads and writes go straight there.
    Ram,
    /// Shadow RAM made read-only by the chipset (PAM RE without WE): reads come from RAM
    /// at the same offset, writes must go to [`Board::mmio_write`] (which drops them).
    RamReadOnly,
    /// ROM: reads come from [`Board::rom_page`], writes are dropped.
    Rom,
    /// A device, nothing (all-ones reads, dropped writes), or a mix the other kinds do not
    /// describe (PAM WE without RE: reads from ROM, writes to RAM): every access must go
    /// through [`Board::mmio_read`] / [`Board::mmio_write`].
    Mmio,
}

/// The firmware, the clock and the devices of one PC: everything but its RAM.
#[derive(Serialize, Deserialize)]
pub struct Board {
    /// The system BIOS image (mapped below 4 GiB and, its last 128 KiB, below 1 MiB).
    #[serde(with = "crate::snapshot::sparse")]
    pub bios: Vec<u8>,
    pub clock: Clock,
    /// The CPU's retired-instruction count at the last [`Board::sync`].
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

impl Board {
    /// A board for a PC with `ram_bytes` of RAM (fw_cfg reports the size to the firmware;
    /// the RAM itself is the caller's).
    pub fn new(ram_bytes: usize, clock: Clock, debug_exit_port: Option<u16>, rtc_start_unix: u64) -> Self {
        Self {
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

    /// The CPU's retired-instruction count, given before each port or MMIO access so
    /// clocked devices answer for exactly that moment.
    #[inline]
    pub fn sync(&mut self, icount: u64) {
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
    fn run_floppy_dma(&mut self, ram: &mut [u8]) {
        let before = (0..4).map(|c| self.dma.address(c)).collect::<Vec<_>>();
        fdc::run_dma(&mut self.fdc, &mut self.dma, ram);
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

    /// The 4 KiB the ROM answers with at page `page` (the BIOS below 4 GiB, or the ROM area
    /// below 1 MiB: the BIOS's last 128 KiB, all ones below them), whatever the PAM
    /// registers select there; `None` where ROM answers no read of the page, or only some
    /// of them (an image whose size is not a multiple of 4 KiB). Byte for byte what reads
    /// of a [`PageKind::Rom`] page return.
    pub fn rom_page(&self, page: u32) -> Option<&[u8; PAGE_SIZE]> {
        if page >= 1 << 20 {
            return None;
        }
        let addr = page << 12;
        let len = self.bios.len() as u32;
        let top = 0u32.wrapping_sub(len);
        if len != 0 {
            if addr >= top {
                let off = (addr - top) as usize;
                return self.bios.get(off..off + PAGE_SIZE)?.try_into().ok();
            }
            if top - addr < PAGE_SIZE as u32 {
                // The image starts inside the page: the bytes below it are not ROM.
                return None;
            }
        }
        if !(ROM_AREA..ONE_MIB).contains(&addr) {
            return None;
        }
        let alias_start = ONE_MIB - len.min(0x2_0000);
        if addr >= alias_start {
            let off = (len - (ONE_MIB - addr)) as usize;
            return self.bios.get(off..off + PAGE_SIZE)?.try_into().ok();
        }
        (alias_start - addr >= PAGE_SIZE as u32).then_some(&EMPTY_ROM_PAGE)
    }

    /// A read of the ROM area: shadow RAM or ROM, as the i440FX's PAM registers say
    /// (82441FX datasheet §3.2.12). Elsewhere: ROM, RAM or nothing (all ones).
    fn mem_byte(&self, addr: u32, ram: &[u8]) -> u8 {
        if let Some(m) = self.pci.host.pam_mode(addr) {
            if m.read_ram {
                return ram.get(addr as usize).copied().unwrap_or(0xff);
            }
        }
        if let Some(b) = self.rom_byte(addr) {
            return b;
        }
        ram.get(addr as usize).copied().unwrap_or(0xff)
    }

    fn write_mem_byte(&self, addr: u32, value: u8, ram: &mut [u8]) {
        let to_ram = match self.pci.host.pam_mode(addr) {
            Some(m) => m.write_ram,
            None => self.rom_byte(addr).is_none(),
        };
        if to_ram {
            if let Some(r) = ram.get_mut(addr as usize) {
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

    /// Whether the 4 KiB physical page `page` is plain RAM inside the first `ram_len`
    /// bytes: RAM outside the VGA window and the ROM area, or shadow RAM the PAM registers
    /// make readable and writable. The CPU caches the answer in its TLB (`Bus::is_direct`).
    #[inline]
    pub fn is_direct(&self, page: u32, ram_len: usize) -> bool {
        let addr = page << 12;
        if (page as usize) >= (ram_len >> 12) || (VGA_WINDOW..ROM_AREA).contains(&addr) {
            return false;
        }
        match self.pci.host.pam_mode(addr) {
            // Shadow RAM that is both readable and writable is plain RAM.
            Some(m) => m.read_ram && m.write_ram,
            None => !(ROM_AREA..ONE_MIB).contains(&addr),
        }
    }

    /// Whether reads of page `page` may come straight from RAM even though writes may not
    /// (shadow RAM the PAM registers make read-only: writes go to [`Board::mmio_write`]).
    #[inline]
    pub fn is_direct_read(&self, page: u32, ram_len: usize) -> bool {
        let addr = page << 12;
        match self.pci.host.pam_mode(addr) {
            Some(m) => m.read_ram && (page as usize) < (ram_len >> 12),
            None => self.is_direct(page, ram_len),
        }
    }

    /// Whether a memory-mapped device decodes any byte of the page at `addr`: the VGA's
    /// legacy window or linear framebuffer, the local APIC's page, the I/O APIC's
    /// registers. (Ranges may wrap at 4 GiB as the devices' own decoders let them.)
    fn device_in_page(&self, addr: u32) -> bool {
        // Circular intervals [b, b+len) and [addr, addr+4 KiB) meet iff either starts
        // inside the other.
        let overlaps =
            |b: u32, len: u32| len != 0 && (addr.wrapping_sub(b) < len || b.wrapping_sub(addr) < PAGE_SIZE as u32);
        overlaps(LEGACY_WINDOW_BASE.0, LEGACY_WINDOW_SIZE)
            || overlaps(self.vga.lfb_base().0, self.vga.lfb_size())
            || self.lapic.contains(Phys(addr))
            || overlaps(self.ioapic.base().0, IOAPIC_MMIO_LEN)
    }

    /// What backs guest-physical page `page` now, for a machine whose RAM is `ram_len`
    /// bytes: what the CPU's TLB would make of it ([`Board::is_direct`],
    /// [`Board::is_direct_read`]), and otherwise whether the page is ROM (reads from the
    /// image, writes dropped: the BIOS below 4 GiB, the ROM area where the PAM registers
    /// route neither reads nor writes to RAM) or must be emulated. Pages past the 32-bit
    /// space the board decodes are [`PageKind::Mmio`]. The answer changes when
    /// [`Board::take_memory_map_change`] says so, and when a device moves (the VGA's
    /// framebuffer BAR, the local APIC's base MSR).
    pub fn page_kind(&self, page: u32, ram_len: usize) -> PageKind {
        if page >= 1 << 20 {
            return PageKind::Mmio;
        }
        if self.is_direct(page, ram_len) {
            return PageKind::Ram;
        }
        if self.is_direct_read(page, ram_len) {
            return PageKind::RamReadOnly;
        }
        let addr = page << 12;
        if self.device_in_page(addr) {
            return PageKind::Mmio;
        }
        // As `mem_byte` and `write_mem_byte`: ROM answers the reads unless PAM routes them
        // to RAM; writes are dropped unless PAM routes them to RAM or no ROM is there.
        let writes_dropped = match self.pci.host.pam_mode(addr) {
            // Readable shadow RAM past the end of RAM: nothing.
            Some(m) if m.read_ram => return PageKind::Mmio,
            Some(m) => !m.write_ram,
            None => true,
        };
        if writes_dropped && self.rom_page(page).is_some() {
            PageKind::Rom
        } else {
            PageKind::Mmio
        }
    }

    /// Memory-mapped read of a page that is not direct RAM: a device, ROM, shadow RAM (in
    /// `ram`) or nothing (all ones).
    pub fn mmio_read(&mut self, addr: Phys, size: IoSize, ram: &[u8]) -> u32 {
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
            v |= (self.mem_byte(a.wrapping_add(i), ram) as u32) << (8 * i);
        }
        v
    }

    /// Memory-mapped write of a page that is not direct RAM: a device, shadow RAM (in
    /// `ram`) as the PAM registers allow, or dropped.
    pub fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32, ram: &mut [u8]) {
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
            self.write_mem_byte(a.wrapping_add(i), (value >> (8 * i)) as u8, ram);
        }
    }

    /// `IN` from a port.
    pub fn io_in(&mut self, port: u16, size: IoSize) -> u32 {
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
            _ => size.all_ones(),
        };
        self.route_irqs();
        v
    }

    /// `OUT` to a port; `ram` is where the floppy's DMA transfers go.
    pub fn io_out(&mut self, port: u16, size: IoSize, value: u32, ram: &mut [u8]) {
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
                self.run_floppy_dma(ram);
            }
            0x00..=0x0f | 0x80..=0x8f | 0xc0..=0xdf => {
                self.dma.write(port, size, value);
                self.run_floppy_dma(ram);
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

    /// A device asked the run loop to stop (isa-debug-exit, ACPI soft-off, the reset
    /// line) or to end its slice ([`StopRequest::Yield`]).
    pub fn take_stop_request(&mut self) -> Option<StopRequest> {
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

    /// Whether the interrupt controllers have an interrupt for the CPU (INTR, or the local
    /// APIC's highest pending vector).
    pub fn interrupt_pending(&self) -> bool {
        self.lapic.has_interrupt(self.pic.intr())
    }

    /// Acknowledge the pending interrupt: the local APIC's vector, or the 8259A's (INTA
    /// cycle) when the local APIC passes ExtINT through.
    pub fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let pic = &mut self.pic;
        let intr = pic.intr();
        self.lapic.acknowledge(intr, || pic.acknowledge())
    }

    /// The board's MSR: IA32_APIC_BASE (SDM Vol. 3A §10.4.4). `None` for any other.
    pub fn rdmsr(&mut self, index: u32) -> Option<u64> {
        (index == IA32_APIC_BASE).then(|| self.lapic.base_msr())
    }

    /// Write IA32_APIC_BASE: `None` for any other MSR, `Some(false)` for reserved bits.
    pub fn wrmsr(&mut self, index: u32, value: u64) -> Option<bool> {
        (index == IA32_APIC_BASE).then(|| self.lapic.set_base_msr(value))
    }

    /// The A20 gate: 8042 output port bit 1 OR port 92h bit 1.
    pub fn a20_enabled(&self) -> bool {
        self.kbd.a20() || self.port92.a20()
    }

    /// Whether the memory map changed (PAM, the A20 gate) since the last call.
    pub fn take_memory_map_change(&mut self) -> bool {
        core::mem::take(&mut self.map_changed)
    }

    /// Hand over and forget the pages of RAM DMA wrote since the last call.
    pub fn for_each_dirty_page(&mut self, f: &mut dyn FnMut(u32)) {
        for p in self.dirty_pages.drain(..) {
            f(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::ioapic::IOAPIC_DEFAULT_BASE;
    use crate::devices::lapic::LAPIC_DEFAULT_BASE;
    use crate::machine::ClockMode;

    const RAM: usize = 1 << 20;

    fn board() -> Board {
        Board::new(RAM, Clock::new(ClockMode::Deterministic), None, 0)
    }

    fn outb(b: &mut Board, port: u16, v: u8) {
        b.io_out(port, IoSize::Byte, u32::from(v), &mut []);
    }

    fn lapic_write(b: &mut Board, offset: u32, v: u32) {
        b.mmio_write(Phys(LAPIC_DEFAULT_BASE + offset), IoSize::Dword, v, &mut []);
    }

    fn yields(b: &mut Board) -> bool {
        b.take_stop_request() == Some(StopRequest::Yield)
    }

    #[test]
    fn programming_the_pit_ends_the_slice_but_latching_it_does_not() {
        let mut b = board();
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
        let mut b = board();
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
        let mut b = board();
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
        let mut b = board();
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

    /// A 256 KiB BIOS whose every dword holds its own offset, so aliases can be told apart.
    fn with_bios(b: &mut Board) {
        b.bios = (0..0x4_0000u32 / 4).flat_map(|i| (i * 4).to_le_bytes()).collect();
    }

    /// Write PAM register 59h + `reg` (PCI configuration mechanism #1, host bridge 00.0).
    fn set_pam(b: &mut Board, reg: u8, value: u8) {
        let offset = 0x59 + reg;
        b.io_out(0xcf8, IoSize::Dword, 0x8000_0000 | u32::from(offset & !3), &mut []);
        b.io_out(0xcfc + u16::from(offset & 3), IoSize::Byte, u32::from(value), &mut []);
        assert!(b.take_memory_map_change());
    }

    #[test]
    fn page_kinds_of_the_pc_memory_map() {
        use PageKind::*;
        let mut b = board();
        with_bios(&mut b);
        let kind = |b: &Board, addr: u32| b.page_kind(addr >> 12, RAM);
        assert_eq!(kind(&b, 0), Ram);
        assert_eq!(kind(&b, 0x9_f000), Ram, "the last page below 640 KiB");
        assert_eq!(kind(&b, 0xa_0000), Mmio, "the VGA window");
        assert_eq!(kind(&b, 0xb_8000), Mmio);
        // After reset the PAM registers send the whole ROM area to ROM: the BIOS's last
        // 128 KiB from 0xE0000, all ones below.
        for addr in (ROM_AREA..ONE_MIB).step_by(PAGE_SIZE) {
            assert_eq!(kind(&b, addr), Rom, "{addr:#x}");
        }
        assert_eq!(b.rom_page(0xc_0000 >> 12), Some(&[0xff; PAGE_SIZE]));
        assert_eq!(b.rom_page(0xe_0000 >> 12).map(|p| p[..4].to_vec()), Some(0x2_0000u32.to_le_bytes().to_vec()));
        assert_eq!(kind(&b, 0x10_0000), Mmio, "past the end of RAM");
        // The top of the 4 GiB space: the whole image; the page below it, nothing.
        assert_eq!(kind(&b, 0xfffc_0000), Rom);
        assert_eq!(kind(&b, 0xffff_f000), Rom);
        assert_eq!(kind(&b, 0xfffb_f000), Mmio);
        assert_eq!(b.rom_page(0xffff_f000 >> 12).map(|p| p[..4].to_vec()), Some(0x3_f000u32.to_le_bytes().to_vec()));
        assert_eq!(b.rom_page(0xfffb_f000 >> 12), None);
        // The local and I/O APICs, the linear framebuffer.
        assert_eq!(kind(&b, LAPIC_DEFAULT_BASE), Mmio);
        assert_eq!(kind(&b, IOAPIC_DEFAULT_BASE), Mmio);
        assert_eq!(kind(&b, b.vga.lfb_base().0), Mmio);
        assert_eq!(b.page_kind(1 << 20, RAM), Mmio, "past 4 GiB");

        // Shadowing, as SeaBIOS does it: F0000h read/write, C0000h-C3FFFh read-only,
        // C4000h-C7FFFh write-only (reads ROM, writes RAM: no kind but Mmio describes it).
        set_pam(&mut b, 0, 0x30);
        set_pam(&mut b, 1, 0x21);
        assert_eq!(kind(&b, 0xf_0000), Ram);
        assert_eq!(kind(&b, 0xf_f000), Ram);
        assert_eq!(kind(&b, 0xc_0000), RamReadOnly);
        assert_eq!(kind(&b, 0xc_3000), RamReadOnly);
        assert_eq!(kind(&b, 0xc_4000), Mmio);
        assert_eq!(kind(&b, 0xc_8000), Rom);
        // Shadow RAM past the end of RAM is nothing, not RAM.
        assert_eq!(b.page_kind(0xf_0000 >> 12, 0xc_0000), Mmio);
        assert_eq!(b.page_kind(0xc_0000 >> 12, 0xc_0000), Mmio);
    }

    /// Every kind but Mmio is a promise about what `mmio_read` and `mmio_write` do: check
    /// it against them byte by byte on the pages of the PC map.
    #[test]
    fn page_kinds_agree_with_mmio_reads_and_writes() {
        let mut b = board();
        with_bios(&mut b);
        set_pam(&mut b, 0, 0x10); // F0000h read-only shadow RAM
        set_pam(&mut b, 2, 0x23); // C8000h read/write, CC000h write-only
        let mut ram: Vec<u8> = (0..RAM).map(|i| (i * 7 + 3) as u8).collect();
        let pages = (0..0x100u32).chain(0xfffb_0000 >> 12..1 << 20);
        let mut seen = [0; 3];
        for page in pages {
            let kind = b.page_kind(page, RAM);
            if kind == PageKind::Mmio {
                continue;
            }
            let base = page << 12;
            let rom = b.rom_page(page).copied();
            for off in (0..PAGE_SIZE as u32).step_by(509) {
                let addr = base + off;
                let i = addr as usize;
                let before = ram.get(i).copied();
                let read = b.mmio_read(Phys(addr), IoSize::Byte, &ram) as u8;
                b.mmio_write(Phys(addr), IoSize::Byte, u32::from(!read), &mut ram);
                let after = ram.get(i).copied();
                match kind {
                    PageKind::Ram => {
                        assert_eq!(Some(read), before, "{addr:#x}");
                        assert_eq!(after, Some(!read), "{addr:#x}");
                        ram[i] = read;
                        seen[0] += 1;
                    }
                    PageKind::RamReadOnly => {
                        assert_eq!(Some(read), before, "{addr:#x}");
                        assert_eq!(after, before, "{addr:#x}");
                        seen[1] += 1;
                    }
                    PageKind::Rom => {
                        assert_eq!(Some(read), rom.map(|r| r[off as usize]), "{addr:#x}");
                        assert_eq!(after, before, "{addr:#x}");
                        assert_eq!(b.mmio_read(Phys(addr), IoSize::Byte, &ram) as u8, read);
                        seen[2] += 1;
                    }
                    PageKind::Mmio => unreachable!(),
                }
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "every kind checked: {seen:?}");
    }
}
