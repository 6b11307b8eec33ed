//! The PC serial port: a National Semiconductor PC16550D UART ("16550A"), the chip behind
//! COM1–COM4 on every PC since the late 1980s. Guests use it for consoles (Linux
//! `console=ttyS0`), debuggers and test output, so its register behaviour has to match
//! what drivers probe: the divisor latch, the FIFOs and their trigger levels, the
//! interrupt identification priorities, the THRE interrupt rules, loopback and the modem
//! lines.
//!
//! Sources: PC16550D datasheet (National Semiconductor, June 1995): Table II "Summary of
//! Registers", Table IV "Interrupt Control Functions", sections 8.4–8.8 (FCR, IIR, IER,
//! MCR, MSR) and the pin descriptions of OUT2 and the loop mode; IBM PC/AT Technical
//! Reference, "Serial/Parallel Adapter" (OUT2 enables the adapter's IRQ driver).
//!
//! Model choices (the emulator has no serial line, so character timing is compressed):
//! - Transmission is instantaneous: a byte written to THR goes straight to an output buffer
//!   the host drains with [`Uart::take_output`] (or, in loopback, into the receiver). The
//!   transmitter holding register and transmit FIFO are therefore always empty: LSR.THRE and
//!   LSR.TEMT read 1, a write to THR clears the THRE interrupt and the immediate emptying
//!   raises it again, and FCR's transmit-FIFO reset has nothing to clear.
//! - Receive is fed by the host with [`Uart::receive`]. Bytes wait in a host-side queue
//!   and enter the receiver (16 bytes in FIFO mode, the single RBR in 16450 mode) as room
//!   frees, so pasted text is never lost to overruns. Room freed by a guest read of RBR is
//!   refilled at the next [`Uart::advance`], `receive`, or guest read of LSR or IIR — never
//!   inside the RBR read itself, so the interrupt line drops after the read the way it does
//!   on hardware, and an edge-triggered PIC sees a fresh edge for the next byte.
//! - Character timeout: the datasheet raises it when the FIFO holds data and nothing has
//!   been received or read for four character times. The guest can only look at the UART
//!   between host batches, by which time no further byte is on its way, so the timer counts
//!   as expired whenever the guest looks: in FIFO mode the timeout interrupt (IIR 0x0C) is
//!   reported whenever the FIFO holds at least one byte but fewer than the trigger level,
//!   and it goes away when reads empty the FIFO (or new bytes reach the trigger level, which
//!   turns it into "received data available").
//! - Host input never has parity, framing or break errors; the one line error the model
//!   produces is an overrun in loopback (the guest sending itself more than fits).
//! - The PC's OUT2 gate: on the IBM adapters the UART's INTR pin reaches the ISA IRQ line
//!   only through a driver enabled by the OUT2 output. [`Uart::irq`] is INTR AND MCR.OUT2,
//!   and loop mode forces the OUT2 pin inactive (datasheet, OUT2 pin description), so the
//!   line stays low in loopback even though the UART's internal interrupts keep working
//!   (IIR still reports them).
//! - The modem inputs default to a connected, ready terminal: CTS, DSR and DCD asserted,
//!   RI not ([`Uart::set_modem_inputs`] changes them and sets the delta bits).

use super::Nanos;
use crate::bus::IoSize;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// COM1's base port and IRQ (IBM PC/AT Technical Reference, system I/O address map).
pub const COM1_BASE: u16 = 0x3f8;
pub const COM1_IRQ: u8 = 4;
/// COM2's base port and IRQ.
pub const COM2_BASE: u16 = 0x2f8;
pub const COM2_IRQ: u8 = 3;
/// COM3 and COM4 by convention share IRQ4 and IRQ3 with COM1 and COM2.
pub const COM3_BASE: u16 = 0x3e8;
pub const COM3_IRQ: u8 = 4;
pub const COM4_BASE: u16 = 0x2e8;
pub const COM4_IRQ: u8 = 3;

/// Number of consecutive ports the UART decodes (A0–A2).
pub const UART_PORT_COUNT: u16 = 8;

// Register offsets from the base port (PC16550D datasheet, Table II).
/// RBR (read) / THR (write); DLL when LCR.DLAB is set.
pub const REG_DATA: u16 = 0;
/// IER; DLM when LCR.DLAB is set.
pub const REG_IER: u16 = 1;
/// IIR (read) / FCR (write).
pub const REG_IIR_FCR: u16 = 2;
pub const REG_LCR: u16 = 3;
pub const REG_MCR: u16 = 4;
pub const REG_LSR: u16 = 5;
pub const REG_MSR: u16 = 6;
pub const REG_SCR: u16 = 7;

