//! Snapshots (`v386::snapshot`): save a machine, restore it, run both on.
//!
//! - Bare machines, saved and restored, then run side by side with the original for 10^6
//!   instructions in slices from one instruction up, with the same input: the processor
//!   state after every slice, and RAM, serial output, the screen and the whole state (a
//!   second snapshot of each, byte for byte) at the end must be the same. Saved while
//!   ISOLINUX loads the kernel from the CD through SeaBIOS (ATAPI, real mode), and at the
//!   shell of Debian's Linux booted with `-kernel` (paging, FPU, the APIC timer) with a
//!   command typed.
//! - The x86 V386 host program (tests/guests/v386_host.asm) saved and restored every few
//!   thousand instructions, guests inside the processor or not, prints what an
//!   uninterrupted run prints.
//! - The same for SeaBIOS booting the demo floppy (floppy controller, DMA, VGA), with
//!   keys typed on its keyboard and its serial line while both run.
//! - A VMM with five VMs (SeaBIOS and the demo floppy, and the two demo kernels of
//!   tests/vmm_demo.rs, on V386; the sensitive demo again under the software monitor and
//!   emulated) is saved mid-run and restored; both run on for 10^6 guest
//!   instructions: exit logs, counters, VM states, serial output, host memory and the
//!   whole state must match.
//! - Garbage, truncated files, a wrong magic, version or kind, and damaged payloads (with
//!   a correct checksum, so the decoder sees them) give errors, never a panic; a damaged
//!   machine that restores runs and saves again without one (an IDE channel's device
//!   index out of range was such a case: now refused at restore).
//!
//! Sizes and save/restore times are printed (`--nocapture`). Missing images or nasm skip
//! the tests unless `V386_REQUIRE_QEMU` is set.

mod common;
use common::*;

use std::time::Instant;

use v386::cpu::{Seg, StopReason};
use v386::machine::{Machine, MachineConfig, MachineSpec};
use v386::snapshot::{crc32, SnapshotError, FORMAT_VERSION, HEADER_LEN};
use v386::vmm::{Technique, Vmm, VmmConfig};

/// How long the runs on after a restore last, in instructions.
const RUN_ON: u64 = 1_000_000;

/// Slice lengths, in turn: single instructions (the finest comparison) and longer slices
/// (whole cached blocks, timer events inside a slice).
const SLICES: [u64; 12] = [1, 1, 1, 2, 3, 7, 1, 64, 333, 1000, 4096, 17];

/// The processor state compared after every slice.
#[derive(Debug, PartialEq)]
struct CpuView {
    regs: [u32; 8],
    eip: u32,
    eflags: u32,
    segs: [Seg; 6],
    cr: [u32; 4],
    icount: u64,
    halted: bool,
    fpu_sw: u16,
}

fn cpu_view(c: &v386::cpu::Cpu) -> CpuView {
    CpuView {
        regs: c.regs,
        eip: c.eip,
        eflags: c.flags.get(),
        segs: c.segs,
        cr: [c.cr0, c.cr2, c.cr3, c.cr4],
        icount: c.icount,
        halted: c.halted,
        fpu_sw: c.fpu.sw,
    }
}

fn mib(n: usize) -> String {
    format!("{:.2} MiB", n as f64 / (1 << 20) as f64)
}

/// Save `m`, restore it, and check the restored machine saves to the same bytes.
fn save_and_restore(m: &Machine, what: &str) -> Machine {
    let t = Instant::now();
    let bytes = m.save().expect("save");
    let saved = t.elapsed();
    let t = Instant::now();
    let r = Machine::restore(&bytes).expect("restore");
    let restored = t.elapsed();
    println!(
        "{what}: snapshot {} ({} of RAM), save {:.1} ms, restore {:.1} ms",
        mib(bytes.len()),
        mib(m.bus.ram.len()),
        saved.as_secs_f64() * 1e3,
        restored.as_secs_f64() * 1e3
    );
    assert!(bytes.starts_with(b"V386SNAP"));
    assert!(r.save().expect("save the restored machine") == bytes, "{what}: a restored machine saves the same bytes");
    r
}

