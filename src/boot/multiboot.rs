//! Multiboot v1: loading a kernel that carries a Multiboot header (ELF32, or any format with
//! the "a.out kludge" address fields), its modules and a command line, as GRUB or QEMU's
//! `-kernel`/`-initrd`/`-append` would, and starting it in the state the specification
//! promises.
//!
//! Written from the Multiboot Specification version 0.6.96. The steps, with the section each
//! follows:
//! - find the header ("3.1.1 The layout of Multiboot header", "3.1.2 The magic fields of
//!   Multiboot header"): magic 0x1BADB002 at a 4-byte-aligned offset within the first
//!   8192 bytes, `magic + flags + checksum` = 0; refuse a requirement in flags bits 0–15
//!   this loader does not meet (it meets 0, page-aligned modules, and 1, memory
//!   information; a video-mode request, bit 2, is ignored and the kernel is left in the text
//!   mode the machine starts in);
//! - load the image ("3.1.3 The address fields of Multiboot header"): with flags bit 16 the
//!   header's header_addr/load_addr/load_end_addr/bss_end_addr/entry_addr say where, else
//!   the ELF32 program headers do (each PT_LOAD segment at its physical address, the part
//!   beyond its file size zeroed);
//! - place the modules page aligned after the kernel ("3.3 Boot information format", `mods`);
//! - build the boot information structure ("3.3 Boot information format"): `mem_lower`,
//!   `mem_upper`, `cmdline`, `mods`, `mmap` (the e820 map, each entry preceded by its
//!   size) and `boot_loader_name`;
//! - enter with EAX = 0x2BADB002, EBX = the information structure, in 32-bit protected mode
//!   with flat code and data segments, paging and interrupts off ("3.2 Machine state").
//!
//! The GDT, a stack, the information structure and its strings and tables live together in
//! one area: below the kernel in conventional memory (from 0x1000) when they fit there,
//! else after the last module.

use super::{
    align_up, get_u16, get_u32, get_u8, memory_map, put_u32, ram_slice, write_gdt, write_ram, BootState, E820Entry,
    BOOT_GDT_SIZE, HIGH_RAM_START, LOW_RAM_END,
};
use crate::cpu::{EAX, EBX, ESP};
use alloc::vec::Vec;
use core::fmt;

/// The header's magic ("3.1.2 The magic fields of Multiboot header").
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// EAX at entry: tells the kernel a Multiboot loader started it ("3.2 Machine state").
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie within this many bytes of the image's start.
pub const SEARCH_LIMIT: usize = 8192;
/// The name in `boot_loader_name`.
pub const LOADER_NAME: &str = "v386";

/// Bits of the header's `flags` field.
pub mod header_flags {
    /// Modules must be page aligned.
    pub const PAGE_ALIGN: u32 = 1 << 0;
    /// `mem_*` (and `mmap_*` if there is a map) must be provided.
    pub const MEMORY_INFO: u32 = 1 << 1;
    /// A video mode is requested (mode_type, width, height, depth).
    pub const VIDEO_MODE: u32 = 1 << 2;
    /// The address fields at offsets 12–28 are valid (the "a.out kludge").
    pub const AOUT_KLUDGE: u32 = 1 << 16;
    /// The requirements this loader meets or deliberately ignores.
    pub const UNDERSTOOD: u32 = PAGE_ALIGN | MEMORY_INFO | VIDEO_MODE;
}

/// Bits of the information structure's `flags` field and its layout ("3.3 Boot information
/// format").
pub mod info {
    pub const MEMORY: u32 = 1 << 0;
    pub const CMDLINE: u32 = 1 << 2;
    pub const MODS: u32 = 1 << 3;
    pub const MMAP: u32 = 1 << 6;
    pub const BOOT_LOADER_NAME: u32 = 1 << 9;

    pub const FLAGS: usize = 0;
    pub const MEM_LOWER: usize = 4;
    pub const MEM_UPPER: usize = 8;
    pub const CMDLINE_PTR: usize = 16;
    pub const MODS_COUNT: usize = 20;
    pub const MODS_ADDR: usize = 24;
    pub const MMAP_LENGTH: usize = 44;
    pub const MMAP_ADDR: usize = 48;
    pub const BOOT_LOADER_NAME_PTR: usize = 64;
    /// The structure is 88 bytes in 0.6.96 (up to the VBE fields); the rest of this many
    /// bytes is written as zero for kernels that peek at later additions.
    pub const SIZE: usize = 128;
    /// One module entry: mod_start, mod_end, string, reserved.
    pub const MOD_ENTRY: usize = 16;
    /// One mmap entry: size (of the rest: 20), base_addr, length, type.
    pub const MMAP_ENTRY: usize = 24;
}

/// A boot module: its contents and its command line.
#[derive(Clone, Copy, Debug)]
pub struct Module<'a> {
    pub data: &'a [u8],
    pub cmdline: &'a str,
}

/// The a.out kludge's address fields ("3.1.3 The address fields of Multiboot header").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AoutKludge {
    pub header_addr: u32,
    pub load_addr: u32,
    /// 0: load to the end of the file.
    pub load_end_addr: u32,
    /// 0: no bss.
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A Multiboot header found in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Offset of the magic in the file.
    pub offset: usize,
    pub flags: u32,
    /// The address fields, when flags bit 16 is set.
    pub aout: Option<AoutKludge>,
}