// Interrupt Enable Register (datasheet §8.5).
/// Enable received data available (and, in FIFO mode, character timeout) interrupt.
pub const IER_ERBFI: u8 = 0x01;
/// Enable transmitter holding register empty interrupt.
pub const IER_ETBEI: u8 = 0x02;
/// Enable receiver line status interrupt.
pub const IER_ELSI: u8 = 0x04;
/// Enable modem status interrupt.
pub const IER_EDSSI: u8 = 0x08;
const IER_MASK: u8 = 0x0f;

// Interrupt Identification Register (datasheet Table IV), highest priority first.
/// Bit 0 set: no interrupt pending.
pub const IIR_NONE: u8 = 0x01;
/// Priority 1: overrun, parity or framing error, or break. Cleared by reading LSR.
pub const IIR_LINE_STATUS: u8 = 0x06;
/// Priority 2: received data available (FIFO at or above trigger level).
pub const IIR_RX_DATA: u8 = 0x04;
/// Priority 2: character timeout (FIFO mode). Cleared by reading RBR.
pub const IIR_CHAR_TIMEOUT: u8 = 0x0c;
/// Priority 3: THR empty. Cleared by reading IIR (if it is the source) or writing THR.
pub const IIR_THR_EMPTY: u8 = 0x02;
/// Priority 4: modem status change. Cleared by reading MSR.
pub const IIR_MODEM_STATUS: u8 = 0x00;
/// Bits 6–7: set when the FIFOs are enabled (FCR bit 0).
pub const IIR_FIFOS_ENABLED: u8 = 0xc0;

// FIFO Control Register (datasheet §8.4).
pub const FCR_ENABLE: u8 = 0x01;
/// Clear the receive FIFO (self-clearing).
pub const FCR_RX_RESET: u8 = 0x02;
/// Clear the transmit FIFO (self-clearing).
pub const FCR_TX_RESET: u8 = 0x04;
pub const FCR_DMA_MODE: u8 = 0x08;
/// Bits 6–7: receiver trigger level 1, 4, 8 or 14 bytes.
pub const FCR_TRIGGER_MASK: u8 = 0xc0;

// Line Control Register (datasheet §8.2).
pub const LCR_BREAK: u8 = 0x40;
/// Divisor latch access bit.
pub const LCR_DLAB: u8 = 0x80;

// Modem Control Register (datasheet §8.7).
pub const MCR_DTR: u8 = 0x01;
pub const MCR_RTS: u8 = 0x02;
pub const MCR_OUT1: u8 = 0x04;
/// On the PC: enables the IRQ driver.
pub const MCR_OUT2: u8 = 0x08;
pub const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

// Line Status Register (datasheet §8.3).
pub const LSR_DR: u8 = 0x01;
pub const LSR_OE: u8 = 0x02;
pub const LSR_PE: u8 = 0x04;
pub const LSR_FE: u8 = 0x08;
pub const LSR_BI: u8 = 0x10;
pub const LSR_THRE: u8 = 0x20;
pub const LSR_TEMT: u8 = 0x40;
/// FIFO mode: a byte with a parity/framing error or break is in the receive FIFO.
pub const LSR_RX_FIFO_ERROR: u8 = 0x80;
const LSR_ERRORS: u8 = LSR_OE | LSR_PE | LSR_FE | LSR_BI;

// Modem Status Register (datasheet §8.8).
pub const MSR_DCTS: u8 = 0x01;
pub const MSR_DDSR: u8 = 0x02;
/// Trailing edge of ring indicator: RI went from on to off.
pub const MSR_TERI: u8 = 0x04;
pub const MSR_DDCD: u8 = 0x08;
pub const MSR_CTS: u8 = 0x10;
pub const MSR_DSR: u8 = 0x20;
pub const MSR_RI: u8 = 0x40;
pub const MSR_DCD: u8 = 0x80;
const MSR_DELTAS: u8 = 0x0f;

/// Depth of the receive and transmit FIFOs.
pub const FIFO_SIZE: usize = 16;

/// The UART's reference clock divided by 16: the baud rate at divisor 1 (1.8432 MHz
/// crystal, datasheet Table III "Baud Rates Using 1.8432 MHz Crystal").
pub const BAUD_BASE: u32 = 115_200;

/// Guest output kept for the host at most; beyond it the oldest half is dropped so a guest
/// printing forever to a host that never drains cannot exhaust memory.
pub const OUTPUT_LIMIT: usize = 4 << 20;

