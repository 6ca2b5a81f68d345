//! The ONNX ops Tern claims to support: one list, derived from the importer's
//! op registry (each family's `OPS` table under `convert/import/`), read by the
//! ONNX conformance test runner (which runs every backend node test whose ops
//! are all in this list) and by the generated table in `docs/ops.md`, so that
//! the importer, the tests and the docs cannot disagree. This module owns the
//! row types and the sorted view; the rows themselves live beside their
//! import handlers.

use std::sync::LazyLock;

/// One supported ONNX op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSupport {
    /// ONNX op type (default domain).
    pub op: &'static str,
    /// Precisions the lowered op runs in: `f32` always (f16 models run f32 compute
    /// with f16 weights); `int8` when an integer kernel exists, otherwise an int8
    /// model runs the op as a float island between Dequantize/Quantize.
    pub int8: Int8Support,
    /// Limits worth knowing (empty when none).
    pub notes: &'static str,
}

/// How an int8 model runs an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Support {
    /// An integer-only kernel.
    Kernel,
    /// Folded away or a pure data move on int8 bytes (no arithmetic).
    DataMove,
    /// A float island: Dequantize, f32 kernel, Quantize.
    FloatIsland,
    /// Only ever folded into constants at conversion.
    FoldedOnly,
}

impl Int8Support {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Int8Support::Kernel => "int8 kernel",
            Int8Support::DataMove => "int8 (data move)",
            Int8Support::FloatIsland => "float island",
            Int8Support::FoldedOnly => "constant-folded",
        }
    }
}

/// Every ONNX op the converter maps, sorted by name (case-insensitive): the
/// registry rows of the importer's op families, so that this list and what the
/// importer accepts cannot disagree.
pub fn supported_ops() -> &'static [OpSupport] {
    static SORTED: LazyLock<Vec<OpSupport>> = LazyLock::new(|| {
        let mut ops: Vec<OpSupport> = super::import::registered_ops().copied().collect();
        ops.sort_by_key(|s| s.op.to_lowercase());
        ops
    });
    &SORTED
}

/// The entry for `op_type`, if Tern supports it.
pub fn lookup(op_type: &str) -> Option<&'static OpSupport> {
    supported_ops().iter().find(|s| s.op == op_type)
}

/// True when every op type in `ops` is supported.
pub fn all_supported<'a>(mut ops: impl Iterator<Item = &'a str>) -> bool {
    ops.all(|o| lookup(o).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        let ops = supported_ops();
        for pair in ops.windows(2) {
            assert!(
                pair[0].op.to_lowercase() < pair[1].op.to_lowercase(),
                "{} before {} (an op registered twice?)",
                pair[0].op,
                pair[1].op
            );
        }
        assert_eq!(ops.len(), super::super::import::registered_ops().count());
    }

    #[test]
    fn lookup_finds_registered_ops_only() {
        for s in supported_ops() {
            assert_eq!(lookup(s.op), Some(s));
        }
        assert_eq!(lookup("NoSuchOp"), None);
        assert!(all_supported(["Conv", "Relu"].into_iter()));
        assert!(!all_supported(["Conv", "NoSuchOp"].into_iter()));
    }
}
