//! The hard disk: the ATA command set over a [`BlockBackend`] of 512-byte sectors, with
//! CHS, LBA28 and LBA48 addressing (ATA/ATAPI-6 §8 for the commands, §9 for their PIO
//! data-in, data-out and non-data protocols, which `drive` carries out).
//!
//! Outputs: after each DRQ block the address registers hold the last sector moved and
//! Sector Count the sectors still to go (the classic drive behaviour older drivers read
//! back); on an error they hold the failing sector. The device has a write-back cache only
//! in name: writes reach the backend at the end of each DRQ block, and FLUSH CACHE asks the
//! backend to make them durable.

use super::drive::{Drive, Kind, Phase, CMD_SET_FEATURES};
use super::identify;
use super::*;
use serde::{Deserialize, Serialize};

// ATA command codes (ATA/ATAPI-6 §8; the obsolete ATA-1 power-management aliases 94h–99h
// are still sent by old drivers).
const CMD_RECALIBRATE: u8 = 0x10;
const CMD_READ_SECTORS: u8 = 0x20;
const CMD_READ_SECTORS_NO_RETRY: u8 = 0x21;
const CMD_READ_SECTORS_EXT: u8 = 0x24;
const CMD_READ_MULTIPLE_EXT: u8 = 0x29;
const CMD_WRITE_SECTORS: u8 = 0x30;
const CMD_WRITE_SECTORS_NO_RETRY: u8 = 0x31;
const CMD_WRITE_SECTORS_EXT: u8 = 0x34;
const CMD_WRITE_MULTIPLE_EXT: u8 = 0x39;
const CMD_READ_VERIFY: u8 = 0x40;
const CMD_READ_VERIFY_NO_RETRY: u8 = 0x41;
const CMD_READ_VERIFY_EXT: u8 = 0x42;
const CMD_SEEK: u8 = 0x70;
const CMD_INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
const CMD_READ_MULTIPLE: u8 = 0xc4;
const CMD_WRITE_MULTIPLE: u8 = 0xc5;
const CMD_SET_MULTIPLE_MODE: u8 = 0xc6;
const CMD_STANDBY_IMMEDIATE: u8 = 0xe0;
const CMD_IDLE_IMMEDIATE: u8 = 0xe1;
const CMD_STANDBY: u8 = 0xe2;
const CMD_IDLE: u8 = 0xe3;
const CMD_CHECK_POWER_MODE: u8 = 0xe5;
const CMD_SLEEP: u8 = 0xe6;
const CMD_FLUSH_CACHE: u8 = 0xe7;
const CMD_FLUSH_CACHE_EXT: u8 = 0xea;
const CMD_IDENTIFY_DEVICE: u8 = 0xec;
const CMD_STANDBY_IMMEDIATE_OLD: u8 = 0x94;
const CMD_IDLE_IMMEDIATE_OLD: u8 = 0x95;
const CMD_STANDBY_OLD: u8 = 0x96;
const CMD_IDLE_OLD: u8 = 0x97;
const CMD_CHECK_POWER_MODE_OLD: u8 = 0x98;
const CMD_SLEEP_OLD: u8 = 0x99;

/// The most sectors per DRQ block READ/WRITE MULTIPLE may use (IDENTIFY word 47).
pub(super) const MAX_MULTIPLE: u8 = 16;
/// The largest CHS capacity (16383 × 16 × 63 sectors) and the ceiling on the current
/// geometry's capacity reported in IDENTIFY words 57–58 (ATA/ATAPI-6 §8, IDENTIFY DEVICE).
const MAX_CHS_SECTORS: u64 = 16383 * 16 * 63;

/// A CHS translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Geometry {
    pub cylinders: u32,
    pub heads: u32,
    pub sectors: u32,
}

