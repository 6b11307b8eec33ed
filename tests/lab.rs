//! The technique lab (src/lab/, docs/techniques.md): the nanobenchmark guest
//! `tests/guests/nanobench.asm` in its native and paravirtual builds, under every
//! technique the lab has, measured into Adams & Agesen's table.
//!
//! - the table has the eight rows (seven nanobenchmarks, forkwait) and six columns, all
//!   filled;
//! - column 2 (trap-and-emulate on the classic x86) lists every wrong result the guest's
//!   sensitive-instruction probe saw; column 3 (the same with CR4.PSI) has none, nor have
//!   the others;
//! - two runs print identical tables (deterministic mode);
//! - the figures obey what each technique must do: under V386 `in` exits once an
//!   iteration and call/ret, syscall, divzero and pgfault never (second-level
//!   translation: the guest's page faults are its own); the paravirtual build replaces
//!   the IO exit by a hypercall and pays one for every page-table change; the bare
//!   machine has no exits at all;
//! - the guest checks itself (4N syscalls, page faults and divide errors, IN's value, the
//!   TPR, a PTE change seen after INVLPG/PTE_UPDATE), so a column exists only when it
//!   passed.
//!
//! nasm is an external tool: without it the tests are skipped (tests/common/mod.rs).

mod common;
use common::*;

use std::process::Command;
use v386::cpu::v386::ExitReason;
use v386::lab::{self, Bench, Column, CostModel, Images, LabConfig, Table, Technique};

/// The two builds, assembled once for all the tests of this file (the paravirtual one
/// with `-DPARAVIRT`).
fn images() -> Option<Images> {
    static IMAGES: std::sync::OnceLock<Option<Images>> = std::sync::OnceLock::new();
    let images = IMAGES.get_or_init(|| {
        Some(Images {
            native: assemble_guest("nanobench", "lab")?,
            paravirtual: assemble_guest_with("nanobench", "lab", &["-DPARAVIRT"])?,
        })
    });
    if images.is_none() {
        skip("nasm is not installed");
    }
    images.clone()
}

fn table(images: &Images, cfg: &LabConfig) -> Table {
    Table { columns: lab::run_all(images, cfg), cost: cfg.cost, iterations: cfg.iterations }
}

#[test]
fn the_table_has_every_row_and_every_column_filled() {
    let Some(images) = images() else { return };
    let cfg = LabConfig::default();
    let t = table(&images, &cfg);
    println!("{}\n{}\n{}", t.cycles(), t.instructions(), t.exits());
    assert!(t.errors().is_empty(), "{}", t.errors());
    assert_eq!(t.columns.len(), 6);
    for (tech, r) in &t.columns {
        let col = r.as_ref().unwrap_or_else(|e| panic!("{}: {e}", tech.name()));
        println!("{} {}: {}", tech.number(), tech.name(), col.serial.trim_end());
        assert!(col.serial.contains(": PASS"), "{}", col.serial);
        assert_eq!(col.measurements.len(), Bench::ALL.len());
    }
    let cycles = t.cycles();
    for b in Bench::ALL {
        assert!(cycles.lines().any(|l| l.starts_with(b.name())), "{} missing:\n{cycles}", b.name());
    }
    assert!(!cycles.contains("error"), "{cycles}");
}

/// The probe's names, in the order it runs them, of what goes wrong at ring 1 on the
/// classic x86 (tests/guests/nanobench.asm `probe_sensitive`).
const WRONG_ON_THE_CLASSIC_X86: [&str; 11] = [
    "SGDT limit",
    "SGDT base",
    "SIDT base",
    "STR",
    "PUSH CS",
    "MOV from SS",
    "PUSHF IF after CLI",
    "POPF IOPL 3",
    "POPF setting IF: pending interrupt taken",
    "LAR KCODE DPL",
    "VERR FFE8h (past the GDT)",
];

