//! The narrow trait through which the CPU reaches the rest of the machine: physical memory,
//! I/O ports and the interrupt line. The CPU is generic over it, so tests plug in
//! [`FlatBus`] (flat RAM, a port log) and the PC plugs in its device map, and the compiler
//! inlines each.

use crate::addr::Phys;
use alloc::vec;
use alloc::vec::Vec;

/// Width of an I/O port access (SDM Vol. 1 §18.2: 8-, 16- or 32-bit ports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IoSize {
    Byte = 1,
    Word = 2,
    Dword = 4,
}

impl IoSize {
    /// All ones of the access's width: what a read nothing claims returns (the floating
    /// ISA bus, PCI master abort).
    pub const fn all_ones(self) -> u32 {
        match self {
            IoSize::Byte => 0xff,
            IoSize::Word => 0xffff,
            IoSize::Dword => 0xffff_ffff,
        }
    }
}

/// Why a device asks the CPU to stop running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopRequest {
    /// isa-debug-exit: the guest wrote this value.
    DebugExit(u32),
    /// The platform's reset line (8042 command 0xFE, port 0x92 fast reset).
    Reset,
    /// ACPI soft-off (the guest powered the machine down).
    PowerOff,
    /// Not a stop: a timer was programmed to fire sooner than it would have, or the
    /// platform must act on a CPU line now (port F0h acknowledging FERR#). The CPU ends
    /// its run slice after the instruction so the machine looks at its devices again and
    /// recomputes how long the next slice may be; the machine then simply goes on.
    Yield,
}

/// Everything the CPU needs from its platform.
pub trait Bus {
    /// Plain RAM that the CPU may read and write directly, starting at physical address 0.
    /// Pages for which [`Bus::is_direct`] is false are never touched through it.
    fn ram(&mut self) -> &mut [u8];
    /// Whether the 4 KiB physical page `page` is plain RAM inside [`Bus::ram`]: the CPU
    /// caches the answer in its TLB, so it must not change without a TLB flush.
    fn is_direct(&self, page: u32) -> bool;
    /// Whether reads of page `page` may come straight from [`Bus::ram`] even though writes
    /// may not (shadow RAM made read-only by the chipset: writes go to `mmio_write`).
    /// Cached by the TLB like [`Bus::is_direct`].
    fn is_direct_read(&self, page: u32) -> bool {
        self.is_direct(page)
    }
    /// Memory-mapped read of a page that is not direct (ROM, MMIO, unmapped).
    fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32;
    /// Memory-mapped write of a page that is not direct.
    fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32);
    /// `IN` from a port.
    fn io_in(&mut self, port: u16, size: IoSize) -> u32;
    /// `OUT` to a port.
    fn io_out(&mut self, port: u16, size: IoSize, value: u32);
    /// A device asked the run loop to stop or to end its slice (checked after each
    /// instruction that did port I/O or wrote to MMIO).
    fn take_stop_request(&mut self) -> Option<StopRequest> {
        None
    }
    /// The CPU's retired-instruction count, given before each port or MMIO access so
    /// clocked devices answer for exactly that moment.
    fn sync(&mut self, _icount: u64) {}
    /// Whether the interrupt controller has an interrupt for the CPU (INTR line).
    fn interrupt_pending(&self) -> bool {
        false
    }
    /// Acknowledge the pending interrupt: the controller answers with its vector.
    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        None
    }
    /// A model-specific register the platform owns (the local APIC's base, IA32_APIC_BASE):
    /// its value, or None when the platform has no such MSR (the CPU raises #GP).
    fn rdmsr(&mut self, _index: u32) -> Option<u64> {
        None
    }
    /// Write a platform MSR: None when there is no such MSR, Some(false) when the value
    /// sets reserved bits (both raise #GP).
    fn wrmsr(&mut self, _index: u32, _value: u64) -> Option<bool> {
        None
    }
    /// The A20 gate (8042 output port bit 1 OR port 0x92 bit 1 on a PC): when closed,
    /// physical address bit 20 is forced to 0. A change must come with
    /// [`Bus::take_memory_map_change`] so the CPU refills its TLB.
    fn a20_enabled(&self) -> bool {
        true
    }
    /// The memory map changed (which pages are direct RAM): the CPU flushes its TLB and
    /// cached code. Called after port I/O and MMIO writes.
    fn take_memory_map_change(&mut self) -> bool {
        false
    }
    /// Pages of RAM that changed behind the CPU's back (DMA) since the last call: the CPU
    /// drops the code it cached from them. Called after port I/O and MMIO writes.
    fn for_each_dirty_page(&mut self, _f: &mut dyn FnMut(u32)) {}
    /// Called by the CPU after each slice of instructions so clocked devices catch up.
    fn tick(&mut self, _instructions: u64) {}
}

/// Flat RAM with no devices: unit tests and the fuzzer plug this in. Port writes are logged,
/// port reads return all ones (an empty ISA bus), and a write to `exit_port` stops the run.
pub struct FlatBus {
    pub mem: Vec<u8>,
    pub io_log: Vec<(u16, u32)>,
    pub exit_port: Option<u16>,
    pub stop: Option<u32>,
}

impl FlatBus {
    pub fn new(size: usize) -> Self {
        Self { mem: vec![0; size], io_log: Vec::new(), exit_port: None, stop: None }
    }
}

impl Bus for FlatBus {
    #[inline]
    fn ram(&mut self) -> &mut [u8] {
        &mut self.mem
    }
    #[inline]
    fn is_direct(&self, page: u32) -> bool {
        (page as usize) < self.mem.len() >> 12
    }
    fn mmio_read(&mut self, _addr: Phys, size: IoSize) -> u32 {
        match size {
            IoSize::Byte => 0xff,
            IoSize::Word => 0xffff,
            IoSize::Dword => 0xffff_ffff,
        }
    }
    fn mmio_write(&mut self, _addr: Phys, _size: IoSize, _value: u32) {}
    fn io_in(&mut self, _port: u16, size: IoSize) -> u32 {
        self.mmio_read(Phys(0), size)
    }
    fn io_out(&mut self, port: u16, _size: IoSize, value: u32) {
        self.io_log.push((port, value));
        if Some(port) == self.exit_port {
            self.stop = Some(value);
        }
    }
    fn take_stop_request(&mut self) -> Option<StopRequest> {
        self.stop.take().map(StopRequest::DebugExit)
    }
}