impl Geometry {
    /// The default translation for `total` sectors (IDENTIFY words 1, 3, 6): 63 sectors per
    /// track and 16 heads where the size allows, up to 16383 cylinders; small images get
    /// fewer heads (and a sub-63-sector track when below one track) so every sector stays
    /// reachable by CHS.
    pub fn default_for(total: u64) -> Self {
        if total >= 16 * 63 {
            let cylinders = (total / (16 * 63)).min(16383) as u32;
            Self { cylinders, heads: 16, sectors: 63 }
        } else if total >= 63 {
            Self { cylinders: 1, heads: (total / 63) as u32, sectors: 63 }
        } else {
            Self { cylinders: 1, heads: 1, sectors: total.max(1) as u32 }
        }
    }

    /// The translation INITIALIZE DEVICE PARAMETERS asks for: the cylinders follow from
    /// the capacity, at most 65535 and with the product capped at 16,514,064 sectors.
    pub fn with(heads: u32, sectors: u32, total: u64) -> Self {
        let per_cyl = u64::from(heads * sectors);
        let cap = total.min(MAX_CHS_SECTORS.max(per_cyl));
        let cylinders = (cap / per_cyl).min(65535) as u32;
        Self { cylinders, heads, sectors }
    }

    /// Sectors addressable through this translation.
    pub fn capacity(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors)
    }

    /// The LBA of a CHS address, if the address exists (sectors count from 1).
    pub fn to_lba(self, c: u32, h: u32, s: u32) -> Option<u64> {
        if s == 0 || s > self.sectors || h >= self.heads || c >= self.cylinders {
            return None;
        }
        Some((u64::from(c) * u64::from(self.heads) + u64::from(h)) * u64::from(self.sectors) + u64::from(s) - 1)
    }

    /// The CHS address of an LBA.
    pub fn to_chs(self, lba: u64) -> (u32, u32, u32) {
        let spt = u64::from(self.sectors.max(1));
        let heads = u64::from(self.heads.max(1));
        let s = (lba % spt) as u32 + 1;
        let track = lba / spt;
        ((track / heads) as u32, (track % heads) as u32, s)
    }
}

/// How a command addressed its sectors (outputs use the same form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Addressing {
    Chs,
    Lba28,
    Lba48,
}

/// A PIO read or write in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AtaXfer {
    /// Read: the next sector to load. Write: the first sector of the block being collected.
    pub lba: u64,
    /// Sectors not yet moved between the buffer and the backend.
    pub remaining: u32,
    /// Sectors per DRQ block: 1, or the multiple count.
    pub block: u32,
    pub addressing: Addressing,
}

/// Power state, for CHECK POWER MODE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Power {
    Active,
    Idle,
    Standby,
}

/// A hard disk.
#[derive(Serialize, Deserialize)]
pub(super) struct Disk {
    #[serde(with = "crate::snapshot::backend")]
    pub backend: Box<dyn BlockBackend>,
    /// Capacity in sectors.
    pub sectors: u64,
    /// The translation IDENTIFY words 1, 3 and 6 report.
    pub default_geometry: Geometry,
    /// The translation in use (INITIALIZE DEVICE PARAMETERS; words 54–58).
    pub geometry: Geometry,
    /// Sectors per DRQ block for READ/WRITE MULTIPLE; 0 = multiple mode disabled.
    pub multiple: u8,
    pub write_cache: bool,
    pub look_ahead: bool,
    pub power: Power,
    /// The guest has written since attach (or the host last cleared it).
    pub modified: bool,
}

impl Disk {
    pub(super) fn new(backend: Box<dyn BlockBackend>) -> Self {
        let sectors = backend.size() / ATA_SECTOR as u64;
        let geometry = Geometry::default_for(sectors);
        Self {
            backend,
            sectors,
            default_geometry: geometry,
            geometry,
            multiple: 0,
            write_cache: true,
            look_ahead: true,
            power: Power::Active,
            modified: false,
        }
    }

    pub(super) fn power_on_defaults(&mut self) {
        self.geometry = self.default_geometry;
        self.multiple = 0;
        self.write_cache = true;
        self.look_ahead = true;
        self.power = Power::Active;
    }
}

