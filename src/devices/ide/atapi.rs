//! The CD-ROM drive: the ATA side of a PACKET device (PACKET, IDENTIFY PACKET DEVICE,
//! DEVICE RESET, the signature on IDENTIFY DEVICE) and the SCSI commands carried in its
//! 12-byte packets (SFF-8020i rev. 2.6; MMC-2 for GET CONFIGURATION, GET EVENT STATUS
//! NOTIFICATION and READ DISC INFORMATION; SPC for INQUIRY, REQUEST SENSE and the mode
//! pages' framing). The medium is an ISO image of 2048-byte blocks: one data track,
//! one complete session. Booting from it (El Torito) is the BIOS's business.
//!
//! [`Cdrom::execute`] turns a packet into an [`Outcome`] and keeps the SCSI state: the
//! sense data of the last command, a unit attention after a medium change, the tray and
//! its lock, and the media event GET EVENT STATUS NOTIFICATION reports. The `Drive` half
//! then runs the PACKET protocol around the outcome: byte-count-limited PIO chunks with the
//! Interrupt Reason register, and the completion with CHK and the sense key in Error.

use super::drive::{Drive, Kind, Phase, CMD_SET_FEATURES};
use super::identify;
use super::*;
use alloc::vec;
use serde::{Deserialize, Serialize};

// ATA commands a PACKET device handles (ATA/ATAPI-6 §8).
const CMD_DEVICE_RESET: u8 = 0x08;
const CMD_READ_SECTORS: u8 = 0x20;
const CMD_READ_SECTORS_NO_RETRY: u8 = 0x21;
const CMD_PACKET: u8 = 0xa0;
const CMD_IDENTIFY_PACKET_DEVICE: u8 = 0xa1;
const CMD_IDENTIFY_DEVICE: u8 = 0xec;
const CMD_CHECK_POWER_MODE: u8 = 0xe5;
const CMD_STANDBY_IMMEDIATE: u8 = 0xe0;
const CMD_IDLE_IMMEDIATE: u8 = 0xe1;
const CMD_SLEEP: u8 = 0xe6;

/// PACKET Features bit 0: data by DMA (not supported).
const PACKET_DMA: u8 = 0x01;
/// PACKET Features bit 1: overlapped (not supported).
const PACKET_OVL: u8 = 0x02;
/// Bytes in a command packet (IDENTIFY PACKET DEVICE word 0 bits 1:0 = 00b).
pub(super) const PACKET_SIZE: usize = 12;

// SCSI operation codes (SFF-8020i command table; MMC-2).
pub(super) const TEST_UNIT_READY: u8 = 0x00;
pub(super) const REQUEST_SENSE: u8 = 0x03;
pub(super) const INQUIRY: u8 = 0x12;
pub(super) const MODE_SELECT_6: u8 = 0x15;
pub(super) const MODE_SENSE_6: u8 = 0x1a;
pub(super) const START_STOP_UNIT: u8 = 0x1b;
pub(super) const PREVENT_ALLOW_MEDIUM_REMOVAL: u8 = 0x1e;
pub(super) const READ_CAPACITY: u8 = 0x25;
pub(super) const READ_10: u8 = 0x28;
pub(super) const SEEK_10: u8 = 0x2b;
pub(super) const READ_SUB_CHANNEL: u8 = 0x42;
pub(super) const READ_TOC: u8 = 0x43;
pub(super) const GET_CONFIGURATION: u8 = 0x46;
pub(super) const GET_EVENT_STATUS_NOTIFICATION: u8 = 0x4a;
pub(super) const READ_DISC_INFORMATION: u8 = 0x51;
pub(super) const MODE_SELECT_10: u8 = 0x55;
pub(super) const MODE_SENSE_10: u8 = 0x5a;
pub(super) const READ_12: u8 = 0xa8;
pub(super) const SET_CD_SPEED: u8 = 0xbb;
pub(super) const MECHANISM_STATUS: u8 = 0xbd;
pub(super) const READ_CD: u8 = 0xbe;

// Sense keys (SPC, sense key table).
pub(super) const NO_SENSE: u8 = 0x0;
pub(super) const NOT_READY: u8 = 0x2;
pub(super) const MEDIUM_ERROR: u8 = 0x3;
pub(super) const ILLEGAL_REQUEST: u8 = 0x5;
pub(super) const UNIT_ATTENTION: u8 = 0x6;

