//! Unit tests of the VGA model: memory pipeline, registers, DAC, VBE, text geometry.

use super::vbe::{
    DAC_8BIT, ENABLED, GETCAPS, ID0, ID5, INDEX_BANK, INDEX_BPP, INDEX_ENABLE, INDEX_ID, INDEX_VIDEO_MEMORY_64K,
    INDEX_VIRT_HEIGHT, INDEX_VIRT_WIDTH, INDEX_XRES, INDEX_YRES, LFB_ENABLED, MAX_BPP, MAX_XRES, MAX_YRES, NOCLEARMEM,
};
use super::*;
use alloc::string::String;

fn outb(v: &mut Vga, port: u16, value: u8) {
    v.write(port, IoSize::Byte, u32::from(value));
}

fn inb(v: &mut Vga, port: u16) -> u8 {
    v.read(port, IoSize::Byte) as u8
}

fn outw(v: &mut Vga, port: u16, value: u16) {
    v.write(port, IoSize::Word, u32::from(value));
}

fn inw(v: &mut Vga, port: u16) -> u16 {
    v.read(port, IoSize::Word) as u16
}

fn seq(v: &mut Vga, index: u8, value: u8) {
    outw(v, PORT_SEQ_INDEX, u16::from(value) << 8 | u16::from(index));
}

fn gc(v: &mut Vga, index: u8, value: u8) {
    outw(v, PORT_GC_INDEX, u16::from(value) << 8 | u16::from(index));
}

fn crtc(v: &mut Vga, index: u8, value: u8) {
    outb(v, PORT_CRTC_INDEX_COLOR, index);
    outb(v, PORT_CRTC_DATA_COLOR, value);
}

fn crtc_read(v: &mut Vga, index: u8) -> u8 {
    outb(v, PORT_CRTC_INDEX_COLOR, index);
    inb(v, PORT_CRTC_DATA_COLOR)
}

fn attr(v: &mut Vga, index: u8, value: u8) {
    inb(v, PORT_STATUS1_COLOR);
    outb(v, PORT_AC_INDEX, index);
    outb(v, PORT_AC_INDEX, value);
    outb(v, PORT_AC_INDEX, 0x20);
}

fn dispi_write(v: &mut Vga, index: u16, value: u16) {
    outw(v, PORT_VBE_INDEX, index);
    outw(v, PORT_VBE_DATA, value);
}

fn dispi_read(v: &mut Vga, index: u16) -> u16 {
    outw(v, PORT_VBE_INDEX, index);
    inw(v, PORT_VBE_DATA)
}

fn poke(v: &mut Vga, addr: u32, value: u8) {
    v.mmio_write(Phys(addr), IoSize::Byte, u32::from(value));
}

fn peek(v: &mut Vga, addr: u32) -> u8 {
    v.mmio_read(Phys(addr), IoSize::Byte) as u8
}

/// Program a full register set in SeaVGABIOS's order: attribute registers, sequencer,
/// graphics controller, CRTC (unprotected first) at the new mode's address, then the
/// Miscellaneous Output register, then enable the palette.
fn program_mode(v: &mut Vga, misc: u8, sr: &[u8; 5], cr: &[u8; 25], gr: &[u8; 9], ar: &[u8; 21]) {
    inb(v, PORT_STATUS1_COLOR);
    for (i, &val) in ar.iter().enumerate() {
        outb(v, PORT_AC_INDEX, i as u8);
        outb(v, PORT_AC_INDEX, val);
    }
    for (i, &val) in sr.iter().enumerate() {
        seq(v, i as u8, val);
    }
    for (i, &val) in gr.iter().enumerate() {
        gc(v, i as u8, val);
    }
    let base = if misc & 1 != 0 { PORT_CRTC_INDEX_COLOR } else { PORT_CRTC_INDEX_MONO };
    outw(v, base, 0x0011);
    for (i, &val) in cr.iter().enumerate() {
        outb(v, base, i as u8);
        outb(v, base + 1, val);
    }
    outb(v, PORT_MISC_WRITE, misc);
    outb(v, PORT_AC_INDEX, 0x20);
    inb(v, PORT_STATUS1_COLOR);
}

/// Mode 13h register values (IBM VGA Technical Reference mode tables).
fn set_mode_13h(v: &mut Vga) {
    program_mode(
        v,
        0x63,
        &[0x03, 0x01, 0x0F, 0x00, 0x0E],
        &[
            0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9C, 0x8E,
            0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF,
        ],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF],
        &[
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x41, 0x00,
            0x0F, 0x00, 0x00,
        ],
    );
}

fn set_mode_3(v: &mut Vga) {
    program_mode(v, MODE3_MISC, &MODE3_SEQ, &MODE3_CRTC, &MODE3_GC, &MODE3_AC);
}

/// Planar 16-colour access at A0000/64K, as a BIOS sets up mode 12h's memory side.
fn planar(v: &mut Vga) {
    seq(v, 0x02, 0x0F);
    seq(v, 0x04, 0x06);
    gc(v, 0x05, 0x00);
    gc(v, 0x06, 0x05);
    gc(v, 0x00, 0x00);
    gc(v, 0x01, 0x00);
    gc(v, 0x03, 0x00);
    gc(v, 0x08, 0xFF);
}

/// Store `bytes` in the four planes at plane offset `off` (map mask per plane, write mode
/// 0, no rotation or logical operation, no set/reset, full bit mask; the pipeline is left
/// that way).
fn fill_planes(v: &mut Vga, off: u32, bytes: [u8; 4]) {
    gc(v, 0x01, 0x00);
    gc(v, 0x03, 0x00);
    gc(v, 0x05, 0x00);
    gc(v, 0x08, 0xFF);
    for (p, &b) in bytes.iter().enumerate() {
        seq(v, 0x02, 1 << p);
        poke(v, 0xA0000 + off, b);
    }
    seq(v, 0x02, 0x0F);
}

fn planes_at(v: &Vga, off: u32) -> [u8; 4] {
    [v.plane_byte(0, off), v.plane_byte(1, off), v.plane_byte(2, off), v.plane_byte(3, off)]
}

fn write_str(v: &mut Vga, row: u32, col: u32, s: &str, attr: u8) {
    for (i, b) in s.bytes().enumerate() {
        let a = 0xB8000 + (row * 80 + col + i as u32) * 2;
        v.mmio_write(Phys(a), IoSize::Word, u32::from(attr) << 8 | u32::from(b));
    }
}

// ----------------------------------------------------------------------------------------
// Text.
// ----------------------------------------------------------------------------------------

#[test]
fn power_on_is_80x25_text() {
    let v = Vga::new();
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
    let t = v.text_snapshot();
    assert_eq!((t.cols, t.rows, t.cells.len()), (80, 25, 2000));
    assert_eq!(t.cursor, Some((0, 0)));
    assert_eq!(t.cursor_shape, (0x0D, 0x0E));
}

