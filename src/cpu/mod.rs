//! The processor: an i386-line integer core up to the P6 class (Pentium Pro / II).
//!
//! Where behaviour lives:
//! - [`decode`]: bytes to [`decode::Instr`] (shared with the disassembler and the VMM).
//! - `exec/`: what each instruction does, grouped by kind.
//! - `mem.rs`: segmented and linear memory access, code fetch, the stack.
//! - `mmu.rs`: paging (32-bit with PSE and PGE; PAE with execute-disable) and the TLB.
//! - `seg.rs`: descriptors, segment-register loads and their privilege checks.
//! - `interrupt.rs`: delivery of exceptions and interrupts (real mode, gates, V86).
//! - `task.rs`: task switches through the TSS.
//! - `msr.rs`, `cpuid.rs`: model-specific registers and CPUID.
//!
//! The CPU reaches memory and ports only through [`Bus`]; it is generic over it so the
//! compiler inlines the PC's bus (or the tests' flat RAM) into the interpreter loop.

use serde::{Deserialize, Serialize};
mod block;
pub mod cpuid;
pub mod decode;
pub mod exception;
mod exec;
mod fast;
pub mod flags;
pub mod fpu;
pub mod icache;
mod interrupt;
mod mem;
pub mod mmu;
pub mod msr;
mod psi;
pub mod seg;
mod task;
pub mod v386;

use crate::bus::{Bus, StopRequest};
pub use exception::Exception;
use flags::Flags;
use mmu::Tlb;
pub use seg::Seg;

/// General-purpose register numbers (SDM Vol. 2A Table 2-1, "r32" column).
pub const EAX: usize = 0;
pub const ECX: usize = 1;
pub const EDX: usize = 2;
pub const EBX: usize = 3;
pub const ESP: usize = 4;
pub const EBP: usize = 5;
pub const ESI: usize = 6;
pub const EDI: usize = 7;

pub use decode::{CS, DS, ES, FS, GS, SS};

/// CR0 bits (SDM Vol. 3A §2.5).
pub mod cr0 {
    pub const PE: u32 = 1 << 0;
    pub const MP: u32 = 1 << 1;
    pub const EM: u32 = 1 << 2;
    pub const TS: u32 = 1 << 3;
    pub const ET: u32 = 1 << 4;
    pub const NE: u32 = 1 << 5;
    pub const WP: u32 = 1 << 16;
    pub const AM: u32 = 1 << 18;
    pub const NW: u32 = 1 << 29;
    pub const CD: u32 = 1 << 30;
    pub const PG: u32 = 1 << 31;
}

/// CR4 bits (SDM Vol. 3A §2.5). Only those this CPU implements may be set.
pub mod cr4 {
    pub const VME: u32 = 1 << 0;
    pub const PVI: u32 = 1 << 1;
    pub const TSD: u32 = 1 << 2;
    pub const DE: u32 = 1 << 3;
    pub const PSE: u32 = 1 << 4;
    pub const PAE: u32 = 1 << 5;
    pub const MCE: u32 = 1 << 6;
    pub const PGE: u32 = 1 << 7;
    pub const PCE: u32 = 1 << 8;
    /// Privileged sensitive instructions, the V386 extension's first change (docs/v386.md
    /// §3.1): bit 15, reserved on every Intel and AMD generation so far.
    pub const PSI: u32 = 1 << 15;
    /// The bits a MOV to CR4 may set; others raise #GP(0).
    pub const WRITABLE: u32 = TSD | DE | PSE | PAE | MCE | PGE | PCE | PSI;
}

/// Why [`Cpu::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The instruction budget is spent.
    BudgetSpent,
    /// HLT with no interrupt that could wake the CPU.
    Halted,
    /// Triple fault: the processor shut down (SDM Vol. 3A §6.15, "Interrupt 8").
    Shutdown,
    /// A device asked to stop (isa-debug-exit), with the value the guest wrote.
    DebugExit(u32),
    /// A device pulsed the reset line (8042 command 0xFE, port 0x92): the machine resets.
    Reset,
    /// The guest turned the machine off (ACPI soft-off).
    PowerOff,
    /// The slice ended early so the platform can look at its devices now: a device asked
    /// for it ([`StopRequest::Yield`]: a timer was programmed to fire sooner) or the FPU's
    /// FERR# output rose. Nothing stopped; the machine's run loop goes on at once and
    /// never returns this.
    Yield,
    /// A guest entered by [`Cpu::vm_run`] exited (docs/v386.md §8); only `vm_run` sees it.
    VmExit,
    /// [`Cpu::trap_events`] is set and an exception, interrupt or INT n was about to be
    /// delivered: nothing was pushed, the event is in [`Cpu::trapped`] (a software
    /// monitor's ring-0 handlers, `crate::monitor`).
    HostTrap,
}

