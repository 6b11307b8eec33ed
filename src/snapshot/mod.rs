//! Snapshots: a whole machine — a bare [`crate::machine::Machine`] or a
//! [`crate::vmm::Vmm`] with all its VMs — saved to bytes and restored from them.
//!
//! What is saved is every piece of state a guest can observe: the processor (registers,
//! descriptor caches, FPU, MSRs, the TSC offset, a V386 guest in progress), RAM, firmware
//! and shadow-RAM state, every device model with its images and buffers, the clock, and
//! for a VMM its host memory, VMs, exit log and scheduler position. The state types derive
//! serde's traits where they are defined; what is derived from other state and rebuilt on
//! demand (the TLB and its banks, the decoded-instruction and block caches, the V386
//! spare box) is `#[serde(skip)]` and starts empty after a restore.
//!
//! Where behaviour lives:
//! - this file: the file format (header, checksum, payload) and [`SnapshotError`];
//! - `sparse.rs`: large byte buffers (RAM, host memory, VRAM, images) without their
//!   all-zero pages;
//! - `dynamic.rs`: state behind trait objects (a disk's block backend is saved as its
//!   image and restored as an in-memory one);
//! - `crate::machine::snapshot` and `crate::vmm::snapshot`: `save` and `restore` of each
//!   kind, with the checks a restored state must pass.
//!
//! # Format
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `V386SNAP` |
//! | 8 | 2 | format version, little-endian ([`FORMAT_VERSION`]) |
//! | 10 | 1 | kind: 1 machine, 2 VMM ([`Kind`]) |
//! | 11 | 1 | reserved, 0 |
//! | 12 | 4 | CRC-32 (IEEE) of the payload, little-endian |
//! | 16 | 8 | payload length in bytes, little-endian |
//! | 24 | … | payload: the state in postcard's encoding |
//!
//! The payload's layout is the derived serde layout of the state types, so any change to
//! a saved field (added, removed, reordered, retyped) must bump [`FORMAT_VERSION`]: an
//! older file is then refused with [`SnapshotError::UnsupportedVersion`] rather than
//! misread. The checksum catches damaged files; a file crafted to pass it is decoded with
//! bounds checks (no allocation beyond its stated, capped sizes) and the restored state is
//! checked for the invariants the emulator relies on, but is otherwise trusted.

mod dynamic;
pub(crate) mod sparse;

pub(crate) use dynamic::{backend, no_extra_functions};

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"V386SNAP";
/// The payload layout this build writes and reads. 2: a VM carries its technique, the
/// software monitor's state and an emulated VM's processor. 3: and its TSC's lead on its
/// clock (`Vm::tsc_ahead`).
pub const FORMAT_VERSION: u16 = 3;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 24;

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A bare [`crate::machine::Machine`].
    Machine = 1,
    /// A [`crate::vmm::Vmm`] with its VMs.
    Vmm = 2,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Machine => "a machine",
            Kind::Vmm => "a VMM",
        }
    }
}

