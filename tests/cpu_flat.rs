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