/// An event [`Cpu::trap_events`] handed to the host instead of delivering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapEvent {
    pub vector: u8,
    pub kind: TrapKind,
    /// The error code the processor would have pushed (SDM Vol. 3A §6.13).
    pub error: Option<u16>,
}

/// What raised a [`TrapEvent`]; it decides EIP (past INT n, at a faulting instruction)
/// and the gate's privilege check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrapKind {
    /// A processor exception (EIP at the instruction for faults, past it for traps).
    Exception,
    /// INT n, INT3 or INTO (EIP past the instruction): the gate's DPL must be >= CPL.
    Software,
    /// INT1 (ICEBP).
    Icebp,
    /// An external interrupt the interrupt controller acknowledged.
    External,
}

/// A descriptor-table register (GDTR, IDTR: SDM Vol. 3A §2.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReg {
    pub base: u32,
    pub limit: u16,
}

/// The x87 FPU's state (SDM Vol. 1 §8.1): see [`fpu::Fpu`].
pub type FpuState = fpu::Fpu;

/// How an instruction ended when it did not simply fall through to the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A guest exception, delivered through the IDT.
    Exc(Exception),
    /// HLT executed.
    Halt,
    /// A device requested a stop during an I/O instruction.
    Stop(StopRequest),
    /// Only inside a block ([`Cpu::run_op`]): the instruction completed, but it wrote to
    /// a page holding cached code or touched MMIO, so the block must end after it.
    Break,
    /// A VM exit was recorded (`Cpu::record_exit`, docs/v386.md §8): the instruction is
    /// unwound like a fault and the run loop completes the exit.
    VmExit,
    /// [`Cpu::trap_events`]: the event is in [`Cpu::trapped`] for the host.
    HostTrap,
}

impl From<Exception> for Fault {
    /// A plain wrap: `Exception::VmExit` (a nested page fault on the memory layer's
    /// paths) stays `Fault::Exc(Exception::VmExit)` and is completed by `Cpu::raise`,
    /// so the `?` on every memory access costs no test. (measured: a match here took the
    /// wasm register loop from 227 to 76 M instructions/s in node 20.)
    #[inline]
    fn from(e: Exception) -> Self {
        Fault::Exc(e)
    }
}

pub(crate) type Res<T> = Result<T, Fault>;

