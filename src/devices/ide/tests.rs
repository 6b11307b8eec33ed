//! Unit tests of the IDE controller, driven through the port interface the guest uses.

use super::ata::Geometry;
use super::atapi::chunk_len;
use super::drive::TaskFile;
use super::*;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

const P: u16 = PRIMARY_COMMAND_BASE;
const S: u16 = SECONDARY_COMMAND_BASE;

fn outb(ide: &mut Ide, port: u16, v: u8) {
    ide.write(port, IoSize::Byte, u32::from(v));
}
fn inb(ide: &mut Ide, port: u16) -> u8 {
    ide.read(port, IoSize::Byte) as u8
}
fn inw(ide: &mut Ide, port: u16) -> u16 {
    ide.read(port, IoSize::Word) as u16
}
fn outw(ide: &mut Ide, port: u16, v: u16) {
    ide.write(port, IoSize::Word, u32::from(v));
}

/// A disk image whose sectors carry their LBA in the first 8 bytes and a pattern after.
fn image(sectors: usize) -> Vec<u8> {
    let mut v = vec![0u8; sectors * ATA_SECTOR];
    for (lba, s) in v.chunks_mut(ATA_SECTOR).enumerate() {
        s[..8].copy_from_slice(&(lba as u64).to_le_bytes());
        for (i, b) in s[8..].iter_mut().enumerate() {
            *b = (lba as u8).wrapping_mul(7).wrapping_add(i as u8);
        }
    }
    v
}

/// An ISO image whose blocks carry their LBA in the first 4 bytes.
fn iso(blocks: usize) -> Vec<u8> {
    let mut v = vec![0u8; blocks * CD_BLOCK];
    for (lba, b) in v.chunks_mut(CD_BLOCK).enumerate() {
        b[..4].copy_from_slice(&(lba as u32).to_le_bytes());
        for (i, x) in b[4..].iter_mut().enumerate() {
            *x = (i as u8) ^ (lba as u8);
        }
    }
    v
}

fn lba_of(sector: &[u8]) -> u64 {
    u64::from_le_bytes(sector[..8].try_into().unwrap())
}

fn disk_ide(sectors: usize) -> Ide {
    let mut ide = Ide::new();
    ide.attach_disk(PRIMARY, false, image(sectors)).unwrap();
    ide
}

/// Read `bytes` from the data port, word by word.
fn read_data(ide: &mut Ide, base: u16, bytes: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..bytes.div_ceil(2) {
        v.extend(inw(ide, base).to_le_bytes());
    }
    v.truncate(bytes);
    v
}

fn write_data(ide: &mut Ide, base: u16, data: &[u8]) {
    for w in data.chunks(2) {
        outw(ide, base, u16::from_le_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
}

fn irq(ide: &Ide, base: u16) -> bool {
    if base == P {
        ide.irq14()
    } else {
        ide.irq15()
    }
}

fn ctl(base: u16) -> u16 {
    if base == P {
        PRIMARY_CONTROL
    } else {
        SECONDARY_CONTROL
    }
}

/// Issue a 28-bit LBA command to device `dev` (0/1).
fn lba28(ide: &mut Ide, base: u16, dev: u8, lba: u32, count: u8, cmd: u8) {
    outb(ide, base + 6, 0xe0 | dev << 4 | (lba >> 24) as u8 & 0x0f);
    outb(ide, base + 2, count);
    outb(ide, base + 3, lba as u8);
    outb(ide, base + 4, (lba >> 8) as u8);
    outb(ide, base + 5, (lba >> 16) as u8);
    outb(ide, base + 7, cmd);
}

/// Issue a 48-bit LBA command (high bytes first, as the FIFOs want).
fn lba48(ide: &mut Ide, base: u16, lba: u64, count: u16, cmd: u8) {
    outb(ide, base + 6, 0x40);
    outb(ide, base + 2, (count >> 8) as u8);
    outb(ide, base + 3, (lba >> 24) as u8);
    outb(ide, base + 4, (lba >> 32) as u8);
    outb(ide, base + 5, (lba >> 40) as u8);
    outb(ide, base + 2, count as u8);
    outb(ide, base + 3, lba as u8);
    outb(ide, base + 4, (lba >> 8) as u8);
    outb(ide, base + 5, (lba >> 16) as u8);
    outb(ide, base + 7, cmd);
}

/// Issue a CHS command to device 0.
fn chs(ide: &mut Ide, c: u16, h: u8, s: u8, count: u8, cmd: u8) {
    outb(ide, P + 6, 0xa0 | h);
    outb(ide, P + 2, count);
    outb(ide, P + 3, s);
    outb(ide, P + 4, c as u8);
    outb(ide, P + 5, (c >> 8) as u8);
    outb(ide, P + 7, cmd);
}

/// Run a PIO data-in command's blocks: for each, the interrupt must be up and DRQ set;
/// returns the data and the number of DRQ blocks (interrupts) seen.
fn collect_in(ide: &mut Ide, base: u16, block: usize) -> (Vec<u8>, usize) {
    let mut data = Vec::new();
    let mut blocks = 0;
    while inb(ide, ctl(base)) & ST_DRQ != 0 {
        assert!(irq(ide, base), "a DRQ block comes with an interrupt");
        let st = inb(ide, base + 7);
        assert_eq!(st & (ST_BSY | ST_DRQ | ST_ERR), ST_DRQ);
        assert!(!irq(ide, base), "reading Status clears INTRQ");
        data.extend(read_data(ide, base, block));
        blocks += 1;
    }
    (data, blocks)
}

fn identify(ide: &mut Ide, base: u16, dev: u8, cmd: u8) -> Vec<u16> {
    outb(ide, base + 6, 0xa0 | dev << 4);
    outb(ide, base + 7, cmd);
    let (data, blocks) = collect_in(ide, base, 512);
    assert_eq!(blocks, 1);
    assert!(!irq(ide, base), "no interrupt after the last data-in block");
    data.chunks(2).map(|w| u16::from_le_bytes([w[0], w[1]])).collect()
}

fn ata_string(words: &[u16]) -> String {
    words.iter().flat_map(|w| [(*w >> 8) as u8 as char, *w as u8 as char]).collect::<String>().trim_end().to_string()
}

fn checksum_ok(words: &[u16]) -> bool {
    words[255] & 0xff == 0xa5
        && words.iter().fold(0u8, |s, w| s.wrapping_add(*w as u8).wrapping_add((*w >> 8) as u8)) == 0
}

#[test]
fn identify_device_block() {
    // 20 cylinders of 16 heads × 63 sectors, plus 5 sectors only LBA reaches.
    let sectors = 20 * 16 * 63 + 5;
    let mut ide = disk_ide(sectors);
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!(w[0] & 0x8000, 0, "ATA device");
    assert_eq!((w[1], w[3], w[6]), (20, 16, 63));
    assert_eq!(ata_string(&w[27..47]), "V386 HARDDISK");
    assert_eq!(ata_string(&w[10..20]), "V386-HD00");
    assert_eq!(ata_string(&w[23..27]), "1.0");
    assert_eq!(w[47], 0x8010);
    assert_ne!(w[49] & (1 << 9), 0, "LBA supported");
    assert_eq!(w[49] & (1 << 8), 0, "no DMA");
    assert_eq!(w[53] & 3, 3);
    assert_eq!((w[54], w[55], w[56]), (20, 16, 63));
    assert_eq!(u32::from(w[57]) | u32::from(w[58]) << 16, 20 * 16 * 63);
    assert_eq!(w[59], 0, "multiple mode off");
    assert_eq!(u32::from(w[60]) | u32::from(w[61]) << 16, sectors as u32);
    assert_eq!(w[63], 0);
    assert_eq!(w[64], 3, "PIO 3 and 4");
    assert_ne!(w[83] & (1 << 10), 0, "LBA48 supported");
    assert_ne!(w[86] & (1 << 10), 0, "LBA48 enabled");
    assert_eq!(w[83] >> 14, 1);
    assert_eq!(w[88], 0, "no UDMA");
    let cap48 = (0..4).fold(0u64, |a, i| a | u64::from(w[100 + i]) << (16 * i));
    assert_eq!(cap48, sectors as u64);
    assert!(checksum_ok(&w));
    // Status after the transfer: ready, seek complete.
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
}

/// A backend of any size that answers with each sector's LBA (nothing stored).
struct Synthetic {
    size: u64,
}

impl BlockBackend for Synthetic {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        for (i, s) in buf.chunks_mut(ATA_SECTOR).enumerate() {
            s.fill(0);
            s[..8].copy_from_slice(&(offset / ATA_SECTOR as u64 + i as u64).to_le_bytes());
        }
        Ok(())
    }
    fn write_at(&mut self, _offset: u64, _data: &[u8]) -> Result<(), BackendError> {
        Err(BackendError::ReadOnly)
    }
}

#[test]
fn large_disk_caps_chs_and_lba28_and_reads_above_2_pow_28() {
    let sectors: u64 = 400 << 21; // 400 GiB
    let mut ide = Ide::new();
    ide.attach_disk_backend(PRIMARY, false, Box::new(Synthetic { size: sectors * 512 })).unwrap();
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!((w[1], w[3], w[6]), (16383, 16, 63));
    assert_eq!(u32::from(w[57]) | u32::from(w[58]) << 16, 16383 * 16 * 63);
    assert_eq!(u32::from(w[60]) | u32::from(w[61]) << 16, 0x0fff_ffff);
    let cap48 = (0..4).fold(0u64, |a, i| a | u64::from(w[100 + i]) << (16 * i));
    assert_eq!(cap48, sectors);
    assert!(checksum_ok(&w));
    // READ SECTORS EXT at an address LBA28 cannot express.
    let lba = (1u64 << 29) + 12345;
    lba48(&mut ide, P, lba, 2, 0x24);
    let (data, blocks) = collect_in(&mut ide, P, 512);
    assert_eq!(blocks, 2);
    assert_eq!(lba_of(&data[..512]), lba);
    assert_eq!(lba_of(&data[512..]), lba + 1);
    // Writes to a backend that refuses them abort.
    lba48(&mut ide, P, 5, 1, 0x34);
    write_data(&mut ide, P, &[0u8; 512]);
    assert_eq!(inb(&mut ide, P + 7) & ST_ERR, ST_ERR);
    assert_eq!(inb(&mut ide, P + 1), ERR_ABRT);
}

#[test]
fn lba28_read_across_sectors_interrupts_per_block() {
    let mut ide = disk_ide(100);
    lba28(&mut ide, P, 0, 5, 3, 0x20);
    let (data, blocks) = collect_in(&mut ide, P, 512);
    assert_eq!(blocks, 3);
    assert_eq!(data, image(100)[5 * 512..8 * 512]);
    assert!(!irq(&ide, P));
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    // Outputs: the last sector read, nothing left.
    assert_eq!(inb(&mut ide, P + 3), 7);
    assert_eq!(inb(&mut ide, P + 2), 0);
    // Count 0 means 256 sectors: more than this disk has.
    lba28(&mut ide, P, 0, 0, 0, 0x21);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC | ST_ERR);
    assert_eq!(inb(&mut ide, P + 1), ERR_IDNF);
}

