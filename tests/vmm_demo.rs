//! The demo guests of the VMM's live view, side by side under `v386::vmm::Vmm`.
//!
//! - `tests/guests/vmdemo_clock.asm`: a Multiboot kernel that runs the PIT at 100 Hz on
//!   IRQ0, draws an uptime clock on its VGA text screen after every tick, writes
//!   "clock: N s" on COM1 every second, spins through one tick a second to measure its
//!   speed and idles in HLT otherwise — exits: IO, HLT, and PREEMPTION_TIMER during the
//!   busy tick.
//! - `tests/guests/vmdemo_sensitive.asm`: a Multiboot kernel that ten times a second runs
//!   SGDT, SIDT, SMSW, STR, SLDT, MOV r,CS and PUSHF (no exit: in V386 mode they read the
//!   guest's own state, docs/v386.md §5.3), CPUID (an exit; the VMM reports V386 leaf
//!   8386_0001h EDX = 1, PSI only), RDTSC and VCALL 0 (the VMM's version), shows what it
//!   got on its screen, and every second greets the debug console with VCALL 1 (putchar)
//!   and writes a summary line on COM1.
//!
//! Both run in 16 MiB VMs with the default configuration for 300 M machine instructions
//! (idle time counts: `Vmm::run`). The test checks what each screen shows
//! (the title and live values; the SGDT/SIDT/STR/SLDT values are the guest's own, as the
//! VMM's copy of the guest state says, not the host processor's), the per-second serial
//! lines, the hypercall output, and the exit counters; it prints the screens, serial
//! samples, counters and exits per second of guest time. A second test runs the pair twice
//! and compares the exit logs; a third boots the sensitive demo on the bare machine, where
//! VCALL is #UD and the kernel says so.
//!
//! The same pair from the command line:
//! `v386 --vm "-kernel vmdemo_clock.img -m 16" --vm "-kernel vmdemo_sensitive.img -m 16"`.
//!
//! nasm is an external tool: without it the tests are skipped (tests/common/mod.rs).

mod common;
use common::*;

use std::time::Instant;

use v386::cpu::v386::ExitReason;
use v386::machine::{KernelKind, Machine, MachineConfig, MachineSpec};
use v386::vmm::{RunOutcome, VmState, Vmm, VmmConfig};

const MEM_MB: u32 = 16;
/// Machine instructions in all (idle time included), run in chunks (serial output is
/// drained after each). Each halted VM skips to its own next timer event, so the VMs'
/// guest clocks advance at different rates: the clock (100 Hz) reaches about 3 s, the
/// sensitive demo (20 Hz) about 15 s.
const BUDGET: u64 = 300_000_000;
const CHUNK: u64 = 20_000_000;

fn screen(vmm: &Vmm, id: u16) -> String {
    vmm.vm(id).expect("the VM").board.vga.text_snapshot().to_text()
}

/// The blank-separated word after the first `label` on the screen.
fn word_after<'a>(screen: &'a str, label: &str) -> &'a str {
    let at = screen.find(label).unwrap_or_else(|| panic!("'{label}' is not on the screen:\n{screen}"));
    screen[at + label.len()..].split_whitespace().next().unwrap_or("")
}

fn hex_after(screen: &str, label: &str) -> u32 {
    let w = word_after(screen, label);
    u32::from_str_radix(w, 16).unwrap_or_else(|_| panic!("'{label}' is followed by '{w}', not hex:\n{screen}"))
}

fn dec_after(screen: &str, label: &str) -> u64 {
    let w = word_after(screen, label);
    w.parse().unwrap_or_else(|_| panic!("'{label}' is followed by '{w}', not a number:\n{screen}"))
}

/// Reasons with a non-zero count in `vm`, with their counts.
fn nonzero(vm: &v386::vmm::Vm) -> Vec<(ExitReason, u64)> {
    ExitReason::ALL.iter().map(|r| (*r, vm.counters.count(*r))).filter(|(_, n)| *n > 0).collect()
}

