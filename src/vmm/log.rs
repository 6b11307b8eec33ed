//! The exit log: every VM exit the dispatcher handles, in a bounded ring of fixed-size
//! records (the live view reads them in place), and per-VM counters by reason.

use crate::cpu::v386::{ExitInfo, ExitReason};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// One exit, as the live view shows it. `repr(C)` with a fixed size, so a page can read
/// the ring through a typed-array view without copying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct ExitRecord {
    /// Time of the exit: instructions retired by the whole machine (all VMs).
    pub time: u64,
    pub qualification: u64,
    /// CS base + EIP of the instruction that caused the exit (or the next to run).
    pub guest_eip: u32,
    pub vm: u16,
    /// Basic exit reason (Table 8-1 number).
    pub reason: u16,
    /// Instruction bytes: `instr_len` of them.
    pub instr: [u8; 15],
    pub instr_len: u8,
}

/// Reason numbers go up to 64 (`SENSITIVE_INSTRUCTION`).
pub const REASONS: usize = 65;

/// Counters of one VM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counters {
    /// Exits by reason number.
    #[serde(with = "serde_big_array::BigArray")]
    pub by_reason: [u64; REASONS],
    /// Device-memory accesses the host bus sent to the VM's devices (no exit: the SLT maps
    /// the VM's device pages into its window after the first nested page fault).
    pub mmio: u64,
    /// Turns the scheduler gave this VM, and turns that ended because its quantum was
    /// spent (preemption) rather than by halting.
    pub turns: u64,
    pub preemptions: u64,
    /// Guest instructions retired.
    pub retired: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters { by_reason: [0; REASONS], mmio: 0, turns: 0, preemptions: 0, retired: 0 }
    }
}

impl Counters {
    pub fn exits(&self) -> u64 {
        self.by_reason.iter().sum()
    }
    pub fn count(&self, r: ExitReason) -> u64 {
        self.by_reason[r as usize]
    }
}

/// A ring of the last `capacity` exits and the total ever logged.
#[derive(Serialize, Deserialize)]
pub struct ExitLog {
    records: Vec<ExitRecord>,
    #[serde(deserialize_with = "super::snapshot::log_capacity")]
    capacity: usize,
    /// Exits logged since the start (the next record goes to `total % capacity`).
    pub total: u64,
}

impl ExitLog {
    pub fn new(capacity: usize) -> Self {
        ExitLog { records: Vec::with_capacity(capacity), capacity: capacity.max(1), total: 0 }
    }

    /// Log the exit `x` of VM `vm` at machine time `time`.
    pub fn push(&mut self, time: u64, vm: u16, x: &ExitInfo, guest_eip: u32) {
        let len = (x.instr_len as usize).min(15);
        let mut instr = [0u8; 15];
        instr[..len].copy_from_slice(&x.instr_bytes[..len]);
        let r = ExitRecord {
            time,
            qualification: x.qualification,
            guest_eip,
            vm,
            reason: x.reason as u16,
            instr,
            instr_len: len as u8,
        };
        let at = (self.total % self.capacity as u64) as usize;
        if at < self.records.len() {
            self.records[at] = r;
        } else {
            self.records.push(r);
        }
        self.total += 1;
    }

    /// The records in time order, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &ExitRecord> {
        let n = self.records.len();
        let start = if (self.total as usize) > n { (self.total % self.capacity as u64) as usize } else { 0 };
        (0..n).map(move |i| &self.records[(start + i) % n])
    }

    /// The ring itself, in storage order (the live view's zero-copy source).
    pub fn raw(&self) -> &[ExitRecord] {
        &self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_in_order() {
        let mut log = ExitLog::new(3);
        for t in 0..5u64 {
            let x = ExitInfo { reason: 30, qualification: t, ..Default::default() };
            log.push(t, 1, &x, 0);
        }
        let q: Vec<u64> = log.iter().map(|r| r.qualification).collect();
        assert_eq!((q, log.total), (alloc::vec![2, 3, 4], 5));
        assert_eq!(core::mem::size_of::<ExitRecord>(), 40);
    }
}
