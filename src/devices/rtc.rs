//! The Motorola MC146818A real-time clock and its CMOS RAM, behind the PC/AT's index port
//! 70h (whose bit 7 is the NMI mask, a PC addition) and data port 71h. The clock drives
//! IRQ8.
//!
//! The calendar starts at the Unix time given to [`Rtc::new`] and advances with virtual
//! time: the 32.768 kHz time base is `floor(now · 32768 / 10⁹)` ticks, the divider chain
//! counts those ticks, and update cycles (one per second), periodic interrupts and alarms
//! are computed in closed form from the divider count, so the clock is an exact function
//! of `now` and of the guest's accesses. The calendar arithmetic is done here (no external
//! crates).
//!
//! Behaviour follows the MC146818A datasheet (section names are quoted in the comments):
//! time, calendar and alarm registers in BCD or binary and 12- or 24-hour form, registers
//! A–D (divider and rate select, SET, PIE/AIE/UIE, DM, 24/12, UIP, IRQF/PF/AF/UF cleared
//! on read, VRT), periodic, alarm and update-ended interrupts. Not emulated: daylight
//! saving (DSE is stored but has no effect), the square-wave output (not wired on the PC)
//! and time bases other than 32.768 kHz.

use super::Nanos;
use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// Index register; bit 7 masks NMI. IBM PC/AT Technical Reference, I/O address map:
/// 070h "CMOS RAM address register port (write only) and NMI mask"; bit 7 = 1 disables NMI.
pub const RTC_INDEX: u16 = 0x70;
/// Data register: the CMOS byte the index selects (IBM PC/AT Technical Reference: 071h
/// "CMOS RAM data register port").
pub const RTC_DATA: u16 = 0x71;
/// Century in the PC's CMOS layout (IBM PC/AT Technical Reference, "CMOS RAM Address Map":
/// 32h, date century byte), kept in the clock's BCD/binary format; the clock advances it
/// when the year register wraps from 99 to 00.
pub const CMOS_CENTURY: u8 = 0x32;

// Register indexes (MC146818A datasheet, "Address Map").
const REG_SECONDS: usize = 0x00;
const REG_SECONDS_ALARM: usize = 0x01;
const REG_MINUTES: usize = 0x02;
const REG_MINUTES_ALARM: usize = 0x03;
const REG_HOURS: usize = 0x04;
const REG_HOURS_ALARM: usize = 0x05;
const REG_DAY_OF_WEEK: usize = 0x06;
const REG_DAY_OF_MONTH: usize = 0x07;
const REG_MONTH: usize = 0x08;
const REG_YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;

// Register A (MC146818A datasheet, "Register A"): UIP, DV2–DV0, RS3–RS0.
const A_UIP: u8 = 0x80;
const A_DV: u8 = 0x70;
/// DV = 010: 32.768 kHz time base, divider running.
const A_DV_32K: u8 = 0x20;
const A_RS: u8 = 0x0f;
// Register B (MC146818A datasheet, "Register B").
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
/// DM: 1 = binary, 0 = BCD.
const B_DM: u8 = 0x04;
/// 24/12: 1 = 24-hour mode.
const B_24H: u8 = 0x02;
// Register C (MC146818A datasheet, "Register C").
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// Register D: VRT, valid RAM and time (MC146818A datasheet, "Register D").
const D_VRT: u8 = 0x80;
/// Alarm bytes C0h–FFh mean "don't care" (MC146818A datasheet, "Alarm").
const ALARM_ANY: u8 = 0xc0;

/// The time base, Hz.
const TIMEBASE_HZ: u64 = 32_768;
/// Divider count of the first update after the divider reset is released: "the first
/// update cycle begins one-half second later" (MC146818A datasheet, "Register A", DV).
const HALF_SECOND: u64 = TIMEBASE_HZ / 2;
/// UIP is high from 244 µs before an update cycle to its end, 1984 µs later at 32.768 kHz
/// (MC146818A datasheet, "Update Cycle", tBUC and tUC): 8 + 65 ticks.
const UIP_TICKS: u64 = 8 + 65;
const SECONDS_PER_DAY: u64 = 86_400;
/// Days in four years when every fourth year is a leap year.
const DAYS_PER_4_YEARS: u64 = 4 * 365 + 1;
/// Days in 400 Gregorian years.
const DAYS_PER_400_YEARS: u64 = 146_097;

/// 32.768 kHz ticks by `now`.
fn ticks_at(now: Nanos) -> u64 {
    (u128::from(now) * u128::from(TIMEBASE_HZ) / 1_000_000_000) as u64
}

/// The first instant at which `ticks_at` reaches `tick`.
fn time_of_tick(tick: u64) -> Nanos {
    let t = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(TIMEBASE_HZ));
    u64::try_from(t).unwrap_or(u64::MAX)
}

