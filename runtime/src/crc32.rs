//! CRC-32 (IEEE 802.3, as zlib's `crc32`): the `.tern` header and data
//! checksums and the SPI frames.
//!
//! By default `crc32fast` computes it (16 KiB of tables; SIMD on hosts that
//! have it). The `small-crc` feature uses the `crc` crate with one 1 KiB table
//! instead, for small-flash firmware that does not link `crc32fast` anyway:
//! about 8x slower per byte, which only the load-time header check and
//! [`crate::Model::verify_data`] pay. Both give the same values.

/// An incremental CRC-32.
pub struct Crc32(Inner);

#[cfg(not(feature = "small-crc"))]
type Inner = crc32fast::Hasher;

#[cfg(feature = "small-crc")]
type Inner = crc::Digest<'static, u32, crc::Table<1>>;

/// The `crc` crate's algorithm with its 256-entry table, built at compile time.
#[cfg(feature = "small-crc")]
static SMALL: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);

impl Crc32 {
    /// The CRC of nothing so far.
    #[inline]
    pub fn new() -> Crc32 {
        #[cfg(not(feature = "small-crc"))]
        return Crc32(crc32fast::Hasher::new());
        #[cfg(feature = "small-crc")]
        return Crc32(SMALL.digest());
    }

    /// Adds `bytes`.
    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The CRC of everything added.
    #[inline]
    pub fn finalize(self) -> u32 {
        self.0.finalize()
    }
}

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32::new()
    }
}

/// The CRC-32 of `bytes`.
#[inline]
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = Crc32::new();
    crc.update(bytes);
    crc.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_zlib_check_value() {
        // The catalogue's check value: CRC-32 of "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let mut crc = Crc32::new();
        crc.update(b"1234");
        crc.update(b"56789");
        assert_eq!(crc.finalize(), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
