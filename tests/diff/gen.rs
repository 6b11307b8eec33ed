//! The generator: for one opcode form and one mode, a test case with random operands, flags
//! and memory, in a context where the instruction runs meaningfully (see `README.md`).
//!
//! A case is laid out in the code region as
//!   [back sled: B x `inc (e)di`][tail] [instruction] [forward sled: F x `inc (e)di`][tail]
//! where the tail jumps to `post` (and, for far transfers, first stores CS). Branch targets
//! land inside a sled, so EDI in the dump tells which way and where the branch went.

use super::masks::{self, Mask};
use super::rng::Rng;
use super::x87;
use v386::cpu::decode::table::{Class, Fixed, Form, Operand, FORMS};

pub const CODE_BASE: u32 = 0x9400;
pub const CODE_LIMIT: u32 = 0xFF00;
pub const BLOB_BASE: u32 = 0x10000;
pub const BLOB_LIMIT: u32 = 0x78000;
pub const BLOB_SZ: usize = 192;
pub const POST: u32 = 0x7E10;
pub const SV: u32 = 0x2FA8;
pub const SCR: u32 = 0x3000;
pub const REGION: usize = 128;
pub const NP_PAGE: u32 = 0x80000;
pub const RO_PAGE: u32 = 0x81000;
/// Unassigned I/O ports: reads return all ones on QEMU's PC and on v386, writes vanish.
/// (QEMU 7.2 answers 0 for wider reads at unaligned ports such as 0xE1: only ports whose
/// four bytes all read 0xFF are used.)
pub const PORTS: [u16; 4] = [0xe0, 0xe4, 0x44, 0x58];

/// Register numbers: the CPU's own (SDM Vol. 2A Table 2-1 order).
pub use v386::cpu::{EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Real,
    Pm32,
    Pm32Pg,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Real, Mode::Pm32, Mode::Pm32Pg];
    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Pm32 => "pm32",
            Mode::Pm32Pg => "pm32+pg",
        }
    }
    pub fn code32(self) -> bool {
        self != Mode::Real
    }
    pub fn cr0_base(self) -> u32 {
        match self {
            Mode::Real => 0x10,
            Mode::Pm32 => 0x11,
            Mode::Pm32Pg => 0x8001_0011,
        }
    }
    fn cs(self) -> u16 {
        if self == Mode::Real {
            0
        } else {
            0x08
        }
    }
}

#[derive(Clone)]
pub struct Case {
    /// Index within its image (the dump's case id).
    pub id: u16,
    pub form: usize,
    pub mode: Mode,
    /// Address of the case's code slot, and of the instruction.
    pub base: u32,
    pub entry: u32,
    pub insn: Vec<u8>,
    /// The bytes QEMU runs instead, where QEMU disagrees with the SDM/hardware about the
    /// encoding itself (see README "QEMU vs SDM").
    pub qemu_insn: Option<Vec<u8>>,
    pub back: u32,
    pub fwd: u32,
    /// The tails store CS (far transfers).
    pub far_tail: bool,
    pub regs: [u32; 8],
    pub eflags: u32,
    pub cr0: u32,
    /// ES DS FS GS SS.
    pub segs: [u16; 5],
    pub mem: [u8; REGION],
    pub mask: Mask,
    /// x87 forms (`x87.rs`): code before the instruction, the probe after it, and data
    /// after the tail. Empty for every other form.
    pub pre: Vec<u8>,
    pub probe: Vec<u8>,
    pub data: Vec<u8>,
    /// x87 forms: the state images in the dumped area (see `x87::normalize`).
    pub x87_images: Vec<x87::Image>,
}

impl Case {
    fn tail(&self) -> Vec<u8> {
        let mut t = Vec::new();
        let slot = SV + 42;
        if self.mode == Mode::Real {
            if self.far_tail {
                // through DS (= 0 in every far-transfer case): CS is the new one here
                t.extend_from_slice(&[0x8c, 0x0e, slot as u8, (slot >> 8) as u8]);
            }
            t.extend_from_slice(&[0xea, POST as u8, (POST >> 8) as u8, 0, 0]);
        } else {
            if self.far_tail {
                t.extend_from_slice(&[0x8c, 0x0d]);
                t.extend_from_slice(&slot.to_le_bytes());
            }
            t.push(0xea);
            t.extend_from_slice(&POST.to_le_bytes());
            t.extend_from_slice(&[0x08, 0]);
        }
        t
    }
    fn tail_len(mode: Mode, far: bool) -> u32 {
        match (mode == Mode::Real, far) {
            (true, false) => 5,
            (true, true) => 9,
            (false, false) => 7,
            (false, true) => 13,
        }
    }
    pub fn code(&self) -> Vec<u8> {
        let mut v = Vec::new();
        if self.back > 0 {
            v.extend(std::iter::repeat(0x47).take(self.back as usize));
            v.extend(self.tail());
        }
        assert_eq!(self.base + v.len() as u32, self.entry);
        v.extend_from_slice(&self.pre);
        v.extend_from_slice(self.qemu_insn.as_ref().unwrap_or(&self.insn));
        v.extend(std::iter::repeat(0x47).take(self.fwd as usize));
        v.extend_from_slice(&self.probe);
        v.extend(self.tail());
        v.extend_from_slice(&self.data);
        v
    }
    pub fn blob(&self) -> Vec<u8> {
        let mut b = vec![0u8; BLOB_SZ];
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[4..8].copy_from_slice(&self.entry.to_le_bytes());
        for r in 0..8 {
            b[8 + 4 * r..12 + 4 * r].copy_from_slice(&self.regs[r].to_le_bytes());
        }
        b[40..44].copy_from_slice(&self.eflags.to_le_bytes());
        b[44..48].copy_from_slice(&self.cr0.to_le_bytes());
        for s in 0..5 {
            b[48 + 2 * s..50 + 2 * s].copy_from_slice(&self.segs[s].to_le_bytes());
        }
        b[64..192].copy_from_slice(&self.mem);
        b
    }
    pub fn form(&self) -> &'static Form {
        &FORMS[self.form]
    }
}

/// Why a form is not generated, or `None` when it is.
pub fn left_out(form: &Form) -> Option<&'static str> {
    if form.class == Class::Prefix {
        return Some("a prefix, not an instruction: exercised as a prefix of the other forms");
    }
    match form.opcode {
        0xf4 => Some("HLT stops the machine (interrupts are off in the harness)"),
        0x130 | 0x132 => Some("RDMSR/WRMSR: the MSR set is machine-specific (QEMU's TCG returns 0 for unknown MSRs)"),
        0x133 => Some("RDPMC: performance counters are machine-specific"),
        0xf0 => Some("LOCK"),
        0x10a => Some(
            "VMENTER: the V386 extension, which QEMU lacks (#UD there); tests/v386_host.rs checks it \
             (VCALL, #UD outside V386 mode on both, is compared)",
        ),
        _ => None,
    }
}

