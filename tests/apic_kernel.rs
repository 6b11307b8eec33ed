//! The local APIC and the I/O APIC as an operating system uses them, end to end:
//! `tests/guests/apic.asm` is a Multiboot v1 kernel that masks the 8259As, enables the
//! local APIC, counts periodic local APIC timer interrupts, then routes the PIT (ISA IRQ0,
//! I/O APIC pin 2) through an I/O APIC redirection entry and counts those, checking the
//! version registers, the ISR around each EOI and the ESR on the way. It prints its
//! progress and "PASS" (or "FAIL: <step>") on the debug console (port 0xE9) and leaves
//! through isa-debug-exit (port 0xF4).
//!
//! It is booted with `Machine::load_kernel` on v386 and with `qemu-system-i386 -kernel`,
//! and both must print exactly the same thing. QEMU's I/O APIC is asked to report the
//! 82093AA's version (11h) that v386 models, instead of its default 20h.
//!
//! nasm and qemu-system-i386 are external tools; when one is missing the test prints why
//! and passes, unless `V386_REQUIRE_QEMU` is set (as in tests/guests.rs).

mod common;
use common::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use v386::cpu::StopReason;
use v386::machine::{KernelKind, Machine, MachineConfig};

const DEBUG_EXIT_PORT: u16 = 0xf4;
const MEM_MB: u32 = 32;
/// Instructions v386 may spend (halted time counts too): the kernel needs about 16
/// timer periods of ~10 ms of guest time, i.e. ~16 M instructions' worth.
const BUDGET: u64 = 200_000_000;
const QEMU_TIMEOUT: Duration = Duration::from_secs(30);

/// What the kernel prints when everything works.
const EXPECTED: &str = "LAPIC version 00050014\n\
                        LAPIC timer: 8 periodic interrupts on vector 40\n\
                        LAPIC timer: one-shot interrupt\n\
                        IOAPIC version 00170011\n\
                        IOAPIC pin 2 (PIT, ISA IRQ0): 8 interrupts on vector 51\n\
                        PASS\n";

/// Assemble the kernel: its path and bytes; None when nasm is missing.
fn assemble() -> Option<(PathBuf, Vec<u8>)> {
    if !tool_available("nasm", "-v") {
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/apic.asm");
    let bin = out_dir("apic_kernel").join("apic.bin");
    // Its includes are beside it; nasm wants the trailing separator.
    let include = format!("{}{}", guests_dir().display(), std::path::MAIN_SEPARATOR);
    let out = Command::new("nasm")
        .args(["-f", "bin", "-I"])
        .arg(include)
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .output()
        .expect("run nasm");
    assert!(out.status.success(), "nasm failed on {}:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    let img = std::fs::read(&bin).expect("read the assembled kernel");
    Some((bin, img))
}

/// Boot on v386: the debug-console output and why the run stopped.
fn run_v386(img: &[u8]) -> (String, StopReason, u64) {
    let cfg = MachineConfig { mem_mb: MEM_MB, debug_exit_port: Some(DEBUG_EXIT_PORT), ..Default::default() };
    let mut m = Machine::new(&cfg).expect("create the machine");
    let kind = m.load_kernel(img, None, "").expect("load the kernel");
    assert_eq!(kind, KernelKind::Multiboot);
    let stop = m.run(BUDGET);
    (String::from_utf8_lossy(&m.take_debugcon()).into_owned(), stop, m.cpu.icount)
}

/// Boot on QEMU: the debug-console output and the exit status; None when QEMU is missing.
fn run_qemu(kernel: &Path) -> Option<(String, Option<i32>)> {
    if !tool_available("qemu-system-i386", "--version") {
        return None;
    }
    let mut child = Command::new("qemu-system-i386")
        .args(["-m", &MEM_MB.to_string(), "-display", "none", "-nodefaults"])
        .args(["-global", "ioapic.version=0x11"])
        .arg("-kernel")
        .arg(kernel)
        .args(["-debugcon", "stdio"])
        .args(["-device", &format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=4")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-i386");
    // Read stdout on a thread so a chatty guest cannot block QEMU on a full pipe.
    let mut stdout = child.stdout.take().expect("QEMU's stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
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
    let out = reader.join().expect("the reader thread");
    let code = status.and_then(|s| s.code());
    if code != Some(1) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        eprintln!("QEMU exited with {status:?} after {:.1} s: {err}", start.elapsed().as_secs_f64());
    }
    Some((String::from_utf8_lossy(&out).into_owned(), code))
}

#[test]
fn apic_kernel_counts_lapic_timer_and_ioapic_pit_interrupts() {
    let Some((path, img)) = assemble() else {
        skip("nasm is not installed");
        return;
    };

    let t = Instant::now();
    let (out, stop, icount) = run_v386(&img);
    eprintln!(
        "--- v386 output ({stop:?}, {icount} instructions, {:.2} s) ---\n{out}--- end ---",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(stop, StopReason::DebugExit(0), "the APIC kernel failed on v386:\n{out}");
    assert_eq!(out, EXPECTED);

    let Some((qemu_out, code)) = run_qemu(&path) else {
        skip("qemu-system-i386 is not installed");
        return;
    };
    eprintln!("--- QEMU output (exit status {code:?}) ---\n{qemu_out}--- end ---");
    // isa-debug-exit: QEMU exits with (value << 1) | 1.
    assert_eq!(code, Some(1), "the APIC kernel failed on QEMU:\n{qemu_out}");
    assert_eq!(out, qemu_out, "v386 (left) and QEMU (right) printed different things");
}
