//! TODO: conv_transpose2d_f32 kernel (being written).
