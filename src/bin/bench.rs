//! `v386-bench`: guest MIPS on fixed loops, natively. Run with
//! `cargo run --release --bin v386-bench`. A benchmark, not a test: it prints figures and
//! never fails on speed. The loops are hand-encoded so the binary needs no assembler.
//!
//! Each loop runs twice: on the bare CPU and as a guest in V386 mode under a Rust host
//! (`Cpu::vm_run`, second-level translation on, the preemption timer handing control
//! back every [`QUANTUM`] instructions as a scheduler would). A last figure is the cost
//! of one VM exit handled by the host plus the re-entry.

use std::time::Instant;
use v386::bus::FlatBus;
use v386::cpu::v386::slt::bits;
use v386::cpu::v386::vcb::exec;
use v386::cpu::v386::{ExitReason, Vcb, VmRun};
use v386::cpu::{Cpu, StopReason};

/// Guest instructions between two preemption-timer exits in the V386 runs.
const QUANTUM: u32 = 1_000_000;
/// Where the guest's 16 MiB of RAM lives in host memory, and where the SLT is.
const GUEST_BASE: u64 = 16 << 20;
const SLT_ROOT: u64 = 0x1000;

/// Instructions per loop iteration of each program (for the report only; MIPS is computed
/// from the CPU's own retired-instruction count).
struct Loop {
    name: &'static str,
    code: Vec<u8>,
    paging: bool,
}

fn register_loop() -> Vec<u8> {
    // mov ecx, 0x7fffffff
    // l: add eax, ebx ; xor edx, eax ; inc ebx ; sub esi, edx ; dec ecx ; jnz l ; hlt
    let mut c = vec![0xb9, 0xff, 0xff, 0xff, 0x7f];
    c.extend_from_slice(&[0x01, 0xd8, 0x31, 0xc2, 0x43, 0x29, 0xd6, 0x49, 0x75, 0xf6, 0xf4]);
    c
}

fn memory_loop() -> Vec<u8> {
    // mov ecx, 0x7fffffff ; mov esi, 0x400000 (a 4 KiB-paged region)
    // l: mov eax, [esi] ; add eax, ecx ; mov [esi+4], eax ; add esi, 8 ;
    //    and esi, 0x43fff8 ; dec ecx ; jnz l ; hlt
    let mut c = vec![0xb9, 0xff, 0xff, 0xff, 0x7f, 0xbe, 0x00, 0x00, 0x40, 0x00];
    c.extend_from_slice(&[
        0x8b, 0x06, // mov eax,[esi]
        0x01, 0xc8, // add eax,ecx
        0x89, 0x46, 0x04, // mov [esi+4],eax
        0x83, 0xc6, 0x08, // add esi,8
        0x81, 0xe6, 0xf8, 0xff, 0x43, 0x00, // and esi,0x43fff8
        0x49, // dec ecx
        0x75, 0xed, // jnz l
        0xf4,
    ]);
    c
}

/// Identity-map the first 8 MiB with 4 KiB pages: page directory at 0x10000, tables after.
fn build_page_tables(mem: &mut [u8]) -> u32 {
    let pd = 0x10000usize;
    for t in 0..2usize {
        let pt = pd + 0x1000 * (t + 1);
        mem[pd + t * 4..pd + t * 4 + 4].copy_from_slice(&((pt as u32) | 7).to_le_bytes());
        for e in 0..1024usize {
            let frame = ((t * 1024 + e) << 12) as u32;
            mem[pt + e * 4..pt + e * 4 + 4].copy_from_slice(&(frame | 7).to_le_bytes());
        }
    }
    pd as u32
}

/// An SLT mapping GPA 0–16 MiB onto host memory at [`GUEST_BASE`] with 4 KiB pages:
/// root at 0x1000, one level-2 table at 0x2000, level-1 tables from 0x3000.
fn build_slt(mem: &mut [u8]) {
    let put = |mem: &mut [u8], a: u64, v: u64| mem[a as usize..a as usize + 8].copy_from_slice(&v.to_le_bytes());
    put(mem, SLT_ROOT, 0x2000 | bits::RWX);
    for t in 0..8u64 {
        let l1 = 0x3000 + 0x1000 * t;
        put(mem, 0x2000 + 8 * t, l1 | bits::RWX);
        for e in 0..512u64 {
            put(mem, l1 + 8 * e, (GUEST_BASE + ((t * 512 + e) << 12)) | bits::RWX);
        }
    }
}

/// A guest in flat 32-bit protected mode with `cpu`'s registers, as `Vcb` wants it.
fn guest_vcb(cpu: &Cpu) -> Vcb {
    let mut v = Vcb::default();
    v.controls.slt_root = SLT_ROOT;
    v.controls.exec = exec::PTIMER;
    let reset = v.guest.clone();
    v.guest = cpu.capture_state();
    // The LDTR and TR of the reset state, which protected mode accepts (a bare `Cpu`
    // keeps real-mode caches there, which the entry checks refuse).
    v.guest.ldtr = reset.ldtr;
    v.guest.tr = reset.tr;
    for s in v.guest.segs.iter_mut() {
        s.access |= 1;
    }
    v
}

