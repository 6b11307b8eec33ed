//! Building images (nasm), running them under QEMU (with a cache) and under v386, parsing
//! the dumps.

use super::asm;
use super::gen::{Case, Mode, BLOB_BASE, CODE_BASE};
use super::rng::fnv1a;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const DUMP_LEN: usize = 216;
/// Bump when the harness changes in a way the cache key (image bytes) would not see.
const CACHE_VERSION: &[u8] = b"v386-diff-1";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Assemble an image for `cases` (all of `mode`). Returns the unpadded image.
pub fn build_image(mode: Mode, cases: &[Case], work: &Path) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    let mut code = Vec::new();
    for c in cases {
        let at = CODE_BASE + code.len() as u32;
        assert_eq!(at, c.base, "case layout");
        code.extend(c.code());
    }
    let mut blobs = Vec::new();
    for c in cases {
        blobs.extend(c.blob());
    }
    std::fs::write(work.join("code.bin"), &code).map_err(|e| e.to_string())?;
    std::fs::write(work.join("blobs.bin"), &blobs).map_err(|e| e.to_string())?;
    std::fs::write(work.join("x.asm"), asm::prologue(mode)).map_err(|e| e.to_string())?;
    let inc = format!("{}/", root().join("tests/guests").display());
    let out = Command::new("nasm")
        .current_dir(work)
        .args(["-f", "bin", "-I", &inc, "x.asm", "-o", "x.img"])
        .output()
        .map_err(|e| format!("nasm: {e}"))?;
    if !out.status.success() {
        return Err(format!("nasm failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let img = std::fs::read(work.join("x.img")).map_err(|e| e.to_string())?;
    let _ = BLOB_BASE;
    Ok(img)
}

/// The image v386 runs: QEMU's, with the cases' own bytes where QEMU runs substitutes.
pub fn v386_image(qemu_img: &[u8], cases: &[Case]) -> Vec<u8> {
    let mut img = qemu_img.to_vec();
    for c in cases {
        if c.qemu_insn.is_some() {
            let at = (c.entry - 0x7c00) as usize;
            img[at..at + c.insn.len()].copy_from_slice(&c.insn);
        }
    }
    img
}

fn cache_dir() -> PathBuf {
    root().join("target/diff-cache")
}

/// QEMU's debugcon output for `img`, from the cache or by running QEMU.
pub fn qemu(img: &[u8], work: &Path) -> Result<(Vec<u8>, bool), (String, Vec<u8>)> {
    let mut key = CACHE_VERSION.to_vec();
    key.extend_from_slice(img);
    let h = fnv1a(&key);
    let cached = cache_dir().join(format!("{h:016x}.bin"));
    if let Ok(b) = std::fs::read(&cached) {
        return Ok((b, true));
    }
    let mut padded = img.to_vec();
    padded.resize(1474560, 0);
    let imgp = work.join("floppy.img");
    let outp = work.join("debugcon.out");
    std::fs::write(&imgp, &padded).map_err(|e| (e.to_string(), vec![]))?;
    let _ = std::fs::remove_file(&outp);
    let mut child = Command::new("qemu-system-i386")
        .args(["-accel", "tcg", "-cpu", "pentium2", "-display", "none", "-nodefaults", "-no-reboot", "-m", "32"])
        .arg("-drive")
        .arg(format!("file={},if=floppy,format=raw", imgp.display()))
        .args(["-boot", "a"])
        .arg("-debugcon")
        .arg(format!("file:{}", outp.display()))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("qemu: {e}"), vec![]))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| (e.to_string(), vec![]))? {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read(&outp).unwrap_or_default();
    match status {
        Some(s) if s.code() == Some(1) => {
            let _ = std::fs::create_dir_all(cache_dir());
            let _ = std::fs::write(&cached, &out);
            Ok((out, false))
        }
        Some(s) => Err((format!("qemu exited with {s} after {} dump bytes", out.len()), out)),
        None => Err((format!("qemu timed out after {} dump bytes", out.len()), out)),
    }
}

/// v386's debugcon output for `img` from blob `first` on, and why it stopped.
pub fn v386(img: &[u8], first: usize, budget: u64) -> (Vec<u8>, String) {
    use v386::machine::{Machine, MachineConfig, StartMode};
    let mut img = img.to_vec();
    // the prologue's `first_blob` dword at 0x7E08
    let fb = (BLOB_BASE as usize + first * super::gen::BLOB_SZ) as u32;
    img[0x208..0x20c].copy_from_slice(&fb.to_le_bytes());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut m =
            Machine::new(&MachineConfig { mem_mb: 32, debug_exit_port: Some(0xf4), ..Default::default() }).unwrap();
        m.load_flat(&img, 0x7c00, 0x7e00, StartMode::Real).unwrap();
        let stop = m.run(budget);
        (m.take_debugcon(), format!("{stop:?}"))
    }));
    match r {
        Ok(x) => x,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "?".into());
            (Vec::new(), format!("panic: {msg}"))
        }
    }
}

/// One case's dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    pub vector: u8,
    pub id: u16,
    pub regs: [u32; 8],
    pub eflags: u32,
    /// ES CS SS DS FS GS
    pub segs: [u16; 6],
    pub cr: [u32; 4],
    pub gdtr: [u8; 6],
    pub idtr: [u8; 6],
    pub tr: u16,
    pub ldtr: u16,
    pub pte: u32,
    pub mem: [u8; 128],
}

fn u32at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u16at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}

/// Parse a debugcon stream into dumps. Stops at the first malformed record.
pub fn parse(out: &[u8]) -> (Vec<Dump>, Option<String>) {
    let mut v = Vec::new();
    let mut o = 0;
    while o + DUMP_LEN <= out.len() {
        let r = &out[o..o + DUMP_LEN];
        if r[0] != 0x43 {
            return (v, Some(format!("bad record marker {:#x} at byte {o}", r[0])));
        }
        let mut regs = [0; 8];
        for (k, x) in regs.iter_mut().enumerate() {
            *x = u32at(r, 4 + 4 * k);
        }
        let mut segs = [0; 6];
        for (k, x) in segs.iter_mut().enumerate() {
            *x = u16at(r, 40 + 2 * k);
        }
        let mut cr = [0; 4];
        for (k, x) in cr.iter_mut().enumerate() {
            *x = u32at(r, 52 + 4 * k);
        }
        v.push(Dump {
            vector: r[1],
            id: u16at(r, 2),
            regs,
            eflags: u32at(r, 36),
            segs,
            cr,
            gdtr: r[68..74].try_into().unwrap(),
            idtr: r[74..80].try_into().unwrap(),
            tr: u16at(r, 80),
            ldtr: u16at(r, 82),
            pte: u32at(r, 84),
            mem: r[88..216].try_into().unwrap(),
        });
        o += DUMP_LEN;
    }
    let tail = if o != out.len() { Some(format!("{} trailing bytes", out.len() - o)) } else { None };
    (v, tail)
}
