//! The cost model: how the lab turns what it counted (retired guest instructions, VM
//! exits, device-memory accesses) into cycles, so techniques that trade instructions for
//! exits can be put in one table.
//!
//! `cycles = instructions × instruction_cycles + charged exits × exit_cycles + MMIO ×
//! mmio_cycles`. The emulator retires one instruction per step and has no caches or
//! pipeline, so one cycle per instruction is the only honest per-instruction figure; the
//! exit cost is where a real processor differs most, and it comes from a measurement.

use super::Cost;

pub use crate::vmm::log::{AA_IN_NATIVE_CYCLES, AA_IN_VTX_CYCLES};

/// The default cost of one VM exit: what an exit added to A&A's `in`, 15,826 − 3,209 =
/// 12,617 cycles (exit, the VMM's handling, entry; the native IN's own device latency
/// taken out, since the emulator's bare IN costs one instruction). It is first-generation
/// VT-x: later processors cut the round trip by several times, which `--exit-cost`
/// models.
/// The same figure as the live view's (`crate::vmm::log::EXIT_COST_CYCLES`).
pub const DEFAULT_EXIT_CYCLES: u64 = crate::vmm::log::EXIT_COST_CYCLES as u64;

/// Cycles per counted event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostModel {
    /// Per retired guest instruction (1: the emulator's model of time, one instruction a step).
    pub instruction_cycles: u64,
    /// Per VM exit the benchmark caused (VMM scheduling exits are not charged: see
    /// [`Cost::charged_exits`]).
    pub exit_cycles: u64,
    /// Per access to a VM's device memory: 0, because the VMM maps a VM's device pages
    /// into its device window once (one nested page fault, outside the measured runs) and
    /// the processor's bus then reaches the VM's device model without the VMM — as a
    /// device the VM owned in hardware would, or a TPR shadow on later VT-x.
    pub mmio_cycles: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel { instruction_cycles: 1, exit_cycles: DEFAULT_EXIT_CYCLES, mmio_cycles: 0 }
    }
}

impl CostModel {
    /// The cycles `c` costs.
    pub fn cycles(&self, c: &Cost) -> u64 {
        c.instructions * self.instruction_cycles + c.charged_exits() * self.exit_cycles + c.mmio * self.mmio_cycles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::v386::ExitReason;

    #[test]
    fn the_default_exit_is_what_an_exit_added_to_adams_and_agesens_in() {
        assert_eq!(DEFAULT_EXIT_CYCLES, 12_617);
        let mut c = Cost { instructions: 10, ..Default::default() };
        c.exits[ExitReason::Io as usize] = 2;
        c.exits[ExitReason::PreemptionTimer as usize] = 5;
        c.mmio = 3;
        assert_eq!(CostModel::default().cycles(&c), 10 + 2 * 12_617);
        let m = CostModel { instruction_cycles: 2, exit_cycles: 100, mmio_cycles: 7 };
        assert_eq!(m.cycles(&c), 20 + 200 + 21);
    }
}