/// Forms whose results are partly machine-specific (compared with those parts masked).
pub fn partly_masked(form: &Form) -> Option<&'static str> {
    match form.opcode {
        0xd8..=0xdf => Some("x87: see x87.rs for the encodings not generated"),
        0x1a2 => Some("CPUID: EAX EBX ECX EDX masked (model-specific values)"),
        0x131 => Some("RDTSC: EDX:EAX masked (time stamp)"),
        0xe4 | 0xe5 | 0xec | 0xed | 0x6c | 0x6d => Some("IN/INS: only unassigned ports (all ones on both)"),
        _ => None,
    }
}

struct B<'r> {
    rng: &'r mut Rng,
    mode: Mode,
    form: &'static Form,
    c: Case,
    fixed: u8,
    op32: bool,
    ad32: bool,
    seg: Option<u8>,
    rep: Option<u8>,
    /// ModR/M state.
    modrm: Option<u8>,
    is_mem: bool,
    ea: u32,
    /// Bytes after the opcode (ModR/M, SIB, displacement), then immediates.
    mbytes: Vec<u8>,
    imm: Vec<u8>,
    /// Offset into `imm` of a relative displacement to patch, and its size.
    rel: Option<(usize, u8)>,
    /// The branch target (absolute), when the case has one in a sled.
    target: u32,
    /// Number of prefix bytes.
    npre: u32,
}

type R<T = ()> = Result<T, ()>;

fn is_bad_sreg_real(_v: u16) -> bool {
    false
}

/// Selectors for segment loads in protected mode: (loadable, faulting).
fn sel_choices(sreg: u8) -> (&'static [u16], &'static [u16]) {
    match sreg {
        // SS
        2 => (&[0x10, 0x18], &[0x00, 0x30, 0x68, 0x38, 0x08, 0x80, 0x13, 0x04]),
        // DS: must stay a flat writable segment (the harness writes through DS)
        3 => (&[0x10, 0x18, 0x30], &[0x38, 0x70, 0x80, 0x13, 0x04, 0x40]),
        // ES FS GS
        _ => (
            &[0x10, 0x18, 0x30, 0x00, 0x08, 0x28, 0x50, 0x68, 0x58, 0x03],
            &[0x38, 0x70, 0x80, 0x13, 0x40, 0x48, 0x04, 0x60],
        ),
    }
}

impl<'r> B<'r> {
    fn code32(&self) -> bool {
        self.mode.code32()
    }
    /// The instruction's length (known once ModR/M and immediates are encoded).
    fn len(&self) -> u32 {
        self.npre + 1 + (self.form.opcode >= 0x100) as u32 + self.mbytes.len() as u32 + self.imm.len() as u32
    }
    fn opsize(&self) -> u32 {
        if self.op32 {
            4
        } else {
            2
        }
    }
    fn set_reg(&mut self, r: usize, v: u32) -> R {
        if self.fixed & (1 << r) != 0 && self.c.regs[r] != v {
            return Err(());
        }
        self.c.regs[r] = v;
        self.fixed |= 1 << r;
        Ok(())
    }
    /// Set the low `size` bytes of register `r` (byte registers: 0-3 low, 4-7 high byte).
    fn set_reg_sized(&mut self, r: usize, size: u32, v: u32) -> R {
        match size {
            1 => {
                let (rr, sh) = if r < 4 { (r, 0) } else { (r - 4, 8) };
                let old = self.c.regs[rr];
                let nv = (old & !(0xff << sh)) | ((v & 0xff) << sh);
                if self.fixed & (1 << rr) != 0 && nv != old {
                    return Err(());
                }
                self.c.regs[rr] = nv;
                Ok(())
            }
            2 => {
                let old = self.c.regs[r];
                let nv = (old & 0xffff_0000) | (v & 0xffff);
                if self.fixed & (1 << r) != 0 && nv != old {
                    return Err(());
                }
                self.c.regs[r] = nv;
                Ok(())
            }
            _ => {
                let old = self.c.regs[r];
                if self.fixed & (1 << r) != 0 && v != old {
                    return Err(());
                }
                self.c.regs[r] = v;
                Ok(())
            }
        }
    }
    fn reg_sized(&self, r: usize, size: u32) -> u32 {
        match size {
            1 => {
                if r < 4 {
                    self.c.regs[r] & 0xff
                } else {
                    (self.c.regs[r - 4] >> 8) & 0xff
                }
            }
            2 => self.c.regs[r] & 0xffff,
            _ => self.c.regs[r],
        }
    }
    fn in_region(&self, addr: u32, len: u32) -> bool {
        addr >= SCR && addr + len <= SCR + REGION as u32
    }
    fn write_mem(&mut self, addr: u32, size: u32, v: u32) -> R {
        if !self.in_region(addr, size) {
            return Err(());
        }
        for k in 0..size {
            self.c.mem[(addr - SCR + k) as usize] = (v >> (8 * k)) as u8;
        }
        Ok(())
    }
    fn read_mem(&self, addr: u32, size: u32) -> u32 {
        let mut v = 0;
        for k in 0..size {
            v |= (self.c.mem[(addr - SCR + k) as usize] as u32) << (8 * k);
        }
        v
    }
    /// The r/m operand's value, of `size` bytes.
    fn rm_val(&self, size: u32) -> u32 {
        if self.is_mem {
            if self.in_region(self.ea, size) {
                self.read_mem(self.ea, size)
            } else {
                0
            }
        } else {
            self.reg_sized((self.modrm.unwrap() & 7) as usize, size)
        }
    }
    fn set_rm(&mut self, size: u32, v: u32) -> R {
        if self.is_mem {
            if self.in_region(self.ea, size) {
                self.write_mem(self.ea, size, v)
            } else {
                Ok(())
            }
        } else {
            self.set_reg_sized((self.modrm.unwrap() & 7) as usize, size, v)
        }
    }
    fn reg_field(&self) -> usize {
        ((self.modrm.unwrap() >> 3) & 7) as usize
    }

