//! `v386`: the native command-line runner. Options follow QEMU's spelling so the same
//! command lines (and the same test harnesses) work with both; see `v386 --help`.
//!
//! Exit statuses:
//! - `0`: the guest halted (HLT with no interrupt to wake it) or `--max-instructions` ran out;
//! - `(V << 1) | 1`: the guest wrote V to the isa-debug-exit port (as QEMU does; the OS
//!   keeps the low 8 bits);
//! - `2`: usage error, unreadable image or a host-side error (bad memory size, ...);
//! - `4`: triple fault (the processor shut down). Even, so it never equals a debug-exit
//!   status, which is always odd.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod lab;
mod vms;

use v386::cpu::StopReason;
use v386::machine::{ClockMode, Machine, MachineConfig, MachineError, StartMode};

/// Instructions per run slice: debug-console output is flushed after each.
const SLICE: u64 = 1_000_000;
/// QEMU's default iobase of `isa-debug-exit` (hw/misc/debugexit.c).
const QEMU_DEBUG_EXIT_IOBASE: u16 = 0x501;
/// QEMU's default iosize of `isa-debug-exit`.
const QEMU_DEBUG_EXIT_IOSIZE: u16 = 2;
/// Guest RAM when `-m` is not given.
const DEFAULT_MEM_MB: u32 = 32;

/// Exit status for usage and host errors.
const EXIT_USAGE: u8 = 2;
/// Exit status for a triple fault.
const EXIT_SHUTDOWN: u8 = 4;

const HELP: &str = "\
v386 — an x86 PC emulator (P6-class i386 CPU) with QEMU-style options

USAGE:
    v386 -cdrom CD.iso | -hda DISK.img | -bios BIOS [-fda FLOPPY.img] [OPTIONS]
    v386 -kernel KERNEL [-initrd FILE] [-append CMDLINE] [OPTIONS]
    v386 -fda FLOPPY.img [OPTIONS]
    v386 --flat IMAGE [--load-addr A] [--entry A] [--mode real|pm32] [OPTIONS]
    v386 --vm 'MACHINE OPTIONS [-technique NAME]' --vm '...' ... [--quantum N] [--max-instructions N]
    v386 --restore SNAPSHOT [OPTIONS]
    v386 lab [OPTIONS]        The technique lab: nanobenchmarks under each way of
                              virtualizing (see 'v386 lab --help').

BOOT:
    -fda FILE                 Floppy image. With a BIOS (-bios, -L, -hda, -cdrom or
                              -boot) it is drive A:; alone, its first sector is loaded at
                              0000:7C00 and started in real mode with DL = 0, no BIOS.
    --flat FILE               Raw binary, no BIOS: loaded at --load-addr and started at
                              --entry in --mode.
      --load-addr A           Physical load address (default 0x7c00 in real mode,
                              0x100000 in pm32).
      --entry A               Physical entry point (default: the load address). Real
                              mode: CS = 0, IP = A when A < 64 KiB, else CS = (A >> 4) & 0xF000.
      --mode real|pm32        real (default), or 32-bit protected mode with flat segments
                              (code 0x08, data 0x10) and ESP = load address.
    -hda FILE                 Hard-disk image (IDE primary master); boots through the BIOS.
    -cdrom FILE               CD image, ISO 9660 (IDE secondary master); boots through
                              the BIOS (El Torito).
    -boot ORDER               BIOS boot order, letters a (floppy), c (disk), d (CD);
                              order= and once= prefixes accepted (default: a, c, d).
    -L DIR                    Where to find bios.bin and vgabios-stdvga.bin when -bios is
                              not given (default: $V386_FIRMWARE_DIR, .cache/images,
                              /usr/share/seabios). With -bios, -L, -hda, -cdrom or -boot,
                              -fda is a floppy in drive A: of a BIOS boot.

