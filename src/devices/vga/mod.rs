//! The VGA adapter: the registers of the IBM VGA (Sequencer, CRT Controller, Graphics
//! Controller, Attribute Controller, DAC, general registers), 16 MiB of video memory and the
//! Bochs VBE "DISPI" extension, which is the "stdvga" adapter SeaBIOS's VGA BIOS
//! (`vgabios-stdvga.bin`) drives. Graphics are not drawn; text modes are rendered to data
//! ([`TextScreen`]) for front ends and golden files.
//!
//! Where the parts live:
//! - this file: the register files and their constants, the memory-mapped entry points,
//!   [`VgaMode`] and what the registers say is on the screen;
//! - `ports.rs`: port I/O and the register write rules;
//! - `memory.rs`: the planar memory pipeline (window decode, odd/even, chain-4, read and
//!   write modes, latches) and the linear framebuffer;
//! - `dac.rs`: the colour look-up table and its three-access read and write cycles;
//! - `vbe.rs`: the Bochs VBE DISPI register file;
//! - `text.rs`: [`TextScreen`], text geometry from the CRTC, CP437 to Unicode.
//!
//! Sources: "IBM VGA Technical Reference" (register chapters, cited by register name and
//! index), FreeVGA ("Hardware Level VGA and SVGA Video Programming Information Page", by
//! Joshua Neal) where IBM is terse, and the Bochs "VBE Display API" (`vbe_display_api.txt`)
//! for the DISPI interface.
//!
//! Memory layout: video memory is one buffer of [`VRAM_SIZE`] bytes. The VGA's four planes
//! are interleaved in it: byte `o` of plane `p` is `vram[o * 4 + p]` (the VGA reads the four
//! planes in parallel as one 32-bit word, which is what the latches hold). The 256 KiB
//! planar view is therefore the first 256 KiB of the buffer, chain-4 addressing (plane =
//! address bits 0-1) becomes a plain linear view, and the banked VBE window at A0000 and
//! the linear framebuffer both see the same bytes.
//!
//! Decoding choices this model makes (each documented where it is implemented):
//! - The Miscellaneous Output I/O Address Select bit decides which CRTC pair answers
//!   *reads*; reads of the other pair answer all ones, so adapter detection finds one VGA.
//!   Writes to either pair are accepted, and Input Status 1 answers at both 0x3BA and
//!   0x3DA: SeaVGABIOS programs the CRTC at the new mode's address before it writes the
//!   Miscellaneous Output register, and resets the attribute flip-flop through 0x3DA even
//!   in monochrome modes.
//! - 16-bit writes to an index port (0x3B4, 0x3C0, 0x3C4, 0x3CE, 0x3D4) are an index write
//!   followed by a data write (low byte index, high byte data); 32-bit writes to an index
//!   port do the same with the low 16 bits and ignore the rest. Other wide accesses are
//!   split into byte accesses at consecutive ports, as an 8-bit ISA card sees them.
//! - Input Status 1 advances a four-step cycle on every read (active display, horizontal
//!   blank, vertical retrace, vertical retrace) so polling loops end deterministically.

use crate::addr::Phys;
use crate::bus::IoSize;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

mod dac;
mod memory;
mod ports;
mod render;
mod text;
mod vbe;

#[cfg(test)]
mod tests;

use dac::Dac;
pub use text::TextScreen;
use vbe::Vbe;

// ---------------------------------------------------------------------------------------
// Ports (IBM VGA Technical Reference, "Register addresses"; Bochs vbe_display_api.txt).
// ---------------------------------------------------------------------------------------

