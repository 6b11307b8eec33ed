//! 00.0: the Intel 82441FX PCI and Memory Controller (PMC) of the 440FX chipset, the host
//! bridge. What matters to firmware here is the shadow-RAM control: the seven
//! Programmable Attribute Map registers decide, for thirteen ranges between C0000h and
//! FFFFFh, whether CPU reads go to DRAM or to the ROM behind PCI/ISA and whether writes go
//! to DRAM or are dropped. SeaBIOS unlocks the ranges, copies itself from the ROM into the
//! RAM underneath, then write-protects them again (`src/fw/shadow.c`). The SMRAM control
//! register is stored with its lock rule; there is no SMM, so it has no other effect.
//!
//! Source: Intel "440FX PCIset 82441FX PCI and Memory Controller (PMC) and 82442FX Data
//! Bus Accelerator (DBX)" datasheet (order 290549), §3.2 "PCI Configuration Registers":
//! identity and PCICMD/PCISTS defaults, PAM[6:0] at 59h–5Fh (bits 1–0 and 5–4 are RE/WE of
//! the low and high range; bits 3–2 and 7–6 reserved; PAM0's low nibble reserved), SMRAM
//! at 72h (default 02h). The memory controller's other registers (50h–58h configuration,
//! DRAM control and timing; 60h–67h DRAM row boundaries; 68h fixed DRAM hole; 70h–71h
//! latency timers) are stored and read back without effect; DRAM is whatever the machine
//! gives.

use super::config::*;
use super::PciFunction;
use serde::{Deserialize, Serialize};

/// PAM0 (F0000h–FFFFFh in its high nibble); PAM1–PAM6 follow at 5Ah–5Fh.
pub const I440FX_PAM0: u8 = 0x59;
/// Number of PAM registers.
pub const PAM_REGISTERS: usize = 7;
/// SMRAM control register.
pub const I440FX_SMRAM: u8 = 0x72;

/// SMRAM bit 6, D_OPEN: SMRAM visible outside SMM.
pub const SMRAM_D_OPEN: u8 = 1 << 6;
/// SMRAM bit 5, D_CLS: data references to SMRAM go to PCI.
pub const SMRAM_D_CLS: u8 = 1 << 5;
/// SMRAM bit 4, D_LCK: locks D_OPEN (cleared), D_LCK and G_SMRAME until power-on reset.
pub const SMRAM_D_LCK: u8 = 1 << 4;
/// SMRAM bit 3, G_SMRAME: SMRAM functions enabled.
pub const SMRAM_G_SMRAME: u8 = 1 << 3;
/// SMRAM bits 2–0, C_BASE_SEG: hard-wired 010b (A0000h–BFFFFh).
pub const SMRAM_C_BASE_SEG: u8 = 0x02;

/// Where accesses to one PAM range go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PamMode {
    /// RE: reads are served by DRAM (else by the ROM/PCI behind the bridge).
    pub read_ram: bool,
    /// WE: writes go to DRAM (else to PCI, where nothing takes them).
    pub write_ram: bool,
}

/// One range a PAM nibble controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamRange {
    /// First physical address.
    pub base: u32,
    /// Length in bytes.
    pub size: u32,
}

/// The thirteen ranges in [`HostBridge::pam`] order: C0000h–EFFFFh in 16 KiB steps (PAM1
/// low, PAM1 high, … PAM6 high), then F0000h–FFFFFh (PAM0 high).
pub const PAM_RANGES: [PamRange; 13] = {
    let mut r = [PamRange { base: 0xf0000, size: 0x10000 }; 13];
    let mut i = 0;
    while i < 12 {
        r[i] = PamRange { base: 0xc0000 + 0x4000 * i as u32, size: 0x4000 };
        i += 1;
    }
    r
};

