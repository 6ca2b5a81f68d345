//! TODO: fully_connected_s8_fast kernel (being written).
