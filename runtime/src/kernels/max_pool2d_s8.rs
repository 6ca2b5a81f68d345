//! TODO: max_pool2d_s8 kernel (being written).
