//! The accuracy benchmark: classify every embedded test image with the Tern
//! runtime, count the correct predictions, checksum the raw outputs and count the
//! instructions spent in inference.
//!
//! Hardware-independent: generic over the [`InstructionClock`] and the
//! [`core::fmt::Write`] that receives the result line, so that a port to a real
//! board only swaps those two. It must not touch peripherals itself.

use crate::clock::InstructionClock;
use core::fmt::{self, Write};
use crate::engine::{self, EngineError, Runner, Scores};

/// Bytes of one image: 28 x 28 grey levels.
pub const IMAGE_BYTES: usize = 28 * 28;

/// What to run and what to expect.
pub struct Benchmark<'d> {
    /// The `.tern` model file, 64-byte aligned.
    pub model: &'d [u8],
    /// `IMAGE_BYTES` grey levels per image.
    pub images: &'d [u8],
    /// One label per image.
    pub labels: &'d [u8],
    /// CRC-32 of `images` followed by `labels`, as computed when they were embedded.
    pub dataset_crc32: u32,
    /// Fail unless the output checksum equals this.
    pub expect_checksum: Option<u32>,
    /// Fail unless this many predictions are correct.
    pub expect_correct: Option<usize>,
}

/// The measured result of a run.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Images classified.
    pub images: usize,
    /// Images whose top-1 class equals the label.
    pub correct: usize,
    /// CRC-32 of the raw bytes of output 0 of every image, in order.
    pub checksum: u32,
    /// Instructions spent in `Interpreter::invoke`, summed over all images.
    pub instructions: u64,
    /// Fewest instructions one `invoke` took.
    pub min_instructions: u64,
    /// Most instructions one `invoke` took.
    pub max_instructions: u64,
}

impl Outcome {
    /// Accuracy in hundredths of a percent, rounded to nearest.
    pub fn accuracy_basis_points(&self) -> usize {
        (self.correct * 10_000 + self.images / 2) / self.images.max(1)
    }

    /// Mean instructions per inference, rounded to nearest.
    pub fn instructions_per_inference(&self) -> u64 {
        let images = self.images.max(1) as u64;
        (self.instructions + images / 2) / images
    }
}

/// Everything that can make a run fail.
#[derive(Debug)]
pub enum BenchError {
    /// The runtime rejected the model or failed to run it.
    Runtime(EngineError),
    /// The embedded images or labels are not what the build embedded.
    DatasetChecksum {
        /// CRC-32 computed at build time.
        expected: u32,
        /// CRC-32 of the bytes found in memory.
        found: u32,
    },
    /// The images and labels disagree in count, or an image is not 28x28.
    DatasetShape {
        /// Bytes of image data.
        image_bytes: usize,
        /// Number of labels.
        labels: usize,
    },
    /// The model's input 0 does not take one 28x28 image.
    InputSize {
        /// Elements the model's input 0 has.
        elements: usize,
    },
    /// The model's output 0 is neither int8 nor f32.
    OutputType(&'static str),
    /// The output checksum differs from `TERN_FW_EXPECT_CHECKSUM`.
    ChecksumMismatch {
        /// Expected CRC-32.
        expected: u32,
        /// CRC-32 of this run.
        found: u32,
    },
    /// The number of correct predictions differs from `TERN_FW_EXPECT_CORRECT`.
    CorrectMismatch {
        /// Expected count.
        expected: usize,
        /// Count of this run.
        found: usize,
    },
    /// Writing the result failed.
    Output,
}

impl From<EngineError> for BenchError {
    fn from(e: EngineError) -> BenchError {
        BenchError::Runtime(e)
    }
}

impl From<fmt::Error> for BenchError {
    fn from(_: fmt::Error) -> BenchError {
        BenchError::Output
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Runtime(e) => write!(f, "runtime: {e}"),
            BenchError::DatasetChecksum { expected, found } => write!(
                f,
                "embedded test set is corrupt: CRC-32 {found:#010x}, built as {expected:#010x}"
            ),
            BenchError::DatasetShape {
                image_bytes,
                labels,
            } => write!(
                f,
                "embedded test set has {image_bytes} image bytes for {labels} labels \
                 ({IMAGE_BYTES} bytes per image expected)"
            ),
            BenchError::InputSize { elements } => write!(
                f,
                "model input 0 has {elements} elements, expected one 28x28 image ({IMAGE_BYTES})"
            ),
            BenchError::OutputType(dtype) => {
                write!(
                    f,
                    "model output 0 is {dtype}, expected int8 or f32 scores"
                )
            }
            BenchError::ChecksumMismatch { expected, found } => write!(
                f,
                "output checksum {found:#010x} differs from TERN_FW_EXPECT_CHECKSUM {expected:#010x}"
            ),
            BenchError::CorrectMismatch { expected, found } => write!(
                f,
                "{found} correct predictions differ from TERN_FW_EXPECT_CORRECT {expected}"
            ),
            BenchError::Output => write!(f, "writing the result failed"),
        }
    }
}