/// Run `a` (the original) and `b` (restored from it) side by side for `RUN_ON`
/// instructions; `input(i, m)` may feed both at slice `i`. Everything must match.
fn run_side_by_side(a: &mut Machine, b: &mut Machine, what: &str, input: impl Fn(usize, &mut Machine)) {
    let start = a.cpu.icount;
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    let mut i = 0;
    while a.cpu.icount - start < RUN_ON {
        input(i, a);
        input(i, b);
        let n = SLICES[i % SLICES.len()];
        let (ra, rb) = (a.run(n), b.run(n));
        assert_eq!(ra, rb, "{what}: slice {i}: stop reasons");
        assert!(matches!(ra, StopReason::BudgetSpent), "{what}: slice {i}: the machine stopped ({ra:?})");
        assert_eq!(cpu_view(&a.cpu), cpu_view(&b.cpu), "{what}: slice {i} ({n} instructions)");
        out_a.extend(a.take_serial());
        out_b.extend(b.take_serial());
        i += 1;
        assert!(i < 5_000_000, "{what}: {} instructions in {i} slices", a.cpu.icount - start);
    }
    assert_eq!(String::from_utf8_lossy(&out_a), String::from_utf8_lossy(&out_b), "{what}: serial output");
    assert!(a.bus.ram == b.bus.ram, "{what}: RAM");
    assert_eq!(a.vga_text(), b.vga_text(), "{what}: the screen");
    assert_eq!(a.take_debugcon(), b.take_debugcon(), "{what}: debug console");
    assert!(a.save().unwrap() == b.save().unwrap(), "{what}: the whole state");
    println!(
        "{what}: {} instructions in {i} slices side by side; {} bytes of serial output",
        a.cpu.icount - start,
        out_a.len()
    );
}

#[test]
fn a_machine_loading_linux_from_a_cd_runs_on_identically_after_a_restore() {
    let (Some(bios), Some(vga), Some(iso)) =
        (read_image("bios.bin"), read_image("vgabios-stdvga.bin"), read_image("linux.iso"))
    else {
        return;
    };
    let mut a = Machine::new(&MachineConfig { mem_mb: 128, ..Default::default() }).unwrap();
    a.load_bios(&bios, Some(&vga)).unwrap();
    a.attach_cdrom(iso).unwrap();
    a.set_boot_order("d").unwrap();
    // ISOLINUX is loading the kernel through SeaBIOS's INT 13h from the CD (ATAPI).
    let mut serial = Vec::new();
    while !String::from_utf8_lossy(&serial).contains("Loading /vmlinuz") {
        assert_eq!(a.run(10_000_000), StopReason::BudgetSpent);
        serial.extend(a.take_serial());
        assert!(a.cpu.icount < 1_000_000_000, "ISOLINUX did not start: {}", String::from_utf8_lossy(&serial));
    }
    a.run(5_000_000);
    let mut b = save_and_restore(&a, "SeaBIOS + ISOLINUX from CD, 128 MiB");
    run_side_by_side(&mut a, &mut b, "ISOLINUX from CD", |_, _| {});
}

#[test]
fn a_machine_at_a_linux_shell_runs_on_identically_after_a_restore() {
    let (Some(kernel), Some(initrd)) = (read_image("vmlinuz"), read_image("initramfs.cpio.gz")) else { return };
    let mut a = Machine::new(&MachineConfig { mem_mb: 128, ..Default::default() }).unwrap();
    a.load_kernel(&kernel, Some(&initrd), "console=ttyS0 cryptomgr.notests").unwrap();
    let mut serial = Vec::new();
    while !String::from_utf8_lossy(&serial).contains("v386:/# ") {
        assert_eq!(a.run(20_000_000), StopReason::BudgetSpent);
        serial.extend(a.take_serial());
        assert!(a.cpu.icount < 5_000_000_000, "no shell prompt: {}", String::from_utf8_lossy(&serial));
    }
    println!("Linux: at its shell after {} instructions", a.cpu.icount);
    let mut b = save_and_restore(&a, "Linux at its shell, 128 MiB");
    // A command typed at once, and its output compared as it comes.
    run_side_by_side(&mut a, &mut b, "Linux shell", |i, m| {
        if i == 0 {
            m.serial_input(b"echo $((6*7)); cat /proc/uptime\n");
        }
    });
}