#[test]
fn count_zero_is_256_sectors() {
    let mut ide = disk_ide(300);
    lba28(&mut ide, P, 0, 10, 0, 0x20);
    let (data, blocks) = collect_in(&mut ide, P, 512);
    assert_eq!(blocks, 256);
    assert_eq!(lba_of(&data[255 * 512..]), 265);
}

#[test]
fn chs_addressing_reads_and_writes() {
    let mut ide = disk_ide(20 * 16 * 63);
    // C=2 H=3 S=4 → (2*16+3)*63 + 3.
    let lba = (2 * 16 + 3) * 63 + 3;
    chs(&mut ide, 2, 3, 4, 2, 0x20);
    let (data, _) = collect_in(&mut ide, P, 512);
    assert_eq!(lba_of(&data), lba);
    assert_eq!(lba_of(&data[512..]), lba + 1);
    // Outputs in CHS: the last sector read, S=5.
    assert_eq!(inb(&mut ide, P + 3), 5);
    assert_eq!(inb(&mut ide, P + 6) & 0x0f, 3);
    // A read crossing a track and head boundary: C=0 H=15 S=63 then C=1 H=0 S=1.
    chs(&mut ide, 0, 15, 63, 2, 0x20);
    let (data, _) = collect_in(&mut ide, P, 512);
    assert_eq!(lba_of(&data), 15 * 63 + 62);
    assert_eq!(lba_of(&data[512..]), 16 * 63);
    assert_eq!((inb(&mut ide, P + 3), inb(&mut ide, P + 4), inb(&mut ide, P + 6) & 0xf), (1, 1, 0));
    // Write by CHS, then check the image.
    chs(&mut ide, 1, 0, 1, 1, 0x30);
    write_data(&mut ide, P, &[0xabu8; 512]);
    assert!(irq(&ide, P));
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    assert!(ide.disk_image(PRIMARY, false).unwrap()[16 * 63 * 512..][..512].iter().all(|b| *b == 0xab));
}

#[test]
fn chs_outside_the_translation_is_idnf() {
    let mut ide = disk_ide(20 * 16 * 63);
    for (c, h, s) in [(0, 0, 0), (0, 0, 64), (20, 0, 1)] {
        chs(&mut ide, c, h, s, 1, 0x20);
        assert!(irq(&ide, P));
        assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC | ST_ERR, "{c}/{h}/{s}");
        assert_eq!(inb(&mut ide, P + 1), ERR_IDNF);
    }
    // An LBA range running off the end.
    lba28(&mut ide, P, 0, 20 * 16 * 63 - 1, 2, 0x20);
    assert_eq!(inb(&mut ide, P + 7) & (ST_ERR | ST_DRQ), ST_ERR);
    assert_eq!(inb(&mut ide, P + 1), ERR_IDNF);
}

#[test]
fn lba28_write_interrupt_sequence() {
    let mut ide = disk_ide(64);
    assert!(!ide.disk_modified(PRIMARY, false));
    lba28(&mut ide, P, 0, 10, 2, 0x30);
    // DRQ for the first block without an interrupt.
    assert!(!irq(&ide, P));
    assert_eq!(inb(&mut ide, PRIMARY_CONTROL), ST_DRDY | ST_DSC | ST_DRQ);
    write_data(&mut ide, P, &[1u8; 512]);
    // Block stored: interrupt, DRQ for the next.
    assert!(irq(&ide, P));
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC | ST_DRQ);
    write_data(&mut ide, P, &[2u8; 512]);
    // Completion interrupt.
    assert!(irq(&ide, P));
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    assert!(!irq(&ide, P));
    let img = ide.disk_image(PRIMARY, false).unwrap();
    assert!(img[10 * 512..11 * 512].iter().all(|b| *b == 1));
    assert!(img[11 * 512..12 * 512].iter().all(|b| *b == 2));
    assert_eq!(lba_of(&img[12 * 512..]), 12);
    assert!(ide.disk_modified(PRIMARY, false));
    ide.clear_disk_modified(PRIMARY, false);
    assert!(!ide.disk_modified(PRIMARY, false));
    // Detaching hands the image back.
    let b = ide.detach(PRIMARY, false).unwrap().unwrap();
    let bytes = b.into_bytes().unwrap();
    assert_eq!(bytes.len(), 64 * 512);
    assert_eq!(bytes[10 * 512], 1);
    assert_eq!(ide.device_kind(PRIMARY, false), None);
}

#[test]
fn lba48_write_then_read_and_hob_registers() {
    let mut ide = disk_ide(1000);
    lba48(&mut ide, P, 700, 3, 0x34);
    let payload: Vec<u8> = (0..3 * 512).map(|i| (i * 13) as u8).collect();
    write_data(&mut ide, P, &payload);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    lba48(&mut ide, P, 700, 3, 0x24);
    let (data, blocks) = collect_in(&mut ide, P, 512);
    assert_eq!(blocks, 3);
    assert_eq!(data, payload);
    // Outputs: LBA 702 in the current halves, 0 in the previous ones.
    assert_eq!((inb(&mut ide, P + 3), inb(&mut ide, P + 4)), (702u16 as u8, (702u16 >> 8) as u8));
    outb(&mut ide, PRIMARY_CONTROL, DC_HOB);
    assert_eq!((inb(&mut ide, P + 3), inb(&mut ide, P + 4), inb(&mut ide, P + 5)), (0, 0, 0));
    // A write to a command block register clears HOB.
    outb(&mut ide, P + 2, 9);
    assert_eq!(inb(&mut ide, P + 3), 702u16 as u8);
    // HOB reads the previous contents of a plain FIFO too.
    outb(&mut ide, P + 3, 0x11);
    outb(&mut ide, P + 3, 0x22);
    outb(&mut ide, PRIMARY_CONTROL, DC_HOB);
    assert_eq!(inb(&mut ide, P + 3), 0x11);
    outb(&mut ide, PRIMARY_CONTROL, 0);
    assert_eq!(inb(&mut ide, P + 3), 0x22);
}

