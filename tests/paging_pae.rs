//! PAE paging with execute-disable (SDM Vol. 3A §4.4, §4.6, §4.7) on flat RAM: hand-built
//! page tables, hand-assembled code, faults caught by a #PF handler that halts with the
//! error code in EAX, CR2 in EBX and the vector in ECX.

use v386::bus::FlatBus;
use v386::cpu::{cr4, Cpu, StopReason, EAX, EBX, ECX, EDX};

const PDPT: usize = 0x10000;
const PD0: usize = 0x11000; // linear 0 – 1 GiB
const PT0: usize = 0x12000; // linear 0 – 2 MiB, 4 KiB pages
const PD1: usize = 0x13000; // linear 1 – 2 GiB
const PD_ALT: usize = 0x14000; // another PD for PDPTE 1
const P: u64 = 1;
const RW: u64 = 2;
const A: u64 = 1 << 5;
const D: u64 = 1 << 6;
const PS: u64 = 1 << 7;
const XD: u64 = 1 << 63;

/// Paging enable (CR4.PAE and CR3 are set by the harness): mov eax,cr0; or eax,PG; mov cr0,eax.
const PG_ON: [u8; 11] = [0x0f, 0x20, 0xc0, 0x0d, 0, 0, 0, 0x80, 0x0f, 0x22, 0xc0];
/// EFER.NXE on: mov ecx,0xc0000080; rdmsr; or eax,0x800; wrmsr; xor ecx,ecx.
const NXE_ON: [u8; 16] = [0xb9, 0x80, 0, 0, 0xc0, 0x0f, 0x32, 0x0d, 0, 8, 0, 0, 0x0f, 0x30, 0x31, 0xc9];

