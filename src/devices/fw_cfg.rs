//! QEMU's firmware configuration device (fw_cfg) as SeaBIOS uses it on the PC: a 16-bit
//! selector at 510h picks an item, the data port at 511h reads it byte by byte, and the
//! optional DMA interface at 514h copies whole items into guest memory. It is how the
//! machine tells SeaBIOS its RAM map, CPU count, boot order, serial console and extra
//! option ROMs.
//!
//! Interface (QEMU `docs/specs/fw_cfg.rst`): writing the selector sets the current item
//! and resets the data offset to 0; each data read returns the next byte and advances the
//! offset; past the item's end reads return 0, as does an item that does not exist.
//! Writes to the data port are ignored (the spec's read-only behaviour since QEMU 2.4).
//! Selector bit 14 (write channel) is ignored for lookup; bit 15 selects the architecture
//! items. Item 0019h is the file directory: a big-endian count, then 64-byte entries of
//! big-endian size, big-endian selector, two reserved bytes and a NUL-padded 56-byte name;
//! files get selectors from 0020h up in the order they are added and are listed sorted by
//! name. The DMA interface is off unless [`FwCfg::enable_dma`] is called, because it needs
//! the machine's help (see below); FW_CFG_ID reports bit 0 (traditional interface) and bit
//! 1 only when DMA is on.
//!
//! DMA: the guest writes the physical address of a 16-byte big-endian `FWCfgDmaAccess`
//! (control, length, address) to the 64-bit big-endian address register at 514h–51Bh; the
//! write to the low half (518h) starts the operation. A device never touches memory itself,
//! so [`FwCfg::write`] only records the request; the machine must call [`FwCfg::run_dma`]
//! with its memory right after that `OUT` (check [`FwCfg::dma_pending`]). Control bits:
//! 0 error, 1 read, 2 skip, 3 select (item in bits 31–16), 4 write. Reads copy the item
//! (zeros past its end), skips advance the offset, writes fail (all items here are
//! read-only); the control word is then rewritten as 0, or 1 on error. Reading the
//! address register returns the signature "QEMU CFG".
//!
//! What SeaBIOS 1.16 reads (`src/fw/paravirt.c` and the `romfile_*` users), and what this
//! device provides:
//! - 0000h signature "QEMU" — detection (`qemu_cfg_detect`). Provided.
//! - 0001h ID — bit 1 makes SeaBIOS use DMA for everything. Provided.
//! - 0002h UUID (16 bytes) — SMBIOS system UUID. Provided (zeros unless set).
//! - 0003h RAM size (u64 LE) — not read by SeaBIOS (it uses "etc/e820"); provided.
//! - 0004h NOGRAPHIC (u16) — non-zero makes SeaBIOS add "etc/sercon-port" = 3F8h itself
//!   when the machine gave none. Provided, 0 unless set.
//! - 0005h NB_CPUS (u16) — CPUs present; SeaBIOS waits until that many answered its SIPI
//!   (the larger of this and CMOS 5Fh + 1). Provided.
//! - 000Dh NUMA (u64 node count, then per-CPU and per-node u64s) — 0 nodes: no SRAT.
//! - 000Eh BOOT_MENU (u16) — legacy backing of "etc/show-boot-menu". Provided (0).
//! - 000Fh MAX_CPUS (u16) — "etc/max-cpus": MADT/SSDT processor count. Provided.
//! - 0019h FILE_DIR — the file directory. Provided.
//! - 8000h ACPI_TABLES (u16 count, then u16-length-prefixed tables → "acpi/tableN", added
//!   to SeaBIOS's own RSDT). Provided empty.
//! - 8001h SMBIOS_ENTRIES (u16 count, legacy SMBIOS fields) — provided empty.
//! - 8002h IRQ0_OVERRIDE (1 byte) — "etc/irq0-override": MADT maps IRQ0 to GSI 2.
//!   Provided, 1.
//! - 8003h E820_TABLE (u32 count of reservations) — read only without "etc/e820".
//!   Provided empty.
//!
//! Files SeaBIOS looks up by name (the machine adds the ones it wants with
//! [`FwCfg::add_file`]; integers are little-endian of 1, 2, 4 or 8 bytes, anything else is
//! ignored by SeaBIOS's `romfile_loadint`):
//! - "etc/e820": the RAM map, 20-byte entries (u64 address, u64 length, u32 type). Read
//!   before anything else; when present SeaBIOS ignores the CMOS memory sizes. Build it
//!   with [`e820_ram_map`] and [`encode_e820`].
//! - "bootorder": newline-separated device paths such as `/pci@i0cf8/ide@1,1/drive@0/disk@0`
//!   and `HALT`; without it SeaBIOS orders by CMOS 38h/3Dh.
//! - "etc/boot-fail-wait" (u32, ms; default 60000): wait before rebooting when no device
//!   boots.
//! - "etc/show-boot-menu" (default 1: the F12 prompt and its wait), "etc/boot-menu-wait"
//!   (ms, default 2500), "etc/boot-menu-key", "etc/boot-menu-message".
//! - "etc/sercon-port" (u16 port, e.g. 3F8h): SeaBIOS's serial console mirrors the screen
//!   there. "etc/screen-and-debug" (default 1): BIOS messages also go to the debug port.
//! - "genroms/*": option ROMs SeaBIOS runs (e.g. a Linux loader); "vgaroms/*" and
//!   "pciVVVV,DDDD.rom": VGA/PCI option ROMs ("pci1234,1111.rom" is how the stdvga BIOS is
//!   handed over — see `pci/vga.rs`).
//! - "etc/optionroms-checksum", "etc/pci-optionrom-exec", "etc/s3-resume-vga-init",
//!   "etc/threads", "etc/ps2-keyboard-spinup", "etc/extra-pci-roots",
//!   "etc/reserved-memory-end", "etc/msr_feature_control", "etc/system-states",
//!   "etc/pvpanic-port": tuning knobs with defaults that suit this machine.
//! - "etc/table-loader", "etc/acpi/rsdp", "etc/acpi/tables", "etc/smbios/smbios-tables",
//!   "etc/smbios/smbios-anchor": QEMU-built ACPI/SMBIOS tables. Not needed: without
//!   "etc/table-loader" SeaBIOS builds its own ACPI tables for the PIIX4 (and its own
//!   SMBIOS, MP table and $PIR).
//!
//! Nothing here is taken from QEMU's implementation; the layouts are those of the spec
//! and of SeaBIOS's reader.

