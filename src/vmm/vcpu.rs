//! [`Vcpu`]: one virtual processor as a Rust VMM drives it, in the shape of rust-vmm
//! kvm-ioctls' `VcpuFd` — `run()` enters the guest and returns the exit as a [`VmExit`]
//! carrying its data; the guest's registers are read and written between runs. It is a
//! view over the processor and the VM's control block: the state lives in the [`Vcb`].

use super::exit::VmExit;
use crate::bus::Bus;
use crate::cpu::v386::{State, Vcb, VmRun};
use crate::cpu::{Cpu, CS};

/// Why a run could not enter the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuError {
    /// A control check of docs/v386.md Table 9-1 failed (the VMM's own bug).
    Controls(u32),
}

impl core::fmt::Display for VcpuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VcpuError::Controls(n) => write!(f, "VM entry refused: control check {n} (docs/v386.md Table 9-1)"),
        }
    }
}

/// The processor, lent to one VM's control block.
pub struct Vcpu<'a> {
    cpu: &'a mut Cpu,
    vcb: &'a mut Vcb,
}

impl<'a> Vcpu<'a> {
    pub fn new(cpu: &'a mut Cpu, vcb: &'a mut Vcb) -> Self {
        Vcpu { cpu, vcb }
    }

    /// Enter the guest and run it until it exits (at most `budget` steps: then the exit
    /// is a preemption-timer one).
    pub fn run<B: Bus>(&mut self, bus: &mut B, budget: u64) -> Result<VmExit, VcpuError> {
        match self.cpu.vm_run(bus, self.vcb, budget) {
            VmRun::Exit(_) => Ok(VmExit::decode(&self.vcb.exit, &self.vcb.guest)),
            VmRun::ControlError(n) => Err(VcpuError::Controls(n)),
        }
    }

    /// The guest's registers and the rest of its state (kvm's `get_regs`/`get_sregs`).
    pub fn state(&self) -> &State {
        &self.vcb.guest
    }

    /// Change the guest's state before the next run (kvm's `set_regs`/`set_sregs`).
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.vcb.guest
    }

    /// The whole control block (controls, last exit).
    pub fn vcb(&mut self) -> &mut Vcb {
        self.vcb
    }

    /// Step the guest past the instruction that caused the last exit, after emulating it.
    pub fn skip_instruction(&mut self) {
        skip_instruction(self.vcb);
    }
}

/// Step the guest of `vcb` past the instruction its last exit reported (its length is in
/// the exit information), wrapping a 16-bit IP, and drop any STI/MOV SS blocking it
/// started (VT-x requires the same of a VMM that emulates an instruction).
pub fn skip_instruction(vcb: &mut Vcb) {
    let len = vcb.exit.instr_len;
    let g = &mut vcb.guest;
    let next = g.eip.wrapping_add(len);
    g.eip = if g.segs[CS as usize].big() { next } else { next & 0xffff };
    g.interruptibility = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{FlatBus, IoSize};
    use crate::cpu::v386::slt::bits;
    use crate::cpu::{cr0, Seg, EAX};

    /// A guest that writes "hi" to port 0xF8 and halts, driven through `Vcpu`.
    #[test]
    fn a_vmm_loop_in_the_kvm_shape() {
        let mut bus = FlatBus::new(4 << 20);
        let put = |b: &mut FlatBus, a: usize, v: u64| b.mem[a..a + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut bus, 0x1000, 0x2000 | bits::RWX);
        put(&mut bus, 0x2000, 0x3000 | bits::RWX);
        for p in 0..16u64 {
            put(&mut bus, 0x3000 + 8 * p as usize, (0x10_0000 + (p << 12)) | bits::RWX);
        }
        bus.mem[0x8000..0xa000].fill(0xff);
        let code = [0xb0, b'h', 0xe6, 0xf8, 0xb0, b'i', 0xe6, 0xf8, 0xf4];
        bus.mem[0x10_1000..0x10_1000 + code.len()].copy_from_slice(&code);
        let mut vcb = Vcb::default();
        vcb.controls.slt_root = 0x1000;
        vcb.controls.io_bitmap = 0x8000;
        vcb.controls.intercepts = crate::cpu::v386::vcb::intercept::HLT;
        vcb.guest.cr0 = cr0::PE | cr0::ET;
        vcb.guest.segs = [Seg::flat32(0x10, false); 6];
        vcb.guest.segs[CS as usize] = Seg::flat32(0x08, true);
        vcb.guest.eip = 0x1000;
        let mut cpu = Cpu::new();
        let mut vcpu = Vcpu::new(&mut cpu, &mut vcb);
        let mut out = alloc::vec::Vec::new();
        loop {
            match vcpu.run(&mut bus, 1_000_000).expect("entry") {
                VmExit::IoOut { port: 0xf8, size: IoSize::Byte, value } => out.push(value as u8),
                VmExit::Hlt => break,
                other => panic!("unexpected {other:?}"),
            }
            vcpu.skip_instruction();
        }
        assert_eq!(out, b"hi");
        assert_eq!(vcpu.state().regs[EAX] & 0xff, b'i' as u32);
    }
}
