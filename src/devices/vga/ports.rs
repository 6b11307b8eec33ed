//! Port I/O: dispatch of the adapter's ports to the register files, the access-size rules
//! (index-port word writes, byte splitting), and the register write rules: the Sequencer,
//! Graphics Controller and Attribute Controller write masks, CRTC write protection, the
//! attribute flip-flop, Input Status 1, and the Bochs VBE DISPI ports.
//!
//! Sources: IBM VGA Technical Reference (register chapters, cited per register); Bochs
//! vbe_display_api.txt for the DISPI ports.

use super::*;

impl Vga {
    /// Whether the port belongs to this adapter.
    pub fn claims_port(port: u16) -> bool {
        matches!(
            port,
            PORT_VBE_INDEX..=PORT_VBE_DATA_ALT
                | PORT_CRTC_INDEX_MONO
                | PORT_CRTC_DATA_MONO
                | PORT_STATUS1_MONO
                | 0x3C0..=0x3CF
                | PORT_CRTC_INDEX_COLOR
                | PORT_CRTC_DATA_COLOR
                | PORT_STATUS1_COLOR
        )
    }

    // -----------------------------------------------------------------------------------
    // Port I/O.
    // -----------------------------------------------------------------------------------

    /// `IN` from `port`. Ports the adapter does not own answer all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        if (PORT_VBE_INDEX..=PORT_VBE_DATA_ALT).contains(&port) {
            return self.vbe_port_read(port, size);
        }
        let lo = u32::from(self.read_byte(port));
        match size {
            IoSize::Byte => lo,
            IoSize::Word => lo | u32::from(self.read_byte(port.wrapping_add(1))) << 8,
            IoSize::Dword => {
                let mut v = lo;
                for i in 1..4u16 {
                    v |= u32::from(self.read_byte(port.wrapping_add(i))) << (8 * i);
                }
                v
            }
        }
    }

    /// `OUT` to `port`. Writes to ports the adapter does not own are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        if (PORT_VBE_INDEX..=PORT_VBE_DATA_ALT).contains(&port) {
            self.vbe_port_write(port, size, value);
            return;
        }
        let is_index_port = matches!(
            port,
            PORT_CRTC_INDEX_MONO | PORT_AC_INDEX | PORT_SEQ_INDEX | PORT_GC_INDEX | PORT_CRTC_INDEX_COLOR
        );
        let bytes = match size {
            IoSize::Byte => 1,
            IoSize::Word => 2,
            // An index port's 32-bit write is index + data; the upper half is not decoded.
            IoSize::Dword if is_index_port => 2,
            IoSize::Dword => 4,
        };
        for i in 0..bytes {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    /// Whether `port` is a CRTC port of the pair the I/O Address Select bit enables
    /// (IBM VGA Technical Reference, Miscellaneous Output register bit 0).
    fn crtc_pair_active(&self, port: u16) -> bool {
        let color = self.misc & MISC_IO_COLOR != 0;
        matches!(port, PORT_CRTC_INDEX_COLOR | PORT_CRTC_DATA_COLOR) == color
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            PORT_AC_INDEX => self.ac_index,
            PORT_AC_DATA_READ => self.ac.get(usize::from(self.ac_index & 0x1F)).copied().unwrap_or(0),
            // Input Status 0: bit 4 switch sense, bit 7 vertical retrace interrupt pending;
            // neither is modelled.
            PORT_MISC_WRITE => 0x00,
            PORT_VGA_ENABLE => self.vga_enable,
            PORT_SEQ_INDEX => self.seq_index,
            PORT_SEQ_DATA => self.seq.get(usize::from(self.seq_index)).copied().unwrap_or(0),
            PORT_DAC_MASK => self.dac.mask,
            PORT_DAC_READ_INDEX => self.dac.state(),
            PORT_DAC_WRITE_INDEX => self.dac.write_index(),
            PORT_DAC_DATA => {
                let eight = self.vbe.dac_8bit();
                self.dac.read_data(eight)
            }
            PORT_FEATURE_READ => self.feature,
            PORT_MISC_READ => self.misc,
            PORT_GC_INDEX => self.gc_index,
            PORT_GC_DATA => self.gc.get(usize::from(self.gc_index)).copied().unwrap_or(0),
            PORT_CRTC_INDEX_MONO | PORT_CRTC_INDEX_COLOR if self.crtc_pair_active(port) => self.crtc_index,
            PORT_CRTC_DATA_MONO | PORT_CRTC_DATA_COLOR if self.crtc_pair_active(port) => {
                self.crtc.get(usize::from(self.crtc_index)).copied().unwrap_or(0)
            }
            PORT_STATUS1_MONO | PORT_STATUS1_COLOR => self.input_status_1(),
            _ => 0xFF,
        }
    }

    fn write_byte(&mut self, port: u16, value: u8) {
        match port {
            // Writes to 0x3C1 act as writes to 0x3C0, so a 16-bit write to 0x3C0 is an
            // index and a data write through the flip-flop.
            PORT_AC_INDEX | PORT_AC_DATA_READ => self.ac_write(value),
            PORT_MISC_WRITE => self.set_reg_misc(value),
            // Video Subsystem Enable bit 0 is stored and read back; the adapter keeps
            // decoding when it is cleared (a motherboard VGA has no one else to defer to).
            PORT_VGA_ENABLE => self.vga_enable = value & 0x01,
            // The index registers decode 3 bits (Sequencer), 5 bits (CRTC) and 4 bits
            // (Graphics Controller); registers past the defined ones read 0.
            PORT_SEQ_INDEX => self.seq_index = value & 0x07,
            PORT_SEQ_DATA => self.seq_write(value),
            PORT_DAC_MASK if self.dac.mask != value => {
                self.dac.mask = value;
                self.bump();
            }
            PORT_DAC_READ_INDEX => self.dac.set_read_index(value),
            PORT_DAC_WRITE_INDEX => self.dac.set_write_index(value),
            PORT_DAC_DATA => {
                let eight = self.vbe.dac_8bit();
                if self.dac.write_data(value, eight) {
                    self.bump();
                }
            }
            PORT_GC_INDEX => self.gc_index = value & 0x0F,
            PORT_GC_DATA => self.gc_write(value),
            PORT_CRTC_INDEX_MONO | PORT_CRTC_INDEX_COLOR => self.crtc_index = value & 0x1F,
            PORT_CRTC_DATA_MONO | PORT_CRTC_DATA_COLOR => self.crtc_write(value),
            // Feature Control: only bit 3 (vertical sync select) and bits 0-1 (feature
            // outputs) exist; stored for read-back through 0x3CA.
            PORT_STATUS1_MONO | PORT_STATUS1_COLOR => self.feature = value & 0x0B,
            _ => {}
        }
    }

    fn set_reg_misc(&mut self, value: u8) {
        if self.misc != value {
            self.misc = value;
            self.bump();
        }
    }

    fn seq_write(&mut self, value: u8) {
        let i = usize::from(self.seq_index);
        if let Some(&mask) = SEQ_MASKS.get(i) {
            let v = value & mask;
            if self.seq[i] != v {
                self.seq[i] = v;
                // Map Mask and Memory Mode only steer host access; the rest is display.
                if i == SEQ_CLOCKING || i == SEQ_CHAR_MAP || i == SEQ_RESET {
                    self.bump();
                }
            }
        }
    }

    fn gc_write(&mut self, value: u8) {
        let i = usize::from(self.gc_index);
        if let Some(&mask) = GC_MASKS.get(i) {
            let v = value & mask;
            if self.gc[i] != v {
                self.gc[i] = v;
                // Of the Graphics Controller only the Mode (shift register) and
                // Miscellaneous (alphanumeric/graphics) registers change the picture.
                if i == GC_MODE || i == GC_MISC {
                    self.bump();
                }
            }
        }
    }

    /// CRTC data write, honouring Protect Registers 0-7 (IBM VGA Technical Reference,
    /// Vertical Retrace End register, bit 7: registers 0-7 are write protected except the
    /// Line Compare bit 8 in the Overflow register).
    fn crtc_write(&mut self, value: u8) {
        let i = usize::from(self.crtc_index);
        if i >= CRTC_REGS {
            return;
        }
        let mut v = value;
        if i <= CR_OVERFLOW && self.crtc[CR_V_RETRACE_END] & CR11_PROTECT != 0 {
            if i != CR_OVERFLOW {
                return;
            }
            v = (self.crtc[CR_OVERFLOW] & !CR07_LINE_COMPARE_8) | (value & CR07_LINE_COMPARE_8);
        }
        if self.crtc[i] != v {
            self.crtc[i] = v;
            self.bump();
        }
    }

    /// A write to 0x3C0: the flip-flop alternates between the Attribute Address register
    /// and the data register it selects (IBM VGA Technical Reference, "Attribute
    /// Controller Registers"). Palette registers 00h-0Fh can be loaded only while the
    /// Palette Address Source bit is 0.
    fn ac_write(&mut self, value: u8) {
        if !self.ac_data_next {
            self.ac_data_next = true;
            let v = value & 0x3F;
            if (self.ac_index ^ v) & AC_INDEX_PAS != 0 {
                self.bump();
            }
            self.ac_index = v;
            return;
        }
        self.ac_data_next = false;
        let i = usize::from(self.ac_index & 0x1F);
        if i < 0x10 && self.ac_index & AC_INDEX_PAS != 0 {
            return;
        }
        if let Some(&mask) = AC_MASKS.get(i) {
            let v = value & mask;
            if self.ac[i] != v {
                self.ac[i] = v;
                self.bump();
            }
        }
    }

    /// Input Status 1 (IBM VGA Technical Reference, "Input Status Register 1"): bit 0
    /// Display Enable NOT (1 during horizontal or vertical blanking), bit 3 Vertical
    /// Retrace. Reading it resets the attribute flip-flop to the address state. The timing
    /// is not modelled: successive reads step through active display (0x00), horizontal
    /// blank (0x01) and two reads of vertical retrace (0x09), so that any loop waiting for
    /// either edge of either signal ends within four reads.
    fn input_status_1(&mut self) -> u8 {
        self.ac_data_next = false;
        let phase = self.status_reads % 4;
        self.status_reads = self.status_reads.wrapping_add(1);
        match phase {
            0 => 0x00,
            1 => 0x01,
            _ => 0x09,
        }
    }

    // -----------------------------------------------------------------------------------
    // Bochs VBE DISPI ports.
    // -----------------------------------------------------------------------------------

    /// DISPI ports are 16-bit registers. A byte access reaches the low byte; a 32-bit
    /// read of 0x1CE returns index | data << 16 (0x1D0 decodes the data register too).
    fn vbe_port_read(&mut self, port: u16, size: IoSize) -> u32 {
        let v = match port {
            PORT_VBE_INDEX => {
                let index = u32::from(self.vbe.index());
                if size == IoSize::Dword {
                    return index | u32::from(self.vbe.read_data()) << 16;
                }
                index
            }
            _ => u32::from(self.vbe.read_data()),
        };
        match size {
            IoSize::Byte => v & 0xFF,
            _ => v,
        }
    }

    fn vbe_port_write(&mut self, port: u16, size: IoSize, value: u32) {
        let value = match size {
            IoSize::Byte => value & 0xFF,
            _ => value,
        };
        if port == PORT_VBE_INDEX {
            self.vbe.set_index(value as u16);
            if size == IoSize::Dword {
                self.vbe_data_write((value >> 16) as u16);
            }
        } else {
            self.vbe_data_write(value as u16);
        }
    }

    fn vbe_data_write(&mut self, value: u16) {
        let outcome = self.vbe.write_data(value);
        if outcome.clear_memory {
            self.vram.fill(0);
        }
        if outcome.changed {
            self.bump();
        }
    }
}
