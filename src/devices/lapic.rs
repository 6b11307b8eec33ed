//! The local APIC of the machine's one CPU: an xAPIC as on the Pentium 4 (version 14h,
//! six LVT entries), memory-mapped at FEE0_0000h and relocatable through the
//! IA32_APIC_BASE MSR. It owns the CPU's interrupt priority logic (IRR, ISR, TMR, TPR,
//! PPR), the local vector table, the APIC timer, the error status register and the
//! interrupt command register, and it decides whether the CPU's maskable interrupt comes
//! from its own IRR or from the 8259A pair wired to LINT0.
//!
//! Every fact comes from the Intel SDM Vol. 3A chapter 10, "Advanced Programmable
//! Interrupt Controller (APIC)" (section numbers of the editions that number it 10; the
//! newest call it chapter 11); comments quote the section or figure.
//!
//! # Wiring (what the bus does)
//!
//! Devices never call each other, so the bus moves the signals:
//! - **CPU interrupt line.** `Bus::interrupt_pending` is
//!   [`Lapic::has_interrupt`]`(pic.intr())`, and `Bus::acknowledge_interrupt` is
//!   [`Lapic::acknowledge`]`(pic.intr(), || pic.acknowledge())`. The APIC answers with a
//!   vector from its IRR (moving it to the ISR), or, when the interrupt is an ExtINT (LINT0
//!   in ExtINT mode: virtual wire mode; or an ExtINT message from the I/O APIC), runs the
//!   8259A's INTA cycle through the closure. With the APIC hardware-disabled (MSR bit 11
//!   clear) the 8259A's INTR goes straight to the CPU, as on a processor without an APIC.
//! - **I/O APIC → local APIC.** After anything that may change the I/O APIC
//!   (`set_irq`, MMIO, `eoi`), the bus drains `IoApic::take_message` into
//!   [`Lapic::deliver`]. The local APIC checks the destination itself.
//! - **Local APIC → I/O APIC.** After an MMIO write to the local APIC, the bus drains
//!   [`Lapic::take_eoi_broadcast`] into `IoApic::eoi` (the EOI message for level-triggered
//!   vectors, §10.8.5).
//! - **NMI.** [`Lapic::take_nmi`] reports NMIs the APIC delivered (LINT1 in NMI mode via
//!   [`Lapic::set_lint1`], NMI messages, self NMIs).
//! - **Time.** [`Lapic::advance`] / [`Lapic::next_event`] as for every clocked device;
//!   MMIO accesses take `now` too (like the PIT's port accesses) so the timer's current
//!   count and expiries are exact functions of virtual time.
//! - **MSR and CPUID.** The CPU forwards RDMSR/WRMSR of [`IA32_APIC_BASE`] to
//!   [`Lapic::base_msr`] / [`Lapic::set_base_msr`] (a `false` answer means #GP), and clears
//!   the CPUID.01H:EDX APIC flag (bit 9) while [`Lapic::hardware_enabled`] is false
//!   (§10.4.3).
//!
//! # Simplifications
//!
//! - One CPU: IPIs can only reach this APIC itself. INIT, SIPI and SMI (to self or to
//!   anyone) are accepted and ignored; "all excluding self" reaches nobody. Lowest-priority
//!   delivery to a matching destination is fixed delivery.
//! - Delivery is instantaneous, so the delivery-status bits (LVT bit 12, ICR bit 12) always
//!   read 0, and an acknowledge never finds its interrupt withdrawn, so the spurious vector
//!   is stored but never produced.
//! - No thermal sensor or performance counters drive their LVT entries (the registers are
//!   kept); no CMCI entry (max LVT = 5); no TSC-deadline mode (CPUID must not claim it); no
//!   x2APIC; no EOI-broadcast suppression (version bit 24 is 0).
//! - A divide-configuration change restarts the divided clock at the current count (the
//!   fraction of a divided tick in progress is dropped).

use super::Nanos;
use crate::addr::Phys;
use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// IA32_APIC_BASE MSR number (SDM Vol. 3A §10.4.4, Figure 10-5 "IA32_APIC_BASE MSR").
pub const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE bit 8: this processor is the bootstrap processor (set by hardware).
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// IA32_APIC_BASE bit 11: APIC global enable (§10.4.3).
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// Power-up APIC base (§10.4.1: "mapped to a 4-KByte region ... starting at FEE00000H").
pub const LAPIC_DEFAULT_BASE: u32 = 0xfee0_0000;
/// Size of the register window.
pub const LAPIC_MMIO_LEN: u32 = 0x1000;
/// Version register (§10.4.8, Figure 10-7): version 14h as the Pentium 4 returns, Max LVT
/// Entry 5 (six entries: timer, thermal, performance, LINT0, LINT1, error), bit 24 (EOI
/// broadcast suppression) clear.
pub const LAPIC_VERSION: u32 = 0x0005_0014;
/// The bus clock the APIC timer counts, divided by the divide configuration (§10.5.4:
/// "The time base for the timer is derived from the processor's bus clock"). Our choice:
/// 100 MHz, i.e. exactly 10 ns per bus clock.
pub const LAPIC_BUS_HZ: u64 = 100_000_000;

/// IA32_APIC_BASE bits 31:12: the base address. The CPU has no PAE and no CPUID leaf
/// 80000008h, so MAXPHYADDR is 32 and bits 63:32 are reserved (§10.4.4).
const APIC_BASE_ADDR: u64 = 0xffff_f000;
/// Bits a WRMSR may set; the others are reserved (#GP). Bit 10 (x2APIC enable) is
/// reserved too: no x2APIC.
const APIC_BASE_WRITABLE: u64 = APIC_BASE_ADDR | APIC_BASE_ENABLE | APIC_BASE_BSP;

/// Register offsets within the 4 KiB window (SDM Vol. 3A Table 10-1 "Local APIC Register
/// Address Map"). Each register sits at the start of a 16-byte slot.
mod reg {
    pub const ID: u32 = 0x020;
    pub const VERSION: u32 = 0x030;
    pub const TPR: u32 = 0x080;
    pub const APR: u32 = 0x090;
    pub const PPR: u32 = 0x0a0;
    pub const EOI: u32 = 0x0b0;
    pub const LDR: u32 = 0x0d0;
    pub const DFR: u32 = 0x0e0;
    pub const SVR: u32 = 0x0f0;
    /// ISR bits 31:0 at 100h ... bits 255:224 at 170h.
    pub const ISR: u32 = 0x100;
    pub const ISR_END: u32 = 0x170;
    pub const TMR: u32 = 0x180;
    pub const TMR_END: u32 = 0x1f0;
    pub const IRR: u32 = 0x200;
    pub const IRR_END: u32 = 0x270;
    pub const ESR: u32 = 0x280;
    pub const ICR_LO: u32 = 0x300;
    pub const ICR_HI: u32 = 0x310;
    /// LVT timer, thermal, performance, LINT0, LINT1, error at 320h ... 370h.
    pub const LVT: u32 = 0x320;
    pub const LVT_END: u32 = 0x370;
    pub const TIMER_INITIAL: u32 = 0x380;
    pub const TIMER_CURRENT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

/// LVT entries in register order (§10.5.1, Figure 10-8).
const LVT_TIMER: usize = 0;
const LVT_THERMAL: usize = 1;
const LVT_PERF: usize = 2;
const LVT_LINT0: usize = 3;
const LVT_LINT1: usize = 4;
const LVT_ERROR: usize = 5;
const LVT_COUNT: usize = 6;

/// LVT bit 16: mask.
const LVT_MASKED: u32 = 1 << 16;
/// LVT bit 13 (LINT0/1): input pin polarity, 1 = active low.
const LVT_ACTIVE_LOW: u32 = 1 << 13;
/// LVT bit 14 (LINT0/1): remote IRR, read-only.
const LVT_REMOTE_IRR: u32 = 1 << 14;
/// LVT timer bit 17: periodic mode (bits 18:17 = 01). Bit 18 (TSC-deadline) is reserved
/// here since CPUID does not advertise TSC-deadline.
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Writable bits of each entry (Figure 10-8): vector 7:0 everywhere; delivery mode 10:8
/// for thermal, performance, LINT0 and LINT1; polarity 13 and trigger mode 15 for LINT0
/// and LINT1; mask 16 everywhere; timer mode 17 for the timer. Delivery status (12) and
/// remote IRR (14) are read-only.
const LVT_WRITABLE: [u32; LVT_COUNT] = {
    let mut w = [0; LVT_COUNT];
    w[LVT_TIMER] = 0x0003_00ff;
    w[LVT_THERMAL] = 0x0001_07ff;
    w[LVT_PERF] = 0x0001_07ff;
    w[LVT_LINT0] = 0x0001_a7ff;
    w[LVT_LINT1] = 0x0001_a7ff;
    w[LVT_ERROR] = 0x0001_00ff;
    w
};

/// Spurious-interrupt vector register (§10.9, Figure 10-23): bits 7:0 the vector (all
/// eight writable on the Pentium 4), bit 8 APIC software enable, bit 9 focus processor
/// checking; bits 31:10 reserved here (bit 12 needs version bit 24).
const SVR_ENABLE: u32 = 1 << 8;
const SVR_WRITABLE: u32 = 0x3ff;
/// ICR low (§10.6.1, Figure 10-19): vector 7:0, delivery mode 10:8, destination mode 11,
/// level 14, trigger mode 15, destination shorthand 19:18. Delivery status (12) reads 0.
const ICR_LO_WRITABLE: u32 = 0x000c_cfff;
/// ICR high: destination field 63:56.
const ICR_HI_WRITABLE: u32 = 0xff00_0000;
/// Divide configuration register bits 0, 1 and 3 (§10.5.4, Figure 10-10).
const DCR_WRITABLE: u32 = 0b1011;
/// Destination format register models, bits 31:28 (§10.6.2.2).
const DFR_FLAT: u8 = 0xf;
const DFR_CLUSTER: u8 = 0x0;

/// Error status register bits (§10.5.3, Figure 10-9). Bits 3:0 are APIC-bus errors of the
/// P6 and Pentium, bit 4 a lowest-priority IPI failure: none can happen here.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// A vector 0–15 was received, or raised locally by the LVT or a self IPI.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// An access to a reserved register slot.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// How an interrupt message is to be handled: the delivery-mode field of the ICR
/// (§10.6.1), of LVT entries (§10.5.1) and of the I/O APIC's redirection entries
/// (82093AA datasheet, IOREDTBL bits 10:8). Encoding 011b is reserved everywhere; 110b is
/// Start-Up in the ICR and reserved elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMode {
    /// 000b: the vector, to every destination.
    Fixed,
    /// 001b: the vector, to the destination running at the lowest priority.
    LowestPriority,
    /// 010b: system management interrupt.
    Smi,
    /// 100b: non-maskable interrupt.
    Nmi,
    /// 101b: INIT.
    Init,
    /// 110b: Start-Up IPI (ICR only).
    StartUp,
    /// 111b: an interrupt whose vector the external 8259A supplies in an INTA cycle.
    ExtInt,
}

