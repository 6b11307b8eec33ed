//! Device time under every technique: a timer programmed to fire before the VMM's slice
//! would end interrupts the guest on time (`tests/guests/timer_soon.asm`: the PIT set
//! 83.8 us ahead in a slice sized by the 1 ms quantum; the guest counts loops, and TSC
//! ticks, until IRQ0).
//!
//! On the bare machine, in an emulated VM and in a V386 VM the counts agree to a few
//! loops; under the software monitor a timer write ends the monitor's run (the bus asks
//! for it: `MonitorExit::Yield`), so the VMM sizes a new slice and IRQ0 comes as early.
//! Measured: 2,809 loops and 8,429 TSC ticks bare and emulated, 2,813 and 8,442 on V386,
//! 2,814 and 8,445 under the monitor's three techniques; 33,326 and 299,980 under the
//! monitor before it honoured the request (IRQ0 at the end of the quantum).
//!
//! nasm is an external tool: without it the test is skipped (tests/common/mod.rs).

mod common;
use common::*;

use v386::machine::{Machine, MachineConfig, MachineSpec};
use v386::vmm::{Technique, VmState, Vmm, VmmConfig};

/// The loop count the guest wrote on its debug console.
fn count(out: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(out);
    let mut w = text.split_whitespace().map(|w| u32::from_str_radix(w, 16).ok());
    match (w.next().flatten(), w.next().flatten()) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("not a count: {text:?}"),
    }
}

#[test]
fn a_timer_set_sooner_interrupts_on_time_under_every_technique() {
    let Some(img) = assemble_guest("timer_soon", "vmm_timer") else {
        skip("nasm is not installed");
        return;
    };
    let mut bare = Machine::new(&MachineConfig { mem_mb: 4, ..Default::default() }).unwrap();
    bare.load_kernel(&img, None, "").unwrap();
    bare.run(10_000_000);
    let native = count(&bare.take_debugcon());

    let mut vmm = Vmm::new(VmmConfig::default());
    let techniques = [
        Technique::Emulation,
        Technique::V386,
        Technique::TrapAndEmulate,
        Technique::TrapAndEmulatePsi,
        Technique::ScanBeforeExecute,
    ];
    for t in techniques {
        let spec = MachineSpec { memory_mb: Some(4), kernel: Some(img.clone()), ..Default::default() };
        vmm.add_vm_as(t.key(), spec, t).unwrap();
    }
    vmm.run(10_000_000);
    println!("bare machine: {native:?} loops before IRQ0");
    for vm in &mut vmm.vms {
        assert!(matches!(vm.state, VmState::Stopped(_)), "{}: {:?}", vm.name, vm.state);
        let n = count(&core::mem::take(&mut vm.board.debugcon.out));
        println!("{}: {n:?} loops", vm.name);
        // The monitor's emulated instructions (STI among them) take a trap's worth of
        // instructions of their own, and IRQ0 is taken at an instruction boundary: a
        // few loops either way.
        assert!(n.0.abs_diff(native.0) <= 20, "{}: {n:?} loops before IRQ0, {native:?} on the bare machine", vm.name);
        // The TSC (one tick an instruction) agrees with the PIT's time.
        assert!(n.1.abs_diff(native.1) <= 64, "{}: {n:?} TSC ticks to IRQ0, {native:?} on the bare machine", vm.name);
    }
}
