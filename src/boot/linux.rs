//! The Linux/x86 boot protocol, 32-bit entry: what a boot loader does to start a bzImage
//! with an initrd and a command line, so the machine can offer `-kernel`, `-initrd` and
//! `-append` without running a BIOS or the kernel's real-mode setup code.
//!
//! Written from the kernel's Documentation/x86/boot.rst ("THE LINUX/x86 BOOT PROTOCOL") and
//! Documentation/x86/zero-page.rst. The steps, with the section each follows:
//! - read the setup header at 0x1F1 of the image ("THE REAL-MODE KERNEL HEADER",
//!   "DETAILS OF HEADER FIELDS"): the "HdrS" magic, the 0xAA55 boot flag, the protocol
//!   version (2.02 or newer: the command line is passed by address), `setup_sects`,
//!   `loadflags`, `initrd_addr_max`, `kernel_alignment`, `relocatable_kernel`,
//!   `cmdline_size`, `pref_address` and `init_size`;
//! - load the protected-mode kernel, everything after the `setup_sects + 1` real-mode
//!   sectors, at 0x100000 ("LOADING THE REST OF THE KERNEL");
//! - place the initrd as high as `initrd_addr_max` and the end of RAM allow, page aligned,
//!   above everything the kernel needs ("DETAILS OF HEADER FIELDS", `ramdisk_image`,
//!   `initrd_addr_max`, `init_size`);
//! - build `struct boot_params`, the zero page ("32-bit BOOT PROTOCOL"): all zero, the setup
//!   header copied in at 0x1F1 and the loader's fields filled in, plus the e820 map and the
//!   80×25 VGA text mode in `screen_info` so the kernel's early console can use the screen;
//! - enter at `code32_start` (which must be the load address, 0x100000) in 32-bit protected
//!   mode with `__BOOT_CS`/`__BOOT_DS` flat segments from a GDT in low memory, interrupts
//!   off, ESI = the zero page and EBP = EDI = EBX = 0 ("32-bit BOOT PROTOCOL").
//!
//! Low memory, below [`LOW_RAM_END`](super::LOW_RAM_END):
//! - [`GDT_ADDR`]: the GDT ([`BOOT_GDT`](super::BOOT_GDT));
//! - up to [`STACK_TOP`]: a small stack (ESP), which the protocol does not require;
//! - [`ZERO_PAGE_ADDR`]: `struct boot_params`;
//! - [`CMDLINE_ADDR`]: the command line, NUL-terminated.

use super::{
    align_up, get_u16, get_u32, get_u64, get_u8, memory_map, put_bytes, put_u16, put_u32, put_u8, write_gdt, write_ram,
    BootState, E820Entry, HIGH_RAM_START, LOW_RAM_END,
};
use crate::cpu::{EBP, EBX, EDI, ESI, ESP};
use core::fmt;

/// Where the GDT goes.
pub const GDT_ADDR: u32 = 0x1000;
/// ESP at entry (a stack between the GDT page and 0x8000).
pub const STACK_TOP: u32 = 0x8000;
/// Where `struct boot_params` (the zero page) goes.
pub const ZERO_PAGE_ADDR: u32 = 0x1_0000;
/// Where the command line goes; it may run up to [`LOW_RAM_END`](super::LOW_RAM_END).
pub const CMDLINE_ADDR: u32 = 0x2_0000;
/// Where the protected-mode kernel is loaded and entered: a bzImage's load address.
pub const KERNEL_ADDR: u32 = 0x10_0000;

/// Offsets in the image and in `struct boot_params` (the setup header sits at 0x1F1 in both).
/// From boot.rst, "THE REAL-MODE KERNEL HEADER", and zero-page.rst.
mod off {
    pub const SCREEN_INFO: usize = 0x000;
    pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
    pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
    pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
    pub const ALT_MEM_K: usize = 0x1e0;
    pub const E820_ENTRIES: usize = 0x1e8;
    pub const SETUP_SECTS: usize = 0x1f1;
    pub const BOOT_FLAG: usize = 0x1fe;
    pub const JUMP: usize = 0x200;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const CODE32_START: usize = 0x214;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21c;
    pub const HEAP_END_PTR: usize = 0x224;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22c;
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const PREF_ADDRESS: usize = 0x258;
    pub const INIT_SIZE: usize = 0x260;
    /// The end of the room `struct boot_params` gives the setup header (`_pad7` follows).
    pub const HEADER_LIMIT: usize = 0x290;
    pub const E820_TABLE: usize = 0x2d0;
}