/// Why a kernel could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultibootError {
    /// No magic at a 4-byte-aligned offset in the first 8192 bytes.
    NoHeader,
    /// A magic whose checksum does not add up (and no valid header after it).
    BadChecksum { offset: usize },
    /// Requirement bits (0–15) this loader does not meet.
    UnsupportedFlags(u32),
    /// The a.out kludge's address fields are inconsistent with each other or the file.
    BadAoutKludge(&'static str),
    /// No a.out kludge and not a loadable ELF32 i386 executable; says why.
    BadElf(&'static str),
    /// A segment (or the a.out image) would lie outside RAM.
    SegmentOutsideRam { addr: u64, size: u64 },
    /// The entry point is not in RAM.
    EntryOutsideRam(u32),
    /// Module `index` does not fit in RAM after the kernel and the modules before it.
    ModuleTooLarge { index: usize, size: usize },
    /// No room left in RAM for the information structure, its tables and strings.
    NoRoomForInfo { need: usize },
}

impl fmt::Display for MultibootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MultibootError::NoHeader => {
                write!(f, "no Multiboot header (magic 0x1BADB002) in the first {SEARCH_LIMIT} bytes")
            }
            MultibootError::BadChecksum { offset } => {
                write!(f, "the Multiboot header at offset {offset:#x} has a bad checksum")
            }
            MultibootError::UnsupportedFlags(bits) => {
                write!(f, "the Multiboot header requires features this loader lacks (flags {bits:#x})")
            }
            MultibootError::BadAoutKludge(why) => write!(f, "bad Multiboot address fields: {why}"),
            MultibootError::BadElf(why) => write!(f, "unsupported kernel: {why}"),
            MultibootError::SegmentOutsideRam { addr, size } => {
                write!(f, "a kernel segment of {size:#x} bytes at {addr:#x} lies outside RAM")
            }
            MultibootError::EntryOutsideRam(e) => write!(f, "the kernel's entry point {e:#x} is outside RAM"),
            MultibootError::ModuleTooLarge { index, size } => {
                write!(f, "module {index} ({size} bytes) does not fit in RAM after the kernel")
            }
            MultibootError::NoRoomForInfo { need } => {
                write!(f, "no room in RAM for the {need} bytes of Multiboot information")
            }
        }
    }
}

/// The size of the header [`flat_image`] writes: magic, flags, checksum and the five
/// address fields ("3.1.1 The layout of Multiboot header").
pub const FLAT_HEADER_SIZE: u32 = 32;

/// A Multiboot image of flat 32-bit code: the header with the a.out kludge at offset 0
/// ("3.1.3 The address fields of Multiboot header": the file loaded as it is at `load`,
/// `load_end_addr` and `bss_end_addr` 0 meaning "the whole file, no bss"), then `body`,
/// entered at its first byte (`load + FLAT_HEADER_SIZE`). Tests, the lab's tiny guests and
/// teachers' hand-assembled kernels need no linker script this way.
pub fn flat_image(load: u32, body: &[u8]) -> Vec<u8> {
    let flags = header_flags::AOUT_KLUDGE;
    let checksum = 0u32.wrapping_sub(HEADER_MAGIC.wrapping_add(flags));
    let entry = load.wrapping_add(FLAT_HEADER_SIZE);
    let mut image = Vec::with_capacity(FLAT_HEADER_SIZE as usize + body.len());
    for word in [HEADER_MAGIC, flags, checksum, load, load, 0, 0, entry] {
        image.extend_from_slice(&word.to_le_bytes());
    }
    image.extend_from_slice(body);
    image
}

/// Find the Multiboot header: the first magic at a 4-byte-aligned offset whose whole header
/// lies within the first 8192 bytes and whose checksum is right.
pub fn find_header(image: &[u8]) -> Result<Header, MultibootError> {
    let limit = image.len().min(SEARCH_LIMIT);
    let mut bad = None;
    for offset in (0..limit.saturating_sub(11)).step_by(4) {
        if get_u32(image, offset) != Some(HEADER_MAGIC) {
            continue;
        }
        let flags = get_u32(image, offset + 4).unwrap_or(0);
        let checksum = get_u32(image, offset + 8).unwrap_or(0);
        if HEADER_MAGIC.wrapping_add(flags).wrapping_add(checksum) != 0 {
            bad.get_or_insert(offset);
            continue;
        }
        let aout = if flags & header_flags::AOUT_KLUDGE != 0 {
            if offset + 32 > limit {
                return Err(MultibootError::BadAoutKludge(
                    "the address fields run past the end of the file or of its first 8192 bytes",
                ));
            }
            let field = |i: usize| get_u32(image, offset + 12 + 4 * i).unwrap_or(0);
            Some(AoutKludge {
                header_addr: field(0),
                load_addr: field(1),
                load_end_addr: field(2),
                bss_end_addr: field(3),
                entry_addr: field(4),
            })
        } else {
            None
        };
        return Ok(Header { offset, flags, aout });
    }
    Err(match bad {
        Some(offset) => MultibootError::BadChecksum { offset },
        None => MultibootError::NoHeader,
    })
}

/// One piece of the image to place in RAM: `data` at `addr`, then zeros up to `addr + size`.
struct Segment<'a> {
    addr: u64,
    data: &'a [u8],
    size: u64,
}

