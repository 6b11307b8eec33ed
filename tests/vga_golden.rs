//! Golden VGA text screens: what the 80×25 text console shows — every character code,
//! every attribute and the cursor — at two points the PC reaches deterministically:
//!
//! - `seabios_no_boot`: SeaBIOS (and its VGA BIOS) with no disks, once it has said "No
//!   bootable device" (as in tests/pc_boot.rs);
//! - `linux_boot`: Debian's kernel through the Linux boot protocol with its console on
//!   both the VGA (tty0) and COM1, once the shell prompt has appeared on COM1 (as in
//!   tests/linux_boot.rs).
//!
//! The machine's clock follows retired instructions and the tests look at the screen at
//! fixed instruction counts, so each run gives the same screen and it must match
//! `tests/golden/<name>.txt` exactly, except for the digits of kernel log timestamps,
//! which move with any change in instruction timing, and of the kernel-build-specific
//! sizes the kernel prints (Debian updates the kernel scripts/images.sh fetches). After
//! an intended change in what the guests see, run
//! `V386_BLESS=1 cargo test --test vga_golden` to rewrite the files and review their diff.
//! On a mismatch the screen the test got is left next to the test binary's scratch files
//! (`<name>.actual.txt` under CARGO_TARGET_TMPDIR) for comparison.
//!
//! Golden file format (plain text, see [`render`]):
//! - a comment line, then `size COLSxROWS`, `cursor COL,ROW` (or `cursor off`) and
//!   `cursor-shape START-END` (CRTC 0Ah/0Bh scan lines);
//! - `[text]`: one line per row between `|` bars, code page 437 shown as Unicode (the VGA
//!   ROM font's glyphs, as `TextScreen::to_text`);
//! - `[blank codes]`: cells shown as a space whose code is 00h or FFh rather than 20h, as
//!   `row R: C0-C1 XX` runs (usually none), so the text section plus this one give every
//!   character code exactly;
//! - `[attributes]`: one line per row, runs of `ATTR*COUNT` in hex and decimal, e.g.
//!   `row 00: 07*80`.
//!
//! Without the images (scripts/images.sh) the tests print why and pass, unless
//! `V386_REQUIRE_QEMU` is set (CI sets it).

mod common;
use common::*;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use v386::cpu::StopReason;
use v386::devices::vga::TextScreen;
use v386::machine::{Machine, MachineConfig};

/// The shell prompt tests/images/init sets.
const PROMPT: &str = "v386:/# ";
/// Instructions the Linux boot may take before the test gives up (it needs ~2.7 G).
const LINUX_BUDGET: u64 = 10_000_000_000;
/// Instructions SeaBIOS may take to give up booting (it needs ~100 M).
const SEABIOS_BUDGET: u64 = 300_000_000;

/// The character code page 437 `code` shows, as `TextScreen::to_text` maps it (a
/// one-cell screen; its blanks come back trimmed, as an empty line).
fn cp437_char(code: u8) -> char {
    let cell = TextScreen { cols: 1, rows: 1, cells: vec![u16::from(code)], cursor: None, cursor_shape: (0, 0) };
    cell.to_text().chars().next().filter(|&c| c != '\n').unwrap_or(' ')
}

