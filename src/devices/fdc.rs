//! An Intel 82077AA-compatible floppy disk controller at 3F0h–3F7h (IRQ 6, DMA channel 2),
//! in PC-AT mode, with up to two 3.5" drives whose media are raw sector images (720 KB,
//! 1.44 MB or 2.88 MB, told apart by their size).
//!
//! Registers (82077AA datasheet, "Register Description"): status registers A
//! and B (3F0h/3F1h, PS/2-mode layout), the digital output register (3F2h: drive select,
//! reset, DMA gate, motor enables), the tape drive register (3F3h), the main status register
//! (3F4h read) and data-rate select register (3F4h write), the FIFO (3F5h), the digital input
//! register (3F7h read, disk-change bit) and the configuration control register (3F7h write).
//!
//! Commands (datasheet Table 5-1 "82077AA Command Set"): READ DATA, WRITE DATA, READ ID,
//! FORMAT TRACK, RECALIBRATE, SEEK (and RELATIVE SEEK), SENSE INTERRUPT STATUS, SENSE DRIVE
//! STATUS, SPECIFY, CONFIGURE, VERSION, LOCK, PERPENDICULAR MODE and DUMPREG; every other
//! opcode is answered as invalid (one result byte, ST0 = 80h). READ/WRITE DELETED DATA,
//! READ TRACK and VERIFY are among those. Multi-sector and multi-track (MT) transfers, end
//! of track, implied seeks (CONFIGURE EIS), the result-phase C/H/R/N of datasheet Table
//! 5-6, the four polling-mode interrupts after a reset and the write-protect check follow
//! the datasheet. Data moves in DMA mode or, after SPECIFY with ND = 1, byte by byte
//! through the FIFO.
//!
//! There is no rotational or seek timing: a command's execution phase lasts as long as the
//! data takes to move, and the interrupt is raised once the result phase is ready. Timing
//! the guest can see is limited to that, so the device needs no clock.
//!
//! # Moving DMA data
//!
//! The controller never calls the DMA controller (devices never call each other). During the
//! execution phase of a DMA-mode data command it raises [`Fdc::dma_request`] (channel 2 and a
//! direction); the bus then moves bytes with the [`Dma`] on its behalf:
//! - device → memory (READ DATA): [`Fdc::dma_output`] is what the controller has ready (the
//!   rest of the current sector); the bus hands it to [`Dma::transfer_to_memory`] and reports
//!   what was taken, and whether the DMA controller reached terminal count, with
//!   [`Fdc::dma_output_done`];
//! - memory → device (WRITE DATA, FORMAT TRACK): [`Fdc::dma_input_wanted`] says how many
//!   bytes the controller can take; the bus fetches them with [`Dma::transfer_from_memory`]
//!   and delivers them with [`Fdc::dma_input`], again with the terminal-count flag.
//!
//! Terminal count is the 8237A's EOP# pulse arriving on the controller's TC pin: it ends the
//! transfer after the current sector. [`run_dma`] is that loop, ready made; the bus calls it
//! after every write to an FDC or DMA port (a command can start, or a channel be unmasked,
//! on either) and then samples [`Fdc::irq6`].
//!
//! # Drives and media
//!
//! [`Fdc::insert`] puts an image in drive 0 or 1 (connecting the drive if needed) and
//! [`Fdc::eject`] takes it out again, written sectors included; [`Fdc::add_drive`]
//! connects an empty drive. Commands on a drive without a medium behave as on real hardware
//! (datasheet §8.1): seeks work, but a data command never sees an index pulse and stays in
//! its execution phase until the controller is reset. The disk-change line (DIR bit 7) is
//! set when a medium is inserted or removed and cleared by a SEEK or RECALIBRATE with a
//! medium present.
//!
//! # Simplifications
//!
//! - The drive a command addresses is the one in its DS bits; the DOR's drive select only
//!   picks the drive whose signals SRA/DIR show. Motors need not be on.
//! - A real drive resets its change line only on a step pulse; here any SEEK or RECALIBRATE
//!   does, even one that does not move the head, so BIOSes that only recalibrate at track 0
//!   see the new disk.
//! - Sectors are found by comparing the command's C/H/R/N with the IDs a standard format
//!   has (C = head position, H = head, R = 1..sectors per track, N = 2) at the medium's data
//!   rate; other formats (FORMAT TRACK with other IDs, sizes or rates) cannot be stored in a
//!   flat image and are dropped or refused.
//! - In non-DMA mode the execution-phase interrupt is raised once, when the phase starts,
//!   and dropped by the first byte moved (the FIFO is never empty); the result phase then
//!   interrupts again. Overrun (ST1 OR) cannot happen.

use super::dma::Dma;
use crate::bus::IoSize;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Status register A (read; PS/2 layout). 82077AA datasheet, "Status Register A (SRA)".
pub const FDC_SRA: u16 = 0x3f0;
/// Status register B (read; PS/2 layout). Datasheet, "Status Register B (SRB)".
pub const FDC_SRB: u16 = 0x3f1;
/// Digital output register (read/write). Datasheet, "Digital Output Register (DOR)".
pub const FDC_DOR: u16 = 0x3f2;
/// Tape drive register (read/write). Datasheet, "Tape Drive Register (TDR)".
pub const FDC_TDR: u16 = 0x3f3;
/// Main status register (read). Datasheet, "Main Status Register (MSR)".
pub const FDC_MSR: u16 = 0x3f4;
/// Data-rate select register (write). Datasheet, "Datarate Select Register (DSR)".
pub const FDC_DSR: u16 = 0x3f4;
/// Data register / FIFO (read/write). Datasheet, "FIFO (Data)".
pub const FDC_FIFO: u16 = 0x3f5;
/// Digital input register (read). Datasheet, "Digital Input Register (DIR)".
pub const FDC_DIR: u16 = 0x3f7;
/// Configuration control register (write). Datasheet, "Configuration Control Register
/// (CCR)".
pub const FDC_CCR: u16 = 0x3f7;
/// The controller's interrupt line (IBM PC AT Technical Reference, "System Interrupts":
/// IRQ 6 is the diskette controller).
pub const FDC_IRQ: u8 = 6;
/// The controller's DMA channel (IBM PC AT Technical Reference, "DMA Channels": channel 2
/// is the diskette adapter).
pub const FDC_DMA_CHANNEL: u8 = 2;

// Digital output register bits (datasheet, "Digital Output Register").
/// Bits 1:0: drive select.
const DOR_DRIVE_SELECT: u8 = 0x03;
/// Bit 2: nRESET; 0 holds the controller in reset.
const DOR_NRESET: u8 = 0x04;
/// Bit 3: DMA gate; in PC-AT mode 0 tri-states the INT and DRQ outputs.
const DOR_DMA_GATE: u8 = 0x08;
/// Bit 4: motor enable for drive 0 (bits 5–7 for drives 1–3).
const DOR_MOTOR0: u8 = 0x10;

// Main status register bits (datasheet, "Main Status Register").
/// RQM: the data register is ready for a transfer.
const MSR_RQM: u8 = 0x80;
/// DIO: 1 = controller → host.
const MSR_DIO: u8 = 0x40;
/// NON DMA: execution phase in non-DMA mode.
const MSR_NON_DMA: u8 = 0x20;
/// CMD BSY: a command is in progress.
const MSR_CMD_BUSY: u8 = 0x10;

// Data-rate select / configuration control register bits (datasheet, "Datarate Select
// Register" and "Configuration Control Register").
/// DSR bit 7: software reset (self-clearing).
const DSR_SW_RESET: u8 = 0x80;
/// Bits 1:0: data rate select, 00 = 500 kbps, 01 = 300 kbps, 10 = 250 kbps, 11 = 1 Mbps.
const RATE_MASK: u8 = 0x03;
const RATE_500K: u8 = 0;
const RATE_250K: u8 = 2;
const RATE_1M: u8 = 3;

/// Digital input register bit 7: disk changed (datasheet, "Digital Input Register": in
/// PC-AT mode the controller drives only this bit; the others read 0 here).
const DIR_DSKCHG: u8 = 0x80;

// Status register 0 (datasheet, "Status Register 0" table).
/// IC = 01: abnormal termination.
const ST0_ABNORMAL: u8 = 0x40;
/// IC = 10: invalid command.
const ST0_INVALID: u8 = 0x80;
/// IC = 11: abnormal termination because of polling (drive ready changed).
const ST0_POLL: u8 = 0xc0;
/// SE: seek end (SEEK, RECALIBRATE, implied seek).
const ST0_SE: u8 = 0x20;
/// EC: equipment check (TRK0 not found after the recalibrate step pulses).
const ST0_EC: u8 = 0x10;

// Status register 1 (datasheet, "Status Register 1" table).
/// EN: end of cylinder, the controller went past EOT without terminal count.
const ST1_EN: u8 = 0x80;
/// ND: no data, the sector was not found.
const ST1_ND: u8 = 0x04;
/// NW: not writable, the medium is write protected.
const ST1_NW: u8 = 0x02;
/// MA: missing address mark, no ID field could be read.
const ST1_MA: u8 = 0x01;

// Status register 2 (datasheet, "Status Register 2" table).
/// WC: wrong cylinder, the ID's C differs from the command's.
const ST2_WC: u8 = 0x10;

// Status register 3 (datasheet, "Status Register 3" table).
/// WP: write protected.
const ST3_WP: u8 = 0x40;
/// Bit 5: tied high (the 82077AA has no READY input).
const ST3_READY: u8 = 0x20;
/// T0: track 0.
const ST3_T0: u8 = 0x10;
/// Bit 3: tied high (two-sided).
const ST3_TWO_SIDED: u8 = 0x08;

// Opcodes, bits 4:0 of the first command byte (datasheet Table 5-1).
const CMD_SPECIFY: u8 = 0x03;
const CMD_SENSE_DRIVE_STATUS: u8 = 0x04;
const CMD_WRITE_DATA: u8 = 0x05;
const CMD_READ_DATA: u8 = 0x06;
const CMD_RECALIBRATE: u8 = 0x07;
const CMD_SENSE_INTERRUPT: u8 = 0x08;
const CMD_READ_ID: u8 = 0x0a;
const CMD_FORMAT_TRACK: u8 = 0x0d;
const CMD_DUMPREG: u8 = 0x0e;
const CMD_SEEK: u8 = 0x0f;
const CMD_VERSION: u8 = 0x10;
const CMD_PERPENDICULAR: u8 = 0x12;
const CMD_CONFIGURE: u8 = 0x13;
const CMD_LOCK: u8 = 0x14;
/// Bit 7 of READ/WRITE DATA: multi-track. Of SEEK: relative seek. Of LOCK: the lock bit.
const CMD_MT: u8 = 0x80;
/// Bit 6 of the data commands: MFM (double density) recording. Of RELATIVE SEEK: DIR.
const CMD_MFM: u8 = 0x40;

/// VERSION result: an enhanced controller (datasheet, "VERSION" command).
const VERSION_82077: u8 = 0x90;
/// Sector size code N = 2: 512 bytes, the only size the images hold.
const SECTOR_N: u8 = 2;
const SECTOR_SIZE: usize = 512;
/// RECALIBRATE issues at most 79 step pulses looking for TRK0 (datasheet, "RECALIBRATE").
const RECALIBRATE_STEPS: u8 = 79;
/// How far a 3.5" drive's head can physically travel (a few cylinders past the last one
/// formatted, where the head stop is).
const MAX_HEAD_CYLINDER: u8 = 83;