    /// Encode a memory operand whose effective address lands on `target`.
    fn gen_mem(&mut self, reg: u8, target: u32, free_ea: bool) -> R {
        let rng = &mut *self.rng;
        if self.ad32 {
            let md = rng.below(3) as u8;
            let rm = rng.below(8) as u8;
            let mut bytes = vec![(md << 6) | (reg << 3) | rm];
            let (mut base, mut index, mut scale) = (None, None, 0u32);
            let mut disp_free = md == 2;
            let mut disp: u32 = match md {
                1 => rng.u8() as i8 as i32 as u32,
                2 => rng.u32(),
                _ => 0,
            };
            if rm == 4 {
                let ss = rng.below(4) as u8;
                let idx = rng.below(8) as u8;
                let b = rng.below(8) as u8;
                bytes.push((ss << 6) | (idx << 3) | b);
                scale = ss as u32;
                if idx != 4 {
                    index = Some(idx as usize);
                }
                if b == 5 && md == 0 {
                    disp_free = true;
                } else {
                    base = Some(b as usize);
                }
            } else if rm == 5 && md == 0 {
                disp_free = true;
            } else {
                base = Some(rm as usize);
            }
            if free_ea {
                for r in [base, index].into_iter().flatten() {
                    self.fixed |= 1 << r;
                }
            } else {
                let f = self.fixed;
                let isfixed = |r: usize| f & (1 << r) != 0;
                let bv = |s: &Self, r: Option<usize>| r.map(|r| s.c.regs[r]).unwrap_or(0);
                match (base, index) {
                    (Some(r), Some(i)) if r == i => {
                        if isfixed(r) {
                            let v = self.c.regs[r];
                            let d = target.wrapping_sub(v.wrapping_add(v << scale));
                            if disp_free || (md == 1 && (d as i32) >= -128 && (d as i32) < 128) {
                                disp = d;
                            } else if !(md == 0 && d == 0) {
                                return Err(());
                            }
                        } else if disp_free {
                            let v = self.rng.below(0x800);
                            self.c.regs[r] = v;
                            disp = target.wrapping_sub(v.wrapping_add(v << scale));
                        } else {
                            return Err(());
                        }
                        self.fixed |= 1 << r;
                    }
                    (Some(b), _) if !isfixed(b) => {
                        if let Some(i) = index {
                            self.fixed |= 1 << i;
                        }
                        let iv = bv(self, index) << scale;
                        self.c.regs[b] = target.wrapping_sub(iv).wrapping_sub(disp);
                        self.fixed |= 1 << b;
                    }
                    (_, Some(i)) if !isfixed(i) => {
                        let b = bv(self, base);
                        if disp_free {
                            let iv = self.rng.below(0x400);
                            self.c.regs[i] = iv;
                            disp = target.wrapping_sub(b).wrapping_sub(iv << scale);
                        } else {
                            let rem = target.wrapping_sub(b).wrapping_sub(disp);
                            if rem & ((1 << scale) - 1) != 0 {
                                return Err(());
                            }
                            self.c.regs[i] = rem >> scale;
                        }
                        self.fixed |= 1 << i;
                        if let Some(b) = base {
                            self.fixed |= 1 << b;
                        }
                    }
                    _ => {
                        let ea0 = bv(self, base).wrapping_add(bv(self, index) << scale);
                        let d = target.wrapping_sub(ea0);
                        if disp_free || (md == 1 && (d as i32) >= -128 && (d as i32) < 128) {
                            disp = d;
                        } else if !(md == 0 && d == 0) {
                            return Err(());
                        }
                    }
                }
            }
            if md == 1 {
                bytes.push(disp as u8);
            } else if md == 2 || disp_free {
                bytes.extend_from_slice(&disp.to_le_bytes());
            }
            self.modrm = Some(bytes[0]);
            self.mbytes = bytes;
        } else {
            let md = self.rng.below(3) as u8;
            let rm = self.rng.below(8) as u8;
            let mut bytes = vec![(md << 6) | (reg << 3) | rm];
            let (b, i): (Option<usize>, Option<usize>) = match rm {
                0 => (Some(EBX), Some(ESI)),
                1 => (Some(EBX), Some(EDI)),
                2 => (Some(EBP), Some(ESI)),
                3 => (Some(EBP), Some(EDI)),
                4 => (Some(ESI), None),
                5 => (Some(EDI), None),
                6 if md == 0 => (None, None),
                6 => (Some(EBP), None),
                _ => (Some(EBX), None),
            };
            let disp_free = md == 2 || (md == 0 && rm == 6);
            let mut disp: u32 = match md {
                1 => self.rng.u8() as i8 as i32 as u32,
                2 => self.rng.u32() & 0xffff,
                _ => 0,
            };
            if free_ea {
                for r in [b, i].into_iter().flatten() {
                    self.fixed |= 1 << r;
                }
            } else {
                let f = self.fixed;
                let isfixed = |r: usize| f & (1 << r) != 0;
                let lo = |s: &Self, r: Option<usize>| r.map(|r| s.c.regs[r] & 0xffff).unwrap_or(0);
                match (b, i) {
                    (Some(br), _) if !isfixed(br) => {
                        if let Some(i) = i {
                            self.fixed |= 1 << i;
                        }
                        let v = target.wrapping_sub(lo(self, i)).wrapping_sub(disp) & 0xffff;
                        self.c.regs[br] = (self.c.regs[br] & 0xffff_0000) | v;
                        self.fixed |= 1 << br;
                    }
                    (_, Some(ir)) if !isfixed(ir) => {
                        let v = target.wrapping_sub(lo(self, b)).wrapping_sub(disp) & 0xffff;
                        self.c.regs[ir] = (self.c.regs[ir] & 0xffff_0000) | v;
                        self.fixed |= 1 << ir;
                        // 16-bit forms with an index always have a base
                        self.fixed |= 1 << b.expect("16-bit index without base");
                    }
                    _ => {
                        let d = target.wrapping_sub(lo(self, b)).wrapping_sub(lo(self, i)) & 0xffff;
                        let d16 = (d as u16) as i16;
                        if disp_free || (md == 1 && (-128..128).contains(&d16)) {
                            disp = d;
                        } else if !(md == 0 && d == 0) {
                            return Err(());
                        }
                    }
                }
            }
            if md == 1 {
                bytes.push(disp as u8);
            } else if disp_free {
                bytes.extend_from_slice(&(disp as u16).to_le_bytes());
            }
            self.modrm = Some(bytes[0]);
            self.mbytes = bytes;
        }
        self.is_mem = true;
        self.ea = target;
        Ok(())
    }

    fn gen_reg_modrm(&mut self, reg: u8, rm: u8) {
        let m = 0xc0 | (reg << 3) | rm;
        self.modrm = Some(m);
        self.mbytes = vec![m];
        self.is_mem = false;
    }

    /// A memory target: usually in the scratch area; in paging mode sometimes on the
    /// not-present or the read-only page (#PF).
    fn mem_target(&mut self, size: u32) -> u32 {
        if self.mode == Mode::Pm32Pg && self.ad32 && self.rng.pct(8) {
            let page = if self.rng.pct(50) { NP_PAGE } else { RO_PAGE };
            return page + self.rng.below(4096 - 16);
        }
        let size = size.clamp(1, 64);
        SCR + self.rng.below(64 - size + 1)
    }

    fn imm_bytes(&mut self, n: u32) {
        for _ in 0..n {
            let b = self.rng.u8();
            self.imm.push(b);
        }
    }
    fn imm_val(&self, off: usize, n: usize) -> u32 {
        let mut v = 0;
        for k in 0..n {
            v |= (self.imm[off + k] as u32) << (8 * k);
        }
        v
    }
    fn set_imm(&mut self, off: usize, n: usize, v: u32) {
        for k in 0..n {
            self.imm[off + k] = (v >> (8 * k)) as u8;
        }
    }

