//! The `.tern` header and meta header: byte readers, the table [`Layout`] and
//! [`parse`], which checks that every table lies inside the file. Owns only the
//! framing; the records themselves are checked by [`super::Model`].

use crate::error::{Error, Result};
use crate::format::{
    self, BUFFER_ALIGN, DATA_ALIGN, HEADER_LEN, MAGIC, META_HEADER_LEN, METADATA_RECORD_LEN,
    OP_RECORD_LEN, TENSOR_RECORD_LEN,
};

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Where each table of the meta section starts (byte offsets into the file).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Layout {
    pub(super) tensors: usize,
    pub(super) tensor_count: usize,
    pub(super) ops: usize,
    pub(super) op_count: usize,
    pub(super) inputs: usize,
    pub(super) input_count: usize,
    pub(super) outputs: usize,
    pub(super) output_count: usize,
    pub(super) index: usize,
    pub(super) index_count: usize,
    pub(super) params: usize,
    pub(super) param_count: usize,
    pub(super) metadata: usize,
    pub(super) metadata_count: usize,
    pub(super) strings: usize,
    pub(super) string_len: usize,
    pub(super) data: usize,
    pub(super) data_len: usize,
    pub(super) arena_size: usize,
    pub(super) major: u16,
    pub(super) minor: u16,
    pub(super) producer: (u32, u32),
    pub(super) name: (u32, u32),
}

fn truncated(what: &'static str, start: usize, end: usize, len: usize) -> Error {
    Error::Truncated {
        what,
        start: start as u64,
        end: end as u64,
        len: len as u64,
    }
}

fn bad_header(field: &'static str, value: u64, why: &'static str) -> Error {
    Error::BadHeader { field, value, why }
}

/// Reads the header and meta header and checks that every table lies inside the file.
pub(super) fn parse(b: &[u8]) -> Result<Layout> {
    if !(b.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
        return Err(Error::MisalignedBuffer {
            address: b.as_ptr() as usize,
            align: BUFFER_ALIGN,
        });
    }
    if b.len() < HEADER_LEN {
        return Err(truncated("file header", 0, HEADER_LEN, b.len()));
    }
    let magic: [u8; 8] = b[..8].try_into().unwrap_or([0; 8]);
    if magic != MAGIC {
        return Err(Error::BadMagic {
            found: magic,
            expected: MAGIC,
        });
    }
    let major = u16_at(b, format::header::MAJOR);
    let minor = u16_at(b, format::header::MINOR);
    if major != format::FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion {
            major,
            minor,
            supported: format::FORMAT_MAJOR,
        });
    }
    let file_len = u64_at(b, format::header::FILE_LEN);
    if file_len > b.len() as u64 {
        return Err(Error::Truncated {
            what: "file",
            start: 0,
            end: file_len,
            len: b.len() as u64,
        });
    }
    let meta_offset = u32_at(b, format::header::META_OFFSET) as usize;
    let meta_len = u32_at(b, format::header::META_LEN) as usize;
    if meta_offset != HEADER_LEN {
        return Err(bad_header(
            "meta_offset",
            meta_offset as u64,
            "must be 64 in format 1",
        ));
    }
    let meta_end = meta_offset + meta_len;
    if meta_end as u64 > file_len {
        return Err(truncated(
            "meta section",
            meta_offset,
            meta_end,
            file_len as usize,
        ));
    }
    let stored = u32_at(b, format::header::HEADER_CRC);
    let computed = crate::crc32::crc32(&b[16..meta_end]);
    if stored != computed {
        return Err(Error::HeaderChecksum {
            end: meta_end as u64,
            stored,
            computed,
        });
    }
    if meta_len < META_HEADER_LEN {
        return Err(truncated(
            "meta header",
            meta_offset,
            meta_offset + META_HEADER_LEN,
            meta_end,
        ));
    }
    let m = &b[meta_offset..meta_end];
    let count = |at: usize| u32_at(m, at) as usize;
    let mut l = Layout {
        major,
        minor,
        tensor_count: count(format::meta::TENSOR_COUNT),
        op_count: count(format::meta::OP_COUNT),
        input_count: count(format::meta::INPUT_COUNT),
        output_count: count(format::meta::OUTPUT_COUNT),
        index_count: count(format::meta::INDEX_COUNT),
        param_count: count(format::meta::PARAM_COUNT),
        string_len: count(format::meta::STRING_LEN),
        metadata_count: count(format::meta::METADATA_COUNT),
        producer: (
            u32_at(m, format::meta::PRODUCER),
            u32_at(m, format::meta::PRODUCER + 4),
        ),
        name: (
            u32_at(m, format::meta::NAME),
            u32_at(m, format::meta::NAME + 4),
        ),
        ..Layout::default()
    };
    let header_ops = u32_at(b, format::header::OP_COUNT) as usize;
    if header_ops != l.op_count {
        return Err(bad_header(
            "op_count",
            header_ops as u64,
            "differs from the meta section's",
        ));
    }
    // Lay the tables out back to back, with overflow-checked arithmetic.
    let mut at = meta_offset as u64 + META_HEADER_LEN as u64;
    let mut take = |count: usize, size: usize| {
        let start = at;
        at += count as u64 * size as u64;
        start as usize
    };
    l.tensors = take(l.tensor_count, TENSOR_RECORD_LEN);
    l.ops = take(l.op_count, OP_RECORD_LEN);
    l.inputs = take(l.input_count, 4);
    l.outputs = take(l.output_count, 4);
    l.index = take(l.index_count, 4);
    l.params = take(l.param_count, 4);
    l.metadata = take(l.metadata_count, METADATA_RECORD_LEN);
    l.strings = take(l.string_len, 1);
    if at != meta_end as u64 {
        return Err(bad_header(
            "meta_len",
            meta_len as u64,
            "does not match the table counts",
        ));
    }
    if core::str::from_utf8(&b[l.strings..l.strings + l.string_len]).is_err() {
        return Err(bad_header("string pool", l.string_len as u64, "not UTF-8"));
    }
    let data = u64_at(b, format::header::DATA_OFFSET);
    let data_len = u64_at(b, format::header::DATA_LEN);
    if !data.is_multiple_of(DATA_ALIGN as u64) || data < meta_end as u64 {
        return Err(bad_header(
            "data_offset",
            data,
            "must be 64-aligned and after the meta section",
        ));
    }
    if data.checked_add(data_len).is_none_or(|end| end > file_len) {
        return Err(Error::Truncated {
            what: "data section",
            start: data,
            end: data.saturating_add(data_len),
            len: file_len,
        });
    }
    l.data = data as usize;
    l.data_len = data_len as usize;
    l.arena_size = u32_at(b, format::header::ARENA_SIZE) as usize;
    let flags = u32_at(b, format::header::FLAGS);
    if flags != 0 {
        return Err(bad_header(
            "flags",
            flags as u64,
            "unknown flags (format 1 defines none)",
        ));
    }
    if l.input_count == 0 || l.output_count == 0 {
        return Err(bad_header(
            "input/output count",
            0,
            "a model needs at least one input and one output",
        ));
    }
    Ok(l)
}
