//! Break on exit and single step (the live view's debugger, `Vmm::set_break_on`,
//! `Vmm::step`), on the VMM demo guests (`tests/guests/vmdemo_clock.asm`,
//! `vmdemo_sensitive.asm`; see tests/vmm_demo.rs):
//!
//! - a run broken at every CPUID, HLT and VCALL exit and resumed each time logs the same
//!   exits, in the same order at the same instants, as the same run without breaks, and
//!   each break stops with its exit logged, counted and pending (not yet handled);
//! - stepping a VM paused at a CPUID exit handles it (EIP moves past the instruction, EAX
//!   holds the leaf's answer), and single steps then move EIP on instruction by
//!   instruction while the other VM stands still; "run to exit" reaches the next exit
//!   through the clock VM's halts;
//! - VMs under the software monitor (trap-and-emulate, scan-before-execute) break at their
//!   traps too, after each is handled (the monitor leaves none pending): a run broken at
//!   every I/O, HLT and sensitive-instruction trap and resumed logs the same records and
//!   ends in the same state as one without breaks, and a step stops at the next trap.
//!
//! nasm is an external tool: without it the tests are skipped (tests/common/mod.rs).

mod common;
use common::*;

use v386::cpu::v386::ExitReason;
use v386::machine::MachineSpec;
use v386::vmm::{RunOutcome, Technique, VmExit, Vmm, VmmConfig};

const BUDGET: u64 = 40_000_000;

fn demo_vmm() -> Option<Vmm> {
    demo_vmm_as(&[Technique::V386])
}

