//! The VMM on V386 (docs/v386.md §12.3): unmodified guests in VMs side by side, each with
//! its own devices, memory, screen and serial line, time-shared by the preemption timer;
//! and Linux alone under the VMM's software monitor (trap-and-emulate with PSI).
//!
//! The Linux guest (Debian's i686 kernel and the busybox initramfs, from `.cache/images/`
//! as `scripts/images.sh` builds them) boots to a shell; beside it SeaBIOS boots the demo
//! floppy (`tests/guests/webdemo.asm`). Missing images or nasm skip the test unless
//! `V386_REQUIRE_QEMU` is set.

mod common;
use common::*;

use std::time::Instant;

use v386::cpu::v386::ExitReason;
use v386::machine::MachineSpec;
use v386::vmm::{RunOutcome, Technique, VmState, Vmm, VmmConfig};

const PROMPT: &str = "v386:/# ";

/// Serial output of VM `id` since the last call, appended to `text`.
fn drain(vmm: &mut Vmm, id: u16, text: &mut String) {
    let vm = vmm.vm_mut(id).expect("the VM");
    text.push_str(&String::from_utf8_lossy(&vm.board.com1.take_output()));
}

fn screen(vmm: &Vmm, id: u16) -> String {
    vmm.vm(id).expect("the VM").board.vga.text_snapshot().to_text()
}

/// Counters and the last exits, for a failure message.
fn report(vmm: &Vmm) -> String {
    let mut s = String::new();
    for vm in &vmm.vms {
        let by: Vec<String> = ExitReason::ALL
            .iter()
            .filter(|r| vm.counters.count(**r) > 0)
            .map(|r| format!("{} {}", r.name(), vm.counters.count(*r)))
            .collect();
        s += &format!(
            "{}: retired {} turns {} mmio {} eip {:#x} exits: {}\n",
            vm.name,
            vm.counters.retired,
            vm.counters.turns,
            vm.counters.mmio,
            vm.vcb.guest.eip,
            by.join(", ")
        );
    }
    s += "last exits:\n";
    let recs: Vec<_> = vmm.log.iter().collect();
    for r in recs.iter().rev().take(20).rev() {
        s += &format!(
            "  t={} vm{} reason {} qual {:#x} eip {:#x} {:02x?}\n",
            r.time,
            r.vm,
            r.reason,
            r.qualification,
            r.guest_eip,
            r.instr()
        );
    }
    s
}

