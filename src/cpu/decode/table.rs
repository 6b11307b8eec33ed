//! The opcode map as data (SDM Vol. 2D, Appendix A, "Opcode Map").
//!
//! Every opcode form the decoder accepts is one row of [`FORMS`]: its opcode (`0x000..=0x0ff`
//! one-byte, `0x100..=0x1ff` for `0F xx`), the ModR/M `reg` field for group opcodes, the
//! mnemonic and its operands in the SDM's Appendix A notation. The decoder derives from the
//! operands whether a ModR/M byte and which immediates follow; the disassembler prints the
//! mnemonic; the differential tests enumerate the rows for coverage. Nothing else knows the
//! encoding, so adding a row is how an instruction becomes decodable.

/// An operand, in the notation of SDM Vol. 2D §A.2 (addressing method + operand type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// ModR/M r/m, byte.
    Eb,
    /// ModR/M r/m, word or dword by operand size.
    Ev,
    /// ModR/M r/m, word.
    Ew,
    /// ModR/M r/m, dword register or memory (MOVSX/MOVZX sources are Eb/Ew).
    Ed,
    /// ModR/M reg, byte.
    Gb,
    /// ModR/M reg, word or dword.
    Gv,
    /// ModR/M reg, word.
    Gw,
    /// ModR/M reg selects a segment register.
    Sw,
    /// ModR/M reg selects a control register; r/m a general register (mod ignored).
    Cd,
    /// ModR/M reg selects a debug register; r/m a general register (mod ignored).
    Dd,
    /// ModR/M r/m must be a general register (mod ignored, as for MOV CRn).
    Rd,
    /// ModR/M r/m must be memory, size irrelevant (LEA, INVLPG).
    M,
    /// Memory: far pointer (offset, then 16-bit selector).
    Mp,
    /// Memory: pair of bounds (BOUND).
    Ma,
    /// Memory: 6-byte pseudo-descriptor (LGDT family).
    Ms,
    /// Memory: quadword (CMPXCHG8B).
    Mq,
    /// Immediate byte.
    Ib,
    /// Immediate word.
    Iw,
    /// Immediate word or dword by operand size (never 64-bit here).
    Iz,
    /// Immediate word or dword by operand size (MOV r, imm).
    Iv,
    /// Relative branch displacement, byte.
    Jb,
    /// Relative branch displacement, word or dword by operand size.
    Jz,
    /// Far pointer immediate: offset (by operand size) then selector.
    Ap,
    /// Memory offset with no ModR/M (by address size), byte operand.
    Ob,
    /// Memory offset with no ModR/M (by address size), word/dword operand.
    Ov,
    /// A fixed register named by the opcode (AL, eAX, CL, DX, a segment register, r32…).
    Reg(Fixed),
    /// The constant 1 (shift by one).
    One,
    /// A string operand implied by the opcode (DS:eSI, ES:eDI).
    Str,
}

/// Registers named by an opcode rather than by ModR/M.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixed {
    Al,
    Cl,
    Dx,
    EAx,
    /// The register in the opcode's low three bits, byte (B0+r).
    Rb,
    /// The register in the opcode's low three bits, word/dword (40+r, 50+r, 90+r, B8+r, C8+r).
    Rv,
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// What kind of instruction a form is: the differential tests use it to build a context
/// in which the instruction runs meaningfully (a stack, a branch target, an I/O port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Arithmetic, logic, moves, bit operations: no control transfer.
    Plain,
    /// Reads or writes the stack.
    Stack,
    /// String instruction (honours REP prefixes).
    String,
    /// Near jump, call, return, loop.
    Branch,
    /// Far transfer, interrupt or return through segments, gates or tasks.
    Far,
    /// Port I/O.
    Io,
    /// System instruction: descriptor tables, control registers, MSRs, privileged state.
    System,
    /// Prefix byte, not an instruction by itself.
    Prefix,
    /// x87 escape (D8–DF) and WAIT: executed by the FPU (`cpu::fpu`).
    Fpu,
}

/// One row of the opcode map.
#[derive(Clone, Copy, Debug)]
pub struct Form {
    /// `0x00..=0xff` one-byte opcode, `0x100 | b` for `0F b`.
    pub opcode: u16,
    /// For group opcodes, the ModR/M reg field that selects this row.
    pub group_reg: Option<u8>,
    pub mnemonic: &'static str,
    pub operands: &'static [Operand],
    pub class: Class,
}

