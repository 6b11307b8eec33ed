//! CR4.PSI, "privileged sensitive instructions": the first change of the V386 extension
//! (docs/v386.md §3). With the bit set, each sensitive instruction that the classic x86
//! lets run outside ring 0 (Robin and Irvine's list, docs/v386.md Table 3-2) raises #GP(0)
//! at CPL > 0 instead, so a trap-and-emulate VMM sees every one of them.
//!
//! The check runs after decoding and before the instruction touches anything (§3.2), in
//! [`Cpu::execute`](super::Cpu) ahead of the opcode dispatch. Encodings that are #UD in
//! the current mode (SLDT, STR, LAR, LSL, VERR, VERW in V86 mode; MOV to CS or with a
//! segment register 6 or 7 in any mode) keep their #UD, and the segment-register forms
//! are sensitive in protected mode only: in V86 mode a selector is a paragraph number and
//! reveals nothing.

use super::decode::Instr;
use super::Cpu;

/// Whether `i` is in Table 3-2 of docs/v386.md for the CPU's current mode.
fn in_table(cpu: &Cpu, i: &Instr) -> bool {
    let protected = cpu.pmode() && !cpu.v86();
    let reg = i.reg();
    match i.opcode {
        // SGDT, SIDT, SMSW (0F 01 /0, /1, /4): in every mode.
        0x101 => matches!(reg, 0 | 1 | 4),
        // SLDT, STR, VERR, VERW (0F 00 /0, /1, /4, /5) and LAR, LSL (0F 02, 0F 03): #UD
        // outside protected mode comes first.
        0x100 => protected && matches!(reg, 0 | 1 | 4 | 5),
        0x102 | 0x103 => protected,
        // PUSHF, POPF, IRET; INT n, INT3 (every mode); INTO only when it would trap. OF
        // through `of()`: the arithmetic flags are lazy, `flags.bits` lacks them after an
        // ADD or SUB, so testing the bit there missed INTO after an overflowing result.
        0x9c | 0x9d | 0xcf | 0xcc | 0xcd => true,
        0xce => cpu.flags.of(),
        // PUSH/POP Sreg, MOV to and from Sreg, LDS/LES/LSS/LFS/LGS, far CALL/JMP/RET.
        0x06 | 0x0e | 0x16 | 0x1e | 0x07 | 0x17 | 0x1f | 0x1a0 | 0x1a1 | 0x1a8 | 0x1a9 => protected,
        // MOV from/to Sreg only with a segment register that exists (ES..GS; not CS as a
        // destination): the others are #UD, which keeps priority (§3.2). The far-pointer
        // loads with a register operand are #UD in the decoder already.
        0x8c => protected && reg <= 5,
        0x8e => protected && reg <= 5 && reg != 1,
        0xc4 | 0xc5 | 0x1b2 | 0x1b4 | 0x1b5 => protected,
        0x9a | 0xea | 0xca | 0xcb => protected,
        0xff => protected && matches!(reg, 3 | 5),
        _ => false,
    }
}