fn put64(bus: &mut FlatBus, at: usize, v: u64) {
    bus.mem[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get64(bus: &FlatBus, at: usize) -> u64 {
    u64::from_le_bytes(bus.mem[at..at + 8].try_into().unwrap())
}
fn get32(bus: &FlatBus, at: usize) -> u32 {
    u32::from_le_bytes(bus.mem[at..at + 4].try_into().unwrap())
}

/// mov eax, [addr]
fn load(addr: u32) -> Vec<u8> {
    let mut v = vec![0xa1];
    v.extend_from_slice(&addr.to_le_bytes());
    v
}
/// mov eax, imm; mov [addr], eax
fn store(addr: u32, imm: u32) -> Vec<u8> {
    let mut v = vec![0xb8];
    v.extend_from_slice(&imm.to_le_bytes());
    v.push(0xa3);
    v.extend_from_slice(&addr.to_le_bytes());
    v
}
/// mov eax, imm; mov cr3, eax
fn set_cr3(v: u32) -> Vec<u8> {
    let mut c = vec![0xb8];
    c.extend_from_slice(&v.to_le_bytes());
    c.extend_from_slice(&[0x0f, 0x22, 0xd8]);
    c
}

/// 4 MiB of RAM: the first 2 MiB identity-mapped with supervisor read/write 4 KiB pages,
/// linear 0x4000_0000 a 2 MiB page at physical 0x20_0000. IDT at 0x500 (#GP, #PF), GDT at
/// 0x600, code at 0x1000, handlers at 0x1800, stack below 0x8000.
fn machine() -> FlatBus {
    let mut bus = FlatBus::new(4 << 20);
    put64(&mut bus, PDPT, PD0 as u64 | P);
    put64(&mut bus, PDPT + 8, PD1 as u64 | P);
    put64(&mut bus, PD0, PT0 as u64 | P | RW);
    for i in 0..512u64 {
        put64(&mut bus, PT0 + 8 * i as usize, (i << 12) | P | RW);
    }
    put64(&mut bus, PD1, 0x20_0000 | PS | P | RW);
    let gate = |off: u32| {
        let mut g = [0u8; 8];
        g[0..2].copy_from_slice(&(off as u16).to_le_bytes());
        g[2..4].copy_from_slice(&8u16.to_le_bytes());
        g[5] = 0x8e;
        g[6..8].copy_from_slice(&((off >> 16) as u16).to_le_bytes());
        g
    };
    bus.mem[0x500 + 13 * 8..0x500 + 14 * 8].copy_from_slice(&gate(0x1800));
    bus.mem[0x500 + 14 * 8..0x500 + 15 * 8].copy_from_slice(&gate(0x1810));
    // #GP: pop eax; mov ecx, 13; hlt
    bus.mem[0x1800..0x1807].copy_from_slice(&[0x58, 0xb9, 13, 0, 0, 0, 0xf4]);
    // #PF: pop eax; mov ebx, cr2; mov ecx, 14; hlt
    bus.mem[0x1810..0x181a].copy_from_slice(&[0x58, 0x0f, 0x20, 0xd3, 0xb9, 14, 0, 0, 0, 0xf4]);
    bus.mem[0x608..0x610].copy_from_slice(&0x00cf_9a00_0000_ffffu64.to_le_bytes());
    bus.mem[0x610..0x618].copy_from_slice(&0x00cf_9200_0000_ffffu64.to_le_bytes());
    bus
}

/// Run `code` (after paging is turned on, and NXE if asked) at 0x1000 to a HLT.
fn run(bus: &mut FlatBus, nxe: bool, code: &[u8]) -> Cpu {
    let mut c = PG_ON.to_vec();
    if nxe {
        c.extend_from_slice(&NXE_ON);
    }
    c.extend_from_slice(code);
    c.push(0xf4);
    assert!(c.len() < 0x800);
    bus.mem[0x1000..0x1000 + c.len()].copy_from_slice(&c);
    let mut cpu = Cpu::new();
    cpu.start_flat32(0x1000, 0x8000);
    cpu.gdtr.base = 0x600;
    cpu.gdtr.limit = 0x17;
    cpu.idtr.base = 0x500;
    cpu.idtr.limit = 0x7ff;
    cpu.cr4 = cr4::PAE;
    cpu.cr3 = PDPT as u32;
    cpu.regs[ECX] = 0;
    assert_eq!(cpu.run(bus, 10_000), StopReason::Halted, "eip={:#x}", cpu.eip);
    cpu
}

#[test]
fn cpuid_reports_pae_and_nx() {
    let cpu = Cpu::new();
    assert_ne!(cpu.cpuid(1)[3] & (1 << 6), 0);
    assert_eq!(cpu.cpuid(0x8000_0000)[0], 0x8000_0001);
    assert_ne!(cpu.cpuid(0x8000_0001)[3] & (1 << 20), 0);
}

#[test]
fn four_kib_and_two_mib_pages_map_and_set_accessed_dirty() {
    let mut bus = machine();
    // Linear 0x1f_f000 (4 KiB) → physical 0x30_0000.
    put64(&mut bus, PT0 + 0x1ff * 8, 0x30_0000 | P | RW);
    bus.mem[0x20_0010..0x20_0014].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    let mut code = load(0x4000_0010); // 2 MiB page read
    code.extend_from_slice(&[0x89, 0xc2]); // mov edx, eax
    code.extend(store(0x4000_0020, 0xcafe_f00d)); // 2 MiB page write
    code.extend(store(0x1f_f008, 0xdead_beef)); // 4 KiB page write
    let cpu = run(&mut bus, false, &code);
    assert_eq!(cpu.regs[ECX], 0, "unexpected fault, code {:#x}", cpu.regs[EAX]);
    assert_eq!(cpu.regs[EDX], 0x1234_5678);
    assert_eq!(get32(&bus, 0x20_0020), 0xcafe_f00d);
    assert_eq!(get32(&bus, 0x30_0008), 0xdead_beef);
    // Accessed and dirty: the 2 MiB PDE has both, the written PTE both, the code PTE
    // (read only) just A, and the PDE above the page table A but never D.
    assert_eq!(get64(&bus, PD1) & (A | D), A | D);
    assert_eq!(get64(&bus, PT0 + 0x1ff * 8) & (A | D), A | D);
    assert_eq!(get64(&bus, PT0 + 8) & (A | D), A);
    assert_eq!(get64(&bus, PD0) & (A | D), A);
    // The high dwords are untouched.
    assert_eq!(get64(&bus, PD1) >> 32, 0);
}

#[test]
fn not_present_faults_with_cr2_and_error_code() {
    let mut bus = machine();
    // Linear 0x20_0000 has no PDE (PD0 entry 1).
    let cpu = run(&mut bus, false, &load(0x20_0044));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0, 0x20_0044));
    // A write to a not-present PTE: W set, P clear.
    put64(&mut bus, PT0 + 0x100 * 8, 0);
    let cpu = run(&mut bus, false, &store(0x10_0004, 1));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 2, 0x10_0004));
    // PDPTE 2 (linear 2 – 3 GiB) is not present.
    let cpu = run(&mut bus, false, &load(0x8000_0000));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0, 0x8000_0000));
}