/// Why a snapshot could not be written or read. Never a panic: every malformed input is
/// one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The file does not start with `V386SNAP`.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// A snapshot of the other kind (a VMM's given to the machine, or the reverse).
    WrongKind { expected: Kind, found: u8 },
    /// The file ends before the header or the payload it announces.
    Truncated,
    /// The payload fails its checksum, does not decode, or decodes to a state that breaks
    /// an invariant; what was wrong.
    Corrupt(String),
    /// Saving: a part of the state cannot be written (a disk backend that does not hold
    /// its image in memory, a PCI function added at run time).
    Unsupported(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BadMagic => write!(f, "not a v386 snapshot (no V386SNAP magic)"),
            SnapshotError::UnsupportedVersion(v) => {
                write!(f, "snapshot format version {v}; this build reads version {FORMAT_VERSION}")
            }
            SnapshotError::WrongKind { expected, found } => {
                let found = match *found {
                    1 => Kind::Machine.name(),
                    2 => Kind::Vmm.name(),
                    _ => "an unknown kind",
                };
                write!(f, "the snapshot holds {found}, not {}", expected.name())
            }
            SnapshotError::Truncated => write!(f, "the snapshot is truncated"),
            SnapshotError::Corrupt(why) => write!(f, "the snapshot is corrupt: {why}"),
            SnapshotError::Unsupported(why) => write!(f, "cannot save: {why}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SnapshotError {}

/// Header and payload of `state`.
pub(crate) fn encode<T: Serialize>(kind: Kind, state: &T) -> Result<Vec<u8>, SnapshotError> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(kind as u8);
    out.push(0);
    out.extend_from_slice(&[0; 12]);
    // postcard appends to the header in place: no second copy of a large payload.
    let mut out = postcard::to_extend(state, out).map_err(|e| match e {
        // Custom errors come only from `dynamic.rs`, which refuses what it cannot write;
        // postcard keeps no message, so say what those refusals are.
        postcard::Error::SerdeSerCustom => SnapshotError::Unsupported(
            "a disk whose backend does not hold its image in memory, or a PCI function added at run time".into(),
        ),
        e => SnapshotError::Unsupported(alloc::format!("{e}")),
    })?;
    let payload_len = (out.len() - HEADER_LEN) as u64;
    let crc = crc32(&out[HEADER_LEN..]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out[16..24].copy_from_slice(&payload_len.to_le_bytes());
    Ok(out)
}

/// What a snapshot file holds, by its magic and kind byte alone (for a front end that
/// takes either kind: `restore` of that kind checks the rest), or `None` when `bytes`
/// does not start as a snapshot of a known kind.
pub fn kind_of(bytes: &[u8]) -> Option<Kind> {
    if bytes.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    match *bytes.get(10)? {
        1 => Some(Kind::Machine),
        2 => Some(Kind::Vmm),
        _ => None,
    }
}

/// Check the header of `bytes` and decode its payload as a `T`.
pub(crate) fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8]) -> Result<T, SnapshotError> {
    if bytes.len() < MAGIC.len() {
        // Too short to tell: garbage and a truncated header look alike here.
        return Err(if MAGIC.starts_with(bytes) { SnapshotError::Truncated } else { SnapshotError::BadMagic });
    }
    if bytes[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let header = bytes.get(..HEADER_LEN).ok_or(SnapshotError::Truncated)?;
    let version = u16::from_le_bytes([header[8], header[9]]);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    if header[10] != kind as u8 {
        return Err(SnapshotError::WrongKind { expected: kind, found: header[10] });
    }
    let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&header[16..24]);
    let len = u64::from_le_bytes(len);
    let payload = &bytes[HEADER_LEN..];
    if (payload.len() as u64) < len {
        return Err(SnapshotError::Truncated);
    }
    if payload.len() as u64 > len {
        return Err(SnapshotError::Corrupt(alloc::format!("{} bytes after the payload", payload.len() as u64 - len)));
    }
    if crc32(payload) != crc {
        return Err(SnapshotError::Corrupt("payload checksum mismatch".into()));
    }
    let (state, rest) = postcard::take_from_bytes::<T>(payload).map_err(|e| match e {
        postcard::Error::DeserializeUnexpectedEnd => SnapshotError::Truncated,
        e => SnapshotError::Corrupt(alloc::format!("{e}")),
    })?;
    if !rest.is_empty() {
        return Err(SnapshotError::Corrupt(alloc::format!("{} undecoded bytes in the payload", rest.len())));
    }
    Ok(state)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial EDB88320h), as zlib and PNG compute it.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn headers_are_checked_before_the_payload() {
        let good = encode(Kind::Machine, &(1u32, 2u64)).unwrap();
        assert_eq!(decode::<(u32, u64)>(Kind::Machine, &good), Ok((1, 2)));
        assert_eq!(
            decode::<(u32, u64)>(Kind::Vmm, &good),
            Err(SnapshotError::WrongKind { expected: Kind::Vmm, found: 1 })
        );
        assert_eq!(decode::<(u32, u64)>(Kind::Machine, b"garbage!garbage!garbage!"), Err(SnapshotError::BadMagic));
        assert_eq!(decode::<(u32, u64)>(Kind::Machine, &good[..5]), Err(SnapshotError::Truncated));
        assert_eq!(decode::<(u32, u64)>(Kind::Machine, &good[..good.len() - 1]), Err(SnapshotError::Truncated));
        let mut v = good.clone();
        v[8] = 9;
        assert_eq!(decode::<(u32, u64)>(Kind::Machine, &v), Err(SnapshotError::UnsupportedVersion(9)));
        let mut c = good.clone();
        *c.last_mut().unwrap() ^= 1;
        assert!(matches!(decode::<(u32, u64)>(Kind::Machine, &c), Err(SnapshotError::Corrupt(_))));
    }

    #[test]
    fn the_kind_is_read_from_the_header() {
        assert_eq!(kind_of(&encode(Kind::Machine, &1u8).unwrap()), Some(Kind::Machine));
        assert_eq!(kind_of(&encode(Kind::Vmm, &1u8).unwrap()), Some(Kind::Vmm));
        let mut odd = encode(Kind::Vmm, &1u8).unwrap();
        odd[10] = 7;
        assert_eq!(kind_of(&odd), None);
        assert_eq!(kind_of(b"V386SNAP"), None);
        assert_eq!(kind_of(b"garbage!garbage!garbage!"), None);
    }
}
