//! One device on a channel: its copy of the command block registers (with the LBA48
//! two-deep FIFOs), its Status and Error, its pending interrupt, and the PIO state
//! machine behind the data port. The command sets themselves live in `ata` (hard disk)
//! and `atapi` (CD-ROM); this file moves the bytes and raises the interrupts the
//! protocols call for (ATA/ATAPI-6 §9):
//! - PIO data-in (IDENTIFY, READ SECTORS/MULTIPLE): the device fills a DRQ block, sets
//!   DRQ and asserts INTRQ; after the host has read the last block, DRQ clears with no
//!   further interrupt.
//! - PIO data-out (WRITE SECTORS/MULTIPLE): DRQ for the first block without an interrupt;
//!   after each block the device asserts INTRQ, with DRQ again for the next block or
//!   with DRQ clear at completion.
//! - Non-data: INTRQ at completion.
//! - PACKET: DRQ with Interrupt Reason CoD=1/IO=0 for the 12-byte command packet (no
//!   interrupt: IDENTIFY PACKET DEVICE word 0 promises DRQ within 50 µs), then for each
//!   data chunk INTRQ with the chunk's byte count in LBA Mid/High and IO telling the
//!   direction, and finally INTRQ with CoD=1/IO=1 and DRQ clear.

use super::ata::{AtaXfer, Disk};
use super::atapi::{AtapiIn, Cdrom};
use super::channel::FLOATING_DATA;
use super::*;
use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// ATA commands both device types implement.
pub(super) const CMD_SET_FEATURES: u8 = 0xef;

/// The command block registers as one device holds them. Each of the five LBA48-capable
/// registers is a two-deep FIFO: `[current, previous]` (ATA/ATAPI-6 §7: a write pushes the
/// current value to "previous content", read back with HOB set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TaskFile {
    pub feature: [u8; 2],
    pub count: [u8; 2],
    pub lba_low: [u8; 2],
    pub lba_mid: [u8; 2],
    pub lba_high: [u8; 2],
    pub device: u8,
}

impl TaskFile {
    fn push(r: &mut [u8; 2], v: u8) {
        r[1] = r[0];
        r[0] = v;
    }

    /// A host write of register `off` (1–6).
    pub fn write(&mut self, off: u16, v: u8) {
        match off {
            REG_ERROR_FEATURES => Self::push(&mut self.feature, v),
            REG_COUNT => Self::push(&mut self.count, v),
            REG_LBA_LOW => Self::push(&mut self.lba_low, v),
            REG_LBA_MID => Self::push(&mut self.lba_mid, v),
            REG_LBA_HIGH => Self::push(&mut self.lba_high, v),
            REG_DEVICE => self.device = v,
            _ => {}
        }
    }

    /// A host read of register `off` (2–6); `hob` selects the previous contents.
    pub fn read(&self, off: u16, hob: bool) -> u8 {
        let i = usize::from(hob);
        match off {
            REG_COUNT => self.count[i],
            REG_LBA_LOW => self.lba_low[i],
            REG_LBA_MID => self.lba_mid[i],
            REG_LBA_HIGH => self.lba_high[i],
            REG_DEVICE => self.device,
            _ => 0xff,
        }
    }

    /// The 28-bit address: Device bits 3:0 and LBA High/Mid/Low.
    pub fn lba28(&self) -> u64 {
        u64::from(self.device & 0x0f) << 24
            | u64::from(self.lba_high[0]) << 16
            | u64::from(self.lba_mid[0]) << 8
            | u64::from(self.lba_low[0])
    }

    /// The 48-bit address: previous contents are bits 47:24.
    pub fn lba48(&self) -> u64 {
        u64::from(self.lba_high[1]) << 40
            | u64::from(self.lba_mid[1]) << 32
            | u64::from(self.lba_low[1]) << 24
            | u64::from(self.lba_high[0]) << 16
            | u64::from(self.lba_mid[0]) << 8
            | u64::from(self.lba_low[0])
    }

