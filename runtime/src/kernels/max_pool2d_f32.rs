//! TODO: max_pool2d_f32 kernel (being written).