/// CRT Controller Address register, monochrome emulation (Misc Output bit 0 = 0).
pub const PORT_CRTC_INDEX_MONO: u16 = 0x3B4;
/// CRT Controller Data register, monochrome emulation.
pub const PORT_CRTC_DATA_MONO: u16 = 0x3B5;
/// Input Status Register 1 (read) / Feature Control (write), monochrome emulation.
pub const PORT_STATUS1_MONO: u16 = 0x3BA;
/// Attribute Controller address register and data write register (one port, a flip-flop
/// chooses between them).
pub const PORT_AC_INDEX: u16 = 0x3C0;
/// Attribute Controller data read register.
pub const PORT_AC_DATA_READ: u16 = 0x3C1;
/// Miscellaneous Output register (write) / Input Status Register 0 (read).
pub const PORT_MISC_WRITE: u16 = 0x3C2;
/// Video Subsystem Enable register.
pub const PORT_VGA_ENABLE: u16 = 0x3C3;
/// Sequencer Address register.
pub const PORT_SEQ_INDEX: u16 = 0x3C4;
/// Sequencer Data register.
pub const PORT_SEQ_DATA: u16 = 0x3C5;
/// DAC PEL Mask register.
pub const PORT_DAC_MASK: u16 = 0x3C6;
/// DAC Address Read Mode register (write) / DAC State register (read).
pub const PORT_DAC_READ_INDEX: u16 = 0x3C7;
/// DAC Address Write Mode register.
pub const PORT_DAC_WRITE_INDEX: u16 = 0x3C8;
/// DAC Data register.
pub const PORT_DAC_DATA: u16 = 0x3C9;
/// Feature Control register, read address.
pub const PORT_FEATURE_READ: u16 = 0x3CA;
/// Miscellaneous Output register, read address.
pub const PORT_MISC_READ: u16 = 0x3CC;
/// Graphics Controller Address register.
pub const PORT_GC_INDEX: u16 = 0x3CE;
/// Graphics Controller Data register.
pub const PORT_GC_DATA: u16 = 0x3CF;
/// CRT Controller Address register, colour emulation (Misc Output bit 0 = 1).
pub const PORT_CRTC_INDEX_COLOR: u16 = 0x3D4;
/// CRT Controller Data register, colour emulation.
pub const PORT_CRTC_DATA_COLOR: u16 = 0x3D5;
/// Input Status Register 1 (read) / Feature Control (write), colour emulation.
pub const PORT_STATUS1_COLOR: u16 = 0x3DA;
/// Bochs VBE DISPI index port (vbe_display_api.txt: VBE_DISPI_IOPORT_INDEX).
pub const PORT_VBE_INDEX: u16 = 0x1CE;
/// Bochs VBE DISPI data port (VBE_DISPI_IOPORT_DATA).
pub const PORT_VBE_DATA: u16 = 0x1CF;
/// Second decode of the DISPI data port, as Bochs provides (so a 32-bit write to 0x1CE
/// carries index and data).
pub const PORT_VBE_DATA_ALT: u16 = 0x1D0;

// ---------------------------------------------------------------------------------------
// Memory.
// ---------------------------------------------------------------------------------------

/// Bytes of video memory: 16 MiB, the largest the DISPI interface describes (ID 0xB0C5).
pub const VRAM_SIZE: usize = 16 << 20;
/// Start of the legacy VGA memory window.
pub const LEGACY_WINDOW_BASE: Phys = Phys(0xA0000);
/// Size of the legacy window, 0xA0000-0xBFFFF.
pub const LEGACY_WINDOW_SIZE: u32 = 0x20000;
/// Default physical base of the linear framebuffer: VBE_DISPI_LFB_PHYSICAL_ADDRESS in
/// vbe_display_api.txt. A PCI "stdvga" moves it to wherever BAR0 is programmed.
pub const DEFAULT_LFB_BASE: Phys = Phys(0xE000_0000);

// ---------------------------------------------------------------------------------------
// Register indices and bits.
// ---------------------------------------------------------------------------------------

/// Miscellaneous Output bit 0: I/O Address Select (1 = 3Dx colour, 0 = 3Bx mono).
const MISC_IO_COLOR: u8 = 0x01;
/// Miscellaneous Output bit 1: Enable RAM (0 disables the host's access to video memory).
const MISC_RAM_ENABLE: u8 = 0x02;