#[test]
fn read_write_multiple_block_sizes() {
    let mut ide = disk_ide(200);
    // Multiple mode is off after power-on: READ MULTIPLE aborts.
    lba28(&mut ide, P, 0, 0, 4, 0xc4);
    assert_eq!(inb(&mut ide, P + 7) & ST_ERR, ST_ERR);
    assert_eq!(inb(&mut ide, P + 1), ERR_ABRT);
    // Invalid block sizes are refused.
    for n in [3u8, 32, 255] {
        outb(&mut ide, P + 2, n);
        outb(&mut ide, P + 7, 0xc6);
        assert_eq!(inb(&mut ide, P + 1), ERR_ABRT, "{n}");
    }
    for (block, count, expect_blocks) in [(4u8, 10u8, 3usize), (16, 16, 1), (1, 3, 3), (2, 7, 4)] {
        outb(&mut ide, P + 2, block);
        outb(&mut ide, P + 7, 0xc6);
        assert!(irq(&ide, P));
        assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
        lba28(&mut ide, P, 0, 20, count, 0xc4);
        let mut blocks = 0;
        let mut data = Vec::new();
        while inb(&mut ide, PRIMARY_CONTROL) & ST_DRQ != 0 {
            assert!(irq(&ide, P));
            inb(&mut ide, P + 7);
            // DRQ stays up through the whole block.
            let n = usize::from(block).min(usize::from(count) - blocks * usize::from(block));
            for s in 0..n {
                assert_ne!(inb(&mut ide, PRIMARY_CONTROL) & ST_DRQ, 0);
                data.extend(read_data(&mut ide, P, 512));
                if s + 1 < n {
                    assert!(!irq(&ide, P), "no interrupt inside a block");
                }
            }
            blocks += 1;
        }
        assert_eq!(blocks, expect_blocks, "block {block} count {count}");
        assert_eq!(data, image(200)[20 * 512..(20 + usize::from(count)) * 512]);
        // The identify data shows the setting.
        let w = identify(&mut ide, P, 0, 0xec);
        assert_eq!(w[59], 0x100 | u16::from(block));
    }
    // WRITE MULTIPLE with blocks of 2: 5 sectors → interrupts after blocks 1, 2 and at the
    // end.
    lba28(&mut ide, P, 0, 50, 5, 0xc5);
    let mut irqs = 0;
    for blk in 0..3 {
        assert_ne!(inb(&mut ide, PRIMARY_CONTROL) & ST_DRQ, 0);
        let n = if blk < 2 { 2 } else { 1 };
        write_data(&mut ide, P, &vec![0x40 + blk as u8; n * 512]);
        irqs += usize::from(irq(&ide, P));
        inb(&mut ide, P + 7);
    }
    assert_eq!(irqs, 3);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    let img = ide.disk_image(PRIMARY, false).unwrap();
    assert_eq!([img[50 * 512], img[52 * 512], img[54 * 512], img[55 * 512]], [0x40, 0x41, 0x42, 55]);
    // Multiple EXT commands use the same block size.
    lba48(&mut ide, P, 100, 5, 0x29);
    let (data, blocks) = collect_in(&mut ide, P, 2 * 512);
    assert_eq!(blocks, 3);
    assert_eq!(lba_of(&data[4 * 512..]), 104);
    lba48(&mut ide, P, 100, 3, 0x39);
    write_data(&mut ide, P, &[9u8; 1024]);
    write_data(&mut ide, P, &[9u8; 512]);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    // SET MULTIPLE 0 disables it again.
    outb(&mut ide, P + 2, 0);
    outb(&mut ide, P + 7, 0xc6);
    lba28(&mut ide, P, 0, 0, 1, 0xc4);
    assert_eq!(inb(&mut ide, P + 1), ERR_ABRT);
}

#[test]
fn nien_masks_intrq_and_status_read_clears_it() {
    let mut ide = disk_ide(16);
    outb(&mut ide, PRIMARY_CONTROL, DC_NIEN);
    lba28(&mut ide, P, 0, 0, 1, 0x40);
    assert!(!ide.irq14(), "nIEN masks INTRQ");
    // The interrupt is still pending: clearing nIEN shows it.
    outb(&mut ide, PRIMARY_CONTROL, 0);
    assert!(ide.irq14());
    // Alternate Status does not acknowledge it; Status does.
    assert_eq!(inb(&mut ide, PRIMARY_CONTROL), ST_DRDY | ST_DSC);
    assert!(ide.irq14());
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    assert!(!ide.irq14());
    // Writing the Command register also clears a pending interrupt (WRITE SECTORS raises
    // none of its own before the first block).
    lba28(&mut ide, P, 0, 0, 1, 0x40);
    assert!(ide.irq14());
    lba28(&mut ide, P, 0, 0, 1, 0x30);
    assert!(!ide.irq14());
    assert_eq!(inb(&mut ide, PRIMARY_CONTROL), ST_DRDY | ST_DSC | ST_DRQ);
    // The secondary channel has its own line.
    assert!(!ide.irq15());
}

#[test]
fn interrupt_of_unselected_device_is_released() {
    let mut ide = Ide::new();
    ide.attach_disk(PRIMARY, false, image(16)).unwrap();
    ide.attach_disk(PRIMARY, true, image(16)).unwrap();
    lba28(&mut ide, P, 1, 0, 1, 0x40);
    assert!(ide.irq14());
    // Selecting device 0 releases the line; device 1's interrupt stays pending.
    outb(&mut ide, P + 6, 0xa0);
    assert!(!ide.irq14());
    outb(&mut ide, P + 6, 0xb0);
    assert!(ide.irq14());
}

#[test]
fn soft_reset_posts_signatures() {
    let mut ide = Ide::new();
    ide.attach_disk(PRIMARY, false, image(16)).unwrap();
    ide.attach_cdrom(PRIMARY, true, iso(4)).unwrap();
    // Something in flight on device 0.
    lba28(&mut ide, P, 0, 0, 4, 0x20);
    outb(&mut ide, P + 6, 0xb0);
    outb(&mut ide, PRIMARY_CONTROL, DC_SRST);
    assert_eq!(inb(&mut ide, PRIMARY_CONTROL), ST_BSY);
    assert_eq!(inb(&mut ide, P + 7), ST_BSY);
    outb(&mut ide, P + 7, 0xec); // ignored during reset
    outb(&mut ide, PRIMARY_CONTROL, 0);
    assert!(!ide.irq14(), "no interrupt after a software reset");
    // Device register reads 00h: device 0 selected, ATA signature.
    assert_eq!(inb(&mut ide, P + 6), 0);
    let sig = |ide: &mut Ide| [2, 3, 4, 5].map(|r| inb(ide, P + r));
    assert_eq!(sig(&mut ide), [1, 1, 0, 0]);
    assert_eq!(inb(&mut ide, P + 1), 0x01);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    // The transfer was abandoned.
    assert_eq!(inw(&mut ide, P), channel::FLOATING_DATA);
    outb(&mut ide, P + 6, 0xb0);
    assert_eq!(sig(&mut ide), [1, 1, 0x14, 0xeb]);
    assert_eq!(inb(&mut ide, P + 1), 0x01);
    assert_eq!(inb(&mut ide, P + 7), 0x00, "PACKET device: DRDY clear after reset");
}

