//! One virtual machine: its control block (the virtual processor), its devices (a whole
//! PC board of its own, the same models the bare machine uses), its memory as the
//! allocator gave it, and what the scheduler and the exit view know about it.

use super::allocator::{io_bitmap, AllocError, HostMemory, Owner, Slt, PAGE, WINDOW_BASE, WINDOW_PAGES};
use super::log::Counters;
use crate::cpu::v386::slt::bits;
use crate::cpu::v386::vcb::{exec, intercept, State};
use crate::cpu::v386::Vcb;
use crate::machine::{Board, Machine, PageKind};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Why a VM stopped for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmStop {
    /// The guest wrote this value to its isa-debug-exit port.
    DebugExit(u32),
    /// ACPI soft-off.
    PowerOff,
    /// A triple fault: the virtual processor shut down (the other VMs run on).
    TripleFault,
    /// HLT with interrupts off and nothing to wake it.
    DeadHalt,
    /// An exit the VMM does not handle, or a state it cannot enter; what happened.
    Error(String),
}

/// Where a VM is in the scheduler's eyes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmState {
    Runnable,
    /// HLT: waiting for an interrupt from its devices.
    Halted,
    Stopped(VmStop),
}

/// One VM.
#[derive(Serialize, Deserialize)]
pub struct Vm {
    pub id: u16,
    pub name: String,
    /// How the VMM runs it.
    pub technique: super::Technique,
    /// Techniques 2–4: the software monitor's state (the VCB is then unused: the guest's
    /// processor state is the monitor's world).
    pub monitor: Option<alloc::boxed::Box<crate::monitor::Monitor>>,
    /// Technique 1: the software processor the VMM interprets the guest on (its state is
    /// copied to the VCB's guest area after every turn, for the live view).
    pub emulated: Option<alloc::boxed::Box<crate::cpu::Cpu>>,
    /// The virtual processor: guest state, controls, last exit.
    pub vcb: Vcb,
    /// The VM's devices; its RAM is in host memory at `ram_base`.
    pub board: Board,
    pub ram_base: u64,
    pub ram_len: usize,
    pub slt: Slt,
    pub state: VmState,
    /// VM time as retired instructions (its devices' clock; idle time is in their Clock).
    pub clock: u64,
    /// The guest's TSC minus `clock` (wrapping): its idle time, and what it wrote to the
    /// TSC. The VMM loads the processor's TSC offset from it at each entry, so the guest's
    /// TSC counts its own time — not the other VMs' turns — as the PIT it reads does.
    pub tsc_ahead: u64,
    pub counters: Counters,
    /// ROM pages copied into host memory, by guest page.
    rom: BTreeMap<u32, u64>,
    /// Device-window slots: the guest page each maps, and the reverse.
    pub(crate) window: Vec<u32>,
    window_of: BTreeMap<u32, u32>,
    /// The VM's TLB tag must be flushed at the next entry (the SLT changed).
    pub flush_tlb: bool,
    /// MSRs the board does not own and the guest may write (IA32_MISC_ENABLE,
    /// IA32_BIOS_SIGN_ID), kept per VM.
    pub msrs: BTreeMap<u32, u64>,
}

/// The guest pages whose backing depends on the chipset (the VGA window, the ROM area
/// and PAM shadow RAM, and the 64 KiB the A20 gate folds): remapped when it changes.
const REMAP_PAGES: core::ops::Range<u32> = 0xa0..0x110;

impl Vm {
    /// The TSC offset that makes a processor whose retired count is `icount` read this
    /// VM's TSC: its clock plus `tsc_ahead`. Loaded at each entry, whatever the processor
    /// counted while other VMs ran.
    pub(crate) fn tsc_offset_at(&self, icount: u64) -> u64 {
        self.clock.wrapping_add(self.tsc_ahead).wrapping_sub(icount)
    }

    /// Take back the offset a run entered at `icount` (with [`Vm::tsc_offset_at`]) ended
    /// with: the guest may have written its TSC. Call it before `clock` counts the run.
    pub(crate) fn keep_tsc_offset(&mut self, offset: u64, icount: u64) {
        self.tsc_ahead = offset.wrapping_add(icount).wrapping_sub(self.clock);
    }

    /// Make a VM of `m`, a machine built from a spec (firmware loaded, disks attached, a
    /// kernel in RAM): its RAM moves into host memory, its board and processor state
    /// into the VM.
    pub fn from_machine(id: u16, name: String, m: Machine, mem: &mut HostMemory) -> Result<Vm, AllocError> {
        let owner = Owner::Vm(id);
        let ram_len = m.bus.ram.len();
        let ram_base = mem.alloc(ram_len as u64 / PAGE, owner)?;
        mem.bytes[ram_base as usize..ram_base as usize + ram_len].copy_from_slice(&m.bus.ram);
        let slt = Slt::new(mem, owner)?;
        let mut vcb = Vcb { guest: guest_state(&m), ..Default::default() };
        vcb.controls.vtag = id;
        vcb.controls.slt_root = slt.root;
        vcb.controls.io_bitmap = io_bitmap(mem, owner)?;
        vcb.controls.exec = exec::PTIMER | exec::FPU_SWAP;
        vcb.controls.intercepts = intercept::HLT;
        let mut vm = Vm {
            id,
            name,
            technique: super::Technique::V386,
            monitor: None,
            emulated: None,
            vcb,
            board: m.bus.board,
            ram_base,
            ram_len,
            slt,
            state: VmState::Runnable,
            clock: m.cpu.icount,
            tsc_ahead: m.cpu.msr.tsc_offset,
            counters: Counters::default(),
            rom: BTreeMap::new(),
            window: Vec::new(),
            window_of: BTreeMap::new(),
            flush_tlb: true,
            msrs: BTreeMap::new(),
        };
        for page in 0..(ram_len as u64 / PAGE) as u32 {
            vm.map_page(mem, page)?;
        }
        // The BIOS at the top of the 4 GiB space, where the processor starts.
        let bios_pages = (vm.board.bios.len() as u64 / PAGE) as u32;
        for page in (0x10_0000 - bios_pages)..0x10_0000 {
            vm.map_page(mem, page)?;
        }
        for page in REMAP_PAGES {
            vm.map_page(mem, page)?;
        }
        Ok(vm)
    }