/// "HdrS", the setup header's signature at 0x202.
pub const HDRS_MAGIC: u32 = 0x5372_6448;
/// The boot sector's signature at 0x1FE.
pub const BOOT_FLAG: u16 = 0xaa55;
/// `loadflags` bits.
pub const LOADED_HIGH: u8 = 1 << 0;
pub const KEEP_SEGMENTS: u8 = 1 << 6;
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// `type_of_loader` for a boot loader without an assigned ID.
pub const LOADER_UNDEFINED: u8 = 0xff;
/// The `heap_end_ptr` boot.rst's sample configuration uses (a heap ending at 0xE000 of the
/// real-mode segment, minus 0x200). The 32-bit entry skips the setup code that would use it.
pub const HEAP_END_PTR: u16 = 0xe000 - 0x200;
/// Slots for e820 entries in the zero page (`e820_table[E820_MAX_ENTRIES_ZEROPAGE]`).
pub const E820_MAX_ENTRIES: usize = 128;
/// `initrd_addr_max` of kernels older than protocol 2.03, which lack the field.
pub const DEFAULT_INITRD_ADDR_MAX: u32 = 0x37ff_ffff;
/// The command-line limit of kernels older than protocol 2.06 (no `cmdline_size`).
pub const DEFAULT_CMDLINE_SIZE: u32 = 255;

/// Why a kernel could not be prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The file is not a bzImage; says which check failed.
    NotBzImage(&'static str),
    /// A boot protocol older than 2.02 (command line passed the old way).
    ProtocolTooOld { version: u16 },
    /// A zImage (LOADED_HIGH clear), which would load at 0x10000: not supported.
    NotLoadedHigh,
    /// `code32_start` is not the bzImage load address 0x100000: the image has no 32-bit
    /// entry point (iPXE's `.lkrn`, for one, sets it to 0 and needs the real-mode entry).
    No32BitEntry { code32_start: u32 },
    /// The kernel needs memory up to `end` (its image, or `init_size` from its run address).
    KernelTooLarge { end: u64, ram: usize },
    /// The initrd does not fit between the kernel and min(initrd_addr_max, end of RAM).
    InitrdTooLarge { size: usize, room: u64 },
    /// The command line exceeds `cmdline_size` (or the low memory it is placed in).
    CmdlineTooLong { len: usize, max: usize },
    /// Less RAM than the protocol's layout needs (more than 1 MiB).
    RamTooSmall { ram: usize, need: usize },
    /// More memory-map ranges than the zero page's table holds.
    TooManyMemoryRanges(usize),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::NotBzImage(why) => write!(f, "not a Linux bzImage: {why}"),
            BootError::ProtocolTooOld { version } => write!(
                f,
                "Linux boot protocol {}.{:02} is too old (2.02 or newer needed)",
                version >> 8,
                version & 0xff
            ),
            BootError::NotLoadedHigh => write!(f, "a zImage (LOADED_HIGH clear) is not supported, only bzImage"),
            BootError::No32BitEntry { code32_start } => write!(
                f,
                "code32_start is {code32_start:#x}, not {KERNEL_ADDR:#x}: the image has no 32-bit entry point \
                 (it needs a BIOS and the real-mode entry)"
            ),
            BootError::KernelTooLarge { end, ram } => {
                write!(f, "the kernel needs memory up to {end:#x}, but RAM ends at {ram:#x}")
            }
            BootError::InitrdTooLarge { size, room } => write!(
                f,
                "the initrd of {size} bytes does not fit: {room} bytes free between the kernel and \
                 min(initrd_addr_max, end of RAM)"
            ),
            BootError::CmdlineTooLong { len, max } => {
                write!(f, "the kernel command line is {len} bytes long; this kernel accepts at most {max}")
            }
            BootError::RamTooSmall { ram, need } => {
                write!(f, "{ram} bytes of RAM is too small to boot Linux (at least {need} needed)")
            }
            BootError::TooManyMemoryRanges(n) => {
                write!(f, "{n} memory-map ranges do not fit the zero page's {E820_MAX_ENTRIES} e820 slots")
            }
        }
    }
}

/// What the setup header says, with the protocol's defaults filled in for older versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    /// Boot protocol version, major in the high byte (0x020f = 2.15).
    pub version: u16,
    /// Real-mode setup sectors after the boot sector (a 0 in the file means 4).
    pub setup_sects: u8,
    pub loadflags: u8,
    pub code32_start: u32,
    /// Highest address the initrd may occupy.
    pub initrd_addr_max: u32,
    /// Alignment of a relocatable kernel's run address (0 before 2.05).
    pub kernel_alignment: u32,
    pub relocatable: bool,
    /// Longest command line, without its NUL.
    pub cmdline_size: u32,
    pub xloadflags: u16,
    /// Preferred load address (2.10+), else 0.
    pub pref_address: u64,
    /// Memory the kernel needs from its run address before it reads the memory map (2.10+).
    pub init_size: u32,
    /// Offset in the file of the protected-mode kernel: (setup_sects + 1) × 512.
    pub kernel_offset: usize,
    /// One past the header's last byte in the file (0x202 + the byte at 0x201), bounded by
    /// the file and by the room `struct boot_params` has for it.
    pub header_end: usize,
}