    /// The 8-bit sector count; 0 means 256.
    pub fn count28(&self) -> u32 {
        match self.count[0] {
            0 => 256,
            n => u32::from(n),
        }
    }

    /// The 16-bit sector count; 0 means 65536.
    pub fn count48(&self) -> u32 {
        match u32::from(self.count[1]) << 8 | u32::from(self.count[0]) {
            0 => 65536,
            n => n,
        }
    }

    /// Output a 28-bit address (the Device register keeps its upper bits).
    pub fn set_lba28(&mut self, lba: u64) {
        self.lba_low[0] = lba as u8;
        self.lba_mid[0] = (lba >> 8) as u8;
        self.lba_high[0] = (lba >> 16) as u8;
        self.device = (self.device & 0xf0) | ((lba >> 24) as u8 & 0x0f);
    }

    /// Output a 48-bit address into both halves of the FIFOs.
    pub fn set_lba48(&mut self, lba: u64) {
        self.lba_low = [lba as u8, (lba >> 24) as u8];
        self.lba_mid = [(lba >> 8) as u8, (lba >> 32) as u8];
        self.lba_high = [(lba >> 16) as u8, (lba >> 40) as u8];
    }

    /// The signature a device posts after reset and diagnostics (ATA/ATAPI-6 §9, device
    /// signatures): Sector Count 01h, LBA Low 01h, and LBA Mid/High 00h/00h for an ATA
    /// device or 14h/EBh for a PACKET device.
    pub fn set_signature(&mut self, packet: bool) {
        let (mid, high) = if packet { (0x14, 0xeb) } else { (0, 0) };
        self.count = [1, 1];
        self.lba_low = [1, 1];
        self.lba_mid = [mid, mid];
        self.lba_high = [high, high];
    }
}

/// The device's command set and medium.
#[derive(Serialize, Deserialize)]
pub(super) enum Kind {
    Disk(Disk),
    Cdrom(Cdrom),
}

/// What the data port is doing.
#[derive(Serialize, Deserialize)]
pub(super) enum Phase {
    /// No transfer: DRQ is clear.
    Idle,
    /// Device → host, one block, then done (IDENTIFY DEVICE / IDENTIFY PACKET DEVICE).
    Identify,
    /// Device → host: an ATA read; `buf` holds the current DRQ block.
    AtaRead(AtaXfer),
    /// Host → device: an ATA write; `buf` collects the current DRQ block.
    AtaWrite(AtaXfer),
    /// Host → device: the ATAPI command packet.
    Packet,
    /// Device → host: an ATAPI data chunk.
    AtapiIn(AtapiIn),
    /// Host → device: an ATAPI data chunk (discarded); bytes still to come after it.
    AtapiOut(u64),
}

#[derive(Serialize, Deserialize)]
pub(super) struct Drive {
    pub kind: Kind,
    /// Serial number reported by IDENTIFY (unique per position).
    pub serial: String,
    pub regs: TaskFile,
    pub status: u8,
    pub error: u8,
    /// The device's interrupt is pending (INTRQ asserted while selected and nIEN clear).
    pub intrq: bool,
    /// The current DRQ block / chunk / packet.
    #[serde(with = "serde_bytes")]
    pub buf: Vec<u8>,
    /// Next byte of `buf` the data port moves.
    pub pos: usize,
    pub phase: Phase,
}

impl Drive {
    pub(super) fn new(channel: usize, slave: bool, kind: Kind) -> Self {
        let tag = match kind {
            Kind::Disk(_) => "HD",
            Kind::Cdrom(_) => "CD",
        };
        let mut d = Self {
            kind,
            serial: format!("V386-{tag}{channel}{}", u8::from(slave)),
            regs: TaskFile::default(),
            status: 0,
            error: 0,
            intrq: false,
            buf: Vec::new(),
            pos: 0,
            phase: Phase::Idle,
        };
        d.power_on_defaults();
        d.signature_reset(super::channel::DIAG_PASSED);
        d
    }