/// Column 2 lists every wrong result it observed, and they are the classic x86's; with
/// PSI (column 3) the monitor sees those instructions and the guest none; nor does any
/// other technique give one. Self-modifying code runs right everywhere.
#[test]
fn column_2_lists_its_wrong_results_and_column_3_has_none() {
    let Some(images) = images() else { return };
    let cfg = LabConfig { iterations: 50, ..Default::default() };
    let t = table(&images, &cfg);
    println!("{}", t.wrong_results());
    let col2 = column(&t, Technique::TrapAndEmulate);
    let names: Vec<&str> = col2.wrong.iter().map(|w| w.split(": got").next().unwrap_or("")).collect();
    assert_eq!(names, WRONG_ON_THE_CLASSIC_X86, "{:#?}", col2.wrong);
    // What they saw: the monitor's tables and TSS, ring 1 for ring 0.
    assert!(col2.wrong.iter().any(|w| w.starts_with("SGDT base: got FFC00000")), "{:#?}", col2.wrong);
    assert!(col2.wrong.iter().any(|w| w.starts_with("PUSH CS: got 00000009")), "{:#?}", col2.wrong);
    assert!(col2.serial.contains("wrong results 11: PASS"), "{}", col2.serial);
    for tech in Technique::ALL.into_iter().filter(|t| *t != Technique::TrapAndEmulate) {
        let col = column(&t, tech);
        assert!(col.wrong.is_empty(), "{}: {:#?}", tech.name(), col.wrong);
        assert!(col.serial.contains("wrong results 0: PASS"), "{}: {}", tech.name(), col.serial);
    }
    // Scan-before-execute saw the code change and scanned it again.
    let scan = column(&t, Technique::ScanBeforeExecute).monitor.clone().expect("monitor counters");
    assert!(scan.rescans >= 1 && scan.scans > scan.rescans && scan.breakpoints > 0, "{scan:?}");
}

/// Two runs, the same tables and the same counts.
#[test]
fn two_runs_give_identical_numbers() {
    let Some(images) = images() else { return };
    let cfg = LabConfig { iterations: 300, ..Default::default() };
    let (a, b) = (table(&images, &cfg), table(&images, &cfg));
    assert_eq!(a.cycles(), b.cycles());
    assert_eq!(a.exits(), b.exits());
    for ((_, x), (_, y)) in a.columns.iter().zip(&b.columns) {
        assert!(x == y, "a column differs between runs");
    }
}

fn column(t: &Table, tech: Technique) -> &Column {
    let (_, r) = t.columns.iter().find(|(x, _)| *x == tech).expect("the column");
    r.as_ref().unwrap_or_else(|e| panic!("{}: {e}", tech.name()))
}

