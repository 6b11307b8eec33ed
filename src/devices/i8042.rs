//! The Intel 8042 keyboard controller of the PC/AT and PS/2 (ports 0x60 and 0x64), with an
//! MF2 keyboard on its first port and a minimal PS/2 mouse on its auxiliary port. Besides
//! the keyboard it carries two system lines every PC guest touches: the A20 gate and the
//! processor reset (output port bits 1 and 0).
//!
//! Sources: IBM Personal System/2 Hardware Interface Technical Reference, "Keyboard/
//! Auxiliary Device Controller" (status register, command byte, controller commands, input
//! and output ports) and "Keyboard" (keyboard commands and responses, scan code sets 1 and
//! 2); IBM PC/AT Technical Reference, "Keyboard Controller"; Intel UPI-41A/8042 data sheet
//! (port pins are high after reset).
//!
//! Model:
//! - The controller answers at once: IBF never reads 1, and controller-command results go
//!   straight into the output buffer. As the PC/AT reference warns, a result overwrites
//!   whatever was in the buffer; here a displaced keyboard or mouse byte is not lost but
//!   delivered after the result, so host keystrokes survive a guest that did not flush.
//! - Keyboard and mouse bytes wait in their devices' queues and move into the output buffer
//!   one at a time when it is empty and the device's interface is enabled (command byte bits
//!   4 and 5). A byte freed by a guest read of port 0x60 is replaced at the next
//!   [`I8042::advance`], status-port read, host input or guest write — never inside the
//!   data read itself, so IRQ1/IRQ12 fall after each read and an edge-triggered PIC sees a
//!   new edge for the next byte, as with the real controller's byte-time gap.
//! - Replies to a command the guest writes to a device are delivered even while that
//!   device's interface is disabled by the command byte (the controller releases the clock
//!   line to run the exchange); unsolicited keystrokes and mouse packets wait.
//! - The keyboard sends scan code set 2 as a real one does, and the controller translates to
//!   set 1 when command byte bit 6 is set. Set 1 selected in the keyboard itself (F0 01) is
//!   honoured too; set 3 is accepted and reported but keys keep coming in set 2.
//! - Typematic repeat is not generated (the host sends repeats itself if it wants them).
//! - The mouse answers the PS/2 command set (reset, identify with ID 0, status, rates,
//!   modes, wrap) and reports [`I8042::mouse_move`] packets in stream mode; the IntelliMouse
//!   wheel extensions are not modelled.
//! - Power-on state: the state a PC BIOS leaves after POST, so guests booted without one see
//!   a usable keyboard: command byte 0x45 (IRQ1, system flag, translation); output port
//!   0xCF (all 8042 port-2 pins high after reset, so reset inactive and A20 open).

use super::Nanos;
use crate::bus::IoSize;
use alloc::collections::VecDeque;
use serde::{Deserialize, Serialize};

/// Data port: output buffer (read), input buffer for data (write).
pub const I8042_DATA_PORT: u16 = 0x60;
/// Status register (read).
pub const I8042_STATUS_PORT: u16 = 0x64;
/// Input buffer for controller commands (write).
pub const I8042_COMMAND_PORT: u16 = 0x64;
/// The keyboard's interrupt line.
pub const KEYBOARD_IRQ: u8 = 1;
/// The auxiliary device's interrupt line.
pub const AUX_IRQ: u8 = 12;

// Status register (IBM PS/2 Technical Reference, "Status Register").
/// Output buffer full: data for the system at port 0x60.
pub const STATUS_OBF: u8 = 0x01;
/// Input buffer full: the controller has not taken the last write yet (never, here).
pub const STATUS_IBF: u8 = 0x02;
/// System flag, from command byte bit 2 (0 after power-on, 1 after a good self-test).
pub const STATUS_SYS: u8 = 0x04;
/// Command/data (A2): the last write was to port 0x64 (1) or 0x60 (0).
pub const STATUS_CMD: u8 = 0x08;
/// Inhibit switch: 1 = keyboard not inhibited (keylock open).
pub const STATUS_UNLOCKED: u8 = 0x10;
/// Auxiliary output buffer full: the byte at port 0x60 is from the mouse (PS/2).
pub const STATUS_AUXB: u8 = 0x20;
/// General time-out (PS/2; receive time-out on the AT). Never set here.
pub const STATUS_TIMEOUT: u8 = 0x40;
/// Parity error on the last byte from a device. Never set here.
pub const STATUS_PARITY: u8 = 0x80;

// Command byte (controller RAM byte 0; IBM PS/2 Technical Reference, "Command Byte").
pub const CB_KBD_INT: u8 = 0x01;
pub const CB_AUX_INT: u8 = 0x02;
pub const CB_SYS: u8 = 0x04;
pub const CB_KBD_DISABLE: u8 = 0x10;
pub const CB_AUX_DISABLE: u8 = 0x20;
/// IBM keyboard translate mode: scan code set 2 → set 1.
pub const CB_TRANSLATE: u8 = 0x40;

// Output port (IBM PS/2 Technical Reference, "Output Port").
/// System reset, active low: writing 0 resets the processor.
pub const OUT_RESET: u8 = 0x01;
/// Gate A20.
pub const OUT_A20: u8 = 0x02;
pub const OUT_AUX_DATA: u8 = 0x04;
pub const OUT_AUX_CLOCK: u8 = 0x08;
/// Output buffer full with keyboard data (the IRQ1 line).
pub const OUT_IRQ1: u8 = 0x10;
/// Output buffer full with auxiliary data (the IRQ12 line).
pub const OUT_IRQ12: u8 = 0x20;
pub const OUT_KBD_CLOCK: u8 = 0x40;
pub const OUT_KBD_DATA: u8 = 0x80;

// Controller commands, written to port 0x64 (IBM PS/2 Technical Reference, "Commands
// (I/O Address Hex 64)"; 0xDD/0xDF are the common A20 extensions).
pub const CMD_READ_RAM: u8 = 0x20; // 0x20-0x3F: read controller RAM byte (0x20: command byte)
pub const CMD_WRITE_RAM: u8 = 0x60; // 0x60-0x7F: write controller RAM byte (0x60: command byte)
pub const CMD_PASSWORD_INSTALLED: u8 = 0xa4;
pub const CMD_LOAD_PASSWORD: u8 = 0xa5;
pub const CMD_ENABLE_PASSWORD: u8 = 0xa6;
pub const CMD_DISABLE_AUX: u8 = 0xa7;
pub const CMD_ENABLE_AUX: u8 = 0xa8;
pub const CMD_TEST_AUX: u8 = 0xa9;
pub const CMD_SELF_TEST: u8 = 0xaa;
pub const CMD_TEST_KBD: u8 = 0xab;
pub const CMD_DISABLE_KBD: u8 = 0xad;
pub const CMD_ENABLE_KBD: u8 = 0xae;
pub const CMD_READ_INPUT_PORT: u8 = 0xc0;
pub const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
pub const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
pub const CMD_WRITE_KBD_BUFFER: u8 = 0xd2;
pub const CMD_WRITE_AUX_BUFFER: u8 = 0xd3;
pub const CMD_WRITE_AUX: u8 = 0xd4;
pub const CMD_A20_OFF: u8 = 0xdd;
pub const CMD_A20_ON: u8 = 0xdf;
/// 0xF0-0xFF: pulse output port bits 0-3 low for 6 µs where the command's bit is 0.
pub const CMD_PULSE_OUTPUT: u8 = 0xf0;
/// Pulse only bit 0: the classic "reset the processor" command.
pub const CMD_PULSE_RESET: u8 = 0xfe;

/// Self-test passed.
pub const SELF_TEST_OK: u8 = 0x55;
/// Interface test passed.
pub const INTERFACE_OK: u8 = 0x00;
/// "No password installed" answer to 0xA4.
pub const NO_PASSWORD: u8 = 0xf1;