#[test]
fn text_written_at_b8000_appears_in_snapshot() {
    let mut v = Vga::new();
    write_str(&mut v, 0, 0, "Hello, world", 0x1F);
    write_str(&mut v, 24, 75, "end", 0x07);
    let t = v.text_snapshot();
    assert_eq!(t.cell(0, 0), 0x1F48);
    assert_eq!(t.cell(77, 24), 0x0764);
    let text = t.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25);
    assert_eq!(lines[0], "Hello, world");
    assert_eq!(lines[1], "");
    assert_eq!(lines[24], "                                                                           end");
}

#[test]
fn odd_even_maps_characters_to_plane_0_and_attributes_to_plane_1() {
    let mut v = Vga::new();
    poke(&mut v, 0xB8000, b'A');
    poke(&mut v, 0xB8001, 0x07);
    poke(&mut v, 0xB8002, b'B');
    poke(&mut v, 0xB8003, 0x70);
    // Chain odd/even: host address bit 0 picks the plane, the plane offset keeps the rest.
    assert_eq!(planes_at(&v, 0), [b'A', 0x07, 0, 0]);
    assert_eq!(planes_at(&v, 1), [0, 0, 0, 0]);
    assert_eq!(planes_at(&v, 2), [b'B', 0x70, 0, 0]);
    // Reads under odd/even come back from the same planes.
    assert_eq!(v.mmio_read(Phys(0xB8000), IoSize::Dword), 0x7042_0741);
    assert_eq!(v.text_snapshot().cell(1, 0), 0x7042);
}

#[test]
fn font_loading_into_plane_2_like_a_bios() {
    let mut v = Vga::new();
    write_str(&mut v, 0, 0, "AB", 0x07);
    // get font access: sequencer in reset, map mask plane 2, sequential addressing,
    // read map 2, write mode 0, A0000/64K without chain odd/even.
    outw(&mut v, PORT_SEQ_INDEX, 0x0100);
    outw(&mut v, PORT_SEQ_INDEX, 0x0402);
    outw(&mut v, PORT_SEQ_INDEX, 0x0704);
    outw(&mut v, PORT_SEQ_INDEX, 0x0300);
    outw(&mut v, PORT_GC_INDEX, 0x0204);
    outw(&mut v, PORT_GC_INDEX, 0x0005);
    outw(&mut v, PORT_GC_INDEX, 0x0406);
    let glyph_a: [u8; 16] = [0, 0, 0x10, 0x38, 0x6C, 0xC6, 0xC6, 0xFE, 0xC6, 0xC6, 0xC6, 0xC6, 0, 0, 0, 0];
    for (i, &b) in glyph_a.iter().enumerate() {
        poke(&mut v, 0xA0000 + 0x41 * 32 + i as u32, b);
    }
    // Font block 1 (16 KiB into plane 2) gets a distinct 'A'.
    poke(&mut v, 0xA0000 + 0x4000 + 0x41 * 32, 0xAA);
    assert_eq!(peek(&mut v, 0xA0000 + 0x41 * 32 + 3), 0x38);
    // release font access.
    outw(&mut v, PORT_SEQ_INDEX, 0x0100);
    outw(&mut v, PORT_SEQ_INDEX, 0x0302);
    outw(&mut v, PORT_SEQ_INDEX, 0x0304);
    outw(&mut v, PORT_SEQ_INDEX, 0x0300);
    let gr6 = if inb(&mut v, PORT_MISC_READ) & 1 != 0 { 0x0E } else { 0x0A };
    outw(&mut v, PORT_GC_INDEX, gr6 << 8 | 0x06);
    outw(&mut v, PORT_GC_INDEX, 0x0004);
    outw(&mut v, PORT_GC_INDEX, 0x1005);

    assert_eq!(v.plane_byte(2, 0x41 * 32 + 4), 0x6C);
    assert_eq!(v.glyph(b'A', 0x07)[..16], glyph_a);
    // Planes 0 and 1 were not touched.
    assert_eq!(v.text_snapshot().to_text().lines().next(), Some("AB"));
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
    // Character Map Select: map 1 for both attribute bit 3 values.
    seq(&mut v, 0x03, 0x05);
    assert_eq!(v.glyph(b'A', 0x07)[0], 0xAA);
    // Map B (attribute bit 3 clear) 0, map A (bit 3 set) 1.
    seq(&mut v, 0x03, 0x04);
    assert_eq!(v.glyph(b'A', 0x07)[3], 0x38);
    assert_eq!(v.glyph(b'A', 0x0F)[0], 0xAA);
    // Map 4 lives 8 KiB into plane 2.
    v.vram[(0x2000 + 0x41 * 32) * 4 + 2] = 0x55;
    seq(&mut v, 0x03, 0x10);
    assert_eq!(v.glyph(b'A', 0x07)[0], 0x55);
}

#[test]
fn geometry_80x50_with_8_line_font() {
    let mut v = Vga::new();
    // Maximum Scan Line 7 (8-line characters), cursor lines 6-7.
    crtc(&mut v, 0x09, 0x47);
    crtc(&mut v, 0x0A, 0x06);
    crtc(&mut v, 0x0B, 0x07);
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 50 });
    write_str(&mut v, 49, 0, "last", 0x07);
    crtc(&mut v, 0x0E, ((49 * 80u16) >> 8) as u8);
    crtc(&mut v, 0x0F, (49 * 80u16) as u8);
    let t = v.text_snapshot();
    assert_eq!((t.cols, t.rows), (80, 50));
    assert_eq!(t.to_text().lines().nth(49), Some("last"));
    assert_eq!(t.cursor, Some((0, 49)));
    assert_eq!(t.cursor_shape, (6, 7));
}

#[test]
fn geometry_40x25() {
    let mut v = Vga::new();
    crtc(&mut v, 0x11, 0x00);
    crtc(&mut v, 0x01, 0x27);
    crtc(&mut v, 0x13, 0x14);
    assert_eq!(v.mode(), VgaMode::Text { cols: 40, rows: 25 });
    // Row 1 starts 40 characters (80 host bytes) in.
    poke(&mut v, 0xB8000 + 80, b'x');
    let t = v.text_snapshot();
    assert_eq!(t.cells.len(), 1000);
    assert_eq!(t.cell(0, 1) & 0xFF, u16::from(b'x'));
}

#[test]
fn scan_doubled_lines_and_350_line_modes() {
    let mut v = Vga::new();
    // 350 lines (VDE 0x15D) with a 14-line font: 25 rows.
    crtc(&mut v, 0x11, 0x00);
    crtc(&mut v, 0x12, 0x5D);
    crtc(&mut v, 0x07, 0x1F);
    crtc(&mut v, 0x09, 0x4D);
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
    // 400 lines scan-doubled with an 8-line font: 200 / 8 = 25 rows.
    crtc(&mut v, 0x12, 0x8F);
    crtc(&mut v, 0x09, 0xC7);
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
}

