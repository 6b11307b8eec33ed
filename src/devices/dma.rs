//! The PC/AT's pair of Intel 8237A DMA controllers and its DMA page registers.
//!
//! - DMA1 (channels 0–3, byte transfers) answers at ports 00h–0Fh.
//! - DMA2 (channels 4–7, word transfers) answers at C0h–DFh; the AT wires the chip's A0–A3 to
//!   SA1–SA4, so chip register `n` sits at C0h + 2n and the odd port above it is an alias.
//!   Channel 4 is the cascade input that DMA1's hold request drives.
//! - The page registers at 80h–8Fh supply address bits 16–23 (IBM PC AT Technical Reference,
//!   "DMA Page Registers": 87h channel 0, 83h channel 1, 81h channel 2, 82h channel 3, 8Fh
//!   channel 4 (refresh), 8Bh channel 5, 89h channel 6, 8Ah channel 7). The other page
//!   latches are plain read/write storage; 80h is where BIOSes write their power-on self-test
//!   progress codes, which [`Dma::post_code`] exposes.
//!
//! The register set follows the Intel 8237A datasheet: the byte-pointer flip-flop that
//! splits the 16-bit address and count registers into two byte accesses, the mode register
//! (transfer type, auto-initialise, address decrement, demand/single/block/cascade), the
//! command register (controller disable), the single-bit, clear-all and write-all mask
//! registers, the request register, the status register (terminal-count bits cleared on
//! read) and master clear.
//!
//! Devices never call each other, so the controller does not pull data from a device: the
//! bus moves bytes on a device's behalf with [`Dma::transfer_to_memory`] (device → memory, a
//! "write transfer" in the datasheet's words) and [`Dma::transfer_from_memory`] (memory →
//! device, a "read transfer"), after checking [`Dma::channel_ready`]. A transfer stops at
//! terminal count; [`Dma::terminal_count`] then tells the bus to pass the EOP# pulse on to the
//! device. Memory-to-memory transfers (command bit 0) are not modelled.

use crate::bus::IoSize;
use serde::{Deserialize, Serialize};

/// First port of DMA1 (channels 0–3). IBM PC AT Technical Reference, I/O address map:
/// 000h–01Fh "DMA controller 1, 8237A-5" (the chip decodes 000h–00Fh).
pub const DMA1_BASE: u16 = 0x00;
/// Last port of DMA1.
pub const DMA1_LAST: u16 = 0x0f;
/// First port of DMA2 (channels 4–7). IBM PC AT Technical Reference, I/O address map:
/// 0C0h–0DFh "DMA controller 2, 8237A-5".
pub const DMA2_BASE: u16 = 0xc0;
/// Last port of DMA2.
pub const DMA2_LAST: u16 = 0xdf;
/// First DMA page register. IBM PC AT Technical Reference, I/O address map: 080h–09Fh "DMA
/// page registers, 74LS612" (the sixteen latches are at 080h–08Fh).
pub const DMA_PAGE_BASE: u16 = 0x80;
/// Last DMA page register.
pub const DMA_PAGE_LAST: u16 = 0x8f;
/// The page latch no channel uses, where BIOSes write POST progress codes.
pub const POST_CODE_PORT: u16 = 0x80;

/// Page-register index (port − 80h) of each channel (IBM PC AT Technical Reference, "DMA
/// Page Registers").
const PAGE_INDEX: [usize; 8] = [0x7, 0x3, 0x1, 0x2, 0xf, 0xb, 0x9, 0xa];

// Chip-relative register numbers (8237A datasheet, Table 2 "Software Command Codes" and
// Table 3 "Word Count and Address Register Command Codes"). Registers 0–7 are the address
// (even) and word count (odd) of channels 0–3.
/// Read: status register. Write: command register.
const REG_STATUS_COMMAND: u8 = 0x8;
/// Write: request register.
const REG_REQUEST: u8 = 0x9;
/// Write: single mask register bit.
const REG_SINGLE_MASK: u8 = 0xa;
/// Write: mode register.
const REG_MODE: u8 = 0xb;
/// Write: clear byte pointer flip-flop.
const REG_CLEAR_FLIP_FLOP: u8 = 0xc;
/// Read: temporary register. Write: master clear.
const REG_TEMP_MASTER_CLEAR: u8 = 0xd;
/// Write: clear mask register.
const REG_CLEAR_MASK: u8 = 0xe;
/// Write: all mask register bits.
const REG_ALL_MASK: u8 = 0xf;