// Additional sense codes (SPC, ASC/ASCQ table).
const ASC_UNRECOVERED_READ_ERROR: u8 = 0x11;
const ASC_INVALID_OPCODE: u8 = 0x20;
const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;
const ASC_INVALID_FIELD_IN_CDB: u8 = 0x24;
const ASC_MEDIUM_MAY_HAVE_CHANGED: u8 = 0x28;
const ASC_SAVING_NOT_SUPPORTED: u8 = 0x39;
const ASC_MEDIUM_NOT_PRESENT: u8 = 0x3a;
/// ASCQ with 3Ah: tray open.
const ASCQ_TRAY_OPEN: u8 = 0x02;
const ASC_REMOVAL_PREVENTED: u8 = 0x53;
/// ASCQ with 53h: medium removal prevented.
const ASCQ_REMOVAL_PREVENTED: u8 = 0x02;

/// MMC profile 0008h: CD-ROM (MMC-2, GET CONFIGURATION profile list).
const PROFILE_CD_ROM: u16 = 0x0008;
/// Frames before LBA 0 in MSF addresses (the 2-second pregap, 150 frames).
const MSF_OFFSET: u64 = 150;
/// READ TOC: the lead-out's track number.
const LEAD_OUT: u8 = 0xaa;
/// TOC ADR/CONTROL byte of a data track: ADR 1 (Q mode 1), CONTROL 4 (data, copy
/// prohibited).
const ADR_CONTROL_DATA: u8 = 0x14;

/// SCSI sense data: key and additional sense code/qualifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

impl Sense {
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Self {
        Self { key, asc, ascq }
    }
}

/// A media event for GET EVENT STATUS NOTIFICATION's media class (MMC-2, media event
/// codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum MediaEvent {
    None = 0,
    NewMedia = 2,
    MediaRemoval = 3,
}

/// What a packet command comes to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// GOOD status, no data.
    Good,
    /// CHECK CONDITION; the sense data says why.
    Check,
    /// Data for the host (already cut to the allocation length).
    DataIn(Vec<u8>),
    /// Medium bytes for the host: `len` bytes from byte `offset`.
    Read { offset: u64, len: u64 },
    /// `len` parameter bytes from the host, accepted and ignored (MODE SELECT).
    DataOut(u64),
}

/// The data-in side of an ATAPI transfer in progress.
#[derive(Serialize, Deserialize)]
pub(super) enum Source {
    /// A prepared reply and the next byte of it.
    Reply(Vec<u8>, usize),
    /// The medium, from this byte offset.
    Medium(u64),
}

/// An ATAPI data-in transfer in progress.
#[derive(Serialize, Deserialize)]
pub(super) struct AtapiIn {
    pub source: Source,
    /// Bytes not yet put into a chunk.
    pub remaining: u64,
}

/// The CD-ROM drive's state.
#[derive(Serialize, Deserialize)]
pub(super) struct Cdrom {
    /// The disc: loaded when the tray is closed, lying in the open tray otherwise.
    #[serde(with = "crate::snapshot::backend::option")]
    medium: Option<Box<dyn BlockBackend>>,
    tray_open: bool,
    /// PREVENT ALLOW MEDIUM REMOVAL: the guest has locked the tray.
    locked: bool,
    /// Sense data of the last command.
    sense: Sense,
    /// A medium change the guest has not been told of yet.
    unit_attention: bool,
    /// The media event not yet reported by GET EVENT STATUS NOTIFICATION.
    event: MediaEvent,
    /// The byte count limit of the current PACKET command (LBA Mid/High at issue).
    pub limit: u16,
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A reply cut to the command's allocation length.
fn reply(mut data: Vec<u8>, alloc: usize) -> Outcome {
    data.truncate(alloc);
    Outcome::DataIn(data)
}

/// An address in a READ TOC / READ SUB-CHANNEL reply: LBA, or MSF (00h, M, S, F) counting
/// the 150-frame pregap.
fn address(lba: u64, msf: bool) -> [u8; 4] {
    if msf {
        let f = lba + MSF_OFFSET;
        [0, (f / (75 * 60)).min(255) as u8, (f / 75 % 60) as u8, (f % 75) as u8]
    } else {
        (lba.min(u64::from(u32::MAX)) as u32).to_be_bytes()
    }
}

impl Cdrom {
    pub(super) fn new(medium: Option<Box<dyn BlockBackend>>) -> Self {
        Self {
            medium,
            tray_open: false,
            locked: false,
            sense: Sense::default(),
            unit_attention: false,
            event: MediaEvent::None,
            limit: 0,
        }
    }

    pub(super) fn power_on_defaults(&mut self) {
        self.locked = false;
        self.sense = Sense::default();
    }

    /// A disc is in the drive and the tray is closed.
    pub(super) fn loaded(&self) -> bool {
        self.medium.is_some() && !self.tray_open
    }

    /// Blocks on the loaded disc.
    fn blocks(&self) -> u64 {
        self.medium.as_ref().map_or(0, |m| m.size() / CD_BLOCK as u64)
    }