#[test]
fn start_address_and_cursor() {
    let mut v = Vga::new();
    write_str(&mut v, 0, 0, "first", 0x07);
    write_str(&mut v, 1, 0, "second", 0x07);
    // Start one row down: the screen scrolls.
    crtc(&mut v, 0x0C, 0);
    crtc(&mut v, 0x0D, 80);
    let t = v.text_snapshot();
    assert_eq!(t.to_text().lines().next(), Some("second"));
    // Cursor location 81 is now (1, 0); location 0 is off screen.
    crtc(&mut v, 0x0E, 0);
    crtc(&mut v, 0x0F, 81);
    assert_eq!(v.text_snapshot().cursor, Some((1, 0)));
    crtc(&mut v, 0x0F, 0);
    assert_eq!(v.text_snapshot().cursor, None);
    crtc(&mut v, 0x0D, 0);
    crtc(&mut v, 0x0F, 5);
    assert_eq!(v.text_snapshot().cursor, Some((5, 0)));
    // Cursor skew delays it by one character.
    crtc(&mut v, 0x0B, 0x2E);
    assert_eq!(v.text_snapshot().cursor, Some((6, 0)));
    crtc(&mut v, 0x0B, 0x0E);
    // Cursor Disable, and end above start, hide it.
    crtc(&mut v, 0x0A, 0x2D);
    assert_eq!(v.text_snapshot().cursor, None);
    crtc(&mut v, 0x0A, 0x0F);
    assert_eq!(v.text_snapshot().cursor, None);
    crtc(&mut v, 0x0A, 0x0D);
    assert_eq!(v.text_snapshot().cursor, Some((5, 0)));
}

#[test]
fn to_text_maps_cp437() {
    let mut v = Vga::new();
    let line = [0xC9u8, 0xCD, 0xBB, 0x01, b' ', 0xE1, 0x7F, 0x00, 0xFF, b' '];
    for (i, &b) in line.iter().enumerate() {
        poke(&mut v, 0xB8000 + 2 * i as u32, b);
    }
    let text = v.text_snapshot().to_text();
    assert_eq!(text.lines().next(), Some("╔═╗☺ ß⌂"));
    assert!(text.ends_with("\n"));
    assert_eq!(text.matches('\n').count(), 25);
    let all: String = (0u8..=255).map(text::cp437_to_char).collect();
    assert_eq!(all.chars().count(), 256);
    assert_eq!(text::cp437_to_char(b'~'), '~');
    assert_eq!(text::cp437_to_char(0xDB), '█');
    assert_eq!(text::cp437_to_char(0xB0), '░');
    assert_eq!(text::cp437_to_char(0xFE), '■');
}

#[test]
fn mode_3_reprogrammed_after_mode_13h() {
    let mut v = Vga::new();
    set_mode_13h(&mut v);
    assert_eq!(v.mode(), VgaMode::Graphics { width: 320, height: 200, bpp: 8 });
    let empty = v.text_snapshot();
    assert_eq!((empty.cols, empty.rows, empty.cells.len()), (0, 0, 0));
    // Chain-4: the window is linear over video memory.
    poke(&mut v, 0xA0000 + 5, 0x42);
    poke(&mut v, 0xA0000 + 320 * 199 + 319, 0x17);
    assert_eq!(v.vram()[5], 0x42);
    assert_eq!(v.vram()[320 * 199 + 319], 0x17);
    assert_eq!(peek(&mut v, 0xA0005), 0x42);
    // Text at B8000 is not decoded in mode 13h.
    poke(&mut v, 0xB8000, b'z');
    assert_eq!(peek(&mut v, 0xB8000), 0xFF);

    set_mode_3(&mut v);
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
    for i in 0..80 * 25 {
        v.mmio_write(Phys(0xB8000 + 2 * i), IoSize::Word, 0x0720);
    }
    write_str(&mut v, 2, 3, "back in text", 0x07);
    assert_eq!(v.text_snapshot().to_text().lines().nth(2), Some("   back in text"));
}

#[test]
fn planar_mode_12h_geometry() {
    let mut v = Vga::new();
    program_mode(
        &mut v,
        0xE3,
        &[0x03, 0x01, 0x0F, 0x00, 0x06],
        &[
            0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0x0B, 0x3E, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xEA, 0x8C,
            0xDF, 0x28, 0x00, 0xE7, 0x04, 0xE3, 0xFF,
        ],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0F, 0xFF],
        &[
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x01, 0x00,
            0x0F, 0x00, 0x00,
        ],
    );
    assert_eq!(v.mode(), VgaMode::Graphics { width: 640, height: 480, bpp: 4 });
}

// ----------------------------------------------------------------------------------------
// Planar pipeline.
// ----------------------------------------------------------------------------------------

#[test]
fn write_mode_0_set_reset() {
    let mut v = Vga::new();
    planar(&mut v);
    // Set/reset 0101b enabled in all planes: planes 0 and 2 set, 1 and 3 cleared.
    gc(&mut v, 0x00, 0x05);
    gc(&mut v, 0x01, 0x0F);
    poke(&mut v, 0xA0010, 0x12);
    assert_eq!(planes_at(&v, 0x10), [0xFF, 0x00, 0xFF, 0x00]);
    // Enabled only for plane 3: the others take the host byte.
    gc(&mut v, 0x00, 0x08);
    gc(&mut v, 0x01, 0x08);
    poke(&mut v, 0xA0011, 0x3C);
    assert_eq!(planes_at(&v, 0x11), [0x3C, 0x3C, 0x3C, 0xFF]);
    // The map mask limits the planes written.
    gc(&mut v, 0x01, 0x00);
    seq(&mut v, 0x02, 0x06);
    poke(&mut v, 0xA0011, 0x81);
    assert_eq!(planes_at(&v, 0x11), [0x3C, 0x81, 0x81, 0xFF]);
}