/// A floppy image format, identified by the image's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskFormat {
    /// 720 KB double density: 80 cylinders × 2 heads × 9 sectors, 250 kbps.
    Dd720K,
    /// 1.44 MB high density: 80 × 2 × 18, 500 kbps.
    Hd1440K,
    /// 2.88 MB extra density: 80 × 2 × 36, 1 Mbps.
    Ed2880K,
}

impl DiskFormat {
    /// The format of an image of `len` bytes, if it is one of the supported sizes.
    pub fn from_size(len: usize) -> Option<Self> {
        [Self::Dd720K, Self::Hd1440K, Self::Ed2880K].into_iter().find(|f| f.size() == len)
    }

    /// Cylinders (tracks per side).
    pub fn cylinders(self) -> u8 {
        80
    }

    /// Heads (sides).
    pub fn heads(self) -> u8 {
        2
    }

    /// Sectors per track.
    pub fn sectors_per_track(self) -> u8 {
        match self {
            Self::Dd720K => 9,
            Self::Hd1440K => 18,
            Self::Ed2880K => 36,
        }
    }

    /// Image size in bytes.
    pub fn size(self) -> usize {
        usize::from(self.cylinders()) * usize::from(self.heads()) * usize::from(self.sectors_per_track()) * SECTOR_SIZE
    }

    /// The data-rate select value the medium is recorded at (datasheet, "Datarate Select
    /// Register": 10 = 250 kbps, 00 = 500 kbps, 11 = 1 Mbps).
    fn data_rate(self) -> u8 {
        match self {
            Self::Dd720K => RATE_250K,
            Self::Hd1440K => RATE_500K,
            Self::Ed2880K => RATE_1M,
        }
    }

    /// The CMOS drive-type nibble of a drive made for this medium (IBM PC AT Technical
    /// Reference, CMOS byte 10h "Diskette Drive Type", extended for 3.5" drives: 3 = 720 KB,
    /// 4 = 1.44 MB, 5 = 2.88 MB).
    pub fn cmos_type(self) -> u8 {
        match self {
            Self::Dd720K => 3,
            Self::Hd1440K => 4,
            Self::Ed2880K => 5,
        }
    }
}

/// Host errors when attaching media. Never caused by what a guest does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdcError {
    /// The image is not 720 KB, 1.44 MB or 2.88 MB.
    BadImageSize(usize),
    /// The controller has drives 0 and 1 only.
    NoSuchDrive(u8),
    /// The drive holds no medium.
    NoMedium(u8),
}

impl fmt::Display for FdcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdcError::BadImageSize(len) => write!(
                f,
                "a floppy image of {len} bytes has no known geometry (expected {} bytes for 720 KB, {} for 1.44 MB \
                 or {} for 2.88 MB)",
                DiskFormat::Dd720K.size(),
                DiskFormat::Hd1440K.size(),
                DiskFormat::Ed2880K.size()
            ),
            FdcError::NoSuchDrive(d) => write!(f, "floppy drive {d} does not exist (drives 0 and 1 can be attached)"),
            FdcError::NoMedium(d) => write!(f, "floppy drive {d} has no disk in it"),
        }
    }
}

/// Direction of a DMA request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// Controller → memory (the 8237A's write transfer).
    ToMemory,
    /// Memory → controller (the 8237A's read transfer).
    FromMemory,
}

/// A floppy in a drive.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Medium {
    #[serde(with = "crate::snapshot::sparse")]
    data: Vec<u8>,
    format: DiskFormat,
    write_protected: bool,
}

/// One drive on the cable.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Drive {
    connected: bool,
    medium: Option<Medium>,
    /// Where the head physically is (the controller's idea of it is its PCN).
    cylinder: u8,
    /// The disk-change line.
    changed: bool,
    /// CMOS type nibble (0 when no drive is connected).
    cmos_type: u8,
}

/// Command / execution / result phases (datasheet, "Controller Phases").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Waiting for the first byte of a command.
    Idle,
    /// Collecting parameter bytes.
    Command,
    /// A data command is moving data ([`Fdc::xfer`] is set).
    Execution,
    /// A data command waits for index pulses that never come (no medium, no drive).
    Stalled,
    /// Result bytes are waiting to be read.
    Result,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Op {
    Read,
    Write,
    Format,
}

/// The state of a READ DATA, WRITE DATA or FORMAT TRACK execution phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Transfer {
    op: Op,
    drive: u8,
    /// Physical head (HDS).
    head: u8,
    multi_track: bool,
    /// The sector ID being transferred (for FORMAT: the last ID received).
    c: u8,
    h: u8,
    r: u8,
    n: u8,
    eot: u8,
    /// An implied seek ran: ST0 gets SE.
    seek_end: bool,
    /// Sector data (READ/WRITE), or the 4-byte ID being received (FORMAT).
    #[serde(with = "serde_big_array::BigArray")]
    buf: [u8; SECTOR_SIZE],
    pos: usize,
    /// Byte offset of the current sector in the image.
    offset: usize,
    /// FORMAT: IDs still to come, and the filler byte.
    sectors_left: u8,
    filler: u8,
}

impl Transfer {
    /// Bytes in one unit of this transfer: a sector, or a 4-byte ID for FORMAT.
    fn unit(&self) -> usize {
        if self.op == Op::Format {
            4
        } else {
            SECTOR_SIZE
        }
    }

    /// The ID reported in the result phase when the transfer ends after the current sector
    /// (datasheet Table 5-6 "Result Phase Table": R+1 before EOT; at EOT, R = 1 and either
    /// C+1 (MT = 0, or MT = 1 on head 1) and/or H with its LSB complemented (MT = 1)).
    fn end_id(&self) -> [u8; 4] {
        if self.r != self.eot {
            [self.c, self.h, self.r.wrapping_add(1), self.n]
        } else if !self.multi_track {
            [self.c.wrapping_add(1), self.h, 1, self.n]
        } else if self.head == 0 {
            [self.c, self.h ^ 1, 1, self.n]
        } else {
            [self.c.wrapping_add(1), self.h ^ 1, 1, self.n]
        }
    }
}

/// The floppy disk controller and its two drives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fdc {
    drives: [Drive; 2],
    dor: u8,
    tdr: u8,
    /// Data rate select (DSR/CCR bits 1:0).
    rate: u8,
    /// DSR bits 6:2 (power down, precompensation): stored, no effect.
    dsr: u8,
    /// SPECIFY: SRT/HUT byte and HLT/ND byte.
    specify: [u8; 2],
    /// CONFIGURE: EIS, EFIFO, POLL and FIFOTHR as in its third byte; PRETRK.
    config: u8,
    pretrk: u8,
    /// LOCK: EFIFO, FIFOTHR and PRETRK survive a software reset.
    lock: bool,
    /// PERPENDICULAR MODE: D3–D0 (bits 5:2), GAP and WGATE (bits 1:0).
    perpendicular: u8,
    /// Present cylinder number of each of the four drive selects.
    pcn: [u8; 4],
    /// SC of the last FORMAT or EOT of the last READ/WRITE (for DUMPREG).
    sc_eot: u8,
    phase: Phase,
    command: [u8; 9],
    command_len: usize,
    command_need: usize,
    result: [u8; 10],
    result_len: usize,
    result_pos: usize,
    xfer: Option<Transfer>,
    /// Interrupt for a result phase (cleared by reading the first result byte).
    result_irq: bool,
    /// Conditions SENSE INTERRUPT STATUS reports, per drive select: the ST0 to return.
    sense: [Option<u8>; 4],
    /// MSR bits 3:0: drive busy seeking (set by SEEK/RECALIBRATE until sensed).
    busy: u8,
    /// Head of the last command (status register A).
    last_head: u8,
    /// Non-DMA execution-phase interrupt: raised when the phase starts, dropped by the first
    /// byte moved through the FIFO (as if the FIFO threshold covered the whole transfer), so
    /// the result phase that follows raises a fresh edge.
    pio_irq: bool,
}

/// CONFIGURE third byte (datasheet, "CONFIGURE"): bit 6 EIS, bit 5 EFIFO (1 = FIFO disabled),
/// bit 4 POLL (1 = polling disabled), bits 3:0 FIFOTHR.
const CONFIG_EIS: u8 = 0x40;
const CONFIG_EFIFO: u8 = 0x20;
const CONFIG_POLL_OFF: u8 = 0x10;
/// Bits that LOCK protects from a software reset (EFIFO and FIFOTHR).
const CONFIG_LOCKABLE: u8 = 0x2f;
/// CONFIGURE defaults (datasheet, "CONFIGURE"): no implied seek, FIFO disabled, polling enabled,
/// threshold 1 byte.
const CONFIG_DEFAULT: u8 = CONFIG_EFIFO;

impl Default for Fdc {
    fn default() -> Self {
        Self::new()
    }
}

impl Fdc {
    /// A controller as a PC BIOS leaves it: out of reset with DMA and interrupts gated on
    /// (DOR = 0Ch), the reset interrupts already sensed, the data rate at 500 kbps, no
    /// drives connected.
    pub fn new() -> Self {
        Self {
            drives: Default::default(),
            dor: DOR_NRESET | DOR_DMA_GATE,
            tdr: 0,
            rate: RATE_500K,
            dsr: 0,
            specify: [0, 0],
            config: CONFIG_DEFAULT,
            pretrk: 0,
            lock: false,
            perpendicular: 0,
            pcn: [0; 4],
            sc_eot: 0,
            phase: Phase::Idle,
            command: [0; 9],
            command_len: 0,
            command_need: 0,
            result: [0; 10],
            result_len: 0,
            result_pos: 0,
            xfer: None,
            result_irq: false,
            sense: [None; 4],
            busy: 0,
            last_head: 0,
            pio_irq: false,
        }
    }

    // ----- host API -------------------------------------------------------------------

    fn drive_index(drive: u8) -> Result<usize, FdcError> {
        if drive < 2 {
            Ok(usize::from(drive))
        } else {
            Err(FdcError::NoSuchDrive(drive))
        }
    }

    /// Connect an empty 1.44 MB drive as `drive` (0 or 1), if none is connected yet.
    pub fn add_drive(&mut self, drive: u8) -> Result<(), FdcError> {
        let d = &mut self.drives[Self::drive_index(drive)?];
        if !d.connected {
            *d = Drive {
                connected: true,
                changed: true,
                cmos_type: DiskFormat::Hd1440K.cmos_type(),
                ..Drive::default()
            };
        }
        Ok(())
    }

    /// Put `image` in `drive` (0 or 1), replacing any medium there. The geometry comes from
    /// the size (737 280, 1 474 560 or 2 949 120 bytes). A drive that was not connected is
    /// connected as the drive type made for this medium. The disk-change line goes active.
    pub fn insert(&mut self, drive: u8, image: Vec<u8>) -> Result<(), FdcError> {
        let index = Self::drive_index(drive)?;
        let format = DiskFormat::from_size(image.len()).ok_or(FdcError::BadImageSize(image.len()))?;
        let d = &mut self.drives[index];
        if !d.connected {
            *d = Drive { connected: true, cmos_type: format.cmos_type(), ..Drive::default() };
        } else {
            // A drive reads media up to its own density: a denser medium upgrades it.
            d.cmos_type = d.cmos_type.max(format.cmos_type());
        }
        d.medium = Some(Medium { data: image, format, write_protected: false });
        d.changed = true;
        Ok(())
    }

