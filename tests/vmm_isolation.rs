//! Isolation between VMs under the VMM (docs/v386.md §5.6, §6, §12.3): "a guest cannot
//! read or write memory outside its allocation".
//!
//! Two Multiboot kernels run side by side under `v386::vmm::Vmm`:
//! - `tests/guests/vmm_victim.asm` in a 16 MiB VM fills 8 MiB of its RAM with a pattern
//!   derived from each word's address and re-verifies it forever, printing a line per pass
//!   (and `CORRUPT` at the first word that differs);
//! - `tests/guests/vmm_attack.asm` in an 8 MiB VM with a floppy drive attacks: wild
//!   guest-physical addresses, the device window's capacity, page-table tricks, ISA DMA
//!   through the floppy controller (beyond its RAM, from beyond its RAM, and over code it
//!   has run, which must not run stale afterwards), fw_cfg DMA, chipset and APIC
//!   relocation, the VMM's own structures (their host-physical addresses are patched into
//!   the kernel's RAM before it runs), VMENTER with a forged control block, and last PAE
//!   paging with a frame above 4 GiB, which the VMM answers by stopping the VM (a
//!   contained error).
//!
//! The victim runs alone until its pattern is verified once; then the attacker joins. The
//! test checks that the attacker's steps all ran and saw only open bus or its own
//! devices, that it ended in a contained stop, that the victim's pattern survived and the
//! victim kept running after the attacker stopped, that every SLT mapping of every VM
//! points at that VM's own RAM, ROM copies or device window (never at a second-level
//! table or an I/O bitmap), that the VMM's pages and the victim's tables hash the same as
//! before, and that the attacker's accesses went through nested-page-fault exits.
//!
//! nasm is an external tool: without it the test is skipped (tests/common/mod.rs).

mod common;
use common::*;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::time::Instant;

use v386::cpu::v386::slt::bits;
use v386::cpu::v386::ExitReason;
use v386::machine::MachineSpec;
use v386::vmm::allocator::{HostMemory, Owner, PAGE, WINDOW_PAGES};
use v386::vmm::{RunOutcome, Vm, VmState, VmStop, Vmm, VmmConfig};

const VICTIM_MB: u32 = 16;
const ATTACKER_MB: u32 = 8;
/// The victim's pattern region and formula (tests/guests/vmm_victim.asm).
const PATTERN_START: u32 = 0x40_0000;
const PATTERN_END: u32 = 0xc0_0000;
const PATTERN_MUL: u32 = 0x9e37_79b1;
const PATTERN_XOR: u32 = 0x5eed_1e55;
/// Where the attacker is loaded (its `org`) and the magic before its target table.
const ATTACKER_BASE: u32 = 0x11_0000;
const TARGETS_MAGIC: &[u8] = b"V386TGT!";
/// Machine instructions per `Vmm::run` call, and the most the test spends.
const CHUNK: u64 = 10_000_000;
const LIMIT: u64 = 1_500_000_000;
/// Verification passes the victim must complete after the attacker has stopped.
const PASSES_AFTER: u32 = 5;

fn pattern(addr: u32) -> u32 {
    addr.wrapping_mul(PATTERN_MUL) ^ PATTERN_XOR
}

/// The victim address whose pattern word is `v`, if any: the multiplier is odd, so the
/// hash inverts modulo 2^32.
fn pattern_address(v: u32) -> Option<u32> {
    // Newton's iteration for the inverse of an odd number modulo 2^32 (each step doubles
    // the correct low bits; 5 steps from 3 bits reach 96).
    let mut inv: u32 = PATTERN_MUL;
    for _ in 0..5 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(PATTERN_MUL.wrapping_mul(inv)));
    }
    let a = (v ^ PATTERN_XOR).wrapping_mul(inv);
    ((PATTERN_START..PATTERN_END).contains(&a) && a % 4 == 0).then_some(a)
}

