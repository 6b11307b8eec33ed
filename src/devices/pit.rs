//! The Intel 8254 programmable interval timer (ports 40h–43h) and the PC/AT's system control
//! port B (61h), which gates the 8254's counter 2 and reads back its output, so it lives
//! here too.
//!
//! On the PC the three counters share a 1.193182 MHz clock: counter 0's OUT drives IRQ0,
//! counter 1 paces DRAM refresh and counter 2 feeds the speaker, gated by port 61h bit 0.
//! Time is virtual: the number of clock pulses at `now` is `floor(now · 1193182 / 10⁹)`,
//! and every counter is brought forward to that pulse count in closed form (no pulse
//! loop), so counts, outputs and IRQ0 edges are exact functions of `now` and of the
//! guest's accesses, however often the machine chooses to look.
//!
//! Behaviour follows the Intel 8254 datasheet (section names are quoted in the comments):
//! all six modes, gate inputs, the control word with counter latch and read-back, LSB /
//! MSB / LSB-then-MSB access and BCD counting.

use super::Nanos;
use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// Counter 0 (IRQ0). IBM PC/AT Technical Reference, I/O address map: 040h–05Fh "timer"
/// (8254: counter 0 at 40h, counter 1 at 41h, counter 2 at 42h, control word at 43h).
pub const PIT_COUNTER0: u16 = 0x40;
/// Counter 1 (refresh request).
pub const PIT_COUNTER1: u16 = 0x41;
/// Counter 2 (speaker).
pub const PIT_COUNTER2: u16 = 0x42;
/// Control word register (write-only; 8254 datasheet, "Control Word Register").
pub const PIT_CONTROL: u16 = 0x43;
/// System control port B. IBM PC/AT Technical Reference, "Port 61h": bit 0 timer 2 gate,
/// bit 1 speaker data, bits 2–3 parity/channel check enables (stored only), bit 4 refresh
/// detect (toggles), bit 5 timer 2 output, bits 6–7 channel check / parity check status.
pub const PORT_B: u16 = 0x61;

/// The counters' input clock, Hz (14.31818 MHz / 12; IBM PC/AT Technical Reference,
/// "System Timers").
pub const PIT_HZ: u64 = 1_193_182;
/// Port 61h bit 4 toggles on every refresh request: counter 1 as every BIOS programs it
/// (mode 2, count 18), i.e. every 18 clock pulses ≈ 15.09 µs. It is derived from the
/// clock directly rather than from counter 1's programming.
const REFRESH_PULSES: u64 = 18;
/// next_event searches this many pulses ahead: more than the longest gap between rising
/// edges in any mode (a partial period plus a full 65536-pulse one).
const EDGE_SEARCH_PULSES: u64 = 1 << 18;

/// Clock pulses that have occurred by `now`.
fn pulses_at(now: Nanos) -> u64 {
    (u128::from(now) * u128::from(PIT_HZ) / 1_000_000_000) as u64
}

/// The first instant at which `pulses_at` reaches `pulse`.
fn time_of_pulse(pulse: u64) -> Nanos {
    let t = (u128::from(pulse) * 1_000_000_000).div_ceil(u128::from(PIT_HZ));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// 16-bit BCD (four digits) to binary; nibbles above 9 count as 9, so a garbage BCD count
/// stays in range.
fn from_bcd(v: u16) -> u32 {
    (0..4).rev().fold(0, |acc, i| acc * 10 + u32::from((v >> (4 * i)) & 0xf).min(9))
}

/// Binary below 10000 to four BCD digits.
fn to_bcd(v: u32) -> u16 {
    (0..4).fold(0u16, |acc, i| acc | (((v / 10u32.pow(i)) % 10) as u16) << (4 * i))
}

/// `ce - k` modulo `m`, for `ce <= m`.
fn wrap_sub(ce: u32, k: u64, m: u64) -> u32 {
    ((u64::from(ce) + m - k % m) % m) as u32
}

/// Length of a mode 3 half-cycle: the high half gets the extra pulse of an odd count (8254
/// datasheet, Mode 3: "OUT will be high for (N + 1)/2 counts and low for (N − 1)/2").
fn half_len(high: bool, n: u32) -> u64 {
    let n = u64::from(n);
    if high {
        n.div_ceil(2)
    } else {
        n / 2
    }
}

/// One counter of the 8254.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    /// Mode 0–5 (control word M2–M0, with x10 = 2 and x11 = 3).
    mode: u8,
    /// RW1–RW0: 1 = LSB only, 2 = MSB only, 3 = LSB then MSB.
    rw: u8,
    bcd: bool,
    /// Bits 5–0 of the last control word, reported by a status read-back.
    control: u8,
    /// Count register: the count last written, raw (BCD digits if `bcd`).
    cr: u16,
    /// A count has been written since the control word.
    cr_valid: bool,
    /// LSB of a two-byte count whose MSB is still to come.
    pending_lsb: Option<u8>,
    /// The next read of a two-byte count returns the MSB.
    read_msb_next: bool,
    /// Output latch after a counter latch command (raw, BCD if `bcd`).
    latch: Option<u16>,
    /// Latched status byte after a read-back command.
    status: Option<u8>,
    /// Null count: CR written but not yet moved to CE (8254 datasheet, "Read-Back
    /// Command", status bit 6).
    null_count: bool,
    gate: bool,
    /// Counting element, as a number of pulses to terminal count: 1..=m after a load of
    /// m (count 0 means 65536, or 10000 in BCD), or 0 at terminal count.
    ce: u32,
    out: bool,
    /// CE decrements (subject to the gate) once the first count has been loaded.
    counting: bool,
    /// The next clock pulse moves CR into CE (a load or reload).
    load_next: bool,
    /// Modes 2 and 3: the count of the cycle (half-cycle in mode 3) under way.
    period: u32,
    /// Modes 4 and 5: the strobe is still to come for this load.
    armed: bool,
    /// Clock pulses this counter has been brought forward to.
    pulse: u64,
    /// Rising edges of OUT not yet collected.
    edges: u32,
}

