//! The machine: one [`Machine`] owns all emulated state — the CPU, RAM and the devices —
//! and is the API the command-line runner, the tests and the wasm façade drive.
//! No shared pointers: the CPU borrows the bus (RAM + devices) for each run slice.
//!
//! Where behaviour lives:
//! - this file: configuration, loading images and firmware, reset, and the run loop that
//!   slices CPU time between device events;
//! - `board.rs`: the firmware, the devices, the memory map, the port map and interrupt
//!   routing: everything of a PC but its RAM ([`Board`]);
//! - `pcbus.rs`: the CPU's [`Bus`]: the machine's RAM and its board ([`PcBus`]), or a
//!   VM's RAM lent with its board ([`BoardBus`]);
//! - `clock.rs`: virtual time, deterministic or following the host ([`Clock`]);
//! - `spec.rs`: a machine described as data and built in one call ([`MachineSpec`]);
//! - `snapshot.rs`: [`Machine::save`] and [`Machine::restore`] (the format: [`crate::snapshot`]).

use serde::{Deserialize, Serialize};
mod board;
mod clock;
mod pcbus;
pub(crate) mod snapshot;
mod spec;

pub use board::{Board, PageKind, FIRMWARE_LOG_PORT, FPU_BUSY_PORT, PAGE_SIZE};
pub use clock::{Clock, ClockMode, NS_PER_INSTRUCTION};
pub use pcbus::{BoardBus, PcBus};
pub use spec::{MachineSpec, SpecError};

use crate::bus::Bus;
use crate::cpu::{Cpu, StopReason};
use crate::devices::vga::TextScreen;
use alloc::vec::Vec;
use core::fmt;

/// The longest run slice, in instructions: how long a guest may run before the machine
/// looks at devices again when no timer is due sooner (serial output latency, host input).
const MAX_SLICE: u64 = 200_000;

/// How a raw (`--flat`) image is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// Real mode: CS = 0 and IP = entry when entry < 64 KiB, else CS = entry >> 4.
    Real,
    /// 32-bit protected mode, paging off, flat 4 GiB code (selector 0x08) and data (0x10)
    /// segments loaded into the descriptor caches (no GDT in memory), ESP = load address.
    Pm32,
}

/// What kind of kernel [`Machine::load_kernel`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    Linux,
    Multiboot,
}

/// What the machine is built with.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Guest RAM in MiB.
    pub mem_mb: u32,
    /// Port of the isa-debug-exit device, if one is attached.
    pub debug_exit_port: Option<u16>,
    /// Where time comes from.
    pub clock: ClockMode,
    /// The RTC's date and time at power-on, in Unix seconds (deterministic runs use a
    /// fixed one).
    pub rtc_start: u64,
}

/// 2026-01-01T00:00:00Z: the RTC's power-on time unless the configuration says otherwise.
pub const DEFAULT_RTC_START: u64 = 1_767_225_600;

impl Default for MachineConfig {
    fn default() -> Self {
        Self { mem_mb: 32, debug_exit_port: None, clock: ClockMode::Deterministic, rtc_start: DEFAULT_RTC_START }
    }
}

