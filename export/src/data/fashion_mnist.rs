//! Fashion-MNIST (Zalando, MIT licence), as shipped by Debian's `dataset-fashion-mnist`.
//!
//! 60,000 training and 10,000 test images, 28x28 grey levels, 10 classes.

use std::path::{Path, PathBuf};

use super::idx::read_idx;
use crate::error::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` installs the files.
pub const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Environment variable that overrides [`DEFAULT_DIR`].
pub const DIR_ENV: &str = "TERN_FASHION_MNIST_DIR";
/// The Debian package that provides the dataset.
pub const DEBIAN_PACKAGE: &str = "dataset-fashion-mnist";
/// Image side in pixels.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Class names, by label.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which half of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl Split {
    fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images (row-major `u8`, [`PIXELS`] per image) and their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `len() * PIXELS` grey levels.
    pub images: Vec<u8>,
    /// One label in `0..CLASSES` per image.
    pub labels: Vec<u8>,
}

/// The dataset folder: `$TERN_FASHION_MNIST_DIR` or [`DEFAULT_DIR`].
pub fn data_dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

impl Dataset {
    /// Loads a split from [`data_dir`].
    pub fn load(split: Split) -> Result<Self> {
        Self::load_from(&data_dir(), split)
    }

    /// Loads a split from `dir`, which holds the four `*-ubyte.gz` files.
    pub fn load_from(dir: &Path, split: Split) -> Result<Self> {
        let prefix = split.file_prefix();
        let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
        let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
        for path in [&images_path, &labels_path] {
            if !path.is_file() {
                return Err(Error::DatasetMissing {
                    path: path.clone(),
                    package: DEBIAN_PACKAGE,
                    env_var: DIR_ENV,
                });
            }
        }
        let images = read_idx(&images_path)?;
        let labels = read_idx(&labels_path)?;
        let invalid = |path: &Path, reason: String| Error::InvalidIdx {
            path: path.to_owned(),
            reason,
        };
        if images.dims.len() != 3 || images.dims[1..] != [SIDE, SIDE] {
            let reason = format!("image dimensions {:?}, expected [N, 28, 28]", images.dims);
            return Err(invalid(&images_path, reason));
        }
        if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
            let reason = format!(
                "label dimensions {:?}, expected [{}]",
                labels.dims, images.dims[0]
            );
            return Err(invalid(&labels_path, reason));
        }
        if let Some(pos) = labels.data.iter().position(|&l| usize::from(l) >= CLASSES) {
            let reason = format!(
                "label {} at index {pos} is not a class in 0..10",
                labels.data[pos]
            );
            return Err(invalid(&labels_path, reason));
        }
        Ok(Dataset {
            images: images.data,
            labels: labels.data,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps only the first `n` images (all of them if `n >= len`).
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.images.truncate(n * PIXELS);
    }

    /// The images at `indices`, scaled to `[0, 1]` as the models expect, in
    /// NCHW order (`indices.len() * PIXELS` values).
    pub fn images_f32(&self, indices: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * PIXELS);
        for &i in indices {
            out.extend(
                self.images[i * PIXELS..(i + 1) * PIXELS]
                    .iter()
                    .map(|&p| f32::from(p) / 255.0),
            );
        }
        out
    }

    /// The labels at `indices`.
    pub fn labels_at(&self, indices: &[usize]) -> Vec<u8> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_names_the_debian_package() {
        let err = Dataset::load_from(Path::new("/nonexistent/tern"), Split::Test).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("t10k-images-idx3-ubyte.gz"), "{msg}");
        assert!(msg.contains(DEBIAN_PACKAGE), "{msg}");
    }

    #[test]
    fn images_are_scaled_to_unit_range() {
        let mut images = vec![0u8; 2 * PIXELS];
        images[PIXELS] = 255;
        let data = Dataset {
            images,
            labels: vec![3, 7],
        };
        let x = data.images_f32(&[1]);
        assert_eq!(x.len(), PIXELS);
        assert_eq!(x[0], 1.0);
        assert_eq!(data.labels_at(&[1, 0]), vec![7, 3]);
    }
}