impl Counter {
    /// Power-on: the 8254's mode, count and output are undefined before programming
    /// (8254 datasheet, "Operational Description"); here the counter idles with OUT high,
    /// so the first control word does not look like an IRQ0 edge.
    fn new(gate: bool) -> Self {
        Self {
            mode: 0,
            rw: 3,
            bcd: false,
            control: 0x30,
            cr: 0,
            cr_valid: false,
            pending_lsb: None,
            read_msb_next: false,
            latch: None,
            status: None,
            null_count: false,
            gate,
            ce: 0,
            out: true,
            counting: false,
            load_next: false,
            period: 0,
            armed: false,
            pulse: 0,
            edges: 0,
        }
    }

    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// The count CR stands for: 0 is the maximum, 2^16 in binary or 10^4 in BCD (8254
    /// datasheet, "Counter Loading").
    fn count(&self) -> u32 {
        let n = if self.bcd { from_bcd(self.cr) } else { u32::from(self.cr) };
        if n == 0 {
            self.modulus()
        } else {
            n
        }
    }

    /// What a read of CE shows, raw.
    fn value(&self) -> u16 {
        let v = self.ce % self.modulus();
        if self.bcd {
            to_bcd(v)
        } else {
            v as u16
        }
    }

    fn set_out(&mut self, level: bool) {
        if level && !self.out {
            self.edges = self.edges.saturating_add(1);
        }
        self.out = level;
    }

    fn add_edges(&mut self, n: u64) {
        self.edges = self.edges.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }

    fn sync(&mut self, pulse: u64) {
        if pulse > self.pulse {
            self.run(pulse - self.pulse);
            self.pulse = pulse;
        }
    }

    /// Let `k` clock pulses pass, with GATE and CR fixed.
    fn run(&mut self, mut k: u64) {
        if k == 0 {
            return;
        }
        if self.load_next {
            self.load();
            k -= 1;
        }
        if k == 0 || !self.counting {
            return;
        }
        // 8254 datasheet, "Gate Pin Operations Summary": the gate enables counting in
        // modes 0, 2, 3 and 4 and only triggers in modes 1 and 5.
        match self.mode {
            0 if self.gate => self.run_to_terminal(k),
            1 => self.run_to_terminal(k),
            2 if self.gate => self.run_rate(k),
            3 if self.gate => self.run_square(k),
            4 if self.gate => self.run_strobe(k),
            5 => self.run_strobe(k),
            // Gate low in mode 4: counting stops, but a strobe still ends after one pulse.
            4 => self.set_out(true),
            _ => {}
        }
    }

    /// The pulse that moves CR into CE.
    fn load(&mut self) {
        self.load_next = false;
        self.null_count = false;
        self.counting = true;
        let n = self.count();
        match self.mode {
            // Mode 0: OUT stays low until terminal count.
            0 => self.ce = n,
            // Mode 1: "OUT will go low on the CLK pulse following a trigger".
            1 => {
                self.ce = n;
                self.out = false;
            }
            // Mode 2: a cycle starts with OUT high.
            2 => {
                self.ce = n;
                self.period = n;
                self.set_out(true);
            }
            // Mode 3: "the initial count minus one (an even number) is loaded" for odd
            // counts; a cycle starts with the high half.
            3 => {
                self.ce = n & !1;
                self.period = n;
                self.set_out(true);
            }
            // Modes 4 and 5: OUT high, the strobe armed for this load.
            _ => {
                self.ce = n;
                self.armed = true;
                self.set_out(true);
            }
        }
    }

    /// Modes 0 and 1: OUT goes high when CE reaches zero, then the counter keeps wrapping
    /// with OUT high (8254 datasheet, Mode 0 and Mode 1).
    fn run_to_terminal(&mut self, k: u64) {
        let m = u64::from(self.modulus());
        if !self.out {
            let to_zero = if self.ce == 0 { m } else { u64::from(self.ce) };
            if k >= to_zero {
                self.set_out(true);
            }
        }
        self.ce = wrap_sub(self.ce, k, m);
    }

    /// Modes 4 and 5: OUT goes low for one pulse when CE reaches zero after a load (8254
    /// datasheet, Mode 4 and Mode 5), then the counter wraps with OUT high.
    fn run_strobe(&mut self, k: u64) {
        let m = u64::from(self.modulus());
        let to_zero = if self.ce == 0 { m } else { u64::from(self.ce) };
        // A strobe under way ends on the first pulse.
        self.set_out(true);
        if self.armed && k >= to_zero {
            self.armed = false;
            self.out = false;
            if k > to_zero {
                self.set_out(true);
            }
        }
        self.ce = wrap_sub(self.ce, k, m);
    }

