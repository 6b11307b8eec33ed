//! The interpreters (Popek & Goldberg): the monitor's handling of a #GP at ring 1 or 3.
//! The faulting instruction is decoded from guest memory and, when it is one the guest
//! kernel may execute, performed on the guest's virtual state:
//!
//! - *privileged* instructions, which fault at ring 1 on any x86: CLI, STI, HLT, IN,
//!   OUT, MOV to and from CRn, LGDT, LIDT, LLDT, LTR, LMSW, CLTS, INVLPG, INVD/WBINVD,
//!   RDMSR, WRMSR, SYSEXIT, and the loads of a ring-0 selector into SS or CS (IRET,
//!   RETF, MOV/POP SS, LSS) that ring compression makes fault;
//! - SYSENTER from the guest's user code, which faults because the processor's
//!   IA32_SYSENTER_CS stays 0 (the guest's SYSENTER MSRs are virtual);
//! - *sensitive* ones, which fault only with CR4.PSI (docs/v386.md Table 3-2) or reach
//!   here as scan-before-execute breakpoints: SGDT, SIDT, SMSW, SLDT, STR, PUSHF, POPF,
//!   PUSH CS/SS, MOV from CS/SS, LAR, LSL, VERR, VERW, INT n, IRET. Those whose effect at
//!   ring 1 is already what the guest means (loads of other segment registers, far
//!   jumps and calls) are stepped on the processor with PSI off for one instruction.
//!
//! Anything else is the guest's own #GP and is reflected to it.

use super::guest::MemError;
use super::segments::visible;
use super::{MonitorError, MonitorExit, World};
use crate::bus::{Bus, IoSize, StopRequest};
use crate::cpu::decode::{decode_slice, Instr, CS, DS, SEG_DEFAULT, SS};
use crate::cpu::msr::index;
use crate::cpu::v386::ExitReason;
use crate::cpu::{cr0, cr4, flags, TableReg, TrapKind, EAX, ECX, EDX, ESP};
use crate::vmm::interp::{read_msr, write_msr};
use alloc::format;

/// What an interpreter did.
type Done = Result<(), MonitorExit>;

impl World<'_, '_> {
    pub(crate) fn general_protection(&mut self, code: u16) -> Done {
        self.gp(code, self.m.options.psi)
    }

    fn gp(&mut self, code: u16, psi: bool) -> Done {
        let Some(i) = self.decode_here() else {
            self.count(ExitReason::ExceptionNmi);
            return self.reflect(13, TrapKind::Exception, Some(code));
        };
        if i.opcode == 0x134 {
            // SYSENTER, from ring 3: the processor's IA32_SYSENTER_CS is 0.
            return self.sysenter();
        }
        if self.vcpl() == 0 {
            if let Some(r) = self.privileged(&i) {
                return r;
            }
        }
        if psi && code == 0 {
            if let Some(r) = self.sensitive(&i) {
                return r;
            }
        }
        self.count(ExitReason::ExceptionNmi);
        self.reflect(13, TrapKind::Exception, Some(code))
    }

    /// The instruction at CS:EIP, from the guest's memory (the scanner's breakpoints
    /// taken out).
    pub(crate) fn decode_here(&mut self) -> Option<Instr> {
        let c = &self.cpu;
        let code32 = c.segs[CS as usize].big();
        let lin = c.segs[CS as usize].base.wrapping_add(c.eip);
        let (bytes, n) = self.fetch_code(lin, self.vcpl() == 3);
        let i = decode_slice(&bytes[..n], code32).ok()?;
        self.here = Some((lin, bytes, i.len));
        Some(i)
    }

    /// The linear address of a memory operand.
    fn ea_lin(&self, i: &Instr) -> u32 {
        let c = &self.cpu;
        let seg = if i.seg != SEG_DEFAULT {
            i.seg
        } else if i.ss_default {
            SS
        } else {
            DS
        };
        c.segs[seg as usize].base.wrapping_add(c.ea(i))
    }

    /// Count the trap (logged at the instruction) and step past the instruction.
    fn retire(&mut self, i: &Instr, r: ExitReason) -> Done {
        self.count(r);
        let c = &mut self.cpu;
        c.eip = c.eip.wrapping_add(i.len as u32);
        Ok(())
    }

