//! The Bochs VBE "DISPI" register file: an index port (0x1CE) and a data port (0x1CF)
//! through which a VBE BIOS (SeaVGABIOS's bochsvga driver) sets resolution, depth, bank and
//! virtual screen, enables the linear framebuffer, and learns the adapter's limits.
//!
//! Source: Bochs "VBE Display API" (vbe_display_api.txt): register indices 0-9 and the
//! API history (0xB0C0-0xB0C5); index 0xA (VBE_DISPI_INDEX_VIDEO_MEMORY_64K) added with
//! 0xB0C5; ENABLE flags VBE_DISPI_ENABLED 0x01, VBE_DISPI_GETCAPS 0x02,
//! VBE_DISPI_8BIT_DAC 0x20, VBE_DISPI_LFB_ENABLED 0x40, VBE_DISPI_NOCLEARMEM 0x80.
//!
//! Where the document says a write should "PANIC" (resolution or depth changed while
//! enabled, out-of-range values), this model never panics: writes while enabled are
//! accepted, out-of-range values are ignored and the register keeps its old value.

use serde::{Deserialize, Serialize};

/// Register indices (vbe_display_api.txt "#defines", VBE_DISPI_INDEX_*).
pub const INDEX_ID: u16 = 0x0;
pub const INDEX_XRES: u16 = 0x1;
pub const INDEX_YRES: u16 = 0x2;
pub const INDEX_BPP: u16 = 0x3;
pub const INDEX_ENABLE: u16 = 0x4;
pub const INDEX_BANK: u16 = 0x5;
pub const INDEX_VIRT_WIDTH: u16 = 0x6;
pub const INDEX_VIRT_HEIGHT: u16 = 0x7;
pub const INDEX_X_OFFSET: u16 = 0x8;
pub const INDEX_Y_OFFSET: u16 = 0x9;
pub const INDEX_VIDEO_MEMORY_64K: u16 = 0xA;

/// Interface versions a BIOS may write to the ID register (VBE_DISPI_ID0..VBE_DISPI_ID5).
pub const ID0: u16 = 0xB0C0;
pub const ID5: u16 = 0xB0C5;

/// ENABLE register flags.
pub const ENABLED: u16 = 0x01;
pub const GETCAPS: u16 = 0x02;
pub const DAC_8BIT: u16 = 0x20;
pub const LFB_ENABLED: u16 = 0x40;
pub const NOCLEARMEM: u16 = 0x80;
const ENABLE_FLAGS: u16 = ENABLED | GETCAPS | DAC_8BIT | LFB_ENABLED | NOCLEARMEM;

/// Limits reported through GETCAPS. 2560x1600 at 32 bpp is 16,384,000 bytes, within the
/// 16 MiB of video memory.
pub const MAX_XRES: u16 = 2560;
pub const MAX_YRES: u16 = 1600;
pub const MAX_BPP: u16 = 32;

/// What a data write did, for the adapter to act on.
#[derive(Default)]
pub(super) struct WriteOutcome {
    /// The displayed picture may have changed.
    pub changed: bool,
    /// A mode was enabled without VBE_DISPI_NOCLEARMEM: video memory must be cleared.
    pub clear_memory: bool,
}

/// The DISPI registers.
#[derive(Serialize, Deserialize)]
pub(super) struct Vbe {
    index: u16,
    id: u16,
    xres: u16,
    yres: u16,
    bpp: u16,
    enable: u16,
    bank: u16,
    virt_width: u16,
    virt_height: u16,
    x_offset: u16,
    y_offset: u16,
    vram_size: u32,
}