    pub(super) fn device_kind(&self) -> DeviceKind {
        match self.kind {
            Kind::Disk(_) => DeviceKind::HardDisk,
            Kind::Cdrom(_) => DeviceKind::Cdrom,
        }
    }

    pub(super) fn disk(&self) -> Option<&Disk> {
        match &self.kind {
            Kind::Disk(d) => Some(d),
            Kind::Cdrom(_) => None,
        }
    }

    pub(super) fn disk_mut(&mut self) -> Option<&mut Disk> {
        match &mut self.kind {
            Kind::Disk(d) => Some(d),
            Kind::Cdrom(_) => None,
        }
    }

    pub(super) fn cdrom(&self) -> Option<&Cdrom> {
        match &self.kind {
            Kind::Cdrom(c) => Some(c),
            Kind::Disk(_) => None,
        }
    }

    pub(super) fn cdrom_mut(&mut self) -> Option<&mut Cdrom> {
        match &mut self.kind {
            Kind::Cdrom(c) => Some(c),
            Kind::Disk(_) => None,
        }
    }

    pub(super) fn into_backend(self) -> Option<Box<dyn BlockBackend>> {
        match self.kind {
            Kind::Disk(d) => Some(d.backend),
            Kind::Cdrom(mut c) => c.remove(),
        }
    }

    fn is_packet(&self) -> bool {
        matches!(self.kind, Kind::Cdrom(_))
    }

    /// Status bits of a device that is idle and ready: DRDY and DSC for a disk, DRDY for a
    /// PACKET device (its bit 4 is SERV, which stays clear without overlap).
    pub(super) fn ready_bits(&self) -> u8 {
        if self.is_packet() {
            ST_DRDY
        } else {
            ST_DRDY | ST_DSC
        }
    }

    /// Power-on (hardware reset) defaults of the command set's settings.
    pub(super) fn power_on_defaults(&mut self) {
        match &mut self.kind {
            Kind::Disk(d) => d.power_on_defaults(),
            Kind::Cdrom(c) => c.power_on_defaults(),
        }
    }

    /// SRST asserted: the device is busy until it is released.
    pub(super) fn begin_reset(&mut self) {
        self.phase = Phase::Idle;
        self.intrq = false;
        self.status = ST_BSY;
    }

    /// Reset done: signature in the registers, the diagnostic code in Error, no transfer,
    /// no interrupt. An ATA device is ready (DRDY, DSC); a PACKET device reports 00h
    /// (ATA/ATAPI-6 §9: PACKET devices clear DRDY across reset; DRDY returns with the
    /// first command).
    pub(super) fn signature_reset(&mut self, diag: u8) {
        self.regs.set_signature(self.is_packet());
        self.error = diag;
        self.status = if self.is_packet() { 0 } else { ST_DRDY | ST_DSC };
        self.phase = Phase::Idle;
        self.intrq = false;
    }

    /// Status: reading it acknowledges the interrupt (ATA/ATAPI-6 §7, Status register).
    pub(super) fn read_status(&mut self) -> u8 {
        self.intrq = false;
        self.status
    }

    pub(super) fn status(&self) -> u8 {
        self.status
    }

    /// A read of register `off` (1–6).
    pub(super) fn read_register(&self, off: u16, hob: bool) -> u8 {
        if off == REG_ERROR_FEATURES {
            self.error
        } else {
            self.regs.read(off, hob)
        }
    }

    pub(super) fn write_register(&mut self, off: u16, v: u8) {
        self.regs.write(off, v);
    }

    /// The host wrote the Command register: the interrupt is acknowledged, any transfer in
    /// progress is abandoned, and the command set takes over.
    pub(super) fn command(&mut self, cmd: u8) {
        self.intrq = false;
        self.phase = Phase::Idle;
        self.error = 0;
        if self.is_packet() {
            self.packet_device_command(cmd);
        } else {
            self.disk_command(cmd);
        }
    }

