//! What the comparison ignores, and why: flags and results the SDM calls undefined (each
//! rule cites the instruction's page in SDM Vol. 2, "Flags Affected" unless said otherwise),
//! and results that are machine-specific.

use super::gen::{Case, EAX, EBX, ECX, EDX, REGION, SCR};

pub const CF: u32 = 0x1;
pub const PF: u32 = 0x4;
pub const AF: u32 = 0x10;
pub const ZF: u32 = 0x40;
pub const SF: u32 = 0x80;
pub const OF: u32 = 0x800;
pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;

/// One masking rule: its name, what it masks, and the citation.
pub struct Rule {
    pub id: &'static str,
    pub masks: &'static str,
    pub cite: &'static str,
}

pub static RULES: &[Rule] = &[
    Rule { id: "logic-af", masks: "AF after AND, OR, XOR, TEST", cite: "SDM Vol. 2 AND/OR/XOR/TEST, Flags Affected: \"The state of the AF flag is undefined\"" },
    Rule { id: "shift-of", masks: "OF after SAL/SHL/SHR/SAR when the masked count is not 1", cite: "SDM Vol. 2 SAL/SAR/SHL/SHR, Flags Affected: \"The OF flag is affected only on 1-bit shifts... otherwise it is undefined\"" },
    Rule { id: "shift-af", masks: "AF after SAL/SHL/SHR/SAR with a nonzero count", cite: "SDM Vol. 2 SAL/SAR/SHL/SHR, Flags Affected: \"For a non-zero count, the AF flag is undefined\"" },
    Rule { id: "shift-cf", masks: "CF after SHL/SHR with a count >= the operand size", cite: "SDM Vol. 2 SAL/SAR/SHL/SHR, Flags Affected: CF \"is undefined for SHL and SHR instructions where the count is greater than or equal to the size (in bits) of the destination operand\"" },
    Rule { id: "rot-of", masks: "OF after ROL/ROR/RCL/RCR when the masked count is not 1", cite: "SDM Vol. 2 RCL/RCR/ROL/ROR, Flags Affected: \"The OF flag is defined only for the 1-bit rotates; it is undefined in all other cases\"" },
    Rule { id: "mul", masks: "SF ZF AF PF after MUL", cite: "SDM Vol. 2 MUL, Flags Affected: \"The SF, ZF, AF, and PF flags are undefined\"" },
    Rule { id: "imul", masks: "SF ZF AF PF after IMUL", cite: "SDM Vol. 2 IMUL, Flags Affected: \"The SF, ZF, AF, and PF flags are undefined\"" },
    Rule { id: "div", masks: "CF OF SF ZF AF PF after DIV/IDIV", cite: "SDM Vol. 2 DIV/IDIV, Flags Affected: \"The CF, OF, SF, ZF, AF, and PF flags are undefined\"" },
    Rule { id: "bsf", masks: "CF OF SF AF PF after BSF/BSR; the destination when the source is 0", cite: "SDM Vol. 2 BSF/BSR: \"If the content of the source operand is 0, the content of the destination operand is undefined\"; Flags Affected: \"The CF, OF, SF, AF, and PF flags are undefined\"" },
    Rule { id: "bt", masks: "OF SF AF PF after BT/BTS/BTR/BTC", cite: "SDM Vol. 2 BT/BTC/BTR/BTS, Flags Affected: \"The OF, SF, AF, and PF flags are undefined\"" },
    Rule { id: "shld", masks: "AF after SHLD/SHRD with nonzero count; OF when count != 1; destination and all flags when count > operand size", cite: "SDM Vol. 2 SHLD/SHRD: \"If the count operand is greater than the operand size, the result is undefined\"; Flags Affected: \"For a 1-bit shift, the OF flag is set if a sign change occurred; otherwise, it is cleared. For shifts greater than 1 bit, the OF flag is undefined... The AF flag is undefined\"; when count > operand size \"the flags are undefined\"" },
    Rule { id: "aaa", masks: "OF SF ZF PF after AAA/AAS", cite: "SDM Vol. 2 AAA/AAS, Flags Affected: \"The OF, SF, ZF, and PF flags are undefined\"" },
    Rule { id: "daa", masks: "OF after DAA/DAS", cite: "SDM Vol. 2 DAA/DAS, Flags Affected: \"The OF flag is undefined\"" },
    Rule { id: "aam", masks: "OF AF CF after AAM/AAD", cite: "SDM Vol. 2 AAM/AAD, Flags Affected: \"The OF, AF, and CF flags are undefined\"" },
    Rule { id: "smsw", masks: "the high 16 bits of a 32-bit register destination of SMSW", cite: "SDM Vol. 2 SMSW: \"the high-order 16 bits of register are undefined\" (32-bit register destination, non-64-bit modes)" },
    Rule { id: "push-sreg", masks: "the upper 2 bytes of the stack slot of PUSH Sreg with a 32-bit operand size", cite: "SDM Vol. 2 PUSH: \"If the source operand is a segment register (16 bits) and the operand size is 32-bits, either a zero-extended value is pushed on the stack or the segment selector is written on the stack using a 16-bit move\"" },
    Rule { id: "bswap16", masks: "the destination of BSWAP with a 16-bit operand size", cite: "SDM Vol. 2 BSWAP: \"When the BSWAP instruction references a 16-bit register, the result is undefined\"" },
    Rule { id: "fcomi", masks: "OF SF AF after FCOMI/FCOMIP/FUCOMI/FUCOMIP", cite: "QEMU vs SDM: SDM Vol. 2 FCOMI/FCOMIP/FUCOMI/FUCOMIP: \"set the OF, SF and AF flags to zero\"; QEMU 7.2 leaves them (README \"QEMU vs SDM\")" },
    Rule { id: "cpuid", masks: "EAX EBX ECX EDX after CPUID", cite: "machine-specific (the model's identification), not architectural" },
    Rule { id: "rdtsc", masks: "EAX EDX after RDTSC", cite: "machine-specific (the time-stamp counter)" },
];

