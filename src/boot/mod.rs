//! Loading kernels without a BIOS, as QEMU's `-kernel FILE -initrd FILE -append "..."` does:
//! the files are placed straight into guest RAM and the CPU is started at the kernel's
//! 32-bit entry point with the state its boot protocol promises.
//!
//! - [`linux`]: the Linux/x86 boot protocol (a bzImage, an initrd, a command line).
//! - [`multiboot`]: Multiboot v1 kernels (ELF32 or the a.out kludge) with modules.
//!
//! This file holds what both loaders (and the fw_cfg `etc/e820` file) share:
//! - the e820 memory map ([`E820Entry`], [`memory_map`], [`pc_memory_map`]);
//! - the GDT the loaders write into low memory ([`BOOT_GDT`], selectors [`BOOT_CS`],
//!   [`BOOT_DS`]), so the segment registers the kernel is entered with match a real table;
//! - the entry state [`BootState`] and [`BootState::apply`], which puts a [`Cpu`] in it;
//! - bounds-checked access to guest RAM and to the image files: nothing in a file image
//!   may make the emulator panic, so every offset and length goes through these.

pub mod linux;
pub mod multiboot;

use crate::cpu::flags;
use crate::cpu::{cr0, Cpu, Seg, TableReg, CS, DS, ES, FS, GS, SS};
use alloc::vec::Vec;

/// e820 range types (ACPI Specification, "System Address Map Interfaces": AddressRangeMemory = 1,
/// AddressRangeReserved = 2, AddressRangeACPI = 3, AddressRangeNVS = 4, AddressRangeUnusable = 5).
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;
pub const E820_NVS: u32 = 4;
pub const E820_UNUSABLE: u32 = 5;

/// One range of the physical memory map, as INT 15h AX=E820h reports it and as the Linux zero
/// page (`e820_table`), the Multiboot `mmap` and QEMU's fw_cfg file `etc/e820` carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    /// [`E820_RAM`], [`E820_RESERVED`], …
    pub kind: u32,
}

impl E820Entry {
    /// Bytes of one entry in its packed form (`u64 addr, u64 size, u32 type`).
    pub const SIZE: usize = 20;

    pub const fn ram(addr: u64, size: u64) -> Self {
        Self { addr, size, kind: E820_RAM }
    }

    pub const fn reserved(addr: u64, size: u64) -> Self {
        Self { addr, size, kind: E820_RESERVED }
    }

    /// One past the last byte (saturating at 2^64).
    pub const fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// The packed little-endian form: address, size, type.
    pub fn to_bytes(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.to_le_bytes());
        b
    }
}

/// The end of conventional memory the map reports as RAM: 639 KiB. A BIOS keeps its extended
/// data area in the last KiB below 640 KiB; the map keeps that KiB reserved like a PC's does.
pub const LOW_RAM_END: u32 = 0x9_fc00;
/// Where RAM resumes above the legacy video, option-ROM and BIOS area: 1 MiB.
pub const HIGH_RAM_START: u32 = 0x10_0000;

/// The reserved ranges of the PC's upper address space that the standard map lists: the
/// I/O APIC, the local APIC and the BIOS ROM (mapped just below 4 GiB; 256 KiB covers it).
pub const PC_RESERVED: [E820Entry; 3] = [
    E820Entry::reserved(0xfec0_0000, 0x1000),
    E820Entry::reserved(0xfee0_0000, 0x1000),
    E820Entry::reserved(0xfffc_0000, 0x4_0000),
];

/// The memory map of a PC with `ram_size` bytes of RAM: RAM below [`LOW_RAM_END`], the
/// reserved EBDA/video/ROM area up to 1 MiB, RAM from 1 MiB to the end of RAM, then each
/// range of `reserved` (entries of size 0 are dropped), sorted by address.
pub fn memory_map(ram_size: u64, reserved: &[E820Entry]) -> Vec<E820Entry> {
    let low = LOW_RAM_END as u64;
    let high = HIGH_RAM_START as u64;
    let mut map = Vec::with_capacity(3 + reserved.len());
    map.push(E820Entry::ram(0, ram_size.min(low)));
    map.push(E820Entry::reserved(low, high - low));
    if ram_size > high {
        map.push(E820Entry::ram(high, ram_size - high));
    }
    map.extend(reserved.iter().copied().filter(|e| e.size != 0));
    // A stable sort keeps the caller's order among ranges that start at the same address.
    map.sort_by_key(|e| e.addr);
    map
}

