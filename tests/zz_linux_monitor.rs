use v386::machine::MachineSpec;
use v386::vmm::{Technique, Vmm, VmmConfig};
#[test]
fn linux_under_monitor() {
    let k = std::fs::read(".cache/images/vmlinuz").unwrap();
    let i = std::fs::read(".cache/images/initramfs.cpio.gz").unwrap();
    let spec = MachineSpec {
        memory_mb: Some(128),
        kernel: Some(k),
        initrd: Some(i),
        cmdline: Some("console=ttyS0".into()),
        ..Default::default()
    };
    let mut vmm = Vmm::new(VmmConfig::default());
    let r = vmm.add_vm_as("l", spec, Technique::TrapAndEmulatePsi);
    println!("{:?}", r.as_ref().err().map(|e| e.to_string()));
    let mut out = String::new();
    for _ in 0..1000 {
        out.push_str(&String::from_utf8_lossy(&vmm.vms[0].board.com1.take_output()));
        if out.contains("~ #") || out.contains("/ #") {
            break;
        }
        vmm.run(10_000_000);
        if !matches!(vmm.vms[0].state, v386::vmm::VmState::Runnable | v386::vmm::VmState::Halted) {
            break;
        }
    }
    let vm = &mut vmm.vms[0];
    println!(
        "state {:?} retired {} eip {:x} cpl {} by_reason {:?}",
        vm.state,
        vm.counters.retired,
        vm.processor_state().eip,
        vm.processor_state().cpl,
        vm.counters.by_reason.iter().enumerate().filter(|(_, n)| **n > 0).collect::<Vec<_>>()
    );
    out.push_str(&String::from_utf8_lossy(&vm.board.com1.take_output()));
    println!("{out}");
    for r in vmm.log.iter().collect::<Vec<_>>().iter().rev().take(25).rev() { println!("t {} reason {} qual {:x} eip {:08x} instr {:02x?}", r.time, r.reason, r.qualification, r.guest_eip, r.instr()); }
    let g = vmm.vms[0].processor_state(); println!("regs {:08x?} eip {:08x} cs {:?} ss {:?} cr2 {:08x} tr {:?}", g.regs, g.eip, g.segs[1], g.segs[2], g.cr2, g.tr);
    if let Some(m) = vmm.vms[0].monitor.as_deref() { println!("virtual {:?}", m.virtual_state()); }
    panic!();
}