/// Sequencer registers (IBM VGA Technical Reference, "Sequencer Registers").
const SEQ_RESET: usize = 0x00;
const SEQ_CLOCKING: usize = 0x01;
const SEQ_MAP_MASK: usize = 0x02;
const SEQ_CHAR_MAP: usize = 0x03;
const SEQ_MEMORY_MODE: usize = 0x04;
const SEQ_REGS: usize = 5;
/// Writable bits of each sequencer register.
const SEQ_MASKS: [u8; SEQ_REGS] = [0x03, 0x3D, 0x0F, 0x3F, 0x0E];
/// Clocking Mode bit 5: Screen Off.
const SEQ_CLOCKING_SCREEN_OFF: u8 = 0x20;
/// Memory Mode bit 2: Odd/Even disable (0 = even addresses to planes 0/2, odd to 1/3).
const SEQ_MEM_ODD_EVEN_DISABLE: u8 = 0x04;
/// Memory Mode bit 3: Chain 4 (address bits 0-1 select the plane).
const SEQ_MEM_CHAIN4: u8 = 0x08;

/// CRT Controller registers (IBM VGA Technical Reference, "CRT Controller Registers").
const CR_H_DISPLAY_END: usize = 0x01;
const CR_OVERFLOW: usize = 0x07;
const CR_MAX_SCAN_LINE: usize = 0x09;
const CR_CURSOR_START: usize = 0x0A;
const CR_CURSOR_END: usize = 0x0B;
const CR_START_HIGH: usize = 0x0C;
const CR_START_LOW: usize = 0x0D;
const CR_CURSOR_HIGH: usize = 0x0E;
const CR_CURSOR_LOW: usize = 0x0F;
const CR_V_RETRACE_END: usize = 0x11;
const CR_V_DISPLAY_END: usize = 0x12;
const CR_OFFSET: usize = 0x13;
const CR_UNDERLINE: usize = 0x14;
const CR_MODE_CONTROL: usize = 0x17;
const CRTC_REGS: usize = 0x19;
/// Vertical Retrace End bit 7: Protect registers 0-7.
const CR11_PROTECT: u8 = 0x80;
/// Overflow bit 4: Line Compare bit 8, still writable while registers 0-7 are protected
/// (IBM VGA Technical Reference, Vertical Retrace End register, bit 7).
const CR07_LINE_COMPARE_8: u8 = 0x10;

/// Graphics Controller registers (IBM VGA Technical Reference, "Graphics Controller
/// Registers").
const GC_SET_RESET: usize = 0x00;
const GC_ENABLE_SET_RESET: usize = 0x01;
const GC_COLOR_COMPARE: usize = 0x02;
const GC_DATA_ROTATE: usize = 0x03;
const GC_READ_MAP: usize = 0x04;
const GC_MODE: usize = 0x05;
const GC_MISC: usize = 0x06;
const GC_COLOR_DONT_CARE: usize = 0x07;
const GC_BIT_MASK: usize = 0x08;
const GC_REGS: usize = 9;
const GC_MASKS: [u8; GC_REGS] = [0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF];
/// Graphics Mode bit 3: Read Mode 1 (colour compare).
const GC_MODE_READ_COMPARE: u8 = 0x08;
/// Graphics Mode bit 4: Odd/Even (reads select the plane with address bit 0).
const GC_MODE_ODD_EVEN: u8 = 0x10;
/// Graphics Mode bit 5: Shift Register (CGA 4-colour interleave).
const GC_MODE_SHIFT_INTERLEAVE: u8 = 0x20;
/// Miscellaneous bit 0: Graphics Mode (0 = alphanumeric).
const GC_MISC_GRAPHICS: u8 = 0x01;
/// Miscellaneous bit 1: Chain Odd/Even (address bit 0 replaced by a higher-order bit).
const GC_MISC_CHAIN_ODD_EVEN: u8 = 0x02;

/// Attribute Controller registers (IBM VGA Technical Reference, "Attribute Controller
/// Registers"): 0x00-0x0F palette, then these.
const AC_MODE_CONTROL: usize = 0x10;
const AC_PLANE_ENABLE: usize = 0x12;
const AC_COLOR_SELECT: usize = 0x14;
const AC_REGS: usize = 0x15;
const AC_MASKS: [u8; AC_REGS] = [
    0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, 0x3F, // palette
    0xEF, // mode control
    0xFF, // overscan colour
    0x3F, // colour plane enable
    0x0F, // horizontal PEL panning
    0x0F, // colour select
];
/// Attribute Address register bit 5: Palette Address Source (1 = the video uses the
/// palette and the CPU cannot load it; 0 = the CPU may load it and the screen is blank).
const AC_INDEX_PAS: u8 = 0x20;
/// Attribute Mode Control bit 0: Graphics (0 = alphanumeric).
const AC_MODE_GRAPHICS: u8 = 0x01;
/// Attribute Mode Control bit 3: Enable Blink (attribute bit 7 blinks rather than
/// selecting a bright background).
const AC_MODE_BLINK: u8 = 0x08;
/// Attribute Mode Control bit 6: PEL Width (8-bit pixels, 256-colour modes).
const AC_MODE_PEL_WIDTH_8: u8 = 0x40;
/// Attribute Mode Control bit 7: P5, P4 Select (palette bits 5-4 come from Colour Select).
const AC_MODE_P54_SELECT: u8 = 0x80;

