//! Helpers the integration tests share: the guest images `scripts/images.sh` builds into
//! `.cache/images/`, a scratch directory per test binary, and the rule for a missing
//! tool or image: skip, unless `V386_REQUIRE_QEMU` is set (CI sets it), then fail.
// Each test binary uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `.cache/images/`, where scripts/images.sh puts SeaBIOS, the kernel, the CD, ...
pub fn images() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache").join("images")
}

/// An image from `.cache/images/`, or None (skipped, or a failure under V386_REQUIRE_QEMU).
pub fn read_image(name: &str) -> Option<Vec<u8>> {
    match std::fs::read(images().join(name)) {
        Ok(d) => Some(d),
        Err(_) => {
            skip(&format!("{name} missing from .cache/images (run scripts/setup.sh)"));
            None
        }
    }
}

/// A scratch directory for test binary `name`, under target/ (CARGO_TARGET_TMPDIR).
pub fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create the output directory");
    dir
}

/// Whether a missing external tool or image fails the test instead of skipping it.
pub fn tools_required() -> bool {
    std::env::var_os("V386_REQUIRE_QEMU").is_some()
}

/// Skip (or, with `V386_REQUIRE_QEMU`, fail) because something is unavailable.
pub fn skip(why: &str) {
    assert!(!tools_required(), "{why} (V386_REQUIRE_QEMU is set)");
    eprintln!("SKIPPED: {why}; set V386_REQUIRE_QEMU=1 to make this a failure");
}

/// Whether `program arg` runs and succeeds (e.g. `nasm -v`).
pub fn tool_available(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `tests/guests/`, where the nasm guest programs live.
pub fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("guests")
}

/// Assemble `tests/guests/<name>.asm` with nasm into a flat image (scratch files under
/// `out_dir(scratch)`); None when nasm is not installed (the caller skips).
pub fn assemble_guest(name: &str, scratch: &str) -> Option<Vec<u8>> {
    assemble_guest_with(name, scratch, &[])
}

/// [`assemble_guest`] with nasm options such as `-DPARAVIRT`. Each call writes a file of
/// its own: tests run in parallel, and two assembling the same guest into one file let
/// one read an image the other was still writing (an intermittent `NoHeader`).
pub fn assemble_guest_with(name: &str, scratch: &str, defines: &[&str]) -> Option<Vec<u8>> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if !tool_available("nasm", "-v") {
        return None;
    }
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let src = guests_dir().join(format!("{name}.asm"));
    let img = out_dir(scratch).join(format!("{name}.{}.{n}.img", std::process::id()));
    // nasm wants the include directory with a trailing separator.
    let include = format!("{}{}", guests_dir().display(), std::path::MAIN_SEPARATOR);
    let out = Command::new("nasm")
        .args(["-f", "bin", "-I"])
        .arg(&include)
        .args(defines)
        .arg(&src)
        .arg("-o")
        .arg(&img)
        .output()
        .expect("run nasm");
    assert!(out.status.success(), "nasm failed on {}:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    let image = std::fs::read(&img).expect("read the assembled image");
    let _ = std::fs::remove_file(&img);
    Some(image)
}

/// Run an image the way `--flat IMG --load-addr 0x7c00 --entry 0x7e00 --mode real` does,
/// with 32 MiB and isa-debug-exit at `debug_exit_port`: what it printed on port 0xE9 and
/// why it stopped.
pub fn run_flat_real(img: &[u8], debug_exit_port: u16, budget: u64) -> (Vec<u8>, v386::cpu::StopReason) {
    use v386::machine::{Machine, MachineConfig, StartMode};
    let mut m =
        Machine::new(&MachineConfig { mem_mb: 32, debug_exit_port: Some(debug_exit_port), ..Default::default() })
            .expect("create the machine");
    m.load_flat(img, 0x7c00, 0x7e00, StartMode::Real).expect("load the image");
    let stop = m.run(budget);
    (m.take_debugcon(), stop)
}
