//! TODO: concat_s8 kernel (being written).
