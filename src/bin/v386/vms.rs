//! `v386 --vm "..." --vm "..."`: several machines, each described by the same options as
//! a single run, as VMs under the VMM (src/vmm/), each under its `-technique` (the V386
//! extension by default). Each VM's serial line and debug console go to the terminal with
//! a `[vmN] ` prefix unless its options send them elsewhere; the exit counters of every
//! VM are printed at the end. `--save-after` saves the whole VMM; `--restore` of a VMM's
//! snapshot runs its VMs on (`resume`).

use super::{
    build_machine, parse_args, save_when_due, CliError, Command, DebugconSink, Options, SerialSink, Sink, SLICE,
};
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use v386::cpu::v386::ExitReason;
use v386::machine::ClockMode;
use v386::vmm::{RunOutcome, Technique, Vm, VmState, Vmm, VmmConfig};

/// One `--vm`: its options, its technique, and whether it chose its serial and
/// debug-console sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmOptions {
    pub opts: Options,
    pub technique: Technique,
    serial_given: bool,
    debugcon_given: bool,
}

/// What `-technique` takes: every key of [`Technique`] (`technique_keys_are_listed` checks
/// the list).
pub const TECHNIQUES: &str =
    "emulation, trap-and-emulate, trap-and-emulate-psi, scan-before-execute, paravirtual or v386";

/// The technique named `v` for option `opt`.
pub fn parse_technique(opt: &'static str, v: &str) -> Result<Technique, CliError> {
    Technique::from_key(v).ok_or_else(|| CliError::BadValue { opt, value: v.into(), expected: TECHNIQUES })
}

/// Take `-technique NAME` (or `--technique NAME`) out of one `--vm`'s arguments: it is
/// the VM's, not the machine's, so the single-machine parser never sees it.
fn take_technique(args: &mut Vec<String>) -> Result<Technique, CliError> {
    let mut technique = None;
    while let Some(at) = args.iter().position(|a| a == "-technique" || a == "--technique") {
        let Some(v) = args.get(at + 1).cloned() else { return Err(CliError::MissingValue("-technique")) };
        if technique.replace(parse_technique("-technique", &v)?).is_some() {
            return Err(CliError::Repeated("-technique"));
        }
        args.drain(at..at + 2);
    }
    Ok(technique.unwrap_or_default())
}

/// A run of VMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmsOptions {
    pub vms: Vec<VmOptions>,
    pub max_instructions: Option<u64>,
    pub quantum: Option<u32>,
    /// `--save-after N FILE`: the whole VMM, once N of the run's instructions passed.
    pub save_after: Option<(u64, PathBuf)>,
}

/// Split a `--vm` value into arguments: whitespace separates, single or double quotes
/// group (`-append "console=ttyS0 quiet"`).
fn split(s: &str) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(core::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(CliError::BadValue { opt: "--vm", value: s.into(), expected: "balanced quotes" });
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Parse every `--vm` value with the single-machine parser.
pub fn parse(
    values: &[String],
    max_instructions: Option<u64>,
    quantum: Option<u32>,
    save_after: Option<(u64, PathBuf)>,
) -> Result<VmsOptions, CliError> {
    let mut vms = Vec::new();
    for v in values {
        let mut args = split(v)?;
        let technique = take_technique(&mut args)?;
        let given = |names: &[&str]| args.iter().any(|a| names.contains(&a.as_str()));
        let serial_given = given(&["-serial", "--serial"]);
        let debugcon_given = given(&["-debugcon", "--debugcon"]);
        let nested = parse_args(args.iter().map(OsString::from))?;
        let Command::Run(opts) = nested else {
            return Err(CliError::BadValue { opt: "--vm", value: v.clone(), expected: "a machine's options" });
        };
        if opts.max_instructions.is_some() {
            return Err(CliError::Conflict("--max-instructions inside --vm", "--vm (give it once, outside)"));
        }
        if opts.save_after.is_some() {
            return Err(CliError::Conflict(
                "--save-after inside --vm",
                "--vm (give it once, outside: it saves the VMM)",
            ));
        }
        vms.push(VmOptions { opts, technique, serial_given, debugcon_given });
    }
    Ok(VmsOptions { vms, max_instructions, quantum, save_after })
}

/// Where one stream of one VM goes: a sink, or the terminal line by line with a prefix.
enum Out {
    Sink(Sink),
    Prefixed { prefix: String, pending: Vec<u8> },
}

impl Out {
    fn new(given: bool, sink: Sink, prefix: &str) -> Out {
        if given {
            Out::Sink(sink)
        } else {
            Out::prefixed(prefix)
        }
    }

    fn prefixed(prefix: &str) -> Out {
        Out::Prefixed { prefix: prefix.into(), pending: Vec::new() }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Out::Sink(s) => s.write(bytes),
            Out::Prefixed { prefix, pending } => {
                pending.extend_from_slice(bytes);
                let mut out = io::stdout().lock();
                while let Some(n) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=n).collect();
                    let text = String::from_utf8_lossy(&line);
                    write!(out, "{prefix}{}", text.trim_end_matches(['\r', '\n']))?;
                    writeln!(out)?;
                }
                out.flush()
            }
        }
    }
}

