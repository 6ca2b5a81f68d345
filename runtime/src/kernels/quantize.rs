//! TODO: quantize kernel (being written).
