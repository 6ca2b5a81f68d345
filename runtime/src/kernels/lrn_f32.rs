//! TODO: lrn_f32 kernel (being written).
