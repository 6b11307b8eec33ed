//! Device time under every technique: a timer programmed to fire before the VMM's slice
//! would end interrupts the guest on time (`tests/guests/timer_soon.asm`: the PIT set
//! 83.8 us ahead in a slice sized by the 1 ms quantum; the guest counts loops until IRQ0).
//!
//! On the bare machine, in an emulated VM and in a V386 VM the count is the same to a few
//! loops; under the software monitor a timer write ends the monitor's run (the bus asks
//! for it: `MonitorExit::Yield`), so the VMM sizes a new slice and IRQ0 comes as early.
//! Measured before that: about 33,000 loops (IRQ0 at the end of the quantum) against
//! about 2,800.
//!
//! nasm is an external tool: without it the test is skipped (tests/common/mod.rs).

mod common;
use common::*;

use v386::machine::{Machine, MachineConfig, MachineSpec};
use v386::vmm::{Technique, VmState, Vmm, VmmConfig};

/// The loop count the guest wrote on its debug console.
fn count(out: &[u8]) -> u32 {
    let text = String::from_utf8_lossy(out);
    u32::from_str_radix(text.trim(), 16).unwrap_or_else(|_| panic!("not a count: {text:?}"))
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
    println!("bare machine: {native} loops before IRQ0");
    for vm in &mut vmm.vms {
        assert!(matches!(vm.state, VmState::Stopped(_)), "{}: {:?}", vm.name, vm.state);
        let n = count(&core::mem::take(&mut vm.board.debugcon.out));
        println!("{}: {n} loops", vm.name);
        // The monitor's emulated instructions (STI among them) take a trap's worth of
        // instructions of their own, and IRQ0 is taken at an instruction boundary: a
        // few loops either way.
        assert!(n.abs_diff(native) <= 20, "{}: {n} loops before IRQ0, {native} on the bare machine", vm.name);
    }
}
