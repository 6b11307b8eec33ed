//! Scan-before-execute, as Plex86 first did it (Lawton, "Running multiple operating
//! systems concurrently on an IA32 PC using virtualization techniques", 1999): the guest
//! kernel runs on the processor directly, but only code the monitor has scanned. A scan
//! decodes from an address up to the next branch and plants a breakpoint (INT3, CCh) on
//!
//! - each sensitive unprivileged instruction (the ones that go wrong at ring 1: SGDT,
//!   SIDT, SMSW, SLDT, STR, LAR, LSL, VERR, VERW, PUSHF, POPF, PUSH CS/SS, MOV from
//!   CS/SS, IRET), which the monitor then emulates as it would with CR4.PSI; and
//! - the branch that ends the block when a target is not scanned yet: a direct branch
//!   has its targets scanned when it is first reached and its breakpoint removed; an
//!   indirect one (RET, JMP/CALL through a register or memory) keeps it, because its
//!   target is known only when it runs.
//!
//! What was scanned is remembered by guest-physical address, so an address-space switch
//! keeps it (a kernel is mapped alike in every process); a block ends at its page's end
//! with a breakpoint on the instruction that continues on the next page. Scanned pages
//! are write-protected in the shadow tables; a write to one (self-modifying code, or a
//! loader) makes the monitor forget every scan — breakpoints come out, the next kernel
//! instruction is scanned afresh — and counts a rescan. Only the guest's
//! kernel code is scanned: ring-3 code runs at ring 3 on both machines, and its INT n
//! traps anyway. A guest that read its own code would see the breakpoints (Plex86 hid
//! them; nanobench does not look).

use super::World;
use crate::addr::Linear;
use crate::bus::Bus;
use crate::cpu::decode::{decode_slice, Instr, CS};
use crate::cpu::v386::ExitReason;
use crate::cpu::TrapKind;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// The longest block a scan decodes before it stops anyway.
const MAX_BLOCK: u32 = 256;
const INT3: u8 = 0xcc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Patch {
    /// A sensitive instruction: emulate it.
    Sensitive,
    /// A branch to code not (all) scanned: step it, scan where it went.
    Branch { direct: bool },
    /// The first instruction on the next page, where a block ran off its page: scan
    /// from here and take the breakpoint out.
    Continue,
}

/// A planted breakpoint.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Planted {
    orig: u8,
    kind: Patch,
}

/// What the scanner knows, by guest-physical address.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Scanner {
    /// Scanned blocks: start → end (exclusive), within one page.
    blocks: BTreeMap<u32, u32>,
    /// Guest frames holding scanned code (write-protected).
    frames: BTreeSet<u32>,
    /// Breakpoints.
    patches: BTreeMap<u32, Planted>,
}

/// How an instruction ends a block.
enum Flow {
    /// Not a branch.
    Next,
    /// A direct branch to these targets.
    Direct(Vec<u32>),
    /// A branch whose target is known only when it runs.
    Indirect,
    /// The monitor gets control anyway (INT n: its trap; HLT and other privileged
    /// instructions fault at ring 1 and continue after themselves).
    Trap,
}

impl World<'_, '_> {
    pub(crate) fn scan_protects(&self, frame: u32) -> bool {
        self.m.scanner.frames.contains(&frame)
    }

    /// The guest-physical address of kernel code at `lin` (None: not mapped).
    fn code_gpa(&mut self, lin: u32) -> Option<u32> {
        self.guest_walk(Linear(lin), false, false).ok().map(|w| w.gpa.0).filter(|g| *g < self.m.guest_ram)
    }

    /// Up to 15 bytes of guest code at `lin` (an instruction's longest), as far as they
    /// are readable with the rights of `user` code, with the scanner's breakpoints taken
    /// out: one walk of the guest's tables per page the bytes lie on (two at most), not
    /// one per byte.
    pub(crate) fn fetch_code(&mut self, lin: u32, user: bool) -> ([u8; 15], usize) {
        let mut bytes = [0u8; 15];
        let mut n = 0;
        while n < bytes.len() {
            let l = lin.wrapping_add(n as u32);
            let Ok(w) = self.guest_walk(Linear(l), false, user) else { break };
            let gpa = w.gpa.0;
            if gpa >= self.m.guest_ram {
                break;
            }
            let run = ((0x1000 - (l & 0xfff)) as usize).min(bytes.len() - n);
            let a = self.hpa(gpa) as usize;
            bytes[n..n + run].copy_from_slice(&self.bus.bytes()[a..a + run]);
            if !self.m.scanner.patches.is_empty() {
                for (k, b) in bytes[n..n + run].iter_mut().enumerate() {
                    if let Some(p) = self.m.scanner.patches.get(&(gpa + k as u32)) {
                        *b = p.orig;
                    }
                }
            }
            n += run;
        }
        (bytes, n)
    }

