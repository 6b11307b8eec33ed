//! The `v386` command line: runs the built binary on tiny images written by the tests and
//! checks its output and exit statuses (see the exit-status table in src/bin/v386.rs).

use std::path::PathBuf;
use std::process::{Command, Output};

/// Write `bytes` to a file named `name` in Cargo's per-test temporary directory.
fn image(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}.bin"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn v386(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v386")).args(args).output().expect("run v386")
}

fn status(o: &Output) -> i32 {
    o.status.code().expect("v386 was killed by a signal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a real-mode flat image at 0x7c00 with debugcon on stdout and debug-exit at 0xf4.
fn run_real(name: &str, code: &[u8], extra: &[&str]) -> Output {
    let img = image(name, code);
    let mut args = vec![
        "--flat",
        img.to_str().unwrap(),
        "--load-addr",
        "0x7c00",
        "--entry",
        "0x7c00",
        "--mode",
        "real",
        "-debugcon",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4",
    ];
    args.extend_from_slice(extra);
    v386(&args)
}

/// mov al,'H'; out 0xe9,al; mov al,0; out 0xf4,al
const HELLO: &[u8] = &[0xb0, 0x48, 0xe6, 0xe9, 0xb0, 0x00, 0xe6, 0xf4];

#[test]
fn flat_real_mode_hello_exits_with_status_1() {
    let o = run_real("hello", HELLO, &[]);
    assert_eq!(o.stdout, b"H", "stderr: {}", stderr(&o));
    assert_eq!(status(&o), 1, "(0 << 1) | 1; stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("debug-exit"), "{}", stderr(&o));
}

#[test]
fn debug_exit_value_5_gives_status_11() {
    // mov al,5; out 0xf4,al
    let o = run_real("exit5", &[0xb0, 0x05, 0xe6, 0xf4], &[]);
    assert_eq!(status(&o), 11, "(5 << 1) | 1; stderr: {}", stderr(&o));
}

#[test]
fn debug_exit_at_another_port() {
    // mov al,2; out 0x80,al; with the default load address and entry (0x7c00)
    let img = image("exit-port80", &[0xb0, 0x02, 0xe6, 0x80]);
    let o = v386(&["--flat", img.to_str().unwrap(), "-device", "isa-debug-exit,iobase=0x80,iosize=1"]);
    assert_eq!(status(&o), 5, "stderr: {}", stderr(&o));
}

#[test]
fn halt_exits_with_status_0() {
    // cli; hlt
    let o = run_real("halt", &[0xfa, 0xf4], &[]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("halted"), "{}", stderr(&o));
}

#[test]
fn instruction_budget_exits_with_status_0() {
    // jmp $
    let o = run_real("spin", &[0xeb, 0xfe], &["--max-instructions", "2500000"]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("after 2500000 instructions"), "{}", stderr(&o));
}

#[test]
fn triple_fault_exits_with_status_4() {
    // lidt [0x7c06] (limit 0); int3 -> #GP -> #DF -> shutdown
    let code = [0x0f, 0x01, 0x1e, 0x06, 0x7c, 0xcc, 0, 0, 0, 0, 0, 0];
    let o = run_real("triple", &code, &[]);
    assert_eq!(status(&o), 4, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("triple fault"), "{}", stderr(&o));
}

#[test]
fn flat_pm32() {
    // mov al,'P'; out 0xe9,al; mov eax,7; out 0xf4,eax
    let code = [0xb0, 0x50, 0xe6, 0xe9, 0xb8, 0x07, 0x00, 0x00, 0x00, 0xe7, 0xf4];
    let img = image("pm32", &code);
    let o = v386(&[
        "--flat",
        img.to_str().unwrap(),
        "--load-addr",
        "0x100000",
        "--entry",
        "0x100000",
        "--mode",
        "pm32",
        "-debugcon",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
    ]);
    assert_eq!(o.stdout, b"P", "stderr: {}", stderr(&o));
    assert_eq!(status(&o), 15, "stderr: {}", stderr(&o));
}

#[test]
fn floppy_boot_sector() {
    let mut sector = HELLO.to_vec();
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    let img = image("floppy", &sector);
    let o = v386(&[
        "-fda",
        img.to_str().unwrap(),
        "-debugcon",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4",
        "-display",
        "none",
        "-no-reboot",
    ]);
    assert_eq!(o.stdout, b"H", "stderr: {}", stderr(&o));
    assert_eq!(status(&o), 1, "stderr: {}", stderr(&o));
}

#[test]
fn debugcon_to_file_and_null() {
    let img = image("hello-file", HELLO);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-debugcon.txt");
    let file_arg = format!("file:{}", out.display());
    let dev = "isa-debug-exit,iobase=0xf4";
    let o = v386(&["--flat", img.to_str().unwrap(), "-debugcon", &file_arg, "-device", dev]);
    assert_eq!(status(&o), 1, "stderr: {}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), b"H");

    let o = v386(&["--flat", img.to_str().unwrap(), "-debugcon", "null", "-device", dev]);
    assert_eq!(status(&o), 1, "stderr: {}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn usage_errors_exit_with_status_2() {
    for args in [
        &["--frobnicate"][..],
        &[],
        &["-fda"],
        &["--flat", "x.bin", "--mode", "long"],
        &["--flat", "x.bin", "--entry", "zz"],
        &["-fda", "a.img", "--flat", "b.bin"],
        &["-fda", "a.img", "-device", "e1000"],
    ] {
        let o = v386(args);
        assert_eq!(status(&o), 2, "{args:?}: stderr: {}", stderr(&o));
        assert!(stderr(&o).contains("error"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_hard_disk_without_a_bios_to_boot_it_is_a_clear_error() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_v386"))
        .args(["-hda", "whatever.img", "-L", "/nonexistent-firmware-dir"])
        .output()
        .unwrap();
    assert_eq!(status(&o), 2, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("no BIOS found"), "{}", stderr(&o));
}

#[test]
fn a_bad_bios_image_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("v386-cli-bios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bios = dir.join("short.bin");
    std::fs::write(&bios, [0u8; 1000]).unwrap();
    let o = v386(&["-bios", bios.to_str().unwrap()]);
    assert_eq!(status(&o), 2, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("multiple of 64 KiB"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_image_is_an_error() {
    let o = v386(&["-fda", "/nonexistent/v386-floppy.img"]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
}

#[test]
fn help_and_version() {
    let o = v386(&["--help"]);
    assert_eq!(status(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("-fda FILE"));
    let o = v386(&["-h"]);
    assert_eq!(status(&o), 0);
    let o = v386(&["--version"]);
    assert_eq!(status(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("v386 "));
}

#[test]
fn two_vms_each_print_with_their_prefix_and_counters_follow() {
    // mov al,'H'; out 0xe9,al; mov al,0x0a; out 0xe9,al; hlt (IF = 0: the VM is done)
    let mut sector = vec![0xb0, 0x48, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xfa, 0xf4];
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    let img = image("vm-floppy", &sector);
    let vm = format!("-fda {}", img.display());
    let o = v386(&["--vm", &vm, "--vm", &vm, "--max-instructions", "10000000"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(out.contains("[vm1 debugcon] H\n") && out.contains("[vm2 debugcon] H\n"), "stdout: {out}");
    let err = stderr(&o);
    for name in ["vm1", "vm2"] {
        assert!(err.contains(&format!("v386: {name} (V386, stopped: DeadHalt)")), "stderr: {err}");
        assert!(err.contains(&format!("v386: {name} exits: HLT 1, IO 2")), "stderr: {err}");
    }
    // A --vm value must describe one machine.
    assert_eq!(status(&v386(&["--vm", "--help"])), 2);
    assert_eq!(status(&v386(&["--vm", &vm, "-fda", img.to_str().unwrap()])), 2);
}

/// `-technique` inside `--vm`: the same Multiboot kernel on V386 and trap-and-emulated
/// by the software monitor, each summary line naming its technique; a BIOS-less floppy
/// (real mode) is refused by the monitor with its reason, and `-technique` outside
/// `--vm` is a usage error.
#[test]
fn each_vm_runs_under_its_technique() {
    // A Multiboot image loaded at 1 MiB as it is: mov al,'H'; out 0xe9,al; mov al,0x0a;
    // out 0xe9,al; cli; hlt.
    let kernel =
        v386::boot::multiboot::flat_image(0x10_0000, &[0xb0, 0x48, 0xe6, 0xe9, 0xb0, 0x0a, 0xe6, 0xe9, 0xfa, 0xf4]);
    let k = image("vm-multiboot", &kernel);
    let o = v386(&[
        "--vm",
        &format!("-kernel {}", k.display()),
        "--vm",
        &format!("-technique trap-and-emulate -kernel {}", k.display()),
        "--max-instructions",
        "10000000",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(out.contains("[vm1 debugcon] H\n") && out.contains("[vm2 debugcon] H\n"), "stdout: {out}");
    let err = stderr(&o);
    assert!(err.contains("v386: vm1 (V386, stopped: DeadHalt)"), "stderr: {err}");
    assert!(err.contains("v386: vm2 (Trap-and-emulate, stopped: DeadHalt)"), "stderr: {err}");

    let mut sector = vec![0xfa, 0xf4];
    sector.resize(510, 0);
    sector.extend_from_slice(&[0x55, 0xaa]);
    let floppy = image("vm-real-mode", &sector);
    let o = v386(&["--vm", &format!("-fda {} -technique scan-before-execute", floppy.display())]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("not in protected mode"), "{}", stderr(&o));
    let o = v386(&["-kernel", k.to_str().unwrap(), "-technique", "trap-and-emulate"]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("inside --vm"), "{}", stderr(&o));
}

#[test]
fn save_after_and_restore_continue_the_run_exactly() {
    // mov al,'a'; l: out 0xe9,al; inc al; jmp l — a byte on the debug console every three
    // instructions.
    let img = image("counter", &[0xb0, 0x61, 0xe6, 0xe9, 0xfe, 0xc0, 0xeb, 0xfa]);
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let snap = tmp.join("cli-counter.snap");
    let out = |name: &str| tmp.join(format!("cli-counter-{name}.txt"));
    let con = |name: &str| format!("file:{}", out(name).display());
    let img = img.to_str().unwrap();
    let snap_arg = snap.to_str().unwrap();
    let o = v386(&[
        "--flat",
        img,
        "--max-instructions",
        "3000",
        "-debugcon",
        &con("full"),
        "--save-after",
        "1000",
        snap_arg,
    ]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("saved the machine"), "{}", stderr(&o));
    let o = v386(&["--flat", img, "--max-instructions", "1000", "-debugcon", &con("first")]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    let o = v386(&["--restore", snap_arg, "--max-instructions", "2000", "-debugcon", &con("rest")]);
    assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("after 3000 instructions"), "the count goes on: {}", stderr(&o));
    let [full, first, rest] = ["full", "first", "rest"].map(|n| std::fs::read(out(n)).unwrap());
    assert!(!first.is_empty() && !rest.is_empty());
    assert_eq!([first, rest].concat(), full, "the restored run goes on where the first stopped");

    // A bad snapshot, and options the snapshot already decides.
    let bad = image("not-a-snapshot", b"hello");
    let o = v386(&["--restore", bad.to_str().unwrap()]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("not a v386 snapshot"), "{}", stderr(&o));
    let o = v386(&["--restore", snap_arg, "-m", "64"]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("'--restore' and 'options that describe the machine'"), "{}", stderr(&o));
}

/// `--save-after` with `--vm` saves the whole VMM; `--restore` of that snapshot runs its
/// VMs on, each printing with its name as prefix: a V386 VM (real-mode code) and a
/// trap-and-emulated one (the same loop as a Multiboot kernel) give, split at the save and
/// put together, the output of the run that was not split.
#[test]
fn a_vmm_saved_and_restored_runs_on_exactly() {
    // mov al,'a'; l: out 0xe9,al; inc al; jmp l — the same bytes in 16- and 32-bit code.
    let code = [0xb0, 0x61, 0xe6, 0xe9, 0xfe, 0xc0, 0xeb, 0xfa];
    let real = image("vmm-counter", &code);
    let pm = image("vmm-counter-pm", &v386::boot::multiboot::flat_image(0x10_0000, &code));
    let snap = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-vmm.snap");
    let snap_arg = snap.to_str().unwrap();
    let vm1 = format!("--flat {}", real.display());
    let vm2 = format!("-technique trap-and-emulate -kernel {}", pm.display());
    // Short turns, so that both VMs run before and after the save.
    let vms = ["--vm", vm1.as_str(), "--vm", vm2.as_str(), "--quantum", "1000"];
    let run = |extra: &[&str]| {
        let o = v386(&[&vms[..], extra].concat());
        assert_eq!(status(&o), 0, "stderr: {}", stderr(&o));
        o
    };
    let full = run(&["--max-instructions", "30000", "--save-after", "10000", snap_arg]);
    assert!(stderr(&full).contains("saved the VMM (2 VMs)"), "{}", stderr(&full));
    let first = run(&["--max-instructions", "10000"]);
    let rest = v386(&["--restore", snap_arg, "--max-instructions", "20000"]);
    assert_eq!(status(&rest), 0, "stderr: {}", stderr(&rest));
    assert!(stderr(&rest).contains("v386: vm2 (Trap-and-emulate, running)"), "{}", stderr(&rest));
    // Each VM's debug console, lines joined (the split cuts one line in two).
    let console = |o: &Output, vm: &str| -> String {
        let prefix = format!("[{vm} debugcon] ");
        String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
    };
    for vm in ["vm1", "vm2"] {
        let (f, a, b) = (console(&full, vm), console(&first, vm), console(&rest, vm));
        assert!(!a.is_empty() && !b.is_empty(), "{vm} printed before and after the save");
        assert_eq!(format!("{a}{b}"), f, "{vm}: the restored run goes on where the first stopped");
    }

    // Options the VMM's snapshot decides, or that it cannot take.
    let o = v386(&["--restore", snap_arg, "-debugcon", "stdio"]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("--restore of a VMM's snapshot"), "{}", stderr(&o));
    let o = v386(&["--restore", snap_arg, "--vm", vm1.as_str()]);
    assert_eq!(status(&o), 2);
    let o = v386(&["--vm", &format!("{vm1} --save-after 5 {snap_arg}")]);
    assert_eq!(status(&o), 2);
    assert!(stderr(&o).contains("give it once, outside"), "{}", stderr(&o));
}