use crate::bus::IoSize;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Selector register (16-bit, write-only).
pub const FW_CFG_PORT_SELECTOR: u16 = 0x510;
/// Data register (8-bit).
pub const FW_CFG_PORT_DATA: u16 = 0x511;
/// DMA address register, high half (big-endian 64-bit register at 514h–51Bh).
pub const FW_CFG_PORT_DMA_HIGH: u16 = 0x514;
/// DMA address register, low half; a write here starts the transfer.
pub const FW_CFG_PORT_DMA_LOW: u16 = 0x518;

/// Item selectors ("keys").
pub mod key {
    /// "QEMU".
    pub const SIGNATURE: u16 = 0x0000;
    /// Feature bitmap (u32 LE).
    pub const ID: u16 = 0x0001;
    /// Machine UUID (16 bytes).
    pub const UUID: u16 = 0x0002;
    /// RAM size (u64 LE).
    pub const RAM_SIZE: u16 = 0x0003;
    /// No graphical console (u16 LE).
    pub const NOGRAPHIC: u16 = 0x0004;
    /// CPUs present at boot (u16 LE).
    pub const NB_CPUS: u16 = 0x0005;
    /// NUMA description (u64 LE node count, …).
    pub const NUMA: u16 = 0x000d;
    /// Boot menu enabled (u16 LE).
    pub const BOOT_MENU: u16 = 0x000e;
    /// Highest possible CPU count (u16 LE).
    pub const MAX_CPUS: u16 = 0x000f;
    /// The file directory.
    pub const FILE_DIR: u16 = 0x0019;
    /// First selector given to files.
    pub const FILE_FIRST: u16 = 0x0020;
    /// Legacy ACPI tables (x86).
    pub const ACPI_TABLES: u16 = 0x8000;
    /// Legacy SMBIOS entries (x86).
    pub const SMBIOS_ENTRIES: u16 = 0x8001;
    /// IRQ0 is wired to GSI 2 (x86, 1 byte here as SeaBIOS reads it).
    pub const IRQ0_OVERRIDE: u16 = 0x8002;
    /// Legacy e820 reservations (x86, u32 LE count).
    pub const E820_TABLE: u16 = 0x8003;
}

/// Selector bit 14: write channel (ignored for lookup).
const SELECTOR_WRITE: u16 = 0x4000;
/// FW_CFG_ID bit 0: traditional interface.
pub const FW_CFG_VERSION: u32 = 1 << 0;
/// FW_CFG_ID bit 1: DMA interface.
pub const FW_CFG_VERSION_DMA: u32 = 1 << 1;
/// What the DMA address register reads: "QEMU CFG".
const DMA_SIGNATURE: [u8; 8] = *b"QEMU CFG";

/// DMA control bit 0: error.
pub const DMA_CTL_ERROR: u32 = 1 << 0;
/// DMA control bit 1: read.
pub const DMA_CTL_READ: u32 = 1 << 1;
/// DMA control bit 2: skip.
pub const DMA_CTL_SKIP: u32 = 1 << 2;
/// DMA control bit 3: select the item in bits 31–16 first.
pub const DMA_CTL_SELECT: u32 = 1 << 3;
/// DMA control bit 4: write.
pub const DMA_CTL_WRITE: u32 = 1 << 4;

/// Longest file name, excluding the terminating NUL (the directory's name field is 56
/// bytes).
pub const FILE_NAME_MAX: usize = 55;
/// Size of one directory entry.
const DIR_ENTRY_SIZE: usize = 64;

/// Guest physical memory as the DMA interface needs it; the machine implements it over
/// its RAM. Addresses outside memory read as whatever the machine decides and writes
/// there are dropped; neither may panic.
pub trait DmaMemory {
    /// Copies `buf.len()` bytes from guest-physical `addr`.
    fn read_phys(&mut self, addr: u64, buf: &mut [u8]);
    /// Copies `data` to guest-physical `addr`.
    fn write_phys(&mut self, addr: u64, data: &[u8]);
    /// Zeroes `len` bytes from guest-physical `addr` (a read past an item's end). The
    /// default writes 4 KiB chunks; implementations should skip what lies outside memory,
    /// since a guest may ask for up to 4 GiB.
    fn fill_zero(&mut self, addr: u64, len: u64) {
        let zeros = [0u8; 4096];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.write_phys(addr.wrapping_add(done), &zeros[..n]);
            done += n as u64;
        }
    }
}