#[test]
fn an_x86_v386_host_saved_and_restored_throughout_still_passes() {
    // tests/guests/v386_host.asm: a VMM in x86 that enters guests with VMENTER. Saved and
    // restored every few thousand instructions, often with a guest inside the processor
    // (V386 mode), it must print exactly what an uninterrupted run prints.
    let Some(img) = assemble_guest("v386_host", "snapshot") else {
        skip("nasm is not installed");
        return;
    };
    let (golden, golden_stop) = run_flat_real(&img, 0xf4, 50_000_000);
    let mut m = Machine::new(&MachineConfig { mem_mb: 32, debug_exit_port: Some(0xf4), ..Default::default() }).unwrap();
    m.load_flat(&img, 0x7c00, 0x7e00, v386::machine::StartMode::Real).unwrap();
    let (mut out, mut saves, mut in_guest) = (Vec::new(), 0, 0);
    let stop = loop {
        let n = SLICES[saves % SLICES.len()] + 1;
        let r = m.run(n);
        out.extend(m.take_debugcon());
        if r != StopReason::BudgetSpent {
            break r;
        }
        in_guest += m.cpu.in_v386() as usize;
        let bytes = m.save().unwrap();
        m = Machine::restore(&bytes).unwrap();
        saves += 1;
        assert!(m.cpu.icount < 50_000_000);
    };
    println!("x86 V386 host: {saves} saves and restores ({in_guest} inside a guest), {} instructions", m.cpu.icount);
    assert!(in_guest > 0, "no save fell inside a guest");
    assert_eq!((String::from_utf8_lossy(&out), stop), (String::from_utf8_lossy(&golden), golden_stop));
}

#[test]
fn a_machine_running_the_demo_floppy_runs_on_identically_after_a_restore() {
    let (Some(bios), Some(vga)) = (read_image("bios.bin"), read_image("vgabios-stdvga.bin")) else { return };
    let Some(floppy) = assemble_guest("webdemo", "snapshot") else {
        skip("nasm is not installed");
        return;
    };
    let spec = MachineSpec {
        memory_mb: Some(16),
        bios: Some(bios),
        vga_bios: Some(vga),
        fda: Some(floppy),
        ..Default::default()
    };
    let mut a = spec.build().unwrap();
    a.run(60_000_000);
    let mut b = save_and_restore(&a, "SeaBIOS + demo floppy, 16 MiB");
    // The demo waits for keys: its instructions come with typing, so time (the budget,
    // idle time included) rather than instructions bounds this run.
    let start = a.cpu.icount;
    for i in 0..2_000u64 {
        for m in [&mut a, &mut b] {
            if i % 100 == 10 {
                m.bus.kbd.key_ascii(b'a');
                m.serial_input(b"x");
            }
        }
        let n = SLICES[i as usize % SLICES.len()] * 10;
        assert_eq!(a.run(n), b.run(n));
        assert_eq!(cpu_view(&a.cpu), cpu_view(&b.cpu), "slice {i}");
    }
    assert!(a.take_serial() == b.take_serial() && a.vga_text() == b.vga_text(), "serial output and screen");
    assert!(a.bus.ram == b.bus.ram);
    assert!(a.save().unwrap() == b.save().unwrap(), "the whole state");
    println!("demo floppy: {} instructions side by side", a.cpu.icount - start);
}

