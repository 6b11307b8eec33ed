//! The *interpreters* (Popek & Goldberg): one small function per kind of exit, each
//! doing for the guest what the trapped instruction would have done on a real PC — port
//! I/O into the VM's own board, CPUID as the VMM presents the processor, the MSRs the
//! guest has no copy of, hypercalls, HLT, and the nested page faults by which a VM's
//! device memory is mapped in. Each returns what the dispatcher should do next.

use super::allocator::HostMemory;
use super::vm::{Vm, VmState, VmStop};
use crate::bus::{IoSize, StopRequest};
use crate::cpu::cpuid::{v386_feature, V386_LEAF};
use crate::cpu::flags::IF;
use crate::cpu::msr::index;
use crate::cpu::v386::event;
use crate::cpu::v386::slt::Access;
use crate::cpu::{Cpu, EAX, EBX, ECX, EDX};
use crate::machine::Board;
use alloc::collections::BTreeMap;
use alloc::format;

/// What the dispatcher does after an interpreter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Enter the VM again.
    Continue,
    /// The VM gave up the processor (HLT, a yield hypercall): next VM.
    EndTurn,
    /// The VM is finished.
    Stop(VmStop),
    /// The VM pulsed its reset line.
    Reset,
}

/// Step the guest past the instruction that exited (`vcpu::skip_instruction`).
pub fn skip_instruction(vm: &mut Vm) {
    super::vcpu::skip_instruction(&mut vm.vcb);
}

/// Act on what a device asked for during the access (isa-debug-exit, soft-off, reset).
fn after_device(vm: &mut Vm) -> Action {
    match vm.board.take_stop_request() {
        Some(StopRequest::DebugExit(v)) => Action::Stop(VmStop::DebugExit(v)),
        Some(StopRequest::PowerOff) => Action::Stop(VmStop::PowerOff),
        Some(StopRequest::Reset) => Action::Reset,
        Some(StopRequest::Yield) | None => Action::Continue,
    }
}

/// OUT to an intercepted port: the VM's board gets it.
pub fn io_out(vm: &mut Vm, mem: &mut HostMemory, port: u16, size: IoSize, value: u32) -> Action {
    let (base, len) = (vm.ram_base as usize, vm.ram_len);
    vm.board.io_out(port, size, value, &mut mem.bytes[base..base + len]);
    skip_instruction(vm);
    after_device(vm)
}

/// IN from an intercepted port: the board answers into AL, AX or EAX.
pub fn io_in(vm: &mut Vm, port: u16, size: IoSize) -> Action {
    let v = vm.board.io_in(port, size);
    let eax = &mut vm.vcb.guest.regs[EAX];
    *eax = match size {
        IoSize::Byte => (*eax & !0xff) | (v & 0xff),
        IoSize::Word => (*eax & !0xffff) | (v & 0xffff),
        IoSize::Dword => v,
    };
    skip_instruction(vm);
    after_device(vm)
}

/// CPUID as the VMM presents the processor: the host's, without the V386 mode bits, so
/// a guest never believes it can nest (docs/v386.md §2, §5.9); PSI stays.
pub fn cpuid(vm: &mut Vm, host: &Cpu, leaf: u32) -> Action {
    let mut r = host.cpuid(leaf);
    if leaf == V386_LEAF + 1 {
        r = [0, 0, 0, v386_feature::PSI];
    }
    let g = &mut vm.vcb.guest;
    g.regs[EAX] = r[0];
    g.regs[EBX] = r[1];
    g.regs[ECX] = r[2];
    g.regs[EDX] = r[3];
    skip_instruction(vm);
    Action::Continue
}

/// Hypercall numbers of v386's VMM (EAX; docs/v386.md §7.2 leaves the table to the VMM).
pub mod hypercall {
    /// Returns the VMM's version, 0x386.
    pub const VERSION: u32 = 0;
    /// Writes the byte in BL to the VM's debug console.
    pub const PUTCHAR: u32 = 1;
    /// Gives up the rest of the VM's turn.
    pub const YIELD: u32 = 2;
    /// Paravirtual port read: EBX = port, ECX = size in bytes (1, 2 or 4); EAX = the
    /// value, as IN would have read it. Any other size returns -1.
    pub const IO_IN: u32 = 3;
    /// Paravirtual task-priority write (the CR8 of 64-bit mode, the local APIC's TPR here):
    /// EBX = the new TPR.
    pub const SET_TPR: u32 = 4;
    /// Paravirtual page-table update, after the guest wrote a PTE itself (lguest's
    /// `set_pte` notification): EBX = the linear address the entry maps, ECX = the entry's
    /// guest-physical address. Stands for the INVLPG that would follow; a VMM that
    /// shadows the guest's tables would also re-read the entry there.
    pub const PTE_UPDATE: u32 = 5;
}