#[test]
fn execute_disable_faults_fetches_with_id_bit() {
    let mut bus = machine();
    // Page 0x3000 holds "mov eax, 7; hlt" but is XD.
    bus.mem[0x3000..0x3006].copy_from_slice(&[0xb8, 7, 0, 0, 0, 0xf4]);
    put64(&mut bus, PT0 + 3 * 8, 0x3000 | P | RW | XD);
    // Reading it is fine; jumping there (mov eax, 0x3000; jmp eax) faults as a fetch.
    let mut code = load(0x3000);
    code.extend_from_slice(&[0x89, 0xc2, 0xb8, 0, 0x30, 0, 0, 0xff, 0xe0]);
    let cpu = run(&mut bus, true, &code);
    assert_eq!(cpu.regs[EDX], 0x07b8);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0x11, 0x3000));
    // XD in a 2 MiB PDE does the same; a not-present fetch with NXE on also reports I/D.
    bus.mem[0x20_0000] = 0xf4;
    put64(&mut bus, PD1, 0x20_0000 | PS | P | RW | XD);
    let cpu = run(&mut bus, true, &[0xb8, 0, 0, 0, 0x40, 0xff, 0xe0]);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0x11, 0x4000_0000));
    let cpu = run(&mut bus, true, &[0xb8, 0, 0, 0x20, 0, 0xff, 0xe0]);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0x10, 0x20_0000));
    // Without XD the same 2 MiB page runs.
    put64(&mut bus, PD1, 0x20_0000 | PS | P | RW);
    bus.mem[0x20_0000..0x20_0006].copy_from_slice(&[0xb8, 9, 0, 0, 0, 0xf4]);
    let cpu = run(&mut bus, true, &[0xb8, 0, 0, 0, 0x40, 0xff, 0xe0]);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (0, 9));
}

#[test]
fn execute_disable_applies_to_a_cached_translation() {
    // A TLB entry for an XD page filled by a data read still faults a fetch: the entry's
    // fetch right is clear.
    let mut bus = machine();
    bus.mem[0x3000..0x3006].copy_from_slice(&[0xb8, 7, 0, 0, 0, 0xf4]);
    put64(&mut bus, PT0 + 3 * 8, 0x3000 | P | RW | XD);
    let mut code = load(0x3000); // TLB entry for 0x3000 filled by a read
    code.extend_from_slice(&[0xb8, 0, 0x30, 0, 0, 0xff, 0xe0]);
    let cpu = run(&mut bus, true, &code);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (14, 0x11));
}

#[test]
fn reserved_bits_fault_with_rsvd() {
    let mut bus = machine();
    // XD with NXE clear is a reserved bit: P | RSVD.
    put64(&mut bus, PT0 + 3 * 8, 0x3000 | P | RW | XD);
    let cpu = run(&mut bus, false, &load(0x3000));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0x9, 0x3000));
    // A PTE bit above MAXPHYADDR (36): reserved whatever NXE says; a write reports W too.
    put64(&mut bus, PT0 + 3 * 8, 0x3000 | P | RW | (1 << 40));
    let cpu = run(&mut bus, true, &store(0x3000, 5));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EBX]), (14, 0xb, 0x3000));
    // A 2 MiB PDE with bit 13 set (Table 4-9).
    put64(&mut bus, PD1, 0x20_0000 | PS | P | RW | (1 << 13));
    let cpu = run(&mut bus, false, &load(0x4000_0000));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (14, 0x9));
}

#[test]
fn user_and_write_protection_combine_across_levels() {
    let mut bus = machine();
    // Read-only PTE, CR0.WP clear: supervisor writes are allowed (SDM Vol. 3A §4.6).
    put64(&mut bus, PT0 + 3 * 8, 0x3000 | P);
    let cpu = run(&mut bus, false, &store(0x3000, 5));
    assert_eq!(cpu.regs[ECX], 0);
    assert_eq!(get32(&bus, 0x3000), 5);
    // With CR0.WP set (or eax, 0x10000 in the CR0 write) the same write faults: P | W.
    let mut code = vec![0x0f, 0x20, 0xc0, 0x0d, 0, 0, 1, 0, 0x0f, 0x22, 0xc0];
    code.extend(store(0x3000, 6));
    let cpu = run(&mut bus, false, &code);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (14, 3));
    assert_eq!(get32(&bus, 0x3000), 5);
}