    /// The host puts a disc in and closes the tray: unit attention, new-media event.
    pub(super) fn insert(&mut self, medium: Box<dyn BlockBackend>) -> Option<Box<dyn BlockBackend>> {
        let old = self.medium.replace(medium);
        self.tray_open = false;
        self.unit_attention = true;
        self.event = MediaEvent::NewMedia;
        old
    }

    /// The host takes the disc out (tray left closed and empty).
    pub(super) fn remove(&mut self) -> Option<Box<dyn BlockBackend>> {
        let old = self.medium.take();
        if old.is_some() && !self.tray_open {
            self.event = MediaEvent::MediaRemoval;
        }
        self.tray_open = false;
        old
    }

    /// Read medium bytes for a data-in chunk.
    pub(super) fn read_medium(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        if self.tray_open {
            return Err(BackendError::Unavailable);
        }
        self.medium.as_mut().ok_or(BackendError::Unavailable)?.read_at(offset, buf)
    }

    /// CHECK CONDITION with this sense.
    fn check(&mut self, key: u8, asc: u8, ascq: u8) -> Outcome {
        self.sense = Sense::new(key, asc, ascq);
        Outcome::Check
    }

    pub(super) fn sense(&self) -> Sense {
        self.sense
    }

    /// Record a medium error found during a transfer.
    pub(super) fn set_medium_error(&mut self) {
        self.sense = Sense::new(MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, 0);
    }

    /// NOT READY unless a disc is loaded: MEDIUM NOT PRESENT (tray open when it is).
    fn need_medium(&mut self) -> Result<(), Outcome> {
        if self.loaded() {
            Ok(())
        } else {
            let ascq = if self.tray_open { ASCQ_TRAY_OPEN } else { 0 };
            Err(self.check(NOT_READY, ASC_MEDIUM_NOT_PRESENT, ascq))
        }
    }

    fn invalid_field(&mut self) -> Outcome {
        self.check(ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0)
    }

    /// Execute one command packet.
    pub(super) fn execute(&mut self, cdb: &[u8; PACKET_SIZE]) -> Outcome {
        let op = cdb[0];
        if op != REQUEST_SENSE {
            self.sense = Sense::default();
        }
        // A pending unit attention fails the next command, except those SPC and MMC-2
        // exempt (INQUIRY, REQUEST SENSE, GET CONFIGURATION, GET EVENT STATUS NOTIFICATION),
        // and is then cleared.
        if self.unit_attention
            && !matches!(op, INQUIRY | REQUEST_SENSE | GET_CONFIGURATION | GET_EVENT_STATUS_NOTIFICATION)
        {
            self.unit_attention = false;
            return self.check(UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED, 0);
        }
        match self.dispatch(op, cdb) {
            Ok(o) | Err(o) => o,
        }
    }

    fn dispatch(&mut self, op: u8, cdb: &[u8; PACKET_SIZE]) -> Result<Outcome, Outcome> {
        Ok(match op {
            TEST_UNIT_READY => {
                self.need_medium()?;
                Outcome::Good
            }
            REQUEST_SENSE => self.request_sense(usize::from(cdb[4])),
            INQUIRY => self.inquiry(cdb),
            MODE_SENSE_6 => self.mode_sense(cdb[2], usize::from(cdb[4]), false),
            MODE_SENSE_10 => self.mode_sense(cdb[2], usize::from(be16(&cdb[7..9])), true),
            MODE_SELECT_6 => Outcome::DataOut(u64::from(cdb[4])),
            MODE_SELECT_10 => Outcome::DataOut(u64::from(be16(&cdb[7..9]))),
            START_STOP_UNIT => self.start_stop_unit(cdb[4]),
            PREVENT_ALLOW_MEDIUM_REMOVAL => {
                self.locked = cdb[4] & 0x01 != 0;
                Outcome::Good
            }
            READ_CAPACITY => {
                self.need_medium()?;
                let last = self.blocks().saturating_sub(1).min(u64::from(u32::MAX)) as u32;
                let mut d = Vec::with_capacity(8);
                d.extend_from_slice(&last.to_be_bytes());
                d.extend_from_slice(&(CD_BLOCK as u32).to_be_bytes());
                Outcome::DataIn(d)
            }
            READ_10 => self.read_blocks(be32(&cdb[2..6]), u64::from(be16(&cdb[7..9])))?,
            READ_12 => self.read_blocks(be32(&cdb[2..6]), u64::from(be32(&cdb[6..10])))?,
            READ_CD => self.read_cd(cdb)?,
            SEEK_10 => {
                self.need_medium()?;
                if u64::from(be32(&cdb[2..6])) >= self.blocks() {
                    return Err(self.check(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0));
                }
                Outcome::Good
            }
            READ_TOC => self.read_toc(cdb)?,
            READ_SUB_CHANNEL => self.read_sub_channel(cdb)?,
            GET_CONFIGURATION => self.get_configuration(cdb),
            GET_EVENT_STATUS_NOTIFICATION => self.get_event_status(cdb),
            READ_DISC_INFORMATION => self.read_disc_information(cdb)?,
            SET_CD_SPEED => Outcome::Good,
            MECHANISM_STATUS => self.mechanism_status(usize::from(be16(&cdb[8..10]))),
            _ => self.check(ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0),
        })
    }

