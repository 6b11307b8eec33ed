//! A VM's processor state as the live view's register panel shows it: rows of (group,
//! name, text), so a page can lay them out and highlight what changed by comparing text.
//! Built from the VM's processor state between turns (`Vm::processor_state`: the control
//! block's guest-state area on V386, the monitor's world under the software monitor) and,
//! when the VM is paused at one, the exit it has not handled yet. A VM under the software
//! monitor (techniques 2–4) has no VCB exit: its registers are the real ones at ring 1,
//! so it also gets the privileged state as the guest believes it to be (the monitor's
//! virtual CR0–CR4, GDTR, IDTR, LDTR, TR, IF and IOPL) and the monitor's counters, and
//! its "exit" rows show the last trap logged for it.

use super::disasm::disassemble;
use crate::cpu::v386::ExitReason;
use crate::cpu::{cr0, flags, Seg, CS};
use crate::vmm::log::{code_info, ExitLog, ExitRecord};
use crate::vmm::{Vm, VmExit};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// One line of the register view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// "gpr", "seg", "ctrl", "exit" or (a VM under the software monitor) "monitor".
    /// Names are unique among one VM's rows: the page keys its rows by name.
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

/// The rows of VM `vm`'s state; `pending` is its exit not handled yet, if it is paused at
/// one; `log` is the VMM's exit log, where a monitor VM's last trap is found.
pub fn rows(vm: &Vm, pending: Option<VmExit>, log: &ExitLog) -> Vec<Row> {
    let g = vm.processor_state();
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
    row("seg", "GDTR", table(g.gdtr.base, g.gdtr.limit));
    row("seg", "IDTR", table(g.idtr.base, g.idtr.limit));
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
    if let Some(m) = &vm.monitor {
        monitor_rows(vm, m, log, &mut out);
        return out;
    }
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

/// A descriptor-table register: "base 00101078 limit 0027".
fn table(base: u32, limit: u16) -> String {
    format!("base {base:08x} limit {limit:04x}")
}

/// The rows of a VM under the software monitor that a V386 VM does not have: what the
/// guest believes its privileged state to be, what the monitor did for it, and (as its
/// "exit") the last trap it logged, since its traps are handled inside the monitor and
/// never wait in a VCB.
fn monitor_rows(vm: &Vm, m: &crate::monitor::Monitor, log: &ExitLog, out: &mut Vec<Row>) {
    let mut row = |group, name, value: String| out.push(Row { group, name, value });
    let v = m.virtual_state();
    let how = if m.options.scan {
        "breakpoints before sensitive instructions"
    } else if m.options.psi {
        "sensitive instructions fault (CR4.PSI)"
    } else {
        "sensitive instructions run unseen"
    };
    row("monitor", "technique", format!("{}: guest kernel at ring 1, shadow page tables; {how}", vm.technique.name()));
    // The virtual registers, named as EFLAGS.VIF is: a "v" for the copy kept on the
    // guest's behalf. The "seg" and "ctrl" rows above are the processor's, the monitor's.
    row("monitor", "vCR0", format!("{:08x}", v.cr0));
    row("monitor", "vCR2", format!("{:08x}", v.cr2));
    row("monitor", "vCR3", format!("{:08x}", v.cr3));
    row("monitor", "vCR4", format!("{:08x}", v.cr4));
    row("monitor", "vGDTR", table(v.gdtr.base, v.gdtr.limit));
    row("monitor", "vIDTR", table(v.idtr.base, v.idtr.limit));
    row("monitor", "vLDTR", format!("{:04x} base {:08x} lim {:08x}", v.ldtr, v.ldt_base, v.ldt_limit));
    row("monitor", "vTR", format!("{:04x} base {:08x}", v.tr, v.tr_base));
    row("monitor", "vIF", if v.iflag { "1 (interrupts on)".into() } else { "0 (interrupts off)".into() });
    row("monitor", "vIOPL", v.iopl.to_string());
    let c = &m.counters;
    let total: u64 = c.traps.iter().sum();
    let by: Vec<String> = c
        .traps
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(r, n)| format!("{} {n}", ExitReason::from_number(r as u32).map_or("?", |r| r.name())))
        .collect();
    row("monitor", "traps", if by.is_empty() { "0".into() } else { format!("{total}: {}", by.join(", ")) });
    row("monitor", "reflected", c.reflected.to_string());
    row("monitor", "shadow fills", c.shadow_fills.to_string());
    row("monitor", "traced writes", c.traced_writes.to_string());
    row("monitor", "shadow resets", c.shadow_resets.to_string());
    if m.options.scan {
        row("monitor", "scans", c.scans.to_string());
        row("monitor", "breakpoints", c.breakpoints.to_string());
        row("monitor", "rescans", c.rescans.to_string());
    }
    // Nothing waits in a VCB: the monitor handled the trap before the VM's turn ended.
    row("exit", "state", "last trap logged (handled)".into());
    match last_record(log, vm.id) {
        Some(r) => {
            let reason = ExitReason::from_number(u32::from(r.reason)).map(|r| r.name()).unwrap_or("?");
            row("exit", "reason", format!("{reason} ({})", r.reason));
            row("exit", "qual", format!("{:x}", r.qualification));
            let bytes: Vec<String> = r.instr().iter().map(|b| format!("{b:02x}")).collect();
            row("exit", "bytes", bytes.join(" "));
            row("exit", "instr", crate::front::disasm::disassemble_record(&r));
        }
        None => row("exit", "reason", "none in the log".into()),
    }
}

