//! The technique lab (issue 7): one guest kernel, the nanobenchmarks of Adams & Agesen
//! (ASPLOS 2006), run under each way of virtualizing x86 this emulator can model, and
//! measured side by side in their table's shape. `docs/techniques.md` describes the
//! method and records the figures.
//!
//! Where things live:
//! - this file: [`Technique`] (the six columns), [`Bench`] (the eight rows: seven nanobenchmarks, one macro workload), [`Cost`]
//!   (what a run counted), [`LabConfig`], [`Images`] (the native and paravirtual builds
//!   of `tests/guests/nanobench.asm`), [`LabError`];
//! - `run.rs`: the runner per technique — the bare machine, or one VM under the VMM —
//!   and the markers: the guest brackets every run of a benchmark with a write to the
//!   isa-debug-exit port, which stops the machine or the VM; the runner snapshots the
//!   counters and resumes it;
//! - `cost.rs`: [`CostModel`], counts to cycles, with its published default;
//! - `table.rs`: [`Table`], the columns formatted as Adams & Agesen's table.
//!
//! Deterministic: the guest reads no clock and takes no interrupt, the machines run on
//! deterministic time, and every count comes from retired instructions and exits, so two
//! runs give the same table.
//!
//! Columns 2–4 (deprivileged trap-and-emulate, with and without PSI, and
//! scan-before-execute) run the guest under the software monitor of `crate::monitor`,
//! its kernel at ring 1 with shadow page tables.

mod cost;
mod run;
mod table;

pub use cost::{CostModel, AA_IN_NATIVE_CYCLES, AA_IN_VTX_CYCLES, DEFAULT_EXIT_CYCLES};
pub use run::{run, run_all, Column, Measurement, WRONG_PREFIX};
pub use table::Table;

use crate::cpu::v386::ExitReason;
use crate::vmm::log::REASONS;
pub use crate::vmm::Technique;
use alloc::string::String;
use alloc::vec::Vec;

/// Which build of the guest a technique runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    Native,
    Paravirtual,
}

/// The guest build technique `t` runs: the paravirtual one only for paravirtualization.
pub fn build(t: Technique) -> Build {
    match t {
        Technique::Paravirtual => Build::Paravirtual,
        _ => Build::Native,
    }
}

/// The nanobenchmarks, in the order of the table's rows (and of the guest's runs: the
/// number is the high nibble of the guest's markers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bench {
    Syscall,
    In,
    Cr8wr,
    CallRet,
    PgFault,
    DivZero,
    PteMod,
    /// The macro workload: a process created, run at ring 3 and waited for (A&A's
    /// forkwait), each an address-space switch there and back.
    ForkWait,
}

impl Bench {
    pub const ALL: [Bench; 8] = [
        Bench::Syscall,
        Bench::In,
        Bench::Cr8wr,
        Bench::CallRet,
        Bench::PgFault,
        Bench::DivZero,
        Bench::PteMod,
        Bench::ForkWait,
    ];

    /// Its number in the guest's markers, 1–7.
    pub fn number(self) -> u32 {
        self as u32 + 1
    }

    /// Adams & Agesen's name.
    pub fn name(self) -> &'static str {
        match self {
            Bench::Syscall => "syscall",
            Bench::In => "in",
            Bench::Cr8wr => "cr8wr",
            Bench::CallRet => "call/ret",
            Bench::PgFault => "pgfault",
            Bench::DivZero => "divzero",
            Bench::PteMod => "ptemod",
            Bench::ForkWait => "forkwait",
        }
    }
}

/// Exits the VMM takes for its own scheduling (its preemption timer, interrupt windows,
/// host interrupts): a property of the quantum, not of the benchmark, so they are
/// counted but not charged.
pub const SCHEDULING_EXITS: [ExitReason; 3] =
    [ExitReason::PreemptionTimer, ExitReason::InterruptWindow, ExitReason::ExternalInterrupt];

/// What the lab counts: over a run, or per measured difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Guest instructions retired.
    pub instructions: u64,
    /// VM exits by reason number (all zero on the bare machine).
    pub exits: [u64; REASONS],
    /// Accesses to the VM's device memory (no exit: see [`CostModel::mmio_cycles`]).
    pub mmio: u64,
}

impl Default for Cost {
    fn default() -> Self {
        Cost { instructions: 0, exits: [0; REASONS], mmio: 0 }
    }
}

impl Cost {
    /// Every exit.
    pub fn all_exits(&self) -> u64 {
        self.exits.iter().sum()
    }

    /// The exits the benchmark caused: all but [`SCHEDULING_EXITS`].
    pub fn charged_exits(&self) -> u64 {
        self.all_exits() - SCHEDULING_EXITS.iter().map(|r| self.exits[*r as usize]).sum::<u64>()
    }

    /// `self - other`, or None when something went down (the runs were not alike).
    pub fn checked_sub(&self, other: &Cost) -> Option<Cost> {
        let mut exits = [0; REASONS];
        for (i, e) in exits.iter_mut().enumerate() {
            *e = self.exits[i].checked_sub(other.exits[i])?;
        }
        Some(Cost {
            instructions: self.instructions.checked_sub(other.instructions)?,
            exits,
            mmio: self.mmio.checked_sub(other.mmio)?,
        })
    }
}

/// The guest in its two builds: `nasm -f bin -I tests/guests/ tests/guests/nanobench.asm` and the same
/// with `-DPARAVIRT`.
#[derive(Clone, Debug)]
pub struct Images {
    pub native: Vec<u8>,
    pub paravirtual: Vec<u8>,
}

impl Images {
    pub fn get(&self, b: Build) -> &[u8] {
        match b {
            Build::Native => &self.native,
            Build::Paravirtual => &self.paravirtual,
        }
    }
}

/// How the lab runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabConfig {
    /// N: each benchmark runs N and 2N iterations (after a warm-up of N); the
    /// difference is N iterations' cost. The guest accepts 1..=1,000,000.
    pub iterations: u32,
    pub cost: CostModel,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig { iterations: 1000, cost: CostModel::default() }
    }
}

/// Why a column has no figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabError {
    /// The machine or VM could not be built from the image (a host error).
    Setup(String),
    /// The guest stopped other than at a marker: what happened, and its COM1 output.
    Stopped { why: String, serial: String },
    /// The guest ran past the instruction budget without finishing.
    Timeout { serial: String },
    /// The markers did not come in the expected order (a different guest?).
    Markers(String),
    /// The guest's self-check failed: its COM1 output says what it saw.
    SelfCheck { serial: String },
    /// The 2N run cost less than the N run in some count.
    Inconsistent(Bench),
    /// The iteration count is outside what the guest accepts.
    BadIterations(u32),
}

impl core::fmt::Display for LabError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LabError::Setup(e) => write!(f, "setting up the guest: {e}"),
            LabError::Stopped { why, serial } => write!(f, "the guest stopped: {why}; COM1: {serial}"),
            LabError::Timeout { serial } => write!(f, "the guest did not finish; COM1: {serial}"),
            LabError::Markers(m) => write!(f, "unexpected markers: {m}"),
            LabError::SelfCheck { serial } => write!(f, "the guest's self-check failed; COM1: {serial}"),
            LabError::Inconsistent(b) => write!(f, "{}: the 2N run counted less than the N run", b.name()),
            LabError::BadIterations(n) => write!(f, "{n} iterations: the guest takes 1 to 1000000"),
        }
    }
}