#[test]
fn write_mode_0_rotate_logical_operation_and_bit_mask() {
    let mut v = Vga::new();
    planar(&mut v);
    fill_planes(&mut v, 0x20, [0x0F, 0xF0, 0xAA, 0x55]);
    // Load the latches from offset 0x20, then write there with rotate 1, bit mask 0xF0.
    peek(&mut v, 0xA0020);
    gc(&mut v, 0x03, 0x01);
    gc(&mut v, 0x08, 0xF0);
    poke(&mut v, 0xA0020, 0x81); // rotated right by one: 0xC0
    assert_eq!(planes_at(&v, 0x20), [0xCF, 0xC0, 0xCA, 0xC5]);
    // XOR with the latches (function 11b), no rotate, full mask.
    fill_planes(&mut v, 0x21, [0x0F, 0xF0, 0xAA, 0x55]);
    peek(&mut v, 0xA0021);
    gc(&mut v, 0x03, 0x18);
    poke(&mut v, 0xA0021, 0xFF);
    assert_eq!(planes_at(&v, 0x21), [0xF0, 0x0F, 0x55, 0xAA]);
    // AND (01b) and OR (10b).
    fill_planes(&mut v, 0x22, [0x0F, 0xF0, 0xAA, 0x55]);
    peek(&mut v, 0xA0022);
    gc(&mut v, 0x03, 0x08);
    poke(&mut v, 0xA0022, 0x3C);
    assert_eq!(planes_at(&v, 0x22), [0x0C, 0x30, 0x28, 0x14]);
    gc(&mut v, 0x03, 0x10);
    poke(&mut v, 0xA0022, 0x81);
    // The latches still hold the original bytes.
    assert_eq!(planes_at(&v, 0x22), [0x8F, 0xF1, 0xAB, 0xD5]);
}

#[test]
fn write_mode_1_copies_the_latches() {
    let mut v = Vga::new();
    planar(&mut v);
    fill_planes(&mut v, 0x100, [1, 2, 3, 4]);
    gc(&mut v, 0x05, 0x01);
    peek(&mut v, 0xA0100);
    poke(&mut v, 0xA0200, 0xEE); // the host byte is ignored
    assert_eq!(planes_at(&v, 0x200), [1, 2, 3, 4]);
    // The map mask still applies.
    seq(&mut v, 0x02, 0x01);
    peek(&mut v, 0xA0100);
    poke(&mut v, 0xA0300, 0);
    assert_eq!(planes_at(&v, 0x300), [1, 0, 0, 0]);
}

#[test]
fn write_mode_2_spreads_colour_bits() {
    let mut v = Vga::new();
    planar(&mut v);
    gc(&mut v, 0x05, 0x02);
    poke(&mut v, 0xA0030, 0x0A); // colour 1010b: planes 1 and 3
    assert_eq!(planes_at(&v, 0x30), [0x00, 0xFF, 0x00, 0xFF]);
    // Bit mask 0x80 keeps the other pixels from the latches (loaded as zero here).
    fill_planes(&mut v, 0x31, [0x00; 4]);
    gc(&mut v, 0x05, 0x02);
    gc(&mut v, 0x08, 0x80);
    peek(&mut v, 0xA0031);
    poke(&mut v, 0xA0031, 0x05);
    assert_eq!(planes_at(&v, 0x31), [0x80, 0x00, 0x80, 0x00]);
    // Rotation does not apply in write mode 2.
    gc(&mut v, 0x03, 0x03);
    peek(&mut v, 0xA0031);
    poke(&mut v, 0xA0031, 0x02);
    assert_eq!(planes_at(&v, 0x31), [0x00, 0x80, 0x00, 0x00]);
}

#[test]
fn write_mode_3_uses_rotated_data_as_bit_mask() {
    let mut v = Vga::new();
    planar(&mut v);
    fill_planes(&mut v, 0x40, [0xF0, 0xF0, 0xF0, 0xF0]);
    gc(&mut v, 0x05, 0x03);
    gc(&mut v, 0x00, 0x03); // colour 0011b
    gc(&mut v, 0x01, 0x00); // enable set/reset has no effect in mode 3
    peek(&mut v, 0xA0040);
    poke(&mut v, 0xA0040, 0x0F);
    assert_eq!(planes_at(&v, 0x40), [0xFF, 0xFF, 0xF0, 0xF0]);
    // Rotated host byte ANDed with the Bit Mask register.
    gc(&mut v, 0x03, 0x04); // rotate 4
    gc(&mut v, 0x08, 0x3C);
    peek(&mut v, 0xA0040);
    poke(&mut v, 0xA0040, 0x0F); // rotated: 0xF0, & 0x3C = 0x30
    assert_eq!(planes_at(&v, 0x40), [0xFF, 0xFF, 0xC0, 0xC0]);
}

#[test]
fn read_mode_0_selects_a_plane_and_loads_latches() {
    let mut v = Vga::new();
    planar(&mut v);
    fill_planes(&mut v, 0x50, [0x11, 0x22, 0x33, 0x44]);
    for p in 0..4u8 {
        gc(&mut v, 0x04, p);
        assert_eq!(peek(&mut v, 0xA0050), 0x11 * (p + 1));
    }
    assert_eq!(v.latch, [0x11, 0x22, 0x33, 0x44]);
}

#[test]
fn read_mode_1_colour_compare() {
    let mut v = Vga::new();
    planar(&mut v);
    // Pixel colours, left to right: bit 7 is colour 0101b, bit 6 colour 1111b, the rest 0.
    fill_planes(&mut v, 0x60, [0xC0, 0x40, 0xC0, 0x40]);
    gc(&mut v, 0x05, 0x08);
    gc(&mut v, 0x07, 0x0F);
    gc(&mut v, 0x02, 0x05);
    assert_eq!(peek(&mut v, 0xA0060), 0x80);
    gc(&mut v, 0x02, 0x0F);
    assert_eq!(peek(&mut v, 0xA0060), 0x40);
    gc(&mut v, 0x02, 0x00);
    assert_eq!(peek(&mut v, 0xA0060), 0x3F);
    // Ignoring planes 1 and 3, colours 0101b and 1111b both match 0001b... in plane 0 and 2.
    gc(&mut v, 0x07, 0x05);
    gc(&mut v, 0x02, 0x05);
    assert_eq!(peek(&mut v, 0xA0060), 0xC0);
    // No planes cared about: every pixel matches.
    gc(&mut v, 0x07, 0x00);
    assert_eq!(peek(&mut v, 0xA0060), 0xFF);
}

#[test]
fn memory_map_select_and_ram_enable() {
    let mut v = Vga::new();
    // B8000/32K (mode 3): A0000 and B0000 are not decoded.
    poke(&mut v, 0xA0000, 1);
    poke(&mut v, 0xB0000, 1);
    assert_eq!(planes_at(&v, 0), [0, 0, 0, 0]);
    assert_eq!(peek(&mut v, 0xB0000), 0xFF);
    // B0000/32K.
    gc(&mut v, 0x06, 0x0A);
    poke(&mut v, 0xB0000, b'm');
    poke(&mut v, 0xB8004, b'n');
    assert_eq!(planes_at(&v, 0), [b'm', 0, 0, 0]);
    assert_eq!(peek(&mut v, 0xB8004), 0xFF);
    // A0000/128K: B8000 is offset 0x18000 (plane offsets wrap at 64 KiB).
    gc(&mut v, 0x06, 0x02);
    poke(&mut v, 0xB8004, b'o');
    assert_eq!(v.plane_byte(0, 0x8004), b'o');
    poke(&mut v, 0xA0006, b'p');
    assert_eq!(v.plane_byte(0, 6), b'p');
    // A0000/64K: B0000 upwards is not decoded.
    gc(&mut v, 0x06, 0x06);
    assert_eq!(peek(&mut v, 0xB0000), 0xFF);
    assert_eq!(peek(&mut v, 0xA0006), b'p');
    // Miscellaneous Output Enable RAM clear: nothing is decoded.
    outb(&mut v, PORT_MISC_WRITE, 0x65);
    assert_eq!(peek(&mut v, 0xA0006), 0xFF);
    poke(&mut v, 0xA0006, b'q');
    outb(&mut v, PORT_MISC_WRITE, 0x67);
    assert_eq!(peek(&mut v, 0xA0006), b'p');
}