impl DeliveryMode {
    /// Decode the three-bit field; `None` for the reserved encoding 011b.
    pub fn from_bits(bits: u32) -> Option<Self> {
        Some(match bits & 7 {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            4 => Self::Nmi,
            5 => Self::Init,
            6 => Self::StartUp,
            7 => Self::ExtInt,
            _ => return None,
        })
    }
}

/// An interrupt message as the I/O APIC (or the ICR) sends it to local APICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptMessage {
    /// Vector (ignored for NMI, SMI, INIT and ExtINT).
    pub vector: u8,
    pub mode: DeliveryMode,
    /// Level-triggered: the EOI for this vector is to be broadcast back to the I/O APICs.
    pub level_triggered: bool,
    /// Destination: an APIC ID (0xff = broadcast) when `logical` is false, else a message
    /// destination address matched against the LDR/DFR.
    pub destination: u8,
    pub logical: bool,
}

/// 256 vectors, one bit each, as the IRR, ISR and TMR hold them (§10.8.4, Figure 10-20).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct VectorSet([u32; 8]);

impl VectorSet {
    fn get(&self, v: u8) -> bool {
        self.0[usize::from(v >> 5)] & (1 << (v & 31)) != 0
    }
    fn set(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] |= 1 << (v & 31);
    }
    fn clear(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] &= !(1 << (v & 31));
    }
    fn assign(&mut self, v: u8, on: bool) {
        if on {
            self.set(v);
        } else {
            self.clear(v);
        }
    }
    /// The highest vector in the set: the highest priority (§10.8.3.1: priority grows
    /// with the vector number).
    fn highest(&self) -> Option<u8> {
        (0..8u8).rev().find_map(|i| {
            let w = self.0[usize::from(i)];
            (w != 0).then(|| i * 32 + (31 - w.leading_zeros()) as u8)
        })
    }
    /// 32 bits of the set, as the registers at 10h strides show them.
    fn word(&self, i: usize) -> u32 {
        self.0[i & 7]
    }
}

/// A running countdown of the APIC timer: the count was `count` at bus clock `tick`, and
/// it decrements once every `divisor` bus clocks from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Countdown {
    tick: u64,
    /// Always at least 1: the count reaching 0 is handled at that instant.
    count: u32,
}

/// Bus clocks elapsed by `now`.
fn bus_ticks(now: Nanos) -> u64 {
    (u128::from(now) * u128::from(LAPIC_BUS_HZ) / 1_000_000_000) as u64
}

/// The first instant at which `bus_ticks` reaches `tick`.
fn time_of_tick(tick: u64) -> Nanos {
    let t = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(LAPIC_BUS_HZ));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// What LINT0 asks for, given the 8259A's INTR level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Lint0 {
    Idle,
    /// ExtINT: the 8259A supplies the vector.
    ExtInt,
    /// Fixed mode: this vector, level-triggered, enters the IRR.
    Fixed(u8),
}

/// The local APIC.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lapic {
    /// IA32_APIC_BASE as RDMSR returns it.
    base_msr: u64,
    /// Local APIC ID, bits 31:24 of the ID register (8 bits on the xAPIC, §10.4.6).
    id: u8,
    tpr: u8,
    /// Logical APIC ID, LDR bits 31:24 (§10.6.2.2).
    ldr: u8,
    /// DFR model, bits 31:28 (bits 27:0 read as ones).
    dfr_model: u8,
    svr: u32,
    irr: VectorSet,
    isr: VectorSet,
    tmr: VectorSet,
    /// ESR as the guest reads it: the errors collected up to its last write.
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    /// The error LVT fires for the next error; rearmed by an ESR write (§10.5.3).
    error_armed: bool,
    icr_lo: u32,
    icr_hi: u32,
    lvt: [u32; LVT_COUNT],
    timer_initial: u32,
    dcr: u32,
    /// `None` when the timer is stopped (current count 0).
    timer: Option<Countdown>,
    /// Level-triggered vectors whose EOI the I/O APIC has yet to hear.
    eoi_broadcast: VectorSet,
    /// An ExtINT message arrived: the next acknowledge runs the 8259A's INTA cycle.
    extint_pending: bool,
    nmi_pending: bool,
    /// Last level of the LINT1 pin, for edge detection.
    lint1: bool,
}

impl Default for Lapic {
    fn default() -> Self {
        Self::new()
    }
}

impl Lapic {
    /// The state after power-up or RESET (§10.4.7.1): IRR, ISR, TMR, ICR, LDR, TPR, the
    /// timer counts and the divide configuration 0; DFR all ones; every LVT entry masked
    /// with its other bits 0; SVR 000000FFh, i.e. software-disabled. The APIC is globally
    /// enabled at FEE00000h and this CPU is the BSP, APIC ID 0.
    pub fn power_on() -> Self {
        Self {
            base_msr: u64::from(LAPIC_DEFAULT_BASE) | APIC_BASE_ENABLE | APIC_BASE_BSP,
            id: 0,
            tpr: 0,
            ldr: 0,
            dfr_model: DFR_FLAT,
            svr: 0xff,
            irr: VectorSet::default(),
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            esr: 0,
            esr_pending: 0,
            error_armed: true,
            icr_lo: 0,
            icr_hi: 0,
            lvt: [LVT_MASKED; LVT_COUNT],
            timer_initial: 0,
            dcr: 0,
            timer: None,
            eoi_broadcast: VectorSet::default(),
            extint_pending: false,
            nmi_pending: false,
            lint1: false,
        }
    }

    /// The APIC as a PC BIOS leaves it for an operating system that may not know it:
    /// virtual wire mode (MP specification 1.4 §3.6.2.2), i.e. software-enabled with
    /// spurious vector FFh, LINT0 in ExtINT mode so the 8259A's INTR reaches the CPU, and
    /// LINT1 in NMI mode. Everything else as after power-up.
    pub fn new() -> Self {
        let mut a = Self::power_on();
        a.svr = SVR_ENABLE | 0xff;
        a.lvt[LVT_LINT0] = 0x700;
        a.lvt[LVT_LINT1] = 0x400;
        a
    }

    // ---- IA32_APIC_BASE -------------------------------------------------------------

    /// IA32_APIC_BASE as RDMSR reads it.
    pub fn base_msr(&self) -> u64 {
        self.base_msr
    }

