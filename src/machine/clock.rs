//! The machine's clock: virtual nanoseconds that drive the timers (PIT, RTC, APIC timer,
//! the ACPI PM timer).
//!
//! Two sources, one choice per machine ([`ClockMode`]):
//! - **Deterministic** (the default, and what tests use): time is a function of the
//!   retired-instruction count, plus the time the CPU spent halted waiting for the next
//!   device event. The same image with the same input gives the same output every run.
//! - **Wall**: the host supplies real time before each run slice (the browser's
//!   `performance.now()`, the CLI's monotonic clock), so guest clocks keep pace with the
//!   user's. Within a slice, time still advances with instructions, so reads of a timer
//!   between two slices never go backwards.

use crate::devices::Nanos;
use serde::{Deserialize, Serialize};

/// Nanoseconds of virtual time per retired instruction in deterministic mode: a "100 MIPS"
/// machine. Guests calibrate their delay loops against the PIT, so any value works; this
/// one keeps BIOS timeouts (measured in guest time) short in host time.
pub const NS_PER_INSTRUCTION: u64 = 10;

/// Where time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ClockMode {
    /// Time follows retired instructions (reproducible runs).
    #[default]
    Deterministic,
    /// Time follows the host's clock, given through [`Clock::set_host_time`].
    Wall,
}

/// Virtual time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Clock {
    mode: ClockMode,
    /// Deterministic: time spent halted (no instructions retire while it passes).
    idle: Nanos,
    /// Wall: host time at the start of the current slice, and the instruction count then.
    slice_host: Nanos,
    slice_icount: u64,
    /// The last value returned: time never goes backwards.
    last: Nanos,
    /// Wall: added to the host's time. Zero until a restore: a restored machine's time
    /// goes on from where it was saved, whatever the new host's clock reads.
    host_offset: Nanos,
    /// Wall: restored from a snapshot, and the next [`Clock::set_host_time`] sets
    /// `host_offset` so that time resumes at `last`. Never saved: a clock read back from
    /// a snapshot always starts with it set.
    #[serde(skip, default = "restored")]
    rebase: bool,
}

/// What a clock read from a snapshot has in [`Clock::rebase`].
fn restored() -> bool {
    true
}

impl Clock {
    pub fn new(mode: ClockMode) -> Self {
        Self { mode, ..Self::default() }
    }

    pub fn mode(&self) -> ClockMode {
        self.mode
    }

    /// The time when the CPU has retired `icount` instructions.
    #[inline]
    pub fn now(&mut self, icount: u64) -> Nanos {
        let t = match self.mode {
            ClockMode::Deterministic => icount.saturating_mul(NS_PER_INSTRUCTION).saturating_add(self.idle),
            ClockMode::Wall => self
                .slice_host
                .saturating_add(icount.saturating_sub(self.slice_icount).saturating_mul(NS_PER_INSTRUCTION)),
        };
        self.last = self.last.max(t);
        self.last
    }

    /// Wall mode: the host's time now (monotonic nanoseconds), at the start of a slice.
    pub fn set_host_time(&mut self, host: Nanos, icount: u64) {
        if core::mem::take(&mut self.rebase) {
            self.host_offset = self.last.wrapping_sub(host);
        }
        let host = host.wrapping_add(self.host_offset);
        self.slice_host = host.max(self.last);
        self.slice_icount = icount;
    }

    /// The CPU is halted until `until`: let the time pass (deterministic mode; in wall mode
    /// the host's clock moves by itself).
    pub fn idle_until(&mut self, until: Nanos, icount: u64) {
        if self.mode == ClockMode::Deterministic {
            let now = self.now(icount);
            if until > now {
                self.idle += until - now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_time_counts_instructions_and_idle_time() {
        let mut c = Clock::new(ClockMode::Deterministic);
        assert_eq!(c.now(100), 100 * NS_PER_INSTRUCTION);
        c.idle_until(5_000, 100);
        assert_eq!(c.now(100), 5_000);
        assert_eq!(c.now(101), 5_000 + NS_PER_INSTRUCTION);
    }

    #[test]
    fn wall_time_never_goes_backwards() {
        let mut c = Clock::new(ClockMode::Wall);
        c.set_host_time(1_000_000, 0);
        assert_eq!(c.now(10), 1_000_000 + 10 * NS_PER_INSTRUCTION);
        // The host's clock lags the instructions run: time holds, it does not go back.
        c.set_host_time(1_000_010, 10_000);
        assert!(c.now(10_000) >= 1_000_000 + 10 * NS_PER_INSTRUCTION);
    }

    #[test]
    fn a_restored_wall_clock_goes_on_from_its_own_time() {
        let mut c = Clock::new(ClockMode::Wall);
        c.set_host_time(5_000_000_000, 0);
        let saved = c.now(0);
        let bytes = postcard::to_allocvec(&c).unwrap();
        let mut r: Clock = postcard::from_bytes(&bytes).unwrap();
        // A new host (a reloaded page) whose clock started again near zero.
        r.set_host_time(1_000, 0);
        assert_eq!(r.now(0), saved);
        r.set_host_time(2_000, 0);
        assert_eq!(r.now(0), saved + 1_000);
    }
}