/// The two demo guests under each of `techniques` (named "clock" and "sensitive", with
/// the technique's key after the name when there are several).
fn demo_vmm_as(techniques: &[Technique]) -> Option<Vmm> {
    let (Some(clock), Some(sens)) =
        (assemble_guest("vmdemo_clock", "vmm_break"), assemble_guest("vmdemo_sensitive", "vmm_break"))
    else {
        skip("nasm is not installed");
        return None;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    for &t in techniques {
        for (name, img) in [("clock", &clock), ("sensitive", &sens)] {
            let spec = MachineSpec { memory_mb: Some(16), kernel: Some(img.clone()), ..Default::default() };
            let name = if techniques.len() == 1 { name.to_string() } else { format!("{name} {}", t.key()) };
            vmm.add_vm_as(&name, spec, t).expect("a VM");
        }
    }
    Some(vmm)
}

fn bit(r: ExitReason) -> u128 {
    1 << r as u32
}

#[test]
fn a_run_broken_and_resumed_logs_the_same_exits() {
    let Some(mut plain) = demo_vmm() else { return };
    assert_eq!(plain.run(BUDGET), RunOutcome::BudgetSpent);

    let mut broken = demo_vmm().expect("the same VMs");
    let mask = bit(ExitReason::Cpuid) | bit(ExitReason::Hlt) | bit(ExitReason::Vcall);
    broken.set_break_on(mask);
    let mut breaks = [0u64; 65];
    let outcome = loop {
        match broken.run(BUDGET) {
            RunOutcome::Break { vm, reason } => {
                assert!(mask >> reason & 1 != 0, "a break on reason {reason}");
                let last = broken.log.iter().last().expect("the exit is logged");
                assert_eq!((last.vm, last.reason), (vm, reason), "the newest record is the break's exit");
                let i = broken.vms.iter().position(|v| v.id == vm).expect("the VM");
                let pending = broken.pending_exit(i).expect("the exit waits, not handled");
                if reason == ExitReason::Cpuid as u16 {
                    // Not emulated yet: EIP is still at the CPUID instruction.
                    assert!(matches!(pending, VmExit::Cpuid { .. }), "{pending:?}");
                    assert_eq!(last.instr(), [0x0f, 0xa2]);
                }
                breaks[reason as usize] += 1;
            }
            other => break other,
        }
    };
    assert_eq!(outcome, RunOutcome::BudgetSpent);
    for r in [ExitReason::Cpuid, ExitReason::Hlt, ExitReason::Vcall] {
        assert!(breaks[r as usize] > 5, "{} breaks on {}", breaks[r as usize], r.name());
        let counted: u64 = broken.vms.iter().map(|v| v.counters.count(r)).sum();
        assert_eq!(breaks[r as usize], counted, "one break per {} exit", r.name());
    }
    assert_eq!(plain.log.total, broken.log.total);
    assert!(plain.log.iter().eq(broken.log.iter()), "the exit logs differ");
    for (a, b) in plain.vms.iter_mut().zip(broken.vms.iter_mut()) {
        assert_eq!(a.counters.by_reason, b.counters.by_reason);
        assert_eq!(a.counters.retired, b.counters.retired);
        assert_eq!(a.vcb.guest.eip, b.vcb.guest.eip);
        assert_eq!(a.board.com1.take_output(), b.board.com1.take_output());
    }
}

#[test]
fn steps_handle_the_pending_exit_then_move_one_instruction() {
    let Some(mut vmm) = demo_vmm() else { return };
    vmm.set_break_on(bit(ExitReason::Cpuid));
    let RunOutcome::Break { vm, reason } = vmm.run(BUDGET) else { panic!("no CPUID exit") };
    assert_eq!(reason, ExitReason::Cpuid as u16);
    let i = vmm.vms.iter().position(|v| v.id == vm).unwrap();
    let other = 1 - i;
    let other_eip = vmm.vms[other].vcb.guest.eip;
    let eip = vmm.vms[i].vcb.guest.eip;
    vmm.set_break_on(0);

    // The first step is the pending CPUID's emulation.
    assert_eq!(vmm.step(i, 1), RunOutcome::BudgetSpent);
    assert_eq!(vmm.vms[i].vcb.guest.eip, eip + 2, "EIP past CPUID");
    assert!(vmm.pending_exit(i).is_none());
    // Then one instruction at a time (or up to an exit, left pending).
    let mut eips = vec![vmm.vms[i].vcb.guest.eip];
    for _ in 0..20 {
        if let RunOutcome::Break { .. } = vmm.step(i, 1) {
            assert!(vmm.pending_exit(i).is_some());
        }
        eips.push(vmm.vms[i].vcb.guest.eip);
    }
    assert!(eips.windows(2).filter(|w| w[0] != w[1]).count() >= 10, "EIP moves: {eips:x?}");
    assert_eq!(vmm.vms[other].vcb.guest.eip, other_eip, "the other VM stands still");
    // Run to the next exit, through halts: the clock VM idles in HLT between its ticks.
    let clock = vmm.vms.iter().position(|v| v.name == "clock").unwrap();
    for _ in 0..3 {
        let r = vmm.step(clock, 10_000_000);
        assert!(matches!(r, RunOutcome::Break { .. }), "{r:?}");
        let pending = vmm.pending_exit(clock).expect("an exit waits");
        assert!(!matches!(pending, VmExit::PreemptionTimer), "{pending:?}");
        let last = vmm.log.iter().last().unwrap();
        assert_eq!(last.vm, vmm.vms[clock].id);
    }
    // And the VMs run on as before.
    assert_eq!(vmm.run(1_000_000), RunOutcome::BudgetSpent);
}

#[test]
fn monitor_vms_break_at_their_traps_once_handled() {
    const MONITOR_BUDGET: u64 = 20_000_000;
    let monitor = [Technique::TrapAndEmulate, Technique::ScanBeforeExecute];
    let Some(mut plain) = demo_vmm_as(&monitor) else { return };
    assert_eq!(plain.run(MONITOR_BUDGET), RunOutcome::BudgetSpent);

    let mut broken = demo_vmm_as(&monitor).expect("the same VMs");
    let mask = bit(ExitReason::Io) | bit(ExitReason::Hlt) | bit(ExitReason::SensitiveInstruction);
    broken.set_break_on(mask);
    let mut breaks = [0u64; 65];
    let outcome = loop {
        let before = broken.log.total;
        match broken.run(MONITOR_BUDGET) {
            RunOutcome::Break { vm, reason } => {
                assert!(mask >> reason & 1 != 0, "a break on reason {reason}");
                let i = broken.vms.iter().position(|v| v.id == vm).expect("the VM");
                assert!(broken.pending_exit(i).is_none(), "a monitor's trap is handled, not pending");
                assert!(logged_since(&broken, before, vm, reason), "the trap is logged");
                breaks[reason as usize] += 1;
            }
            other => break other,
        }
    };
    assert_eq!(outcome, RunOutcome::BudgetSpent);
    for r in [ExitReason::Io, ExitReason::Hlt, ExitReason::SensitiveInstruction] {
        let counted: u64 = broken.vms.iter().map(|v| v.counters.count(r)).sum();
        assert!(breaks[r as usize] > 5, "{} breaks on {}", breaks[r as usize], r.name());
        assert_eq!(breaks[r as usize], counted, "one break per {} trap", r.name());
    }
    assert_eq!(plain.log.total, broken.log.total);
    assert!(plain.log.iter().eq(broken.log.iter()), "the trap logs differ");
    for (a, b) in plain.vms.iter_mut().zip(broken.vms.iter_mut()) {
        assert_eq!(a.counters.by_reason, b.counters.by_reason, "{}", a.name);
        assert_eq!(a.counters.retired, b.counters.retired, "{}", a.name);
        assert_eq!(a.board.com1.take_output(), b.board.com1.take_output(), "{}", a.name);
    }

    // A step of up to a million instructions stops at the VM's next trap, handled.
    let i = broken.vms.iter().position(|v| v.name.starts_with("sensitive")).unwrap();
    let (id, total) = (broken.vms[i].id, broken.log.total);
    let r = broken.step(i, 1_000_000);
    let RunOutcome::Break { vm, reason } = r else { panic!("{r:?}") };
    assert_eq!(vm, id);
    assert!(broken.pending_exit(i).is_none());
    assert!(logged_since(&broken, total, id, reason), "the trap is logged");
}

/// Whether VM `vm` logged a record of `reason` since the log held `total` records (the
/// trap a monitor VM broke at; its handler may log more after it, such as a page fault
/// while it reflects an interrupt).
fn logged_since(vmm: &Vmm, total: u64, vm: u16, reason: u16) -> bool {
    let new = (vmm.log.total - total) as usize;
    let held = vmm.log.iter().count();
    vmm.log.iter().skip(held.saturating_sub(new)).any(|r| (r.vm, r.reason) == (vm, reason))
}
