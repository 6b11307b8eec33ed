//! [`MachineSpec`]: a whole machine described as data — memory, time, firmware, media,
//! kernel, boot order — and built in one call. The wasm façade deserializes it from the
//! page's config object (serde-wasm-bindgen; images arrive as `Uint8Array`, hence
//! `serde_bytes`), and tests build machines from it natively.
//!
//! What it may hold, and how it boots:
//! - `bios` (+ optional `vgaBios`): SeaBIOS boots from `fda`, `hda` or `cdrom` in `boot`
//!   order (QEMU's letters; its default: floppy, disk, CD);
//! - `kernel` (+ `initrd`, `cmdline`): a Linux bzImage or Multiboot kernel started without
//!   a BIOS, as `-kernel`;
//! - `fda` alone: its boot sector is started at 0000:7C00 without a BIOS, as the CLI does.

use super::{ClockMode, Machine, MachineConfig, MachineError, DEFAULT_RTC_START};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;

/// A machine as the page (or a test) describes it. Field names are the JSON/JS ones.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MachineSpec {
    /// Guest RAM in MiB (default 32).
    pub memory_mb: Option<u32>,
    /// `"deterministic"` (default: time follows retired instructions) or `"wall"`.
    pub clock: Option<String>,
    /// The RTC's power-on time in Unix seconds (default 2026-01-01).
    pub rtc_start: Option<u64>,
    /// The system BIOS image (SeaBIOS's `bios.bin`).
    #[serde(with = "serde_bytes")]
    pub bios: Option<Vec<u8>>,
    /// The VGA BIOS image (SeaVGABIOS's `vgabios-stdvga.bin`).
    #[serde(with = "serde_bytes")]
    pub vga_bios: Option<Vec<u8>>,
    /// A floppy image for drive A:.
    #[serde(with = "serde_bytes")]
    pub fda: Option<Vec<u8>>,
    /// A hard-disk image, primary master.
    #[serde(with = "serde_bytes")]
    pub hda: Option<Vec<u8>>,
    /// A CD image (ISO 9660), secondary master.
    #[serde(with = "serde_bytes")]
    pub cdrom: Option<Vec<u8>>,
    /// Boot order as QEMU's `-boot` letters (`a` floppy, `c` disk, `d` CD).
    pub boot: Option<String>,
    /// A Linux bzImage or Multiboot kernel.
    #[serde(with = "serde_bytes")]
    pub kernel: Option<Vec<u8>>,
    /// The initramfs (Linux) or first module (Multiboot).
    #[serde(with = "serde_bytes")]
    pub initrd: Option<Vec<u8>>,
    /// The kernel command line.
    pub cmdline: Option<String>,
    /// Port of an isa-debug-exit device, if any.
    pub debug_exit_port: Option<u16>,
}

/// Why a [`MachineSpec`] could not be built: a host error, never the guest's doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// `clock` is neither "deterministic" nor "wall".
    BadClock(String),
    /// Nothing to boot: no BIOS, no kernel, no floppy.
    NothingToBoot,
    /// A kernel and a BIOS at once: one of the two boot paths must be chosen.
    KernelAndBios,
    /// Disk or CD images without a BIOS to boot them.
    MediaWithoutBios,
    /// The machine rejected the named part.
    Machine { part: &'static str, err: MachineError },
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::BadClock(c) => write!(f, "clock '{c}': use \"deterministic\" or \"wall\""),
            SpecError::NothingToBoot => f.write_str("nothing to boot: give a bios, a kernel or a floppy (fda)"),
            SpecError::KernelAndBios => f.write_str("a kernel and a bios at once: choose one boot path"),
            SpecError::MediaWithoutBios => f.write_str("hda and cdrom images need a bios to boot them"),
            SpecError::Machine { part, err } => write!(f, "{part}: {err}"),
        }
    }
}