#[test]
fn mem_read_and_write_take_window_offsets() {
    let mut v = Vga::new();
    v.mem_write(0x18000, IoSize::Word, 0x0741);
    assert_eq!(v.text_snapshot().cell(0, 0), 0x0741);
    assert_eq!(v.mem_read(0x18000, IoSize::Word), 0x0741);
    assert_eq!(v.mem_read(0x00000, IoSize::Byte), 0xFF);
    assert_eq!(v.mem_read(0x1FFFF, IoSize::Dword), 0xFFFF_FF00);
    // Past the window: nothing.
    v.mem_write(0x20000, IoSize::Dword, 0x1234_5678);
    assert_eq!(v.mem_read(0x20000, IoSize::Dword), 0xFFFF_FFFF);
}

// ----------------------------------------------------------------------------------------
// Registers.
// ----------------------------------------------------------------------------------------

#[test]
fn attribute_flip_flop() {
    let mut v = Vga::new();
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_AC_INDEX, 0x10);
    assert_eq!(inb(&mut v, PORT_AC_INDEX), 0x10);
    // The screen is blanked while the palette address source is the CPU.
    assert_eq!(v.mode(), VgaMode::Off);
    outb(&mut v, PORT_AC_INDEX, 0x04); // data: mode control, blink off
    assert!(!v.blink_enabled());
    assert_eq!(inb(&mut v, PORT_AC_DATA_READ), 0x04);
    // Reading 0x3C1 does not move the flip-flop: this is an index write.
    outb(&mut v, PORT_AC_INDEX, 0x11);
    assert_eq!(inb(&mut v, PORT_AC_INDEX), 0x11);
    // Reading input status 1 resets the flip-flop to address mode.
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_AC_INDEX, 0x30);
    assert_eq!(inb(&mut v, PORT_AC_INDEX), 0x30);
    outb(&mut v, PORT_AC_INDEX, 0x0C);
    assert!(v.blink_enabled());
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
    // So does reading 0x3BA.
    outb(&mut v, PORT_AC_INDEX, 0x31);
    inb(&mut v, PORT_STATUS1_MONO);
    outb(&mut v, PORT_AC_INDEX, 0x32);
    assert_eq!(inb(&mut v, PORT_AC_INDEX), 0x32);
    // A 16-bit write to 0x3C0 is index then data.
    inb(&mut v, PORT_STATUS1_COLOR);
    outw(&mut v, PORT_AC_INDEX, 0x0F11);
    outb(&mut v, PORT_AC_INDEX, 0x31);
    assert_eq!(inb(&mut v, PORT_AC_DATA_READ), 0x0F);
}

#[test]
fn attribute_palette_is_locked_while_the_video_owns_it() {
    let mut v = Vga::new();
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_AC_INDEX, 0x21); // palette 1, PAS set
    outb(&mut v, PORT_AC_INDEX, 0x3F);
    assert_eq!(inb(&mut v, PORT_AC_DATA_READ), 0x01);
    attr(&mut v, 0x01, 0x3F); // PAS clear while loading
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_AC_INDEX, 0x21);
    assert_eq!(inb(&mut v, PORT_AC_DATA_READ), 0x3F);
    // Undefined attribute indices read 0 and ignore writes.
    attr(&mut v, 0x1F, 0x55);
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_AC_INDEX, 0x3F);
    assert_eq!(inb(&mut v, PORT_AC_DATA_READ), 0x00);
}

#[test]
fn text_palette_goes_through_attribute_palette_and_dac() {
    let mut v = Vga::new();
    let pal = v.text_palette();
    assert_eq!(pal[0], 0x000000);
    assert_eq!(pal[1], 0x0000AA);
    assert_eq!(pal[6], 0xAA5500); // brown: palette register 6 holds 0x14
    assert_eq!(pal[7], 0xAAAAAA);
    assert_eq!(pal[8], 0x555555);
    assert_eq!(pal[15], 0xFFFFFF);
    // Reprogram DAC entry 7 (palette register 7 = 0x07).
    outb(&mut v, PORT_DAC_WRITE_INDEX, 7);
    for c in [0x3F, 0x00, 0x3F] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    assert_eq!(v.text_palette()[7], 0xFF00FF);
}

#[test]
fn dac_read_and_write_cycles() {
    let mut v = Vga::new();
    outb(&mut v, PORT_DAC_WRITE_INDEX, 5);
    assert_eq!(inb(&mut v, PORT_DAC_READ_INDEX), 0x00, "DAC state: write mode");
    for c in [0x01, 0x02, 0x03, 0x3F, 0xFF, 0x40] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    assert_eq!(inb(&mut v, PORT_DAC_WRITE_INDEX), 7);
    outb(&mut v, PORT_DAC_READ_INDEX, 5);
    assert_eq!(inb(&mut v, PORT_DAC_READ_INDEX), 0x03, "DAC state: read mode");
    let got: Vec<u8> = (0..6).map(|_| inb(&mut v, PORT_DAC_DATA)).collect();
    // 6-bit DAC: the upper two bits are dropped.
    assert_eq!(got, [0x01, 0x02, 0x03, 0x3F, 0x3F, 0x00]);
    assert_eq!(v.dac_rgb(6), [0xFF, 0xFF, 0x00]);
    // A new address write restarts the cycle mid-entry.
    outb(&mut v, PORT_DAC_WRITE_INDEX, 9);
    outb(&mut v, PORT_DAC_DATA, 0x11);
    outb(&mut v, PORT_DAC_WRITE_INDEX, 9);
    for c in [0x21, 0x22, 0x23] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    outb(&mut v, PORT_DAC_READ_INDEX, 9);
    assert_eq!(inb(&mut v, PORT_DAC_DATA), 0x21);
    outb(&mut v, PORT_DAC_READ_INDEX, 9);
    assert_eq!(inb(&mut v, PORT_DAC_DATA), 0x21);
    // The index wraps from 255 to 0.
    outb(&mut v, PORT_DAC_WRITE_INDEX, 255);
    for c in [1, 2, 3, 4, 5, 6] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    assert_eq!(v.dac_rgb(0), [4 << 2, 5 << 2, 6 << 2]);
    // PEL mask.
    outb(&mut v, PORT_DAC_MASK, 0x0F);
    assert_eq!(inb(&mut v, PORT_DAC_MASK), 0x0F);
}

