//! The PC's board-level timing, seen from small hand-assembled programs run through
//! [`Machine`] without a BIOS (no external tools needed; each program's source is in the
//! comments, instruction by instruction):
//! - a timer the guest programs in the middle of a run slice interrupts on time, not up to
//!   a slice (200 000 instructions) late: the PIT through the 8259A (port I/O) and the
//!   local APIC timer (MMIO); a slice ended that way still delivers the single-step trap;
//! - FERR# (an unmasked x87 error with CR0.NE = 0) reaches IRQ13 before the next
//!   instruction, port F0h acknowledges it, and the next error raises IRQ13 again.

use v386::cpu::{StopReason, TableReg, ECX};
use v386::machine::{Machine, MachineConfig, StartMode, NS_PER_INSTRUCTION};

/// Where the programs keep their "interrupt arrived" flag: page 0, away from the code's
/// page, so the handler's write is not self-modifying code.
const FLAG: usize = 0x600;

/// Instructions per iteration of the programs' wait loop (`inc ecx; cmp byte [flag], 0;
/// je spin`).
const LOOP_LEN: u64 = 3;

/// Run a program that counts wait-loop iterations in ECX until an interrupt sets the flag,
/// then halts with interrupts off: the count.
fn loop_count_until_interrupt(m: &mut Machine) -> u64 {
    assert_eq!(m.run(5_000_000), StopReason::Halted, "eip={:#x}", m.cpu.eip);
    assert_eq!(m.bus.ram[FLAG], 1, "the interrupt handler did not run");
    u64::from(m.cpu.regs[ECX])
}

/// Whether `count` loop iterations match a deadline `ns` after the timer was programmed,
/// within 2 % (the loop's first and last iterations, the interrupt entry).
fn on_time(count: u64, ns: u64) -> bool {
    let expected = ns / NS_PER_INSTRUCTION / LOOP_LEN;
    count.abs_diff(expected) * 50 <= expected
}

/// PIT counter 0, mode 0 (interrupt on terminal count), count 119: OUT rises N + 1 clock
/// pulses after the count is written (8254 data sheet, "Mode 0"), about 100 µs, i.e. ~3350
/// loop iterations. The first slice is sized when no timer runs, so it is the longest
/// (200 000 instructions); before the PIT writes ended it, IRQ0 came ~66 000 iterations in.
#[test]
fn a_pit_deadline_programmed_mid_slice_is_on_time() {
    const N: u64 = 119;
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xfa,                               // cli
        0x31, 0xc0,                         // xor ax, ax
        0x8e, 0xd8,                         // mov ds, ax
        0x8e, 0xd0,                         // mov ss, ax
        0xbc, 0x00, 0x7c,                   // mov sp, 0x7c00
        0xc7, 0x06, 0x20, 0x00, 0x42, 0x7c, // mov word [8*4], irq0
        0xa3, 0x22, 0x00,                   // mov [8*4+2], ax
        0xb0, 0x11, 0xe6, 0x20,             // mov al, 0x11 ; out 0x20, al  (ICW1)
        0xb0, 0x08, 0xe6, 0x21,             // mov al, 0x08 ; out 0x21, al  (ICW2: vectors 08h-0Fh)
        0xb0, 0x04, 0xe6, 0x21,             // mov al, 0x04 ; out 0x21, al  (ICW3)
        0xb0, 0x01, 0xe6, 0x21,             // mov al, 0x01 ; out 0x21, al  (ICW4: 8086)
        0xb0, 0xfe, 0xe6, 0x21,             // mov al, 0xfe ; out 0x21, al  (only IRQ0)
        0x66, 0x31, 0xc9,                   // xor ecx, ecx
        0xb0, 0x30, 0xe6, 0x43,             // mov al, 0x30 ; out 0x43, al  (counter 0, LSB+MSB, mode 0)
        0xb0, N as u8, 0xe6, 0x40,          // mov al, N & 0xff ; out 0x40, al
        0xb0, 0x00, 0xe6, 0x40,             // mov al, N >> 8 ; out 0x40, al
        0xfb,                               // sti
        0x66, 0x41,                         // spin: inc ecx
        0x80, 0x3e, 0x00, 0x06, 0x00,       //   cmp byte [0x600], 0
        0x74, 0xf7,                         //   je spin
        0xfa,                               // cli
        0xf4,                               // hlt
        0xc6, 0x06, 0x00, 0x06, 0x01,       // irq0: mov byte [0x600], 1
        0xb0, 0x20, 0xe6, 0x20,             //   mov al, 0x20 ; out 0x20, al  (EOI)
        0xcf,                               //   iret
    ];
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_flat(code, 0x7c00, 0x7c00, StartMode::Real).unwrap();
    let count = loop_count_until_interrupt(&mut m);
    let ns = (N + 1) * 1_000_000_000 / v386::devices::pit::PIT_HZ;
    eprintln!("PIT: {count} loop iterations for a {ns} ns deadline");
    assert!(on_time(count, ns), "IRQ0 after {count} loop iterations, {} expected", ns / NS_PER_INSTRUCTION / LOOP_LEN);
}