// Keyboard commands (IBM PS/2 Technical Reference, "Commands from the System").
pub const KBD_SET_LEDS: u8 = 0xed;
pub const KBD_ECHO: u8 = 0xee;
pub const KBD_SCAN_SET: u8 = 0xf0;
pub const KBD_IDENTIFY: u8 = 0xf2;
pub const KBD_TYPEMATIC: u8 = 0xf3;
pub const KBD_ENABLE: u8 = 0xf4;
pub const KBD_DEFAULT_DISABLE: u8 = 0xf5;
pub const KBD_SET_DEFAULT: u8 = 0xf6;
pub const KBD_RESEND: u8 = 0xfe;
pub const KBD_RESET: u8 = 0xff;

// Keyboard responses ("Commands to the System").
pub const KBD_ACK: u8 = 0xfa;
pub const KBD_BAT_OK: u8 = 0xaa;
pub const KBD_ECHO_REPLY: u8 = 0xee;
pub const KBD_RESEND_REPLY: u8 = 0xfe;
/// The MF2 keyboard's identification bytes.
pub const KBD_ID: [u8; 2] = [0xab, 0x83];

// Mouse commands (IBM PS/2 Technical Reference, "Pointing Device").
pub const AUX_SET_SCALING_1_1: u8 = 0xe6;
pub const AUX_SET_SCALING_2_1: u8 = 0xe7;
pub const AUX_SET_RESOLUTION: u8 = 0xe8;
pub const AUX_STATUS_REQUEST: u8 = 0xe9;
pub const AUX_SET_STREAM_MODE: u8 = 0xea;
pub const AUX_READ_DATA: u8 = 0xeb;
pub const AUX_RESET_WRAP_MODE: u8 = 0xec;
pub const AUX_SET_WRAP_MODE: u8 = 0xee;
pub const AUX_SET_REMOTE_MODE: u8 = 0xf0;
pub const AUX_IDENTIFY: u8 = 0xf2;
pub const AUX_SET_SAMPLE_RATE: u8 = 0xf3;
pub const AUX_ENABLE: u8 = 0xf4;
pub const AUX_DISABLE: u8 = 0xf5;
pub const AUX_SET_DEFAULT: u8 = 0xf6;
pub const AUX_RESEND: u8 = 0xfe;
pub const AUX_RESET: u8 = 0xff;
/// A standard PS/2 mouse identifies as device 0.
pub const AUX_ID: u8 = 0x00;

/// The command byte after POST (see the module notes).
const DEFAULT_COMMAND_BYTE: u8 = CB_KBD_INT | CB_SYS | CB_TRANSLATE;
/// The output port at power-on: every port-2 pin high except the two OBF lines, which
/// follow the output buffer.
const DEFAULT_OUTPUT_PORT: u8 = 0xcf;
/// Input port (IBM PC/AT and PS/2 references): bit 7 keyboard not inhibited, bit 6 colour
/// display, bit 5 no manufacturing jumper, bit 4 and the device data lines high.
const INPUT_PORT: u8 = 0xbf;
/// Bytes a keyboard may hold for the host before further keystrokes are dropped (a real
/// one holds 16; this is only a guard against a guest that never reads).
const KBD_QUEUE_LIMIT: usize = 4096;
/// Mouse bytes held before further packets are dropped.
const AUX_QUEUE_LIMIT: usize = 3 * 256;

/// Scan code set 2 → set 1, as the 8042 applies it in translate mode, for codes 0x00-0x7F
/// (IBM PS/2 Technical Reference: the set 1 and set 2 key-number tables; every code a key
/// sends maps to that key's set-1 code, the codes no key sends fill the remaining set-1
/// values, and 0x00, the keyboard's overrun code, becomes set 1's 0xFF). The row comments
/// name the keys (US layout) in column order; "-" is a code no standard key sends.
#[rustfmt::skip]
const SET2_TO_SET1: [u8; 128] = [
    // -, F9, -, F5, F3, F1, F2, F12, -, F10, F8, F6, F4, Tab, `, -
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    // -, LAlt, LShift, (JP Kana), LCtrl, Q, 1, -, -, -, Z, S, A, W, 2, (LWin after E0)
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    // -, C, X, D, E, 4, 3, (RWin after E0), -, Space, V, F, T, R, 5, (Menu after E0)
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    // -, N, B, H, G, Y, 6, (Power after E0), -, -, M, J, U, 7, 8, (Sleep after E0)
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    // -, ",", K, I, O, 0, 9, -, -, ".", /, L, ;, P, -, -
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    // -, (JP Ro), ', -, [, =, -, -, CapsLock, RShift, Enter, ], -, \, (Wake after E0), -
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    // -, (102nd key), -, -, (JP Henkan), -, Backspace, (JP Muhenkan), -, KP1, (JP Yen), KP4, KP7, -, -, -
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    // KP0, KP., KP2, KP5, KP6, KP8, Esc, NumLock, F11, KP+, KP3, KP-, KP*, KP9, ScrollLock, -
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
];

/// Translate one set-2 byte (without the 0xF0 break prefix, which the caller handles).
/// Above 0x7F the controller passes bytes through, except the two keys whose set-2 codes
/// lie there: F7 (0x83 → 0x41) and Alt+SysRq (0x84 → 0x54). Prefixes (0xE0, 0xE1) and
/// keyboard replies (0xFA, 0xAA, 0xEE, 0xFE, 0xAB) pass unchanged; the second ID byte 0x83
/// is why a translated keyboard identifies as AB 41.
pub fn translate_set2_byte(byte: u8) -> u8 {
    match byte {
        0x00..=0x7f => SET2_TO_SET1[usize::from(byte)],
        0x83 => 0x41,
        0x84 => 0x54,
        _ => byte,
    }
}

/// The set-2 make code of a printable ASCII character, Enter, Tab, Backspace or Escape on a
/// US keyboard, and whether Shift must be held for it.
pub fn ascii_to_set2(c: u8) -> Option<(u8, bool)> {
    let unshifted = |c: u8| -> Option<u8> {
        Some(match c {
            b'a' => 0x1c,
            b'b' => 0x32,
            b'c' => 0x21,
            b'd' => 0x23,
            b'e' => 0x24,
            b'f' => 0x2b,
            b'g' => 0x34,
            b'h' => 0x33,
            b'i' => 0x43,
            b'j' => 0x3b,
            b'k' => 0x42,
            b'l' => 0x4b,
            b'm' => 0x3a,
            b'n' => 0x31,
            b'o' => 0x44,
            b'p' => 0x4d,
            b'q' => 0x15,
            b'r' => 0x2d,
            b's' => 0x1b,
            b't' => 0x2c,
            b'u' => 0x3c,
            b'v' => 0x2a,
            b'w' => 0x1d,
            b'x' => 0x22,
            b'y' => 0x35,
            b'z' => 0x1a,
            b'1' => 0x16,
            b'2' => 0x1e,
            b'3' => 0x26,
            b'4' => 0x25,
            b'5' => 0x2e,
            b'6' => 0x36,
            b'7' => 0x3d,
            b'8' => 0x3e,
            b'9' => 0x46,
            b'0' => 0x45,
            b'-' => 0x4e,
            b'=' => 0x55,
            b'[' => 0x54,
            b']' => 0x5b,
            b'\\' => 0x5d,
            b';' => 0x4c,
            b'\'' => 0x52,
            b'`' => 0x0e,
            b',' => 0x41,
            b'.' => 0x49,
            b'/' => 0x4a,
            b' ' => 0x29,
            b'\n' | b'\r' => 0x5a,
            b'\t' => 0x0d,
            0x08 => 0x66,
            0x1b => 0x76,
            _ => return None,
        })
    };
    if let Some(code) = unshifted(c) {
        return Some((code, false));
    }
    let base = match c {
        b'A'..=b'Z' => c.to_ascii_lowercase(),
        b'!' => b'1',
        b'@' => b'2',
        b'#' => b'3',
        b'$' => b'4',
        b'%' => b'5',
        b'^' => b'6',
        b'&' => b'7',
        b'*' => b'8',
        b'(' => b'9',
        b')' => b'0',
        b'_' => b'-',
        b'+' => b'=',
        b'{' => b'[',
        b'}' => b']',
        b'|' => b'\\',
        b':' => b';',
        b'"' => b'\'',
        b'~' => b'`',
        b'<' => b',',
        b'>' => b'.',
        b'?' => b'/',
        _ => return None,
    };
    unshifted(base).map(|code| (code, true))
}