// Power-on register values: those of BIOS mode 3 (80x25 colour text), from the IBM VGA
// Technical Reference mode tables, so that a front end shows text before any BIOS runs.
const MODE3_MISC: u8 = 0x67;
const MODE3_SEQ: [u8; SEQ_REGS] = [0x03, 0x00, 0x03, 0x00, 0x02];
const MODE3_CRTC: [u8; CRTC_REGS] = [
    0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x9C, 0x8E, 0x8F,
    0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF,
];
const MODE3_GC: [u8; GC_REGS] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF];
const MODE3_AC: [u8; AC_REGS] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x0C, 0x00, 0x0F,
    0x08, 0x00,
];

/// What the adapter is showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VgaMode {
    /// Alphanumeric mode of `cols` x `rows` character cells.
    Text { cols: u16, rows: u16 },
    /// A graphics mode (VGA or VBE). `bpp` is 1, 2, 4 (planar) or 8, or the VBE depth.
    Graphics { width: u16, height: u16, bpp: u8 },
    /// The screen is blanked: Screen Off (Sequencer Clocking Mode bit 5), the palette
    /// being loaded (Attribute Address bit 5 clear) or the CRTC held in reset (CRTC Mode
    /// Control bit 7 clear).
    Off,
}

/// The VGA adapter with the Bochs VBE extension. See the module documentation.
#[derive(Serialize, Deserialize)]
pub struct Vga {
    /// Video memory, planes interleaved (plane `p`, offset `o` at `o * 4 + p`).
    #[serde(with = "crate::snapshot::sparse")]
    vram: Vec<u8>,
    /// The four plane latches, loaded by every planar read.
    latch: [u8; 4],
    misc: u8,
    feature: u8,
    vga_enable: u8,
    seq_index: u8,
    seq: [u8; SEQ_REGS],
    crtc_index: u8,
    crtc: [u8; CRTC_REGS],
    gc_index: u8,
    gc: [u8; GC_REGS],
    /// Attribute Address register: index in bits 0-4, Palette Address Source in bit 5.
    ac_index: u8,
    /// The attribute flip-flop: true when the next write to 0x3C0 is data.
    ac_data_next: bool,
    ac: [u8; AC_REGS],
    dac: Dac,
    /// Reads of Input Status 1 so far, which drive its retrace cycle.
    status_reads: u32,
    vbe: Vbe,
    lfb_base: Phys,
    generation: u64,
}

impl Default for Vga {
    fn default() -> Self {
        Self::new()
    }
}

impl Vga {
    /// A VGA with [`VRAM_SIZE`] bytes of zeroed video memory, registers as after a mode 3
    /// set, and the linear framebuffer at [`DEFAULT_LFB_BASE`].
    pub fn new() -> Self {
        Self {
            vram: vec![0; VRAM_SIZE],
            latch: [0; 4],
            misc: MODE3_MISC,
            feature: 0,
            vga_enable: 1,
            seq_index: 0,
            seq: MODE3_SEQ,
            crtc_index: 0,
            crtc: MODE3_CRTC,
            gc_index: 0,
            gc: MODE3_GC,
            ac_index: AC_INDEX_PAS,
            ac_data_next: false,
            ac: MODE3_AC,
            dac: Dac::new(),
            status_reads: 0,
            vbe: Vbe::new(VRAM_SIZE as u32),
            lfb_base: DEFAULT_LFB_BASE,
            generation: 0,
        }
    }