    /// A scanned frame was written: forget every scan.
    pub(crate) fn scan_note_write(&mut self, frame: u32) {
        if !self.m.scanner.frames.contains(&frame) {
            return;
        }
        self.m.counters.rescans += 1;
        self.scan_forget();
    }

    /// Take every breakpoint out and forget the blocks (their pages become writable at
    /// their next fault).
    pub(crate) fn scan_forget(&mut self) {
        let patches = core::mem::take(&mut self.m.scanner.patches);
        for (gpa, p) in &patches {
            let a = self.hpa(*gpa) as usize;
            if self.bus.bytes()[a] == INT3 {
                self.bus.ram()[a] = p.orig;
                self.cpu.icache.note_write(a as u32 >> 12);
            }
        }
        self.m.scanner.blocks.clear();
        self.m.scanner.frames.clear();
    }

    fn scanned(&mut self, lin: u32) -> bool {
        let Some(g) = self.code_gpa(lin) else { return false };
        matches!(self.m.scanner.blocks.range(..=g).next_back(), Some((_, end)) if g < *end)
    }

    /// Before the guest kernel runs on from CS:EIP, make sure that code is scanned.
    pub(crate) fn ensure_scanned(&mut self) {
        if !self.m.options.scan || self.vcpl() != 0 {
            return;
        }
        let c = &self.cpu;
        let lin = c.segs[CS as usize].base.wrapping_add(c.eip);
        if !self.scanned(lin) {
            self.scan_block(lin);
        }
    }

    /// Decode from `lin` up to the next branch (or its page's end), planting breakpoints.
    fn scan_block(&mut self, start: u32) {
        let code32 = self.cpu.segs[CS as usize].big();
        let cs_base = self.cpu.segs[CS as usize].base;
        let Some(start_gpa) = self.code_gpa(start) else { return };
        let mut lin = start;
        self.m.counters.scans += 1;
        while lin.wrapping_sub(start) < MAX_BLOCK {
            if lin >> 12 != start >> 12 {
                // Off the page: the next page's code is scanned when it is reached.
                self.plant(lin, Patch::Continue);
                break;
            }
            let (bytes, n) = self.fetch_code(lin, false);
            let Ok(i) = decode_slice(&bytes[..n], code32) else {
                // Undecodable or not mapped: stop here with a breakpoint; stepping it
                // raises what the processor raises.
                self.plant(lin, Patch::Branch { direct: false });
                break;
            };
            self.protect_code(lin, i.len as u32);
            let next = lin.wrapping_add(i.len as u32);
            if sensitive_at_ring1(&i) {
                self.plant(lin, Patch::Sensitive);
            }
            match flow(&i, next.wrapping_sub(cs_base), code32) {
                Flow::Next => {
                    lin = next;
                    continue;
                }
                Flow::Trap => {
                    lin = next;
                    break;
                }
                Flow::Indirect => {
                    self.plant(lin, Patch::Branch { direct: false });
                    lin = next;
                    break;
                }
                Flow::Direct(targets) => {
                    if targets.iter().any(|t| !self.scanned(cs_base.wrapping_add(*t))) {
                        self.plant(lin, Patch::Branch { direct: true });
                    }
                    lin = next;
                    break;
                }
            }
        }
        let len = lin.wrapping_sub(start).min(0x1000 - (start & 0xfff));
        self.m.scanner.blocks.insert(start_gpa, start_gpa + len.max(1));
    }

    /// Write-protect the frames an instruction's bytes lie in.
    fn protect_code(&mut self, lin: u32, len: u32) {
        for l in [lin, lin.wrapping_add(len - 1)] {
            if let Ok(w) = self.guest_walk(Linear(l), false, false) {
                let frame = w.gpa.page();
                if self.m.scanner.frames.insert(frame) {
                    self.write_protect(frame);
                }
            }
        }
    }

    fn plant(&mut self, lin: u32, kind: Patch) {
        let Some(g) = self.code_gpa(lin) else { return };
        if self.m.scanner.patches.contains_key(&g) {
            return;
        }
        if self.m.scanner.frames.insert(g >> 12) {
            self.write_protect(g >> 12);
        }
        let a = self.hpa(g) as usize;
        let orig = self.bus.bytes()[a];
        self.bus.ram()[a] = INT3;
        self.cpu.icache.note_write(a as u32 >> 12);
        self.m.scanner.patches.insert(g, Planted { orig, kind });
    }