    /// Take the medium out of `drive`: its image, with everything the guest wrote. The
    /// drive stays connected and its disk-change line goes active.
    pub fn eject(&mut self, drive: u8) -> Option<Vec<u8>> {
        let d = self.drives.get_mut(usize::from(drive))?;
        let medium = d.medium.take()?;
        d.changed = true;
        Some(medium.data)
    }

    /// The current image in `drive`, with everything the guest wrote.
    pub fn image(&self, drive: u8) -> Option<&[u8]> {
        self.drives.get(usize::from(drive))?.medium.as_ref().map(|m| m.data.as_slice())
    }

    /// The format of the medium in `drive`.
    pub fn format(&self, drive: u8) -> Option<DiskFormat> {
        self.drives.get(usize::from(drive))?.medium.as_ref().map(|m| m.format)
    }

    /// Set or clear the write-protect tab of the medium in `drive`.
    pub fn set_write_protected(&mut self, drive: u8, protected: bool) -> Result<(), FdcError> {
        let d = &mut self.drives[Self::drive_index(drive)?];
        let m = d.medium.as_mut().ok_or(FdcError::NoMedium(drive))?;
        m.write_protected = protected;
        Ok(())
    }

    /// CMOS drive-type nibble of `drive` for CMOS byte 10h (0 = no drive, 3 = 720 KB,
    /// 4 = 1.44 MB, 5 = 2.88 MB).
    pub fn drive_type_nibble(&self, drive: u8) -> u8 {
        self.drives.get(usize::from(drive)).map_or(0, |d| d.cmos_type)
    }

    /// CMOS byte 10h: drive 0's type in bits 7:4, drive 1's in bits 3:0.
    pub fn cmos_drive_types(&self) -> u8 {
        (self.drive_type_nibble(0) << 4) | self.drive_type_nibble(1)
    }

    /// The interrupt output (IRQ 6): a result phase is ready, SENSE INTERRUPT STATUS has
    /// something to report (seek end, reset polling), or a non-DMA execution phase has
    /// started and no byte has moved yet (datasheet §5.2.4, reasons 1–3). In PC-AT mode the
    /// DOR's DMA gate bit enables the output.
    pub fn irq6(&self) -> bool {
        self.dor & DOR_DMA_GATE != 0 && !self.in_reset() && self.interrupt_pending()
    }

    fn interrupt_pending(&self) -> bool {
        self.result_irq || self.pio_irq || self.sense.iter().any(Option::is_some)
    }

    // ----- DMA interface ----------------------------------------------------------------

    /// The DRQ output: during the execution phase of a DMA-mode READ DATA, WRITE DATA or
    /// FORMAT TRACK with the DOR's DMA gate on, the channel (2) and direction the controller
    /// wants served.
    pub fn dma_request(&self) -> Option<(u8, DmaDirection)> {
        if self.phase != Phase::Execution || self.non_dma() || self.dor & DOR_DMA_GATE == 0 || self.in_reset() {
            return None;
        }
        let x = self.xfer.as_ref()?;
        let dir = if x.op == Op::Read { DmaDirection::ToMemory } else { DmaDirection::FromMemory };
        Some((FDC_DMA_CHANNEL, dir))
    }

    /// The bytes ready to go to memory: the rest of the sector being read (empty unless a
    /// READ DATA is in its execution phase).
    pub fn dma_output(&self) -> &[u8] {
        match &self.xfer {
            Some(x) if self.phase == Phase::Execution && x.op == Op::Read => &x.buf[x.pos..],
            _ => &[],
        }
    }

    /// `n` bytes of [`Fdc::dma_output`] were delivered; `terminal_count` is the TC input
    /// (the DMA controller's count ran out with the last of them): the command ends after
    /// this sector.
    pub fn dma_output_done(&mut self, n: usize, terminal_count: bool) {
        let Some(x) = self.xfer.as_mut() else { return };
        if self.phase != Phase::Execution || x.op != Op::Read {
            return;
        }
        x.pos = (x.pos + n).min(SECTOR_SIZE);
        if terminal_count {
            // The rest of the sector is read but not transferred; the result phase
            // reports the sector as the last one.
            self.finish_transfer();
        } else if x.pos == SECTOR_SIZE {
            self.next_sector();
        }
    }

    /// How many bytes the controller takes from memory now (the rest of the sector to
    /// write, or of the 4-byte sector ID FORMAT TRACK expects); 0 when it takes none.
    pub fn dma_input_wanted(&self) -> usize {
        match &self.xfer {
            Some(x) if self.phase == Phase::Execution && x.op != Op::Read => x.unit() - x.pos,
            _ => 0,
        }
    }

    /// Bytes from memory for WRITE DATA or FORMAT TRACK; `terminal_count` is the TC input
    /// (asserted with the last of them). TC in the middle of a sector ends the command
    /// after the sector, the rest of which is written as zeros.
    pub fn dma_input(&mut self, data: &[u8], terminal_count: bool) {
        let mut data = data;
        loop {
            let Some(x) = self.xfer.as_mut() else { return };
            if self.phase != Phase::Execution || x.op == Op::Read {
                return;
            }
            let unit = x.unit();
            let k = (unit - x.pos).min(data.len());
            x.buf[x.pos..x.pos + k].copy_from_slice(&data[..k]);
            x.pos += k;
            data = &data[k..];
            if x.pos < unit {
                if terminal_count {
                    if x.op == Op::Write {
                        x.buf[x.pos..].fill(0);
                        self.commit_sector();
                    }
                    self.finish_transfer();
                }
                return;
            }
            let more = match x.op {
                Op::Format => self.commit_id(),
                _ => {
                    self.commit_sector();
                    true
                }
            };
            if !more || (data.is_empty() && terminal_count) {
                self.finish_transfer();
                return;
            }
            if self.xfer.as_ref().is_some_and(|x| x.op == Op::Write) {
                self.next_sector();
            } else if let Some(x) = self.xfer.as_mut() {
                x.pos = 0;
            }
            if data.is_empty() {
                return;
            }
        }
    }

    // ----- port I/O ---------------------------------------------------------------------