    /// REQUEST SENSE (SFF-8020i; SPC fixed-format sense data, 18 bytes): reports a pending
    /// unit attention first, otherwise the last command's sense, and clears what it
    /// reported.
    fn request_sense(&mut self, alloc: usize) -> Outcome {
        let s = if core::mem::take(&mut self.unit_attention) {
            Sense::new(UNIT_ATTENTION, ASC_MEDIUM_MAY_HAVE_CHANGED, 0)
        } else {
            core::mem::take(&mut self.sense)
        };
        let mut d = vec![0u8; 18];
        // Response code 70h: current error, fixed format.
        d[0] = 0x70;
        d[2] = s.key;
        // Additional sense length: bytes 8–17.
        d[7] = 10;
        d[12] = s.asc;
        d[13] = s.ascq;
        reply(d, alloc)
    }

    /// INQUIRY (SFF-8020i, SPC): standard data for a removable CD-ROM device, or the one
    /// vital product data page the drive has (00h, the list of pages).
    fn inquiry(&mut self, cdb: &[u8; PACKET_SIZE]) -> Outcome {
        let alloc = usize::from(be16(&cdb[3..5]));
        if cdb[1] & 0x01 != 0 {
            if cdb[2] != 0x00 {
                return self.invalid_field();
            }
            // Supported VPD pages: header, page length 1, page 00h.
            return reply(vec![0x05, 0x00, 0x00, 0x01, 0x00], alloc);
        }
        if cdb[2] != 0 {
            return self.invalid_field();
        }
        let mut d = vec![0u8; 36];
        // Peripheral device type 05h: CD-ROM; RMB: removable.
        d[0] = 0x05;
        d[1] = 0x80;
        // Byte 2: ISO/ECMA/ANSI versions 0 (SFF-8020i, INQUIRY data); byte 3: an ATAPI
        // version (2) in bits 7:4 and response data format 1, as SFF-8020i drives report.
        d[2] = 0x00;
        d[3] = 0x21;
        // Additional length: bytes 5–35.
        d[4] = 31;
        let mut put = |at: usize, len: usize, s: &str| {
            for i in 0..len {
                d[at + i] = s.as_bytes().get(i).copied().unwrap_or(b' ');
            }
        };
        put(8, 8, "V386");
        put(16, 16, identify::CDROM_MODEL);
        put(32, 4, identify::FIRMWARE);
        reply(d, alloc)
    }

    /// One mode page's bytes as MODE SENSE reports them for page control `pc` (0 current,
    /// 1 changeable, 2 default). Pages from SFF-8020i's mode parameter list.
    fn mode_page(&self, code: u8, pc: u8) -> Vec<u8> {
        let mut p = match code {
            // Read error recovery parameters: no special recovery, 5 retries.
            0x01 => vec![0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0],
            // CD-ROM device parameters: inactivity multiplier, 60 S-units per M-unit,
            // 75 F-units per S-unit.
            0x0d => vec![0x0d, 0x06, 0x00, 0x00, 0x00, 60, 0x00, 75],
            // CD audio control: immediate, both ports to their channels at full volume.
            0x0e => vec![0x0e, 0x0e, 0x04, 0, 0, 0, 0, 0, 0x01, 0xff, 0x02, 0xff, 0, 0, 0, 0],
            // CD capabilities and mechanical status: reads CD-ROM only, no audio play;
            // lock (bit 0), lock state (bit 1), eject (bit 3), tray loader (bits 7:5 =
            // 001b); 16x (2816 KB/s) maximum and current read speed; 256 volume levels;
            // 512 KB buffer.
            _ => {
                let caps = 0x29 | u8::from(self.locked) << 1;
                let speed = 2816u16.to_be_bytes();
                vec![
                    0x2a, 0x12, 0x00, 0x00, 0x00, 0x00, caps, 0x00, speed[0], speed[1], 0x01, 0x00, 0x02, 0x00,
                    speed[0], speed[1], 0x00, 0x00, 0x00, 0x00,
                ]
            }
        };
        if pc == 1 {
            // Nothing is changeable: all-zero masks.
            p[2..].fill(0);
        }
        p
    }