/// The golden-file rendering of a text screen (the format is in the module comment).
fn render(s: &TextScreen, title: &str) -> String {
    let (cols, rows) = (usize::from(s.cols), usize::from(s.rows));
    let mut out = String::new();
    writeln!(out, "# v386 VGA text screen: {title} (tests/vga_golden.rs; V386_BLESS=1 rewrites it)").unwrap();
    writeln!(out, "size {cols}x{rows}").unwrap();
    match s.cursor {
        Some((c, r)) => writeln!(out, "cursor {c},{r}").unwrap(),
        None => writeln!(out, "cursor off").unwrap(),
    }
    writeln!(out, "cursor-shape {}-{}", s.cursor_shape.0, s.cursor_shape.1).unwrap();
    let row_cells = |r: usize| &s.cells[r * cols..(r + 1) * cols];
    let glyphs: Vec<char> = (0..=255).map(cp437_char).collect();

    out.push_str("[text]\n");
    for r in 0..rows {
        let line: String = row_cells(r).iter().map(|&c| glyphs[usize::from(c as u8)]).collect();
        writeln!(out, "|{line}|").unwrap();
    }

    out.push_str("[blank codes]\n");
    for r in 0..rows {
        for (start, len, code) in runs(row_cells(r).iter().map(|&c| c as u8)) {
            if code == 0x00 || code == 0xff {
                writeln!(out, "row {r:02}: {start}-{} {code:02x}", start + len - 1).unwrap();
            }
        }
    }

    out.push_str("[attributes]\n");
    for r in 0..rows {
        let line: Vec<String> =
            runs(row_cells(r).iter().map(|&c| (c >> 8) as u8)).map(|(_, n, a)| format!("{a:02x}*{n}")).collect();
        writeln!(out, "row {r:02}: {}", line.join(" ")).unwrap();
    }
    out
}

/// Runs of equal values: (first index, length, value).
fn runs(values: impl Iterator<Item = u8>) -> impl Iterator<Item = (usize, usize, u8)> {
    let mut v: Vec<(usize, usize, u8)> = Vec::new();
    for (i, x) in values.enumerate() {
        match v.last_mut() {
            Some((_, n, y)) if *y == x => *n += 1,
            _ => v.push((i, 1, x)),
        }
    }
    v.into_iter()
}