/// [`memory_map`] with the standard reserved ranges, [`PC_RESERVED`].
pub fn pc_memory_map(ram_size: u64) -> Vec<E820Entry> {
    memory_map(ram_size, &PC_RESERVED)
}

/// A map in its packed form, entry after entry: the contents of fw_cfg's `etc/e820`.
pub fn e820_bytes(map: &[E820Entry]) -> Vec<u8> {
    map.iter().flat_map(|e| e.to_bytes()).collect()
}

/// The code selector the kernels are entered with: the Linux boot protocol's `__BOOT_CS`
/// (Documentation/x86/boot.rst, "32-bit Boot Protocol"). Multiboot only asks for a flat code
/// segment, so it is entered with the same table.
pub const BOOT_CS: u16 = 0x10;
/// The data selector in DS, ES, FS, GS and SS: Linux's `__BOOT_DS`.
pub const BOOT_DS: u16 = 0x18;

/// The GDT the loaders write, as (low, high) descriptor dwords (SDM Vol. 3A §3.4.5): two null
/// entries, then flat 4 GiB ring-0 code (execute/read) and data (read/write) with G = 1 and
/// D/B = 1. The accessed bits are set already, so loading them writes nothing back.
pub const BOOT_GDT: [(u32, u32); 4] = [(0, 0), (0, 0), (0x0000_ffff, 0x00cf_9b00), (0x0000_ffff, 0x00cf_9300)];
/// Bytes of [`BOOT_GDT`] in memory.
pub const BOOT_GDT_SIZE: usize = BOOT_GDT.len() * 8;

/// Write [`BOOT_GDT`] at `addr`; `None` when it does not fit in RAM.
pub(crate) fn write_gdt(ram: &mut [u8], addr: u32) -> Option<TableReg> {
    let mut bytes = [0u8; BOOT_GDT_SIZE];
    for (i, (lo, hi)) in BOOT_GDT.iter().enumerate() {
        bytes[i * 8..i * 8 + 4].copy_from_slice(&lo.to_le_bytes());
        bytes[i * 8 + 4..i * 8 + 8].copy_from_slice(&hi.to_le_bytes());
    }
    write_ram(ram, addr as u64, &bytes)?;
    Some(TableReg { base: addr, limit: (BOOT_GDT_SIZE - 1) as u16 })
}

/// Where and how a loaded kernel starts: the CPU state at its entry point.
///
/// Both loaders enter 32-bit protected mode with paging off (CR0 = PE | ET), interrupts off,
/// and the segment registers loaded from [`BOOT_GDT`], which the loader wrote at `gdt.base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootState {
    /// CR0 at entry: [`cr0::PE`] (protected mode) and [`cr0::ET`]; PG clear.
    pub cr0: u32,
    pub eip: u32,
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI: index with [`crate::cpu::EAX`] and friends.
    pub regs: [u32; 8],
    /// EFLAGS at entry (IF and VM clear; bit 1 is set when applied).
    pub eflags: u32,
    /// The GDT register: where the loader wrote [`BOOT_GDT`].
    pub gdt: TableReg,
    pub cs: u16,
    pub ds: u16,
    pub es: u16,
    pub fs: u16,
    pub gs: u16,
    pub ss: u16,
}

impl BootState {
    /// Flat protected-mode entry with the boot selectors and every register zero.
    pub(crate) fn protected32(eip: u32, gdt: TableReg) -> Self {
        BootState {
            cr0: cr0::PE | cr0::ET,
            eip,
            regs: [0; 8],
            eflags: flags::FIXED1,
            gdt,
            cs: BOOT_CS,
            ds: BOOT_DS,
            es: BOOT_DS,
            fs: BOOT_DS,
            gs: BOOT_DS,
            ss: BOOT_DS,
        }
    }