/// Where the a.out kludge says the image goes ("3.1.3 The address fields of Multiboot header").
fn aout_segments<'a>(
    image: &'a [u8],
    offset: usize,
    k: &AoutKludge,
) -> Result<(Vec<Segment<'a>>, u32), MultibootError> {
    let bad = MultibootError::BadAoutKludge;
    if k.load_addr > k.header_addr {
        return Err(bad("load_addr is above header_addr"));
    }
    // The file offset loading starts at: the header's offset minus its distance from load_addr.
    let start = offset
        .checked_sub((k.header_addr - k.load_addr) as usize)
        .ok_or(bad("header_addr - load_addr exceeds the header's offset in the file"))?;
    let len = if k.load_end_addr == 0 {
        image.len() - start
    } else {
        if k.load_end_addr < k.load_addr {
            return Err(bad("load_end_addr is below load_addr"));
        }
        let len = (k.load_end_addr - k.load_addr) as usize;
        if start.checked_add(len).map_or(true, |end| end > image.len()) {
            return Err(bad("the file ends before load_end_addr"));
        }
        len
    };
    let load_end = k.load_addr as u64 + len as u64;
    let end = if k.bss_end_addr == 0 {
        load_end
    } else if (k.bss_end_addr as u64) < load_end {
        return Err(bad("bss_end_addr is below the end of the loaded image"));
    } else {
        k.bss_end_addr as u64
    };
    let data = image.get(start..start + len).ok_or(bad("the file ends before load_end_addr"))?;
    let seg = Segment { addr: k.load_addr as u64, data, size: end - k.load_addr as u64 };
    Ok((alloc::vec![seg], k.entry_addr))
}

/// ELF32 constants (System V ABI, "ELF Header" and "Program Header"; the i386 supplement).
mod elf {
    pub const CLASS32: u8 = 1;
    pub const DATA_LSB: u8 = 1;
    pub const ET_EXEC: u16 = 2;
    pub const EM_386: u16 = 3;
    pub const PT_LOAD: u32 = 1;
    pub const EHDR_SIZE: usize = 52;
    pub const PHDR_SIZE: usize = 32;
}

/// The PT_LOAD segments of an ELF32 i386 executable, at their physical addresses, and its
/// entry point. An entry inside a segment's virtual range is translated to the physical
/// address it is loaded at, since the kernel starts with paging off (a higher-half kernel
/// links at virtual addresses but loads at physical ones).
fn elf_segments(image: &[u8]) -> Result<(Vec<Segment<'_>>, u32), MultibootError> {
    let bad = MultibootError::BadElf;
    if image.get(0..4) != Some(b"\x7fELF".as_slice()) {
        return Err(bad("neither the a.out kludge (header flag 16) nor an ELF image"));
    }
    if image.len() < elf::EHDR_SIZE {
        return Err(bad("the ELF header is truncated"));
    }
    if get_u8(image, 4) != Some(elf::CLASS32) {
        return Err(bad("not a 32-bit ELF (ELFCLASS32)"));
    }
    if get_u8(image, 5) != Some(elf::DATA_LSB) {
        return Err(bad("not a little-endian ELF"));
    }
    if get_u16(image, 16) != Some(elf::ET_EXEC) {
        return Err(bad("not an ELF executable (ET_EXEC)"));
    }
    if get_u16(image, 18) != Some(elf::EM_386) {
        return Err(bad("not an ELF for the i386 (EM_386)"));
    }
    let e_entry = get_u32(image, 24).unwrap_or(0);
    let phoff = get_u32(image, 28).unwrap_or(0) as usize;
    let phentsize = get_u16(image, 42).unwrap_or(0) as usize;
    let phnum = get_u16(image, 44).unwrap_or(0) as usize;
    if phentsize < elf::PHDR_SIZE {
        return Err(bad("program header entries are too small"));
    }
    if phentsize.checked_mul(phnum).and_then(|n| n.checked_add(phoff)).map_or(true, |end| end > image.len()) {
        return Err(bad("the program headers run past the end of the file"));
    }
    let mut segs = Vec::new();
    let mut entry = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let field = |o: usize| get_u32(image, ph + o).unwrap_or(0);
        let (p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz) =
            (field(0), field(4), field(8), field(12), field(16), field(20));
        if p_type != elf::PT_LOAD || p_memsz == 0 {
            continue;
        }
        if p_filesz > p_memsz {
            return Err(bad("a segment's file size exceeds its memory size"));
        }
        let (off, len) = (p_offset as usize, p_filesz as usize);
        let data = off.checked_add(len).and_then(|end| image.get(off..end));
        let data = data.ok_or(bad("a segment extends past the end of the file"))?;
        if entry.is_none() && e_entry >= p_vaddr && e_entry - p_vaddr < p_memsz {
            entry = Some(p_paddr.wrapping_add(e_entry - p_vaddr));
        }
        segs.push(Segment { addr: p_paddr as u64, data, size: p_memsz as u64 });
    }
    if segs.is_empty() {
        return Err(bad("the ELF has no loadable segment"));
    }
    Ok((segs, entry.unwrap_or(e_entry)))
}

/// A bump allocator over a range of guest RAM, 16-byte aligned pieces.
struct Area {
    next: u64,
    end: u64,
}

impl Area {
    fn take(&mut self, len: usize) -> u64 {
        let at = self.next;
        self.next = at + piece(len);
        debug_assert!(self.next <= self.end);
        at
    }
}

/// Bytes a piece of `len` bytes takes in an [`Area`].
fn piece(len: usize) -> u64 {
    (len as u64 + 15) & !15
}

/// Whether `a..a_end` and `b..b_end` share a byte.
fn overlaps(a: u64, a_end: u64, b: u64, b_end: u64) -> bool {
    a < b_end && b < a_end
}

/// Bytes of the stack given to the kernel (the specification leaves ESP undefined; the
/// kernel must set up its own, but a valid one costs nothing).
const STACK_SIZE: usize = 4096;
/// The lowest address the information area may start at (page 0 holds the real-mode IVT
/// and BIOS data area of a PC).
const AREA_FLOOR: u64 = 0x1000;