/// Mode register bits 3:2, transfer type (8237A datasheet, "Mode Register").
pub const MODE_TYPE_MASK: u8 = 0x0c;
/// Verify transfer: addresses and counts advance, memory is not touched.
pub const MODE_TYPE_VERIFY: u8 = 0x00;
/// Write transfer: I/O device → memory.
pub const MODE_TYPE_WRITE: u8 = 0x04;
/// Read transfer: memory → I/O device.
pub const MODE_TYPE_READ: u8 = 0x08;
/// Transfer type 11 is illegal.
pub const MODE_TYPE_ILLEGAL: u8 = 0x0c;
/// Mode register bit 4: autoinitialisation enable.
pub const MODE_AUTOINIT: u8 = 0x10;
/// Mode register bit 5: address decrement.
pub const MODE_DECREMENT: u8 = 0x20;
/// Mode register bits 7:6: demand (00), single (01), block (10) or cascade (11) mode.
pub const MODE_MODE_MASK: u8 = 0xc0;
/// Single transfer mode.
pub const MODE_SINGLE: u8 = 0x40;
/// Cascade mode: the channel passes another 8237A's hold request through.
pub const MODE_CASCADE: u8 = 0xc0;

/// Command register bit 2: controller disable (8237A datasheet, "Command Register").
pub const COMMAND_DISABLE: u8 = 0x04;

/// One channel's registers (8237A datasheet, Table 1 "8237A Internal Registers").
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Channel {
    base_address: u16,
    base_count: u16,
    current_address: u16,
    current_count: u16,
    /// Mode register bits 7:2 (bits 1:0 select the channel when writing it).
    mode: u8,
    /// A mode has been written since power-on.
    programmed: bool,
}

/// One 8237A.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Controller {
    channels: [Channel; 4],
    command: u8,
    /// Status register bits 3:0: channel has reached terminal count since the last read.
    tc: u8,
    /// Request register bits 3:0 (software DREQs).
    request: u8,
    /// DREQ input levels (bits 3:0), as the bus reports them with [`Dma::set_dreq`].
    dreq: u8,
    /// Mask register bits 3:0.
    mask: u8,
    /// Byte pointer flip-flop: `true` when the next address/count access is the high byte.
    high_byte: bool,
    temporary: u8,
    /// Per channel: the last transfer call ended at terminal count (the EOP# pulse).
    eop: u8,
}

impl Controller {
    /// State after RESET or master clear (8237A datasheet, "Master Clear": the command,
    /// status, request and temporary registers and the flip-flop are cleared and the mask
    /// register is set; the mode, address and count registers keep their contents).
    fn new() -> Self {
        Self {
            channels: Default::default(),
            command: 0,
            tc: 0,
            request: 0,
            dreq: 0,
            mask: 0x0f,
            high_byte: false,
            temporary: 0,
            eop: 0,
        }
    }

    fn master_clear(&mut self) {
        self.command = 0;
        self.tc = 0;
        self.request = 0;
        self.mask = 0x0f;
        self.high_byte = false;
        self.temporary = 0;
    }

    /// The flip-flop picks a byte of a 16-bit register and toggles (8237A datasheet, "Byte
    /// Pointer Flip-Flop").
    fn flip(&mut self) -> bool {
        let high = self.high_byte;
        self.high_byte = !high;
        high
    }

    fn read_reg(&mut self, reg: u8) -> u8 {
        match reg {
            0..=7 => {
                let ch = &self.channels[usize::from(reg >> 1)];
                // Reads return the current registers (datasheet, "Current Address Register",
                // "Current Word Count Register").
                let value = if reg & 1 == 0 { ch.current_address } else { ch.current_count };
                if self.flip() {
                    (value >> 8) as u8
                } else {
                    value as u8
                }
            }
            REG_STATUS_COMMAND => {
                // 8237A datasheet, "Status Register": bits 3:0 TC reached (cleared by the
                // read), bits 7:4 request pending.
                let status = self.tc | ((self.request | self.dreq) << 4);
                self.tc = 0;
                status
            }
            REG_TEMP_MASTER_CLEAR => self.temporary,
            // The 8237A leaves reads of the write-all-mask register undefined; later PC
            // chipsets let software read the mask back, which is harmless to offer.
            REG_ALL_MASK => 0xf0 | self.mask,
            // Datasheet Table 2: the remaining reads are illegal; the bus floats.
            _ => 0xff,
        }
    }

