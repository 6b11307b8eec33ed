//! Guest exceptions (SDM Vol. 3A §6.3, Table 6-1). These are delivered to the guest through
//! its IDT; they are never host errors. A fault leaves EIP at the faulting instruction.

/// An exception the CPU raises into the guest, with its error code where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exception {
    /// #DE, vector 0: divide error.
    DE,
    /// #DB, vector 1: debug.
    DB,
    /// #BP, vector 3: INT3 (a trap: EIP points after it).
    BP,
    /// #OF, vector 4: INTO with OF set (a trap).
    OF,
    /// #BR, vector 5: BOUND range exceeded.
    BR,
    /// #UD, vector 6: invalid opcode.
    UD,
    /// #NM, vector 7: device not available.
    NM,
    /// #DF, vector 8: double fault (error code 0).
    DF,
    /// #TS, vector 10: invalid TSS.
    TS(u16),
    /// #NP, vector 11: segment not present.
    NP(u16),
    /// #SS, vector 12: stack-segment fault.
    SS(u16),
    /// #GP, vector 13: general protection.
    GP(u16),
    /// #PF, vector 14: page fault; CR2 gets `addr`.
    PF { addr: u32, code: u16 },
    /// #MF, vector 16: x87 floating-point error.
    MF,
    /// #AC, vector 17: alignment check (error code 0).
    AC,
    /// Not a guest exception: the access caused a VM exit (a nested page fault,
    /// docs/v386.md §6.3), already recorded in the CPU. It travels the memory layer's
    /// `Result<_, Exception>` paths like any fault and `Cpu::raise` completes the exit
    /// instead of delivering it; it never reaches a guest.
    VmExit,
}

/// Which of the SDM's classes an exception belongs to, for the double-fault rules
/// (SDM Vol. 3A §6.15, Table 6-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Benign,
    Contributory,
    PageFault,
    DoubleFault,
}

impl Exception {
    pub fn vector(self) -> u8 {
        match self {
            Exception::DE => 0,
            Exception::DB => 1,
            Exception::BP => 3,
            Exception::OF => 4,
            Exception::BR => 5,
            Exception::UD => 6,
            Exception::NM => 7,
            Exception::DF => 8,
            Exception::TS(_) => 10,
            Exception::NP(_) => 11,
            Exception::SS(_) => 12,
            Exception::GP(_) => 13,
            Exception::PF { .. } => 14,
            Exception::MF => 16,
            Exception::AC => 17,
            // Never delivered (see the variant); a vector no exception uses.
            Exception::VmExit => 31,
        }
    }

    /// The error code pushed on the handler's stack, if the exception has one.
    pub fn error_code(self) -> Option<u16> {
        match self {
            Exception::DF | Exception::AC => Some(0),
            Exception::TS(c) | Exception::NP(c) | Exception::SS(c) | Exception::GP(c) => Some(c),
            Exception::PF { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn class(self) -> Class {
        match self {
            Exception::DE | Exception::TS(_) | Exception::NP(_) | Exception::SS(_) | Exception::GP(_) => {
                Class::Contributory
            }
            Exception::PF { .. } => Class::PageFault,
            Exception::DF => Class::DoubleFault,
            _ => Class::Benign,
        }
    }

    /// Traps report the address of the next instruction; faults that of the faulting one.
    pub fn is_trap(self) -> bool {
        matches!(self, Exception::BP | Exception::OF)
    }
}

/// Error-code bits for #PF (SDM Vol. 3A §4.7, Figure 4-12).
pub mod pf {
    /// The fault was a protection violation (else the page was not present).
    pub const PRESENT: u16 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u16 = 1 << 1;
    /// The access was made at CPL 3.
    pub const USER: u16 = 1 << 2;
    /// A reserved bit was set in a paging-structure entry.
    pub const RSVD: u16 = 1 << 3;
    /// The access was an instruction fetch (with PAE+NX; next issue).
    pub const FETCH: u16 = 1 << 4;
}

/// Error code for a selector-related fault (SDM Vol. 3A §6.13): EXT bit 0, IDT bit 1, TI bit 2.
pub fn selector_error(sel: u16) -> u16 {
    sel & 0xfffc
}

/// Error code naming an IDT entry (SDM Vol. 3A §6.13: IDT flag set).
pub fn idt_error(vector: u8) -> u16 {
    ((vector as u16) << 3) | 2
}