impl MachineSpec {
    /// The field names a config object may use. serde-wasm-bindgen reads only the fields a
    /// struct names, so the façade checks a config's keys against this list to report a
    /// misspelt option instead of ignoring it.
    pub const FIELDS: &'static [&'static str] = &[
        "memoryMb",
        "clock",
        "rtcStart",
        "bios",
        "vgaBios",
        "fda",
        "hda",
        "cdrom",
        "boot",
        "kernel",
        "initrd",
        "cmdline",
        "debugExitPort",
    ];

    /// The time source this spec asks for.
    pub fn clock_mode(&self) -> Result<ClockMode, SpecError> {
        match self.clock.as_deref() {
            None | Some("deterministic") => Ok(ClockMode::Deterministic),
            Some("wall") => Ok(ClockMode::Wall),
            Some(other) => Err(SpecError::BadClock(other.into())),
        }
    }

    /// Build the machine, ready to run from its first instruction. The images move into
    /// the devices (a CD image is not held twice).
    pub fn build(self) -> Result<Machine, SpecError> {
        let at = |part: &'static str| move |err: MachineError| SpecError::Machine { part, err };
        let cfg = MachineConfig {
            mem_mb: self.memory_mb.unwrap_or(32),
            debug_exit_port: self.debug_exit_port,
            clock: self.clock_mode()?,
            rtc_start: self.rtc_start.unwrap_or(DEFAULT_RTC_START),
        };
        let mut m = Machine::new(&cfg).map_err(at("memoryMb"))?;
        match (&self.bios, &self.kernel) {
            (Some(_), Some(_)) => return Err(SpecError::KernelAndBios),
            (Some(bios), None) => {
                m.load_bios(bios, self.vga_bios.as_deref()).map_err(at("bios"))?;
                let default = if self.fda.is_some() { "acd" } else { "cda" };
                m.set_boot_order(self.boot.as_deref().unwrap_or(default)).map_err(at("boot"))?;
                if let Some(img) = self.fda {
                    m.insert_floppy(0, img).map_err(at("fda"))?;
                }
                if let Some(img) = self.hda {
                    m.attach_disk(0, img).map_err(at("hda"))?;
                }
                if let Some(img) = self.cdrom {
                    m.attach_cdrom(img).map_err(at("cdrom"))?;
                }
            }
            (None, Some(kernel)) => {
                m.load_kernel(kernel, self.initrd.as_deref(), self.cmdline.as_deref().unwrap_or(""))
                    .map_err(at("kernel"))?;
            }
            (None, None) => {
                if self.hda.is_some() || self.cdrom.is_some() {
                    return Err(SpecError::MediaWithoutBios);
                }
                let Some(img) = &self.fda else { return Err(SpecError::NothingToBoot) };
                m.boot_floppy(img).map_err(at("fda"))?;
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::StopReason;

    fn boot_sector(code: &[u8]) -> Vec<u8> {
        let mut img = alloc::vec![0u8; 512];
        img[..code.len()].copy_from_slice(code);
        img[510] = 0x55;
        img[511] = 0xaa;
        img
    }

    #[test]
    fn floppy_alone_boots_without_a_bios() {
        // mov al, 'K' ; out 0xe9, al ; hlt
        let spec = MachineSpec { fda: Some(boot_sector(&[0xb0, b'K', 0xe6, 0xe9, 0xf4])), ..Default::default() };
        let mut m = spec.build().unwrap();
        assert_eq!(m.run(100), StopReason::Halted);
        assert_eq!(m.take_debugcon(), b"K");
    }

    /// FIELDS must list exactly the struct's fields: count the `pub` fields in this file.
    #[test]
    fn field_list_is_complete() {
        let src = include_str!("spec.rs");
        let body = &src[src.find("pub struct MachineSpec {").unwrap()..];
        let body = &body[..body.find("\n}").unwrap()];
        let n = body.lines().filter(|l| l.trim_start().starts_with("pub ") && l.contains(':')).count();
        assert_eq!(n, MachineSpec::FIELDS.len());
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(MachineSpec::default().build().err(), Some(SpecError::NothingToBoot));
        let s = MachineSpec { clock: Some("fast".into()), fda: Some(boot_sector(&[])), ..Default::default() };
        assert_eq!(s.build().err().unwrap().to_string(), "clock 'fast': use \"deterministic\" or \"wall\"");
        let s = MachineSpec { hda: Some(alloc::vec![0; 512]), ..Default::default() };
        assert_eq!(s.build().err(), Some(SpecError::MediaWithoutBios));
        let s = MachineSpec { bios: Some(alloc::vec![0; 100]), ..Default::default() };
        let e = s.build().err().unwrap();
        assert!(e.to_string().starts_with("bios: a BIOS image of 100 bytes"), "{e}");
        let s = MachineSpec { memory_mb: Some(0), fda: Some(boot_sector(&[])), ..Default::default() };
        assert!(s.build().err().unwrap().to_string().starts_with("memoryMb: memory size 0"));
    }
}