/// Five VMs: SeaBIOS booting the demo floppy, and the two demo kernels on V386; the
/// sensitive demo again under the software monitor (trap-and-emulate) and emulated on a
/// software processor of the VMM's.
fn five_vms() -> Option<Vmm> {
    let (Some(bios), Some(vga)) = (read_image("bios.bin"), read_image("vgabios-stdvga.bin")) else { return None };
    let (Some(floppy), Some(clock), Some(sens)) = (
        assemble_guest("webdemo", "snapshot"),
        assemble_guest("vmdemo_clock", "snapshot"),
        assemble_guest("vmdemo_sensitive", "snapshot"),
    ) else {
        skip("nasm is not installed");
        return None;
    };
    let mut vmm = Vmm::new(VmmConfig { quantum: 50_000, ..Default::default() });
    let demo = MachineSpec {
        memory_mb: Some(16),
        bios: Some(bios),
        vga_bios: Some(vga),
        fda: Some(floppy),
        ..Default::default()
    };
    let kernel = |k| MachineSpec { memory_mb: Some(16), kernel: Some(k), ..Default::default() };
    vmm.add_vm("demo", demo).unwrap();
    vmm.add_vm("clock", kernel(clock)).unwrap();
    vmm.add_vm("sensitive", kernel(sens.clone())).unwrap();
    vmm.add_vm_as("classic", kernel(sens.clone()), Technique::TrapAndEmulate).unwrap();
    vmm.add_vm_as("emulated", kernel(sens), Technique::Emulation).unwrap();
    Some(vmm)
}

/// What is compared after every slice of a VMM run.
#[derive(Debug, PartialEq)]
struct VmmView {
    cpu: CpuView,
    log_total: u64,
    vms: Vec<VmView>,
}

/// One VM: its scheduling state, time and counters, and its guest registers as its
/// control block holds them between turns.
#[derive(Debug, PartialEq)]
struct VmView {
    name: String,
    state: v386::vmm::VmState,
    clock: u64,
    by_reason: Vec<u64>,
    /// MMIO accesses, turns, preemptions, instructions retired.
    counts: [u64; 4],
    regs: [u32; 8],
    eip: u32,
    eflags: u32,
}

fn vmm_view(v: &Vmm) -> VmmView {
    VmmView {
        cpu: cpu_view(&v.cpu),
        log_total: v.log.total,
        vms: v
            .vms
            .iter()
            .map(|vm| {
                let c = &vm.counters;
                let g = vm.processor_state();
                VmView {
                    name: vm.name.clone(),
                    state: vm.state.clone(),
                    clock: vm.clock,
                    by_reason: c.by_reason.to_vec(),
                    counts: [c.mmio, c.turns, c.preemptions, c.retired],
                    regs: g.regs,
                    eip: g.eip,
                    eflags: g.eflags,
                }
            })
            .collect(),
    }
}

fn retired(v: &Vmm) -> u64 {
    v.vms.iter().map(|vm| vm.counters.retired).sum()
}