/// The architectural (and a little micro-architectural) state of one processor.
#[derive(Clone, Serialize, Deserialize)]
pub struct Cpu {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub regs: [u32; 8],
    pub eip: u32,
    pub flags: Flags,
    /// ES, CS, SS, DS, FS, GS with their descriptor caches.
    pub segs: [Seg; 6],
    pub ldtr: Seg,
    pub tr: Seg,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    /// The four PDPTEs PAE paging uses, loaded from CR3 by MOV to CR0/CR3/CR4 and task
    /// switches (SDM Vol. 3A §4.4.1); not re-read from memory on TLB misses.
    pub pdpte: [u64; 4],
    /// DR0–DR7 (stored; breakpoints are not acted on yet).
    pub dr: [u32; 8],
    /// Current privilege level (SDM Vol. 3A §5.5): CS.RPL in protected mode, 3 in V86.
    pub cpl: u8,
    pub msr: msr::Msrs,
    pub fpu: FpuState,
    /// Instructions retired since reset: the clock of deterministic mode.
    pub icount: u64,
    /// The platform has a local APIC (CPUID.1:EDX bit 9 reports it); set by the machine.
    /// The APIC itself is a device on the bus (devices/lapic.rs).
    pub apic_present: bool,
    /// HLT executed and no interrupt taken since.
    pub halted: bool,
    /// Interrupts are inhibited for one instruction (after STI, MOV SS, POP SS).
    pub(crate) inhibit_irq: bool,
    /// Not saved (nor the caches below): derived from memory and rebuilt as the guest
    /// runs, so a restored processor starts with them empty (`crate::snapshot`).
    #[serde(skip)]
    pub tlb: Tlb,
    /// Decoded instructions by physical address.
    #[serde(skip)]
    pub icache: icache::ICache,
    /// EIP of the instruction being executed (faults report it).
    pub(crate) start_eip: u32,
    /// The current instruction did port I/O or wrote to MMIO: check the bus for a stop
    /// request, a memory-map change and pages written by DMA.
    pub(crate) did_io: bool,
    /// The run slice is to end after the current instruction ([`StopReason::Yield`]).
    pub(crate) end_slice: bool,
    /// Set by a write to a page holding cached code and by MMIO: the block being run
    /// must stop after the current instruction. Not saved: it follows the code cache,
    /// which a restore empties, and each block clears it before it runs.
    #[serde(skip)]
    pub(crate) break_block: bool,
    /// V386 mode (docs/v386.md §5): `Some` while a guest runs (EFLAGS.VX = 1).
    pub(crate) v386: Option<alloc::boxed::Box<v386::Active>>,
    /// The TLBs of guest tags not in use (§6.5), most recently used last.
    #[serde(skip)]
    pub(crate) tlb_banks: alloc::vec::Vec<(u16, Tlb)>,
    /// The V386 state box of the last guest, kept for the next entry (no allocation per
    /// round trip); after a Rust host's exit it holds the VCB [`Cpu::vm_run`] hands back.
    /// Not saved: every entry overwrites what it holds.
    #[serde(skip)]
    pub(crate) vx_spare: Option<alloc::boxed::Box<v386::Active>>,
    /// EIP after the instruction being executed (an exit's instruction length).
    pub(crate) exec_eip: u32,
    /// The access in progress is an implicit system access (descriptor tables, TSS): the
    /// nested-page-fault qualification says so (Table 8-5 bit 10).
    pub(crate) sys_access: bool,
    /// Hand every exception, interrupt and INT n to the host instead of delivering it
    /// ([`StopReason::HostTrap`]), outside V386 mode: the hardware of a classic x86 whose
    /// IDT, owned by a monitor, sends every event to the monitor's ring-0 code — here
    /// that code is Rust (`crate::monitor`). Not saved: the monitor is not (yet).
    #[serde(skip)]
    pub trap_events: bool,
    /// The event the last [`StopReason::HostTrap`] stopped for.
    #[serde(skip)]
    pub trapped: Option<TrapEvent>,
}

impl Default for Cpu {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpu {
    /// A processor in its reset state (SDM Vol. 3A §9.1.1, Table 9-1): real mode,
    /// CS:IP = F000:FFF0 with CS base FFFF0000.
    pub fn new() -> Self {
        let mut c = Cpu {
            regs: [0; 8],
            eip: 0xfff0,
            flags: Flags::default(),
            segs: [Seg::real(0); 6],
            // SDM Vol. 3A Table 9-1: LDTR and TR are "present, R/W" with base 0 and limit
            // FFFFH after reset; their types are an LDT and a busy 32-bit TSS, as VT-x
            // requires of a guest's LDTR and TR and as QEMU resets them.
            ldtr: Seg { sel: 0, base: 0, limit: 0xffff, access: 0x82, flags: 0, valid: true },
            tr: Seg { sel: 0, base: 0, limit: 0xffff, access: 0x8b, flags: 0, valid: true },
            gdtr: TableReg { base: 0, limit: 0xffff },
            idtr: TableReg { base: 0, limit: 0xffff },
            cr0: cr0::ET | cr0::CD | cr0::NW,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            pdpte: [0; 4],
            dr: [0, 0, 0, 0, 0xffff_0ff0, 0x400, 0xffff_0ff0, 0x400],
            cpl: 0,
            msr: msr::Msrs::default(),
            fpu: FpuState::default(),
            icount: 0,
            apic_present: false,
            halted: false,
            inhibit_irq: false,
            tlb: Tlb::new(),
            icache: icache::ICache::new(),
            start_eip: 0,
            did_io: false,
            end_slice: false,
            break_block: false,
            v386: None,
            tlb_banks: alloc::vec::Vec::new(),
            vx_spare: None,
            exec_eip: 0,
            sys_access: false,
            trap_events: false,
            trapped: None,
        };
        c.segs[CS as usize] = Seg::real(0xf000);
        c.segs[CS as usize].base = 0xffff_0000;
        c.regs[EDX] = cpuid::SIGNATURE;
        c
    }

