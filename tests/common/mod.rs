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
