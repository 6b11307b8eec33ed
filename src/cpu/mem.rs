//! Memory access as instructions see it: segment checks (SDM Vol. 3A §5.3–5.5) turn an
//! offset into a linear address, the TLB ([`super::mmu`]) turns that into a physical one,
//! and the bus supplies the bytes. Also the stack (push/pop by SS.B) and code fetch.
//!
//! The hot path is a TLB hit on a direct RAM page: one compare of the page tag, one test
//! of the access bit, one slice index. Accesses that straddle a page go byte by byte, after
//! both pages are translated, so a fault never leaves half a write behind.

use super::decode::{self, Fetch, Instr, NO_REG};
use super::exception::Exception;
use super::mmu::{access_bit, exec_bit};
use super::seg::access;
use super::{cr0, flags, Cpu, Res, CS, ESP, SS};
use crate::addr::Phys;
use crate::bus::{Bus, IoSize};

/// An access of `n` bytes at `lin` is not naturally aligned.
#[inline(always)]
fn misaligned(lin: u32, n: u32) -> bool {
    lin & (n - 1) != 0
}

/// An access of `n` bytes at page offset `off` stays inside the page.
#[inline(always)]
fn within_page(off: usize, n: usize) -> bool {
    off + n <= 0x1000
}

macro_rules! lin_priv {
    ($read:ident, $write:ident, $ty:ty, $n:expr, $size:expr) => {
        #[inline(always)]
        pub(crate) fn $read<B: Bus>(&mut self, bus: &mut B, lin: u32, user: bool) -> Result<$ty, Exception> {
            if user && misaligned(lin, $n) {
                self.alignment_check()?;
            }
            let off = (lin & 0xfff) as usize;
            if within_page(off, $n) {
                let e = *self.tlb.lookup(lin >> 12);
                let e = if e.lin_page == lin >> 12 && e.allow & access_bit(user, false) != 0 {
                    e
                } else {
                    self.tlb_fill(bus, lin, user, false)?
                };
                if e.direct {
                    let a = ((e.phys_page as usize) << 12) | off;
                    let r = bus.ram();
                    let mut b = [0u8; $n];
                    b.copy_from_slice(&r[a..a + $n]);
                    return Ok(<$ty>::from_le_bytes(b));
                }
                return Ok(self.read_slow(bus, e.phys_page, off as u32, $size) as $ty);
            }
            let mut v: u64 = 0;
            for i in 0..$n {
                v |= (self.read_lin_u8(bus, lin.wrapping_add(i), user)? as u64) << (8 * i);
            }
            Ok(v as $ty)
        }

        #[inline(always)]
        pub(crate) fn $write<B: Bus>(&mut self, bus: &mut B, lin: u32, v: $ty, user: bool) -> Result<(), Exception> {
            if user && misaligned(lin, $n) {
                self.alignment_check()?;
            }
            let off = (lin & 0xfff) as usize;
            if within_page(off, $n) {
                let e = *self.tlb.lookup(lin >> 12);
                let e = if e.lin_page == lin >> 12 && e.allow & access_bit(user, true) != 0 {
                    e
                } else {
                    self.tlb_fill(bus, lin, user, true)?
                };
                if e.direct_write {
                    let a = ((e.phys_page as usize) << 12) | off;
                    bus.ram()[a..a + $n].copy_from_slice(&v.to_le_bytes());
                    if self.icache.note_write(e.phys_page) {
                        // Self-modifying code: the running block may hold stale bytes.
                        self.break_block = true;
                    }
                } else {
                    self.write_slow(bus, e.phys_page, off as u32, $size, v as u32);
                }
                return Ok(());
            }
            // Straddles a page: translate both pages before writing anything.
            self.translate(bus, lin, user, true)?;
            self.translate(bus, lin.wrapping_add($n - 1), user, true)?;
            for (i, b) in v.to_le_bytes().iter().enumerate() {
                self.write_lin_u8(bus, lin.wrapping_add(i as u32), *b, user)?;
            }
            Ok(())
        }
    };
}

impl Cpu {
    lin_priv!(read_lin_u8, write_lin_u8, u8, 1, IoSize::Byte);
    lin_priv!(read_lin_u16, write_lin_u16, u16, 2, IoSize::Word);
    lin_priv!(read_lin_u32, write_lin_u32, u32, 4, IoSize::Dword);