/// Host errors: bad configuration or images. Never caused by what a guest does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// RAM size outside 1..=3072 MiB.
    BadMemorySize(u32),
    /// The image does not fit in RAM at the load address.
    ImageTooLarge { addr: u32, len: usize },
    /// A real-mode entry point above 1 MiB.
    BadEntry(u32),
    /// A BIOS image whose size is not a multiple of 64 KiB up to 1 MiB.
    BadBiosSize(usize),
    /// An option ROM (VGA BIOS) without the 55 AA signature or larger than 128 KiB.
    BadOptionRom(usize),
    /// A `-boot` order with letters other than a, c, d, or repeated ones.
    BadBootOrder(alloc::string::String),
    /// A floppy image the controller cannot take.
    Floppy(crate::devices::fdc::FdcError),
    /// A disk or CD image the IDE controller cannot take.
    Ide(crate::devices::ide::IdeError),
    /// A `-kernel` image with a Linux boot header that cannot be loaded.
    Linux(crate::boot::linux::BootError),
    /// A `-kernel` image that is neither a Linux bzImage nor a loadable Multiboot kernel.
    Multiboot(crate::boot::multiboot::MultibootError),
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineError::BadMemorySize(m) => write!(f, "memory size {m} MiB is outside 1..=3072"),
            MachineError::ImageTooLarge { addr, len } => {
                write!(f, "an image of {len} bytes at {addr:#x} does not fit in RAM")
            }
            MachineError::BadEntry(e) => write!(f, "real-mode entry point {e:#x} is above 1 MiB"),
            MachineError::BadBiosSize(n) => {
                write!(f, "a BIOS image of {n} bytes: it must be a multiple of 64 KiB, at most 1 MiB")
            }
            MachineError::Floppy(e) => write!(f, "floppy: {e}"),
            MachineError::BadBootOrder(o) => {
                write!(f, "boot order '{o}': use up to three different letters of a (floppy), c (disk), d (CD)")
            }
            MachineError::Ide(e) => write!(f, "disk: {e}"),
            MachineError::Linux(e) => write!(f, "Linux kernel: {e}"),
            MachineError::Multiboot(e) => write!(f, "not a bzImage, and as a Multiboot kernel: {e}"),
            MachineError::BadOptionRom(n) => {
                write!(f, "an option ROM of {n} bytes without the 55 AA signature or larger than 128 KiB")
            }
        }
    }
}

/// The whole emulated PC.
#[derive(Serialize, Deserialize)]
pub struct Machine {
    pub cpu: Cpu,
    pub bus: PcBus,
}

impl Machine {
    pub fn new(cfg: &MachineConfig) -> Result<Self, MachineError> {
        if cfg.mem_mb == 0 || cfg.mem_mb > 3072 {
            return Err(MachineError::BadMemorySize(cfg.mem_mb));
        }
        let bus =
            PcBus::new(cfg.mem_mb as usize * 1024 * 1024, Clock::new(cfg.clock), cfg.debug_exit_port, cfg.rtc_start);
        let mut m = Self { cpu: Cpu::new(), bus };
        m.cpu.apic_present = true;
        m.write_cmos_config();
        Ok(m)
    }

    /// Copy `image` into RAM at physical `addr`.
    pub fn load(&mut self, image: &[u8], addr: u32) -> Result<(), MachineError> {
        let end = addr as usize + image.len();
        if end > self.bus.ram.len() {
            return Err(MachineError::ImageTooLarge { addr, len: image.len() });
        }
        self.bus.ram[addr as usize..end].copy_from_slice(image);
        self.cpu.icache.invalidate_all();
        Ok(())
    }

    /// Load a raw binary and point the CPU at its entry, as `--flat` does.
    pub fn load_flat(&mut self, image: &[u8], load_addr: u32, entry: u32, mode: StartMode) -> Result<(), MachineError> {
        self.load(image, load_addr)?;
        match mode {
            StartMode::Real => {
                if entry >= 0x10_0000 {
                    return Err(MachineError::BadEntry(entry));
                }
                let (cs, ip) =
                    if entry < 0x1_0000 { (0, entry) } else { ((entry >> 4) as u16 & 0xf000, entry & 0xffff) };
                self.cpu.start_real(cs, ip as u16);
            }
            StartMode::Pm32 => self.cpu.start_flat32(entry, load_addr),
        }
        Ok(())
    }

    /// Until the BIOS exists: load a floppy's boot sector at 0000:7C00 and start it in real
    /// mode with DL = 0, as a BIOS would.
    pub fn boot_floppy(&mut self, image: &[u8]) -> Result<(), MachineError> {
        let n = image.len().min(512);
        self.load(&image[..n], 0x7c00)?;
        self.cpu.start_real(0, 0x7c00);
        self.cpu.regs[crate::cpu::EDX] = 0;
        Ok(())
    }

