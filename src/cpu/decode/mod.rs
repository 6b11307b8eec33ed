//! The instruction decoder: bytes in, an [`Instr`] out. It knows encodings only (prefixes,
//! ModR/M, SIB, displacements, immediates: SDM Vol. 2A ch. 2) and nothing of execution, so
//! the executor, the disassembler view and the VMM's instruction interpreters share it.
//! The opcode map itself is data, in [`table`].

pub mod table;

use crate::cpu::exception::Exception;
use table::{Operand, FORMS, OPINFO};

/// Segment register numbers, in the encoding order of SDM Vol. 2A Table 3-6 (Sreg).
pub const ES: u8 = 0;
pub const CS: u8 = 1;
pub const SS: u8 = 2;
pub const DS: u8 = 3;
pub const FS: u8 = 4;
pub const GS: u8 = 5;
/// "No segment override": the instruction's default segment applies.
pub const SEG_DEFAULT: u8 = 7;

/// No base or index register in an effective address.
pub const NO_REG: u8 = 8;

/// REP prefix state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rep {
    #[default]
    None,
    /// F3: REP / REPE / REPZ.
    Rep,
    /// F2: REPNE / REPNZ.
    Repne,
}

/// A decoded instruction. `Copy` and allocation-free, so it can sit in a decode cache.
// Aligned so copies out of the decode cache move whole 8-byte words: unaligned partial
// copies caused a store-forwarding stall that cost a fifth of the interpreter's time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct Instr {
    /// `0x00..=0xff` or `0x100 | b` for `0F b`.
    pub opcode: u16,
    /// Index of the row in [`table::FORMS`].
    pub form: u16,
    /// Total length in bytes, prefixes included (at most 15).
    pub len: u8,
    /// Effective operand size is 32 bits.
    pub op32: bool,
    /// Effective address size is 32 bits.
    pub ad32: bool,
    /// Segment override ([`SEG_DEFAULT`] when none).
    pub seg: u8,
    pub rep: Rep,
    pub lock: bool,
    /// The ModR/M byte (0 when the opcode has none).
    pub modrm: u8,
    /// ModR/M names memory (mod != 3).
    pub is_mem: bool,
    /// Effective address: base register or [`NO_REG`].
    pub base: u8,
    /// Effective address: index register or [`NO_REG`].
    pub index: u8,
    /// Effective address: log2 of the scale factor.
    pub scale: u8,
    /// The effective address defaults to SS (base is eBP or eSP).
    pub ss_default: bool,
    /// Displacement (sign-extended), or the moffs of A0–A3.
    pub disp: u32,
    /// First immediate (sign- or zero-extended as the form requires; Jb/Jz sign-extended).
    pub imm: u32,
    /// Second immediate: the selector of an `Ap` far pointer, ENTER's nesting level.
    pub imm2: u16,
}

impl Instr {
    /// A placeholder (NOP-shaped) for empty cache slots.
    pub const EMPTY: Instr = Instr {
        opcode: 0x90,
        form: 0,
        len: 1,
        op32: false,
        ad32: false,
        seg: SEG_DEFAULT,
        rep: Rep::None,
        lock: false,
        modrm: 0,
        is_mem: false,
        base: NO_REG,
        index: NO_REG,
        scale: 0,
        ss_default: false,
        disp: 0,
        imm: 0,
        imm2: 0,
    };

    /// The ModR/M `reg` field.
    #[inline]
    pub fn reg(&self) -> u8 {
        (self.modrm >> 3) & 7
    }
    /// The ModR/M `rm` field.
    #[inline]
    pub fn rm(&self) -> u8 {
        self.modrm & 7
    }
    /// The row of the opcode map this instruction was decoded as.
    pub fn form(&self) -> &'static table::Form {
        &FORMS[self.form as usize]
    }
    /// The segment the memory operand uses: the override, or DS/SS by base register.
    #[inline]
    pub fn mem_seg(&self) -> u8 {
        if self.seg != SEG_DEFAULT {
            self.seg
        } else if self.ss_default {
            SS
        } else {
            DS
        }
    }
}

/// Why decoding stopped without an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are no instruction of this CPU (#UD).
    Invalid,
    /// More than 15 bytes (#GP(0), SDM Vol. 2A §2.3.11).
    TooLong,
    /// Fetching a byte raised an exception (#PF, #GP on the code segment limit).
    Fetch(Exception),
}

/// Where instruction bytes come from: the CPU's code fetch, a slice for the disassembler.
pub trait Fetch {
    fn next_byte(&mut self) -> Result<u8, Exception>;
}

