//! Scan-out for front ends: graphics modes drawn to RGBA pixels, and the facts a text
//! renderer needs besides the cells (character height, fonts). The VGA state is only read.
//!
//! Pixels are fetched as the IBM VGA Technical Reference describes the modes SeaVGABIOS
//! sets: 8 bpp chained (mode 13h: Sequencer Memory Mode bit 3, Chain 4, makes video
//! memory linear), 8 bpp unchained ("mode X": pixel x in plane x mod 4), 4 bpp planar
//! (modes 0Dh-12h: one bit per plane, most significant bit leftmost) and 2 bpp CGA
//! interleave (modes 04h/05h: even and odd scan lines 8 KiB apart, two bits per pixel);
//! the Bochs VBE modes are linear at 8, 15, 16, 24 and 32 bpp. The start address and
//! panning are not applied (no guest tested so far scrolls in graphics).

use super::*;

/// One pixel as the bytes R, G, B, A in memory (little-endian u32), the layout of the
/// canvas `ImageData` a page draws.
fn rgba(rgb: u32) -> u32 {
    let (r, g, b) = ((rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF);
    0xFF00_0000 | b << 16 | g << 8 | r
}

impl Vga {
    /// Scan lines per character row in text modes (CRTC Maximum Scan Line bits 4-0, + 1).
    pub fn char_height(&self) -> u8 {
        (self.crtc[CR_MAX_SCAN_LINE] & 0x1F) + 1
    }

    /// Draw the current graphics mode into `out` (resized to width x height pixels, see
    /// [`rgba`]) and return its size; `None` in text modes and when the screen is off.
    pub fn render_rgba(&self, out: &mut Vec<u32>) -> Option<(u16, u16)> {
        let VgaMode::Graphics { width, height, bpp } = self.mode() else { return None };
        let (w, h) = (usize::from(width), usize::from(height));
        out.clear();
        out.resize(w * h, 0xFF00_0000);
        if self.vbe.enabled() {
            self.render_vbe(out, w, h, bpp);
        } else {
            self.render_vga(out, w, h, bpp);
        }
        Some((width, height))
    }

    fn dac_palette(&self) -> [u32; 256] {
        let mut pal = [0u32; 256];
        for (i, p) in pal.iter_mut().enumerate() {
            let [r, g, b] = self.dac_rgb(i as u8 & self.dac.mask);
            *p = rgba(u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b));
        }
        pal
    }

    fn render_vbe(&self, out: &mut [u32], w: usize, h: usize, bpp: u8) {
        let vram = &self.vram;
        let px = |i: usize| vram.get(i).copied().map_or(0, u32::from);
        match bpp {
            8 => {
                let pal = self.dac_palette();
                for (i, o) in out.iter_mut().enumerate().take(w * h) {
                    *o = pal[px(i) as usize];
                }
            }
            15 | 16 => {
                for (i, o) in out.iter_mut().enumerate().take(w * h) {
                    let v = px(2 * i) | px(2 * i + 1) << 8;
                    let (r, g, b) = if bpp == 15 {
                        ((v >> 10) & 0x1F, (v >> 5) & 0x1F, v & 0x1F)
                    } else {
                        ((v >> 11) & 0x1F, ((v >> 5) & 0x3F) >> 1, v & 0x1F)
                    };
                    *o = rgba((r << 3 | r >> 2) << 16 | (g << 3 | g >> 2) << 8 | (b << 3 | b >> 2));
                }
            }
            24 | 32 => {
                let step = usize::from(bpp / 8);
                for (i, o) in out.iter_mut().enumerate().take(w * h) {
                    let at = i * step;
                    *o = rgba(px(at + 2) << 16 | px(at + 1) << 8 | px(at));
                }
            }
            _ => {}
        }
    }

    fn render_vga(&self, out: &mut [u32], w: usize, h: usize, bpp: u8) {
        let vram = &self.vram;
        let plane = |offset: usize, p: usize| vram.get((offset & 0xFFFF) * 4 + p).copied().unwrap_or(0);
        match bpp {
            8 => {
                let pal = self.dac_palette();
                let chained = self.seq[SEQ_MEMORY_MODE] & SEQ_MEM_CHAIN4 != 0;
                for y in 0..h {
                    for x in 0..w {
                        let index = if chained {
                            vram.get(y * w + x).copied().unwrap_or(0)
                        } else {
                            plane(y * (w / 4) + x / 4, x & 3)
                        };
                        out[y * w + x] = pal[usize::from(index)];
                    }
                }
            }
            2 => {
                // CGA interleave: even/odd scan lines in the two 8 KiB halves, bytes
                // alternating between planes 0 and 1 (odd/even addressing).
                let pal = self.text_palette();
                for y in 0..h {
                    for x in 0..w {
                        let addr = (y & 1) * 0x2000 + (y / 2) * (w / 4) + x / 4;
                        let byte = plane(addr / 2, addr & 1);
                        let v = (byte >> (6 - 2 * (x & 3))) & 3;
                        out[y * w + x] = rgba(pal[usize::from(v)]);
                    }
                }
            }
            _ => {
                let pal = self.text_palette();
                let enabled = self.ac[AC_PLANE_ENABLE] & 0x0F;
                for y in 0..h {
                    for x in 0..w {
                        let offset = y * (w / 8) + x / 8;
                        let bit = 7 - (x & 7);
                        let mut v = 0u8;
                        for p in 0..4 {
                            v |= ((plane(offset, p) >> bit) & 1) << p;
                        }
                        out[y * w + x] = rgba(pal[usize::from(v & enabled)]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mode_draws_nothing_and_reports_char_height() {
        let v = Vga::new();
        let mut out = Vec::new();
        assert_eq!(v.render_rgba(&mut out), None);
        assert_eq!(v.char_height(), 16);
    }

    #[test]
    fn vbe_32bpp_is_bgrx_in_memory() {
        let mut v = Vga::new();
        // Bochs VBE: index 1 XRES, 2 YRES, 3 BPP, 4 ENABLE (bit 0 enable, bit 6 LFB).
        for (i, val) in [(1u16, 4u16), (2, 2), (3, 32), (4, 0x41)] {
            v.vbe.set_index(i);
            let _ = v.vbe.write_data(val);
        }
        v.vram[0..4].copy_from_slice(&[0x30, 0x20, 0x10, 0x00]); // B, G, R, X
        let mut out = Vec::new();
        assert_eq!(v.render_rgba(&mut out), Some((4, 2)));
        assert_eq!(out[0], 0xFF30_2010);
    }
}