/// Flat RAM from address 0 (tests, simple machines): out-of-range bytes read 0xff and
/// are not written.
impl DmaMemory for [u8] {
    fn read_phys(&mut self, addr: u64, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = usize::try_from(addr.wrapping_add(i as u64)).ok().and_then(|a| self.get(a)).copied().unwrap_or(0xff);
        }
    }

    fn write_phys(&mut self, addr: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            if let Some(slot) = usize::try_from(addr.wrapping_add(i as u64)).ok().and_then(|a| self.get_mut(a)) {
                *slot = *b;
            }
        }
    }

    fn fill_zero(&mut self, addr: u64, len: u64) {
        let size = self.len() as u64;
        let (end, wrapped) = addr.overflowing_add(len);
        let stop = if wrapped { size } else { end.min(size) };
        if addr < stop {
            self[addr as usize..stop as usize].fill(0);
        }
        // A range that wraps past 2^64 continues at 0.
        if wrapped {
            self[..end.min(size) as usize].fill(0);
        }
    }
}

/// Why [`FwCfg::add_file`] refused a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FwCfgError {
    /// The name is empty, longer than [`FILE_NAME_MAX`] bytes or contains a NUL.
    BadName,
    /// The item is larger than the directory's 32-bit size field.
    TooLarge,
    /// All file selectors (0020h–3FFFh) are in use.
    DirectoryFull,
}

/// An e820 address range type (ACPI 6 §15, "System Address Map Interfaces").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E820Type {
    /// 1: usable RAM.
    Ram = 1,
    /// 2: reserved.
    Reserved = 2,
    /// 3: ACPI reclaimable.
    Acpi = 3,
    /// 4: ACPI NVS.
    Nvs = 4,
    /// 5: unusable.
    Unusable = 5,
}

/// One "etc/e820" entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    /// Physical start.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
    /// Range type.
    pub kind: E820Type,
}

/// The RAM map QEMU's PC gives SeaBIOS: RAM from 0 up to `min(ram_size, below_4g_limit)`,
/// and the rest, if any, from 4 GiB. The holes at 640 KiB–1 MiB and for the BIOS are not
/// listed: SeaBIOS carves them out itself. `below_4g_limit` is where the PCI hole starts
/// (QEMU uses E000_0000h once RAM reaches it; SeaBIOS puts PCI memory above the RAM).
pub fn e820_ram_map(ram_size: u64, below_4g_limit: u64) -> Vec<E820Entry> {
    let below = ram_size.min(below_4g_limit);
    let mut map = vec![E820Entry { addr: 0, len: below, kind: E820Type::Ram }];
    if ram_size > below {
        map.push(E820Entry { addr: 1 << 32, len: ram_size - below, kind: E820Type::Ram });
    }
    map
}

/// Encodes entries as "etc/e820" wants them: 20 bytes each, little-endian u64 address,
/// u64 length, u32 type (SeaBIOS `struct e820_reservation`).
pub fn encode_e820(entries: &[E820Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 20);
    for e in entries {
        out.extend_from_slice(&e.addr.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
        out.extend_from_slice(&(e.kind as u32).to_le_bytes());
    }
    out
}

/// A named file: its selector and contents.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct File {
    name: String,
    key: u16,
}

/// The fw_cfg device.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FwCfg {
    /// Items by selector (legacy keys and files alike), sorted by key.
    items: Vec<(u16, Vec<u8>)>,
    /// Files in the order they were added (their keys count up from 0020h).
    files: Vec<File>,
    selector: u16,
    offset: u32,
    dma: bool,
    /// The DMA address register (big-endian bytes, 514h first).
    dma_address: [u8; 8],
    /// A DMA request waiting for [`FwCfg::run_dma`]: the descriptor's address.
    dma_pending: Option<u64>,
}

impl FwCfg {
    /// The device with the fixed items for a machine with `ram_size` bytes of RAM and
    /// `cpus` CPUs (NB_CPUS = MAX_CPUS = `cpus`): signature, ID (traditional interface),
    /// UUID 0, RAM size, NOGRAPHIC 0, NUMA with no nodes, BOOT_MENU 0, an empty file
    /// directory, no legacy ACPI/SMBIOS/e820 items, IRQ0 override on.
    pub fn new(ram_size: u64, cpus: u16) -> Self {
        let mut f = Self {
            items: Vec::new(),
            files: Vec::new(),
            selector: 0,
            offset: 0,
            dma: false,
            dma_address: [0; 8],
            dma_pending: None,
        };
        f.set_item(key::SIGNATURE, b"QEMU".to_vec());
        f.set_item(key::ID, FW_CFG_VERSION.to_le_bytes().to_vec());
        f.set_item(key::UUID, vec![0; 16]);
        f.set_item(key::RAM_SIZE, ram_size.to_le_bytes().to_vec());
        f.set_item(key::NOGRAPHIC, 0u16.to_le_bytes().to_vec());
        f.set_item(key::NB_CPUS, cpus.to_le_bytes().to_vec());
        f.set_item(key::NUMA, 0u64.to_le_bytes().to_vec());
        f.set_item(key::BOOT_MENU, 0u16.to_le_bytes().to_vec());
        f.set_item(key::MAX_CPUS, cpus.to_le_bytes().to_vec());
        f.set_item(key::ACPI_TABLES, 0u16.to_le_bytes().to_vec());
        f.set_item(key::SMBIOS_ENTRIES, 0u16.to_le_bytes().to_vec());
        f.set_item(key::IRQ0_OVERRIDE, vec![1]);
        f.set_item(key::E820_TABLE, 0u32.to_le_bytes().to_vec());
        f.rebuild_directory();
        f
    }