    /// RESET# (SDM Vol. 3A §9.1, Table 9-1): the power-on state again, with the retired
    /// count kept (the machine's time goes on) and the local APIC still present; decoded
    /// code is dropped.
    pub fn reset(&mut self) {
        let icount = self.icount;
        *self = Cpu::new();
        self.icount = icount;
        self.apic_present = true;
        self.icache.invalidate_all();
    }

    /// Real mode at `cs:ip`, every other segment 0, interrupts off.
    pub fn start_real(&mut self, cs: u16, ip: u16) {
        let (icount, apic) = (self.icount, self.apic_present);
        *self = Cpu::new();
        self.icount = icount;
        self.apic_present = apic;
        self.cr0 = cr0::ET;
        self.segs = [Seg::real(0); 6];
        self.segs[CS as usize] = Seg::real(cs);
        self.eip = ip as u32;
        self.regs = [0; 8];
    }

    /// 32-bit protected mode with flat ring-0 segments in the caches (code 0x08, data 0x10).
    pub fn start_flat32(&mut self, entry: u32, esp: u32) {
        self.start_real(0, 0);
        self.cr0 |= cr0::PE;
        self.segs = [Seg::flat32(0x10, false); 6];
        self.segs[CS as usize] = Seg::flat32(0x08, true);
        self.eip = entry;
        self.regs[ESP] = esp;
        self.tlb.flush_all();
    }

    /// Protected mode is on (CR0.PE), V86 included.
    #[inline]
    pub fn protected(&self) -> bool {
        self.cr0 & cr0::PE != 0
    }

    /// Virtual-8086 mode (EFLAGS.VM in protected mode).
    #[inline]
    pub fn v86(&self) -> bool {
        self.flags.vm()
    }

    /// Protected mode and not V86: where descriptors and privilege checks apply.
    #[inline]
    pub fn pmode(&self) -> bool {
        self.protected() && !self.v86()
    }

    /// The code segment's default operand/address size is 32 bits.
    #[inline]
    pub fn code32(&self) -> bool {
        self.segs[CS as usize].big()
    }

    /// The stack is addressed with ESP (SS.B set), else SP.
    #[inline]
    pub fn stack32(&self) -> bool {
        self.segs[SS as usize].big()
    }