#[test]
fn crtc_write_protect() {
    let mut v = Vga::new();
    // Mode 3 leaves Protect (CR11 bit 7) set.
    assert_eq!(crtc_read(&mut v, 0x11) & 0x80, 0x80);
    crtc(&mut v, 0x01, 0x27);
    assert_eq!(crtc_read(&mut v, 0x01), 0x4F);
    crtc(&mut v, 0x00, 0x00);
    assert_eq!(crtc_read(&mut v, 0x00), 0x5F);
    // Overflow: only Line Compare bit 8 (bit 4) gets through.
    crtc(&mut v, 0x07, 0x00);
    assert_eq!(crtc_read(&mut v, 0x07), 0x0F);
    crtc(&mut v, 0x07, 0xFF);
    assert_eq!(crtc_read(&mut v, 0x07), 0x1F);
    // Registers from 8 up are not protected.
    crtc(&mut v, 0x0E, 0x01);
    assert_eq!(crtc_read(&mut v, 0x0E), 0x01);
    // Clearing the bit unprotects.
    crtc(&mut v, 0x11, 0x0E);
    crtc(&mut v, 0x01, 0x27);
    assert_eq!(crtc_read(&mut v, 0x01), 0x27);
    // Undefined CRTC registers read 0.
    crtc(&mut v, 0x1F, 0x55);
    assert_eq!(crtc_read(&mut v, 0x1F), 0x00);
    assert_eq!(inb(&mut v, PORT_CRTC_INDEX_COLOR), 0x1F);
}

#[test]
fn io_address_select_and_feature_control() {
    let mut v = Vga::new();
    assert_eq!(inb(&mut v, PORT_MISC_READ), 0x67);
    crtc(&mut v, 0x0E, 0x12);
    // Colour: the 3Bx CRTC pair does not answer reads.
    outb(&mut v, PORT_CRTC_INDEX_MONO, 0x0E);
    assert_eq!(inb(&mut v, PORT_CRTC_DATA_MONO), 0xFF);
    assert_eq!(inb(&mut v, PORT_CRTC_INDEX_MONO), 0xFF);
    // Mono: the 3Dx pair goes quiet for reads, 3Bx answers.
    outb(&mut v, PORT_MISC_WRITE, 0x66);
    assert_eq!(inb(&mut v, PORT_CRTC_DATA_COLOR), 0xFF);
    assert_eq!(inb(&mut v, PORT_CRTC_DATA_MONO), 0x12);
    // Writes reach the CRTC at either address (the BIOS programs it before Misc Output).
    outb(&mut v, PORT_CRTC_INDEX_MONO, 0x0F);
    outb(&mut v, PORT_CRTC_DATA_MONO, 0x34);
    outw(&mut v, PORT_CRTC_INDEX_COLOR, 0x560F);
    assert_eq!(inb(&mut v, PORT_CRTC_DATA_MONO), 0x56);
    // Feature Control: written at 3BA/3DA, read at 3CA.
    outb(&mut v, PORT_STATUS1_MONO, 0x03);
    assert_eq!(inb(&mut v, PORT_FEATURE_READ), 0x03);
    outb(&mut v, PORT_STATUS1_COLOR, 0x08);
    assert_eq!(inb(&mut v, PORT_FEATURE_READ), 0x08);
}

#[test]
fn input_status_1_toggles_deterministically() {
    let mut v = Vga::new();
    let reads: Vec<u8> = (0..8).map(|_| inb(&mut v, PORT_STATUS1_COLOR)).collect();
    assert_eq!(reads, [0x00, 0x01, 0x09, 0x09, 0x00, 0x01, 0x09, 0x09]);
    // A BIOS-style "wait for retrace to end, then for it to start" loop terminates.
    let mut n = 0;
    while inb(&mut v, PORT_STATUS1_COLOR) & 0x08 != 0 {
        n += 1;
        assert!(n < 8);
    }
    while inb(&mut v, PORT_STATUS1_COLOR) & 0x08 == 0 {
        n += 1;
        assert!(n < 8);
    }
}

#[test]
fn word_and_dword_port_accesses() {
    let mut v = Vga::new();
    // outw to an index port: index in the low byte, data in the high byte.
    outw(&mut v, PORT_CRTC_INDEX_COLOR, 0x070E);
    outw(&mut v, PORT_CRTC_INDEX_COLOR, 0x810F);
    assert_eq!(v.text_snapshot().cursor, Some((1, 24)));
    assert_eq!(inw(&mut v, PORT_CRTC_INDEX_COLOR), 0x810F);
    outw(&mut v, PORT_SEQ_INDEX, 0x0302);
    assert_eq!(inw(&mut v, PORT_SEQ_INDEX), 0x0302);
    outw(&mut v, PORT_GC_INDEX, 0x0F08);
    assert_eq!(inw(&mut v, PORT_GC_INDEX), 0x0F08);
    // A 32-bit write to an index port is index + data and touches nothing after them.
    outb(&mut v, PORT_DAC_MASK, 0xFF);
    v.write(PORT_SEQ_INDEX, IoSize::Dword, 0x0000_0F02);
    assert_eq!(inb(&mut v, PORT_DAC_MASK), 0xFF);
    assert_eq!(inw(&mut v, PORT_SEQ_INDEX), 0x0F02);
    v.write(PORT_CRTC_INDEX_COLOR, IoSize::Dword, 0xFFFF_200A);
    assert_eq!(crtc_read(&mut v, 0x0A), 0x20);
    v.write(PORT_GC_INDEX, IoSize::Dword, 0x1234_0005);
    assert_eq!(inw(&mut v, PORT_GC_INDEX), 0x0005);
    // A 16-bit write to 0x3C8 is index then the first data byte.
    outw(&mut v, PORT_DAC_WRITE_INDEX, 0x2A03);
    outb(&mut v, PORT_DAC_DATA, 0x00);
    outb(&mut v, PORT_DAC_DATA, 0x00);
    assert_eq!(v.dac_rgb(3), [0xAA, 0, 0]);
    // Word reads of ports past the adapter answer ones for those bytes.
    assert_eq!(inw(&mut v, PORT_GC_DATA) & 0xFF00, 0xFF00);
    assert_eq!(v.read(0x3E0, IoSize::Dword), 0xFFFF_FFFF);
}

// ----------------------------------------------------------------------------------------
// VBE.
// ----------------------------------------------------------------------------------------

