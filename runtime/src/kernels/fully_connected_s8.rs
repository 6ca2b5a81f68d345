//! TODO: fully_connected_s8 kernel (being written).
