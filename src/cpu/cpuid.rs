//! CPUID (SDM Vol. 2A "CPUID"): it must tell the truth, so every feature bit set here is
//! implemented, and nothing implemented-later is claimed early.

use super::Cpu;

/// Family 6, model 3, stepping 3: a Pentium II (Klamath) class signature; also the value
/// EDX holds after reset (SDM Vol. 3A §9.1.4).
pub const SIGNATURE: u32 = 0x0000_0633;

/// Our own vendor string, 12 bytes in EBX, EDX, ECX order.
pub const VENDOR: &[u8; 12] = b"V386 VirtCPU";

/// Leaf 1 EDX feature bits (SDM Vol. 2A Table 3-11).
pub mod feature {
    /// x87 FPU on chip.
    pub const FPU: u32 = 1 << 0;
    /// Page-size extension: 4 MiB pages (CR4.PSE).
    pub const PSE: u32 = 1 << 3;
    /// RDTSC and CR4.TSD.
    pub const TSC: u32 = 1 << 4;
    /// RDMSR / WRMSR.
    pub const MSR: u32 = 1 << 5;
    /// Physical-address extension: PAE paging (CR4.PAE), 36-bit physical addresses.
    pub const PAE: u32 = 1 << 6;
    /// CMPXCHG8B.
    pub const CX8: u32 = 1 << 8;
    /// SYSENTER / SYSEXIT.
    pub const SEP: u32 = 1 << 11;
    /// Global pages (CR4.PGE).
    pub const PGE: u32 = 1 << 13;
    /// CMOVcc.
    pub const CMOV: u32 = 1 << 15;
    /// An on-chip local APIC: set only when the platform has one ([`super::Cpu::apic_present`]).
    pub const APIC: u32 = 1 << 9;
}

/// What this CPU implements today.
pub const FEATURES_EDX: u32 = feature::FPU
    | feature::PSE
    | feature::TSC
    | feature::MSR
    | feature::PAE
    | feature::CX8
    | feature::SEP
    | feature::PGE
    | feature::CMOV;

/// Leaf 80000001H EDX bits (SDM Vol. 2A Table 3-8 entry for 80000001H).
pub mod ext_feature {
    /// Execute-disable bit (IA32_EFER.NXE, XD in PAE entries).
    pub const NX: u32 = 1 << 20;
}

/// The V386 extension's leaves (docs/v386.md §2): the range's highest leaf and the
/// signature "V386" in EBX, then the feature word.
pub const V386_LEAF: u32 = 0x8386_0000;
/// "V386" as CPUID returns text: the first character in the low byte of EBX.
pub const V386_SIGNATURE: u32 = u32::from_le_bytes(*b"V386");

/// Leaf 8386_0001H EDX bits (docs/v386.md §2).
pub mod v386_feature {
    /// CR4.PSI: privileged sensitive instructions.
    pub const PSI: u32 = 1 << 0;
    /// V386 mode: EFLAGS.VX, the VCB, VMENTER, VCALL.
    pub const V386: u32 = 1 << 1;
    /// 2 MiB SLT pages.
    pub const SLT_LARGE: u32 = 1 << 2;
    /// Accessed and dirty bits in SLT entries.
    pub const SLT_AD: u32 = 1 << 3;
    /// TLB entries survive entry and exit (tags are TLB banks, `cpu/v386/mod.rs`).
    pub const TAGGED_TLB: u32 = 1 << 4;
    /// The preemption timer.
    pub const PTIMER: u32 = 1 << 5;
    /// EXEC_CONTROLS.FPU_SWAP.
    pub const FPU_SWAP: u32 = 1 << 6;
    /// Everything this processor implements.
    pub const ALL: u32 = PSI | V386 | SLT_LARGE | SLT_AD | TAGGED_TLB | PTIMER | FPU_SWAP;
}

/// The highest extended leaf.
pub const MAX_EXT_LEAF: u32 = 0x8000_0001;

impl Cpu {
    /// Leaf 1 EDX: what the core implements, plus the APIC when the platform has one.
    fn features_edx(&self) -> u32 {
        FEATURES_EDX | if self.apic_present { feature::APIC } else { 0 }
    }

    /// The four registers CPUID returns for `leaf`.
    pub fn cpuid(&self, leaf: u32) -> [u32; 4] {
        let word = |i: usize| u32::from_le_bytes([VENDOR[i], VENDOR[i + 1], VENDOR[i + 2], VENDOR[i + 3]]);
        match leaf {
            // Max standard leaf; vendor in EBX, EDX, ECX.
            0 => [1, word(0), word(8), word(4)],
            1 => [SIGNATURE, 0, 0, self.features_edx()],
            // Extended leaves (SDM Vol. 2A "CPUID"): the maximum, then the feature flags.
            0x8000_0000 => [MAX_EXT_LEAF, 0, 0, 0],
            0x8000_0001 => [0, 0, 0, ext_feature::NX],
            V386_LEAF => [V386_LEAF + 1, V386_SIGNATURE, 0, 0],
            // VCB revision, highest VTAG, GPA and HPA widths, features (docs/v386.md §2).
            0x8386_0001 => [
                crate::cpu::v386::vcb::REVISION,
                crate::cpu::v386::checks::MAX_VTAG as u32,
                crate::cpu::v386::slt::GPA_BITS | crate::cpu::mmu::MAXPHYADDR << 8,
                v386_feature::ALL,
            ],
            // Above the maximum leaf Intel CPUs return the highest basic leaf's data.
            _ => [SIGNATURE, 0, 0, self.features_edx()],
        }
    }
}
