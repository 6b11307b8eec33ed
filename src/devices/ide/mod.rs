//! The PIIX's IDE controller in compatibility mode: two ATA channels (primary at 1F0h–1F7h +
//! 3F6h on IRQ14, secondary at 170h–177h + 376h on IRQ15), each with a master (device 0)
//! and a slave (device 1). A position holds a hard disk (the ATA command set over an image)
//! or an ATAPI CD-ROM (the PACKET command set carrying SCSI/MMC commands over an ISO
//! image), or nothing.
//!
//! Where things live:
//! - this file: the port map, the public [`Ide`] API (attaching images, port I/O, the IRQ
//!   outputs) and [`IdeError`];
//! - `channel`: what the two devices on one cable share — register decoding, device
//!   selection, the Device Control register (nIEN, SRST, HOB), the "device 1 absent"
//!   behaviour and EXECUTE DEVICE DIAGNOSTIC;
//! - `drive`: one device's registers, status, interrupt and the PIO data-port state
//!   machine (ATA DRQ blocks, the ATAPI packet and byte-count-limited phases);
//! - `ata`: the hard disk's ATA commands and addressing (CHS, LBA28, LBA48);
//! - `atapi`: the CD-ROM's SCSI commands (SFF-8020i, MMC-2) and its sense/media state;
//! - `identify`: the IDENTIFY DEVICE and IDENTIFY PACKET DEVICE data blocks;
//! - `backend`: [`BlockBackend`], the storage trait behind every image, and [`MemoryImage`].
//!
//! Sources: T13 ATA/ATAPI-6 (T13/1410D rev. 3b): §7 register descriptions, §8 command
//! descriptions, §9 protocols (PIO data-in/data-out, non-data, PACKET, software reset,
//! EXECUTE DEVICE DIAGNOSTIC, signatures); T13 ATA8-ACS where ATA/ATAPI-6 is silent;
//! SFF-8020i rev. 2.6 (ATAPI for CD-ROMs) for the packet interface; T10 MMC-2 and SPC for
//! the SCSI command set; the Intel 82371AB (PIIX4) datasheet for the compatibility-mode
//! port and IRQ assignment.
//!
//! Model choices:
//! - Commands complete inside the port write that issues them: BSY is never observed
//!   except while the host holds SRST. Interrupts therefore follow immediately.
//! - PIO only. Bus-master DMA is not implemented: the PCI IDE function must not advertise
//!   BAR4 (the bus-master registers), IDENTIFY reports no DMA modes, SET FEATURES refuses
//!   DMA transfer modes and an ATAPI PACKET with the DMA bit is aborted, so guests use PIO.
//! - Data-port widths: 16-bit accesses move one word; 32-bit accesses move two (the PIIX
//!   splits them into two 16-bit cycles); an 8-bit access moves a whole word and keeps the
//!   low byte (the device answers with a 16-bit cycle either way).
//! - Absent devices: see `channel` (device 0 answers for a missing device 1 with status
//!   00h; an empty channel floats at 7Fh), which keeps SeaBIOS and Linux probes short.
//! - The host gets a disk's contents back with [`Ide::disk_image`] (in-memory backends) or
//!   [`Ide::detach`] (any backend; [`BlockBackend::into_bytes`] for in-memory ones), and
//!   can tell whether the guest wrote with [`Ide::disk_modified`].
//!
//! Not implemented: DMA (see above), overlapped and queued commands, security, SMART,
//! host protected area, logs, DEVICE CONFIGURATION, READ/WRITE LONG, CFA commands; on the
//! CD-ROM, audio playback, raw/sub-channel READ CD and READ CD MSF, writing, DVD
//! structures, and the power-on/reset unit attention (only media changes raise one).

use serde::{Deserialize, Serialize};
mod ata;
mod atapi;
mod backend;
mod channel;
mod drive;
mod identify;
#[cfg(test)]
mod tests;

pub use backend::{BackendError, BlockBackend, MemoryImage};

use crate::bus::IoSize;
use alloc::boxed::Box;
use alloc::vec::Vec;
use ata::Disk;
use atapi::Cdrom;
use channel::Channel;
use core::fmt;
use drive::Drive;