    /// Mode 2, rate generator (8254 datasheet, Mode 2): OUT goes low for one pulse when CE
    /// reaches 1, and on the next pulse CE is reloaded from CR and OUT goes high, so a new
    /// count takes effect at the end of the current period. A count of 1 is illegal in
    /// this mode; here it keeps OUT high.
    fn run_rate(&mut self, mut k: u64) {
        let to_reload = u64::from(self.ce.max(1));
        if k < to_reload {
            self.ce -= k as u32;
            let low = self.ce == 1 && self.period > 1;
            self.set_out(!low);
            return;
        }
        let low_before = if to_reload >= 2 { self.period > 1 } else { !self.out };
        if low_before {
            self.add_edges(1);
        }
        k -= to_reload;
        self.null_count = false;
        let p = self.count();
        self.period = p;
        let p64 = u64::from(p);
        if p > 1 {
            self.add_edges(k / p64);
        }
        self.ce = p - (k % p64) as u32;
        self.out = !(self.ce == 1 && p > 1);
    }

    /// Mode 3, square wave (8254 datasheet, Mode 3): CE counts down by two; at the end of
    /// each half-cycle OUT toggles and CE is reloaded from CR, so a new count takes effect
    /// at the end of the current half-cycle. A count of 1 keeps OUT high.
    fn run_square(&mut self, mut k: u64) {
        let n = self.period;
        let pos = u64::from((n & !1).saturating_sub(self.ce) / 2);
        let left = half_len(self.out, n).saturating_sub(pos).max(1);
        if k < left {
            self.ce = self.ce.saturating_sub(2 * k as u32);
            return;
        }
        k -= left;
        // A half-cycle ends: OUT toggles and CR is reloaded.
        self.null_count = false;
        let p = self.count();
        self.period = p;
        let was_high = self.out;
        if p == 1 {
            self.set_out(true);
            self.ce = 0;
            return;
        }
        let p64 = u64::from(p);
        let (high, low) = (half_len(true, p), half_len(false, p));
        let x = k % p64;
        let pos = if was_high {
            // Low half now, high halves start at k = low + j·p.
            if k >= low {
                self.add_edges((k - low) / p64 + 1);
            }
            self.out = x >= low;
            if x < low {
                x
            } else {
                x - low
            }
        } else {
            // High half now (a rising edge), and again at every k = j·p.
            self.add_edges(k / p64 + 1);
            self.out = x < high;
            if x < high {
                x
            } else {
                x - high
            }
        };
        self.ce = (p & !1) - 2 * pos as u32;
    }

    /// A control word for this counter (not a latch command): "When a Control Word is
    /// written to a Counter, all Control Logic is immediately reset and OUT goes to a known
    /// initial state" — low in mode 0, high otherwise (8254 datasheet, "Write
    /// Operations" and the mode descriptions). Counting waits for the new count.
    fn set_control(&mut self, v: u8) {
        let m = (v >> 1) & 7;
        self.mode = if m >= 6 { m - 4 } else { m };
        self.rw = (v >> 4) & 3;
        self.bcd = v & 1 != 0;
        self.control = v & 0x3f;
        self.cr_valid = false;
        self.pending_lsb = None;
        self.read_msb_next = false;
        self.latch = None;
        self.status = None;
        self.null_count = true;
        self.counting = false;
        self.load_next = false;
        self.armed = false;
        if self.mode == 0 {
            self.out = false;
        } else {
            self.set_out(true);
        }
    }

    /// Counter latch command: CE is copied to the output latch unless a latched count is
    /// still unread (8254 datasheet, "Counter Latch Command").
    fn latch_count(&mut self) {
        if self.latch.is_none() {
            self.latch = Some(self.value());
        }
    }

    /// Read-back status byte: OUT, NULL COUNT, RW1 RW0 M2 M1 M0 BCD (8254 datasheet,
    /// "Read-Back Command", status byte).
    fn latch_status(&mut self) {
        if self.status.is_none() {
            self.status = Some(u8::from(self.out) << 7 | u8::from(self.null_count) << 6 | self.control);
        }
    }

    /// A count byte from the guest (8254 datasheet, "Write Operations").
    fn write_count(&mut self, b: u8) {
        match self.rw {
            1 => self.cr = u16::from(b),
            2 => self.cr = u16::from(b) << 8,
            _ => match self.pending_lsb.take() {
                Some(lsb) => self.cr = u16::from(b) << 8 | u16::from(lsb),
                None => {
                    self.pending_lsb = Some(b);
                    // Mode 0: "writing the first byte disables counting. OUT is set low
                    // immediately". The other modes ignore the first byte.
                    if self.mode == 0 {
                        self.counting = false;
                        self.load_next = false;
                        self.out = false;
                    }
                    return;
                }
            },
        }
        self.cr_valid = true;
        self.null_count = true;
        match self.mode {
            // Loaded on the next pulse; in mode 0 OUT goes (or stays) low.
            0 => {
                self.out = false;
                self.load_next = true;
            }
            4 => self.load_next = true,
            // Modes 2 and 3: the first count loads on the next pulse; a new count written
            // while counting waits for the end of the (half-)cycle.
            2 | 3 if !self.counting => self.load_next = true,
            // Modes 1 and 5 wait for a gate trigger.
            _ => {}
        }
    }

