//! TODO: fully_connected_f32 kernel (being written).