    /// `IN` from a port; wide accesses are split over consecutive ports as the ISA bus
    /// does. Ports that are not the controller's (including 3F6h, which belongs to the
    /// hard disk controller) read as all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0;
        for i in 0..size as u16 {
            value |= u32::from(self.read_byte(port.wrapping_add(i))) << (8 * i);
        }
        value
    }

    /// `OUT` to a port (wide accesses are split into bytes); other ports are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            FDC_SRA => self.status_a(),
            FDC_SRB => self.status_b(),
            FDC_DOR => self.dor,
            FDC_TDR => self.tdr & 0x03,
            FDC_MSR => self.main_status(),
            FDC_FIFO => self.read_fifo(),
            FDC_DIR => {
                let d = self.drives.get(usize::from(self.dor & DOR_DRIVE_SELECT));
                if d.is_some_and(|d| d.connected && d.changed) {
                    DIR_DSKCHG
                } else {
                    0
                }
            }
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            FDC_DOR => self.write_dor(v),
            FDC_TDR => self.tdr = v & 0x03,
            FDC_DSR => {
                // Datasheet, "Datarate Select Register": bit 7 is a self-clearing software
                // reset; bits 1:0 set the data rate, as the CCR does.
                self.rate = v & RATE_MASK;
                self.dsr = v & 0x7c;
                if v & DSR_SW_RESET != 0 && !self.in_reset() {
                    self.reset();
                    self.end_reset();
                }
            }
            FDC_FIFO => self.write_fifo(v),
            FDC_CCR => self.rate = v & RATE_MASK,
            _ => {}
        }
    }

    /// Status register A, PS/2 layout (datasheet, "Status Register A"): bit 7 INT PENDING,
    /// bit 6 nDRV2, bit 5 STEP, bit 4 nTRK0, bit 3 HDSEL, bit 2 nINDX, bit 1 nWP, bit 0
    /// DIR.
    fn status_a(&self) -> u8 {
        let sel = self.drives.get(usize::from(self.dor & DOR_DRIVE_SELECT));
        let mut v = 0x04; // no index pulse under the sensor
        if self.interrupt_pending() {
            v |= 0x80;
        }
        if !self.drives[1].connected {
            v |= 0x40;
        }
        if !sel.is_some_and(|d| d.connected && d.cylinder == 0) {
            v |= 0x10;
        }
        v |= self.last_head << 3;
        if !sel.and_then(|d| d.medium.as_ref()).is_some_and(|m| m.write_protected) {
            v |= 0x02;
        }
        v
    }

    /// Status register B, PS/2 layout (datasheet, "Status Register B"): bits 7:6 read 1,
    /// bit 5 DRIVE SEL0, bits 4:2 data toggles and write enable (0 here), bits 1:0 motor
    /// enables 1/0.
    fn status_b(&self) -> u8 {
        0xc0 | ((self.dor & 1) << 5) | ((self.dor / DOR_MOTOR0) & 0x03)
    }

    /// Main status register (datasheet, "Main Status Register"): RQM, DIO, NON DMA and CMD
    /// BSY by phase, drive-busy bits for seeks not yet sensed.
    fn main_status(&self) -> u8 {
        if self.in_reset() {
            return 0;
        }
        let phase = match self.phase {
            Phase::Idle => MSR_RQM,
            Phase::Command => MSR_RQM | MSR_CMD_BUSY,
            Phase::Execution if self.non_dma() => {
                let read = self.xfer.as_ref().is_some_and(|x| x.op == Op::Read);
                MSR_RQM | MSR_NON_DMA | MSR_CMD_BUSY | if read { MSR_DIO } else { 0 }
            }
            Phase::Execution | Phase::Stalled => MSR_CMD_BUSY,
            Phase::Result => MSR_RQM | MSR_DIO | MSR_CMD_BUSY,
        };
        phase | self.busy
    }

    fn in_reset(&self) -> bool {
        self.dor & DOR_NRESET == 0
    }

    fn non_dma(&self) -> bool {
        self.specify[1] & 1 != 0
    }

    fn write_dor(&mut self, v: u8) {
        let was_reset = self.in_reset();
        self.dor = v;
        // Datasheet, "Digital Output Register": nRESET low holds the controller in reset;
        // the rising edge ends it.
        match (was_reset, self.in_reset()) {
            (false, true) => self.reset(),
            (true, false) => self.end_reset(),
            _ => {}
        }
    }

    /// A DOR or DSR software reset (datasheet, "Reset"): the command in progress is
    /// abandoned, status and interrupts are cleared, CONFIGURE returns to its defaults
    /// (except EFIFO, FIFOTHR and PRETRK while LOCK is set), PERPENDICULAR MODE loses GAP
    /// and WGATE. SPECIFY, the data rate, LOCK and the present cylinder numbers survive.
    fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.command_len = 0;
        self.result_len = 0;
        self.result_pos = 0;
        self.xfer = None;
        self.result_irq = false;
        self.pio_irq = false;
        self.sense = [None; 4];
        self.busy = 0;
        if self.lock {
            self.config = (self.config & CONFIG_LOCKABLE) | (CONFIG_DEFAULT & !CONFIG_LOCKABLE);
        } else {
            self.config = CONFIG_DEFAULT;
            self.pretrk = 0;
        }
        self.perpendicular &= !0x03;
    }

    /// Leaving reset: with polling enabled (the default after a reset) the first polling
    /// loop finds every drive's "ready" changed and interrupts; SENSE INTERRUPT STATUS then
    /// reports drives 0–3 in turn with IC = 11 (datasheet §7.4 "Drive Polling").
    fn end_reset(&mut self) {
        if self.config & CONFIG_POLL_OFF == 0 {
            for d in 0..4u8 {
                self.sense[usize::from(d)] = Some(ST0_POLL | d);
            }
        }
    }

    // ----- FIFO -------------------------------------------------------------------------

    fn read_fifo(&mut self) -> u8 {
        if self.in_reset() {
            return 0xff;
        }
        match self.phase {
            Phase::Result => {
                // Reading the result clears the result-phase interrupt (as on the 8272A).
                self.result_irq = false;
                let v = self.result[self.result_pos];
                self.result_pos += 1;
                if self.result_pos >= self.result_len {
                    self.phase = Phase::Idle;
                }
                v
            }
            Phase::Execution if self.non_dma() => {
                let Some(&b) = self.dma_output().first() else { return 0xff };
                self.pio_irq = false;
                self.dma_output_done(1, false);
                b
            }
            _ => 0xff,
        }
    }

    fn write_fifo(&mut self, v: u8) {
        if self.in_reset() {
            return;
        }
        match self.phase {
            Phase::Idle => {
                self.command[0] = v;
                self.command_len = 1;
                match Self::command_length(v) {
                    Some(len) => {
                        self.command_need = len;
                        self.phase = Phase::Command;
                        if len == 1 {
                            self.execute();
                        }
                    }
                    // Datasheet Table 5-1 "Invalid": one result byte, ST0 = 80h, no interrupt.
                    None => self.set_result(&[ST0_INVALID], false),
                }
            }
            Phase::Command => {
                self.command[self.command_len] = v;
                self.command_len += 1;
                if self.command_len >= self.command_need {
                    self.execute();
                }
            }
            Phase::Execution if self.non_dma() => {
                self.pio_irq = false;
                self.dma_input(&[v], false);
            }
            _ => {}
        }
    }

    /// Command length in bytes, opcode included (datasheet Table 5-1), or `None` for an
    /// opcode the controller does not implement.
    fn command_length(op: u8) -> Option<usize> {
        Some(match op & 0x1f {
            CMD_READ_DATA | CMD_WRITE_DATA => 9,
            CMD_FORMAT_TRACK => 6,
            CMD_CONFIGURE => 4,
            CMD_SPECIFY | CMD_SEEK => 3,
            CMD_SENSE_DRIVE_STATUS | CMD_RECALIBRATE | CMD_READ_ID | CMD_PERPENDICULAR => 2,
            CMD_SENSE_INTERRUPT | CMD_DUMPREG | CMD_VERSION | CMD_LOCK => 1,
            _ => return None,
        })
    }

    /// Enter the result phase with `bytes`; `irq` raises the interrupt (data commands).
    fn set_result(&mut self, bytes: &[u8], irq: bool) {
        let n = bytes.len().min(self.result.len());
        self.result[..n].copy_from_slice(&bytes[..n]);
        self.result_len = n;
        self.result_pos = 0;
        self.phase = if n == 0 { Phase::Idle } else { Phase::Result };
        if irq {
            self.result_irq = true;
        }
    }

    /// The seven-byte result of a data command (datasheet Table 5-1: ST0, ST1, ST2, C, H,
    /// R, N), with its interrupt.
    fn finish(&mut self, st: [u8; 3], id: [u8; 4]) {
        self.xfer = None;
        self.pio_irq = false;
        let [st0, st1, st2] = st;
        let [c, h, r, n] = id;
        self.set_result(&[st0, st1, st2, c, h, r, n], true);
    }

    fn execute(&mut self) {
        let op = self.command[0];
        match op & 0x1f {
            CMD_READ_DATA => self.start_data(Op::Read),
            CMD_WRITE_DATA => self.start_data(Op::Write),
            CMD_FORMAT_TRACK => self.start_format(),
            CMD_READ_ID => self.read_id(),
            CMD_RECALIBRATE => self.recalibrate(),
            CMD_SEEK => self.seek(),
            CMD_SENSE_INTERRUPT => self.sense_interrupt(),
            CMD_SENSE_DRIVE_STATUS => self.sense_drive_status(),
            CMD_SPECIFY => {
                // Datasheet, "SPECIFY": SRT/HUT, HLT/ND. No result phase.
                self.specify = [self.command[1], self.command[2]];
                self.phase = Phase::Idle;
            }
            CMD_CONFIGURE => {
                // Datasheet, "CONFIGURE": byte 2 is 0, byte 3 EIS/EFIFO/POLL/FIFOTHR, byte 4
                // PRETRK. No result phase.
                self.config = self.command[2] & 0x7f;
                self.pretrk = self.command[3];
                self.phase = Phase::Idle;
            }
            CMD_PERPENDICULAR => {
                // Datasheet, "PERPENDICULAR MODE": OW 0 D3 D2 D1 D0 GAP WGATE; D3–D0 change
                // only with OW.
                let v = self.command[1];
                let drives = if v & 0x80 != 0 { v & 0x3c } else { self.perpendicular & 0x3c };
                self.perpendicular = drives | (v & 0x03);
                self.phase = Phase::Idle;
            }
            CMD_LOCK => {
                // Datasheet, "LOCK": the LOCK bit is bit 7 of the opcode; the result
                // returns it in bit 4.
                self.lock = op & CMD_MT != 0;
                self.set_result(&[u8::from(self.lock) << 4], false);
            }
            CMD_VERSION => self.set_result(&[VERSION_82077], false),
            CMD_DUMPREG => {
                // Datasheet, "DUMPREG" and Table 5-1.
                let [p0, p1, p2, p3] = self.pcn;
                let lock = u8::from(self.lock) << 7;
                let bytes = [
                    p0,
                    p1,
                    p2,
                    p3,
                    self.specify[0],
                    self.specify[1],
                    self.sc_eot,
                    lock | self.perpendicular,
                    self.config,
                    self.pretrk,
                ];
                self.set_result(&bytes, false);
            }
            _ => self.set_result(&[ST0_INVALID], false),
        }
    }

    // ----- positioning commands ---------------------------------------------------------

    fn drive(&self, ds: u8) -> Option<&Drive> {
        self.drives.get(usize::from(ds)).filter(|d| d.connected)
    }

    fn has_medium(&self, ds: u8) -> bool {
        self.drive(ds).is_some_and(|d| d.medium.is_some())
    }

    /// Step the head of drive `ds` by `steps` pulses (positive = in, toward higher
    /// cylinders). A step with a medium in the drive resets its disk-change line.
    fn step(&mut self, ds: u8, steps: i32) {
        if let Some(d) = self.drives.get_mut(usize::from(ds)).filter(|d| d.connected) {
            let cyl = (i32::from(d.cylinder) + steps).clamp(0, i32::from(MAX_HEAD_CYLINDER));
            d.cylinder = cyl as u8;
            if d.medium.is_some() {
                d.changed = false;
            }
        }
    }

    /// SEEK (datasheet, "SEEK"): step until PCN = NCN; RELATIVE SEEK (opcode bit 7,
    /// direction in bit 6) steps by RCN. No result phase; the seek-end interrupt is read
    /// with SENSE INTERRUPT STATUS, whose ST0 head bit is always 0.
    fn seek(&mut self) {
        let ds = self.command[1] & 3;
        let arg = self.command[2];
        let pcn = self.pcn[usize::from(ds)];
        let target = if self.command[0] & CMD_MT != 0 {
            if self.command[0] & CMD_MFM != 0 {
                pcn.saturating_add(arg)
            } else {
                pcn.saturating_sub(arg)
            }
        } else {
            arg
        };
        self.step(ds, i32::from(target) - i32::from(pcn));
        self.pcn[usize::from(ds)] = target;
        self.seek_done(ds, ST0_SE | ds);
    }

    /// RECALIBRATE (datasheet, "RECALIBRATE"): step out until TRK0, at most 79 pulses; without
    /// TRK0 the command ends with IC = 01 and EC. PCN becomes 0 either way.
    fn recalibrate(&mut self) {
        let ds = self.command[1] & 3;
        self.pcn[usize::from(ds)] = 0;
        let st0 = match self.drive(ds).map(|d| d.cylinder) {
            Some(cyl) if cyl <= RECALIBRATE_STEPS => {
                self.step(ds, -i32::from(cyl));
                // Always reset the change line, even at track 0 (see the module docs).
                self.step(ds, 0);
                ST0_SE | ds
            }
            Some(_) => {
                self.step(ds, -i32::from(RECALIBRATE_STEPS));
                ST0_ABNORMAL | ST0_SE | ST0_EC | ds
            }
            None => ST0_ABNORMAL | ST0_SE | ST0_EC | ds,
        };
        self.seek_done(ds, st0);
    }

    fn seek_done(&mut self, ds: u8, st0: u8) {
        self.sense[usize::from(ds)] = Some(st0);
        self.busy |= 1 << ds;
        self.phase = Phase::Idle;
    }

    /// SENSE INTERRUPT STATUS (datasheet §5.2.4, Table 5-9): ST0 and PCN of the next drive
    /// with a pending condition; with none, the invalid-command result 80h.
    fn sense_interrupt(&mut self) {
        match self.sense.iter().position(Option::is_some) {
            Some(d) => {
                let st0 = self.sense[d].take().unwrap_or(0);
                self.busy &= !(1 << d);
                self.set_result(&[st0, self.pcn[d]], false);
            }
            None => self.set_result(&[ST0_INVALID], false),
        }
    }

    /// SENSE DRIVE STATUS (datasheet, "SENSE DRIVE STATUS"): ST3 with the drive's WP and
    /// TRK0 signals.
    fn sense_drive_status(&mut self) {
        let hds_ds = self.command[1] & 0x07;
        let ds = hds_ds & 3;
        let mut st3 = ST3_READY | ST3_TWO_SIDED | hds_ds;
        if let Some(d) = self.drive(ds) {
            if d.cylinder == 0 {
                st3 |= ST3_T0;
            }
            if d.medium.as_ref().is_some_and(|m| m.write_protected) {
                st3 |= ST3_WP;
            }
        }
        self.last_head = (hds_ds >> 2) & 1;
        self.set_result(&[st3], false);
    }

    // ----- data commands ----------------------------------------------------------------

    /// Find sector (C, H, R, N) under head `head` of drive `ds`: its image offset, or the
    /// ST1/ST2 bits of the failure (datasheet §5.1, "READ DATA": no readable ID at all →
    /// MA; no ID matching → ND, with WC when the cylinder differs).
    fn locate(&self, ds: u8, head: u8, id: [u8; 4]) -> Result<usize, (u8, u8)> {
        let [c, h, r, n] = id;
        let Some(d) = self.drive(ds) else { return Err((ST1_MA, 0)) };
        let Some(m) = d.medium.as_ref() else { return Err((ST1_MA, 0)) };
        let f = m.format;
        if self.rate != f.data_rate() || d.cylinder >= f.cylinders() || head >= f.heads() {
            return Err((ST1_MA, 0));
        }
        if c != d.cylinder {
            return Err((ST1_ND, ST2_WC));
        }
        if h != head || n != SECTOR_N || r == 0 || r > f.sectors_per_track() {
            return Err((ST1_ND, 0));
        }
        let track = usize::from(d.cylinder) * usize::from(f.heads()) + usize::from(head);
        Ok((track * usize::from(f.sectors_per_track()) + usize::from(r - 1)) * SECTOR_SIZE)
    }

    /// ST0 for the drive/head of a transfer, with IC bits `ic`.
    fn st0(x: &Transfer, ic: u8) -> u8 {
        ic | if x.seek_end { ST0_SE } else { 0 } | (x.head << 2) | x.drive
    }

    /// READ DATA / WRITE DATA (datasheet §5.1 "Data Transfer Commands"): C H R N EOT GPL DTL.
    fn start_data(&mut self, op: Op) {
        let [b0, b1, c, h, r, n, eot, _gpl, _dtl] = self.command;
        let ds = b1 & 3;
        let head = (b1 >> 2) & 1;
        self.sc_eot = eot;
        self.last_head = head;
        let mut x = Transfer {
            op,
            drive: ds,
            head,
            multi_track: b0 & CMD_MT != 0,
            c,
            h,
            r,
            n,
            eot,
            seek_end: false,
            buf: [0; SECTOR_SIZE],
            pos: 0,
            offset: 0,
            sectors_left: 0,
            filler: 0,
        };
        if !self.has_medium(ds) {
            // No index pulses: the controller waits forever (datasheet §8.1).
            self.xfer = None;
            self.phase = Phase::Stalled;
            return;
        }
        if self.config & CONFIG_EIS != 0 {
            // Implied seek (datasheet, "CONFIGURE" EIS): seek to C before the transfer.
            let pcn = self.pcn[usize::from(ds)];
            self.step(ds, i32::from(c) - i32::from(pcn));
            self.pcn[usize::from(ds)] = c;
            x.seek_end = true;
        }
        let id = [c, h, r, n];
        let protected = self.drive(ds).and_then(|d| d.medium.as_ref()).is_some_and(|m| m.write_protected);
        if op == Op::Write && protected {
            self.finish([Self::st0(&x, ST0_ABNORMAL), ST1_NW, 0], id);
            return;
        }
        if b0 & CMD_MFM == 0 {
            // FM recording: the MFM address marks are not recognised.
            self.finish([Self::st0(&x, ST0_ABNORMAL), ST1_MA, 0], id);
            return;
        }
        self.xfer = Some(x);
        self.phase = Phase::Execution;
        self.pio_irq = self.non_dma();
        self.load_sector();
    }

    /// Position the transfer on its current sector: read it into the buffer (READ) or
    /// prepare to receive it (WRITE); a sector that cannot be found ends the command.
    fn load_sector(&mut self) {
        let Some(x) = self.xfer.as_ref() else { return };
        if !self.has_medium(x.drive) {
            // The medium went away mid-command: no more index pulses.
            self.xfer = None;
            self.phase = Phase::Stalled;
            return;
        }
        match self.locate(x.drive, x.head, [x.c, x.h, x.r, x.n]) {
            Ok(offset) => {
                let ds = usize::from(x.drive);
                let data = self.drives[ds].medium.as_ref().and_then(|m| m.data.get(offset..offset + SECTOR_SIZE));
                let Some(x) = self.xfer.as_mut() else { return };
                x.offset = offset;
                x.pos = 0;
                if let (Op::Read, Some(data)) = (x.op, data) {
                    x.buf.copy_from_slice(data);
                }
            }
            Err((st1, st2)) => {
                let st0 = Self::st0(x, ST0_ABNORMAL);
                let id = [x.c, x.h, x.r, x.n];
                self.finish([st0, st1, st2], id);
            }
        }
    }

    /// After a whole sector without terminal count: the next sector, continuing on head 1
    /// after EOT of head 0 with MT; past the last one the command ends with EN (datasheet
    /// §5.1, Table 5-3).
    fn next_sector(&mut self) {
        let Some(x) = self.xfer.as_mut() else { return };
        if x.r != x.eot {
            x.r = x.r.wrapping_add(1);
        } else if x.multi_track && x.head == 0 {
            x.head = 1;
            x.h ^= 1;
            x.r = 1;
        } else {
            let st0 = Self::st0(x, ST0_ABNORMAL);
            let id = x.end_id();
            self.finish([st0, ST1_EN, 0], id);
            return;
        }
        self.load_sector();
    }

    /// Terminal count (or the last FORMAT ID): normal termination with the ID of datasheet
    /// Table 5-6.
    fn finish_transfer(&mut self) {
        let Some(x) = self.xfer.as_ref() else { return };
        let st0 = Self::st0(x, 0);
        let id = if x.op == Op::Format { [x.c, x.h, x.r, x.n] } else { x.end_id() };
        self.finish([st0, 0, 0], id);
    }

    /// Write the received sector into the image.
    fn commit_sector(&mut self) {
        let Some(x) = self.xfer.as_ref() else { return };
        let (ds, offset) = (usize::from(x.drive), x.offset);
        if let Some(m) = self.drives[ds].medium.as_mut() {
            if let Some(dst) = m.data.get_mut(offset..offset + SECTOR_SIZE) {
                dst.copy_from_slice(&x.buf);
            }
        }
    }

    /// FORMAT TRACK (datasheet, "FORMAT TRACK"): N SC GPL D, then SC four-byte IDs (C H R N) from
    /// the host; each sector's data field is filled with D.
    fn start_format(&mut self) {
        let [_, b1, n, sc, _gpl, filler, ..] = self.command;
        let ds = b1 & 3;
        let head = (b1 >> 2) & 1;
        self.sc_eot = sc;
        self.last_head = head;
        let Some(d) = self.drive(ds).filter(|d| d.medium.is_some()) else {
            self.xfer = None;
            self.phase = Phase::Stalled;
            return;
        };
        let cyl = d.cylinder;
        let x = Transfer {
            op: Op::Format,
            drive: ds,
            head,
            multi_track: false,
            c: cyl,
            h: head,
            r: 0,
            n,
            eot: sc,
            seek_end: false,
            buf: [0; SECTOR_SIZE],
            pos: 0,
            offset: 0,
            sectors_left: sc,
            filler,
        };
        let m = d.medium.as_ref().map(|m| (m.write_protected, m.format));
        let st0 = Self::st0(&x, ST0_ABNORMAL);
        let id = [x.c, x.h, x.r, x.n];
        match m {
            Some((true, _)) => self.finish([st0, ST1_NW, 0], id),
            // The image can only hold the medium's own density and cylinder range.
            Some((false, f)) if f.data_rate() != self.rate || cyl >= f.cylinders() => self.finish([st0, ST1_MA, 0], id),
            _ if sc == 0 => {
                self.xfer = Some(x);
                self.finish_transfer();
            }
            _ => {
                self.xfer = Some(x);
                self.phase = Phase::Execution;
                self.pio_irq = self.non_dma();
            }
        }
    }

    /// One FORMAT ID has arrived: fill the sector it names, if the image can hold it (a
    /// 512-byte sector of this track within the geometry; other IDs are accepted and
    /// dropped). Returns whether more IDs are expected.
    fn commit_id(&mut self) -> bool {
        let Some(x) = self.xfer.as_mut() else { return false };
        let [c, h, r, n] = [x.buf[0], x.buf[1], x.buf[2], x.buf[3]];
        (x.c, x.h, x.r, x.n) = (c, h, r, n);
        x.sectors_left = x.sectors_left.saturating_sub(1);
        let (ds, head, filler, more) = (x.drive, x.head, x.filler, x.sectors_left > 0);
        if h == head {
            if let Ok(offset) = self.locate(ds, head, [c, h, r, n]) {
                if let Some(m) = self.drives[usize::from(ds)].medium.as_mut() {
                    if let Some(dst) = m.data.get_mut(offset..offset + SECTOR_SIZE) {
                        dst.fill(filler);
                    }
                }
            }
        }
        more
    }

    /// READ ID (datasheet, "READ ID"): the first ID field the head finds.
    fn read_id(&mut self) {
        let b0 = self.command[0];
        let ds = self.command[1] & 3;
        let head = (self.command[1] >> 2) & 1;
        self.last_head = head;
        if !self.has_medium(ds) {
            self.phase = Phase::Stalled;
            return;
        }
        let cyl = self.drive(ds).map_or(0, |d| d.cylinder);
        let st0 = (head << 2) | ds;
        let id = [cyl, head, 1, SECTOR_N];
        let readable = b0 & CMD_MFM != 0 && self.locate(ds, head, id).is_ok();
        if readable {
            self.set_result(&[st0, 0, 0, cyl, head, 1, SECTOR_N], true);
        } else {
            self.set_result(&[ST0_ABNORMAL | st0, ST1_MA, 0, cyl, head, 1, SECTOR_N], true);
        }
    }
}