    /// MODE SENSE (6) and (10): the header (no block descriptors) and the pages asked for
    /// (3Fh: all). Saved values are not supported.
    fn mode_sense(&mut self, page_byte: u8, alloc: usize, ten: bool) -> Outcome {
        let (pc, page) = (page_byte >> 6, page_byte & 0x3f);
        if pc == 3 {
            return self.check(ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 0);
        }
        let codes: &[u8] = match page {
            0x01 => &[0x01],
            0x0d => &[0x0d],
            0x0e => &[0x0e],
            0x2a => &[0x2a],
            0x3f => &[0x01, 0x0d, 0x0e, 0x2a],
            _ => return self.invalid_field(),
        };
        // Medium type (SFF-8020i): 01h 120 mm CD-ROM data disc, 70h door closed with no
        // disc, 71h door open.
        let medium_type = if self.loaded() {
            0x01
        } else if self.tray_open {
            0x71
        } else {
            0x70
        };
        let mut d = if ten { vec![0, 0, medium_type, 0, 0, 0, 0, 0] } else { vec![0, medium_type, 0, 0] };
        for &c in codes {
            d.extend(self.mode_page(c, pc));
        }
        if ten {
            let len = (d.len() - 2) as u16;
            d[..2].copy_from_slice(&len.to_be_bytes());
        } else {
            d[0] = (d.len() - 1) as u8;
        }
        reply(d, alloc)
    }

    /// START STOP UNIT (SFF-8020i): with LoEj, Start=0 opens the tray (refused while
    /// locked) and Start=1 closes it; without LoEj, spinning up or down changes nothing.
    fn start_stop_unit(&mut self, b4: u8) -> Outcome {
        let (start, loej) = (b4 & 0x01 != 0, b4 & 0x02 != 0);
        if !loej {
            return Outcome::Good;
        }
        if start {
            if self.tray_open {
                self.tray_open = false;
                if self.medium.is_some() {
                    self.unit_attention = true;
                    self.event = MediaEvent::NewMedia;
                }
            }
        } else {
            if self.locked {
                return self.check(ILLEGAL_REQUEST, ASC_REMOVAL_PREVENTED, ASCQ_REMOVAL_PREVENTED);
            }
            if !self.tray_open {
                self.tray_open = true;
                if self.medium.is_some() {
                    self.event = MediaEvent::MediaRemoval;
                }
            }
        }
        Outcome::Good
    }

    /// READ (10) / READ (12): `count` blocks from `lba`; the range must lie on the disc.
    fn read_blocks(&mut self, lba: u32, count: u64) -> Result<Outcome, Outcome> {
        self.need_medium()?;
        if u64::from(lba) + count > self.blocks() {
            return Err(self.check(ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0));
        }
        if count == 0 {
            return Ok(Outcome::Good);
        }
        Ok(Outcome::Read { offset: u64::from(lba) * CD_BLOCK as u64, len: count * CD_BLOCK as u64 })
    }

    /// READ CD (MMC-2): only what an ISO image has — user data of mode 1 sectors (byte 9 =
    /// 10h, expected sector type any or mode 1, no sub-channel), or nothing (byte 9 = 0).
    fn read_cd(&mut self, cdb: &[u8; PACKET_SIZE]) -> Result<Outcome, Outcome> {
        let sector_type = (cdb[1] >> 2) & 0x07;
        let count = u64::from(be32(&[0, cdb[6], cdb[7], cdb[8]]));
        let fields = cdb[9];
        if !matches!(sector_type, 0 | 2) || cdb[10] & 0x07 != 0 || !matches!(fields, 0x00 | 0x10) {
            return Err(self.invalid_field());
        }
        let o = self.read_blocks(be32(&cdb[2..6]), count)?;
        Ok(if fields == 0 { Outcome::Good } else { o })
    }