impl Out {
    /// The run is over: a last line without its newline is printed too.
    fn finish(&mut self) -> io::Result<()> {
        if let Out::Prefixed { pending, .. } = self {
            if !pending.is_empty() {
                pending.push(b'\n');
                return self.write(&[]);
            }
        }
        Ok(())
    }
}

fn open(sink: &SerialSink) -> Result<Sink, CliError> {
    Ok(match sink {
        SerialSink::Stdio => Sink::Stdout(io::stdout()),
        SerialSink::File(p) => Sink::open(&DebugconSink::File(p.clone()))?,
        SerialSink::Null => Sink::Null,
    })
}

/// One line per VM: its technique, state and counters, then its exits by reason (under
/// the software monitor: its traps, by the exit reason of the same event).
fn summary(vm: &Vm) -> String {
    let c = &vm.counters;
    let state = match &vm.state {
        VmState::Runnable => "running".to_string(),
        VmState::Halted => "halted".to_string(),
        VmState::Stopped(why) => format!("stopped: {why:?}"),
    };
    let by: Vec<String> =
        ExitReason::ALL.iter().filter(|r| c.count(**r) > 0).map(|r| format!("{} {}", r.name(), c.count(*r))).collect();
    format!(
        "v386: {} ({}, {state}): {} instructions, {} turns, {} preempted, {} exits, {} device-memory accesses\n\
         v386: {} exits: {}",
        vm.name,
        vm.technique.name(),
        c.retired,
        c.turns,
        c.preemptions,
        c.exits(),
        c.mmio,
        vm.name,
        if by.is_empty() { "none".into() } else { by.join(", ") }
    )
}

/// Build the VMs, run them, print the counters. Exit status 0.
pub fn run(v: &VmsOptions) -> Result<u8, CliError> {
    let mut config = VmmConfig::default();
    if let Some(q) = v.quantum {
        config.quantum = q.max(1);
    }
    let mut vmm = Vmm::new(config);
    let mut outs = Vec::new();
    for (i, o) in v.vms.iter().enumerate() {
        let name = format!("vm{}", i + 1);
        let m = build_machine(&o.opts)?;
        vmm.add_machine_as(&name, m, o.technique)
            .map_err(|e| CliError::Vmm(format!("{name} ({}): {e}", o.technique.key())))?;
        let serial = Out::new(o.serial_given, open(&o.opts.serial)?, &format!("[{name}] "));
        let debugcon = Out::new(o.debugcon_given, Sink::open(&o.opts.debugcon)?, &format!("[{name} debugcon] "));
        outs.push((serial, debugcon));
    }
    drive(vmm, outs, v.max_instructions, v.save_after.clone())
}

/// `--restore` of a VMM's snapshot (`bytes`, read from `path`): its VMs run on where they
/// were saved, each VM's serial line and debug console to the terminal with its name as
/// prefix. `opts` is the single-machine parse of the command line: its -serial and
/// -debugcon would be one sink for every VM, so they are refused.
pub fn resume(path: &Path, bytes: &[u8], opts: &Options) -> Result<u8, CliError> {
    if opts.serial != SerialSink::Null || opts.debugcon != DebugconSink::Null {
        return Err(CliError::Conflict(
            "-serial/-debugcon",
            "--restore of a VMM's snapshot (each VM prints to the terminal with its prefix)",
        ));
    }
    let vmm = Vmm::restore(bytes).map_err(|e| CliError::Snapshot { path: path.into(), why: e.to_string() })?;
    let outs = vmm
        .vms
        .iter()
        .map(|vm| (Out::prefixed(&format!("[{}] ", vm.name)), Out::prefixed(&format!("[{} debugcon] ", vm.name))))
        .collect();
    drive(vmm, outs, opts.max_instructions, opts.save_after.clone())
}