#[test]
fn missing_slave_reads_status_zero_and_ignores_commands() {
    let mut ide = disk_ide(16);
    outb(&mut ide, P + 6, 0xb0);
    assert_eq!(inb(&mut ide, P + 7), 0);
    assert_eq!(inb(&mut ide, PRIMARY_CONTROL), 0);
    // The 55h/AAh probe reads back (device 0 holds the registers for both).
    outb(&mut ide, P + 2, 0x55);
    outb(&mut ide, P + 3, 0xaa);
    assert_eq!((inb(&mut ide, P + 2), inb(&mut ide, P + 3)), (0x55, 0xaa));
    assert_eq!(inb(&mut ide, P + 6), 0xb0);
    // Commands to it go nowhere: no interrupt, no DRQ, status stays 0.
    for cmd in [0xec, 0xa1, 0x20] {
        outb(&mut ide, P + 7, cmd);
        assert!(!ide.irq14());
        assert_eq!(inb(&mut ide, P + 7), 0);
    }
    // After SRST, device 1's view is device 0's registers (ATA signature, Error 01h)
    // with status 0: Linux classifies that as "no device".
    outb(&mut ide, PRIMARY_CONTROL, DC_SRST);
    outb(&mut ide, PRIMARY_CONTROL, 0);
    outb(&mut ide, P + 6, 0xb0);
    assert_eq!(inb(&mut ide, P + 1), 0x01);
    assert_eq!(inb(&mut ide, P + 7), 0);
    // Device 0 still works.
    outb(&mut ide, P + 6, 0xa0);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
}

#[test]
fn empty_channel_floats() {
    let mut ide = disk_ide(16);
    for r in 1..8 {
        assert_eq!(inb(&mut ide, S + r), 0x7f);
    }
    assert_eq!(inb(&mut ide, SECONDARY_CONTROL), 0x7f);
    outb(&mut ide, S + 2, 0x55);
    outb(&mut ide, S + 3, 0xaa);
    assert_ne!((inb(&mut ide, S + 2), inb(&mut ide, S + 3)), (0x55, 0xaa));
    outb(&mut ide, S + 7, 0xec);
    assert!(!ide.irq15());
    assert_eq!(inw(&mut ide, S), 0xff7f);
    // Slave alone, master selected: nobody answers either.
    let mut ide = Ide::new();
    ide.attach_disk(SECONDARY, true, image(16)).unwrap();
    assert_eq!(inb(&mut ide, S + 7), 0x7f);
    outb(&mut ide, S + 6, 0xb0);
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY | ST_DSC);
}

#[test]
fn execute_device_diagnostic_on_both_devices() {
    let mut ide = Ide::new();
    ide.attach_disk(SECONDARY, false, image(16)).unwrap();
    ide.attach_cdrom(SECONDARY, true, iso(1)).unwrap();
    outb(&mut ide, S + 6, 0xb0);
    outb(&mut ide, S + 2, 0x33);
    outb(&mut ide, S + 7, 0x90);
    // Device 0 reports (and is selected again).
    assert!(ide.irq15());
    assert_eq!(inb(&mut ide, S + 6), 0);
    assert_eq!([2, 3, 4, 5].map(|r| inb(&mut ide, S + r)), [1, 1, 0, 0]);
    assert_eq!(inb(&mut ide, S + 1), 0x01);
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY | ST_DSC);
    assert!(!ide.irq15());
    outb(&mut ide, S + 6, 0x10);
    assert_eq!([2, 3, 4, 5].map(|r| inb(&mut ide, S + r)), [1, 1, 0x14, 0xeb]);
    assert_eq!(inb(&mut ide, S + 1), 0x01);
    // With device 1 missing device 0 still runs it when device 1 was selected.
    let mut ide = disk_ide(16);
    outb(&mut ide, P + 6, 0xb0);
    outb(&mut ide, P + 7, 0x90);
    assert!(ide.irq14());
    assert_eq!(inb(&mut ide, P + 1), 0x01);
}

#[test]
fn bad_images_are_rejected() {
    let mut ide = Ide::new();
    assert_eq!(ide.attach_disk(PRIMARY, false, Vec::new()), Err(IdeError::EmptyImage));
    assert_eq!(
        ide.attach_disk(PRIMARY, false, vec![0; 1000]),
        Err(IdeError::NotSectorMultiple { len: 1000, sector: 512 })
    );
    assert_eq!(
        ide.attach_cdrom(PRIMARY, false, vec![0; 512]),
        Err(IdeError::NotSectorMultiple { len: 512, sector: 2048 })
    );
    assert_eq!(ide.attach_cdrom(PRIMARY, false, Vec::new()), Err(IdeError::EmptyImage));
    assert_eq!(ide.attach_disk(2, false, vec![0; 512]), Err(IdeError::NoSuchChannel(2)));
    assert!(matches!(
        ide.attach_disk_backend(PRIMARY, false, Box::new(Synthetic { size: (1u64 << 48) * 512 + 512 })),
        Err(IdeError::TooLarge { .. })
    ));
    assert_eq!(ide.device_kind(PRIMARY, false), None);
    ide.attach_disk(PRIMARY, false, vec![0; 512]).unwrap();
    assert_eq!(ide.attach_cdrom(PRIMARY, false, iso(1)), Err(IdeError::Occupied { channel: 0, slave: false }));
    assert!(matches!(ide.insert_cdrom(PRIMARY, false, iso(1)), Err(IdeError::NotCdrom { channel: 0, slave: false })));
    assert!(matches!(ide.eject_cdrom(PRIMARY, true), Err(IdeError::NoDevice { channel: 0, slave: true })));
    assert!(matches!(ide.detach(5, true), Err(IdeError::NoSuchChannel(5))));
    ide.attach_cdrom_backend(PRIMARY, true, None).unwrap();
    assert!(matches!(
        ide.insert_cdrom(PRIMARY, true, vec![0; 100]),
        Err(IdeError::NotSectorMultiple { len: 100, sector: 2048 })
    ));
    assert_eq!(
        IdeError::NotSectorMultiple { len: 1000, sector: 512 }.to_string(),
        "the image is 1000 bytes, not a multiple of the 512-byte sector size"
    );
    assert_eq!(IdeError::EmptyImage.to_string(), "the image is empty");
    assert_eq!(IdeError::Occupied { channel: 1, slave: true }.to_string(), "IDE channel 1 slave already has a device");
    assert_eq!(BackendError::ReadOnly.to_string(), "image is read-only");
}

#[test]
fn unsupported_commands_abort() {
    let mut ide = disk_ide(16);
    // NOP, READ DMA, WRITE DMA, SMART, PACKET, IDENTIFY PACKET, DEVICE RESET, READ LOG EXT.
    for cmd in [0x00, 0xc8, 0xca, 0xb0, 0xa0, 0xa1, 0x08, 0x2f, 0xff] {
        outb(&mut ide, P + 7, cmd);
        assert!(ide.irq14(), "{cmd:#x}");
        assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC | ST_ERR, "{cmd:#x}");
        assert_eq!(inb(&mut ide, P + 1), ERR_ABRT);
    }
    // Accepted non-data commands complete cleanly and clear the old error.
    for cmd in [0x10, 0x70, 0xe7, 0xea, 0xe0, 0xe1, 0xe2, 0xe3, 0x94, 0x95] {
        lba28(&mut ide, P, 0, 0, 1, cmd);
        assert!(ide.irq14(), "{cmd:#x}");
        assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC, "{cmd:#x}");
        assert_eq!(inb(&mut ide, P + 1), 0);
    }
}