#[test]
fn pdptes_are_cached_until_cr3_is_loaded() {
    let mut bus = machine();
    // PD_ALT maps linear 0x4000_0000 to physical 0 (2 MiB).
    put64(&mut bus, PD_ALT, PS | P | RW);
    bus.mem[0x20_0000..0x20_0004].copy_from_slice(&0x1111_1111u32.to_le_bytes());
    bus.mem[0x3000..0x3004].copy_from_slice(&0x2222_2222u32.to_le_bytes());
    // Repoint PDPTE 1 in memory (mov [PDPT+8], PD_ALT|P), read through the old one (the
    // PDPTE registers still hold it), reload CR3, read through the new one.
    let mut code = store(PDPT as u32 + 8, PD_ALT as u32 | 1);
    code.extend(load(0x4000_0000));
    code.extend_from_slice(&[0x89, 0xc2]); // mov edx, eax
    code.extend(set_cr3(PDPT as u32));
    code.extend(load(0x4000_3000));
    let cpu = run(&mut bus, false, &code);
    assert_eq!(cpu.regs[ECX], 0, "fault {:#x}", cpu.regs[EAX]);
    assert_eq!(cpu.regs[EDX], 0x1111_1111);
    assert_eq!(cpu.regs[EAX], 0x2222_2222);
    // A second table at a 32-byte-aligned CR3 that is not page-aligned.
    bus.mem.copy_within(PDPT..PDPT + 32, PDPT + 0x20);
    let mut code = set_cr3(PDPT as u32 + 0x20);
    code.extend(load(0x4000_3000));
    let cpu = run(&mut bus, false, &code);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (0, 0x2222_2222));
    assert_eq!(cpu.cr3, PDPT as u32 + 0x20);
}

#[test]
fn reserved_pdpte_bits_are_gp_on_mov_cr3_and_cr0() {
    let mut bus = machine();
    // A second PDPT whose entry 0 sets reserved bit 1: MOV CR3 is #GP(0), CR3 unchanged.
    put64(&mut bus, 0x15000, PD0 as u64 | P | 2);
    let cpu = run(&mut bus, false, &set_cr3(0x15000));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (13, 0));
    assert_eq!(cpu.cr3, PDPT as u32);
    // XD is reserved in a PDPTE even with NXE on; a not-present entry may hold anything.
    put64(&mut bus, 0x15000, PD0 as u64 | P | XD);
    put64(&mut bus, 0x15008, 0xffff_fffe);
    let cpu = run(&mut bus, true, &set_cr3(0x15000));
    assert_eq!(cpu.regs[ECX], 13);
    put64(&mut bus, 0x15000, PD0 as u64 | P);
    let cpu = run(&mut bus, true, &set_cr3(0x15000));
    assert_eq!(cpu.regs[ECX], 0);
    // Turning paging on with a bad PDPTE: #GP(0) from MOV CR0, paging stays off.
    put64(&mut bus, PDPT, PD0 as u64 | P | (1 << 5));
    let cpu = run(&mut bus, false, &[]);
    assert_eq!(cpu.regs[ECX], 13);
    assert_eq!(cpu.cr0 & 0x8000_0000, 0);
}

#[test]
fn efer_has_only_nxe() {
    let mut bus = machine();
    // mov ecx, EFER; mov eax, 0x100 (LME); xor edx, edx; wrmsr → #GP(0)
    let code = [0xb9, 0x80, 0, 0, 0xc0, 0xb8, 0, 1, 0, 0, 0x31, 0xd2, 0x0f, 0x30];
    let cpu = run(&mut bus, false, &code);
    assert_eq!(cpu.regs[ECX], 13);
    // NXE reads back (mov ecx, EFER; rdmsr).
    let cpu = run(&mut bus, true, &[0xb9, 0x80, 0, 0, 0xc0, 0x0f, 0x32]);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX], cpu.regs[EDX]), (0xc000_0080, 0x800, 0));
}

#[test]
fn frames_above_4_gib_are_unbacked() {
    let mut bus = machine();
    // Linear 0x3000 → physical 0x1_0000_3000: reads all ones, writes vanish, no panic.
    put64(&mut bus, PT0 + 3 * 8, 0x1_0000_3000 | P | RW);
    let mut code = store(0x3000, 0x55);
    code.extend(load(0x3000));
    let cpu = run(&mut bus, false, &code);
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (0, u32::MAX));
    assert_eq!(get32(&bus, 0x3000), 0);
    // A page table above 4 GiB reads as all ones: reserved bits set.
    put64(&mut bus, PD0 + 8, 0x2_0000_0000 | P | RW);
    let cpu = run(&mut bus, false, &load(0x20_0000));
    assert_eq!((cpu.regs[ECX], cpu.regs[EAX]), (14, 0x9));
}