impl SetupHeader {
    /// Parse and check the setup header of a bzImage.
    pub fn parse(kernel: &[u8]) -> Result<SetupHeader, BootError> {
        let magic = get_u32(kernel, off::HEADER).ok_or(BootError::NotBzImage("file too short for a setup header"))?;
        if magic != HDRS_MAGIC {
            return Err(BootError::NotBzImage("no \"HdrS\" signature at offset 0x202"));
        }
        if get_u16(kernel, off::BOOT_FLAG) != Some(BOOT_FLAG) {
            return Err(BootError::NotBzImage("boot flag at offset 0x1FE is not 0xAA55"));
        }
        let field16 = |o| get_u16(kernel, o).ok_or(BootError::NotBzImage("setup header truncated"));
        let field32 = |o| get_u32(kernel, o).ok_or(BootError::NotBzImage("setup header truncated"));
        let version = field16(off::VERSION)?;
        if version < 0x0202 {
            return Err(BootError::ProtocolTooOld { version });
        }
        let setup_sects = match get_u8(kernel, off::SETUP_SECTS) {
            Some(0) | None => 4,
            Some(n) => n,
        };
        let loadflags = get_u8(kernel, off::LOADFLAGS).ok_or(BootError::NotBzImage("setup header truncated"))?;
        let code32_start = field32(off::CODE32_START)?;
        let initrd_addr_max = if version >= 0x0203 { field32(off::INITRD_ADDR_MAX)? } else { DEFAULT_INITRD_ADDR_MAX };
        let (kernel_alignment, relocatable) = if version >= 0x0205 {
            (field32(off::KERNEL_ALIGNMENT)?, get_u8(kernel, off::RELOCATABLE_KERNEL).unwrap_or(0) != 0)
        } else {
            (0, false)
        };
        let cmdline_size = if version >= 0x0206 { field32(off::CMDLINE_SIZE)? } else { DEFAULT_CMDLINE_SIZE };
        let xloadflags = if version >= 0x020c { field16(off::XLOADFLAGS)? } else { 0 };
        let (pref_address, init_size) = if version >= 0x020a {
            (
                get_u64(kernel, off::PREF_ADDRESS).ok_or(BootError::NotBzImage("setup header truncated"))?,
                field32(off::INIT_SIZE)?,
            )
        } else {
            (0, 0)
        };
        let kernel_offset = (setup_sects as usize + 1) * 512;
        if kernel.len() <= kernel_offset {
            return Err(BootError::NotBzImage("the file ends inside the real-mode setup code"));
        }
        let declared_end = off::HEADER + get_u8(kernel, off::JUMP + 1).unwrap_or(0) as usize;
        let header_end = declared_end.clamp(off::HEADER + 4, off::HEADER_LIMIT).min(kernel.len());
        Ok(SetupHeader {
            version,
            setup_sects,
            loadflags,
            code32_start,
            initrd_addr_max,
            kernel_alignment,
            relocatable,
            cmdline_size,
            xloadflags,
            pref_address,
            init_size,
            kernel_offset,
            header_end,
        })
    }

    /// Where the kernel will run when loaded at `load` ("DETAILS OF HEADER FIELDS",
    /// `kernel_alignment`, `pref_address`): a relocatable kernel realigns itself to
    /// `kernel_alignment`, and no lower than its preferred address; another one moves itself
    /// to its preferred address.
    fn run_address(&self, load: u64) -> u64 {
        if self.relocatable {
            let aligned = if self.kernel_alignment.is_power_of_two() {
                align_up(load, self.kernel_alignment as u64).unwrap_or(load)
            } else {
                load
            };
            aligned.max(self.pref_address)
        } else if self.pref_address != 0 {
            self.pref_address
        } else {
            load
        }
    }
}