#[test]
fn linux_and_a_seabios_guest_run_side_by_side() {
    let (Some(kernel), Some(initrd), Some(bios), Some(vgabios)) = (
        read_image("vmlinuz"),
        read_image("initramfs.cpio.gz"),
        read_image("bios.bin"),
        read_image("vgabios-stdvga.bin"),
    ) else {
        return;
    };
    let Some(floppy) = assemble_guest("webdemo", "vmm") else {
        skip("nasm is not installed");
        return;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let linux = vmm
        .add_vm(
            "linux",
            MachineSpec {
                memory_mb: Some(128),
                kernel: Some(kernel),
                initrd: Some(initrd),
                cmdline: Some("console=ttyS0 cryptomgr.notests".into()),
                ..Default::default()
            },
        )
        .expect("the Linux VM");
    let demo = vmm
        .add_vm(
            "demo",
            MachineSpec {
                memory_mb: Some(16),
                bios: Some(bios),
                vga_bios: Some(vgabios),
                fda: Some(floppy),
                ..Default::default()
            },
        )
        .expect("the SeaBIOS VM");

    let t = Instant::now();
    let (mut linux_out, mut demo_out) = (String::new(), String::new());
    let mut total = 0u64;
    while !linux_out.contains(PROMPT) {
        let r = vmm.run(20_000_000);
        total += 20_000_000;
        drain(&mut vmm, linux, &mut linux_out);
        drain(&mut vmm, demo, &mut demo_out);
        let states: Vec<_> = vmm.vms.iter().map(|v| (v.name.clone(), v.state.clone())).collect();
        assert!(
            r == RunOutcome::BudgetSpent && total < 8_000_000_000 && states.iter().all(|(_, s)| !matches!(s, VmState::Stopped(_))),
            "{r:?} after {total} instructions; VM states {states:?}\nLinux serial:\n{linux_out}\ndemo serial:\n{demo_out}\ndemo screen:\n{}\n{}",
            screen(&vmm, demo),
            report(&vmm)
        );
    }
    println!("Linux shell prompt after {total} machine instructions, {:.1} s", t.elapsed().as_secs_f64());
    // The shell answers.
    vmm.vm_mut(linux).unwrap().board.com1.receive(b"uname -a\n");
    let from = linux_out.len();
    while !linux_out[from..].contains("i686") || !linux_out[from..].contains(PROMPT) {
        vmm.run(20_000_000);
        drain(&mut vmm, linux, &mut linux_out);
    }
    // The other VM: SeaBIOS booted the floppy, whose banner is on its own screen and line.
    let demo_screen = screen(&vmm, demo);
    assert!(demo_out.contains("v386"), "demo serial:\n{demo_out}\nscreen:\n{demo_screen}");
    assert!(!screen(&vmm, linux).contains("v386 demo"), "the screens are separate");
    for vm in &vmm.vms {
        let c = &vm.counters;
        println!(
            "{}: {} retired, {} turns, {} preempted, {} exits (IO {}, HLT {}, NPF {}, timer {}, window {}, CPUID {}), {} MMIO",
            vm.name,
            c.retired,
            c.turns,
            c.preemptions,
            c.exits(),
            c.count(ExitReason::Io),
            c.count(ExitReason::Hlt),
            c.count(ExitReason::NestedPageFault),
            c.count(ExitReason::PreemptionTimer),
            c.count(ExitReason::InterruptWindow),
            c.count(ExitReason::Cpuid),
            c.mmio
        );
        assert!(c.preemptions > 0 && c.count(ExitReason::PreemptionTimer) > 0, "{}: preemption shows", vm.name);
        assert!(c.count(ExitReason::Io) > 0, "{}: port I/O exits", vm.name);
    }
}

/// Deterministic time makes the VMM reproducible: the same VMs run twice give the same
/// exits, in the same order, at the same instants (what a class can rely on).
#[test]
fn two_runs_give_the_same_exit_log() {
    let (Some(bios), Some(vgabios)) = (read_image("bios.bin"), read_image("vgabios-stdvga.bin")) else { return };
    let Some(floppy) = assemble_guest("webdemo", "vmm") else {
        skip("nasm is not installed");
        return;
    };
    let run = || {
        let mut vmm = Vmm::new(VmmConfig { quantum: 50_000, ..Default::default() });
        for name in ["a", "b"] {
            let spec = MachineSpec {
                memory_mb: Some(16),
                bios: Some(bios.clone()),
                vga_bios: Some(vgabios.clone()),
                fda: Some(floppy.clone()),
                ..Default::default()
            };
            vmm.add_vm(name, spec).expect("a VM");
        }
        vmm.run(40_000_000);
        let log: Vec<_> = vmm.log.iter().copied().collect();
        (log, vmm.log.total)
    };
    let (first, n) = run();
    let (second, m) = run();
    assert!(n > 5_000, "the VMs exited {n} times");
    assert_eq!(n, m);
    assert!(first == second, "the exit logs differ");
}

/// A VMM with Debian's Linux (128 MiB, console on COM1) as its one VM, under technique
/// `t`, and the VM's tag; None (the test skips) without the images.
fn linux_alone(t: Technique) -> Option<(Vmm, u16)> {
    let (Some(kernel), Some(initrd)) = (read_image("vmlinuz"), read_image("initramfs.cpio.gz")) else {
        return None;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let spec = MachineSpec {
        memory_mb: Some(128),
        kernel: Some(kernel),
        initrd: Some(initrd),
        cmdline: Some("console=ttyS0 cryptomgr.notests".into()),
        ..Default::default()
    };
    let linux = vmm.add_vm_as("linux", spec, t).expect("the Linux VM");
    Some((vmm, linux))
}

/// Debian's unmodified Linux boots to its shell under the software monitor with PSI
/// (technique 3): its kernel at ring 1 on shadow page tables, shadow GDT and LDT traced,
/// every privileged and sensitive instruction trapping to the monitor's interpreters,
/// SYSENTER and SYSEXIT emulated, interrupts reflected through its IDT. The shell
/// answers a command. The counts show what trap-and-emulate costs a real kernel.
#[test]
fn linux_boots_to_its_shell_under_trap_and_emulate_with_psi() {
    let Some((mut vmm, linux)) = linux_alone(Technique::TrapAndEmulatePsi) else { return };
    let t = Instant::now();
    let mut out = String::new();
    let mut total = 0u64;
    while !out.contains(PROMPT) {
        let r = vmm.run(20_000_000);
        total += 20_000_000;
        drain(&mut vmm, linux, &mut out);
        let state = vmm.vm(linux).unwrap().state.clone();
        assert!(
            r == RunOutcome::BudgetSpent && total < 12_000_000_000 && !matches!(state, VmState::Stopped(_)),
            "{r:?} after {total} instructions; {state:?}\nLinux serial:\n{out}\n{}",
            report(&vmm)
        );
    }
    println!(
        "Linux shell prompt under trap-and-emulate + PSI after {total} machine instructions, {:.1} s",
        t.elapsed().as_secs_f64()
    );
    vmm.vm_mut(linux).unwrap().board.com1.receive(b"uname -a\n");
    let from = out.len();
    while !out[from..].contains("i686") || !out[from..].contains(PROMPT) {
        vmm.run(20_000_000);
        drain(&mut vmm, linux, &mut out);
    }
    let vm = vmm.vm(linux).unwrap();
    let m = vm.monitor.as_deref().expect("a monitor VM");
    let c = &m.counters;
    println!(
        "traps {} (EXC {}, IO {}, SENS {}, INVLPG {}, CR {}, HLT {}, interrupts {}), reflected {}, shadow fills {}, traced writes {}, shadow resets {}",
        c.all_traps(),
        vm.counters.count(ExitReason::ExceptionNmi),
        vm.counters.count(ExitReason::Io),
        vm.counters.count(ExitReason::SensitiveInstruction),
        vm.counters.count(ExitReason::Invlpg),
        vm.counters.count(ExitReason::CrAccess),
        vm.counters.count(ExitReason::Hlt),
        vm.counters.count(ExitReason::ExternalInterrupt),
        c.reflected,
        c.shadow_fills,
        c.traced_writes,
        c.shadow_resets
    );
    assert!(m.world().cpl == 1 || m.world().cpl == 3, "the guest never runs at ring 0");
    assert!(c.traced_writes > 0 && c.shadow_fills > 0 && vm.counters.count(ExitReason::SensitiveInstruction) > 0);
}

/// The same kernel under plain trap-and-emulate (technique 2), the classic x86 without
/// PSI: PUSHF at ring 1 shows the guest the processor's IF — always 1 under the monitor
/// — so the kernel's `irqs_disabled()` (PUSHF; POP; test bit 9) is wrong from the start.
/// Linux says "Interrupts were enabled *very* early" and then dies of a kernel BUG in an
/// interrupt: Robin & Irvine's sensitive-instruction problem on a real kernel.
#[test]
fn linux_panics_under_plain_trap_and_emulate() {
    let Some((mut vmm, linux)) = linux_alone(Technique::TrapAndEmulate) else { return };
    let mut out = String::new();
    let mut total = 0u64;
    while !out.contains("end Kernel panic") {
        vmm.run(20_000_000);
        total += 20_000_000;
        drain(&mut vmm, linux, &mut out);
        assert!(total < 4_000_000_000 && !out.contains(PROMPT), "after {total} instructions:\n{out}");
    }
    println!("Linux panicked under plain trap-and-emulate after {total} machine instructions");
    assert!(out.contains("Interrupts were enabled *very* early"), "{out}");
}