/// Primary channel command block (PIIX4 datasheet, IDE controller in compatibility mode:
/// the primary channel decodes 1F0h–1F7h and 3F6h and interrupts on IRQ14).
pub const PRIMARY_COMMAND_BASE: u16 = 0x1f0;
/// Primary channel control block: Alternate Status (read) / Device Control (write).
pub const PRIMARY_CONTROL: u16 = 0x3f6;
/// ISA IRQ of the primary channel.
pub const PRIMARY_IRQ: u8 = 14;
/// Secondary channel command block (PIIX4 datasheet: 170h–177h and 376h, IRQ15).
pub const SECONDARY_COMMAND_BASE: u16 = 0x170;
/// Secondary channel control block.
pub const SECONDARY_CONTROL: u16 = 0x376;
/// ISA IRQ of the secondary channel.
pub const SECONDARY_IRQ: u8 = 15;
/// Ports in a command block (A0–A2).
pub const COMMAND_BLOCK_PORTS: u16 = 8;
/// Index of the primary channel in the API.
pub const PRIMARY: usize = 0;
/// Index of the secondary channel in the API.
pub const SECONDARY: usize = 1;

// Command block register offsets (ATA/ATAPI-6 §7, the Command Block registers' addresses).
/// Data (16 bits).
pub const REG_DATA: u16 = 0;
/// Error (read) / Features (write).
pub const REG_ERROR_FEATURES: u16 = 1;
/// Sector Count; ATAPI Interrupt Reason when read.
pub const REG_COUNT: u16 = 2;
/// LBA Low (Sector Number).
pub const REG_LBA_LOW: u16 = 3;
/// LBA Mid (Cylinder Low); ATAPI Byte Count low.
pub const REG_LBA_MID: u16 = 4;
/// LBA High (Cylinder High); ATAPI Byte Count high.
pub const REG_LBA_HIGH: u16 = 5;
/// Device (Device/Head).
pub const REG_DEVICE: u16 = 6;
/// Status (read) / Command (write).
pub const REG_STATUS_COMMAND: u16 = 7;

// Status register bits (ATA/ATAPI-6 §7, Status register).
pub const ST_BSY: u8 = 0x80;
/// Device ready.
pub const ST_DRDY: u8 = 0x40;
/// Device fault.
pub const ST_DF: u8 = 0x20;
/// Device seek complete (command dependent since ATA-4; classic drives keep it set).
pub const ST_DSC: u8 = 0x10;
/// Data request.
pub const ST_DRQ: u8 = 0x08;
/// Error (CHK for PACKET devices).
pub const ST_ERR: u8 = 0x01;

// Error register bits (ATA/ATAPI-6 §7, Error register).
/// Uncorrectable data error.
pub const ERR_UNC: u8 = 0x40;
/// ID not found: the address is outside the device.
pub const ERR_IDNF: u8 = 0x10;
/// Command aborted.
pub const ERR_ABRT: u8 = 0x04;

// Device Control register bits (ATA/ATAPI-6 §7, Device Control register).
/// Interrupt disable.
pub const DC_NIEN: u8 = 0x02;
/// Software reset.
pub const DC_SRST: u8 = 0x04;
/// High order byte: reads return the previous contents of the 48-bit registers.
pub const DC_HOB: u8 = 0x80;

// Device register bits.
/// LBA addressing (else CHS).
pub const DEV_LBA: u8 = 0x40;
/// Device 1 selected.
pub const DEV_DEV: u8 = 0x10;

// ATAPI Interrupt Reason register bits (SFF-8020i, "Interrupt Reason Register"; ATA/ATAPI-6 §9,
// PACKET protocol).
/// Command or data: 1 = the transfer is the command packet or the completion.
pub const IR_COD: u8 = 0x01;
/// Direction: 1 = device to host.
pub const IR_IO: u8 = 0x02;

