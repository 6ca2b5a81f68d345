//! TODO: conv2d_s8_fast kernel (being written).
