//! TODO: activation_f32 kernel (being written).
