//! TODO: binary_s8 kernel (being written).