/// Load a bzImage (`kernel`), an optional initrd and a command line into `ram` and return
/// the state to start the CPU in. `reserved` lists the ranges above RAM the e820 map must
/// mark reserved (e.g. [`PC_RESERVED`](super::PC_RESERVED)). Only RAM is written; on an
/// error RAM may be partly written.
pub fn load_linux(
    ram: &mut [u8],
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    reserved: &[E820Entry],
) -> Result<BootState, BootError> {
    let min_ram = HIGH_RAM_START as usize + 4096;
    if ram.len() < min_ram {
        return Err(BootError::RamTooSmall { ram: ram.len(), need: min_ram });
    }
    let hdr = SetupHeader::parse(kernel)?;
    if hdr.loadflags & LOADED_HIGH == 0 {
        return Err(BootError::NotLoadedHigh);
    }
    // "code32_start: The address to jump to in protected mode. This defaults to the load
    // address of the kernel": for a bzImage, 0x100000.
    if hdr.code32_start != KERNEL_ADDR {
        return Err(BootError::No32BitEntry { code32_start: hdr.code32_start });
    }
    let ram_end = ram.len() as u64;

    // The command line ("DETAILS OF HEADER FIELDS", `cmdline_size`: the maximum without the
    // terminating zero), bounded also by the low memory it is placed in.
    let room = (LOW_RAM_END - CMDLINE_ADDR - 1) as usize;
    let max_cmdline = (hdr.cmdline_size as usize).min(room);
    if cmdline.len() > max_cmdline {
        return Err(BootError::CmdlineTooLong { len: cmdline.len(), max: max_cmdline });
    }

    // The protected-mode kernel at 1 MiB; it needs its image there and `init_size` bytes from
    // where it will run.
    let pm = kernel.get(hdr.kernel_offset..).unwrap_or(&[]);
    let load = KERNEL_ADDR as u64;
    let image_end = load + pm.len() as u64;
    let run_end = hdr.run_address(load).saturating_add(hdr.init_size as u64);
    let kernel_end = image_end.max(run_end);
    if kernel_end > ram_end {
        return Err(BootError::KernelTooLarge { end: kernel_end, ram: ram.len() });
    }

    // The initrd: as high as allowed, page aligned, above the kernel.
    let (ramdisk_image, ramdisk_size) = match initrd {
        Some(data) if !data.is_empty() => {
            let limit = (hdr.initrd_addr_max as u64 + 1).min(ram_end);
            let floor = align_up(kernel_end, 4096).unwrap_or(u64::MAX);
            let size = data.len() as u64;
            let start = limit.checked_sub(size).map(|s| s & !0xfff).filter(|&s| s >= floor);
            let Some(start) = start else {
                return Err(BootError::InitrdTooLarge { size: data.len(), room: limit.saturating_sub(floor) });
            };
            (start, size)
        }
        _ => (0, 0),
    };

    let map = memory_map(ram_end, reserved);
    if map.len() > E820_MAX_ENTRIES {
        return Err(BootError::TooManyMemoryRanges(map.len()));
    }

    // Everything is checked: write RAM. (The writes cannot fail now: RAM holds 1 MiB + the
    // kernel, and the low structures lie below 640 KiB.)
    let zp = zero_page(kernel, &hdr, ram_end, ramdisk_image, ramdisk_size, &map);
    let small = BootError::RamTooSmall { ram: ram.len(), need: min_ram };
    write_ram(ram, load, pm).ok_or(BootError::KernelTooLarge { end: image_end, ram: ram.len() })?;
    if let Some(data) = initrd.filter(|d| !d.is_empty()) {
        write_ram(ram, ramdisk_image, data).ok_or(small.clone())?;
    }
    write_ram(ram, ZERO_PAGE_ADDR as u64, &zp).ok_or(small.clone())?;
    write_ram(ram, CMDLINE_ADDR as u64, cmdline.as_bytes()).ok_or(small.clone())?;
    write_ram(ram, CMDLINE_ADDR as u64 + cmdline.len() as u64, &[0]).ok_or(small.clone())?;
    let gdt = write_gdt(ram, GDT_ADDR).ok_or(small)?;

    // "32-bit BOOT PROTOCOL": %esi = boot_params, %ebp = %edi = %ebx = 0, enter at
    // code32_start (the load address, as the zero page now says).
    let mut st = BootState::protected32(KERNEL_ADDR, gdt);
    st.regs[ESI] = ZERO_PAGE_ADDR;
    st.regs[EBP] = 0;
    st.regs[EDI] = 0;
    st.regs[EBX] = 0;
    st.regs[ESP] = STACK_TOP;
    Ok(st)
}