    fn write_reg(&mut self, reg: u8, v: u8) {
        match reg {
            0..=7 => {
                let high = self.flip();
                let ch = &mut self.channels[usize::from(reg >> 1)];
                // Writes load the base and the current register together (datasheet, "Base
                // Address and Base Word Count Registers").
                let base = if reg & 1 == 0 { &mut ch.base_address } else { &mut ch.base_count };
                *base = if high { (*base & 0x00ff) | (u16::from(v) << 8) } else { (*base & 0xff00) | u16::from(v) };
                let value = *base;
                if reg & 1 == 0 {
                    ch.current_address = value;
                } else {
                    ch.current_count = value;
                }
            }
            REG_STATUS_COMMAND => self.command = v,
            REG_REQUEST => {
                // Datasheet, "Request Register": bits 1:0 channel, bit 2 set/reset.
                let bit = 1 << (v & 3);
                if v & 4 != 0 {
                    self.request |= bit;
                } else {
                    self.request &= !bit;
                }
            }
            REG_SINGLE_MASK => {
                // Datasheet, "Mask Register": bits 1:0 channel, bit 2 set/clear.
                let bit = 1 << (v & 3);
                if v & 4 != 0 {
                    self.mask |= bit;
                } else {
                    self.mask &= !bit;
                }
            }
            REG_MODE => {
                let ch = &mut self.channels[usize::from(v & 3)];
                ch.mode = v & 0xfc;
                ch.programmed = true;
            }
            REG_CLEAR_FLIP_FLOP => self.high_byte = false,
            REG_TEMP_MASTER_CLEAR => self.master_clear(),
            REG_CLEAR_MASK => self.mask = 0,
            REG_ALL_MASK => self.mask = v & 0x0f,
            _ => {}
        }
    }
}

/// The two 8237A controllers and the page registers of the PC/AT.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Dma {
    /// DMA1 (channels 0–3) and DMA2 (channels 4–7).
    controllers: [Controller; 2],
    /// The sixteen page latches at 80h–8Fh.
    pages: [u8; 16],
}

impl Default for Dma {
    fn default() -> Self {
        Self::new()
    }
}

impl Dma {
    /// The controllers as a PC BIOS leaves them: both enabled, channel 4 programmed for
    /// cascade and unmasked (so DMA1 can reach the bus through DMA2, IBM PC AT Technical
    /// Reference, "DMA Channels"), every other channel masked and unprogrammed, page
    /// registers zero.
    pub fn new() -> Self {
        let mut dma = Self { controllers: [Controller::new(), Controller::new()], pages: [0; 16] };
        let dma2 = &mut dma.controllers[1];
        dma2.channels[0].mode = MODE_CASCADE;
        dma2.channels[0].programmed = true;
        dma2.mask = 0x0e;
        dma
    }

