//! Guest-program tests: assemble a self-checking guest from `tests/guests/` with nasm, run
//! it on v386 in-process and on QEMU, and require that it passes on v386 and that both
//! emulators print exactly the same thing on the debug console (port 0xE9). (The FERR#
//! guest is compared only with QEMU 8.0 or later: older ones abort on it.)
//!
//! nasm and qemu-system-i386 are external tools. When one is missing the test prints why
//! and passes, unless the environment variable `V386_REQUIRE_QEMU` is set, in which case a
//! missing tool is a failure (CI sets it).

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use v386::cpu::StopReason;

/// The isa-debug-exit port the guests write their result to.
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Instructions v386 may spend on one guest.
const BUDGET: u64 = 50_000_000;
/// A 1.44 MB floppy, what QEMU boots the image from.
const FLOPPY_SIZE: usize = 1_474_560;
/// Wall-clock limit for one QEMU run.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

/// Boot an image on QEMU from a floppy (SeaBIOS loads the boot sector, whose loader reads
/// the rest): the debug-console output and QEMU's exit status. None when QEMU is missing.
fn run_qemu(name: &str, img: &[u8]) -> Option<(Vec<u8>, Option<i32>)> {
    if !tool_available("qemu-system-i386", "--version") {
        return None;
    }
    let dir = out_dir("guests");
    let floppy = dir.join(format!("{name}.qemu.img"));
    let log = dir.join(format!("{name}.qemu.log"));
    let mut padded = img.to_vec();
    assert!(padded.len() <= FLOPPY_SIZE, "the image does not fit on a floppy");
    padded.resize(FLOPPY_SIZE, 0);
    std::fs::write(&floppy, &padded).expect("write the floppy image");
    let _ = std::fs::remove_file(&log);

    let mut child = Command::new("qemu-system-i386")
        .args(["-cpu", "pentium2", "-display", "none", "-nodefaults", "-drive"])
        .arg(format!("file={},if=floppy,format=raw", floppy.display()))
        .args(["-boot", "a", "-debugcon"])
        .arg(format!("file:{}", log.display()))
        .args(["-device", &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=4")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-i386");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for QEMU") {
            break Some(status);
        }
        if start.elapsed() > QEMU_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let code = match status {
        Some(s) => {
            // isa-debug-exit makes QEMU exit with (V << 1) | 1; anything else is QEMU's own.
            if s.code().map_or(true, |c| c & 1 == 0) {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                eprintln!("QEMU exited with {s}: {err}");
            }
            s.code()
        }
        None => {
            eprintln!("QEMU timed out after {QEMU_TIMEOUT:?}");
            None
        }
    };
    Some((std::fs::read(&log).unwrap_or_default(), code))
}

/// QEMU's major version, if it runs.
fn qemu_major_version() -> Option<u32> {
    let out = Command::new("qemu-system-i386").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text.split("version ").nth(1)?;
    version.split('.').next()?.trim().parse().ok()
}

/// Assemble a guest and require that it passes on v386: the image and what it printed;
/// None when skipped (no nasm).
fn check_guest_on_v386(name: &str) -> Option<(Vec<u8>, String)> {
    let Some(img) = assemble_guest(name, "guests") else {
        skip("nasm is not installed");
        return None;
    };

    let (v386_out, stop) = run_flat_real(&img, DEBUG_EXIT_PORT, BUDGET);
    let v386_text = String::from_utf8_lossy(&v386_out).into_owned();
    eprintln!("--- v386 output ({stop:?}) ---\n{v386_text}--- end ---");
    assert!(
        v386_text.ends_with("PASS\n") && stop == StopReason::DebugExit(0),
        "{name} did not pass on v386: stopped with {stop:?}, output:\n{v386_text}"
    );
    Some((img, v386_text))
}

/// The whole check for one guest.
fn check_guest(name: &str) {
    let Some((img, v386_text)) = check_guest_on_v386(name) else { return };

    let Some((qemu_out, qemu_code)) = run_qemu(name, &img) else {
        skip("qemu-system-i386 is not installed");
        return;
    };
    let qemu_text = String::from_utf8_lossy(&qemu_out).into_owned();
    assert_eq!(qemu_code, Some(1), "{name} on QEMU: expected exit status 1 (debug-exit value 0), output:\n{qemu_text}");
    assert_eq!(v386_text, qemu_text, "{name}: v386 (left) and QEMU (right) printed different things");
}

/// Protected mode, paging, #PF and #GP handling, a V86 monitor and hardware task switches
/// (tests/guests/selftest.asm).
#[test]
fn selftest_guest() {
    check_guest("selftest");
}

/// x87 errors with CR0.NE = 0 reach IRQ13 through the slave 8259A and port F0h
/// acknowledges them; with CR0.NE = 1 they are #MF (tests/guests/ferr.asm).
#[test]
fn ferr_irq13_guest() {
    // QEMU before 8.0 aborts when TCG raises FERR# (it raises the IRQ without the I/O
    // thread lock: "tcg_handle_interrupt: assertion failed"), so only later ones compare.
    match qemu_major_version() {
        Some(v) if v < 8 => {
            eprintln!("QEMU {v}.x aborts on FERR#: checking v386 alone");
            let Some((_, out)) = check_guest_on_v386("ferr") else { return };
            assert_eq!(
                out,
                "x87 zero-divide with CR0.NE=0: IRQ13, status word low byte 84\n\
                 IRQ13 once: FNCLEX ended the error\n\
                 masked zero-divide: no IRQ13\n\
                 CR0.NE=1: #MF at FWAIT, no IRQ13\n\
                 PASS\n"
            );
        }
        _ => check_guest("ferr"),
    }
}
