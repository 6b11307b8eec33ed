//! V386 mode on flat memory: a Rust host ([`Cpu::vm_run`]) runs small guests and checks
//! each exit's reason and qualification, the SLT and the guest's own copy of the
//! privileged state.

use super::slt::bits;
use super::vcb::{exec, intercept};
use super::*;
use crate::bus::FlatBus;
use crate::cpu::{cr0, Seg, TableReg};

/// Host memory: 8 MiB. The guest's 1 MiB of RAM lives at host-physical 1 MiB; the SLT
/// (root 0x10000, one level-2 table at 0x11000, one level-1 table at 0x12000) maps
/// GPA 0–1 MiB onto it; everything above is unmapped. The I/O bitmap at 0x20000 has
/// every port set except 0x60.
const GUEST_RAM: usize = 0x10_0000;
const SLT_ROOT: u64 = 0x1_0000;
const IO_BITMAP: u64 = 0x2_0000;

fn put64(bus: &mut FlatBus, addr: u64, v: u64) {
    bus.mem[addr as usize..addr as usize + 8].copy_from_slice(&v.to_le_bytes());
}

fn host() -> FlatBus {
    let mut b = FlatBus::new(8 << 20);
    put64(&mut b, SLT_ROOT, 0x11000 | bits::RWX);
    put64(&mut b, 0x11000, 0x12000 | bits::RWX);
    for p in 0..256u64 {
        put64(&mut b, 0x12000 + 8 * p, (GUEST_RAM as u64 + (p << 12)) | bits::RWX);
    }
    for i in 0..0x2000 {
        b.mem[IO_BITMAP as usize + i] = 0xff;
    }
    b.mem[IO_BITMAP as usize + 0x60 / 8] &= !1;
    b
}

/// A flat 32-bit ring-0 guest at GPA 0x1000 running `code`, stack at 0x8000.
fn vcb(code: &[u8], bus: &mut FlatBus) -> Vcb {
    bus.mem[GUEST_RAM + 0x1000..GUEST_RAM + 0x1000 + code.len()].copy_from_slice(code);
    let mut v = Vcb::default();
    v.controls.slt_root = SLT_ROOT;
    v.controls.io_bitmap = IO_BITMAP;
    v.controls.intercepts = intercept::HLT;
    v.guest.cr0 = cr0::PE | cr0::ET;
    v.guest.segs = [Seg::flat32(0x10, false); 6];
    v.guest.segs[CS as usize] = Seg::flat32(0x08, true);
    v.guest.eip = 0x1000;
    v.guest.regs[crate::cpu::ESP] = 0x8000;
    v
}

fn run(cpu: &mut Cpu, bus: &mut FlatBus, v: &mut Vcb) -> ExitReason {
    match cpu.vm_run(bus, v, 1_000_000) {
        VmRun::Exit(r) => r,
        VmRun::ControlError(n) => panic!("control error {n}"),
    }
}

#[test]
fn a_guest_exits_on_io_cpuid_vcall_npf_hlt_and_the_timer() {
    let code = [
        0xb0, 0x42, 0xe6, 0x80, // mov al, 0x42 ; out 0x80, al
        0xe4, 0x60, // in al, 0x60 (not in the bitmap: passthrough)
        0x0f, 0xa2, // cpuid
        0x0f, 0x0c, // vcall
        0xa1, 0x00, 0x00, 0x20, 0x00, // mov eax, [0x200000] (unmapped GPA)
        0xf4, // hlt
        0xeb, 0xfe, // jmp $
    ];
    let mut bus = host();
    let mut v = vcb(&code, &mut bus);
    let mut cpu = Cpu::new();
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Io);
    // OUT imm8, byte, port 0x80, value 0x42 (Table 8-6).
    assert_eq!(v.exit.qualification, 0x42 << 32 | 0x80 << 16 | 1 << 6);
    assert_eq!((v.exit.instr_len, &v.exit.instr_bytes[..2]), (2, &[0xe6, 0x80][..]));
    assert_eq!((v.guest.eip, v.exit.guest_retired), (0x1002, 1));
    assert!(!cpu.in_v386());
    v.guest.eip += v.exit.instr_len;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Cpuid);
    assert_eq!(v.guest.eip, 0x1006, "IN from port 0x60 went to the host bus");
    assert_eq!(v.guest.regs[EAX] & 0xff, 0xff);
    v.guest.eip += 2;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Vcall);
    assert_eq!(v.exit.qualification, 0, "CPL 0, not V86");
    v.guest.eip += 2;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::NestedPageFault);
    assert_eq!(v.exit.guest_physical, 0x20_0000);
    assert_eq!(v.exit.guest_linear, 0x20_0000);
    // A read of a not-present entry at level 2 with a valid, final linear address.
    assert_eq!(v.exit.qualification, npf::READ | npf::GLA_VALID | npf::FINAL | 2 << npf::LEVEL_SHIFT);
    assert_eq!(v.exit.instr_len, 5);
    assert_eq!(v.guest.eip, 0x100a);
    v.guest.eip += 5;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Hlt);
    v.guest.eip += 1;
    v.controls.exec |= exec::PTIMER;
    v.controls.preempt_timer = 1000;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::PreemptionTimer);
    assert_eq!((v.exit.guest_retired, v.controls.preempt_timer), (1000, 0));
}