fn gregorian_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(month: u32, leap: bool) -> u32 {
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // The Gregorian calendar repeats every 400 years.
    let mut year = 1970 + 400 * (days / DAYS_PER_400_YEARS);
    let mut days = days % DAYS_PER_400_YEARS;
    loop {
        let len = if gregorian_leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1;
    loop {
        let len = u64::from(days_in_month(month, gregorian_leap(year)));
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    (year, month, days as u32 + 1)
}

/// An alarm register: don't care, a value, or one that no time can match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AlarmField {
    Any,
    Is(u32),
    Never,
}

impl AlarmField {
    fn matches(self, v: u32) -> bool {
        match self {
            AlarmField::Any => true,
            AlarmField::Is(x) => x == v,
            AlarmField::Never => false,
        }
    }
}

/// The time and calendar registers, decoded to binary with the hour in 24-hour form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DateTime {
    sec: u32,
    min: u32,
    hour: u32,
    /// 1–7, Sunday = 1 (MC146818A datasheet, "Address Map").
    dow: u32,
    day: u32,
    month: u32,
    /// The two-digit year register, 0–99.
    year: u32,
}

impl DateTime {
    fn time_of_day(&self) -> u64 {
        u64::from(self.hour) * 3600 + u64::from(self.min) * 60 + u64::from(self.sec)
    }

    /// `n` seconds later, and how many times the year register wrapped past 99. Leap years
    /// are those whose two-digit year is divisible by four: the chip sees only the
    /// two-digit year (MC146818A datasheet, "Features": leap year compensation), which is
    /// right from 1901 to 2099.
    fn plus_seconds(mut self, n: u64) -> (Self, u64) {
        let total = self.time_of_day() + n;
        let tod = total % SECONDS_PER_DAY;
        let mut days = total / SECONDS_PER_DAY;
        self.hour = (tod / 3600) as u32;
        self.min = (tod / 60 % 60) as u32;
        self.sec = (tod % 60) as u32;
        self.dow = ((u64::from(self.dow) - 1 + days % 7) % 7) as u32 + 1;
        // Every four years hold exactly one leap day, wherever they start.
        let mut years = 4 * (days / DAYS_PER_4_YEARS);
        days %= DAYS_PER_4_YEARS;
        while days > 0 {
            let leap = (u64::from(self.year) + years) % 4 == 0;
            let left = u64::from(days_in_month(self.month, leap) - self.day);
            if days <= left {
                self.day += days as u32;
                days = 0;
            } else {
                days -= left + 1;
                self.day = 1;
                self.month += 1;
                if self.month > 12 {
                    self.month = 1;
                    years += 1;
                }
            }
        }
        let year = u64::from(self.year) + years;
        self.year = (year % 100) as u32;
        (self, year / 100)
    }
}

/// The MC146818A with 128 bytes of CMOS RAM.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rtc {
    /// Registers 00h–0Dh (C and D are computed, A without UIP) and RAM 0Eh–7Fh.
    #[serde(with = "serde_big_array::BigArray")]
    ram: [u8; 128],
    /// Port 70h bits 6–0.
    index: u8,
    /// Port 70h bit 7.
    nmi_masked: bool,
    pf: bool,
    af: bool,
    uf: bool,
    /// Time-base ticks the clock has been brought forward to.
    tick: u64,
    /// Tick at which the divider chain last left reset.
    divider_start: u64,
    /// Divider count at `divider_start`; updates happen at multiples of 32768.
    divider_bias: u64,
}

impl Rtc {
    /// A clock reading `start_unix_secs` (UTC) at virtual time 0, in the format a PC BIOS
    /// sets up: register A = 26h (32.768 kHz time base, 1024 Hz periodic rate), register B =
    /// 02h (BCD, 24-hour, interrupts off). The first update comes one second later.
    pub fn new(start_unix_secs: u64) -> Self {
        let mut rtc = Self {
            ram: [0; 128],
            index: 0,
            nmi_masked: false,
            pf: false,
            af: false,
            uf: false,
            tick: 0,
            divider_start: 0,
            divider_bias: 0,
        };
        rtc.ram[REG_A] = A_DV_32K | 0x06;
        rtc.ram[REG_B] = B_24H;
        let days = start_unix_secs / SECONDS_PER_DAY;
        let tod = start_unix_secs % SECONDS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        rtc.encode_time(DateTime {
            sec: (tod % 60) as u32,
            min: (tod / 60 % 60) as u32,
            hour: (tod / 3600) as u32,
            // 1970-01-01 was a Thursday (5 with Sunday = 1).
            dow: ((days + 4) % 7) as u32 + 1,
            day,
            month,
            year: (year % 100) as u32,
        });
        rtc.ram[usize::from(CMOS_CENTURY)] = rtc.enc((year / 100 % 100) as u32);
        rtc
    }

