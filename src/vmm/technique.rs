//! [`Technique`]: how the VMM runs one VM, chosen per VM (docs/techniques.md). The
//! dispatcher gives every VM its turns the same way; what a turn is depends on this:
//! `Cpu::vm_run` on the V386 extension, or the software monitor of `crate::monitor`
//! on the classic processor, with or without the extension's privileged sensitive
//! instructions, or scanning the guest's code before it runs.

use crate::monitor::Options;
use serde::{Deserialize, Serialize};

/// The ways of virtualizing a guest, in the order of the technique lab's columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Technique {
    /// 1: the guest on the bare emulated machine, no VMM: the baseline (the lab's first
    /// column; not a VM).
    Emulation,
    /// 2: the guest kernel deprivileged (ring 1/3), shadow page tables, no V386: the
    /// classic x86, where sensitive unprivileged instructions go wrong silently.
    TrapAndEmulate,
    /// 3: as 2 with CR4.PSI: sensitive unprivileged instructions fault (docs/v386.md §3).
    #[serde(rename = "trap-and-emulate-psi")]
    TrapAndEmulatePsi,
    /// 4: scan-before-execute, as Plex86 did: breakpoints before sensitive instructions.
    ScanBeforeExecute,
    /// 5: a guest built to call the VMM by VCALL hypercalls, on the V386 extension.
    Paravirtual,
    /// 6: hardware assist: a V386 VM with second-level translation.
    #[default]
    V386,
}

impl Technique {
    pub const ALL: [Technique; 6] = [
        Technique::Emulation,
        Technique::TrapAndEmulate,
        Technique::TrapAndEmulatePsi,
        Technique::ScanBeforeExecute,
        Technique::Paravirtual,
        Technique::V386,
    ];

    /// Its column number in the lab, 1–6.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// Its name in tables and on the page.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Emulation => "Emulation",
            Technique::TrapAndEmulate => "Trap-and-emulate",
            Technique::TrapAndEmulatePsi => "T&E + PSI",
            Technique::ScanBeforeExecute => "Scan-before-exec",
            Technique::Paravirtual => "Paravirtual",
            Technique::V386 => "V386",
        }
    }

    /// Its name in machine descriptions (the JSON `technique` field).
    pub fn key(self) -> &'static str {
        match self {
            Technique::Emulation => "emulation",
            Technique::TrapAndEmulate => "trap-and-emulate",
            Technique::TrapAndEmulatePsi => "trap-and-emulate-psi",
            Technique::ScanBeforeExecute => "scan-before-execute",
            Technique::Paravirtual => "paravirtual",
            Technique::V386 => "v386",
        }
    }

    /// The technique named `key` ([`Technique::key`]).
    pub fn from_key(key: &str) -> Option<Technique> {
        Technique::ALL.into_iter().find(|t| t.key() == key)
    }

    /// The software monitor's options, for the techniques it runs (2–4).
    pub fn monitor_options(self) -> Option<Options> {
        match self {
            Technique::TrapAndEmulate => Some(Options::default()),
            Technique::TrapAndEmulatePsi => Some(Options { psi: true, scan: false }),
            Technique::ScanBeforeExecute => Some(Options { psi: false, scan: true }),
            _ => None,
        }
    }
}