/// The 82441FX host bridge function.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostBridge {
    cfg: ConfigSpace,
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBridge {
    /// Power-on state: 8086:1237, class 06:00:00 (host bridge), revision 02h, PCICMD 0006h
    /// (memory and bus-master enables hard-wired on; parity and SERR# responses writable),
    /// PCISTS 0280h, every PAM range mapped to ROM, SMRAM 02h.
    pub fn new() -> Self {
        let mut cfg = ConfigSpace::new(0x8086, 0x1237, 0x06_00_00, 0x02, 0x00);
        cfg.set_command(CMD_MEMORY | CMD_BUS_MASTER, CMD_PARITY | CMD_SERR);
        cfg.set_status(STATUS_FAST_B2B | STATUS_DEVSEL_MEDIUM);
        cfg.set_interrupt_pin(0);
        cfg.set_wmask_byte(PCI_LATENCY_TIMER, 0xf8);
        // Memory controller registers, stored only.
        cfg.add_register(0x50, 9, 0);
        cfg.add_register(0x60, 9, 0);
        cfg.add_register(0x70, 2, 0);
        // PAM0's low nibble is reserved; the others have RE/WE in bits 0–1 and 4–5.
        cfg.set_wmask_byte(I440FX_PAM0, 0x30);
        for i in 1..PAM_REGISTERS as u8 {
            cfg.set_wmask_byte(I440FX_PAM0 + i, 0x33);
        }
        cfg.set_byte(I440FX_SMRAM, SMRAM_C_BASE_SEG);
        cfg.set_wmask_byte(I440FX_SMRAM, SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME);
        Self { cfg }
    }

    /// Sets the subsystem IDs at 2Ch (the 82441FX has none: they read 0). SeaBIOS prints
    /// "Running on QEMU (i440fx)" only when they are 1AF4:1100; nothing else depends on it.
    pub fn set_subsystem(&mut self, vendor: u16, device: u16) {
        self.cfg.set_subsystem(vendor, device);
    }

    /// The raw PAM registers, PAM0 first.
    pub fn pam_registers(&self) -> [u8; PAM_REGISTERS] {
        core::array::from_fn(|i| self.cfg.byte(I440FX_PAM0 + i as u8))
    }

    /// The routing of the thirteen ranges of [`PAM_RANGES`].
    pub fn pam(&self) -> [PamMode; 13] {
        let regs = self.pam_registers();
        let nibble = |v: u8| PamMode { read_ram: v & 1 != 0, write_ram: v & 2 != 0 };
        core::array::from_fn(|i| {
            if i < 12 {
                let reg = regs[1 + i / 2];
                nibble(if i % 2 == 0 { reg } else { reg >> 4 })
            } else {
                nibble(regs[0] >> 4)
            }
        })
    }

    /// The routing of the range containing physical address `addr`, or `None` outside
    /// C0000h–FFFFFh.
    pub fn pam_mode(&self, addr: u32) -> Option<PamMode> {
        let i = PAM_RANGES.iter().position(|r| addr.wrapping_sub(r.base) < r.size)?;
        Some(self.pam()[i])
    }

    /// The SMRAM control register.
    pub fn smram(&self) -> u8 {
        self.cfg.byte(I440FX_SMRAM)
    }

    /// Whether SMRAM at A0000h–BFFFFh is open to non-SMM accesses (G_SMRAME and D_OPEN):
    /// CPU accesses there would reach DRAM rather than the VGA.
    pub fn smram_open(&self) -> bool {
        let s = self.smram();
        s & SMRAM_G_SMRAME != 0 && s & SMRAM_D_OPEN != 0
    }
}

impl PciFunction for HostBridge {
    fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cfg
    }

    /// SMRAM lock rule: once D_LCK is 1, D_OPEN is cleared and D_OPEN, D_LCK and G_SMRAME
    /// become read-only; only D_CLS stays writable.
    fn config_changed(&mut self, _change: ConfigChange) {
        let s = self.cfg.byte(I440FX_SMRAM);
        if s & SMRAM_D_LCK != 0 {
            self.cfg.set_byte(I440FX_SMRAM, s & !SMRAM_D_OPEN);
            self.cfg.set_wmask_byte(I440FX_SMRAM, SMRAM_D_CLS);
        }
    }

    fn reset(&mut self) {
        let sub = (self.cfg.word(PCI_SUBSYSTEM_VENDOR_ID), self.cfg.word(PCI_SUBSYSTEM_ID));
        *self = Self::new();
        self.cfg.set_subsystem(sub.0, sub.1);
    }
}