/// VM `vm`'s newest record in the exit log, if the ring still holds one. Searched from
/// the newest back: a monitor VM traps often (its timer interrupts at least), so the
/// search is short unless the VM has been quiet while others exited.
fn last_record(log: &ExitLog, vm: u16) -> Option<ExitRecord> {
    let raw = log.raw();
    let n = raw.len() as u64;
    // The ring's next slot is `total % capacity`; while it is not yet full, `n` equals
    // `total`, so `total % n` is that slot in both cases.
    let next = if n == 0 { 0 } else { log.total % n };
    (1..=n).map(|k| raw[((next + n - k) % n) as usize]).find(|r| r.vm == vm)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::boot::multiboot::{flat_image, FLAT_HEADER_SIZE};
    use crate::machine::MachineSpec;
    use crate::vmm::{Technique, Vmm, VmmConfig};

    /// A Multiboot kernel (the a.out kludge: loaded at 1 MiB as it is) that puts "O" on
    /// the screen, "hello\n" on COM1 and halts with interrupts off: under the software
    /// monitor its OUTs, CLI and HLT trap.
    fn kernel() -> Vec<u8> {
        let mut body = vec![
            0x66, 0xc7, 0x05, 0x00, 0x80, 0x0b, 0x00, b'O', 0x1f, // mov word [0xb8000], 0x1f4f
            0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8
            0xbe, 0x40, 0x00, 0x10, 0x00, // mov esi, msg (0x100040)
            0xac, // l: lodsb
            0x84, 0xc0, // test al, al
            0x74, 0x03, // jz done
            0xee, // out dx, al
            0xeb, 0xf8, // jmp l
            0xfa, 0xf4, // done: cli ; hlt
        ];
        body.resize(0x40 - FLAT_HEADER_SIZE as usize, 0);
        body.extend_from_slice(b"hello\n\0");
        flat_image(0x10_0000, &body)
    }

    fn value<'a>(rows: &'a [Row], group: &str, name: &str) -> Option<&'a str> {
        rows.iter().find(|r| r.group == group && r.name == name).map(|r| r.value.as_str())
    }

    #[test]
    fn a_monitor_vm_shows_the_guests_view_and_its_last_trap() {
        let mut vmm = Vmm::new(VmmConfig::default());
        let spec = || MachineSpec { memory_mb: Some(4), kernel: Some(kernel()), ..Default::default() };
        vmm.add_vm_as("classic", spec(), Technique::TrapAndEmulate).unwrap();
        vmm.add_vm_as("scan", spec(), Technique::ScanBeforeExecute).unwrap();
        vmm.add_vm("v386", spec()).unwrap();
        vmm.run(1_000_000);
        for v in vmm.vms.iter_mut() {
            assert_eq!(v.board.com1.take_output(), b"hello\n", "{}", v.name);
        }
        let rows_of = |i: usize| rows(&vmm.vms[i], vmm.pending_exit(i), &vmm.log);
        let classic = rows_of(0);
        let mut names: Vec<&str> = classic.iter().map(|r| r.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "row names are unique: {names:?}");
        assert!(value(&classic, "monitor", "technique").unwrap().starts_with("Trap-and-emulate: "));
        // The guest kernel runs at ring 1 on the monitor's tables; it believes it is at
        // ring 0 on the loader's GDT.
        assert_eq!(value(&classic, "ctrl", "CPL"), Some("1"));
        let (gdtr, vgdtr) = (value(&classic, "seg", "GDTR").unwrap(), value(&classic, "monitor", "vGDTR").unwrap());
        assert_ne!(gdtr, vgdtr);
        let guest = vmm.vms[2].processor_state().gdtr;
        assert_eq!(vgdtr, table(guest.base, guest.limit), "the loader's GDT, as the V386 VM has it");
        assert_eq!(value(&classic, "monitor", "vIF"), Some("0 (interrupts off)"));
        assert!(value(&classic, "monitor", "traps").unwrap().contains("IO 6"), "{classic:?}");
        assert_eq!(value(&classic, "monitor", "scans"), None, "scan counters only under scan-before-execute");
        // Its "exit" is the last trap logged for it: the CLI before its final HLT (a HLT
        // with interrupts off ends the VM without a trap).
        let last = vmm.log.iter().filter(|r| r.vm == vmm.vms[0].id).last().expect("traps logged");
        let reason = ExitReason::from_number(last.reason.into()).unwrap().name();
        assert_eq!(value(&classic, "exit", "reason"), Some(format!("{reason} ({})", last.reason).as_str()));
        assert!(matches!(value(&classic, "exit", "instr"), Some("cli" | "hlt")), "{classic:?}");
        let scan = rows_of(1);
        assert!(value(&scan, "monitor", "technique").unwrap().starts_with("Scan-before-exec: "));
        assert!(value(&scan, "monitor", "scans").is_some_and(|s| s != "0"), "{scan:?}");
        // A V386 VM: no monitor rows, its VCB's last exit.
        let v386 = rows_of(2);
        assert!(v386.iter().all(|r| r.group != "monitor"));
        assert_eq!(value(&v386, "ctrl", "CPL"), Some("0"));
        assert_eq!(value(&v386, "exit", "reason"), Some("HLT (12)"));
    }

    #[test]
    fn the_last_record_of_a_vm_is_found_in_a_wrapped_ring() {
        use crate::cpu::v386::vcb::ExitInfo;
        let mut log = ExitLog::new(4);
        let x = |reason: u32| ExitInfo { reason, ..Default::default() };
        assert!(last_record(&log, 1).is_none());
        for (vm, reason) in [(1, 12), (2, 30), (1, 30), (2, 12), (2, 12), (2, 10)] {
            log.push(0, vm, &x(reason), 0, 0);
        }
        assert_eq!(last_record(&log, 1).map(|r| r.reason), Some(30));
        assert_eq!(last_record(&log, 2).map(|r| r.reason), Some(10));
        assert!(last_record(&log, 3).is_none());
    }

    #[test]
    fn flags_by_name() {
        assert_eq!(flag_names(0x0000_3246), "PF ZF IF IOPL=3");
        assert_eq!(flag_names(0x0002_0002), "VM IOPL=0");
    }
}