/// The local APIC timer (SDM Vol. 3A §10.5.4): one-shot, divide by 1, initial count
/// 10 000 bus clocks of 10 ns = 100 µs, i.e. ~3330 loop iterations. Its registers are
/// MMIO, so this is the path where the CPU asks the bus after a memory write.
#[test]
fn a_lapic_timer_deadline_programmed_mid_slice_is_on_time() {
    const N: u32 = 10_000;
    const CODE: u32 = 0x1000;
    const HANDLER: u32 = CODE + 0x37;
    let n = N.to_le_bytes();
    #[rustfmt::skip]
    let code: &[u8] = &[
        0x31, 0xc9,                                                 // xor ecx, ecx
        0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00, // mov dword [0xfee000f0], 0x1ff (SVR: enabled)
        0xc7, 0x05, 0xe0, 0x03, 0xe0, 0xfe, 0x0b, 0x00, 0x00, 0x00, // mov dword [0xfee003e0], 0xb (divide by 1)
        0xc7, 0x05, 0x20, 0x03, 0xe0, 0xfe, 0x40, 0x00, 0x00, 0x00, // mov dword [0xfee00320], 0x40 (LVT timer: one-shot, 40h)
        0xfb,                                                       // sti
        0xc7, 0x05, 0x80, 0x03, 0xe0, 0xfe, n[0], n[1], n[2], n[3], // mov dword [0xfee00380], N (initial count)
        0x41,                                                       // spin: inc ecx
        0x80, 0x3d, 0x00, 0x06, 0x00, 0x00, 0x00,                   //   cmp byte [0x600], 0
        0x74, 0xf6,                                                 //   je spin
        0xfa,                                                       // cli
        0xf4,                                                       // hlt
        0xc6, 0x05, 0x00, 0x06, 0x00, 0x00, 0x01,                   // handler: mov byte [0x600], 1
        0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, //   mov dword [0xfee000b0], 0 (EOI)
        0xcf,                                                       //   iret
    ];
    assert_eq!(code[(HANDLER - CODE) as usize], 0xc6);
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_flat(code, CODE, CODE, StartMode::Pm32).unwrap();
    // The flat segments the CPU starts with, in a GDT at 0x500 (interrupt delivery loads
    // CS from it), and an IDT at 0x800 whose vector 40h is a 32-bit interrupt gate.
    let gdt: [u64; 3] = [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff];
    for (i, d) in gdt.iter().enumerate() {
        m.bus.ram[0x500 + 8 * i..0x508 + 8 * i].copy_from_slice(&d.to_le_bytes());
    }
    let gate = u64::from(HANDLER & 0xffff) | 0x08 << 16 | 0x8e00 << 32 | u64::from(HANDLER >> 16) << 48;
    m.bus.ram[0x800 + 0x40 * 8..0x808 + 0x40 * 8].copy_from_slice(&gate.to_le_bytes());
    m.cpu.gdtr = TableReg { base: 0x500, limit: 23 };
    m.cpu.idtr = TableReg { base: 0x800, limit: 0x40 * 8 + 7 };
    let count = loop_count_until_interrupt(&mut m);
    let ns = u64::from(N) * 10;
    eprintln!("LAPIC: {count} loop iterations for a {ns} ns deadline");
    assert!(on_time(count, ns), "the timer interrupt after {count} loop iterations, {} expected", ns / 30);
}

/// The PIT write that ends the slice is single-stepped like any other instruction: its
/// debug trap (SDM Vol. 3A §17.3.1.4) is delivered before the slice ends, not lost.
#[test]
fn a_slice_ended_by_a_timer_write_keeps_the_single_step_trap() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xfa,                               // cli
        0x31, 0xc0,                         // xor ax, ax
        0x8e, 0xd8,                         // mov ds, ax
        0x8e, 0xd0,                         // mov ss, ax
        0xbc, 0x00, 0x7c,                   // mov sp, 0x7c00
        0xc7, 0x06, 0x04, 0x00, 0x34, 0x7c, // mov word [1*4], db_handler
        0xa3, 0x06, 0x00,                   // mov [1*4+2], ax
        0x9c, 0x58,                         // pushf ; pop ax
        0x80, 0xcc, 0x01,                   // or ah, 1   (TF)
        0x50, 0x9d,                         // push ax ; popf
        0xb0, 0x34, 0xe6, 0x43,             // mov al, 0x34 ; out 0x43, al   (traps 1, 2)
        0x30, 0xc0, 0xe6, 0x40,             // xor al, al ; out 0x40, al     (3, 4)
        0xb0, 0x01, 0xe6, 0x40,             // mov al, 1 ; out 0x40, al      (5, 6: ends the slice)
        0x9c, 0x58,                         // pushf ; pop ax                (7, 8)
        0x80, 0xe4, 0xfe,                   // and ah, 0xfe                  (9)
        0x50, 0x9d,                         // push ax ; popf                (10, 11)
        0xa0, 0x00, 0x06, 0xe6, 0xe9,       // mov al, [0x600] ; out 0xe9, al
        0xfa,                               // cli
        0xf4,                               // hlt
        0xfe, 0x06, 0x00, 0x06,             // db_handler: inc byte [0x600]
        0xcf,                               //   iret
    ];
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_flat(code, 0x7c00, 0x7c00, StartMode::Real).unwrap();
    assert_eq!(m.run(1000), StopReason::Halted, "eip={:#x}", m.cpu.eip);
    assert_eq!(m.take_debugcon(), [11]);
}

