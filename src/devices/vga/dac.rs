//! The video DAC's colour look-up table: 256 entries of red, green and blue, loaded and
//! read through an address register and a data register that take three accesses per
//! entry.
//!
//! IBM VGA Technical Reference, "Video Digital-to-Analog Converter": writing the PEL
//! Address Write Mode register (0x3C8) starts a write cycle, and each third write to the
//! PEL Data register (0x3C9) stores red, green and blue together and advances the address;
//! writing the PEL Address Read Mode register (0x3C7) starts a read cycle in which each
//! third read advances the address. The DAC State register (read at 0x3C7) reports which
//! kind of cycle was started last (00b write, 11b read). Values are 6 bits, or 8 bits when
//! the Bochs VBE ENABLE register's VBE_DISPI_8BIT_DAC flag is set (vbe_display_api.txt,
//! interface 0xB0C3). The IBM part shares one address register between the two cycles;
//! they are kept apart here, which no guest can tell from a correctly ordered sequence.

use serde::{Deserialize, Serialize};

/// The DAC.
#[derive(Serialize, Deserialize)]
pub(super) struct Dac {
    #[serde(with = "serde_big_array::BigArray")]
    entries: [[u8; 3]; 256],
    /// PEL Mask register (0x3C6), ANDed with every colour index.
    pub mask: u8,
    read_index: u8,
    read_component: u8,
    write_index: u8,
    write_component: u8,
    pending: [u8; 3],
    read_mode: bool,
}

impl Dac {
    /// Entries 0-63 hold the EGA-compatible colours (index bits 2-0 add two thirds of red,
    /// green and blue, bits 5-3 one third), as BIOS text modes expect; the rest are black.
    pub fn new() -> Self {
        let mut entries = [[0u8; 3]; 256];
        for (i, e) in entries.iter_mut().take(64).enumerate() {
            let i = i as u8;
            let level = |primary: u8, secondary: u8| (primary & 1) * 0x2A + (secondary & 1) * 0x15;
            *e = [level(i >> 2, i >> 5), level(i >> 1, i >> 4), level(i, i >> 3)];
        }
        Self {
            entries,
            mask: 0xFF,
            read_index: 0,
            read_component: 0,
            write_index: 0,
            write_component: 0,
            pending: [0; 3],
            read_mode: false,
        }
    }

    pub fn set_read_index(&mut self, index: u8) {
        self.read_index = index;
        self.read_component = 0;
        self.read_mode = true;
    }

    pub fn set_write_index(&mut self, index: u8) {
        self.write_index = index;
        self.write_component = 0;
        self.read_mode = false;
    }

    /// The PEL Address Write Mode register as read back from 0x3C8.
    pub fn write_index(&self) -> u8 {
        self.write_index
    }

    /// DAC State register: 0x03 after a read-mode address write, 0x00 after a write-mode one.
    pub fn state(&self) -> u8 {
        if self.read_mode {
            0x03
        } else {
            0x00
        }
    }

    fn width_mask(eight_bit: bool) -> u8 {
        if eight_bit {
            0xFF
        } else {
            0x3F
        }
    }

    /// One read of the data register.
    pub fn read_data(&mut self, eight_bit: bool) -> u8 {
        let v = self.entries[usize::from(self.read_index)][usize::from(self.read_component)];
        self.read_component += 1;
        if self.read_component == 3 {
            self.read_component = 0;
            self.read_index = self.read_index.wrapping_add(1);
        }
        v & Self::width_mask(eight_bit)
    }

    /// One write of the data register; returns whether an entry changed.
    pub fn write_data(&mut self, value: u8, eight_bit: bool) -> bool {
        self.pending[usize::from(self.write_component)] = value & Self::width_mask(eight_bit);
        self.write_component += 1;
        if self.write_component < 3 {
            return false;
        }
        self.write_component = 0;
        let slot = &mut self.entries[usize::from(self.write_index)];
        let changed = *slot != self.pending;
        *slot = self.pending;
        self.write_index = self.write_index.wrapping_add(1);
        changed
    }

    /// Entry `index` as 8-bit RGB; 6-bit values are scaled so 0x3F becomes 0xFF.
    pub fn rgb8(&self, index: u8, eight_bit: bool) -> [u8; 3] {
        let e = self.entries[usize::from(index)];
        if eight_bit {
            e
        } else {
            e.map(|c| {
                let c = c & 0x3F;
                c << 2 | c >> 4
            })
        }
    }
}
