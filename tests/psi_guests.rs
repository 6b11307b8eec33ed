//! CR4.PSI guest test: assemble `tests/guests/psi.asm` with nasm and run it on v386. The
//! guest checks every privileged-sensitive instruction of docs/v386.md Table 3-2 at CPL 3
//! and CPL 1 with PSI set (#GP(0) at the instruction, nothing changed), at CPL 0 with PSI
//! (runs, right answer) and at CPL 3 without PSI (runs: the classic hole), plus the V86
//! rows, and prints one line per instruction on port 0xE9.
//!
//! Only v386 runs it: QEMU has no CR4.PSI, so there is no second emulator to compare with.
//! nasm is an external tool: when it is missing the test prints why and passes, unless
//! `V386_REQUIRE_QEMU` is set (CI sets it), then it fails.

mod common;
use common::*;

use std::time::Instant;

use v386::cpu::StopReason;

/// The isa-debug-exit port the guest writes its result to.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Instructions v386 may spend on the guest (it needs well under a million).
const BUDGET: u64 = 50_000_000;

/// The protected-mode lines: PSI at CPL 3 and 1 faults, PSI at CPL 0 and no PSI at CPL 3
/// run. One per row and form of Table 3-2; a dropped case fails the test.
const PM_CASES: &[&str] = &[
    "sgdt",
    "sidt",
    "smsw",
    "sldt",
    "str",
    "lar",
    "lsl",
    "verr",
    "verw",
    "pushfd",
    "pushfw (66 prefix)",
    "popfd",
    "iretd",
    "int 40h",
    "int3",
    "into (of=1)",
    "push es",
    "push cs",
    "push ss",
    "push ds",
    "push fs",
    "push gs",
    "pop es",
    "pop ss",
    "pop ds",
    "pop fs",
    "pop gs",
    "mov r32,cs",
    "mov m16,ss",
    "mov fs,r16",
    "mov gs,m16",
    "lds",
    "les",
    "lss",
    "lfs",
    "lgs",
    "call far ptr16:32",
    "call far m16:32",
    "jmp far ptr16:32",
    "jmp far m16:32",
    "retf",
    "retf imm16",
];

/// Encodings that are #UD with or without PSI (docs/v386.md §3.2: #UD keeps priority).
const UD_CASES: &[&str] = &[
    "mov cs,r16 (8e /1)",
    "mov sreg6,r16 (8e /6)",
    "mov r16,sreg7 (8c /7)",
    "lds r32,r32 (c5 mod=3)",
    "lss r32,r32 (0f b2 mod=3)",
    "call far r32 (ff /3 mod=3)",
    "jmp far r32 (ff /5 mod=3)",
    "sgdt r32 (0f 01 /0 mod=3)",
    "lock sgdt",
    "lock push cs",
];

/// V86 rows of Table 3-2 that fault with PSI ("all" rows).
const V86_SENSITIVE: &[&str] = &["sgdt", "sidt", "smsw", "pushf", "popf", "iret", "int 40h", "int3", "into (of=1)"];
/// #UD in V86 mode whatever PSI says.
const V86_UD: &[&str] = &["sldt", "str", "lar", "lsl", "verr", "verw"];
/// Segment-register forms: not sensitive in V86 mode, they run with PSI.
const V86_PLAIN: &[&str] = &[
    "push cs",
    "push fs",
    "pop ds",
    "pop gs",
    "mov r16,ss",
    "mov es,r16",
    "lds",
    "les",
    "lfs",
    "lgs",
    "lss",
    "call far ptr16:16",
    "call far m16:16",
    "jmp far ptr16:16",
    "jmp far m16:16",
    "retf",
    "retf imm16",
];

/// Every line the guest must print, in order.
fn expected_lines() -> Vec<String> {
    let mut lines = vec![
        "psi: protected mode".to_string(),
        "psi: gdt, idt, tss, ldt loaded".to_string(),
        "cpuid 83860000h: ebx=\"V386\", highest leaf 83860001h".to_string(),
        "cpuid 83860001h: edx.psi=1".to_string(),
        "cr4.psi: set and cleared".to_string(),
    ];
    lines.extend(PM_CASES.iter().map(|n| format!("{n}: cpl3 #GP ok, cpl1 #GP ok, cpl0 ok, nopsi cpl3 ok")));
    lines
        .push("ordinary (add, mov, push/pop reg, lea, call/ret near, into of=0): cpl3 psi ok, cpl1 psi ok".to_string());
    lines.extend(UD_CASES.iter().map(|n| format!("{n}: cpl3 psi #UD ok, cpl1 psi #UD ok, nopsi cpl3 #UD ok")));
    lines.extend(V86_SENSITIVE.iter().map(|n| format!("v86 {n}: psi #GP ok, nopsi ok")));
    lines.extend(V86_UD.iter().map(|n| format!("v86 {n}: psi #UD ok, nopsi #UD ok")));
    lines.extend(V86_PLAIN.iter().map(|n| format!("v86 {n}: psi ok, nopsi ok")));
    lines.push("PASS".to_string());
    lines
}

/// Every privileged-sensitive instruction of docs/v386.md Table 3-2 faults with CR4.PSI at
/// CPL 1 and 3, runs at CPL 0 and without PSI; the V86 rows as the table says
/// (tests/guests/psi.asm).
#[test]
fn psi_guest() {
    let Some(img) = assemble_guest("psi", "psi_guests") else {
        skip("nasm is not installed");
        return;
    };
    let start = Instant::now();
    let (out, stop) = run_flat_real(&img, DEBUG_EXIT_PORT, BUDGET);
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&out).into_owned();
    eprintln!("--- v386 output ({stop:?}, {elapsed:?}) ---\n{text}--- end ---");

    assert_eq!(stop, StopReason::DebugExit(0), "psi guest did not pass: output:\n{text}");
    assert!(text.ends_with("PASS\n"), "psi guest output does not end with PASS:\n{text}");
    let got: Vec<&str> = text.lines().collect();
    for want in expected_lines() {
        assert!(got.contains(&want.as_str()), "missing line {want:?} in the psi guest's output:\n{text}");
    }
    // Nothing more than the expected lines, in that order.
    assert_eq!(got, expected_lines(), "psi guest output differs from the expected lines");
}
