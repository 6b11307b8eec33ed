//! `Screen`: what a machine's (or a VM's) VGA shows, as flat arrays in wasm memory that
//! the page reads in place (`crate::front::screen::ScreenView`). The page makes one per
//! display and hands it to `Machine.refreshScreen(screen)` or `Vmm.refreshScreen(i, screen)`;
//! after a refresh, the pointers below are valid until the next one (views on them must be
//! rebuilt when wasm memory grows, or when the mode or size changed).

use crate::devices::vga::Vga;
use crate::front::screen::{ScreenView, FONT_GLYPHS, GLYPH_BYTES};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(js_name = Screen)]
pub struct WebScreen {
    view: ScreenView,
}

impl Default for WebScreen {
    fn default() -> Self {
        WebScreen::new()
    }
}

impl WebScreen {
    /// Take the VGA's current picture; true when anything changed.
    pub(crate) fn refresh(&mut self, vga: &Vga) -> bool {
        self.view.refresh(vga)
    }
}

#[wasm_bindgen(js_class = Screen)]
impl WebScreen {
    #[wasm_bindgen(constructor)]
    pub fn new() -> WebScreen {
        WebScreen { view: ScreenView::new() }
    }

    /// 0 off, 1 text, 2 graphics.
    #[wasm_bindgen(js_name = screenMode)]
    pub fn screen_mode(&self) -> u8 {
        self.view.mode as u8
    }

    #[wasm_bindgen(js_name = textCols)]
    pub fn text_cols(&self) -> u16 {
        self.view.cols
    }

    #[wasm_bindgen(js_name = textRows)]
    pub fn text_rows(&self) -> u16 {
        self.view.rows
    }

    /// `textRows * textCols` u16 cells (character | attribute << 8).
    #[wasm_bindgen(js_name = textPtr)]
    pub fn text_ptr(&self) -> *const u16 {
        self.view.cells.as_ptr()
    }

    /// `textRows` bytes, 1 for rows changed since `clearDirty()`.
    #[wasm_bindgen(js_name = dirtyPtr)]
    pub fn dirty_ptr(&self) -> *const u8 {
        self.view.dirty.as_ptr()
    }

    #[wasm_bindgen(js_name = clearDirty)]
    pub fn clear_dirty(&mut self) {
        self.view.clear_dirty();
    }

    /// Cursor column, or -1 when the cursor is hidden.
    #[wasm_bindgen(js_name = cursorCol)]
    pub fn cursor_col(&self) -> i32 {
        self.view.cursor.map_or(-1, |c| i32::from(c.0))
    }

    /// Cursor row, or -1 when the cursor is hidden.
    #[wasm_bindgen(js_name = cursorRow)]
    pub fn cursor_row(&self) -> i32 {
        self.view.cursor.map_or(-1, |c| i32::from(c.1))
    }

    /// Cursor start scan line << 8 | end scan line.
    #[wasm_bindgen(js_name = cursorShape)]
    pub fn cursor_shape(&self) -> u16 {
        u16::from(self.view.cursor_shape.0) << 8 | u16::from(self.view.cursor_shape.1)
    }

    #[wasm_bindgen(js_name = charHeight)]
    pub fn char_height(&self) -> u8 {
        self.view.char_height
    }

    /// Attribute bit 7 blinks (true) or brightens the background (false).
    pub fn blink(&self) -> bool {
        self.view.blink
    }

    /// 16 u32 text colours, 0x00RRGGBB.
    #[wasm_bindgen(js_name = palettePtr)]
    pub fn palette_ptr(&self) -> *const u32 {
        self.view.palette.as_ptr()
    }

    /// 512 glyphs of 32 bytes (map A, then map B), one byte per scan line, bit 7 leftmost.
    #[wasm_bindgen(js_name = fontPtr)]
    pub fn font_ptr(&self) -> *const u8 {
        self.view.font.as_ptr()
    }

    /// Bytes in the font view.
    #[wasm_bindgen(js_name = fontLen)]
    pub fn font_len(&self) -> usize {
        FONT_GLYPHS * GLYPH_BYTES
    }

    /// Graphics modes: width in pixels.
    #[wasm_bindgen(js_name = pixelWidth)]
    pub fn pixel_width(&self) -> u16 {
        self.view.width
    }

    /// Graphics modes: height in pixels.
    #[wasm_bindgen(js_name = pixelHeight)]
    pub fn pixel_height(&self) -> u16 {
        self.view.height
    }

    /// Graphics modes: width x height pixels as bytes R, G, B, A (an `ImageData`'s layout).
    #[wasm_bindgen(js_name = pixelsPtr)]
    pub fn pixels_ptr(&self) -> *const u32 {
        self.view.pixels.as_ptr()
    }
}