    /// The stack pointer at entry.
    pub fn esp(&self) -> u32 {
        self.regs[crate::cpu::ESP]
    }

    /// Put `cpu` in this state, as if a boot loader had just jumped to the kernel: the rest of
    /// the processor is as after reset (its instruction count is kept), IDTR is empty (any
    /// exception before the kernel loads its own IDT shuts the machine down), CPL 0. The
    /// descriptor caches are built from the [`BOOT_GDT`] entries the selectors name, so they
    /// agree with the table in memory; a selector outside the table loads a null segment.
    pub fn apply(&self, cpu: &mut Cpu) {
        cpu.start_real(0, 0);
        cpu.cr0 = self.cr0;
        cpu.gdtr = self.gdt;
        cpu.idtr = TableReg { base: 0, limit: 0 };
        cpu.segs[CS as usize] = boot_seg(self.cs);
        cpu.segs[DS as usize] = boot_seg(self.ds);
        cpu.segs[ES as usize] = boot_seg(self.es);
        cpu.segs[FS as usize] = boot_seg(self.fs);
        cpu.segs[GS as usize] = boot_seg(self.gs);
        cpu.segs[SS as usize] = boot_seg(self.ss);
        cpu.cpl = (self.cs & 3) as u8;
        cpu.regs = self.regs;
        cpu.eip = self.eip;
        cpu.flags.bits = self.eflags | flags::FIXED1;
        cpu.halted = false;
        cpu.tlb.flush_all();
        // The loader wrote RAM behind the decoded-instruction cache's back.
        cpu.icache.invalidate_all();
    }
}

/// The descriptor cache for `sel` as loaded from [`BOOT_GDT`].
fn boot_seg(sel: u16) -> Seg {
    let index = (sel >> 3) as usize;
    match BOOT_GDT.get(index) {
        Some(&(lo, hi)) if index != 0 && sel & 4 == 0 && hi & (1 << 15) != 0 => Seg::from_descriptor(sel, lo, hi),
        _ => Seg::null(sel),
    }
}