OPTIONS:
    -kernel FILE              Start a kernel without a BIOS: a Linux bzImage (Linux boot
                              protocol) or a Multiboot v1 kernel.
      -initrd FILE            Its initramfs (Linux) or module (Multiboot).
      -append CMDLINE         Its command line.
    -m MB                     Guest RAM in MiB (suffix M or G accepted; default 32).
    -debugcon stdio|file:PATH|null
                              Where guest writes to port 0xE9 go (default: discarded,
                              as in QEMU).
    -serial stdio|file:PATH|null
                              Where the first serial port (COM1, a 16550A) goes; stdio
                              also feeds standard input to it (default: null).
    -bios FILE                Boot this BIOS image (SeaBIOS's bios.bin); its VGA BIOS,
                              vgabios-stdvga.bin, is read from the same directory.
                              Set V386_FIRMWARE_LOG=PATH to keep the BIOS's debug log
                              (port 0x402).
    --clock deterministic|wall
                              Timers follow retired instructions (default: the same run
                              gives the same output) or the host's clock.
    -device isa-debug-exit[,iobase=P][,iosize=N]
                              A guest write of V to port P ends the run with exit status
                              (V << 1) | 1. Defaults as in QEMU: iobase=0x501, iosize=2.
    --max-instructions N      Stop after N instructions (exit status 0).
    --vm 'OPTIONS'            Run a machine described by OPTIONS (the options above, e.g.
                              '-hda a.img -m 64' or '-kernel bzImage -initrd rd.gz
                              -append console=ttyS0') as a VM under the VMM; give --vm
                              once per VM. Each VM's serial line and debug console go to
                              the terminal with a '[vmN] ' prefix unless its options say
                              -serial/-debugcon file:PATH or null. Exit counters per VM
                              are printed at the end, with each VM's technique.
      -technique NAME         Inside a --vm value: how the VMM runs that VM. v386 (the
                              default: on the V386 extension), paravirtual (the same,
                              for a guest that makes VCALL hypercalls), emulation (on a
                              software processor of the VMM's: nothing exits), or under
                              a software monitor on the classic x86: trap-and-emulate,
                              trap-and-emulate-psi (with CR4.PSI) or scan-before-execute;
                              these need a guest in protected mode from its start (a
                              Multiboot -kernel). Outside --vm only 'emulation' (one bare
                              machine) is accepted. See docs/techniques.md.
    --quantum N               Guest instructions per VM turn (default 100000).
    --save-after N FILE       Once N instructions have retired, save the whole machine
                              (processor, RAM, devices, images, clock) to the snapshot
                              FILE, and run on. With --vm: the whole VMM (every VM, the
                              exit log) once N of the run's instructions have passed.
    --restore FILE            Start from a snapshot instead of booting: the machine, its
                              images, memory size and clock come from FILE; only -serial,
                              -debugcon, --max-instructions and --save-after apply. A
                              VMM's snapshot runs its VMs on, each printing to the
                              terminal with its name as prefix (-serial and -debugcon do
                              not apply).
    -display none, -nographic, -no-reboot
                              Accepted for compatibility; no effect.
    -h, --help                This help.
    --version                 Print the version.

Numbers are decimal or 0x-prefixed hexadecimal. Options may be written with one or two
leading dashes.

EXIT STATUS:
    0                         the guest halted, or --max-instructions ran out
    (V << 1) | 1              the guest wrote V to the isa-debug-exit port
    2                         usage error or host error (unreadable image, bad -m, ...)
    4                         triple fault (processor shutdown)
";

/// Where debug-console output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DebugconSink {
    Stdout,
    File(PathBuf),
    Null,
}

/// Where the first serial port is connected.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SerialSink {
    /// Output to standard output, input from standard input.
    Stdio,
    File(PathBuf),
    Null,
}

/// What to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Boot {
    /// A BIOS boot: the BIOS image (its VGA BIOS, `vgabios-stdvga.bin`, is read from the
    /// same directory when present) and the drives.
    Bios {
        bios: PathBuf,
        fda: Option<PathBuf>,
        hda: Option<PathBuf>,
        cdrom: Option<PathBuf>,
        order: Option<String>,
    },
    /// A kernel started without a BIOS (Linux boot protocol or Multiboot).
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
    },
    Floppy(PathBuf),
    Flat {
        path: PathBuf,
        load_addr: Option<u32>,
        entry: Option<u32>,
        mode: StartMode,
    },
    /// A machine saved by `--save-after`, started where it was saved.
    Restore(PathBuf),
}

/// The `-device isa-debug-exit` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DebugExitOpt {
    iobase: u16,
    iosize: u16,
}

/// A parsed command line that asks for a run.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Options {
    boot: Boot,
    mem_mb: u32,
    debugcon: DebugconSink,
    /// Where COM1's output goes (and, for stdio, where its input comes from).
    serial: SerialSink,
    clock: ClockMode,
    debug_exit: Option<DebugExitOpt>,
    max_instructions: Option<u64>,
    /// `--save-after N FILE`.
    save_after: Option<(u64, PathBuf)>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Command {
    Help,
    Version,
    Run(Options),
    /// `--vm` given: several machines as VMs under the VMM.
    RunVms(vms::VmsOptions),
}