/// Fetch from a byte slice (the disassembler, tests). Running off its end is a #GP.
pub struct SliceFetch<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl Fetch for SliceFetch<'_> {
    #[inline]
    fn next_byte(&mut self) -> Result<u8, Exception> {
        let b = *self.bytes.get(self.pos).ok_or(Exception::GP(0))?;
        self.pos += 1;
        Ok(b)
    }
}

struct Counted<'a, F: Fetch> {
    inner: &'a mut F,
    n: u8,
}

impl<F: Fetch> Counted<'_, F> {
    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        if self.n >= 15 {
            return Err(DecodeError::TooLong);
        }
        self.n += 1;
        self.inner.next_byte().map_err(DecodeError::Fetch)
    }
    #[inline]
    fn word(&mut self) -> Result<u16, DecodeError> {
        let lo = self.byte()? as u16;
        Ok(lo | (self.byte()? as u16) << 8)
    }
    #[inline]
    fn dword(&mut self) -> Result<u32, DecodeError> {
        let lo = self.word()? as u32;
        Ok(lo | (self.word()? as u32) << 16)
    }
}

/// Decode one instruction. `code32` is the D bit of the code segment (default operand and
/// address size, SDM Vol. 3A §3.4.5).
pub fn decode<F: Fetch>(fetch: &mut F, code32: bool) -> Result<Instr, DecodeError> {
    let mut c = Counted { inner: fetch, n: 0 };
    let mut i = Instr { seg: SEG_DEFAULT, op32: code32, ad32: code32, base: NO_REG, index: NO_REG, ..Instr::default() };
    // Prefixes (SDM Vol. 2A §2.1.1): any number, any order, up to the 15-byte limit.
    let mut b = loop {
        let b = c.byte()?;
        match b {
            0x26 => i.seg = ES,
            0x2e => i.seg = CS,
            0x36 => i.seg = SS,
            0x3e => i.seg = DS,
            0x64 => i.seg = FS,
            0x65 => i.seg = GS,
            0x66 => i.op32 = !code32,
            0x67 => i.ad32 = !code32,
            0xf0 => i.lock = true,
            0xf2 => i.rep = Rep::Repne,
            0xf3 => i.rep = Rep::Rep,
            _ => break b,
        }
    };
    let mut opcode = b as u16;
    if b == 0x0f {
        b = c.byte()?;
        opcode = 0x100 | b as u16;
    }
    i.opcode = opcode;
    let info = OPINFO[opcode as usize];
    if info.form == u16::MAX {
        return Err(DecodeError::Invalid);
    }
    let mut form = info.form;
    if info.modrm {
        i.modrm = c.byte()?;
        if info.group {
            form = table::group_form(opcode, i.reg()).ok_or(DecodeError::Invalid)?;
        }
        // MOV to/from CRn/DRn ignore mod: r/m always names a register, and no displacement
        // follows (SDM Vol. 2B "MOV—Move to/from Control Registers").
        if !matches!(opcode, 0x120..=0x123) {
            decode_ea(&mut c, &mut i)?;
        }
    }
    i.form = form;
    let ops = FORMS[form as usize].operands;
    for op in ops {
        match *op {
            Operand::Ib => {
                let v = c.byte()?;
                if opcode == 0xc8 {
                    // ENTER Iw, Ib: the byte is the nesting level.
                    i.imm2 = v as u16;
                } else {
                    // Ib is sign-extended where it meets a wider operand (83, 6A, 6B); the
                    // executor truncates for byte operations.
                    i.imm = v as i8 as i32 as u32;
                }
            }
            Operand::Iw => i.imm = c.word()? as u32,
            Operand::Iz | Operand::Iv => {
                i.imm = if i.op32 { c.dword()? } else { c.word()? as i16 as i32 as u32 };
            }
            Operand::Jb => i.imm = c.byte()? as i8 as i32 as u32,
            Operand::Jz => i.imm = if i.op32 { c.dword()? } else { c.word()? as i16 as i32 as u32 },
            Operand::Ap => {
                i.imm = if i.op32 { c.dword()? } else { c.word()? as u32 };
                i.imm2 = c.word()?;
            }
            Operand::Ob | Operand::Ov => {
                i.disp = if i.ad32 { c.dword()? } else { c.word()? as u32 };
                i.is_mem = true;
            }
            Operand::M | Operand::Mp | Operand::Ma | Operand::Ms | Operand::Mq if !i.is_mem => {
                return Err(DecodeError::Invalid);
            }
            _ => {}
        }
    }
    // LOCK is allowed only on read-modify-write memory forms (SDM Vol. 2A "LOCK").
    if i.lock && !lockable(&i, opcode) {
        return Err(DecodeError::Invalid);
    }
    i.len = c.n;
    Ok(i)
}