/// Build `struct boot_params` (zero-page.rst; boot.rst "32-bit BOOT PROTOCOL").
fn zero_page(
    kernel: &[u8],
    hdr: &SetupHeader,
    ram_end: u64,
    ramdisk_image: u64,
    ramdisk_size: u64,
    map: &[E820Entry],
) -> [u8; 4096] {
    let mut zp = [0u8; 4096];
    // The setup header as the file has it, 0x1F1 up to its end.
    if let Some(h) = kernel.get(off::SETUP_SECTS..hdr.header_end) {
        put_bytes(&mut zp, off::SETUP_SECTS, h);
    }
    // The fields a boot loader writes ("DETAILS OF HEADER FIELDS").
    put_u8(&mut zp, off::SETUP_SECTS, hdr.setup_sects);
    put_u8(&mut zp, off::TYPE_OF_LOADER, LOADER_UNDEFINED);
    put_u8(&mut zp, off::LOADFLAGS, (hdr.loadflags | CAN_USE_HEAP) & !KEEP_SEGMENTS);
    put_u32(&mut zp, off::CODE32_START, KERNEL_ADDR);
    put_u16(&mut zp, off::HEAP_END_PTR, HEAP_END_PTR);
    put_u32(&mut zp, off::CMD_LINE_PTR, CMDLINE_ADDR);
    put_u32(&mut zp, off::EXT_CMD_LINE_PTR, 0);
    // RAM ends below 4 GiB, so the high halves (the ext_ fields) are zero.
    put_u32(&mut zp, off::RAMDISK_IMAGE, ramdisk_image as u32);
    put_u32(&mut zp, off::RAMDISK_SIZE, ramdisk_size as u32);
    put_u32(&mut zp, off::EXT_RAMDISK_IMAGE, (ramdisk_image >> 32) as u32);
    put_u32(&mut zp, off::EXT_RAMDISK_SIZE, (ramdisk_size >> 32) as u32);

    // Extended memory in KiB above 1 MiB, for kernels that look before the e820 map.
    let ext_k = ram_end.saturating_sub(HIGH_RAM_START as u64) / 1024;
    put_u32(&mut zp, off::ALT_MEM_K, ext_k.min(u32::MAX as u64) as u32);

    // struct screen_info: the 80×25 colour text mode 3 a BIOS leaves, cursor at the top left.
    let si = off::SCREEN_INFO;
    put_u16(&mut zp, si + 0x02, ext_k.min(0xffff) as u16); // ext_mem_k
    put_u8(&mut zp, si + 0x06, 3); // orig_video_mode
    put_u8(&mut zp, si + 0x07, 80); // orig_video_cols
    put_u8(&mut zp, si + 0x0e, 25); // orig_video_lines
    put_u8(&mut zp, si + 0x0f, 1); // orig_video_isVGA (VIDEO_TYPE_VGAC)
    put_u16(&mut zp, si + 0x10, 16); // orig_video_points: character height

    put_u8(&mut zp, off::E820_ENTRIES, map.len() as u8);
    for (i, e) in map.iter().enumerate() {
        put_bytes(&mut zp, off::E820_TABLE + i * E820Entry::SIZE, &e.to_bytes());
    }
    zp
}

#[cfg(test)]
mod tests {
    use super::super::{BOOT_CS, BOOT_DS, PC_RESERVED};
    use super::*;
    use crate::cpu::{cr0, Cpu, CS, DS, EAX, ES, SS};
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    const MIB: usize = 1 << 20;