    /// `IN` from a port; wide accesses are split over consecutive ports as the ISA bus
    /// does. Ports that are not the DMA controllers' or page registers' read as all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0;
        for i in 0..size as u16 {
            value |= u32::from(self.read_byte(port.wrapping_add(i))) << (8 * i);
        }
        value
    }

    /// `OUT` to a port (wide accesses are split into bytes); other ports are ignored.
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            self.write_byte(port.wrapping_add(i), (value >> (8 * i)) as u8);
        }
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            DMA1_BASE..=DMA1_LAST => self.controllers[0].read_reg((port - DMA1_BASE) as u8),
            DMA2_BASE..=DMA2_LAST => self.controllers[1].read_reg(((port - DMA2_BASE) >> 1) as u8),
            DMA_PAGE_BASE..=DMA_PAGE_LAST => self.pages[usize::from(port - DMA_PAGE_BASE)],
            _ => 0xff,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            DMA1_BASE..=DMA1_LAST => self.controllers[0].write_reg((port - DMA1_BASE) as u8, v),
            DMA2_BASE..=DMA2_LAST => self.controllers[1].write_reg(((port - DMA2_BASE) >> 1) as u8, v),
            DMA_PAGE_BASE..=DMA_PAGE_LAST => self.pages[usize::from(port - DMA_PAGE_BASE)] = v,
            _ => {}
        }
    }

    /// The last value written to port 80h (the POST code).
    pub fn post_code(&self) -> u8 {
        self.pages[usize::from(POST_CODE_PORT - DMA_PAGE_BASE)]
    }

    fn split(channel: u8) -> (usize, usize) {
        (usize::from(channel >> 2), usize::from(channel & 3))
    }

    fn channel(&self, channel: u8) -> &Channel {
        let (c, n) = Self::split(channel & 7);
        &self.controllers[c].channels[n]
    }

    /// Whether `channel` (0–7) would serve a DMA request now: its controller is enabled, the
    /// channel is unmasked and has been given a mode with a legal transfer type (not
    /// cascade). Channels 0–3 also need DMA2's cascade channel 4 enabled, unmasked and in
    /// cascade mode, as DMA1 only reaches the bus through it. Channel 4 itself never
    /// transfers data.
    pub fn channel_ready(&self, channel: u8) -> bool {
        if channel > 7 || channel == 4 {
            return false;
        }
        let (c, n) = Self::split(channel);
        let ctl = &self.controllers[c];
        let ch = &ctl.channels[n];
        let usable = ctl.command & COMMAND_DISABLE == 0
            && ctl.mask & (1 << n) == 0
            && ch.programmed
            && ch.mode & MODE_TYPE_MASK != MODE_TYPE_ILLEGAL
            && ch.mode & MODE_MODE_MASK != MODE_CASCADE;
        if !usable {
            return false;
        }
        if c == 0 {
            let dma2 = &self.controllers[1];
            let cascade = &dma2.channels[0];
            return dma2.command & COMMAND_DISABLE == 0
                && dma2.mask & 1 == 0
                && cascade.programmed
                && cascade.mode & MODE_MODE_MASK == MODE_CASCADE;
        }
        true
    }

    /// Whether the last transfer call on `channel` ended because the word count ran out
    /// (the 8237A's EOP# output, which the bus passes on to the device as TC).
    pub fn terminal_count(&self, channel: u8) -> bool {
        let (c, n) = Self::split(channel & 7);
        channel < 8 && self.controllers[c].eop & (1 << n) != 0
    }

    /// The level of a channel's DREQ input, for the request bits of the status register.
    /// Transfers do not depend on it: the bus calls the transfer functions itself.
    pub fn set_dreq(&mut self, channel: u8, level: bool) {
        if channel > 7 {
            return;
        }
        let (c, n) = Self::split(channel);
        if level {
            self.controllers[c].dreq |= 1 << n;
        } else {
            self.controllers[c].dreq &= !(1 << n);
        }
    }

    /// The mode register of `channel` (bits 7:2; bits 1:0 read as the channel number).
    pub fn mode(&self, channel: u8) -> u8 {
        self.channel(channel).mode | (channel & 3)
    }

    /// Whether `channel`'s mask bit is set.
    pub fn masked(&self, channel: u8) -> bool {
        let (c, n) = Self::split(channel & 7);
        self.controllers[c].mask & (1 << n) != 0
    }

    /// The current word count of `channel` (transfers left minus one).
    pub fn current_count(&self, channel: u8) -> u16 {
        self.channel(channel).current_count
    }

    /// The physical address the next transfer unit of `channel` goes to or comes from. An
    /// 8-bit channel puts its page register on A23–A16 and its address register on A15–A0;
    /// a 16-bit channel shifts its address register to A16–A1 and takes A23–A17 from page
    /// bits 7:1 (IBM PC AT Technical Reference, "DMA Channels": channels 5–7 transfer words
    /// within 128K blocks).
    pub fn address(&self, channel: u8) -> u32 {
        let channel = channel & 7;
        let page = u32::from(self.pages[PAGE_INDEX[usize::from(channel)]]);
        let addr = u32::from(self.channel(channel).current_address);
        if channel < 4 {
            (page << 16) | addr
        } else {
            ((page & 0xfe) << 16) | (addr << 1)
        }
    }

    /// Bytes per transfer unit: 1 on DMA1, 2 on DMA2.
    fn unit(channel: u8) -> usize {
        if channel < 4 {
            1
        } else {
            2
        }
    }

    /// Start of a transfer call: forget the previous EOP; say whether the channel serves
    /// a transfer of the given type (`None` if not ready), and which type it has.
    fn begin(&mut self, channel: u8) -> Option<u8> {
        if channel > 7 {
            return None;
        }
        let (c, n) = Self::split(channel);
        self.controllers[c].eop &= !(1 << n);
        if !self.channel_ready(channel) {
            return None;
        }
        Some(self.controllers[c].channels[n].mode & MODE_TYPE_MASK)
    }

    /// After one transfer unit: step the address (the 16-bit address register wraps without
    /// carrying into the page, so a transfer stays inside its 64 KiB or 128 KiB block) and
    /// decrement the count. When the count passes zero the channel reaches terminal count
    /// (8237A datasheet, "Transfer Modes" and "Autoinitialize"): the status TC bit is set,
    /// and the channel either reloads its current registers from the base registers
    /// (auto-init) or sets its mask bit. Returns whether TC was reached.
    fn step(&mut self, channel: u8) -> bool {
        let (c, n) = Self::split(channel);
        let ctl = &mut self.controllers[c];
        let ch = &mut ctl.channels[n];
        ch.current_address = if ch.mode & MODE_DECREMENT != 0 {
            ch.current_address.wrapping_sub(1)
        } else {
            ch.current_address.wrapping_add(1)
        };
        let tc = ch.current_count == 0;
        ch.current_count = ch.current_count.wrapping_sub(1);
        if tc {
            ctl.tc |= 1 << n;
            ctl.eop |= 1 << n;
            if ch.mode & MODE_AUTOINIT != 0 {
                ch.current_address = ch.base_address;
                ch.current_count = ch.base_count;
            } else {
                ctl.mask |= 1 << n;
            }
        }
        tc
    }

    /// Device → memory on `channel`: write `data` to `ram` at the channel's address, one
    /// unit (a byte on channels 0–3, a little-endian word on 5–7) at a time, stopping at
    /// terminal count. Returns the bytes accepted (a whole number of units; 0 if the
    /// channel is not ready or is programmed for a read transfer). In verify mode the bytes
    /// are accepted and counted but memory is left alone. Addresses past the end of `ram`
    /// are not backed by memory; the bytes sent there are lost.
    pub fn transfer_to_memory(&mut self, channel: u8, ram: &mut [u8], data: &[u8]) -> usize {
        let Some(kind) = self.begin(channel) else { return 0 };
        if kind != MODE_TYPE_WRITE && kind != MODE_TYPE_VERIFY {
            return 0;
        }
        let unit = Self::unit(channel);
        let mut done = 0;
        while data.len() - done >= unit {
            if kind == MODE_TYPE_WRITE {
                let addr = self.address(channel) as usize;
                for (i, &b) in data[done..done + unit].iter().enumerate() {
                    if let Some(m) = ram.get_mut(addr + i) {
                        *m = b;
                    }
                }
            }
            done += unit;
            if self.step(channel) {
                break;
            }
        }
        done
    }

    /// Memory → device on `channel`: fill `out` from `ram` at the channel's address, a unit
    /// at a time, stopping at terminal count. Returns the bytes produced (0 if the channel
    /// is not ready or is programmed for a write transfer). Addresses past the end of
    /// `ram`, and a verify transfer (which issues no memory read), give the floating bus's
    /// all-ones.
    pub fn transfer_from_memory(&mut self, channel: u8, ram: &[u8], out: &mut [u8]) -> usize {
        let Some(kind) = self.begin(channel) else { return 0 };
        if kind != MODE_TYPE_READ && kind != MODE_TYPE_VERIFY {
            return 0;
        }
        let unit = Self::unit(channel);
        let mut done = 0;
        while out.len() - done >= unit {
            let addr = self.address(channel) as usize;
            for (i, b) in out[done..done + unit].iter_mut().enumerate() {
                *b = match kind {
                    MODE_TYPE_READ => ram.get(addr + i).copied().unwrap_or(0xff),
                    _ => 0xff,
                };
            }
            done += unit;
            if self.step(channel) {
                break;
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn out(d: &mut Dma, port: u16, v: u8) {
        d.write(port, IoSize::Byte, u32::from(v));
    }

    fn inb(d: &mut Dma, port: u16) -> u8 {
        d.read(port, IoSize::Byte) as u8
    }

    /// Program an 8-bit channel the way a driver does: mask, clear flip-flop, mode,
    /// address low/high, count low/high, page, unmask.
    fn program8(d: &mut Dma, ch: u8, mode: u8, addr: u32, count: u16) {
        let page_port = [0x87, 0x83, 0x81, 0x82][usize::from(ch)];
        out(d, 0x0a, 0x04 | ch);
        out(d, 0x0c, 0);
        out(d, 0x0b, mode | ch);
        out(d, u16::from(ch) * 2, addr as u8);
        out(d, u16::from(ch) * 2, (addr >> 8) as u8);
        out(d, u16::from(ch) * 2 + 1, count as u8);
        out(d, u16::from(ch) * 2 + 1, (count >> 8) as u8);
        out(d, page_port, (addr >> 16) as u8);
        out(d, 0x0a, ch);
    }

    /// Program a 16-bit channel (4–7): `addr` is a byte address, `words` the word count - 1.
    fn program16(d: &mut Dma, ch: u8, mode: u8, addr: u32, words: u16) {
        let n = ch - 4;
        let page_port = [0x8f, 0x8b, 0x89, 0x8a][usize::from(n)];
        let word_addr = (addr >> 1) as u16;
        out(d, 0xd4, 0x04 | n);
        out(d, 0xd8, 0);
        out(d, 0xd6, mode | n);
        out(d, 0xc0 + u16::from(n) * 4, word_addr as u8);
        out(d, 0xc0 + u16::from(n) * 4, (word_addr >> 8) as u8);
        out(d, 0xc2 + u16::from(n) * 4, words as u8);
        out(d, 0xc2 + u16::from(n) * 4, (words >> 8) as u8);
        out(d, page_port, (addr >> 16) as u8);
        out(d, 0xd4, n);
    }

    #[test]
    fn power_on_state() {
        let d = Dma::new();
        for ch in 0..8 {
            assert!(!d.channel_ready(ch), "channel {ch}");
            assert_eq!(d.masked(ch), ch != 4);
        }
        assert_eq!(d.mode(4) & MODE_MODE_MASK, MODE_CASCADE);
        assert_eq!(d.post_code(), 0);
    }

    #[test]
    fn address_and_count_through_the_flip_flop() {
        let mut d = Dma::new();
        out(&mut d, 0x0c, 0);
        out(&mut d, 0x04, 0x34);
        out(&mut d, 0x04, 0x12);
        out(&mut d, 0x05, 0xff);
        out(&mut d, 0x05, 0x01);
        // Reads go through the same flip-flop: low, high, low, high.
        assert_eq!(inb(&mut d, 0x04), 0x34);
        assert_eq!(inb(&mut d, 0x04), 0x12);
        assert_eq!(inb(&mut d, 0x05), 0xff);
        assert_eq!(inb(&mut d, 0x05), 0x01);
        assert_eq!(d.current_count(2), 0x01ff);
        // A stray access leaves the flip-flop on the high byte; clearing it re-syncs.
        out(&mut d, 0x04, 0x78);
        assert_eq!(inb(&mut d, 0x04), 0x12);
        out(&mut d, 0x0c, 0);
        assert_eq!(inb(&mut d, 0x04), 0x78);
        assert_eq!(inb(&mut d, 0x04), 0x12);
        // Writing the high byte alone after a clear + dummy low write.
        out(&mut d, 0x0c, 0);
        out(&mut d, 0x04, 0x78);
        out(&mut d, 0x04, 0x56);
        assert_eq!(d.address(2), 0x5678);
        // Master clear resets the flip-flop too.
        out(&mut d, 0x04, 0x00);
        out(&mut d, 0x0d, 0);
        assert_eq!(inb(&mut d, 0x04), 0x00);
        assert_eq!(inb(&mut d, 0x04), 0x56);
    }

    #[test]
    fn page_registers_follow_the_at_mapping() {
        let mut d = Dma::new();
        let ports = [0x87u16, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a];
        for (ch, &port) in ports.iter().enumerate() {
            out(&mut d, port, 0x10 + ch as u8 * 2);
        }
        for (ch, &port) in ports.iter().enumerate() {
            assert_eq!(inb(&mut d, port), 0x10 + ch as u8 * 2);
            let expect = u32::from(0x10 + ch as u8 * 2) << 16;
            assert_eq!(d.address(ch as u8), expect, "channel {ch}");
        }
        // The spare latches are plain storage; 80h is the POST code.
        out(&mut d, 0x80, 0x42);
        out(&mut d, 0x84, 0x99);
        assert_eq!(d.post_code(), 0x42);
        assert_eq!(inb(&mut d, 0x80), 0x42);
        assert_eq!(inb(&mut d, 0x84), 0x99);
        for ch in 0..8 {
            assert_eq!(d.address(ch) >> 16, u32::from(0x10 + ch * 2) & if ch < 4 { 0xff } else { 0xfe });
        }
    }

    #[test]
    fn byte_transfer_to_memory_sets_tc_and_masks() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x30000];
        program8(&mut d, 2, MODE_SINGLE | MODE_TYPE_WRITE, 0x2_1000, 3);
        assert!(d.channel_ready(2));
        let data: [u8; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(d.transfer_to_memory(2, &mut ram, &data), 4);
        assert_eq!(&ram[0x2_1000..0x2_1005], &[1, 2, 3, 4, 0]);
        assert!(d.terminal_count(2));
        // Without auto-init the channel masks itself at TC.
        assert!(d.masked(2));
        assert!(!d.channel_ready(2));
        assert_eq!(d.transfer_to_memory(2, &mut ram, &data), 0);
        assert!(!d.terminal_count(2));
        // Status: TC bit 2, cleared by the read.
        assert_eq!(inb(&mut d, 0x08) & 0x0f, 0x04);
        assert_eq!(inb(&mut d, 0x08) & 0x0f, 0x00);
        // Current count wrapped to FFFFh, address past the block.
        assert_eq!(d.current_count(2), 0xffff);
        assert_eq!(d.address(2), 0x2_1004);
    }

    #[test]
    fn partial_transfers_continue_where_they_stopped() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x10000];
        program8(&mut d, 1, MODE_SINGLE | MODE_TYPE_WRITE, 0x100, 5);
        assert_eq!(d.transfer_to_memory(1, &mut ram, &[0xa, 0xb]), 2);
        assert!(!d.terminal_count(1));
        assert_eq!(d.current_count(1), 3);
        assert_eq!(d.transfer_to_memory(1, &mut ram, &[0xc, 0xd, 0xe, 0xf, 0x10]), 4);
        assert!(d.terminal_count(1));
        assert_eq!(&ram[0x100..0x107], &[0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0]);
    }

    #[test]
    fn auto_init_reloads_and_stays_unmasked() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x10000];
        program8(&mut d, 3, MODE_SINGLE | MODE_TYPE_WRITE | MODE_AUTOINIT, 0x200, 1);
        assert_eq!(d.transfer_to_memory(3, &mut ram, &[1, 2, 3]), 2);
        assert!(d.terminal_count(3));
        assert!(!d.masked(3));
        assert!(d.channel_ready(3));
        assert_eq!(d.address(3), 0x200);
        assert_eq!(d.current_count(3), 1);
        assert_eq!(d.transfer_to_memory(3, &mut ram, &[7, 8, 9]), 2);
        assert_eq!(&ram[0x200..0x203], &[7, 8, 0]);
        assert_eq!(inb(&mut d, 0x08) & 0x0f, 0x08);
    }

    #[test]
    fn decrement_and_64k_wrap() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x30000];
        program8(&mut d, 1, MODE_SINGLE | MODE_TYPE_WRITE | MODE_DECREMENT, 0x1_0001, 3);
        assert_eq!(d.transfer_to_memory(1, &mut ram, &[1, 2, 3, 4]), 4);
        // 10001h, 10000h, then the address register wraps to FFFFh within page 1.
        assert_eq!(ram[0x1_0001], 1);
        assert_eq!(ram[0x1_0000], 2);
        assert_eq!(ram[0x1_ffff], 3);
        assert_eq!(ram[0x1_fffe], 4);
        assert_eq!(ram[0xffff], 0);
        // Incrementing past FFFFh wraps to the start of the same page, not the next one.
        program8(&mut d, 1, MODE_SINGLE | MODE_TYPE_WRITE, 0x2_ffff, 1);
        assert_eq!(d.transfer_to_memory(1, &mut ram, &[0xaa, 0xbb]), 2);
        assert_eq!(ram[0x2_ffff], 0xaa);
        assert_eq!(ram[0x2_0000], 0xbb);
    }

    #[test]
    fn word_channels_use_word_addresses_and_counts() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x60000];
        // Channel 5, page 8Bh = 05h: bit 0 of the page is ignored, A16 comes from the
        // address register.
        program16(&mut d, 5, MODE_SINGLE | MODE_TYPE_WRITE, 0x5_2000, 1);
        assert_eq!(d.address(5), 0x4_0000 | 0x1_2000);
        out(&mut d, 0x8b, 0x04);
        assert_eq!(d.address(5), 0x5_2000);
        // Two words; an odd trailing byte is not taken.
        assert_eq!(d.transfer_to_memory(5, &mut ram, &[1, 2, 3, 4, 5]), 4);
        assert_eq!(&ram[0x5_2000..0x5_2005], &[1, 2, 3, 4, 0]);
        assert!(d.terminal_count(5));
        assert_eq!(inb(&mut d, 0xd0) & 0x0f, 0x02);
        // Read transfer on channel 6 from memory, wrapping within the 128 KiB block.
        ram[0x5_fffe] = 0x11;
        ram[0x5_ffff] = 0x22;
        ram[0x4_0000] = 0x33;
        ram[0x4_0001] = 0x44;
        program16(&mut d, 6, MODE_SINGLE | MODE_TYPE_READ, 0x5_fffe, 1);
        let mut buf = [0u8; 6];
        assert_eq!(d.transfer_from_memory(6, &ram, &mut buf), 4);
        assert_eq!(&buf[..4], &[0x11, 0x22, 0x33, 0x44]);
        // Channel 4 is the cascade: it never transfers.
        assert!(!d.channel_ready(4));
        assert_eq!(d.transfer_to_memory(4, &mut ram, &[0; 4]), 0);
    }

    #[test]
    fn dma2_odd_ports_alias_even_ones() {
        let mut d = Dma::new();
        out(&mut d, 0xd9, 0); // clear flip-flop via the alias of D8h
        out(&mut d, 0xc5, 0x34);
        out(&mut d, 0xc4, 0x12);
        assert_eq!(d.address(5), 0x1234 << 1);
    }

    #[test]
    fn transfer_from_memory_and_direction_checks() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x1000];
        ram[0x800..0x804].copy_from_slice(&[9, 8, 7, 6]);
        program8(&mut d, 2, MODE_SINGLE | MODE_TYPE_READ, 0x800, 3);
        // The device wants to write to memory but the channel reads memory: nothing moves.
        assert_eq!(d.transfer_to_memory(2, &mut ram, &[1, 2]), 0);
        let mut buf = [0u8; 8];
        assert_eq!(d.transfer_from_memory(2, &ram, &mut buf), 4);
        assert_eq!(&buf[..4], &[9, 8, 7, 6]);
        assert!(d.terminal_count(2));
        // Beyond RAM the bus floats.
        program8(&mut d, 2, MODE_SINGLE | MODE_TYPE_READ, 0xfff, 1);
        assert_eq!(d.transfer_from_memory(2, &ram, &mut buf[..2]), 2);
        assert_eq!(&buf[..2], &[0, 0xff]);
    }

    #[test]
    fn verify_mode_counts_without_touching_memory() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x100];
        program8(&mut d, 2, MODE_SINGLE | MODE_TYPE_VERIFY, 0x10, 2);
        assert_eq!(d.transfer_to_memory(2, &mut ram, &[5; 8]), 3);
        assert!(ram.iter().all(|&b| b == 0));
        assert!(d.terminal_count(2));
    }

    #[test]
    fn masks_master_clear_and_cascade() {
        let mut d = Dma::new();
        program8(&mut d, 2, MODE_SINGLE | MODE_TYPE_WRITE, 0, 10);
        assert!(d.channel_ready(2));
        // Single mask set/clear.
        out(&mut d, 0x0a, 0x06);
        assert!(!d.channel_ready(2));
        out(&mut d, 0x0a, 0x02);
        assert!(d.channel_ready(2));
        // Write-all-mask and its read-back.
        out(&mut d, 0x0f, 0x0b);
        assert!(d.masked(0) && d.masked(1) && !d.masked(2) && d.masked(3));
        assert_eq!(inb(&mut d, 0x0f), 0xfb);
        // Clear mask.
        out(&mut d, 0x0e, 0);
        assert!((0..4).all(|ch| !d.masked(ch)));
        // Controller disable in the command register.
        out(&mut d, 0x08, COMMAND_DISABLE);
        assert!(!d.channel_ready(2));
        out(&mut d, 0x08, 0);
        assert!(d.channel_ready(2));
        // DMA1 needs the cascade channel 4 unmasked.
        out(&mut d, 0xd4, 0x04);
        assert!(!d.channel_ready(2));
        out(&mut d, 0xd4, 0x00);
        assert!(d.channel_ready(2));
        // Master clear masks everything, keeps the modes.
        out(&mut d, 0x0d, 0);
        assert!((0..4).all(|ch| d.masked(ch)));
        assert_eq!(d.mode(2), MODE_SINGLE | MODE_TYPE_WRITE | 2);
        out(&mut d, 0x0e, 0);
        assert!(d.channel_ready(2));
        // Master clear of DMA2 masks the cascade: DMA1 is cut off until it is unmasked.
        out(&mut d, 0xda, 0);
        assert!(!d.channel_ready(2));
        out(&mut d, 0xdc, 0);
        assert!(d.channel_ready(2));
        // An illegal transfer type is never ready.
        out(&mut d, 0x0b, MODE_SINGLE | MODE_TYPE_ILLEGAL | 2);
        assert!(!d.channel_ready(2));
    }

    #[test]
    fn request_register_and_dreq_show_in_status() {
        let mut d = Dma::new();
        out(&mut d, 0x09, 0x04 | 1);
        d.set_dreq(2, true);
        d.set_dreq(7, true);
        assert_eq!(inb(&mut d, 0x08), 0x60);
        assert_eq!(inb(&mut d, 0xd0), 0x80);
        out(&mut d, 0x09, 1);
        d.set_dreq(2, false);
        assert_eq!(inb(&mut d, 0x08), 0x00);
        // Temporary register reads 0 after master clear; illegal reads float.
        assert_eq!(inb(&mut d, 0x0d), 0);
        assert_eq!(inb(&mut d, 0x0b), 0xff);
    }

    #[test]
    fn foreign_ports_and_wide_accesses() {
        let mut d = Dma::new();
        assert_eq!(d.read(0x10, IoSize::Byte), 0xff);
        assert_eq!(d.read(0x92, IoSize::Byte), 0xff);
        assert_eq!(d.read(0x90, IoSize::Word), 0xffff);
        // A word write to a page register spans two latches.
        d.write(0x81, IoSize::Word, 0x0302);
        assert_eq!(inb(&mut d, 0x81), 0x02);
        assert_eq!(inb(&mut d, 0x82), 0x03);
        // A word read of the address register goes through the flip-flop twice.
        out(&mut d, 0x0c, 0);
        out(&mut d, 0x00, 0xcd);
        out(&mut d, 0x00, 0xab);
        out(&mut d, 0x0c, 0);
        assert_eq!(d.read(0x00, IoSize::Byte) | d.read(0x00, IoSize::Byte) << 8, 0xabcd);
    }

    #[test]
    fn guest_writes_never_panic() {
        let mut d = Dma::new();
        let mut ram = vec![0u8; 0x100];
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            seed >> 8
        };
        for _ in 0..20_000 {
            let r = next();
            let port = [0x00u16, 0x80, 0xc0][(r % 3) as usize] + (next() % 32) as u16;
            let v = next();
            if r & 0x100 != 0 {
                d.write(port, IoSize::Byte, v);
            } else {
                d.read(port, IoSize::Word);
            }
            let ch = (next() % 9) as u8;
            let mut buf = [0u8; 7];
            d.transfer_to_memory(ch, &mut ram, &[1, 2, 3]);
            d.transfer_from_memory(ch, &ram, &mut buf);
            let _ = d.channel_ready(ch) | d.terminal_count(ch);
            let _ = d.address(ch);
        }
    }
}