    fn unsupported(what: alloc::string::String) -> Done {
        Err(MonitorExit::Error(MonitorError::Unsupported(what)))
    }

    /// Memory the interpreter touched was not there for the guest: its #PF.
    fn guest_mem(&mut self, e: MemError) -> Done {
        match e {
            MemError::Pf(pf) => {
                self.m.v.cr2 = pf.addr;
                self.reflect(14, TrapKind::Exception, Some(pf.code))
            }
            MemError::NotRam(a) => Err(MonitorExit::Error(MonitorError::NotGuestMemory(a))),
        }
    }

    /// Privileged instructions of the guest kernel. None: not one of them.
    fn privileged(&mut self, i: &Instr) -> Option<Done> {
        let op32 = i.op32;
        Some(match i.opcode {
            0xfa => {
                self.m.v.iflag = false;
                self.retire(i, ExitReason::SensitiveInstruction)
            }
            0xfb => {
                self.m.v.iflag = true;
                let r = self.retire(i, ExitReason::SensitiveInstruction);
                self.cpu.inhibit_irq = true;
                if self.bus.board().interrupt_pending() {
                    // STI's shadow (SDM Vol. 3A §6.8.3): the next instruction runs before
                    // the held interrupt is delivered (by the run loop, after it).
                    self.step_guest();
                }
                r
            }
            0xf4 => {
                if !self.m.v.iflag {
                    // Logged like any HLT: the VM stops at it for good.
                    self.count(ExitReason::Hlt);
                    return Some(Err(MonitorExit::DeadHalt));
                }
                self.cpu.halted = true;
                self.retire(i, ExitReason::Hlt)
            }
            0xe4 | 0xe5 | 0xec | 0xed | 0xe6 | 0xe7 | 0xee | 0xef => return Some(self.port_io(i)),
            0x130 => return Some(self.wrmsr(i)),
            0x132 => return Some(self.rdmsr(i)),
            0x135 => return Some(self.sysexit()),
            0x120 | 0x122 => self.mov_cr(i),
            0x121 | 0x123 => {
                // Debug registers: kept, not acted on (as the processor's own).
                let (dr, r) = (i.reg() as usize, i.rm() as usize);
                let c = &mut self.cpu;
                if i.opcode == 0x121 {
                    c.regs[r] = c.dr[dr];
                } else {
                    c.dr[dr] = c.regs[r];
                }
                self.retire(i, ExitReason::DrAccess)
            }
            0x101 if matches!(i.reg(), 2 | 3) && i.is_mem => {
                let lin = self.ea_lin(i);
                let mut b = [0u8; 6];
                if let Err(e) = self.read_lin(lin, &mut b, false) {
                    return Some(self.guest_mem(e));
                }
                let limit = u16::from_le_bytes([b[0], b[1]]);
                let mut base = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                if !op32 {
                    base &= 0x00ff_ffff;
                }
                if i.reg() == 2 {
                    self.m.v.gdtr = TableReg { base, limit };
                    self.rebuild_gdt();
                } else {
                    self.m.v.idtr = TableReg { base, limit };
                }
                self.retire(i, ExitReason::SensitiveInstruction)
            }
            0x101 if i.reg() == 6 => {
                // LMSW: PE, MP, EM, TS; PE cannot be cleared (SDM Vol. 2A "LMSW").
                let v = match self.read_rm16(i) {
                    Ok(v) => v as u32,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                self.m.v.cr0 = (self.m.v.cr0 & !0xe) | (v & 0xf) | (self.m.v.cr0 & cr0::PE);
                self.sync_real_control();
                self.retire(i, ExitReason::CrAccess)
            }
            0x101 if i.reg() == 7 && i.is_mem => {
                let lin = self.ea_lin(i);
                self.shadow_invlpg(crate::addr::Linear(lin));
                self.retire(i, ExitReason::Invlpg)
            }
            0x100 if i.reg() == 2 => {
                let sel = match self.read_rm16(i) {
                    Ok(v) => v,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                if let Err((v, code)) = self.guest_lldt(sel) {
                    self.count(ExitReason::ExceptionNmi);
                    return Some(self.reflect(v, TrapKind::Exception, Some(code)));
                }
                self.retire(i, ExitReason::SensitiveInstruction)
            }
            0x100 if i.reg() == 3 => {
                let sel = match self.read_rm16(i) {
                    Ok(v) => v,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                if let Err(e) = self.guest_ltr(sel) {
                    return Some(Err(MonitorExit::Error(e)));
                }
                self.retire(i, ExitReason::SensitiveInstruction)
            }
            0x106 => {
                self.m.v.cr0 &= !cr0::TS;
                self.sync_real_control();
                self.retire(i, ExitReason::CrAccess)
            }
            0x108 | 0x109 => self.retire(i, ExitReason::SensitiveInstruction),
            0xcf if op32 => {
                self.count(ExitReason::SensitiveInstruction);
                self.emulate_iret()
            }
            // Loads of SS with the kernel's RPL-0 selector: RPL must equal CPL (1).
            0x8e if i.reg() == SS => {
                let sel = match self.read_rm16(i) {
                    Ok(v) => v,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                self.load_ss(i, sel, None)
            }
            0x17 => {
                let sel = match self.peek32(0) {
                    Ok(v) => v as u16,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                let esp = self.cpu.regs[ESP].wrapping_add(if op32 { 4 } else { 2 });
                self.load_ss(i, sel, Some(esp))
            }
            // LSS r32, m16:32 (the offset, then the selector).
            0x1b2 if i.is_mem => {
                let lin = self.ea_lin(i);
                let n = if op32 { 4 } else { 2 };
                let mut b = [0u8; 6];
                if let Err(e) = self.read_lin(lin, &mut b[..n + 2], self.vcpl() == 3) {
                    return Some(self.guest_mem(e));
                }
                let offset = if op32 {
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                } else {
                    u16::from_le_bytes([b[0], b[1]]) as u32
                };
                let sel = u16::from_le_bytes([b[n], b[n + 1]]);
                if let Err((v, code)) = self.load_guest_seg(SS, sel) {
                    self.count(ExitReason::ExceptionNmi);
                    return Some(self.reflect(v, TrapKind::Exception, Some(code)));
                }
                self.cpu.set_regv(i.reg(), offset, op32);
                self.retire(i, ExitReason::SensitiveInstruction)
            }
            // RETF to the kernel (CS RPL 0), same level.
            0xca | 0xcb if op32 => {
                let (eip, cs) = match (self.peek32(0), self.peek32(1)) {
                    (Ok(a), Ok(b)) => (a, b as u16),
                    (Err(e), _) | (_, Err(e)) => return Some(self.guest_mem(e)),
                };
                if cs & 3 != 0 || self.vcpl() != 0 {
                    return None;
                }
                if let Err((v, code)) = self.load_guest_seg(CS, cs) {
                    return Some(self.reflect(v, TrapKind::Exception, Some(code)));
                }
                let extra = if i.opcode == 0xca { i.imm & 0xffff } else { 0 };
                let c = &mut self.cpu;
                c.regs[ESP] = c.regs[ESP].wrapping_add(8 + extra);
                c.eip = eip;
                self.count(ExitReason::SensitiveInstruction);
                Ok(())
            }
            _ => return None,
        })
    }

    /// RDMSR (SDM Vol. 2B "RDMSR"): the SYSENTER MSRs from the virtual state, the TSC and
    /// EFER from the processor, the rest as a V386 VM's (`vmm::interp::read_msr`).
    fn rdmsr(&mut self, i: &Instr) -> Done {
        let v = match self.cpu.regs[ECX] {
            index::IA32_SYSENTER_CS => Some(self.m.v.sysenter[0] as u64),
            index::IA32_SYSENTER_ESP => Some(self.m.v.sysenter[1] as u64),
            index::IA32_SYSENTER_EIP => Some(self.m.v.sysenter[2] as u64),
            index::IA32_TIME_STAMP_COUNTER => Some(self.cpu.tsc()),
            index::IA32_EFER => Some(self.cpu.msr.efer),
            other => {
                let (msrs, board) = self.bus.msrs_and_board();
                read_msr(msrs, board, other)
            }
        };
        let Some(v) = v else {
            self.count(ExitReason::Rdmsr);
            return self.reflect(13, TrapKind::Exception, Some(0));
        };
        let c = &mut self.cpu;
        c.regs[EAX] = v as u32;
        c.regs[EDX] = (v >> 32) as u32;
        self.retire(i, ExitReason::Rdmsr)
    }

    /// WRMSR: the SYSENTER MSRs into the virtual state (the processor's stay 0); a write
    /// to the TSC or EFER is dropped (the processor is shared with other VMs, and its EFER
    /// only holds NXE, for PAE paging the monitor does not model); the rest as a V386
    /// VM's.
    fn wrmsr(&mut self, i: &Instr) -> Done {
        let c = &self.cpu;
        let v = ((c.regs[EDX] as u64) << 32) | c.regs[EAX] as u64;
        let ok = match c.regs[ECX] {
            index::IA32_SYSENTER_CS => {
                self.m.v.sysenter[0] = v as u32;
                true
            }
            index::IA32_SYSENTER_ESP => {
                self.m.v.sysenter[1] = v as u32;
                true
            }
            index::IA32_SYSENTER_EIP => {
                self.m.v.sysenter[2] = v as u32;
                true
            }
            index::IA32_TIME_STAMP_COUNTER | index::IA32_EFER => true,
            other => {
                let (msrs, board) = self.bus.msrs_and_board();
                write_msr(msrs, board, other, v)
            }
        };
        if !ok {
            self.count(ExitReason::Wrmsr);
            return self.reflect(13, TrapKind::Exception, Some(0));
        }
        self.retire(i, ExitReason::Wrmsr)
    }

    /// SYSENTER from the guest's user code (SDM Vol. 2B "SYSENTER"): its kernel's flat
    /// code and stack segments from the virtual IA32_SYSENTER_CS (held at RPL 1, from
    /// the shadow GDT), ESP and EIP from the other two, IF off.
    fn sysenter(&mut self) -> Done {
        let cs = (self.m.v.sysenter[0] & 0xfffc) as u16;
        if cs == 0 || self.vcpl() != 3 {
            self.count(ExitReason::ExceptionNmi);
            return self.reflect(13, TrapKind::Exception, Some(0));
        }
        self.count(ExitReason::SensitiveInstruction);
        let saved = (self.cpu.segs, self.cpu.cpl);
        if let Err((v, code)) = self.load_guest_seg(CS, cs).and_then(|_| self.load_guest_seg(SS, cs + 8)) {
            (self.cpu.segs, self.cpu.cpl) = saved;
            return self.reflect(v, TrapKind::Exception, Some(code));
        }
        self.m.v.iflag = false;
        let c = &mut self.cpu;
        let f = c.flags.get() & !(flags::VM | flags::RF);
        c.flags.set(f);
        c.regs[ESP] = self.m.v.sysenter[1];
        c.eip = self.m.v.sysenter[2];
        Ok(())
    }

    /// SYSEXIT from the guest kernel: its user code and stack segments at
    /// IA32_SYSENTER_CS + 16 and + 24 (RPL 3), EIP = EDX, ESP = ECX.
    fn sysexit(&mut self) -> Done {
        let base = (self.m.v.sysenter[0] & 0xfffc) as u16;
        if base == 0 {
            self.count(ExitReason::ExceptionNmi);
            return self.reflect(13, TrapKind::Exception, Some(0));
        }
        self.count(ExitReason::SensitiveInstruction);
        let saved = (self.cpu.segs, self.cpu.cpl);
        if let Err((v, code)) =
            self.load_guest_seg(CS, (base + 16) | 3).and_then(|_| self.load_guest_seg(SS, (base + 24) | 3))
        {
            (self.cpu.segs, self.cpu.cpl) = saved;
            return self.reflect(v, TrapKind::Exception, Some(code));
        }
        let c = &mut self.cpu;
        c.eip = c.regs[EDX];
        c.regs[ESP] = c.regs[ECX];
        Ok(())
    }

    /// MOV SS or POP SS (`esp`: ESP after the pop): SS with the guest's selector, and
    /// the one-instruction interrupt shadow (SDM Vol. 3A §6.8.3).
    fn load_ss(&mut self, i: &Instr, sel: u16, esp: Option<u32>) -> Done {
        if let Err((v, code)) = self.load_guest_seg(SS, sel) {
            self.count(ExitReason::ExceptionNmi);
            return self.reflect(v, TrapKind::Exception, Some(code));
        }
        let c = &mut self.cpu;
        if let Some(esp) = esp {
            c.regs[ESP] = esp;
        }
        c.inhibit_irq = true;
        self.retire(i, ExitReason::SensitiveInstruction)
    }

    /// IN and OUT on the guest's board (its devices are the machine's).
    fn port_io(&mut self, i: &Instr) -> Done {
        let size = match i.opcode {
            0xe4 | 0xe6 | 0xec | 0xee => IoSize::Byte,
            _ if i.op32 => IoSize::Dword,
            _ => IoSize::Word,
        };
        let port = match i.opcode {
            0xe4..=0xe7 => i.imm as u8 as u16,
            _ => self.cpu.regs[EDX] as u16,
        };
        let bus = &mut self.bus;
        let c = &mut self.cpu;
        // The devices see the time of this instruction, as for one the processor runs
        // (`Bus::sync` before a port access): a PIT polled in a loop counts true.
        bus.sync(c.icount);
        if matches!(i.opcode, 0xe4 | 0xe5 | 0xec | 0xed) {
            let v = bus.io_in(port, size);
            let eax = &mut c.regs[EAX];
            *eax = match size {
                IoSize::Byte => (*eax & !0xff) | (v & 0xff),
                IoSize::Word => (*eax & !0xffff) | (v & 0xffff),
                IoSize::Dword => v,
            };
        } else {
            bus.io_out(port, size, c.regs[EAX]);
        }
        self.retire(i, ExitReason::Io)?;
        match self.bus.take_stop_request() {
            Some(StopRequest::DebugExit(v)) => Err(MonitorExit::DebugExit(v)),
            Some(StopRequest::PowerOff) => Err(MonitorExit::PowerOff),
            Some(StopRequest::Reset) => Err(MonitorExit::Error(MonitorError::Unsupported("a reset".into()))),
            Some(StopRequest::Yield) => Err(MonitorExit::Yield),
            None => Ok(()),
        }
    }

    /// MOV to and from CR0, CR2, CR3, CR4 against the virtual registers; the shadow
    /// follows CR3, and CR0.PG/WP and CR4.PSE changes.
    fn mov_cr(&mut self, i: &Instr) -> Done {
        let (n, r) = (i.reg(), i.rm() as usize);
        if i.opcode == 0x120 {
            let v = match n {
                0 => self.m.v.cr0,
                2 => self.m.v.cr2,
                3 => self.m.v.cr3,
                4 => self.m.v.cr4,
                _ => return Self::unsupported(format!("MOV from CR{n}")),
            };
            self.cpu.regs[r] = v;
            return self.retire(i, ExitReason::CrAccess);
        }
        let v = self.cpu.regs[r];
        match n {
            0 => {
                if v & cr0::PE == 0 {
                    return Err(MonitorExit::Error(MonitorError::NotProtected));
                }
                let old = self.m.v.cr0;
                self.m.v.cr0 = v | cr0::ET;
                self.sync_real_control();
                if (old ^ self.m.v.cr0) & (cr0::PG | cr0::WP) != 0 {
                    self.shadow_reset();
                }
            }
            2 => self.m.v.cr2 = v,
            3 => {
                self.m.v.cr3 = v;
                self.shadow_reset();
            }
            4 => {
                if v & cr4::PAE != 0 {
                    return Self::unsupported("PAE paging".into());
                }
                let old = self.m.v.cr4;
                self.m.v.cr4 = v;
                if (old ^ v) & (cr4::PSE | cr4::PGE) != 0 {
                    self.shadow_reset();
                }
            }
            _ => return Self::unsupported(format!("MOV to CR{n}")),
        }
        self.retire(i, ExitReason::CrAccess)
    }

    fn read_rm16(&mut self, i: &Instr) -> Result<u16, MemError> {
        if !i.is_mem {
            return Ok(self.cpu.regs[i.rm() as usize] as u16);
        }
        let lin = self.ea_lin(i);
        let mut b = [0u8; 2];
        self.read_lin(lin, &mut b, self.vcpl() == 3)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Write a selector-sized result: to a register (zero-extended with a 32-bit operand,
    /// as SLDT/STR/MOV r32, Sreg do on the P6), or a word of memory.
    fn write_rm16(&mut self, i: &Instr, v: u16) -> Result<(), MemError> {
        if !i.is_mem {
            self.cpu.set_regv(i.rm(), v as u32, i.op32);
            return Ok(());
        }
        let lin = self.ea_lin(i);
        self.write_lin(lin, &v.to_le_bytes(), self.vcpl() == 3)
    }

    fn push_op(&mut self, v: u32, op32: bool) -> Result<(), MemError> {
        if op32 {
            return self.push32(v);
        }
        let c = &self.cpu;
        let esp = c.regs[ESP].wrapping_sub(2);
        let lin = c.segs[SS as usize].base.wrapping_add(esp);
        self.write_lin(lin, &(v as u16).to_le_bytes(), self.vcpl() == 3)?;
        self.cpu.regs[ESP] = esp;
        Ok(())
    }

    /// The sensitive unprivileged instructions, answered from the guest's virtual state.
    /// None: not one of them.
    pub(crate) fn sensitive(&mut self, i: &Instr) -> Option<Done> {
        let op32 = i.op32;
        let vcpl = self.vcpl();
        let r = match i.opcode {
            0x101 if matches!(i.reg(), 0 | 1) && i.is_mem => {
                let t = if i.reg() == 0 { self.m.v.gdtr } else { self.m.v.idtr };
                let base = if op32 { t.base } else { t.base & 0x00ff_ffff };
                let mut b = [0u8; 6];
                b[..2].copy_from_slice(&t.limit.to_le_bytes());
                b[2..].copy_from_slice(&base.to_le_bytes());
                let lin = self.ea_lin(i);
                self.write_lin(lin, &b, vcpl == 3)
            }
            0x101 if i.reg() == 4 => self.write_rm16(i, self.m.v.cr0 as u16),
            0x100 if i.reg() == 0 => self.write_rm16(i, self.m.v.ldtr),
            0x100 if i.reg() == 1 => self.write_rm16(i, self.m.v.tr),
            0x100 if matches!(i.reg(), 4 | 5) => match self.read_rm16(i) {
                Ok(sel) => {
                    let ok = self.check_selector(sel, if i.reg() == 4 { Check::Read } else { Check::Write }).is_some();
                    self.set_zf(ok);
                    Ok(())
                }
                Err(e) => Err(e),
            },
            0x102 | 0x103 => {
                let sel = match self.read_rm16(i) {
                    Ok(v) => v,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                let check = if i.opcode == 0x102 { Check::Lar } else { Check::Lsl };
                match self.check_selector(sel, check) {
                    Some(v) => {
                        self.cpu.set_regv(i.reg(), v, op32);
                        self.set_zf(true);
                    }
                    None => self.set_zf(false),
                }
                Ok(())
            }
            0x9c => {
                if vcpl == 3 && self.m.v.iopl < 3 {
                    return None;
                }
                self.push_op(self.flags_image(), op32)
            }
            0x9d => {
                if vcpl == 3 && self.m.v.iopl < 3 {
                    return None;
                }
                let v = match self.peek32(0) {
                    Ok(v) => v,
                    Err(e) => return Some(self.guest_mem(e)),
                };
                let (mask, n) = if op32 { (!(flags::VM | flags::RF | flags::VX), 4) } else { (0xffff, 2) };
                self.set_flags_image(v, mask, vcpl);
                let c = &mut self.cpu;
                c.regs[ESP] = c.regs[ESP].wrapping_add(n);
                Ok(())
            }
            0x0e => self.push_op(visible(self.cpu.segs[CS as usize].sel) as u32, op32),
            0x16 => self.push_op(visible(self.cpu.segs[SS as usize].sel) as u32, op32),
            0x8c if i.reg() <= 5 => {
                let sel = visible(self.cpu.segs[i.reg() as usize].sel);
                self.write_rm16(i, sel)
            }
            0xcc..=0xce => {
                let vector = match i.opcode {
                    0xcd => i.imm as u8,
                    0xcc => 3,
                    _ => 4,
                };
                let c = &mut self.cpu;
                c.eip = c.eip.wrapping_add(i.len as u32);
                self.count(ExitReason::SensitiveInstruction);
                return Some(self.reflect(vector, TrapKind::Software, None));
            }
            0xcf if op32 => {
                self.count(ExitReason::SensitiveInstruction);
                return Some(self.emulate_iret());
            }
            // Right at ring 1 already: segment loads other than SS, far transfers.
            0x06 | 0x07 | 0x1e | 0x1f | 0x1a0 | 0x1a1 | 0x1a8 | 0x1a9 | 0x9a | 0xea | 0xca | 0xcb | 0xc4 | 0xc5
            | 0x1b4 | 0x1b5 => {
                self.count(ExitReason::SensitiveInstruction);
                return Some(self.step_without_psi());
            }
            0x8e if i.reg() != SS => {
                self.count(ExitReason::SensitiveInstruction);
                return Some(self.step_without_psi());
            }
            0xff if matches!(i.reg(), 3 | 5) => {
                self.count(ExitReason::SensitiveInstruction);
                return Some(self.step_without_psi());
            }
            // MOV SS, POP SS, LSS: as the privileged path does it.
            0x8e | 0x17 | 0x1b2 if vcpl == 0 => return self.privileged(i),
            _ => return None,
        };
        Some(match r {
            Ok(()) => self.retire(i, ExitReason::SensitiveInstruction),
            Err(e) => self.guest_mem(e),
        })
    }

    /// Run the instruction at EIP on the processor with CR4.PSI off: its effect at ring 1
    /// is the guest's. A #GP it raises there is handled as without PSI.
    fn step_without_psi(&mut self) -> Done {
        let eip = self.cpu.eip;
        self.cpu.cr4 &= !cr4::PSI;
        self.step_guest();
        if self.m.options.psi {
            self.cpu.cr4 |= cr4::PSI;
        }
        let gp_here =
            matches!(self.cpu.trapped, Some(crate::cpu::TrapEvent { vector: 13, kind: TrapKind::Exception, .. }))
                && self.cpu.eip == eip;
        if gp_here {
            let ev = self.cpu.trapped.take();
            self.take_carry();
            return self.gp(ev.and_then(|e| e.error).unwrap_or(0), false);
        }
        Ok(())
    }

    fn set_zf(&mut self, on: bool) {
        let c = &mut self.cpu;
        let f = c.flags.get() & !flags::ZF;
        c.flags.set(f | if on { flags::ZF } else { 0 });
    }

    /// LAR, LSL, VERR, VERW against the guest's descriptor and privilege (SDM Vol. 2A):
    /// Some(the result) when the check passes.
    fn check_selector(&mut self, sel: u16, check: Check) -> Option<u32> {
        if sel & !3 == 0 {
            return None;
        }
        let (lo, hi) = self.guest_descriptor(sel)?;
        let s = hi & (1 << 12) != 0;
        let code = s && hi & (1 << 11) != 0;
        let conforming = code && hi & (1 << 10) != 0;
        let dpl = ((hi >> 13) & 3) as u8;
        let rpl = (sel & 3) as u8;
        let privileged_ok = conforming || dpl >= self.vcpl().max(rpl);
        let typ = (hi >> 8) & 0xf;
        let valid_sys = |types: &[u32]| !s && types.contains(&typ);
        let limit = {
            let l = (lo & 0xffff) | (hi & 0x000f_0000);
            if hi & (1 << 23) != 0 {
                (l << 12) | 0xfff
            } else {
                l
            }
        };
        match check {
            Check::Lar if (s || valid_sys(&[1, 2, 3, 4, 5, 9, 11, 12])) && privileged_ok => Some(hi & 0x00f0_ff00),
            Check::Lsl if (s || valid_sys(&[1, 2, 3, 9, 11])) && privileged_ok => Some(limit),
            Check::Read if s && privileged_ok && (!code || hi & (1 << 9) != 0) => Some(0),
            Check::Write if s && !code && dpl >= self.vcpl().max(rpl) && hi & (1 << 9) != 0 => Some(0),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Check {
    Lar,
    Lsl,
    Read,
    Write,
}