    /// An absolute target inside one of the sleds (unknown insn length yet: `len` given).
    fn sled_target(&mut self, len: u32) -> u32 {
        let c = &self.c;
        if c.back > 0 && self.rng.pct(40) {
            c.base + self.rng.below(c.back + 1).min(c.back - 1)
        } else {
            c.entry + len + self.rng.below(c.fwd)
        }
    }

    fn far_sel_ok(&mut self, ok_pct: u32) -> (u16, bool) {
        if self.rng.pct(ok_pct) {
            (self.rng.pick(&[0x08u16, 0x20, 0x58, 0x70]), true)
        } else {
            (self.rng.pick(&[0x00u16, 0x10, 0x80, 0x60, 0x38, 0x0b, 0x28 | 0x80]), false)
        }
    }
}

fn base_flags(rng: &mut Rng) -> u32 {
    let arith = [0x1u32, 0x4, 0x10, 0x40, 0x80, 0x800];
    let mut f = 0x2;
    for a in arith {
        if rng.pct(50) {
            f |= a;
        }
    }
    if rng.pct(25) {
        f |= 0x400;
    }
    f
}

/// Random bits for a flags image popped by POPF/IRET (never TF, IF or VM).
fn popped_flags(rng: &mut Rng) -> u32 {
    let v = rng.u32() & 0x003f_7fd7 | 0x2;
    v & !(0x100 | 0x200 | 0x2_0000)
}

/// Generate a case for `form` in `mode` whose code slot starts at `base`.
pub fn gen_case(form_idx: usize, mode: Mode, base: u32, id: u16, rng: &mut Rng) -> Option<Case> {
    for _ in 0..200 {
        if let Ok(c) = try_gen(form_idx, mode, base, id, rng) {
            return Some(c);
        }
    }
    None
}

fn try_gen(form_idx: usize, mode: Mode, base: u32, id: u16, rng: &mut Rng) -> R<Case> {
    let form: &'static Form = &FORMS[form_idx];
    let code32 = mode.code32();
    let mut regs = [0u32; 8];
    for r in regs.iter_mut() {
        *r = rng.value();
    }
    let stackish = matches!(form.class, Class::Stack | Class::Branch | Class::Far);
    regs[ESP] = if stackish { 0x3050 + 2 * rng.below(9) } else { 0x3058 + 2 * rng.below(9) };
    if mode == Mode::Real && rng.pct(40) {
        regs[ESP] |= rng.u32() & 0xffff_0000;
    }
    let segs = if mode == Mode::Real {
        [0u16; 5]
    } else {
        [
            rng.pick(&[0x10, 0x18, 0x30]),
            rng.pick(&[0x10, 0x18, 0x30]),
            rng.pick(&[0x10, 0x18, 0x30]),
            rng.pick(&[0x10, 0x18, 0x30]),
            rng.pick(&[0x10, 0x18]),
        ]
    };
    let mut mem = [0u8; REGION];
    for b in mem.iter_mut() {
        *b = rng.u8();
    }
    let is_branch = matches!(form.class, Class::Branch | Class::Far);
    let far = form.class == Class::Far;
    let (back, fwd) = if is_branch { (12, 12) } else { (0, 0) };
    let entry = if back > 0 { base + back + Case::tail_len(mode, far) } else { base };
    let c = Case {
        id,
        form: form_idx,
        mode,
        base,
        entry,
        insn: Vec::new(),
        qemu_insn: None,
        back,
        fwd,
        far_tail: far,
        regs,
        eflags: base_flags(rng),
        cr0: mode.cr0_base(),
        segs,
        mem,
        mask: Mask::default(),
        pre: Vec::new(),
        probe: Vec::new(),
        data: Vec::new(),
        x87_images: Vec::new(),
    };
    // prefixes
    let mut p66 = rng.pct(30);
    let mut p67 = rng.pct(15);
    let has_mem_operand = form.operands.iter().any(|o| {
        matches!(
            o,
            Operand::Eb
                | Operand::Ev
                | Operand::Ew
                | Operand::Ed
                | Operand::M
                | Operand::Mp
                | Operand::Ma
                | Operand::Ms
                | Operand::Mq
                | Operand::Ob
                | Operand::Ov
                | Operand::Str
        )
    }) || form.opcode == 0xd7;
    // Segment overrides onto segments equal to the default one. Not CS in protected mode:
    // QEMU's TCG does not check writes through CS (README "QEMU vs SDM").
    let mut seg = if has_mem_operand && rng.pct(25) {
        Some(if code32 { rng.pick(&[0u8, 2, 3, 4, 5]) } else { rng.below(6) as u8 })
    } else {
        None
    };
    // Forms where a prefix would only get in the way of the harness.
    match form.opcode {
        // far transfers in real mode with a 32-bit offset would need EIP < 64K: fine, keep.
        0x0f | 0x1a2 | 0x131 => {}
        _ => {}
    }
    if form.opcode == 0x8d && rng.pct(50) {
        seg = None;
    }
    // A 16-bit operand size in 32-bit code truncates EIP for near branches: our code is < 64K.
    if matches!(form.class, Class::System) && matches!(form.opcode, 0x120..=0x123) {
        p66 = false;
        p67 = false;
    }
    let op32 = code32 ^ p66;
    let ad32 = code32 ^ p67;
    let mut b = B {
        rng,
        mode,
        form,
        c,
        fixed: 1 << ESP,
        op32,
        ad32,
        seg,
        rep: None,
        modrm: None,
        is_mem: false,
        ea: 0,
        mbytes: Vec::new(),
        imm: Vec::new(),
        rel: None,
        target: 0,
        npre: 0,
    };
    if form.class == Class::String {
        let r = b.rng.below(3);
        if r == 1 {
            b.rep = Some(0xf3)
        } else if r == 2 {
            b.rep = Some(0xf2)
        }
    }
    if matches!(form.opcode, 0x6c..=0x6f) && b.rng.pct(50) {
        b.rep = Some(0xf3);
    }
    b.npre = p66 as u32 + p67 as u32 + b.seg.is_some() as u32 + b.rep.is_some() as u32;
    setup(&mut b)?;
    // LOCK: a third of the time on the forms the SDM allows it for with a memory destination;
    // illegal (register destination, or a non-lockable instruction: #UD) now and then.
    // (Drawn from a side stream: the other cases are the ones generated before LOCK was.)
    let mut lrng = b.rng.side(0x10c6);
    let lock = match lock_rule(form) {
        Lock::Rmw if b.is_mem => lrng.pct(33),
        Lock::Rmw => lrng.pct(15),
        Lock::Never => lrng.pct(10),
        Lock::NotTried => false,
    };
    b.npre += lock as u32;
    // assemble
    let mut bytes = Vec::new();
    let mut pre: Vec<u8> = Vec::new();
    if p66 {
        pre.push(0x66);
    }
    if p67 {
        pre.push(0x67);
    }
    if let Some(s) = b.seg {
        pre.push([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65][s as usize]);
    }
    if let Some(r) = b.rep {
        pre.push(r);
    }
    if lock {
        pre.push(0xf0);
    }
    // shuffle prefixes
    for i in (1..pre.len()).rev() {
        let j = b.rng.below(i as u32 + 1) as usize;
        pre.swap(i, j);
    }
    bytes.extend_from_slice(&pre);
    if form.opcode >= 0x100 {
        bytes.push(0x0f);
    }
    bytes.push(form.opcode as u8);
    bytes.extend_from_slice(&b.mbytes);
    let imm_off = bytes.len();
    bytes.extend_from_slice(&b.imm);
    assert_eq!(bytes.len() as u32, b.len());
    if let Some((off, n)) = b.rel {
        let end = b.c.entry + bytes.len() as u32;
        let rel = b.target.wrapping_sub(end);
        if n == 1 && !((rel as i32) >= -128 && (rel as i32) < 128) {
            return Err(());
        }
        for k in 0..n as usize {
            bytes[imm_off + off + k] = (rel >> (8 * k)) as u8;
        }
    }
    let lock_ud = lock && !(lock_rule(form) == Lock::Rmw && b.is_mem);
    if lock_ud {
        // An illegal LOCK is #UD (SDM Vol. 2A "LOCK"); QEMU 7.2 ignores it on MOV TEST LEA and
        // register XCHG and aborts on a register BTS/BTR/BTC: QEMU runs UD2 padded with NOPs to
        // the same length, which raises #UD with the same saved EIP (README "QEMU vs SDM").
        let mut q = vec![0x90; bytes.len()];
        q[..2].copy_from_slice(&[0x0f, 0x0b]);
        b.c.qemu_insn = Some(q);
    } else if matches!(form.opcode, 0xf6 | 0xf7) && form.group_reg == Some(1) {
        // F6/F7 /1 is TEST (hardware, Bochs); QEMU 7.2 raises #UD: QEMU runs the /0 twin.
        let mut q = bytes.clone();
        let at = b.npre as usize + 1;
        q[at] &= !0x38;
        b.c.qemu_insn = Some(q);
    }
    if form.class == Class::Fpu {
        let tail = Case::tail_len(mode, false);
        let (reg, rm) = b.modrm.map_or((0, 0), |m| ((m >> 3) & 7, m & 7));
        let at = if b.modrm.is_some() { x87::probe_at(form.opcode, reg, b.is_mem) } else { Some(0x3014) };
        let need = if b.modrm.is_some() { x87::need(form.opcode, reg, b.is_mem, rm) } else { (0, 8) };
        let (pre, probe, data) = x87::wrap(b.rng, code32, b.c.base, bytes.len() as u32, tail, at, need);
        b.c.x87_images = x87::images(at, form.opcode, reg, rm, b.is_mem, b.ea, b.op32, b.ad32, code32);
        (b.c.pre, b.c.probe, b.c.data) = (pre, probe, data);
    }
    b.c.insn = bytes;
    b.c.mask = if lock_ud {
        // #UD before anything happens: nothing to mask
        Mask::default()
    } else {
        masks::mask_for(&b.c, b.op32, b.is_mem, b.ea, b.modrm, &b.imm)
    };
    Ok(b.c)
}