    /// A byte read from the counter's port: a latched status first, then a latched count,
    /// else CE itself (8254 datasheet, "Read Operations").
    fn read(&mut self) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        let v = self.latch.unwrap_or_else(|| self.value());
        match self.rw {
            1 => {
                self.latch = None;
                v as u8
            }
            2 => {
                self.latch = None;
                (v >> 8) as u8
            }
            _ if !self.read_msb_next => {
                self.read_msb_next = true;
                v as u8
            }
            _ => {
                self.read_msb_next = false;
                self.latch = None;
                (v >> 8) as u8
            }
        }
    }

    /// The gate input changes (8254 datasheet, "Gate Pin Operations Summary"): a rising edge
    /// triggers modes 1 and 5 and restarts modes 2 and 3 (CR reloads on the next pulse);
    /// a low gate forces OUT high at once in modes 2 and 3.
    fn set_gate(&mut self, level: bool) {
        let rising = level && !self.gate;
        let falling = !level && self.gate;
        self.gate = level;
        match self.mode {
            1 | 5 if rising && self.cr_valid => self.load_next = true,
            2 | 3 => {
                if falling {
                    self.set_out(true);
                }
                if rising && self.cr_valid {
                    self.load_next = true;
                }
            }
            _ => {}
        }
    }
}