impl Cpu {
    /// CR4.PSI is set, CPL > 0 and `i` is a sensitive instruction: it must raise #GP(0)
    /// before doing anything (docs/v386.md §3.2).
    #[inline(always)]
    pub(crate) fn psi_faults(&self, i: &Instr) -> bool {
        self.cr4 & super::cr4::PSI != 0 && self.cpl > 0 && in_table(self, i)
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::FlatBus;
    use crate::cpu::exception::Exception;
    use crate::cpu::{cr4, Cpu, Fault};

    /// Run the first instruction of `code` at CPL `cpl` in flat 32-bit protected mode
    /// with CR4.PSI as given; the result of that one step.
    fn step_at(code: &[u8], cpl: u8, psi: bool) -> Result<(), Fault> {
        let mut bus = FlatBus::new(1 << 20);
        bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(code);
        let mut c = Cpu::new();
        c.start_flat32(0x1000, 0x8000);
        c.cpl = cpl;
        if psi {
            c.cr4 |= cr4::PSI;
        }
        c.step(&mut bus)
    }

    const GP0: Result<(), Fault> = Err(Fault::Exc(Exception::GP(0)));

    #[test]
    fn every_sensitive_instruction_faults_at_cpl3_with_psi() {
        let cases: &[(&str, &[u8])] = &[
            ("sgdt [0x2000]", &[0x0f, 0x01, 0x05, 0x00, 0x20, 0x00, 0x00]),
            ("sidt [0x2000]", &[0x0f, 0x01, 0x0d, 0x00, 0x20, 0x00, 0x00]),
            ("smsw eax", &[0x0f, 0x01, 0xe0]),
            ("sldt eax", &[0x0f, 0x00, 0xc0]),
            ("str eax", &[0x0f, 0x00, 0xc8]),
            ("verr ax", &[0x0f, 0x00, 0xe0]),
            ("verw ax", &[0x0f, 0x00, 0xe8]),
            ("lar eax, eax", &[0x0f, 0x02, 0xc0]),
            ("lsl eax, eax", &[0x0f, 0x03, 0xc0]),
            ("pushfd", &[0x9c]),
            ("popfd", &[0x9d]),
            ("push cs", &[0x0e]),
            ("push ds", &[0x1e]),
            ("pop ds", &[0x1f]),
            ("push fs", &[0x0f, 0xa0]),
            ("pop gs", &[0x0f, 0xa9]),
            ("mov eax, cs", &[0x8c, 0xc8]),
            ("mov ds, ax", &[0x8e, 0xd8]),
            ("lds eax, [0x2000]", &[0xc5, 0x05, 0x00, 0x20, 0x00, 0x00]),
            ("lss eax, [0x2000]", &[0x0f, 0xb2, 0x05, 0x00, 0x20, 0x00, 0x00]),
            ("call far 8:0", &[0x9a, 0, 0, 0, 0, 8, 0]),
            ("jmp far 8:0", &[0xea, 0, 0, 0, 0, 8, 0]),
            ("call far [eax]", &[0xff, 0x18]),
            ("jmp far [eax]", &[0xff, 0x28]),
            ("retf", &[0xcb]),
            ("retf 4", &[0xca, 4, 0]),
            ("iretd", &[0xcf]),
            ("int 0x80", &[0xcd, 0x80]),
            ("int3", &[0xcc]),
        ];
        for (name, code) in cases {
            assert_eq!(step_at(code, 3, true), GP0, "{name} at CPL 3 with PSI");
            assert_eq!(step_at(code, 1, true), GP0, "{name} at CPL 1 with PSI");
        }
    }

    #[test]
    fn without_psi_or_at_cpl0_they_run() {
        // SGDT and PUSH CS at CPL 3 without PSI: they run, which is the classic x86's hole.
        assert_eq!(step_at(&[0x0f, 0x01, 0x05, 0x00, 0x20, 0x00, 0x00], 3, false), Ok(()));
        assert_eq!(step_at(&[0x0e], 3, false), Ok(()));
        // With PSI at CPL 0, nothing changes.
        assert_eq!(step_at(&[0x0f, 0x01, 0x05, 0x00, 0x20, 0x00, 0x00], 0, true), Ok(()));
        assert_eq!(step_at(&[0x9c], 0, true), Ok(()));
    }

    #[test]
    fn cpuid_advertises_psi_in_the_v386_leaves() {
        let c = Cpu::new();
        let [max, sig, _, _] = c.cpuid(crate::cpu::cpuid::V386_LEAF);
        assert_eq!((max, sig.to_le_bytes()), (0x8386_0001, *b"V386"));
        assert_eq!(c.cpuid(0x8386_0001)[3] & 1, 1);
    }

    /// Run `steps` instructions of `code` at CPL `cpl` with CR4.PSI as given; the result
    /// of the last step (the earlier ones must succeed).
    fn run_at(code: &[u8], steps: usize, cpl: u8, psi: bool) -> Result<(), Fault> {
        let mut bus = FlatBus::new(1 << 20);
        bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(code);
        let mut c = Cpu::new();
        c.start_flat32(0x1000, 0x8000);
        c.cpl = cpl;
        if psi {
            c.cr4 |= cr4::PSI;
        }
        for n in 1..steps {
            assert_eq!(c.step(&mut bus), Ok(()), "step {n} of {code:02x?}");
        }
        c.step(&mut bus)
    }

    #[test]
    fn into_faults_when_an_arithmetic_result_set_of() {
        // mov al, 0x7f ; add al, 1 (OF = 1, held lazily) ; into. The check must see the
        // computed OF, not EFLAGS' stored bits (flags.rs keeps arithmetic flags lazy).
        let code = [0xb0, 0x7f, 0x04, 0x01, 0xce];
        assert_eq!(run_at(&code, 3, 3, true), GP0, "into after an overflowing add, CPL 3");
        assert_eq!(run_at(&code, 3, 1, true), GP0, "into after an overflowing add, CPL 1");
        // mov al, 0x7e ; add al, 1 (OF = 0) ; into: not sensitive, nothing happens.
        assert_eq!(run_at(&[0xb0, 0x7e, 0x04, 0x01, 0xce], 3, 3, true), Ok(()));
    }

    #[test]
    fn invalid_segment_register_encodings_keep_their_ud() {
        // §3.2: #UD for an invalid encoding comes before the PSI check. MOV to CS and the
        // reserved segment registers 6 and 7 are #UD in every mode (SDM Vol. 2B "MOV").
        let ud: Result<(), Fault> = Err(Fault::Exc(Exception::UD));
        let cases: &[(&str, &[u8])] = &[
            ("mov cs, ax", &[0x8e, 0xc8]),
            ("mov sreg6, ax", &[0x8e, 0xf0]),
            ("mov sreg7, ax", &[0x8e, 0xf8]),
            ("mov ax, sreg6", &[0x8c, 0xf0]),
            ("mov [0x2000], sreg7", &[0x8c, 0x3d, 0x00, 0x20, 0x00, 0x00]),
        ];
        for (name, code) in cases {
            for cpl in [3, 1] {
                assert_eq!(step_at(code, cpl, true), ud, "{name} at CPL {cpl} with PSI");
            }
            assert_eq!(step_at(code, 3, false), ud, "{name} at CPL 3 without PSI");
        }
        // The valid neighbours still fault: mov ax, gs (8C /5) and mov ss, ax (8E /2).
        assert_eq!(step_at(&[0x8c, 0xe8], 3, true), GP0);
        assert_eq!(step_at(&[0x8e, 0xd0], 3, true), GP0);
    }

    #[test]
    fn other_instructions_and_into_without_overflow_are_not_sensitive() {
        // add eax, ebx ; push eax ; into (OF = 0) ; mov eax, [0x2000]
        for code in [&[0x01, 0xd8][..], &[0x50], &[0xce], &[0xa1, 0x00, 0x20, 0x00, 0x00]] {
            assert_eq!(step_at(code, 3, true), Ok(()), "{code:02x?}");
        }
    }
}
