//! Nothing a guest does may panic the emulator: run 10^6 instructions of random bytes in
//! random modes and states (real, 16/32-bit protected, paging with random tables, ring 3,
//! V86) and require only that the run ends in one of the CPU's ordinary stop reasons.
//! Overflow checks are on in the test profile, so arithmetic slips panic here too.

use v386::bus::FlatBus;
use v386::cpu::seg::Seg;
use v386::cpu::{cr0, cr4, flags, Cpu, StopReason, CS, SS};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bool(&mut self) -> bool {
        self.next() & 1 != 0
    }
}

const RAM: usize = 2 << 20;

fn random_state(rng: &mut Rng, cpu: &mut Cpu, bus: &mut FlatBus) {
    // Random bytes everywhere the guest may look: code, data, tables.
    for chunk in bus.mem.chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let mode = rng.below(6);
    let entry = rng.below(RAM as u64) as u32 & 0xffff;
    match mode {
        0 => cpu.start_real(rng.below(0x1000) as u16, entry as u16),
        _ => cpu.start_flat32(entry, rng.below(RAM as u64) as u32),
    }
    for r in cpu.regs.iter_mut() {
        *r = rng.next() as u32;
    }
    cpu.flags.set(rng.next() as u32 & (flags::ARITH | flags::DF | flags::IOPL | flags::NT | flags::AC));
    cpu.gdtr.base = rng.below(RAM as u64) as u32;
    cpu.gdtr.limit = rng.next() as u16;
    cpu.idtr.base = rng.below(RAM as u64) as u32;
    cpu.idtr.limit = rng.next() as u16;
    if mode >= 1 {
        cpu.tr = Seg::from_descriptor(0x28, rng.next() as u32, rng.next() as u32);
        cpu.ldtr = Seg::from_descriptor(0x30, rng.next() as u32, rng.next() as u32);
    }
    match mode {
        2 => {
            // 16-bit protected mode.
            cpu.segs[CS as usize].flags = 0;
            cpu.segs[SS as usize].flags = 0;
        }
        3 => {
            // Paging with random page tables, maybe PSE/PGE/WP.
            cpu.cr3 = rng.below(RAM as u64) as u32 & !0xfff;
            cpu.cr0 |= cr0::PG | if rng.bool() { cr0::WP } else { 0 };
            cpu.cr4 = if rng.bool() { cr4::PSE } else { 0 } | if rng.bool() { cr4::PGE } else { 0 };
            cpu.tlb.flush_all();
        }
        4 => {
            // Ring 3.
            cpu.cpl = 3;
            cpu.segs[CS as usize].access |= 3 << 5;
            cpu.segs[SS as usize].access |= 3 << 5;
            cpu.cr0 |= cr0::AM;
        }
        5 => {
            // Virtual-8086 mode.
            cpu.flags.set(cpu.flags.get() | flags::VM);
            for s in cpu.segs.iter_mut() {
                *s = Seg::real(rng.next() as u16);
                s.access |= 3 << 5;
            }
            cpu.cpl = 3;
            cpu.eip &= 0xffff;
        }
        _ => {}
    }
}

#[test]
fn random_bytes_never_panic_the_emulator() {
    let seed = std::env::var("V386_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x05ee_d386_u64);
    let mut rng = Rng(seed | 1);
    let mut bus = FlatBus::new(RAM);
    let mut total = 0u64;
    let mut trials = 0;
    let mut stops = [0u32; 4];
    while total < 1_000_000 {
        let mut cpu = Cpu::new();
        random_state(&mut rng, &mut cpu, &mut bus);
        let before = cpu.icount;
        let r = cpu.run(&mut bus, 2_000);
        // A halted or shut-down CPU retires nothing more; count attempts so the loop ends.
        total += (cpu.icount - before).max(1);
        trials += 1;
        let k = match r {
            // A slice ended early (FERR# rose): as good as a spent budget here.
            StopReason::BudgetSpent | StopReason::Yield => 0,
            StopReason::Halted => 1,
            StopReason::Shutdown => 2,
            StopReason::DebugExit(_)
            | StopReason::Reset
            | StopReason::PowerOff
            | StopReason::VmExit
            | StopReason::HostTrap => 3,
        };
        stops[k] += 1;
    }
    println!(
        "{total} instructions in {trials} random states: budget {} / halted {} / shutdown {} / exit {}",
        stops[0], stops[1], stops[2], stops[3]
    );
}
