//! The virtual machine monitor: unmodified guests in VMs on the V386 extension
//! (docs/v386.md §12.3), in Popek & Goldberg's three parts.
//!
//! Where behaviour lives:
//! - [`allocator`]: host memory and its owners, each VM's RAM, ROM copies and
//!   second-level tables, the I/O-bitmap policy.
//! - [`dispatcher`]: the run loop (enter, exit, log, interpret, enter again) and the
//!   round-robin scheduler driven by the preemption timer; interrupt injection.
//! - [`interp`]: one interpreter per kind of exit.
//! - [`exit`]: [`VmExit`], an exit decoded with its data (kvm-ioctls' `VcpuExit` shape).
//! - [`vcpu`]: [`Vcpu`], `run()` returning a `VmExit` (kvm-ioctls' `VcpuFd` shape).
//! - [`vm`]: one VM — its VCB, its own PC board (the models the bare machine uses), its
//!   memory, its state and counters.
//! - [`hostbus`]: what the processor sees while one VM runs.
//! - [`log`]: the bounded exit ring and the per-VM counters the live view shows.
//! - `snapshot.rs`: [`Vmm::save`] and [`Vmm::restore`] (the format: [`crate::snapshot`]).
//!
//! The processor is the one `crate::cpu::Cpu` the bare machine uses; the VMM enters a
//! guest with `Cpu::vm_run`, the same entry and exit code an x86 host reaches with
//! `VMENTER`.

use serde::{Deserialize, Serialize};
pub mod allocator;
pub mod dispatcher;
pub mod exit;
pub mod hostbus;
pub mod interp;
pub mod log;
mod snapshot;
pub mod technique;
pub mod vcpu;
pub mod vm;

use crate::cpu::Cpu;
use crate::machine::{Machine, MachineSpec, SpecError};
use crate::monitor::{Monitor, MonitorError};
use alloc::string::String;
use alloc::vec::Vec;
use allocator::{AllocError, HostMemory, MAX_VMS};
pub use dispatcher::RunOutcome;
pub use exit::VmExit;
use log::ExitLog;
pub use technique::Technique;
pub use vcpu::{Vcpu, VcpuError};
pub use vm::{Vm, VmState, VmStop};

/// How the VMM runs its VMs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct VmmConfig {
    /// Guest instructions per scheduling turn (the preemption timer's quantum).
    pub quantum: u32,
    /// Exits kept in the log ring.
    pub log_capacity: usize,
    /// The modelled cost of one exit in cycles, for the live view's share of work guest
    /// vs VMM ([`log::EXIT_COST_CYCLES`]: the default, and where it comes from).
    pub exit_cost_cycles: u32,
}

impl Default for VmmConfig {
    fn default() -> Self {
        // 100,000 instructions: about 1 ms of guest time at the deterministic clock's
        // 10 ns per instruction, the order of a Linux tick.
        VmmConfig { quantum: 100_000, log_capacity: 1 << 16, exit_cost_cycles: log::EXIT_COST_CYCLES }
    }
}

/// Why a VM could not be created.
#[derive(Debug)]
pub enum VmmError {
    /// The VM's machine description.
    Spec(SpecError),
    /// Host memory or VM slots ran out.
    Alloc(AllocError),
    /// The software monitor cannot take this guest (its techniques need a guest in
    /// protected mode, a Multiboot kernel at its entry).
    Monitor(MonitorError),
}

impl core::fmt::Display for VmmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VmmError::Spec(e) => write!(f, "VM description: {e}"),
            VmmError::Alloc(e) => write!(f, "VM memory: {e}"),
            VmmError::Monitor(e) => write!(f, "software monitor: {e}"),
        }
    }
}

/// The monitor: the processor, host memory, the VMs and the exit log.
#[derive(Serialize, Deserialize)]
pub struct Vmm {
    /// The one processor the VMs share.
    pub cpu: Cpu,
    pub mem: HostMemory,
    pub vms: Vec<Vm>,
    pub log: ExitLog,
    pub config: VmmConfig,
    /// The VM whose turn is next.
    next_vm: usize,
    /// Break on exit: reasons to stop at, exits not handled yet (`dispatcher`).
    brk: dispatcher::Breaks,
}

impl Vmm {
    pub fn new(config: VmmConfig) -> Self {
        let mut cpu = Cpu::new();
        // CPUID as guests see it reports a local APIC: every VM's board has one.
        cpu.apic_present = true;
        Vmm {
            cpu,
            mem: HostMemory::new(),
            vms: Vec::new(),
            log: ExitLog::new(config.log_capacity),
            config,
            next_vm: 0,
            brk: Default::default(),
        }
    }

    /// Add a VM built from a machine description (the same one the bare machine takes),
    /// run on the V386 extension.
    pub fn add_vm(&mut self, name: &str, spec: MachineSpec) -> Result<u16, VmmError> {
        self.add_vm_as(name, spec, Technique::V386)
    }

    /// Add a VM built from a machine description, run under technique `t`.
    pub fn add_vm_as(&mut self, name: &str, spec: MachineSpec, t: Technique) -> Result<u16, VmmError> {
        let m = spec.build().map_err(VmmError::Spec)?;
        self.add_machine_as(name, m, t)
    }

    /// Add a VM made of a built machine, on the V386 extension: its RAM moves into host
    /// memory.
    pub fn add_machine(&mut self, name: &str, m: Machine) -> Result<u16, VmmError> {
        self.add_machine_as(name, m, Technique::V386)
    }

    /// Add a VM made of a built machine, run under technique `t`. The software
    /// monitor's techniques (2–4) take 4 MiB more host memory for its tables.
    pub fn add_machine_as(&mut self, name: &str, m: Machine, t: Technique) -> Result<u16, VmmError> {
        if self.vms.len() >= MAX_VMS - 1 {
            return Err(VmmError::Alloc(AllocError::TooManyVms));
        }
        // Tags 1…: tag 0 is the host's (docs/v386.md §6.5).
        let id = self.vms.len() as u16 + 1;
        let start = m.cpu.capture_state();
        // Emulation: the machine's own processor becomes the VM's software one.
        let mut m = m;
        let emulated = (t == Technique::Emulation).then(|| core::mem::take(&mut m.cpu));
        if t.monitor_options().is_some() {
            Monitor::check_guest(&start).map_err(VmmError::Monitor)?;
        }
        let mut vm = vm::Vm::from_machine(id, String::from(name), m, &mut self.mem).map_err(VmmError::Alloc)?;
        vm.technique = t;
        if let Some(cpu) = emulated {
            vm.clock = cpu.icount;
            vm.vcb.guest = start.clone();
            vm.emulated = Some(alloc::boxed::Box::new(cpu));
        }
        if let Some(options) = t.monitor_options() {
            let pages = crate::monitor::MONITOR_BYTES as u64 / allocator::PAGE;
            let mon = self.mem.alloc(pages, allocator::Owner::Vm(id)).map_err(VmmError::Alloc)?;
            let monitor =
                Monitor::new(start, vm.ram_base, vm.ram_len, mon, vm.slt.root, options).map_err(VmmError::Monitor)?;
            vm.monitor = Some(alloc::boxed::Box::new(monitor));
        }
        self.vms.push(vm);
        Ok(id)
    }

    /// The VM with tag `id`.
    pub fn vm(&self, id: u16) -> Option<&Vm> {
        self.vms.iter().find(|v| v.id == id)
    }

    pub fn vm_mut(&mut self, id: u16) -> Option<&mut Vm> {
        self.vms.iter_mut().find(|v| v.id == id)
    }
}