#[test]
fn the_figures_obey_what_each_technique_does() {
    let Some(images) = images() else { return };
    let cfg = LabConfig::default();
    let n = cfg.iterations as u64;
    let t = table(&images, &cfg);
    let (bare, pv, v386) =
        (column(&t, Technique::Emulation), column(&t, Technique::Paravirtual), column(&t, Technique::V386));
    let (te, psi, scan) = (
        column(&t, Technique::TrapAndEmulate),
        column(&t, Technique::TrapAndEmulatePsi),
        column(&t, Technique::ScanBeforeExecute),
    );
    let io = ExitReason::Io as usize;
    let vcall = ExitReason::Vcall as usize;
    let exc = ExitReason::ExceptionNmi as usize;
    let invlpg = ExitReason::Invlpg as usize;
    for (i, b) in Bench::ALL.iter().enumerate() {
        let per = |c: &Column| c.measurements[i].cost.charged_exits() / n;
        let (t2, t3, t4) = (per(te), per(psi), per(scan));
        let c2 = &te.measurements[i].cost;
        match b {
            // INT 80h traps to the monitor everywhere; with PSI and with the scanner the
            // guest's IRET to ring 3 does too (PSI faults it, the scanner planted a
            // breakpoint on it); on the classic x86 it runs, IF unseen.
            Bench::Syscall => assert_eq!((t2, t3, t4), (1, 2, 2), "syscall"),
            // IN faults at ring 1 (IOPL 0, no I/O bitmap) and is emulated: one IO trap.
            Bench::In => {
                for c in [te, psi, scan] {
                    assert_eq!((per(c), c.measurements[i].cost.exits[io] / n), (1, 1), "in");
                }
            }
            // The APIC page is mapped straight through the shadow: no trap.
            Bench::Cr8wr => assert_eq!((t2, t3, t4), (0, 0, 0), "cr8wr"),
            // Direct execution, but the scanner must see where each RET goes.
            Bench::CallRet => assert_eq!((t2, t3, t4), (0, 0, 1), "call/ret"),
            // Shadow paging: the PTE cleared (a traced write), INVLPG, the guest's #PF
            // reflected, MOV from CR2, the PTE set (traced), the IRET to ring 1, the
            // hidden fault that fills the shadow entry.
            Bench::PgFault => {
                assert_eq!((t2, t3, t4), (7, 7, 7), "pgfault");
                assert_eq!((c2.exits[exc] / n, c2.exits[invlpg] / n), (4, 1), "pgfault by reason");
            }
            // #DE reflected, then the IRET to ring 1 (a CS with RPL 0 faults).
            Bench::DivZero => assert_eq!((t2, t3, t4), (2, 2, 2), "divzero"),
            // The traced PTE write and the INVLPG.
            Bench::PteMod => {
                assert_eq!((t2, t3, t4), (2, 2, 2), "ptemod");
                assert_eq!((c2.exits[exc] / n, c2.exits[invlpg] / n), (1, 1), "ptemod by reason");
            }
            // Two CR3 loads a fork, each starting the shadow afresh: the pages touched
            // after each fault in again (hidden faults).
            Bench::ForkWait => {
                for c in [te, psi, scan] {
                    let x = &c.measurements[i].cost;
                    assert_eq!(x.exits[ExitReason::CrAccess as usize] / n, 2, "forkwait CR3 loads");
                    assert!(x.exits[exc] / n >= 8, "forkwait hidden faults: {}", x.exits[exc] / n);
                }
            }
        }
    }
    for (i, b) in Bench::ALL.iter().enumerate() {
        let (e, p, v) = (&bare.measurements[i].cost, &pv.measurements[i].cost, &v386.measurements[i].cost);
        // The bare machine has no VMM.
        assert_eq!((e.all_exits(), e.mmio), (0, 0), "{}", b.name());
        // Every iteration does the same work: whole counts per iteration.
        assert_eq!(e.instructions % n, 0, "{}: {} instructions", b.name(), e.instructions);
        // Under V386 the guest runs its own code: the same instructions as on the bare
        // machine, but for an IN the VMM emulates (it does not retire in the guest).
        let emulated = if *b == Bench::In { n } else { 0 };
        assert_eq!(v.instructions + emulated, e.instructions, "{}", b.name());
        let (v_exits, p_exits) = (v.charged_exits() / n, p.charged_exits() / n);
        let (v_io, p_io, p_vcall) = (v.exits[io] / n, p.exits[io] / n, p.exits[vcall] / n);
        match b {
            // One IO exit an iteration under V386; the paravirtual build asks instead.
            Bench::In => {
                assert_eq!((v_exits, v_io), (1, 1), "V386 in");
                assert_eq!((p_exits, p_io, p_vcall), (1, 0, 1), "PV in");
                assert!(t.cost.cycles(v) / n >= t.cost.exit_cycles, "V386 in costs at least an exit");
            }
            // The TPR is device memory the VM owns after its first touch: no exit under
            // V386, a hypercall in the paravirtual build.
            Bench::Cr8wr => {
                assert_eq!((v_exits, v.mmio / n), (0, 1), "V386 cr8wr");
                assert_eq!((p_exits, p_vcall), (1, 1), "PV cr8wr");
            }
            // Second-level translation: the guest's page faults and PTE changes are its
            // own; the paravirtual build announces each PTE change.
            Bench::PgFault => {
                assert_eq!(v_exits, 0, "V386 pgfault");
                assert_eq!((p_exits, p_vcall), (2, 2), "PV pgfault");
            }
            Bench::PteMod => {
                assert_eq!(v_exits, 0, "V386 ptemod");
                assert_eq!((p_exits, p_vcall), (1, 1), "PV ptemod");
            }
            // Nothing privileged in the loop (forkwait's CR3 loads are the guest's own under
            // V386): no exit under either, the same code.
            Bench::Syscall | Bench::CallRet | Bench::DivZero | Bench::ForkWait => {
                assert_eq!((v_exits, p_exits), (0, 0), "{}", b.name());
                assert_eq!((v.instructions, p.instructions), (e.instructions, e.instructions), "{}", b.name());
            }
        }
    }
}

/// The cost model is a parameter: with exits free, V386's cycles are its instructions.
#[test]
fn the_exit_cost_is_configurable() {
    let Some(images) = images() else { return };
    let cfg = LabConfig { iterations: 100, cost: CostModel { exit_cycles: 0, ..Default::default() } };
    let t = table(&images, &cfg);
    assert!(t.cycles().contains("0 per VM exit"), "{}", t.cycles());
    let v = column(&t, Technique::V386);
    for m in &v.measurements {
        assert_eq!(t.cost.cycles(&m.cost), m.cost.instructions, "{}", m.bench.name());
    }
}

/// `v386 lab` prints the table (every row, every column) and the wrong results.
#[test]
fn the_command_prints_the_table() {
    if !tool_available("nasm", "-v") {
        skip("nasm is not installed");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_v386"))
        .args(["lab", "--iterations", "50", "--exit-cost", "1000"])
        .output()
        .expect("run v386 lab");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("cycles per iteration, N = 50") && text.contains("1000 per VM exit"), "{text}");
    let in_row = text.lines().find(|l| l.starts_with("in ")).expect("the in row");
    assert_eq!(
        in_row.split_whitespace().collect::<Vec<_>>(),
        ["in", "3", "1002", "1002", "1002", "1003", "1002"],
        "{text}"
    );
    assert_eq!(text.matches(": PASS").count(), 6, "{text}");
    assert!(text.contains("2 Trap-and-emulate: 11\n    SGDT limit"), "{text}");
    assert!(text.contains("3 T&E + PSI: none"), "{text}");
}
