//! State behind trait objects, which serde cannot derive for.
//!
//! - A disk's or CD's [`BlockBackend`] is saved as the image it holds (sparse, like RAM)
//!   and comes back as a [`MemoryImage`]: the guest sees the same bytes, whatever stored
//!   them. A backend that does not hold its image in memory (`as_bytes` is `None`) cannot
//!   be saved, and saving says so rather than writing a snapshot without the disk.
//! - Functions added to the PCI bus at run time (`PciBus::add_function`, only tests use
//!   it) are refused the same way; a restored bus has none.

use super::sparse;
use crate::devices::ide::{BlockBackend, MemoryImage};
use alloc::boxed::Box;
use alloc::vec::Vec;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A backend as its image.
struct Image<'a>(&'a dyn BlockBackend);

impl Serialize for Image<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_bytes() {
            Some(bytes) => sparse::serialize(bytes, s),
            None => Err(S::Error::custom("a disk backend that does not hold its image in memory")),
        }
    }
}

/// An image read back, as an in-memory backend.
struct Restored(Box<dyn BlockBackend>);

impl<'de> Deserialize<'de> for Restored {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Restored(Box::new(MemoryImage::new(sparse::deserialize(d)?))))
    }
}

/// `#[serde(with = "crate::snapshot::backend")]` on a `Box<dyn BlockBackend>`.
pub mod backend {
    use super::*;

    // serde hands `with` functions a reference to the field, here a box.
    #[allow(clippy::borrowed_box)]
    pub fn serialize<S: Serializer>(b: &Box<dyn BlockBackend>, s: S) -> Result<S::Ok, S::Error> {
        Image(b.as_ref()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<dyn BlockBackend>, D::Error> {
        Ok(Restored::deserialize(d)?.0)
    }

    /// The same for an `Option<Box<dyn BlockBackend>>` (a CD drive's medium).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(b: &Option<Box<dyn BlockBackend>>, s: S) -> Result<S::Ok, S::Error> {
            b.as_deref().map(Image).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<dyn BlockBackend>>, D::Error> {
            Ok(Option::<Restored>::deserialize(d)?.map(|r| r.0))
        }
    }
}

/// `#[serde(with = "crate::snapshot::no_extra_functions")]` on `PciBus::extra`: an empty
/// list is saved as nothing; a non-empty one cannot be saved.
pub mod no_extra_functions {
    use super::*;
    use crate::devices::pci::PciFunction;

    /// `PciBus::extra`'s type.
    type Extra = Vec<(u8, Box<dyn PciFunction>)>;

    // serde hands `with` functions a reference to the field, here a `Vec`.
    #[allow(clippy::ptr_arg)]
    pub fn serialize<S: Serializer>(extra: &Extra, s: S) -> Result<S::Ok, S::Error> {
        if !extra.is_empty() {
            return Err(S::Error::custom("PCI functions added at run time"));
        }
        ().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Extra, D::Error> {
        <()>::deserialize(d)?;
        Ok(Vec::new())
    }
}
