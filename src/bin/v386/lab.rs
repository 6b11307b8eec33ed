//! `v386 lab`: the technique lab (src/lab/, docs/techniques.md) from the command line —
//! the nanobenchmark guest under every technique, printed as Adams & Agesen's table.

use super::parse_u64;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use v386::lab::{self, Images, LabConfig, Table};

pub const HELP: &str = "\
v386 lab — one guest under six ways of virtualizing, measured side by side

USAGE:
    v386 lab [--kernel FILE] [--pv-kernel FILE] [--iterations N] [--exit-cost CYCLES]
             [--mmio-cost CYCLES]

Runs the nanobenchmarks of Adams & Agesen (ASPLOS 2006) — syscall, in, cr8wr, call/ret,
pgfault, divzero, ptemod — in the guest kernel tests/guests/nanobench.asm under each
technique: 1 Emulation (the bare machine), 5 Paravirtual (the -DPARAVIRT build in a VM,
privileged operations as hypercalls) and 6 V386 (a VM on the V386 extension); columns 2-4
(trap-and-emulate, with PSI, scan-before-execute) are not built yet. Prints cycles per
iteration, guest instructions per iteration and VM exits per iteration. Deterministic:
the same options print the same tables.

OPTIONS:
    --kernel FILE             The native build (nasm -f bin nanobench.asm). Default:
                              assembled with nasm from the source tree v386 was built
                              from.
    --pv-kernel FILE          The paravirtual build (nasm -f bin -DPARAVIRT ...). Default:
                              assembled likewise.
    --iterations N            N: each benchmark runs a warm-up of N, then N and 2N
                              iterations; the difference is measured (default 1000,
                              at most 1000000).
    --exit-cost CYCLES        Cycles charged per VM exit (default 12617: what an exit
                              added to Adams & Agesen's `in` on first-generation VT-x,
                              15826 - 3209 cycles).
    --mmio-cost CYCLES        Cycles per access to a VM's device memory (default 0).
    -h, --help                This help.

EXIT STATUS:
    0  every built column ran and its guest passed its self-check
    1  a column failed (the error is printed)
    2  usage error, unreadable image, or nasm missing when an image is not given
";

#[derive(Debug, PartialEq, Eq)]
struct LabOptions {
    kernel: Option<PathBuf>,
    pv_kernel: Option<PathBuf>,
    config: LabConfig,
}

fn parse(args: &[OsString]) -> Result<Option<LabOptions>, String> {
    let mut o = LabOptions { kernel: None, pv_kernel: None, config: LabConfig::default() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str().ok_or("an argument is not valid UTF-8")?;
        let flag = a.trim_start_matches('-');
        if flag == "h" || flag == "help" {
            return Ok(None);
        }
        let mut value = || -> Result<String, String> {
            it.next().and_then(|v| v.to_str()).map(String::from).ok_or(format!("option '{a}' needs a value"))
        };
        let number = |v: String| parse_u64(&v).ok_or(format!("'{v}' is not a valid number for '{a}'"));
        match flag {
            "kernel" => o.kernel = Some(PathBuf::from(value()?)),
            "pv-kernel" => o.pv_kernel = Some(PathBuf::from(value()?)),
            "iterations" => {
                let n = number(value()?)?;
                if !(1..=1_000_000).contains(&n) {
                    return Err(format!("--iterations {n}: the guest takes 1 to 1000000"));
                }
                o.config.iterations = n as u32;
            }
            "exit-cost" => o.config.cost.exit_cycles = number(value()?)?,
            "mmio-cost" => o.config.cost.mmio_cycles = number(value()?)?,
            _ => return Err(format!("unknown option '{a}' for 'v386 lab'")),
        }
    }
    Ok(Some(o))
}

/// Assemble the guest from the source tree this binary was built from.
fn assemble(paravirt: bool) -> Result<Vec<u8>, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guests/nanobench.asm");
    if !src.exists() {
        return Err(format!("{} is not there: give --kernel and --pv-kernel", src.display()));
    }
    let out = std::env::temp_dir().join(format!(
        "v386-lab-{}-{}.img",
        std::process::id(),
        if paravirt { "pv" } else { "native" }
    ));
    let mut cmd = Command::new("nasm");
    // Its includes (multiboot.inc, exc_stubs.inc) are beside it; nasm wants the trailing separator.
    let include = format!("{}{}", src.parent().unwrap_or(Path::new(".")).display(), std::path::MAIN_SEPARATOR);
    cmd.args(["-f", "bin", "-I"]).arg(include);
    if paravirt {
        cmd.arg("-DPARAVIRT");
    }
    let r = cmd
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run nasm ({e}): install it, or give --kernel and --pv-kernel"))?;
    if !r.status.success() {
        return Err(format!("nasm failed on {}:\n{}", src.display(), String::from_utf8_lossy(&r.stderr)));
    }
    let img = std::fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    Ok(img)
}

fn image(path: &Option<PathBuf>, paravirt: bool) -> Result<Vec<u8>, String> {
    match path {
        Some(p) => std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())),
        None => assemble(paravirt),
    }
}

/// `v386 lab ...`: the exit status.
pub fn main(args: &[OsString]) -> u8 {
    let o = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return 0;
        }
        Err(e) => {
            eprintln!("v386 lab: error: {e}\nv386 lab: try 'v386 lab --help'");
            return 2;
        }
    };
    let images = match (image(&o.kernel, false), image(&o.pv_kernel, true)) {
        (Ok(native), Ok(paravirtual)) => Images { native, paravirtual },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("v386 lab: error: {e}");
            return 2;
        }
    };
    let t = Table { columns: lab::run_all(&images, &o.config), cost: o.config.cost, iterations: o.config.iterations };
    let mut text =
        format!("{}\n{}\n{}\n{}\n{}\n", t.cycles(), t.instructions(), t.exits(), t.wrong_results(), t.monitor_work());
    for (tech, r) in &t.columns {
        if let Ok(col) = r {
            let report =
                col.serial.lines().filter(|l| !l.starts_with(lab::WRONG_PREFIX)).collect::<Vec<_>>().join("\n");
            text.push_str(&format!("{} {}: {}\n", tech.number(), tech.name(), report.trim_end()));
        }
    }
    // A closed pipe (`v386 lab | head`) is not an error worth a panic.
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).and_then(|_| out.flush()).is_err() {
        return 2;
    }
    let errors = t.errors();
    if errors.is_empty() {
        0
    } else {
        eprint!("{errors}");
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v386::lab::CostModel;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn lab_options() {
        let o = parse(&os(&["--iterations", "500", "--exit-cost", "0x100", "-kernel", "k.img"])).unwrap().unwrap();
        assert_eq!(o.config.iterations, 500);
        assert_eq!(o.config.cost, CostModel { exit_cycles: 256, ..CostModel::default() });
        assert_eq!(o.kernel, Some(PathBuf::from("k.img")));
        assert_eq!(o.pv_kernel, None);
        assert_eq!(parse(&os(&["--help"])).unwrap(), None);
        assert!(parse(&os(&["--iterations", "0"])).is_err());
        assert!(parse(&os(&["--iterations"])).is_err());
        assert!(parse(&os(&["--bogus"])).is_err());
    }
}
