//! Text modes rendered to data: the character cells the CRT Controller would scan out, the
//! cursor, and a CP437-to-Unicode rendering for golden files. No pixels are drawn.
//!
//! Geometry comes from the CRT Controller as the IBM VGA Technical Reference defines its
//! registers: columns = Horizontal Display End (01h) + 1; rows = displayed scan lines
//! (Vertical Display End 12h with Overflow 07h bits 1 and 6, + 1, halved by Maximum Scan
//! Line 09h bit 7) / character height (Maximum Scan Line bits 4-0, + 1); the screen starts
//! at Start Address (0Ch/0Dh) and each character row begins 2 x Offset (13h) character
//! addresses after the previous one. A character address becomes a plane offset as the
//! CRTC outputs it: shifted left by two in doubleword mode (Underline Location 14h bit 6),
//! by one in word mode (Mode Control 17h bit 6 clear, with bit 0 taken from address bit 13
//! or 15 as Mode Control bit 5 says), unchanged in byte mode. Plane 0 holds the character
//! code, plane 1 the attribute, plane 2 the font.
//!
//! The cursor is at character address Cursor Location (0Eh/0Fh) plus the Cursor Skew
//! (0Bh bits 6-5); it is hidden by Cursor Start (0Ah) bit 5, or, on the VGA, when the
//! cursor end line is above the start line (FreeVGA, "Manipulating the Text-mode Cursor").

use super::*;
use alloc::string::String;

/// A text screen as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextScreen {
    /// Character columns.
    pub cols: u16,
    /// Character rows.
    pub rows: u16,
    /// `rows * cols` cells, row by row: character code | attribute << 8.
    pub cells: Vec<u16>,
    /// Cursor cell as (column, row) when it is enabled and on the screen.
    pub cursor: Option<(u16, u16)>,
    /// Cursor start and end scan lines (CRTC 0Ah and 0Bh, bits 4-0).
    pub cursor_shape: (u8, u8),
}

/// Text-mode layout derived from the CRTC.
pub(super) struct TextGeometry {
    pub cols: u16,
    pub rows: u16,
    /// Character addresses from one row to the next.
    stride: u16,
    start: u16,
}

impl TextScreen {
    /// The cell at (`col`, `row`), or 0 outside the screen.
    pub fn cell(&self, col: u16, row: u16) -> u16 {
        if col >= self.cols || row >= self.rows {
            return 0;
        }
        self.cells.get(usize::from(row) * usize::from(self.cols) + usize::from(col)).copied().unwrap_or(0)
    }

    /// The characters as text, one line per row, each ending in a newline, with trailing
    /// spaces removed. Code page 437 maps to Unicode: 0x20-0x7E as ASCII, the rest to the
    /// glyphs the VGA's ROM font shows for them (0x01 '☺', 0xC9 '╔', 0x7F '⌂' ...); codes
    /// 0x00 and 0xFF, blank on screen, become spaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let cols = usize::from(self.cols);
        if cols == 0 {
            return out;
        }
        for row in self.cells.chunks(cols) {
            let start = out.len();
            for &cell in row {
                out.push(cp437_to_char(cell as u8));
            }
            let trimmed = out[start..].trim_end_matches(' ').len();
            out.truncate(start + trimmed);
            out.push('\n');
        }
        out
    }
}

/// Unicode for CP437 codes 0x00-0x1F (the ROM font's pictures of control codes).
const CP437_LOW: [char; 32] = [
    ' ', '☺', '☻', '♥', '♦', '♣', '♠', '•', '◘', '○', '◙', '♂', '♀', '♪', '♫', '☼', //
    '►', '◄', '↕', '‼', '¶', '§', '▬', '↨', '↑', '↓', '→', '←', '∟', '↔', '▲', '▼',
];

/// Unicode for CP437 codes 0x80-0xFF (the Unicode Consortium's CP437 mapping; 0xFF, a
/// no-break space, becomes a plain space).
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', ' ',
];

/// The Unicode character code page 437 shows for `code`.
pub fn cp437_to_char(code: u8) -> char {
    match code {
        0x00..=0x1F => CP437_LOW[usize::from(code)],
        0x7F => '⌂',
        0x20..=0x7E => char::from(code),
        _ => CP437_HIGH[usize::from(code - 0x80)],
    }
}

impl Vga {
    /// The text layout the CRTC registers describe (meaningful in alphanumeric modes).
    pub(super) fn text_geometry(&self) -> TextGeometry {
        let cols = u16::from(self.crtc[CR_H_DISPLAY_END]) + 1;
        let char_height = u32::from(self.crtc[CR_MAX_SCAN_LINE] & 0x1F) + 1;
        let rows = (self.display_lines() / char_height) as u16;
        let stride = u16::from(self.crtc[CR_OFFSET]) * 2;
        let start = u16::from_be_bytes([self.crtc[CR_START_HIGH], self.crtc[CR_START_LOW]]);
        TextGeometry { cols, rows, stride, start }
    }

