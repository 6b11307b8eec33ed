//! Debian's memtest86+ (6.10, the ia32 image in `.cache/images/`, from scripts/images.sh)
//! boots through the Linux boot protocol (`-kernel`), sets up PAE paging, and completes its
//! first test (#0, "Address test, walking ones") with no errors. Its screen is mirrored to
//! ttyS0 with `console=ttyS0`: the "Test #" field is redrawn at row 4, column 35, so the
//! first test is complete once that field shows a later test's number.
//!
//! Prints instructions and wall seconds. Without the image the test prints why and passes,
//! unless `V386_REQUIRE_QEMU` is set.

mod common;
use common::read_image;

use std::time::Instant;

use v386::cpu::StopReason;
use v386::machine::{Machine, MachineConfig};

/// Instructions the test may take (the first test ends after about 0.7 billion with 32 MiB).
const BUDGET: u64 = 3_000_000_000;
/// The cursor move memtest uses before redrawing the test number.
const TEST_FIELD: &str = "\x1b[4;35H #";

/// Test numbers shown so far, in order.
fn tests_shown(text: &str) -> Vec<u32> {
    text.match_indices(TEST_FIELD)
        .filter_map(|(i, _)| {
            let digits: String = text[i + TEST_FIELD.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn memtest86plus_completes_its_first_test() {
    let Some(kernel) = read_image("memtest86+.bin") else { return };
    let mut m = Machine::new(&MachineConfig { mem_mb: 32, ..Default::default() }).unwrap();
    m.load_kernel(&kernel, None, "console=ttyS0").unwrap();
    let t = Instant::now();
    let mut text = String::new();
    loop {
        let r = m.run(20_000_000);
        text.push_str(&String::from_utf8_lossy(&m.take_serial()));
        let shown = tests_shown(&text);
        if shown.first() == Some(&0) && shown.iter().any(|&n| n > 0) {
            break;
        }
        assert!(
            r == StopReason::BudgetSpent && m.cpu.icount < BUDGET,
            "stopped ({r:?}) after {} instructions before test #0 completed; screen:\n{}",
            m.cpu.icount,
            text.replace('\x1b', "^")
        );
    }
    assert!(text.contains("[PAE]"), "memtest did not use PAE:\n{}", text.replace('\x1b', "^"));
    // The error counter is redrawn as "Errors: N": it must stay 0.
    let errors: Vec<&str> =
        text.match_indices("Errors: ").map(|(i, _)| text[i + 8..].split(' ').next().unwrap()).collect();
    assert!(!errors.is_empty() && errors.iter().all(|e| *e == "0"), "errors reported: {errors:?}");
    eprintln!(
        "memtest86+: test #0 complete, 0 errors, after {} instructions in {:.1} s",
        m.cpu.icount,
        t.elapsed().as_secs_f64()
    );
}