    /// A read that is not from direct RAM: MMIO, or a PAE frame above 4 GiB, which nothing
    /// backs (all ones, as from an open bus).
    #[inline(never)]
    fn read_slow<B: Bus>(&mut self, bus: &mut B, phys_page: u32, off: u32, size: IoSize) -> u32 {
        // MMIO may change device state (an interrupt line): end the running block.
        self.break_block = true;
        if phys_page >> 20 != 0 {
            return u32::MAX;
        }
        bus.sync(self.icount);
        bus.mmio_read(Phys((phys_page << 12) | off), size)
    }

    /// A write that is not to direct RAM (see [`Self::read_slow`]); dropped above 4 GiB.
    #[inline(never)]
    fn write_slow<B: Bus>(&mut self, bus: &mut B, phys_page: u32, off: u32, size: IoSize, v: u32) {
        self.break_block = true;
        // A device register may have changed (the local APIC's timer is MMIO): the bus is
        // asked for stop requests after the instruction, as after port I/O.
        self.did_io = true;
        if phys_page >> 20 != 0 {
            return;
        }
        bus.sync(self.icount);
        bus.mmio_write(Phys((phys_page << 12) | off), size, v);
    }

    /// An instruction-byte fetch: like a read, but needs the fetch right, which
    /// execute-disable removes (SDM Vol. 3A §4.6).
    pub(crate) fn fetch_lin_u8<B: Bus>(&mut self, bus: &mut B, lin: u32, user: bool) -> Result<u8, Exception> {
        let e = *self.tlb.lookup(lin >> 12);
        let e = if e.lin_page == lin >> 12 && e.allow & exec_bit(user) != 0 {
            e
        } else {
            self.tlb_fill_fetch(bus, lin, user)?
        };
        let off = lin & 0xfff;
        if e.direct {
            return Ok(bus.ram()[((e.phys_page as usize) << 12) | off as usize]);
        }
        Ok(self.read_slow(bus, e.phys_page, off, IoSize::Byte) as u8)
    }

    /// Translate without accessing (used to pre-check both halves of a straddling write).
    pub(crate) fn translate<B: Bus>(
        &mut self,
        bus: &mut B,
        lin: u32,
        user: bool,
        write: bool,
    ) -> Result<u32, Exception> {
        let e = *self.tlb.lookup(lin >> 12);
        let e = if e.lin_page == lin >> 12 && e.allow & access_bit(user, write) != 0 {
            e
        } else {
            self.tlb_fill(bus, lin, user, write)?
        };
        Ok((e.phys_page << 12) | (lin & 0xfff))
    }

    /// #AC when alignment checking is on (SDM Vol. 3A §6.15 "Interrupt 17"): CR0.AM,
    /// EFLAGS.AC and CPL 3. Callers have already seen a misaligned user access.
    #[cold]
    fn alignment_check(&self) -> Result<(), Exception> {
        if self.cr0 & cr0::AM != 0 && self.flags.bits & flags::AC != 0 && self.cpl == 3 {
            Err(Exception::AC)
        } else {
            Ok(())
        }
    }

    /// Supervisor-mode ("implicit") accesses: descriptor tables, the TSS (SDM Vol. 3A §4.6).
    /// (`sys_access` marks them for a V386 nested-page-fault qualification.)
    pub(crate) fn read_sys32<B: Bus>(&mut self, bus: &mut B, lin: u32) -> Result<u32, Exception> {
        self.sys_access = true;
        let r = self.read_lin_u32(bus, lin, false);
        self.sys_access = false;
        r
    }
    pub(crate) fn read_sys16<B: Bus>(&mut self, bus: &mut B, lin: u32) -> Result<u16, Exception> {
        self.sys_access = true;
        let r = self.read_lin_u16(bus, lin, false);
        self.sys_access = false;
        r
    }
    pub(crate) fn write_sys32<B: Bus>(&mut self, bus: &mut B, lin: u32, v: u32) -> Result<(), Exception> {
        self.sys_access = true;
        let r = self.write_lin_u32(bus, lin, v, false);
        self.sys_access = false;
        r
    }
    pub(crate) fn write_sys16<B: Bus>(&mut self, bus: &mut B, lin: u32, v: u16) -> Result<(), Exception> {
        self.sys_access = true;
        let r = self.write_lin_u16(bus, lin, v, false);
        self.sys_access = false;
        r
    }