    /// Turns the DMA interface on: FW_CFG_ID gains bit 1 and ports 514h–51Bh decode. The
    /// machine must then call [`FwCfg::run_dma`] whenever [`FwCfg::dma_pending`] is true
    /// after an `OUT`, before the guest runs on, or SeaBIOS waits forever.
    pub fn enable_dma(&mut self) {
        self.dma = true;
        self.set_item(key::ID, (FW_CFG_VERSION | FW_CFG_VERSION_DMA).to_le_bytes().to_vec());
    }

    /// Whether the DMA interface is on.
    pub fn dma_enabled(&self) -> bool {
        self.dma
    }

    /// Sets (or replaces) the item at `key`. For the fixed keys; files go through
    /// [`FwCfg::add_file`] so they appear in the directory.
    pub fn set_item(&mut self, key: u16, data: Vec<u8>) {
        let key = key & !SELECTOR_WRITE;
        match self.items.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => self.items[i].1 = data,
            Err(i) => self.items.insert(i, (key, data)),
        }
    }

    /// The item at `key`, if any.
    pub fn item(&self, key: u16) -> Option<&[u8]> {
        let key = key & !SELECTOR_WRITE;
        self.items.binary_search_by_key(&key, |(k, _)| *k).ok().map(|i| self.items[i].1.as_slice())
    }

    /// Sets the machine UUID (SMBIOS type 1).
    pub fn set_uuid(&mut self, uuid: [u8; 16]) {
        self.set_item(key::UUID, uuid.to_vec());
    }

    /// Sets NOGRAPHIC: with it SeaBIOS mirrors its console on COM1 (3F8h) unless the machine
    /// gave "etc/sercon-port".
    pub fn set_nographic(&mut self, nographic: bool) {
        self.set_item(key::NOGRAPHIC, u16::from(nographic).to_le_bytes().to_vec());
    }

    /// Sets BOOT_MENU (the legacy backing of "etc/show-boot-menu"; a file of that name wins).
    pub fn set_boot_menu(&mut self, enabled: bool) {
        self.set_item(key::BOOT_MENU, u16::from(enabled).to_le_bytes().to_vec());
    }

    /// Sets IRQ0_OVERRIDE: whether the PIT's IRQ0 reaches the I/O APIC on GSI 2.
    pub fn set_irq0_override(&mut self, override_: bool) {
        self.set_item(key::IRQ0_OVERRIDE, vec![u8::from(override_)]);
    }

    /// Adds the file `name` with `data`, or replaces its contents if it exists (keeping its
    /// selector). Returns the selector.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<u16, FwCfgError> {
        if name.is_empty() || name.len() > FILE_NAME_MAX || name.contains('\0') {
            return Err(FwCfgError::BadName);
        }
        if u32::try_from(data.len()).is_err() {
            return Err(FwCfgError::TooLarge);
        }
        let key = match self.files.iter().find(|f| f.name == name) {
            Some(f) => f.key,
            None => {
                let key = key::FILE_FIRST + self.files.len() as u16;
                if key >= SELECTOR_WRITE {
                    return Err(FwCfgError::DirectoryFull);
                }
                self.files.push(File { name: String::from(name), key });
                key
            }
        };
        self.set_item(key, data);
        self.rebuild_directory();
        Ok(key)
    }

    /// Adds a 16-bit little-endian integer file (e.g. "etc/sercon-port", "etc/show-boot-menu").
    pub fn add_u16_file(&mut self, name: &str, value: u16) -> Result<u16, FwCfgError> {
        self.add_file(name, value.to_le_bytes().to_vec())
    }

    /// Adds a 32-bit little-endian integer file (e.g. "etc/boot-fail-wait").
    pub fn add_u32_file(&mut self, name: &str, value: u32) -> Result<u16, FwCfgError> {
        self.add_file(name, value.to_le_bytes().to_vec())
    }

    /// The contents of file `name`, if present.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        let f = self.files.iter().find(|f| f.name == name)?;
        self.item(f.key)
    }

    /// Regenerates item 0019h from the file list, entries sorted by name.
    fn rebuild_directory(&mut self) {
        let mut files: Vec<&File> = self.files.iter().collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut dir = Vec::with_capacity(4 + files.len() * DIR_ENTRY_SIZE);
        dir.extend_from_slice(&(files.len() as u32).to_be_bytes());
        for f in files {
            let size = self.item(f.key).map_or(0, |d| d.len() as u32);
            dir.extend_from_slice(&size.to_be_bytes());
            dir.extend_from_slice(&f.key.to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut name = [0u8; DIR_ENTRY_SIZE - 8];
            name[..f.name.len()].copy_from_slice(f.name.as_bytes());
            dir.extend_from_slice(&name);
        }
        self.set_item(key::FILE_DIR, dir);
    }

    /// Back to the power-on state of the registers: selector 0, offset 0, DMA address 0, no
    /// pending DMA. Items are kept.
    pub fn reset(&mut self) {
        self.selector = 0;
        self.offset = 0;
        self.dma_address = [0; 8];
        self.dma_pending = None;
    }

    /// The current selector.
    pub fn selector(&self) -> u16 {
        self.selector
    }

    /// Selects an item: the data offset returns to 0.
    fn select(&mut self, selector: u16) {
        self.selector = selector;
        self.offset = 0;
    }

    /// The next data byte of the current item (0 past its end or for a missing item).
    fn next_byte(&mut self) -> u8 {
        let b = self.item(self.selector).and_then(|d| d.get(self.offset as usize)).copied().unwrap_or(0);
        self.offset = self.offset.saturating_add(1);
        b
    }

    /// Whether `port` is decoded here: 510h–511h, and 514h–51Bh with DMA on.
    pub fn owns_port(&self, port: u16) -> bool {
        port == FW_CFG_PORT_SELECTOR
            || port == FW_CFG_PORT_DATA
            || (self.dma && port.wrapping_sub(FW_CFG_PORT_DMA_HIGH) < 8)
    }

    /// `IN` from `port`. A read of the data port returns the next `size` bytes of the item
    /// (the spec's N-byte read). The selector is write-only and, like ports not decoded
    /// here, answers all ones. The DMA address register reads "QEMU CFG".
    pub fn read(&mut self, port: u16, size: IoSize) -> u32 {
        if port == FW_CFG_PORT_DATA {
            let mut value = 0u32;
            for i in 0..size as u32 {
                value |= u32::from(self.next_byte()) << (8 * i);
            }
            return value;
        }
        let mut value = 0u32;
        for i in 0..size as u16 {
            let r = port.wrapping_add(i).wrapping_sub(FW_CFG_PORT_DMA_HIGH);
            let byte = if self.dma && r < 8 { DMA_SIGNATURE[usize::from(r)] } else { 0xff };
            value |= u32::from(byte) << (8 * i);
        }
        value
    }

    /// `OUT` to `port`. A word or dword write to 510h sets the selector (low 16 bits); a
    /// byte write there sets it to that byte. Writes to the data port are ignored. Writes to
    /// the DMA address register store its bytes; one that reaches its last byte (51Bh)
    /// starts a transfer, to be carried out by [`FwCfg::run_dma`].
    pub fn write(&mut self, port: u16, size: IoSize, value: u32) {
        if port == FW_CFG_PORT_SELECTOR {
            let sel = match size {
                IoSize::Byte => value & 0xff,
                _ => value & 0xffff,
            };
            self.select(sel as u16);
            return;
        }
        if !self.dma {
            return;
        }
        let mut trigger = false;
        for i in 0..size as u16 {
            let r = port.wrapping_add(i).wrapping_sub(FW_CFG_PORT_DMA_HIGH);
            if r < 8 {
                self.dma_address[usize::from(r)] = (value >> (8 * i)) as u8;
                trigger |= r == 7;
            }
        }
        if trigger {
            self.dma_pending = Some(u64::from_be_bytes(self.dma_address));
            self.dma_address = [0; 8];
        }
    }

    /// Whether a DMA transfer waits for [`FwCfg::run_dma`].
    pub fn dma_pending(&self) -> bool {
        self.dma_pending.is_some()
    }

    /// Carries out the pending DMA transfer, if any, against `mem`: reads the descriptor,
    /// performs select/read/skip (write fails: items are read-only) and stores the result
    /// in the descriptor's control word.
    pub fn run_dma<M: DmaMemory + ?Sized>(&mut self, mem: &mut M) {
        let Some(desc) = self.dma_pending.take() else { return };
        let mut raw = [0u8; 16];
        mem.read_phys(desc, &mut raw);
        let control = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let length = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        let address = u64::from_be_bytes([raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]]);
        if control & DMA_CTL_SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let mut error = false;
        if control & DMA_CTL_READ != 0 {
            self.dma_read(mem, address, length);
        } else if control & DMA_CTL_WRITE != 0 {
            error = true;
        } else if control & DMA_CTL_SKIP != 0 {
            self.offset = self.offset.saturating_add(length);
        }
        let status: u32 = if error { DMA_CTL_ERROR } else { 0 };
        mem.write_phys(desc, &status.to_be_bytes());
    }

    /// Copies `length` bytes of the current item from the data offset to `address`, zeros
    /// past the item's end, and advances the offset.
    fn dma_read<M: DmaMemory + ?Sized>(&mut self, mem: &mut M, address: u64, length: u32) {
        let start = self.offset as usize;
        let data = self.item(self.selector).unwrap_or(&[]);
        let avail = data.len().saturating_sub(start).min(length as usize);
        if avail > 0 {
            let chunk = data[start..start + avail].to_vec();
            mem.write_phys(address, &chunk);
        }
        let rest = u64::from(length) - avail as u64;
        if rest > 0 {
            mem.fill_zero(address.wrapping_add(avail as u64), rest);
        }
        self.offset = self.offset.saturating_add(length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::IoSize::{Byte, Dword, Word};

    fn select(f: &mut FwCfg, key: u16) {
        f.write(FW_CFG_PORT_SELECTOR, Word, u32::from(key));
    }

    fn read_bytes(f: &mut FwCfg, n: usize) -> Vec<u8> {
        (0..n).map(|_| f.read(FW_CFG_PORT_DATA, Byte) as u8).collect()
    }

    fn read_item(f: &mut FwCfg, key: u16, n: usize) -> Vec<u8> {
        select(f, key);
        read_bytes(f, n)
    }

    /// The directory as SeaBIOS parses it: (name, selector, size).
    fn directory(f: &mut FwCfg) -> Vec<(String, u16, u32)> {
        select(f, key::FILE_DIR);
        let count = u32::from_be_bytes(read_bytes(f, 4).try_into().unwrap());
        (0..count)
            .map(|_| {
                let e = read_bytes(f, 64);
                let size = u32::from_be_bytes(e[0..4].try_into().unwrap());
                let sel = u16::from_be_bytes(e[4..6].try_into().unwrap());
                assert_eq!(&e[6..8], &[0, 0]);
                let end = e[8..].iter().position(|&b| b == 0).unwrap();
                (String::from_utf8(e[8..8 + end].to_vec()).unwrap(), sel, size)
            })
            .collect()
    }

    #[test]
    fn signature_and_id() {
        let mut f = FwCfg::new(128 << 20, 1);
        assert_eq!(read_item(&mut f, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut f, key::ID, 4), [1, 0, 0, 0]);
        // Past the end: zeros.
        assert_eq!(read_bytes(&mut f, 3), [0, 0, 0]);
        f.enable_dma();
        select(&mut f, key::ID);
        assert_eq!(f.read(FW_CFG_PORT_DATA, Dword), 3);
        assert!(f.owns_port(0x514) && f.owns_port(0x51b) && !f.owns_port(0x51c) && !f.owns_port(0x512));
    }

    #[test]
    fn fixed_items() {
        let mut f = FwCfg::new(0x1_2000_0000, 2);
        assert_eq!(read_item(&mut f, key::RAM_SIZE, 8), 0x1_2000_0000u64.to_le_bytes());
        assert_eq!(read_item(&mut f, key::NB_CPUS, 2), [2, 0]);
        assert_eq!(read_item(&mut f, key::MAX_CPUS, 2), [2, 0]);
        assert_eq!(read_item(&mut f, key::NOGRAPHIC, 2), [0, 0]);
        assert_eq!(read_item(&mut f, key::BOOT_MENU, 2), [0, 0]);
        assert_eq!(read_item(&mut f, key::NUMA, 8), [0; 8]);
        assert_eq!(read_item(&mut f, key::UUID, 16), [0; 16]);
        assert_eq!(read_item(&mut f, key::ACPI_TABLES, 2), [0, 0]);
        assert_eq!(read_item(&mut f, key::SMBIOS_ENTRIES, 2), [0, 0]);
        assert_eq!(read_item(&mut f, key::IRQ0_OVERRIDE, 1), [1]);
        assert_eq!(read_item(&mut f, key::E820_TABLE, 4), [0; 4]);
        f.set_nographic(true);
        f.set_boot_menu(true);
        f.set_irq0_override(false);
        f.set_uuid([7; 16]);
        assert_eq!(read_item(&mut f, key::NOGRAPHIC, 2), [1, 0]);
        assert_eq!(read_item(&mut f, key::BOOT_MENU, 2), [1, 0]);
        assert_eq!(read_item(&mut f, key::IRQ0_OVERRIDE, 1), [0]);
        assert_eq!(read_item(&mut f, key::UUID, 16), [7; 16]);
        // A missing item reads as zeros.
        assert_eq!(read_item(&mut f, 0x0010, 4), [0; 4]);
        assert_eq!(read_item(&mut f, 0x8123, 4), [0; 4]);
        // The write-channel bit does not change which item is read.
        assert_eq!(read_item(&mut f, key::SIGNATURE | 0x4000, 4), b"QEMU");
        assert_eq!(read_item(&mut f, key::IRQ0_OVERRIDE | 0x4000, 1), [0]);
    }

    #[test]
    fn selector_resets_the_offset() {
        let mut f = FwCfg::new(0, 1);
        select(&mut f, key::SIGNATURE);
        assert_eq!(read_bytes(&mut f, 2), b"QE");
        select(&mut f, key::SIGNATURE);
        assert_eq!(read_bytes(&mut f, 4), b"QEMU");
        // Writing the data port does not move the offset or change the item.
        select(&mut f, key::SIGNATURE);
        f.write(FW_CFG_PORT_DATA, Byte, 0x41);
        assert_eq!(read_bytes(&mut f, 4), b"QEMU");
        // A byte write to the selector selects that byte's key.
        f.write(FW_CFG_PORT_SELECTOR, Byte, 0x01);
        assert_eq!(f.selector(), 1);
        assert_eq!(read_bytes(&mut f, 1), [1]);
        // A dword selector write uses the low 16 bits.
        f.write(FW_CFG_PORT_SELECTOR, Dword, 0xdead_0000);
        assert_eq!(read_bytes(&mut f, 4), b"QEMU");
        // Wide data reads return consecutive bytes.
        select(&mut f, key::SIGNATURE);
        assert_eq!(f.read(FW_CFG_PORT_DATA, Word), u32::from(u16::from_le_bytes(*b"QE")));
        assert_eq!(f.read(FW_CFG_PORT_DATA, Word), u32::from(u16::from_le_bytes(*b"MU")));
        select(&mut f, key::SIGNATURE);
        assert_eq!(f.read(FW_CFG_PORT_DATA, Dword), u32::from_le_bytes(*b"QEMU"));
        // The selector is write-only; other ports are not decoded.
        assert_eq!(f.read(FW_CFG_PORT_SELECTOR, Word), 0xffff);
        assert_eq!(f.read(0x514, Dword), 0xffff_ffff, "DMA off");
        f.reset();
        assert_eq!((f.selector(), read_bytes(&mut f, 4).as_slice()), (0, &b"QEMU"[..]));
    }

    #[test]
    fn file_directory_and_files() {
        let mut f = FwCfg::new(64 << 20, 1);
        assert!(directory(&mut f).is_empty());
        let e820 = f.add_file("etc/e820", encode_e820(&e820_ram_map(64 << 20, 0xe000_0000))).unwrap();
        let order = f.add_file("bootorder", b"/pci@i0cf8/ide@1,1/drive@0/disk@0\nHALT".to_vec()).unwrap();
        let wait = f.add_u32_file("etc/boot-fail-wait", 5000).unwrap();
        let sercon = f.add_u16_file("etc/sercon-port", 0x3f8).unwrap();
        let menu = f.add_u16_file("etc/show-boot-menu", 0).unwrap();
        assert_eq!([e820, order, wait, sercon, menu], [0x20, 0x21, 0x22, 0x23, 0x24]);
        let dir = directory(&mut f);
        let names: Vec<&str> = dir.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["bootorder", "etc/boot-fail-wait", "etc/e820", "etc/sercon-port", "etc/show-boot-menu"]);
        assert_eq!(dir[0], (String::from("bootorder"), 0x21, 38));
        assert_eq!(dir[2], (String::from("etc/e820"), 0x20, 20));
        // Reading the files by their selectors.
        assert_eq!(read_item(&mut f, 0x22, 4), 5000u32.to_le_bytes());
        assert_eq!(read_item(&mut f, 0x23, 2), [0xf8, 0x03]);
        let e = read_item(&mut f, 0x20, 20);
        assert_eq!(u64::from_le_bytes(e[0..8].try_into().unwrap()), 0);
        assert_eq!(u64::from_le_bytes(e[8..16].try_into().unwrap()), 64 << 20);
        assert_eq!(u32::from_le_bytes(e[16..20].try_into().unwrap()), 1);
        assert_eq!(read_bytes(&mut f, 2), [0, 0], "past the end");
        // Replacing a file keeps its selector and updates the directory size.
        assert_eq!(f.add_file("bootorder", b"HALT".to_vec()), Ok(0x21));
        assert_eq!(directory(&mut f)[0], (String::from("bootorder"), 0x21, 4));
        assert_eq!(f.file("bootorder"), Some(&b"HALT"[..]));
        assert_eq!(f.file("nope"), None);
        // SeaBIOS's early e820 scan reads entries of 64 bytes after a 4-byte count.
        f.add_file("genroms/linuxboot.bin", vec![0x55, 0xaa, 1]).unwrap();
        assert_eq!(directory(&mut f).len(), 6);
    }

    #[test]
    fn file_names_are_checked() {
        let mut f = FwCfg::new(0, 1);
        assert_eq!(f.add_file("", vec![]), Err(FwCfgError::BadName));
        assert_eq!(f.add_file("a\0b", vec![]), Err(FwCfgError::BadName));
        let long = "x".repeat(56);
        assert_eq!(f.add_file(&long, vec![]), Err(FwCfgError::BadName));
        assert!(f.add_file(&long[..55], vec![1]).is_ok());
        let dir = directory(&mut f);
        assert_eq!(dir[0].0.len(), 55);
    }

    #[test]
    fn e820_helpers() {
        assert_eq!(e820_ram_map(512 << 20, 0xe000_0000), [E820Entry { addr: 0, len: 512 << 20, kind: E820Type::Ram }]);
        let big = e820_ram_map(4 << 30, 0xe000_0000);
        assert_eq!(big[0], E820Entry { addr: 0, len: 0xe000_0000, kind: E820Type::Ram });
        assert_eq!(big[1], E820Entry { addr: 1 << 32, len: 0x2000_0000, kind: E820Type::Ram });
        let bytes = encode_e820(&[E820Entry { addr: 0xfffc_0000, len: 0x4_0000, kind: E820Type::Reserved }]);
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[0..8], &0xfffc_0000u64.to_le_bytes());
        assert_eq!(&bytes[8..16], &0x4_0000u64.to_le_bytes());
        assert_eq!(&bytes[16..20], &2u32.to_le_bytes());
    }

    /// Writes a DMA descriptor at `at` and triggers it as SeaBIOS does: one `outl` of the
    /// byte-swapped address to 518h.
    fn dma(f: &mut FwCfg, mem: &mut [u8], at: u32, control: u32, length: u32, address: u64) -> u32 {
        let a = at as usize;
        mem[a..a + 4].copy_from_slice(&control.to_be_bytes());
        mem[a + 4..a + 8].copy_from_slice(&length.to_be_bytes());
        mem[a + 8..a + 16].copy_from_slice(&address.to_be_bytes());
        f.write(FW_CFG_PORT_DMA_LOW, Dword, at.swap_bytes());
        assert!(f.dma_pending());
        f.run_dma(mem);
        assert!(!f.dma_pending());
        u32::from_be_bytes(mem[a..a + 4].try_into().unwrap())
    }

    #[test]
    fn dma_interface() {
        let mut f = FwCfg::new(32 << 20, 1);
        f.enable_dma();
        f.add_file("etc/e820", encode_e820(&e820_ram_map(32 << 20, 0xe000_0000))).unwrap();
        let mut mem = vec![0xeeu8; 0x10000];
        // The address register reads "QEMU CFG".
        assert_eq!(f.read(0x514, Dword), u32::from_le_bytes(*b"QEMU"));
        assert_eq!(f.read(0x518, Dword), u32::from_le_bytes(*b" CFG"));
        // Select + read of the ID (SeaBIOS qemu_cfg_read_entry).
        let ctl = (u32::from(key::ID) << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
        assert_eq!(dma(&mut f, &mut mem, 0x100, ctl, 4, 0x200), 0);
        assert_eq!(&mem[0x200..0x204], &[3, 0, 0, 0]);
        assert_eq!(mem[0x204], 0xee, "nothing beyond the length");
        // Directory: count, then read on without reselecting.
        let ctl = (u32::from(key::FILE_DIR) << 16) | DMA_CTL_SELECT | DMA_CTL_READ;
        assert_eq!(dma(&mut f, &mut mem, 0x100, ctl, 4, 0x300), 0);
        assert_eq!(&mem[0x300..0x304], &1u32.to_be_bytes());
        assert_eq!(dma(&mut f, &mut mem, 0x100, DMA_CTL_READ, 64, 0x400), 0);
        assert_eq!(&mem[0x408..0x410], b"etc/e820");
        // Skip, then read: the offset carries over; past the end reads zeros.
        select(&mut f, 0x20);
        assert_eq!(dma(&mut f, &mut mem, 0x100, DMA_CTL_SKIP, 8, 0), 0);
        assert_eq!(dma(&mut f, &mut mem, 0x100, DMA_CTL_READ, 16, 0x500), 0);
        assert_eq!(&mem[0x500..0x508], &(32u64 << 20).to_le_bytes());
        assert_eq!(&mem[0x508..0x50c], &1u32.to_le_bytes());
        assert_eq!(&mem[0x50c..0x510], &[0; 4]);
        // Writes fail: items are read-only.
        assert_eq!(dma(&mut f, &mut mem, 0x100, DMA_CTL_WRITE, 4, 0x500), DMA_CTL_ERROR);
        // A 64-bit address in two halves: high first, low triggers.
        let a = 0x600u32;
        mem[0x600..0x604]
            .copy_from_slice(&((u32::from(key::SIGNATURE) << 16) | DMA_CTL_SELECT | DMA_CTL_READ).to_be_bytes());
        mem[0x604..0x608].copy_from_slice(&4u32.to_be_bytes());
        mem[0x608..0x610].copy_from_slice(&0x700u64.to_be_bytes());
        f.write(FW_CFG_PORT_DMA_HIGH, Dword, 0);
        assert!(!f.dma_pending());
        f.write(FW_CFG_PORT_DMA_LOW, Dword, a.swap_bytes());
        f.run_dma(&mut mem[..]);
        assert_eq!(&mem[0x700..0x704], b"QEMU");
        assert_eq!(&mem[0x600..0x604], &[0; 4]);
        // Reads of the data port still work alongside.
        select(&mut f, key::SIGNATURE);
        assert_eq!(read_bytes(&mut f, 4), b"QEMU");
        // run_dma with nothing pending does nothing.
        f.run_dma(&mut mem[..]);
    }

    #[test]
    fn flat_memory_zero_fill() {
        let mut mem = [1u8; 16];
        mem[..].fill_zero(4, 4);
        assert_eq!(mem, [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
        mem[..].fill_zero(14, 100);
        assert_eq!(&mem[12..], &[1, 1, 0, 0]);
        mem[..].fill_zero(u64::MAX - 1, 4);
        assert_eq!(&mem[..4], &[0, 0, 1, 1]);
        let mut buf = [0u8; 3];
        mem[..].read_phys(15, &mut buf);
        assert_eq!(buf, [0, 0xff, 0xff]);
    }

    #[test]
    fn dma_off_ignores_the_address_register() {
        let mut f = FwCfg::new(0, 1);
        f.write(FW_CFG_PORT_DMA_LOW, Dword, 0x1000u32.swap_bytes());
        assert!(!f.dma_pending());
        assert!(!f.owns_port(0x518));
    }

    #[test]
    fn dma_out_of_range_never_panics() {
        let mut f = FwCfg::new(0, 1);
        f.enable_dma();
        let mut mem = vec![0u8; 0x1000];
        // Descriptor beyond RAM: reads 0xff → select ffff, all control bits; length huge.
        f.write(FW_CFG_PORT_DMA_HIGH, Dword, 0xffff_ffffu32);
        f.write(FW_CFG_PORT_DMA_LOW, Dword, 0xffff_fff0u32);
        f.run_dma(&mut mem[..]);
        // Read of a huge length into memory past the end.
        let at = 0x10usize;
        mem[at..at + 4].copy_from_slice(&(DMA_CTL_READ).to_be_bytes());
        mem[at + 4..at + 8].copy_from_slice(&0x0010_0000u32.to_be_bytes());
        mem[at + 8..at + 16].copy_from_slice(&u64::MAX.to_be_bytes());
        f.write(FW_CFG_PORT_DMA_LOW, Dword, (at as u32).swap_bytes());
        f.run_dma(&mut mem[..]);
        assert_eq!(&mem[at..at + 4], &[0; 4]);
        // Skips saturate.
        for _ in 0..3 {
            mem[at..at + 4].copy_from_slice(&DMA_CTL_SKIP.to_be_bytes());
            mem[at + 4..at + 8].copy_from_slice(&u32::MAX.to_be_bytes());
            f.write(FW_CFG_PORT_DMA_LOW, Dword, (at as u32).swap_bytes());
            f.run_dma(&mut mem[..]);
        }
        assert_eq!(f.read(FW_CFG_PORT_DATA, Byte), 0);
    }
}
