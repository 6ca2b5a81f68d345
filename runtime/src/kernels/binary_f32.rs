//! TODO: binary_f32 kernel (being written).
