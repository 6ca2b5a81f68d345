//! TODO: concat kernel (being written).