/// One 16550A UART.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Uart {
    base: u16,
    /// The receive FIFO; in 16450 mode (FIFOs off) it holds at most one byte, the RBR.
    rx: VecDeque<u8>,
    /// Host bytes that have not fitted into the receiver yet.
    host_queue: VecDeque<u8>,
    /// Transmitted bytes for the host.
    #[serde(with = "serde_bytes")]
    output: Vec<u8>,
    /// The last byte the receiver handed out (what RBR reads when empty).
    last_rx: u8,
    divisor: u16,
    ier: u8,
    /// FIFO enable, DMA mode and trigger bits as last programmed.
    fcr: u8,
    lcr: u8,
    mcr: u8,
    /// Sticky OE/PE/FE/BI bits, cleared by reading LSR.
    lsr_errors: u8,
    /// MSR bits 0–3, cleared by reading MSR.
    msr_deltas: u8,
    /// The external CTS/DSR/RI/DCD inputs, in MSR bit positions 4–7.
    modem_inputs: u8,
    scr: u8,
    /// The THRE interrupt latch (set when THR empties or ETBEI is enabled while empty).
    thre_pending: bool,
}

impl Uart {
    /// A UART at `base` (e.g. [`COM1_BASE`]) in its master-reset state (datasheet Table IV:
    /// IER, FCR, LCR, MCR = 0, IIR = 01h, LSR = 60h, MSR deltas clear). The divisor latch is
    /// not defined by reset; it starts at 12 (9600 baud).
    pub fn new(base: u16) -> Self {
        Self {
            base,
            rx: VecDeque::with_capacity(FIFO_SIZE),
            host_queue: VecDeque::new(),
            output: Vec::new(),
            last_rx: 0,
            divisor: 12,
            ier: 0,
            fcr: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr_deltas: 0,
            modem_inputs: MSR_CTS | MSR_DSR | MSR_DCD,
            scr: 0,
            thre_pending: false,
        }
    }

    /// The base port this UART decodes (8 ports from it).
    pub fn base(&self) -> u16 {
        self.base
    }

    /// The programmed divisor latch.
    pub fn divisor(&self) -> u16 {
        self.divisor
    }

    /// The programmed baud rate (0 for a divisor of 0, which the datasheet leaves undefined).
    pub fn baud(&self) -> u32 {
        if self.divisor == 0 {
            0
        } else {
            BAUD_BASE / u32::from(self.divisor)
        }
    }

    /// The Line Control Register (word length, parity, stop bits) as programmed.
    pub fn line_control(&self) -> u8 {
        self.lcr
    }

    /// The Modem Control Register as programmed.
    pub fn modem_control(&self) -> u8 {
        self.mcr
    }

    /// `IN` from `port`. Each byte of a wide access goes to the next port, as an 8-bit ISA
    /// device sees it; ports outside the UART's eight answer all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0u32;
        for i in 0..size as u16 {
            let p = port.wrapping_add(i);
            let byte = match p.wrapping_sub(self.base) {
                offset @ 0..=7 => self.read_reg(offset),
                _ => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to `port`, byte by byte as in [`Uart::read`].
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            let p = port.wrapping_add(i);
            if let offset @ 0..=7 = p.wrapping_sub(self.base) {
                self.write_reg(offset, (value >> (8 * i)) as u8);
            }
        }
    }

    /// The IRQ line as the PC sees it: the UART's INTR output gated by OUT2 (which loop mode
    /// holds inactive).
    pub fn irq(&self) -> bool {
        self.mcr & MCR_OUT2 != 0 && self.mcr & MCR_LOOP == 0 && self.interrupt_id() != IIR_NONE
    }

    /// The UART's own INTR pin, before the PC's OUT2 gate.
    pub fn intr(&self) -> bool {
        self.interrupt_id() != IIR_NONE
    }

    /// Host → guest: queue bytes for the receiver. What fits enters it now; the rest follows
    /// as the guest reads.
    pub fn receive(&mut self, bytes: &[u8]) {
        self.host_queue.extend(bytes.iter().copied());
        self.pump();
    }

    /// Host bytes not yet in the receiver.
    pub fn pending_input(&self) -> usize {
        self.host_queue.len()
    }

    /// Guest → host: everything transmitted since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    /// Catch up: moves queued host bytes into the room guest reads have freed. The UART
    /// keeps no clock (see the module notes), so `now` is not used.
    pub fn advance(&mut self, _now: Nanos) {
        self.pump();
    }