/// Run `l` as a V386 guest for `budget` instructions: seconds taken, instructions retired.
fn run_in_v386(l: &Loop, budget: u64) -> (f64, u64) {
    let mut bus = FlatBus::new(32 << 20);
    build_slt(&mut bus.mem);
    let g = GUEST_BASE as usize;
    bus.mem[g + 0x1000..g + 0x1000 + l.code.len()].copy_from_slice(&l.code);
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    if l.paging {
        cpu.cr3 = build_page_tables(&mut bus.mem[g..]);
        cpu.cr0 |= v386::cpu::cr0::PG;
    }
    let mut v = guest_vcb(&cpu);
    let mut host = Cpu::new();
    let mut retired = 0;
    let t = Instant::now();
    while retired < budget {
        v.controls.preempt_timer = QUANTUM.min((budget - retired) as u32);
        let r = host.vm_run(&mut bus, &mut v, u64::MAX);
        assert_eq!(
            r,
            VmRun::Exit(ExitReason::PreemptionTimer),
            "{} in V386 at {:#x} (check {})",
            l.name,
            v.guest.eip,
            v.exit.entry_failure_check
        );
        retired += v.exit.guest_retired;
    }
    (t.elapsed().as_secs_f64(), retired)
}

/// Nanoseconds per exit round trip: a guest doing `out 0x80, al` in a loop, every OUT an
/// I/O exit that the host handles (it checks the port and steps EIP) before re-entering.
fn exit_round_trip(exits: u32) -> f64 {
    let mut bus = FlatBus::new(32 << 20);
    build_slt(&mut bus.mem);
    let g = GUEST_BASE as usize;
    bus.mem[g + 0x1000..g + 0x1004].copy_from_slice(&[0xe6, 0x80, 0xeb, 0xfc]);
    // An I/O bitmap with every port intercepted, at 0x100000.
    bus.mem[0x10_0000..0x10_2000].fill(0xff);
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    let mut v = guest_vcb(&cpu);
    v.controls.exec = 0;
    v.controls.io_bitmap = 0x10_0000;
    let mut host = Cpu::new();
    let t = Instant::now();
    for _ in 0..exits {
        let r = host.vm_run(&mut bus, &mut v, u64::MAX);
        assert_eq!(r, VmRun::Exit(ExitReason::Io));
        assert_eq!(v.exit.qualification >> 16 & 0xffff, 0x80);
        v.guest.eip += v.exit.instr_len;
    }
    t.elapsed().as_secs_f64() * 1e9 / exits as f64
}

fn main() {
    let budget: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(300_000_000);
    // An optional second argument picks loops by name ("register", "memory"), so a profiler
    // run (callgrind) sees one loop only.
    let only = std::env::args().nth(2).unwrap_or_default();
    let loops = [
        Loop { name: "register loop", code: register_loop(), paging: false },
        Loop { name: "memory loop, paging on", code: memory_loop(), paging: true },
    ];
    println!("v386-bench: {budget} guest instructions per loop, best of 3");
    for l in loops.iter().filter(|l| l.name.contains(only.as_str())) {
        let mut best = f64::MAX;
        let mut retired = 0;
        for _ in 0..3 {
            let mut bus = FlatBus::new(16 << 20);
            bus.mem[0x1000..0x1000 + l.code.len()].copy_from_slice(&l.code);
            let mut cpu = Cpu::new();
            cpu.start_flat32(0x1000, 0x8000);
            if l.paging {
                cpu.cr3 = build_page_tables(&mut bus.mem);
                cpu.cr0 |= v386::cpu::cr0::PG;
                cpu.tlb.flush_all();
            }
            let t = Instant::now();
            let r = cpu.run(&mut bus, budget);
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(r, StopReason::BudgetSpent, "{} stopped early at {:#x}", l.name, cpu.eip);
            retired = cpu.icount;
            best = best.min(dt);
        }
        println!(
            "{:<26} {:>8.1} M guest instructions/s ({} in {:.3} s)",
            l.name,
            retired as f64 / best / 1e6,
            retired,
            best
        );
        let bare = retired as f64 / best;
        let (mut best_vm, mut retired_vm) = (f64::MAX, 0);
        for _ in 0..3 {
            let (dt, n) = run_in_v386(l, budget);
            best_vm = best_vm.min(dt);
            retired_vm = n;
        }
        let vm = retired_vm as f64 / best_vm;
        println!(
            "{:<26} {:>8.1} M guest instructions/s ({:.3}x bare; V386 guest, SLT on, timer every {} instructions)",
            format!("  in V386"),
            vm / 1e6,
            vm / bare,
            QUANTUM
        );
    }
    if only.is_empty() || "exit".contains(only.as_str()) {
        let best = (0..3).map(|_| exit_round_trip(1_000_000)).fold(f64::MAX, f64::min);
        println!("{:<26} {:>8.0} ns per I/O exit handled by a Rust host and re-entry", "VM exit round trip", best);
    }
}
