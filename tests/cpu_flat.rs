//! Per-instruction tests on flat memory: the CPU with [`FlatBus`], no devices. Each test
//! assembles a few bytes by hand, runs them to a HLT and checks registers and flags.

use v386::bus::FlatBus;
use v386::cpu::flags::{CF, OF, PF, SF, ZF};
use v386::cpu::{Cpu, StopReason, EAX, EBX, ECX, EDX, ESP};

/// Run `code` at 0x1000 in 32-bit flat protected mode until HLT.
fn run32(code: &[u8], setup: impl FnOnce(&mut Cpu)) -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(code);
    bus.mem[0x1000 + code.len()] = 0xf4;
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    setup(&mut cpu);
    let r = cpu.run(&mut bus, 10_000);
    assert_eq!(r, StopReason::Halted, "eip={:#x}", cpu.eip);
    (cpu, bus)
}

/// Run `code` at 0000:1000 in real mode until HLT.
fn run16(code: &[u8], setup: impl FnOnce(&mut Cpu)) -> (Cpu, FlatBus) {
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(code);
    bus.mem[0x1000 + code.len()] = 0xf4;
    let mut cpu = Cpu::new();
    cpu.start_real(0, 0x1000);
    cpu.regs[ESP] = 0x8000;
    setup(&mut cpu);
    let r = cpu.run(&mut bus, 10_000);
    assert_eq!(r, StopReason::Halted, "eip={:#x}", cpu.eip);
    (cpu, bus)
}

fn arith(cpu: &Cpu) -> u32 {
    cpu.flags.get() & (CF | PF | ZF | SF | OF)
}

#[test]
fn add_sets_carry_and_zero() {
    // mov eax, 0xffffffff; add eax, 1
    let (c, _) = run32(&[0xb8, 0xff, 0xff, 0xff, 0xff, 0x83, 0xc0, 0x01], |_| {});
    assert_eq!(c.regs[EAX], 0);
    assert_eq!(arith(&c), CF | ZF | PF);
}

#[test]
fn sub_overflow() {
    // mov eax, 0x80000000; sub eax, 1
    let (c, _) = run32(&[0xb8, 0, 0, 0, 0x80, 0x83, 0xe8, 0x01], |_| {});
    assert_eq!(c.regs[EAX], 0x7fff_ffff);
    assert_eq!(arith(&c), OF | PF);
}

#[test]
fn inc_keeps_carry() {
    // stc; inc eax
    let (c, _) = run32(&[0xf9, 0x40], |c| c.regs[EAX] = 0x7fff_ffff);
    assert_eq!(c.regs[EAX], 0x8000_0000);
    assert_eq!(arith(&c), CF | OF | SF | PF);
}

#[test]
fn push_pop_and_call_ret() {
    // push 0x1234; pop ebx; call +1; hlt(skipped); ret target: (call pushes) ...
    // call next; next: pop ecx  -> ECX = address of next
    let (c, _) = run32(&[0x68, 0x34, 0x12, 0, 0, 0x5b, 0xe8, 0, 0, 0, 0, 0x59], |_| {});
    assert_eq!(c.regs[EBX], 0x1234);
    assert_eq!(c.regs[ECX], 0x100b);
    assert_eq!(c.regs[ESP], 0x8000);
}

#[test]
fn rep_movsb_copies() {
    // mov esi,0x2000; mov edi,0x3000; mov ecx,5; rep movsb
    let code = [0xbe, 0, 0x20, 0, 0, 0xbf, 0, 0x30, 0, 0, 0xb9, 5, 0, 0, 0, 0xf3, 0xa4];
    let (c, bus) = {
        let mut bus = FlatBus::new(1 << 20);
        bus.mem[0x1000..0x1000 + code.len()].copy_from_slice(&code);
        bus.mem[0x1000 + code.len()] = 0xf4;
        bus.mem[0x2000..0x2005].copy_from_slice(b"hello");
        let mut cpu = Cpu::new();
        cpu.start_flat32(0x1000, 0x8000);
        assert_eq!(cpu.run(&mut bus, 1000), StopReason::Halted);
        (cpu, bus)
    };
    assert_eq!(&bus.mem[0x3000..0x3005], b"hello");
    assert_eq!(c.regs[ECX], 0);
}

#[test]
fn div_by_zero_faults_through_ivt() {
    // Real mode: IVT[0] -> 0000:2000 which holds HLT. xor bl,bl; div bl
    let mut bus = FlatBus::new(1 << 20);
    let code = [0x30, 0xdb, 0xf6, 0xf3];
    bus.mem[0x1000..0x1004].copy_from_slice(&code);
    bus.mem[0..4].copy_from_slice(&[0x00, 0x20, 0x00, 0x00]);
    bus.mem[0x2000] = 0xf4;
    let mut cpu = Cpu::new();
    cpu.start_real(0, 0x1000);
    cpu.regs[ESP] = 0x8000;
    assert_eq!(cpu.run(&mut bus, 100), StopReason::Halted);
    assert_eq!(cpu.eip, 0x2001);
    // The pushed IP is the faulting DIV (a fault, not a trap).
    assert_eq!(u16::from_le_bytes([bus.mem[0x7ffa], bus.mem[0x7ffb]]), 0x1002);
}

#[test]
fn real_mode_16bit_ops() {
    // mov ax, 0x1234; mov bx, ax; xchg bh, bl; mul bx -> dx:ax
    let (c, _) = run16(&[0xb8, 0x34, 0x12, 0x89, 0xc3, 0x86, 0xfb, 0xf7, 0xe3], |_| {});
    assert_eq!(c.regs[EBX] & 0xffff, 0x3412);
    let p = 0x1234u32 * 0x3412;
    assert_eq!(c.regs[EAX] & 0xffff, p & 0xffff);
    assert_eq!(c.regs[EDX] & 0xffff, p >> 16);
    assert_eq!(arith(&c) & (CF | OF), CF | OF);
}