#[test]
fn the_demo_guests_run_side_by_side_with_exits_flowing() {
    let (Some(clock_img), Some(sens_img)) =
        (assemble_guest("vmdemo_clock", "vmm_demo"), assemble_guest("vmdemo_sensitive", "vmm_demo"))
    else {
        skip("nasm is not installed");
        return;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let spec = |kernel| MachineSpec { memory_mb: Some(MEM_MB), kernel: Some(kernel), ..Default::default() };
    let clock = vmm.add_vm("clock", spec(clock_img)).expect("the clock VM");
    let sens = vmm.add_vm("sensitive", spec(sens_img)).expect("the sensitive-instructions VM");

    let t = Instant::now();
    let (mut clock_out, mut sens_out) = (String::new(), String::new());
    let mut spent = 0;
    while spent < BUDGET {
        let r = vmm.run(CHUNK);
        spent += CHUNK;
        for (id, out) in [(clock, &mut clock_out), (sens, &mut sens_out)] {
            out.push_str(&String::from_utf8_lossy(&vmm.vm_mut(id).unwrap().board.com1.take_output()));
        }
        let states: Vec<_> = vmm.vms.iter().map(|v| (v.name.clone(), v.state.clone())).collect();
        assert!(
            r == RunOutcome::BudgetSpent && states.iter().all(|(_, s)| !matches!(s, VmState::Stopped(_))),
            "{r:?} after {spent} instructions; states {states:?}\nclock screen:\n{}\nclock serial:\n{clock_out}\n\
             sensitive screen:\n{}\nsensitive serial:\n{sens_out}",
            screen(&vmm, clock),
            screen(&vmm, sens)
        );
    }
    let host_secs = t.elapsed().as_secs_f64();

    // ---- What the VMs show, and what they said ----
    let clock_screen = screen(&vmm, clock);
    let sens_screen = screen(&vmm, sens);
    let debugcon = String::from_utf8_lossy(&vmm.vm(sens).unwrap().board.debugcon.out).into_owned();
    println!("==== clock screen ====\n{clock_screen}\n==== sensitive screen ====\n{sens_screen}");
    let sample = |out: &str| {
        let lines: Vec<&str> = out.lines().collect();
        let mut s: Vec<&str> = lines.iter().take(3).copied().collect();
        if lines.len() > 5 {
            s.push("...");
        }
        s.extend(lines.iter().skip(3.max(lines.len().saturating_sub(2))));
        s.join("\n")
    };
    println!("==== clock COM1 ====\n{}", sample(&clock_out));
    println!("==== sensitive COM1 ====\n{}", sample(&sens_out));
    println!("==== sensitive debug console (VCALL putchar) ====\n{}", sample(&debugcon));

    // ---- Counters ----
    let mut total = [0u64; v386::vmm::log::REASONS];
    println!("==== exits ({spent} machine instructions, {host_secs:.2} s of host time) ====");
    for id in [clock, sens] {
        let now = vmm.vm_mut(id).unwrap().board.now();
        let vm = vmm.vm(id).unwrap();
        let guest_secs = now as f64 / 1e9;
        let c = &vm.counters;
        println!(
            "{}: {:.2} s of guest time, {} instructions retired, {} turns ({} preempted), {} exits ({:.0}/s), {} MMIO",
            vm.name,
            guest_secs,
            c.retired,
            c.turns,
            c.preemptions,
            c.exits(),
            c.exits() as f64 / guest_secs,
            c.mmio
        );
        for (r, n) in nonzero(vm) {
            total[r as usize] += n;
            println!("    {:<22} {:>8}  {:>8.1}/s", r.name(), n, n as f64 / guest_secs);
        }
        let reasons = nonzero(vm).len();
        assert!(reasons >= 3, "{}: only {reasons} exit reasons: {:?}", vm.name, nonzero(vm));
    }
    for r in [ExitReason::Io, ExitReason::Hlt, ExitReason::Cpuid, ExitReason::Vcall, ExitReason::PreemptionTimer] {
        assert!(total[r as usize] > 0, "no {} exits", r.name());
    }

    // ---- The clock ----
    assert!(clock_screen.contains("v386 VM demo: clock"), "{clock_screen}");
    let secs = dec_after(&clock_screen, "Seconds:");
    let ticks = dec_after(&clock_screen, "Ticks:");
    assert!(secs >= 1, "the clock's uptime is {secs} s:\n{clock_screen}");
    assert_eq!(ticks / 100, secs, "ticks and seconds disagree:\n{clock_screen}");
    let uptime = format!("{:02}:{:02}:{:02}.{:02}", secs / 3600, secs / 60 % 60, secs % 60, ticks % 100);
    assert_eq!(word_after(&clock_screen, "Uptime:"), uptime, "{clock_screen}");
    // Every second has its line on COM1, in order; the clock is at most a line behind.
    let lines: Vec<&str> = clock_out.lines().filter(|l| l.starts_with("clock: ")).collect();
    let want: Vec<String> = (1..=lines.len()).map(|s| format!("clock: {s} s")).collect();
    assert_eq!(lines, want, "clock serial:\n{clock_out}");
    assert!(lines.len() as u64 + 1 >= secs && !lines.is_empty(), "{} lines after {secs} s", lines.len());
    // The busy tick measured the deterministic clock's speed: 10 ns an instruction.
    assert!(clock_screen.contains(" loops a tick = 100 MIPS"), "{clock_screen}");
    assert!(vmm.vm(clock).unwrap().counters.count(ExitReason::PreemptionTimer) > 0, "the busy tick was preempted");
    // Guest time is the PIT's: the tick count matches the VM's clock.
    let clock_ns = vmm.vm_mut(clock).unwrap().board.now();
    let expect_ticks = clock_ns as f64 / 1e9 * 1_193_182.0 / 11932.0;
    assert!((ticks as f64 - expect_ticks).abs() <= 2.0, "{ticks} ticks in {clock_ns} ns");

    // ---- The sensitive instructions ----
    let vm = vmm.vm(sens).unwrap();
    let g = &vm.vcb.guest;
    assert!(sens_screen.contains("v386 VM demo: sensitive instructions"), "{sens_screen}");
    // SGDT and SIDT give the tables this guest loaded (its own LGDT/LIDT operands, and the
    // guest copy the VMM keeps), not the host processor's.
    let sgdt = hex_after(&sens_screen, "SGDT    base ");
    assert_eq!(sgdt, hex_after(&sens_screen, "loaded by LGDT: base "), "{sens_screen}");
    assert_eq!(sgdt, g.gdtr.base, "SGDT shows the guest's GDTR");
    assert_eq!(sgdt & 0xfff0_0000, 0x0010_0000, "the GDT is in the kernel image");
    assert_ne!(sgdt, vmm.cpu.gdtr.base, "the host processor's GDTR is not what the guest sees");
    let sidt = hex_after(&sens_screen, "SIDT    base ");
    assert_eq!(sidt, hex_after(&sens_screen, "loaded by LIDT: base "), "{sens_screen}");
    assert_eq!(sidt, g.idtr.base, "SIDT shows the guest's IDTR");
    assert_eq!(hex_after(&sens_screen, "STR "), u32::from(g.tr.sel));
    assert_eq!(hex_after(&sens_screen, "STR "), 0x20, "{sens_screen}");
    assert_eq!(hex_after(&sens_screen, "SLDT "), u32::from(g.ldtr.sel));
    assert_eq!(hex_after(&sens_screen, "SLDT "), 0x18, "{sens_screen}");
    assert_eq!(hex_after(&sens_screen, "SMSW    ") & 1, 1, "PE: {sens_screen}");
    assert!(sens_screen.contains("0008 (RPL 0)"), "CS as the guest loaded it:\n{sens_screen}");
    assert!(sens_screen.contains("after CLI (IF=0)") && sens_screen.contains("after STI (IF=1)"), "{sens_screen}");
    assert!(sens_screen.contains("0: 'V386 VirtCPU'"), "{sens_screen}");
    assert!(sens_screen.contains("83860000h: EBX 'V386'"), "{sens_screen}");
    assert_eq!(hex_after(&sens_screen, "83860001h: EDX "), 1, "PSI only: {sens_screen}");
    assert_eq!(hex_after(&sens_screen, "EAX=0: version "), 0x386, "{sens_screen}");
    let samples = dec_after(&sens_screen, "Samples");
    let sens_secs = dec_after(&sens_screen, "Seconds");
    assert!(samples >= 10 && sens_secs >= 1, "{samples} samples in {sens_secs} s:\n{sens_screen}");
    let lines: Vec<&str> = sens_out.lines().filter(|l| l.starts_with("sensitive: ")).collect();
    assert!(lines.len() as u64 + 1 >= sens_secs && !lines.is_empty(), "sensitive serial:\n{sens_out}");
    for (i, l) in lines.iter().enumerate() {
        let want =
            format!("sensitive: {} s, SGDT {sgdt:08X}/0027, CPUID 'V386 VirtCPU', VCALL version 00000386,", i + 1);
        assert!(l.starts_with(&want), "line {i}: '{l}', want '{want}...'");
    }
    for s in 1..=lines.len() {
        let hello = format!("hello from vmdemo_sensitive (VCALL putchar), second {s}\n");
        assert!(debugcon.contains(&hello), "debug console:\n{debugcon}");
    }
    assert!(vm.counters.count(ExitReason::Cpuid) >= 4 * samples, "four CPUIDs a sample");
    assert!(vm.counters.count(ExitReason::Vcall) >= samples, "a VCALL a sample");
}

/// The same two VMs run twice give the same exit log, screens and serial output: nothing
/// in the guests depends on the host's clock.
#[test]
fn the_demo_guests_are_deterministic() {
    let (Some(clock_img), Some(sens_img)) =
        (assemble_guest("vmdemo_clock", "vmm_demo"), assemble_guest("vmdemo_sensitive", "vmm_demo"))
    else {
        skip("nasm is not installed");
        return;
    };
    let run = || {
        let mut vmm = Vmm::new(VmmConfig::default());
        for (name, img) in [("clock", &clock_img), ("sensitive", &sens_img)] {
            let spec = MachineSpec { memory_mb: Some(MEM_MB), kernel: Some(img.clone()), ..Default::default() };
            vmm.add_vm(name, spec).expect("a VM");
        }
        vmm.run(150_000_000);
        let log: Vec<_> = vmm.log.iter().copied().collect();
        let out: Vec<_> = vmm
            .vms
            .iter_mut()
            .map(|v| (v.board.com1.take_output(), v.board.vga.text_snapshot().to_text(), v.counters.by_reason))
            .collect();
        (log, vmm.log.total, out)
    };
    let (log1, n1, out1) = run();
    let (log2, n2, out2) = run();
    assert!(n1 > 1000, "{n1} exits");
    assert_eq!(n1, n2);
    assert!(log1 == log2, "the exit logs differ");
    assert!(out1 == out2, "the screens, serial output or counters differ");
}

/// On the bare machine (no VMM) the same kernel runs with VCALL as #UD, which its
/// handler steps over, and shows the processor's own CPUID (V386 present).
#[test]
fn the_sensitive_demo_runs_on_the_bare_machine_too() {
    let Some(img) = assemble_guest("vmdemo_sensitive", "vmm_demo") else {
        skip("nasm is not installed");
        return;
    };
    let mut m = Machine::new(&MachineConfig { mem_mb: MEM_MB, ..Default::default() }).expect("the machine");
    assert_eq!(m.load_kernel(&img, None, "").expect("load the kernel"), KernelKind::Multiboot);
    let mut serial = String::new();
    for _ in 0..40 {
        m.run(10_000_000);
        serial.push_str(&String::from_utf8_lossy(&m.bus.com1.take_output()));
        if serial.contains("sensitive: 1 s") {
            break;
        }
    }
    let s = m.vga_text().to_text();
    println!("{s}");
    assert!(s.contains("#UD: not in a V386 VM"), "{s}");
    assert!(s.contains("V386=1  (bare machine)"), "{s}");
    assert!(s.contains("after CLI (IF=0)"), "{s}");
    assert!(dec_after(&s, "Samples") >= 10, "{s}");
    assert!(serial.contains("sensitive: 1 s, SGDT ") && serial.contains("VCALL version FFFFFFFF"), "{serial}");
}

/// Wall-clock VMs (`clock: "wall"`, the page's `deterministic: false`): a halted VM waits
/// for the host's clock instead of skipping to its next timer event. With the host's time
/// held still, `Vmm::run` comes back `Waiting` once the clock kernel idles; as the host's
/// time moves on by simulated seconds, the guest's uptime follows it, not its instructions.
#[test]
fn wall_clock_vms_wait_for_the_hosts_time() {
    let Some(clock_img) = assemble_guest("vmdemo_clock", "vmm_demo_wall") else {
        skip("nasm is not installed");
        return;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let spec = MachineSpec {
        memory_mb: Some(MEM_MB),
        kernel: Some(clock_img),
        clock: Some("wall".into()),
        ..Default::default()
    };
    let id = vmm.add_vm("clock", spec).expect("the clock VM");
    let mut host = 0u64;
    vmm.set_host_time(host);
    let mut outcome = RunOutcome::BudgetSpent;
    for _ in 0..200 {
        outcome = vmm.run(CHUNK);
        if outcome == RunOutcome::Waiting {
            break;
        }
    }
    assert_eq!(outcome, RunOutcome::Waiting, "the idle clock kernel waits for the host's time");
    let retired = vmm.vm(id).unwrap().counters.retired;
    assert_eq!(vmm.run(CHUNK), RunOutcome::Waiting, "still waiting while the host's time stands still");
    assert_eq!(vmm.vm(id).unwrap().counters.retired, retired, "and runs nothing meanwhile");

    // Three seconds of host time, 1 ms at a time.
    let mut serial = String::new();
    for _ in 0..3000 {
        host += 1_000_000;
        vmm.set_host_time(host);
        while vmm.run(CHUNK) == RunOutcome::BudgetSpent {}
        serial.push_str(&String::from_utf8_lossy(&vmm.vm_mut(id).unwrap().board.com1.take_output()));
    }
    let guest_ns = vmm.vm_mut(id).unwrap().board.now();
    println!("after 3 s of host time: guest clock {guest_ns} ns; COM1:\n{serial}");
    assert!((3_000_000_000..3_100_000_000).contains(&guest_ns), "guest time follows the host's: {guest_ns} ns");
    assert!(serial.contains("clock: 2 s") && !serial.contains("clock: 4 s"), "COM1:\n{serial}");
}

/// The sensitive demo five times in one VMM, each VM under its own technique: emulated
/// on a software processor of the VMM's, under the software monitor on the classic
/// processor (plain trap-and-emulate, with PSI, and scanning before it executes), and on
/// the V386 extension. All five run on; the plain trap-and-emulate screen shows the
/// monitor's tables and ring where the others show the guest's own; every exit or trap
/// flows into the one exit log.
#[test]
fn the_sensitive_demo_under_each_technique_side_by_side() {
    use v386::vmm::Technique;
    let Some(img) = assemble_guest("vmdemo_sensitive", "vmm_demo_techniques") else {
        skip("nasm is not installed");
        return;
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let spec = || MachineSpec { memory_mb: Some(MEM_MB), kernel: Some(img.clone()), ..Default::default() };
    let techniques = [
        Technique::Emulation,
        Technique::TrapAndEmulate,
        Technique::TrapAndEmulatePsi,
        Technique::ScanBeforeExecute,
        Technique::V386,
    ];
    let ids: Vec<u16> = techniques.iter().map(|t| vmm.add_vm_as(t.key(), spec(), *t).expect("the VM")).collect();
    let mut logged = std::collections::BTreeSet::new();
    for _ in 0..10 {
        vmm.run(CHUNK);
        logged.extend(vmm.log.iter().map(|r| r.vm));
    }
    for (t, id) in techniques.iter().zip(&ids) {
        let vm = vmm.vm(*id).unwrap();
        let s = screen(&vmm, *id);
        println!("==== {} ({:?}) ====\n{s}\n{:?}", t.key(), vm.state, nonzero(vm));
        assert!(!matches!(vm.state, VmState::Stopped(_)), "{}: {:?}", t.key(), vm.state);
        assert!(dec_after(&s, "Samples") >= 10, "{}: few samples\n{s}", t.key());
        let (gdt, cs) = (hex_after(&s, "SGDT    base"), word_after(&s, "MOV r,CS"));
        if *t == Technique::TrapAndEmulate {
            assert_eq!((gdt, cs), (0xffc0_0000, "0009"), "the classic x86: the monitor's GDT, ring 1\n{s}");
        } else {
            assert_eq!((gdt, cs), (0x0010_1078, "0008"), "{}: the guest's own\n{s}", t.key());
        }
        // Emulation interprets every instruction: nothing exits.
        assert_eq!(logged.contains(id), *t != Technique::Emulation, "{}: the exit log", t.key());
    }
    // The monitor's VMs trap where the V386 one does not exit: its interrupts and HLT
    // come to the monitor, and (without PSI) nothing else the demo does.
    let traps = |id: u16| vmm.vm(id).unwrap().counters.count(ExitReason::ExternalInterrupt);
    assert!(traps(ids[1]) > 0 && traps(ids[4]) == 0);
}
