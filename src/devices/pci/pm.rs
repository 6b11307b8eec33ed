//! 01.3: the Intel 82371AB PIIX4 power-management function, which carries the ACPI
//! fixed-hardware registers: PM1 status/enable, PM1 control (SCI_EN, sleep type and sleep
//! enable — how an OS powers the machine off) and the 24-bit ACPI PM timer at
//! 3.579545 MHz. SeaBIOS looks for this function by its IDs, places its I/O block
//! (normally at B000h), times itself with the PM timer, and writes a FADT pointing at it;
//! Linux then uses the timer as a clocksource and PM1 control to power off.
//!
//! The timer is a pure function of virtual time: `floor(now · 3579545 / 10⁹) mod 2²⁴`, so
//! runs are deterministic. The timer-overflow status (TMROF_STS) is set whenever bit 23 of
//! the count has changed since software last cleared it; with TMROF_EN and SCI_EN it raises
//! the SCI, for which [`PowerManagement::next_event`] tells the run loop when.
//!
//! Also here, because they belong to the same ACPI picture:
//! - the APM control and status ports B2h/B3h (PIIX4 function 0's APMC/APMS). There is no
//!   SMM, so the two commands SeaBIOS's FADT advertises — ACPI_ENABLE F1h and ACPI_DISABLE
//!   F0h — are carried out here directly (set or clear SCI_EN), which is what the SMI
//!   handler would do;
//! - DEVACTB bit 25 (APMC_EN) reads as set when the machine has no SMM: SeaBIOS takes that
//!   as "SMM already initialised" and skips its SMI-based relocation, which would otherwise
//!   wait forever for an SMI handler to answer on port B3h;
//! - the 4-byte GPE0 block at AFE0h that SeaBIOS's FADT declares (two status bytes, two
//!   enable bytes; nothing raises general-purpose events, so status reads 0).
//!
//! Not emulated: the SMBus host controller (its base register is stored, its I/O block is
//! not decoded), suspend states (a sleep request is reported to the machine, which decides),
//! clock throttling and the device monitors.
//!
//! Sources: Intel "82371AB PCI-TO-ISA / IDE XCELERATOR (PIIX4)" datasheet (order 290562),
//! §3.4 "Power Management Registers (Function 3)" — PMBA 40h (bits 15–6, bit 0 hard-wired
//! 1), DEVACTB 58h, PMREGMISC 80h (bit 0 PMIOSE), SMBBA 90h, SMBHSTCFG D2h, INTPN 3Dh = 01h
//! — and §3.5 "Power Management I/O Space Registers": PMSTS 00h, PMEN 02h, PMCNTRL 04h
//! (SUS_TYP bits 12–10 with 000b = soft off, SUS_EN bit 13), PMTMR 08h; APMC/APMS at
//! B2h/B3h (§3.1 function 0 I/O registers). ACPI 1.0 §4.7 for the timer and the PM1
//! register semantics. Revision 03h is the PIIX4E/M, whose timer Linux trusts (it applies a
//! slow triple-read workaround to earlier revisions).

use super::config::*;
use super::PciFunction;
use crate::bus::IoSize;
use crate::devices::Nanos;
use serde::{Deserialize, Serialize};

/// PM I/O base address register (PMBA).
pub const PIIX4_PMBA: u8 = 0x40;
/// Device activity B register (DEVACTB, 32 bits).
pub const PIIX4_DEVACTB: u8 = 0x58;
/// DEVACTB bit 25, APMC_EN: writes to the APM control port raise an SMI.
pub const DEVACTB_APMC_EN: u32 = 1 << 25;
/// Miscellaneous power-management register (PMREGMISC).
pub const PIIX4_PMREGMISC: u8 = 0x80;
/// PMREGMISC bit 0, PMIOSE: the PM I/O block decodes.
pub const PMREGMISC_PMIOSE: u8 = 0x01;
/// SMBus base address register (SMBBA).
pub const PIIX4_SMBBA: u8 = 0x90;
/// SMBus host configuration register (SMBHSTCFG); bit 0 enables the host interface.
pub const PIIX4_SMBHSTCFG: u8 = 0xd2;