    /// `IN` at virtual time `now` (wide accesses are split into bytes over consecutive
    /// ports). The index port is write-only and, like ports that are not the clock's,
    /// reads as all ones.
    pub fn read(&mut self, port: u16, size: IoSize, now: Nanos) -> u32 {
        let mut value = 0;
        for i in 0..size as u16 {
            let byte = match port.wrapping_add(i) {
                RTC_DATA => self.read_register(now),
                _ => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` at virtual time `now` (wide accesses are split into bytes).
    pub fn write(&mut self, port: u16, size: IoSize, value: u32, now: Nanos) {
        for i in 0..size as u16 {
            let byte = (value >> (8 * i)) as u8;
            match port.wrapping_add(i) {
                RTC_INDEX => {
                    self.index = byte & 0x7f;
                    self.nmi_masked = byte & 0x80 != 0;
                }
                RTC_DATA => self.write_register(byte, now),
                _ => {}
            }
        }
    }

    /// Catch up to `now`: update cycles, periodic ticks and alarms set their flags; the
    /// bus then reads [`Rtc::irq`].
    pub fn advance(&mut self, now: Nanos) {
        self.sync(ticks_at(now));
    }

    /// The IRQ8 output: register C's IRQF, i.e. PF·PIE + AF·AIE + UF·UIE (MC146818A
    /// datasheet, "Register C"). It stays high until register C is read.
    pub fn irq(&self) -> bool {
        let b = self.ram[REG_B];
        (self.pf && b & B_PIE != 0) || (self.af && b & B_AIE != 0) || (self.uf && b & B_UIE != 0)
    }

    /// Whether port 70h bit 7 masks NMI.
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// When IRQ8 next rises, or `None` if it is already high (it falls only when the guest
    /// reads register C) or nothing enabled will raise it. Flags not yet collected with
    /// `advance` are due at `now`.
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        if self.irq() {
            return None;
        }
        let t = ticks_at(now);
        let mut rtc = self.clone();
        rtc.sync(t);
        if rtc.irq() {
            return Some(now);
        }
        if !rtc.running() {
            return None;
        }
        let d = rtc.divider(t);
        let b = rtc.ram[REG_B];
        let next_update = |k: u64| (d / TIMEBASE_HZ + k) * TIMEBASE_HZ;
        let mut best: Option<u64> = None;
        let mut consider = |count: u64| best = Some(best.map_or(count, |b| b.min(count)));
        if b & B_PIE != 0 {
            if let Some(p) = rtc.periodic_ticks() {
                consider((d / p + 1) * p);
            }
        }
        if b & B_SET == 0 {
            if b & B_UIE != 0 {
                consider(next_update(1));
            }
            if b & B_AIE != 0 {
                if let Some(k) = rtc.next_alarm(rtc.decode_time().time_of_day()) {
                    consider(next_update(k));
                }
            }
        }
        best.map(|count| time_of_tick(count - rtc.divider_bias + rtc.divider_start))
    }

    /// Store a CMOS byte for the machine (memory size, equipment, boot order…). Indexes
    /// 0Ah–0Dh are the clock's control and status registers, not RAM, and are left alone;
    /// program those through the ports.
    pub fn set_cmos(&mut self, index: u8, value: u8) {
        let i = usize::from(index & 0x7f);
        if !(REG_A..=REG_D).contains(&i) {
            self.ram[i] = value;
        }
    }

    /// A CMOS byte as stored, without side effects (register C is not cleared, register A
    /// shows UIP clear).
    pub fn cmos(&self, index: u8) -> u8 {
        match usize::from(index & 0x7f) {
            REG_C => self.reg_c(),
            REG_D => D_VRT,
            i => self.ram[i],
        }
    }

    fn read_register(&mut self, now: Nanos) -> u8 {
        self.sync(ticks_at(now));
        match usize::from(self.index) {
            REG_A => self.ram[REG_A] | if self.uip() { A_UIP } else { 0 },
            // Reading register C clears it (MC146818A datasheet, "Register C": "all flag
            // bits are cleared after Register C is read").
            REG_C => {
                let c = self.reg_c();
                self.pf = false;
                self.af = false;
                self.uf = false;
                c
            }
            REG_D => D_VRT,
            i => self.ram[i],
        }
    }

    fn write_register(&mut self, v: u8, now: Nanos) {
        let t = ticks_at(now);
        self.sync(t);
        match usize::from(self.index) {
            REG_A => {
                let was_running = self.running();
                // UIP is read-only.
                self.ram[REG_A] = v & !A_UIP;
                if self.running() && !was_running {
                    self.divider_start = t;
                    self.divider_bias = HALF_SECOND;
                }
            }
            // "UIE ... is cleared when SET goes to 1" (MC146818A datasheet, "Register B").
            REG_B => self.ram[REG_B] = if v & B_SET != 0 { v & !B_UIE } else { v },
            // Registers C and D are read-only.
            REG_C | REG_D => {}
            i => self.ram[i] = v,
        }
    }

    fn reg_c(&self) -> u8 {
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        flag(self.irq(), C_IRQF) | flag(self.pf, C_PF) | flag(self.af, C_AF) | flag(self.uf, C_UF)
    }

    /// The divider chain runs only with DV = 010; 11x holds it in reset, and the other
    /// codes select time bases the PC's 32.768 kHz crystal does not drive (MC146818A
    /// datasheet, "Register A", divider table), so the clock stands still.
    fn running(&self) -> bool {
        self.ram[REG_A] & A_DV == A_DV_32K
    }

    fn divider(&self, tick: u64) -> u64 {
        tick.saturating_sub(self.divider_start) + self.divider_bias
    }

    /// Periodic interrupt period in time-base ticks for RS3–RS0 (MC146818A datasheet,
    /// "Periodic Interrupt Rate and Square-Wave Output Frequency", 32.768 kHz column):
    /// none for 0, 3.90625 ms and 7.8125 ms for 1 and 2 (as for 8 and 9), and 2^(RS−1)
    /// ticks (122.070 µs … 500 ms) for 3–15.
    fn periodic_ticks(&self) -> Option<u64> {
        match self.ram[REG_A] & A_RS {
            0 => None,
            rs @ 1..=2 => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    /// UIP: an update cycle is imminent or under way (MC146818A datasheet, "Register A",
    /// UIP; cleared while SET = 1).
    fn uip(&self) -> bool {
        self.running()
            && self.ram[REG_B] & B_SET == 0
            && self.divider(self.tick) % TIMEBASE_HZ >= TIMEBASE_HZ - UIP_TICKS
    }

    /// Bring the clock forward to time-base tick `t`.
    fn sync(&mut self, t: u64) {
        if t <= self.tick {
            return;
        }
        if self.running() {
            let (d0, d1) = (self.divider(self.tick), self.divider(t));
            if let Some(p) = self.periodic_ticks() {
                if d1 / p > d0 / p {
                    self.pf = true;
                }
            }
            let updates = d1 / TIMEBASE_HZ - d0 / TIMEBASE_HZ;
            // SET = 1 inhibits update cycles (MC146818A datasheet, "Register B").
            if updates > 0 && self.ram[REG_B] & B_SET == 0 {
                self.update(updates);
            }
        }
        self.tick = t;
    }

    /// `n` update cycles: the time advances `n` seconds, UF is set, and AF if the alarm
    /// matched after any of them (MC146818A datasheet, "Update Cycle", "Alarm").
    fn update(&mut self, n: u64) {
        let now = self.decode_time();
        if self.next_alarm(now.time_of_day()).is_some_and(|k| k <= n) {
            self.af = true;
        }
        let (later, centuries) = now.plus_seconds(n);
        self.encode_time(later);
        if centuries > 0 {
            let i = usize::from(CMOS_CENTURY);
            let c = self.dec(self.ram[i]);
            if c <= 99 {
                self.ram[i] = self.enc(((u64::from(c) + centuries) % 100) as u32);
            }
        }
        self.uf = true;
    }

    /// Seconds after time of day `tod` at which the alarm next matches (1 to 86400), if
    /// ever.
    fn next_alarm(&self, tod: u64) -> Option<u64> {
        let sec = self.alarm_field(self.ram[REG_SECONDS_ALARM], |b| Some(self.dec(b)).filter(|&v| v < 60));
        let min = self.alarm_field(self.ram[REG_MINUTES_ALARM], |b| Some(self.dec(b)).filter(|&v| v < 60));
        let hour = self.alarm_field(self.ram[REG_HOURS_ALARM], |b| self.dec_hour(b));
        if [sec, min, hour].contains(&AlarmField::Never) {
            return None;
        }
        let next = (tod + 1) % SECONDS_PER_DAY;
        let distance = |x: u64| (x + SECONDS_PER_DAY - next) % SECONDS_PER_DAY + 1;
        let mut best = None;
        for h in (0..24).filter(|&h| hour.matches(h)) {
            for m in (0..60).filter(|&m| min.matches(m)) {
                let base = u64::from(h * 3600 + m * 60);
                let d = match sec {
                    AlarmField::Is(s) => distance(base + u64::from(s)),
                    // Any second of this minute: the first one after `tod`.
                    _ if (base..base + 60).contains(&next) => 1,
                    _ => distance(base),
                };
                best = Some(best.map_or(d, |b: u64| b.min(d)));
            }
        }
        best
    }

    fn alarm_field(&self, b: u8, decode: impl Fn(u8) -> Option<u32>) -> AlarmField {
        if b >= ALARM_ANY {
            AlarmField::Any
        } else {
            decode(b).map_or(AlarmField::Never, AlarmField::Is)
        }
    }

    fn binary(&self) -> bool {
        self.ram[REG_B] & B_DM != 0
    }

    /// A register value in the current data mode (MC146818A datasheet, "Register B", DM).
    fn enc(&self, v: u32) -> u8 {
        if self.binary() {
            v as u8
        } else {
            (((v / 10 % 10) << 4) | (v % 10)) as u8
        }
    }

    fn dec(&self, b: u8) -> u32 {
        if self.binary() {
            u32::from(b)
        } else {
            u32::from(b >> 4) * 10 + u32::from(b & 0xf)
        }
    }

    /// An hours byte to 0–23: in 12-hour mode 1–12 with bit 7 set for PM (MC146818A
    /// datasheet, "Time, Calendar, and Alarm Data Modes" table).
    fn dec_hour(&self, b: u8) -> Option<u32> {
        if self.ram[REG_B] & B_24H != 0 {
            Some(self.dec(b)).filter(|&h| h < 24)
        } else {
            let h = self.dec(b & 0x7f);
            let pm = if b & 0x80 != 0 { 12 } else { 0 };
            (1..=12).contains(&h).then_some(h % 12 + pm)
        }
    }

    fn enc_hour(&self, h: u32) -> u8 {
        if self.ram[REG_B] & B_24H != 0 {
            self.enc(h)
        } else {
            let h12 = if h % 12 == 0 { 12 } else { h % 12 };
            self.enc(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    /// The time registers as the update cycle sees them. Out-of-range values give
    /// undefined results on the chip; here they are pulled into range.
    fn decode_time(&self) -> DateTime {
        let r = |i: usize| self.dec(self.ram[i]);
        let month = r(REG_MONTH).clamp(1, 12);
        let year = r(REG_YEAR) % 100;
        let dow = r(REG_DAY_OF_WEEK);
        DateTime {
            sec: r(REG_SECONDS).min(59),
            min: r(REG_MINUTES).min(59),
            hour: self.dec_hour(self.ram[REG_HOURS]).unwrap_or(0),
            dow: if (1..=7).contains(&dow) { dow } else { 1 },
            day: r(REG_DAY_OF_MONTH).clamp(1, days_in_month(month, year % 4 == 0)),
            month,
            year,
        }
    }

    fn encode_time(&mut self, t: DateTime) {
        self.ram[REG_SECONDS] = self.enc(t.sec);
        self.ram[REG_MINUTES] = self.enc(t.min);
        self.ram[REG_HOURS] = self.enc_hour(t.hour);
        self.ram[REG_DAY_OF_WEEK] = self.enc(t.dow);
        self.ram[REG_DAY_OF_MONTH] = self.enc(t.day);
        self.ram[REG_MONTH] = self.enc(t.month);
        self.ram[REG_YEAR] = self.enc(t.year);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;

    fn reg(r: &mut Rtc, index: u8, now: Nanos) -> u8 {
        r.write(RTC_INDEX, IoSize::Byte, u32::from(index), now);
        r.read(RTC_DATA, IoSize::Byte, now) as u8
    }
    fn set_reg(r: &mut Rtc, index: u8, v: u8, now: Nanos) {
        r.write(RTC_INDEX, IoSize::Byte, u32::from(index), now);
        r.write(RTC_DATA, IoSize::Byte, u32::from(v), now);
    }
    /// (century, year, month, day, hour, min, sec, dow) as raw register bytes.
    fn clock(r: &mut Rtc, now: Nanos) -> [u8; 8] {
        [
            reg(r, CMOS_CENTURY, now),
            reg(r, 9, now),
            reg(r, 8, now),
            reg(r, 7, now),
            reg(r, 4, now),
            reg(r, 2, now),
            reg(r, 0, now),
            reg(r, 6, now),
        ]
    }

    #[test]
    fn epoch_in_bcd() {
        let mut r = Rtc::new(0);
        assert_eq!(clock(&mut r, 0), [0x19, 0x70, 0x01, 0x01, 0x00, 0x00, 0x00, 5]);
        assert_eq!(reg(&mut r, 0x0a, 0), 0x26);
        assert_eq!(reg(&mut r, 0x0b, 0), 0x02);
        assert_eq!(reg(&mut r, 0x0d, 0), 0x80);
    }

    #[test]
    fn start_time_conversion() {
        // 2021-04-30 12:00:00 UTC, a Friday.
        let mut r = Rtc::new(1_619_784_000);
        assert_eq!(clock(&mut r, 0), [0x20, 0x21, 0x04, 0x30, 0x12, 0x00, 0x00, 6]);
        // 2100-02-28 23:59:59, a Sunday.
        let mut r = Rtc::new(4_107_542_399);
        assert_eq!(clock(&mut r, 0), [0x21, 0x00, 0x02, 0x28, 0x23, 0x59, 0x59, 1]);
    }

    #[test]
    fn seconds_tick_at_whole_seconds() {
        let mut r = Rtc::new(0);
        assert_eq!(reg(&mut r, 0, SEC - 1), 0x00);
        assert_eq!(reg(&mut r, 0, SEC), 0x01);
        assert_eq!(reg(&mut r, 0, 59 * SEC), 0x59);
        assert_eq!(clock(&mut r, 3600 * SEC), [0x19, 0x70, 0x01, 0x01, 0x01, 0x00, 0x00, 5]);
    }

    #[test]
    fn leap_day_rollover() {
        // 2024-02-28 23:59:59, a Wednesday.
        let mut r = Rtc::new(1_709_164_799);
        assert_eq!(clock(&mut r, SEC), [0x20, 0x24, 0x02, 0x29, 0x00, 0x00, 0x00, 5]);
        assert_eq!(clock(&mut r, 86_401 * SEC), [0x20, 0x24, 0x03, 0x01, 0x00, 0x00, 0x00, 6]);
    }

    #[test]
    fn month_rollover_in_common_year() {
        // 2023-01-31 23:59:59, a Tuesday.
        let mut r = Rtc::new(1_675_209_599);
        assert_eq!(clock(&mut r, SEC), [0x20, 0x23, 0x02, 0x01, 0x00, 0x00, 0x00, 4]);
        assert_eq!(clock(&mut r, (28 * 86_400 + 1) * SEC), [0x20, 0x23, 0x03, 0x01, 0x00, 0x00, 0x00, 4]);
        assert_eq!(clock(&mut r, (89 * 86_400 + 1) * SEC), [0x20, 0x23, 0x05, 0x01, 0x00, 0x00, 0x00, 2]);
    }

    #[test]
    fn year_and_century_rollover() {
        // 1999-12-31 23:59:59, a Friday.
        let mut r = Rtc::new(946_684_799);
        assert_eq!(clock(&mut r, 0), [0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59, 6]);
        assert_eq!(clock(&mut r, SEC), [0x20, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 7]);
        // 2000 is a leap year.
        assert_eq!(clock(&mut r, (59 * 86_400 + 1) * SEC), [0x20, 0x00, 0x02, 0x29, 0x00, 0x00, 0x00, 3]);
    }

    #[test]
    fn long_jump_equals_small_steps() {
        let mut a = Rtc::new(1_000_000_000);
        let mut b = Rtc::new(1_000_000_000);
        let end = 3 * 366 * 86_400 * SEC + 12_345 * SEC;
        let mut now = 0;
        while now < end {
            now = (now + 3_600 * SEC + 77).min(end);
            a.advance(now);
        }
        b.advance(end);
        assert_eq!(clock(&mut a, end), clock(&mut b, end));
        assert_eq!(a.ram, b.ram);
    }

    #[test]
    fn binary_mode_and_set() {
        let mut r = Rtc::new(0);
        // SET, binary, 24 hour; write 2038-01-19 03:14:07.
        set_reg(&mut r, 0x0b, 0x86, 0);
        for (i, v) in [(0, 7), (2, 14), (4, 3), (6, 3), (7, 19), (8, 1), (9, 38), (0x32, 20)] {
            set_reg(&mut r, i, v, 0);
        }
        // No updates while SET.
        assert_eq!(reg(&mut r, 0, 5 * SEC), 7);
        set_reg(&mut r, 0x0b, 0x06, 5 * SEC);
        assert_eq!(clock(&mut r, 6 * SEC), [20, 38, 1, 19, 3, 14, 8, 3]);
        assert_eq!(clock(&mut r, 59 * SEC), [20, 38, 1, 19, 3, 15, 1, 3]);
    }

    #[test]
    fn twelve_hour_mode() {
        let mut r = Rtc::new(0);
        set_reg(&mut r, 0x0b, 0x80, 0); // SET, BCD, 12-hour
        set_reg(&mut r, 0, 0x59, 0);
        set_reg(&mut r, 2, 0x59, 0);
        set_reg(&mut r, 4, 0x11, 0); // 11 AM
        set_reg(&mut r, 0x0b, 0x00, 0);
        assert_eq!(reg(&mut r, 4, SEC), 0x92, "noon is 12 PM");
        assert_eq!(reg(&mut r, 7, SEC), 0x01);
        set_reg(&mut r, 0x0b, 0x80, SEC);
        set_reg(&mut r, 0, 0x59, SEC);
        set_reg(&mut r, 2, 0x59, SEC);
        set_reg(&mut r, 4, 0x91, SEC); // 11 PM
        set_reg(&mut r, 0x0b, 0x00, SEC);
        assert_eq!(reg(&mut r, 4, 2 * SEC), 0x12, "midnight is 12 AM");
        assert_eq!(reg(&mut r, 7, 2 * SEC), 0x02);
        assert_eq!(reg(&mut r, 6, 2 * SEC), 6);
    }

    #[test]
    fn periodic_interrupt_rate_and_register_c() {
        let mut r = Rtc::new(0);
        assert_eq!(r.next_event(0), None, "no interrupt enabled");
        set_reg(&mut r, 0x0b, 0x42, 0); // PIE
                                        // RS = 6: 1024 Hz, 976.5625 µs.
        assert_eq!(r.next_event(0), Some(976_563));
        r.advance(976_562);
        assert!(!r.irq());
        r.advance(976_563);
        assert!(r.irq());
        assert_eq!(r.next_event(976_563), None, "IRQ8 already high");
        assert_eq!(reg(&mut r, 0x0c, 976_563), 0xc0);
        assert!(!r.irq());
        assert_eq!(reg(&mut r, 0x0c, 976_563), 0x00, "cleared on read");
        // RS = 3: 8192 interrupts a second.
        set_reg(&mut r, 0x0a, 0x23, SEC);
        let _ = reg(&mut r, 0x0c, SEC);
        let mut now = SEC;
        let mut count = 0;
        while let Some(next) = r.next_event(now) {
            if next > 2 * SEC {
                break;
            }
            now = next;
            r.advance(now);
            assert!(r.irq());
            assert_eq!(reg(&mut r, 0x0c, now) & 0xc0, 0xc0);
            count += 1;
        }
        assert_eq!(count, 8192);
        // RS = 15: 2 Hz; RS = 0: off.
        set_reg(&mut r, 0x0a, 0x2f, now);
        assert_eq!(r.next_event(2 * SEC), Some(2 * SEC + SEC / 2));
        set_reg(&mut r, 0x0a, 0x20, now);
        assert_eq!(r.next_event(2 * SEC), None);
    }

    #[test]
    fn flags_without_enables_do_not_interrupt() {
        let mut r = Rtc::new(0);
        r.advance(3 * SEC);
        assert!(!r.irq());
        // PF (RS = 6 runs regardless of PIE) and UF are set; IRQF is not.
        assert_eq!(reg(&mut r, 0x0c, 3 * SEC), 0x50);
        // Enabling UIE with UF already set raises IRQF at once.
        r.advance(4 * SEC);
        set_reg(&mut r, 0x0b, 0x12, 4 * SEC);
        assert!(r.irq());
        assert_eq!(reg(&mut r, 0x0c, 4 * SEC), 0xd0);
    }

    #[test]
    fn update_ended_interrupt_once_per_second() {
        let mut r = Rtc::new(0);
        set_reg(&mut r, 0x0b, 0x12, 0); // UIE
        assert_eq!(r.next_event(0), Some(SEC));
        r.advance(SEC / 2);
        assert!(!r.irq());
        r.advance(SEC);
        assert!(r.irq());
        assert_eq!(reg(&mut r, 0x0c, SEC), 0xd0, "IRQF, UF and (unenabled) PF");
        assert_eq!(r.next_event(SEC), Some(2 * SEC));
        // SET clears UIE and stops updates.
        set_reg(&mut r, 0x0b, 0x92, SEC);
        assert_eq!(reg(&mut r, 0x0b, SEC), 0x82);
        assert_eq!(r.next_event(SEC), None);
    }

    #[test]
    fn uip_window_before_update() {
        let mut r = Rtc::new(0);
        assert_eq!(reg(&mut r, 0x0a, SEC - 3_000_000) & 0x80, 0);
        assert_eq!(reg(&mut r, 0x0a, SEC - 1_000_000) & 0x80, 0x80);
        assert_eq!(reg(&mut r, 0, SEC - 1_000_000), 0x00, "old time during the update");
        assert_eq!(reg(&mut r, 0x0a, SEC) & 0x80, 0);
        assert_eq!(reg(&mut r, 0, SEC), 0x01);
        // SET clears UIP.
        set_reg(&mut r, 0x0b, 0x82, SEC);
        assert_eq!(reg(&mut r, 0x0a, 2 * SEC - 1_000_000) & 0x80, 0);
    }

    #[test]
    fn alarm() {
        let mut r = Rtc::new(0);
        // Alarm at 00:00:05, AIE.
        set_reg(&mut r, 1, 0x05, 0);
        set_reg(&mut r, 3, 0x00, 0);
        set_reg(&mut r, 5, 0x00, 0);
        set_reg(&mut r, 0x0b, 0x22, 0);
        assert_eq!(r.next_event(0), Some(5 * SEC));
        r.advance(5 * SEC - 1);
        assert!(!r.irq());
        r.advance(5 * SEC);
        assert!(r.irq());
        assert_eq!(reg(&mut r, 0x0c, 5 * SEC) & 0xb0, 0xb0);
        // Next match is a day later.
        assert_eq!(r.next_event(5 * SEC), Some((86_400 + 5) * SEC));
        // Don't-care hour and minute: every minute at second 5.
        set_reg(&mut r, 3, 0xc0, 5 * SEC);
        set_reg(&mut r, 5, 0xff, 5 * SEC);
        assert_eq!(r.next_event(5 * SEC), Some(65 * SEC));
        // All don't care: every second.
        set_reg(&mut r, 1, 0xc0, 5 * SEC);
        assert_eq!(r.next_event(5 * SEC), Some(6 * SEC));
        // A jump past the alarm still sets AF.
        set_reg(&mut r, 0x0b, 0x02, 5 * SEC);
        set_reg(&mut r, 1, 0x30, 5 * SEC);
        set_reg(&mut r, 3, 0x10, 5 * SEC);
        set_reg(&mut r, 5, 0x00, 5 * SEC);
        r.advance(3_600 * SEC);
        assert_eq!(reg(&mut r, 0x0c, 3_600 * SEC) & 0x20, 0x20);
        // An impossible alarm never matches.
        set_reg(&mut r, 5, 0x25, 3_600 * SEC);
        set_reg(&mut r, 0x0b, 0x22, 3_600 * SEC);
        assert_eq!(r.next_event(3_600 * SEC), None);
    }

    #[test]
    fn divider_reset_delays_first_update_half_a_second() {
        let mut r = Rtc::new(0);
        set_reg(&mut r, 0x0a, 0x70, SEC / 4); // divider reset
        assert_eq!(reg(&mut r, 0, 10 * SEC), 0x00, "stopped");
        set_reg(&mut r, 0x0a, 0x26, 10 * SEC);
        assert_eq!(reg(&mut r, 0, 10 * SEC + SEC / 2 - 1_000), 0x00);
        assert_eq!(reg(&mut r, 0, 10 * SEC + SEC / 2), 0x01);
        assert_eq!(reg(&mut r, 0, 11 * SEC + SEC / 2), 0x02);
        set_reg(&mut r, 0x0b, 0x12, 12 * SEC);
        assert!(r.irq(), "UF from the earlier updates");
        assert_eq!(reg(&mut r, 0x0c, 12 * SEC), 0xd0);
        assert_eq!(r.next_event(12 * SEC), Some(12 * SEC + SEC / 2));
    }

    #[test]
    fn cmos_ram_and_nmi_mask() {
        let mut r = Rtc::new(0);
        set_reg(&mut r, 0x40, 0xab, 0);
        assert_eq!(reg(&mut r, 0x40, 0), 0xab);
        r.set_cmos(0x15, 0x80);
        assert_eq!(reg(&mut r, 0x15, 0), 0x80);
        assert_eq!(r.cmos(0x40), 0xab);
        r.set_cmos(0x0b, 0xff);
        assert_eq!(r.cmos(0x0b), 0x02, "control registers are not RAM");
        assert_eq!(r.cmos(0x0d), 0x80);
        assert!(!r.nmi_masked());
        r.write(RTC_INDEX, IoSize::Byte, 0x8f, 0);
        assert!(r.nmi_masked());
        assert_eq!(r.read(RTC_DATA, IoSize::Byte, 0), 0x00);
        // Register D and C are read-only.
        set_reg(&mut r, 0x0d, 0x00, 0);
        assert_eq!(reg(&mut r, 0x0d, 0), 0x80);
        assert_eq!(r.read(RTC_INDEX, IoSize::Byte, 0), 0xff);
        assert_eq!(r.read(0x72, IoSize::Byte, 0), 0xff);
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut r = Rtc::new(u64::MAX);
        let mut now = 0;
        for v in 0..=255u8 {
            for i in 0..128u8 {
                set_reg(&mut r, i, v, now);
                let _ = reg(&mut r, i, now);
            }
            now += 123_456_789;
            r.advance(now);
            let _ = r.next_event(now);
            let _ = r.irq();
        }
        r.advance(u64::MAX);
        let _ = r.next_event(u64::MAX);
    }
}
