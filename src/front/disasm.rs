//! Disassembly for the exit log: the instruction bytes an exit record carries, formatted
//! in nasm syntax by iced-x86's decoder and formatter (the same syntax as the guests in
//! `tests/guests/`). Front ends call [`disassemble`] or [`disassemble_record`]; the wasm
//! façade exports them to the page (`Vmm.disassembleRecords`).

use crate::vmm::log::ExitRecord;
use alloc::string::String;
use iced_x86::{Decoder, DecoderOptions, Formatter, NasmFormatter};

/// `bytes` as one instruction of `bitness`-bit code (16 or 32; anything else is taken as
/// 32) at `ip`, in nasm syntax: "out dx, al", "cpuid". Empty bytes give "" (an exit without
/// an instruction: a timer or an interrupt); bytes that are no valid instruction give
/// "(bad)"; bytes past the first instruction are ignored.
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
        out.push_str("(bad)");
        return out;
    }
    let mut f = NasmFormatter::new();
    // Register and mnemonic case as in the nasm sources; hex as 0x… like the log's columns.
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.options_mut().set_space_after_operand_separator(true);
    f.options_mut().set_uppercase_hex(false);
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
    fn exits_disassemble_in_nasm_syntax() {
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
        // A near jump in 16-bit code wraps at 64 KiB.
        assert_eq!(disassemble(&[0xeb, 0xfe], 0xfff0, 16), "jmp short 0xfff0");
    }
}
