//! TODO: pad kernel (being written).