/// A 1.44 MB floppy whose every sector starts with "FLPY" and its LBA.
fn floppy() -> Vec<u8> {
    let mut img = vec![0u8; 1_474_560];
    for (n, s) in img.chunks_mut(512).enumerate() {
        for (i, b) in s.iter_mut().enumerate() {
            *b = (n * 7 + i) as u8;
        }
        s[..4].copy_from_slice(b"FLPY");
        s[4..8].copy_from_slice(&(n as u32).to_le_bytes());
    }
    // LBA 4 (C0 H0 R5), offset 8: mov eax, 21414d44h ("DMA!"); ret — the attacker DMAs it
    // over code it has run.
    img[4 * 512 + 8..4 * 512 + 14].copy_from_slice(&[0xb8, 0x44, 0x4d, 0x41, 0x21, 0xc3]);
    img
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

fn page_bytes(mem: &HostMemory, page: u64) -> &[u8] {
    &mem.bytes[(page * PAGE) as usize..((page + 1) * PAGE) as usize]
}

/// Hashes of the host pages the attack must not change: the VMM's own, and the victim's
/// pages outside its RAM (its second-level tables, I/O bitmap, ROM copies).
fn protected_hashes(vmm: &Vmm, victim: &Vm) -> BTreeMap<u64, (Owner, u64)> {
    let ram = victim.ram_base / PAGE..(victim.ram_base + victim.ram_len as u64) / PAGE;
    (0..vmm.mem.pages())
        .filter_map(|p| {
            let o = vmm.mem.owner(p);
            let keep = o == Owner::Vmm || (o == Owner::Vm(victim.id) && !ram.contains(&p));
            keep.then(|| (p, (o, hash(page_bytes(&vmm.mem, p)))))
        })
        .collect()
}

/// The host pages of `vm`'s second-level tables (root, level 2, level 1).
fn slt_table_pages(vmm: &Vmm, vm: &Vm) -> BTreeSet<u64> {
    let mut pages = BTreeSet::from([vm.slt.root / PAGE]);
    for i3 in 0..64 {
        let e3 = vmm.mem.read64(vm.slt.root + i3 * 8);
        if e3 & bits::RWX == 0 {
            continue;
        }
        pages.insert((e3 & bits::ADDR) / PAGE);
        for i2 in 0..512 {
            let e2 = vmm.mem.read64((e3 & bits::ADDR) + i2 * 8);
            if e2 & bits::RWX != 0 {
                pages.insert((e2 & bits::ADDR) / PAGE);
            }
        }
    }
    pages
}

/// Check (c): every SLT mapping of `vm` points at its own RAM, at a page it owns mapped
/// without write permission (a ROM copy), or into its own device window; never at one of
/// its second-level tables or I/O-bitmap pages. Returns the number of mappings.
fn check_mappings(vmm: &Vmm, vm: &Vm) -> usize {
    let window = vm.window_first_page()..vm.window_first_page() + WINDOW_PAGES;
    let ram = vm.ram_base / PAGE..(vm.ram_base + vm.ram_len as u64) / PAGE;
    let tables = slt_table_pages(vmm, vm);
    let bitmap = vm.vcb.controls.io_bitmap / PAGE;
    let mappings = vm.slt.mappings(&vmm.mem);
    for &(gpa_page, hpa_page, perm) in &mappings {
        let what = format!("{}: guest page {gpa_page:#x} -> host page {hpa_page:#x} (perm {perm:#b})", vm.name);
        if window.contains(&hpa_page) {
            continue;
        }
        assert_eq!(vmm.mem.owner(hpa_page), Owner::Vm(vm.id), "{what}: a page the VM does not own");
        assert!(!tables.contains(&hpa_page), "{what}: one of its own second-level tables");
        assert!(!(bitmap..bitmap + 2).contains(&hpa_page), "{what}: its I/O bitmap");
        assert!(ram.contains(&hpa_page) || perm & bits::W == 0, "{what}: a writable page outside its RAM");
    }
    mappings.len()
}

fn counters(vm: &Vm) -> String {
    let c = &vm.counters;
    let by: Vec<String> =
        ExitReason::ALL.iter().filter(|r| c.count(**r) > 0).map(|r| format!("{} {}", r.name(), c.count(*r))).collect();
    format!(
        "{}: {} retired, {} turns, {} preempted, {} exits ({}), {} MMIO, state {:?}",
        vm.name,
        c.retired,
        c.turns,
        c.preemptions,
        c.exits(),
        by.join(", "),
        c.mmio,
        vm.state
    )
}

/// The highest "victim: pass N ok" so far.
fn passes(out: &str) -> u32 {
    out.lines().filter_map(|l| l.strip_prefix("victim: pass ")?.strip_suffix(" ok")?.parse().ok()).max().unwrap_or(0)
}

#[test]
fn an_attacking_vm_cannot_reach_outside_its_allocation() {
    if !tool_available("nasm", "-v") {
        skip("nasm is not installed");
        return;
    }
    let victim_img = assemble_guest("vmm_victim", "vmm_isolation").expect("nasm is installed");
    let attack_img = assemble_guest("vmm_attack", "vmm_isolation").expect("nasm is installed");
    let t = Instant::now();

    let mut vmm = Vmm::new(VmmConfig::default());
    let victim = vmm
        .add_vm("victim", MachineSpec { memory_mb: Some(VICTIM_MB), kernel: Some(victim_img), ..Default::default() })
        .expect("the victim VM");
    let (mut vout, mut aout) = (String::new(), String::new());
    let drain = |vmm: &mut Vmm, id: u16, out: &mut String| {
        let vm = vmm.vm_mut(id).unwrap();
        out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut vm.board.debugcon.out)));
    };

    // The victim alone until its pattern is in place and verified once.
    let mut total = 0u64;
    while passes(&vout) < 1 {
        vmm.run(CHUNK);
        total += CHUNK;
        drain(&mut vmm, victim, &mut vout);
        assert!(total < LIMIT && !vout.contains("CORRUPT"), "the victim alone: {vout}");
    }
    let p_start = passes(&vout);

    // Then the attacker. MachineSpec ignores `fda` next to a kernel (src/machine/spec.rs):
    // the floppy goes in through the Machine API.
    let mut m = MachineSpec { memory_mb: Some(ATTACKER_MB), kernel: Some(attack_img.clone()), ..Default::default() }
        .build()
        .expect("the attacker's machine");
    m.insert_floppy(0, floppy()).expect("the floppy");
    let attacker = vmm.add_machine("attacker", m).expect("the attacker VM");

    // The VMM's structures as host-physical addresses, into the attacker's target table.
    let (v, a) = (vmm.vm(victim).unwrap(), vmm.vm(attacker).unwrap());
    let targets: Vec<u64> = vec![
        v.ram_base,
        v.ram_base + PATTERN_START as u64,
        v.slt.root,
        v.vcb.controls.io_bitmap,
        a.ram_base,
        a.slt.root,
        a.vcb.controls.io_bitmap,
        (vmm.mem.pages() - 1) * PAGE,
        v.window_first_page() * PAGE,
    ];
    println!("targets (host-physical): {targets:#x?}");
    let at = attack_img.windows(TARGETS_MAGIC.len()).position(|w| w == TARGETS_MAGIC).expect("the target table");
    let gpa = (ATTACKER_BASE as usize) + at + TARGETS_MAGIC.len();
    {
        let base = vmm.vm(attacker).unwrap().ram_base as usize;
        let ram = &mut vmm.mem.bytes[base..];
        ram[gpa..gpa + 4].copy_from_slice(&(targets.len() as u32).to_le_bytes());
        for (i, t) in targets.iter().enumerate() {
            let t = u32::try_from(*t).expect("host-physical addresses below 4 GiB");
            ram[gpa + 4 + 4 * i..gpa + 8 + 4 * i].copy_from_slice(&t.to_le_bytes());
        }
    }
    let before = protected_hashes(&vmm, vmm.vm(victim).unwrap());

    // Both, until the attacker has stopped and the victim has passed PASSES_AFTER more times.
    let mut passes_at_stop: Option<(u32, u64)> = None;
    loop {
        let r = vmm.run(CHUNK);
        total += CHUNK;
        drain(&mut vmm, victim, &mut vout);
        drain(&mut vmm, attacker, &mut aout);
        let p = passes(&vout);
        let a_state = vmm.vm(attacker).unwrap().state.clone();
        let v_state = vmm.vm(victim).unwrap().state.clone();
        if passes_at_stop.is_none() && matches!(a_state, VmState::Stopped(_)) {
            passes_at_stop = Some((p, total));
        }
        let done = passes_at_stop.is_some_and(|(at, _)| p >= at + PASSES_AFTER);
        if done || vout.contains("CORRUPT") || matches!(v_state, VmState::Stopped(_)) || r == RunOutcome::AllStopped {
            break;
        }
        assert!(
            total < LIMIT,
            "no end after {total} instructions: victim {p} passes, attacker {a_state:?}\n--- attacker ---\n{aout}\n{}\n{}",
            counters(vmm.vm(victim).unwrap()),
            counters(vmm.vm(attacker).unwrap())
        );
    }
    let elapsed = t.elapsed().as_secs_f64();
    println!("--- attacker ---\n{aout}--- victim (last lines) ---");
    for l in vout.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev() {
        println!("{l}");
    }
    let (v, a) = (vmm.vm(victim).unwrap(), vmm.vm(attacker).unwrap());
    println!("{}\n{}", counters(v), counters(a));
    println!("{total} machine instructions in {elapsed:.1} s");

    // (a) Every step ran, nothing odd was seen, and the attacker ended in a contained stop.
    for line in [
        "attack: step 1 done",
        "attack: step 2 done",
        "attack: floppy DMA into own RAM: ok",
        "attack: a sector DMA-written from 00f00000 reads back as open bus",
        "attack: step 3 done",
        "attack: VMENTER with a forged VCB raised vector 00000006",
        "attack: step 4 done",
        "attack: steps 1-4 done",
        "attack: the next access is expected to stop this VM",
    ] {
        assert!(aout.contains(line), "the attacker did not print {line:?}:\n{aout}");
    }
    for bad in ["ODD", "FAILED", "UNEXPECTED"] {
        assert!(!aout.contains(bad), "the attacker saw something {bad}:\n{aout}");
    }
    match &a.state {
        VmState::Stopped(VmStop::Error(e)) => {
            assert!(e.contains("above 4 GiB"), "the attacker stopped for another error: {e}");
            println!("attacker stopped: {e}");
        }
        VmState::Stopped(VmStop::TripleFault) => println!("attacker stopped: triple fault"),
        other => panic!("the attacker did not end in a contained stop: {other:?}\n{aout}"),
    }
    // Nothing the attacker printed is one of the victim's words.
    for word in aout.split(|c: char| !c.is_ascii_hexdigit()).filter(|w| w.len() == 8) {
        let v = u32::from_str_radix(word, 16).unwrap();
        assert!(pattern_address(v).is_none(), "the attacker printed the victim's word {word}:\n{aout}");
    }

    // (b) The victim's pattern held, and it kept verifying after the attacker stopped.
    assert!(!vout.contains("CORRUPT"), "the victim's memory changed:\n{vout}");
    assert!(vout.contains("victim: filled 00400000-00c00000"), "{vout}");
    let (p_stop, t_stop) = passes_at_stop.expect("the attacker stopped");
    let p_end = passes(&vout);
    println!(
        "victim: {p_start} passes when the attacker started, {p_stop} when it had stopped (by {t_stop} machine \
         instructions), {p_end} at the end"
    );
    assert!(p_end >= p_stop + PASSES_AFTER, "the victim did not run on: {p_stop} -> {p_end} passes");
    assert_eq!(v.state, VmState::Runnable, "the victim is still running");
    let ram = v.ram_base as usize;
    for addr in (PATTERN_START..PATTERN_END).step_by(4) {
        let at = ram + addr as usize;
        let word = u32::from_le_bytes(vmm.mem.bytes[at..at + 4].try_into().unwrap());
        assert_eq!(word, pattern(addr), "the victim's word at {addr:#x}, checked from the host");
    }

    // (c) Every mapping of every VM is its own.
    for vm in &vmm.vms {
        let n = check_mappings(&vmm, vm);
        println!("{}: {n} SLT mappings, all its own", vm.name);
    }

    // (d) The VMM's pages and the victim's tables are as they were.
    let after = protected_hashes(&vmm, v);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the set of VMM and victim table pages changed"
    );
    for (page, (owner, h)) in &before {
        assert_eq!(after[page], (*owner, *h), "host page {page:#x} ({owner:?}) changed");
    }
    let vmm_pages = before.values().filter(|(o, _)| *o == Owner::Vmm).count();
    println!(
        "{} protected host pages unchanged: {vmm_pages} of the VMM's, {} of the victim's outside its RAM \
         (second-level tables, I/O bitmap, ROM copies)",
        before.len(),
        before.len() - vmm_pages
    );

    // (e) The attacker's wild accesses were nested page faults.
    let npf = a.counters.count(ExitReason::NestedPageFault);
    assert!(npf > 0, "no nested-page-fault exits for the attacker");
}