/// VCALL. Unknown calls return -1 (ENOSYS-like), and so do the privileged ones (3-5:
/// port reads, the TPR, page tables) from guest user mode, which the guest kernel's own
/// IOPL and page protection would have kept away from them.
pub fn vcall(vm: &mut Vm, nr: u32, args: [u32; 5]) -> Action {
    let privileged = matches!(nr, hypercall::IO_IN | hypercall::SET_TPR | hypercall::PTE_UPDATE);
    let (result, action) = match nr {
        _ if privileged && vm.vcb.guest.cpl != 0 => (u32::MAX, Action::Continue),
        hypercall::VERSION => (0x386, Action::Continue),
        hypercall::PUTCHAR => {
            vm.board.debugcon.write(args[0] as u8);
            (0, Action::Continue)
        }
        hypercall::YIELD => (0, Action::EndTurn),
        hypercall::IO_IN => {
            let size = match args[1] {
                1 => Some(IoSize::Byte),
                2 => Some(IoSize::Word),
                4 => Some(IoSize::Dword),
                _ => None,
            };
            match size {
                Some(size) => (vm.board.io_in(args[0] as u16, size), Action::Continue),
                None => (u32::MAX, Action::Continue),
            }
        }
        hypercall::SET_TPR => {
            // Through the APIC's own register path, where the guest's MMIO write goes: the
            // TPR is at offset 80h of the APIC page (SDM Vol. 3A Table 10-1).
            let tpr = (vm.board.lapic.base_msr() as u32 & !0xfff) + 0x80;
            vm.board.mmio_write(crate::addr::Phys(tpr), IoSize::Dword, args[0] & 0xff, &mut []);
            (0, Action::Continue)
        }
        hypercall::PTE_UPDATE => {
            // The SLT does not depend on the guest's tables: only the guest's cached
            // translations must go, which a flush of the VM's tag at the next entry does
            // (docs/v386.md §6.5).
            vm.flush_tlb = true;
            (0, Action::Continue)
        }
        _ => (u32::MAX, Action::Continue),
    };
    vm.vcb.guest.regs[EAX] = result;
    skip_instruction(vm);
    action
}

/// HLT: the VM waits for an interrupt; with IF clear nothing can come.
pub fn hlt(vm: &mut Vm) -> Action {
    skip_instruction(vm);
    if vm.vcb.guest.eflags & IF == 0 {
        return Action::Stop(VmStop::DeadHalt);
    }
    vm.state = VmState::Halted;
    Action::EndTurn
}

/// Queue #GP(0) for the guest (an MSR it may not touch).
fn inject_gp(vm: &mut Vm) {
    vm.vcb.controls.event_inject = event::VALID | event::HARDWARE_EXCEPTION << 8 | event::ERROR_CODE | 13;
    vm.vcb.controls.event_error_code = 0;
}

/// The instructions that always exit (Table 8-7): INVD does nothing on a machine
/// without caches; VMENTER in a guest raises #UD, as on a processor without V386, which
/// is what the guest's CPUID says (no nested V386, docs/v386.md §5.9).
pub fn sensitive(vm: &mut Vm, id: u8) -> Action {
    use crate::cpu::v386::sensitive::{INVD, VMENTER, WBINVD};
    match id {
        INVD | WBINVD => skip_instruction(vm),
        VMENTER => vm.vcb.controls.event_inject = event::VALID | event::HARDWARE_EXCEPTION << 8 | 6,
        _ => return Action::Stop(VmStop::Error(format!("unexpected sensitive-instruction exit {id}"))),
    }
    Action::Continue
}

/// RDMSR of an MSR without a guest copy in the VCB (docs/v386.md §5.4).
pub fn rdmsr(vm: &mut Vm, msr: u32) -> Action {
    match read_msr(&vm.msrs, &mut vm.board, msr) {
        Some(v) => {
            vm.vcb.guest.regs[EAX] = v as u32;
            vm.vcb.guest.regs[EDX] = (v >> 32) as u32;
            skip_instruction(vm);
        }
        None => inject_gp(vm),
    }
    Action::Continue
}

/// WRMSR of an MSR without a guest copy.
pub fn wrmsr(vm: &mut Vm, msr: u32, value: u64) -> Action {
    if write_msr(&mut vm.msrs, &mut vm.board, msr, value) {
        skip_instruction(vm);
    } else {
        inject_gp(vm);
    }
    Action::Continue
}