/// The text with the digits of kernel log timestamps (`[    2.929194]` at the start of a
/// row) turned into `#`: they move with any change in instruction timing, which is not
/// what these screens check. Everything else, and the timestamps' width, still counts.
fn mask_printk_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let stamp_end = line
            .strip_prefix("|[")
            .and_then(|rest| {
                rest.find(']')
                    .filter(|&n| n > 0 && rest[..n].chars().all(|c| c == ' ' || c == '.' || c.is_ascii_digit()))
            })
            .map(|n| n + 2);
        match stamp_end {
            Some(end) => {
                out.extend(line[..end].chars().map(|c| if c.is_ascii_digit() { '#' } else { c }));
                out.push_str(&line[end..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Kernel messages whose numbers depend on the kernel build (`scripts/images.sh` fetches
/// the newest Debian 6.1 kernel, so the build changes under the tests): the size of the
/// kernel's text and read-only data. Their digits are masked like the timestamps'.
const BUILD_SPECIFIC: [&str; 1] = ["Write protecting kernel text and read-only data: "];

/// [`mask_printk_times`], plus the digits after each [`BUILD_SPECIFIC`] message.
fn mask_unstable(text: &str) -> String {
    let masked = mask_printk_times(text);
    let mut out = String::with_capacity(masked.len());
    for line in masked.split_inclusive('\n') {
        match BUILD_SPECIFIC.iter().find_map(|m| line.find(m).map(|at| at + m.len())) {
            Some(at) => {
                let digits = line[at..].chars().take_while(|c| c.is_ascii_digit()).count();
                out.push_str(&line[..at]);
                out.extend(core::iter::repeat('#').take(digits));
                out.push_str(&line[at + digits..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[test]
fn build_specific_numbers_are_masked() {
    let a = "|[    3.1] Write protecting kernel text and read-only data: 12516k    |\n";
    let b = "|[    3.2] Write protecting kernel text and read-only data: 12568k    |\n";
    assert_eq!(mask_unstable(a), mask_unstable(b));
    assert_ne!(
        mask_unstable(a),
        mask_unstable("|[    3.1] Write protecting kernel text and read-only data: 1251k     |\n")
    );
}

#[test]
fn printk_timestamps_are_masked_and_nothing_else() {
    assert_eq!(mask_printk_times("|[    2.929194] ima: 1|\n|abc 12|\n"), "|[    #.######] ima: 1|\n|abc 12|\n");
    assert_ne!(mask_printk_times("|[    2.9] a|"), mask_printk_times("|[    2.9] b|"));
}

/// Compare the screen with `tests/golden/<name>.txt` (kernel log timestamps and
/// build-specific numbers aside, see [`mask_unstable`]), or rewrite that file under
/// V386_BLESS.
fn check_golden(name: &str, title: &str, screen: &TextScreen) {
    assert!(screen.cols > 0 && screen.rows > 0, "{name}: the VGA is not in a text mode");
    let actual = render(screen, title);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden").join(format!("{name}.txt"));
    if std::env::var_os("V386_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        eprintln!("BLESSED: wrote {}", path.display());
        return;
    }
    let Ok(expected) = std::fs::read_to_string(&path) else {
        panic!("{} is missing; create it with V386_BLESS=1. The screen:\n{actual}", path.display());
    };
    if mask_unstable(&expected) == mask_unstable(&actual) {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vga_golden");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join(format!("{name}.actual.txt"));
    std::fs::write(&saved, &actual).unwrap();
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut diff = String::new();
    for i in 0..e.len().max(a.len()) {
        let (el, al) = (e.get(i).copied().unwrap_or("<none>"), a.get(i).copied().unwrap_or("<none>"));
        if el != al {
            writeln!(diff, "line {}:\n  golden: {el}\n  actual: {al}", i + 1).unwrap();
        }
    }
    panic!(
        "{name}: the VGA screen differs from {} (actual screen saved to {}; if the change is intended, \
         rerun with V386_BLESS=1)\n{diff}\nactual screen:\n{actual}",
        path.display(),
        saved.display()
    );
}

#[test]
fn seabios_no_bootable_device_screen() {
    let (Some(bios), Some(vga)) = (read_image("bios.bin"), read_image("vgabios-stdvga.bin")) else { return };
    let mut m = Machine::new(&MachineConfig { mem_mb: 32, ..Default::default() }).unwrap();
    m.load_bios(&bios, Some(&vga)).unwrap();
    let t = Instant::now();
    let mut serial = Vec::new();
    loop {
        let r = m.run(5_000_000);
        serial.extend(m.take_serial());
        let said = String::from_utf8_lossy(&serial).contains("No bootable device");
        if said && m.vga_text().to_text().contains("No bootable device") {
            break;
        }
        assert!(
            r == StopReason::BudgetSpent && m.cpu.icount < SEABIOS_BUDGET,
            "stopped ({r:?}) after {} instructions; serial:\n{}",
            m.cpu.icount,
            String::from_utf8_lossy(&serial)
        );
    }
    println!("SeaBIOS: no bootable device after {} instructions, {:.1} s", m.cpu.icount, t.elapsed().as_secs_f64());
    check_golden("seabios_no_boot", "SeaBIOS, no bootable device", &m.vga_text());
}

#[test]
fn linux_boot_screen() {
    let (Some(kernel), Some(initrd)) = (read_image("vmlinuz"), read_image("initramfs.cpio.gz")) else { return };
    let mut m = Machine::new(&MachineConfig { mem_mb: 128, ..Default::default() }).unwrap();
    // The kernel log on the VGA console (tty0) and on COM1, which stays /dev/console
    // (the last console= wins) and carries the shell; no crypto self-tests (see
    // tests/linux_boot.rs).
    m.load_kernel(&kernel, Some(&initrd), "console=tty0 console=ttyS0 cryptomgr.notests").unwrap();
    let t = Instant::now();
    let mut serial = String::new();
    loop {
        let r = m.run(20_000_000);
        serial.push_str(&String::from_utf8_lossy(&m.take_serial()));
        if serial.contains(PROMPT) {
            break;
        }
        assert!(
            r == StopReason::BudgetSpent && m.cpu.icount < LINUX_BUDGET,
            "stopped ({r:?}) after {} instructions waiting for the prompt; serial:\n{serial}",
            m.cpu.icount
        );
    }
    println!("Linux: shell prompt after {} instructions, {:.1} s", m.cpu.icount, t.elapsed().as_secs_f64());
    check_golden("linux_boot", "Debian Linux 6.1 booted to its shell prompt", &m.vga_text());
}