/// Bytes in an ATA sector.
pub const ATA_SECTOR: usize = 512;
/// Bytes in a CD-ROM (mode 1 user data) block.
pub const CD_BLOCK: usize = 2048;
/// The largest LBA48 capacity: 2^48 sectors.
const MAX_LBA48_SECTORS: u64 = 1 << 48;

/// What sits at a position on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    HardDisk,
    Cdrom,
}

/// Why the host's request about a drive failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdeError {
    /// The channel index is not 0 (primary) or 1 (secondary).
    NoSuchChannel(usize),
    /// A device is already attached there.
    Occupied { channel: usize, slave: bool },
    /// Nothing is attached there.
    NoDevice { channel: usize, slave: bool },
    /// The device there is not a CD-ROM.
    NotCdrom { channel: usize, slave: bool },
    /// The image has no bytes.
    EmptyImage,
    /// The image is not a whole number of sectors.
    NotSectorMultiple { len: u64, sector: usize },
    /// The image has more sectors than LBA48 can address.
    TooLarge { len: u64 },
}

impl fmt::Display for IdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pos = |slave: &bool| if *slave { "slave" } else { "master" };
        match self {
            IdeError::NoSuchChannel(c) => write!(f, "IDE channel {c} does not exist (0 = primary, 1 = secondary)"),
            IdeError::Occupied { channel, slave } => {
                write!(f, "IDE channel {channel} {} already has a device", pos(slave))
            }
            IdeError::NoDevice { channel, slave } => write!(f, "IDE channel {channel} {} has no device", pos(slave)),
            IdeError::NotCdrom { channel, slave } => {
                write!(f, "IDE channel {channel} {} is not a CD-ROM drive", pos(slave))
            }
            IdeError::EmptyImage => f.write_str("the image is empty"),
            IdeError::NotSectorMultiple { len, sector } => {
                write!(f, "the image is {len} bytes, not a multiple of the {sector}-byte sector size")
            }
            IdeError::TooLarge { len } => write!(f, "the image is {len} bytes, more than LBA48 can address"),
        }
    }
}

/// Checks an image size against the sector size.
fn check_size(len: u64, sector: usize) -> Result<(), IdeError> {
    if len == 0 {
        return Err(IdeError::EmptyImage);
    }
    if len % sector as u64 != 0 {
        return Err(IdeError::NotSectorMultiple { len, sector });
    }
    if len / sector as u64 > MAX_LBA48_SECTORS {
        return Err(IdeError::TooLarge { len });
    }
    Ok(())
}

/// The controller: two channels of two devices each.
#[derive(Serialize, Deserialize)]
pub struct Ide {
    channels: [Channel; 2],
}

impl Default for Ide {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Ide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for c in 0..2 {
            for slave in [false, true] {
                l.entry(&(c, slave, self.device_kind(c, slave)));
            }
        }
        l.finish()
    }
}

impl Ide {
    /// Both channels empty.
    pub fn new() -> Self {
        Self { channels: [Channel::new(), Channel::new()] }
    }

