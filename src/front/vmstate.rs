//! A VM's processor state as the live view's register panel shows it: rows of (group,
//! name, text), so a page can lay them out and highlight what changed by comparing text.
//! Built from the VM's control block (the guest-state area as the last exit left it)
//! and, when the VM is paused at one, the exit it has not handled yet.

use super::disasm::disassemble;
use crate::cpu::v386::ExitReason;
use crate::cpu::{cr0, flags, Seg, CS};
use crate::vmm::log::code_info;
use crate::vmm::{Vm, VmExit};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One line of the register view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// "gpr", "seg", "ctrl" or "exit".
    pub group: &'static str,
    pub name: &'static str,
    pub value: String,
}

const GPR: [&str; 8] = ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI"];
const SEGS: [&str; 6] = ["ES", "CS", "SS", "DS", "FS", "GS"];
/// EFLAGS bits by name, in the order a debugger lists them.
const FLAGS: [(u32, &str); 14] = [
    (flags::CF, "CF"),
    (flags::PF, "PF"),
    (flags::AF, "AF"),
    (flags::ZF, "ZF"),
    (flags::SF, "SF"),
    (flags::TF, "TF"),
    (flags::IF, "IF"),
    (flags::DF, "DF"),
    (flags::OF, "OF"),
    (flags::NT, "NT"),
    (flags::RF, "RF"),
    (flags::VM, "VM"),
    (flags::AC, "AC"),
    (flags::ID, "ID"),
];

/// The set EFLAGS bits by name, and IOPL: "IF ZF IOPL=0".
pub fn flag_names(eflags: u32) -> String {
    let mut s: Vec<&str> = FLAGS.iter().filter(|(b, _)| eflags & b != 0).map(|(_, n)| *n).collect();
    let iopl = format!("IOPL={}", (eflags & flags::IOPL) >> 12);
    s.push(&iopl);
    s.join(" ")
}

/// A segment register: selector, base, limit, access byte and D/B ("32" or "16").
fn seg(s: &Seg) -> String {
    format!("{:04x} base {:08x} lim {:08x} {:02x} {}", s.sel, s.base, s.limit, s.access, if s.big() { 32 } else { 16 })
}

/// The rows of VM `vm`'s state; `pending` is its exit not handled yet, if it is paused at one.
pub fn rows(vm: &Vm, pending: Option<VmExit>) -> Vec<Row> {
    let g = &vm.vcb.guest;
    let mut out = Vec::new();
    let mut row = |group, name, value: String| out.push(Row { group, name, value });
    for (n, v) in GPR.iter().zip(g.regs) {
        row("gpr", n, format!("{v:08x}"));
    }
    row("gpr", "EIP", format!("{:08x}", g.eip));
    row("gpr", "EFLAGS", format!("{:08x}", g.eflags));
    row("gpr", "flags", flag_names(g.eflags));
    for (n, s) in SEGS.iter().zip(&g.segs) {
        row("seg", n, seg(s));
    }
    row("seg", "LDTR", seg(&g.ldtr));
    row("seg", "TR", seg(&g.tr));
    row("seg", "GDTR", format!("base {:08x} limit {:04x}", g.gdtr.base, g.gdtr.limit));
    row("seg", "IDTR", format!("base {:08x} limit {:04x}", g.idtr.base, g.idtr.limit));
    row("ctrl", "CR0", format!("{:08x}", g.cr0));
    row("ctrl", "CR2", format!("{:08x}", g.cr2));
    row("ctrl", "CR3", format!("{:08x}", g.cr3));
    row("ctrl", "CR4", format!("{:08x}", g.cr4));
    row("ctrl", "CPL", g.cpl.to_string());
    let mode = match (g.cr0 & cr0::PE != 0, g.eflags & flags::VM != 0, g.segs[CS as usize].big()) {
        (false, _, _) => "real",
        (true, true, _) => "virtual-8086",
        (true, false, false) => "protected, 16-bit code",
        (true, false, true) => "protected, 32-bit code",
    };
    let paging = if g.cr0 & cr0::PG != 0 { ", paging" } else { "" };
    row("ctrl", "mode", format!("{mode}{paging}"));
    row("ctrl", "activity", if g.activity == 1 { "HLT".into() } else { "active".into() });
    row("ctrl", "interrupt", format!("{:02x}", g.interruptibility));
    let x = &vm.vcb.exit;
    let reason = ExitReason::from_number(x.reason).map(|r| r.name()).unwrap_or("?");
    row("exit", "state", if pending.is_some() { "pending (not handled yet)".into() } else { "handled".into() });
    row("exit", "reason", format!("{reason} ({})", x.reason & 0xffff));
    row("exit", "qual", format!("{:x}", x.qualification));
    let len = (x.instr_len as usize).min(15);
    let bytes: Vec<String> = x.instr_bytes[..len].iter().map(|b| format!("{b:02x}")).collect();
    row("exit", "bytes", bytes.join(" "));
    // The instruction at the exit: in the guest state EIP still points at it while the
    // exit is pending (exits are fault-like).
    let bitness = if code_info(g) & crate::vmm::log::info::CODE32 != 0 { 32 } else { 16 };
    row("exit", "instr", disassemble(&x.instr_bytes[..len], g.eip, bitness));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_by_name() {
        assert_eq!(flag_names(0x0000_3246), "PF ZF IF IOPL=3");
        assert_eq!(flag_names(0x0002_0002), "VM IOPL=0");
    }
}
