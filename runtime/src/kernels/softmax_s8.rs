//! TODO: softmax_s8 kernel (being written).