#[test]
fn a_vmm_with_vms_of_every_kind_runs_on_identically_after_a_restore() {
    let Some(mut a) = five_vms() else { return };
    a.run(40_000_000);
    let t = Instant::now();
    let bytes = a.save().expect("save");
    let saved = t.elapsed();
    let t = Instant::now();
    let mut b = Vmm::restore(&bytes).expect("restore");
    println!(
        "VMM, 5 VMs of 16 MiB ({} of host memory, {} exits logged): snapshot {}, save {:.1} ms, restore {:.1} ms",
        mib(a.mem.bytes.len()),
        a.log.total,
        mib(bytes.len()),
        saved.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
    assert!(b.save().unwrap() == bytes, "a restored VMM saves the same bytes");
    // The machine snapshot reader refuses a VMM's, and the reverse.
    assert!(matches!(Machine::restore(&bytes), Err(SnapshotError::WrongKind { .. })));

    let start = retired(&a);
    let log_start = a.log.total;
    let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
    let mut i = 0;
    while retired(&a) - start < RUN_ON {
        if i == 40 {
            for v in [&mut a, &mut b] {
                v.vms[0].board.com1.receive(b"hello");
            }
        }
        let n = SLICES[i % SLICES.len()] * 3;
        assert_eq!(a.run(n), b.run(n), "slice {i}");
        assert_eq!(vmm_view(&a), vmm_view(&b), "slice {i} ({n} instructions)");
        for (va, vb) in a.vms.iter_mut().zip(b.vms.iter_mut()) {
            out_a.push(va.board.com1.take_output());
            out_b.push(vb.board.com1.take_output());
        }
        i += 1;
        assert!(i < 1_000_000, "{} guest instructions in {i} slices", retired(&a) - start);
    }
    assert!(a.log.iter().eq(b.log.iter()), "exit logs");
    assert_eq!(out_a, out_b, "serial output");
    assert!(a.mem.bytes == b.mem.bytes, "host memory");
    for (va, vb) in a.vms.iter().zip(b.vms.iter()) {
        assert_eq!(va.board.vga.text_snapshot(), vb.board.vga.text_snapshot(), "{}'s screen", va.name);
        assert_eq!(va.board.debugcon.out, vb.board.debugcon.out, "{}'s debug console", va.name);
    }
    assert!(a.save().unwrap() == b.save().unwrap(), "the whole state");
    println!(
        "VMM: {} guest instructions and {} exits side by side in {i} slices",
        retired(&a) - start,
        a.log.total - log_start
    );
}

/// A small machine's snapshot: no firmware, 2 MiB.
fn small_snapshot() -> Vec<u8> {
    small_machine(|_| {})
}

/// The same with a small disk and CD attached (the IDE state in the file too).
fn small_snapshot_with_drives() -> Vec<u8> {
    small_machine(|m| {
        m.attach_disk(0, vec![0x5a; 64 * 512]).unwrap();
        m.attach_cdrom(vec![0xa5; 16 * 2048]).unwrap();
    })
}

fn small_machine(attach: impl Fn(&mut Machine)) -> Vec<u8> {
    let mut m = Machine::new(&MachineConfig { mem_mb: 2, ..Default::default() }).unwrap();
    attach(&mut m);
    // A few instructions of real mode so the state is not all zeros: mov ax,0x1234;
    // out 0xe9,al; inc bx; jmp $-1.
    m.load_flat(&[0xb8, 0x34, 0x12, 0xe6, 0xe9, 0x43, 0xeb, 0xfd], 0x7c00, 0x7c00, v386::machine::StartMode::Real)
        .unwrap();
    m.run(1000);
    m.save().unwrap()
}

/// Fix the header's length and checksum after the payload was changed.
fn reseal(bytes: &mut [u8]) {
    let len = (bytes.len() - HEADER_LEN) as u64;
    let crc = crc32(&bytes[HEADER_LEN..]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
}

/// A deterministic byte stream (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn bad_files_give_errors_not_panics() {
    let good = small_snapshot_with_drives();
    println!("bare 2 MiB machine without firmware, with a disk and a CD: snapshot {} bytes", good.len());
    let m = Machine::restore(&good).expect("the good file restores");
    assert_eq!(m.cpu.regs[v386::cpu::EBX] & 0xffff, good_ebx());
    assert!(matches!(Vmm::restore(&good), Err(SnapshotError::WrongKind { .. })));

    // Not snapshots at all.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for len in [0usize, 1, 7, 8, 23, 24, 100, 4096, 1 << 20] {
        let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(Machine::restore(&garbage).is_err() && Vmm::restore(&garbage).is_err(), "{len} bytes of garbage");
    }
    assert_eq!(Machine::restore(b"V386SNAQ\0\0\0\0").err(), Some(SnapshotError::BadMagic));
    let mut wrong_magic = good.clone();
    wrong_magic[0] = b'X';
    assert_eq!(Machine::restore(&wrong_magic).err(), Some(SnapshotError::BadMagic));
    let mut wrong_version = good.clone();
    wrong_version[8..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(Machine::restore(&wrong_version).err(), Some(SnapshotError::UnsupportedVersion(FORMAT_VERSION + 1)));
    let mut wrong_kind = good.clone();
    wrong_kind[10] = 7;
    assert!(matches!(Machine::restore(&wrong_kind), Err(SnapshotError::WrongKind { found: 7, .. })));

    // Truncated anywhere: in the header, and in the payload.
    for cut in (0..HEADER_LEN).chain((HEADER_LEN..good.len()).step_by(97)) {
        let Err(e) = Machine::restore(&good[..cut]) else { panic!("a file cut at {cut} restored") };
        assert!(matches!(e, SnapshotError::Truncated | SnapshotError::BadMagic), "cut at {cut}: {e}");
    }
    // Damaged: the checksum catches it.
    let mut damaged = good.clone();
    let at = HEADER_LEN + (good.len() - HEADER_LEN) / 2;
    damaged[at] ^= 0x40;
    assert!(matches!(Machine::restore(&damaged), Err(SnapshotError::Corrupt(_))));
    // Trailing bytes.
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(Machine::restore(&longer), Err(SnapshotError::Corrupt(_))));

    // Damaged payloads with a correct checksum reach the decoder: truncated, cut short
    // and extended, bytes changed. Each gives an error or a machine, never a panic.
    let (mut errors, mut restored) = (0, 0);
    for cut in (HEADER_LEN..good.len()).step_by(13) {
        let mut t = good[..cut].to_vec();
        reseal(&mut t);
        match Machine::restore(&t) {
            Err(_) => errors += 1,
            Ok(_) => restored += 1,
        }
    }
    // Bytes changed anywhere (mostly RAM), then bytes changed in the devices' and the
    // processor's state, which lies at the payload's two ends (RAM and VRAM are in the
    // middle). A machine that restores must also run and save again without a panic.
    let payload = good.len() - HEADER_LEN;
    let ends = |r: usize| if r & 1 == 0 { HEADER_LEN + (r >> 1) % 6000 } else { good.len() - 1 - (r >> 1) % 6000 };
    for case in 0..4000 {
        let mut t = good.clone();
        for _ in 0..1 + rng.next() % 4 {
            let r = rng.next() as usize;
            let at = if case < 3000 { HEADER_LEN + r % payload } else { ends(r) };
            t[at] = rng.next() as u8;
        }
        reseal(&mut t);
        match Machine::restore(&t) {
            Err(e) => {
                let _ = e.to_string();
                errors += 1
            }
            Ok(mut m) => {
                restored += 1;
                if case >= 3000 {
                    m.run(10_000);
                    m.save().expect("a restored machine saves again");
                }
            }
        }
    }
    println!("damaged payloads with a good checksum: {errors} refused, {restored} decoded");
    assert!(errors > 0);
}

