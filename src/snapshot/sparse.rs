//! Large byte buffers without their all-zero pages: guest RAM, the VMM's host memory,
//! VRAM, disk and floppy images. A 128 MiB VM whose guest touched 20 MiB saves about
//! 20 MiB.
//!
//! A buffer is written as its length and the runs of consecutive 4 KiB pages that hold a
//! non-zero byte, each as (first page, bytes); the last page may be short. Reading
//! allocates the stated length (capped) zeroed and copies the runs in, borrowing them
//! from the input where the decoder allows (postcard does), so a restore holds the file
//! and the state, not a third copy.
//!
//! Use on a `Vec<u8>` field: `#[serde(with = "crate::snapshot::sparse")]`.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PAGE: usize = 4096;
/// The longest buffer a snapshot may state: host memory stops below the VMs' device
/// windows at 3 GiB, a machine's RAM at 3 GiB, images are far smaller. A larger length is
/// corruption, refused before allocating.
pub const MAX_LEN: u64 = 4 << 30;

#[derive(Serialize)]
struct Out<'a> {
    len: u64,
    runs: Vec<(u32, &'a serde_bytes::Bytes)>,
}

#[derive(Deserialize)]
struct In<'a> {
    len: u64,
    #[serde(borrow)]
    runs: Vec<(u32, Run<'a>)>,
}

/// One run's bytes, borrowed from the input when the decoder can lend them.
#[derive(Deserialize)]
struct Run<'a>(#[serde(borrow, with = "serde_bytes")] Cow<'a, [u8]>);

pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut runs: Vec<(u32, &serde_bytes::Bytes)> = Vec::new();
    // The start of the run being gathered.
    let mut start: Option<usize> = None;
    for (i, page) in data.chunks(PAGE).enumerate() {
        let at = i * PAGE;
        match (start, page.iter().all(|&b| b == 0)) {
            (None, false) => start = Some(at),
            (Some(s), true) => {
                runs.push(((s / PAGE) as u32, serde_bytes::Bytes::new(&data[s..at])));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push(((s / PAGE) as u32, serde_bytes::Bytes::new(&data[s..])));
    }
    Out { len: data.len() as u64, runs }.serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let input = In::deserialize(d)?;
    if input.len > MAX_LEN {
        return Err(D::Error::custom("a buffer longer than 4 GiB"));
    }
    let mut data = alloc::vec![0u8; input.len as usize];
    for (page, Run(bytes)) in input.runs {
        let at = page as usize * PAGE;
        let dst = at.checked_add(bytes.len()).and_then(|end| data.get_mut(at..end));
        let Some(dst) = dst else {
            return Err(D::Error::custom("a run of pages beyond its buffer's length"));
        };
        dst.copy_from_slice(&bytes);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Buf(#[serde(with = "super")] alloc::vec::Vec<u8>);

    #[test]
    fn zero_pages_are_left_out_and_come_back() {
        let mut v = alloc::vec![0u8; 10 * 4096 + 100];
        v[5] = 1;
        v[3 * 4096] = 2;
        v[4 * 4096 + 7] = 3;
        v[10 * 4096 + 99] = 4;
        let bytes = postcard::to_allocvec(&Buf(v.clone())).unwrap();
        assert!(bytes.len() < 4 * 4096 + 200, "{} bytes", bytes.len());
        assert_eq!(postcard::from_bytes::<Buf>(&bytes).unwrap(), Buf(v));
        let empty = postcard::to_allocvec(&Buf(alloc::vec![0; 1 << 20])).unwrap();
        assert!(empty.len() < 8);
    }

    #[test]
    fn runs_outside_the_buffer_are_refused() {
        // len 4096, one run at page 1.
        let bad = postcard::to_allocvec(&(4096u64, alloc::vec![(1u32, serde_bytes::Bytes::new(&[1, 2]))])).unwrap();
        assert!(postcard::from_bytes::<Buf>(&bad).is_err());
        let huge = postcard::to_allocvec(&(u64::MAX, alloc::vec::Vec::<(u32, &serde_bytes::Bytes)>::new())).unwrap();
        assert!(postcard::from_bytes::<Buf>(&huge).is_err());
    }
}
