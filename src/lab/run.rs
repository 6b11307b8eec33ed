//! The runner per technique, and the markers.
//!
//! The guest (`tests/guests/nanobench.asm`) writes `benchmark << 4 | phase` to the
//! isa-debug-exit port [`MARK_PORT`] before and after each run of a benchmark (phases
//! 0/1: a warm-up of N iterations, 2/3: N, 4/5: 2N) and [`MARK_PASS`] or [`MARK_FAIL`]
//! at the end. Every technique runs the guest as the one VM of a VMM (the technique is
//! the VM's); the write stops the VM with `VmStop::DebugExit`, the guest's EIP already
//! past the OUT (on the software processor of emulation the OUT retired; under V386 it
//! is an IO exit whose interpreter stops the VM; under the software monitor it faults at
//! ring 1 and the monitor emulates it). The runner snapshots the counters at each marker and lets the guest go on (the VM's
//! state back to `Runnable`). A benchmark's cost for N iterations is then
//! `(end5 − start4) − (end3 − start2)`: the markers, the set-up and whatever runs once
//! per run cancel, and the warm-up's one-time events (the nested page fault that maps
//! the APIC page into a VM) fall outside both.

use super::{Bench, Cost, Images, LabConfig, LabError, Technique};
use crate::machine::MachineSpec;
use crate::monitor::Counters as MonitorCounters;
use crate::vmm::{Vm, VmState, VmStop, Vmm, VmmConfig};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The guest's marker port (its isa-debug-exit device).
pub const MARK_PORT: u16 = 0xf4;
/// The guest's last marker when its self-check passed…
pub const MARK_PASS: u32 = 0x01;
/// …and when it failed (or an exception it did not expect came).
pub const MARK_FAIL: u32 = 0x03;

/// Guest RAM: the kernel needs 2 MiB; 16 MiB as the VMM's demo VMs.
const MEM_MB: u32 = 16;
/// Instructions per `run` call between looks at the budget.
const CHUNK: u64 = 10_000_000;
/// The VMM's quantum: one VM, so only the budget checks need it to end turns; long
/// enough that a default run sees no preemption (those exits are not charged anyway).
const QUANTUM: u32 = 10_000_000;

/// One benchmark under one technique: the cost of `iterations` iterations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub bench: Bench,
    pub iterations: u32,
    pub cost: Cost,
}

/// One column of the table: a technique's measurements, in [`Bench::ALL`] order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub technique: Technique,
    pub measurements: Vec<Measurement>,
    /// What the whole run counted, start to end.
    pub total: Cost,
    /// The guest's COM1 output (its self-check line).
    pub serial: String,
    /// What its sensitive-instruction probe saw go wrong (`nanobench: wrong: …` lines):
    /// the classic x86's silent failures, expected only in column 2.
    pub wrong: Vec<String>,
    /// Columns 2–4: what the software monitor counted over the whole run (shadow fills,
    /// traced writes, scans, breakpoints, rescans).
    pub monitor: Option<MonitorCounters>,
}

/// The prefix of a wrong-result line in the guest's output.
pub const WRONG_PREFIX: &str = "nanobench: wrong: ";

/// A run to its last marker: the markers, COM1, and the monitor's counters.
struct Run {
    marks: Vec<Mark>,
    serial: String,
    monitor: Option<MonitorCounters>,
}

/// A marker and the counters when it came.
struct Mark {
    value: u32,
    at: Cost,
}

/// Run the benchmarks under technique `t`.
pub fn run(t: Technique, images: &Images, cfg: &LabConfig) -> Result<Column, LabError> {
    if !(1..=1_000_000).contains(&cfg.iterations) {
        return Err(LabError::BadIterations(cfg.iterations));
    }
    let kernel = images.get(super::build(t));
    let cmdline = format!("iterations={}", cfg.iterations);
    // Generous: the slowest benchmark (pgfault) takes a few dozen instructions an
    // iteration, and each runs 4N times.
    let budget = 20_000_000 + cfg.iterations as u64 * 4 * (7 * 200 + 5_000);
    let run = run_vm(kernel, &cmdline, budget, t)?;
    measure(t, cfg.iterations, run)
}