/// Where the byte in the output buffer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Source {
    Controller,
    Keyboard,
    Aux,
}

/// A controller command waiting for its data byte at port 0x60.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Pending {
    WriteRam(u8),
    WriteOutputPort,
    WriteKbdBuffer,
    WriteAuxBuffer,
    WriteAux,
    Password,
}

/// A keyboard command waiting for its option byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum KbdArg {
    Leds,
    Typematic,
    ScanSet,
    /// Set-3 key-type commands (0xFB-0xFD) take a list of key codes.
    KeyList,
}

/// The MF2 keyboard on the first port.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Keyboard {
    /// Replies to commands; sent before keystrokes.
    replies: VecDeque<u8>,
    /// Keystroke bytes in the keyboard's current scan code set.
    keys: VecDeque<u8>,
    scanning: bool,
    set: u8,
    leds: u8,
    typematic: u8,
    expect: Option<KbdArg>,
    last_sent: u8,
    /// Set-1 mode inside the keyboard: a 0xF0 from the host awaits its key.
    set1_break: bool,
}

impl Keyboard {
    fn new() -> Self {
        Self {
            replies: VecDeque::new(),
            keys: VecDeque::new(),
            scanning: true,
            set: 2,
            leds: 0,
            typematic: 0x2b, // power-on default: 10.9 characters/s, 500 ms delay
            expect: None,
            last_sent: KBD_BAT_OK,
            set1_break: false,
        }
    }

    fn reply(&mut self, byte: u8) {
        self.replies.push_back(byte);
    }

    fn set_defaults(&mut self) {
        self.typematic = 0x2b;
    }

    /// A byte from the system (IBM PS/2 Technical Reference, "Commands from the System").
    fn command(&mut self, v: u8) {
        if let Some(arg) = self.expect.take() {
            // An option byte; a command byte in its place aborts the pending command and is
            // processed as a command.
            match arg {
                KbdArg::Leds if v < KBD_SET_LEDS => {
                    self.leds = v & 0x07;
                    self.reply(KBD_ACK);
                    return;
                }
                KbdArg::Typematic if v & 0x80 == 0 => {
                    self.typematic = v;
                    self.reply(KBD_ACK);
                    return;
                }
                KbdArg::ScanSet if v < KBD_SET_LEDS => {
                    match v {
                        0 => {
                            self.reply(KBD_ACK);
                            self.reply(self.set);
                        }
                        1..=3 => {
                            self.set = v;
                            self.set1_break = false;
                            self.reply(KBD_ACK);
                        }
                        _ => self.reply(KBD_RESEND_REPLY),
                    }
                    return;
                }
                KbdArg::KeyList if v < KBD_SET_LEDS => {
                    self.reply(KBD_ACK);
                    self.expect = Some(KbdArg::KeyList);
                    return;
                }
                _ => {}
            }
        }
        match v {
            KBD_SET_LEDS => {
                self.reply(KBD_ACK);
                self.expect = Some(KbdArg::Leds);
            }
            KBD_ECHO => self.reply(KBD_ECHO_REPLY),
            KBD_SCAN_SET => {
                // Clears the output buffer and waits for the option byte.
                self.keys.clear();
                self.reply(KBD_ACK);
                self.expect = Some(KbdArg::ScanSet);
            }
            KBD_IDENTIFY => {
                self.reply(KBD_ACK);
                self.replies.extend(KBD_ID);
            }
            KBD_TYPEMATIC => {
                self.reply(KBD_ACK);
                self.expect = Some(KbdArg::Typematic);
            }
            KBD_ENABLE => {
                self.keys.clear();
                self.reply(KBD_ACK);
                self.scanning = true;
            }
            KBD_DEFAULT_DISABLE => {
                self.set_defaults();
                self.keys.clear();
                self.reply(KBD_ACK);
                self.scanning = false;
            }
            KBD_SET_DEFAULT => {
                self.set_defaults();
                self.keys.clear();
                self.reply(KBD_ACK);
            }
            // Set-3 "all keys typematic / make-break / make / typematic-make-break".
            0xf7..=0xfa => self.reply(KBD_ACK),
            // Set-3 per-key types: a list of key codes follows.
            0xfb..=0xfd => {
                self.reply(KBD_ACK);
                self.expect = Some(KbdArg::KeyList);
            }
            KBD_RESEND => self.reply(self.last_sent),
            KBD_RESET => {
                // Reset: ACK, then the basic assurance test's completion code.
                self.keys.clear();
                self.replies.clear();
                self.set_defaults();
                self.set = 2;
                self.set1_break = false;
                self.leds = 0;
                self.scanning = true;
                self.reply(KBD_ACK);
                self.reply(KBD_BAT_OK);
            }
            _ => self.reply(KBD_RESEND_REPLY),
        }
    }

    /// Keystrokes from the host, in set 2.
    fn keys_in(&mut self, set2: &[u8]) {
        if !self.scanning || self.keys.len() + set2.len() > KBD_QUEUE_LIMIT {
            return;
        }
        for &b in set2 {
            if self.set == 1 {
                if b == 0xf0 {
                    self.set1_break = true;
                    continue;
                }
                let brk = if core::mem::take(&mut self.set1_break) { 0x80 } else { 0 };
                self.keys.push_back(translate_set2_byte(b) | brk);
            } else {
                self.keys.push_back(b);
            }
        }
    }

    fn has_output(&self, enabled: bool) -> bool {
        !self.replies.is_empty() || (enabled && !self.keys.is_empty())
    }

    fn pop(&mut self, enabled: bool) -> Option<u8> {
        let b = match self.replies.pop_front() {
            Some(b) => b,
            None if enabled => self.keys.pop_front()?,
            None => return None,
        };
        self.last_sent = b;
        Some(b)
    }
}

/// A mouse command waiting for its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AuxArg {
    Resolution,
    SampleRate,
}

/// A standard PS/2 mouse on the auxiliary port.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Mouse {
    replies: VecDeque<u8>,
    packets: VecDeque<u8>,
    reporting: bool,
    remote: bool,
    wrap: bool,
    scaling_2_1: bool,
    resolution: u8,
    sample_rate: u8,
    /// Buttons as in packet byte 0: bit 0 left, bit 1 right, bit 2 middle.
    buttons: u8,
    expect: Option<AuxArg>,
    last_sent: u8,
}

impl Mouse {
    fn new() -> Self {
        Self {
            replies: VecDeque::new(),
            packets: VecDeque::new(),
            reporting: false,
            remote: false,
            wrap: false,
            scaling_2_1: false,
            resolution: 2,
            sample_rate: 100,
            buttons: 0,
            expect: None,
            last_sent: AUX_ID,
        }
    }

    fn reply(&mut self, byte: u8) {
        self.replies.push_back(byte);
    }

    /// Power-on defaults (PS/2 Technical Reference, "Set Default"): 100 samples/s, 4
    /// counts/mm, 1:1 scaling, stream mode, reporting disabled.
    fn set_defaults(&mut self) {
        self.reporting = false;
        self.remote = false;
        self.scaling_2_1 = false;
        self.resolution = 2;
        self.sample_rate = 100;
    }

    /// The three movement bytes for a packet.
    fn packet(&self, dx: i32, dy: i32) -> [u8; 3] {
        let clamp = |d: i32| -> (u8, bool, bool) {
            let overflow = !(-256..=255).contains(&d);
            let d = d.clamp(-256, 255);
            (d as u8, d < 0, overflow)
        };
        let (x, x_neg, x_over) = clamp(dx);
        let (y, y_neg, y_over) = clamp(dy);
        let mut b0 = 0x08 | (self.buttons & 0x07);
        if x_neg {
            b0 |= 0x10;
        }
        if y_neg {
            b0 |= 0x20;
        }
        if x_over {
            b0 |= 0x40;
        }
        if y_over {
            b0 |= 0x80;
        }
        [b0, x, y]
    }