#[test]
fn set_features_and_power_modes() {
    let mut ide = disk_ide(16);
    let set = |ide: &mut Ide, sub: u8, arg: u8| {
        outb(ide, P + 1, sub);
        outb(ide, P + 2, arg);
        outb(ide, P + 7, 0xef);
        inb(ide, P + 7) & ST_ERR == 0
    };
    assert!(set(&mut ide, 0x03, 0x0c), "PIO mode 4");
    assert!(set(&mut ide, 0x03, 0x00), "PIO default");
    assert!(!set(&mut ide, 0x03, 0x42), "UDMA mode 2 is refused");
    assert!(!set(&mut ide, 0x03, 0x22), "MWDMA mode 2 is refused");
    assert!(!set(&mut ide, 0x05, 0x80), "APM is not supported");
    assert!(set(&mut ide, 0x82, 0));
    assert!(set(&mut ide, 0x55, 0));
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!(w[85] & (1 << 5 | 1 << 6), 0);
    assert!(set(&mut ide, 0x02, 0));
    assert!(set(&mut ide, 0xaa, 0));
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!(w[85] & (1 << 5 | 1 << 6), 1 << 5 | 1 << 6);
    let power = |ide: &mut Ide| {
        outb(ide, P + 7, 0xe5);
        assert!(ide.irq14());
        inb(ide, P + 7);
        inb(ide, P + 2)
    };
    assert_eq!(power(&mut ide), 0xff);
    outb(&mut ide, P + 7, 0xe0);
    assert_eq!(power(&mut ide), 0x00);
    assert_eq!(power(&mut ide), 0x00, "CHECK POWER MODE does not wake the drive");
    outb(&mut ide, P + 7, 0xe3);
    assert_eq!(power(&mut ide), 0x80);
    lba28(&mut ide, P, 0, 0, 1, 0x40);
    assert_eq!(power(&mut ide), 0xff);
}

#[test]
fn initialize_device_parameters_changes_translation() {
    let sectors = 10000;
    let mut ide = disk_ide(sectors);
    // 8 heads, 32 sectors per track.
    outb(&mut ide, P + 6, 0xa0 | 7);
    outb(&mut ide, P + 2, 32);
    outb(&mut ide, P + 7, 0x91);
    assert!(ide.irq14());
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!((w[54], w[55], w[56]), ((sectors / (8 * 32)) as u16, 8, 32));
    assert_eq!((w[1], w[3], w[6]), (9, 16, 63), "default translation unchanged");
    // C=1 H=2 S=3 → (1*8+2)*32+2.
    chs(&mut ide, 1, 2, 3, 1, 0x20);
    let (data, _) = collect_in(&mut ide, P, 512);
    assert_eq!(lba_of(&data), 322);
    // Head 8 is outside the new translation.
    chs(&mut ide, 0, 8, 1, 1, 0x20);
    assert_eq!(inb(&mut ide, P + 1), ERR_IDNF);
    // Zero sectors per track is refused.
    outb(&mut ide, P + 2, 0);
    outb(&mut ide, P + 7, 0x91);
    assert_eq!(inb(&mut ide, P + 1), ERR_ABRT);
    // A hardware reset restores the default translation.
    ide.reset();
    let w = identify(&mut ide, P, 0, 0xec);
    assert_eq!((w[54], w[55], w[56]), (9, 16, 63));
}

#[test]
fn dword_and_byte_data_port_accesses() {
    let mut ide = disk_ide(16);
    lba28(&mut ide, P, 0, 3, 1, 0x20);
    inb(&mut ide, P + 7);
    let mut data = Vec::new();
    for _ in 0..128 {
        data.extend(ide.read(P, IoSize::Dword).to_le_bytes());
    }
    assert_eq!(data, image(16)[3 * 512..4 * 512]);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    // 32-bit writes.
    lba28(&mut ide, P, 0, 4, 1, 0x30);
    for i in 0..128u32 {
        ide.write(P, IoSize::Dword, i * 0x0101_0101);
    }
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
    assert_eq!(&ide.disk_image(PRIMARY, false).unwrap()[4 * 512 + 4..][..4], &[1, 1, 1, 1]);
    // A byte read moves a whole word.
    lba28(&mut ide, P, 0, 5, 1, 0x20);
    let b = inb(&mut ide, P);
    assert_eq!(b, 5);
    assert_eq!(inw(&mut ide, P), 0);
    // A word access to the Features/Count pair splits into bytes.
    outw(&mut ide, P + 2, 0x0a07);
    assert_eq!((inb(&mut ide, P + 2), inb(&mut ide, P + 3)), (7, 10));
}

#[test]
fn ports_outside_the_controller() {
    let mut ide = disk_ide(16);
    assert!(Ide::claims(0x1f0) && Ide::claims(0x1f7) && Ide::claims(0x3f6));
    assert!(Ide::claims(0x170) && Ide::claims(0x177) && Ide::claims(0x376));
    assert!(!Ide::claims(0x1f8) && !Ide::claims(0x3f7) && !Ide::claims(0x377) && !Ide::claims(0x16f));
    assert_eq!(ide.read(0x3f7, IoSize::Byte), 0xff);
    assert_eq!(ide.read(0x1f8, IoSize::Dword), 0xffff_ffff);
    // A word at the Device Control register covers 3F7h, which is not ours.
    assert_eq!(ide.read(PRIMARY_CONTROL, IoSize::Word), 0xff00 | u32::from(ST_DRDY | ST_DSC));
    ide.write(0x3f7, IoSize::Byte, 0x04);
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC);
}

/// A backend whose reads fail from a given offset on.
struct Flaky {
    data: Vec<u8>,
    bad_from: u64,
}

impl BlockBackend for Flaky {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        if offset + buf.len() as u64 > self.bad_from {
            return Err(BackendError::Unavailable);
        }
        buf.copy_from_slice(&self.data[offset as usize..][..buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, _: u64, _: &[u8]) -> Result<(), BackendError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        Err(BackendError::Io)
    }
}

#[test]
fn backend_failures_become_medium_errors() {
    let mut ide = Ide::new();
    ide.attach_disk_backend(PRIMARY, false, Box::new(Flaky { data: image(32), bad_from: 10 * 512 })).unwrap();
    lba28(&mut ide, P, 0, 8, 4, 0x20);
    let (data, blocks) = collect_in(&mut ide, P, 512);
    assert_eq!((blocks, data.len()), (2, 1024));
    assert!(ide.irq14());
    assert_eq!(inb(&mut ide, P + 7), ST_DRDY | ST_DSC | ST_ERR);
    assert_eq!(inb(&mut ide, P + 1), ERR_UNC);
    // The failing sector and the sectors left.
    assert_eq!((inb(&mut ide, P + 3), inb(&mut ide, P + 2)), (10, 2));
    outb(&mut ide, P + 7, 0xe7);
    assert_eq!(inb(&mut ide, P + 1), ERR_ABRT, "a failed flush aborts");
    assert_eq!(ide.disk_image(PRIMARY, false), None, "not an in-memory backend");

    let mut ide = Ide::new();
    ide.attach_cdrom_backend(PRIMARY, false, Some(Box::new(Flaky { data: iso(8), bad_from: 4 * 2048 }))).unwrap();
    let r = packet(&mut ide, P, 0, &read10(2, 4), 0xfffe);
    assert_eq!(r.data.len(), 0, "a chunk never made it");
    assert_eq!(r.status, ST_DRDY | ST_ERR);
    assert_eq!(r.error >> 4, atapi::MEDIUM_ERROR);
}

#[test]
fn taskfile_fifos_and_addresses() {
    let mut t = TaskFile::default();
    t.set_lba48(0x1234_5678_9abc);
    assert_eq!(t.lba48(), 0x1234_5678_9abc);
    t.write(REG_COUNT, 0x01);
    t.write(REG_COUNT, 0x02);
    assert_eq!(t.count48(), 0x0102);
    t.count = [0, 0];
    assert_eq!((t.count48(), t.count28()), (65536, 256));
    t.device = 0xe0;
    t.set_lba28(0x0abc_def1);
    assert_eq!((t.lba28(), t.device), (0x0abc_def1, 0xea));
    assert_eq!(t.read(REG_LBA_LOW, false), 0xf1);
}

#[test]
fn geometry_translation() {
    assert_eq!(Geometry::default_for(1), Geometry { cylinders: 1, heads: 1, sectors: 1 });
    assert_eq!(Geometry::default_for(130), Geometry { cylinders: 1, heads: 2, sectors: 63 });
    assert_eq!(Geometry::default_for(2880), Geometry { cylinders: 2, heads: 16, sectors: 63 });
    assert_eq!(Geometry::default_for(1 << 40).cylinders, 16383);
    let g = Geometry::default_for(100_000);
    for lba in [0u64, 62, 63, 1007, 1008, 99_000] {
        let (c, h, s) = g.to_chs(lba);
        assert_eq!(g.to_lba(c, h, s), Some(lba));
    }
    assert_eq!(Geometry::with(16, 63, 1 << 40).capacity(), 16383 * 16 * 63);
    assert_eq!(Geometry::with(2, 2, 1 << 40).cylinders, 65535);
}