/// EBX after the small machine's 1000 instructions: 3 instructions to start, then the
/// loop of `inc bx; jmp` (the OUT is one instruction).
fn good_ebx() -> u32 {
    // mov, out, then (inc, jmp) pairs: the 1000th instruction ends a pair.
    (1000 - 2) / 2
}

/// A guard on the rule that any change to the saved layout bumps `FORMAT_VERSION`: the
/// checksums of a small machine's snapshot and of a small VMM's (one VM of each kind of
/// turn) are pinned beside the version. When this fails, the saved state changed: if its
/// layout did (a field added, removed, reordered or retyped), bump `FORMAT_VERSION`;
/// then pin the new checksums printed here.
#[test]
fn the_saved_layout_is_pinned_to_the_format_version() {
    use v386::machine::StartMode;
    let machine = small_snapshot();
    let mut vmm = Vmm::new(VmmConfig::default());
    // mov al, 7; out 0xf4, al (isa-debug-exit), in flat 32-bit protected mode.
    for t in [Technique::Emulation, Technique::TrapAndEmulate, Technique::V386] {
        let mut m =
            Machine::new(&MachineConfig { mem_mb: 2, debug_exit_port: Some(0xf4), ..Default::default() }).unwrap();
        m.load_flat(&[0xb0, 0x07, 0xe6, 0xf4], 0x10_0000 - 0x1000, 0x10_0000 - 0x1000, StartMode::Pm32).unwrap();
        vmm.add_machine_as(t.key(), m, t).unwrap();
    }
    vmm.run(1_000);
    let vmm = vmm.save().unwrap();
    let pins = (FORMAT_VERSION, crc32(&machine[HEADER_LEN..]), crc32(&vmm[HEADER_LEN..]));
    println!("format {}: machine payload crc {:#010x}, VMM payload crc {:#010x}", pins.0, pins.1, pins.2);
    assert_eq!(pins, (3, 0x8b5c_5496, 0xfaab_2f8a), "the saved state changed: see this test's comment");
}
