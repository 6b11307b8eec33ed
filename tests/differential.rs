//! Differential test against QEMU (`qemu-system-i386 -cpu pentium2`, TCG): generated test
//! programs for every opcode form, in real mode and 32-bit protected mode with and without
//! paging, run under QEMU and under v386; their register/flag/memory dumps must agree.
//! See `tests/diff/README.md`.
//!
//! Env: `V386_DIFF_SEED` (default fixed), `V386_DIFF_CASES` (cases per form and mode),
//! `V386_REQUIRE_QEMU` (fail instead of skipping when qemu-system-i386 or nasm is missing),
//! `V386_DIFF_MAX_REPORT` (mismatches printed in full, default 200).

mod diff;

use std::collections::BTreeMap;

#[test]
fn differential_against_qemu() {
    let missing: Vec<&str> = ["qemu-system-i386", "nasm"].into_iter().filter(|t| !diff::run::have(t)).collect();
    if !missing.is_empty() {
        if std::env::var_os("V386_REQUIRE_QEMU").is_some() {
            panic!("differential test: {} not found and V386_REQUIRE_QEMU is set", missing.join(", "));
        }
        println!(
            "SKIPPED differential_against_qemu: {} not found (set V386_REQUIRE_QEMU to make this fail)",
            missing.join(", ")
        );
        return;
    }
    let cfg = diff::Config::from_env();
    let t0 = std::time::Instant::now();
    let (images, failed) = diff::generate(&cfg);
    let ncases: usize = images.iter().map(|i| i.cases.len()).sum();
    println!(
        "differential: seed {:#x}, {} cases per form and mode, {} cases in {} images (generated in {:.1?})",
        cfg.seed,
        cfg.cases_per_form,
        ncases,
        images.len(),
        t0.elapsed()
    );
    let out = diff::run_all(&cfg, &images);
    println!(
        "QEMU: {} images run, {} from the cache (target/diff-cache); total {:.1?}",
        out.qemu_ran,
        out.qemu_cached,
        t0.elapsed()
    );
    println!("{}", diff::coverage_table(&out, &failed));
    for e in &out.harness_errors {
        println!("HARNESS ERROR: {e}");
    }
    // mismatches: summary by form, then details
    let mut by_form: BTreeMap<usize, (usize, Vec<&'static str>)> = BTreeMap::new();
    for m in &out.mismatches {
        let e = by_form.entry(m.case.form).or_default();
        e.0 += 1;
        if !e.1.contains(&m.case.mode.name()) {
            e.1.push(m.case.mode.name());
        }
    }
    if !out.mismatches.is_empty() {
        println!("\nMismatches by form ({} in all):", out.mismatches.len());
        for (f, (n, modes)) in &by_form {
            println!("  {:<44} {:>5}  [{}]", diff::short(*f), n, modes.join(" "));
        }
        let max: usize = std::env::var("V386_DIFF_MAX_REPORT").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
        // print up to 3 per form first, so every form is represented
        let mut shown: BTreeMap<usize, usize> = BTreeMap::new();
        let mut printed = 0;
        println!("\nMismatch details (first {max}; expected = QEMU, got = v386):");
        for m in &out.mismatches {
            let k = shown.entry(m.case.form).or_default();
            if *k >= 3 || printed >= max {
                continue;
            }
            *k += 1;
            printed += 1;
            print!("{}", m.text);
        }
    }
    assert!(out.harness_errors.is_empty(), "{} harness errors", out.harness_errors.len());
    assert!(out.mismatches.is_empty(), "{} mismatches against QEMU", out.mismatches.len());
}