fn lockable(i: &Instr, opcode: u16) -> bool {
    if !i.is_mem {
        return false;
    }
    match opcode {
        0x00 | 0x01 | 0x08 | 0x09 | 0x10 | 0x11 | 0x18 | 0x19 | 0x20 | 0x21 | 0x28 | 0x29 | 0x30 | 0x31 => true,
        0x80..=0x83 => i.reg() != 7,
        0x86 | 0x87 => true,
        0xf6 | 0xf7 => matches!(i.reg(), 2 | 3),
        0xfe | 0xff => i.reg() < 2,
        0x1ab | 0x1b3 | 0x1bb | 0x1b0 | 0x1b1 | 0x1c0 | 0x1c1 | 0x1c7 => true,
        0x1ba => i.reg() >= 5,
        _ => false,
    }
}

/// ModR/M and SIB to an effective address (SDM Vol. 2A Tables 2-1, 2-2, 2-3).
fn decode_ea<F: Fetch>(c: &mut Counted<'_, F>, i: &mut Instr) -> Result<(), DecodeError> {
    let md = i.modrm >> 6;
    let rm = i.modrm & 7;
    if md == 3 {
        return Ok(());
    }
    i.is_mem = true;
    if !i.ad32 {
        // 16-bit forms: BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP (or disp16), BX.
        const BASE: [u8; 8] = [3, 3, 5, 5, 6, 7, 5, 3];
        const INDEX: [u8; 8] = [6, 7, 6, 7, NO_REG, NO_REG, NO_REG, NO_REG];
        if md == 0 && rm == 6 {
            i.disp = c.word()? as u32;
            return Ok(());
        }
        i.base = BASE[rm as usize];
        i.index = INDEX[rm as usize];
        i.ss_default = i.base == 5;
        i.disp = match md {
            1 => c.byte()? as i8 as i32 as u32,
            2 => c.word()? as i16 as i32 as u32,
            _ => 0,
        };
        return Ok(());
    }
    if rm == 4 {
        let sib = c.byte()?;
        let scale = sib >> 6;
        let index = (sib >> 3) & 7;
        let base = sib & 7;
        if index != 4 {
            i.index = index;
            i.scale = scale;
        }
        if base == 5 && md == 0 {
            i.disp = c.dword()?;
        } else {
            i.base = base;
            i.ss_default = base == 4 || base == 5;
        }
    } else if rm == 5 && md == 0 {
        i.disp = c.dword()?;
        return Ok(());
    } else {
        i.base = rm;
        i.ss_default = rm == 5;
    }
    match md {
        1 => i.disp = i.disp.wrapping_add(c.byte()? as i8 as i32 as u32),
        2 => i.disp = i.disp.wrapping_add(c.dword()?),
        _ => {}
    }
    Ok(())
}

/// Decode from a byte slice (the disassembler, the VMM's interpreters, tests).
pub fn decode_slice(bytes: &[u8], code32: bool) -> Result<Instr, DecodeError> {
    decode(&mut SliceFetch { bytes, pos: 0 }, code32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let cases: &[(&[u8], bool, u8)] = &[
            (&[0x90], true, 1),
            (&[0x66, 0xb8, 0x34, 0x12], true, 4),
            (&[0xb8, 1, 2, 3, 4], true, 5),
            (&[0x8b, 0x44, 0x24, 0x08], true, 4),              // mov eax,[esp+8]
            (&[0x8b, 0x05, 1, 2, 3, 4], true, 6),              // mov eax,[disp32]
            (&[0x8b, 0x46, 0x02], false, 3),                   // mov ax,[bp+2]
            (&[0xf7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8], true, 10), // test [disp32], imm32
            (&[0xc8, 0x10, 0x00, 0x01], true, 4),              // enter 16,1
            (&[0xea, 1, 2, 3, 4, 5, 6], true, 7),              // jmp far ptr16:32
            (&[0x0f, 0xba, 0xe0, 0x05], true, 4),              // bt eax,5
        ];
        for (bytes, c32, len) in cases {
            let i = decode_slice(bytes, *c32).unwrap();
            assert_eq!(i.len, *len, "{bytes:02x?}");
        }
    }

    #[test]
    fn too_long_and_invalid() {
        let mut b = [0x66u8; 16];
        b[15] = 0x90;
        assert_eq!(decode_slice(&b, true), Err(DecodeError::TooLong));
        assert_eq!(decode_slice(&[0x0f, 0xff], true), Err(DecodeError::Invalid));
        assert_eq!(decode_slice(&[0x8d, 0xc0], true), Err(DecodeError::Invalid)); // lea eax,eax
        assert_eq!(decode_slice(&[0xf0, 0x90], true), Err(DecodeError::Invalid));
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn instr_is_small() {
        assert!(core::mem::size_of::<super::Instr>() <= 32, "{}", core::mem::size_of::<super::Instr>());
    }
}