/// MS-DOS compatibility mode (CR0.NE = 0, as after reset): an unmasked zero-divide
/// asserts FERR#, which reaches IRQ13 (slave 8259A, vector 75h) before the next
/// instruction; the handler writes port F0h, FNCLEXes and EOIs. A second error raises
/// IRQ13 again (the line fell with the acknowledgement, so the edge-triggered 8259A sees
/// a new edge); a masked one does not. Each round reports the handler's count on port
/// 0xE9. (tests/guests/ferr.asm checks the same against QEMU where it can.)
#[test]
fn ferr_reaches_irq13_before_the_next_instruction_and_port_f0_acknowledges_it() {
    #[rustfmt::skip]
    let code: &[u8] = &[
        0xfa,                               // cli
        0x31, 0xc0,                         // xor ax, ax
        0x8e, 0xd8,                         // mov ds, ax
        0x8e, 0xd0,                         // mov ss, ax
        0xbc, 0x00, 0x7c,                   // mov sp, 0x7c00
        0xc7, 0x06, 0xd4, 0x01, 0x64, 0x7c, // mov word [0x75*4], irq13
        0xa3, 0xd6, 0x01,                   // mov [0x75*4+2], ax
        0xb0, 0x11, 0xe6, 0x20, 0xe6, 0xa0, // mov al, 0x11 ; out 0x20, al ; out 0xa0, al   (ICW1)
        0xb0, 0x08, 0xe6, 0x21,             // mov al, 0x08 ; out 0x21, al   (master: 08h-0Fh)
        0xb0, 0x70, 0xe6, 0xa1,             // mov al, 0x70 ; out 0xa1, al   (slave: 70h-77h)
        0xb0, 0x04, 0xe6, 0x21,             // mov al, 0x04 ; out 0x21, al   (slave on IR2)
        0xb0, 0x02, 0xe6, 0xa1,             // mov al, 0x02 ; out 0xa1, al   (cascade identity 2)
        0xb0, 0x01, 0xe6, 0x21, 0xe6, 0xa1, // mov al, 0x01 ; out 0x21, al ; out 0xa1, al   (8086)
        0xb0, 0xfb, 0xe6, 0x21,             // mov al, 0xfb ; out 0x21, al   (master: only IR2)
        0xb0, 0xdf, 0xe6, 0xa1,             // mov al, 0xdf ; out 0xa1, al   (slave: only IR5 = IRQ13)
        0xdb, 0xe3,                         // fninit
        0xd9, 0x2e, 0x75, 0x7c,             // fldcw [cw]   (037Bh: zero-divide unmasked)
        0xfb,                               // sti
        0xd9, 0xe8, 0xd9, 0xee,             // fld1 ; fldz
        0xde, 0xf9,                         // fdivp st1, st0   (1/0: ES, FERR#)
        0xa0, 0x00, 0x06, 0xe6, 0xe9,       // mov al, [0x600] ; out 0xe9, al   (1)
        0xd9, 0xe8, 0xd9, 0xee,             // fld1 ; fldz
        0xde, 0xf9,                         // fdivp st1, st0
        0xa0, 0x00, 0x06, 0xe6, 0xe9,       // mov al, [0x600] ; out 0xe9, al   (2)
        0xdb, 0xe3,                         // fninit   (everything masked)
        0xd9, 0xe8, 0xd9, 0xee,             // fld1 ; fldz
        0xde, 0xf9,                         // fdivp st1, st0
        0x9b,                               // fwait
        0xa0, 0x00, 0x06, 0xe6, 0xe9,       // mov al, [0x600] ; out 0xe9, al   (still 2)
        0xfa,                               // cli
        0xf4,                               // hlt
        0x50,                               // irq13: push ax
        0xe6, 0xf0,                         //   out 0xf0, al   (clear the busy latch: IGNNE#)
        0xdb, 0xe2,                         //   fnclex
        0xfe, 0x06, 0x00, 0x06,             //   inc byte [0x600]
        0xb0, 0x20, 0xe6, 0xa0, 0xe6, 0x20, //   mov al, 0x20 ; out 0xa0, al ; out 0x20, al   (EOI)
        0x58,                               //   pop ax
        0xcf,                               //   iret
        0x7b, 0x03,                         // cw: dw 0x037b
    ];
    let mut m = Machine::new(&MachineConfig::default()).unwrap();
    m.load_flat(code, 0x7c00, 0x7c00, StartMode::Real).unwrap();
    assert_eq!(m.run(10_000), StopReason::Halted, "eip={:#x}", m.cpu.eip);
    assert_eq!(m.take_debugcon(), [1, 2, 2]);
    assert!(!m.cpu.fpu_irq13_pending());
}