/// How a form takes a LOCK prefix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// SDM Vol. 2A "LOCK": ADD ADC AND BTC BTR BTS CMPXCHG CMPXCHG8B DEC INC NEG NOT OR SBB
    /// SUB XOR XADD XCHG, legal with a memory destination, #UD with a register one.
    Rmw,
    /// Not in the list: LOCK raises #UD (tried on a few common forms).
    Never,
    /// Not generated with LOCK.
    NotTried,
}

fn lock_rule(form: &Form) -> Lock {
    let g = form.group_reg;
    match form.opcode {
        // ADD OR ADC SBB AND SUB XOR Eb/Ev, Gb/Gv
        0x00 | 0x01 | 0x08 | 0x09 | 0x10 | 0x11 | 0x18 | 0x19 | 0x20 | 0x21 | 0x28 | 0x29 | 0x30 | 0x31 => Lock::Rmw,
        // group 1 with an immediate: /7 is CMP
        0x80..=0x83 => {
            if g == Some(7) {
                Lock::Never
            } else {
                Lock::Rmw
            }
        }
        // XCHG Eb/Ev, Gb/Gv
        0x86 | 0x87 => Lock::Rmw,
        // group 3: NOT NEG; TEST (/0) is not lockable (/1, the TEST alias, is left alone)
        0xf6 | 0xf7 => match g {
            Some(2 | 3) => Lock::Rmw,
            Some(0) => Lock::Never,
            _ => Lock::NotTried,
        },
        // INC DEC Eb; INC DEC Ev (FF /2../6 are branches and PUSH)
        0xfe | 0xff if matches!(g, Some(0 | 1)) => Lock::Rmw,
        // BTS BTR BTC Ev,Gv; CMPXCHG; XADD
        0x1ab | 0x1b3 | 0x1bb | 0x1b0 | 0x1b1 | 0x1c0 | 0x1c1 => Lock::Rmw,
        // group 8: BTS BTR BTC Ev,Ib; BT (/4) is not lockable
        0x1ba => {
            if g == Some(4) {
                Lock::Never
            } else {
                Lock::Rmw
            }
        }
        // CMPXCHG8B
        0x1c7 if g == Some(1) => Lock::Rmw,
        // MOV, CMP, TEST, BT, NOP, LEA: not lockable
        0x88..=0x8b | 0x38..=0x3b | 0x84 | 0x85 | 0x1a3 | 0x90 | 0x8d => Lock::Never,
        _ => Lock::NotTried,
    }
}

fn msize_of(op: &Operand, opsize: u32) -> Option<u32> {
    Some(match op {
        Operand::Eb => 1,
        Operand::Ev => opsize,
        Operand::Ew => 2,
        Operand::Ed => 4,
        Operand::Mp => opsize + 2,
        Operand::Ma => 2 * opsize,
        Operand::Ms => 6,
        Operand::Mq => 8,
        Operand::M => 4,
        _ => return None,
    })
}