#[test]
fn vbe_id_handshake_and_capabilities() {
    let mut v = Vga::new();
    dispi_write(&mut v, INDEX_ID, ID0);
    assert_eq!(dispi_read(&mut v, INDEX_ID), ID0);
    dispi_write(&mut v, INDEX_ID, ID5);
    assert_eq!(dispi_read(&mut v, INDEX_ID), 0xB0C5);
    // Unknown versions are refused.
    dispi_write(&mut v, INDEX_ID, 0xB0C9);
    assert_eq!(dispi_read(&mut v, INDEX_ID), 0xB0C5);
    assert_eq!(dispi_read(&mut v, INDEX_VIDEO_MEMORY_64K), 256);
    // GETCAPS: XRES/YRES/BPP report maxima while the flag is set.
    let en = dispi_read(&mut v, INDEX_ENABLE);
    dispi_write(&mut v, INDEX_ENABLE, en | GETCAPS);
    assert_eq!(dispi_read(&mut v, INDEX_XRES), MAX_XRES);
    assert_eq!(dispi_read(&mut v, INDEX_YRES), MAX_YRES);
    assert_eq!(dispi_read(&mut v, INDEX_BPP), MAX_BPP);
    dispi_write(&mut v, INDEX_ENABLE, en);
    assert_eq!(dispi_read(&mut v, INDEX_XRES), 640);
    // 0x1D0 is a second data port; a 32-bit write to 0x1CE carries index and data.
    outw(&mut v, PORT_VBE_INDEX, INDEX_ID);
    assert_eq!(v.read(PORT_VBE_DATA_ALT, IoSize::Word), 0xB0C5);
    v.write(PORT_VBE_INDEX, IoSize::Dword, u32::from(ID0) << 16 | u32::from(INDEX_ID));
    assert_eq!(v.read(PORT_VBE_INDEX, IoSize::Dword), u32::from(ID0) << 16 | u32::from(INDEX_ID));
    // Unknown indices read 0.
    assert_eq!(dispi_read(&mut v, 0x55), 0);
}

#[test]
fn vbe_mode_set_like_seavgabios() {
    let mut v = Vga::new();
    write_str(&mut v, 0, 0, "text", 0x07);
    dispi_write(&mut v, INDEX_ENABLE, 0);
    dispi_write(&mut v, INDEX_BPP, 32);
    dispi_write(&mut v, INDEX_XRES, 1024);
    dispi_write(&mut v, INDEX_YRES, 768);
    dispi_write(&mut v, INDEX_BANK, 0);
    let g0 = v.generation();
    dispi_write(&mut v, INDEX_ENABLE, ENABLED | LFB_ENABLED);
    assert!(v.generation() > g0);
    assert_eq!(v.mode(), VgaMode::Graphics { width: 1024, height: 768, bpp: 32 });
    assert_eq!(dispi_read(&mut v, INDEX_ENABLE), ENABLED | LFB_ENABLED);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_WIDTH), 1024);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_HEIGHT), ((16 << 20) / 4096) as u16);
    // Memory was cleared (the text is gone).
    assert_eq!(v.plane_byte(0, 0), 0);
    // The VGA compatibility registers SeaVGABIOS writes after enabling do not matter.
    crtc(&mut v, 0x11, 0x00);
    crtc(&mut v, 0x01, (1024 / 8 - 1) as u8);
    gc(&mut v, 0x06, 0x05);
    seq(&mut v, 0x04, 0x0E);
    assert_eq!(v.mode(), VgaMode::Graphics { width: 1024, height: 768, bpp: 32 });
    assert_eq!(v.text_snapshot().cells.len(), 0);

    // The linear framebuffer and the banked window see the same bytes.
    let base = v.lfb_base().0;
    v.mmio_write(Phys(base + 0x10004), IoSize::Dword, 0x00FF_8040);
    assert_eq!(v.lfb_read(0x10004, IoSize::Dword), 0x00FF_8040);
    dispi_write(&mut v, INDEX_BANK, 1);
    assert_eq!(dispi_read(&mut v, INDEX_BANK), 1);
    assert_eq!(v.mmio_read(Phys(0xA0004), IoSize::Dword), 0x00FF_8040);
    v.mmio_write(Phys(0xA0000), IoSize::Word, 0xBEEF);
    assert_eq!(v.lfb_read(0x10000, IoSize::Word), 0xBEEF);
    // The VBE window is A0000-AFFFF only.
    assert_eq!(peek(&mut v, 0xB8000), 0xFF);
    // Banks past video memory are refused, and read back as the old bank.
    dispi_write(&mut v, INDEX_BANK, 256);
    assert_eq!(dispi_read(&mut v, INDEX_BANK), 1);
    dispi_write(&mut v, INDEX_BANK, 255);
    poke(&mut v, 0xAFFFF, 0x5A);
    assert_eq!(v.vram()[VRAM_SIZE - 1], 0x5A);

    // The LFB can move; its last byte and the byte after it.
    v.set_lfb_base(Phys(0xFD00_0000));
    assert!(v.claims(Phys(0xFD00_0000 + VRAM_SIZE as u32 - 1)));
    assert!(!v.claims(Phys(0xFD00_0000 + VRAM_SIZE as u32)));
    assert_eq!(v.mmio_read(Phys(0xFD00_0000 + VRAM_SIZE as u32 - 2), IoSize::Dword), 0xFFFF_5A00);
    assert_eq!(v.lfb_read(VRAM_SIZE as u32 - 1, IoSize::Word), 0xFF5A);

    // Disabling returns to VGA text.
    dispi_write(&mut v, INDEX_ENABLE, 0);
    set_mode_3(&mut v);
    assert_eq!(v.mode(), VgaMode::Text { cols: 80, rows: 25 });
}

