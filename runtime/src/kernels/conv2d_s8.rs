//! TODO: conv2d_s8 kernel (being written).