    /// WRMSR to IA32_APIC_BASE. Returns false, changing nothing, if a reserved bit is set
    /// (the CPU then raises #GP(0)). The BSP flag is read-only. Clearing the global enable
    /// bit makes the processor behave as one without an APIC and returns the APIC to its
    /// power-up state (§10.4.3: "prior initialization to the APIC may be lost and the APIC
    /// may return to the state described in Section 10.4.7.1"); an FSB-era APIC may be
    /// enabled again without a reset.
    pub fn set_base_msr(&mut self, value: u64) -> bool {
        if value & !APIC_BASE_WRITABLE != 0 {
            return false;
        }
        let was_enabled = self.hardware_enabled();
        let new = (value & (APIC_BASE_ADDR | APIC_BASE_ENABLE)) | (self.base_msr & APIC_BASE_BSP);
        if was_enabled && new & APIC_BASE_ENABLE == 0 {
            let lint1 = self.lint1;
            *self = Self::power_on();
            self.lint1 = lint1;
        }
        self.base_msr = new;
        true
    }

    /// IA32_APIC_BASE bit 11: while clear the APIC is absent (no registers, no CPUID
    /// flag) and the 8259A drives the CPU directly.
    pub fn hardware_enabled(&self) -> bool {
        self.base_msr & APIC_BASE_ENABLE != 0
    }

    /// SVR bit 8 (§10.4.3 item 2).
    pub fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// Where the register window currently starts.
    pub fn base(&self) -> Phys {
        Phys((self.base_msr & APIC_BASE_ADDR) as u32)
    }

    /// Whether `addr` is in the register window (never while hardware-disabled).
    pub fn contains(&self, addr: Phys) -> bool {
        self.hardware_enabled() && addr.page() == self.base().page()
    }

    // ---- Registers ------------------------------------------------------------------