/// Every technique, in column order.
pub fn run_all(images: &Images, cfg: &LabConfig) -> Vec<(Technique, Result<Column, LabError>)> {
    Technique::ALL.iter().map(|t| (*t, run(*t, images, cfg))).collect()
}

/// A build as the one VM of the VMM, run under technique `t`: 1 interpreted on the VM's
/// own software processor, 2–4 by the software monitor on the classic processor (its
/// kernel at ring 1), 5 and 6 on the V386 extension.
fn run_vm(kernel: &[u8], cmdline: &str, budget: u64, t: Technique) -> Result<Run, LabError> {
    let mut vmm = Vmm::new(VmmConfig { quantum: QUANTUM, log_capacity: 16, ..VmmConfig::default() });
    let spec = MachineSpec {
        memory_mb: Some(MEM_MB),
        kernel: Some(kernel.to_vec()),
        cmdline: Some(cmdline.into()),
        debug_exit_port: Some(MARK_PORT),
        ..Default::default()
    };
    let id = vmm.add_vm_as("nanobench", spec, t).map_err(|e| LabError::Setup(e.to_string()))?;
    let mut marks = Vec::new();
    loop {
        vmm.run(CHUNK);
        let Some(vm) = vmm.vm_mut(id) else { return Err(LabError::Setup("the VM vanished".into())) };
        let serial = |vm: &mut Vm| String::from_utf8_lossy(&vm.board.com1.take_output()).into_owned();
        match &vm.state {
            VmState::Stopped(VmStop::DebugExit(v)) => {
                let v = *v;
                let c = &vm.counters;
                marks.push(Mark { value: v, at: Cost { instructions: c.retired, exits: c.by_reason, mmio: c.mmio } });
                if v == MARK_PASS || v == MARK_FAIL {
                    let monitor = vm.monitor.as_ref().map(|m| m.counters.clone());
                    return Ok(Run { marks, serial: serial(vm), monitor });
                }
                // The marker's OUT was interpreted (EIP is past it): go on.
                vm.state = VmState::Runnable;
            }
            VmState::Stopped(why) => {
                let why = format!("{why:?}");
                return Err(LabError::Stopped { why, serial: serial(vm) });
            }
            _ if vm.counters.retired < budget => {}
            _ => return Err(LabError::Timeout { serial: serial(vm) }),
        }
    }
}

/// The markers a correct run gives, in order.
fn expected_markers() -> Vec<u32> {
    let mut v: Vec<u32> = Bench::ALL.iter().flat_map(|b| (0..6).map(move |phase| b.number() << 4 | phase)).collect();
    v.push(MARK_PASS);
    v
}

/// The measurements from a run's markers.
fn measure(t: Technique, iterations: u32, run: Run) -> Result<Column, LabError> {
    let Run { marks, serial, monitor } = run;
    let values: Vec<u32> = marks.iter().map(|m| m.value).collect();
    if values.last() == Some(&MARK_FAIL) {
        return Err(LabError::SelfCheck { serial });
    }
    if values != expected_markers() {
        return Err(LabError::Markers(format!("{values:x?}")));
    }
    let mut measurements = Vec::new();
    for (i, b) in Bench::ALL.iter().enumerate() {
        let at = |phase: usize| &marks[i * 6 + phase].at;
        let n = at(3).checked_sub(at(2));
        let two_n = at(5).checked_sub(at(4));
        let cost = match (n, two_n) {
            (Some(n), Some(two_n)) => two_n.checked_sub(&n),
            _ => None,
        }
        .ok_or(LabError::Inconsistent(*b))?;
        measurements.push(Measurement { bench: *b, iterations, cost });
    }
    let total = marks[marks.len() - 1].at.clone();
    let wrong = serial.lines().filter_map(|l| l.strip_prefix(WRONG_PREFIX)).map(String::from).collect();
    Ok(Column { technique: t, measurements, total, serial, wrong, monitor })
}