/// An MSR a VM reads that neither the guest-state area nor the processor holds for it
/// (the software monitor's guests use this too): the machine-check and platform MSRs
/// read 0, the microcode and misc-enable ones are the VM's own (`msrs`), the rest are
/// its board's (the local APIC's base). None: #GP.
pub fn read_msr(msrs: &BTreeMap<u32, u64>, board: &mut Board, msr: u32) -> Option<u64> {
    match msr {
        index::IA32_P5_MC_ADDR | index::IA32_P5_MC_TYPE | index::IA32_PLATFORM_ID => Some(0),
        index::IA32_BIOS_SIGN_ID | index::IA32_MISC_ENABLE => Some(msrs.get(&msr).copied().unwrap_or(0)),
        other => board.rdmsr(other),
    }
}

/// The same for WRMSR: false is #GP.
pub fn write_msr(msrs: &mut BTreeMap<u32, u64>, board: &mut Board, msr: u32, value: u64) -> bool {
    match msr {
        index::IA32_P5_MC_ADDR | index::IA32_P5_MC_TYPE | index::IA32_PLATFORM_ID => true,
        index::IA32_BIOS_SIGN_ID | index::IA32_MISC_ENABLE => {
            msrs.insert(msr, value);
            true
        }
        other => board.wrmsr(other, value) == Some(true),
    }
}

/// A nested page fault. A page the SLT does not map yet is the VM's device memory or a
/// hole: map it into the VM's device window (its devices answer, or nothing does, as on
/// a PC). A write to a page mapped read-only (ROM, shadow RAM the chipset locked) is
/// dropped, as the chipset drops it: the instruction is skipped.
pub fn nested_page_fault(vm: &mut Vm, mem: &mut HostMemory, gpa: u64, access: Access, present: bool) -> Action {
    if gpa >> 32 != 0 {
        return Action::Stop(VmStop::Error(format!("access above 4 GiB at guest-physical {gpa:#x}")));
    }
    if !present {
        return match vm.map_page(mem, (gpa >> 12) as u32) {
            Ok(()) => Action::Continue,
            Err(e) => Action::Stop(VmStop::Error(format!("{e}"))),
        };
    }
    if access == Access::Write && vm.vcb.exit.instr_len != 0 {
        skip_instruction(vm);
        return Action::Continue;
    }
    Action::Stop(VmStop::Error(format!("{access:?} denied at guest-physical {gpa:#x}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Phys;
    use crate::machine::{Machine, MachineConfig};

    fn vm() -> Vm {
        let m = Machine::new(&MachineConfig { mem_mb: 1, ..Default::default() }).unwrap();
        let mut mem = HostMemory::new();
        Vm::from_machine(1, "pv".into(), m, &mut mem).unwrap()
    }

    fn tpr(vm: &mut Vm) -> u32 {
        vm.board.mmio_read(Phys(0xfee0_0080), IoSize::Dword, &[])
    }

    #[test]
    fn the_paravirtual_hypercalls_act_on_the_vms_own_board() {
        let mut vm = vm();
        // IO_IN: COM1's line-status register, THRE | TEMT after reset; a bad size is -1.
        vcall(&mut vm, hypercall::IO_IN, [0x3fd, 1, 0, 0, 0]);
        assert_eq!(vm.vcb.guest.regs[EAX], 0x60);
        vcall(&mut vm, hypercall::IO_IN, [0x3fd, 3, 0, 0, 0]);
        assert_eq!(vm.vcb.guest.regs[EAX], u32::MAX);
        vcall(&mut vm, hypercall::SET_TPR, [0x20, 0, 0, 0, 0]);
        assert_eq!((vm.vcb.guest.regs[EAX], tpr(&mut vm)), (0, 0x20));
        vm.flush_tlb = false;
        vcall(&mut vm, hypercall::PTE_UPDATE, [0x40_0000, 0x10_3000, 0, 0, 0]);
        assert!(vm.flush_tlb);
        // From guest user mode the privileged calls are refused.
        vm.vcb.guest.cpl = 3;
        vcall(&mut vm, hypercall::SET_TPR, [0x30, 0, 0, 0, 0]);
        assert_eq!((vm.vcb.guest.regs[EAX], tpr(&mut vm)), (u32::MAX, 0x20));
        vcall(&mut vm, hypercall::VERSION, [0; 5]);
        assert_eq!(vm.vcb.guest.regs[EAX], 0x386);
    }
}