/// Encode ModR/M and immediates, and set up the registers/memory the form needs.
fn setup(b: &mut B) -> R {
    let form = b.form;
    let ops = form.operands;
    let opsz = b.opsize();
    let op = form.opcode;
    let mode = b.mode;
    let pm = mode != Mode::Real;

    // --- ModR/M
    let mem_only = ops.iter().any(|o| matches!(o, Operand::M | Operand::Mp | Operand::Ma | Operand::Ms | Operand::Mq));
    let reg_only = ops.iter().any(|o| matches!(o, Operand::Rd | Operand::Cd | Operand::Dd));
    let rm_op = ops.iter().find(|o| msize_of(o, opsz).is_some());
    let has_modrm = rm_op.is_some()
        || reg_only
        || ops.iter().any(|o| matches!(o, Operand::Gb | Operand::Gv | Operand::Gw | Operand::Sw));
    if has_modrm {
        let reg: u8 = if let Some(g) = form.group_reg {
            g
        } else if ops.contains(&Operand::Sw) {
            if op == 0x8e {
                if b.rng.pct(4) {
                    b.rng.pick(&[1, 6, 7])
                } else {
                    b.rng.pick(&[0, 2, 3, 4, 5])
                }
            } else if b.rng.pct(3) {
                b.rng.pick(&[6, 7])
            } else {
                b.rng.below(6) as u8
            }
        } else if ops.contains(&Operand::Cd) {
            if b.rng.pct(4) {
                b.rng.pick(&[1, 5, 6, 7])
            } else {
                b.rng.pick(&[0, 2, 3, 4])
            }
        } else if ops.contains(&Operand::Dd) {
            b.rng.below(4) as u8
        } else {
            b.rng.below(8) as u8
        };
        let want_mem = if mem_only {
            !b.rng.pct(5)
        } else if reg_only || rm_op.is_none() {
            false
        } else {
            b.rng.pct(55)
        };
        if want_mem {
            let size = if form.class == Class::Fpu {
                x87::mem_size(op, reg, b.op32)
            } else {
                rm_op.map(|o| msize_of(o, opsz).unwrap()).unwrap_or(4)
            };
            let free = matches!(op, 0x8d) || (op == 0x101 && form.group_reg == Some(7)) || op == 0x11f;
            let target = if free {
                b.rng.u32()
            } else if form.class == Class::Fpu {
                // As `mem_target`: in paging mode sometimes the not-present or read-only page
                // (not for packed BCD: README "QEMU vs SDM" 17).
                let bcd = op == 0xdf && matches!(reg, 4 | 6);
                if b.mode == Mode::Pm32Pg && b.ad32 && !bcd && b.rng.pct(10) {
                    let page = if b.rng.pct(50) { NP_PAGE } else { RO_PAGE };
                    page + b.rng.below(4096 - 128)
                } else {
                    x87::target(b.rng, size)
                }
            } else {
                b.mem_target(size)
            };
            b.gen_mem(reg, target, free)?;
        } else {
            let rm = b.rng.below(8) as u8;
            b.gen_reg_modrm(reg, rm);
        }
    }
    // --- immediates
    for o in ops {
        match o {
            Operand::Ib => b.imm_bytes(1),
            Operand::Iw => b.imm_bytes(2),
            Operand::Iz | Operand::Iv => b.imm_bytes(opsz),
            Operand::Jb => {
                b.rel = Some((b.imm.len(), 1));
                b.imm_bytes(1)
            }
            Operand::Jz => {
                b.rel = Some((b.imm.len(), opsz as u8));
                b.imm_bytes(opsz)
            }
            Operand::Ap => b.imm_bytes(opsz + 2),
            Operand::Ob | Operand::Ov => {
                let asz = if b.ad32 { 4 } else { 2 };
                let size = if *o == Operand::Ob { 1 } else { opsz };
                let t = SCR + b.rng.below(64 - size + 1);
                let off = b.imm.len();
                b.imm_bytes(asz);
                b.set_imm(off, asz as usize, t);
                b.ea = t;
                b.is_mem = true;
            }
            _ => {}
        }
    }
    // An approximate instruction length for sled targets (the real length is known only
    // after prefixes are added; branch targets are recomputed in `finish`).
    if form.class == Class::Fpu {
        x87_operand(b)?;
    }
    specific(b)?;
    let _ = pm;
    Ok(())
}

/// x87 forms: skip the encodings not generated, give a memory operand a value of its
/// format (see `x87.rs`).
fn x87_operand(b: &mut B) -> R {
    let op = b.form.opcode;
    let Some(m) = b.modrm else { return Ok(()) };
    let (reg, rm) = ((m >> 3) & 7, m & 7);
    if x87::excluded(op, reg, b.is_mem, rm) {
        return Err(());
    }
    if b.is_mem {
        if let Some(v) = x87::operand(b.rng, op, reg, b.op32, b.mode == Mode::Real) {
            if b.in_region(b.ea, v.len() as u32) {
                for (k, x) in v.iter().enumerate() {
                    b.c.mem[(b.ea - SCR) as usize + k] = *x;
                }
            }
        }
    }
    Ok(())
}

