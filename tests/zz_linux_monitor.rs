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
    panic!();
}