    /// READ TOC/PMA/ATIP (MMC-2; SFF-8020i keeps the format in byte 9 bits 7:6): format 0
    /// (TOC: track 1 and the lead-out), 1 (session information) and 2 (raw TOC).
    fn read_toc(&mut self, cdb: &[u8; PACKET_SIZE]) -> Result<Outcome, Outcome> {
        self.need_medium()?;
        let msf = cdb[1] & 0x02 != 0;
        let format = match cdb[2] & 0x0f {
            0 => cdb[9] >> 6,
            f => f,
        };
        let track = cdb[6];
        let alloc = usize::from(be16(&cdb[7..9]));
        let lead_out = self.blocks();
        let mut d = vec![0, 0, 1, 1];
        match format {
            0 => {
                let mut descriptor = |number: u8, lba: u64| {
                    d.extend([0, ADR_CONTROL_DATA, number, 0]);
                    d.extend(address(lba, msf));
                };
                match track {
                    0 | 1 => descriptor(1, 0),
                    LEAD_OUT => {}
                    _ => return Err(self.invalid_field()),
                }
                descriptor(LEAD_OUT, lead_out);
            }
            1 => {
                // First and last complete session 1; the first track of the last session
                // and its start.
                d.extend([0, ADR_CONTROL_DATA, 1, 0]);
                d.extend(address(0, msf));
            }
            2 => {
                // Q sub-channel descriptors of session 1: A0h (first track, disc type
                // 00h CD-ROM), A1h (last track), A2h (lead-out start), track 1's start.
                let lo = address(lead_out, true);
                let start = address(0, true);
                for (point, p) in [
                    (0xa0, [1, 0, 0]),
                    (0xa1, [1, 0, 0]),
                    (0xa2, [lo[1], lo[2], lo[3]]),
                    (1, [start[1], start[2], start[3]]),
                ] {
                    d.extend([1, ADR_CONTROL_DATA, 0, point, 0, 0, 0, 0, p[0], p[1], p[2]]);
                }
            }
            _ => return Err(self.invalid_field()),
        }
        let len = (d.len() - 2) as u16;
        d[..2].copy_from_slice(&len.to_be_bytes());
        Ok(reply(d, alloc))
    }

    /// READ SUB-CHANNEL (SFF-8020i): no audio is ever playing; the header alone, or with
    /// SubQ the current-position block (format 01h) at the start of track 1.
    fn read_sub_channel(&mut self, cdb: &[u8; PACKET_SIZE]) -> Result<Outcome, Outcome> {
        self.need_medium()?;
        let msf = cdb[1] & 0x02 != 0;
        let alloc = usize::from(be16(&cdb[7..9]));
        // Audio status 15h: no current audio status to return.
        let mut d = vec![0, 0x15, 0, 0];
        if cdb[2] & 0x40 != 0 {
            if cdb[3] != 0x01 {
                return Err(self.invalid_field());
            }
            d.extend([0x01, ADR_CONTROL_DATA, 1, 1]);
            // Absolute address, then the track-relative address (0).
            d.extend(address(0, msf));
            d.extend([0; 4]);
        }
        let len = (d.len() - 4) as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        Ok(reply(d, alloc))
    }

    /// GET CONFIGURATION (MMC-2): the feature descriptors of a read-only CD-ROM drive —
    /// Profile List, Core (ATAPI), Removable Medium, Random Readable, CD Read — filtered
    /// by the request type (0 all, 1 current, 2 the one starting feature).
    fn get_configuration(&mut self, cdb: &[u8; PACKET_SIZE]) -> Outcome {
        let rt = cdb[1] & 0x03;
        let first = be16(&cdb[2..4]);
        let alloc = usize::from(be16(&cdb[7..9]));
        if rt == 3 {
            return self.invalid_field();
        }
        let loaded = self.loaded();
        // (feature code, current, persistent, additional data)
        let features: [(u16, bool, bool, Vec<u8>); 5] = [
            // Profile List: CD-ROM, current when a disc is loaded.
            (0x0000, true, true, vec![0x00, 0x08, u8::from(loaded), 0x00]),
            // Core: physical interface standard 2 (ATAPI).
            (0x0001, true, true, 2u32.to_be_bytes().to_vec()),
            // Removable Medium: tray loader (001b), eject, lock.
            (0x0003, true, true, vec![0x29, 0, 0, 0]),
            // Random Readable: 2048-byte blocks, blocking 1, no page present.
            (0x0010, loaded, false, vec![0x00, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00]),
            // CD Read: no C2 pointers, no CD-Text.
            (0x001e, loaded, false, vec![0, 0, 0, 0]),
        ];
        let profile = if loaded { PROFILE_CD_ROM } else { 0 };
        let mut d = vec![0, 0, 0, 0, 0, 0];
        d.extend(profile.to_be_bytes());
        for (code, current, persistent, data) in features {
            let wanted = match rt {
                0 => code >= first,
                1 => code >= first && current,
                _ => code == first,
            };
            if wanted {
                d.extend(code.to_be_bytes());
                d.push(u8::from(persistent) << 1 | u8::from(current));
                d.push(data.len() as u8);
                d.extend(data);
            }
        }
        let len = (d.len() - 4) as u32;
        d[..4].copy_from_slice(&len.to_be_bytes());
        reply(d, alloc)
    }

