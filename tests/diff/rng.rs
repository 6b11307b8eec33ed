//! A small seeded PRNG (xorshift64*), so the generated programs depend on the seed only.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03 | 1)
    }
    /// A second stream derived from the current state without advancing this one (decisions
    /// added later draw from it, so the rest of the generated cases stay as they were).
    pub fn side(&self, salt: u64) -> Rng {
        Rng::new(self.0 ^ salt)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    pub fn u8(&mut self) -> u8 {
        self.u32() as u8
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.u32() as u64 * n as u64) >> 32) as u32
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u32) -> bool {
        self.below(100) < pct
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u32) as usize]
    }
    /// A value biased towards the edges that make flags interesting.
    pub fn value(&mut self) -> u32 {
        match self.below(10) {
            0 => 0,
            1 => self.below(16),
            2 => 0xffff_ffff - self.below(4),
            3 => 0x8000_0000 ^ self.below(4).wrapping_sub(2),
            4 => 0x7fff_ffff - self.below(3),
            5 => (self.u8() as i8) as i32 as u32,
            6 => 0x0000_8000 ^ self.below(4).wrapping_sub(2) ^ (self.u32() & 0xffff_0000),
            7 => 0x80 ^ self.below(4).wrapping_sub(2) ^ (self.u32() & 0xffff_ff00),
            _ => self.u32(),
        }
    }
}

/// FNV-1a, 64-bit: the QEMU cache key.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