#[test]
fn triple_fault_shuts_down() {
    // Protected mode with an empty IDT: any exception escalates to shutdown.
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1002].copy_from_slice(&[0x0f, 0x0b]); // ud2
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    cpu.idtr.limit = 0;
    assert_eq!(cpu.run(&mut bus, 100), StopReason::Shutdown);
}

#[test]
fn self_modifying_code_inside_a_block_takes_effect() {
    // mov byte [0x1010], 0x40 (INC EAX) overwrites a NOP later in the same basic block,
    // which was decoded before the write: the new instruction must run.
    let mut code = vec![0xc6, 0x05, 0x10, 0x10, 0, 0, 0x40];
    code.resize(0x10, 0x90);
    code.push(0x90);
    let (c, _) = run32(&code, |c| c.regs[EAX] = 0);
    assert_eq!(c.regs[EAX], 1);
}

#[test]
fn fault_in_the_middle_of_a_block_restarts_there() {
    // inc ebx; xor ecx,ecx; div ecx (#DE) — with an IVT-less PM machine the fault
    // escalates to shutdown, but EIP and the retired count must point at the DIV.
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1005].copy_from_slice(&[0x43, 0x31, 0xc9, 0xf7, 0xf1]);
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    cpu.idtr.limit = 0;
    assert_eq!(cpu.run(&mut bus, 100), StopReason::Shutdown);
    assert_eq!(cpu.eip, 0x1003);
    assert_eq!(cpu.icount, 2);
    assert_eq!(cpu.regs[EBX], 1);
}

#[test]
fn a_loop_that_rewrites_its_own_body_sees_the_new_bytes() {
    // A block that jumps back to its own start (the chained self-loop path) and patches
    // its `add eax, 1` into `add eax, 2` on the first pass:
    //   l: add eax, 1            ; 83 C0 01  at 0x1000
    //      mov byte [0x1002], 2  ; C6 05 02 10 00 00 02
    //      dec ecx               ; 49
    //      jnz l                 ; 75 F3
    let code = [0x83, 0xc0, 0x01, 0xc6, 0x05, 0x02, 0x10, 0, 0, 0x02, 0x49, 0x75, 0xf3];
    let (c, _) = run32(&code, |c| c.regs[ECX] = 3);
    assert_eq!(c.regs[EAX], 1 + 2 + 2);
}

#[test]
fn call_beyond_the_cs_limit_faults_before_pushing() {
    // SDM Vol. 2A "CALL": the #GP(0) limit test precedes the push. A flat CS limited to
    // 0x1fff, a CALL to 0x3000, and a #GP handler that records ESP and halts.
    let mut bus = FlatBus::new(1 << 20);
    // call rel32 to 0x3000 at 0x1000 (next EIP 0x1005).
    bus.mem[0x1000..0x1005].copy_from_slice(&[0xe8, 0xfb, 0x1f, 0, 0]);
    // #GP handler at 0x1800: mov ebx, esp; hlt.
    bus.mem[0x1800..0x1803].copy_from_slice(&[0x89, 0xe3, 0xf4]);
    // IDT at 0x500: vector 13 → 0008:1800, 32-bit interrupt gate.
    let gate = |off: u32| -> [u8; 8] {
        let mut g = [0u8; 8];
        g[0..2].copy_from_slice(&(off as u16).to_le_bytes());
        g[2..4].copy_from_slice(&8u16.to_le_bytes());
        g[5] = 0x8e;
        g[6..8].copy_from_slice(&((off >> 16) as u16).to_le_bytes());
        g
    };
    bus.mem[0x500 + 13 * 8..0x500 + 14 * 8].copy_from_slice(&gate(0x1800));
    // GDT at 0x600: null, flat 32-bit ring-0 code (0x08) and data (0x10).
    bus.mem[0x608..0x610].copy_from_slice(&0x00cf_9a00_0000_ffffu64.to_le_bytes());
    bus.mem[0x610..0x618].copy_from_slice(&0x00cf_9200_0000_ffffu64.to_le_bytes());
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    cpu.gdtr.base = 0x600;
    cpu.gdtr.limit = 0x17;
    cpu.idtr.base = 0x500;
    cpu.idtr.limit = 0x7ff;
    cpu.segs[v386::cpu::CS as usize].limit = 0x1fff;
    assert_eq!(cpu.run(&mut bus, 100), StopReason::Halted);
    // The handler's frame (error code, EIP, CS, EFLAGS) is all that was pushed.
    assert_eq!(cpu.regs[EBX], 0x8000 - 16);
    // The pushed EIP is the CALL's own address.
    assert_eq!(u32::from_le_bytes(bus.mem[0x8000 - 12..0x8000 - 8].try_into().unwrap()), 0x1000);
}

#[test]
fn the_budget_is_exact_inside_chained_blocks() {
    // A two-instruction loop (inc eax; jmp l) runs exactly the budget, whatever its size.
    for budget in [1u64, 2, 3, 7, 64, 1001] {
        let mut bus = FlatBus::new(1 << 20);
        bus.mem[0x1000..0x1003].copy_from_slice(&[0x40, 0xeb, 0xfd]);
        let mut cpu = Cpu::new();
        cpu.start_flat32(0x1000, 0x8000);
        assert_eq!(cpu.run(&mut bus, budget), StopReason::BudgetSpent);
        assert_eq!(cpu.icount, budget);
        assert_eq!(cpu.regs[EAX] as u64, budget.div_ceil(2));
        assert_eq!(cpu.eip, if budget % 2 == 1 { 0x1001 } else { 0x1000 });
    }
}