    /// GET EVENT STATUS NOTIFICATION (MMC-2), polled only: the media class (4) is the one
    /// supported; its event is reported once, with the tray and presence status.
    fn get_event_status(&mut self, cdb: &[u8; PACKET_SIZE]) -> Outcome {
        if cdb[1] & 0x01 == 0 {
            // Asynchronous operation is not supported.
            return self.invalid_field();
        }
        let alloc = usize::from(be16(&cdb[7..9]));
        const MEDIA_CLASS: u8 = 4;
        let supported = 1 << MEDIA_CLASS;
        let d = if cdb[4] & supported != 0 {
            let event = core::mem::replace(&mut self.event, MediaEvent::None);
            let status = u8::from(self.tray_open) | u8::from(self.loaded()) << 1;
            vec![0, 6, MEDIA_CLASS, supported, event as u8, status, 0, 0]
        } else {
            // No event available (NEA) for the classes asked for.
            vec![0, 2, 0x80, supported]
        };
        reply(d, alloc)
    }

    /// READ DISC INFORMATION (MMC-2), standard data type: a complete disc with one complete
    /// session holding track 1.
    fn read_disc_information(&mut self, cdb: &[u8; PACKET_SIZE]) -> Result<Outcome, Outcome> {
        self.need_medium()?;
        if cdb[1] & 0x07 != 0 {
            return Err(self.invalid_field());
        }
        let alloc = usize::from(be16(&cdb[7..9]));
        let mut d = vec![0u8; 34];
        d[1] = 32;
        // Not erasable, last session complete (11b), disc complete (10b).
        d[2] = 0b11 << 2 | 0b10;
        // First track 1; sessions 1; first and last track in the last session 1.
        d[3] = 1;
        d[4] = 1;
        d[5] = 1;
        d[6] = 1;
        // Disc type 00h: CD-DA or CD-ROM. Lead-in and last lead-out start of a complete
        // disc: FFh.
        d[16..24].fill(0xff);
        Ok(reply(d, alloc))
    }

    /// MECHANISM STATUS (MMC-2): no changer, idle, the door state; no slot tables.
    fn mechanism_status(&mut self, alloc: usize) -> Outcome {
        let d = vec![0, u8::from(self.tray_open) << 4, 0, 0, 0, 0, 0, 0];
        reply(d, alloc)
    }
}

/// Bytes in the next PIO chunk of an ATAPI transfer (ATA/ATAPI-6 §9, PACKET protocol,
/// byte count limit): everything left if it fits, else the limit made even so the
/// transfer continues on a word boundary. A limit of 0 is taken as FFFEh.
pub(super) fn chunk_len(remaining: u64, limit: u16) -> usize {
    let limit = if limit == 0 { 0xfffe } else { limit };
    if remaining <= u64::from(limit) {
        remaining as usize
    } else {
        usize::from(limit & !1).max(2)
    }
}

impl Drive {
    /// Execute an ATA command on the PACKET device.
    pub(super) fn packet_device_command(&mut self, cmd: u8) {
        match cmd {
            CMD_PACKET => self.packet_command(),
            CMD_IDENTIFY_PACKET_DEVICE => {
                self.buf = identify::packet(&self.serial);
                self.start_data_in(Phase::Identify);
            }
            CMD_DEVICE_RESET => self.device_reset(),
            // IDENTIFY DEVICE (and READ SECTORS, which old BIOSes probe with): aborted with
            // the PACKET signature in the registers (ATA/ATAPI-6 §8, IDENTIFY DEVICE).
            CMD_IDENTIFY_DEVICE | CMD_READ_SECTORS | CMD_READ_SECTORS_NO_RETRY => {
                self.regs.set_signature(true);
                self.abort();
            }
            CMD_SET_FEATURES => self.set_features(),
            CMD_CHECK_POWER_MODE => {
                self.regs.count[0] = 0xff;
                self.complete();
            }
            CMD_STANDBY_IMMEDIATE | CMD_IDLE_IMMEDIATE | CMD_SLEEP => self.complete(),
            _ => self.abort(),
        }
    }

    /// DEVICE RESET (ATA/ATAPI-6 §8): this device alone returns to its post-reset state —
    /// signature, diagnostic code, status 00h — without an interrupt. The Device register
    /// keeps DEV so the channel's selection stays consistent.
    fn device_reset(&mut self) {
        let device = self.regs.device;
        self.signature_reset(super::channel::DIAG_PASSED);
        self.regs.device = device;
    }

