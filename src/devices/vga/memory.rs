//! Host access to video memory: the legacy window at 0xA0000-0xBFFFF with the VGA's planar
//! pipeline (memory map select, odd/even and chain-4 addressing, the latches, read modes
//! 0-1, write modes 0-3 with set/reset, data rotate, logical operation, bit mask and map
//! mask), the banked VBE window, and the linear framebuffer.
//!
//! Video memory interleaves the planes: byte `o` of plane `p` is `vram[o * 4 + p]`.
//!
//! Sources: IBM VGA Technical Reference, Sequencer Map Mask (02h) and Memory Mode (04h)
//! registers, Graphics Controller registers 00h-08h (the Data Rotate register's function
//! applies to "any of the choices selected by the write mode bits except system latches",
//! so to write modes 0, 2 and 3, after the rotation); FreeVGA "Graphics Registers" for the
//! order of the write pipeline (rotate, set/reset, logical operation, bit mask, map mask).

use super::*;

/// Where a byte of the legacy window lands.
enum Target {
    /// A byte of video memory, bypassing the VGA pipeline (VBE packed-pixel modes).
    Direct(usize),
    /// A host address for the planar pipeline.
    Planar(u32),
}

/// A plane bit widened to a whole byte (set/reset and write mode 2 expand one bit per
/// plane to all eight pixels).
fn expand(bit: u8) -> u8 {
    if bit & 1 != 0 {
        0xFF
    } else {
        0x00
    }
}

impl Vga {
    /// Read from the legacy window. `offset` is the physical address minus 0xA0000
    /// (0..0x20000); the access is little-endian and each byte goes through the pipeline
    /// (so each reloads the latches). Offsets the current memory map does not decode read
    /// as all ones.
    pub fn mem_read(&mut self, offset: u32, size: IoSize) -> u32 {
        let mut v = 0;
        for i in 0..size as u32 {
            v |= u32::from(self.window_read_byte(offset.wrapping_add(i))) << (8 * i);
        }
        v
    }