impl Drive {
    /// Execute an ATA command on the hard disk.
    pub(super) fn disk_command(&mut self, cmd: u8) {
        if let Some(d) = self.disk_mut() {
            // Any command wakes the drive from standby or idle.
            if !matches!(cmd, CMD_CHECK_POWER_MODE | CMD_CHECK_POWER_MODE_OLD) {
                d.power = Power::Active;
            }
        }
        match cmd {
            CMD_READ_SECTORS | CMD_READ_SECTORS_NO_RETRY => self.start_read(false, false),
            CMD_READ_SECTORS_EXT => self.start_read(true, false),
            CMD_READ_MULTIPLE => self.start_read(false, true),
            CMD_READ_MULTIPLE_EXT => self.start_read(true, true),
            CMD_WRITE_SECTORS | CMD_WRITE_SECTORS_NO_RETRY => self.start_write(false, false),
            CMD_WRITE_SECTORS_EXT => self.start_write(true, false),
            CMD_WRITE_MULTIPLE => self.start_write(false, true),
            CMD_WRITE_MULTIPLE_EXT => self.start_write(true, true),
            CMD_READ_VERIFY | CMD_READ_VERIFY_NO_RETRY => self.verify(false),
            CMD_READ_VERIFY_EXT => self.verify(true),
            CMD_IDENTIFY_DEVICE => self.identify_device(),
            CMD_SET_FEATURES => self.set_features(),
            CMD_SET_MULTIPLE_MODE => self.set_multiple_mode(),
            CMD_INITIALIZE_DEVICE_PARAMETERS => self.initialize_device_parameters(),
            CMD_FLUSH_CACHE | CMD_FLUSH_CACHE_EXT => self.flush_cache(),
            // RECALIBRATE 1xh (obsolete since ATA-4): the heads return to cylinder 0.
            CMD_RECALIBRATE..=0x1f => self.complete(),
            // SEEK 7xh: checks the address and completes.
            CMD_SEEK..=0x7f => self.seek(),
            CMD_IDLE | CMD_IDLE_IMMEDIATE | CMD_IDLE_OLD | CMD_IDLE_IMMEDIATE_OLD => {
                self.set_power(Power::Idle);
                self.complete();
            }
            // SLEEP is treated as STANDBY IMMEDIATE: the drive wakes on the next command
            // rather than demanding a reset.
            CMD_STANDBY
            | CMD_STANDBY_IMMEDIATE
            | CMD_STANDBY_OLD
            | CMD_STANDBY_IMMEDIATE_OLD
            | CMD_SLEEP
            | CMD_SLEEP_OLD => {
                self.set_power(Power::Standby);
                self.complete();
            }
            CMD_CHECK_POWER_MODE | CMD_CHECK_POWER_MODE_OLD => self.check_power_mode(),
            // NOP, DMA, security, SMART, HPA, logs, DEVICE RESET (PACKET only), PACKET
            // commands and everything unknown (ATA/ATAPI-6 §8: unsupported → ABRT).
            _ => self.abort(),
        }
    }

    fn set_power(&mut self, p: Power) {
        if let Some(d) = self.disk_mut() {
            d.power = p;
        }
    }

    /// CHECK POWER MODE: Sector Count 00h standby, 80h idle, FFh active.
    fn check_power_mode(&mut self) {
        let p = self.disk().map_or(Power::Active, |d| d.power);
        self.regs.count[0] = match p {
            Power::Standby => 0x00,
            Power::Idle => 0x80,
            Power::Active => 0xff,
        };
        self.complete();
    }

    /// IDENTIFY DEVICE: one 512-byte PIO data-in block.
    fn identify_device(&mut self) {
        let Some(d) = self.disk() else { return self.abort() };
        self.buf = identify::disk(&self.serial, d);
        self.start_data_in(Phase::Identify);
    }