#[test]
fn atapi_chunk_lengths() {
    assert_eq!(chunk_len(36, 16), 16);
    assert_eq!(chunk_len(4, 16), 4);
    assert_eq!(chunk_len(5, 16), 5, "the last chunk may be odd");
    assert_eq!(chunk_len(5000, 2049), 2048, "an odd limit is made even");
    assert_eq!(chunk_len(1 << 20, 0), 0xfffe);
    assert_eq!(chunk_len(10, 1), 2);
}

// ---- ATAPI ----

struct PacketResult {
    data: Vec<u8>,
    /// Byte count of each DRQ chunk.
    chunks: Vec<usize>,
    status: u8,
    error: u8,
}

/// Run a packet command on device `dev` with a byte count limit, following the protocol:
/// DRQ for the packet (CoD=1 IO=0, no interrupt), an interrupt per data chunk (IO=1 CoD=0),
/// and a completion interrupt (CoD=1 IO=1).
fn packet(ide: &mut Ide, base: u16, dev: u8, cdb: &[u8], limit: u16) -> PacketResult {
    outb(ide, base + 6, dev << 4);
    outb(ide, base + 1, 0);
    outb(ide, base + 4, limit as u8);
    outb(ide, base + 5, (limit >> 8) as u8);
    outb(ide, base + 7, 0xa0);
    assert!(!irq(ide, base), "no interrupt before the packet");
    assert_eq!(inb(ide, ctl(base)) & (ST_DRQ | ST_BSY), ST_DRQ);
    assert_eq!(inb(ide, base + 2) & 3, IR_COD);
    let mut c = [0u8; 12];
    c[..cdb.len()].copy_from_slice(cdb);
    write_data(ide, base, &c);
    let mut r = PacketResult { data: Vec::new(), chunks: Vec::new(), status: 0, error: 0 };
    loop {
        assert!(irq(ide, base));
        let st = inb(ide, base + 7);
        assert!(!irq(ide, base));
        let reason = inb(ide, base + 2) & 3;
        if st & ST_DRQ == 0 {
            assert_eq!(reason, IR_COD | IR_IO, "completion");
            r.status = st;
            r.error = inb(ide, base + 1);
            return r;
        }
        assert_eq!(reason, IR_IO, "data to the host");
        let n = usize::from(inb(ide, base + 4)) | usize::from(inb(ide, base + 5)) << 8;
        assert!(n <= usize::from(limit) || limit == 0);
        r.chunks.push(n);
        r.data.extend(read_data(ide, base, n));
    }
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let b = blocks.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}

fn cd_ide(blocks: usize) -> Ide {
    let mut ide = Ide::new();
    ide.attach_disk(SECONDARY, false, image(16)).unwrap();
    ide.attach_cdrom(SECONDARY, true, iso(blocks)).unwrap();
    ide
}

fn sense(ide: &mut Ide) -> (u8, u8, u8) {
    let r = packet(ide, S, 1, &[0x03, 0, 0, 0, 18, 0], 0x100);
    assert_eq!(r.data.len(), 18);
    assert_eq!(r.data[0], 0x70);
    (r.data[2] & 0xf, r.data[12], r.data[13])
}

#[test]
fn atapi_identify() {
    let mut ide = cd_ide(10);
    // IDENTIFY DEVICE: aborted with the PACKET signature.
    outb(&mut ide, S + 6, 0x10);
    outb(&mut ide, S + 4, 0x55);
    outb(&mut ide, S + 7, 0xec);
    assert!(ide.irq15());
    assert_eq!(inb(&mut ide, S + 7) & ST_ERR, ST_ERR);
    assert_eq!(inb(&mut ide, S + 1), ERR_ABRT);
    assert_eq!([2, 3, 4, 5].map(|r| inb(&mut ide, S + r)), [1, 1, 0x14, 0xeb]);
    let w = identify(&mut ide, S, 1, 0xa1);
    assert_eq!(w[0], 0x85c0);
    assert_eq!(ata_string(&w[27..47]), "V386 CD-ROM");
    assert_eq!(ata_string(&w[10..20]), "V386-CD11");
    assert_ne!(w[82] & (1 << 4), 0);
    assert_eq!(w[49] & (1 << 8), 0);
    assert!(checksum_ok(&w));
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY);
}

#[test]
fn atapi_inquiry_with_byte_count_limit() {
    let mut ide = cd_ide(10);
    let r = packet(&mut ide, S, 1, &[0x12, 0, 0, 0, 96, 0], 16);
    assert_eq!(r.chunks, [16, 16, 4]);
    assert_eq!(r.status, ST_DRDY);
    assert_eq!(r.data.len(), 36);
    assert_eq!(r.data[0], 0x05);
    assert_eq!(r.data[1], 0x80);
    assert_eq!(&r.data[8..16], b"V386    ");
    assert_eq!(&r.data[16..32], b"V386 CD-ROM     ");
    // Allocation length cuts the reply; odd byte counts end with a padded word.
    let r = packet(&mut ide, S, 1, &[0x12, 0, 0, 0, 5, 0], 0x200);
    assert_eq!(r.chunks, [5]);
    assert_eq!(r.data, [0x05, 0x80, 0x00, 0x21, 31]);
    // Vital product data: only page 00h.
    let r = packet(&mut ide, S, 1, &[0x12, 1, 0, 0, 255, 0], 0x200);
    assert_eq!(r.data, [0x05, 0, 0, 1, 0]);
    let r = packet(&mut ide, S, 1, &[0x12, 1, 0x83, 0, 255, 0], 0x200);
    assert_eq!(r.status, ST_DRDY | ST_ERR);
    assert_eq!(sense(&mut ide), (atapi::ILLEGAL_REQUEST, 0x24, 0));
}

#[test]
fn atapi_read_capacity_and_read10() {
    let blocks = 40;
    let mut ide = cd_ide(blocks);
    let r = packet(&mut ide, S, 1, &[0x25], 8);
    assert_eq!(r.data, [0, 0, 0, 39, 0, 0, 8, 0]);
    // READ(10) of 5 blocks with a limit that is not a block multiple.
    let r = packet(&mut ide, S, 1, &read10(7, 5), 3000);
    assert_eq!(r.status, ST_DRDY);
    assert_eq!(r.chunks, [3000, 3000, 3000, 1240]);
    assert_eq!(r.data, iso(blocks)[7 * 2048..12 * 2048]);
    // An odd limit gives even chunks.
    let r = packet(&mut ide, S, 1, &read10(0, 1), 1001);
    assert!(r.chunks[..r.chunks.len() - 1].iter().all(|n| *n == 1000));
    assert_eq!(r.data, iso(blocks)[..2048]);
    // READ(12) and READ CD (user data).
    let r = packet(&mut ide, S, 1, &[0xa8, 0, 0, 0, 0, 39, 0, 0, 0, 1, 0, 0], 0xfffe);
    assert_eq!(r.data, iso(blocks)[39 * 2048..]);
    let r = packet(&mut ide, S, 1, &[0xbe, 0, 0, 0, 0, 2, 0, 0, 2, 0x10, 0, 0], 0xfffe);
    assert_eq!(r.data, iso(blocks)[2 * 2048..4 * 2048]);
    // Raw sectors are not available from an ISO.
    let r = packet(&mut ide, S, 1, &[0xbe, 0, 0, 0, 0, 2, 0, 0, 1, 0xf8, 0, 0], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    // A zero-length read transfers nothing and succeeds.
    let r = packet(&mut ide, S, 1, &read10(3, 0), 0xfffe);
    assert_eq!((r.status, r.data.len()), (ST_DRDY, 0));
    // 32-bit data reads work for ATAPI too.
    outb(&mut ide, S + 6, 0x10);
    outb(&mut ide, S + 4, 0x00);
    outb(&mut ide, S + 5, 0x08);
    outb(&mut ide, S + 7, 0xa0);
    for w in read10(1, 1).chunks(2).chain([[0u8, 0].as_slice()]) {
        outw(&mut ide, S, u16::from_le_bytes([w[0], w[1]]));
    }
    inb(&mut ide, S + 7);
    let mut d = Vec::new();
    for _ in 0..512 {
        d.extend(ide.read(S, IoSize::Dword).to_le_bytes());
    }
    assert_eq!(d, iso(blocks)[2048..4096]);
    assert!(ide.irq15());
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY);
}

