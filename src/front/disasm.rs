//! Disassembly for the exit log: the instruction bytes an exit record carries, formatted
//! by iced-x86's decoder and its fast formatter (Intel syntax, masm-style memory operands:
//! `dword ptr [ebx]`). The fast formatter rather than the nasm one: the exits' instructions
//! (port I/O, HLT, CPUID, MSRs) read the same in both, and it costs 100 KB less of .wasm
//! (measured: decoder + nasm formatter 255 KB, decoder + fast formatter 156 KB).
//! Front ends call [`disassemble`] or [`disassemble_record`]; the wasm façade exports them
//! to the page (`Vmm.disassembleRecords`).

use crate::vmm::log::ExitRecord;
use alloc::string::String;
use iced_x86::{Decoder, DecoderOptions, FastFormatter};

/// `bytes` as one instruction of `bitness`-bit code (16 or 32; anything else is taken as
/// 32) at `ip`, in Intel syntax: "out dx, al", "cpuid". Empty bytes give "" (an exit without
/// an instruction: a timer or an interrupt); bytes that are no valid instruction give
/// "(bad)"; bytes past the first instruction are ignored. V386's own two instructions,
/// which no x86 disassembler knows, are named here: `0F 0A` VMENTER and `0F 0C` VCALL
/// (docs/v386.md §7, no ModR/M byte).
///
/// `ip` only matters for near branches, whose targets are shown as `ip` + length +
/// displacement, wrapped to 16 bits in 16-bit code.
pub fn disassemble(bytes: &[u8], ip: u32, bitness: u32) -> String {
    let mut out = String::new();
    if bytes.is_empty() {
        return out;
    }
    let bitness = if bitness == 16 { 16 } else { 32 };
    let mut decoder = Decoder::with_ip(bitness, bytes, u64::from(ip), DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        out.push_str(match bytes {
            [0x0f, 0x0a, ..] => "vmenter",
            [0x0f, 0x0c, ..] => "vcall",
            _ => "(bad)",
        });
        return out;
    }
    let mut f = FastFormatter::new();
    // Hex as 0x… in lower case, like the log's other columns.
    f.options_mut().set_use_hex_prefix(true);
    f.options_mut().set_uppercase_hex(false);
    f.options_mut().set_space_after_operand_separator(true);
    // The access size of a memory operand matters for a nested-page-fault exit.
    f.options_mut().set_always_show_memory_size(true);
    f.format(&instr, &mut out);
    out
}

/// The instruction of exit record `r`. The record keeps the linear address (CS base +
/// EIP); in 16-bit code the low 16 bits stand in for IP, exact when CS's base is a
/// multiple of 64 KiB (near-branch targets are the only thing it changes).
pub fn disassemble_record(r: &ExitRecord) -> String {
    let ip = if r.bitness() == 16 { r.guest_eip & 0xffff } else { r.guest_eip };
    disassemble(r.instr(), ip, r.bitness())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_disassemble_in_intel_syntax() {
        assert_eq!(disassemble(&[0xee], 0, 16), "out dx, al");
        assert_eq!(disassemble(&[0xe6, 0xe9], 0, 32), "out 0xe9, al");
        assert_eq!(disassemble(&[0x0f, 0xa2], 0, 32), "cpuid");
        assert_eq!(disassemble(&[0xf4], 0, 16), "hlt");
        assert_eq!(disassemble(&[0x0f, 0x32], 0, 32), "rdmsr");
        // The operand size follows the code: 66 ED is `in eax, dx` in 16-bit code.
        assert_eq!(disassemble(&[0x66, 0xed], 0, 16), "in eax, dx");
        assert_eq!(disassemble(&[0x66, 0xed], 0, 32), "in ax, dx");
        assert_eq!(disassemble(&[0x0f, 0x01, 0xd8], 0, 32), "vmrun");
        assert_eq!(disassemble(&[], 0, 32), "");
        assert_eq!(disassemble(&[0x0f, 0xff], 0, 32), "(bad)");
        assert_eq!(disassemble(&[0x0f, 0x0c], 0, 32), "vcall");
        assert_eq!(disassemble(&[0x0f, 0x0a], 0, 16), "vmenter");
        // A near jump in 16-bit code wraps at 64 KiB.
        assert_eq!(disassemble(&[0xeb, 0xfe], 0xfff0, 16), "jmp 0xfff0");
        assert_eq!(disassemble(&[0x8b, 0x03], 0, 32), "mov eax, dword ptr [ebx]");
    }
}
