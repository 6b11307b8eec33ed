//! [`VmExit`]: a VM exit as the Rust VMM handles it, shaped like rust-vmm kvm-ioctls'
//! `VcpuExit` — an enum whose variants carry what the exit's interpreter needs, decoded
//! from the control block's exit-information area (docs/v386.md §4.4, §8) by one plain
//! function, [`VmExit::decode`], which tests call directly.

use crate::bus::IoSize;
use crate::cpu::v386::slt::Access;
use crate::cpu::v386::{npf, ExitInfo, ExitReason, State, ENTRY_FAILURE};
use crate::cpu::{EAX, EBX, ECX, EDI, EDX, ESI};

/// Why a guest stopped running, with the data to handle it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VmExit {
    /// OUT to an intercepted port.
    IoOut {
        port: u16,
        size: IoSize,
        value: u32,
    },
    /// IN from an intercepted port: the VMM writes the result into the guest's EAX.
    IoIn {
        port: u16,
        size: IoSize,
    },
    /// INS/OUTS on an intercepted port (the VMM's bitmap passes the ports guests use
    /// with string I/O, so this is a configuration error).
    IoString {
        port: u16,
        input: bool,
    },
    Hlt,
    Cpuid {
        leaf: u32,
        subleaf: u32,
    },
    /// VCALL: EAX = call number, EBX, ECX, EDX, ESI, EDI = arguments (docs/v386.md §7.2).
    Hypercall {
        nr: u32,
        args: [u32; 5],
        cpl: u8,
    },
    Rdmsr {
        index: u32,
    },
    Wrmsr {
        index: u32,
        value: u64,
    },
    /// An intercepted guest exception.
    Exception {
        vector: u8,
        error_code: Option<u32>,
    },
    ExternalInterrupt,
    InterruptWindow,
    PreemptionTimer,
    /// The SLT has no mapping, or not the right permission, for a guest-physical address.
    NestedPageFault {
        gpa: u64,
        gla: Option<u32>,
        access: Access,
        present: bool,
    },
    SltMisconfig {
        gpa: u64,
        level: u8,
    },
    CrAccess {
        qualification: u64,
    },
    DrAccess {
        qualification: u64,
    },
    Invlpg {
        linear: u32,
    },
    TaskSwitch {
        selector: u16,
        source: u8,
    },
    /// An intercepted instruction of Table 8-7 (`vector` for INT n).
    Sensitive {
        id: u8,
        vector: u8,
    },
    TripleFault,
    /// Entry failed: the guest state broke check `check` of §9.3.
    InvalidGuestState {
        check: u32,
    },
}

fn io_size(bits: u64) -> IoSize {
    match bits & 7 {
        0 => IoSize::Byte,
        1 => IoSize::Word,
        _ => IoSize::Dword,
    }
}

impl VmExit {
    /// Decode the exit described by `x` for a guest now in state `g`.
    pub fn decode(x: &ExitInfo, g: &State) -> VmExit {
        let q = x.qualification;
        if x.reason & ENTRY_FAILURE != 0 {
            return VmExit::InvalidGuestState { check: x.entry_failure_check };
        }
        let Some(reason) = ExitReason::from_number(x.reason) else {
            return VmExit::InvalidGuestState { check: 0 };
        };
        match reason {
            ExitReason::Io => {
                let port = (q >> 16) as u16;
                let input = q & (1 << 3) != 0;
                if q & (1 << 4) != 0 {
                    VmExit::IoString { port, input }
                } else if input {
                    VmExit::IoIn { port, size: io_size(q) }
                } else {
                    VmExit::IoOut { port, size: io_size(q), value: (q >> 32) as u32 }
                }
            }
            ExitReason::Hlt => VmExit::Hlt,
            ExitReason::Cpuid => VmExit::Cpuid { leaf: g.regs[EAX], subleaf: g.regs[ECX] },
            ExitReason::Vcall => VmExit::Hypercall {
                nr: g.regs[EAX],
                args: [g.regs[EBX], g.regs[ECX], g.regs[EDX], g.regs[ESI], g.regs[EDI]],
                cpl: (q & 3) as u8,
            },
            ExitReason::Rdmsr => VmExit::Rdmsr { index: g.regs[ECX] },
            ExitReason::Wrmsr => {
                VmExit::Wrmsr { index: g.regs[ECX], value: (g.regs[EDX] as u64) << 32 | g.regs[EAX] as u64 }
            }
            ExitReason::ExceptionNmi => VmExit::Exception {
                vector: x.intr_info as u8,
                error_code: (x.intr_info & (1 << 11) != 0).then_some(x.intr_error_code),
            },
            ExitReason::ExternalInterrupt => VmExit::ExternalInterrupt,
            ExitReason::InterruptWindow => VmExit::InterruptWindow,
            ExitReason::PreemptionTimer => VmExit::PreemptionTimer,
            ExitReason::NestedPageFault => VmExit::NestedPageFault {
                gpa: x.guest_physical,
                gla: (q & npf::GLA_VALID != 0).then_some(x.guest_linear),
                access: if q & npf::WRITE != 0 {
                    Access::Write
                } else if q & npf::FETCH != 0 {
                    Access::Fetch
                } else {
                    Access::Read
                },
                present: q & npf::PRESENT != 0,
            },
            ExitReason::SltMisconfig => VmExit::SltMisconfig { gpa: x.guest_physical, level: q as u8 },
            ExitReason::CrAccess => VmExit::CrAccess { qualification: q },
            ExitReason::DrAccess => VmExit::DrAccess { qualification: q },
            ExitReason::Invlpg => VmExit::Invlpg { linear: q as u32 },
            ExitReason::TaskSwitch => VmExit::TaskSwitch { selector: q as u16, source: (q >> 30) as u8 & 3 },
            ExitReason::SensitiveInstruction => VmExit::Sensitive { id: q as u8, vector: (q >> 8) as u8 },
            ExitReason::TripleFault => VmExit::TripleFault,
            ExitReason::InvalidGuestState => VmExit::InvalidGuestState { check: x.entry_failure_check },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_npf_exits_decode_their_qualification() {
        let g = State::default();
        let out = ExitInfo { reason: 30, qualification: 0x41 << 32 | 0x3f8 << 16 | 1 << 6, ..Default::default() };
        assert_eq!(VmExit::decode(&out, &g), VmExit::IoOut { port: 0x3f8, size: IoSize::Byte, value: 0x41 });
        let inw = ExitInfo { reason: 30, qualification: 0x60 << 16 | 1 << 3 | 1, ..Default::default() };
        assert_eq!(VmExit::decode(&inw, &g), VmExit::IoIn { port: 0x60, size: IoSize::Word });
        let f = ExitInfo {
            reason: 48,
            qualification: npf::WRITE | npf::GLA_VALID | npf::FINAL | npf::PRESENT,
            guest_physical: 0xb8000,
            guest_linear: 0xc00b_8000,
            ..Default::default()
        };
        assert_eq!(
            VmExit::decode(&f, &g),
            VmExit::NestedPageFault { gpa: 0xb8000, gla: Some(0xc00b_8000), access: Access::Write, present: true }
        );
        let bad = ExitInfo { reason: 33 | ENTRY_FAILURE, entry_failure_check: 8, ..Default::default() };
        assert_eq!(VmExit::decode(&bad, &g), VmExit::InvalidGuestState { check: 8 });
    }
}
