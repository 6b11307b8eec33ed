//! The exit log: every VM exit the dispatcher handles, in a bounded ring of fixed-size
//! records (the live view copies the new ones out each update), per-VM counters by
//! reason, and the cost model behind the live view's "share of work guest vs VMM"
//! ([`EXIT_COST_CYCLES`]).

use crate::cpu::v386::{ExitInfo, ExitReason, State};
use crate::cpu::{cr0, flags, CS};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The modelled cost of one VM exit in processor cycles: the exit, the VMM's handling and
/// the entry back, against one cycle per retired guest instruction. The VMM here is Rust,
/// not guest code, so its work cannot be counted in guest instructions; the live view
/// models it instead (`VmmConfig::exit_cost_cycles`, the page's `exitCostCycles`).
///
/// The anchor: Adams & Agesen, "A Comparison of Software and Hardware Techniques for x86
/// Virtualization" (ASPLOS 2006), measured first-generation VT-x: an `in` from a port
/// that exits took 15,826 cycles ([`AA_IN_VTX_CYCLES`]) against 3,209 natively
/// ([`AA_IN_NATIVE_CYCLES`]), so 12,617 cycles went to the exit, the VMM's handling and
/// the re-entry. A model, not a measurement of v386: later processors cut the round trip
/// to well under 1,000 cycles. The technique lab (`crate::lab::cost`) uses the same figure.
pub const EXIT_COST_CYCLES: u32 = (AA_IN_VTX_CYCLES - AA_IN_NATIVE_CYCLES) as u32;

/// Adams & Agesen's `in` nanobenchmark natively, in cycles…
pub const AA_IN_NATIVE_CYCLES: u64 = 3_209;
/// …and under their VMM on first-generation VT-x, where every such IN exits to the VMM,
/// which emulates the port and enters the guest again.
pub const AA_IN_VTX_CYCLES: u64 = 15_826;

/// The `instr_info` byte of an [`ExitRecord`]: the instruction's length and the code it
/// was in, taken from the guest state at the exit.
pub mod info {
    /// Bits 3:0: the instruction's length (0 for an exit without one).
    pub const LEN: u8 = 0x0f;
    /// 32-bit code: CS.D in protected mode outside virtual-8086 mode.
    pub const CODE32: u8 = 1 << 4;
    /// EFLAGS.VM: a virtual-8086 task.
    pub const V86: u8 = 1 << 5;
    /// CR0.PE: protected mode.
    pub const PROTECTED: u8 = 1 << 6;
}

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
    /// Instruction bytes: [`ExitRecord::instr`] is the meaningful part.
    pub instr: [u8; 15],
    /// The instruction's length and its code size ([`info`]): packed so the record stays
    /// 40 bytes (an instruction has at most 15).
    pub instr_info: u8,
}

impl ExitRecord {
    /// Bytes in a record, as the page sees them.
    pub const SIZE: usize = core::mem::size_of::<ExitRecord>();

    /// A record from its `repr(C)` bytes (little-endian fields), as a page hands copies
    /// back: `None` when `b` is not [`ExitRecord::SIZE`] bytes.
    pub fn from_bytes(b: &[u8]) -> Option<ExitRecord> {
        if b.len() != Self::SIZE {
            return None;
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let mut instr = [0u8; 15];
        instr.copy_from_slice(&b[24..39]);
        Some(ExitRecord {
            time: u64_at(0),
            qualification: u64_at(8),
            guest_eip: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
            vm: u16::from_le_bytes([b[20], b[21]]),
            reason: u16::from_le_bytes([b[22], b[23]]),
            instr,
            instr_info: b[39],
        })
    }

    /// The bytes of the instruction that exited (empty for asynchronous exits).
    pub fn instr(&self) -> &[u8] {
        &self.instr[..(self.instr_info & info::LEN) as usize]
    }

    /// 16 or 32: the default operand and address size of the code that exited.
    pub fn bitness(&self) -> u32 {
        if self.instr_info & info::CODE32 != 0 {
            32
        } else {
            16
        }
    }

    /// "real", "v86", "prot16" or "prot32".
    pub fn mode(&self) -> &'static str {
        match (self.instr_info & info::PROTECTED != 0, self.instr_info & info::V86 != 0, self.bitness()) {
            (false, _, _) => "real",
            (true, true, _) => "v86",
            (true, false, 16) => "prot16",
            _ => "prot32",
        }
    }
}

/// The mode bits of `instr_info` for a guest in state `g`.
pub fn code_info(g: &State) -> u8 {
    let mut i = 0;
    if g.cr0 & cr0::PE != 0 {
        i |= info::PROTECTED;
        if g.eflags & flags::VM != 0 {
            i |= info::V86;
        } else if g.segs[CS as usize].big() {
            i |= info::CODE32;
        }
    }
    i
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

    /// Log the exit `x` of VM `vm` at machine time `time`; `code` holds the mode bits of
    /// [`info`] ([`code_info`] of the guest state).
    pub fn push(&mut self, time: u64, vm: u16, x: &ExitInfo, guest_eip: u32, code: u8) {
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
            instr_info: len as u8 | (code & !info::LEN),
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
            log.push(t, 1, &x, 0, info::CODE32 | info::PROTECTED);
        }
        let q: Vec<u64> = log.iter().map(|r| r.qualification).collect();
        assert_eq!((q, log.total), (alloc::vec![2, 3, 4], 5));
        assert_eq!(core::mem::size_of::<ExitRecord>(), 40);
    }

    #[test]
    fn the_record_packs_length_and_code_size() {
        let mut log = ExitLog::new(4);
        let mut x = ExitInfo { reason: 10, instr_len: 2, ..Default::default() };
        x.instr_bytes[..2].copy_from_slice(&[0x0f, 0xa2]);
        let mut g = State::default();
        log.push(0, 1, &x, 0xffff0, code_info(&g));
        g.cr0 |= cr0::PE;
        g.segs[CS as usize] = crate::cpu::Seg::flat32(8, true);
        log.push(1, 1, &x, 0x1000, code_info(&g));
        g.eflags |= flags::VM;
        log.push(2, 1, &x, 0x1000, code_info(&g));
        let r: Vec<_> = log.iter().map(|r| (r.instr().to_vec(), r.bitness(), r.mode())).collect();
        assert_eq!(r[0], (alloc::vec![0x0f, 0xa2], 16, "real"));
        assert_eq!(r[1], (alloc::vec![0x0f, 0xa2], 32, "prot32"));
        assert_eq!(r[2], (alloc::vec![0x0f, 0xa2], 16, "v86"));
    }

    #[test]
    fn records_come_back_from_their_bytes() {
        let mut x = ExitInfo { reason: 30, qualification: 0x1234_5678_9abc, instr_len: 1, ..Default::default() };
        x.instr_bytes[0] = 0xee;
        let mut log = ExitLog::new(1);
        log.push(77, 3, &x, 0xfe05b, 0);
        let r = log.raw()[0];
        // The repr(C) layout, written out field by field as a page reads it.
        let mut b = alloc::vec::Vec::new();
        b.extend(r.time.to_le_bytes());
        b.extend(r.qualification.to_le_bytes());
        b.extend(r.guest_eip.to_le_bytes());
        b.extend(r.vm.to_le_bytes());
        b.extend(r.reason.to_le_bytes());
        b.extend(r.instr);
        b.push(r.instr_info);
        assert_eq!(ExitRecord::from_bytes(&b), Some(r));
        assert_eq!(ExitRecord::from_bytes(&b[1..]), None);
    }
}
