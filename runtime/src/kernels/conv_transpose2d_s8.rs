//! TODO: conv_transpose2d_s8 kernel (being written).