    /// A counter bumped by every write that changes what the screen shows (video memory,
    /// display registers, palette, VBE state), so a front end can skip unchanged frames.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// The whole video memory, planes interleaved as described in the module docs; the
    /// linear framebuffer's view.
    pub fn vram(&self) -> &[u8] {
        &self.vram
    }

    /// Physical base address of the linear framebuffer.
    pub fn lfb_base(&self) -> Phys {
        self.lfb_base
    }

    /// Move the linear framebuffer (the PC's PCI code calls this when BAR0 is programmed).
    pub fn set_lfb_base(&mut self, base: Phys) {
        self.lfb_base = base;
    }

    /// Size of the linear framebuffer in bytes (all of video memory).
    pub fn lfb_size(&self) -> u32 {
        self.vram.len() as u32
    }

    // -----------------------------------------------------------------------------------
    // Physical-address entry points for the bus.
    // -----------------------------------------------------------------------------------

    /// Whether physical address `addr` is decoded by the adapter: the legacy window
    /// 0xA0000-0xBFFFF or the linear framebuffer.
    pub fn claims(&self, addr: Phys) -> bool {
        addr.0.wrapping_sub(LEGACY_WINDOW_BASE.0) < LEGACY_WINDOW_SIZE || self.lfb_offset(addr).is_some()
    }

    fn lfb_offset(&self, addr: Phys) -> Option<u32> {
        let off = addr.0.wrapping_sub(self.lfb_base.0);
        (off < self.lfb_size()).then_some(off)
    }

    /// Memory-mapped read at a physical address in the legacy window or the linear
    /// framebuffer (little-endian; bytes outside both read as all ones).
    pub fn mmio_read(&mut self, addr: Phys, size: IoSize) -> u32 {
        let n = size as u32;
        if let Some(off) = self.lfb_offset(addr) {
            if off + n <= self.lfb_size() {
                return self.lfb_read(off, size);
            }
        }
        let mut v = 0;
        for i in 0..n {
            v |= u32::from(self.mmio_read_byte(addr.wrapping_add(i))) << (8 * i);
        }
        v
    }