    /// A minimal bzImage: boot sector + `setup_sects` sectors with a setup header of
    /// `version`, then `payload` as the protected-mode kernel.
    fn bzimage(version: u16, setup_sects: u8, payload: &[u8]) -> Vec<u8> {
        let real = (if setup_sects == 0 { 4 } else { setup_sects } as usize + 1) * 512;
        let mut k = vec![0u8; real];
        k[0x1f1] = setup_sects;
        k[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        k[0x200] = 0xeb; // jmp short over the header, which ends at 0x268
        k[0x201] = 0x66;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&version.to_le_bytes());
        k[0x211] = LOADED_HIGH | KEEP_SEGMENTS;
        k[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        k[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        k[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
        k[0x234] = 1;
        k[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
        // A sentinel just before the header the loader must not copy.
        k[0x1ef] = 0xff;
        k.extend_from_slice(payload);
        k
    }

    fn payload() -> Vec<u8> {
        (0..5000u32).map(|i| (i * 7 + 1) as u8).collect()
    }

    fn rd32(ram: &[u8], a: usize) -> u32 {
        u32::from_le_bytes(ram[a..a + 4].try_into().unwrap())
    }
    fn rd16(ram: &[u8], a: usize) -> u16 {
        u16::from_le_bytes(ram[a..a + 2].try_into().unwrap())
    }

    #[test]
    fn loads_a_bzimage() {
        let p = payload();
        let k = bzimage(0x020f, 0, &p);
        let initrd: Vec<u8> = (0..10_000u32).map(|i| i as u8 ^ 0x5a).collect();
        let mut ram = vec![0xccu8; 32 * MIB];
        let st = load_linux(&mut ram, &k, Some(&initrd), "console=ttyS0 root=/dev/ram0", &PC_RESERVED).unwrap();

        // The protected-mode kernel at 1 MiB (setup_sects 0 means 4).
        let pm_off = 5 * 512;
        assert_eq!(&ram[0x10_0000..0x10_0000 + p.len()], &p[..]);
        assert_eq!(&k[pm_off..], &p[..]);

        let zp = ZERO_PAGE_ADDR as usize;
        // The header copied, the sentinel not; the loader's fields.
        assert_eq!(&ram[zp + 0x202..zp + 0x206], b"HdrS");
        assert_eq!(ram[zp + 0x1ef], 0);
        assert_eq!(ram[zp + 0x1f1], 4);
        assert_eq!(rd16(&ram, zp + 0x206), 0x020f);
        assert_eq!(rd16(&ram, zp + 0x1fe), 0xaa55);
        assert_eq!(ram[zp + 0x210], 0xff);
        assert_eq!(ram[zp + 0x211], LOADED_HIGH | CAN_USE_HEAP);
        assert_eq!(rd16(&ram, zp + 0x224), 0xde00);
        assert_eq!(rd32(&ram, zp + 0x214), 0x10_0000);
        assert_eq!(rd32(&ram, zp + 0x238), 2047);
        // Past the header's end (0x268) the zero page is zero.
        assert!(ram[zp + 0x268..zp + 0x2d0].iter().all(|&b| b == 0));

        // The command line.
        assert_eq!(rd32(&ram, zp + 0x228), CMDLINE_ADDR);
        let c = CMDLINE_ADDR as usize;
        assert_eq!(&ram[c..c + 29], b"console=ttyS0 root=/dev/ram0\0");

        // The initrd: page aligned, at the top of RAM (below initrd_addr_max), intact.
        let image = rd32(&ram, zp + 0x218) as usize;
        assert_eq!(rd32(&ram, zp + 0x21c) as usize, initrd.len());
        assert_eq!(image % 4096, 0);
        assert_eq!(image, (32 * MIB - initrd.len()) & !0xfff);
        assert_eq!(&ram[image..image + initrd.len()], &initrd[..]);
        assert_eq!(rd32(&ram, zp + 0x0c0), 0);
        assert_eq!(rd32(&ram, zp + 0x0c4), 0);

        // screen_info: 80×25 VGA text.
        assert_eq!(ram[zp + 0x06], 3);
        assert_eq!(ram[zp + 0x07], 80);
        assert_eq!(ram[zp + 0x0e], 25);
        assert_eq!(ram[zp + 0x0f], 1);
        assert_eq!(rd16(&ram, zp + 0x10), 16);
        assert_eq!(rd32(&ram, zp + 0x1e0), 31 * 1024);

        // The e820 table.
        assert_eq!(ram[zp + 0x1e8], 6);
        let entry = |i: usize| {
            let a = zp + 0x2d0 + i * 20;
            (
                u64::from_le_bytes(ram[a..a + 8].try_into().unwrap()),
                u64::from_le_bytes(ram[a + 8..a + 16].try_into().unwrap()),
                rd32(&ram, a + 16),
            )
        };
        assert_eq!(entry(0), (0, 0x9_fc00, 1));
        assert_eq!(entry(1), (0x9_fc00, 0x6_0400, 2));
        assert_eq!(entry(2), (0x10_0000, 31 << 20, 1));
        assert_eq!(entry(3), (0xfec0_0000, 0x1000, 2));
        assert_eq!(entry(4), (0xfee0_0000, 0x1000, 2));
        assert_eq!(entry(5), (0xfffc_0000, 0x4_0000, 2));
        assert_eq!(entry(6), (0, 0, 0));

        // The entry state and the GDT it names.
        assert_eq!(st.eip, 0x10_0000);
        assert_eq!(st.regs[ESI], ZERO_PAGE_ADDR);
        assert_eq!((st.regs[EBP], st.regs[EDI], st.regs[EBX]), (0, 0, 0));
        assert_eq!(st.esp(), STACK_TOP);
        assert_eq!((st.cs, st.ds, st.es, st.ss), (BOOT_CS, BOOT_DS, BOOT_DS, BOOT_DS));
        assert_eq!(st.gdt.base, GDT_ADDR);
        assert_eq!(st.gdt.limit, 31);
        let g = GDT_ADDR as usize;
        assert_eq!(&ram[g + 0x10..g + 0x20], &[0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0, 0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]);
        assert_eq!(st.eflags & crate::cpu::flags::IF, 0);
        assert_eq!(st.cr0 & (cr0::PE | cr0::PG), cr0::PE);

        let mut cpu = Cpu::new();
        st.apply(&mut cpu);
        assert!(cpu.pmode() && cpu.code32());
        assert_eq!(cpu.segs[CS as usize].sel, 0x10);
        for r in [DS, ES, SS] {
            assert_eq!(cpu.segs[r as usize].sel, 0x18);
            assert_eq!(cpu.segs[r as usize].limit, 0xffff_ffff);
        }
        assert_eq!(cpu.regs[ESI], ZERO_PAGE_ADDR);
        assert_eq!(cpu.regs[EAX], 0);
    }

    #[test]
    fn initrd_below_initrd_addr_max_and_above_init_size() {
        // initrd_addr_max 8 MiB - 1 in 64 MiB of RAM: the initrd ends at 8 MiB.
        let mut k = bzimage(0x020a, 2, &payload());
        k[0x22c..0x230].copy_from_slice(&(8 * MIB as u32 - 1).to_le_bytes());
        let mut ram = vec![0u8; 64 * MIB];
        let initrd = vec![0x11u8; 3 * 4096 + 5];
        load_linux(&mut ram, &k, Some(&initrd), "", &[]).unwrap();
        let zp = ZERO_PAGE_ADDR as usize;
        let image = rd32(&ram, zp + 0x218) as usize;
        assert_eq!(image, 8 * MIB - 4 * 4096);
        assert!(image + initrd.len() <= 8 * MIB);
        assert_eq!(ram[zp + 0x1e8], 3);
        assert_eq!(ram[CMDLINE_ADDR as usize], 0);

        // A relocatable kernel that runs at pref_address 16 MiB and needs init_size 10 MiB:
        // the initrd must stay above 26 MiB, so with initrd_addr_max 24 MiB it cannot go.
        let mut k = bzimage(0x020a, 2, &payload());
        k[0x258..0x260].copy_from_slice(&(16 * MIB as u64).to_le_bytes());
        k[0x260..0x264].copy_from_slice(&(10 * MIB as u32).to_le_bytes());
        k[0x22c..0x230].copy_from_slice(&(24 * MIB as u32 - 1).to_le_bytes());
        let e = load_linux(&mut ram, &k, Some(&initrd), "", &[]).unwrap_err();
        assert_eq!(e, BootError::InitrdTooLarge { size: initrd.len(), room: 0 });
        // With the default limit it goes to the top of RAM.
        k[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        load_linux(&mut ram, &k, Some(&initrd), "", &[]).unwrap();
        assert_eq!(rd32(&ram, zp + 0x218) as usize, 64 * MIB - 4 * 4096);
        // And 20 MiB of RAM cannot hold what it needs.
        let mut small = vec![0u8; 20 * MIB];
        assert_eq!(
            load_linux(&mut small, &k, None, "", &[]),
            Err(BootError::KernelTooLarge { end: 26 * MIB as u64, ram: 20 * MIB })
        );
    }

    #[test]
    fn old_protocols_default_their_fields() {
        // 2.02: no initrd_addr_max (0x37FFFFFF), no cmdline_size (255).
        let k = bzimage(0x0202, 1, &payload());
        let h = SetupHeader::parse(&k).unwrap();
        assert_eq!(h.initrd_addr_max, DEFAULT_INITRD_ADDR_MAX);
        assert_eq!(h.cmdline_size, 255);
        assert_eq!(h.kernel_alignment, 0);
        assert!(!h.relocatable);
        assert_eq!(h.kernel_offset, 1024);
        let mut ram = vec![0u8; 8 * MIB];
        let long = "x".repeat(256);
        assert_eq!(load_linux(&mut ram, &k, None, &long, &[]), Err(BootError::CmdlineTooLong { len: 256, max: 255 }));
        load_linux(&mut ram, &k, None, &long[..255], &[]).unwrap();
        assert_eq!(ram[CMDLINE_ADDR as usize + 255], 0);
        // No initrd: the fields are zero.
        assert_eq!(rd32(&ram, ZERO_PAGE_ADDR as usize + 0x218), 0);
        assert_eq!(rd32(&ram, ZERO_PAGE_ADDR as usize + 0x21c), 0);
    }

    #[test]
    fn errors() {
        let p = payload();
        let good = bzimage(0x020f, 4, &p);
        let mut ram = vec![0u8; 16 * MIB];

        let mut k = good.clone();
        k[0x202] = b'X';
        assert!(matches!(load_linux(&mut ram, &k, None, "", &[]), Err(BootError::NotBzImage(_))));
        let mut k = good.clone();
        k[0x1fe] = 0;
        assert!(matches!(load_linux(&mut ram, &k, None, "", &[]), Err(BootError::NotBzImage(_))));
        assert!(matches!(load_linux(&mut ram, &good[..0x204], None, "", &[]), Err(BootError::NotBzImage(_))));
        assert!(matches!(load_linux(&mut ram, &good[..0x300], None, "", &[]), Err(BootError::NotBzImage(_))));
        assert!(matches!(load_linux(&mut ram, &[], None, "", &[]), Err(BootError::NotBzImage(_))));

        let old = bzimage(0x0201, 4, &p);
        assert_eq!(load_linux(&mut ram, &old, None, "", &[]), Err(BootError::ProtocolTooOld { version: 0x0201 }));

        let mut zimage = good.clone();
        zimage[0x211] = 0;
        assert_eq!(load_linux(&mut ram, &zimage, None, "", &[]), Err(BootError::NotLoadedHigh));
        let mut no32 = good.clone();
        no32[0x214..0x218].fill(0);
        assert_eq!(load_linux(&mut ram, &no32, None, "", &[]), Err(BootError::No32BitEntry { code32_start: 0 }));

        let big = bzimage(0x020f, 4, &vec![0u8; 15 * MIB + 1]);
        assert_eq!(
            load_linux(&mut ram, &big, None, "", &[]),
            Err(BootError::KernelTooLarge { end: 16 * MIB as u64 + 1, ram: 16 * MIB })
        );

        let initrd = vec![0u8; 15 * MIB];
        assert!(matches!(load_linux(&mut ram, &good, Some(&initrd), "", &[]), Err(BootError::InitrdTooLarge { .. })));

        let long = "y".repeat(2048);
        assert_eq!(
            load_linux(&mut ram, &good, None, &long, &[]),
            Err(BootError::CmdlineTooLong { len: 2048, max: 2047 })
        );

        let mut tiny = vec![0u8; MIB];
        assert!(matches!(load_linux(&mut tiny, &good, None, "", &[]), Err(BootError::RamTooSmall { .. })));

        let many: Vec<E820Entry> = (0..126).map(|i| E820Entry::reserved(0xf000_0000 + i * 0x1000, 0x1000)).collect();
        assert_eq!(load_linux(&mut ram, &good, None, "", &many), Err(BootError::TooManyMemoryRanges(129)));
        assert!(load_linux(&mut ram, &good, None, "", &many[..125]).is_ok());

        // Every error names its problem.
        for e in [
            BootError::NotBzImage("x"),
            BootError::ProtocolTooOld { version: 0x0201 },
            BootError::NotLoadedHigh,
            BootError::No32BitEntry { code32_start: 0 },
            BootError::KernelTooLarge { end: 1, ram: 0 },
            BootError::InitrdTooLarge { size: 1, room: 0 },
            BootError::CmdlineTooLong { len: 1, max: 0 },
            BootError::RamTooSmall { ram: 0, need: 1 },
            BootError::TooManyMemoryRanges(200),
        ] {
            assert!(!e.to_string().is_empty());
        }
        assert!(BootError::ProtocolTooOld { version: 0x0201 }.to_string().contains("2.01"));
    }

    #[test]
    fn header_end_is_bounded() {
        // A jump displacement pointing far past the header: only up to 0x290 is copied.
        let mut k = bzimage(0x020f, 4, &payload());
        k[0x201] = 0xff;
        k[0x290] = 0x77;
        let h = SetupHeader::parse(&k).unwrap();
        assert_eq!(h.header_end, 0x290);
        let mut ram = vec![0u8; 8 * MIB];
        load_linux(&mut ram, &k, None, "", &[]).unwrap();
        assert_eq!(ram[ZERO_PAGE_ADDR as usize + 0x290], 0);
    }

    #[test]
    fn garbage_never_panics() {
        // Random-ish images around a valid header: every outcome is Ok or Err.
        let base = bzimage(0x020f, 4, &payload());
        let mut ram = vec![0u8; 4 * MIB];
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut k = base.clone();
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = 0x1f0 + (x as usize % 0x80);
                k[i] = (x >> 24) as u8;
            }
            let cut = (x as usize >> 3) % (k.len() + 1);
            let _ = load_linux(&mut ram, &k[..cut], Some(&[1, 2, 3]), "a", &[]);
            let _ = load_linux(&mut ram, &k, None, "", &[]);
        }
    }
}
