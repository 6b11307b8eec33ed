//! Device time under every technique, against the bare machine
//! (`tests/guests/timer_soon.asm`):
//!
//! - a timer programmed to fire before the VMM's slice would end interrupts the guest on
//!   time: the PIT set 83.8 us ahead in a slice sized by the 1 ms quantum, the guest
//!   counts loops, and TSC ticks, until IRQ0. Under the software monitor a timer write
//!   ends the monitor's run (the bus asks for it: `MonitorExit::Yield`) so the VMM sizes
//!   a new slice;
//! - the TSC counts the VM's own time: over Linux's 10 ms PIT calibration (the VMM
//!   switches between its five VMs several times in it) and between two IRQ0s spent in
//!   HLT (the TSC runs through HLT). The VMM loads each VM's TSC offset from its clock
//!   (`Vm::tsc_ahead`), and the monitor lets the devices see the time of the I/O
//!   instruction it emulates (`Bus::sync`).
//!
//! Measured (loops; TSC ticks to IRQ0, over the 10 ms, between two IRQ0s in HLT): bare
//! and emulated 2,809; 8,429, 1,000,032, 8,381. V386 2,813; 8,442, 1,000,062, 8,381. The
//! monitor's three techniques 2,814; 8,445, 1,000,062, 8,381. Before: the monitor 33,326
//! loops (IRQ0 at the end of the quantum); the 10 ms 4,000,062 ticks on V386 and
//! 3.74-3.91 M under the monitor (the processor's TSC, counting every VM's turns), and
//! 1,005,590 with the other VMs' time taken out (the PIT polled at a stale time); 16 ticks
//! between IRQ0s in HLT on the bare machine (the TSC stopped while halted).
//!
//! nasm is an external tool: without it the test is skipped (tests/common/mod.rs).

mod common;
use common::*;

use v386::machine::{Machine, MachineConfig, MachineSpec};
use v386::vmm::{Technique, VmState, Vmm, VmmConfig};

/// The loop count the guest wrote on its debug console.
fn count(out: &[u8]) -> [u32; 4] {
    let text = String::from_utf8_lossy(out);
    let n: Vec<u32> = text.split_whitespace().filter_map(|w| u32::from_str_radix(w, 16).ok()).collect();
    n.try_into().unwrap_or_else(|_| panic!("not four numbers: {text:?}"))
}

#[test]
fn timers_and_the_tsc_keep_the_guests_time_under_every_technique() {
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
        assert!(n[0].abs_diff(native[0]) <= 20, "{}: {n:?} loops before IRQ0, {native:?} on the bare machine", vm.name);
        // The TSC (one tick an instruction, 10 ns) agrees with the PIT's time: to IRQ0,
        // over Linux's 10 ms calibration (the VMM switches VMs several times in it: the
        // TSC counts this VM's time, not the processor's), and across HLT.
        for (k, what) in [(1, "to IRQ0"), (2, "over 10 ms of PIT counter 2"), (3, "between two IRQ0s in HLT")] {
            assert!(
                n[k].abs_diff(native[k]) <= 64,
                "{}: {n:?}: TSC ticks {what}, {native:?} on the bare machine",
                vm.name
            );
        }
    }
}
