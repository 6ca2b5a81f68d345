//! TODO: resize_f32 kernel (being written).
