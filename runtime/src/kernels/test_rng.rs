//! Test-only xorshift64 generator shared by the kernel unit tests: reproducible
//! data without dependencies.

/// xorshift64 (13, 7, 17).
pub(crate) struct XorShift(pub u64);

#[allow(dead_code)] // Not every test uses every method.
impl XorShift {
    /// Next raw 64-bit value.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[-1, 1)`.
    pub(crate) fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