    /// PACKET: take the byte count limit from LBA Mid/High and ask for the command packet
    /// (DRQ, Interrupt Reason CoD=1 IO=0). DMA and overlap are not supported: aborted.
    fn packet_command(&mut self) {
        if self.regs.feature[0] & (PACKET_DMA | PACKET_OVL) != 0 {
            return self.abort();
        }
        let limit = u16::from(self.regs.lba_high[0]) << 8 | u16::from(self.regs.lba_mid[0]);
        if let Some(cd) = self.cdrom_mut() {
            cd.limit = limit;
        }
        self.buf.clear();
        self.buf.resize(PACKET_SIZE, 0);
        self.pos = 0;
        self.phase = Phase::Packet;
        self.regs.count[0] = IR_COD;
        self.status = ST_DRDY | ST_DRQ;
    }

    /// The command packet is in: run it and start the data phase or complete.
    pub(super) fn packet_received(&mut self) {
        let mut cdb = [0u8; PACKET_SIZE];
        cdb.copy_from_slice(&self.buf[..PACKET_SIZE]);
        let Some(cd) = self.cdrom_mut() else { return self.abort() };
        match cd.execute(&cdb) {
            Outcome::Good => self.packet_complete(false),
            Outcome::Check => self.packet_complete(true),
            Outcome::DataIn(d) if d.is_empty() => self.packet_complete(false),
            Outcome::DataIn(d) => {
                let remaining = d.len() as u64;
                self.atapi_in_chunk(AtapiIn { source: Source::Reply(d, 0), remaining });
            }
            Outcome::Read { offset, len } => {
                self.atapi_in_chunk(AtapiIn { source: Source::Medium(offset), remaining: len })
            }
            Outcome::DataOut(0) => self.packet_complete(false),
            Outcome::DataOut(len) => self.atapi_out_chunk(len),
        }
    }

    /// End of a packet command: Interrupt Reason CoD=1 IO=1, DRQ clear, INTRQ; on CHECK
    /// CONDITION, CHK (ERR) in Status and the sense key in Error bits 7:4 (SFF-8020i, Error
    /// register).
    fn packet_complete(&mut self, check: bool) {
        self.phase = Phase::Idle;
        self.regs.count[0] = IR_COD | IR_IO;
        let key = self.cdrom().map_or(NO_SENSE, |c| c.sense().key);
        if check {
            self.error = key << 4;
            self.status = ST_DRDY | ST_ERR;
        } else {
            self.error = 0;
            self.status = ST_DRDY;
        }
        self.intrq = true;
    }

    /// Offer the next data-in chunk: byte count in LBA Mid/High, Interrupt Reason IO=1
    /// CoD=0, DRQ, INTRQ. A medium read failure ends the command with MEDIUM ERROR.
    fn atapi_in_chunk(&mut self, mut x: AtapiIn) {
        let Kind::Cdrom(cd) = &mut self.kind else { return self.abort() };
        let n = chunk_len(x.remaining, cd.limit);
        self.buf.clear();
        self.buf.resize(n, 0);
        match &mut x.source {
            Source::Reply(data, at) => {
                self.buf.copy_from_slice(&data[*at..*at + n]);
                *at += n;
            }
            Source::Medium(offset) => {
                if cd.read_medium(*offset, &mut self.buf).is_err() {
                    cd.set_medium_error();
                    return self.packet_complete(true);
                }
                *offset += n as u64;
            }
        }
        x.remaining -= n as u64;
        self.regs.lba_mid[0] = n as u8;
        self.regs.lba_high[0] = (n >> 8) as u8;
        self.regs.count[0] = IR_IO;
        self.pos = 0;
        self.phase = Phase::AtapiIn(x);
        self.status = ST_DRDY | ST_DRQ;
        self.intrq = true;
    }

    /// The host has read a whole chunk: the next one, or completion.
    pub(super) fn atapi_in_chunk_done(&mut self, x: AtapiIn) {
        if x.remaining > 0 {
            self.atapi_in_chunk(x);
        } else {
            self.packet_complete(false);
        }
    }

    /// Ask for the next data-out chunk: byte count, Interrupt Reason IO=0 CoD=0, DRQ,
    /// INTRQ.
    fn atapi_out_chunk(&mut self, remaining: u64) {
        let limit = self.cdrom().map_or(0, |c| c.limit);
        let n = chunk_len(remaining, limit);
        self.buf.clear();
        self.buf.resize(n, 0);
        self.regs.lba_mid[0] = n as u8;
        self.regs.lba_high[0] = (n >> 8) as u8;
        self.regs.count[0] = 0;
        self.pos = 0;
        self.phase = Phase::AtapiOut(remaining - n as u64);
        self.status = ST_DRDY | ST_DRQ;
        self.intrq = true;
    }

    /// The host has written a whole chunk (the parameters are ignored): the next one, or
    /// completion.
    pub(super) fn atapi_out_chunk_done(&mut self, remaining: u64) {
        if remaining > 0 {
            self.atapi_out_chunk(remaining);
        } else {
            self.packet_complete(false);
        }
    }
}
