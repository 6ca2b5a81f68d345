//! Training and evaluation data: the IDX file reader and the Fashion-MNIST dataset.
//! Everything here is plain bytes and `f32`s; no tensor framework is involved.

pub mod fashion_mnist;
pub mod idx;

pub use fashion_mnist::{Dataset, Split};