    /// Successful completion of a non-data command: ready, INTRQ.
    pub(super) fn complete(&mut self) {
        self.phase = Phase::Idle;
        self.status = self.ready_bits();
        self.intrq = true;
    }

    /// Completion with an error: ERR set, `err` in the Error register, INTRQ.
    pub(super) fn fail(&mut self, err: u8) {
        self.phase = Phase::Idle;
        self.error = err;
        self.status = self.ready_bits() | ST_ERR;
        self.intrq = true;
    }

    /// Command aborted.
    pub(super) fn abort(&mut self) {
        self.fail(ERR_ABRT);
    }

    /// Offer `buf` to the host as a data-in block: DRQ and INTRQ.
    pub(super) fn start_data_in(&mut self, phase: Phase) {
        self.pos = 0;
        self.phase = phase;
        self.status = self.ready_bits() | ST_DRQ;
        self.intrq = true;
    }

    /// A data-port read: the next word of the current data-in block. After the block's last
    /// word the protocol moves on (next block, completion).
    pub(super) fn read_data(&mut self) -> u16 {
        if !matches!(self.phase, Phase::Identify | Phase::AtaRead(_) | Phase::AtapiIn(_)) {
            return FLOATING_DATA;
        }
        let lo = self.buf.get(self.pos).copied().unwrap_or(0);
        let hi = self.buf.get(self.pos + 1).copied().unwrap_or(0);
        self.pos += 2;
        if self.pos >= self.buf.len() {
            match core::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::AtaRead(x) => self.ata_read_block_done(x),
                Phase::AtapiIn(x) => self.atapi_in_chunk_done(x),
                // IDENTIFY: PIO data-in ends without an interrupt.
                _ => self.status = self.ready_bits(),
            }
        }
        u16::from_le_bytes([lo, hi])
    }

    /// A data-port write: the next word of the current data-out block; when the block is
    /// full the protocol acts on it.
    pub(super) fn write_data(&mut self, v: u16) {
        if !matches!(self.phase, Phase::AtaWrite(_) | Phase::Packet | Phase::AtapiOut(_)) {
            return;
        }
        let [lo, hi] = v.to_le_bytes();
        if let Some(b) = self.buf.get_mut(self.pos) {
            *b = lo;
        }
        if let Some(b) = self.buf.get_mut(self.pos + 1) {
            *b = hi;
        }
        self.pos += 2;
        if self.pos >= self.buf.len() {
            match core::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::AtaWrite(x) => self.ata_write_block_done(x),
                Phase::Packet => self.packet_received(),
                Phase::AtapiOut(rest) => self.atapi_out_chunk_done(rest),
                other => self.phase = other,
            }
        }
    }

    /// SET FEATURES (ATA/ATAPI-6 §8): the subcommand in Features, its argument in Sector
    /// Count. Accepted: set transfer mode to a PIO mode (00h/01h default, 08h–0Ch flow
    /// control modes 0–4), write cache and read look-ahead on/off, reverting to power-on
    /// defaults on/off. DMA transfer modes and everything else are aborted.
    pub(super) fn set_features(&mut self) {
        let (sub, arg) = (self.regs.feature[0], self.regs.count[0]);
        let ok = match sub {
            0x03 => matches!(arg, 0x00 | 0x01 | 0x08..=0x0c),
            0x02 | 0x82 | 0x55 | 0xaa => {
                if let Some(d) = self.disk_mut() {
                    match sub {
                        0x02 => d.write_cache = true,
                        0x82 => d.write_cache = false,
                        0x55 => d.look_ahead = false,
                        _ => d.look_ahead = true,
                    }
                }
                true
            }
            0x66 | 0xcc => true,
            _ => false,
        };
        if ok {
            self.complete();
        } else {
            self.abort();
        }
    }
}