/// Bus glue: serve the controller's DMA requests through the 8237A until it wants nothing
/// more, the channel is not ready (masked, unprogrammed) or no byte moves (the channel is
/// programmed for the other direction). Neither device calls the other; the bus calls
/// this after writes to FDC or DMA ports. Mirrors the request into the DMA status
/// register's DREQ bit.
pub fn run_dma(fdc: &mut Fdc, dma: &mut Dma, ram: &mut [u8]) {
    loop {
        let request = fdc.dma_request();
        dma.set_dreq(FDC_DMA_CHANNEL, request.is_some());
        let Some((channel, dir)) = request else { return };
        if !dma.channel_ready(channel) {
            return;
        }
        match dir {
            DmaDirection::ToMemory => {
                let n = dma.transfer_to_memory(channel, ram, fdc.dma_output());
                let tc = dma.terminal_count(channel);
                if n == 0 && !tc {
                    return;
                }
                fdc.dma_output_done(n, tc);
            }
            DmaDirection::FromMemory => {
                let mut buf = [0u8; SECTOR_SIZE];
                let want = fdc.dma_input_wanted().min(SECTOR_SIZE);
                let n = dma.transfer_from_memory(channel, ram, &mut buf[..want]);
                let tc = dma.terminal_count(channel);
                if n == 0 && !tc {
                    return;
                }
                fdc.dma_input(&buf[..n], tc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::dma::{MODE_AUTOINIT, MODE_SINGLE, MODE_TYPE_READ, MODE_TYPE_WRITE};
    use alloc::vec;

    const HD: usize = 1_474_560;
    const RQM_DIO_CB: u8 = MSR_RQM | MSR_DIO | MSR_CMD_BUSY;

    /// A recognisable image: every byte depends on its sector and its offset.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i / SECTOR_SIZE) as u8).wrapping_mul(31) ^ (i as u8)).collect()
    }

    /// Byte offset of (C, H, R) in an image with `spt` sectors per track.
    fn offset(spt: usize, c: usize, h: usize, r: usize) -> usize {
        ((c * 2 + h) * spt + r - 1) * SECTOR_SIZE
    }

    /// The slice of the PC the tests need: the FDC, the DMA controllers and RAM, wired as
    /// the bus wires them (port writes go to their device, then DMA is serviced).
    struct Pc {
        fdc: Fdc,
        dma: Dma,
        ram: Vec<u8>,
    }

    impl Pc {
        fn new() -> Self {
            Self { fdc: Fdc::new(), dma: Dma::new(), ram: vec![0; 0x4_0000] }
        }

        fn with_disk(image: Vec<u8>) -> Self {
            let mut pc = Self::new();
            pc.fdc.insert(0, image).unwrap();
            pc
        }

        fn out(&mut self, port: u16, v: u8) {
            if (0x3f0..=0x3f7).contains(&port) {
                self.fdc.write(port, IoSize::Byte, u32::from(v));
            } else {
                self.dma.write(port, IoSize::Byte, u32::from(v));
            }
            run_dma(&mut self.fdc, &mut self.dma, &mut self.ram);
        }

        fn inb(&mut self, port: u16) -> u8 {
            if (0x3f0..=0x3f7).contains(&port) {
                self.fdc.read(port, IoSize::Byte) as u8
            } else {
                self.dma.read(port, IoSize::Byte) as u8
            }
        }

        fn msr(&mut self) -> u8 {
            self.inb(FDC_MSR)
        }

        /// Send a command the way a driver does: wait for RQM with DIO = 0 before each byte.
        fn command(&mut self, bytes: &[u8]) {
            for &b in bytes {
                let msr = self.msr();
                assert_eq!(msr & (MSR_RQM | MSR_DIO), MSR_RQM, "controller not ready for {b:#04x}: MSR {msr:#04x}");
                self.out(FDC_FIFO, b);
            }
        }

        /// Read result bytes while the MSR says a result is waiting.
        fn results(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            while self.msr() & RQM_DIO_CB == RQM_DIO_CB && self.msr() & MSR_NON_DMA == 0 {
                out.push(self.inb(FDC_FIFO));
            }
            out
        }

        fn run(&mut self, bytes: &[u8]) -> Vec<u8> {
            self.command(bytes);
            self.results()
        }

        fn sense(&mut self) -> Vec<u8> {
            self.run(&[CMD_SENSE_INTERRUPT])
        }

        fn seek(&mut self, hds_ds: u8, cyl: u8) {
            self.command(&[CMD_SEEK, hds_ds, cyl]);
            assert!(self.fdc.irq6());
            assert_eq!(self.sense(), vec![ST0_SE | (hds_ds & 3), cyl]);
        }

        /// Program channel 2 for `len` bytes at `addr` (count = len - 1) and unmask it.
        fn dma2(&mut self, mode: u8, addr: u32, len: usize) {
            let count = (len - 1) as u16;
            self.out(0x0a, 0x06);
            self.out(0x0c, 0);
            self.out(0x0b, mode | 2);
            self.out(0x04, addr as u8);
            self.out(0x04, (addr >> 8) as u8);
            self.out(0x05, count as u8);
            self.out(0x05, (count >> 8) as u8);
            self.out(0x81, (addr >> 16) as u8);
            self.out(0x0a, 0x02);
        }
    }

    fn read_cmd(mt: bool, hds_ds: u8, c: u8, h: u8, r: u8, eot: u8) -> [u8; 9] {
        let op = CMD_READ_DATA | CMD_MFM | if mt { CMD_MT } else { 0 };
        [op, hds_ds, c, h, r, SECTOR_N, eot, 0x1b, 0xff]
    }

    fn write_cmd(hds_ds: u8, c: u8, h: u8, r: u8, eot: u8) -> [u8; 9] {
        [CMD_WRITE_DATA | CMD_MFM, hds_ds, c, h, r, SECTOR_N, eot, 0x1b, 0xff]
    }

    #[test]
    fn power_on_state_is_idle() {
        let mut pc = Pc::new();
        assert_eq!(pc.msr(), MSR_RQM);
        assert_eq!(pc.inb(FDC_DOR), 0x0c);
        assert!(!pc.fdc.irq6());
        assert_eq!(pc.sense(), vec![ST0_INVALID]);
        // 3F6h belongs to the hard disk controller; wide reads split per port.
        assert_eq!(pc.fdc.read(0x3f6, IoSize::Byte), 0xff);
        assert_eq!(pc.fdc.read(0x3f4, IoSize::Word) & 0xff, u32::from(MSR_RQM));
    }

    #[test]
    fn dor_reset_then_four_sense_interrupts() {
        let mut pc = Pc::new();
        pc.out(FDC_DOR, DOR_DMA_GATE); // hold in reset
        assert_eq!(pc.msr(), 0);
        assert!(!pc.fdc.irq6());
        pc.out(FDC_DOR, DOR_DMA_GATE | DOR_NRESET);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.msr(), MSR_RQM);
        for d in 0..4u8 {
            assert!(pc.fdc.irq6(), "interrupt still pending before drive {d}");
            assert_eq!(pc.sense(), vec![ST0_POLL | d, 0]);
        }
        assert!(!pc.fdc.irq6());
        assert_eq!(pc.sense(), vec![ST0_INVALID]);
        assert_eq!(pc.msr(), MSR_RQM);
    }

    #[test]
    fn dsr_reset_and_the_dma_gate() {
        let mut pc = Pc::new();
        // With the DMA gate off the INT output is tri-stated, but SRA still shows it.
        pc.out(FDC_DOR, DOR_NRESET);
        pc.out(FDC_DSR, DSR_SW_RESET);
        assert!(!pc.fdc.irq6());
        assert_ne!(pc.inb(FDC_SRA) & 0x80, 0);
        pc.out(FDC_DOR, DOR_NRESET | DOR_DMA_GATE);
        assert!(pc.fdc.irq6());
        for d in 0..4u8 {
            assert_eq!(pc.sense(), vec![ST0_POLL | d, 0]);
        }
        assert_eq!(pc.inb(FDC_SRA) & 0x80, 0);
    }

    #[test]
    fn reset_abandons_a_command_in_progress() {
        let mut pc = Pc::new();
        pc.command(&[CMD_SPECIFY, 0xdf]);
        assert_eq!(pc.msr(), MSR_RQM | MSR_CMD_BUSY);
        pc.out(FDC_DOR, 0x08);
        pc.out(FDC_DOR, 0x0c);
        assert_eq!(pc.msr(), MSR_RQM);
        assert_eq!(pc.sense(), vec![ST0_POLL, 0]);
    }

    #[test]
    fn recalibrate_seek_and_sense_drive_status() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.command(&[CMD_SEEK, 0x00, 10]);
        // The drive stays busy until its seek end is sensed.
        assert_eq!(pc.msr(), MSR_RQM | 0x01);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.sense(), vec![ST0_SE, 10]);
        assert!(!pc.fdc.irq6());
        assert_eq!(pc.msr(), MSR_RQM);
        assert_eq!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0x00]), vec![ST3_READY | ST3_TWO_SIDED]);
        pc.command(&[CMD_RECALIBRATE, 0x00]);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.sense(), vec![ST0_SE, 0]);
        assert_eq!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0x04]), vec![ST3_READY | ST3_TWO_SIDED | ST3_T0 | 0x04]);
        // The head bit of a seek's ST0 is always 0.
        pc.command(&[CMD_SEEK, 0x04, 5]);
        assert_eq!(pc.sense(), vec![ST0_SE, 5]);
        // Relative seeks: in by 3, out by 2.
        pc.command(&[CMD_SEEK | CMD_MT | CMD_MFM, 0x00, 3]);
        assert_eq!(pc.sense(), vec![ST0_SE, 8]);
        pc.command(&[CMD_SEEK | CMD_MT, 0x00, 2]);
        assert_eq!(pc.sense(), vec![ST0_SE, 6]);
        // A drive that is not connected never shows TRK0: equipment check.
        pc.command(&[CMD_RECALIBRATE, 0x01]);
        assert_eq!(pc.sense(), vec![ST0_ABNORMAL | ST0_SE | ST0_EC | 1, 0]);
        // Two seeks pending at once are sensed one at a time, lowest drive first.
        pc.command(&[CMD_SEEK, 0x01, 7]);
        pc.command(&[CMD_SEEK, 0x00, 2]);
        assert_eq!(pc.msr(), MSR_RQM | 0x03);
        assert_eq!(pc.sense(), vec![ST0_SE, 2]);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.sense(), vec![ST0_SE | 1, 7]);
        assert!(!pc.fdc.irq6());
    }

    #[test]
    fn recalibrate_gives_up_after_79_steps() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.seek(0, 83);
        pc.command(&[CMD_RECALIBRATE, 0x00]);
        assert_eq!(pc.sense(), vec![ST0_ABNORMAL | ST0_SE | ST0_EC, 0]);
        // The head is at cylinder 4 while the controller believes 0; a second one works.
        assert_eq!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0])[0] & ST3_T0, 0);
        pc.command(&[CMD_RECALIBRATE, 0x00]);
        assert_eq!(pc.sense(), vec![ST0_SE, 0]);
        assert_ne!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0])[0] & ST3_T0, 0);
    }

    #[test]
    fn read_data_multi_sector_through_dma() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.seek(0, 2);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x1_2000, 3 * SECTOR_SIZE);
        let cmd = read_cmd(false, 0x00, 2, 0, 5, 18);
        pc.command(&cmd[..8]);
        assert!(!pc.fdc.irq6());
        pc.command(&cmd[8..]);
        // The transfer completed within the last command write; the interrupt comes with
        // the result phase.
        assert_eq!(pc.msr(), RQM_DIO_CB);
        assert!(pc.fdc.irq6());
        let o = offset(18, 2, 0, 5);
        assert_eq!(&pc.ram[0x1_2000..0x1_2000 + 3 * SECTOR_SIZE], &image[o..o + 3 * SECTOR_SIZE]);
        assert_eq!(pc.ram[0x1_2000 + 3 * SECTOR_SIZE], 0);
        assert_eq!(pc.results(), vec![0x00, 0x00, 0x00, 2, 0, 8, 2]);
        assert!(!pc.fdc.irq6());
        assert_eq!(pc.msr(), MSR_RQM);
        // DMA status: channel 2 reached TC.
        assert_eq!(pc.inb(0x08) & 0x04, 0x04);
    }

    #[test]
    fn read_waits_for_the_dma_channel() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.command(&read_cmd(false, 0x00, 0, 0, 1, 18));
        // Execution phase: busy, no RQM in DMA mode, DRQ raised, no interrupt yet.
        assert_eq!(pc.msr(), MSR_CMD_BUSY);
        assert_eq!(pc.fdc.dma_request(), Some((FDC_DMA_CHANNEL, DmaDirection::ToMemory)));
        assert!(!pc.fdc.irq6());
        assert_eq!(pc.inb(0x08) & 0x40, 0x40, "DREQ2 in the DMA status register");
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x3000, SECTOR_SIZE);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![0, 0, 0, 0, 0, 2, 2]);
        assert_eq!(&pc.ram[0x3000..0x3200], &image[..SECTOR_SIZE]);
        // A channel programmed for the other direction moves nothing.
        pc.command(&read_cmd(false, 0x00, 0, 0, 1, 18));
        pc.dma2(MODE_SINGLE | MODE_TYPE_READ, 0x3000, SECTOR_SIZE);
        assert_eq!(pc.msr(), MSR_CMD_BUSY);
        assert!(!pc.fdc.irq6());
    }

    #[test]
    fn multi_track_read_continues_on_head_1() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.seek(0, 1);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 4 * SECTOR_SIZE);
        pc.command(&read_cmd(true, 0x00, 1, 0, 17, 18));
        // (1,0,17), (1,0,18), (1,1,1), (1,1,2): contiguous in the image.
        let o = offset(18, 1, 0, 17);
        assert_eq!(&pc.ram[0x8000..0x8000 + 4 * SECTOR_SIZE], &image[o..o + 4 * SECTOR_SIZE]);
        assert_eq!(pc.results(), vec![0x04, 0, 0, 1, 1, 3, 2]);
    }

    #[test]
    fn end_of_track_without_tc_is_abnormal() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.seek(0, 3);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 3 * SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 3, 0, 17, 18));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_EN, 0, 4, 0, 1, 2]);
        // Two sectors moved; the channel still has one to go.
        assert_eq!(pc.dma.current_count(2), SECTOR_SIZE as u16 - 1);
        // With MT on head 1 the same happens after EOT of head 1, complementing H.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 3 * SECTOR_SIZE);
        pc.command(&read_cmd(true, 0x04, 3, 1, 17, 18));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL | 0x04, ST1_EN, 0, 4, 0, 1, 2]);
    }

    #[test]
    fn tc_on_the_last_sector_ends_normally() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.seek(0, 3);
        // TC with EOT: C + 1, R = 1 (Table 5-6, MT = 0).
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 2 * SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 3, 0, 17, 18));
        assert_eq!(pc.results(), vec![0, 0, 0, 4, 0, 1, 2]);
        // MT = 1 on head 0 at EOT: same C, H complemented.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(true, 0x00, 3, 0, 18, 18));
        assert_eq!(pc.results(), vec![0, 0, 0, 3, 1, 1, 2]);
        // MT = 1 on head 1 at EOT: C + 1, H complemented.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(true, 0x04, 3, 1, 18, 18));
        assert_eq!(pc.results(), vec![0x04, 0, 0, 4, 0, 1, 2]);
    }

    #[test]
    fn tc_in_the_middle_of_a_sector() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 100);
        pc.command(&read_cmd(false, 0x00, 0, 0, 4, 18));
        assert_eq!(pc.results(), vec![0, 0, 0, 0, 0, 5, 2]);
        let o = offset(18, 0, 0, 4);
        assert_eq!(&pc.ram[0x8000..0x8064], &image[o..o + 100]);
        assert_eq!(pc.ram[0x8064], 0);
    }

    #[test]
    fn auto_init_dma_serves_consecutive_reads() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE | MODE_AUTOINIT, 0x8000, SECTOR_SIZE);
        for r in 1..=3u8 {
            pc.command(&read_cmd(false, 0x00, 0, 0, r, 18));
            assert_eq!(pc.results(), vec![0, 0, 0, 0, 0, r + 1, 2]);
            let o = offset(18, 0, 0, usize::from(r));
            assert_eq!(&pc.ram[0x8000..0x8200], &image[o..o + SECTOR_SIZE]);
        }
    }

    #[test]
    fn sector_errors() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.seek(0, 2);
        // Wrong cylinder: no data, wrong cylinder.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 3, 0, 1, 18));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_ND, ST2_WC, 3, 0, 1, 2]);
        // Sector 19 does not exist.
        pc.command(&read_cmd(false, 0x00, 2, 0, 19, 19));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_ND, 0, 2, 0, 19, 2]);
        // H parameter differs from the head's IDs.
        pc.command(&read_cmd(false, 0x04, 2, 0, 1, 18));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL | 0x04, ST1_ND, 0, 2, 0, 1, 2]);
        // Wrong data rate (250 kbps for a 1.44 MB disk): no address mark at all.
        pc.out(FDC_CCR, RATE_250K);
        pc.command(&read_cmd(false, 0x00, 2, 0, 1, 18));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_MA, 0, 2, 0, 1, 2]);
        pc.out(FDC_CCR, RATE_500K);
        // FM (MFM bit clear) does not see MFM address marks.
        let mut fm = read_cmd(false, 0x00, 2, 0, 1, 18);
        fm[0] &= !CMD_MFM;
        pc.command(&fm);
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_MA, 0, 2, 0, 1, 2]);
        // EOT past the track end: ND when the controller looks for sector 19.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 4 * SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 2, 0, 18, 20));
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_ND, 0, 2, 0, 19, 2]);
    }

    #[test]
    fn implied_seek() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.command(&[CMD_CONFIGURE, 0, CONFIG_EIS | CONFIG_EFIFO, 0]);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 7, 0, 1, 18));
        assert_eq!(pc.results(), vec![ST0_SE, 0, 0, 7, 0, 2, 2]);
        let o = offset(18, 7, 0, 1);
        assert_eq!(&pc.ram[0x8000..0x8200], &image[o..o + SECTOR_SIZE]);
        assert_eq!(pc.run(&[CMD_DUMPREG])[0], 7);
    }

    #[test]
    fn write_data_through_dma() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.seek(0, 3);
        for (i, b) in pc.ram[0x9000..0x9000 + 2 * SECTOR_SIZE].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        pc.dma2(MODE_SINGLE | MODE_TYPE_READ, 0x9000, 2 * SECTOR_SIZE);
        pc.command(&write_cmd(0x04, 3, 1, 7, 18));
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![0x04, 0, 0, 3, 1, 9, 2]);
        let o = offset(18, 3, 1, 7);
        let written = pc.fdc.image(0).unwrap();
        assert_eq!(&written[o..o + 2 * SECTOR_SIZE], &pc.ram[0x9000..0x9000 + 2 * SECTOR_SIZE]);
        assert_eq!(&written[..o], &image[..o]);
        assert_eq!(&written[o + 2 * SECTOR_SIZE..], &image[o + 2 * SECTOR_SIZE..]);
        // Reading it back through the controller gives the same bytes.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x2_0000, 2 * SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x04, 3, 1, 7, 18));
        assert_eq!(pc.results()[..3], [0x04, 0, 0]);
        assert_eq!(pc.ram[0x2_0000..0x2_0400], pc.ram[0x9000..0x9400]);
        // The written image comes back on eject; the change line goes active.
        let out = pc.fdc.eject(0).unwrap();
        assert_eq!(&out[o..o + 4], &[0, 7, 14, 21]);
        assert!(pc.fdc.image(0).is_none());
        assert_eq!(pc.inb(FDC_DIR), DIR_DSKCHG);
    }

    #[test]
    fn write_tc_mid_sector_pads_with_zeros() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.ram[0x9000..0x9010].fill(0xee);
        pc.dma2(MODE_SINGLE | MODE_TYPE_READ, 0x9000, 16);
        pc.command(&write_cmd(0x00, 0, 0, 2, 18));
        assert_eq!(pc.results(), vec![0, 0, 0, 0, 0, 3, 2]);
        let img = pc.fdc.image(0).unwrap();
        let o = offset(18, 0, 0, 2);
        assert!(img[o..o + 16].iter().all(|&b| b == 0xee));
        assert!(img[o + 16..o + SECTOR_SIZE].iter().all(|&b| b == 0));
    }

    #[test]
    fn write_protect() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.fdc.set_write_protected(0, true).unwrap();
        assert_ne!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0])[0] & ST3_WP, 0);
        assert_eq!(pc.inb(FDC_SRA) & 0x02, 0, "nWP low in SRA");
        pc.dma2(MODE_SINGLE | MODE_TYPE_READ, 0x9000, SECTOR_SIZE);
        pc.command(&write_cmd(0x00, 0, 0, 1, 18));
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_NW, 0, 0, 0, 1, 2]);
        assert_eq!(pc.fdc.image(0).unwrap(), &image[..]);
        // Formatting is refused too.
        pc.command(&[CMD_FORMAT_TRACK | CMD_MFM, 0x00, 2, 18, 0x54, 0xf6]);
        assert_eq!(pc.results()[..2], [ST0_ABNORMAL, ST1_NW]);
        pc.fdc.set_write_protected(0, false).unwrap();
        assert_eq!(pc.run(&[CMD_SENSE_DRIVE_STATUS, 0])[0] & ST3_WP, 0);
    }

    #[test]
    fn read_id() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.seek(0, 4);
        pc.command(&[CMD_READ_ID | CMD_MFM, 0x04]);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![0x04, 0, 0, 4, 1, 1, 2]);
        assert!(!pc.fdc.irq6());
        // At the wrong data rate no ID field can be read.
        pc.out(FDC_CCR, RATE_1M);
        pc.command(&[CMD_READ_ID | CMD_MFM, 0x00]);
        assert_eq!(pc.results()[..3], [ST0_ABNORMAL, ST1_MA, 0]);
    }

    #[test]
    fn version_lock_configure_perpendicular_dumpreg() {
        let mut pc = Pc::with_disk(pattern(HD));
        assert_eq!(pc.run(&[CMD_VERSION]), vec![0x90]);
        assert!(!pc.fdc.irq6());
        pc.command(&[CMD_SPECIFY, 0xdf, 0x02]);
        pc.command(&[CMD_CONFIGURE, 0, 0x57, 0x10]);
        assert_eq!(pc.run(&[CMD_LOCK | CMD_MT]), vec![0x10]);
        pc.command(&[CMD_PERPENDICULAR, 0x80 | 0x08 | 0x02]);
        pc.seek(0, 9);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 9, 0, 1, 18));
        pc.results();
        assert_eq!(pc.run(&[CMD_DUMPREG]), vec![9, 0, 0, 0, 0xdf, 0x02, 18, 0x80 | 0x0a, 0x57, 0x10]);
        // Without OW the drive bits stay.
        pc.command(&[CMD_PERPENDICULAR, 0x3c | 0x01]);
        assert_eq!(pc.run(&[CMD_DUMPREG])[7], 0x80 | 0x09);
        // A software reset with LOCK set keeps EFIFO, FIFOTHR and PRETRK but resets EIS and
        // POLL (so the polling interrupts come), and GAP/WGATE.
        pc.out(FDC_DSR, DSR_SW_RESET);
        for d in 0..4u8 {
            assert_eq!(pc.sense(), vec![ST0_POLL | d, pc.fdc.pcn[usize::from(d)]]);
        }
        assert_eq!(pc.run(&[CMD_DUMPREG]), vec![9, 0, 0, 0, 0xdf, 0x02, 18, 0x80 | 0x08, 0x07, 0x10]);
        // Unlocked, the reset restores the defaults.
        assert_eq!(pc.run(&[CMD_LOCK]), vec![0x00]);
        pc.out(FDC_DSR, DSR_SW_RESET);
        for _ in 0..4 {
            pc.sense();
        }
        let regs = pc.run(&[CMD_DUMPREG]);
        assert_eq!(regs[7..], [0x08, CONFIG_DEFAULT, 0]);
        // SPECIFY's ND bit selects non-DMA mode; DUMPREG shows it.
        pc.command(&[CMD_SPECIFY, 0xaf, 0x03]);
        assert_eq!(pc.run(&[CMD_DUMPREG])[4..6], [0xaf, 0x03]);
    }

    #[test]
    fn invalid_commands() {
        let mut pc = Pc::new();
        for op in [0x00u8, 0x02, 0x09, 0x0c, 0x11, 0x16, 0x18, 0x1f] {
            pc.command(&[op]);
            assert_eq!(pc.msr(), RQM_DIO_CB, "opcode {op:#04x}");
            assert_eq!(pc.results(), vec![ST0_INVALID]);
            assert!(!pc.fdc.irq6());
            assert_eq!(pc.msr(), MSR_RQM);
        }
    }

    #[test]
    fn image_sizes_and_geometry() {
        let mut f = Fdc::new();
        let err = f.insert(0, vec![0; 1_000_000]).unwrap_err();
        assert_eq!(err, FdcError::BadImageSize(1_000_000));
        let msg = alloc::format!("{err}");
        assert!(msg.contains("1000000 bytes") && msg.contains("1474560"), "{msg}");
        assert_eq!(f.insert(0, Vec::new()), Err(FdcError::BadImageSize(0)));
        assert_eq!(f.insert(0, vec![0; HD + 512]), Err(FdcError::BadImageSize(HD + 512)));
        let err = f.insert(2, vec![0; HD]).unwrap_err();
        assert_eq!(err, FdcError::NoSuchDrive(2));
        assert!(alloc::format!("{err}").contains("drive 2"));
        assert_eq!(f.set_write_protected(1, true), Err(FdcError::NoMedium(1)));
        assert!(alloc::format!("{}", FdcError::NoMedium(1)).contains("no disk"));
        assert_eq!(DiskFormat::from_size(737_280), Some(DiskFormat::Dd720K));
        assert_eq!(DiskFormat::from_size(HD), Some(DiskFormat::Hd1440K));
        assert_eq!(DiskFormat::from_size(2_949_120), Some(DiskFormat::Ed2880K));
        assert_eq!(DiskFormat::Ed2880K.sectors_per_track(), 36);
        // CMOS types.
        assert_eq!(f.cmos_drive_types(), 0x00);
        f.insert(0, vec![0; HD]).unwrap();
        f.insert(1, vec![0; 737_280]).unwrap();
        assert_eq!((f.drive_type_nibble(0), f.drive_type_nibble(1)), (4, 3));
        assert_eq!(f.cmos_drive_types(), 0x43);
        assert_eq!(f.format(1), Some(DiskFormat::Dd720K));
        f.insert(0, vec![0; 2_949_120]).unwrap();
        assert_eq!(f.drive_type_nibble(0), 5);
        assert_eq!(f.drive_type_nibble(7), 0);
        // An ejected drive stays connected and keeps its type.
        f.eject(1);
        assert_eq!(f.drive_type_nibble(1), 3);
        assert_eq!(f.eject(1), None);
        // A denser medium upgrades the drive; a lighter one does not downgrade it.
        f.insert(1, vec![0; HD]).unwrap();
        assert_eq!(f.drive_type_nibble(1), 4);
        f.insert(1, vec![0; 737_280]).unwrap();
        assert_eq!(f.drive_type_nibble(1), 4);
    }

    #[test]
    fn other_formats_read_at_their_data_rate() {
        let image = pattern(737_280);
        let mut pc = Pc::with_disk(image.clone());
        pc.out(FDC_CCR, RATE_250K);
        pc.seek(0, 79);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x04, 79, 1, 9, 9));
        assert_eq!(pc.results(), vec![0x04, 0, 0, 80, 1, 1, 2]);
        assert_eq!(&pc.ram[0x8000..0x8200], &image[image.len() - SECTOR_SIZE..]);
        // 2.88 MB in drive 1 at 1 Mbps.
        let ed = pattern(2_949_120);
        pc.fdc.insert(1, ed.clone()).unwrap();
        pc.out(FDC_CCR, RATE_1M);
        pc.seek(1, 40);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, 2 * SECTOR_SIZE);
        pc.command(&read_cmd(true, 0x01, 40, 0, 36, 36));
        assert_eq!(pc.results(), vec![0x05, 0, 0, 40, 1, 2, 2]);
        let o = offset(36, 40, 0, 36);
        assert_eq!(&pc.ram[0x8000..0x8400], &ed[o..o + 2 * SECTOR_SIZE]);
    }

    #[test]
    fn no_disk_in_drive() {
        let mut pc = Pc::new();
        pc.fdc.add_drive(0).unwrap();
        assert_eq!(pc.fdc.drive_type_nibble(0), 4);
        assert_eq!(pc.inb(FDC_DIR), DIR_DSKCHG);
        // Seeks work without a disk, but do not clear the change line.
        pc.seek(0, 1);
        assert_eq!(pc.inb(FDC_DIR), DIR_DSKCHG);
        // A read never sees an index pulse: it stays in the execution phase.
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 1, 0, 1, 18));
        for _ in 0..3 {
            assert_eq!(pc.msr(), MSR_CMD_BUSY);
            assert!(!pc.fdc.irq6());
            assert_eq!(pc.fdc.dma_request(), None);
            assert_eq!(pc.inb(FDC_FIFO), 0xff);
        }
        assert!(pc.ram.iter().all(|&b| b == 0));
        // Only a reset gets the controller back.
        pc.out(FDC_DOR, 0x08);
        pc.out(FDC_DOR, 0x0c);
        for d in 0..4u8 {
            assert_eq!(pc.sense()[0], ST0_POLL | d);
        }
        // READ ID, and a drive that is not connected at all, behave the same.
        pc.command(&[CMD_READ_ID | CMD_MFM, 0x00]);
        assert_eq!(pc.msr(), MSR_CMD_BUSY);
        pc.out(FDC_DSR, DSR_SW_RESET);
        for _ in 0..4 {
            pc.sense();
        }
        pc.command(&read_cmd(false, 0x01, 0, 0, 1, 18));
        assert_eq!(pc.msr(), MSR_CMD_BUSY);
        pc.out(FDC_DSR, DSR_SW_RESET);
        for _ in 0..4 {
            pc.sense();
        }
        // Inserting a disk raises the change line; a step with the disk in clears it.
        pc.fdc.insert(0, pattern(HD)).unwrap();
        assert_eq!(pc.inb(FDC_DIR), DIR_DSKCHG);
        pc.seek(0, 0);
        assert_eq!(pc.inb(FDC_DIR), 0);
        // The change line is that of the drive the DOR selects.
        pc.fdc.add_drive(1).unwrap();
        pc.out(FDC_DOR, 0x0d);
        assert_eq!(pc.inb(FDC_DIR), DIR_DSKCHG);
        assert_eq!(pc.inb(FDC_SRA) & 0x40, 0, "second drive installed");
    }

    #[test]
    fn format_track() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.seek(0, 5);
        let mut ids = Vec::new();
        for r in 1..=18u8 {
            ids.extend_from_slice(&[5, 1, r, 2]);
        }
        pc.ram[0xa000..0xa000 + ids.len()].copy_from_slice(&ids);
        pc.dma2(MODE_SINGLE | MODE_TYPE_READ, 0xa000, ids.len());
        pc.command(&[CMD_FORMAT_TRACK | CMD_MFM, 0x04, 2, 18, 0x54, 0xf6]);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![0x04, 0, 0, 5, 1, 18, 2]);
        let img = pc.fdc.image(0).unwrap();
        let o = offset(18, 5, 1, 1);
        assert!(img[o..o + 18 * SECTOR_SIZE].iter().all(|&b| b == 0xf6));
        assert_eq!(&img[..o], &image[..o]);
        assert_eq!(&img[o + 18 * SECTOR_SIZE..], &image[o + 18 * SECTOR_SIZE..]);
        assert_eq!(pc.run(&[CMD_DUMPREG])[6], 18, "DUMPREG shows SC after FORMAT");
    }

    #[test]
    fn non_dma_read_and_write_through_the_fifo() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.command(&[CMD_SPECIFY, 0xdf, 0x03]);
        pc.command(&read_cmd(false, 0x00, 0, 0, 1, 2));
        assert_eq!(pc.msr(), MSR_RQM | MSR_DIO | MSR_NON_DMA | MSR_CMD_BUSY);
        assert!(pc.fdc.irq6(), "non-DMA execution phase interrupts");
        assert_eq!(pc.fdc.dma_request(), None);
        let mut data = vec![pc.inb(FDC_FIFO)];
        // The interrupt drops with the first byte, so the result phase gives a new edge.
        assert!(!pc.fdc.irq6());
        while pc.msr() & MSR_NON_DMA != 0 {
            data.push(pc.inb(FDC_FIFO));
        }
        assert!(pc.fdc.irq6());
        assert_eq!(&data[..], &image[..2 * SECTOR_SIZE]);
        // No TC in non-DMA mode: the command ends at EOT with EN.
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_EN, 0, 1, 0, 1, 2]);
        // Write one sector the same way.
        pc.command(&write_cmd(0x00, 0, 0, 3, 3));
        assert_eq!(pc.msr(), MSR_RQM | MSR_NON_DMA | MSR_CMD_BUSY);
        assert!(pc.fdc.irq6());
        for i in 0..SECTOR_SIZE {
            pc.out(FDC_FIFO, i as u8 ^ 0x5a);
        }
        assert_eq!(pc.results(), vec![ST0_ABNORMAL, ST1_EN, 0, 1, 0, 1, 2]);
        let o = offset(18, 0, 0, 3);
        let img = pc.fdc.image(0).unwrap();
        assert!((0..SECTOR_SIZE).all(|i| img[o + i] == i as u8 ^ 0x5a));
    }

    #[test]
    fn dma_gate_off_holds_the_request() {
        let image = pattern(HD);
        let mut pc = Pc::with_disk(image.clone());
        pc.out(FDC_DOR, DOR_NRESET);
        pc.dma2(MODE_SINGLE | MODE_TYPE_WRITE, 0x8000, SECTOR_SIZE);
        pc.command(&read_cmd(false, 0x00, 0, 0, 1, 18));
        assert_eq!(pc.fdc.dma_request(), None);
        assert_eq!(pc.msr(), MSR_CMD_BUSY);
        // Gate on (with the motor): the bus services the request on the DOR write.
        pc.out(FDC_DOR, DOR_NRESET | DOR_DMA_GATE | DOR_MOTOR0);
        assert!(pc.fdc.irq6());
        assert_eq!(pc.results(), vec![0, 0, 0, 0, 0, 2, 2]);
        assert_eq!(&pc.ram[0x8000..0x8200], &image[..SECTOR_SIZE]);
        assert_eq!(pc.inb(FDC_SRB), 0xc1);
    }

    #[test]
    fn guest_writes_never_panic() {
        let mut pc = Pc::with_disk(pattern(HD));
        pc.fdc.insert(1, pattern(737_280)).unwrap();
        let mut seed = 0x2545_f491u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for i in 0..200_000u32 {
            let r = next();
            let v = (next() >> 8) as u8;
            match r % 16 {
                0..=5 => pc.out(FDC_FIFO, v),
                6 => pc.out(0x3f0 + (v as u16 & 7), next() as u8),
                7 => {
                    pc.inb(0x3f0 + (v as u16 & 7));
                }
                8..=10 => {
                    pc.inb(FDC_FIFO);
                }
                11 => pc.out([0x04, 0x05, 0x0a, 0x0b, 0x0c, 0x81][usize::from(v % 6)], next() as u8),
                12 => pc.out(FDC_DOR, 0x0c | (v & 0xf3)),
                13 if i % 1000 == 0 => {
                    let _ = pc.fdc.eject(u32::from(v & 1) as u8);
                }
                14 if i % 1000 == 1 => {
                    let _ = pc.fdc.insert(v & 1, pattern(HD));
                }
                _ => {
                    let _ = pc.fdc.dma_output();
                    pc.fdc.dma_input(&[v; 3], r & 0x100 != 0);
                    pc.fdc.dma_output_done(usize::from(v), r & 0x200 != 0);
                }
            }
            let _ = pc.fdc.irq6();
        }
    }
}
