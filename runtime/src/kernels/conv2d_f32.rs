//! TODO: conv2d_f32 kernel (being written).