    /// Run for at most `budget` steps (an instruction retired or an exception delivered)
    /// or until something stops the processor.
    pub fn run<B: Bus>(&mut self, bus: &mut B, budget: u64) -> StopReason {
        let ram_len = bus.ram().len();
        self.icache.fit(ram_len);
        // The blocks are held here for the whole run, so running one borrows them from a
        // local rather than from `self` (which every instruction changes).
        let mut blocks = core::mem::take(&mut self.icache.blocks);
        let start = self.icount;
        // The budget counts retired instructions and delivered exceptions alike, so a
        // guest whose handler faults forever still returns control to the host.
        let mut remaining = budget;
        let reason = loop {
            if remaining == 0 {
                break StopReason::BudgetSpent;
            }
            remaining -= 1;
            // Steps this iteration may take: the budget, and in V386 mode the preemption
            // timer, which also takes the asynchronous exits here (docs/v386.md §10).
            let mut allowed = remaining + 1;
            if self.v386.is_some() {
                match self.vx_boundary(bus) {
                    Ok(cap) => allowed = allowed.min(cap),
                    Err(None) => continue,
                    Err(Some(r)) => break r,
                }
            }
            if self.halted {
                if self.flags.if_() && bus.interrupt_pending() {
                    self.halted = false;
                } else {
                    break StopReason::Halted;
                }
            }
            // The shadow of STI, MOV SS and POP SS covers one instruction only (SDM Vol. 3A
            // §6.8.3): that instruction is stepped, not run as the head of a block, or
            // `sti; nop; cli` (SeaBIOS's wait loop) would never take an interrupt.
            let shadow = core::mem::take(&mut self.inhibit_irq);
            if !shadow && self.flags.if_() && bus.interrupt_pending() {
                if let Some(vector) = bus.acknowledge_interrupt() {
                    if let Some(r) = self.deliver_external(bus, vector) {
                        break r;
                    }
                }
            }
            // The fast path: whole blocks when no single-step trap is due and the budget
            // covers them (see block.rs for why checking once per block is exact).
            // measured (callgrind, host instructions per guest instruction, register /
            // paged memory loop): 204 / 230 per-instruction → 106 / 131 with blocks.
            let block =
                if self.flags.bits & flags::TF == 0 && !shadow { self.block_at(bus, &mut blocks) } else { None };
            let r = match block {
                Some(slot) if blocks[slot].ops.len() as u64 <= allowed => {
                    let (n, r) = self.run_blocks(bus, &mut blocks, slot, allowed);
                    remaining -= n - 1;
                    r
                }
                _ => self.step(bus),
            };
            match r {
                Ok(()) => {}
                Err(Fault::Exc(e)) => {
                    if let Some(r) = self.raise(bus, e) {
                        break r;
                    }
                }
                Err(Fault::Halt) => {
                    self.halted = true;
                }
                Err(Fault::Stop(StopRequest::DebugExit(v))) => {
                    break StopReason::DebugExit(v);
                }
                Err(Fault::Stop(StopRequest::Reset)) => {
                    break StopReason::Reset;
                }
                Err(Fault::Stop(StopRequest::PowerOff)) => {
                    break StopReason::PowerOff;
                }
                // `after_device_access` turns a yield request into `end_slice`.
                Err(Fault::Stop(StopRequest::Yield)) | Err(Fault::Break) => {}
                Err(Fault::VmExit) => {
                    if let Some(r) = self.complete_exit(bus) {
                        break r;
                    }
                }
                Err(Fault::HostTrap) => break StopReason::HostTrap,
            }
            // Checked here, after the step's exception or trap was delivered, so a yield
            // never loses a single-step trap.
            if self.end_slice {
                self.end_slice = false;
                break StopReason::Yield;
            }
        };
        self.icache.blocks = blocks;
        bus.tick(self.icount - start);
        reason
    }

    /// After an instruction that did port I/O or wrote to MMIO: act on what the platform
    /// changed behind the CPU's back (the memory map, pages written by DMA) and on a
    /// device's stop request. A yield request only marks the slice to end
    /// (`end_slice`), so the instruction's single-step trap still comes first.
    #[inline(never)]
    pub(crate) fn after_device_access<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        self.did_io = false;
        let ic = &mut self.icache;
        if bus.take_memory_map_change() {
            ic.invalidate_all();
            // Which host pages are RAM changed: every tag's entries may be wrong.
            self.tlb.flush_all();
            self.tlb_banks.iter_mut().for_each(|(_, t)| t.flush_all());
        }
        bus.for_each_dirty_page(&mut |p| {
            ic.note_write(p);
        });
        match bus.take_stop_request() {
            None => Ok(()),
            Some(StopRequest::Yield) => {
                self.end_slice = true;
                Ok(())
            }
            Some(v) => Err(Fault::Stop(v)),
        }
    }

    /// Fetch, decode and execute one instruction. On a fault EIP is back at its start.
    #[inline]
    fn step<B: Bus>(&mut self, bus: &mut B) -> Res<()> {
        self.start_eip = self.eip;
        let trap_after = self.flags.bits & flags::TF != 0;
        let mut instr = decode::Instr::EMPTY;
        if let Err(e) = self.fetch_decode(bus, &mut instr) {
            self.eip = self.start_eip;
            return Err(e);
        }
        self.eip = self.eip.wrapping_add(instr.len as u32);
        if !self.code32() {
            self.eip &= 0xffff;
        }
        if let Err(e) = self.execute(bus, &instr) {
            match e {
                Fault::Exc(x) if x.is_trap() => {
                    self.icount += 1;
                }
                Fault::Exc(_) | Fault::VmExit => self.eip = self.start_eip,
                // INT n handed to the host has retired: EIP is past it.
                Fault::Halt | Fault::Stop(_) | Fault::Break | Fault::HostTrap => self.icount += 1,
            }
            return Err(e);
        }
        self.icount += 1;
        if self.did_io {
            self.after_device_access(bus)?;
        }
        if trap_after {
            // Single-step trap after the instruction (SDM Vol. 3A §17.3.1.4).
            self.dr[6] |= 1 << 14;
            return Err(Fault::Exc(Exception::DB));
        }
        Ok(())
    }
}
