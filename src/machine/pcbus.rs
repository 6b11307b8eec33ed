//! The PC's bus: what the CPU sees through [`Bus`] — one machine's RAM together with its
//! [`Board`] (firmware, devices, the memory and port maps, interrupt wiring; see
//! `board.rs`). RAM is kept apart from the board because under a VMM it is not the
//! board's: several boards share one host memory. Here it is simply owned, and every
//! access the CPU does not make to RAM directly goes to the board with the RAM passed in.
//!
//! [`BoardBus`] is the same with the RAM lent: a VM's slice of host memory, when the VMM
//! runs the VM on a software processor of its own (the emulation technique).
//!
//! [`PcBus`] dereferences to its [`Board`], so the machine and its users reach the devices
//! as fields of the bus (`m.bus.com1`, `m.bus.rtc`).

use super::board::Board;
use super::clock::Clock;
use crate::addr::Phys;
use crate::bus::{Bus, IoSize, StopRequest};
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};
use serde::{Deserialize, Serialize};

/// RAM and the board: the PC as the CPU sees it.
#[derive(Serialize, Deserialize)]
pub struct PcBus {
    /// Guest-physical RAM from address 0.
    #[serde(with = "crate::snapshot::sparse")]
    pub ram: Vec<u8>,
    pub board: Board,
}

impl PcBus {
    pub fn new(ram_bytes: usize, clock: Clock, debug_exit_port: Option<u16>, rtc_start_unix: u64) -> Self {
        Self { ram: alloc::vec![0; ram_bytes], board: Board::new(ram_bytes, clock, debug_exit_port, rtc_start_unix) }
    }
}

impl Deref for PcBus {
    type Target = Board;

    #[inline]
    fn deref(&self) -> &Board {
        &self.board
    }
}

impl DerefMut for PcBus {
    #[inline]
    fn deref_mut(&mut self) -> &mut Board {
        &mut self.board
    }
}

/// RAM lent by someone else with a board: the PC as a software processor of the VMM sees
/// one VM (`crate::vmm`, the emulation technique), its RAM a slice of host memory.
pub struct BoardBus<'a> {
    /// Guest-physical RAM from address 0.
    pub ram: &'a mut [u8],
    pub board: &'a mut Board,
}

/// [`Bus`] for a type with `ram` (RAM from guest-physical 0, as bytes) and `board`
/// fields: the same wiring whether the RAM is owned ([`PcBus`]) or lent ([`BoardBus`]).
macro_rules! board_bus {
    ($t:ty) => {
        impl Bus for $t {
            #[inline]
            fn ram(&mut self) -> &mut [u8] {
                &mut self.ram
            }

            #[inline]
            fn is_direct(&self, page: u32) -> bool {
                self.board.is_direct(page, self.ram.len())
            }

            #[inline]
            fn is_direct_read(&self, page: u32) -> bool {
                self.board.is_direct_read(page, self.ram.len())
            }

            fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32 {
                self.board.mmio_read(addr, size, &self.ram)
            }

            fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32) {
                self.board.mmio_write(addr, size, value, &mut self.ram)
            }

            fn io_in(&mut self, port: u16, size: IoSize) -> u32 {
                self.board.io_in(port, size)
            }

            fn io_out(&mut self, port: u16, size: IoSize, value: u32) {
                self.board.io_out(port, size, value, &mut self.ram)
            }

            fn sync(&mut self, icount: u64) {
                self.board.sync(icount)
            }

            fn take_stop_request(&mut self) -> Option<StopRequest> {
                self.board.take_stop_request()
            }

            fn interrupt_pending(&self) -> bool {
                self.board.interrupt_pending()
            }

            fn acknowledge_interrupt(&mut self) -> Option<u8> {
                self.board.acknowledge_interrupt()
            }

            fn rdmsr(&mut self, index: u32) -> Option<u64> {
                self.board.rdmsr(index)
            }

            fn wrmsr(&mut self, index: u32, value: u64) -> Option<bool> {
                self.board.wrmsr(index, value)
            }

            fn a20_enabled(&self) -> bool {
                self.board.a20_enabled()
            }

            fn take_memory_map_change(&mut self) -> bool {
                self.board.take_memory_map_change()
            }

            fn for_each_dirty_page(&mut self, f: &mut dyn FnMut(u32)) {
                self.board.for_each_dirty_page(f)
            }
        }
    };
}

board_bus!(PcBus);
board_bus!(BoardBus<'_>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{ClockMode, PageKind};

    /// The bus hands its own RAM to the board: shadow RAM written through MMIO once PAM
    /// allows it lands in `ram`, and the CPU's direct pages are the board's RAM pages.
    #[test]
    fn the_bus_passes_its_ram_to_the_board() {
        let mut b = PcBus::new(2 << 20, Clock::new(ClockMode::Deterministic), None, 0);
        // PAM0 (59h, host bridge 00.0): F0000h-FFFFFh write-only to RAM.
        b.io_out(0xcf8, IoSize::Dword, 0x8000_0058);
        b.io_out(0xcfd, IoSize::Byte, 0x20);
        assert!(b.take_memory_map_change());
        b.mmio_write(Phys(0xf_fff0), IoSize::Word, 0xbeef);
        assert_eq!(b.ram[0xf_fff0..0xf_fff2], [0xef, 0xbe]);
        for page in [0, 0x9f, 0xa0, 0xc0, 0xf0, 0xff, 0x100, 0x1ff, 0x200, 0xfffff] {
            assert_eq!(b.is_direct(page), b.page_kind(page, b.ram.len()) == PageKind::Ram, "{page:#x}");
        }
    }
}