/// Per-form semantics: registers and memory that make the instruction meaningful.
fn specific(b: &mut B) -> R {
    let form = b.form;
    let op = form.opcode;
    let g = form.group_reg;
    let opsz = b.opsize();
    let pm = b.mode != Mode::Real;
    match (op, g) {
        // DIV/IDIV: half the time operands that do not overflow.
        (0xf6 | 0xf7, Some(6 | 7)) if b.rng.pct(60) => {
            let sz = if op == 0xf6 { 1 } else { opsz };
            let mut d = b.rm_val(sz);
            if d == 0 {
                d = 1 + b.rng.below(200);
                b.set_rm(sz, d)?;
                d = b.rm_val(sz);
                if d == 0 {
                    return Err(());
                }
            }
            // dividend high part = 0 (DIV) or the sign of the low part (IDIV)
            let idiv = g == Some(7);
            match sz {
                1 => {
                    let al = b.reg_sized(EAX, 1);
                    let ah = if idiv {
                        if al & 0x80 != 0 {
                            0xff
                        } else {
                            0
                        }
                    } else {
                        0
                    };
                    b.set_reg_sized(4, 1, ah)?; // AH
                }
                _ => {
                    let lo = b.reg_sized(EAX, sz);
                    let neg = lo & (1 << (8 * sz - 1)) != 0;
                    let hi = if idiv && neg { 0xffff_ffff } else { 0 };
                    b.set_reg_sized(EDX, sz, hi)?;
                }
            }
            // the divisor must still be what we think (it may be AH/DX itself)
            if b.rm_val(sz) == 0 {
                return Err(());
            }
        }
        // BT family with a register bit offset on memory: keep the access in the scratch area.
        (0x1a3 | 0x1ab | 0x1b3 | 0x1bb, None) if b.is_mem => {
            if !b.in_region(b.ea, 4) {
                return Ok(());
            }
            let off = (b.ea - SCR) as i32;
            let lo = -(off * 8);
            let hi = (64 - 4 - off) * 8;
            let bit = lo + b.rng.below((hi - lo) as u32) as i32;
            let r = b.reg_field();
            if opsz == 2 {
                b.set_reg_sized(r, 2, bit as u32)?;
            } else {
                b.set_reg_sized(r, 4, bit as u32)?;
            }
            b.fixed |= 1 << r;
        }
        // BOUND: bounds in memory, index half the time inside.
        (0x62, None) if b.is_mem && b.in_region(b.ea, 2 * opsz) => {
            let r = b.reg_field();
            let idx = b.reg_sized(r, opsz);
            if b.rng.pct(50) {
                let lo = idx.wrapping_sub(b.rng.below(100));
                let hi = idx.wrapping_add(b.rng.below(100));
                b.write_mem(b.ea, opsz, lo)?;
                b.write_mem(b.ea + opsz, opsz, hi)?;
            }
        }
        // XLAT: EBX + AL lands in the scratch area.
        (0xd7, None) => {
            let al = b.c.regs[EAX] & 0xff;
            let t = SCR + b.rng.below(64);
            let v = t.wrapping_sub(al);
            if b.ad32 {
                b.set_reg(EBX, v)?;
            } else {
                let hi = b.c.regs[EBX] & 0xffff_0000;
                b.set_reg(EBX, hi | (v & 0xffff))?;
            }
        }
        // CMPXCHG: half the time accumulator equal to the destination.
        (0x1b0 | 0x1b1, None) if b.rng.pct(50) => {
            let sz = if op == 0x1b0 { 1 } else { opsz };
            let v = b.rm_val(sz);
            b.set_reg_sized(EAX, sz, v)?;
            if b.rm_val(sz) != v {
                return Err(());
            }
        }
        (0x1c7, Some(1)) if b.is_mem && b.rng.pct(50) && b.in_region(b.ea, 8) => {
            let lo = b.read_mem(b.ea, 4);
            let hi = b.read_mem(b.ea + 4, 4);
            b.set_reg(EAX, lo)?;
            b.set_reg(EDX, hi)?;
        }
        // AAM/AAD: the base is usually 10, sometimes 0 (#DE for AAM).
        (0xd4 | 0xd5, None) => {
            let v = match b.rng.below(4) {
                0 | 1 => 10,
                2 => 0,
                _ => b.rng.u8() as u32,
            };
            b.set_imm(0, 1, v);
        }
        // ---- stack
        (0x07 | 0x17 | 0x1f | 0x1a1 | 0x1a9, None) => {
            let sreg = match op {
                0x07 => 0,
                0x17 => 2,
                0x1f => 3,
                0x1a1 => 4,
                _ => 5,
            };
            let v = pick_sel(b, sreg);
            let sp = stack_ptr(b);
            b.write_mem(sp, 2, v as u32)?;
        }
        (0x60 | 0x61 | 0xc9 | 0xc8, None) | (0x8f, Some(0)) => {
            // a valid frame pointer for ENTER/LEAVE
            if op == 0xc9 || op == 0xc8 {
                let bp = 0x3050 + 2 * b.rng.below(13);
                // a 16-bit stack uses BP only: the upper half stays random
                let v = if b.mode == Mode::Real { (b.c.regs[EBP] & 0xffff_0000) | bp } else { bp };
                b.set_reg(EBP, v)?;
            }
            if op == 0xc8 {
                // ENTER size, level: small
                let size = b.rng.below(24);
                let level = if b.rng.pct(70) { b.rng.below(4) } else { b.rng.below(8) };
                b.set_imm(0, 2, size);
                b.set_imm(2, 1, level);
            }
        }
        (0x9d, None) => {
            let sp = stack_ptr(b);
            let v = popped_flags(b.rng);
            b.write_mem(sp, 4, v)?;
        }
        // ---- near branches
        (0x70..=0x7f | 0x180..=0x18f | 0xe0..=0xe3 | 0xe8 | 0xe9 | 0xeb, None) => {
            if matches!(op, 0xe0..=0xe3) {
                let v = match b.rng.below(4) {
                    0 => 0,
                    1 => 1,
                    2 => b.rng.below(4) | (b.rng.u32() & 0xffff_0000),
                    _ => b.rng.value(),
                };
                b.set_reg(ECX, v)?;
            }
            b.target = branch_target(b);
        }
        (0xc2 | 0xc3, None) => {
            let t = abs_target(b);
            let sp = stack_ptr(b);
            write_ip(b, sp, t)?;
            if op == 0xc2 {
                let n = b.rng.below(12) * if b.rng.pct(80) { 2 } else { 1 };
                b.set_imm(0, 2, n);
            }
        }
        (0xff, Some(2 | 4)) => {
            let t = abs_target(b);
            if b.is_mem {
                if !b.in_region(b.ea, opsz) {
                    return Ok(());
                }
                b.write_mem(b.ea, opsz, t)?;
            } else {
                let r = (b.modrm.unwrap() & 7) as usize;
                if r == ESP {
                    return Err(());
                }
                if opsz == 2 {
                    b.set_reg_sized(r, 2, t)?;
                } else {
                    b.set_reg(r, t)?;
                }
            }
        }
        // ---- far transfers
        (0x9a | 0xea, None) => {
            let (sel, off) = far_ptr(b);
            b.set_imm(0, opsz as usize, off);
            b.set_imm(opsz as usize, 2, sel as u32);
        }
        (0xff, Some(3 | 5)) if b.is_mem && b.in_region(b.ea, opsz + 2) => {
            let (sel, off) = far_ptr(b);
            b.write_mem(b.ea, opsz, off)?;
            b.write_mem(b.ea + opsz, 2, sel as u32)?;
        }
        (0xca | 0xcb | 0xcf, None) => {
            let (sel, off) = far_ptr_ret(b);
            let sp = stack_ptr(b);
            b.write_mem(sp, opsz, off)?;
            b.write_mem(sp + opsz, 2, sel as u32)?;
            if op == 0xcf {
                let mut f = popped_flags(b.rng);
                if b.mode == Mode::Real {
                    f &= 0xffff;
                }
                b.write_mem(sp + 2 * opsz, opsz, f)?;
            }
            if op == 0xca {
                let n = b.rng.below(8) * 2;
                b.set_imm(0, 2, n);
            }
        }
        // INT n: any vector (every IDT/IVT entry leads to a stub), sometimes an exception one
        (0xcd, None) if b.rng.pct(30) => {
            let v = b.rng.below(32);
            b.set_imm(0, 1, v);
        }
        // ---- I/O
        (0xe4..=0xe7, None) => {
            let p = b.rng.pick(&PORTS);
            b.set_imm(0, 1, p as u32);
        }
        (0xec..=0xef, None) => {
            let p = b.rng.pick(&PORTS);
            b.set_reg_sized(EDX, 2, p as u32)?;
            b.fixed |= 1 << EDX;
        }
        // ---- system
        (0x8e, None) => {
            let sreg = b.reg_field() as u8;
            if sreg < 6 && sreg != 1 {
                let v = pick_sel(b, sreg);
                b.set_rm(2, v as u32)?;
            }
        }
        (0xc4 | 0xc5 | 0x1b2 | 0x1b4 | 0x1b5, None) if b.is_mem => {
            let sreg = match op {
                0xc4 => 0,
                0xc5 => 3,
                0x1b2 => 2,
                0x1b4 => 4,
                _ => 5,
            };
            if !b.in_region(b.ea, opsz + 2) && b.mode != Mode::Real && (sreg == 2 || sreg == 3) {
                // the read-only page reads as zeros: a null DS/SS would break the harness
                return Err(());
            }
            if b.in_region(b.ea, opsz + 2) {
                let v = pick_sel(b, sreg);
                b.write_mem(b.ea + opsz, 2, v as u32)?;
                if sreg == 2 {
                    // LSS: the new stack pointer is kept valid
                    let sp = 0x3050 + 2 * b.rng.below(9);
                    b.write_mem(b.ea, opsz, sp)?;
                }
            }
        }
        (0x100, Some(2 | 3)) | (0x100, Some(4 | 5)) | (0x102 | 0x103, None) => {
            let v: u16 = match g {
                Some(2) => b.rng.pick(&[0x00, 0x48, 0x48, 0x4b, 0x40, 0x10, 0x80, 0x04]),
                // never a null selector: QEMU's LTR accepts it (README "QEMU vs SDM")
                Some(3) => b.rng.pick(&[0x40, 0x40, 0x43, 0x48, 0x10, 0x80, 0x04, 0x28]),
                _ => (b.rng.below(0x80 / 8 + 1) * 8) as u16 | b.rng.below(4) as u16 | if b.rng.pct(10) { 4 } else { 0 },
            };
            // LLDT/LTR/VERR/VERW and LAR/LSL: the source is Ew (LTR leaves TR loaded; later
            // cases see it via STR)
            b.set_rm(2, v as u32)?;
        }
        // LGDT/LIDT in protected mode from the read-only page, which reads as zeros: a null
        // GDT/IDT would break the harness (the not-present page is fine: #PF).
        (0x101, Some(2 | 3)) if b.is_mem && pm && (RO_PAGE..RO_PAGE + 0x1000).contains(&b.ea) => return Err(()),
        // LGDT/LIDT: in protected mode the harness's own table, possibly with a larger limit; in
        // real mode anything (post restores both before they are used).
        (0x101, Some(2 | 3)) if b.is_mem && b.in_region(b.ea, 6) && pm => {
            let (base, limit) = if g == Some(2) { (0x1800u32, 0x77u32) } else { (0x1000, 0x7ff) };
            let lim = limit + b.rng.below(0x100);
            b.write_mem(b.ea, 2, lim)?;
            b.write_mem(b.ea + 2, 4, base)?;
        }
        (0x101, Some(6)) => {
            let mut v = b.rm_val(2) & !1;
            if pm {
                v |= 1;
            }
            b.set_rm(2, v)?;
        }
        (0x122, None) => {
            let cr = b.reg_field();
            let r = (b.modrm.unwrap() & 7) as usize;
            let v = match cr {
                0 => b.mode.cr0_base() | (b.rng.u32() & 0x0004_002e),
                3 => {
                    if b.mode == Mode::Pm32Pg {
                        0x5000 | (b.rng.u32() & 0x18)
                    } else {
                        b.rng.u32() & 0xffff_f018
                    }
                }
                // TSD DE PSE (VME/PVI: see README, left to the V86 tests)
                4 => b.rng.u32() & 0x1c,
                _ => b.rng.u32(),
            };
            if r == ESP {
                return Err(());
            }
            b.set_reg(r, v)?;
        }
        (0x123, None) => {}
        (0x1a2, None) => {
            let leaf = b.rng.pick(&[0u32, 1, 2, 0x8000_0000]);
            b.set_reg(EAX, leaf)?;
        }
        (0x134 | 0x135, None) => {}
        _ => {}
    }
    // String instructions: ESI/EDI inside the region, small counts under REP.
    if form.class == Class::String || matches!(op, 0x6c..=0x6f) {
        let esz = if op & 1 == 0 { 1 } else { opsz };
        let n = if b.rep.is_some() {
            let c = b.rng.below(9);
            let v = if b.ad32 { c } else { c | (b.rng.u32() & 0xffff_0000) };
            b.set_reg(ECX, v)?;
            c.max(1)
        } else {
            1
        };
        let span = n * esz;
        let df = b.c.eflags & 0x400 != 0;
        for r in [ESI, EDI] {
            let start = if df {
                SCR + span - esz + b.rng.below(REGION as u32 - span + 1)
            } else {
                SCR + b.rng.below(REGION as u32 - span + 1)
            };
            let v = if b.ad32 { start } else { start | (b.rng.u32() & 0xffff_0000) };
            b.set_reg(r, v)?;
        }
        if matches!(op, 0x6c..=0x6f) {
            let p = b.rng.pick(&PORTS);
            b.set_reg_sized(EDX, 2, p as u32)?;
        }
    }
    Ok(())
}

