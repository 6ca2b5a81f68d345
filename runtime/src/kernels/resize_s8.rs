//! TODO: resize_s8 kernel (being written).
