//! Model-specific registers (SDM Vol. 4): the ones Linux and BIOSes read on a P6-class CPU.
//! An MSR not listed here raises #GP(0), as on hardware, which `rdmsr_safe` callers expect.

use serde::{Deserialize, Serialize};

/// MSR numbers (SDM Vol. 4 Table 2-2, "IA-32 Architectural MSRs", and §2.12 for P6).
pub mod index {
    pub const IA32_P5_MC_ADDR: u32 = 0x0;
    pub const IA32_P5_MC_TYPE: u32 = 0x1;
    pub const IA32_TIME_STAMP_COUNTER: u32 = 0x10;
    pub const IA32_PLATFORM_ID: u32 = 0x17;
    pub const IA32_BIOS_SIGN_ID: u32 = 0x8b;
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
    pub const IA32_MISC_ENABLE: u32 = 0x1a0;
    /// Present when CPUID.80000001H:EDX.NX or .LM is set (SDM Vol. 4 Table 2-2).
    pub const IA32_EFER: u32 = 0xc000_0080;
}

/// MSR state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Msrs {
    /// Added to the retired-instruction count to give the TSC (WRMSR to the TSC sets it).
    pub tsc_offset: u64,
    pub sysenter_cs: u32,
    pub sysenter_esp: u32,
    pub sysenter_eip: u32,
    pub bios_sign_id: u64,
    pub misc_enable: u64,
    /// IA32_EFER: only NXE (bit 11) exists on this CPU, which has no IA-32e mode, so SCE
    /// and LME are reserved and setting them is #GP(0) (SDM Vol. 4 Table 2-2: "reserved
    /// bits" of IA32_EFER; Vol. 2B WRMSR: #GP for a non-zero reserved bit).
    pub efer: u64,
}
