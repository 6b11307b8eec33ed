//! [`ScreenView`]: the VGA's picture as flat arrays a page can read in place (the wasm
//! façade hands out pointers into wasm memory): text cells with a dirty flag per row, the
//! cursor, the sixteen text colours, the fonts in plane 2, and an RGBA framebuffer in
//! graphics modes. `refresh` does nothing when the VGA's generation counter has not moved,
//! so an idle screen costs one comparison per frame.

use crate::devices::vga::{Vga, VgaMode};
use alloc::vec;
use alloc::vec::Vec;

/// What the screen shows, as [`ScreenView::mode`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ScreenMode {
    Off = 0,
    Text = 1,
    Graphics = 2,
}

/// Glyphs in the font view: map A's 256 then map B's (attribute bit 3 picks the map).
pub const FONT_GLYPHS: usize = 512;
/// Bytes per glyph in plane 2 (rows past the character height are unused).
pub const GLYPH_BYTES: usize = 32;

/// The screen as flat arrays, refreshed from the VGA.
pub struct ScreenView {
    generation: Option<u64>,
    pub mode: ScreenMode,
    pub cols: u16,
    pub rows: u16,
    /// `rows * cols` cells: character | attribute << 8.
    pub cells: Vec<u16>,
    /// One byte per row: 1 when the row changed since the last [`ScreenView::clear_dirty`].
    pub dirty: Vec<u8>,
    /// Cursor cell, or `None` when hidden.
    pub cursor: Option<(u16, u16)>,
    /// Cursor start and end scan lines.
    pub cursor_shape: (u8, u8),
    pub char_height: u8,
    /// Attribute bit 7 blinks (true) or selects bright backgrounds.
    pub blink: bool,
    /// The sixteen text colours as 0x00RRGGBB.
    pub palette: [u32; 16],
    /// [`FONT_GLYPHS`] glyphs of [`GLYPH_BYTES`] bytes, from plane 2.
    pub font: Vec<u8>,
    /// Graphics modes: width x height pixels, bytes R, G, B, A.
    pub pixels: Vec<u32>,
    pub width: u16,
    pub height: u16,
}

impl Default for ScreenView {
    fn default() -> Self {
        Self::new()
    }
}

impl ScreenView {
    pub fn new() -> Self {
        Self {
            generation: None,
            mode: ScreenMode::Off,
            cols: 0,
            rows: 0,
            cells: Vec::new(),
            dirty: Vec::new(),
            cursor: None,
            cursor_shape: (0, 0),
            char_height: 16,
            blink: false,
            palette: [0; 16],
            font: vec![0; FONT_GLYPHS * GLYPH_BYTES],
            pixels: Vec::new(),
            width: 0,
            height: 0,
        }
    }

    /// Bring the view up to date with `vga`; true when anything changed. The cursor is
    /// re-read every time (moving it does not count as a change of video memory); the
    /// cells are copied only when the VGA's generation moved.
    pub fn refresh(&mut self, vga: &Vga) -> bool {
        let (cursor, shape) = vga.cursor();
        let cursor_moved = cursor != self.cursor || shape != self.cursor_shape;
        self.cursor = cursor;
        self.cursor_shape = shape;
        if self.generation == Some(vga.generation()) {
            return cursor_moved;
        }
        self.generation = Some(vga.generation());
        self.char_height = vga.char_height();
        self.blink = vga.blink_enabled();
        self.palette = vga.text_palette();
        match vga.mode() {
            VgaMode::Off => self.mode = ScreenMode::Off,
            VgaMode::Graphics { .. } => {
                self.mode = ScreenMode::Graphics;
                let (w, h) = vga.render_rgba(&mut self.pixels).unwrap_or((0, 0));
                self.width = w;
                self.height = h;
            }
            VgaMode::Text { .. } => {
                self.mode = ScreenMode::Text;
                let text = vga.text_snapshot();
                if (text.cols, text.rows) != (self.cols, self.rows) {
                    self.cols = text.cols;
                    self.rows = text.rows;
                    self.cells = vec![0; text.cells.len()];
                    self.dirty = vec![1; usize::from(text.rows)];
                }
                let cols = usize::from(self.cols).max(1);
                for (row, (new, old)) in text.cells.chunks(cols).zip(self.cells.chunks_mut(cols)).enumerate() {
                    if new != old {
                        old.copy_from_slice(new);
                        self.dirty[row] = 1;
                    }
                }
                for (i, glyph) in self.font.chunks_mut(GLYPH_BYTES).enumerate() {
                    let attr = if i >= 256 { 0x08 } else { 0 };
                    glyph.copy_from_slice(&vga.glyph(i as u8, attr));
                }
            }
        }
        true
    }

    /// Mark every row drawn.
    pub fn clear_dirty(&mut self) {
        self.dirty.iter_mut().for_each(|d| *d = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Phys;
    use crate::bus::IoSize;

    #[test]
    fn rows_turn_dirty_when_their_cells_change() {
        let mut vga = Vga::new();
        let mut view = ScreenView::new();
        assert!(view.refresh(&vga));
        assert_eq!((view.mode, view.cols, view.rows), (ScreenMode::Text, 80, 25));
        view.clear_dirty();
        assert!(!view.refresh(&vga), "nothing changed");
        // Row 2, column 0 of the text buffer at B8000 (odd/even: character then attribute).
        vga.mmio_write(Phys(0xB8000 + 2 * 160), IoSize::Word, 0x1F41);
        assert!(view.refresh(&vga));
        assert_eq!(view.dirty.iter().position(|&d| d == 1), Some(2));
        assert_eq!(view.dirty.iter().filter(|&&d| d == 1).count(), 1);
        assert_eq!(view.cells[2 * 80], 0x1F41);
        let snap = vga.text_snapshot();
        assert_eq!((view.cursor, view.cursor_shape), (snap.cursor, snap.cursor_shape));
    }
}