/// Size of the PM I/O block (PMBA decodes 64 bytes).
pub const PM_IO_SIZE: u16 = 0x40;
/// PM1a status (PMSTS), offset in the PM block.
pub const PM1_STS: u16 = 0x00;
/// PM1a enable (PMEN).
pub const PM1_EN: u16 = 0x02;
/// PM1a control (PMCNTRL).
pub const PM1_CNT: u16 = 0x04;
/// ACPI PM timer (PMTMR), 24 bits.
pub const PM_TMR: u16 = 0x08;

/// PM1 status/enable bit 0: timer overflow (TMROF_STS / TMROF_EN).
pub const PM1_TMROF: u16 = 1 << 0;
/// PM1 status bit 4: bus master activity (BM_STS).
pub const PM1_BM: u16 = 1 << 4;
/// PM1 status/enable bit 5: global (BIOS release) event.
pub const PM1_GBL: u16 = 1 << 5;
/// PM1 status/enable bit 8: power button.
pub const PM1_PWRBTN: u16 = 1 << 8;
/// PM1 status/enable bit 10: RTC alarm.
pub const PM1_RTC: u16 = 1 << 10;
/// PM1 status bit 11: power-button override.
pub const PM1_PWRBTNOR: u16 = 1 << 11;
/// PM1 status bit 15: wake status (WAK_STS / RSM_STS).
pub const PM1_WAK: u16 = 1 << 15;
/// PM1 control bit 0: SCI_EN — power-management events raise the SCI (ACPI mode).
pub const PM1_CNT_SCI_EN: u16 = 1 << 0;
/// PM1 control bit 1: BRLD_EN_BM — bus-master requests wake the processor.
pub const PM1_CNT_BM_RLD: u16 = 1 << 1;
/// PM1 control bit 2: GBL_RLS (write-only, raises an SMI to the BIOS; nothing here).
pub const PM1_CNT_GBL_RLS: u16 = 1 << 2;
/// PM1 control bits 12–10: sleep type (SUS_TYP / SLP_TYP).
pub const PM1_CNT_SLP_TYP: u16 = 7 << 10;
/// PM1 control bit 13: sleep enable (SUS_EN / SLP_EN), write-only.
pub const PM1_CNT_SLP_EN: u16 = 1 << 13;
/// SUS_TYP 000b: soft off.
pub const SLP_TYP_SOFT_OFF: u8 = 0;

/// Status bits this model sets and software clears by writing 1.
const PM1_STS_W1C: u16 = PM1_TMROF | PM1_BM | PM1_GBL | PM1_PWRBTN | PM1_RTC | PM1_PWRBTNOR | PM1_WAK;
/// Writable PM1 enable bits.
const PM1_EN_MASK: u16 = PM1_TMROF | PM1_GBL | PM1_PWRBTN | PM1_RTC;
/// Stored PM1 control bits.
const PM1_CNT_STORED: u16 = PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP;
/// Status bits that raise the SCI when enabled.
const PM1_SCI_SOURCES: u16 = PM1_TMROF | PM1_GBL | PM1_PWRBTN | PM1_RTC;

/// ACPI PM timer frequency (ACPI 1.0 §4.7.2.1: 3.579545 MHz).
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The timer's width: 24 bits.
const PM_TIMER_MASK: u64 = 0x00ff_ffff;
/// TMROF_STS tracks changes of this count bit.
const PM_TIMER_MSB_SHIFT: u32 = 23;

/// The ISA IRQ of the SCI: SeaBIOS writes 9 into this function's interrupt line and
/// declares SCI_INT = 9 in its FADT; the machine delivers [`PowerManagement::sci_level`]
/// there as a level.
pub const SCI_IRQ: u8 = 9;

/// APM control port (APMC).
pub const PORT_APM_CONTROL: u16 = 0xb2;
/// APM status port (APMS), a scratch byte.
pub const PORT_APM_STATUS: u16 = 0xb3;
/// APMC command that switches to ACPI mode (SeaBIOS FADT ACPI_ENABLE).
pub const APM_ACPI_ENABLE: u8 = 0xf1;
/// APMC command that leaves ACPI mode (SeaBIOS FADT ACPI_DISABLE).
pub const APM_ACPI_DISABLE: u8 = 0xf0;

/// GPE0 block base as SeaBIOS's FADT declares it (`GPE0_BLK`, length 4).
pub const GPE0_BASE: u16 = 0xafe0;
/// GPE0 block length: two status bytes, two enable bytes.
pub const GPE0_LEN: u16 = 4;

