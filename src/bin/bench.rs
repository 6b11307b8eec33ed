//! `v386-bench`: guest MIPS on fixed loops, natively. Run with
//! `cargo run --release --bin v386-bench`. A benchmark, not a test: it prints figures and
//! never fails on speed. The loops are hand-encoded so the binary needs no assembler.

use std::time::Instant;
use v386::bus::FlatBus;
use v386::cpu::{Cpu, StopReason};

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
    }
}