    fn command(&mut self, v: u8) {
        if let Some(arg) = self.expect.take() {
            match arg {
                AuxArg::Resolution => self.resolution = v & 0x03,
                AuxArg::SampleRate => self.sample_rate = v,
            }
            self.reply(KBD_ACK);
            return;
        }
        if self.wrap && v != AUX_RESET_WRAP_MODE && v != AUX_RESET {
            // Wrap (echo) mode returns every byte except these two commands.
            self.reply(v);
            return;
        }
        match v {
            AUX_SET_SCALING_1_1 | AUX_SET_SCALING_2_1 => {
                self.scaling_2_1 = v == AUX_SET_SCALING_2_1;
                self.reply(KBD_ACK);
            }
            AUX_SET_RESOLUTION => {
                self.reply(KBD_ACK);
                self.expect = Some(AuxArg::Resolution);
            }
            AUX_STATUS_REQUEST => {
                // Status byte: bit 6 remote mode, bit 5 enabled, bit 4 2:1 scaling, bit 2
                // left, bit 1 middle, bit 0 right button; then resolution and sample rate.
                let mut status = 0;
                if self.remote {
                    status |= 0x40;
                }
                if self.reporting {
                    status |= 0x20;
                }
                if self.scaling_2_1 {
                    status |= 0x10;
                }
                if self.buttons & 1 != 0 {
                    status |= 0x04;
                }
                if self.buttons & 4 != 0 {
                    status |= 0x02;
                }
                if self.buttons & 2 != 0 {
                    status |= 0x01;
                }
                self.reply(KBD_ACK);
                self.reply(status);
                self.reply(self.resolution);
                self.reply(self.sample_rate);
            }
            AUX_SET_STREAM_MODE => {
                self.remote = false;
                self.reply(KBD_ACK);
            }
            AUX_READ_DATA => {
                self.reply(KBD_ACK);
                let p = self.packet(0, 0);
                self.replies.extend(p);
            }
            AUX_RESET_WRAP_MODE => {
                self.wrap = false;
                self.reply(KBD_ACK);
            }
            AUX_SET_WRAP_MODE => {
                self.wrap = true;
                self.reply(KBD_ACK);
            }
            AUX_SET_REMOTE_MODE => {
                self.remote = true;
                self.reply(KBD_ACK);
            }
            AUX_IDENTIFY => {
                self.reply(KBD_ACK);
                self.reply(AUX_ID);
            }
            AUX_SET_SAMPLE_RATE => {
                self.reply(KBD_ACK);
                self.expect = Some(AuxArg::SampleRate);
            }
            AUX_ENABLE => {
                self.reporting = true;
                self.reply(KBD_ACK);
            }
            AUX_DISABLE => {
                self.reporting = false;
                self.packets.clear();
                self.reply(KBD_ACK);
            }
            AUX_SET_DEFAULT => {
                self.set_defaults();
                self.packets.clear();
                self.reply(KBD_ACK);
            }
            AUX_RESEND => self.reply(self.last_sent),
            AUX_RESET => {
                self.set_defaults();
                self.wrap = false;
                self.packets.clear();
                self.replies.clear();
                self.reply(KBD_ACK);
                self.reply(KBD_BAT_OK);
                self.reply(AUX_ID);
            }
            _ => self.reply(KBD_RESEND_REPLY),
        }
    }

    fn moved(&mut self, dx: i32, dy: i32, buttons: u8) {
        self.buttons = buttons & 0x07;
        if self.reporting && !self.remote && self.packets.len() + 3 <= AUX_QUEUE_LIMIT {
            let p = self.packet(dx, dy);
            self.packets.extend(p);
        }
    }

    fn has_output(&self, enabled: bool) -> bool {
        !self.replies.is_empty() || (enabled && !self.packets.is_empty())
    }

    fn pop(&mut self, enabled: bool) -> Option<u8> {
        let b = match self.replies.pop_front() {
            Some(b) => b,
            None if enabled => self.packets.pop_front()?,
            None => return None,
        };
        self.last_sent = b;
        Some(b)
    }
}

