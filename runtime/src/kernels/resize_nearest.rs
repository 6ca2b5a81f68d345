//! TODO: resize_nearest kernel (being written).
