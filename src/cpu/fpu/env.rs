//! The memory images of the x87 environment and state: FNSTENV/FLDENV (14 or 28 bytes)
//! and FNSAVE/FRSTOR (the environment followed by the eight registers in stack order,
//! 94 or 108 bytes). Four layouts, by operand size and by mode (SDM Vol. 1 §8.1.10,
//! Figures 8-9 to 8-12; Vol. 2A "FSTENV", "FSAVE"):
//!
//! - 32-bit protected mode (Figure 8-9): seven dwords — control, status, tag words
//!   (upper halves reserved), FPU instruction pointer offset, its selector with the
//!   opcode in bits 26–16, the data pointer offset, its selector.
//! - 32-bit real and virtual-8086 mode (Figure 8-10): the pointers are 32-bit linear
//!   addresses split into bits 15–0 (one dword) and bits 31–16 (bits 27–12 of the next,
//!   which for the instruction pointer also holds the opcode in bits 10–0).
//! - 16-bit protected mode (Figure 8-11): seven words, offsets and selectors, no opcode.
//! - 16-bit real mode (Figure 8-12): seven words, linear addresses with bits 19–16 in
//!   bits 15–12 of the word after their low word (with the opcode for the instruction
//!   pointer).
//!
//! Reserved fields are written as ones, as the 486 and later processors write them;
//! loading ignores them. The tag word is stored in full (computed from the contents,
//! which the tags always match here), and a loaded tag word only decides which registers
//! are empty: the others get the tag of their contents.

use super::{Fpu, F80, TAG_EMPTY};

/// The environment's size: 28 bytes with a 32-bit operand size, else 14.
pub(crate) fn env_len(op32: bool) -> usize {
    if op32 {
        28
    } else {
        14
    }
}

/// FNSAVE's image size: the environment and eight 10-byte registers.
pub(crate) fn save_len(op32: bool) -> usize {
    env_len(op32) + 80
}

/// Write the environment into `out` (at least [`env_len`] bytes). `pm`: protected mode
/// (not virtual-8086); `ip_lin`, `dp_lin`: the pointers as linear addresses, for the
/// real-mode layouts.
pub(crate) fn store_env(f: &Fpu, pm: bool, op32: bool, ip_lin: u32, dp_lin: u32, out: &mut [u8]) {
    let mut put16 = |at: usize, v: u16| out[at..at + 2].copy_from_slice(&v.to_le_bytes());
    if op32 {
        let words: [(u16, u16); 7] = if pm {
            [
                (f.cw, 0xffff),
                (f.sw, 0xffff),
                (f.tw, 0xffff),
                (f.fip as u16, (f.fip >> 16) as u16),
                (f.fcs, f.fop & 0x7ff),
                (f.fdp as u16, (f.fdp >> 16) as u16),
                (f.fds, 0xffff),
            ]
        } else {
            [
                (f.cw, 0xffff),
                (f.sw, 0xffff),
                (f.tw, 0xffff),
                (ip_lin as u16, 0xffff),
                (((ip_lin >> 16) as u16) << 12 | (f.fop & 0x7ff), (ip_lin >> 20) as u16 & 0x0fff),
                (dp_lin as u16, 0xffff),
                (((dp_lin >> 16) as u16) << 12, (dp_lin >> 20) as u16 & 0x0fff),
            ]
        };
        for (k, (lo, hi)) in words.iter().enumerate() {
            put16(4 * k, *lo);
            put16(4 * k + 2, *hi);
        }
    } else {
        let words: [u16; 7] = if pm {
            [f.cw, f.sw, f.tw, f.fip as u16, f.fcs, f.fdp as u16, f.fds]
        } else {
            [
                f.cw,
                f.sw,
                f.tw,
                ip_lin as u16,
                ((ip_lin >> 16) as u16 & 0xf) << 12 | (f.fop & 0x7ff),
                dp_lin as u16,
                ((dp_lin >> 16) as u16 & 0xf) << 12,
            ]
        };
        for (k, w) in words.iter().enumerate() {
            put16(2 * k, *w);
        }
    }
}

/// Load the environment from `b` (at least [`env_len`] bytes). In the real-mode layouts
/// the pointers come back as linear addresses with selector 0.
pub(crate) fn load_env(f: &mut Fpu, pm: bool, op32: bool, b: &[u8]) {
    let get16 = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let get32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (cw, sw, tw);
    if op32 {
        (cw, sw, tw) = (get16(0), get16(4), get16(8));
        if pm {
            f.fip = get32(12);
            f.fcs = get16(16);
            f.fop = get16(18) & 0x7ff;
            f.fdp = get32(20);
            f.fds = get16(24);
        } else {
            let hi = get32(16);
            f.fip = get16(12) as u32 | (hi >> 12 & 0xffff) << 16;
            f.fcs = 0;
            f.fop = hi as u16 & 0x7ff;
            f.fdp = get16(20) as u32 | (get32(24) >> 12 & 0xffff) << 16;
            f.fds = 0;
        }
    } else {
        (cw, sw, tw) = (get16(0), get16(2), get16(4));
        if pm {
            f.fip = get16(6) as u32;
            f.fcs = get16(8);
            f.fdp = get16(10) as u32;
            f.fds = get16(12);
        } else {
            let hi = get16(8);
            f.fip = get16(6) as u32 | ((hi >> 12) as u32) << 16;
            f.fcs = 0;
            f.fop = hi & 0x7ff;
            f.fdp = get16(10) as u32 | ((get16(12) >> 12) as u32) << 16;
            f.fds = 0;
        }
    }
    f.cw = (cw & super::cw::WRITABLE) | super::cw::RESERVED1;
    f.sw = sw;
    f.tw = tw;
    retag(f);
    f.update_es();
}

/// Tags after a load: empty stays empty, anything else is recomputed from the contents.
fn retag(f: &mut Fpu) {
    for p in 0..8 {
        if f.tag(p) != TAG_EMPTY {
            let t = f.regs[p].tag();
            f.set_tag(p, t);
        }
    }
}

/// Write the FNSAVE image: the environment, then ST(0)…ST(7) (SDM Vol. 2A "FSAVE").
pub(crate) fn store_state(f: &Fpu, pm: bool, op32: bool, ip_lin: u32, dp_lin: u32, out: &mut [u8]) {
    store_env(f, pm, op32, ip_lin, dp_lin, out);
    let base = env_len(op32);
    for i in 0..8 {
        out[base + 10 * i..base + 10 * i + 10].copy_from_slice(&f.st(i).to_bytes());
    }
}

/// Load the FRSTOR image: the environment first (it sets TOP), then the registers in
/// stack order relative to the new TOP, then the tags.
pub(crate) fn load_state(f: &mut Fpu, pm: bool, op32: bool, b: &[u8]) {
    load_env(f, pm, op32, b);
    let base = env_len(op32);
    for i in 0..8 {
        let mut r = [0u8; 10];
        r.copy_from_slice(&b[base + 10 * i..base + 10 * i + 10]);
        let p = f.phys(i);
        f.regs[p] = F80::from_bytes(&r);
    }
    retag(f);
}