    /// The guest's processor state as it is between turns: the VCB's guest-state area on
    /// V386 (and, copied there after each turn, the software processor's under
    /// emulation), the monitor's world (the real registers at ring 1) under the software
    /// monitor.
    pub fn processor_state(&self) -> &crate::cpu::v386::State {
        match &self.monitor {
            Some(m) => m.world(),
            None => &self.vcb.guest,
        }
    }

    /// The VM's RAM, indexed by guest-physical address.
    pub fn ram<'a>(&self, mem: &'a mut HostMemory) -> &'a mut [u8] {
        &mut mem.bytes[self.ram_base as usize..self.ram_base as usize + self.ram_len]
    }

    /// First host page of this VM's device window.
    pub fn window_first_page(&self) -> u64 {
        (WINDOW_BASE >> 12) + self.id as u64 * WINDOW_PAGES
    }

    /// Map guest page `page` as the board says it is backed (docs/v386.md §5.6 for A20):
    /// RAM read-write, read-only shadow RAM and ROM read and execute, device memory and
    /// holes into the device window.
    pub fn map_page(&mut self, mem: &mut HostMemory, page: u32) -> Result<(), AllocError> {
        let ram_pages = (self.ram_len as u64 / PAGE) as u32;
        // With the A20 gate closed, the 64 KiB above 1 MiB are the first 64 KiB again.
        let folded = if !self.board.a20_enabled() && (0x100..0x110).contains(&page) { page - 0x100 } else { page };
        let kind = self.board.page_kind(folded, self.ram_len);
        let ram_frame = |p: u32| (self.ram_base >> 12) + p as u64;
        match kind {
            PageKind::Ram if folded < ram_pages => {
                self.slt.map(mem, page as u64, ram_frame(folded), bits::RWX)?;
            }
            PageKind::RamReadOnly if folded < ram_pages => {
                self.slt.map(mem, page as u64, ram_frame(folded), bits::R | bits::X)?;
            }
            PageKind::Rom => {
                let frame = match self.rom.get(&folded) {
                    Some(f) => *f,
                    None => {
                        let at = mem.alloc(1, Owner::Vm(self.id))?;
                        if let Some(bytes) = self.board.rom_page(folded) {
                            mem.bytes[at as usize..(at + PAGE) as usize].copy_from_slice(bytes);
                        }
                        self.rom.insert(folded, at >> 12);
                        at >> 12
                    }
                };
                self.slt.map(mem, page as u64, frame, bits::R | bits::X)?;
            }
            _ => {
                let slot = match self.window_of.get(&folded) {
                    Some(s) => *s,
                    None => {
                        if self.window.len() as u64 >= WINDOW_PAGES {
                            // Every slot is in use: start again (a flush makes the old
                            // mappings fault in again when used).
                            for g in self.window.iter() {
                                self.slt.unmap(mem, *g as u64);
                            }
                            self.window.clear();
                            self.window_of.clear();
                            self.flush_tlb = true;
                        }
                        let s = self.window.len() as u32;
                        self.window.push(folded);
                        self.window_of.insert(folded, s);
                        s
                    }
                };
                self.slt.map(mem, page as u64, self.window_first_page() + slot as u64, bits::RWX)?;
            }
        }
        Ok(())
    }

    /// The chipset changed the memory map (PAM registers, the A20 gate): map the pages
    /// that depend on it again and flush the VM's TLB tag at the next entry.
    pub fn remap(&mut self, mem: &mut HostMemory) -> Result<(), AllocError> {
        for page in REMAP_PAGES {
            self.slt.unmap(mem, page as u64);
            self.map_page(mem, page)?;
        }
        self.flush_tlb = true;
        Ok(())
    }
}

/// The processor state of a freshly built machine as a guest-state area. A bare `Cpu`
/// keeps real-mode caches in LDTR and TR; protected-mode guests (a kernel started at its
/// 32-bit entry) get the reset state's LDTR and TR instead, which the entry checks accept.
fn guest_state(m: &Machine) -> State {
    let mut g = m.cpu.capture_state();
    let reset = State::default();
    if g.cr0 & crate::cpu::cr0::PE != 0 {
        if g.ldtr.access & 0x1f != 2 {
            g.ldtr = reset.ldtr;
        }
        if !matches!(g.tr.access & 0x1f, 3 | 11) {
            g.tr = reset.tr;
        }
        for s in g.segs.iter_mut() {
            if s.valid {
                s.access |= crate::cpu::seg::access::ACCESSED;
            }
        }
    }
    g
}