    /// The first sector and count a command addresses, from the registers. `Err` holds the
    /// error to report: IDNF for a CHS address outside the translation.
    fn address(&self, ext: bool) -> Result<(u64, u32, Addressing), u8> {
        let d = self.disk().ok_or(ERR_ABRT)?;
        let r = &self.regs;
        if ext {
            Ok((r.lba48(), r.count48(), Addressing::Lba48))
        } else if r.device & DEV_LBA != 0 {
            Ok((r.lba28(), r.count28(), Addressing::Lba28))
        } else {
            let c = u32::from(r.lba_high[0]) << 8 | u32::from(r.lba_mid[0]);
            let lba = d.geometry.to_lba(c, u32::from(r.device & 0x0f), u32::from(r.lba_low[0])).ok_or(ERR_IDNF)?;
            Ok((lba, r.count28(), Addressing::Chs))
        }
    }

    /// [`Drive::address`] for a read/write/verify: the whole range must lie on the disk
    /// (else IDNF, ATA/ATAPI-6 §7, Error register).
    fn request(&self, ext: bool) -> Result<(u64, u32, Addressing), u8> {
        let (lba, count, addressing) = self.address(ext)?;
        let sectors = self.disk().map_or(0, |d| d.sectors);
        match lba.checked_add(u64::from(count)) {
            Some(end) if end <= sectors => Ok((lba, count, addressing)),
            _ => Err(ERR_IDNF),
        }
    }

    /// Output an address and remaining count in the command's addressing form.
    fn set_address(&mut self, lba: u64, remaining: u32, addressing: Addressing) {
        match addressing {
            Addressing::Chs => {
                let g = self.disk().map_or(Geometry::default_for(0), |d| d.geometry);
                let (c, h, s) = g.to_chs(lba);
                self.regs.lba_low[0] = s as u8;
                self.regs.lba_mid[0] = c as u8;
                self.regs.lba_high[0] = (c >> 8) as u8;
                self.regs.device = (self.regs.device & 0xf0) | (h as u8 & 0x0f);
                self.regs.count[0] = remaining as u8;
            }
            Addressing::Lba28 => {
                self.regs.set_lba28(lba);
                self.regs.count[0] = remaining as u8;
            }
            Addressing::Lba48 => {
                self.regs.set_lba48(lba);
                self.regs.count = [remaining as u8, (remaining >> 8) as u8];
            }
        }
    }

    /// Sectors per DRQ block for a (multiple) command; `None` when multiple mode is off.
    fn block_size(&self, multiple: bool) -> Option<u32> {
        if !multiple {
            return Some(1);
        }
        match self.disk().map_or(0, |d| d.multiple) {
            0 => None,
            n => Some(u32::from(n)),
        }
    }

    /// READ SECTORS (EXT) / READ MULTIPLE (EXT): PIO data-in, one or `multiple` sectors
    /// per DRQ block. READ MULTIPLE with multiple mode disabled is aborted.
    fn start_read(&mut self, ext: bool, multiple: bool) {
        let Some(block) = self.block_size(multiple) else { return self.abort() };
        match self.request(ext) {
            Ok((lba, remaining, addressing)) => self.ata_read_next(AtaXfer { lba, remaining, block, addressing }),
            Err(e) => self.fail(e),
        }
    }

    /// Load the next DRQ block of a read and offer it to the host (DRQ, INTRQ). A backend
    /// failure ends the command with UNC at the failing sector.
    fn ata_read_next(&mut self, mut x: AtaXfer) {
        let n = x.block.min(x.remaining);
        self.buf.clear();
        self.buf.resize(n as usize * ATA_SECTOR, 0);
        let Kind::Disk(d) = &mut self.kind else { return self.abort() };
        if d.backend.read_at(x.lba * ATA_SECTOR as u64, &mut self.buf).is_err() {
            self.set_address(x.lba, x.remaining, x.addressing);
            return self.fail(ERR_UNC);
        }
        x.lba += u64::from(n);
        x.remaining -= n;
        self.set_address(x.lba - 1, x.remaining, x.addressing);
        self.start_data_in(Phase::AtaRead(x));
    }

    /// The host has read a whole block: the next one, or the end (no interrupt).
    pub(super) fn ata_read_block_done(&mut self, x: AtaXfer) {
        if x.remaining > 0 {
            self.ata_read_next(x);
        } else {
            self.status = self.ready_bits();
        }
    }

