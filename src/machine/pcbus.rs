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
//! access ([`Bus::sync`]), so timers read at exactly the time the instruction runs.

use super::clock::Clock;
use crate::addr::Phys;
use crate::bus::{Bus, IoSize, StopRequest};
use crate::devices::debugcon::{DebugCon, DEBUGCON_PORT};
use crate::devices::debugexit::DebugExit;
use crate::devices::i8042::{AUX_IRQ, I8042, I8042_DATA_PORT, I8042_STATUS_PORT, KEYBOARD_IRQ};
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

/// Start of the legacy VGA window and of the ROM area, and the end of the first megabyte.
const VGA_WINDOW: u32 = 0xa_0000;
const ROM_AREA: u32 = 0xc_0000;
const ONE_MIB: u32 = 0x10_0000;

/// RAM, firmware and devices: the PC as the CPU sees it.
pub struct PcBus {
    pub ram: Vec<u8>,
    /// The system BIOS image (mapped below 4 GiB and, its last 128 KiB, below 1 MiB).
    pub bios: Vec<u8>,
    /// Option ROMs copied into the 0xC0000 area by the machine, as (address, bytes).
    pub option_roms: Vec<(u32, Vec<u8>)>,
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
    pub debugcon: DebugCon,
    /// What the firmware wrote to [`FIRMWARE_LOG_PORT`].
    pub firmware_log: DebugCon,
    pub debug_exit: Option<DebugExit>,
    stop: Option<u32>,
}

impl PcBus {
    pub fn new(ram_bytes: usize, clock: Clock, debug_exit_port: Option<u16>, rtc_start_unix: u64) -> Self {
        Self {
            ram: alloc::vec![0; ram_bytes],
            bios: Vec::new(),
            option_roms: Vec::new(),
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
            debugcon: DebugCon::default(),
            firmware_log: DebugCon::default(),
            debug_exit: debug_exit_port.map(DebugExit::new),
            stop: None,
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

    /// Bring the clocked devices up to now and route every interrupt output to the PIC.
    pub fn update(&mut self) {
        let now = self.now();
        if self.pit.advance(now) > 0 {
            // Each rising edge of counter 0's OUT is an IRQ0 request; several edges since
            // the last look collapse into one, as the 8259's edge latch does.
            self.pic.set_irq(PIT_IRQ, true);
            self.pic.set_irq(PIT_IRQ, false);
        }
        self.rtc.advance(now);
        self.com1.advance(now);
        self.com2.advance(now);
        self.kbd.advance(now);
        self.route_irqs();
    }

    /// Level-triggered outputs to the PIC's inputs.
    fn route_irqs(&mut self) {
        self.pic.set_irq(KEYBOARD_IRQ, self.kbd.irq1());
        self.pic.set_irq(AUX_IRQ, self.kbd.irq12());
        self.pic.set_irq(COM1_IRQ, self.com1.irq());
        self.pic.set_irq(COM2_IRQ, self.com2.irq());
        self.pic.set_irq(RTC_IRQ, self.rtc.irq());
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
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a device asked for a CPU reset since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        let kbd = self.kbd.take_reset_request();
        let p92 = self.port92.take_reset_request();
        kbd || p92
    }

    /// The byte at `addr` of the ROM area or the BIOS alias below 4 GiB, if a ROM is there.
    fn rom_byte(&self, addr: u32) -> Option<u8> {
        let len = self.bios.len() as u32;
        if len != 0 && addr >= 0u32.wrapping_sub(len) {
            return Some(self.bios[(addr - 0u32.wrapping_sub(len)) as usize]);
        }
        if (ROM_AREA..ONE_MIB).contains(&addr) {
            // The BIOS's last 128 KiB (or all of a smaller image) end at 1 MiB.
            let alias = len.min(0x2_0000);
            if alias != 0 && addr >= ONE_MIB - alias {
                return Some(self.bios[(len - (ONE_MIB - addr)) as usize]);
            }
            for (base, rom) in &self.option_roms {
                if addr >= *base && ((addr - base) as usize) < rom.len() {
                    return Some(rom[(addr - base) as usize]);
                }
            }
        }
        None
    }

    fn mem_byte(&mut self, addr: u32) -> u8 {
        if let Some(b) = self.rom_byte(addr) {
            return b;
        }
        self.ram.get(addr as usize).copied().unwrap_or(0xff)
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
        (page as usize) < (self.ram.len() >> 12) && !(VGA_WINDOW..ONE_MIB).contains(&addr)
    }

    fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32 {
        let a = addr.0;
        if self.vga.claims(addr) {
            return self.vga.mmio_read(addr, size);
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
        // ROM is read-only; RAM under the ROM area (shadow RAM) takes the write.
        for i in 0..size as u32 {
            let b = a.wrapping_add(i);
            if self.rom_byte(b).is_none() {
                if let Some(r) = self.ram.get_mut(b as usize) {
                    *r = (value >> (8 * i)) as u8;
                }
            }
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
            PIT_COUNTER0..=PIT_CONTROL | PORT_B => self.pit.write(port, size, value, now),
            I8042_DATA_PORT | I8042_STATUS_PORT => self.kbd.write(port, size, value),
            RTC_INDEX | RTC_DATA => self.rtc.write(port, size, value, now),
            PORT92 => self.port92.write(port, size, value),
            DEBUGCON_PORT => self.debugcon.write(value as u8),
            FIRMWARE_LOG_PORT => self.firmware_log.write(value as u8),
            p if (COM1_BASE..COM1_BASE + UART_PORT_COUNT).contains(&p) => self.com1.write(port, size, value),
            p if (COM2_BASE..COM2_BASE + UART_PORT_COUNT).contains(&p) => self.com2.write(port, size, value),
            p if Vga::claims_port(p) => self.vga.write(port, size, value),
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
        self.take_reset_request().then_some(StopRequest::Reset)
    }

    fn interrupt_pending(&self) -> bool {
        self.pic.intr()
    }

    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let v = self.pic.acknowledge();
        Some(v)
    }
}

fn all_ones(size: IoSize) -> u32 {
    match size {
        IoSize::Byte => 0xff,
        IoSize::Word => 0xffff,
        IoSize::Dword => 0xffff_ffff,
    }
}
