//! TODO: softmax_f32 kernel (being written).