#[test]
fn vbe_noclearmem_and_8bit_dac() {
    let mut v = Vga::new();
    write_str(&mut v, 0, 0, "kept", 0x07);
    dispi_write(&mut v, INDEX_XRES, 640);
    dispi_write(&mut v, INDEX_YRES, 480);
    dispi_write(&mut v, INDEX_BPP, 8);
    dispi_write(&mut v, INDEX_ENABLE, ENABLED | NOCLEARMEM | DAC_8BIT);
    assert_eq!(v.plane_byte(0, 0), b'k');
    // The 8-bit DAC keeps all eight bits.
    outb(&mut v, PORT_DAC_WRITE_INDEX, 1);
    for c in [0xFF, 0x80, 0x01] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    assert_eq!(v.dac_rgb(1), [0xFF, 0x80, 0x01]);
    outb(&mut v, PORT_DAC_READ_INDEX, 1);
    assert_eq!(inb(&mut v, PORT_DAC_DATA), 0xFF);
    // Invalid depths and resolutions are ignored; bpp 0 means 8.
    dispi_write(&mut v, INDEX_BPP, 7);
    assert_eq!(dispi_read(&mut v, INDEX_BPP), 8);
    dispi_write(&mut v, INDEX_XRES, 9999);
    assert_eq!(dispi_read(&mut v, INDEX_XRES), 640);
    dispi_write(&mut v, INDEX_BPP, 0);
    assert_eq!(dispi_read(&mut v, INDEX_BPP), 8);
    // Virtual width: at least XRES, at most what memory holds for YRES lines.
    dispi_write(&mut v, INDEX_VIRT_WIDTH, 100);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_WIDTH), 640);
    dispi_write(&mut v, INDEX_VIRT_WIDTH, 2048);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_WIDTH), 2048);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_HEIGHT), 8192);
    dispi_write(&mut v, INDEX_VIRT_WIDTH, 0xFFFF);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_WIDTH), ((16 << 20) / 480) as u16);
    dispi_write(&mut v, INDEX_BPP, 32);
    dispi_write(&mut v, INDEX_VIRT_WIDTH, 0xFFFF);
    assert_eq!(dispi_read(&mut v, INDEX_VIRT_WIDTH), ((16 << 20) / 480 / 4) as u16);
}

#[test]
fn vbe_4bpp_uses_the_planar_pipeline_with_banks() {
    let mut v = Vga::new();
    planar(&mut v);
    dispi_write(&mut v, INDEX_BPP, 4);
    dispi_write(&mut v, INDEX_XRES, 1024);
    dispi_write(&mut v, INDEX_YRES, 768);
    dispi_write(&mut v, INDEX_ENABLE, ENABLED);
    dispi_write(&mut v, INDEX_BANK, 1);
    gc(&mut v, 0x00, 0x09);
    gc(&mut v, 0x01, 0x0F);
    poke(&mut v, 0xA0003, 0x00);
    assert_eq!(planes_at(&v, 0x10003), [0xFF, 0x00, 0x00, 0xFF]);
    assert_eq!(v.mode(), VgaMode::Graphics { width: 1024, height: 768, bpp: 4 });
}

// ----------------------------------------------------------------------------------------
// Generation counter and robustness.
// ----------------------------------------------------------------------------------------

#[test]
fn generation_counts_screen_changes_only() {
    let mut v = Vga::new();
    let g = v.generation();
    poke(&mut v, 0xB8000, b'a');
    let g1 = v.generation();
    assert!(g1 > g);
    // The same byte again, status reads, index writes and Map Mask changes are not
    // screen changes.
    poke(&mut v, 0xB8000, b'a');
    inb(&mut v, PORT_STATUS1_COLOR);
    outb(&mut v, PORT_CRTC_INDEX_COLOR, 0x0E);
    seq(&mut v, 0x02, 0x03);
    outb(&mut v, PORT_DAC_READ_INDEX, 0);
    inb(&mut v, PORT_DAC_DATA);
    assert_eq!(v.generation(), g1);
    crtc(&mut v, 0x0F, 0x01);
    let g2 = v.generation();
    assert!(g2 > g1);
    outb(&mut v, PORT_DAC_WRITE_INDEX, 0);
    for c in [1, 2, 3] {
        outb(&mut v, PORT_DAC_DATA, c);
    }
    assert!(v.generation() > g2);
}

#[test]
fn claims_ports_and_addresses() {
    let v = Vga::new();
    for p in [0x1CE, 0x1CF, 0x1D0, 0x3B4, 0x3B5, 0x3BA, 0x3C0, 0x3C9, 0x3CF, 0x3D4, 0x3D5, 0x3DA] {
        assert!(Vga::claims_port(p), "{p:#x}");
    }
    for p in [0x1CD, 0x1D1, 0x3B0, 0x3BB, 0x3D0, 0x3DB, 0x3F8, 0x60] {
        assert!(!Vga::claims_port(p), "{p:#x}");
    }
    assert!(v.claims(Phys(0xA0000)));
    assert!(v.claims(Phys(0xBFFFF)));
    assert!(!v.claims(Phys(0xC0000)));
    assert!(!v.claims(Phys(0x9FFFF)));
    assert!(v.claims(Phys(0xE000_0000)));
    assert!(!v.claims(Phys(0xDFFF_FFFF)));
}

/// A small deterministic generator (xorshift32) for the robustness test.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

#[test]
fn nothing_a_guest_does_panics() {
    let mut v = Vga::new();
    let mut rng = Rng(0x1234_5678);
    let sizes = [IoSize::Byte, IoSize::Word, IoSize::Dword];
    for round in 0..20_000u32 {
        let r = rng.next();
        let size = sizes[(r % 3) as usize];
        let value = rng.next();
        match (r >> 2) % 6 {
            0 => {
                let port = 0x3B0 + (rng.next() % 0x30) as u16;
                v.write(port, size, value);
            }
            1 => {
                let port = 0x3B0 + (rng.next() % 0x30) as u16;
                v.read(port, size);
            }
            2 => {
                let port = 0x1CC + (rng.next() % 6) as u16;
                if value & 1 != 0 {
                    v.write(port, size, value);
                } else {
                    v.read(port, size);
                }
            }
            3 => {
                let addr = 0x9FFF0 + rng.next() % 0x20020;
                v.mmio_write(Phys(addr), size, value);
            }
            4 => {
                let addr = 0x9FFF0 + rng.next() % 0x20020;
                v.mmio_read(Phys(addr), size);
            }
            _ => {
                let off = v.lfb_size().wrapping_sub(8).wrapping_add(rng.next() % 16);
                v.lfb_write(off, size, value);
                v.lfb_read(off, size);
                v.mem_write(rng.next(), size, value);
            }
        }
        if round % 500 == 0 {
            let _ = v.mode();
            let t = v.text_snapshot();
            assert_eq!(t.cells.len(), usize::from(t.cols) * usize::from(t.rows));
            let _ = t.to_text();
            let _ = v.text_palette();
            let _ = v.glyph((r >> 8) as u8, (r >> 16) as u8);
        }
    }
    // Extreme register values on a fresh adapter.
    let mut v = Vga::new();
    crtc(&mut v, 0x11, 0x00);
    for (i, val) in [(0x01, 0xFF), (0x07, 0xFF), (0x09, 0x00), (0x12, 0xFF), (0x13, 0xFF), (0x0C, 0xFF)] {
        crtc(&mut v, i, val);
    }
    let t = v.text_snapshot();
    assert_eq!((t.cols, t.rows), (256, 1024));
    let _ = t.to_text();
    for v_cr9 in [0x1F, 0x80, 0xFF] {
        crtc(&mut v, 0x09, v_cr9);
        let _ = v.mode();
        let _ = v.text_snapshot();
    }
}