fn pick_sel(b: &mut B, sreg: u8) -> u16 {
    if b.mode == Mode::Real {
        return b.rng.u32() as u16;
    }
    let (ok, bad) = sel_choices(sreg);
    if b.rng.pct(75) {
        b.rng.pick(ok)
    } else {
        b.rng.pick(bad)
    }
}

fn stack_ptr(b: &B) -> u32 {
    let sp = b.c.regs[ESP];
    if b.mode == Mode::Real {
        sp & 0xffff
    } else {
        sp
    }
}

/// Store a return address of the operand size at `sp`.
fn write_ip(b: &mut B, sp: u32, t: u32) -> R {
    let n = b.opsize();
    b.write_mem(sp, n, t)
}

/// A branch target inside one of the sleds.
fn branch_target(b: &mut B) -> u32 {
    let j = b.rng.below(12);
    if b.rng.pct(40) {
        b.c.base + j
    } else {
        b.c.entry + b.len() + j
    }
}

fn abs_target(b: &mut B) -> u32 {
    branch_target(b)
}

/// Real mode: a random segment for linear target `t`.
fn real_far(b: &mut B, t: u32) -> (u16, u32) {
    let cs = b.rng.below((t >> 4) + 1).min(0xffff);
    (cs as u16, t - cs * 16)
}

fn far_ptr(b: &mut B) -> (u16, u32) {
    let t = branch_target(b);
    if b.mode == Mode::Real {
        return real_far(b, t);
    }
    let (sel, _) = b.far_sel_ok(85);
    (sel, t)
}

fn far_ptr_ret(b: &mut B) -> (u16, u32) {
    let t = branch_target(b);
    if b.mode == Mode::Real {
        return real_far(b, t);
    }
    let sel = if b.rng.pct(85) {
        b.rng.pick(&[0x08u16, 0x20, 0x58, 0x70])
    } else {
        b.rng.pick(&[0x00u16, 0x10, 0x80, 0x0b, 0x38])
    };
    (sel, t)
}

fn le(b: &[u8], n: usize) -> u32 {
    let mut v = 0;
    for (k, &x) in b[..n].iter().enumerate() {
        v |= (x as u32) << (8 * k);
    }
    v
}

#[allow(dead_code)]
fn unused(_: Fixed) -> bool {
    is_bad_sreg_real(0)
}