    /// Load the system BIOS (mapped at the top of the 4 GiB space and, its last 128 KiB,
    /// below 1 MiB) and an optional VGA BIOS (at 0xC0000), and reset the CPU so it starts
    /// in the BIOS. The image must be a multiple of 64 KiB and at most 1 MiB.
    pub fn load_bios(&mut self, bios: &[u8], vga_bios: Option<&[u8]>) -> Result<(), MachineError> {
        if bios.is_empty() || bios.len() % 0x1_0000 != 0 || bios.len() > 0x10_0000 {
            return Err(MachineError::BadBiosSize(bios.len()));
        }
        if let Some(v) = vga_bios {
            if v.len() < 3 || v[0] != 0x55 || v[1] != 0xaa || v.len() > 0x2_0000 {
                return Err(MachineError::BadOptionRom(v.len()));
            }
            // SeaBIOS loads a PCI device's option ROM from the fw_cfg file named after its
            // vendor and device IDs (the VGA function is 1234:1111).
            self.add_firmware_file("pci1234,1111.rom", v.to_vec());
        }
        self.firmware_config();
        self.bus.bios = bios.to_vec();
        self.cpu.icache.invalidate_all();
        self.reset();
        Ok(())
    }

    /// Load a kernel to start without a BIOS, as QEMU's `-kernel`, `-initrd`, `-append`: a
    /// Linux bzImage through the Linux boot protocol (with `initrd` as its initramfs), or a
    /// Multiboot v1 kernel (with `initrd` as its one module). The CPU starts at the
    /// kernel's entry point in 32-bit protected mode.
    pub fn load_kernel(
        &mut self,
        kernel: &[u8],
        initrd: Option<&[u8]>,
        cmdline: &str,
    ) -> Result<KernelKind, MachineError> {
        use crate::boot::{linux, multiboot, PC_RESERVED};
        let state = if kernel.get(0x202..0x206) == Some(b"HdrS") {
            let s = linux::load_linux(&mut self.bus.ram, kernel, initrd, cmdline, &PC_RESERVED)
                .map_err(MachineError::Linux)?;
            (s, KernelKind::Linux)
        } else {
            let modules: Vec<multiboot::Module> =
                initrd.map(|d| multiboot::Module { data: d, cmdline: "initrd" }).into_iter().collect();
            let s = multiboot::load_multiboot(&mut self.bus.ram, kernel, cmdline, &modules, &PC_RESERVED)
                .map_err(MachineError::Multiboot)?;
            (s, KernelKind::Multiboot)
        };
        state.0.apply(&mut self.cpu);
        Ok(state.1)
    }

    /// Put a floppy image in drive A: (or B:) and record the drive type in the CMOS.
    pub fn insert_floppy(&mut self, drive: u8, image: Vec<u8>) -> Result<(), MachineError> {
        self.bus.fdc.insert(drive, image).map_err(MachineError::Floppy)?;
        let types = self.bus.fdc.cmos_drive_types();
        self.bus.rtc.set_cmos(0x10, types);
        // Equipment byte: bit 0 = floppy drives present, bits 7-6 = count - 1.
        let drives = (types >> 4 != 0) as u8 + (types & 0xf != 0) as u8;
        let equip = self.bus.rtc.cmos(0x14) & !0xc1;
        self.bus.rtc.set_cmos(0x14, equip | if drives > 0 { 1 | (drives - 1) << 6 } else { 0 });
        Ok(())
    }

    /// Attach a hard-disk image as the primary master (`index` 0) or the next positions
    /// (1: primary slave, 2: secondary master, 3: secondary slave), as QEMU's -hda..-hdd.
    pub fn attach_disk(&mut self, index: usize, image: Vec<u8>) -> Result<(), MachineError> {
        self.bus.ide.attach_disk(index / 2, index % 2 == 1, image).map_err(MachineError::Ide)
    }

    /// Attach a CD image (ISO 9660, 2048-byte sectors) as the secondary master, where
    /// QEMU's -cdrom puts it.
    pub fn attach_cdrom(&mut self, iso: Vec<u8>) -> Result<(), MachineError> {
        self.bus.ide.attach_cdrom(1, false, iso).map_err(MachineError::Ide)
    }

