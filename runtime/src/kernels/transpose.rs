//! TODO: transpose kernel (being written).