use Class::*;
use Fixed::*;
use Operand::*;

const fn f(opcode: u16, mnemonic: &'static str, operands: &'static [Operand], class: Class) -> Form {
    Form { opcode, group_reg: None, mnemonic, operands, class }
}
const fn g(opcode: u16, reg: u8, mnemonic: &'static str, operands: &'static [Operand], class: Class) -> Form {
    Form { opcode, group_reg: Some(reg), mnemonic, operands, class }
}

macro_rules! alu_block {
    ($base:expr, $m:expr) => {
        [
            f($base, $m, &[Eb, Gb], Plain),
            f($base + 1, $m, &[Ev, Gv], Plain),
            f($base + 2, $m, &[Gb, Eb], Plain),
            f($base + 3, $m, &[Gv, Ev], Plain),
            f($base + 4, $m, &[Reg(Al), Ib], Plain),
            f($base + 5, $m, &[Reg(EAx), Iz], Plain),
        ]
    };
}

macro_rules! eight {
    ($base:expr, $m:expr, $ops:expr, $class:expr) => {
        [
            f($base, $m, $ops, $class),
            f($base + 1, $m, $ops, $class),
            f($base + 2, $m, $ops, $class),
            f($base + 3, $m, $ops, $class),
            f($base + 4, $m, $ops, $class),
            f($base + 5, $m, $ops, $class),
            f($base + 6, $m, $ops, $class),
            f($base + 7, $m, $ops, $class),
        ]
    };
}

macro_rules! group8 {
    ($op:expr, [$($m:expr),*], $ops:expr, $class:expr) => {{
        let names: [&str; 8] = [$($m),*];
        [
            g($op, 0, names[0], $ops, $class),
            g($op, 1, names[1], $ops, $class),
            g($op, 2, names[2], $ops, $class),
            g($op, 3, names[3], $ops, $class),
            g($op, 4, names[4], $ops, $class),
            g($op, 5, names[5], $ops, $class),
            g($op, 6, names[6], $ops, $class),
            g($op, 7, names[7], $ops, $class),
        ]
    }};
}

const JCC: [&str; 16] =
    ["jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg"];
const SETCC: [&str; 16] = [
    "seto", "setno", "setb", "setae", "sete", "setne", "setbe", "seta", "sets", "setns", "setp", "setnp", "setl",
    "setge", "setle", "setg",
];
const CMOVCC: [&str; 16] = [
    "cmovo", "cmovno", "cmovb", "cmovae", "cmove", "cmovne", "cmovbe", "cmova", "cmovs", "cmovns", "cmovp", "cmovnp",
    "cmovl", "cmovge", "cmovle", "cmovg",
];

const fn cc16(base: u16, names: &'static [&'static str; 16], ops: &'static [Operand], class: Class) -> [Form; 16] {
    let mut out = [f(0, "", &[], Plain); 16];
    let mut i = 0;
    while i < 16 {
        out[i] = f(base + i as u16, names[i], ops, class);
        i += 1;
    }
    out
}

const SHIFTS: [&str; 8] = ["rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"];

const fn shift_group(op: u16, ops: &'static [Operand]) -> [Form; 8] {
    let mut out = [f(0, "", &[], Plain); 8];
    let mut i = 0;
    while i < 8 {
        out[i] = g(op, i as u8, SHIFTS[i], ops, Plain);
        i += 1;
    }
    out
}

const fn x87(op: u16) -> [Form; 8] {
    let mut out = [f(0, "", &[], Plain); 8];
    let mut i = 0;
    while i < 8 {
        out[i] = g(op, i as u8, "fpu", &[Ev], Fpu);
        i += 1;
    }
    out
}

/// Concatenate const arrays of forms into one.
const fn concat<const N: usize>(parts: &[&[Form]]) -> [Form; N] {
    let mut out = [f(0, "", &[], Plain); N];
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[n] = parts[p][i];
            n += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(n == N, "FORMS length mismatch");
    out
}

const fn count(parts: &[&[Form]]) -> usize {
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        n += parts[p].len();
        p += 1;
    }
    n
}