#[test]
fn guest_memory_goes_through_the_slt_and_privileged_state_is_the_guests() {
    // sgdt [0x3000] ; smsw eax ; str bx ; pushfd ; pop ecx ; mov [0x4000], 0x1234 ; cpuid
    let code = [
        0x0f, 0x01, 0x05, 0x00, 0x30, 0x00, 0x00, 0x0f, 0x01, 0xe0, 0x0f, 0x00, 0xcb, 0x9c, 0x59, 0xc7, 0x05, 0x00,
        0x40, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00, 0x0f, 0xa2,
    ];
    let mut bus = host();
    let mut v = vcb(&code, &mut bus);
    v.guest.gdtr = TableReg { base: 0x5000, limit: 0x37 };
    v.guest.tr = Seg { sel: 0x28, base: 0x6000, limit: 0x67, access: 0x8b, flags: 0, valid: true };
    v.guest.eflags = 0x202;
    let mut cpu = Cpu::new();
    // The host's own values differ from the guest's.
    cpu.gdtr = TableReg { base: 0xdead_0000, limit: 0xffff };
    cpu.cr0 = cr0::PE | cr0::ET | cr0::PG;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Cpuid);
    let at = |a: usize| u32::from_le_bytes(bus.mem[GUEST_RAM + a..GUEST_RAM + a + 4].try_into().unwrap());
    assert_eq!(
        (at(0x3000) & 0xffff, u32::from_le_bytes(bus.mem[GUEST_RAM + 0x3002..GUEST_RAM + 0x3006].try_into().unwrap())),
        (0x37, 0x5000)
    );
    assert_eq!(v.guest.regs[EAX] & 0xffff, cr0::PE | cr0::ET);
    assert_eq!(v.guest.regs[crate::cpu::EBX] & 0xffff, 0x28);
    assert_eq!(v.guest.regs[ECX], 0x202, "PUSHF shows the guest's flags, without VX");
    assert_eq!(at(0x4000), 0x1234, "the write landed at host-physical 1 MiB + 0x4000");
    assert_eq!(bus.mem[0x4000], 0, "and not at host-physical 0x4000");
    // The host's state came back.
    assert_eq!((cpu.gdtr.base, cpu.cr0 & cr0::PG), (0xdead_0000, cr0::PG));
}

#[test]
fn an_invalid_guest_state_is_an_entry_failure_with_its_check_number() {
    let mut bus = host();
    let mut v = vcb(&[0xf4], &mut bus);
    v.guest.cpl = 3;
    let mut cpu = Cpu::new();
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::InvalidGuestState);
    assert_eq!(v.exit.reason, ENTRY_FAILURE | 33);
    assert_eq!(v.exit.entry_failure_check, 8);
    let mut w = vcb(&[0xf4], &mut bus);
    w.controls.revision = 7;
    assert_eq!(cpu.vm_run(&mut bus, &mut w, 100), VmRun::ControlError(1));
}

#[test]
fn intercepted_exceptions_exit_and_others_reach_the_guest_idt() {
    // ud2 (0F 0B)
    let mut bus = host();
    let mut v = vcb(&[0x0f, 0x0b], &mut bus);
    v.controls.exception_bitmap = 1 << 6;
    let mut cpu = Cpu::new();
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::ExceptionNmi);
    assert_eq!(v.exit.intr_info, event::VALID | event::HARDWARE_EXCEPTION << 8 | 6);
    // Without the intercept, the guest's IDT (limit 0) cannot deliver it: #UD → #GP →
    // #DF → triple fault, which always exits.
    v.controls.exception_bitmap = 0;
    v.guest.idtr = TableReg { base: 0, limit: 0 };
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::TripleFault);
}

#[test]
fn event_injection_delivers_through_the_guest_idt() {
    // Handler at 0x2000: out 0x90, al. Gate 0x20 in an IDT at 0x7000.
    let mut bus = host();
    let mut v = vcb(&[0xeb, 0xfe], &mut bus);
    bus.mem[GUEST_RAM + 0x2000..GUEST_RAM + 0x2002].copy_from_slice(&[0xe6, 0x90]);
    let gate = 0x2000u64 | 0x08 << 16 | (0x8e00u64 << 32);
    put64(&mut bus, (GUEST_RAM + 0x7000 + 0x20 * 8) as u64, gate);
    v.guest.idtr = TableReg { base: 0x7000, limit: 0x7ff };
    // A GDT with flat code at 0x08 and flat data at 0x10.
    put64(&mut bus, (GUEST_RAM + 0x5008) as u64, 0x00cf_9a00_0000_ffff);
    put64(&mut bus, (GUEST_RAM + 0x5010) as u64, 0x00cf_9200_0000_ffff);
    v.guest.gdtr = TableReg { base: 0x5000, limit: 0x17 };
    v.guest.eflags = 0x202;
    v.controls.event_inject = event::VALID | 0x20;
    let mut cpu = Cpu::new();
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Io);
    assert_eq!(v.guest.eip, 0x2000);
    assert_eq!(v.controls.event_inject & event::VALID, 0);
    assert_eq!(v.guest.eflags & crate::cpu::flags::IF, 0, "an interrupt gate cleared IF");
    assert_eq!(v.guest.regs[crate::cpu::ESP], 0x8000 - 12);
}