/// Load a Multiboot kernel with its modules into `ram` and return the state to start the
/// CPU in. `cmdline` is the kernel's command line as the information structure carries it
/// (GRUB and QEMU put the kernel's file name first). `reserved` lists the ranges above RAM
/// the memory map must mark reserved (e.g. [`PC_RESERVED`](super::PC_RESERVED)). Only RAM is
/// written; on an error RAM may be partly written.
pub fn load_multiboot(
    ram: &mut [u8],
    kernel: &[u8],
    cmdline: &str,
    modules: &[Module<'_>],
    reserved: &[E820Entry],
) -> Result<BootState, MultibootError> {
    let hdr = find_header(kernel)?;
    let missing = hdr.flags & 0xffff & !header_flags::UNDERSTOOD;
    if missing != 0 {
        return Err(MultibootError::UnsupportedFlags(missing));
    }
    let (segs, entry) = match &hdr.aout {
        Some(k) => aout_segments(kernel, hdr.offset, k)?,
        None => elf_segments(kernel)?,
    };
    let ram_end = ram.len() as u64;
    for s in &segs {
        if s.addr + s.size > ram_end {
            return Err(MultibootError::SegmentOutsideRam { addr: s.addr, size: s.size });
        }
    }
    if entry as u64 >= ram_end {
        return Err(MultibootError::EntryOutsideRam(entry));
    }

    // Occupied ranges: the kernel's segments, then the modules, page aligned after it,
    // skipping the hole between 640 KiB and 1 MiB.
    let mut used: Vec<(u64, u64)> = segs.iter().map(|s| (s.addr, s.addr + s.size)).collect();
    let kernel_end = used.iter().map(|r| r.1).max().unwrap_or(0);
    let mut cursor = align_up(kernel_end, 4096).unwrap_or(u64::MAX);
    let mut placed = Vec::with_capacity(modules.len());
    for (index, m) in modules.iter().enumerate() {
        let len = m.data.len() as u64;
        if cursor < HIGH_RAM_START as u64 && cursor + len > LOW_RAM_END as u64 {
            cursor = HIGH_RAM_START as u64;
        }
        let end = cursor.checked_add(len).filter(|&e| e <= ram_end);
        let end = end.ok_or(MultibootError::ModuleTooLarge { index, size: m.data.len() })?;
        placed.push((cursor, end));
        used.push((cursor, end));
        cursor = align_up(end, 4096).unwrap_or(u64::MAX);
    }

    // The area for the GDT, the stack and the information structure with its tables and
    // strings: in conventional memory below everything loaded, else after the last module.
    let map = memory_map(ram_end, reserved);
    let need = piece(STACK_SIZE)
        + piece(BOOT_GDT_SIZE)
        + piece(info::SIZE)
        + piece(map.len() * info::MMAP_ENTRY)
        + piece(modules.len() * info::MOD_ENTRY)
        + modules.iter().map(|m| piece(m.cmdline.len() + 1)).sum::<u64>()
        + piece(cmdline.len() + 1)
        + piece(LOADER_NAME.len() + 1);
    let lowest = used.iter().map(|r| r.0).min().unwrap_or(u64::MAX);
    let low = (AREA_FLOOR, (LOW_RAM_END as u64).min(lowest).min(ram_end));
    let mut high_start =
        align_up(used.iter().map(|r| r.1).max().unwrap_or(0).max(AREA_FLOOR), 4096).unwrap_or(u64::MAX);
    if high_start < HIGH_RAM_START as u64 && high_start.saturating_add(need) > LOW_RAM_END as u64 {
        high_start = HIGH_RAM_START as u64;
    }
    let high = (high_start, ram_end);
    let fits = |(start, end): (u64, u64)| {
        start.checked_add(need).is_some_and(|e| e <= end)
            && !used.iter().any(|r| overlaps(start, start + need, r.0, r.1))
    };
    let (start, end) = [low, high]
        .into_iter()
        .find(|&r| fits(r))
        .ok_or(MultibootError::NoRoomForInfo { need: need.min(usize::MAX as u64) as usize })?;
    let mut area = Area { next: start, end };

    // Everything is checked: write RAM. (The writes below cannot fail now; the error they
    // map to is for form's sake.)
    let room = MultibootError::NoRoomForInfo { need: need as usize };
    for s in &segs {
        let dst =
            ram_slice(ram, s.addr, s.size).ok_or(MultibootError::SegmentOutsideRam { addr: s.addr, size: s.size })?;
        let (file, bss) = dst.split_at_mut(s.data.len());
        file.copy_from_slice(s.data);
        bss.fill(0);
    }
    for (m, &(at, _)) in modules.iter().zip(&placed) {
        write_ram(ram, at, m.data).ok_or(room.clone())?;
    }

    let stack = area.take(STACK_SIZE);
    let gdt_addr = area.take(BOOT_GDT_SIZE);
    let gdt = write_gdt(ram, gdt_addr as u32).ok_or(room.clone())?;
    let info_addr = area.take(info::SIZE);
    let mmap_addr = area.take(map.len() * info::MMAP_ENTRY);
    let mods_addr = area.take(modules.len() * info::MOD_ENTRY);
    let mut put_string = |ram: &mut [u8], s: &str| -> Option<u32> {
        let at = area.take(s.len() + 1);
        write_ram(ram, at, s.as_bytes())?;
        write_ram(ram, at + s.len() as u64, &[0])?;
        Some(at as u32)
    };
    let cmdline_addr = put_string(ram, cmdline).ok_or(room.clone())?;
    let name_addr = put_string(ram, LOADER_NAME).ok_or(room.clone())?;

    // mods: mod_start, mod_end (one past the last byte), string, reserved.
    let mut mods = Vec::with_capacity(modules.len() * info::MOD_ENTRY);
    for (m, &(at, end)) in modules.iter().zip(&placed) {
        let string = put_string(ram, m.cmdline).ok_or(room.clone())?;
        for v in [at as u32, end as u32, string, 0] {
            mods.extend_from_slice(&v.to_le_bytes());
        }
    }
    write_ram(ram, mods_addr, &mods).ok_or(room.clone())?;

    // mmap: each entry's size field (20, not counting itself), then base_addr, length, type.
    let mut mmap = Vec::with_capacity(map.len() * info::MMAP_ENTRY);
    for e in &map {
        mmap.extend_from_slice(&(E820Entry::SIZE as u32).to_le_bytes());
        mmap.extend_from_slice(&e.to_bytes());
    }
    write_ram(ram, mmap_addr, &mmap).ok_or(room.clone())?;

    // mem_lower: KiB from 0 (at most 640); mem_upper: KiB from 1 MiB to the first hole.
    let upper_end = reserved
        .iter()
        .filter(|r| r.size != 0 && r.addr >= HIGH_RAM_START as u64 && r.addr < ram_end)
        .map(|r| r.addr)
        .fold(ram_end, u64::min);
    let mem_lower = ram_end.min(LOW_RAM_END as u64) / 1024;
    let mem_upper = upper_end.saturating_sub(HIGH_RAM_START as u64) / 1024;

    let mut mbi = [0u8; info::SIZE];
    put_u32(&mut mbi, info::FLAGS, info::MEMORY | info::CMDLINE | info::MODS | info::MMAP | info::BOOT_LOADER_NAME);
    put_u32(&mut mbi, info::MEM_LOWER, mem_lower as u32);
    put_u32(&mut mbi, info::MEM_UPPER, mem_upper.min(u32::MAX as u64) as u32);
    put_u32(&mut mbi, info::CMDLINE_PTR, cmdline_addr);
    put_u32(&mut mbi, info::MODS_COUNT, modules.len() as u32);
    put_u32(&mut mbi, info::MODS_ADDR, mods_addr as u32);
    put_u32(&mut mbi, info::MMAP_LENGTH, mmap.len() as u32);
    put_u32(&mut mbi, info::MMAP_ADDR, mmap_addr as u32);
    put_u32(&mut mbi, info::BOOT_LOADER_NAME_PTR, name_addr);
    write_ram(ram, info_addr, &mbi).ok_or(room)?;

    // "3.2 Machine state": EAX = magic, EBX = info, flat segments, PE on, PG off, IF off.
    let mut st = BootState::protected32(entry, gdt);
    st.regs[EAX] = BOOTLOADER_MAGIC;
    st.regs[EBX] = info_addr as u32;
    st.regs[ESP] = (stack + STACK_SIZE as u64) as u32;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::super::{BOOT_CS, BOOT_DS, PC_RESERVED};
    use super::*;
    use crate::cpu::{cr0, flags, Cpu, CS, SS};
    use alloc::string::ToString;
    use alloc::vec;

    const MIB: usize = 1 << 20;

    fn rd32(ram: &[u8], a: u32) -> u32 {
        let a = a as usize;
        u32::from_le_bytes(ram[a..a + 4].try_into().unwrap())
    }
    fn rd64(ram: &[u8], a: u32) -> u64 {
        let a = a as usize;
        u64::from_le_bytes(ram[a..a + 8].try_into().unwrap())
    }
    fn cstr(ram: &[u8], a: u32) -> &str {
        let a = a as usize;
        let n = ram[a..].iter().position(|&b| b == 0).unwrap();
        core::str::from_utf8(&ram[a..a + n]).unwrap()
    }

    /// A Multiboot header with `flags` (and zeroed address fields when bit 16 is set).
    fn mb_header(flags: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&HEADER_MAGIC.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags).to_le_bytes());
        if flags & header_flags::AOUT_KLUDGE != 0 {
            h.extend_from_slice(&[0; 20]);
        }
        h
    }

    struct Ph {
        vaddr: u32,
        paddr: u32,
        data: Vec<u8>,
        memsz: u32,
    }

    /// An ELF32 i386 executable with the Multiboot header right after the program headers
    /// and each segment's bytes after that.
    fn elf(entry: u32, phs: &[Ph], header: &[u8]) -> Vec<u8> {
        let phoff = 52usize;
        let mut body_off = phoff + 32 * phs.len() + header.len();
        let mut img = vec![0u8; body_off];
        img[0..4].copy_from_slice(b"\x7fELF");
        img[4] = 1;
        img[5] = 1;
        img[6] = 1;
        img[16..18].copy_from_slice(&2u16.to_le_bytes());
        img[18..20].copy_from_slice(&3u16.to_le_bytes());
        img[20..24].copy_from_slice(&1u32.to_le_bytes());
        img[24..28].copy_from_slice(&entry.to_le_bytes());
        img[28..32].copy_from_slice(&(phoff as u32).to_le_bytes());
        img[40..42].copy_from_slice(&52u16.to_le_bytes());
        img[42..44].copy_from_slice(&32u16.to_le_bytes());
        img[44..46].copy_from_slice(&(phs.len() as u16).to_le_bytes());
        let hdr_at = phoff + 32 * phs.len();
        img[hdr_at..hdr_at + header.len()].copy_from_slice(header);
        for (i, p) in phs.iter().enumerate() {
            let ph = phoff + 32 * i;
            let fields = [1, body_off as u32, p.vaddr, p.paddr, p.data.len() as u32, p.memsz, 7, 4];
            for (j, v) in fields.iter().enumerate() {
                img[ph + 4 * j..ph + 4 * j + 4].copy_from_slice(&v.to_le_bytes());
            }
            body_off += p.data.len();
        }
        for p in phs {
            img.extend_from_slice(&p.data);
        }
        img
    }

    /// A higher-half style kernel: text linked at 0xC0100000, loaded at 1 MiB; data + bss.
    fn sample_elf() -> Vec<u8> {
        elf(
            0xc010_0010,
            &[
                Ph { vaddr: 0xc010_0000, paddr: 0x10_0000, data: vec![0x90; 0x40], memsz: 0x40 },
                Ph { vaddr: 0xc010_2000, paddr: 0x10_2000, data: vec![0x5a; 16], memsz: 0x1100 },
            ],
            &mb_header(header_flags::PAGE_ALIGN | header_flags::MEMORY_INFO),
        )
    }

    #[test]
    fn loads_an_elf_kernel_with_modules() {
        let k = sample_elf();
        let mut ram = vec![0xaau8; 32 * MIB];
        let m1: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let m2 = b"second".to_vec();
        let mods = [Module { data: &m1, cmdline: "/boot/m1 arg=1" }, Module { data: &m2, cmdline: "" }];
        let st = load_multiboot(&mut ram, &k, "/kernel root=sda", &mods, &PC_RESERVED).unwrap();

        // Segments, bss zeroed, entry translated to its physical address.
        assert!(ram[0x10_0000..0x10_0040].iter().all(|&b| b == 0x90));
        assert_eq!(ram[0x10_0040], 0xaa);
        assert!(ram[0x10_2000..0x10_2010].iter().all(|&b| b == 0x5a));
        assert!(ram[0x10_2010..0x10_3100].iter().all(|&b| b == 0));
        assert_eq!(ram[0x10_3100], 0xaa);
        assert_eq!(st.eip, 0x10_0010);

        // Registers and segments (3.2 Machine state).
        assert_eq!(st.regs[EAX], BOOTLOADER_MAGIC);
        let mbi = st.regs[EBX];
        assert!((0x1000..LOW_RAM_END).contains(&mbi), "information in low memory: {mbi:#x}");
        assert_eq!((st.cs, st.ds, st.ss, st.fs, st.gs), (BOOT_CS, BOOT_DS, BOOT_DS, BOOT_DS, BOOT_DS));
        assert_eq!(st.cr0 & (cr0::PE | cr0::PG), cr0::PE);
        assert_eq!(st.eflags & (flags::IF | flags::VM), 0);
        let g = st.gdt.base as usize;
        assert_eq!(st.gdt.limit, 31);
        assert_eq!(&ram[g + 0x10..g + 0x18], &[0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0]);
        assert!(st.esp() > 0x1000 && st.esp() <= LOW_RAM_END && st.esp() % 16 == 0);

        // The information structure.
        let fl = rd32(&ram, mbi);
        assert_eq!(fl, info::MEMORY | info::CMDLINE | info::MODS | info::MMAP | info::BOOT_LOADER_NAME);
        assert_eq!(rd32(&ram, mbi + 4), 639);
        assert_eq!(rd32(&ram, mbi + 8), 31 * 1024);
        assert_eq!(cstr(&ram, rd32(&ram, mbi + 16)), "/kernel root=sda");
        assert_eq!(cstr(&ram, rd32(&ram, mbi + 64)), "v386");
        assert!(ram[mbi as usize + 68..mbi as usize + info::SIZE].iter().all(|&b| b == 0));

        // Modules: page aligned after the kernel (which ends at 0x103100), end exclusive.
        assert_eq!(rd32(&ram, mbi + 20), 2);
        let ma = rd32(&ram, mbi + 24);
        let (s1, e1) = (rd32(&ram, ma), rd32(&ram, ma + 4));
        assert_eq!((s1, e1), (0x10_4000, 0x10_4000 + 5000));
        assert_eq!(&ram[s1 as usize..e1 as usize], &m1[..]);
        assert_eq!(cstr(&ram, rd32(&ram, ma + 8)), "/boot/m1 arg=1");
        assert_eq!(rd32(&ram, ma + 12), 0);
        let (s2, e2) = (rd32(&ram, ma + 16), rd32(&ram, ma + 20));
        assert_eq!((s2, e2), (0x10_6000, 0x10_6006));
        assert_eq!(&ram[s2 as usize..e2 as usize], b"second");
        assert_eq!(cstr(&ram, rd32(&ram, ma + 24)), "");

        // The memory map, each entry preceded by its size.
        let (len, at) = (rd32(&ram, mbi + 44), rd32(&ram, mbi + 48));
        assert_eq!(len, 6 * 24);
        let expect = super::super::pc_memory_map(32 * MIB as u64);
        for (i, e) in expect.iter().enumerate() {
            let a = at + 24 * i as u32;
            assert_eq!(rd32(&ram, a), 20);
            assert_eq!((rd64(&ram, a + 4), rd64(&ram, a + 12), rd32(&ram, a + 20)), (e.addr, e.size, e.kind));
        }
        assert_eq!((rd64(&ram, at + 4 + 48), rd32(&ram, at + 20 + 48)), (0x10_0000, 1));

        // Applied to a CPU.
        let mut cpu = Cpu::new();
        st.apply(&mut cpu);
        assert!(cpu.pmode() && cpu.code32());
        assert_eq!(cpu.regs[EAX], BOOTLOADER_MAGIC);
        assert_eq!(cpu.regs[EBX], mbi);
        assert_eq!(cpu.eip, 0x10_0010);
        assert_eq!(cpu.segs[CS as usize].limit, 0xffff_ffff);
        assert!(cpu.segs[SS as usize].writable());
    }

    /// An a.out-kludge image: 0x40 bytes of code, the header at file offset 0x40, data up to
    /// 0x200 in the file, of which load_end_addr takes 0x180, and bss to 0x400.
    fn sample_aout(load: u32) -> Vec<u8> {
        let mut img: Vec<u8> = (0..0x200u32).map(|i| (i as u8) | 1).collect();
        let h = mb_header(header_flags::AOUT_KLUDGE | header_flags::MEMORY_INFO | header_flags::VIDEO_MODE);
        img[0x40..0x40 + h.len()].copy_from_slice(&h);
        for (i, v) in [load + 0x40, load, load + 0x180, load + 0x400, load + 8].iter().enumerate() {
            img[0x4c + 4 * i..0x50 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        img
    }

    #[test]
    fn loads_an_aout_kludge_kernel() {
        let k = sample_aout(0x20_0000);
        let h = find_header(&k).unwrap();
        assert_eq!(h.offset, 0x40);
        assert_eq!(
            h.aout,
            Some(AoutKludge {
                header_addr: 0x20_0040,
                load_addr: 0x20_0000,
                load_end_addr: 0x20_0180,
                bss_end_addr: 0x20_0400,
                entry_addr: 0x20_0008
            })
        );
        let mut ram = vec![0xeeu8; 8 * MIB];
        let st = load_multiboot(&mut ram, &k, "", &[], &[]).unwrap();
        assert_eq!(&ram[0x20_0000..0x20_0180], &k[..0x180]);
        assert!(ram[0x20_0180..0x20_0400].iter().all(|&b| b == 0));
        assert_eq!(ram[0x20_0400], 0xee);
        assert_eq!(st.eip, 0x20_0008);
        let mbi = st.regs[EBX];
        assert_eq!(rd32(&ram, mbi + 8), 7 * 1024);
        assert_eq!(rd32(&ram, mbi + 20), 0);
        assert_eq!(rd32(&ram, mbi + 44), 3 * 24);
        assert_eq!(cstr(&ram, rd32(&ram, mbi + 16)), "");

        // load_end_addr 0: the rest of the file; bss_end_addr 0: no bss.
        let mut k2 = k.clone();
        k2[0x54..0x5c].fill(0);
        let mut ram = vec![0xeeu8; 8 * MIB];
        load_multiboot(&mut ram, &k2, "", &[], &[]).unwrap();
        assert_eq!(&ram[0x20_0000..0x20_0200], &k2[..]);
        assert_eq!(ram[0x20_0200], 0xee);
    }

    #[test]
    fn a_flat_image_loads_as_it_is_and_starts_after_its_header() {
        let body = [0xfa, 0xf4]; // cli; hlt
        let k = flat_image(0x10_0000, &body);
        assert_eq!(k.len(), FLAT_HEADER_SIZE as usize + body.len());
        let h = find_header(&k).unwrap();
        assert_eq!((h.offset, h.flags), (0, header_flags::AOUT_KLUDGE));
        let mut ram = vec![0xeeu8; 4 * MIB];
        let st = load_multiboot(&mut ram, &k, "", &[], &[]).unwrap();
        assert_eq!(&ram[0x10_0000..0x10_0000 + k.len()], &k[..]);
        assert_eq!(ram[0x10_0000 + k.len()], 0xee);
        assert_eq!(st.eip, 0x10_0000 + FLAT_HEADER_SIZE);
    }

    #[test]
    fn info_area_avoids_the_kernel() {
        // A kernel loaded at 0x8000: the information goes below it.
        let k = sample_aout(0x8000);
        let mut ram = vec![0u8; 4 * MIB];
        let st = load_multiboot(&mut ram, &k, "x", &[], &[]).unwrap();
        let mbi = st.regs[EBX];
        assert!((0x1000..0x8000).contains(&mbi));
        assert!(st.gdt.base >= 0x1000 && st.gdt.base + 32 <= 0x8000);

        // At 0x1000 nothing fits below it: after it.
        let k = sample_aout(0x1000);
        let st = load_multiboot(&mut ram, &k, "x", &[], &[]).unwrap();
        assert!(st.regs[EBX] >= 0x2000 && st.esp() > 0x2000);
        assert_eq!(&ram[0x1000..0x1180], &k[..0x180]);

        // A kernel ending just below 640 KiB: modules and information move above 1 MiB.
        let k = sample_aout(0x9_f000);
        let m = [0x33u8; 0x2000];
        let st = load_multiboot(&mut ram, &k, "x", &[Module { data: &m, cmdline: "m" }], &[]).unwrap();
        let mbi = st.regs[EBX];
        let ma = rd32(&ram, mbi + 24);
        assert_eq!(rd32(&ram, ma), 0x10_0000);
        // The area below the kernel is still free and is used.
        assert!(mbi < 0x9_f000);
    }

    #[test]
    fn errors() {
        let mut ram = vec![0u8; 4 * MIB];
        let none = &[] as &[Module];
        assert_eq!(load_multiboot(&mut ram, &[0u8; 9000], "", none, &[]), Err(MultibootError::NoHeader));
        assert_eq!(load_multiboot(&mut ram, &[], "", none, &[]), Err(MultibootError::NoHeader));

        // The header past 8192 bytes, or misaligned: not found.
        let mut far = vec![0u8; 8192];
        far.extend_from_slice(&mb_header(0));
        assert_eq!(find_header(&far), Err(MultibootError::NoHeader));
        let mut mis = vec![0u8; 2];
        mis.extend_from_slice(&mb_header(0));
        assert_eq!(find_header(&mis), Err(MultibootError::NoHeader));
        // Ending exactly at 8192 is fine.
        let mut edge = vec![0u8; 8180];
        edge.extend_from_slice(&mb_header(0));
        assert_eq!(find_header(&edge).unwrap().offset, 8180);

        let mut bad = sample_elf();
        let at = 52 + 64 + 8;
        bad[at] ^= 1;
        assert_eq!(load_multiboot(&mut ram, &bad, "", none, &[]), Err(MultibootError::BadChecksum { offset: 116 }));

        // Requirement bits this loader does not know.
        let k = elf(0, &[Ph { vaddr: 0x10_0000, paddr: 0x10_0000, data: vec![1], memsz: 1 }], &mb_header(1 << 3 | 1));
        assert_eq!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::UnsupportedFlags(8)));

        // ELF problems.
        let good = sample_elf();
        for (offset, value, what) in
            [(4usize, 2u8, "32-bit"), (5, 2, "little-endian"), (16, 1, "ET_EXEC"), (18, 62, "EM_386")]
        {
            let mut k = good.clone();
            k[offset] = value;
            match load_multiboot(&mut ram, &k, "", none, &[]) {
                Err(MultibootError::BadElf(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        let mut k = good.clone();
        k[0] = 0;
        assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadElf(_))));
        let mut k = good.clone();
        k[44] = 200; // phnum past the end of the file
        assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadElf(_))));
        let mut k = good.clone();
        k[52 + 16] = 0x41; // filesz > memsz
        assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadElf(_))));
        let mut k = good.clone();
        k[52 + 4 + 2] = 1; // p_offset beyond the file
        assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadElf(_))));
        let k = elf(0x10_0000, &[], &mb_header(0));
        assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadElf(_))));

        // Outside RAM.
        let k = elf(0x10_0000, &[Ph { vaddr: 0, paddr: 0x3f_fff0, data: vec![1; 8], memsz: 0x20 }], &mb_header(0));
        assert_eq!(
            load_multiboot(&mut ram, &k, "", none, &[]),
            Err(MultibootError::SegmentOutsideRam { addr: 0x3f_fff0, size: 0x20 })
        );
        let k = elf(0x40_0000, &[Ph { vaddr: 0, paddr: 0x10_0000, data: vec![1; 8], memsz: 8 }], &mb_header(0));
        assert_eq!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::EntryOutsideRam(0x40_0000)));
        let k = sample_aout(0x3f_ff00);
        assert!(matches!(
            load_multiboot(&mut ram, &k, "", none, &[]),
            Err(MultibootError::SegmentOutsideRam { addr: 0x3f_ff00, .. })
        ));

        // a.out kludge inconsistencies.
        let base = sample_aout(0x20_0000);
        let set = |i: usize, v: u32| {
            let mut k = base.clone();
            k[0x4c + 4 * i..0x50 + 4 * i].copy_from_slice(&v.to_le_bytes());
            k
        };
        for k in [
            set(1, 0x20_0041), // load_addr above header_addr
            set(0, 0x20_0100), // header_addr - load_addr beyond the header's file offset
            set(2, 0x1f_0000), // load_end_addr below load_addr
            set(2, 0x20_0300), // load_end_addr past the file
            set(3, 0x20_0100), // bss_end_addr below load_end_addr
        ] {
            assert!(matches!(load_multiboot(&mut ram, &k, "", none, &[]), Err(MultibootError::BadAoutKludge(_))));
        }
        // The address fields cut off by the end of the file.
        assert!(matches!(find_header(&base[..0x58]), Err(MultibootError::BadAoutKludge(_))));

        // A module larger than what is left.
        let big = vec![0u8; 3 * MIB];
        assert_eq!(
            load_multiboot(&mut ram, &good, "", &[Module { data: &big, cmdline: "" }], &[]),
            Err(MultibootError::ModuleTooLarge { index: 0, size: 3 * MIB })
        );
        // Information that fits nowhere: a kernel filling low memory and all RAM above it.
        let fill = elf(
            0x1000,
            &[Ph { vaddr: 0x1000, paddr: 0x1000, data: vec![0; 4], memsz: (4 * MIB - 0x1000 - 16) as u32 }],
            &mb_header(0),
        );
        assert!(matches!(load_multiboot(&mut ram, &fill, "", none, &[]), Err(MultibootError::NoRoomForInfo { .. })));

        for e in [
            MultibootError::NoHeader,
            MultibootError::BadChecksum { offset: 4 },
            MultibootError::UnsupportedFlags(8),
            MultibootError::BadAoutKludge("x"),
            MultibootError::BadElf("y"),
            MultibootError::SegmentOutsideRam { addr: 1, size: 2 },
            MultibootError::EntryOutsideRam(3),
            MultibootError::ModuleTooLarge { index: 0, size: 1 },
            MultibootError::NoRoomForInfo { need: 9 },
        ] {
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn mem_upper_stops_at_a_hole() {
        let mut ram = vec![0u8; 16 * MIB];
        let st = load_multiboot(&mut ram, &sample_elf(), "", &[], &[E820Entry::reserved(0xc0_0000, 0x1000)]).unwrap();
        assert_eq!(rd32(&ram, st.regs[EBX] + 8), 11 * 1024);
    }

    #[test]
    fn garbage_never_panics() {
        let bases = [sample_elf(), sample_aout(0x20_0000)];
        let mut ram = vec![0u8; 4 * MIB];
        let mut x = 0x9e37_79b9u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let m = [1u8; 100];
        for round in 0..3000 {
            let mut k = bases[round % 2].clone();
            for _ in 0..6 {
                let r = next();
                let i = r as usize % k.len().min(0x80);
                k[i] = (r >> 24) as u8;
            }
            // Keep the header's checksum right half of the time so loading goes deeper.
            if round % 4 < 2 {
                if let Ok(h) = find_header(&k) {
                    let f = h.flags;
                    let o = h.offset;
                    k[o + 8..o + 12].copy_from_slice(&0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(f).to_le_bytes());
                }
            }
            let cut = next() as usize % (k.len() + 1);
            let _ = load_multiboot(&mut ram, &k[..cut], "c", &[Module { data: &m, cmdline: "m" }], &[]);
            let _ = load_multiboot(&mut ram, &k, "", &[], &PC_RESERVED);
        }
    }
}