/// `x` rounded up to a multiple of `align` (a power of two); `None` on overflow.
pub(crate) fn align_up(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// Copy `data` into RAM at `addr`; `None` (and nothing written) when it does not all fit.
pub(crate) fn write_ram(ram: &mut [u8], addr: u64, data: &[u8]) -> Option<()> {
    ram_slice(ram, addr, data.len() as u64)?.copy_from_slice(data);
    Some(())
}

/// The RAM bytes `addr..addr + len`, when they all exist.
pub(crate) fn ram_slice(ram: &mut [u8], addr: u64, len: u64) -> Option<&mut [u8]> {
    let start = usize::try_from(addr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    ram.get_mut(start..end)
}

/// Little-endian reads from an image file; `None` past its end.
pub(crate) fn get_u8(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

pub(crate) fn get_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

pub(crate) fn get_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

pub(crate) fn get_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

/// Little-endian writes into a structure being built in a host buffer. The loaders call these
/// with fixed offsets inside buffers of fixed size; an offset past the end writes nothing.
pub(crate) fn put_u8(b: &mut [u8], off: usize, v: u8) {
    if let Some(x) = b.get_mut(off) {
        *x = v;
    }
}

pub(crate) fn put_u16(b: &mut [u8], off: usize, v: u16) {
    put_bytes(b, off, &v.to_le_bytes());
}

pub(crate) fn put_u32(b: &mut [u8], off: usize, v: u32) {
    put_bytes(b, off, &v.to_le_bytes());
}

pub(crate) fn put_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
        dst.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::{EAX, ESP};

    #[test]
    fn standard_map_for_32_mib() {
        let map = pc_memory_map(32 << 20);
        assert_eq!(
            map,
            [
                E820Entry::ram(0, 0x9_fc00),
                E820Entry::reserved(0x9_fc00, 0x6_0400),
                E820Entry::ram(0x10_0000, 31 << 20),
                E820Entry::reserved(0xfec0_0000, 0x1000),
                E820Entry::reserved(0xfee0_0000, 0x1000),
                E820Entry::reserved(0xfffc_0000, 0x4_0000),
            ]
        );
    }

    #[test]
    fn map_of_small_ram_and_caller_ranges() {
        // Less than 640 KiB: the low RAM entry shrinks, no high RAM; ranges are sorted and
        // empty ones dropped.
        let map = memory_map(
            0x8_0000,
            &[
                E820Entry::reserved(0xfee0_0000, 0x1000),
                E820Entry::reserved(0x5000, 0),
                E820Entry::reserved(0xe_0000, 1),
            ],
        );
        assert_eq!(
            map,
            [
                E820Entry::ram(0, 0x8_0000),
                E820Entry::reserved(0x9_fc00, 0x6_0400),
                E820Entry::reserved(0xe_0000, 1),
                E820Entry::reserved(0xfee0_0000, 0x1000),
            ]
        );
    }

    #[test]
    fn packed_entries() {
        let b = e820_bytes(&[E820Entry::ram(0x1122_3344_5566_7788, 0x10), E820Entry::reserved(1, 2)]);
        assert_eq!(b.len(), 40);
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x10u64.to_le_bytes());
        assert_eq!(&b[16..20], &1u32.to_le_bytes());
        assert_eq!(&b[36..40], &2u32.to_le_bytes());
    }

    #[test]
    fn gdt_and_apply() {
        let mut ram = vec![0u8; 0x2000];
        let gdt = write_gdt(&mut ram, 0x1000).unwrap();
        assert_eq!(gdt, TableReg { base: 0x1000, limit: 31 });
        assert_eq!(&ram[0x1010..0x1018], &[0xff, 0xff, 0, 0, 0, 0x9b, 0xcf, 0]);
        assert_eq!(&ram[0x1018..0x1020], &[0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0]);
        assert!(write_gdt(&mut ram, 0x1ff0).is_none());

        let mut st = BootState::protected32(0x10_0000, gdt);
        st.regs[EAX] = 0x1234;
        st.regs[ESP] = 0x8000;
        let mut cpu = Cpu::new();
        cpu.icount = 77;
        st.apply(&mut cpu);
        assert_eq!(cpu.icount, 77);
        assert!(cpu.pmode() && cpu.code32() && cpu.stack32());
        assert_eq!(cpu.cr0 & cr0::PG, 0);
        assert!(!cpu.flags.if_());
        assert_eq!(cpu.eip, 0x10_0000);
        assert_eq!(cpu.regs[EAX], 0x1234);
        assert_eq!(cpu.gdtr, gdt);
        // The caches equal what a descriptor load from the table in RAM would produce.
        let code = Seg::from_descriptor(0x10, 0x0000_ffff, 0x00cf_9b00);
        assert_eq!(cpu.segs[CS as usize], code);
        assert_eq!(cpu.segs[CS as usize], Seg::flat32(0x10, true));
        for r in [DS, ES, FS, GS, SS] {
            assert_eq!(cpu.segs[r as usize], Seg::flat32(0x18, false));
        }
        assert_eq!(boot_seg(0), Seg::null(0));
        assert_eq!(boot_seg(0x08), Seg::null(0x08));
        assert_eq!(boot_seg(0x20), Seg::null(0x20));
    }

    #[test]
    fn readers_stop_at_the_end() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(get_u32(&b, 1), Some(0x0504_0302));
        assert_eq!(get_u32(&b, 2), None);
        assert_eq!(get_u16(&b, usize::MAX), None);
        assert_eq!(get_u64(&b, 0), None);
        let mut ram = [0u8; 8];
        assert!(write_ram(&mut ram, 6, &[1, 2, 3]).is_none());
        assert!(write_ram(&mut ram, u64::MAX, &[1]).is_none());
        assert_eq!(ram, [0; 8]);
        put_u32(&mut ram, 6, 0xffff_ffff);
        assert_eq!(ram, [0; 8]);
    }
}