#[test]
fn vcall_and_vmenter_outside_v386_mode() {
    let mut bus = FlatBus::new(1 << 20);
    bus.mem[0x1000..0x1002].copy_from_slice(&[0x0f, 0x0c]);
    let mut c = Cpu::new();
    c.start_flat32(0x1000, 0x8000);
    assert_eq!(c.step(&mut bus), Err(Fault::Exc(Exception::UD)));
    // VMENTER at CPL 3 is #UD; with EAX not page-aligned, #GP(0).
    bus.mem[0x1000..0x1002].copy_from_slice(&[0x0f, 0x0a]);
    c.cpl = 3;
    assert_eq!(c.step(&mut bus), Err(Fault::Exc(Exception::UD)));
    c.cpl = 0;
    c.regs[EAX] = 0x2001;
    assert_eq!(c.step(&mut bus), Err(Fault::Exc(Exception::GP(0))));
    // A VCB with a bad revision: CF = 1, EAX = 1, nothing entered.
    c.regs[EAX] = 0x2000;
    bus.mem[0x2000] = 9;
    assert_eq!(c.step(&mut bus), Ok(()));
    assert_eq!((c.regs[EAX], c.flags.cf(), c.in_v386()), (1, true, false));
}

#[test]
fn leaf_8386_0001_advertises_v386() {
    let c = Cpu::new();
    let [rev, vtag, widths, edx] = c.cpuid(0x8386_0001);
    assert_eq!((rev, vtag, widths, edx), (1, 4095, 36 | 36 << 8, 0x7f));
}

/// String I/O exits give the first element's guest-linear *and* guest-physical address
/// (docs/v386.md §4.4, Table 8-6), also when the guest's own paging maps one onto the
/// other; and the probe that finds the GPA sets no accessed bit (the exit comes before the
/// first iteration, §5.4).
#[test]
fn string_io_exits_report_the_first_elements_guest_physical_address() {
    // mov esi, 0x400010 ; mov ecx, 3 ; mov dx, 0x500 ; rep outsb
    let code = [0xbe, 0x10, 0x00, 0x40, 0x00, 0xb9, 0x03, 0x00, 0x00, 0x00, 0x66, 0xba, 0x00, 0x05, 0xf3, 0x6e];
    let mut bus = host();
    let mut v = vcb(&code, &mut bus);
    let mut cpu = Cpu::new();
    // Paging off: the GPA is the linear address.
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Io);
    assert_eq!(v.exit.qualification, 0x500 << 16 | 3 << 8 | 1 << 7 | 1 << 5 | 1 << 4);
    assert_eq!((v.exit.guest_linear, v.exit.guest_physical), (0x40_0010, 0x40_0010));
    // Guest paging on: directory at GPA 0x9000; linear 0-4 MiB identity through the
    // table at 0xa000, linear 0x400000 -> GPA 0x5000 through the table at 0xb000.
    let mut v = vcb(&code, &mut bus);
    let put32 = |bus: &mut FlatBus, gpa: usize, val: u32| {
        bus.mem[GUEST_RAM + gpa..GUEST_RAM + gpa + 4].copy_from_slice(&val.to_le_bytes())
    };
    put32(&mut bus, 0x9000, 0xa003);
    put32(&mut bus, 0x9004, 0xb003);
    for p in 0..16u32 {
        put32(&mut bus, 0xa000 + 4 * p as usize, (p << 12) | 3);
    }
    put32(&mut bus, 0xb000, 0x5003);
    v.guest.cr0 |= cr0::PG;
    v.guest.cr3 = 0x9000;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Io);
    assert_eq!((v.exit.guest_linear, v.exit.guest_physical), (0x40_0010, 0x5010));
    assert_eq!(bus.mem[GUEST_RAM + 0xb000] & 0x20, 0, "the probe set the PTE's accessed bit");
    // An unmapped first element: GPA 0.
    put32(&mut bus, 0xb000, 0);
    v.controls.tlb_control = 1;
    v.guest.eip = 0x1000;
    assert_eq!(run(&mut cpu, &mut bus, &mut v), ExitReason::Io);
    assert_eq!((v.exit.guest_linear, v.exit.guest_physical), (0x40_0010, 0));
}