impl Benchmark<'_> {
    /// Classifies every image with the model over `arena`, timing each
    /// `invoke` with `clock`.
    pub fn run<C: InstructionClock>(
        &self,
        arena: &mut [u8],
        clock: &mut C,
    ) -> Result<Outcome, BenchError> {
        if self.images.len() != self.labels.len() * IMAGE_BYTES {
            return Err(BenchError::DatasetShape {
                image_bytes: self.images.len(),
                labels: self.labels.len(),
            });
        }
        let mut dataset = crc32fast::Hasher::new();
        dataset.update(self.images);
        dataset.update(self.labels);
        let found = dataset.finalize();
        if found != self.dataset_crc32 {
            return Err(BenchError::DatasetChecksum {
                expected: self.dataset_crc32,
                found,
            });
        }

        let model = engine::load(self.model)?;
        let elements = model.input_len()?;
        if elements != IMAGE_BYTES {
            return Err(BenchError::InputSize { elements });
        }
        let mut interpreter = Runner::new(&model, arena)?;

        let mut pixels = [0f32; IMAGE_BYTES];
        let mut outputs = crc32fast::Hasher::new();
        let mut outcome = Outcome {
            images: 0,
            correct: 0,
            checksum: 0,
            instructions: 0,
            min_instructions: u64::MAX,
            max_instructions: 0,
        };
        for (image, &label) in self.images.chunks_exact(IMAGE_BYTES).zip(self.labels) {
            for (value, &grey) in pixels.iter_mut().zip(image) {
                *value = f32::from(grey) / 255.0;
            }
            interpreter.set_input(&pixels)?;
            let start = clock.now();
            interpreter.invoke()?;
            let instructions = clock.now() - start;
            outcome.instructions += instructions;
            outcome.min_instructions = outcome.min_instructions.min(instructions);
            outcome.max_instructions = outcome.max_instructions.max(instructions);

            let (bytes, scores) = interpreter.output()?;
            outputs.update(bytes);
            let class = match scores {
                Scores::I8(scores) => argmax(scores.iter().map(|&v| f32::from(v))),
                Scores::F32(scores) => argmax(scores.iter().copied()),
                Scores::Other(dtype) => return Err(BenchError::OutputType(dtype)),
            };
            outcome.images += 1;
            if class == usize::from(label) {
                outcome.correct += 1;
            }
        }
        outcome.checksum = outputs.finalize();
        Ok(outcome)
    }

    /// Compares `outcome` with the expected values, if any were set.
    pub fn check(&self, outcome: &Outcome) -> Result<(), BenchError> {
        if let Some(expected) = self.expect_checksum
            && expected != outcome.checksum
        {
            return Err(BenchError::ChecksumMismatch {
                expected,
                found: outcome.checksum,
            });
        }
        if let Some(expected) = self.expect_correct
            && expected != outcome.correct
        {
            return Err(BenchError::CorrectMismatch {
                expected,
                found: outcome.correct,
            });
        }
        Ok(())
    }
}

/// Index of the first largest score (the same tie rule as the host's `argmax_rows`).
fn argmax(scores: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, score) in scores.enumerate() {
        if score > best.1 {
            best = (i, score);
        }
    }
    best.0
}

/// The one line a script parses, e.g.
/// `tern-firmware: board=an386 cpu=cortex-m4 images=1000 correct=923 accuracy=92.30%
/// checksum=0x1234abcd instructions_per_inference=123456 arena=31424 stack_peak=4096`.
pub struct ResultLine<'a> {
    /// Board short name.
    pub board: &'a str,
    /// CPU core.
    pub cpu: &'a str,
    /// The run's result.
    pub outcome: &'a Outcome,
    /// Bytes of the arena buffer.
    pub arena: usize,
    /// Measured stack high-water mark in bytes.
    pub stack_peak: usize,
}

impl fmt::Display for ResultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.outcome;
        let accuracy = o.accuracy_basis_points();
        write!(
            f,
            "tern-firmware: board={} cpu={} images={} correct={} accuracy={}.{:02}% \
             checksum={:#010x} instructions_per_inference={} arena={} stack_peak={}",
            self.board,
            self.cpu,
            o.images,
            o.correct,
            accuracy / 100,
            accuracy % 100,
            o.checksum,
            o.instructions_per_inference(),
            self.arena,
            self.stack_peak,
        )
    }
}

/// Writes the result line to `out`.
pub fn report<W: Write>(out: &mut W, line: &ResultLine<'_>) -> Result<(), BenchError> {
    writeln!(out, "{line}")?;
    Ok(())
}
