//! Reader for the IDX format used by MNIST and Fashion-MNIST (optionally gzip'd).
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned byte), a rank byte, then
//! one big-endian `u32` per dimension, then the data in row-major order.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major data, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads an IDX file; a name ending in `.gz` is decompressed on the fly.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    let read = if path.extension().is_some_and(|ext| ext == "gz") {
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut bytes)
    };
    read.map_err(|e| Error::InvalidIdx {
        path: path.to_owned(),
        reason: format!("cannot read or decompress: {e}"),
    })?;
    parse_idx(&bytes).map_err(|reason| Error::InvalidIdx {
        path: path.to_owned(),
        reason,
    })
}

/// Parses IDX bytes; the error is a human-readable reason.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    let header = bytes.get(..4).ok_or_else(|| {
        format!(
            "file is {} bytes, shorter than the 4-byte magic",
            bytes.len()
        )
    })?;
    if header[0] != 0 || header[1] != 0 {
        return Err(format!(
            "bad magic {header:02x?}: an IDX file starts with two zero bytes"
        ));
    }
    if header[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            header[2]
        ));
    }
    let rank = usize::from(header[3]);
    if rank == 0 {
        return Err("rank 0 is not supported".into());
    }
    let dims_end = 4 + 4 * rank;
    let dim_bytes = bytes.get(4..dims_end).ok_or_else(|| {
        format!(
            "truncated header: rank {rank} needs {dims_end} bytes, file has {}",
            bytes.len()
        )
    })?;
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let data = &bytes[dims_end..];
    if data.len() < count {
        return Err(format!(
            "truncated: dimensions {dims:?} need {count} data bytes, file has {}",
            data.len()
        ));
    }
    if data.len() > count {
        return Err(format!(
            "{} unexpected trailing bytes after {count} data bytes",
            data.len() - count
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_a_small_array() {
        let arr = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(arr.dims, vec![2, 3]);
        assert_eq!(arr.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        assert!(parse_idx(&[0, 0]).unwrap_err().contains("shorter than"));
        assert!(parse_idx(&[1, 0, 8, 1]).unwrap_err().contains("bad magic"));
        assert!(
            parse_idx(&[0, 0, 0x0d, 1])
                .unwrap_err()
                .contains("element type 0x0d")
        );
        assert!(
            parse_idx(&[0, 0, 8, 2, 0, 0])
                .unwrap_err()
                .contains("truncated header")
        );
        let short = idx(&[2, 3], &[1, 2, 3]);
        assert!(
            parse_idx(&short)
                .unwrap_err()
                .contains("need 6 data bytes, file has 3")
        );
        let long = idx(&[1], &[1, 2]);
        assert!(parse_idx(&long).unwrap_err().contains("trailing"));
    }

    #[test]
    fn a_truncated_gzip_file_is_a_typed_error() {
        let dir = std::env::temp_dir().join(format!("tern-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.gz");
        std::fs::write(&path, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, Error::InvalidIdx { .. }), "{err}");
        assert!(err.to_string().contains("broken.gz"));
        let missing = read_idx(&dir.join("absent.gz")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