    /// The BIOS boot order, as QEMU's `-boot` letters: `a` floppy, `c` first hard disk,
    /// `d` CD-ROM. Stored in the CMOS bytes SeaBIOS reads on emulators (0x3D: first and
    /// second device, 0x38 bits 7-4: third; 1 floppy, 2 disk, 3 CD).
    pub fn set_boot_order(&mut self, order: &str) -> Result<(), MachineError> {
        let mut codes = Vec::new();
        for c in order.chars() {
            let code = match c {
                'a' => 1,
                'c' => 2,
                'd' => 3,
                _ => return Err(MachineError::BadBootOrder(order.into())),
            };
            if codes.len() == 3 || codes.contains(&code) {
                return Err(MachineError::BadBootOrder(order.into()));
            }
            codes.push(code);
        }
        codes.resize(3, 0);
        self.bus.rtc.set_cmos(0x3d, codes[0] | codes[1] << 4);
        let flags = self.bus.rtc.cmos(0x38) & 0x0f;
        self.bus.rtc.set_cmos(0x38, flags | codes[2] << 4);
        Ok(())
    }

    /// The fw_cfg files SeaBIOS reads (see devices/fw_cfg.rs): the RAM map, no boot menu
    /// prompt, a short wait before retrying a failed boot, and its console mirrored on COM1
    /// so the BIOS screen also appears on the serial line.
    fn firmware_config(&mut self) {
        let ram = self.bus.ram.len() as u64;
        let e820 = crate::devices::fw_cfg::encode_e820(&crate::devices::fw_cfg::e820_ram_map(ram, 0xe000_0000));
        self.add_firmware_file("etc/e820", e820);
        self.add_firmware_file("etc/show-boot-menu", 0u16.to_le_bytes().to_vec());
        self.add_firmware_file("etc/boot-fail-wait", 1000u32.to_le_bytes().to_vec());
        self.add_firmware_file("etc/sercon-port", 0x3f8u16.to_le_bytes().to_vec());
    }

    /// Add (or ignore if already there) a fw_cfg file.
    fn add_firmware_file(&mut self, name: &str, data: Vec<u8>) {
        if self.bus.fw_cfg.file(name).is_none() {
            // The directory has room for far more files than the machine adds.
            let _ = self.bus.fw_cfg.add_file(name, data);
        }
    }

    /// The reset line: the CPU restarts at F000:FFF0 (SDM Vol. 3A §9.1.1); RAM and the
    /// devices keep their state, as on a PC whose keyboard controller pulses RESET.
    pub fn reset(&mut self) {
        self.cpu.reset();
        // RST# also resets the chipset: shadow RAM is off again, so the BIOS runs from ROM.
        self.bus.pci.reset();
    }

    /// The CMOS bytes a BIOS reads for its configuration (IBM PC/AT Technical Reference,
    /// "CMOS RAM Address Map"): base and extended memory, the same above 16 MiB in 64 KiB
    /// units (0x34/0x35, as SeaBIOS and Bochs BIOSes read it), the equipment byte.
    fn write_cmos_config(&mut self) {
        let ram = self.bus.ram.len() as u64;
        let rtc = &mut self.bus.rtc;
        // Base memory: 640 KiB.
        rtc.set_cmos(0x15, (640 & 0xff) as u8);
        rtc.set_cmos(0x16, (640 >> 8) as u8);
        // Extended memory above 1 MiB in KiB, capped at 0xFFFF (0x17/0x18 and 0x30/0x31).
        let ext_kib = (ram.saturating_sub(0x10_0000) / 1024).min(0xffff) as u16;
        for (lo, hi) in [(0x17, 0x18), (0x30, 0x31)] {
            rtc.set_cmos(lo, ext_kib as u8);
            rtc.set_cmos(hi, (ext_kib >> 8) as u8);
        }
        // Memory above 16 MiB in 64 KiB blocks.
        let above16 = (ram.saturating_sub(0x100_0000) / 0x1_0000).min(0xffff) as u16;
        rtc.set_cmos(0x34, above16 as u8);
        rtc.set_cmos(0x35, (above16 >> 8) as u8);
        // Equipment: VGA (bits 5-4 = 00: EGA/VGA), a math coprocessor (bit 1) only once the
        // FPU is there; no floppy drives until one is inserted.
        rtc.set_cmos(0x14, 0x00);
        // One processor (SeaBIOS waits for CMOS 0x5F + 1 CPUs to answer its SIPI).
        rtc.set_cmos(0x5f, 0);
    }

