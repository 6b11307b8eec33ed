//! Where a drive's bytes live. The IDE model never touches an image directly: it asks a
//! [`BlockBackend`] for byte ranges, so the in-memory image used today ([`MemoryImage`]) can
//! later be joined by a file-backed one (native runner) or one that fetches blocks lazily
//! over the network (browser) without the ATA/ATAPI code changing. A backend may fail a
//! request; the drive then reports a medium error to the guest instead of panicking.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

/// Why a backend could not serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The range lies (partly) outside the image.
    OutOfRange,
    /// The bytes are not available (yet): e.g. a lazily fetched block that has not arrived.
    Unavailable,
    /// The backend does not accept writes.
    ReadOnly,
    /// Any other failure of the storage behind the image.
    Io,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendError::OutOfRange => "range outside the image",
            BackendError::Unavailable => "data not available",
            BackendError::ReadOnly => "image is read-only",
            BackendError::Io => "storage I/O error",
        })
    }
}

/// Byte-addressed storage behind a hard disk or a CD-ROM medium. The size must not change
/// while the backend is attached (the drive reports its capacity to the guest once).
pub trait BlockBackend {
    /// Size of the image in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` with the bytes at `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    /// Store `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Make earlier writes durable (the guest's FLUSH CACHE). In-memory images have nothing
    /// to do.
    fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// The whole image, when the backend holds it in memory (lets the host look at a disk's
    /// current contents without detaching it).
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }
    /// The whole image by value, when the backend holds it in memory.
    fn into_bytes(self: Box<Self>) -> Option<Vec<u8>> {
        None
    }
}

/// An image held entirely in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryImage {
    data: Vec<u8>,
}

impl MemoryImage {
    pub fn new(data: Vec<u8>) -> Self {
        Self { data }
    }

    /// The image bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Give the image back.
    pub fn into_inner(self) -> Vec<u8> {
        self.data
    }

    /// The byte range `offset..offset + len`, if it lies inside the image.
    fn range(&self, offset: u64, len: usize) -> Result<core::ops::Range<usize>, BackendError> {
        let start = usize::try_from(offset).map_err(|_| BackendError::OutOfRange)?;
        let end = start.checked_add(len).ok_or(BackendError::OutOfRange)?;
        if end > self.data.len() {
            return Err(BackendError::OutOfRange);
        }
        Ok(start..end)
    }
}

impl BlockBackend for MemoryImage {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let r = self.range(offset, buf.len())?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let r = self.range(offset, data.len())?;
        self.data[r].copy_from_slice(data);
        Ok(())
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(&self.data)
    }

    fn into_bytes(self: Box<Self>) -> Option<Vec<u8>> {
        Some(self.data)
    }
}