    /// Check a data access of `len` bytes at `off` in segment `seg` and return its linear
    /// address (SDM Vol. 3A §5.3 limit checks, §5.4.1 type checks).
    #[inline(always)]
    pub(crate) fn seg_lin(&self, seg: u8, off: u32, len: u32, write: bool) -> Result<u32, Exception> {
        // Fast path: a writable expand-up data segment (what flat and real-mode code use)
        // passes every type check for reads and writes alike, so only the limit is left.
        // measured (callgrind, paged memory loop, two accesses per seven instructions):
        // ~119 → 112 host instructions per guest instruction (the full check called
        // `in_limit` out of line).
        let s = &self.segs[seg as usize];
        let kind = access::S | access::CODE | access::DC | access::RW;
        if s.valid && s.access & kind == access::S | access::RW && off as u64 + (len as u64 - 1) <= s.limit as u64 {
            return Ok(s.base.wrapping_add(off));
        }
        self.seg_lin_slow(seg, off, len, write)
    }

    #[inline(never)]
    fn seg_lin_slow(&self, seg: u8, off: u32, len: u32, write: bool) -> Result<u32, Exception> {
        let s = &self.segs[seg as usize];
        let ok = s.valid
            && (if write { s.writable() || !self.pmode() } else { s.readable() || !self.pmode() })
            && s.in_limit(off, len);
        if ok {
            Ok(s.base.wrapping_add(off))
        } else {
            Err(self.seg_fault(seg))
        }
    }

    /// The exception for a failed segment check: #SS(0) for the stack segment, else #GP(0).
    #[cold]
    pub(crate) fn seg_fault(&self, seg: u8) -> Exception {
        if seg == SS {
            Exception::SS(0)
        } else {
            Exception::GP(0)
        }
    }