    /// Run until `max_instructions` more have retired or something stops the CPU. The CPU
    /// runs in slices that end when a device needs attention (a timer edge), so interrupts
    /// arrive on time; a slice also ends early when the guest programs a timer to fire
    /// sooner or FERR# changes ([`StopReason::Yield`], never returned from here). A halted
    /// CPU lets virtual time pass to the next device event.
    pub fn run(&mut self, max_instructions: u64) -> StopReason {
        // Time spent halted counts against the budget as the instructions that would have
        // run meanwhile, so a guest halted with a timer it never unmasks still returns.
        let mut idle_steps = 0u64;
        let end = self.cpu.icount.saturating_add(max_instructions);
        loop {
            let left = end.saturating_sub(self.cpu.icount).saturating_sub(idle_steps);
            if left == 0 {
                return StopReason::BudgetSpent;
            }
            self.bus.set_icount(self.cpu.icount);
            self.update_devices();
            let now = self.bus.now();
            let slice = match self.bus.next_event() {
                Some(t) if t > now => ((t - now) / NS_PER_INSTRUCTION).max(1),
                Some(_) => 1,
                None => MAX_SLICE,
            }
            .min(MAX_SLICE)
            .min(left);
            let r = self.cpu.run(&mut self.bus, slice);
            self.bus.set_icount(self.cpu.icount);
            match r {
                // A yield only asks for the devices to be looked at and the next slice to be
                // sized again, which the loop does.
                StopReason::BudgetSpent | StopReason::Yield => {}
                StopReason::Halted => {
                    self.update_devices();
                    if !self.cpu.flags.if_() {
                        return StopReason::Halted;
                    }
                    // Any interrupt the update made deliverable wakes the CPU: the 8259A's,
                    // or one in the local APIC's IRR (its timer, an I/O APIC message).
                    if self.bus.interrupt_pending() {
                        continue;
                    }
                    let Some(t) = self.bus.next_event() else { return StopReason::Halted };
                    if self.bus.clock.mode() == ClockMode::Wall {
                        // Real time must pass: give the host its thread back.
                        return StopReason::BudgetSpent;
                    }
                    let now = self.bus.now();
                    let skip = (t.saturating_sub(now) / NS_PER_INSTRUCTION).max(1);
                    idle_steps += skip;
                    self.bus.clock.idle_until(t.max(now + 1), self.cpu.icount);
                    // The TSC counts through HLT at its constant rate (SDM Vol. 3B §18.17):
                    // the skipped time, one tick an instruction's worth.
                    self.cpu.msr.tsc_offset = self.cpu.msr.tsc_offset.wrapping_add(skip);
                }
                StopReason::Reset => self.reset(),
                other => return other,
            }
        }
    }

    /// Bring the devices up to now, with the lines between the CPU and the board first:
    /// a write to port F0h since the last look acknowledges FERR# (IGNNE#), then IRQ13
    /// follows FERR# (SDM Vol. 1 §8.7 and Appendix D: MS-DOS compatibility mode).
    fn update_devices(&mut self) {
        if self.bus.take_ferr_ack() {
            self.cpu.fpu_ack_irq13();
        }
        self.bus.set_ferr(self.cpu.fpu_irq13_pending());
        self.bus.update();
    }

    /// Wall-clock mode: the host's monotonic time now, in nanoseconds (call before `run`).
    pub fn set_host_time(&mut self, ns: u64) {
        self.bus.clock.set_host_time(ns, self.cpu.icount);
    }

    /// The CPU is halted waiting for an interrupt (a host may sleep until the next event).
    pub fn is_idle(&self) -> bool {
        self.cpu.halted
    }

    /// Bytes the guest wrote to the debug console (port 0xE9) since the last call.
    pub fn take_debugcon(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.bus.debugcon.out)
    }

    /// What the firmware (SeaBIOS) logged on its debug port since the last call.
    pub fn take_firmware_log(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.bus.firmware_log.out)
    }

    /// Bytes the guest sent on the first serial port (COM1) since the last call.
    pub fn take_serial(&mut self) -> Vec<u8> {
        self.bus.com1.take_output()
    }

    /// Bytes typed on the first serial port's line, for the guest to receive.
    pub fn serial_input(&mut self, bytes: &[u8]) {
        self.bus.com1.receive(bytes);
    }

    /// What the VGA shows, as text (characters and attributes).
    pub fn vga_text(&self) -> TextScreen {
        self.bus.vga.text_snapshot()
    }
}