    /// When the UART next needs [`Uart::advance`]: at once while host bytes wait and the
    /// receiver has room for them, otherwise never.
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        (self.mcr & MCR_LOOP == 0 && !self.host_queue.is_empty() && self.rx.len() < self.rx_capacity()).then_some(now)
    }

    /// Set the external modem inputs (the other end of the cable); changes set the MSR delta
    /// bits (and so the modem status interrupt) unless the UART is in loop mode, where the
    /// inputs are disconnected.
    pub fn set_modem_inputs(&mut self, cts: bool, dsr: bool, ri: bool, dcd: bool) {
        let old = self.msr_lines();
        self.modem_inputs = (if cts { MSR_CTS } else { 0 })
            | (if dsr { MSR_DSR } else { 0 })
            | (if ri { MSR_RI } else { 0 })
            | (if dcd { MSR_DCD } else { 0 });
        self.note_modem_change(old);
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_ENABLE != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_SIZE
        } else {
            1
        }
    }

    /// Receiver trigger level (datasheet §8.4, FCR bits 6–7).
    fn trigger_level(&self) -> usize {
        match self.fcr >> 6 {
            0 => 1,
            1 => 4,
            2 => 8,
            _ => 14,
        }
    }

    /// Move host bytes into the receiver while it has room. The serial input is disconnected
    /// in loop mode, so they keep waiting then.
    fn pump(&mut self) {
        if self.mcr & MCR_LOOP != 0 {
            return;
        }
        let capacity = self.rx_capacity();
        while self.rx.len() < capacity {
            match self.host_queue.pop_front() {
                Some(b) => self.rx.push_back(b),
                None => break,
            }
        }
    }

    /// A character arriving at the receiver shift register from the loopback path.
    fn receive_char(&mut self, byte: u8) {
        if self.rx.len() < self.rx_capacity() {
            self.rx.push_back(byte);
        } else {
            // Overrun (datasheet §8.3, LSR bit 1): in FIFO mode the new character stays in
            // the shift register and is lost; in 16450 mode it overwrites RBR.
            self.lsr_errors |= LSR_OE;
            if !self.fifo_enabled() {
                if let Some(rbr) = self.rx.back_mut() {
                    *rbr = byte;
                }
            }
        }
    }

    /// The highest-priority enabled pending interrupt, as IIR bits 0–3 (datasheet Table IV).
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_ELSI != 0 && self.lsr_errors != 0 {
            IIR_LINE_STATUS
        } else if self.ier & IER_ERBFI != 0 && !self.rx.is_empty() {
            if self.fifo_enabled() && self.rx.len() < self.trigger_level() {
                IIR_CHAR_TIMEOUT
            } else {
                IIR_RX_DATA
            }
        } else if self.ier & IER_ETBEI != 0 && self.thre_pending {
            IIR_THR_EMPTY
        } else if self.ier & IER_EDSSI != 0 && self.msr_deltas != 0 {
            IIR_MODEM_STATUS
        } else {
            IIR_NONE
        }
    }

    /// The current CTS/DSR/RI/DCD levels in MSR bit positions. In loop mode they are the
    /// MCR outputs: RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD (datasheet §8.7, bit 4).
    fn msr_lines(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            let m = self.mcr;
            (if m & MCR_RTS != 0 { MSR_CTS } else { 0 })
                | (if m & MCR_DTR != 0 { MSR_DSR } else { 0 })
                | (if m & MCR_OUT1 != 0 { MSR_RI } else { 0 })
                | (if m & MCR_OUT2 != 0 { MSR_DCD } else { 0 })
        } else {
            self.modem_inputs
        }
    }

    /// Set the delta bits for the lines that differ from `old` (datasheet §8.8: DCTS, DDSR
    /// and DDCD on any change, TERI only when RI goes from on to off).
    fn note_modem_change(&mut self, old: u8) {
        let new = self.msr_lines();
        let changed = old ^ new;
        if changed & MSR_CTS != 0 {
            self.msr_deltas |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_deltas |= MSR_DDSR;
        }
        if old & MSR_RI != 0 && new & MSR_RI == 0 {
            self.msr_deltas |= MSR_TERI;
        }
        if changed & MSR_DCD != 0 {
            self.msr_deltas |= MSR_DDCD;
        }
    }

    fn read_reg(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            REG_DATA if dlab => self.divisor as u8,
            REG_DATA => {
                // RBR. Freed room is refilled later (see the module notes), so the interrupt
                // line can drop after this read.
                if let Some(b) = self.rx.pop_front() {
                    self.last_rx = b;
                }
                self.last_rx
            }
            REG_IER if dlab => (self.divisor >> 8) as u8,
            REG_IER => self.ier,
            REG_IIR_FCR => {
                self.pump();
                let id = self.interrupt_id();
                // Reading IIR clears the THRE interrupt when it is the one reported.
                if id == IIR_THR_EMPTY {
                    self.thre_pending = false;
                }
                id | if self.fifo_enabled() { IIR_FIFOS_ENABLED } else { 0 }
            }
            REG_LCR => self.lcr,
            REG_MCR => self.mcr,
            REG_LSR => {
                self.pump();
                let mut lsr = (self.lsr_errors & LSR_ERRORS) | LSR_THRE | LSR_TEMT;
                if !self.rx.is_empty() {
                    lsr |= LSR_DR;
                }
                // Reading LSR clears the error bits and so the line status interrupt.
                self.lsr_errors = 0;
                lsr
            }
            REG_MSR => {
                let msr = self.msr_lines() | (self.msr_deltas & MSR_DELTAS);
                self.msr_deltas = 0;
                msr
            }
            _ => self.scr,
        }
    }

    fn write_reg(&mut self, offset: u16, value: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            REG_DATA if dlab => self.divisor = (self.divisor & 0xff00) | u16::from(value),
            REG_DATA => self.transmit(value),
            REG_IER if dlab => self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8),
            REG_IER => {
                let old = self.ier;
                self.ier = value & IER_MASK;
                if self.ier & IER_ETBEI == 0 {
                    self.thre_pending = false;
                } else if old & IER_ETBEI == 0 {
                    // Enabling ETBEI while THR is empty (always, here) raises the THRE
                    // interrupt at once; Linux's UART_BUG_THRE probe relies on it.
                    self.thre_pending = true;
                }
            }
            REG_IIR_FCR => self.write_fcr(value),
            REG_LCR => self.lcr = value,
            REG_MCR => {
                let old_lines = self.msr_lines();
                let was_loop = self.mcr & MCR_LOOP != 0;
                self.mcr = value & MCR_MASK;
                self.note_modem_change(old_lines);
                if was_loop && self.mcr & MCR_LOOP == 0 {
                    // The serial input is connected again: waiting host bytes may enter.
                    self.pump();
                }
            }
            REG_LSR => {} // LSR is read-only here (the datasheet reserves writes for test).
            REG_MSR => {}
            _ => self.scr = value,
        }
    }

    fn transmit(&mut self, byte: u8) {
        if self.mcr & MCR_LOOP != 0 {
            // Loop mode: the transmitter shift register feeds the receiver; SOUT stays
            // marking, so nothing reaches the host.
            self.receive_char(byte);
        } else {
            if self.output.len() >= OUTPUT_LIMIT {
                self.output.drain(..OUTPUT_LIMIT / 2);
            }
            self.output.push(byte);
        }
        // Writing THR clears the THRE interrupt; the byte leaves at once, THR is empty again
        // and the interrupt is raised anew (if enabled).
        self.thre_pending = self.ier & IER_ETBEI != 0;
    }

    /// FCR (datasheet §8.4): bit 0 must be set for the other bits to be programmed; changing
    /// bit 0 clears both FIFOs.
    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE;
        if enable != self.fcr & FCR_ENABLE {
            self.rx.clear();
        }
        if enable == 0 {
            self.fcr = 0;
            return;
        }
        if value & FCR_RX_RESET != 0 {
            self.rx.clear();
        }
        // FCR_TX_RESET: the transmit FIFO is always empty (instant transmission).
        self.fcr = value & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIGGER_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const B: u16 = COM1_BASE;

    fn rd(u: &mut Uart, reg: u16) -> u8 {
        u.read(B + reg, IoSize::Byte) as u8
    }

    fn wr(u: &mut Uart, reg: u16, v: u8) {
        u.write(B + reg, IoSize::Byte, u32::from(v));
    }

    #[test]
    fn reset_state() {
        let mut u = Uart::new(B);
        assert_eq!(rd(&mut u, REG_IER), 0);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        assert_eq!(rd(&mut u, REG_LCR), 0);
        assert_eq!(rd(&mut u, REG_MCR), 0);
        assert_eq!(rd(&mut u, REG_LSR), 0x60);
        assert_eq!(rd(&mut u, REG_MSR), MSR_CTS | MSR_DSR | MSR_DCD);
        assert!(!u.irq());
    }

    #[test]
    fn ports_outside_the_uart_answer_ones() {
        let mut u = Uart::new(COM2_BASE);
        assert_eq!(u.read(COM1_BASE, IoSize::Byte), 0xff);
        assert_eq!(u.read(COM2_BASE + 8, IoSize::Word), 0xffff);
        u.write(COM2_BASE - 1, IoSize::Byte, 0x80);
        assert_eq!(u.line_control(), 0);
        // A word read at base+7 sees SCR then the first port past the UART.
        u.write(COM2_BASE + 7, IoSize::Byte, 0x5a);
        assert_eq!(u.read(COM2_BASE + 7, IoSize::Word), 0xff5a);
    }

    #[test]
    fn divisor_latch() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_LCR, 0x83); // DLAB, 8N1
        wr(&mut u, REG_DATA, 0x01);
        wr(&mut u, REG_IER, 0x00);
        assert_eq!(u.divisor(), 1);
        assert_eq!(u.baud(), 115_200);
        assert_eq!(rd(&mut u, REG_DATA), 0x01);
        assert_eq!(rd(&mut u, REG_IER), 0x00);
        wr(&mut u, REG_DATA, 0x80);
        wr(&mut u, REG_IER, 0x01);
        assert_eq!(u.divisor(), 0x180);
        assert_eq!(u.baud(), 300);
        // While DLAB is set, THR/IER are not touched and nothing is transmitted.
        assert!(u.take_output().is_empty());
        wr(&mut u, REG_LCR, 0x03);
        assert_eq!(rd(&mut u, REG_IER), 0);
        assert_eq!(rd(&mut u, REG_LCR), 0x03);
        // A word write spans DLL and DLM.
        wr(&mut u, REG_LCR, 0x83);
        u.write(B, IoSize::Word, 0x0203);
        assert_eq!(u.divisor(), 0x0203);
        assert_eq!(u.read(B, IoSize::Word), 0x0203);
    }

    #[test]
    fn transmit_goes_to_output() {
        let mut u = Uart::new(B);
        for &b in b"hi\n" {
            assert_ne!(rd(&mut u, REG_LSR) & LSR_THRE, 0);
            wr(&mut u, REG_DATA, b);
        }
        assert_eq!(u.take_output(), b"hi\n".to_vec());
        assert!(u.take_output().is_empty());
        assert_eq!(rd(&mut u, REG_LSR), LSR_THRE | LSR_TEMT);
    }

    #[test]
    fn scratch_register() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_SCR, 0xa5);
        assert_eq!(rd(&mut u, REG_SCR), 0xa5);
    }

    #[test]
    fn receive_without_fifo() {
        let mut u = Uart::new(B);
        u.receive(b"ab");
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(u.pending_input(), 1, "16450 mode holds one byte in RBR");
        assert_eq!(rd(&mut u, REG_DATA), b'a');
        // The LSR read refills RBR from the host queue.
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(rd(&mut u, REG_DATA), b'b');
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
        // Reading an empty RBR repeats the last byte.
        assert_eq!(rd(&mut u, REG_DATA), b'b');
        assert_eq!(rd(&mut u, REG_LSR) & LSR_OE, 0, "host input never overruns");
    }

    #[test]
    fn fifo_enable_and_iir_bits() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
        // FCR bit 0 clear: FIFOs off and other bits not programmed.
        wr(&mut u, REG_IIR_FCR, 0xc0);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0x01);
        wr(&mut u, REG_IIR_FCR, 0xc7);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
    }

    #[test]
    fn fifo_fill_and_trigger_levels() {
        for (bits, level) in [(0x00u8, 1usize), (0x40, 4), (0x80, 8), (0xc0, 14)] {
            let mut u = Uart::new(B);
            wr(&mut u, REG_IIR_FCR, FCR_ENABLE | bits);
            wr(&mut u, REG_IER, IER_ERBFI);
            wr(&mut u, REG_MCR, MCR_OUT2);
            let data: Vec<u8> = (0..level as u8).collect();
            if level > 1 {
                u.receive(&data[..level - 1]);
                assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_CHAR_TIMEOUT, "below trigger {level}");
            }
            u.receive(&data[level - 1..]);
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_RX_DATA, "at trigger {level}");
            assert!(u.irq());
            // One read drops the FIFO below the trigger: timeout (if data remains) or nothing.
            assert_eq!(rd(&mut u, REG_DATA), 0);
            let expect = if level > 1 { IIR_CHAR_TIMEOUT } else { IIR_NONE };
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | expect);
            for i in 1..level as u8 {
                assert_eq!(rd(&mut u, REG_DATA), i);
            }
            assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc1);
            assert!(!u.irq());
        }
    }

    #[test]
    fn fifo_holds_sixteen_and_host_queue_keeps_the_rest() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE | 0xc0);
        let text: Vec<u8> = (0..100u8).collect();
        u.receive(&text);
        assert_eq!(u.pending_input(), 100 - FIFO_SIZE);
        assert_eq!(u.next_event(5), None, "the FIFO is full");
        let mut got = Vec::new();
        while rd(&mut u, REG_LSR) & LSR_DR != 0 {
            got.push(rd(&mut u, REG_DATA));
        }
        assert_eq!(got, text, "nothing lost, order kept");
        assert_eq!(rd(&mut u, REG_LSR) & LSR_OE, 0);
        assert_eq!(u.pending_input(), 0);
    }

    #[test]
    fn rbr_read_does_not_refill_so_the_line_drops() {
        // A driver that reads one byte per interrupt needs the line to fall after the read.
        let mut u = Uart::new(B);
        wr(&mut u, REG_IER, IER_ERBFI);
        wr(&mut u, REG_MCR, MCR_OUT2);
        u.receive(b"xy");
        assert!(u.irq());
        assert_eq!(rd(&mut u, REG_DATA), b'x');
        assert!(!u.irq(), "line low after the read");
        assert_eq!(u.next_event(1000), Some(1000));
        u.advance(1000);
        assert!(u.irq(), "next byte in: a fresh edge");
        assert_eq!(u.next_event(1000), None);
        assert_eq!(rd(&mut u, REG_DATA), b'y');
        u.advance(2000);
        assert!(!u.irq());
    }

    #[test]
    fn fcr_resets_and_mode_change_clear_receiver() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE);
        u.receive(b"abc");
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE | FCR_RX_RESET);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
        u.receive(b"de");
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE | FCR_TX_RESET);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR, "TX reset leaves the receiver alone");
        wr(&mut u, REG_IIR_FCR, 0);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0, "leaving FIFO mode clears the FIFOs");
    }

    #[test]
    fn thre_interrupt_rules() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_MCR, MCR_OUT2);
        // Enabling ETBEI while THR is empty raises THRE at once.
        wr(&mut u, REG_IER, IER_ETBEI);
        assert!(u.irq());
        // Reading IIR when THRE is the source clears it.
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_THR_EMPTY);
        assert!(!u.irq());
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_NONE);
        // Rewriting IER with ETBEI still set is no new enable.
        wr(&mut u, REG_IER, IER_ETBEI);
        assert!(!u.irq());
        // Disable and re-enable: raised again (Linux's UART_BUG_THRE probe).
        wr(&mut u, REG_IER, 0);
        wr(&mut u, REG_IER, IER_ETBEI);
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_THR_EMPTY);
        // Writing THR: the byte leaves at once and THR empties: raised again.
        wr(&mut u, REG_DATA, b'a');
        assert!(u.irq());
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_THR_EMPTY);
        assert!(!u.irq());
        // With ETBEI off, writing THR raises nothing.
        wr(&mut u, REG_IER, 0);
        wr(&mut u, REG_DATA, b'b');
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_NONE);
        assert_eq!(u.take_output(), b"ab".to_vec());
    }

    #[test]
    fn thre_survives_iir_read_when_a_higher_priority_source_is_reported() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IER, IER_ETBEI | IER_ERBFI);
        u.receive(b"z");
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_RX_DATA);
        assert_eq!(rd(&mut u, REG_DATA), b'z');
        // The THRE latch was not consumed by the first IIR read.
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_THR_EMPTY);
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_NONE);
    }

    #[test]
    fn iir_priorities() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IIR_FCR, FCR_ENABLE); // trigger 1
        wr(&mut u, REG_IER, IER_ERBFI | IER_ETBEI | IER_ELSI | IER_EDSSI);
        // Produce all four sources: an overrun via loopback, data, THRE and a modem change.
        wr(&mut u, REG_MCR, MCR_LOOP);
        for i in 0..17u8 {
            wr(&mut u, REG_DATA, i);
        }
        // Entering loop mode with every output off: the cable's CTS, DSR and DCD "fall".
        assert_eq!(rd(&mut u, REG_MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_RTS); // CTS rises: DCTS
                                                 // 1: line status (overrun). Reading LSR clears it.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_LINE_STATUS);
        assert_eq!(rd(&mut u, REG_LSR), LSR_OE | LSR_DR | LSR_THRE | LSR_TEMT);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_OE, 0);
        // 2: received data. Reading the FIFO empty clears it.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_RX_DATA);
        for i in 0..16u8 {
            assert_eq!(rd(&mut u, REG_DATA), i, "the 17th byte was lost to the overrun");
        }
        // 3: THRE, cleared by this IIR read.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_THR_EMPTY);
        // 4: modem status, cleared by reading MSR.
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_MODEM_STATUS);
        assert_eq!(rd(&mut u, REG_MSR), MSR_CTS | MSR_DCTS);
        assert_eq!(rd(&mut u, REG_IIR_FCR), 0xc0 | IIR_NONE);
    }

    #[test]
    fn loopback_mode() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IER, IER_ERBFI);
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_OUT2);
        wr(&mut u, REG_DATA, 0x55);
        assert!(u.take_output().is_empty(), "SOUT is held marking in loop mode");
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_RX_DATA, "receiver interrupts still work");
        assert!(u.intr());
        assert!(!u.irq(), "loop mode holds OUT2 inactive, so the PC's IRQ line stays low");
        assert_eq!(rd(&mut u, REG_DATA), 0x55);
        // 16450 mode: a second byte before the first is read overwrites RBR (overrun).
        wr(&mut u, REG_DATA, 1);
        wr(&mut u, REG_DATA, 2);
        assert_eq!(rd(&mut u, REG_LSR) & LSR_OE, LSR_OE);
        assert_eq!(rd(&mut u, REG_DATA), 2);
        // Host input waits while the serial input is disconnected, and arrives afterwards.
        u.receive(b"h");
        assert_eq!(rd(&mut u, REG_LSR) & LSR_DR, 0);
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert_eq!(rd(&mut u, REG_DATA), b'h');
    }

    #[test]
    fn loopback_modem_lines() {
        // Linux's probe: MCR = LOOP | OUT2 | RTS must read back as DCD | CTS in MSR.
        let mut u = Uart::new(B);
        wr(&mut u, REG_MCR, MCR_LOOP | 0x0a);
        assert_eq!(rd(&mut u, REG_MSR) & 0xf0, MSR_DCD | MSR_CTS);
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
        assert_eq!(rd(&mut u, REG_MSR), MSR_DSR | MSR_RI | MSR_DCTS | MSR_DDSR | MSR_DDCD);
        // RI going off sets TERI; RI coming on does not.
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_DTR);
        assert_eq!(rd(&mut u, REG_MSR), MSR_DSR | MSR_TERI);
        wr(&mut u, REG_MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
        assert_eq!(rd(&mut u, REG_MSR), MSR_DSR | MSR_RI);
    }

    #[test]
    fn modem_inputs_and_interrupt() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IER, IER_EDSSI);
        wr(&mut u, REG_MCR, MCR_OUT2 | MCR_DTR | MCR_RTS);
        assert!(!u.irq());
        u.set_modem_inputs(true, true, true, false);
        assert!(u.irq());
        assert_eq!(rd(&mut u, REG_IIR_FCR), IIR_MODEM_STATUS);
        assert_eq!(rd(&mut u, REG_MSR), MSR_CTS | MSR_DSR | MSR_RI | MSR_DDCD);
        assert!(!u.irq());
        u.set_modem_inputs(true, true, false, false);
        assert_eq!(rd(&mut u, REG_MSR), MSR_CTS | MSR_DSR | MSR_TERI);
    }

    #[test]
    fn out2_gates_the_irq_line() {
        let mut u = Uart::new(B);
        wr(&mut u, REG_IER, IER_ERBFI);
        u.receive(b"q");
        assert!(u.intr());
        assert!(!u.irq());
        wr(&mut u, REG_MCR, MCR_OUT2);
        assert!(u.irq());
        wr(&mut u, REG_IER, 0);
        assert!(!u.irq(), "IER masks the source");
    }

    #[test]
    fn output_is_bounded() {
        let mut u = Uart::new(B);
        for _ in 0..OUTPUT_LIMIT + 10 {
            wr(&mut u, REG_DATA, b'x');
        }
        let out = u.take_output();
        assert!(out.len() <= OUTPUT_LIMIT);
        assert!(out.len() > OUTPUT_LIMIT / 2);
    }

    #[test]
    fn garbage_writes_do_not_panic() {
        let mut u = Uart::new(B);
        for port in B..B + 8 {
            for v in [0u32, 0xff, 0x80, 0x1f, 0xffff_ffff] {
                for size in [IoSize::Byte, IoSize::Word, IoSize::Dword] {
                    u.write(port, size, v);
                    let _ = u.read(port, size);
                }
            }
        }
        u.receive(&vec![0u8; 1000]);
        u.advance(0);
        let _ = u.irq();
    }
}