    #[inline(always)]
    pub(crate) fn rd8<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32) -> Res<u8> {
        let lin = self.seg_lin(seg, off, 1, false)?;
        Ok(self.read_lin_u8(bus, lin, self.cpl == 3)?)
    }
    #[inline(always)]
    pub(crate) fn rd16<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32) -> Res<u16> {
        let lin = self.seg_lin(seg, off, 2, false)?;
        Ok(self.read_lin_u16(bus, lin, self.cpl == 3)?)
    }
    #[inline(always)]
    pub(crate) fn rd32<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32) -> Res<u32> {
        let lin = self.seg_lin(seg, off, 4, false)?;
        Ok(self.read_lin_u32(bus, lin, self.cpl == 3)?)
    }
    #[inline(always)]
    pub(crate) fn wr8<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, v: u8) -> Res<()> {
        let lin = self.seg_lin(seg, off, 1, true)?;
        Ok(self.write_lin_u8(bus, lin, v, self.cpl == 3)?)
    }
    #[inline(always)]
    pub(crate) fn wr16<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, v: u16) -> Res<()> {
        let lin = self.seg_lin(seg, off, 2, true)?;
        Ok(self.write_lin_u16(bus, lin, v, self.cpl == 3)?)
    }
    #[inline(always)]
    pub(crate) fn wr32<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, v: u32) -> Res<()> {
        let lin = self.seg_lin(seg, off, 4, true)?;
        Ok(self.write_lin_u32(bus, lin, v, self.cpl == 3)?)
    }

    /// Read a word or dword by operand size.
    #[inline(always)]
    pub(crate) fn rdv<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, op32: bool) -> Res<u32> {
        if op32 {
            self.rd32(bus, seg, off)
        } else {
            Ok(self.rd16(bus, seg, off)? as u32)
        }
    }
    #[inline(always)]
    pub(crate) fn wrv<B: Bus>(&mut self, bus: &mut B, seg: u8, off: u32, v: u32, op32: bool) -> Res<()> {
        if op32 {
            self.wr32(bus, seg, off, v)
        } else {
            self.wr16(bus, seg, off, v as u16)
        }
    }

    /// The effective address (offset) of a memory operand (SDM Vol. 2A §2.1.5), wrapped to
    /// 16 bits under a 16-bit address size.
    #[inline(always)]
    pub(crate) fn ea(&self, i: &Instr) -> u32 {
        let mut a = i.disp;
        if i.base != NO_REG {
            a = a.wrapping_add(self.regs[i.base as usize]);
        }
        if i.index != NO_REG {
            a = a.wrapping_add(self.regs[i.index as usize] << i.scale);
        }
        if i.ad32 {
            a
        } else {
            a & 0xffff
        }
    }

    // ----- the stack -------------------------------------------------------------------

    /// ESP or SP by the stack's address size.
    #[inline(always)]
    pub(crate) fn sp(&self) -> u32 {
        if self.stack32() {
            self.regs[ESP]
        } else {
            self.regs[ESP] & 0xffff
        }
    }

    /// Set ESP or, for a 16-bit stack, only SP.
    #[inline(always)]
    pub(crate) fn set_sp(&mut self, v: u32) {
        if self.stack32() {
            self.regs[ESP] = v;
        } else {
            self.regs[ESP] = (self.regs[ESP] & 0xffff_0000) | (v & 0xffff);
        }
    }

    /// Stack offset `delta` bytes from the top, wrapped by the stack's address size.
    #[inline(always)]
    pub(crate) fn sp_add(&self, delta: u32) -> u32 {
        let v = self.sp().wrapping_add(delta);
        if self.stack32() {
            v
        } else {
            v & 0xffff
        }
    }

    /// PUSH a word or dword (SDM Vol. 2B "PUSH").
    #[inline(always)]
    pub(crate) fn push<B: Bus>(&mut self, bus: &mut B, v: u32, op32: bool) -> Res<()> {
        let n: u32 = if op32 { 4 } else { 2 };
        let sp = self.sp_add(n.wrapping_neg());
        self.wrv(bus, SS, sp, v, op32)?;
        self.set_sp(sp);
        Ok(())
    }

    /// POP a word or dword; ESP moves only if the read succeeds.
    #[inline(always)]
    pub(crate) fn pop<B: Bus>(&mut self, bus: &mut B, op32: bool) -> Res<u32> {
        let v = self.rdv(bus, SS, self.sp(), op32)?;
        self.set_sp(self.sp_add(if op32 { 4 } else { 2 }));
        Ok(v)
    }

    /// Read the stack `delta` bytes above the top without popping.
    pub(crate) fn peek<B: Bus>(&mut self, bus: &mut B, delta: u32, op32: bool) -> Res<u32> {
        let off = self.sp_add(delta);
        self.rdv(bus, SS, off, op32)
    }

    // ----- code fetch ------------------------------------------------------------------

    /// Decode the instruction at CS:EIP: from the decoded-instruction cache when it holds
    /// it, else from a slice of the RAM page, else byte by byte (page-straddling or
    /// non-RAM code).
    #[inline(always)]
    pub(crate) fn fetch_decode<B: Bus>(&mut self, bus: &mut B, out: &mut Instr) -> Res<()> {
        let cs = &self.segs[CS as usize];
        let code32 = cs.big();
        let off = if code32 { self.eip } else { self.eip & 0xffff };
        let lin = cs.base.wrapping_add(off);
        let user = self.cpl == 3;
        let e = *self.tlb.lookup(lin >> 12);
        if e.lin_page == lin >> 12 && e.allow & exec_bit(user) != 0 && e.direct {
            let phys = (e.phys_page << 12) | (lin & 0xfff);
            if let Some(i) = self.icache.get(phys, code32) {
                // The limit check still applies to the cached bytes (SDM Vol. 3A §5.3).
                if off.wrapping_add(i.len as u32 - 1) <= cs.limit && off <= cs.limit {
                    *out = *i;
                    return Ok(());
                }
            }
            *out = self.decode_slow(bus, Some(phys))?;
            return Ok(());
        }
        *out = self.decode_slow(bus, None)?;
        Ok(())
    }

    #[inline(never)]
    fn decode_slow<B: Bus>(&mut self, bus: &mut B, phys: Option<u32>) -> Res<Instr> {
        let code32 = self.code32();
        let mut f = CodeFetch { cpu: self, bus, eip: 0 };
        f.eip = f.cpu.eip;
        let r = decode::decode(&mut f, code32);
        match r {
            Ok(i) => {
                if let Some(p) = phys {
                    if (p & 0xfff) + i.len as u32 <= 0x1000 {
                        self.icache.insert(p, code32, i);
                    }
                }
                Ok(i)
            }
            Err(decode::DecodeError::Invalid) => Err(Exception::UD.into()),
            Err(decode::DecodeError::TooLong) => Err(Exception::GP(0).into()),
            Err(decode::DecodeError::Fetch(e)) => Err(e.into()),
        }
    }
}

/// Fetches instruction bytes through CS with limit checks and paging.
struct CodeFetch<'a, B: Bus> {
    cpu: &'a mut Cpu,
    bus: &'a mut B,
    eip: u32,
}

impl<B: Bus> Fetch for CodeFetch<'_, B> {
    #[inline(always)]
    fn next_byte(&mut self) -> Result<u8, Exception> {
        let cs = &self.cpu.segs[CS as usize];
        let off = if cs.big() { self.eip } else { self.eip & 0xffff };
        if off > cs.limit {
            return Err(Exception::GP(0));
        }
        let lin = cs.base.wrapping_add(off);
        self.eip = self.eip.wrapping_add(1);
        let user = self.cpu.cpl == 3;
        self.cpu.fetch_lin_u8(self.bus, lin, user)
    }
}
