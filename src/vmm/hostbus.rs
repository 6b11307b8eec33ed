//! The bus the processor sees while the VMM runs one VM: host memory as direct RAM, the
//! VM's device window (host-physical pages above host RAM that the VM's SLT maps its
//! device memory to) routed to that VM's board, and the ports the VM's I/O bitmap lets
//! through routed there too — the VM's own devices, as if assigned to it. No interrupt
//! line: the dispatcher injects the VM's interrupts itself. An access through the window
//! or a port that leaves the VM's board with an interrupt to deliver (a self IPI, a
//! UART's THRE) ends the guest's run at once (a yield, which `Cpu::vm_run` turns into an
//! `EXTERNAL_INTERRUPT` exit), so the dispatcher can inject it or ask for the interrupt
//! window: a device the VM owned in hardware would raise its line as promptly.

use super::allocator::{HostMemory, PAGE};
use super::vm::Vm;
use crate::addr::Phys;
use crate::bus::{Bus, IoSize, StopRequest};
use crate::machine::Board;

/// What of one VM the processor may reach while it runs: everything but its VCB, which
/// the processor holds meanwhile.
pub struct HostBus<'a> {
    mem: &'a mut HostMemory,
    board: &'a mut Board,
    /// The VM's own MSRs (`Vm::msrs`).
    msrs: &'a mut alloc::collections::BTreeMap<u32, u64>,
    /// Device-window slots: the guest page each stands for.
    window: &'a [u32],
    window_first: u64,
    ram_base: u64,
    ram_len: usize,
    mmio: &'a mut u64,
    /// Host RAM pages (everything below is direct).
    pages: u32,
    /// The processor's retired count when the VM was entered, and the VM's clock then.
    entry_icount: u64,
    entry_clock: u64,
    /// An access raised one of the VM's interrupts: the run ends after the instruction.
    irq_raised: bool,
}

impl<'a> HostBus<'a> {
    /// The bus for running `vm`, and its VCB for `Cpu::vm_run`.
    pub fn new(mem: &'a mut HostMemory, vm: &'a mut Vm, entry_icount: u64) -> (Self, &'a mut crate::cpu::v386::Vcb) {
        let pages = mem.pages() as u32;
        let window_first = vm.window_first_page();
        let bus = HostBus {
            mem,
            board: &mut vm.board,
            msrs: &mut vm.msrs,
            window: &vm.window,
            window_first,
            ram_base: vm.ram_base,
            ram_len: vm.ram_len,
            mmio: &mut vm.counters.mmio,
            pages,
            entry_icount,
            entry_clock: vm.clock,
            irq_raised: false,
        };
        (bus, &mut vm.vcb)
    }

    /// Host memory, read-only (the software monitor reads its tables and the guest's
    /// through it).
    pub fn bytes(&self) -> &[u8] {
        &self.mem.bytes
    }

    /// The VM's devices (the software monitor takes its interrupts from them).
    pub fn board(&mut self) -> &mut Board {
        self.board
    }

    /// The VM's own MSRs and its devices (the software monitor's RDMSR and WRMSR).
    pub fn msrs_and_board(&mut self) -> (&mut alloc::collections::BTreeMap<u32, u64>, &mut Board) {
        (self.msrs, self.board)
    }

    /// The guest-physical address a window address stands for.
    fn window(&self, addr: Phys) -> Option<Phys> {
        let slot = (addr.page() as u64).checked_sub(self.window_first)?;
        let gpa_page = *self.window.get(slot as usize)?;
        Some(Phys((gpa_page << 12) | addr.page_offset()))
    }

    fn split(&mut self) -> (&mut Board, &mut [u8]) {
        let (base, len) = (self.ram_base as usize, self.ram_len);
        (&mut *self.board, &mut self.mem.bytes[base..base + len])
    }

    /// After a device access: did it leave an interrupt the VM had not had before?
    fn note_irq(&mut self, before: bool) {
        if !before && self.board.interrupt_pending() {
            self.irq_raised = true;
        }
    }
}

impl Bus for HostBus<'_> {
    #[inline]
    fn ram(&mut self) -> &mut [u8] {
        &mut self.mem.bytes
    }

    #[inline]
    fn is_direct(&self, page: u32) -> bool {
        page < self.pages
    }

    fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32 {
        let Some(gpa) = self.window(addr) else { return size.all_ones() };
        *self.mmio += 1;
        let (board, ram) = self.split();
        board.mmio_read(gpa, size, ram)
    }

    fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32) {
        let Some(gpa) = self.window(addr) else { return };
        *self.mmio += 1;
        let before = self.board.interrupt_pending();
        let (board, ram) = self.split();
        board.mmio_write(gpa, size, value, ram);
        self.note_irq(before);
    }

    fn io_in(&mut self, port: u16, size: IoSize) -> u32 {
        self.board.io_in(port, size)
    }

    fn io_out(&mut self, port: u16, size: IoSize, value: u32) {
        let before = self.board.interrupt_pending();
        let (board, ram) = self.split();
        board.io_out(port, size, value, ram);
        self.note_irq(before);
    }

    fn take_stop_request(&mut self) -> Option<StopRequest> {
        match self.board.take_stop_request() {
            None if core::mem::take(&mut self.irq_raised) => Some(StopRequest::Yield),
            r => r,
        }
    }

    fn sync(&mut self, icount: u64) {
        let t = self.entry_clock + icount.saturating_sub(self.entry_icount);
        self.board.sync(t);
    }

    fn take_memory_map_change(&mut self) -> bool {
        // The dispatcher remaps the VM's pages after the run (`Vm::remap`); host-physical
        // pages never change meaning.
        false
    }

    fn for_each_dirty_page(&mut self, f: &mut dyn FnMut(u32)) {
        // A DMA address past the VM's RAM wrote nothing (the board's DMA stays inside the
        // VM's RAM slice); its page number plus the base would name a host page of
        // someone else.
        let (base, pages) = ((self.ram_base / PAGE) as u32, (self.ram_len as u64 / PAGE) as u32);
        self.board.for_each_dirty_page(&mut |p| {
            if p < pages {
                f(base + p)
            }
        });
    }
}