    /// Plane offset the CRTC fetches for character address `ma`.
    fn crtc_plane_offset(&self, ma: u16) -> u32 {
        let ma = u32::from(ma);
        let off = if self.crtc[CR_UNDERLINE] & 0x40 != 0 {
            // Doubleword mode: address bits 1-0 come from character address bits 13-12.
            (ma << 2) | ((ma >> 12) & 3)
        } else if self.crtc[CR_MODE_CONTROL] & 0x40 == 0 {
            // Word mode: bit 0 from character address bit 15 (Address Wrap set) or 13.
            let wrap_bit = if self.crtc[CR_MODE_CONTROL] & 0x20 != 0 { 15 } else { 13 };
            (ma << 1) | ((ma >> wrap_bit) & 1)
        } else {
            ma
        };
        off & 0xFFFF
    }

    /// The text screen: characters, attributes and cursor. In graphics modes (VGA or VBE)
    /// the screen is empty (0 x 0). A blanked screen still reports its contents.
    pub fn text_snapshot(&self) -> TextScreen {
        let shape = self.cursor_shape();
        if self.vbe.enabled() || self.vga_graphics() {
            return TextScreen { cols: 0, rows: 0, cells: Vec::new(), cursor: None, cursor_shape: shape };
        }
        let g = self.text_geometry();
        let mut cells = Vec::with_capacity(usize::from(g.cols) * usize::from(g.rows));
        for row in 0..g.rows {
            let row_start = g.start.wrapping_add(row.wrapping_mul(g.stride));
            for col in 0..g.cols {
                let base = self.crtc_plane_offset(row_start.wrapping_add(col)) as usize * 4;
                cells.push(u16::from(self.vram[base]) | u16::from(self.vram[base + 1]) << 8);
            }
        }
        TextScreen { cols: g.cols, rows: g.rows, cells, cursor: self.cursor_cell(&g), cursor_shape: shape }
    }

    /// Cursor start and end scan lines (CRTC 0Ah and 0Bh, bits 4-0).
    fn cursor_shape(&self) -> (u8, u8) {
        (self.crtc[CR_CURSOR_START] & 0x1F, self.crtc[CR_CURSOR_END] & 0x1F)
    }

    /// The cursor as [`Vga::text_snapshot`] reports it (cell and shape) without copying
    /// the screen: for a front end that polls it every frame.
    pub fn cursor(&self) -> (Option<(u16, u16)>, (u8, u8)) {
        let cell =
            if self.vbe.enabled() || self.vga_graphics() { None } else { self.cursor_cell(&self.text_geometry()) };
        (cell, self.cursor_shape())
    }

    fn cursor_cell(&self, g: &TextGeometry) -> Option<(u16, u16)> {
        let start_line = self.crtc[CR_CURSOR_START];
        let end_line = self.crtc[CR_CURSOR_END];
        if start_line & 0x20 != 0 || (start_line & 0x1F) > (end_line & 0x1F) {
            return None;
        }
        let skew = u16::from((end_line >> 5) & 3);
        let location = u16::from_be_bytes([self.crtc[CR_CURSOR_HIGH], self.crtc[CR_CURSOR_LOW]]).wrapping_add(skew);
        let rel = location.wrapping_sub(g.start);
        let (col, row) = if g.stride == 0 { (rel, 0) } else { (rel % g.stride, rel / g.stride) };
        (col < g.cols && row < g.rows).then_some((col, row))
    }

    /// The 32 font bytes of character `ch` as the character generator would fetch them
    /// for attribute `attr`: attribute bit 3 picks Character Map A or B from the
    /// Sequencer Character Map Select register (03h), and map `n` starts in plane 2 at
    /// 16 KiB x (n & 3) + 8 KiB x (n >> 2) (IBM VGA Technical Reference, Character Map
    /// Select register). Rows past the character height are whatever the BIOS put there.
    pub fn glyph(&self, ch: u8, attr: u8) -> [u8; 32] {
        let sel = self.seq[SEQ_CHAR_MAP];
        let map = if attr & 0x08 != 0 { ((sel >> 2) & 3) | ((sel >> 3) & 4) } else { (sel & 3) | ((sel >> 2) & 4) };
        let base = u32::from(map & 3) * 0x4000 + u32::from(map >> 2) * 0x2000 + u32::from(ch) * 32;
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.plane_byte(2, base + i as u32);
        }
        out
    }
}