const PARTS: &[&[Form]] = &[
    &alu_block!(0x00, "add"),
    &[f(0x06, "push", &[Reg(Es)], Stack), f(0x07, "pop", &[Reg(Es)], Stack)],
    &alu_block!(0x08, "or"),
    &[f(0x0e, "push", &[Reg(Cs)], Stack)],
    &alu_block!(0x10, "adc"),
    &[f(0x16, "push", &[Reg(Ss)], Stack), f(0x17, "pop", &[Reg(Ss)], Stack)],
    &alu_block!(0x18, "sbb"),
    &[f(0x1e, "push", &[Reg(Ds)], Stack), f(0x1f, "pop", &[Reg(Ds)], Stack)],
    &alu_block!(0x20, "and"),
    &[f(0x26, "es", &[], Prefix), f(0x27, "daa", &[], Plain)],
    &alu_block!(0x28, "sub"),
    &[f(0x2e, "cs", &[], Prefix), f(0x2f, "das", &[], Plain)],
    &alu_block!(0x30, "xor"),
    &[f(0x36, "ss", &[], Prefix), f(0x37, "aaa", &[], Plain)],
    &alu_block!(0x38, "cmp"),
    &[f(0x3e, "ds", &[], Prefix), f(0x3f, "aas", &[], Plain)],
    &eight!(0x40, "inc", &[Reg(Rv)], Plain),
    &eight!(0x48, "dec", &[Reg(Rv)], Plain),
    &eight!(0x50, "push", &[Reg(Rv)], Stack),
    &eight!(0x58, "pop", &[Reg(Rv)], Stack),
    &[
        f(0x60, "pusha", &[], Stack),
        f(0x61, "popa", &[], Stack),
        f(0x62, "bound", &[Gv, Ma], Plain),
        f(0x63, "arpl", &[Ew, Gw], System),
        f(0x64, "fs", &[], Prefix),
        f(0x65, "gs", &[], Prefix),
        f(0x66, "opsize", &[], Prefix),
        f(0x67, "adsize", &[], Prefix),
        f(0x68, "push", &[Iz], Stack),
        f(0x69, "imul", &[Gv, Ev, Iz], Plain),
        f(0x6a, "push", &[Ib], Stack),
        f(0x6b, "imul", &[Gv, Ev, Ib], Plain),
        f(0x6c, "insb", &[Str], Io),
        f(0x6d, "ins", &[Str], Io),
        f(0x6e, "outsb", &[Str], Io),
        f(0x6f, "outs", &[Str], Io),
    ],
    &cc16(0x70, &JCC, &[Jb], Branch),
    &group8!(0x80, ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"], &[Eb, Ib], Plain),
    &group8!(0x81, ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"], &[Ev, Iz], Plain),
    &group8!(0x82, ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"], &[Eb, Ib], Plain),
    &group8!(0x83, ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"], &[Ev, Ib], Plain),
    &[
        f(0x84, "test", &[Eb, Gb], Plain),
        f(0x85, "test", &[Ev, Gv], Plain),
        f(0x86, "xchg", &[Eb, Gb], Plain),
        f(0x87, "xchg", &[Ev, Gv], Plain),
        f(0x88, "mov", &[Eb, Gb], Plain),
        f(0x89, "mov", &[Ev, Gv], Plain),
        f(0x8a, "mov", &[Gb, Eb], Plain),
        f(0x8b, "mov", &[Gv, Ev], Plain),
        f(0x8c, "mov", &[Ev, Sw], Plain),
        f(0x8d, "lea", &[Gv, M], Plain),
        f(0x8e, "mov", &[Sw, Ew], System),
        g(0x8f, 0, "pop", &[Ev], Stack),
        f(0x90, "nop", &[], Plain),
    ],
    &[
        f(0x91, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x92, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x93, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x94, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x95, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x96, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x97, "xchg", &[Reg(Rv), Reg(EAx)], Plain),
        f(0x98, "cbw", &[], Plain),
        f(0x99, "cwd", &[], Plain),
        f(0x9a, "callf", &[Ap], Far),
        f(0x9b, "fwait", &[], Fpu),
        f(0x9c, "pushf", &[], Stack),
        f(0x9d, "popf", &[], Stack),
        f(0x9e, "sahf", &[], Plain),
        f(0x9f, "lahf", &[], Plain),
        f(0xa0, "mov", &[Reg(Al), Ob], Plain),
        f(0xa1, "mov", &[Reg(EAx), Ov], Plain),
        f(0xa2, "mov", &[Ob, Reg(Al)], Plain),
        f(0xa3, "mov", &[Ov, Reg(EAx)], Plain),
        f(0xa4, "movsb", &[Str], String),
        f(0xa5, "movs", &[Str], String),
        f(0xa6, "cmpsb", &[Str], String),
        f(0xa7, "cmps", &[Str], String),
        f(0xa8, "test", &[Reg(Al), Ib], Plain),
        f(0xa9, "test", &[Reg(EAx), Iz], Plain),
        f(0xaa, "stosb", &[Str], String),
        f(0xab, "stos", &[Str], String),
        f(0xac, "lodsb", &[Str], String),
        f(0xad, "lods", &[Str], String),
        f(0xae, "scasb", &[Str], String),
        f(0xaf, "scas", &[Str], String),
    ],
    &eight!(0xb0, "mov", &[Reg(Rb), Ib], Plain),
    &eight!(0xb8, "mov", &[Reg(Rv), Iv], Plain),
    &shift_group(0xc0, &[Eb, Ib]),
    &shift_group(0xc1, &[Ev, Ib]),
    &[
        f(0xc2, "ret", &[Iw], Branch),
        f(0xc3, "ret", &[], Branch),
        f(0xc4, "les", &[Gv, Mp], System),
        f(0xc5, "lds", &[Gv, Mp], System),
        g(0xc6, 0, "mov", &[Eb, Ib], Plain),
        g(0xc7, 0, "mov", &[Ev, Iz], Plain),
        f(0xc8, "enter", &[Iw, Ib], Stack),
        f(0xc9, "leave", &[], Stack),
        f(0xca, "retf", &[Iw], Far),
        f(0xcb, "retf", &[], Far),
        f(0xcc, "int3", &[], Far),
        f(0xcd, "int", &[Ib], Far),
        f(0xce, "into", &[], Far),
        f(0xcf, "iret", &[], Far),
    ],
    &shift_group(0xd0, &[Eb, One]),
    &shift_group(0xd1, &[Ev, One]),
    &shift_group(0xd2, &[Eb, Reg(Cl)]),
    &shift_group(0xd3, &[Ev, Reg(Cl)]),
    &[
        f(0xd4, "aam", &[Ib], Plain),
        f(0xd5, "aad", &[Ib], Plain),
        f(0xd6, "salc", &[], Plain),
        f(0xd7, "xlat", &[], Plain),
    ],
    &x87(0xd8),
    &x87(0xd9),
    &x87(0xda),
    &x87(0xdb),
    &x87(0xdc),
    &x87(0xdd),
    &x87(0xde),
    &x87(0xdf),
    &[
        f(0xe0, "loopne", &[Jb], Branch),
        f(0xe1, "loope", &[Jb], Branch),
        f(0xe2, "loop", &[Jb], Branch),
        f(0xe3, "jcxz", &[Jb], Branch),
        f(0xe4, "in", &[Reg(Al), Ib], Io),
        f(0xe5, "in", &[Reg(EAx), Ib], Io),
        f(0xe6, "out", &[Ib, Reg(Al)], Io),
        f(0xe7, "out", &[Ib, Reg(EAx)], Io),
        f(0xe8, "call", &[Jz], Branch),
        f(0xe9, "jmp", &[Jz], Branch),
        f(0xea, "jmpf", &[Ap], Far),
        f(0xeb, "jmp", &[Jb], Branch),
        f(0xec, "in", &[Reg(Al), Reg(Dx)], Io),
        f(0xed, "in", &[Reg(EAx), Reg(Dx)], Io),
        f(0xee, "out", &[Reg(Dx), Reg(Al)], Io),
        f(0xef, "out", &[Reg(Dx), Reg(EAx)], Io),
        f(0xf0, "lock", &[], Prefix),
        f(0xf1, "int1", &[], Far),
        f(0xf2, "repne", &[], Prefix),
        f(0xf3, "rep", &[], Prefix),
        f(0xf4, "hlt", &[], System),
        f(0xf5, "cmc", &[], Plain),
    ],
    &[
        g(0xf6, 0, "test", &[Eb, Ib], Plain),
        g(0xf6, 1, "test", &[Eb, Ib], Plain),
        g(0xf6, 2, "not", &[Eb], Plain),
        g(0xf6, 3, "neg", &[Eb], Plain),
        g(0xf6, 4, "mul", &[Eb], Plain),
        g(0xf6, 5, "imul", &[Eb], Plain),
        g(0xf6, 6, "div", &[Eb], Plain),
        g(0xf6, 7, "idiv", &[Eb], Plain),
        g(0xf7, 0, "test", &[Ev, Iz], Plain),
        g(0xf7, 1, "test", &[Ev, Iz], Plain),
        g(0xf7, 2, "not", &[Ev], Plain),
        g(0xf7, 3, "neg", &[Ev], Plain),
        g(0xf7, 4, "mul", &[Ev], Plain),
        g(0xf7, 5, "imul", &[Ev], Plain),
        g(0xf7, 6, "div", &[Ev], Plain),
        g(0xf7, 7, "idiv", &[Ev], Plain),
        f(0xf8, "clc", &[], Plain),
        f(0xf9, "stc", &[], Plain),
        f(0xfa, "cli", &[], System),
        f(0xfb, "sti", &[], System),
        f(0xfc, "cld", &[], Plain),
        f(0xfd, "std", &[], Plain),
        g(0xfe, 0, "inc", &[Eb], Plain),
        g(0xfe, 1, "dec", &[Eb], Plain),
        g(0xff, 0, "inc", &[Ev], Plain),
        g(0xff, 1, "dec", &[Ev], Plain),
        g(0xff, 2, "call", &[Ev], Branch),
        g(0xff, 3, "callf", &[Mp], Far),
        g(0xff, 4, "jmp", &[Ev], Branch),
        g(0xff, 5, "jmpf", &[Mp], Far),
        g(0xff, 6, "push", &[Ev], Stack),
    ],
    // Two-byte opcodes, 0F xx.
    &[
        g(0x100, 0, "sldt", &[Ew], System),
        g(0x100, 1, "str", &[Ew], System),
        g(0x100, 2, "lldt", &[Ew], System),
        g(0x100, 3, "ltr", &[Ew], System),
        g(0x100, 4, "verr", &[Ew], System),
        g(0x100, 5, "verw", &[Ew], System),
        g(0x101, 0, "sgdt", &[Ms], System),
        g(0x101, 1, "sidt", &[Ms], System),
        g(0x101, 2, "lgdt", &[Ms], System),
        g(0x101, 3, "lidt", &[Ms], System),
        g(0x101, 4, "smsw", &[Ew], System),
        g(0x101, 6, "lmsw", &[Ew], System),
        g(0x101, 7, "invlpg", &[M], System),
        f(0x102, "lar", &[Gv, Ew], System),
        f(0x103, "lsl", &[Gv, Ew], System),
        f(0x106, "clts", &[], System),
        f(0x108, "invd", &[], System),
        f(0x109, "wbinvd", &[], System),
        f(0x10a, "vmenter", &[], System),
        f(0x10b, "ud2", &[], Plain),
        f(0x10c, "vcall", &[], System),
        g(0x11f, 0, "nop", &[Ev], Plain),
        f(0x120, "mov", &[Rd, Cd], System),
        f(0x121, "mov", &[Rd, Dd], System),
        f(0x122, "mov", &[Cd, Rd], System),
        f(0x123, "mov", &[Dd, Rd], System),
        f(0x130, "wrmsr", &[], System),
        f(0x131, "rdtsc", &[], System),
        f(0x132, "rdmsr", &[], System),
        f(0x133, "rdpmc", &[], System),
        f(0x134, "sysenter", &[], Far),
        f(0x135, "sysexit", &[], Far),
    ],
    &cc16(0x140, &CMOVCC, &[Gv, Ev], Plain),
    &cc16(0x180, &JCC, &[Jz], Branch),
    &cc16(0x190, &SETCC, &[Eb], Plain),
    &[
        f(0x1a0, "push", &[Reg(Fs)], Stack),
        f(0x1a1, "pop", &[Reg(Fs)], Stack),
        f(0x1a2, "cpuid", &[], System),
        f(0x1a3, "bt", &[Ev, Gv], Plain),
        f(0x1a4, "shld", &[Ev, Gv, Ib], Plain),
        f(0x1a5, "shld", &[Ev, Gv, Reg(Cl)], Plain),
        f(0x1a8, "push", &[Reg(Gs)], Stack),
        f(0x1a9, "pop", &[Reg(Gs)], Stack),
        f(0x1ab, "bts", &[Ev, Gv], Plain),
        f(0x1ac, "shrd", &[Ev, Gv, Ib], Plain),
        f(0x1ad, "shrd", &[Ev, Gv, Reg(Cl)], Plain),
        f(0x1af, "imul", &[Gv, Ev], Plain),
        f(0x1b0, "cmpxchg", &[Eb, Gb], Plain),
        f(0x1b1, "cmpxchg", &[Ev, Gv], Plain),
        f(0x1b2, "lss", &[Gv, Mp], System),
        f(0x1b3, "btr", &[Ev, Gv], Plain),
        f(0x1b4, "lfs", &[Gv, Mp], System),
        f(0x1b5, "lgs", &[Gv, Mp], System),
        f(0x1b6, "movzx", &[Gv, Eb], Plain),
        f(0x1b7, "movzx", &[Gv, Ew], Plain),
        g(0x1ba, 4, "bt", &[Ev, Ib], Plain),
        g(0x1ba, 5, "bts", &[Ev, Ib], Plain),
        g(0x1ba, 6, "btr", &[Ev, Ib], Plain),
        g(0x1ba, 7, "btc", &[Ev, Ib], Plain),
        f(0x1bb, "btc", &[Ev, Gv], Plain),
        f(0x1bc, "bsf", &[Gv, Ev], Plain),
        f(0x1bd, "bsr", &[Gv, Ev], Plain),
        f(0x1be, "movsx", &[Gv, Eb], Plain),
        f(0x1bf, "movsx", &[Gv, Ew], Plain),
        f(0x1c0, "xadd", &[Eb, Gb], Plain),
        f(0x1c1, "xadd", &[Ev, Gv], Plain),
        g(0x1c7, 1, "cmpxchg8b", &[Mq], Plain),
    ],
    &eight!(0x1c8, "bswap", &[Reg(Rv)], Plain),
];

/// Every opcode form the decoder accepts, in opcode order.
pub static FORMS: [Form; count(PARTS)] = concat::<{ count(PARTS) }>(PARTS);

/// Per-opcode decoding facts derived from [`FORMS`] at compile time.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo {
    /// Index of the form in [`FORMS`] (first of the group for group opcodes); `u16::MAX`
    /// when the opcode is undefined (#UD).
    pub form: u16,
    /// A ModR/M byte follows.
    pub modrm: bool,
    /// `reg` selects among several forms (a group); see [`group_form`].
    pub group: bool,
}

const NONE: OpInfo = OpInfo { form: u16::MAX, modrm: false, group: false };

const fn uses_modrm(ops: &[Operand]) -> bool {
    let mut i = 0;
    while i < ops.len() {
        match ops[i] {
            Eb | Ev | Ew | Ed | Gb | Gv | Gw | Sw | Cd | Dd | Rd | M | Mp | Ma | Ms | Mq => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

const fn build_info() -> [OpInfo; 512] {
    let mut t = [NONE; 512];
    let mut i = 0;
    while i < FORMS.len() {
        let fm = &FORMS[i];
        let op = fm.opcode as usize;
        if t[op].form == u16::MAX {
            t[op] = OpInfo { form: i as u16, modrm: uses_modrm(fm.operands), group: fm.group_reg.is_some() };
        }
        i += 1;
    }
    t
}

/// Decoding facts per opcode, indexed like [`Form::opcode`].
pub static OPINFO: [OpInfo; 512] = build_info();

const fn build_groups() -> [u16; 512 * 8] {
    let mut t = [u16::MAX; 512 * 8];
    let mut i = 0;
    while i < FORMS.len() {
        let fm = &FORMS[i];
        if let Some(r) = fm.group_reg {
            t[fm.opcode as usize * 8 + r as usize] = i as u16;
        }
        i += 1;
    }
    t
}

static GROUPS: [u16; 512 * 8] = build_groups();

/// The form of group opcode `opcode` selected by ModR/M `reg`, if defined.
#[inline]
pub fn group_form(opcode: u16, reg: u8) -> Option<u16> {
    let f = GROUPS[opcode as usize * 8 + (reg & 7) as usize];
    (f != u16::MAX).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_sorted_and_unique() {
        for w in FORMS.windows(2) {
            let a = (w[0].opcode, w[0].group_reg.unwrap_or(0));
            let b = (w[1].opcode, w[1].group_reg.unwrap_or(0));
            assert!(a < b, "{:?} then {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn group_opcodes_are_groups_everywhere() {
        for fm in FORMS.iter() {
            assert_eq!(OPINFO[fm.opcode as usize].group, fm.group_reg.is_some(), "{fm:?}");
        }
    }
}