/// Run the VMs in slices up to `max_instructions` (or until all stop), draining each VM's
/// output after every slice, saving the VMM once `save_after` is due; then print the
/// counters.
fn drive(
    mut vmm: Vmm,
    mut outs: Vec<(Out, Out)>,
    max_instructions: Option<u64>,
    mut save_after: Option<(u64, PathBuf)>,
) -> Result<u8, CliError> {
    let wall = vmm.vms.iter().any(|vm| vm.board.clock.mode() == ClockMode::Wall);
    let started = std::time::Instant::now();
    let mut left = max_instructions;
    // The run's instructions so far, as `Vmm::run` budgets them (idle time counts).
    let mut done = 0u64;
    let saved = format!("the VMM ({} VMs)", vmm.vms.len());
    loop {
        let mut n = left.map_or(SLICE, |l| l.min(SLICE));
        if let Some(due) = save_when_due(done, &mut save_after, &saved, || vmm.save())? {
            // The slice ends where the snapshot is due.
            n = n.min(due);
        }
        if wall {
            vmm.set_host_time(started.elapsed().as_nanos() as u64);
        }
        let r = vmm.run(n);
        done += n;
        for (vm, (serial, debugcon)) in vmm.vms.iter_mut().zip(outs.iter_mut()) {
            serial.write(&vm.board.com1.take_output()).map_err(CliError::Output)?;
            debugcon.write(&core::mem::take(&mut vm.board.debugcon.out)).map_err(CliError::Output)?;
        }
        match r {
            RunOutcome::AllStopped => break,
            // Halted until a timer that real time must reach.
            RunOutcome::Waiting => std::thread::sleep(std::time::Duration::from_millis(1)),
            // The CLI sets no breaks; a break would only pause, and the next run goes on.
            RunOutcome::BudgetSpent | RunOutcome::Break { .. } => {}
        }
        if let Some(l) = &mut left {
            *l = l.saturating_sub(n);
            if *l == 0 {
                // A snapshot due exactly where --max-instructions ends the run.
                save_when_due(done, &mut save_after, &saved, || vmm.save())?;
                break;
            }
        }
    }
    for (serial, debugcon) in &mut outs {
        serial.finish().map_err(CliError::Output)?;
        debugcon.finish().map_err(CliError::Output)?;
    }
    for vm in &vmm.vms {
        eprintln!("{}", summary(vm));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_values_split_like_a_shell() {
        assert_eq!(split("-hda a.img  -m 64").unwrap(), ["-hda", "a.img", "-m", "64"]);
        assert_eq!(
            split("-append \"console=ttyS0 quiet\" -kernel k").unwrap(),
            ["-append", "console=ttyS0 quiet", "-kernel", "k"]
        );
        assert_eq!(split("-append ''").unwrap(), ["-append", ""]);
        assert!(split("-append \"open").is_err());
    }

    #[test]
    fn each_vm_is_a_machine_of_its_own() {
        let v = parse(&["-fda a.img -serial file:/tmp/x".into(), "-kernel k -m 64".into()], Some(5), Some(1000), None)
            .unwrap();
        assert_eq!(v.vms.len(), 2);
        assert!(v.vms[0].serial_given && !v.vms[1].serial_given);
        assert_eq!(v.vms[1].opts.mem_mb, 64);
        assert!(parse(&["--help".into()], None, None, None).is_err());
        assert_eq!((v.vms[0].technique, v.vms[1].technique), (Technique::V386, Technique::V386));
    }

    #[test]
    fn each_vm_has_its_technique() {
        let v = parse(
            &[
                "-kernel k -technique trap-and-emulate -m 16".into(),
                "--technique scan-before-execute -kernel k".into(),
                "-kernel k -technique v386".into(),
            ],
            None,
            None,
            None,
        )
        .unwrap();
        let t: Vec<Technique> = v.vms.iter().map(|o| o.technique).collect();
        assert_eq!(t, [Technique::TrapAndEmulate, Technique::ScanBeforeExecute, Technique::V386]);
        assert_eq!(v.vms[0].opts.mem_mb, 16, "the machine's options around it stay the machine's");
        let err = |s: &str| parse(&[s.into()], None, None, None).unwrap_err().to_string();
        let e = err("-kernel k -technique trap-and-emulate-sometimes");
        assert!(e.contains("'trap-and-emulate-sometimes'") && e.contains("scan-before-execute"), "{e}");
        assert!(err("-kernel k -technique").contains("needs a value"));
        assert!(err("-technique v386 -kernel k -technique v386").contains("more than once"));
    }

    #[test]
    fn technique_keys_are_listed() {
        let listed: Vec<&str> = TECHNIQUES.split([',', ' ']).filter(|w| !w.is_empty() && *w != "or").collect();
        let keys: Vec<&str> = Technique::ALL.iter().map(|t| t.key()).collect();
        assert_eq!(listed, keys);
    }
}