    /// Put `byte` at guest-physical `gpa` (a breakpoint in or out), dropping decoded code
    /// there.
    fn poke(&mut self, gpa: u32, byte: u8) {
        let a = self.hpa(gpa);
        self.bus.ram()[a as usize] = byte;
        self.cpu.icache.note_write(a >> 12);
    }

    fn unplant(&mut self, gpa: u32) {
        if let Some(p) = self.m.scanner.patches.remove(&gpa) {
            self.poke(gpa, p.orig);
        }
    }

    /// INT3 in guest code: one of the scanner's breakpoints (EIP is past it), or the
    /// guest's own.
    pub(crate) fn scan_breakpoint(&mut self) -> Result<(), super::MonitorExit> {
        let c = &self.cpu;
        let at = c.segs[CS as usize].base.wrapping_add(c.eip.wrapping_sub(1));
        let at = self.code_gpa(at).unwrap_or(u32::MAX);
        let Some(p) = self.m.scanner.patches.get(&at).copied() else {
            self.count(ExitReason::ExceptionNmi);
            return self.reflect(3, TrapKind::Software, None);
        };
        self.m.counters.breakpoints += 1;
        self.count(ExitReason::ExceptionNmi);
        // The INT3 was the monitor's, not a guest instruction.
        let c = &mut self.cpu;
        c.eip = c.eip.wrapping_sub(1);
        c.icount = c.icount.saturating_sub(1);
        match p.kind {
            Patch::Sensitive => {
                let Some(i) = self.decode_here() else { return Ok(()) };
                // Counted as its breakpoint: the interpreter does not count it again.
                self.mute = true;
                let r = self.sensitive(&i);
                self.mute = false;
                if let Some(r) = r {
                    return r;
                }
                self.step_unpatched(at);
                Ok(())
            }
            Patch::Continue => {
                // The run loop scans from here (EIP) once the breakpoint is out.
                self.unplant(at);
                Ok(())
            }
            Patch::Branch { direct } => {
                if direct {
                    // Scan where it may go, then it needs no breakpoint.
                    let i = self.decode_here();
                    let c = &self.cpu;
                    let (cs_base, code32) = (c.segs[CS as usize].base, c.segs[CS as usize].big());
                    if let Some(i) = i {
                        let next = c.eip.wrapping_add(i.len as u32);
                        if let Flow::Direct(targets) = flow(&i, next, code32) {
                            for t in targets {
                                let t = cs_base.wrapping_add(t);
                                if !self.scanned(t) {
                                    self.scan_block(t);
                                }
                            }
                        }
                    }
                    self.unplant(at);
                    return Ok(());
                }
                self.step_unpatched(at);
                Ok(())
            }
        }
    }

    /// Step the instruction at guest-physical `at` with its original byte, then plant
    /// the breakpoint again.
    fn step_unpatched(&mut self, at: u32) {
        let Some(p) = self.m.scanner.patches.get(&at).copied() else { return };
        self.poke(at, p.orig);
        self.step_guest();
        if self.m.scanner.patches.contains_key(&at) {
            self.poke(at, INT3);
        }
    }
}

/// The sensitive instructions whose effect at ring 1 differs from ring 0's without a
/// fault (docs/v386.md Table 3-2, less those that are right at ring 1: loads of DS, ES,
/// FS, GS, far jumps and calls, and INT n, which traps to the monitor anyway).
fn sensitive_at_ring1(i: &Instr) -> bool {
    match i.opcode {
        0x101 => matches!(i.reg(), 0 | 1 | 4),
        0x100 => matches!(i.reg(), 0 | 1 | 4 | 5),
        0x102 | 0x103 => true,
        0x9c | 0x9d | 0x0e | 0x16 | 0xcf => true,
        0x8c => matches!(i.reg(), 1 | 2),
        _ => false,
    }
}

/// How `i` (whose next instruction is at offset `next`) ends a block.
fn flow(i: &Instr, next: u32, code32: bool) -> Flow {
    let mask = if code32 { u32::MAX } else { 0xffff };
    let rel = next.wrapping_add(i.imm) & mask;
    match i.opcode {
        0xeb | 0xe9 => Flow::Direct(alloc::vec![rel]),
        0x70..=0x7f | 0x180..=0x18f | 0xe0..=0xe3 => Flow::Direct(alloc::vec![rel, next]),
        0xe8 => Flow::Direct(alloc::vec![rel]),
        0xc2 | 0xc3 | 0xca | 0xcb | 0xcf | 0xea | 0x9a => Flow::Indirect,
        0xff if matches!(i.reg(), 2..=5) => Flow::Indirect,
        0xcc | 0xcd | 0xce | 0xf1 | 0xf4 | 0x134 | 0x135 => Flow::Trap,
        _ => Flow::Next,
    }
}