impl Vbe {
    /// Disabled, 640x480x8, ID reading 0xB0C5 (the newest interface this model speaks).
    pub fn new(vram_size: u32) -> Self {
        Self {
            index: 0,
            id: ID5,
            xres: 640,
            yres: 480,
            bpp: 8,
            enable: 0,
            bank: 0,
            virt_width: 640,
            virt_height: 480,
            x_offset: 0,
            y_offset: 0,
            vram_size,
        }
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    pub fn set_index(&mut self, index: u16) {
        self.index = index;
    }

    pub fn enabled(&self) -> bool {
        self.enable & ENABLED != 0
    }

    pub fn dac_8bit(&self) -> bool {
        self.enable & DAC_8BIT != 0
    }

    pub fn bpp(&self) -> u16 {
        self.bpp
    }

    /// Byte offset of the bank shown in the A0000 window (64 KiB granularity).
    pub fn bank_offset(&self) -> u32 {
        u32::from(self.bank) << 16
    }

    /// Width, height and depth of the enabled mode.
    pub fn geometry(&self) -> (u16, u16, u8) {
        (self.xres, self.yres, self.bpp as u8)
    }

    /// Bytes per scan line of `width` pixels at the current depth (15 bpp uses 16 bits).
    fn line_bytes(&self, width: u16) -> u32 {
        let bits = if self.bpp == 15 { 16 } else { u32::from(self.bpp) };
        (u32::from(width) * bits).div_ceil(8)
    }

    /// Lines of `width` pixels that fit in video memory.
    fn max_lines(&self, width: u16) -> u16 {
        match self.line_bytes(width) {
            0 => 0,
            n => (self.vram_size / n).min(u32::from(u16::MAX)) as u16,
        }
    }

    /// The widest virtual screen whose lines still hold YRES scan lines in video memory.
    fn widest(&self) -> u16 {
        let bits = if self.bpp == 15 { 16 } else { u32::from(self.bpp.max(1)) };
        let line = self.vram_size / u32::from(self.yres.max(1));
        (u64::from(line) * 8 / u64::from(bits)).min(u64::from(u16::MAX)) as u16
    }

    /// Banks the window can reach: video memory, or one plane of it at 4 bpp.
    fn bank_count(&self) -> u32 {
        let bytes = if self.bpp == 4 { self.vram_size / 4 } else { self.vram_size };
        bytes >> 16
    }

    pub fn read_data(&self) -> u16 {
        let caps = self.enable & GETCAPS != 0;
        match self.index {
            INDEX_ID => self.id,
            // With GETCAPS set, XRES, YRES and BPP return the adapter's maxima (0xB0C3).
            INDEX_XRES if caps => MAX_XRES,
            INDEX_YRES if caps => MAX_YRES,
            INDEX_BPP if caps => MAX_BPP,
            INDEX_XRES => self.xres,
            INDEX_YRES => self.yres,
            INDEX_BPP => self.bpp,
            INDEX_ENABLE => self.enable,
            INDEX_BANK => self.bank,
            INDEX_VIRT_WIDTH => self.virt_width,
            INDEX_VIRT_HEIGHT => self.virt_height,
            INDEX_X_OFFSET => self.x_offset,
            INDEX_Y_OFFSET => self.y_offset,
            INDEX_VIDEO_MEMORY_64K => (self.vram_size >> 16).min(u32::from(u16::MAX)) as u16,
            _ => 0,
        }
    }

    pub fn write_data(&mut self, value: u16) -> WriteOutcome {
        let mut out = WriteOutcome::default();
        let enabled = self.enabled();
        match self.index {
            // The BIOS writes the version it speaks and reads it back (0xB0C0 handshake).
            INDEX_ID if (ID0..=ID5).contains(&value) => self.id = value,
            INDEX_XRES if value <= MAX_XRES => {
                self.xres = value;
                out.changed = enabled;
            }
            INDEX_YRES if value <= MAX_YRES => {
                self.yres = value;
                out.changed = enabled;
            }
            // 0xB0C2: the value is bits per pixel; 0 means 8.
            INDEX_BPP if matches!(value, 0 | 4 | 8 | 15 | 16 | 24 | 32) => {
                self.bpp = if value == 0 { 8 } else { value };
                out.changed = enabled;
            }
            INDEX_ENABLE => {
                let before = self.enable;
                self.enable = value & ENABLE_FLAGS;
                let now = self.enabled();
                if now && !enabled {
                    // VIRT_WIDTH: "Upon enabling a mode, this will be set to the current
                    // xres"; VIRT_HEIGHT follows from the memory left.
                    self.virt_width = self.xres;
                    self.virt_height = self.max_lines(self.xres);
                    self.x_offset = 0;
                    self.y_offset = 0;
                    self.bank = 0;
                    out.clear_memory = value & NOCLEARMEM == 0;
                }
                out.changed = self.enable != before || out.clear_memory;
            }
            INDEX_BANK if u32::from(value) < self.bank_count() => self.bank = value,
            INDEX_VIRT_WIDTH => {
                // "Value will be adjusted if current setting is not possible": no narrower
                // than the screen, no wider than memory allows for the screen's lines.
                self.virt_width = value.min(self.widest()).max(self.xres);
                self.virt_height = self.max_lines(self.virt_width);
                out.changed = enabled;
            }
            INDEX_VIRT_HEIGHT => {
                self.virt_height = value.min(self.max_lines(self.virt_width));
                out.changed = enabled;
            }
            INDEX_X_OFFSET => {
                self.x_offset = value;
                out.changed = enabled;
            }
            INDEX_Y_OFFSET => {
                self.y_offset = value;
                out.changed = enabled;
            }
            _ => {}
        }
        out
    }
}