#[derive(Clone, Default)]
pub struct Mask {
    /// EFLAGS bits ignored.
    pub flags: u32,
    /// Per-register bits ignored.
    pub regs: [u32; 8],
    /// Region bytes ignored.
    pub mem: Vec<usize>,
    /// The rules applied (ids into [`RULES`]).
    pub rules: Vec<&'static str>,
}

impl Mask {
    fn add(&mut self, id: &'static str, flags: u32) {
        self.flags |= flags;
        if !self.rules.contains(&id) {
            self.rules.push(id);
        }
    }
    fn mem_range(&mut self, addr: u32, len: u32) {
        for a in addr..addr + len {
            if a >= SCR && a < SCR + REGION as u32 {
                self.mem.push((a - SCR) as usize);
            }
        }
    }
}

/// The mask of one case. `imm` is the immediate bytes, `modrm` the ModR/M byte.
pub fn mask_for(c: &Case, op32: bool, is_mem: bool, ea: u32, modrm: Option<u8>, imm: &[u8]) -> Mask {
    let mut m = Mask::default();
    let f = c.form();
    let op = f.opcode;
    let g = f.group_reg;
    let opsz: u32 = if op32 { 4 } else { 2 };
    let rm = modrm.map(|m| (m & 7) as usize).unwrap_or(0);
    let reg = modrm.map(|m| ((m >> 3) & 7) as usize).unwrap_or(0);
    let byte_form = op & 1 == 0 && op < 0x100;
    // a register/memory operand's value, as the case starts
    let rm_val = |size: u32| -> u32 {
        if is_mem {
            if ea >= SCR && ea + size <= SCR + REGION as u32 {
                let mut v = 0;
                for k in 0..size {
                    v |= (c.mem[(ea - SCR + k) as usize] as u32) << (8 * k);
                }
                v
            } else {
                1
            }
        } else {
            match size {
                1 => {
                    if rm < 4 {
                        c.regs[rm] & 0xff
                    } else {
                        (c.regs[rm - 4] >> 8) & 0xff
                    }
                }
                2 => c.regs[rm] & 0xffff,
                _ => c.regs[rm],
            }
        }
    };
    match (op, g) {
        (0x20..=0x25 | 0x08..=0x0d | 0x30..=0x35 | 0x84 | 0x85 | 0xa8 | 0xa9, None)
        | (0x80..=0x83, Some(1 | 4 | 6))
        | (0xf6 | 0xf7, Some(0 | 1)) => m.add("logic-af", AF),
        (0xc0 | 0xc1 | 0xd0 | 0xd1 | 0xd2 | 0xd3, Some(r)) => {
            let count = match op {
                0xc0 | 0xc1 => imm[0] as u32,
                0xd0 | 0xd1 => 1,
                _ => c.regs[ECX] & 0xff,
            } & 0x1f;
            let size = if op & 1 == 0 { 8 } else { opsz * 8 };
            if count != 0 {
                if r < 4 {
                    if count != 1 {
                        m.add("rot-of", OF);
                    }
                } else {
                    if count != 1 {
                        m.add("shift-of", OF);
                    }
                    m.add("shift-af", AF);
                    if (r == 4 || r == 5 || r == 6) && count >= size {
                        m.add("shift-cf", CF);
                    }
                }
            }
        }
        (0xf6 | 0xf7, Some(4)) => m.add("mul", SF | ZF | AF | PF),
        (0xf6 | 0xf7, Some(5)) | (0x69 | 0x6b | 0x1af, None) => m.add("imul", SF | ZF | AF | PF),
        (0xf6 | 0xf7, Some(6 | 7)) => m.add("div", ARITH),
        (0x1bc | 0x1bd, None) => {
            m.add("bsf", CF | OF | SF | AF | PF);
            if rm_val(opsz) == 0 {
                m.regs[reg] |= if op32 { 0xffff_ffff } else { 0xffff };
                // ZF is defined (set) in that case
            }
        }
        (0x1a3 | 0x1ab | 0x1b3 | 0x1bb, None) | (0x1ba, Some(_)) => m.add("bt", OF | SF | AF | PF),
        (0x1a4 | 0x1a5 | 0x1ac | 0x1ad, None) => {
            let count = if op & 1 == 0 { imm[0] as u32 } else { c.regs[ECX] & 0xff } & 0x1f;
            if count != 0 {
                m.add("shld", AF);
                if count != 1 {
                    m.add("shld", OF);
                }
                if count > opsz * 8 {
                    m.add("shld", ARITH);
                    if is_mem {
                        m.mem_range(ea, opsz);
                    } else {
                        m.regs[rm] |= if op32 { 0xffff_ffff } else { 0xffff };
                    }
                }
            }
        }
        (0x37 | 0x3f, None) => m.add("aaa", OF | SF | ZF | PF),
        (0x27 | 0x2f, None) => m.add("daa", OF),
        (0xd4 | 0xd5, None) => m.add("aam", OF | AF | CF),
        (0x101, Some(4)) if !is_mem && op32 => {
            m.regs[rm] |= 0xffff_0000;
            m.add("smsw", 0);
        }
        (0x06 | 0x0e | 0x16 | 0x1e | 0x1a0 | 0x1a8, None) if op32 => {
            let sp = if c.mode.code32() { c.regs[4] } else { c.regs[4] & 0xffff };
            m.mem_range(sp.wrapping_sub(2), 2);
            m.add("push-sreg", 0);
        }
        (0x1c8..=0x1cf, None) if !op32 => {
            m.regs[(op & 7) as usize] = 0xffff_ffff;
            m.add("bswap16", 0);
        }
        (0xdb | 0xdf, Some(5 | 6)) if !is_mem => {
            m.add("fcomi", OF | SF | AF);
        }
        (0x1a2, None) => {
            for r in [EAX, EBX, ECX, EDX] {
                m.regs[r] = 0xffff_ffff;
            }
            m.add("cpuid", 0);
        }
        (0x131, None) => {
            m.regs[EAX] = 0xffff_ffff;
            m.regs[EDX] = 0xffff_ffff;
            m.add("rdtsc", 0);
        }
        _ => {}
    }
    let _ = byte_form;
    m
}