/// Everything that makes `v386` exit with status 2.
#[derive(Debug)]
enum CliError {
    UnknownOption(String),
    UnexpectedArgument(OsString),
    MissingValue(&'static str),
    NotUtf8(&'static str),
    BadNumber {
        opt: &'static str,
        value: String,
    },
    BadValue {
        opt: &'static str,
        value: String,
        expected: &'static str,
    },
    Repeated(&'static str),
    Conflict(&'static str, &'static str),
    FlatOptionWithoutFlat(&'static str),
    NoImage,
    NoBios,
    NeedsKernel,
    EmptyImage(PathBuf),
    Read {
        path: PathBuf,
        err: io::Error,
    },
    OpenDebugcon {
        path: PathBuf,
        err: io::Error,
    },
    Output(io::Error),
    Machine(MachineError),
    /// `-technique` other than `emulation` for a run without `--vm`.
    TechniqueNeedsVm(&'static str),
    /// A VM the VMM could not create.
    Vmm(String),
    /// An image the machine refused (wrong size, wrong kind), with the file it came from.
    Image {
        path: PathBuf,
        err: MachineError,
    },
    /// A snapshot that could not be written or read.
    Snapshot {
        path: PathBuf,
        why: String,
    },
}

impl CliError {
    /// Errors in the command line itself (the help hint is worth printing).
    fn is_usage(&self) -> bool {
        !matches!(
            self,
            CliError::Read { .. }
                | CliError::OpenDebugcon { .. }
                | CliError::Output(_)
                | CliError::Machine(_)
                | CliError::Vmm(_)
                | CliError::EmptyImage(_)
                | CliError::NoBios
                | CliError::Snapshot { .. }
        )
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownOption(o) => write!(f, "unknown option '{o}'"),
            CliError::UnexpectedArgument(a) => {
                write!(f, "unexpected argument '{}' (use -fda FILE or --flat FILE)", a.to_string_lossy())
            }
            CliError::MissingValue(o) => write!(f, "option '{o}' needs a value"),
            CliError::NotUtf8(o) => write!(f, "the value of '{o}' is not valid UTF-8"),
            CliError::BadNumber { opt, value } => {
                write!(f, "'{value}' is not a valid number for '{opt}' (decimal or 0x hex)")
            }
            CliError::BadValue { opt, value, expected } => {
                write!(f, "invalid value '{value}' for '{opt}': expected {expected}")
            }
            CliError::Repeated(o) => write!(f, "option '{o}' given more than once"),
            CliError::Conflict(a, b) => write!(f, "'{a}' and '{b}' cannot be used together"),
            CliError::FlatOptionWithoutFlat(o) => write!(f, "'{o}' only applies with '--flat FILE'"),
            CliError::NoImage => write!(f, "nothing to run: give -fda FILE or --flat FILE"),
            CliError::Image { path, err } => write!(f, "{}: {err}", path.display()),
            CliError::NeedsKernel => write!(f, "'-initrd' and '-append' only apply with '-kernel FILE'"),
            CliError::NoBios => write!(
                f,
                "no BIOS found: give -bios FILE or -L DIR (looked for bios.bin in $V386_FIRMWARE_DIR, \
                 .cache/images and /usr/share/seabios)"
            ),
            CliError::EmptyImage(p) => write!(f, "{}: the image is empty", p.display()),
            CliError::Read { path, err } => write!(f, "cannot read {}: {err}", path.display()),
            CliError::OpenDebugcon { path, err } => {
                write!(f, "cannot open debugcon output {}: {err}", path.display())
            }
            CliError::Output(err) => write!(f, "cannot write debugcon output: {err}"),
            CliError::Machine(e) => write!(f, "{e}"),
            CliError::TechniqueNeedsVm(t) => write!(
                f,
                "'-technique {t}' runs a VM under the VMM: give it inside --vm '...' (one bare machine \
                 is emulation)"
            ),
            CliError::Vmm(e) => write!(f, "{e}"),
            CliError::Snapshot { path, why } => write!(f, "snapshot {}: {why}", path.display()),
        }
    }
}

impl From<MachineError> for CliError {
    fn from(e: MachineError) -> Self {
        CliError::Machine(e)
    }
}

/// Parse a number: decimal or `0x` hexadecimal (underscores allowed as separators).
fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(hex) = clean.strip_prefix("0x").or_else(|| clean.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if !clean.is_empty() && clean.bytes().all(|b| b.is_ascii_digit()) {
        clean.parse().ok()
    } else {
        None
    }
}

fn parse_u32(opt: &'static str, s: &str) -> Result<u32, CliError> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| CliError::BadNumber { opt, value: s.into() })
}

fn parse_u16(opt: &'static str, s: &str) -> Result<u16, CliError> {
    parse_u64(s).and_then(|v| u16::try_from(v).ok()).ok_or_else(|| CliError::BadNumber { opt, value: s.into() })
}

/// `-m`: MiB, optionally with QEMU's `M`/`G` suffix or as `size=...`.
fn parse_mem(s: &str) -> Result<u32, CliError> {
    let bad = || CliError::BadValue { opt: "-m", value: s.into(), expected: "a size in MiB such as 32, 64M or 1G" };
    let v = s.strip_prefix("size=").unwrap_or(s);
    let (num, mul) = match v.as_bytes().last() {
        Some(b'M' | b'm') => (&v[..v.len() - 1], 1u64),
        Some(b'G' | b'g') => (&v[..v.len() - 1], 1024),
        _ => (v, 1),
    };
    let mb = parse_u64(num).and_then(|n| n.checked_mul(mul)).ok_or_else(bad)?;
    u32::try_from(mb).map_err(|_| bad())
}

fn parse_debugcon(s: &str) -> Result<DebugconSink, CliError> {
    match s {
        "stdio" => Ok(DebugconSink::Stdout),
        "null" | "none" => Ok(DebugconSink::Null),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(DebugconSink::File(PathBuf::from(p))),
            _ => Err(CliError::BadValue { opt: "-debugcon", value: s.into(), expected: "stdio, file:PATH or null" }),
        },
    }
}

/// `-device isa-debug-exit[,iobase=P][,iosize=N]`.
fn parse_device(s: &str) -> Result<DebugExitOpt, CliError> {
    let mut parts = s.split(',');
    let driver = parts.next().unwrap_or("");
    let driver = driver.strip_prefix("driver=").unwrap_or(driver);
    if driver != "isa-debug-exit" {
        return Err(CliError::BadValue {
            opt: "-device",
            value: s.into(),
            expected: "isa-debug-exit[,iobase=P][,iosize=N] (the only device so far)",
        });
    }
    let mut d = DebugExitOpt { iobase: QEMU_DEBUG_EXIT_IOBASE, iosize: QEMU_DEBUG_EXIT_IOSIZE };
    for p in parts {
        match p.split_once('=') {
            Some(("iobase", v)) => d.iobase = parse_u16("-device isa-debug-exit,iobase", v)?,
            Some(("iosize", v)) => {
                d.iosize = parse_u16("-device isa-debug-exit,iosize", v)?;
                if !matches!(d.iosize, 1 | 2 | 4) {
                    return Err(CliError::BadValue {
                        opt: "-device isa-debug-exit,iosize",
                        value: v.into(),
                        expected: "1, 2 or 4",
                    });
                }
            }
            _ => {
                return Err(CliError::BadValue {
                    opt: "-device isa-debug-exit",
                    value: p.into(),
                    expected: "iobase=P or iosize=N",
                })
            }
        }
    }
    Ok(d)
}

fn parse_serial(v: &str) -> Result<SerialSink, CliError> {
    Ok(match v {
        "stdio" => SerialSink::Stdio,
        "null" | "none" => SerialSink::Null,
        _ => match v.strip_prefix("file:") {
            Some(p) if !p.is_empty() => SerialSink::File(PathBuf::from(p)),
            _ => {
                return Err(CliError::BadValue {
                    opt: "-serial",
                    value: v.into(),
                    expected: "stdio, file:PATH, null or none",
                })
            }
        },
    })
}

/// Where SeaBIOS's `bios.bin` is when `-bios` is not given: `-L DIR`, then
/// `$V386_FIRMWARE_DIR`, then `.cache/images` (what scripts/images.sh builds), then
/// Debian's `seabios` package.
fn find_bios(dir: Option<&std::path::Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = dir {
        dirs.push(d.to_path_buf());
    } else {
        if let Some(d) = std::env::var_os("V386_FIRMWARE_DIR") {
            dirs.push(PathBuf::from(d));
        }
        dirs.push(PathBuf::from(".cache/images"));
        dirs.push(PathBuf::from("/usr/share/seabios"));
    }
    dirs.into_iter().map(|d| d.join("bios.bin")).find(|p| p.exists())
}

/// Parse the arguments after the program name.
fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let mut fda: Option<PathBuf> = None;
    let mut flat: Option<PathBuf> = None;
    let mut load_addr: Option<u32> = None;
    let mut entry: Option<u32> = None;
    let mut mode: Option<StartMode> = None;
    let mut mem_mb: Option<u32> = None;
    let mut debugcon: Option<DebugconSink> = None;
    let mut serial: Option<SerialSink> = None;
    let mut clock: Option<ClockMode> = None;
    let mut bios: Option<PathBuf> = None;
    let mut debug_exit: Option<DebugExitOpt> = None;
    let mut max_instructions: Option<u64> = None;
    let mut hda: Option<PathBuf> = None;
    let mut cdrom: Option<PathBuf> = None;
    let mut order: Option<String> = None;
    let mut firmware_dir: Option<PathBuf> = None;
    let mut kernel: Option<PathBuf> = None;
    let mut initrd: Option<PathBuf> = None;
    let mut append: Option<String> = None;
    let mut vm_args: Vec<String> = Vec::new();
    let mut quantum: Option<u32> = None;
    let mut save_after: Option<(u64, PathBuf)> = None;
    let mut restore: Option<PathBuf> = None;
    let mut technique: Option<v386::vmm::Technique> = None;

    fn set<T>(slot: &mut Option<T>, v: T, opt: &'static str) -> Result<(), CliError> {
        if slot.is_some() {
            return Err(CliError::Repeated(opt));
        }
        *slot = Some(v);
        Ok(())
    }

    while let Some(arg) = args.next() {
        let Some(a) = arg.to_str() else {
            return Err(CliError::UnexpectedArgument(arg));
        };
        if !a.starts_with('-') || a == "-" {
            return Err(CliError::UnexpectedArgument(arg));
        }
        // QEMU accepts `-opt` and `--opt` alike; so do we (and `--flat` as `-flat`).
        let name = a.strip_prefix("--").unwrap_or(&a[1..]);
        macro_rules! value {
            ($opt:expr) => {
                args.next().ok_or(CliError::MissingValue($opt))?
            };
        }
        macro_rules! str_value {
            ($opt:expr) => {{
                let v = value!($opt);
                v.into_string().map_err(|_| CliError::NotUtf8($opt))?
            }};
        }
        match name {
            "h" | "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            "fda" => set(&mut fda, PathBuf::from(value!("-fda")), "-fda")?,
            "hda" => set(&mut hda, PathBuf::from(value!("-hda")), "-hda")?,
            "cdrom" => set(&mut cdrom, PathBuf::from(value!("-cdrom")), "-cdrom")?,
            "boot" => {
                let v = str_value!("-boot");
                // QEMU also accepts "order=dc" and "once=d".
                let letters = v.strip_prefix("order=").or_else(|| v.strip_prefix("once=")).unwrap_or(&v).to_string();
                set(&mut order, letters, "-boot")?;
            }
            "kernel" => set(&mut kernel, PathBuf::from(value!("-kernel")), "-kernel")?,
            "initrd" => set(&mut initrd, PathBuf::from(value!("-initrd")), "-initrd")?,
            "append" => set(&mut append, str_value!("-append"), "-append")?,
            "L" => set(&mut firmware_dir, PathBuf::from(value!("-L")), "-L")?,
            "bios" => set(&mut bios, PathBuf::from(value!("-bios")), "-bios")?,
            "clock" => {
                let v = str_value!("--clock");
                let c = match v.as_str() {
                    "deterministic" => ClockMode::Deterministic,
                    "wall" => ClockMode::Wall,
                    _ => {
                        return Err(CliError::BadValue { opt: "--clock", value: v, expected: "deterministic or wall" })
                    }
                };
                set(&mut clock, c, "--clock")?;
            }
            "flat" => set(&mut flat, PathBuf::from(value!("--flat")), "--flat")?,
            "load-addr" => set(&mut load_addr, parse_u32("--load-addr", &str_value!("--load-addr"))?, "--load-addr")?,
            "entry" => set(&mut entry, parse_u32("--entry", &str_value!("--entry"))?, "--entry")?,
            "mode" => {
                let v = str_value!("--mode");
                let m = match v.as_str() {
                    "real" => StartMode::Real,
                    "pm32" => StartMode::Pm32,
                    _ => return Err(CliError::BadValue { opt: "--mode", value: v, expected: "real or pm32" }),
                };
                set(&mut mode, m, "--mode")?;
            }
            "m" => set(&mut mem_mb, parse_mem(&str_value!("-m"))?, "-m")?,
            "debugcon" => set(&mut debugcon, parse_debugcon(&str_value!("-debugcon"))?, "-debugcon")?,
            "serial" => set(&mut serial, parse_serial(&str_value!("-serial"))?, "-serial")?,
            "device" => set(&mut debug_exit, parse_device(&str_value!("-device"))?, "-device isa-debug-exit")?,
            "max-instructions" => {
                let v = str_value!("--max-instructions");
                let n = parse_u64(&v).ok_or(CliError::BadNumber { opt: "--max-instructions", value: v })?;
                set(&mut max_instructions, n, "--max-instructions")?;
            }
            "display" => {
                let v = str_value!("-display");
                if v != "none" {
                    return Err(CliError::BadValue {
                        opt: "-display",
                        value: v,
                        expected: "none (v386 has no display yet)",
                    });
                }
            }
            "nographic" | "no-reboot" => {}
            "vm" => vm_args.push(str_value!("--vm")),
            "quantum" => set(&mut quantum, parse_u32("--quantum", &str_value!("--quantum"))?, "--quantum")?,
            "save-after" => {
                let v = str_value!("--save-after");
                let n = parse_u64(&v).ok_or(CliError::BadNumber { opt: "--save-after", value: v })?;
                set(&mut save_after, (n, PathBuf::from(value!("--save-after"))), "--save-after")?;
            }
            "restore" => set(&mut restore, PathBuf::from(value!("--restore")), "--restore")?,
            // A VM's technique goes inside its --vm value (vms.rs takes it out there);
            // here, for one bare machine, only `emulation` is what runs.
            "technique" => {
                set(&mut technique, vms::parse_technique("-technique", &str_value!("-technique"))?, "-technique")?
            }
            _ => return Err(CliError::UnknownOption(a.to_string())),
        }
    }
    if !vm_args.is_empty() && restore.is_some() {
        return Err(CliError::Conflict("--restore", "--vm (a VMM's snapshot holds its VMs)"));
    }
    match technique {
        Some(_) if !vm_args.is_empty() => {
            return Err(CliError::Conflict("-technique outside --vm", "--vm (give it inside each --vm '...')"))
        }
        Some(t) if t != v386::vmm::Technique::Emulation => return Err(CliError::TechniqueNeedsVm(t.key())),
        _ => {}
    }
    if let Some(path) = restore {
        // The machine is the snapshot's: every option that would describe it conflicts.
        let machine_options = [
            fda.is_some(),
            flat.is_some(),
            bios.is_some(),
            hda.is_some(),
            cdrom.is_some(),
            kernel.is_some(),
            initrd.is_some(),
            append.is_some(),
            order.is_some(),
            firmware_dir.is_some(),
            mem_mb.is_some(),
            clock.is_some(),
            debug_exit.is_some(),
            load_addr.is_some() || entry.is_some() || mode.is_some(),
            quantum.is_some(),
        ];
        if machine_options.iter().any(|&b| b) {
            return Err(CliError::Conflict("--restore", "options that describe the machine"));
        }
        return Ok(Command::Run(Options {
            boot: Boot::Restore(path),
            mem_mb: DEFAULT_MEM_MB,
            debugcon: debugcon.unwrap_or(DebugconSink::Null),
            serial: serial.unwrap_or(SerialSink::Null),
            clock: ClockMode::default(),
            debug_exit: None,
            max_instructions,
            save_after,
        }));
    }
    if !vm_args.is_empty() {
        let others = [fda.is_some(), flat.is_some(), bios.is_some(), hda.is_some(), cdrom.is_some(), kernel.is_some()];
        if others.iter().any(|&b| b) {
            return Err(CliError::Conflict("--vm", "a machine's own options outside --vm"));
        }
        return vms::parse(&vm_args, max_instructions, quantum, save_after).map(Command::RunVms);
    }
    if quantum.is_some() {
        return Err(CliError::Conflict("--quantum", "a run without --vm"));
    }

    if let Some(kernel) = kernel {
        if fda.is_some() || flat.is_some() || bios.is_some() || hda.is_some() || cdrom.is_some() {
            return Err(CliError::Conflict("-kernel", "-fda/-hda/-cdrom/-bios/--flat"));
        }
        return Ok(Command::Run(Options {
            boot: Boot::Kernel { kernel, initrd, append: append.unwrap_or_default() },
            mem_mb: mem_mb.unwrap_or(DEFAULT_MEM_MB),
            debugcon: debugcon.unwrap_or(DebugconSink::Null),
            serial: serial.unwrap_or(SerialSink::Null),
            clock: clock.unwrap_or_default(),
            debug_exit,
            max_instructions,
            save_after,
        }));
    }
    if initrd.is_some() || append.is_some() {
        return Err(CliError::NeedsKernel);
    }
    let wants_bios = bios.is_some() || hda.is_some() || cdrom.is_some() || firmware_dir.is_some() || order.is_some();
    let boot = match (fda, flat, bios) {
        (Some(_), Some(_), _) => return Err(CliError::Conflict("-fda", "--flat")),
        (_, Some(_), _) if wants_bios => return Err(CliError::Conflict("--flat", "-bios/-hda/-cdrom/-boot")),
        (fda, None, bios) if wants_bios => {
            let bios = match bios {
                Some(b) => b,
                None => find_bios(firmware_dir.as_deref()).ok_or(CliError::NoBios)?,
            };
            Boot::Bios { bios, fda, hda, cdrom, order }
        }
        (fda, flat, _) => match (fda, flat) {
            (Some(path), None) => {
                for (opt, given) in
                    [("--load-addr", load_addr.is_some()), ("--entry", entry.is_some()), ("--mode", mode.is_some())]
                {
                    if given {
                        return Err(CliError::FlatOptionWithoutFlat(opt));
                    }
                }
                Boot::Floppy(path)
            }
            (None, Some(path)) => Boot::Flat { path, load_addr, entry, mode: mode.unwrap_or(StartMode::Real) },
            _ => return Err(CliError::NoImage),
        },
    };

    Ok(Command::Run(Options {
        boot,
        mem_mb: mem_mb.unwrap_or(DEFAULT_MEM_MB),
        debugcon: debugcon.unwrap_or(DebugconSink::Null),
        serial: serial.unwrap_or(SerialSink::Null),
        clock: clock.unwrap_or_default(),
        debug_exit,
        max_instructions,
        save_after,
    }))
}

fn read_image(path: &PathBuf) -> Result<Vec<u8>, CliError> {
    let img = std::fs::read(path).map_err(|err| CliError::Read { path: path.clone(), err })?;
    if img.is_empty() {
        return Err(CliError::EmptyImage(path.clone()));
    }
    Ok(img)
}

/// The open debug-console sink.
enum Sink {
    Stdout(io::Stdout),
    File(File),
    Null,
}

impl Sink {
    fn open(s: &DebugconSink) -> Result<Self, CliError> {
        Ok(match s {
            DebugconSink::Stdout => Sink::Stdout(io::stdout()),
            DebugconSink::File(p) => {
                Sink::File(File::create(p).map_err(|err| CliError::OpenDebugcon { path: p.clone(), err })?)
            }
            DebugconSink::Null => Sink::Null,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(bytes)?;
                l.flush()
            }
            Sink::File(f) => f.write_all(bytes),
            Sink::Null => Ok(()),
        }
    }
}

/// Build the machine the options describe.
fn build_machine(opts: &Options) -> Result<Machine, CliError> {
    if let Boot::Restore(path) = &opts.boot {
        let bytes = std::fs::read(path).map_err(|err| CliError::Read { path: path.clone(), err })?;
        return Machine::restore(&bytes).map_err(|e| CliError::Snapshot { path: path.clone(), why: e.to_string() });
    }
    let cfg = MachineConfig {
        mem_mb: opts.mem_mb,
        debug_exit_port: opts.debug_exit.map(|d| d.iobase),
        clock: opts.clock,
        ..MachineConfig::default()
    };
    let mut m = Machine::new(&cfg)?;
    match &opts.boot {
        Boot::Bios { bios, fda, hda, cdrom, order } => {
            let img = read_image(bios)?;
            let vga_path = bios.with_file_name("vgabios-stdvga.bin");
            let vga = if vga_path.exists() { Some(read_image(&vga_path)?) } else { None };
            m.load_bios(&img, vga.as_deref())?;
            if let Some(p) = fda {
                m.insert_floppy(0, read_image(p)?).map_err(|e| CliError::Image { path: p.clone(), err: e })?;
            }
            if let Some(p) = hda {
                m.attach_disk(0, read_image(p)?).map_err(|e| CliError::Image { path: p.clone(), err: e })?;
            }
            if let Some(p) = cdrom {
                m.attach_cdrom(read_image(p)?).map_err(|e| CliError::Image { path: p.clone(), err: e })?;
            }
            // QEMU's default: floppy, then hard disk, then CD, unless -boot says otherwise.
            m.set_boot_order(order.as_deref().unwrap_or(if fda.is_some() { "acd" } else { "cda" }))?;
        }
        Boot::Kernel { kernel, initrd, append } => {
            let k = read_image(kernel)?;
            let i = match initrd {
                Some(p) => Some(read_image(p)?),
                None => None,
            };
            m.load_kernel(&k, i.as_deref(), append).map_err(|e| CliError::Image { path: kernel.clone(), err: e })?;
        }
        Boot::Floppy(path) => {
            let img = read_image(path)?;
            if img.len() < 512 || img[510] != 0x55 || img[511] != 0xaa {
                eprintln!("v386: warning: {}: no boot signature 55 AA at offset 510", path.display());
            }
            m.boot_floppy(&img)?;
        }
        Boot::Flat { path, load_addr, entry, mode } => {
            let img = read_image(path)?;
            let load = load_addr.unwrap_or(match mode {
                StartMode::Real => 0x7c00,
                StartMode::Pm32 => 0x10_0000,
            });
            m.load_flat(&img, load, entry.unwrap_or(load), *mode)?;
        }
        // Restored above, before a machine was built.
        Boot::Restore(_) => {}
    }
    Ok(m)
}

/// Build the machine, run it, and give the process exit status. A VMM's snapshot given to
/// `--restore` runs its VMs instead (`vms::resume`).
fn run(opts: &Options) -> Result<u8, CliError> {
    if let Boot::Restore(path) = &opts.boot {
        let bytes = std::fs::read(path).map_err(|err| CliError::Read { path: path.clone(), err })?;
        if v386::snapshot::kind_of(&bytes) == Some(v386::snapshot::Kind::Vmm) {
            return vms::resume(path, &bytes, opts);
        }
    }
    let mut m = build_machine(opts)?;
    let mut sink = Sink::open(&opts.debugcon)?;
    let mut fw_log = match std::env::var_os("V386_FIRMWARE_LOG") {
        Some(p) => Some(Sink::open(&DebugconSink::File(PathBuf::from(p)))?),
        None => None,
    };
    let mut serial = match &opts.serial {
        SerialSink::Stdio => Sink::Stdout(io::stdout()),
        SerialSink::File(p) => {
            Sink::File(File::create(p).map_err(|err| CliError::OpenDebugcon { path: p.clone(), err })?)
        }
        SerialSink::Null => Sink::Null,
    };
    let input = (opts.serial == SerialSink::Stdio).then(stdin_reader);
    let started = std::time::Instant::now();
    // A restored machine keeps the clock it was saved with.
    let wall = m.bus.clock.mode() == ClockMode::Wall;
    let first = m.cpu.icount;
    let mut save = opts.save_after.clone();
    let mut left = opts.max_instructions;
    let reason = loop {
        let mut n = left.map_or(SLICE, |l| l.min(SLICE));
        if let Some(due) = save_when_due(m.cpu.icount - first, &mut save, "the machine", || m.save())? {
            // The slice ends where the snapshot is due.
            n = n.min(due);
        }
        if let Some(rx) = &input {
            while let Ok(bytes) = rx.try_recv() {
                m.serial_input(&bytes);
            }
        }
        if wall {
            m.set_host_time(started.elapsed().as_nanos() as u64);
        }
        let before = m.cpu.icount;
        let r = m.run(n);
        sink.write(&m.take_debugcon()).map_err(CliError::Output)?;
        if let Some(f) = &mut fw_log {
            f.write(&m.take_firmware_log()).map_err(CliError::Output)?;
        }
        serial.write(&m.take_serial()).map_err(CliError::Output)?;
        match r {
            StopReason::BudgetSpent => {
                if wall && m.is_idle() {
                    // Halted waiting for a timer that real time must reach.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                if let Some(l) = &mut left {
                    *l = l.saturating_sub((m.cpu.icount - before).max(1));
                    if *l == 0 {
                        break r;
                    }
                }
            }
            _ => break r,
        }
    };
    // A snapshot due exactly where --max-instructions ends the run.
    if reason == StopReason::BudgetSpent {
        save_when_due(m.cpu.icount - first, &mut save, "the machine", || m.save())?;
    }

    let icount = m.cpu.icount;
    let (what, status) = match reason {
        StopReason::BudgetSpent => ("instruction limit reached (--max-instructions)".to_string(), 0),
        StopReason::Halted => ("halted (HLT with no interrupt to wake the CPU)".to_string(), 0),
        StopReason::Shutdown => ("shutdown (triple fault)".to_string(), EXIT_SHUTDOWN),
        // The machine resets itself; `run` does not return this.
        StopReason::Reset => ("reset".to_string(), 0),
        StopReason::PowerOff => ("powered off (ACPI soft-off)".to_string(), 0),
        // The machine goes on by itself after a yield; `run` does not return this.
        StopReason::Yield => ("slice ended early".to_string(), 0),
        // Only `Cpu::vm_run` (a Rust VMM) sees a VM exit.
        StopReason::VmExit => ("VM exit".to_string(), 0),
        // Only a software monitor (`v386::monitor`) sets `trap_events`.
        StopReason::HostTrap => ("trap to the monitor".to_string(), 0),
        StopReason::DebugExit(v) => {
            let status = (v << 1) | 1;
            (format!("debug-exit value {v:#x} (status {status})"), status as u8)
        }
    };
    eprintln!("v386: {what} after {icount} instructions");
    if std::env::var_os("V386_DUMP_SCREEN").is_some() {
        let c = &m.cpu;
        eprintln!(
            "v386: cs:eip {:04x}:{:08x} cr0 {:08x} eflags {:08x}",
            c.segs[v386::cpu::CS as usize].sel,
            c.eip,
            c.cr0,
            c.flags.get()
        );
        let lin = c.segs[v386::cpu::CS as usize].base.wrapping_add(c.eip) as usize;
        let bytes = m.bus.ram.get(lin.saturating_sub(16)..lin + 16).unwrap_or(&[]);
        eprintln!("v386: bytes around cs:eip (from -16): {bytes:02x?}");
        eprintln!("v386: regs {:08x?}", c.regs);
        eprintln!("{}", m.vga_text().to_text());
    }
    Ok(status)
}

/// Save a snapshot to `save`'s file once `done` instructions have reached its count (then
/// `save` is spent), `what` naming what was saved and `snapshot` making the file; else
/// the instructions left until it is due. For one machine and for a VMM (`vms.rs`).
pub(crate) fn save_when_due(
    done: u64,
    save: &mut Option<(u64, PathBuf)>,
    what: &str,
    snapshot: impl FnOnce() -> Result<Vec<u8>, v386::snapshot::SnapshotError>,
) -> Result<Option<u64>, CliError> {
    let Some((at, path)) = save.as_ref() else { return Ok(None) };
    if done < *at {
        return Ok(Some(at - done));
    }
    let fail = |why: String| CliError::Snapshot { path: path.clone(), why };
    let bytes = snapshot().map_err(|e| fail(e.to_string()))?;
    std::fs::write(path, bytes).map_err(|e| fail(e.to_string()))?;
    eprintln!("v386: saved {what} to {} after {done} instructions", path.display());
    *save = None;
    Ok(None)
}

/// Standard input, read on a thread and handed over in chunks (the guest's serial line).
fn stdin_reader() -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        loop {
            match std::io::Read::read(&mut io::stdin(), &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // `v386 lab ...`: the technique lab, a subcommand with options of its own.
    if args.first().is_some_and(|a| a == "lab") {
        return ExitCode::from(lab::main(&args[1..]));
    }
    let result = parse_args(args).and_then(|cmd| match cmd {
        Command::Help => {
            print!("{HELP}");
            Ok(0)
        }
        Command::Version => {
            println!("v386 {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Command::Run(opts) => run(&opts),
        Command::RunVms(v) => vms::run(&v),
    });
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("v386: error: {e}");
            if e.is_usage() {
                eprintln!("v386: try 'v386 --help'");
            }
            ExitCode::from(EXIT_USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run_opts(args: &[&str]) -> Options {
        match parse_args(os(args)) {
            Ok(Command::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x7c00"), Some(0x7c00));
        assert_eq!(parse_u64("0X10_0000"), Some(0x10_0000));
        assert_eq!(parse_u64("1000000"), Some(1_000_000));
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("12k"), None);
        assert_eq!(parse_u64("-1"), None);
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_mem("64").unwrap(), 64);
        assert_eq!(parse_mem("64M").unwrap(), 64);
        assert_eq!(parse_mem("1G").unwrap(), 1024);
        assert_eq!(parse_mem("size=128M").unwrap(), 128);
        assert!(parse_mem("lots").is_err());
    }

    #[test]
    fn floppy_command_line() {
        let o = run_opts(&[
            "-fda",
            "a.img",
            "-debugcon",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-m",
            "16",
        ]);
        assert_eq!(o.boot, Boot::Floppy("a.img".into()));
        assert_eq!(o.debugcon, DebugconSink::Stdout);
        assert_eq!(o.debug_exit, Some(DebugExitOpt { iobase: 0xf4, iosize: 4 }));
        assert_eq!(o.mem_mb, 16);
        assert_eq!(o.max_instructions, None);
    }

    #[test]
    fn flat_command_line() {
        let o = run_opts(&[
            "--flat",
            "b.bin",
            "--load-addr",
            "0x100000",
            "--entry",
            "0x100000",
            "--mode",
            "pm32",
            "--max-instructions",
            "5000",
            "-display",
            "none",
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
        ]);
        assert_eq!(
            o.boot,
            Boot::Flat {
                path: "b.bin".into(),
                load_addr: Some(0x10_0000),
                entry: Some(0x10_0000),
                mode: StartMode::Pm32
            }
        );
        assert_eq!(o.max_instructions, Some(5000));
        assert_eq!(o.serial, SerialSink::Stdio);
        assert_eq!(o.debugcon, DebugconSink::Null);
        assert_eq!(o.mem_mb, DEFAULT_MEM_MB);
    }

    #[test]
    fn qemu_defaults_and_spellings() {
        let o = run_opts(&["--fda", "a.img", "--device", "isa-debug-exit", "-debugcon", "file:out.txt"]);
        assert_eq!(o.debug_exit, Some(DebugExitOpt { iobase: 0x501, iosize: 2 }));
        assert_eq!(o.debugcon, DebugconSink::File("out.txt".into()));
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse_args(os(&["-h"])), Ok(Command::Help)));
        assert!(matches!(parse_args(os(&["--help"])), Ok(Command::Help)));
        assert!(matches!(parse_args(os(&["--version"])), Ok(Command::Version)));
    }

    #[test]
    fn errors() {
        let err = |args: &[&str]| parse_args(os(args)).unwrap_err();
        assert!(matches!(err(&[]), CliError::NoImage));
        assert!(matches!(err(&["-fda"]), CliError::MissingValue("-fda")));
        assert!(matches!(err(&["-frobnicate"]), CliError::UnknownOption(_)));
        assert!(matches!(err(&["disk.img"]), CliError::UnexpectedArgument(_)));
        assert!(matches!(err(&["-fda", "a", "--flat", "b"]), CliError::Conflict(..)));
        assert!(matches!(err(&["-fda", "a", "--mode", "pm32"]), CliError::FlatOptionWithoutFlat("--mode")));
        assert!(matches!(err(&["--flat", "a", "--mode", "long"]), CliError::BadValue { .. }));
        assert!(matches!(err(&["--flat", "a", "--entry", "zz"]), CliError::BadNumber { .. }));
        assert!(matches!(err(&["-hda", "disk.img", "--flat", "x"]), CliError::Conflict(..)));
        assert!(matches!(err(&["-bios", "bios.bin", "--flat", "a"]), CliError::Conflict("--flat", _)));
        assert!(matches!(err(&["-fda", "a", "-device", "e1000"]), CliError::BadValue { .. }));
        assert!(matches!(err(&["-fda", "a", "-device", "isa-debug-exit,iosize=3"]), CliError::BadValue { .. }));
        assert!(matches!(err(&["-fda", "a", "-debugcon", "vc"]), CliError::BadValue { .. }));
        assert!(matches!(err(&["-fda", "a", "-fda", "b"]), CliError::Repeated("-fda")));
        assert!(matches!(err(&["-fda", "a", "-display", "gtk"]), CliError::BadValue { .. }));
        assert!(err(&["-x"]).is_usage());
        assert!(!err(&["-hda", "d", "-L", "/nonexistent-firmware-dir"]).is_usage());
    }

    /// `-technique` belongs inside a `--vm` value; one bare machine is emulation.
    #[test]
    fn technique_is_a_vms_option() {
        use v386::vmm::Technique;
        let Ok(Command::RunVms(v)) =
            parse_args(os(&["--vm", "-kernel k -technique trap-and-emulate-psi", "--vm", "-fda a.img"]))
        else {
            panic!("two VMs")
        };
        assert_eq!((v.vms[0].technique, v.vms[1].technique), (Technique::TrapAndEmulatePsi, Technique::V386));
        assert_eq!(run_opts(&["-fda", "a.img", "-technique", "emulation"]).boot, Boot::Floppy("a.img".into()));
        let err = |args: &[&str]| parse_args(os(args)).unwrap_err();
        let e = err(&["-kernel", "k", "--technique", "trap-and-emulate"]);
        assert!(matches!(e, CliError::TechniqueNeedsVm("trap-and-emulate")) && e.is_usage());
        assert!(e.to_string().contains("inside --vm"), "{e}");
        assert!(matches!(err(&["-technique", "v386", "--vm", "-fda a.img"]), CliError::Conflict(..)));
        assert!(matches!(err(&["-fda", "a.img", "-technique", "vmware"]), CliError::BadValue { .. }));
    }
}