/// Timer ticks elapsed by `now`.
fn pm_ticks(now: Nanos) -> u64 {
    (u128::from(now) * u128::from(PM_TIMER_HZ) / 1_000_000_000) as u64
}

/// The first instant at which `pm_ticks` reaches `tick`.
fn time_of_tick(tick: u64) -> Nanos {
    let t = (u128::from(tick) * 1_000_000_000).div_ceil(u128::from(PM_TIMER_HZ));
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The PIIX4 power-management function and the ACPI registers it decodes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PowerManagement {
    cfg: ConfigSpace,
    /// Whether the machine has SMM (decides the APMC_EN preset).
    smm: bool,
    /// PM1 status bits other than TMROF_STS.
    pm1_sts: u16,
    pm1_en: u16,
    pm1_cnt: u16,
    /// `pm_ticks >> 23` when TMROF_STS was last cleared; the status is set while the
    /// current value differs.
    tmrof_epoch: u64,
    /// The other registers of the PM block (offsets 0Ch–3Fh), stored as written.
    #[serde(with = "serde_big_array::BigArray")]
    regs: [u8; PM_IO_SIZE as usize],
    gpe_enable: [u8; 2],
    apm_control: u8,
    apm_status: u8,
    power_off: bool,
    sleep_request: Option<u8>,
}

impl PowerManagement {
    /// Power-on state: 8086:7113, class 06:80:00 (other bridge), revision 03h, INTA#,
    /// PCICMD 0000h (bit 0, the SMBus I/O enable, writable), PCISTS 0280h, PMBA and SMBBA
    /// 00000001h (I/O indicator), PM block not decoded, SCI_EN clear, timer at 0. `smm`
    /// says whether the processor has System Management Mode; without it DEVACTB.APMC_EN
    /// reads 1 (see the module comment).
    pub fn new(smm: bool) -> Self {
        let mut cfg = ConfigSpace::new(0x8086, 0x7113, 0x06_80_00, 0x03, 0x00);
        cfg.set_command(0, CMD_IO);
        cfg.set_status(STATUS_FAST_B2B | STATUS_DEVSEL_MEDIUM);
        cfg.set_interrupt_pin(1);
        // PMBA: bits 15–6 the base, bit 0 reads 1.
        cfg.set_dword(PIIX4_PMBA, 1);
        cfg.set_wmask_dword(PIIX4_PMBA, 0x0000_ffc0);
        // CNTA, CNTB, GPICTL, DEVRESD, DEVACTA, DEVACTB, DEVRESA–DEVRESJ: stored.
        cfg.add_register(0x44, 0x3c, 0);
        if !smm {
            let d = cfg.dword(PIIX4_DEVACTB) | DEVACTB_APMC_EN;
            cfg.set_dword(PIIX4_DEVACTB, d);
            cfg.set_wmask_dword(PIIX4_DEVACTB, !DEVACTB_APMC_EN);
        }
        cfg.set_wmask_byte(PIIX4_PMREGMISC, PMREGMISC_PMIOSE);
        // SMBBA: bits 15–4 the base, bit 0 reads 1.
        cfg.set_dword(PIIX4_SMBBA, 1);
        cfg.set_wmask_dword(PIIX4_SMBBA, 0x0000_fff0);
        // SMBHSTCFG (bits 3–0), SMBSLVC, SMBSHDW1, SMBSHDW2: stored.
        cfg.set_wmask_byte(PIIX4_SMBHSTCFG, 0x0f);
        cfg.add_register(0xd3, 3, 0);
        Self {
            cfg,
            smm,
            pm1_sts: 0,
            pm1_en: 0,
            pm1_cnt: 0,
            tmrof_epoch: 0,
            regs: [0; PM_IO_SIZE as usize],
            gpe_enable: [0; 2],
            apm_control: 0,
            apm_status: 0,
            power_off: false,
            sleep_request: None,
        }
    }

    /// The PM I/O block's base if PMIOSE is set and a base is programmed.
    pub fn pm_io_base(&self) -> Option<u16> {
        let base = (self.cfg.dword(PIIX4_PMBA) & 0xffc0) as u16;
        (self.cfg.byte(PIIX4_PMREGMISC) & PMREGMISC_PMIOSE != 0 && base != 0).then_some(base)
    }

    /// The SMBus base address as programmed and enabled (SMBus I/O enable in PCICMD and
    /// SMBHSTCFG bit 0). Stored only: the SMBus registers are not emulated.
    pub fn smbus_base(&self) -> Option<u16> {
        let base = (self.cfg.dword(PIIX4_SMBBA) & 0xfff0) as u16;
        let enabled = self.cfg.command() & CMD_IO != 0 && self.cfg.byte(PIIX4_SMBHSTCFG) & 1 != 0;
        (enabled && base != 0).then_some(base)
    }

    /// Whether `port` is decoded here: the PM block (when enabled), B2h/B3h, or the GPE0
    /// block.
    pub fn owns_port(&self, port: u16) -> bool {
        port == PORT_APM_CONTROL
            || port == PORT_APM_STATUS
            || port.wrapping_sub(GPE0_BASE) < GPE0_LEN
            || self.pm_io_base().is_some_and(|b| port.wrapping_sub(b) < PM_IO_SIZE)
    }

    /// `IN` from one of [`PowerManagement::owns_port`]'s ports at virtual time `now`. Wide
    /// accesses read consecutive ports; bytes of ports not decoded here answer all ones.
    pub fn io_read(&mut self, port: u16, size: IoSize, now: Nanos) -> u32 {
        let mut value = 0u32;
        for i in 0..size as u16 {
            value |= u32::from(self.read_byte(port.wrapping_add(i), now)) << (8 * i);
        }
        value
    }

    /// `OUT` to one of [`PowerManagement::owns_port`]'s ports at virtual time `now`. Wide
    /// accesses write consecutive ports, low byte first.
    pub fn io_write(&mut self, port: u16, size: IoSize, value: u32, now: Nanos) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8, now);
        }
    }

    /// The 24-bit PM timer at `now`.
    pub fn timer(&self, now: Nanos) -> u32 {
        (pm_ticks(now) & PM_TIMER_MASK) as u32
    }

    /// PM1 status at `now`, including TMROF_STS.
    pub fn pm1_status(&self, now: Nanos) -> u16 {
        let tmrof = if pm_ticks(now) >> PM_TIMER_MSB_SHIFT != self.tmrof_epoch { PM1_TMROF } else { 0 };
        self.pm1_sts | tmrof
    }

    /// PM1 enable.
    pub fn pm1_enable(&self) -> u16 {
        self.pm1_en
    }

    /// PM1 control as it reads (sleep enable reads 0).
    pub fn pm1_control(&self) -> u16 {
        self.pm1_cnt
    }

    /// Whether the OS has switched to ACPI mode (SCI_EN).
    pub fn acpi_enabled(&self) -> bool {
        self.pm1_cnt & PM1_CNT_SCI_EN != 0
    }

    /// The SCI level at `now`: SCI_EN and an enabled status bit set. Route to ISA IRQ
    /// [`SCI_IRQ`] (level-triggered).
    pub fn sci_level(&self, now: Nanos) -> bool {
        self.acpi_enabled() && self.pm1_status(now) & self.pm1_en & PM1_SCI_SOURCES != 0
    }

    /// When the SCI will next rise without guest action: the next change of timer bit 23,
    /// if the timer-overflow event is enabled and not already pending.
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        if !self.acpi_enabled() || self.pm1_en & PM1_TMROF == 0 || self.pm1_status(now) & PM1_TMROF != 0 {
            return None;
        }
        let next = (self.tmrof_epoch + 1).checked_shl(PM_TIMER_MSB_SHIFT)?;
        Some(time_of_tick(next).max(now))
    }

    /// Whether the guest asked for soft off (SLP_EN with SLP_TYP 000b), the way ACPI's
    /// \_S5 and SeaBIOS's APM shutdown power the machine down.
    pub fn power_off_requested(&self) -> bool {
        self.power_off
    }

    /// A sleep state other than soft off the guest asked for (its SLP_TYP value), once.
    /// The machine does not suspend; it may call [`PowerManagement::wake`] to resume at
    /// once.
    pub fn take_sleep_request(&mut self) -> Option<u8> {
        self.sleep_request.take()
    }

    /// A wake event ends a sleep: sets WAK_STS.
    pub fn wake(&mut self) {
        self.pm1_sts |= PM1_WAK;
    }

    /// A press of the power button: sets PWRBTN_STS (raising the SCI if enabled), so an
    /// ACPI guest shuts down.
    pub fn press_power_button(&mut self) {
        self.pm1_sts |= PM1_PWRBTN;
    }

    /// The last byte written to the APM control port.
    pub fn apm_control(&self) -> u8 {
        self.apm_control
    }

    fn read_byte(&mut self, port: u16, now: Nanos) -> u8 {
        match port {
            PORT_APM_CONTROL => return self.apm_control,
            PORT_APM_STATUS => return self.apm_status,
            _ => {}
        }
        let gpe = port.wrapping_sub(GPE0_BASE);
        if gpe < GPE0_LEN {
            // Status bytes: nothing raises general-purpose events.
            return if gpe < 2 { 0 } else { self.gpe_enable[usize::from(gpe - 2)] };
        }
        let Some(off) = self.pm_offset(port) else { return 0xff };
        let reg = |v: u32, base: u16| (v >> (8 * (off - base))) as u8;
        match off {
            0x00..=0x01 => reg(self.pm1_status(now).into(), PM1_STS),
            0x02..=0x03 => reg(self.pm1_en.into(), PM1_EN),
            0x04..=0x05 => reg(self.pm1_cnt.into(), PM1_CNT),
            0x08..=0x0b => reg(self.timer(now), PM_TMR),
            // GPSTS, GLBSTS, DEVSTS, GPIREG: status and input registers nothing sets.
            0x0c..=0x0d | 0x18..=0x19 | 0x1c..=0x1f | 0x30..=0x33 => 0,
            // P_LVL2/P_LVL3: reading them would enter C2/C3; here they read 0.
            0x14..=0x15 => 0,
            // GPEN, PCNTRL, GLBEN, GLBCTL, DEVCTL, GPOREG: stored.
            0x0e..=0x13 | 0x20..=0x21 | 0x28..=0x2f | 0x34..=0x37 => self.regs[usize::from(off)],
            _ => 0,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8, now: Nanos) {
        match port {
            PORT_APM_CONTROL => {
                self.apm_control = v;
                // No SMM: act on the FADT's ACPI mode commands directly.
                match v {
                    APM_ACPI_ENABLE => self.pm1_cnt |= PM1_CNT_SCI_EN,
                    APM_ACPI_DISABLE => self.pm1_cnt &= !PM1_CNT_SCI_EN,
                    _ => {}
                }
                return;
            }
            PORT_APM_STATUS => {
                self.apm_status = v;
                return;
            }
            _ => {}
        }
        let gpe = port.wrapping_sub(GPE0_BASE);
        if gpe < GPE0_LEN {
            if gpe >= 2 {
                self.gpe_enable[usize::from(gpe - 2)] = v;
            }
            return;
        }
        let Some(off) = self.pm_offset(port) else { return };
        let shift = 8 * u32::from(off & 1);
        let v16 = u16::from(v) << shift;
        let lane = 0xffu16 << shift;
        match off {
            0x00..=0x01 => {
                let clear = v16 & PM1_STS_W1C;
                if clear & PM1_TMROF != 0 {
                    self.tmrof_epoch = pm_ticks(now) >> PM_TIMER_MSB_SHIFT;
                }
                self.pm1_sts &= !clear;
            }
            0x02..=0x03 => self.pm1_en = (self.pm1_en & !lane) | (v16 & lane & PM1_EN_MASK),
            0x04..=0x05 => {
                self.pm1_cnt = (self.pm1_cnt & !lane) | (v16 & lane & PM1_CNT_STORED);
                if v16 & PM1_CNT_SLP_EN != 0 {
                    let typ = ((self.pm1_cnt & PM1_CNT_SLP_TYP) >> 10) as u8;
                    if typ == SLP_TYP_SOFT_OFF {
                        self.power_off = true;
                    } else {
                        self.sleep_request = Some(typ);
                    }
                }
            }
            0x0e..=0x13 | 0x20..=0x21 | 0x28..=0x2f | 0x34..=0x37 => self.regs[usize::from(off)] = v,
            _ => {}
        }
    }

    /// Offset of `port` in the PM block, if the block decodes it.
    fn pm_offset(&self, port: u16) -> Option<u16> {
        let off = port.wrapping_sub(self.pm_io_base()?);
        (off < PM_IO_SIZE).then_some(off)
    }
}

impl PciFunction for PowerManagement {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    /// Power-on reset of the function and its registers. The timer keeps counting: it is
    /// derived from virtual time.
    fn reset(&mut self) {
        *self = Self::new(self.smm);
    }
}
