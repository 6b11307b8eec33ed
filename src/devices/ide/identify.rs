//! The 512-byte blocks IDENTIFY DEVICE (hard disk) and IDENTIFY PACKET DEVICE (CD-ROM)
//! return: 256 little-endian words laid out by ATA/ATAPI-6 §8 (IDENTIFY DEVICE and
//! IDENTIFY PACKET DEVICE tables). The claims made here must match what the command sets
//! implement: PIO modes 0–4, no DMA, READ/WRITE MULTIPLE up to 16 sectors, LBA28 and
//! LBA48, FLUSH CACHE (EXT), the power-management commands, and for the CD-ROM the PACKET
//! feature set with 12-byte packets and DEVICE RESET.

use super::ata::{Disk, MAX_MULTIPLE};
use alloc::vec::Vec;

/// Model number (words 27–46) of the hard disk.
pub(super) const DISK_MODEL: &str = "V386 HARDDISK";
/// Model number of the CD-ROM drive.
pub(super) const CDROM_MODEL: &str = "V386 CD-ROM";
/// Firmware revision (words 23–26).
pub(super) const FIRMWARE: &str = "1.0";

/// Store an ATA string: space-padded, two characters per word with the first in bits 15:8
/// (ATA/ATAPI-6 §3, conventions: ATA strings).
fn put_str(w: &mut [u16; 256], first: usize, words: usize, s: &str) {
    let bytes = s.as_bytes();
    for i in 0..words {
        let c = |j: usize| u16::from(bytes.get(j).copied().unwrap_or(b' '));
        w[first + i] = c(2 * i) << 8 | c(2 * i + 1);
    }
}

/// Words 10–19 (serial), 23–26 (firmware), 27–46 (model).
fn put_strings(w: &mut [u16; 256], serial: &str, model: &str) {
    put_str(w, 10, 10, serial);
    put_str(w, 23, 4, FIRMWARE);
    put_str(w, 27, 20, model);
}

/// PIO timing words shared by both blocks: word 51 (obsolete PIO mode, 2), word 53 bit 1
/// (words 64–70 valid), word 64 (advanced PIO modes 3 and 4), words 67–68 (cycle times:
/// 120 ns with IORDY for mode 4, 240 ns without).
fn put_pio(w: &mut [u16; 256]) {
    w[51] = 0x0200;
    w[53] |= 1 << 1;
    w[64] = 0x0003;
    w[67] = 240;
    w[68] = 120;
}

/// Word 255: signature A5h in bits 7:0 and a checksum in bits 15:8 that makes the sum of
/// all 512 bytes zero modulo 256 (ATA/ATAPI-6 §8, IDENTIFY DEVICE word 255).
fn finish(mut w: [u16; 256]) -> Vec<u8> {
    w[255] = 0x00a5;
    let sum = w[..255].iter().fold(0xa5u8, |s, x| s.wrapping_add(*x as u8).wrapping_add((*x >> 8) as u8));
    w[255] |= u16::from(sum.wrapping_neg()) << 8;
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// IDENTIFY DEVICE data for a hard disk in its current state.
pub(super) fn disk(serial: &str, d: &Disk) -> Vec<u8> {
    let mut w = [0u16; 256];
    // Word 0: ATA device (bit 15 clear), not removable (bit 6, "fixed").
    w[0] = 0x0040;
    let g = d.default_geometry;
    w[1] = g.cylinders as u16;
    // Word 2: specific configuration C837h — no SET FEATURES spin-up needed, this
    // IDENTIFY data is complete.
    w[2] = 0xc837;
    w[3] = g.heads as u16;
    w[6] = g.sectors as u16;
    put_strings(&mut w, serial, DISK_MODEL);
    // Word 47: 80h in bits 15:8, maximum sectors per DRQ block of READ/WRITE MULTIPLE.
    w[47] = 0x8000 | u16::from(MAX_MULTIPLE);
    // Word 49: LBA supported (bit 9), IORDY supported (bit 11) and may be disabled
    // (bit 10); bit 8 (DMA) stays clear.
    w[49] = 1 << 11 | 1 << 10 | 1 << 9;
    // Word 50: bit 14 shall be one.
    w[50] = 0x4000;
    // Word 53 bit 0: words 54–58 valid.
    w[53] = 1 << 0;
    put_pio(&mut w);
    let cur = d.geometry;
    w[54] = cur.cylinders as u16;
    w[55] = cur.heads as u16;
    w[56] = cur.sectors as u16;
    let cap = cur.capacity().min(u64::from(u32::MAX)) as u32;
    w[57] = cap as u16;
    w[58] = (cap >> 16) as u16;
    // Word 59: bit 8 set when bits 7:0 hold the current multiple setting.
    if d.multiple != 0 {
        w[59] = 0x0100 | u16::from(d.multiple);
    }
    // Words 60–61: sectors addressable by 28-bit commands (at most 0FFFFFFFh).
    let lba28 = d.sectors.min(0x0fff_ffff) as u32;
    w[60] = lba28 as u16;
    w[61] = (lba28 >> 16) as u16;
    // Word 80: major versions ATA-1 .. ATA/ATAPI-6 (bits 1–6).
    w[80] = 0x007e;
    // Word 82: look-ahead (6), write cache (5), power management (3) supported.
    w[82] = 1 << 6 | 1 << 5 | 1 << 3;
    // Word 83: bit 14 one; FLUSH CACHE EXT (13), FLUSH CACHE (12), 48-bit address (10).
    w[83] = 0x4000 | 1 << 13 | 1 << 12 | 1 << 10;
    // Word 84: bit 14 one.
    w[84] = 0x4000;
    // Words 85–87: what is enabled.
    w[85] = u16::from(d.look_ahead) << 6 | u16::from(d.write_cache) << 5 | 1 << 3;
    w[86] = 1 << 13 | 1 << 12 | 1 << 10;
    w[87] = 0x4000;
    // Words 100–103: sectors addressable by 48-bit commands.
    for i in 0..4 {
        w[100 + i] = (d.sectors >> (16 * i)) as u16;
    }
    finish(w)
}

/// IDENTIFY PACKET DEVICE data for the CD-ROM drive.
pub(super) fn packet(serial: &str) -> Vec<u8> {
    let mut w = [0u16; 256];
    // Word 0: ATAPI (bits 15:14 = 10b), command packet set 05h (CD-ROM, bits 12:8),
    // removable (bit 7), DRQ within 50 µs of PACKET (bits 6:5 = 10b), 12-byte packets
    // (bits 1:0 = 00b).
    w[0] = 0x8000 | 0x05 << 8 | 1 << 7 | 0b10 << 5;
    put_strings(&mut w, serial, CDROM_MODEL);
    // Word 49: LBA (bit 9) and IORDY (bit 11) supported; no DMA (bit 8), no overlap.
    w[49] = 1 << 11 | 1 << 9;
    w[50] = 0x4000;
    put_pio(&mut w);
    // Word 80: ATA/ATAPI-4 .. ATA/ATAPI-6.
    w[80] = 0x0070;
    // Word 82: DEVICE RESET (9), PACKET (4), power management (3) supported; 85 enabled.
    w[82] = 1 << 9 | 1 << 4 | 1 << 3;
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = w[82];
    w[87] = 0x4000;
    finish(w)
}