    /// Memory-mapped write at a physical address in the legacy window or the linear
    /// framebuffer; bytes outside both are dropped.
    pub fn mmio_write(&mut self, addr: Phys, size: IoSize, value: u32) {
        let n = size as u32;
        if let Some(off) = self.lfb_offset(addr) {
            if off + n <= self.lfb_size() {
                self.lfb_write(off, size, value);
                return;
            }
        }
        for i in 0..n {
            self.mmio_write_byte(addr.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn mmio_read_byte(&mut self, addr: Phys) -> u8 {
        let window = addr.0.wrapping_sub(LEGACY_WINDOW_BASE.0);
        if window < LEGACY_WINDOW_SIZE {
            self.window_read_byte(window)
        } else if let Some(off) = self.lfb_offset(addr) {
            self.vram[off as usize]
        } else {
            0xFF
        }
    }

    fn mmio_write_byte(&mut self, addr: Phys, value: u8) {
        let window = addr.0.wrapping_sub(LEGACY_WINDOW_BASE.0);
        if window < LEGACY_WINDOW_SIZE {
            self.window_write_byte(window, value);
        } else if let Some(off) = self.lfb_offset(addr) {
            self.lfb_write(off, IoSize::Byte, u32::from(value));
        }
    }

    // -----------------------------------------------------------------------------------
    // What is on the screen.
    // -----------------------------------------------------------------------------------

    /// Whether the display is blanked (see [`VgaMode::Off`]).
    fn screen_off(&self) -> bool {
        self.seq[SEQ_CLOCKING] & SEQ_CLOCKING_SCREEN_OFF != 0
            || self.ac_index & AC_INDEX_PAS == 0
            || self.crtc[CR_MODE_CONTROL] & 0x80 == 0
    }

    /// Whether the VGA (not VBE) is in a graphics mode: the Graphics Controller
    /// Miscellaneous register or the Attribute Mode Control register says so.
    fn vga_graphics(&self) -> bool {
        self.gc[GC_MISC] & GC_MISC_GRAPHICS != 0 || self.ac[AC_MODE_CONTROL] & AC_MODE_GRAPHICS != 0
    }

    /// The current display mode, derived from the registers.
    ///
    /// VGA graphics geometry: width is (Horizontal Display End + 1) character clocks of 8
    /// dots, halved when the Attribute PEL Width bit makes two dots one 8-bit pixel; height
    /// is the displayed scan lines (Vertical Display End + 1, halved by CRTC 09h bit 7 scan
    /// doubling) divided by the Maximum Scan Line repeat count, except in the CGA modes
    /// (CRTC Mode Control bit 0 clear) where the row scan counter interleaves memory
    /// instead of repeating lines. Depth is 8 with the PEL Width bit, 2 with the CGA shift
    /// register interleave, otherwise the number of enabled colour planes.
    pub fn mode(&self) -> VgaMode {
        if self.vbe.enabled() {
            let (w, h, bpp) = self.vbe.geometry();
            return VgaMode::Graphics { width: w, height: h, bpp };
        }
        if self.screen_off() {
            return VgaMode::Off;
        }
        if !self.vga_graphics() {
            let g = self.text_geometry();
            return VgaMode::Text { cols: g.cols, rows: g.rows };
        }
        let ac_mode = self.ac[AC_MODE_CONTROL];
        let mut width = (u32::from(self.crtc[CR_H_DISPLAY_END]) + 1) * 8;
        if ac_mode & AC_MODE_PEL_WIDTH_8 != 0 {
            width /= 2;
        }
        let lines = self.display_lines();
        let height = if self.crtc[CR_MODE_CONTROL] & 0x01 == 0 {
            lines
        } else {
            lines / (u32::from(self.crtc[CR_MAX_SCAN_LINE] & 0x1F) + 1)
        };
        let bpp = if ac_mode & AC_MODE_PEL_WIDTH_8 != 0 {
            8
        } else if self.gc[GC_MODE] & GC_MODE_SHIFT_INTERLEAVE != 0 {
            2
        } else {
            (self.ac[AC_PLANE_ENABLE] & 0x0F).count_ones() as u8
        };
        VgaMode::Graphics { width: width as u16, height: height as u16, bpp }
    }

    /// Displayed scan lines: Vertical Display End (CRTC 12h, bits 8-9 in Overflow 07h bits
    /// 1 and 6) + 1, halved when CRTC 09h bit 7 doubles every scan line.
    fn display_lines(&self) -> u32 {
        let ovf = u32::from(self.crtc[CR_OVERFLOW]);
        let vde = u32::from(self.crtc[CR_V_DISPLAY_END]) | ((ovf >> 1) & 1) << 8 | ((ovf >> 6) & 1) << 9;
        let lines = vde + 1;
        if self.crtc[CR_MAX_SCAN_LINE] & 0x80 != 0 {
            lines / 2
        } else {
            lines
        }
    }

    /// Whether attribute bit 7 blinks the character (true) or selects a bright background
    /// (Attribute Mode Control bit 3).
    pub fn blink_enabled(&self) -> bool {
        self.ac[AC_MODE_CONTROL] & AC_MODE_BLINK != 0
    }

    /// The colour of DAC entry `index` as 8-bit RGB (6-bit entries are scaled up unless
    /// the VBE 8-bit DAC mode is on).
    pub fn dac_rgb(&self, index: u8) -> [u8; 3] {
        self.dac.rgb8(index, self.vbe.dac_8bit())
    }

    /// The sixteen text colours as 0x00RRGGBB: attribute colour `i` goes through palette
    /// register `i`, the Colour Select register (bits 7-6 always, bits 5-4 when Mode
    /// Control bit 7 says so), the PEL mask and the DAC (IBM VGA Technical Reference,
    /// Attribute Controller "Color Select Register").
    pub fn text_palette(&self) -> [u32; 16] {
        let cs = self.ac[AC_COLOR_SELECT];
        let p54 = self.ac[AC_MODE_CONTROL] & AC_MODE_P54_SELECT != 0;
        let mut out = [0u32; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            let pal = self.ac[i];
            let low = if p54 { (pal & 0x0F) | (cs & 0x03) << 4 } else { pal & 0x3F };
            let index = (low | (cs & 0x0C) << 4) & self.dac.mask;
            let [r, g, b] = self.dac_rgb(index);
            *slot = u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b);
        }
        out
    }
}
