//! An x86 host program using V386 (tests/guests/v386_host.asm): a tiny VMM written in
//! nasm enters small guests with VMENTER, handles every exit reason of docs/v386.md
//! Table 8-1 itself and checks the exit information, that a guest sees its own privileged
//! state (§5.3) and that the SLT contains a guest that reaches for host memory (§6).
//!
//! The guest program checks itself and prints one line per case on port 0xE9; this test
//! requires the line of every exit reason, `PASS` and exit value 0, and the exact output
//! of `tests/golden/v386_host.txt`. QEMU has no V386, so it runs on v386 only. nasm is an
//! external tool: when it is missing the test prints why and passes, unless
//! `V386_REQUIRE_QEMU` is set.

mod common;
use common::*;

use std::path::Path;

use v386::cpu::StopReason;

/// The isa-debug-exit port the program writes its result to.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Instructions v386 may spend on it.
const BUDGET: u64 = 50_000_000;

/// Every exit reason of Table 8-1, by its name: the program prints `NAME: ok` for each.
const REASONS: [&str; 19] = [
    "EXCEPTION_NMI",
    "EXTERNAL_INTERRUPT",
    "TRIPLE_FAULT",
    "INTERRUPT_WINDOW",
    "TASK_SWITCH",
    "CPUID",
    "HLT",
    "INVLPG",
    "VCALL",
    "CR_ACCESS",
    "DR_ACCESS",
    "IO",
    "RDMSR",
    "WRMSR",
    "INVALID_GUEST_STATE",
    "NESTED_PAGE_FAULT",
    "SLT_MISCONFIG",
    "PREEMPTION_TIMER",
    "SENSITIVE_INSTRUCTION",
];

/// The other cases: failed control checks (Table 9-1), the guest's own privileged state
/// (§5.3) and isolation.
const OTHER_CASES: [&str; 3] = ["CONTROL_CHECKS", "GUEST_STATE", "ISOLATION"];

#[test]
fn x86_host_handles_every_exit_reason() {
    let Some(img) = assemble_guest("v386_host", "v386_host") else {
        skip("nasm is not installed");
        return;
    };
    let (out, stop) = run_flat_real(&img, DEBUG_EXIT_PORT, BUDGET);
    let out = String::from_utf8_lossy(&out).into_owned();
    eprintln!("--- v386_host output ({stop:?}) ---\n{out}--- end ---");
    assert!(!out.contains("FAIL"), "the host program reported a failure:\n{out}");
    for name in REASONS.iter().chain(OTHER_CASES.iter()) {
        let line = format!("{name}: ok");
        assert!(out.lines().any(|l| l == line), "no `{line}` line in:\n{out}");
    }
    assert!(out.ends_with("PASS\n"), "the output does not end with PASS:\n{out}");
    assert_eq!(stop, StopReason::DebugExit(0), "stopped with {stop:?}");

    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden").join("v386_host.txt");
    let golden = std::fs::read_to_string(&golden_path).expect("read tests/golden/v386_host.txt");
    assert_eq!(out, golden, "the output differs from {}", golden_path.display());
}
