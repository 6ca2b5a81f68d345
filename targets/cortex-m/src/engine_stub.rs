//! `engine.rs` with Tern stubbed out (`--features tern-stub`): the same
//! interface, no runtime linked. The firmware built this way is the baseline
//! that `cargo xtask size` subtracts, as TensorFlow Lite Micro measures its
//! framework. Its results are meaningless; only its size matters.

use core::fmt;
use core::hint::black_box;

/// The stub's error (never returned).
#[derive(Debug)]
pub struct EngineError;

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stub")
    }
}

/// The model bytes, unparsed.
pub struct LoadedModel<'m>(&'m [u8]);

/// Keeps the model bytes.
pub fn load(bytes: &[u8]) -> Result<LoadedModel<'_>, EngineError> {
    Ok(LoadedModel(black_box(bytes)))
}

impl LoadedModel<'_> {
    /// One 28x28 image.
    pub fn input_len(&self) -> Result<usize, EngineError> {
        Ok(black_box(self.0.len()).min(28 * 28))
    }
}

/// Output 0 of one inference.
pub enum Scores<'o> {
    /// int8 scores.
    I8(&'o [i8]),
    /// f32 scores.
    #[allow(dead_code)]
    F32(&'o [f32]),
    /// Another element type (named).
    #[allow(dead_code)]
    Other(&'static str),
}

/// Ten zero scores, over an arena it does not use.
pub struct Runner<'m, 'a> {
    scores: [i8; 10],
    _model: &'m LoadedModel<'m>,
    _arena: &'a mut [u8],
}

impl<'m, 'a> Runner<'m, 'a> {
    /// A runner that computes nothing.
    pub fn new(model: &'m LoadedModel<'m>, arena: &'a mut [u8]) -> Result<Self, EngineError> {
        Ok(Runner {
            scores: [0; 10],
            _model: model,
            _arena: arena,
        })
    }

    /// Reads the pixels (so that their conversion stays in the firmware).
    pub fn set_input(&mut self, pixels: &[f32]) -> Result<(), EngineError> {
        black_box(pixels);
        Ok(())
    }

    /// Does nothing.
    pub fn invoke(&mut self) -> Result<(), EngineError> {
        black_box(&mut self.scores);
        Ok(())
    }

    /// The ten zero scores.
    pub fn output(&self) -> Result<(&[u8], Scores<'_>), EngineError> {
        let bytes: &[u8] = bytemuck_free_bytes(&self.scores);
        Ok((bytes, Scores::I8(&self.scores)))
    }
}

fn bytemuck_free_bytes(scores: &[i8; 10]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern
    // is valid for both.
    unsafe { core::slice::from_raw_parts(scores.as_ptr().cast::<u8>(), scores.len()) }
}
