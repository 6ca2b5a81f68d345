//! TODO: lut_s8 kernel (being written).