#[test]
fn atapi_request_sense_after_error() {
    let mut ide = cd_ide(10);
    let r = packet(&mut ide, S, 1, &read10(9, 2), 0xfffe);
    assert_eq!(r.status, ST_DRDY | ST_ERR);
    assert_eq!(r.error, atapi::ILLEGAL_REQUEST << 4);
    assert!(r.data.is_empty());
    assert_eq!(sense(&mut ide), (atapi::ILLEGAL_REQUEST, 0x21, 0));
    // Reported once.
    assert_eq!(sense(&mut ide), (atapi::NO_SENSE, 0, 0));
    // An unknown operation code.
    let r = packet(&mut ide, S, 1, &[0xd8], 0xfffe);
    assert_eq!(r.status, ST_DRDY | ST_ERR);
    assert_eq!(sense(&mut ide), (atapi::ILLEGAL_REQUEST, 0x20, 0));
    // A good command clears the sense.
    let r = packet(&mut ide, S, 1, &read10(9, 3), 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    packet(&mut ide, S, 1, &[0x00], 0xfffe);
    assert_eq!(sense(&mut ide), (atapi::NO_SENSE, 0, 0));
}

#[test]
fn atapi_unit_attention_and_media_events() {
    let mut ide = Ide::new();
    ide.attach_cdrom_backend(PRIMARY, false, None).unwrap();
    assert!(!ide.cdrom_loaded(PRIMARY, false));
    let tur = |ide: &mut Ide| packet(ide, P, 0, &[0x00], 0xfffe).status;
    let gesn = |ide: &mut Ide| packet(ide, P, 0, &[0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0], 0xfffe).data;
    // Empty drive: NOT READY, medium not present.
    assert_eq!(tur(&mut ide), ST_DRDY | ST_ERR);
    let r = packet(&mut ide, P, 0, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!((r.data[2], r.data[12], r.data[13]), (atapi::NOT_READY, 0x3a, 0));
    assert_eq!(gesn(&mut ide), [0, 6, 4, 0x10, 0, 0, 0, 0]);
    // Insert a disc: one unit attention, then ready.
    assert!(ide.insert_cdrom(PRIMARY, false, iso(3)).unwrap().is_none());
    assert!(ide.cdrom_loaded(PRIMARY, false));
    // GET EVENT STATUS NOTIFICATION does not consume the unit attention.
    assert_eq!(gesn(&mut ide), [0, 6, 4, 0x10, 2, 2, 0, 0]);
    assert_eq!(gesn(&mut ide), [0, 6, 4, 0x10, 0, 2, 0, 0], "reported once");
    let r = packet(&mut ide, P, 0, &[0x00], 0xfffe);
    assert_eq!(r.error >> 4, atapi::UNIT_ATTENTION);
    let r = packet(&mut ide, P, 0, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!((r.data[2], r.data[12]), (atapi::UNIT_ATTENTION, 0x28));
    assert_eq!(tur(&mut ide), ST_DRDY);
    // INQUIRY goes through a unit attention and leaves it pending; REQUEST SENSE reports
    // and clears it.
    ide.insert_cdrom(PRIMARY, false, iso(4)).unwrap().unwrap();
    assert_eq!(packet(&mut ide, P, 0, &[0x12, 0, 0, 0, 36], 0xfffe).status, ST_DRDY);
    let r = packet(&mut ide, P, 0, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!(r.data[2], atapi::UNIT_ATTENTION);
    assert_eq!(tur(&mut ide), ST_DRDY);
    let r = packet(&mut ide, P, 0, &[0x25], 0xfffe);
    assert_eq!(r.data[3], 3, "the new disc's capacity");
    // The guest locks the tray: eject refused; unlocked: the tray opens.
    packet(&mut ide, P, 0, &[0x1e, 0, 0, 0, 1], 0xfffe);
    let r = packet(&mut ide, P, 0, &[0x1b, 0, 0, 0, 2], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    let r = packet(&mut ide, P, 0, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!((r.data[2], r.data[12], r.data[13]), (atapi::ILLEGAL_REQUEST, 0x53, 2));
    packet(&mut ide, P, 0, &[0x1e, 0, 0, 0, 0], 0xfffe);
    assert_eq!(packet(&mut ide, P, 0, &[0x1b, 0, 0, 0, 2], 0xfffe).status, ST_DRDY);
    assert!(!ide.cdrom_loaded(PRIMARY, false));
    assert_eq!(gesn(&mut ide), [0, 6, 4, 0x10, 3, 1, 0, 0]);
    assert_eq!(tur(&mut ide), ST_DRDY | ST_ERR);
    let r = packet(&mut ide, P, 0, &[0x03, 0, 0, 0, 18], 0xfffe);
    assert_eq!((r.data[2], r.data[12], r.data[13]), (atapi::NOT_READY, 0x3a, 2));
    let r = packet(&mut ide, P, 0, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8], 0xfffe);
    assert_eq!(r.data[1], 0x10, "door open");
    // Closing the tray reloads the disc: unit attention again.
    packet(&mut ide, P, 0, &[0x1b, 0, 0, 0, 3], 0xfffe);
    assert_eq!(tur(&mut ide), ST_DRDY | ST_ERR);
    assert_eq!(tur(&mut ide), ST_DRDY);
    // The host's eject takes the disc out whatever the lock.
    packet(&mut ide, P, 0, &[0x1e, 0, 0, 0, 1], 0xfffe);
    let old = ide.eject_cdrom(PRIMARY, false).unwrap().unwrap();
    assert_eq!(old.size(), 4 * 2048);
    assert_eq!(tur(&mut ide), ST_DRDY | ST_ERR);
}

#[test]
fn atapi_read_toc() {
    let mut ide = cd_ide(1000);
    // Format 0, LBA: header, track 1 at 0, lead-out at 1000.
    let r = packet(&mut ide, S, 1, &[0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0], 0xfffe);
    assert_eq!(r.data, [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8]);
    // MSF: track 1 at 00:02:00, lead-out at 1150 frames = 00:15:25.
    let r = packet(&mut ide, S, 1, &[0x43, 2, 0, 0, 0, 0, 0, 0, 100, 0], 0xfffe);
    assert_eq!(&r.data[8..12], &[0, 0, 2, 0]);
    assert_eq!(&r.data[16..20], &[0, 0, 15, 25]);
    // Only the lead-out.
    let r = packet(&mut ide, S, 1, &[0x43, 0, 0, 0, 0, 0, 0xaa, 0, 100, 0], 0xfffe);
    assert_eq!(r.data.len(), 12);
    // A track that does not exist.
    let r = packet(&mut ide, S, 1, &[0x43, 0, 0, 0, 0, 0, 2, 0, 100, 0], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    // Format 1: session information; also by the SFF-8020i byte 9 encoding.
    let expect = [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0];
    assert_eq!(packet(&mut ide, S, 1, &[0x43, 0, 1, 0, 0, 0, 0, 0, 12, 0], 0xfffe).data, expect);
    assert_eq!(packet(&mut ide, S, 1, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40], 0xfffe).data, expect);
    // Format 2: raw TOC, four descriptors.
    let r = packet(&mut ide, S, 1, &[0x43, 2, 2, 0, 0, 0, 0, 0xff, 0xff, 0], 0xfffe);
    assert_eq!(r.data.len(), 4 + 4 * 11);
    assert_eq!(&r.data[4 + 2 * 11 + 3..][..1], &[0xa2]);
    assert_eq!(&r.data[4 + 2 * 11 + 8..][..3], &[0, 15, 25]);
    // Allocation length cuts it.
    assert_eq!(packet(&mut ide, S, 1, &[0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0], 0xfffe).data, [0, 18, 1, 1]);
}

#[test]
fn atapi_mode_sense_and_select() {
    let mut ide = cd_ide(10);
    let r = packet(&mut ide, S, 1, &[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 255, 0], 0xfffe);
    assert_eq!(r.status, ST_DRDY);
    assert_eq!(be(&r.data[..2]), r.data.len() - 2);
    assert_eq!(r.data[2], 0x01, "medium type: data CD");
    assert_eq!(&r.data[6..8], &[0, 0], "no block descriptors");
    assert_eq!(&r.data[8..10], &[0x2a, 0x12]);
    assert_eq!(r.data[8 + 6] & 0x09, 0x09, "lock and eject");
    // All pages, MODE SENSE(6).
    let r = packet(&mut ide, S, 1, &[0x1a, 0, 0x3f, 0, 255, 0], 0xfffe);
    assert_eq!(usize::from(r.data[0]), r.data.len() - 1);
    let pages: Vec<u8> = {
        let mut v = Vec::new();
        let mut i = 4;
        while i < r.data.len() {
            v.push(r.data[i]);
            i += 2 + usize::from(r.data[i + 1]);
        }
        v
    };
    assert_eq!(pages, [0x01, 0x0d, 0x0e, 0x2a]);
    // Saved values are not supported; unknown pages are invalid.
    let r = packet(&mut ide, S, 1, &[0x1a, 0, 0xea, 0, 255, 0], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    assert_eq!(sense(&mut ide), (atapi::ILLEGAL_REQUEST, 0x39, 0));
    let r = packet(&mut ide, S, 1, &[0x1a, 0, 0x05, 0, 255, 0], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
    // MODE SELECT(10) with 12 parameter bytes, byte count limit 8: two data-out chunks.
    outb(&mut ide, S + 6, 0x10);
    outb(&mut ide, S + 1, 0);
    outb(&mut ide, S + 4, 8);
    outb(&mut ide, S + 5, 0);
    outb(&mut ide, S + 7, 0xa0);
    write_data(&mut ide, S, &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0]);
    for n in [8, 4] {
        assert!(ide.irq15());
        assert_eq!(inb(&mut ide, S + 7), ST_DRDY | ST_DRQ);
        assert_eq!(inb(&mut ide, S + 2) & 3, 0, "data to the device");
        assert_eq!(inb(&mut ide, S + 4), n);
        write_data(&mut ide, S, &vec![0; usize::from(n)]);
    }
    assert!(ide.irq15());
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY);
    assert_eq!(inb(&mut ide, S + 2) & 3, 3);
}

fn be(b: &[u8]) -> usize {
    b.iter().fold(0, |a, x| a << 8 | usize::from(*x))
}

#[test]
fn atapi_configuration_disc_information_and_misc() {
    let mut ide = cd_ide(10);
    let r = packet(&mut ide, S, 1, &[0x46, 0, 0, 0, 0, 0, 0, 0x01, 0, 0], 0xfffe);
    assert_eq!(be(&r.data[..4]), r.data.len() - 4);
    assert_eq!(be(&r.data[6..8]), 0x0008, "current profile CD-ROM");
    // Profile list first: CD-ROM, current.
    assert_eq!(&r.data[8..16], &[0, 0, 0x03, 4, 0, 8, 1, 0]);
    // Core: ATAPI.
    assert_eq!(&r.data[16..24], &[0, 1, 0x03, 4, 0, 0, 0, 2]);
    // Only the one feature asked for.
    let r = packet(&mut ide, S, 1, &[0x46, 2, 0, 0x10, 0, 0, 0, 0x01, 0, 0], 0xfffe);
    assert_eq!(r.data.len(), 8 + 12);
    assert_eq!(&r.data[8..12], &[0, 0x10, 0x01, 8]);
    // READ DISC INFORMATION: complete disc, one session.
    let r = packet(&mut ide, S, 1, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0], 0xfffe);
    assert_eq!(r.data.len(), 34);
    assert_eq!(&r.data[..7], &[0, 32, 0x0e, 1, 1, 1, 1]);
    // SET CD SPEED, START STOP UNIT (spin), SEEK, MECHANISM STATUS.
    assert_eq!(packet(&mut ide, S, 1, &[0xbb, 0, 0xff, 0xff], 0xfffe).status, ST_DRDY);
    assert_eq!(packet(&mut ide, S, 1, &[0x1b, 0, 0, 0, 1], 0xfffe).status, ST_DRDY);
    assert_eq!(packet(&mut ide, S, 1, &[0x2b, 0, 0, 0, 0, 9], 0xfffe).status, ST_DRDY);
    let r = packet(&mut ide, S, 1, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8], 0xfffe);
    assert_eq!(r.data, [0; 8]);
    // READ SUB-CHANNEL current position.
    let r = packet(&mut ide, S, 1, &[0x42, 2, 0x40, 1, 0, 0, 0, 0, 16, 0], 0xfffe);
    assert_eq!(r.data.len(), 16);
    assert_eq!(&r.data[..4], &[0, 0x15, 0, 12]);
    assert_eq!(&r.data[8..12], &[0, 0, 2, 0]);
    // Asynchronous event notification is refused.
    let r = packet(&mut ide, S, 1, &[0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0], 0xfffe);
    assert_eq!(r.status & ST_ERR, ST_ERR);
}

#[test]
fn atapi_ata_commands() {
    let mut ide = cd_ide(10);
    // PACKET asking for DMA is aborted.
    outb(&mut ide, S + 6, 0x10);
    outb(&mut ide, S + 1, 1);
    outb(&mut ide, S + 7, 0xa0);
    assert!(ide.irq15());
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY | ST_ERR);
    assert_eq!(inb(&mut ide, S + 1), ERR_ABRT);
    // DEVICE RESET: signature, status 00h, no interrupt, device 1 still selected; an
    // unfinished transfer is dropped.
    outb(&mut ide, S + 1, 0);
    outb(&mut ide, S + 7, 0xa0);
    outb(&mut ide, S + 7, 0x08);
    assert!(!ide.irq15());
    assert_eq!(inb(&mut ide, S + 7), 0);
    assert_eq!(inb(&mut ide, S + 6) & DEV_DEV, DEV_DEV);
    assert_eq!([1, 2, 3, 4, 5].map(|r| inb(&mut ide, S + r)), [1, 1, 1, 0x14, 0xeb]);
    // CHECK POWER MODE, IDLE IMMEDIATE, SET FEATURES (PIO mode).
    outb(&mut ide, S + 7, 0xe5);
    assert_eq!((inb(&mut ide, S + 7), inb(&mut ide, S + 2)), (ST_DRDY, 0xff));
    outb(&mut ide, S + 7, 0xe1);
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY);
    outb(&mut ide, S + 1, 0x03);
    outb(&mut ide, S + 2, 0x0b);
    outb(&mut ide, S + 7, 0xef);
    assert_eq!(inb(&mut ide, S + 7), ST_DRDY);
    // Disk commands are not for it.
    for cmd in [0x30, 0xc4, 0x91, 0xe7] {
        outb(&mut ide, S + 7, cmd);
        assert_eq!(inb(&mut ide, S + 1), ERR_ABRT, "{cmd:#x}");
    }
    // The disk on the same channel is unaffected.
    let w = identify(&mut ide, S, 0, 0xec);
    assert!(checksum_ok(&w));
}

#[test]
fn guest_noise_never_panics() {
    let mut ide = cd_ide(8);
    ide.attach_disk(PRIMARY, false, image(64)).unwrap();
    ide.attach_cdrom_backend(PRIMARY, true, None).unwrap();
    let ports: Vec<u16> = (0x1f0..0x1f8).chain(0x170..0x178).chain([0x3f6, 0x376, 0x3f7]).collect();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..200_000 {
        let r = next();
        let port = ports[(r % ports.len() as u64) as usize];
        let size = [IoSize::Byte, IoSize::Word, IoSize::Dword][(r >> 8) as usize % 3];
        let mut v = (r >> 16) as u32;
        // Steer command writes towards real commands so the state machines get exercised.
        if port & 7 == 7 && (r >> 50) % 2 == 0 {
            v = [0x20, 0x24, 0x30, 0x34, 0xc4, 0xc5, 0xc6, 0xa0, 0xa1, 0xec, 0x90, 0x08, 0x91, 0xef]
                [(r >> 52) as usize % 14];
        }
        if port & 0x3ff == 0x3f6 || port == 0x376 {
            v &= 0x86;
        }
        if (r >> 40) % 2 == 0 {
            ide.write(port, size, v);
        } else {
            ide.read(port, size);
        }
        let _ = (ide.irq14(), ide.irq15());
    }
}