    /// WRITE SECTORS (EXT) / WRITE MULTIPLE (EXT): PIO data-out; DRQ for the first block
    /// without an interrupt.
    fn start_write(&mut self, ext: bool, multiple: bool) {
        let Some(block) = self.block_size(multiple) else { return self.abort() };
        match self.request(ext) {
            Ok((lba, remaining, addressing)) => self.ata_write_next(AtaXfer { lba, remaining, block, addressing }),
            Err(e) => self.fail(e),
        }
    }

    /// Open the buffer for the next block of a write (DRQ).
    fn ata_write_next(&mut self, x: AtaXfer) {
        let n = x.block.min(x.remaining);
        self.buf.clear();
        self.buf.resize(n as usize * ATA_SECTOR, 0);
        self.pos = 0;
        self.phase = Phase::AtaWrite(x);
        self.status = self.ready_bits() | ST_DRQ;
    }

    /// The host has written a whole block: store it, then INTRQ with DRQ for the next block
    /// or at completion. A backend failure aborts at the failing block.
    pub(super) fn ata_write_block_done(&mut self, mut x: AtaXfer) {
        let n = (self.buf.len() / ATA_SECTOR) as u32;
        let Kind::Disk(d) = &mut self.kind else { return self.abort() };
        if d.backend.write_at(x.lba * ATA_SECTOR as u64, &self.buf).is_err() {
            self.set_address(x.lba, x.remaining, x.addressing);
            return self.abort();
        }
        d.modified = true;
        x.lba += u64::from(n);
        x.remaining -= n;
        self.set_address(x.lba - 1, x.remaining, x.addressing);
        if x.remaining > 0 {
            self.ata_write_next(x);
            self.intrq = true;
        } else {
            self.complete();
        }
    }

    /// READ VERIFY SECTORS (EXT): non-data; the image has no unreadable sectors, so only
    /// the range is checked.
    fn verify(&mut self, ext: bool) {
        match self.request(ext) {
            Ok((lba, count, addressing)) => {
                self.set_address(lba + u64::from(count) - 1, 0, addressing);
                self.complete();
            }
            Err(e) => self.fail(e),
        }
    }

    /// SEEK: the one sector addressed must exist.
    fn seek(&mut self) {
        let sectors = self.disk().map_or(0, |d| d.sectors);
        match self.address(false) {
            Ok((lba, _, _)) if lba < sectors => self.complete(),
            Ok(_) => self.fail(ERR_IDNF),
            Err(e) => self.fail(e),
        }
    }

    /// SET MULTIPLE MODE (ATA/ATAPI-6 §8): Sector Count is the block size, a power of two
    /// up to IDENTIFY word 47's maximum; 0 disables multiple mode (ATA8-ACS). Anything
    /// else is aborted and the old setting stays.
    fn set_multiple_mode(&mut self) {
        let n = self.regs.count[0];
        if n != 0 && (!n.is_power_of_two() || n > MAX_MULTIPLE) {
            return self.abort();
        }
        if let Some(d) = self.disk_mut() {
            d.multiple = n;
        }
        self.complete();
    }

    /// INITIALIZE DEVICE PARAMETERS (ATA/ATAPI-6 §8): sectors per track from Sector Count,
    /// heads from Device bits 3:0 plus one. A zero sector count is aborted.
    fn initialize_device_parameters(&mut self) {
        let spt = u32::from(self.regs.count[0]);
        let heads = u32::from(self.regs.device & 0x0f) + 1;
        if spt == 0 {
            return self.abort();
        }
        if let Some(d) = self.disk_mut() {
            d.geometry = Geometry::with(heads, spt, d.sectors);
        }
        self.complete();
    }

    /// FLUSH CACHE (EXT): the backend makes earlier writes durable; a failure aborts.
    fn flush_cache(&mut self) {
        let ok = self.disk_mut().is_some_and(|d| d.backend.flush().is_ok());
        if ok {
            self.complete();
        } else {
            self.abort();
        }
    }
}