    /// Memory read at virtual time `now`. Registers are 32 bits at the start of 16-byte
    /// slots (§10.4.1); narrower reads return the addressed bytes, bytes 4–15 of a slot
    /// read 0, and addresses outside the window read as all ones.
    pub fn mmio_read(&mut self, addr: Phys, size: IoSize, now: Nanos) -> u32 {
        if !self.hardware_enabled() {
            return size.all_ones();
        }
        self.advance(now);
        let mut value = 0;
        let mut cached: Option<(u32, u32)> = None;
        for i in 0..size as u32 {
            let a = addr.wrapping_add(i);
            let byte = if !self.contains(a) {
                0xff
            } else {
                let (slot, b) = (a.page_offset() & !0xf, a.page_offset() & 0xf);
                if b >= 4 {
                    0
                } else {
                    let reg = match cached {
                        Some((s, v)) if s == slot => v,
                        _ => {
                            let v = self.read_reg(slot, now);
                            cached = Some((slot, v));
                            v
                        }
                    };
                    (reg >> (8 * b)) as u8
                }
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// Memory write at virtual time `now`. A write of fewer than four bytes of a register
    /// is merged with its current value and then written whole (the SDM leaves narrow
    /// accesses model-specific); bytes 4–15 of a slot and addresses outside the window are
    /// ignored.
    pub fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32, now: Nanos) {
        if !self.hardware_enabled() {
            return;
        }
        self.advance(now);
        let n = size as u32;
        let mut i = 0;
        while i < n {
            let a = addr.wrapping_add(i);
            if !self.contains(a) {
                i += 1;
                continue;
            }
            let slot = a.page_offset() & !0xf;
            let (mut mask, mut data) = (0u32, 0u32);
            while i < n {
                let a = addr.wrapping_add(i);
                if !self.contains(a) || a.page_offset() & !0xf != slot {
                    break;
                }
                let b = a.page_offset() & 0xf;
                if b < 4 {
                    mask |= 0xff << (8 * b);
                    data |= ((value >> (8 * i)) & 0xff) << (8 * b);
                }
                i += 1;
            }
            if mask == 0 {
                continue;
            }
            let full = if mask == u32::MAX { data } else { (self.peek_reg(slot, now).unwrap_or(0) & !mask) | data };
            self.write_reg(slot, full, now);
        }
    }

    /// A register's value without side effects; `None` for a reserved slot.
    fn peek_reg(&self, slot: u32, now: Nanos) -> Option<u32> {
        let index = |first: u32| ((slot - first) >> 4) as usize;
        Some(match slot {
            reg::ID => u32::from(self.id) << 24,
            reg::VERSION => LAPIC_VERSION,
            reg::TPR => u32::from(self.tpr),
            reg::APR => u32::from(self.apr()),
            reg::PPR => u32::from(self.ppr()),
            // Write-only; reads return 0.
            reg::EOI => 0,
            reg::LDR => u32::from(self.ldr) << 24,
            // §10.6.2.2, Figure 10-14: bits 27:0 are reserved and read as ones.
            reg::DFR => (u32::from(self.dfr_model) << 28) | 0x0fff_ffff,
            reg::SVR => self.svr,
            reg::ISR..=reg::ISR_END => self.isr.word(index(reg::ISR)),
            reg::TMR..=reg::TMR_END => self.tmr.word(index(reg::TMR)),
            reg::IRR..=reg::IRR_END => self.irr.word(index(reg::IRR)),
            reg::ESR => self.esr,
            reg::ICR_LO => self.icr_lo,
            reg::ICR_HI => self.icr_hi,
            reg::LVT..=reg::LVT_END => self.lvt[index(reg::LVT)],
            reg::TIMER_INITIAL => self.timer_initial,
            reg::TIMER_CURRENT => self.current_count(now),
            reg::TIMER_DIVIDE => self.dcr,
            _ => return None,
        })
    }

    /// A register read: reserved slots read 0 and log an illegal register address
    /// (§10.5.3, ESR bit 7).
    fn read_reg(&mut self, slot: u32, now: Nanos) -> u32 {
        match self.peek_reg(slot, now) {
            Some(v) => v,
            None => {
                self.record_error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    fn write_reg(&mut self, slot: u32, v: u32, now: Nanos) {
        match slot {
            // §10.4.6: the ID is writable on this model (8 bits on the xAPIC).
            reg::ID => self.id = (v >> 24) as u8,
            reg::TPR => self.tpr = v as u8,
            reg::EOI => self.eoi(),
            reg::LDR => self.ldr = (v >> 24) as u8,
            reg::DFR => self.dfr_model = (v >> 28) as u8,
            reg::SVR => self.write_svr(v),
            // §10.5.3: "This write clears any previously logged errors and updates the ESR
            // with any errors detected since the last write to the ESR. This write also
            // rearms the APIC error interrupt triggering mechanism."
            reg::ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
                self.error_armed = true;
            }
            reg::ICR_LO => {
                self.icr_lo = v & ICR_LO_WRITABLE;
                self.send_ipi();
            }
            reg::ICR_HI => self.icr_hi = v & ICR_HI_WRITABLE,
            reg::LVT..=reg::LVT_END => self.write_lvt(((slot - reg::LVT) >> 4) as usize, v),
            // §10.5.4: a write loads the current count and starts the countdown; a write
            // of 0 stops the timer in both modes.
            reg::TIMER_INITIAL => {
                self.timer_initial = v;
                self.timer = (v != 0).then(|| Countdown { tick: bus_ticks(now), count: v });
            }
            reg::TIMER_DIVIDE => {
                let current = self.current_count(now);
                if let Some(c) = &mut self.timer {
                    *c = Countdown { tick: bus_ticks(now), count: current };
                }
                self.dcr = v & DCR_WRITABLE;
            }
            // Read-only registers ignore writes.
            reg::VERSION | reg::APR | reg::PPR | reg::TIMER_CURRENT => {}
            reg::ISR..=reg::IRR_END => {}
            _ => self.record_error(ESR_ILLEGAL_REGISTER),
        }
    }

    /// SVR write. Clearing the enable bit masks every LVT entry (§10.4.7.2: "The mask bits
    /// for all the LVT entries are set"); setting it again leaves them masked.
    fn write_svr(&mut self, v: u32) {
        self.svr = v & SVR_WRITABLE;
        if !self.software_enabled() {
            for e in &mut self.lvt {
                *e |= LVT_MASKED;
            }
        }
    }

    /// LVT write: read-only bits are kept, and the mask cannot be cleared while the APIC
    /// is software-disabled (§10.4.7.2: "Attempts to reset these bits will be ignored").
    /// Changing the timer mode does not start the timer (§10.5.4).
    fn write_lvt(&mut self, i: usize, v: u32) {
        let keep = if i == LVT_LINT0 || i == LVT_LINT1 { self.lvt[i] & LVT_REMOTE_IRR } else { 0 };
        let mut new = (v & LVT_WRITABLE[i]) | keep;
        if !self.software_enabled() {
            new |= LVT_MASKED;
        }
        self.lvt[i] = new;
    }

    // ---- Priorities -----------------------------------------------------------------

    /// Processor priority (§10.8.3.1): the TPR if its class is at least that of the highest
    /// in-service vector, else that vector's class.
    fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// Arbitration priority (§10.6.2.4, Figure 10-15): "IF (TPR[7:4] ≥ IRRV[7:4]) AND
    /// (TPR[7:4] > ISRV[7:4]) THEN APR[7:0] ← TPR[7:0] ELSE APR[7:4] ← max(TPR[7:4] AND
    /// ISRV[7:4], IRRV[7:4]), APR[3:0] ← 0".
    fn apr(&self) -> u8 {
        let irrv = self.irr.highest().unwrap_or(0) >> 4;
        let isrv = self.isr.highest().unwrap_or(0) >> 4;
        let tpr = self.tpr >> 4;
        if tpr >= irrv && tpr > isrv {
            self.tpr
        } else {
            (tpr & isrv).max(irrv) << 4
        }
    }

    /// The IRR vector the APIC would dispatch now: the highest one, if its priority class
    /// is above the processor priority class (§10.8.3.1).
    fn deliverable(&self) -> Option<u8> {
        self.irr.highest().filter(|&v| v >> 4 > self.ppr() >> 4)
    }

    /// A fixed interrupt is accepted into the IRR, its TMR bit recording the trigger mode
    /// (§10.8.4). Vectors 0–15 are refused with a receive-illegal-vector error (§10.5.3, ESR
    /// bit 6: "the local APIC will never set an IRR bit in the range 0 to 15").
    fn accept_fixed(&mut self, vector: u8, level: bool) {
        if vector < 16 {
            self.record_error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        self.irr.set(vector);
        self.tmr.assign(vector, level);
    }

    /// EOI (§10.8.5): the highest in-service bit is cleared; for a level-triggered vector
    /// (TMR set) the EOI is broadcast to the I/O APICs, and a LINT pin in fixed level mode
    /// with that vector has its remote IRR cleared (§10.5.1).
    fn eoi(&mut self) {
        let Some(v) = self.isr.highest() else { return };
        self.isr.clear(v);
        if self.tmr.get(v) {
            self.eoi_broadcast.set(v);
            for i in [LVT_LINT0, LVT_LINT1] {
                if self.lvt[i] as u8 == v {
                    self.lvt[i] &= !LVT_REMOTE_IRR;
                }
            }
        }
    }

    /// Log an error (§10.5.3); the error LVT entry fires if the mechanism is armed.
    fn record_error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        if self.error_armed {
            self.error_armed = false;
            self.fire_lvt(LVT_ERROR);
        }
    }

    /// The timer or error source signals (both are fixed and edge-triggered, §10.5.1).
    fn fire_lvt(&mut self, i: usize) {
        let e = self.lvt[i];
        if e & LVT_MASKED == 0 {
            self.accept_fixed(e as u8, false);
        }
    }

    // ---- Interrupt sources ----------------------------------------------------------

    /// Whether this APIC's destination addressing selects it (§10.6.2): physically by
    /// APIC ID, or FFh for everyone; logically in the flat model when the MDA and the
    /// logical ID share a bit, in the cluster model when the cluster (bits 7:4) is equal
    /// and the member bits (3:0) share a bit; FFh is a broadcast in both models.
    pub fn accepts_destination(&self, destination: u8, logical: bool) -> bool {
        if destination == 0xff {
            return true;
        }
        if !logical {
            return destination == self.id;
        }
        match self.dfr_model {
            DFR_FLAT => destination & self.ldr != 0,
            DFR_CLUSTER => destination >> 4 == self.ldr >> 4 && destination & self.ldr & 0x0f != 0,
            _ => false,
        }
    }

    /// An interrupt message from the I/O APIC. It is dropped unless it addresses this
    /// APIC. A software-disabled APIC still takes NMI, SMI, INIT and SIPI (§10.4.7.2) but
    /// refuses fixed, lowest-priority and ExtINT interrupts. SMI and INIT are ignored (no
    /// SMM; no INIT of the only CPU).
    pub fn deliver(&mut self, msg: InterruptMessage) {
        if !self.hardware_enabled() || !self.accepts_destination(msg.destination, msg.logical) {
            return;
        }
        self.receive(msg.mode, msg.vector, msg.level_triggered);
    }

    fn receive(&mut self, mode: DeliveryMode, vector: u8, level: bool) {
        match mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                if self.software_enabled() {
                    self.accept_fixed(vector, level);
                }
            }
            DeliveryMode::ExtInt => {
                if self.software_enabled() {
                    self.extint_pending = true;
                }
            }
            DeliveryMode::Nmi => self.nmi_pending = true,
            DeliveryMode::Smi | DeliveryMode::Init | DeliveryMode::StartUp => {}
        }
    }

    /// A write to ICR low sends an IPI (§10.6.1). With one CPU only this APIC can be
    /// reached: with no shorthand if the destination selects it, with "self" and "all
    /// including self" for fixed delivery (the other modes are invalid with those
    /// shorthands: SDM Table 10-3, valid ICR combinations of the Pentium 4 xAPIC), never
    /// with "all excluding self". IPIs are edge-triggered (Table 10-3 note 2: a level IPI
    /// is issued as edge-triggered). Fixed and lowest-priority IPIs with vectors 0–15 log a
    /// send-illegal-vector error.
    fn send_ipi(&mut self) {
        let lo = self.icr_lo;
        let vector = lo as u8;
        let Some(mode) = DeliveryMode::from_bits(lo >> 8) else { return };
        // ICR encoding 111b is reserved (ExtINT exists only in LVT and I/O APIC entries).
        if mode == DeliveryMode::ExtInt {
            return;
        }
        let fixed = matches!(mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority);
        if fixed && vector < 16 {
            self.record_error(ESR_SEND_ILLEGAL_VECTOR);
        }
        let to_self = match (lo >> 18) & 3 {
            0 => self.accepts_destination((self.icr_hi >> 24) as u8, lo & (1 << 11) != 0),
            1 | 2 => mode == DeliveryMode::Fixed,
            _ => false,
        };
        if to_self {
            self.receive(mode, vector, false);
        }
    }

    /// The LINT1 pin (NMI on the PC). A rising edge of the active level delivers per the
    /// LVT LINT1 entry: NMI, or a fixed edge-triggered vector (§10.5.1: level-sensitive
    /// LINT1 is not supported). With the APIC hardware-disabled the pin is the CPU's NMI.
    pub fn set_lint1(&mut self, level: bool) {
        let e = self.lvt[LVT_LINT1];
        let active_low = self.hardware_enabled() && e & LVT_ACTIVE_LOW != 0;
        let rising = level != active_low && self.lint1 == active_low;
        self.lint1 = level;
        if !rising {
            return;
        }
        if !self.hardware_enabled() {
            self.nmi_pending = true;
            return;
        }
        if e & LVT_MASKED != 0 {
            return;
        }
        match DeliveryMode::from_bits(e >> 8) {
            Some(DeliveryMode::Nmi) => self.nmi_pending = true,
            Some(DeliveryMode::Fixed) => self.accept_fixed(e as u8, false),
            _ => {}
        }
    }

    /// Whether an NMI was delivered since the last call (and forget it).
    pub fn take_nmi(&mut self) -> bool {
        core::mem::take(&mut self.nmi_pending)
    }

    /// What LINT0 requests when the 8259A's INTR is `pic_intr` (§10.5.1): nothing if the
    /// entry is masked or the pin inactive; ExtINT passes INTR through (always level
    /// sensitive); fixed mode requests the entry's vector level-triggered (§10.5.1: without
    /// an I/O APIC fixed-mode LINT inputs are level sensitive), once until its EOI clears
    /// the remote IRR. Other modes are not driven by the 8259A.
    fn lint0(&self, pic_intr: bool) -> Lint0 {
        let e = self.lvt[LVT_LINT0];
        let active = pic_intr != (e & LVT_ACTIVE_LOW != 0);
        if e & LVT_MASKED != 0 || !active {
            return Lint0::Idle;
        }
        match DeliveryMode::from_bits(e >> 8) {
            Some(DeliveryMode::ExtInt) => Lint0::ExtInt,
            Some(DeliveryMode::Fixed) if e & LVT_REMOTE_IRR == 0 && e as u8 >= 16 => Lint0::Fixed(e as u8),
            _ => Lint0::Idle,
        }
    }

    /// The CPU's INTR input, given the 8259A's INTR output `pic_intr`: true if the APIC
    /// has an IRR vector above the processor priority, an ExtINT message waiting, or LINT0
    /// passing the 8259A through; with the APIC hardware-disabled, `pic_intr` itself.
    pub fn has_interrupt(&self, pic_intr: bool) -> bool {
        if !self.hardware_enabled() {
            return pic_intr;
        }
        if self.deliverable().is_some() || self.extint_pending {
            return true;
        }
        match self.lint0(pic_intr) {
            Lint0::Idle => false,
            Lint0::ExtInt => true,
            Lint0::Fixed(v) => v >> 4 > self.ppr() >> 4,
        }
    }

    /// The CPU acknowledges its interrupt; `pic_intr` is the 8259A's INTR and `pic_ack`
    /// runs the 8259A's INTA cycle. Order: the highest IRR vector above the processor
    /// priority (moved from the IRR to the ISR, §10.8.4), then an ExtINT message, then
    /// LINT0 in ExtINT mode; ExtINT interrupts bypass the IRR, ISR and TPR (§10.8.4 note)
    /// and take their vector from the 8259A. `None` when nothing is pending.
    pub fn acknowledge(&mut self, pic_intr: bool, pic_ack: impl FnOnce() -> u8) -> Option<u8> {
        if !self.hardware_enabled() {
            return pic_intr.then(pic_ack);
        }
        let lint0 = self.lint0(pic_intr);
        if let Lint0::Fixed(v) = lint0 {
            self.accept_fixed(v, true);
            self.lvt[LVT_LINT0] |= LVT_REMOTE_IRR;
        }
        if let Some(v) = self.deliverable() {
            self.irr.clear(v);
            self.isr.set(v);
            return Some(v);
        }
        if self.extint_pending {
            self.extint_pending = false;
            return Some(pic_ack());
        }
        (lint0 == Lint0::ExtInt).then(pic_ack)
    }

    /// The next vector whose EOI must be broadcast to the I/O APIC (`IoApic::eoi`).
    pub fn take_eoi_broadcast(&mut self) -> Option<u8> {
        let v = self.eoi_broadcast.highest()?;
        self.eoi_broadcast.clear(v);
        Some(v)
    }

    // ---- Timer ----------------------------------------------------------------------

    /// Bus clocks per timer decrement (§10.5.4, Figure 10-10: bits 3,1,0 = 000 → 2, 001 →
    /// 4, ..., 110 → 128, 111 → 1).
    fn divisor(&self) -> u64 {
        match (self.dcr & 3) | ((self.dcr >> 1) & 4) {
            7 => 1,
            n => 2 << n,
        }
    }

    /// The current-count register at `now` (after `advance(now)`).
    fn current_count(&self, now: Nanos) -> u32 {
        match self.timer {
            None => 0,
            Some(c) => {
                let elapsed = bus_ticks(now).saturating_sub(c.tick) / self.divisor();
                c.count.saturating_sub(u32::try_from(elapsed).unwrap_or(u32::MAX))
            }
        }
    }

    /// Catch the timer up to `now`. When the count reaches 0 the LVT timer entry fires; in
    /// one-shot mode the count stays 0, in periodic mode it reloads from the initial count
    /// and the countdown repeats (§10.5.4). Several periods elapsed at once raise the
    /// vector once, as the IRR would collapse them anyway.
    pub fn advance(&mut self, now: Nanos) {
        let Some(c) = self.timer else { return };
        let div = self.divisor();
        let elapsed = bus_ticks(now).saturating_sub(c.tick) / div;
        let count = u64::from(c.count);
        if elapsed < count {
            return;
        }
        let periodic = self.lvt[LVT_TIMER] & LVT_TIMER_PERIODIC != 0;
        self.timer = if periodic && self.timer_initial != 0 {
            let initial = u64::from(self.timer_initial);
            // Decrements up to the last reload at or before now.
            let last = count + (elapsed - count) / initial * initial;
            Some(Countdown { tick: c.tick.saturating_add(last.saturating_mul(div)), count: self.timer_initial })
        } else {
            None
        };
        self.fire_lvt(LVT_TIMER);
    }

    /// When the timer next raises its interrupt, or `None` if it is stopped or its LVT
    /// entry is masked (an expiry then has no visible effect until a register is read,
    /// which catches up by itself).
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        let c = self.timer?;
        if !self.hardware_enabled() || self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        let due = c.tick.saturating_add(u64::from(c.count).saturating_mul(self.divisor()));
        Some(time_of_tick(due).max(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u32 = LAPIC_DEFAULT_BASE;

    fn rd(a: &mut Lapic, off: u32) -> u32 {
        a.mmio_read(Phys(BASE + off), IoSize::Dword, 0)
    }
    fn wr(a: &mut Lapic, off: u32, v: u32) {
        a.mmio_write(Phys(BASE + off), IoSize::Dword, v, 0)
    }
    fn rd_at(a: &mut Lapic, off: u32, now: Nanos) -> u32 {
        a.mmio_read(Phys(BASE + off), IoSize::Dword, now)
    }
    fn wr_at(a: &mut Lapic, off: u32, v: u32, now: Nanos) {
        a.mmio_write(Phys(BASE + off), IoSize::Dword, v, now)
    }
    fn fixed(vector: u8, level: bool) -> InterruptMessage {
        InterruptMessage { vector, mode: DeliveryMode::Fixed, level_triggered: level, destination: 0, logical: false }
    }
    /// Acknowledge with no 8259A request; the closure must not run.
    fn ack(a: &mut Lapic) -> Option<u8> {
        a.acknowledge(false, || panic!("8259A INTA"))
    }
    fn irr_bit(a: &mut Lapic, v: u8) -> bool {
        rd(a, 0x200 + u32::from(v >> 5) * 0x10) & (1 << (v & 31)) != 0
    }
    fn isr_bit(a: &mut Lapic, v: u8) -> bool {
        rd(a, 0x100 + u32::from(v >> 5) * 0x10) & (1 << (v & 31)) != 0
    }
    /// Nanoseconds for `n` bus clocks at 100 MHz.
    fn ns(n: u64) -> Nanos {
        n * 10
    }

    #[test]
    fn power_on_register_values() {
        let mut a = Lapic::power_on();
        assert_eq!(a.base_msr(), 0xfee0_0900);
        assert_eq!(rd(&mut a, 0x20), 0);
        assert_eq!(rd(&mut a, 0x30), 0x0005_0014);
        for off in [0x80, 0x90, 0xa0, 0xb0, 0xd0, 0x280, 0x300, 0x310, 0x380, 0x390, 0x3e0] {
            assert_eq!(rd(&mut a, off), 0, "register {off:#x}");
        }
        assert_eq!(rd(&mut a, 0xe0), 0xffff_ffff);
        assert_eq!(rd(&mut a, 0xf0), 0xff);
        for off in (0x100..0x280).step_by(0x10) {
            assert_eq!(rd(&mut a, off), 0, "ISR/TMR/IRR {off:#x}");
        }
        for off in (0x320..=0x370).step_by(0x10) {
            assert_eq!(rd(&mut a, off), 0x0001_0000, "LVT {off:#x}");
        }
        assert!(!a.software_enabled());
        assert!(a.hardware_enabled());
        assert_eq!(a.next_event(0), None);
        // No error was logged by any of those reads.
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), 0);
    }

    #[test]
    fn new_is_virtual_wire() {
        let mut a = Lapic::new();
        assert_eq!(rd(&mut a, 0xf0), 0x1ff);
        assert_eq!(rd(&mut a, 0x350), 0x700);
        assert_eq!(rd(&mut a, 0x360), 0x400);
        assert_eq!(rd(&mut a, 0x320), 0x0001_0000);
    }

    #[test]
    fn register_write_masks() {
        let mut a = Lapic::new();
        wr(&mut a, 0x20, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0x20), 0xff00_0000);
        wr(&mut a, 0x80, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0x80), 0xff);
        wr(&mut a, 0xd0, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0xd0), 0xff00_0000);
        wr(&mut a, 0xe0, 0);
        assert_eq!(rd(&mut a, 0xe0), 0x0fff_ffff);
        wr(&mut a, 0xf0, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0xf0), 0x3ff);
        wr(&mut a, 0x310, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0x310), 0xff00_0000);
        wr(&mut a, 0x3e0, 0xffff_ffff);
        assert_eq!(rd(&mut a, 0x3e0), 0xb);
        let expect = [0x0003_00ff, 0x0001_07ff, 0x0001_07ff, 0x0001_a7ff, 0x0001_a7ff, 0x0001_00ff];
        for (i, e) in expect.iter().enumerate() {
            let off = 0x320 + 0x10 * i as u32;
            wr(&mut a, off, 0xffff_ffff);
            assert_eq!(rd(&mut a, off), *e, "LVT {off:#x}");
        }
        // Read-only registers ignore writes.
        wr(&mut a, 0x30, 0);
        wr(&mut a, 0xa0, 0xff);
        wr(&mut a, 0x390, 5);
        assert_eq!(rd(&mut a, 0x30), LAPIC_VERSION);
        assert_eq!(rd(&mut a, 0xa0), 0xff, "PPR follows the TPR written above");
        assert_eq!(rd(&mut a, 0x390), 0);
    }

    #[test]
    fn svr_software_enable_and_lvt_masks() {
        let mut a = Lapic::power_on();
        wr(&mut a, 0x320, 0x0000_0040);
        assert_eq!(rd(&mut a, 0x320), 0x0001_0040, "mask stays set while disabled");
        wr(&mut a, 0xf0, 0x1f0);
        assert!(a.software_enabled());
        assert_eq!(rd(&mut a, 0xf0), 0x1f0, "all eight vector bits are writable");
        assert_eq!(rd(&mut a, 0x320), 0x0001_0040, "enabling does not unmask");
        wr(&mut a, 0x320, 0x0000_0040);
        assert_eq!(rd(&mut a, 0x320), 0x40);
        wr(&mut a, 0x350, 0x700);
        // Disabling masks every entry.
        wr(&mut a, 0xf0, 0xf0);
        for off in (0x320..=0x370).step_by(0x10) {
            assert_ne!(rd(&mut a, off) & LVT_MASKED, 0, "LVT {off:#x}");
        }
        assert_eq!(rd(&mut a, 0x350), 0x0001_0700);
        // Virtual wire is off: the 8259A no longer reaches the CPU.
        assert!(!a.has_interrupt(true));
    }

    #[test]
    fn software_disabled_refuses_fixed_but_takes_nmi() {
        let mut a = Lapic::power_on();
        a.deliver(fixed(0x40, false));
        assert!(!irr_bit(&mut a, 0x40));
        a.deliver(InterruptMessage { mode: DeliveryMode::Nmi, ..fixed(0, false) });
        assert!(a.take_nmi());
        assert!(!a.take_nmi());
        // Accepted interrupts are held across a software disable and still dispatched.
        wr(&mut a, 0xf0, 0x1ff);
        a.deliver(fixed(0x40, false));
        wr(&mut a, 0xf0, 0xff);
        assert!(a.has_interrupt(false));
        assert_eq!(ack(&mut a), Some(0x40));
    }

    #[test]
    fn tpr_masks_by_priority_class() {
        let mut a = Lapic::new();
        a.deliver(fixed(0x45, false));
        wr(&mut a, 0x80, 0x50);
        assert!(!a.has_interrupt(false));
        assert_eq!(ack(&mut a), None);
        assert!(irr_bit(&mut a, 0x45), "still pending");
        wr(&mut a, 0x80, 0x4f);
        assert!(!a.has_interrupt(false), "same class as the TPR is blocked");
        assert_eq!(rd(&mut a, 0xa0), 0x4f);
        wr(&mut a, 0x80, 0x3f);
        assert!(a.has_interrupt(false));
        assert_eq!(ack(&mut a), Some(0x45));
        // PPR now follows the in-service class.
        assert_eq!(rd(&mut a, 0xa0), 0x40);
        wr(&mut a, 0x80, 0x52);
        assert_eq!(rd(&mut a, 0xa0), 0x52);
        wr(&mut a, 0x80, 0);
        wr(&mut a, 0xb0, 0);
        assert_eq!(rd(&mut a, 0xa0), 0);
    }

    #[test]
    fn higher_vector_wins_and_nests() {
        let mut a = Lapic::new();
        a.deliver(fixed(0x31, false));
        a.deliver(fixed(0x82, false));
        assert_eq!(ack(&mut a), Some(0x82));
        assert!(isr_bit(&mut a, 0x82));
        // 0x31 waits while class 8 is in service.
        assert!(!a.has_interrupt(false));
        // A higher class nests.
        a.deliver(fixed(0x93, false));
        assert_eq!(ack(&mut a), Some(0x93));
        // Same class as the one in service: waits.
        a.deliver(fixed(0x9f, false));
        assert!(!a.has_interrupt(false));
        wr(&mut a, 0xb0, 0);
        assert!(!isr_bit(&mut a, 0x93));
        assert!(isr_bit(&mut a, 0x82));
        // Class 9 is above the class 8 still in service; class 3 is not.
        assert_eq!(ack(&mut a), Some(0x9f));
        wr(&mut a, 0xb0, 0);
        assert!(!a.has_interrupt(false));
        wr(&mut a, 0xb0, 0);
        assert_eq!(ack(&mut a), Some(0x31));
    }

    #[test]
    fn eoi_order_and_repeated_vector() {
        let mut a = Lapic::new();
        a.deliver(fixed(0x31, false));
        a.deliver(fixed(0x82, false));
        assert_eq!(ack(&mut a), Some(0x82));
        // The same vector again queues once in the IRR behind its ISR bit.
        a.deliver(fixed(0x82, false));
        a.deliver(fixed(0x82, false));
        assert!(!a.has_interrupt(false));
        wr(&mut a, 0xb0, 0);
        assert_eq!(ack(&mut a), Some(0x82));
        wr(&mut a, 0xb0, 0);
        assert_eq!(ack(&mut a), Some(0x31));
        wr(&mut a, 0xb0, 0);
        assert_eq!(ack(&mut a), None);
        // EOI with nothing in service is harmless.
        wr(&mut a, 0xb0, 0);
        assert_eq!(a.take_eoi_broadcast(), None);
    }

    #[test]
    fn eoi_broadcast_only_for_level_triggered() {
        let mut a = Lapic::new();
        a.deliver(fixed(0x51, true));
        a.deliver(fixed(0x61, false));
        assert_eq!(rd(&mut a, 0x180 + 0x20), 1 << (0x51 - 0x40), "TMR bit for the level vector");
        assert_eq!(ack(&mut a), Some(0x61));
        wr(&mut a, 0xb0, 0);
        assert_eq!(a.take_eoi_broadcast(), None);
        assert_eq!(ack(&mut a), Some(0x51));
        wr(&mut a, 0xb0, 0);
        assert_eq!(a.take_eoi_broadcast(), Some(0x51));
        assert_eq!(a.take_eoi_broadcast(), None);
    }

    #[test]
    fn esr_write_then_read_and_error_interrupt() {
        let mut a = Lapic::new();
        wr(&mut a, 0x370, 0xfe);
        // A self IPI with an illegal vector: send and receive errors, nothing in the IRR.
        wr(&mut a, 0x300, 0x0004_0005);
        assert_eq!(rd(&mut a, 0x280), 0, "errors are not visible before an ESR write");
        assert!(irr_bit(&mut a, 0xfe), "the error LVT fired once");
        assert_eq!(ack(&mut a), Some(0xfe));
        wr(&mut a, 0xb0, 0);
        // Not rearmed yet: another error does not interrupt.
        let _ = rd(&mut a, 0x400);
        assert!(!a.has_interrupt(false));
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), ESR_SEND_ILLEGAL_VECTOR | ESR_RECEIVE_ILLEGAL_VECTOR | ESR_ILLEGAL_REGISTER);
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), 0);
        // Rearmed: the next error interrupts again.
        wr(&mut a, 0x3f0, 1);
        assert!(irr_bit(&mut a, 0xfe));
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), ESR_ILLEGAL_REGISTER);
    }

    #[test]
    fn illegal_vectors_from_lvt_and_messages() {
        let mut a = Lapic::new();
        a.deliver(fixed(0x0f, false));
        wr(&mut a, 0x320, 0x0000_0003);
        wr(&mut a, 0x3e0, 0xb);
        wr(&mut a, 0x380, 1);
        a.advance(ns(1));
        assert_eq!(ack(&mut a), None);
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), ESR_RECEIVE_ILLEGAL_VECTOR);
        for off in (0x100..0x280).step_by(0x10) {
            assert_eq!(rd(&mut a, off), 0, "{off:#x}");
        }
    }

    #[test]
    fn apr_follows_the_sdm_formula() {
        let mut a = Lapic::new();
        wr(&mut a, 0x80, 0x35);
        assert_eq!(rd(&mut a, 0x90), 0x35);
        a.deliver(fixed(0x47, false));
        assert_eq!(rd(&mut a, 0x90), 0x40, "IRRV class above the TPR");
        wr(&mut a, 0x80, 0x10);
        assert_eq!(ack(&mut a), Some(0x47));
        // TPR 1 <= ISRV 4: max(1 AND 4, 0) = 0.
        assert_eq!(rd(&mut a, 0x90), 0x00);
        wr(&mut a, 0x80, 0x5a);
        assert_eq!(rd(&mut a, 0x90), 0x5a);
    }

    #[test]
    fn timer_one_shot() {
        let mut a = Lapic::new();
        wr(&mut a, 0x3e0, 0xb); // divide by 1
        wr(&mut a, 0x320, 0x30);
        wr_at(&mut a, 0x380, 1000, 0);
        assert_eq!(rd_at(&mut a, 0x390, 0), 1000);
        assert_eq!(rd_at(&mut a, 0x390, ns(250)), 750);
        assert_eq!(a.next_event(ns(250)), Some(ns(1000)));
        a.advance(ns(1000) - 1);
        assert!(!a.has_interrupt(false));
        assert_eq!(rd_at(&mut a, 0x390, ns(1000) - 1), 1);
        a.advance(ns(1000));
        assert!(a.has_interrupt(false));
        assert_eq!(rd_at(&mut a, 0x390, ns(1000)), 0);
        assert_eq!(a.next_event(ns(1000)), None);
        assert_eq!(ack(&mut a), Some(0x30));
        wr_at(&mut a, 0xb0, 0, ns(1000));
        a.advance(ns(1_000_000));
        assert!(!a.has_interrupt(false), "one shot stays at 0");
        assert_eq!(rd_at(&mut a, 0x390, ns(1_000_000)), 0);
        assert_eq!(rd_at(&mut a, 0x380, ns(1_000_000)), 1000);
    }

    #[test]
    fn timer_periodic_with_divider() {
        let mut a = Lapic::new();
        wr(&mut a, 0x3e0, 0x3); // divide by 16
        wr(&mut a, 0x320, 0x0002_0031);
        wr_at(&mut a, 0x380, 100, ns(5));
        assert_eq!(rd_at(&mut a, 0x390, ns(5 + 16 * 10)), 90);
        assert_eq!(rd_at(&mut a, 0x390, ns(5 + 16 * 10 - 1)), 91);
        let period = ns(1600);
        for k in 1..=5u64 {
            let due = ns(5) + k * period;
            assert_eq!(a.next_event(due - period + 1), Some(due), "period {k}");
            a.advance(due - 1);
            assert!(!a.has_interrupt(false));
            a.advance(due);
            assert_eq!(ack(&mut a), Some(0x31));
            wr_at(&mut a, 0xb0, 0, due);
            assert_eq!(rd_at(&mut a, 0x390, due), 100, "reloaded");
        }
        // Several periods at once raise the vector once and keep the phase.
        let t = ns(5) + 5 * period + 3 * period + ns(16 * 7);
        a.advance(t);
        assert_eq!(ack(&mut a), Some(0x31));
        assert_eq!(ack(&mut a), None);
        assert_eq!(rd_at(&mut a, 0x390, t), 93);
        // Writing 0 stops it.
        wr_at(&mut a, 0x380, 0, t);
        assert_eq!(a.next_event(t), None);
        assert_eq!(rd_at(&mut a, 0x390, t + period * 10), 0);
    }

    #[test]
    fn every_divide_configuration() {
        let table = [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64), (0xa, 128), (0xb, 1)];
        for (dcr, div) in table {
            let mut a = Lapic::new();
            wr(&mut a, 0x3e0, dcr);
            wr(&mut a, 0x320, 0x40);
            wr(&mut a, 0x380, 10);
            assert_eq!(a.next_event(0), Some(ns(10 * div)), "dcr {dcr:#x}");
            assert_eq!(rd_at(&mut a, 0x390, ns(3 * div)), 7, "dcr {dcr:#x}");
            assert_eq!(rd_at(&mut a, 0x390, ns(3 * div) - 1), 8, "dcr {dcr:#x}");
        }
    }

    #[test]
    fn divide_change_mid_count_and_mode_change() {
        let mut a = Lapic::new();
        wr(&mut a, 0x3e0, 0xb);
        wr(&mut a, 0x320, 0x40);
        wr(&mut a, 0x380, 100);
        // After 40 clocks switch to divide by 2: 60 left, 120 clocks.
        wr_at(&mut a, 0x3e0, 0x0, ns(40));
        assert_eq!(rd_at(&mut a, 0x390, ns(40)), 60);
        assert_eq!(a.next_event(ns(40)), Some(ns(160)));
        // Switching to periodic does not restart but reloads at zero.
        wr_at(&mut a, 0x320, 0x0002_0040, ns(50));
        assert_eq!(rd_at(&mut a, 0x390, ns(50)), 55);
        a.advance(ns(160));
        assert_eq!(ack(&mut a), Some(0x40));
        assert_eq!(rd_at(&mut a, 0x390, ns(160)), 100);
        assert_eq!(a.next_event(ns(160)), Some(ns(360)));
    }

    #[test]
    fn masked_timer_counts_silently() {
        let mut a = Lapic::new();
        wr(&mut a, 0x3e0, 0xb);
        wr(&mut a, 0x320, 0x0001_0040);
        wr(&mut a, 0x380, 10);
        assert_eq!(a.next_event(0), None);
        assert_eq!(rd_at(&mut a, 0x390, ns(4)), 6);
        a.advance(ns(100));
        assert!(!a.has_interrupt(false));
        assert_eq!(rd_at(&mut a, 0x390, ns(100)), 0);
        // Unmasking later does not bring the lost expiry back.
        wr_at(&mut a, 0x320, 0x40, ns(100));
        assert!(!a.has_interrupt(false));
    }

    #[test]
    fn virtual_wire_passes_the_8259_through() {
        let mut a = Lapic::new();
        assert!(!a.has_interrupt(false));
        assert!(a.has_interrupt(true));
        // ExtINT ignores the TPR and does not touch the IRR or ISR.
        wr(&mut a, 0x80, 0xff);
        assert!(a.has_interrupt(true));
        assert_eq!(a.acknowledge(true, || 0x08), Some(0x08));
        for off in (0x100..0x280).step_by(0x10) {
            assert_eq!(rd(&mut a, off), 0);
        }
        assert_eq!(a.acknowledge(false, || 0x08), None);
        // The APIC's own interrupts come first.
        wr(&mut a, 0x80, 0);
        a.deliver(fixed(0x41, false));
        assert_eq!(a.acknowledge(true, || 0x08), Some(0x41));
        assert_eq!(a.acknowledge(true, || 0x09), Some(0x09), "in-service 0x41 does not block ExtINT");
        // Masking LINT0 cuts the wire.
        wr(&mut a, 0x350, 0x0001_0700);
        assert!(!a.has_interrupt(true));
        assert_eq!(a.acknowledge(true, || panic!("INTA")), None);
    }

    #[test]
    fn lint0_fixed_mode_is_level_with_remote_irr() {
        let mut a = Lapic::new();
        wr(&mut a, 0x350, 0x0000_8055);
        assert!(a.has_interrupt(true));
        assert_eq!(a.acknowledge(true, || panic!("no INTA in fixed mode")), Some(0x55));
        assert_eq!(rd(&mut a, 0x350), 0x0000_c055, "remote IRR set");
        assert!(!a.has_interrupt(true), "once until EOI");
        wr(&mut a, 0xb0, 0);
        assert_eq!(rd(&mut a, 0x350), 0x0000_8055);
        assert!(a.has_interrupt(true), "still asserted: again");
        assert!(!a.has_interrupt(false));
    }

    #[test]
    fn extint_message_from_io_apic() {
        let mut a = Lapic::new();
        wr(&mut a, 0x350, 0x0001_0700); // LINT0 masked: only the message path
        a.deliver(InterruptMessage { mode: DeliveryMode::ExtInt, ..fixed(0, false) });
        assert!(a.has_interrupt(false));
        assert_eq!(a.acknowledge(true, || 0x20), Some(0x20));
        assert!(!a.has_interrupt(true));
    }

    #[test]
    fn hardware_disable_and_relocation() {
        let mut a = Lapic::new();
        assert!(a.contains(Phys(0xfee0_0ff0)));
        assert!(!a.contains(Phys(0xfee0_1000)));
        assert!(!a.set_base_msr(0xfee0_0800 | 1), "reserved bit 0");
        assert!(!a.set_base_msr(0xfee0_0c00), "x2APIC enable is reserved");
        assert!(!a.set_base_msr(0x1_fee0_0800), "above MAXPHYADDR");
        assert_eq!(a.base_msr(), 0xfee0_0900);
        // Relocate; the BSP flag is read-only.
        assert!(a.set_base_msr(0xfed0_0800));
        assert_eq!(a.base_msr(), 0xfed0_0900);
        assert!(!a.contains(Phys(0xfee0_0020)));
        assert_eq!(a.mmio_read(Phys(0xfed0_0030), IoSize::Dword, 0), LAPIC_VERSION);
        assert_eq!(a.mmio_read(Phys(0xfee0_0030), IoSize::Dword, 0), 0xffff_ffff);
        // Programme something, then disable globally.
        a.mmio_write(Phys(0xfed0_0080), IoSize::Dword, 0x20, 0);
        a.deliver(fixed(0x70, false));
        assert!(a.set_base_msr(0xfed0_0000));
        assert!(!a.hardware_enabled());
        assert!(!a.contains(Phys(0xfed0_0080)));
        assert_eq!(a.mmio_read(Phys(0xfed0_0080), IoSize::Dword, 0), 0xffff_ffff);
        // The 8259A drives the CPU directly; messages go nowhere.
        assert!(a.has_interrupt(true));
        assert!(!a.has_interrupt(false));
        assert_eq!(a.acknowledge(true, || 0x0e), Some(0x0e));
        a.deliver(fixed(0x70, false));
        assert!(!a.has_interrupt(false));
        // LINT1 is the NMI pin.
        a.set_lint1(true);
        assert!(a.take_nmi());
        a.set_lint1(false);
        // Enabled again: power-up state at the new base.
        assert!(a.set_base_msr(0xfed0_0800));
        assert_eq!(a.mmio_read(Phys(0xfed0_00f0), IoSize::Dword, 0), 0xff);
        assert_eq!(a.mmio_read(Phys(0xfed0_0080), IoSize::Dword, 0), 0);
        assert_eq!(a.mmio_read(Phys(0xfed0_0350), IoSize::Dword, 0), 0x0001_0000);
        assert!(!a.has_interrupt(true), "LINT0 masked after the reset");
        assert!(!a.has_interrupt(false));
    }

    #[test]
    fn self_ipis_and_shorthands() {
        let mut a = Lapic::new();
        // Shorthand self, fixed.
        wr(&mut a, 0x300, 0x0004_0040);
        assert_eq!(rd(&mut a, 0x300), 0x0004_0040, "delivery status reads idle");
        assert!(irr_bit(&mut a, 0x40));
        // All including self.
        wr(&mut a, 0x300, 0x0008_0041);
        assert!(irr_bit(&mut a, 0x41));
        // All excluding self reaches nobody, whatever the mode (INIT, SIPI included).
        for lo in [0x000c_0042, 0x000c_4500, 0x000c_4608, 0x000c_0400] {
            wr(&mut a, 0x300, lo);
        }
        assert!(!irr_bit(&mut a, 0x42));
        assert!(!a.take_nmi());
        // No shorthand: physical destination 0 is us, 1 is nobody, FFh is everyone.
        wr(&mut a, 0x310, 0x0100_0000);
        wr(&mut a, 0x300, 0x43);
        assert!(!irr_bit(&mut a, 0x43));
        wr(&mut a, 0x310, 0);
        wr(&mut a, 0x300, 0x44);
        assert!(irr_bit(&mut a, 0x44));
        wr(&mut a, 0x310, 0xff00_0000);
        wr(&mut a, 0x300, 0x45);
        assert!(irr_bit(&mut a, 0x45));
        // Self NMI through the destination field; INIT and SIPI to self are ignored.
        wr(&mut a, 0x310, 0);
        wr(&mut a, 0x300, 0x400);
        assert!(a.take_nmi());
        wr(&mut a, 0x300, 0x4500);
        wr(&mut a, 0x300, 0x0600);
        // Self shorthand with a non-fixed mode is invalid.
        wr(&mut a, 0x300, 0x0004_0400);
        assert!(!a.take_nmi());
        // Logical destination (flat model).
        wr(&mut a, 0xd0, 0x0400_0000);
        wr(&mut a, 0x310, 0x0200_0000);
        wr(&mut a, 0x300, 0x846);
        assert!(!irr_bit(&mut a, 0x46));
        wr(&mut a, 0x310, 0x0600_0000);
        wr(&mut a, 0x300, 0x846);
        assert!(irr_bit(&mut a, 0x46));
        assert_eq!(rd(&mut a, 0x280), 0);
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), 0, "no errors from valid IPIs");
    }

    #[test]
    fn destination_matching() {
        let mut a = Lapic::new();
        wr(&mut a, 0x20, 0x0300_0000);
        assert!(a.accepts_destination(3, false));
        assert!(!a.accepts_destination(0, false));
        assert!(a.accepts_destination(0xff, false));
        // Flat: any shared bit.
        wr(&mut a, 0xd0, 0x1200_0000);
        assert!(a.accepts_destination(0x02, true));
        assert!(a.accepts_destination(0x10, true));
        assert!(!a.accepts_destination(0x01, true));
        // Cluster: cluster 1, member bit 1.
        wr(&mut a, 0xe0, 0x0fff_ffff);
        assert!(a.accepts_destination(0x12, true));
        assert!(a.accepts_destination(0x13, true));
        assert!(!a.accepts_destination(0x22, true));
        assert!(!a.accepts_destination(0x11, true));
        assert!(a.accepts_destination(0xff, true));
        a.deliver(InterruptMessage { logical: true, destination: 0x22, ..fixed(0x50, false) });
        assert!(!irr_bit(&mut a, 0x50));
        a.deliver(InterruptMessage { logical: true, destination: 0x1f, ..fixed(0x50, false) });
        assert!(irr_bit(&mut a, 0x50));
        // Lowest priority to a matching destination is fixed delivery here.
        a.deliver(InterruptMessage { mode: DeliveryMode::LowestPriority, ..fixed(0x51, false) });
        assert!(!irr_bit(&mut a, 0x51), "physical 0 is not our ID 3");
        a.deliver(InterruptMessage { mode: DeliveryMode::LowestPriority, destination: 3, ..fixed(0x51, false) });
        assert!(irr_bit(&mut a, 0x51));
    }

    #[test]
    fn lint1_nmi_on_rising_edge() {
        let mut a = Lapic::new();
        a.set_lint1(true);
        assert!(a.take_nmi());
        a.set_lint1(true);
        assert!(!a.take_nmi(), "level held: no new edge");
        a.set_lint1(false);
        a.set_lint1(true);
        assert!(a.take_nmi());
        a.set_lint1(false);
        wr(&mut a, 0x360, 0x0001_0400);
        a.set_lint1(true);
        assert!(!a.take_nmi(), "masked");
        a.set_lint1(false);
        wr(&mut a, 0x360, 0x0000_0060);
        a.set_lint1(true);
        assert!(irr_bit(&mut a, 0x60), "fixed mode");
    }

    #[test]
    fn narrow_accesses() {
        let mut a = Lapic::new();
        assert_eq!(a.mmio_read(Phys(BASE + 0x30), IoSize::Byte, 0), 0x14);
        assert_eq!(a.mmio_read(Phys(BASE + 0x32), IoSize::Word, 0), 0x0005);
        assert_eq!(a.mmio_read(Phys(BASE + 0x34), IoSize::Dword, 0), 0, "bytes 4-15 of a slot");
        a.mmio_write(Phys(BASE + 0x80), IoSize::Byte, 0x7f, 0);
        assert_eq!(rd(&mut a, 0x80), 0x7f);
        a.mmio_write(Phys(BASE + 0x23), IoSize::Byte, 0x05, 0);
        assert_eq!(rd(&mut a, 0x20), 0x0500_0000);
        // Straddling the end of the window.
        assert_eq!(a.mmio_read(Phys(BASE + 0xffe), IoSize::Dword, 0), 0xffff_0000);
        a.mmio_write(Phys(BASE + 0xffe), IoSize::Dword, 0xffff_ffff, 0);
        wr(&mut a, 0x280, 0);
        assert_eq!(rd(&mut a, 0x280), 0, "bytes beyond the register are ignored");
    }

    #[test]
    fn garbage_never_panics() {
        let mut a = Lapic::new();
        let mut x: u32 = 0x1234_5678;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let off = (x >> 8) & 0xfff;
            let size = [IoSize::Byte, IoSize::Word, IoSize::Dword][(x % 3) as usize];
            let now = i * 37;
            if x & 0x8000_0000 != 0 {
                a.mmio_write(Phys(BASE + off), size, x.rotate_left(7), now);
            } else {
                let _ = a.mmio_read(Phys(BASE + off), size, now);
            }
            if x & 0x70 == 0 {
                let _ = a.acknowledge(x & 1 != 0, || 0x08);
            }
            if x & 0x3f0 == 0 {
                let _ = a.set_base_msr(u64::from(x) | APIC_BASE_ENABLE);
            }
            a.set_lint1(x & 2 != 0);
            a.deliver(InterruptMessage {
                vector: x as u8,
                mode: DeliveryMode::from_bits(x >> 3).unwrap_or(DeliveryMode::Fixed),
                level_triggered: x & 4 != 0,
                destination: (x >> 24) as u8,
                logical: x & 8 != 0,
            });
            a.advance(now);
            let _ = a.next_event(now);
            let _ = a.has_interrupt(x & 1 != 0);
            let _ = a.take_eoi_broadcast();
            let _ = a.take_nmi();
        }
        a.advance(u64::MAX);
        let _ = a.next_event(u64::MAX);
    }
}