    /// Write to the legacy window; `offset` as for [`Vga::mem_read`]. Offsets the current
    /// memory map does not decode are dropped.
    pub fn mem_write(&mut self, offset: u32, size: IoSize, value: u32) {
        for i in 0..size as u32 {
            self.window_write_byte(offset.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    /// Read from the linear framebuffer at byte `offset` (little-endian). Bytes past the
    /// end of video memory read as all ones.
    pub fn lfb_read(&self, offset: u32, size: IoSize) -> u32 {
        let mut v = 0;
        for i in 0..size as u32 {
            let b = offset.checked_add(i).and_then(|o| self.vram.get(o as usize)).copied().unwrap_or(0xFF);
            v |= u32::from(b) << (8 * i);
        }
        v
    }

    /// Write to the linear framebuffer at byte `offset` (little-endian). Bytes past the end
    /// of video memory are dropped.
    pub fn lfb_write(&mut self, offset: u32, size: IoSize, value: u32) {
        let mut changed = false;
        for i in 0..size as u32 {
            let b = (value >> (8 * i)) as u8;
            if let Some(slot) = offset.checked_add(i).and_then(|o| self.vram.get_mut(o as usize)) {
                changed |= *slot != b;
                *slot = b;
            }
        }
        if changed {
            self.bump();
        }
    }

    /// Decode a window offset.
    ///
    /// With VBE enabled the window is A0000-AFFFF and shows the 64 KiB bank selected by
    /// the BANK register (vbe_display_api.txt, "Displaying GFX (banked mode)":
    /// VBE_DISPI_BANK_ADDRESS 0xA0000, VBE_DISPI_BANK_SIZE_KB 64); packed-pixel depths
    /// address video memory directly, 4 bpp goes through the planar pipeline with the bank
    /// counted in plane bytes.
    ///
    /// Otherwise the Graphics Controller Miscellaneous register bits 3-2 (Memory Map
    /// Select) choose A0000/128K, A0000/64K, B0000/32K or B8000/32K, and Miscellaneous
    /// Output bit 1 (Enable RAM) must be set.
    fn decode(&self, offset: u32) -> Option<Target> {
        if self.vbe.enabled() {
            if offset >= 0x10000 {
                return None;
            }
            let addr = self.vbe.bank_offset().checked_add(offset)?;
            if self.vbe.bpp() == 4 {
                return Some(Target::Planar(addr));
            }
            return ((addr as usize) < self.vram.len()).then_some(Target::Direct(addr as usize));
        }
        if self.misc & MISC_RAM_ENABLE == 0 {
            return None;
        }
        let (start, len) = match (self.gc[GC_MISC] >> 2) & 3 {
            0 => (0x00000, 0x20000),
            1 => (0x00000, 0x10000),
            2 => (0x10000, 0x08000),
            _ => (0x18000, 0x08000),
        };
        let a = offset.checked_sub(start)?;
        (a < len).then_some(Target::Planar(a))
    }

    /// Plane offsets wrap at 64 KiB, the IBM VGA's plane size, so the legacy view stays in
    /// the first 256 KiB; with VBE enabled a plane is a quarter of video memory.
    fn plane_offset_mask(&self) -> u32 {
        if self.vbe.enabled() {
            (self.vram.len() / 4 - 1) as u32
        } else {
            0xFFFF
        }
    }

    /// Plane offset of host address `a`: chain-4 uses the address divided by four (so the
    /// interleaved buffer is read linearly, which is what VBE banked modes need; the IBM
    /// VGA itself keeps the address and relies on the CRTC's doubleword mode, which only
    /// matters when drawing); Chain Odd/Even (Graphics Controller Miscellaneous bit 1)
    /// replaces address bit 0 with a higher-order bit, taken as 0 here (the odd/even page
    /// select of Miscellaneous Output bit 5 is not modelled); otherwise the address as is.
    fn plane_offset(&self, a: u32) -> usize {
        let off = if self.seq[SEQ_MEMORY_MODE] & SEQ_MEM_CHAIN4 != 0 {
            a >> 2
        } else if self.gc[GC_MISC] & GC_MISC_CHAIN_ODD_EVEN != 0 {
            a & !1
        } else {
            a
        };
        (off & self.plane_offset_mask()) as usize * 4
    }

    pub(super) fn window_read_byte(&mut self, offset: u32) -> u8 {
        match self.decode(offset) {
            None => 0xFF,
            Some(Target::Direct(i)) => self.vram[i],
            Some(Target::Planar(a)) => self.planar_read(a),
        }
    }

    pub(super) fn window_write_byte(&mut self, offset: u32, value: u8) {
        match self.decode(offset) {
            None => {}
            Some(Target::Direct(i)) if self.vram[i] != value => {
                self.vram[i] = value;
                self.bump();
            }
            Some(Target::Direct(_)) => {}
            Some(Target::Planar(a)) => self.planar_write(a, value),
        }
    }

    /// A planar read loads all four latches, then returns (Graphics Mode bit 3):
    /// - read mode 0: the byte of one plane: address bits 0-1 under chain-4; under
    ///   odd/even (Graphics Mode bit 4) Read Map Select bit 1 with address bit 0; otherwise
    ///   the plane Read Map Select names;
    /// - read mode 1: a bit per pixel, set where every plane enabled in Colour Don't Care
    ///   matches its bit of Colour Compare.
    fn planar_read(&mut self, a: u32) -> u8 {
        let base = self.plane_offset(a);
        self.latch.copy_from_slice(&self.vram[base..base + 4]);
        let mode = self.gc[GC_MODE];
        if mode & GC_MODE_READ_COMPARE != 0 {
            let compare = self.gc[GC_COLOR_COMPARE];
            let care = self.gc[GC_COLOR_DONT_CARE];
            let mut differ = 0u8;
            for (p, &l) in self.latch.iter().enumerate() {
                if care >> p & 1 != 0 {
                    differ |= l ^ expand(compare >> p);
                }
            }
            return !differ;
        }
        let plane = if self.seq[SEQ_MEMORY_MODE] & SEQ_MEM_CHAIN4 != 0 {
            a & 3
        } else if mode & GC_MODE_ODD_EVEN != 0 {
            u32::from(self.gc[GC_READ_MAP] & 2) | (a & 1)
        } else {
            u32::from(self.gc[GC_READ_MAP] & 3)
        };
        self.latch[plane as usize]
    }

    /// Planes a write at host address `a` may reach: the Map Mask, narrowed under chain-4
    /// to the plane address bits 0-1 name, and under odd/even (Memory Mode bit 2 clear) to
    /// planes 0/2 for even and 1/3 for odd addresses.
    fn write_planes(&self, a: u32) -> u8 {
        let mut planes = self.seq[SEQ_MAP_MASK] & 0x0F;
        let mem_mode = self.seq[SEQ_MEMORY_MODE];
        if mem_mode & SEQ_MEM_CHAIN4 != 0 {
            planes &= 1 << (a & 3);
        } else if mem_mode & SEQ_MEM_ODD_EVEN_DISABLE == 0 {
            planes &= if a & 1 == 0 { 0b0101 } else { 0b1010 };
        }
        planes
    }

    /// The bytes the four planes would receive for host byte `value` (Graphics Mode bits
    /// 1-0):
    /// - write mode 0: the value rotated right by Data Rotate bits 2-0, replaced by the
    ///   set/reset bit in planes enabled in Enable Set/Reset;
    /// - write mode 1: the latches, unchanged;
    /// - write mode 2: bit `p` of the value, widened, for plane `p`;
    /// - write mode 3: the set/reset bit for every plane, with (rotated value AND Bit Mask)
    ///   as the bit mask.
    ///
    /// Modes 0, 2 and 3 then combine with the latch (Data Rotate bits 4-3: replace, AND,
    /// OR, XOR) and take the combined bits where the bit mask is set, the latch elsewhere.
    fn write_pipeline(&self, value: u8) -> [u8; 4] {
        let mode = self.gc[GC_MODE] & 3;
        if mode == 1 {
            return self.latch;
        }
        let rotate = self.gc[GC_DATA_ROTATE];
        let rotated = value.rotate_right(u32::from(rotate & 7));
        let op = (rotate >> 3) & 3;
        let set_reset = self.gc[GC_SET_RESET];
        let enable_sr = self.gc[GC_ENABLE_SET_RESET];
        let bit_mask = if mode == 3 { rotated & self.gc[GC_BIT_MASK] } else { self.gc[GC_BIT_MASK] };
        let mut out = [0u8; 4];
        for (p, slot) in out.iter_mut().enumerate() {
            let src = match mode {
                0 if enable_sr >> p & 1 != 0 => expand(set_reset >> p),
                0 => rotated,
                2 => expand(value >> p),
                _ => expand(set_reset >> p),
            };
            let latch = self.latch[p];
            let combined = match op {
                0 => src,
                1 => src & latch,
                2 => src | latch,
                _ => src ^ latch,
            };
            *slot = (combined & bit_mask) | (latch & !bit_mask);
        }
        out
    }

    fn planar_write(&mut self, a: u32, value: u8) {
        let planes = self.write_planes(a);
        if planes == 0 {
            return;
        }
        let base = self.plane_offset(a);
        let data = self.write_pipeline(value);
        let mut changed = false;
        for (p, &byte) in data.iter().enumerate() {
            if planes >> p & 1 != 0 {
                let slot = &mut self.vram[base + p];
                changed |= *slot != byte;
                *slot = byte;
            }
        }
        if changed {
            self.bump();
        }
    }

    /// Byte `offset` of plane `plane` (0-3) of the planar view, for front ends and tests.
    pub fn plane_byte(&self, plane: u8, offset: u32) -> u8 {
        let i = (offset as usize).wrapping_mul(4).wrapping_add(usize::from(plane & 3));
        self.vram.get(i).copied().unwrap_or(0)
    }
}