/// The 8254 and port 61h.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pit {
    counters: [Counter; 3],
    /// Port 61h bits 3–0 as written.
    port_b: u8,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// Power-on: no counter programmed, counters 0 and 1 gated on (their gates are tied
    /// high on the PC), counter 2's gate off (port 61h = 0).
    pub fn new() -> Self {
        Self { counters: [Counter::new(true), Counter::new(true), Counter::new(false)], port_b: 0 }
    }

    fn sync_all(&mut self, pulse: u64) {
        for c in &mut self.counters {
            c.sync(pulse);
        }
    }

    /// `IN` at virtual time `now`; wide accesses are split into bytes over consecutive
    /// ports. Ports that are not the PIT's (or port B's) read as all ones.
    pub fn read(&mut self, port: u16, size: IoSize, now: Nanos) -> u32 {
        let mut value = 0;
        for i in 0..size as u16 {
            value |= u32::from(self.read_byte(port.wrapping_add(i), now)) << (8 * i);
        }
        value
    }

    /// `OUT` at virtual time `now`; wide accesses are split into bytes.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32, now: Nanos) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8, now);
        }
    }

    fn read_byte(&mut self, port: u16, now: Nanos) -> u8 {
        let pulse = pulses_at(now);
        match port {
            PIT_COUNTER0..=PIT_COUNTER2 => {
                let c = &mut self.counters[usize::from(port - PIT_COUNTER0)];
                c.sync(pulse);
                c.read()
            }
            PORT_B => {
                let c = &mut self.counters[2];
                c.sync(pulse);
                let refresh = (pulse / REFRESH_PULSES) & 1 != 0;
                (self.port_b & 0x0f) | u8::from(refresh) << 4 | u8::from(c.out) << 5
            }
            // PIT_CONTROL is write-only ("No-Operation (3-State)" on read) and others
            // aren't ours.
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8, now: Nanos) {
        let pulse = pulses_at(now);
        match port {
            PIT_COUNTER0..=PIT_COUNTER2 => {
                let c = &mut self.counters[usize::from(port - PIT_COUNTER0)];
                c.sync(pulse);
                c.write_count(v);
            }
            PIT_CONTROL => {
                self.sync_all(pulse);
                self.control_word(v);
            }
            PORT_B => {
                let c = &mut self.counters[2];
                c.sync(pulse);
                self.port_b = v & 0x0f;
                c.set_gate(v & 1 != 0);
            }
            _ => {}
        }
    }

    /// The control word register (8254 datasheet, "Control Word Format"): SC1–SC0 select
    /// the counter or the read-back command, RW1–RW0 = 00 is the counter latch command.
    fn control_word(&mut self, v: u8) {
        let sc = usize::from(v >> 6);
        if sc == 3 {
            // Read-back (8254 datasheet, "Read-Back Command"): D5 = 0 latches counts, D4 =
            // 0 latches status, D3–D1 select counters 2–0.
            for (i, c) in self.counters.iter_mut().enumerate() {
                if v & (2 << i) != 0 {
                    if v & 0x20 == 0 {
                        c.latch_count();
                    }
                    if v & 0x10 == 0 {
                        c.latch_status();
                    }
                }
            }
        } else if v & 0x30 == 0 {
            self.counters[sc].latch_count();
        } else {
            self.counters[sc].set_control(v);
        }
    }

    /// Whether an `OUT` (as [`Pit::write`] takes it) may change when counter 0's OUT next
    /// rises, i.e. IRQ0's deadline: a count byte for counter 0, or a control word that
    /// programs counter 0. Counter latch and read-back commands (8254 datasheet, "Counter
    /// Latch Command", "Read-Back Command") leave the counting alone, and counters 1 and 2
    /// and port 61h do not reach IRQ0, so those writes (which guests polling the timer
    /// make often) are not reported.
    pub fn programs_counter0(port: u16, size: IoSize, value: u32) -> bool {
        (0..size as u16).any(|i| {
            let v = (value >> (8 * i)) as u8;
            match port.wrapping_add(i) {
                PIT_COUNTER0 => true,
                // SC1-SC0 = 00 (counter 0) and RW1-RW0 != 00 (not a latch command).
                PIT_CONTROL => v >> 6 == 0 && v & 0x30 != 0,
                _ => false,
            }
        })
    }

    /// Catch up to `now`: the number of rising edges of counter 0's OUT (IRQ0) since the
    /// previous call, for the bus to raise IRQ0 with.
    pub fn advance(&mut self, now: Nanos) -> u32 {
        self.sync_all(pulses_at(now));
        core::mem::take(&mut self.counters[0].edges)
    }

    /// When counter 0's OUT next rises (so `advance` returns non-zero), or `None` if it
    /// never will without guest action. Edges not yet collected are due at `now`.
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        let pulse = pulses_at(now);
        let mut c = self.counters[0];
        c.sync(pulse);
        if c.edges > 0 {
            return Some(now);
        }
        let rises_within = |d: u64| {
            let mut probe = c;
            probe.run(d);
            probe.edges > 0
        };
        if !rises_within(EDGE_SEARCH_PULSES) {
            return None;
        }
        // The smallest d with a rising edge in the next d pulses.
        let (mut lo, mut hi) = (1, EDGE_SEARCH_PULSES);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if rises_within(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(time_of_pulse(pulse + lo))
    }

    /// Level of a counter's OUT at `now` (counter 2 is the speaker input, ANDed with port
    /// 61h bit 1 on the PC). Channels above 2 read low.
    pub fn output(&self, channel: usize, now: Nanos) -> bool {
        self.counters.get(channel).is_some_and(|c| {
            let mut c = *c;
            c.sync(pulses_at(now));
            c.out
        })
    }

    /// Port 61h bit 1: the speaker data enable.
    pub fn speaker_data(&self) -> bool {
        self.port_b & 2 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instant of clock pulse `n`.
    fn t(n: u64) -> Nanos {
        time_of_pulse(n)
    }

    fn outb(p: &mut Pit, port: u16, v: u8, now: Nanos) {
        p.write(port, IoSize::Byte, u32::from(v), now);
    }
    fn inb(p: &mut Pit, port: u16, now: Nanos) -> u8 {
        p.read(port, IoSize::Byte, now) as u8
    }

    /// Program counter `ch` with `mode` and a 16-bit count (LSB then MSB) at `now`.
    fn program(p: &mut Pit, ch: u8, mode: u8, count: u16, now: Nanos) {
        outb(p, PIT_CONTROL, ch << 6 | 0x30 | mode << 1, now);
        outb(p, PIT_COUNTER0 + u16::from(ch), count as u8, now);
        outb(p, PIT_COUNTER0 + u16::from(ch), (count >> 8) as u8, now);
    }

    fn read_count(p: &mut Pit, ch: u8, now: Nanos) -> u16 {
        outb(p, PIT_CONTROL, ch << 6, now);
        let lo = inb(p, PIT_COUNTER0 + u16::from(ch), now);
        let hi = inb(p, PIT_COUNTER0 + u16::from(ch), now);
        u16::from(hi) << 8 | u16::from(lo)
    }

    #[test]
    fn pulse_time_conversion_round_trips() {
        for n in [0u64, 1, 2, 1000, 1_193_182, 123_456_789, 1 << 40] {
            assert_eq!(pulses_at(t(n)), n);
            if n > 0 {
                assert_eq!(pulses_at(t(n) - 1), n - 1);
            }
        }
        assert_eq!(pulses_at(1_000_000_000), PIT_HZ);
    }

    #[test]
    fn unprogrammed_timer_is_quiet() {
        let mut p = Pit::new();
        assert_eq!(p.advance(10_000_000_000), 0);
        assert_eq!(p.next_event(10_000_000_000), None);
    }

    #[test]
    fn mode2_rate_generator_period() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1000, 0);
        // Written during pulse 0, loaded at pulse 1; OUT low at pulse 1000 and rising as CE
        // reloads at pulse 1001, then every 1000 pulses.
        assert_eq!(p.next_event(0), Some(t(1001)));
        assert!(p.output(0, t(999)));
        assert!(!p.output(0, t(1000)));
        assert!(p.output(0, t(1001)));
        assert_eq!(p.advance(t(1001) - 1), 0);
        assert_eq!(p.advance(t(1001)), 1);
        assert_eq!(p.next_event(t(1001)), Some(t(2001)));
        assert_eq!(p.advance(t(10_001)), 9);
        // CE counts N..1.
        assert_eq!(read_count(&mut p, 0, t(10_001)), 1000);
        assert_eq!(read_count(&mut p, 0, t(10_001 + 998)), 2);
        assert_eq!(read_count(&mut p, 0, t(10_001 + 999)), 1);
    }

    #[test]
    fn mode2_new_count_waits_for_end_of_period() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 100, 0);
        // Rewrite at pulse 50: the current period still ends at pulse 101.
        outb(&mut p, PIT_COUNTER0, 10, t(50));
        outb(&mut p, PIT_COUNTER0, 0, t(50));
        assert_eq!(p.next_event(t(50)), Some(t(101)));
        assert_eq!(p.advance(t(101)), 1);
        assert_eq!(p.next_event(t(101)), Some(t(111)));
        assert_eq!(p.advance(t(201)), 10);
    }

    #[test]
    fn mode3_default_bios_rate_is_18_2_hz() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0x36, 0);
        outb(&mut p, PIT_COUNTER0, 0, 0);
        outb(&mut p, PIT_COUNTER0, 0, 0);
        // 1193182 / 65536 = 18.2: 18 rising edges in the first second.
        assert_eq!(p.advance(1_000_000_000), 18);
        // Over a minute the count is exact: edges at 1 + 65536·k.
        assert_eq!(p.advance(60_000_000_000), ((60 * PIT_HZ - 1) / 65536) as u32 - 18);
    }

    #[test]
    fn mode3_square_wave_shape() {
        // Even count 6: high 3, low 3.
        let mut p = Pit::new();
        program(&mut p, 0, 3, 6, 0);
        let shape: [bool; 13] = core::array::from_fn(|i| p.output(0, t(i as u64 + 1)));
        assert_eq!(shape, [true, true, true, false, false, false, true, true, true, false, false, false, true]);
        // CE counts down by two: 6 4 2 | 6 4 2.
        let counts: [u16; 6] = core::array::from_fn(|i| read_count(&mut p, 0, t(i as u64 + 1)));
        assert_eq!(counts, [6, 4, 2, 6, 4, 2]);
        // Odd count 5: high 3, low 2.
        let mut p = Pit::new();
        program(&mut p, 0, 3, 5, 0);
        let shape: [bool; 11] = core::array::from_fn(|i| p.output(0, t(i as u64 + 1)));
        assert_eq!(shape, [true, true, true, false, false, true, true, true, false, false, true]);
        assert_eq!(p.advance(t(11)), 2);
        assert_eq!(p.next_event(t(11)), Some(t(16)));
    }

    #[test]
    fn mode0_one_shot() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0x30, 0);
        assert!(!p.output(0, 0));
        outb(&mut p, PIT_COUNTER0, 100, 0);
        outb(&mut p, PIT_COUNTER0, 0, 0);
        // "OUT goes high N + 1 CLK pulses after the initial count is written".
        assert_eq!(p.next_event(0), Some(t(101)));
        assert!(!p.output(0, t(100)));
        assert!(p.output(0, t(101)));
        // The counter wraps and keeps counting with OUT high.
        assert_eq!(read_count(&mut p, 0, t(102)), 0xffff);
        assert_eq!(p.advance(t(1_000_000)), 1);
        assert_eq!(p.next_event(t(1_000_000)), None);
    }

    #[test]
    fn mode0_first_byte_stops_counting() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 1000, 0);
        outb(&mut p, PIT_COUNTER0, 0x10, t(500));
        assert_eq!(p.next_event(t(500)), None);
        assert_eq!(read_count(&mut p, 0, t(900)), 501);
        outb(&mut p, PIT_COUNTER0, 0x00, t(900));
        assert_eq!(p.next_event(t(900)), Some(t(917)));
    }

    #[test]
    fn counter_latch_freezes_value() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 50_000, 0);
        outb(&mut p, PIT_CONTROL, 0x00, t(1001));
        // A second latch before the read is ignored.
        outb(&mut p, PIT_CONTROL, 0x00, t(2001));
        let lo = inb(&mut p, PIT_COUNTER0, t(3001));
        let hi = inb(&mut p, PIT_COUNTER0, t(4001));
        assert_eq!(u16::from(hi) << 8 | u16::from(lo), 50_000 - 1000);
        // Unlatched reads follow the counter.
        assert_eq!(read_count(&mut p, 0, t(5001)), 50_000 - 5000);
    }

    #[test]
    fn lsb_only_and_msb_only_access() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0x14, 0); // counter 0, LSB only, mode 2
        outb(&mut p, PIT_COUNTER0, 200, 0);
        assert_eq!(inb(&mut p, PIT_COUNTER0, t(1)), 200);
        assert_eq!(inb(&mut p, PIT_COUNTER0, t(11)), 190);
        outb(&mut p, PIT_CONTROL, 0x24, t(20)); // MSB only
        outb(&mut p, PIT_COUNTER0, 0x02, t(20));
        assert_eq!(inb(&mut p, PIT_COUNTER0, t(21)), 0x02);
        assert_eq!(inb(&mut p, PIT_COUNTER0, t(22)), 0x01);
        assert_eq!(p.next_event(t(22)), Some(t(21 + 512)));
    }

    #[test]
    fn read_back_status_and_count() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0xb0, 0); // counter 2, LSB/MSB, mode 0
                                            // Status: OUT low, null count, RW=11, mode 0.
        outb(&mut p, PIT_CONTROL, 0xe8, 0); // read-back status of counter 2
        assert_eq!(inb(&mut p, PIT_COUNTER2, 0), 0x70);
        outb(&mut p, PORT_B, 0x01, 0);
        outb(&mut p, PIT_COUNTER2, 0x34, 0);
        outb(&mut p, PIT_COUNTER2, 0x12, 0);
        // Count and status together: status first, then the count.
        outb(&mut p, PIT_CONTROL, 0xc8, t(5));
        assert_eq!(inb(&mut p, PIT_COUNTER2, t(9)), 0x30, "loaded: null count clear");
        assert_eq!(inb(&mut p, PIT_COUNTER2, t(9)), 0x30);
        assert_eq!(inb(&mut p, PIT_COUNTER2, t(9)), 0x12);
        // Read-back of counters 0 and 1 only leaves counter 2 alone.
        outb(&mut p, PIT_CONTROL, 0xe6, t(9));
        assert_eq!(inb(&mut p, PIT_COUNTER2, t(9)), 0x2c);
        // After terminal count the status shows OUT high.
        outb(&mut p, PIT_CONTROL, 0xe8, t(0x1235));
        assert_eq!(inb(&mut p, PIT_COUNTER2, t(0x1235)), 0xb0);
    }

    #[test]
    fn bcd_counting() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0x35, 0); // mode 2, BCD
        outb(&mut p, PIT_COUNTER0, 0x00, 0);
        outb(&mut p, PIT_COUNTER0, 0x10, 0); // 1000 decimal
        assert_eq!(p.next_event(0), Some(t(1001)));
        assert_eq!(read_count(&mut p, 0, t(12)), 0x0989);
        // Count 0 in BCD is 10000.
        outb(&mut p, PIT_CONTROL, 0x31, t(20)); // mode 0, BCD
        outb(&mut p, PIT_COUNTER0, 0, t(20));
        outb(&mut p, PIT_COUNTER0, 0, t(20));
        assert_eq!(read_count(&mut p, 0, t(22)), 0x9999);
        assert_eq!(p.next_event(t(22)), Some(t(10_021)));
    }

    #[test]
    fn channel2_gate_and_output_via_port_61() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0xb0, 0); // counter 2 mode 0
        outb(&mut p, PIT_COUNTER2, 100, 0);
        outb(&mut p, PIT_COUNTER2, 0, 0);
        // Gate off: loaded but not counting.
        assert_eq!(inb(&mut p, PORT_B, t(1000)) & 0x20, 0);
        assert_eq!(read_count(&mut p, 2, t(1000)), 100);
        outb(&mut p, PORT_B, 0x03, t(1000));
        assert_eq!(inb(&mut p, PORT_B, t(1099)) & 0x23, 0x03);
        assert_eq!(inb(&mut p, PORT_B, t(1100)) & 0x23, 0x23);
        assert!(p.speaker_data());
        // Channel 2 does not drive IRQ0.
        assert_eq!(p.advance(t(2000)), 0);
    }

    #[test]
    fn mode2_gate_low_holds_output_high_and_rising_restarts() {
        let mut p = Pit::new();
        outb(&mut p, PORT_B, 0x01, 0);
        program(&mut p, 2, 2, 10, 0);
        assert!(!p.output(2, t(10)));
        outb(&mut p, PORT_B, 0x00, t(10));
        assert!(p.output(2, t(10)), "gate low forces OUT high");
        assert_eq!(read_count(&mut p, 2, t(50)), 1);
        outb(&mut p, PORT_B, 0x01, t(50));
        assert_eq!(read_count(&mut p, 2, t(51)), 10);
        assert!(!p.output(2, t(60)));
    }

    #[test]
    fn mode1_one_shot_triggered_by_gate() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0xb2, 0); // counter 2, mode 1
        outb(&mut p, PIT_COUNTER2, 5, 0);
        outb(&mut p, PIT_COUNTER2, 0, 0);
        assert!(p.output(2, t(100)));
        outb(&mut p, PORT_B, 0x01, t(100));
        assert!(p.output(2, t(100)));
        assert!(!p.output(2, t(101)));
        assert!(!p.output(2, t(105)));
        assert!(p.output(2, t(106)));
        // Retrigger during the pulse restarts it.
        outb(&mut p, PORT_B, 0x00, t(200));
        outb(&mut p, PORT_B, 0x01, t(200));
        outb(&mut p, PORT_B, 0x00, t(203));
        outb(&mut p, PORT_B, 0x01, t(203));
        assert!(!p.output(2, t(208)));
        assert!(p.output(2, t(209)));
    }

    #[test]
    fn mode4_software_strobe() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0x38, 0);
        outb(&mut p, PIT_COUNTER0, 10, 0);
        outb(&mut p, PIT_COUNTER0, 0, 0);
        assert!(p.output(0, t(10)));
        assert!(!p.output(0, t(11)), "low N + 1 pulses after the write");
        assert!(p.output(0, t(12)));
        assert_eq!(p.advance(t(100_000)), 1, "one strobe per count written");
        assert_eq!(p.next_event(t(100_000)), None);
    }

    #[test]
    fn mode5_hardware_strobe() {
        let mut p = Pit::new();
        outb(&mut p, PIT_CONTROL, 0xba, 0); // counter 2, mode 5
        outb(&mut p, PIT_COUNTER2, 3, 0);
        outb(&mut p, PIT_COUNTER2, 0, 0);
        assert!(p.output(2, t(50)));
        outb(&mut p, PORT_B, 0x01, t(50));
        assert!(p.output(2, t(53)));
        assert!(!p.output(2, t(54)));
        assert!(p.output(2, t(55)));
    }

    #[test]
    fn control_word_resets_output() {
        let mut p = Pit::new();
        program(&mut p, 0, 0, 1000, 0);
        assert!(!p.output(0, t(10)));
        // Switching to mode 2 sets OUT high at once: that is an IRQ0 edge.
        outb(&mut p, PIT_CONTROL, 0x34, t(10));
        assert_eq!(p.next_event(t(10)), Some(t(10)));
        assert_eq!(p.advance(t(10)), 1);
        assert_eq!(p.next_event(t(10)), None, "no count written yet");
    }

    #[test]
    fn refresh_toggle_flips_every_15us() {
        let mut p = Pit::new();
        let bit = |p: &mut Pit, n| inb(p, PORT_B, t(n)) & 0x10 != 0;
        assert!(!bit(&mut p, 0));
        assert!(!bit(&mut p, 17));
        assert!(bit(&mut p, 18));
        assert!(!bit(&mut p, 36));
    }

    #[test]
    fn stepping_is_independent_of_observation() {
        // Jumping straight to a time gives the same state as looking at every pulse.
        let cases: [(u8, u16); 12] =
            [(0, 7), (1, 7), (2, 7), (2, 2), (2, 1), (3, 7), (3, 8), (3, 1), (3, 2), (4, 5), (5, 5), (2, 0)];
        for (mode, count) in cases {
            let setup = |p: &mut Pit| {
                outb(p, PORT_B, 0x01, 0);
                program(p, 2, mode, count, 0);
                outb(p, PORT_B, 0x00, 0);
                outb(p, PORT_B, 0x01, 0);
            };
            let mut a = Pit::new();
            let mut b = Pit::new();
            setup(&mut a);
            setup(&mut b);
            let mut edges_a = 0;
            for n in 1..300 {
                a.counters[2].sync(n);
                edges_a += core::mem::take(&mut a.counters[2].edges);
                if n == 120 {
                    // A new count mid-way.
                    a.counters[2].write_count(3);
                    a.counters[2].write_count(0);
                    b.counters[2].sync(120);
                    b.counters[2].write_count(3);
                    b.counters[2].write_count(0);
                }
            }
            b.counters[2].sync(299);
            let edges_b = core::mem::take(&mut b.counters[2].edges);
            assert_eq!(a.counters[2], b.counters[2], "mode {mode} count {count}");
            assert_eq!(edges_a, edges_b, "mode {mode} count {count}");
        }
    }

    #[test]
    fn random_sequences_step_consistently() {
        // A small LCG (Knuth's MMIX constants) drives random programming, gate changes and
        // rewrites; one copy is looked at on every pulse, the other only at the events.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = |n: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut total_edges = 0;
        for _ in 0..2000 {
            let mut a = Counter::new(rand(2) == 1);
            let mut events = [(0u64, 0u8, 0u8); 8];
            let mut at = 0;
            for e in &mut events {
                at += rand(40);
                *e = (at, rand(4) as u8, rand(256) as u8);
            }
            let mut b = a;
            let mut edges_a = 0;
            let apply = |c: &mut Counter, kind: u8, v: u8| match kind {
                0 => c.set_control(if v & 0x40 != 0 { 0x10 } else { 0x30 } | (v % 6) << 1 | u8::from(v & 0x80 != 0)),
                1 => c.write_count(v % 23),
                2 => c.set_gate(v & 1 != 0),
                _ => c.latch_count(),
            };
            let mut next = 0;
            for pulse in 0..=at + 100 {
                a.sync(pulse);
                edges_a += core::mem::take(&mut a.edges);
                while next < events.len() && events[next].0 == pulse {
                    let (_, kind, v) = events[next];
                    b.sync(pulse);
                    apply(&mut a, kind, v);
                    apply(&mut b, kind, v);
                    next += 1;
                }
            }
            b.sync(at + 100);
            edges_a += core::mem::take(&mut a.edges);
            let edges_b = core::mem::take(&mut b.edges);
            assert_eq!(a, b, "{events:?}");
            assert_eq!(edges_a, edges_b, "{events:?}");
            total_edges += edges_b;
        }
        assert!(total_edges > 1_000, "the sequences exercise OUT: {total_edges} edges");
    }

    #[test]
    fn next_event_matches_advance() {
        for (mode, count) in [(2u8, 3u16), (3, 5), (3, 4), (0, 9), (2, 0)] {
            let mut p = Pit::new();
            program(&mut p, 0, mode, count, t(7));
            let mut now = t(7);
            for _ in 0..5 {
                let Some(next) = p.next_event(now) else { break };
                assert!(next > now);
                assert_eq!(p.advance(next - 1), 0, "mode {mode}");
                assert_eq!(p.advance(next), 1, "mode {mode}");
                now = next;
            }
        }
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut p = Pit::new();
        let mut now = 0;
        for v in 0..=255u8 {
            for port in [0x40, 0x41, 0x42, 0x43, 0x61] {
                outb(&mut p, port, v, now);
                let _ = inb(&mut p, port, now);
                now += 997;
            }
            let _ = p.advance(now);
            let _ = p.next_event(now);
        }
        assert_eq!(p.read(0x44, IoSize::Byte, now), 0xff);
        assert_eq!(p.read(0x43, IoSize::Byte, now), 0xff);
        let _ = p.advance(u64::MAX);
        let _ = p.next_event(u64::MAX);
    }
}