    /// The checks a restored controller must pass (snapshots: `machine::snapshot`).
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        self.channels.iter().try_for_each(Channel::check)
    }

    fn channel(&self, channel: usize) -> Result<&Channel, IdeError> {
        self.channels.get(channel).ok_or(IdeError::NoSuchChannel(channel))
    }

    fn channel_mut(&mut self, channel: usize) -> Result<&mut Channel, IdeError> {
        self.channels.get_mut(channel).ok_or(IdeError::NoSuchChannel(channel))
    }

    fn place(&mut self, channel: usize, slave: bool, drive: Drive) -> Result<(), IdeError> {
        let ch = self.channel_mut(channel)?;
        if ch.drive(slave).is_some() {
            return Err(IdeError::Occupied { channel, slave });
        }
        ch.attach(slave, drive);
        Ok(())
    }

    /// Attach a hard disk whose contents are `image` (a whole number of 512-byte sectors).
    pub fn attach_disk(&mut self, channel: usize, slave: bool, image: Vec<u8>) -> Result<(), IdeError> {
        self.attach_disk_backend(channel, slave, Box::new(MemoryImage::new(image)))
    }

    /// Attach a hard disk over any backend.
    pub fn attach_disk_backend(
        &mut self,
        channel: usize,
        slave: bool,
        backend: Box<dyn BlockBackend>,
    ) -> Result<(), IdeError> {
        self.channel(channel)?;
        check_size(backend.size(), ATA_SECTOR)?;
        self.place(channel, slave, Drive::new(channel, slave, drive::Kind::Disk(Disk::new(backend))))
    }

    /// Attach a CD-ROM drive with the ISO image `iso` (a whole number of 2048-byte blocks)
    /// loaded.
    pub fn attach_cdrom(&mut self, channel: usize, slave: bool, iso: Vec<u8>) -> Result<(), IdeError> {
        self.attach_cdrom_backend(channel, slave, Some(Box::new(MemoryImage::new(iso))))
    }

    /// Attach a CD-ROM drive, empty (`None`) or with a medium over any backend.
    pub fn attach_cdrom_backend(
        &mut self,
        channel: usize,
        slave: bool,
        medium: Option<Box<dyn BlockBackend>>,
    ) -> Result<(), IdeError> {
        self.channel(channel)?;
        if let Some(m) = &medium {
            check_size(m.size(), CD_BLOCK)?;
        }
        self.place(channel, slave, Drive::new(channel, slave, drive::Kind::Cdrom(Cdrom::new(medium))))
    }

    /// Remove the device at a position, returning its storage (the disk image, or the CD
    /// medium if one is loaded or lies in the open tray).
    pub fn detach(&mut self, channel: usize, slave: bool) -> Result<Option<Box<dyn BlockBackend>>, IdeError> {
        let drive = self.channel_mut(channel)?.detach(slave).ok_or(IdeError::NoDevice { channel, slave })?;
        Ok(drive.into_backend())
    }

    /// What is attached at a position (`None` for nothing or a bad channel).
    pub fn device_kind(&self, channel: usize, slave: bool) -> Option<DeviceKind> {
        self.channels.get(channel)?.drive(slave).map(Drive::device_kind)
    }

    /// The current contents of a hard disk whose backend is in memory: the way the host gets
    /// the image back with the guest's writes in it.
    pub fn disk_image(&self, channel: usize, slave: bool) -> Option<&[u8]> {
        self.channels.get(channel)?.drive(slave)?.disk()?.backend.as_bytes()
    }

    /// Whether the guest has written to a hard disk since it was attached (or since the
    /// last [`Ide::clear_disk_modified`]).
    pub fn disk_modified(&self, channel: usize, slave: bool) -> bool {
        self.channels.get(channel).and_then(|c| c.drive(slave)).and_then(Drive::disk).is_some_and(|d| d.modified)
    }

    /// Forget earlier writes for [`Ide::disk_modified`] (after the host saved the image).
    pub fn clear_disk_modified(&mut self, channel: usize, slave: bool) {
        if let Some(d) = self.channels.get_mut(channel).and_then(|c| c.drive_mut(slave)).and_then(Drive::disk_mut) {
            d.modified = false;
        }
    }

    fn cdrom_mut(&mut self, channel: usize, slave: bool) -> Result<&mut Cdrom, IdeError> {
        let drive = self.channel_mut(channel)?.drive_mut(slave).ok_or(IdeError::NoDevice { channel, slave })?;
        drive.cdrom_mut().ok_or(IdeError::NotCdrom { channel, slave })
    }

    /// Load a new ISO image into a CD-ROM drive (closing the tray). The guest sees a unit
    /// attention and a new-media event. Returns the medium that was in the drive.
    pub fn insert_cdrom(
        &mut self,
        channel: usize,
        slave: bool,
        iso: Vec<u8>,
    ) -> Result<Option<Box<dyn BlockBackend>>, IdeError> {
        self.insert_cdrom_backend(channel, slave, Box::new(MemoryImage::new(iso)))
    }

    /// [`Ide::insert_cdrom`] over any backend.
    pub fn insert_cdrom_backend(
        &mut self,
        channel: usize,
        slave: bool,
        medium: Box<dyn BlockBackend>,
    ) -> Result<Option<Box<dyn BlockBackend>>, IdeError> {
        let cd = self.cdrom_mut(channel, slave)?;
        check_size(medium.size(), CD_BLOCK)?;
        Ok(cd.insert(medium))
    }

    /// Take the medium out of a CD-ROM drive (the host's eject button works even when the
    /// guest has locked the tray). Returns it, if there was one.
    pub fn eject_cdrom(&mut self, channel: usize, slave: bool) -> Result<Option<Box<dyn BlockBackend>>, IdeError> {
        Ok(self.cdrom_mut(channel, slave)?.remove())
    }

    /// Whether a CD-ROM drive has a medium loaded (tray closed).
    pub fn cdrom_loaded(&self, channel: usize, slave: bool) -> bool {
        self.channels.get(channel).and_then(|c| c.drive(slave)).and_then(Drive::cdrom).is_some_and(Cdrom::loaded)
    }

    /// Hardware reset (the RESET- signal): every device returns to its power-on state
    /// (media stay where they are).
    pub fn reset(&mut self) {
        for c in &mut self.channels {
            c.hardware_reset();
        }
    }

    /// Which channel a port belongs to, and what it is there.
    fn decode(port: u16) -> Option<(usize, Port)> {
        for (i, (base, ctl)) in [(PRIMARY_COMMAND_BASE, PRIMARY_CONTROL), (SECONDARY_COMMAND_BASE, SECONDARY_CONTROL)]
            .into_iter()
            .enumerate()
        {
            if let Some(off) = port.checked_sub(base).filter(|o| *o < COMMAND_BLOCK_PORTS) {
                return Some((i, Port::Command(off)));
            }
            if port == ctl {
                return Some((i, Port::Control));
            }
        }
        None
    }

    /// Whether the controller decodes `port`.
    pub fn claims(port: u16) -> bool {
        Self::decode(port).is_some()
    }

    /// `IN` from a port. A 16- or 32-bit access to a data register moves data words; other
    /// wide accesses are split into bytes over consecutive ports; ports that are not the
    /// controller's answer all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        if let Some((c, Port::Command(REG_DATA))) = Self::decode(port) {
            let ch = &mut self.channels[c];
            return match size {
                IoSize::Byte => u32::from(ch.read_data() as u8),
                IoSize::Word => u32::from(ch.read_data()),
                IoSize::Dword => {
                    let lo = ch.read_data();
                    u32::from(lo) | u32::from(ch.read_data()) << 16
                }
            };
        }
        let mut value = 0;
        for i in 0..size as u16 {
            let byte = match Self::decode(port.wrapping_add(i)) {
                Some((c, Port::Command(off))) => self.channels[c].read_register(off),
                Some((c, Port::Control)) => self.channels[c].read_alt_status(),
                None => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to a port, split as in [`Ide::read`]; writes to other ports are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        if let Some((c, Port::Command(REG_DATA))) = Self::decode(port) {
            let ch = &mut self.channels[c];
            match size {
                IoSize::Byte => ch.write_data(value as u8 as u16),
                IoSize::Word => ch.write_data(value as u16),
                IoSize::Dword => {
                    ch.write_data(value as u16);
                    ch.write_data((value >> 16) as u16);
                }
            }
            return;
        }
        for i in 0..size as u16 {
            let byte = (value >> (8 * i)) as u8;
            match Self::decode(port.wrapping_add(i)) {
                Some((c, Port::Command(off))) => self.channels[c].write_register(off, byte),
                Some((c, Port::Control)) => self.channels[c].write_device_control(byte),
                None => {}
            }
        }
    }

    /// The primary channel's INTRQ as it reaches ISA IRQ14.
    pub fn irq14(&self) -> bool {
        self.channels[PRIMARY].irq()
    }

    /// The secondary channel's INTRQ as it reaches ISA IRQ15.
    pub fn irq15(&self) -> bool {
        self.channels[SECONDARY].irq()
    }
}

/// A decoded port within a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    /// Offset 0–7 in the command block.
    Command(u16),
    /// The control block's Alternate Status / Device Control register.
    Control,
}