/// The 8042 keyboard controller with its keyboard and mouse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct I8042 {
    /// Controller RAM; byte 0 is the command byte.
    ram: [u8; 32],
    /// Output port bits other than the two OBF lines.
    output_port: u8,
    output_buffer: u8,
    obf: bool,
    obf_source: Source,
    /// Device bytes pushed out of the output buffer by a controller result.
    displaced: VecDeque<(u8, Source)>,
    pending: Option<Pending>,
    last_write_was_command: bool,
    /// Translate mode saw a 0xF0 break prefix: OR 0x80 into the next keyboard byte.
    break_prefix: bool,
    reset_request: bool,
    kbd: Keyboard,
    mouse: Mouse,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// The controller in its after-POST state (see the module notes).
    pub fn new() -> Self {
        let mut ram = [0u8; 32];
        ram[0] = DEFAULT_COMMAND_BYTE;
        Self {
            ram,
            output_port: DEFAULT_OUTPUT_PORT,
            output_buffer: 0,
            obf: false,
            obf_source: Source::Controller,
            displaced: VecDeque::new(),
            pending: None,
            last_write_was_command: false,
            break_prefix: false,
            reset_request: false,
            kbd: Keyboard::new(),
            mouse: Mouse::new(),
        }
    }

    /// `IN` from `port`; each byte of a wide access goes to the next port, and ports other
    /// than 0x60 and 0x64 answer all ones.
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        let mut value = 0u32;
        for i in 0..size as u16 {
            let byte = match port.wrapping_add(i) {
                I8042_DATA_PORT => self.read_data(),
                I8042_STATUS_PORT => self.read_status(),
                _ => 0xff,
            };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to `port`, byte by byte as in [`I8042::read`].
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        for i in 0..size as u16 {
            let byte = (value >> (8 * i)) as u8;
            match port.wrapping_add(i) {
                I8042_DATA_PORT => self.write_data(byte),
                I8042_COMMAND_PORT => self.write_command(byte),
                _ => {}
            }
        }
    }

    /// IRQ1: the output buffer holds keyboard-side data and command byte bit 0 is set.
    pub fn irq1(&self) -> bool {
        self.obf && self.obf_source != Source::Aux && self.ram[0] & CB_KBD_INT != 0
    }

    /// IRQ12: the output buffer holds mouse data and command byte bit 1 is set.
    pub fn irq12(&self) -> bool {
        self.obf && self.obf_source == Source::Aux && self.ram[0] & CB_AUX_INT != 0
    }

    /// The output port's A20 gate (bit 1).
    pub fn a20(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// Whether the guest asked for a processor reset (pulse command or output-port write
    /// with bit 0 clear) since the last call; cleared by reading.
    pub fn take_reset_request(&mut self) -> bool {
        core::mem::take(&mut self.reset_request)
    }

    /// The command byte.
    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    /// The keyboard LEDs last set by the guest: bit 0 Scroll, bit 1 Num, bit 2 Caps Lock.
    pub fn leds(&self) -> u8 {
        self.kbd.leds
    }

    /// The keyboard's scan code set (1, 2 or 3) as selected by the guest.
    pub fn scancode_set(&self) -> u8 {
        self.kbd.set
    }

    /// Host key input: the bytes a real keyboard sends, in scan code set 2 (e.g. `[0x1c]`
    /// for A pressed, `[0xf0, 0x1c]` released, `[0xe0, 0x75]` Up). Dropped while the
    /// keyboard is not scanning (disabled by the guest with 0xF5).
    pub fn key(&mut self, set2_bytes: &[u8]) {
        self.kbd.keys_in(set2_bytes);
        self.refill();
    }

    /// Type one character on a US keyboard: press and release (with Shift around it when
    /// needed). Handles printable ASCII, `\n`/`\r` (Enter), `\t`, backspace (0x08) and
    /// escape (0x1B); returns false, sending nothing, for other bytes.
    pub fn key_ascii(&mut self, c: u8) -> bool {
        let Some((code, shift)) = ascii_to_set2(c) else {
            return false;
        };
        if shift {
            self.key(&[0x12, code, 0xf0, code, 0xf0, 0x12]);
        } else {
            self.key(&[code, 0xf0, code]);
        }
        true
    }

    /// Type each character of `text` with [`I8042::key_ascii`]; returns how many were typed.
    pub fn key_text(&mut self, text: &[u8]) -> usize {
        text.iter().filter(|&&c| self.key_ascii(c)).count()
    }

    /// Host mouse input: movement in counts (`dy` positive is up, as PS/2 reports it) and
    /// buttons (bit 0 left, bit 1 right, bit 2 middle). Sent as a 3-byte packet when the
    /// guest has enabled reporting in stream mode.
    pub fn mouse_move(&mut self, dx: i32, dy: i32, buttons: u8) {
        self.mouse.moved(dx, dy, buttons);
        self.refill();
    }

    /// Catch up: the next waiting device byte enters the output buffer if it is empty. The
    /// controller keeps no clock, so `now` is not used.
    pub fn advance(&mut self, _now: Nanos) {
        self.refill();
    }

    /// When the controller next needs [`I8042::advance`]: at once while the output buffer
    /// is empty and a byte waits to enter it, otherwise never.
    pub fn next_event(&self, now: Nanos) -> Option<Nanos> {
        (!self.obf && self.has_waiting()).then_some(now)
    }

    fn kbd_enabled(&self) -> bool {
        self.ram[0] & CB_KBD_DISABLE == 0
    }

    fn aux_enabled(&self) -> bool {
        self.ram[0] & CB_AUX_DISABLE == 0
    }

    fn has_waiting(&self) -> bool {
        !self.displaced.is_empty()
            || self.kbd.has_output(self.kbd_enabled())
            || self.mouse.has_output(self.aux_enabled())
    }

    fn status(&self) -> u8 {
        let mut status = STATUS_UNLOCKED;
        if self.obf {
            status |= STATUS_OBF;
            if self.obf_source == Source::Aux {
                status |= STATUS_AUXB;
            }
        }
        if self.ram[0] & CB_SYS != 0 {
            status |= STATUS_SYS;
        }
        if self.last_write_was_command {
            status |= STATUS_CMD;
        }
        status
    }

    /// The output port as command 0xD0 reads it: stored bits plus the two OBF/IRQ lines.
    fn output_port_value(&self) -> u8 {
        let mut v = self.output_port & !(OUT_IRQ1 | OUT_IRQ12);
        if self.irq1() {
            v |= OUT_IRQ1;
        }
        if self.irq12() {
            v |= OUT_IRQ12;
        }
        v
    }

    fn fill(&mut self, byte: u8, source: Source) {
        self.output_buffer = byte;
        self.obf = true;
        self.obf_source = source;
    }

    /// A controller result (or a 0xD2/0xD3 byte) overwrites the output buffer; a device byte
    /// it displaces is delivered afterwards.
    fn put_result(&mut self, byte: u8, source: Source) {
        if self.obf && self.obf_source != Source::Controller {
            self.displaced.push_front((self.output_buffer, self.obf_source));
        }
        self.fill(byte, source);
    }

    /// If the output buffer is empty, move the next waiting byte into it: displaced bytes
    /// first, then the keyboard (translated if command byte bit 6 is set), then the mouse.
    fn refill(&mut self) {
        if self.obf {
            return;
        }
        if let Some((byte, source)) = self.displaced.pop_front() {
            self.fill(byte, source);
            return;
        }
        let kbd_enabled = self.kbd_enabled();
        while let Some(byte) = self.kbd.pop(kbd_enabled) {
            if self.ram[0] & CB_TRANSLATE == 0 {
                self.fill(byte, Source::Keyboard);
                return;
            }
            // Translate mode: 0xF0 is swallowed and turns the next code into a set-1 break
            // code (bit 7 set).
            if byte == 0xf0 {
                self.break_prefix = true;
                continue;
            }
            let brk = if core::mem::take(&mut self.break_prefix) { 0x80 } else { 0 };
            self.fill(translate_set2_byte(byte) | brk, Source::Keyboard);
            return;
        }
        if let Some(byte) = self.mouse.pop(self.aux_enabled()) {
            self.fill(byte, Source::Aux);
        }
    }

    fn read_data(&mut self) -> u8 {
        // The buffer keeps its last byte: reading with OBF clear returns it again. The next
        // waiting byte is not moved in here (see the module notes).
        self.obf = false;
        self.output_buffer
    }

    fn read_status(&mut self) -> u8 {
        self.refill();
        self.status()
    }

    fn write_data(&mut self, v: u8) {
        self.last_write_was_command = false;
        match self.pending.take() {
            Some(Pending::WriteRam(index)) => self.ram[usize::from(index)] = v,
            Some(Pending::WriteOutputPort) => self.write_output_port(v),
            Some(Pending::WriteKbdBuffer) => self.put_result(v, Source::Keyboard),
            Some(Pending::WriteAuxBuffer) => self.put_result(v, Source::Aux),
            Some(Pending::WriteAux) => self.mouse.command(v),
            Some(Pending::Password) => {
                // Password bytes run up to a terminating 0; nothing is checked.
                if v != 0 {
                    self.pending = Some(Pending::Password);
                }
            }
            None => self.kbd.command(v),
        }
        self.refill();
    }

    fn write_output_port(&mut self, v: u8) {
        // Bit 0 is the active-low reset line: writing 0 resets the processor. The line
        // reads back high afterwards (the reset has happened).
        if v & OUT_RESET == 0 {
            self.reset_request = true;
        }
        self.output_port = (v | OUT_RESET) & !(OUT_IRQ1 | OUT_IRQ12);
    }

    fn write_command(&mut self, cmd: u8) {
        self.last_write_was_command = true;
        // A command cancels one that was still waiting for its data byte.
        self.pending = None;
        match cmd {
            0x20..=0x3f => self.put_result(self.ram[usize::from(cmd & 0x1f)], Source::Controller),
            0x60..=0x7f => self.pending = Some(Pending::WriteRam(cmd & 0x1f)),
            CMD_PASSWORD_INSTALLED => self.put_result(NO_PASSWORD, Source::Controller),
            CMD_LOAD_PASSWORD => self.pending = Some(Pending::Password),
            CMD_ENABLE_PASSWORD => {} // no password installed: nothing to enable
            CMD_DISABLE_AUX => self.ram[0] |= CB_AUX_DISABLE,
            CMD_ENABLE_AUX => self.ram[0] &= !CB_AUX_DISABLE,
            CMD_TEST_AUX | CMD_TEST_KBD => self.put_result(INTERFACE_OK, Source::Controller),
            CMD_SELF_TEST => {
                // A good self-test sets the system flag.
                self.ram[0] |= CB_SYS;
                self.put_result(SELF_TEST_OK, Source::Controller);
            }
            CMD_DISABLE_KBD => self.ram[0] |= CB_KBD_DISABLE,
            CMD_ENABLE_KBD => self.ram[0] &= !CB_KBD_DISABLE,
            CMD_READ_INPUT_PORT => self.put_result(INPUT_PORT, Source::Controller),
            CMD_READ_OUTPUT_PORT => self.put_result(self.output_port_value(), Source::Controller),
            CMD_WRITE_OUTPUT_PORT => self.pending = Some(Pending::WriteOutputPort),
            CMD_WRITE_KBD_BUFFER => self.pending = Some(Pending::WriteKbdBuffer),
            CMD_WRITE_AUX_BUFFER => self.pending = Some(Pending::WriteAuxBuffer),
            CMD_WRITE_AUX => self.pending = Some(Pending::WriteAux),
            CMD_A20_OFF => self.output_port &= !OUT_A20,
            CMD_A20_ON => self.output_port |= OUT_A20,
            // 0xF0-0xFF: output port bits 0-3 whose command bit is 0 are pulsed low for
            // 6 µs. Only bit 0 (reset) has a lasting effect; a 6 µs A20 blip is not modelled.
            CMD_PULSE_OUTPUT..=0xff if cmd & OUT_RESET == 0 => self.reset_request = true,
            // Other pulses, and other commands (diagnostic dump, input-port polling, vendor
            // extensions), are accepted and ignored.
            _ => {}
        }
        self.refill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn status(k: &mut I8042) -> u8 {
        k.read(I8042_STATUS_PORT, IoSize::Byte) as u8
    }

    fn cmd(k: &mut I8042, c: u8) {
        k.write(I8042_COMMAND_PORT, IoSize::Byte, u32::from(c));
    }

    fn data(k: &mut I8042, v: u8) {
        k.write(I8042_DATA_PORT, IoSize::Byte, u32::from(v));
    }

    /// Poll like a driver: wait for OBF (bounded), then read port 0x60.
    fn read_byte(k: &mut I8042) -> Option<u8> {
        for _ in 0..4 {
            if status(k) & STATUS_OBF != 0 {
                return Some(k.read(I8042_DATA_PORT, IoSize::Byte) as u8);
            }
        }
        None
    }

    fn drain(k: &mut I8042) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = read_byte(k) {
            out.push(b);
        }
        out
    }

    #[test]
    fn power_on_state() {
        let mut k = I8042::new();
        assert_eq!(k.command_byte(), 0x45);
        assert_eq!(status(&mut k), STATUS_UNLOCKED | STATUS_SYS);
        assert!(k.a20());
        assert!(!k.irq1());
        assert!(!k.irq12());
        assert!(!k.take_reset_request());
        assert_eq!(k.next_event(0), None);
    }

    #[test]
    fn self_test_and_interface_tests() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, 0x00); // clear everything, including SYS
        assert_eq!(status(&mut k) & STATUS_SYS, 0);
        cmd(&mut k, CMD_SELF_TEST);
        assert_eq!(status(&mut k) & (STATUS_OBF | STATUS_CMD), STATUS_OBF | STATUS_CMD);
        assert_eq!(read_byte(&mut k), Some(SELF_TEST_OK));
        assert_ne!(status(&mut k) & STATUS_SYS, 0, "self-test sets the system flag");
        cmd(&mut k, CMD_TEST_KBD);
        assert_eq!(read_byte(&mut k), Some(0x00));
        cmd(&mut k, CMD_TEST_AUX);
        assert_eq!(read_byte(&mut k), Some(0x00));
        cmd(&mut k, CMD_PASSWORD_INSTALLED);
        assert_eq!(read_byte(&mut k), Some(NO_PASSWORD));
        assert_eq!(read_byte(&mut k), None);
        // Reading with OBF clear repeats the last byte.
        assert_eq!(k.read(I8042_DATA_PORT, IoSize::Byte), u32::from(NO_PASSWORD));
    }

    #[test]
    fn command_byte_read_write() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_READ_RAM);
        assert_eq!(read_byte(&mut k), Some(0x45));
        cmd(&mut k, CMD_WRITE_RAM);
        assert_eq!(status(&mut k) & STATUS_CMD, STATUS_CMD);
        data(&mut k, 0x47);
        assert_eq!(status(&mut k) & STATUS_CMD, 0, "last write was data");
        assert_eq!(k.command_byte(), 0x47);
        cmd(&mut k, 0x20);
        assert_eq!(read_byte(&mut k), Some(0x47));
        // 0xAD/0xAE and 0xA7/0xA8 flip bits 4 and 5.
        cmd(&mut k, CMD_DISABLE_KBD);
        cmd(&mut k, CMD_DISABLE_AUX);
        assert_eq!(k.command_byte(), 0x47 | CB_KBD_DISABLE | CB_AUX_DISABLE);
        cmd(&mut k, CMD_ENABLE_KBD);
        cmd(&mut k, CMD_ENABLE_AUX);
        assert_eq!(k.command_byte(), 0x47);
        // Other RAM bytes.
        cmd(&mut k, 0x65);
        data(&mut k, 0x99);
        cmd(&mut k, 0x25);
        assert_eq!(read_byte(&mut k), Some(0x99));
        // A command in place of the data byte cancels the pending write.
        cmd(&mut k, 0x60);
        cmd(&mut k, CMD_SELF_TEST);
        assert_eq!(read_byte(&mut k), Some(0x55));
        assert_eq!(k.command_byte(), 0x47);
    }

    #[test]
    fn irq1_follows_obf_and_command_byte_bit0() {
        let mut k = I8042::new();
        k.key(&[0x1c]);
        assert!(k.irq1());
        assert!(!k.irq12());
        assert_eq!(k.read(I8042_DATA_PORT, IoSize::Byte), 0x1e);
        assert!(!k.irq1());
        cmd(&mut k, 0x60);
        data(&mut k, 0x44); // translation and SYS, no interrupts
        k.key(&[0x1c]);
        assert!(!k.irq1());
        assert_ne!(status(&mut k) & STATUS_OBF, 0);
    }

    #[test]
    fn translation_of_make_and_break_codes() {
        let mut k = I8042::new();
        // A, then A released.
        k.key(&[0x1c, 0xf0, 0x1c]);
        assert_eq!(drain(&mut k), [0x1e, 0x9e]);
        // Esc, Enter, Space, F7 (the set-2 code above 0x7F) with their breaks.
        k.key(&[0x76, 0xf0, 0x76, 0x5a, 0xf0, 0x5a, 0x29, 0xf0, 0x29, 0x83, 0xf0, 0x83]);
        assert_eq!(drain(&mut k), [0x01, 0x81, 0x1c, 0x9c, 0x39, 0xb9, 0x41, 0xc1]);
    }

    #[test]
    fn translation_of_e0_and_e1_sequences() {
        let mut k = I8042::new();
        // Up arrow make/break, right Ctrl make/break.
        k.key(&[0xe0, 0x75, 0xe0, 0xf0, 0x75, 0xe0, 0x14, 0xe0, 0xf0, 0x14]);
        assert_eq!(drain(&mut k), [0xe0, 0x48, 0xe0, 0xc8, 0xe0, 0x1d, 0xe0, 0x9d]);
        // Print Screen make: E0 12 E0 7C → E0 2A E0 37.
        k.key(&[0xe0, 0x12, 0xe0, 0x7c]);
        assert_eq!(drain(&mut k), [0xe0, 0x2a, 0xe0, 0x37]);
        // Pause: E1 14 77 E1 F0 14 F0 77 → E1 1D 45 E1 9D C5.
        k.key(&[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]);
        assert_eq!(drain(&mut k), [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
    }

    #[test]
    fn break_prefix_split_across_host_calls() {
        let mut k = I8042::new();
        k.key(&[0xf0]);
        assert_eq!(status(&mut k) & STATUS_OBF, 0, "the prefix alone produces nothing");
        k.key(&[0x1c]);
        assert_eq!(drain(&mut k), [0x9e]);
    }

    #[test]
    fn no_translation_passes_set2() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, CB_KBD_INT | CB_SYS);
        k.key(&[0xe0, 0x75, 0xe0, 0xf0, 0x75]);
        assert_eq!(drain(&mut k), [0xe0, 0x75, 0xe0, 0xf0, 0x75]);
    }

    #[test]
    fn translation_matches_documented_keys() {
        // (set 2, set 1) make codes from the IBM key-number tables.
        #[rustfmt::skip]
        let keys: &[(u8, u8)] = &[
            (0x76, 0x01), (0x16, 0x02), (0x1e, 0x03), (0x26, 0x04), (0x25, 0x05), (0x2e, 0x06),
            (0x36, 0x07), (0x3d, 0x08), (0x3e, 0x09), (0x46, 0x0a), (0x45, 0x0b), (0x4e, 0x0c),
            (0x55, 0x0d), (0x66, 0x0e), (0x0d, 0x0f), (0x15, 0x10), (0x1d, 0x11), (0x24, 0x12),
            (0x2d, 0x13), (0x2c, 0x14), (0x35, 0x15), (0x3c, 0x16), (0x43, 0x17), (0x44, 0x18),
            (0x4d, 0x19), (0x54, 0x1a), (0x5b, 0x1b), (0x5a, 0x1c), (0x14, 0x1d), (0x1c, 0x1e),
            (0x1b, 0x1f), (0x23, 0x20), (0x2b, 0x21), (0x34, 0x22), (0x33, 0x23), (0x3b, 0x24),
            (0x42, 0x25), (0x4b, 0x26), (0x4c, 0x27), (0x52, 0x28), (0x0e, 0x29), (0x12, 0x2a),
            (0x5d, 0x2b), (0x1a, 0x2c), (0x22, 0x2d), (0x21, 0x2e), (0x2a, 0x2f), (0x32, 0x30),
            (0x31, 0x31), (0x3a, 0x32), (0x41, 0x33), (0x49, 0x34), (0x4a, 0x35), (0x59, 0x36),
            (0x7c, 0x37), (0x11, 0x38), (0x29, 0x39), (0x58, 0x3a), (0x05, 0x3b), (0x06, 0x3c),
            (0x04, 0x3d), (0x0c, 0x3e), (0x03, 0x3f), (0x0b, 0x40), (0x83, 0x41), (0x0a, 0x42),
            (0x01, 0x43), (0x09, 0x44), (0x77, 0x45), (0x7e, 0x46), (0x6c, 0x47), (0x75, 0x48),
            (0x7d, 0x49), (0x7b, 0x4a), (0x6b, 0x4b), (0x73, 0x4c), (0x74, 0x4d), (0x79, 0x4e),
            (0x69, 0x4f), (0x72, 0x50), (0x7a, 0x51), (0x70, 0x52), (0x71, 0x53), (0x84, 0x54),
            (0x61, 0x56), (0x78, 0x57), (0x07, 0x58),
        ];
        for &(set2, set1) in keys {
            assert_eq!(translate_set2_byte(set2), set1, "set-2 code {set2:#04x}");
        }
        // The 0x00-0x7F part is a permutation of set 1's 0x01-0x7F plus 0xFF.
        let mut seen = [false; 256];
        for b in 0..0x80u8 {
            let t = translate_set2_byte(b);
            assert!(!seen[usize::from(t)], "{t:#04x} twice");
            seen[usize::from(t)] = true;
        }
        assert!(seen[0xff] && !seen[0]);
        // Replies and prefixes pass unchanged.
        for b in [0xe0, 0xe1, 0xfa, 0xaa, 0xee, 0xfe, 0xab] {
            assert_eq!(translate_set2_byte(b), b);
        }
    }

    #[test]
    fn a20_via_output_port_and_shortcuts() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_WRITE_OUTPUT_PORT);
        data(&mut k, 0xdd); // A20 off, reset line high
        assert!(!k.a20());
        assert!(!k.take_reset_request());
        cmd(&mut k, CMD_READ_OUTPUT_PORT);
        assert_eq!(read_byte(&mut k), Some(0xcd));
        cmd(&mut k, CMD_WRITE_OUTPUT_PORT);
        data(&mut k, 0xdf);
        assert!(k.a20());
        cmd(&mut k, CMD_A20_OFF);
        assert!(!k.a20());
        cmd(&mut k, CMD_A20_ON);
        assert!(k.a20());
        // The 0xFF "null" pulse command some A20 routines send afterwards does nothing.
        cmd(&mut k, 0xff);
        assert!(k.a20());
        assert!(!k.take_reset_request());
    }

    #[test]
    fn output_port_shows_obf_lines() {
        let mut k = I8042::new();
        k.key(&[0x1c]);
        // The result displaces the keyboard byte, which follows it.
        cmd(&mut k, CMD_READ_OUTPUT_PORT);
        assert_eq!(read_byte(&mut k), Some(0xcf | OUT_IRQ1));
        assert_eq!(read_byte(&mut k), Some(0x1e));
        assert_eq!(read_byte(&mut k), None);
    }

    #[test]
    fn reset_via_pulse_and_output_port() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_PULSE_RESET);
        assert!(k.take_reset_request());
        assert!(!k.take_reset_request());
        cmd(&mut k, 0xfc); // pulses bits 0 and 1
        assert!(k.take_reset_request());
        cmd(&mut k, 0xfd); // bit 1 only: no reset
        assert!(!k.take_reset_request());
        cmd(&mut k, CMD_WRITE_OUTPUT_PORT);
        data(&mut k, 0xdc);
        assert!(k.take_reset_request());
        assert!(!k.a20());
    }

    #[test]
    fn keyboard_reset_and_identify() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, CB_SYS); // no translation
        data(&mut k, KBD_RESET);
        assert_eq!(drain(&mut k), [0xfa, 0xaa]);
        data(&mut k, KBD_IDENTIFY);
        assert_eq!(drain(&mut k), [0xfa, 0xab, 0x83]);
        // Translated, the second ID byte reads 0x41.
        cmd(&mut k, 0x60);
        data(&mut k, CB_SYS | CB_TRANSLATE);
        data(&mut k, KBD_IDENTIFY);
        assert_eq!(drain(&mut k), [0xfa, 0xab, 0x41]);
    }

    #[test]
    fn keyboard_commands() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, CB_SYS);
        data(&mut k, KBD_SET_LEDS);
        assert_eq!(drain(&mut k), [0xfa]);
        data(&mut k, 0x05);
        assert_eq!(drain(&mut k), [0xfa]);
        assert_eq!(k.leds(), 0x05);
        data(&mut k, KBD_ECHO);
        assert_eq!(drain(&mut k), [0xee]);
        data(&mut k, KBD_TYPEMATIC);
        data(&mut k, 0x20);
        assert_eq!(drain(&mut k), [0xfa, 0xfa]);
        // Scan code set: get (2), set 1, get (1), back to 2.
        data(&mut k, KBD_SCAN_SET);
        data(&mut k, 0);
        assert_eq!(drain(&mut k), [0xfa, 0xfa, 0x02]);
        data(&mut k, KBD_SCAN_SET);
        data(&mut k, 1);
        assert_eq!(drain(&mut k), [0xfa, 0xfa]);
        assert_eq!(k.scancode_set(), 1);
        k.key(&[0x1c, 0xf0, 0x1c]);
        assert_eq!(drain(&mut k), [0x1e, 0x9e], "the keyboard itself sends set 1");
        data(&mut k, KBD_SCAN_SET);
        data(&mut k, 2);
        assert_eq!(drain(&mut k), [0xfa, 0xfa]);
        // Disable: keys are not scanned; enable: they are again.
        data(&mut k, KBD_DEFAULT_DISABLE);
        assert_eq!(drain(&mut k), [0xfa]);
        k.key(&[0x1c]);
        assert_eq!(drain(&mut k), [0u8; 0]);
        data(&mut k, KBD_ENABLE);
        assert_eq!(drain(&mut k), [0xfa]);
        k.key(&[0x1c]);
        assert_eq!(drain(&mut k), [0x1c]);
        data(&mut k, KBD_SET_DEFAULT);
        assert_eq!(drain(&mut k), [0xfa]);
        // Resend repeats the last byte sent; unknown commands get 0xFE.
        data(&mut k, KBD_RESEND);
        assert_eq!(drain(&mut k), [0xfa]);
        data(&mut k, 0xef);
        assert_eq!(drain(&mut k), [0xfe]);
        // A command in place of an option byte is executed as a command.
        data(&mut k, KBD_SET_LEDS);
        data(&mut k, KBD_ECHO);
        assert_eq!(drain(&mut k), [0xfa, 0xee]);
        assert_eq!(k.leds(), 0x05);
        // Reset turns the LEDs off.
        data(&mut k, KBD_RESET);
        assert_eq!(drain(&mut k), [0xfa, 0xaa]);
        assert_eq!(k.leds(), 0);
    }

    #[test]
    fn translated_scan_set_query() {
        let mut k = I8042::new();
        data(&mut k, KBD_SCAN_SET);
        data(&mut k, 0);
        assert_eq!(drain(&mut k), [0xfa, 0xfa, 0x41], "set 2 reads 0x41 through translation");
    }

    #[test]
    fn disabled_interface_holds_keys_but_not_replies() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_DISABLE_KBD);
        k.key(&[0x1c]);
        assert_eq!(read_byte(&mut k), None);
        assert_eq!(k.next_event(7), None);
        data(&mut k, KBD_ECHO);
        assert_eq!(drain(&mut k), [0xee], "the reply to a guest command gets through");
        cmd(&mut k, CMD_ENABLE_KBD);
        assert_eq!(drain(&mut k), [0x1e]);
    }

    #[test]
    fn data_read_does_not_refill_so_irq1_drops() {
        let mut k = I8042::new();
        k.key(&[0x1c, 0xf0, 0x1c]);
        assert!(k.irq1());
        assert_eq!(k.read(I8042_DATA_PORT, IoSize::Byte), 0x1e);
        assert!(!k.irq1(), "the line falls after the read");
        assert_eq!(k.next_event(42), Some(42));
        k.advance(42);
        assert!(k.irq1(), "the release code arrives with a new edge");
        assert_eq!(k.read(I8042_DATA_PORT, IoSize::Byte), 0x9e);
        k.advance(43);
        assert!(!k.irq1());
        assert_eq!(k.next_event(43), None);
    }

    #[test]
    fn key_ascii_types_press_and_release() {
        let mut k = I8042::new();
        assert!(k.key_ascii(b'a'));
        assert_eq!(drain(&mut k), [0x1e, 0x9e]);
        assert!(k.key_ascii(b'A'));
        assert_eq!(drain(&mut k), [0x2a, 0x1e, 0x9e, 0xaa]);
        assert!(k.key_ascii(b'\n'));
        assert_eq!(drain(&mut k), [0x1c, 0x9c]);
        assert!(!k.key_ascii(0x80));
        assert_eq!(k.key_text(b"hi!\x01"), 3);
        assert_eq!(drain(&mut k), [0x23, 0xa3, 0x17, 0x97, 0x2a, 0x02, 0x82, 0xaa]);
        for c in 0x20..0x7fu8 {
            assert!(ascii_to_set2(c).is_some(), "{c:#x}");
        }
    }

    #[test]
    fn result_displaces_keyboard_byte_without_losing_it() {
        let mut k = I8042::new();
        k.key(&[0x1c]);
        cmd(&mut k, CMD_READ_RAM);
        assert_eq!(read_byte(&mut k), Some(0x45));
        assert_eq!(read_byte(&mut k), Some(0x1e));
    }

    #[test]
    fn write_keyboard_and_aux_output_buffer() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, 0x47);
        cmd(&mut k, CMD_WRITE_KBD_BUFFER);
        data(&mut k, 0x12);
        assert!(k.irq1());
        assert_eq!(status(&mut k) & STATUS_AUXB, 0);
        assert_eq!(read_byte(&mut k), Some(0x12));
        cmd(&mut k, CMD_WRITE_AUX_BUFFER);
        data(&mut k, 0x34);
        assert!(k.irq12());
        assert!(!k.irq1());
        assert_ne!(status(&mut k) & STATUS_AUXB, 0);
        assert_eq!(read_byte(&mut k), Some(0x34));
        assert!(!k.irq12());
    }

    #[test]
    fn mouse_probe_and_packets() {
        let mut k = I8042::new();
        cmd(&mut k, 0x60);
        data(&mut k, 0x47);
        fn aux(k: &mut I8042, v: u8) {
            cmd(k, CMD_WRITE_AUX);
            data(k, v);
        }
        aux(&mut k, AUX_RESET);
        assert!(k.irq12());
        assert_ne!(status(&mut k) & STATUS_AUXB, 0);
        assert_eq!(drain(&mut k), [0xfa, 0xaa, 0x00]);
        aux(&mut k, AUX_IDENTIFY);
        assert_eq!(drain(&mut k), [0xfa, AUX_ID]);
        aux(&mut k, AUX_SET_SAMPLE_RATE);
        aux(&mut k, 200);
        aux(&mut k, AUX_SET_RESOLUTION);
        aux(&mut k, 3);
        assert_eq!(drain(&mut k), [0xfa, 0xfa, 0xfa, 0xfa]);
        aux(&mut k, AUX_STATUS_REQUEST);
        assert_eq!(drain(&mut k), [0xfa, 0x00, 3, 200]);
        // No packets until reporting is enabled.
        k.mouse_move(5, 5, 0);
        assert_eq!(drain(&mut k), [0u8; 0]);
        aux(&mut k, AUX_ENABLE);
        assert_eq!(drain(&mut k), [0xfa]);
        k.mouse_move(3, -2, 1);
        assert_eq!(drain(&mut k), [0x29, 0x03, 0xfe]);
        k.mouse_move(1000, 0, 0);
        assert_eq!(drain(&mut k), [0x48, 0xff, 0x00]);
        // Wrap mode echoes; 0xEC leaves it.
        aux(&mut k, AUX_SET_WRAP_MODE);
        aux(&mut k, 0x42);
        aux(&mut k, AUX_RESET_WRAP_MODE);
        assert_eq!(drain(&mut k), [0xfa, 0x42, 0xfa]);
        aux(&mut k, 0x01);
        assert_eq!(drain(&mut k), [0xfe]);
        // Disabled aux interface: packets wait, replies do not.
        aux(&mut k, AUX_ENABLE);
        assert_eq!(drain(&mut k), [0xfa]);
        cmd(&mut k, CMD_DISABLE_AUX);
        k.mouse_move(1, 1, 0);
        assert_eq!(drain(&mut k), [0u8; 0]);
        cmd(&mut k, CMD_ENABLE_AUX);
        assert_eq!(drain(&mut k), [0x08, 0x01, 0x01]);
    }

    #[test]
    fn mouse_replies_without_irq12_when_disabled_in_command_byte() {
        // A guest probing the mouse by polling with IRQ12 off must still see the replies.
        let mut k = I8042::new();
        cmd(&mut k, CMD_WRITE_AUX);
        data(&mut k, AUX_IDENTIFY);
        assert!(!k.irq12());
        assert!(!k.irq1());
        assert_eq!(drain(&mut k), [0xfa, 0x00]);
    }

    #[test]
    fn password_bytes_are_swallowed() {
        let mut k = I8042::new();
        cmd(&mut k, CMD_LOAD_PASSWORD);
        data(&mut k, 0x10);
        data(&mut k, 0x11);
        data(&mut k, 0x00);
        assert_eq!(drain(&mut k), [0u8; 0]);
        data(&mut k, KBD_ECHO);
        assert_eq!(drain(&mut k), [0xee]);
    }

    #[test]
    fn other_ports_and_wide_accesses() {
        let mut k = I8042::new();
        assert_eq!(k.read(0x61, IoSize::Byte), 0xff);
        assert_eq!(k.read(0x62, IoSize::Word), 0xffff);
        k.key(&[0x1c]);
        // A word read at 0x60 reads the data port and then 0x61 (not ours).
        assert_eq!(k.read(I8042_DATA_PORT, IoSize::Word), 0xff1e);
        k.write(0x65, IoSize::Byte, 0xfe);
        assert!(!k.take_reset_request());
    }

    #[test]
    fn garbage_does_not_panic() {
        let mut k = I8042::new();
        for v in 0..=255u32 {
            cmd(&mut k, v as u8);
            data(&mut k, (v * 7) as u8);
            cmd(&mut k, CMD_WRITE_AUX);
            data(&mut k, v as u8);
            let _ = k.read(I8042_DATA_PORT, IoSize::Dword);
            let _ = k.read(I8042_STATUS_PORT, IoSize::Word);
            k.key(&[v as u8]);
            k.mouse_move(v as i32 * 1000, -(v as i32), v as u8);
            k.advance(u64::from(v));
        }
        let _ = k.take_reset_request();
    }
}
