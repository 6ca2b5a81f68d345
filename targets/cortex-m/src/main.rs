//! Tern firmware: runs the Fashion-MNIST accuracy benchmark of an int8 `.tern` model
//! on a Cortex-M board emulated by QEMU (mps2-an386, mps2-an505, mps3-an547) and
//! prints one result line over semihosting.
//!
//! This file wires the board to the hardware-independent benchmark: SysTick as the
//! instruction clock, semihosting as the output, the fault handlers, and the arena.
#![no_std]
#![no_main]

mod bench;
mod clock;
mod config;
mod data;
#[cfg_attr(feature = "tern-stub", path = "engine_stub.rs")]
mod engine;
mod semihosting_out;
mod stack;

use bench::{BenchError, Benchmark, ResultLine};
use clock::{InstructionClock, SysTickClock, SysclkMismatch};
use core::fmt::{self, Write};
use cortex_m_rt::{ExceptionFrame, entry, exception};
use embedded_hal::delay::DelayNs;
use semihosting_out::{SemihostingWriter, exit};

/// The interpreter's arena, 64-byte aligned so that it needs only the model's
/// planned size (`Model::planned_arena_size`).
#[repr(C, align(64))]
struct Arena([u8; config::ARENA_SIZE]);

#[entry]
fn main() -> ! {
    // cortex-m-rt turns this into a `&'static mut Arena`, safely: `main` runs once.
    static mut ARENA: Arena = Arena([0; config::ARENA_SIZE]);
    let Some(mut out) = SemihostingWriter::stdout() else {
        exit(false)
    };
    match run(&mut ARENA.0, &mut out) {
        Ok(()) => exit(true),
        Err(e) => {
            // Nothing more can be done if the host stops listening.
            let _ = writeln!(out, "tern-firmware: error: {e}");
            exit(false)
        }
    }
}

/// Why the firmware failed.
enum FirmwareError {
    /// The core peripherals were already taken.
    Peripherals,
    /// SysTick does not run at the board's configured clock.
    Sysclk(SysclkMismatch),
    /// The benchmark failed or its result differs from the expected one.
    Bench(BenchError),
}

impl From<BenchError> for FirmwareError {
    fn from(e: BenchError) -> FirmwareError {
        FirmwareError::Bench(e)
    }
}

impl From<fmt::Error> for FirmwareError {
    fn from(_: fmt::Error) -> FirmwareError {
        FirmwareError::Bench(BenchError::Output)
    }
}

impl fmt::Display for FirmwareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirmwareError::Peripherals => write!(f, "the core peripherals were already taken"),
            FirmwareError::Sysclk(e) => write!(f, "{e}"),
            FirmwareError::Bench(e) => write!(f, "{e}"),
        }
    }
}

/// Checks the clock, runs the benchmark, prints the result line and checks the
/// expected values.
fn run(arena: &mut [u8], out: &mut SemihostingWriter) -> Result<(), FirmwareError> {
    let peripherals = cortex_m::Peripherals::take().ok_or(FirmwareError::Peripherals)?;
    let mut clock = SysTickClock::start(peripherals.SYST, config::SYSCLK_HZ);
    let sysclk = clock.verify_sysclk().map_err(FirmwareError::Sysclk)?;
    if config::VERBOSE {
        writeln!(
            out,
            "info: machine={} sysclk configured={} Hz measured={} Hz \
             ({} instructions in {} SysTick ticks)",
            config::MACHINE,
            clock.sysclk_hz(),
            sysclk.measured_hz,
            sysclk.instructions,
            sysclk.ticks
        )?;
        let start = clock.now();
        clock.delay_us(1000);
        let delay = clock.now() - start;
        writeln!(out, "info: delay_us(1000) took {delay} instructions")?;
        writeln!(
            out,
            "info: model {} bytes at {:#010x}, images {} bytes at {:#010x}, \
             arena {} bytes at {:#010x}, stack room {} bytes",
            data::MODEL.0.len(),
            data::MODEL.0.as_ptr() as usize,
            data::IMAGES.len(),
            data::IMAGES.as_ptr() as usize,
            arena.len(),
            arena.as_ptr() as usize,
            stack::capacity_bytes()
        )?;
    }

    let benchmark = Benchmark {
        model: &data::MODEL.0,
        images: &data::IMAGES,
        labels: &data::LABELS,
        dataset_crc32: config::DATASET_CRC32,
        expect_checksum: config::EXPECT_CHECKSUM,
        expect_correct: config::EXPECT_CORRECT,
    };
    let outcome = benchmark.run(arena, &mut clock)?;
    if config::VERBOSE {
        writeln!(
            out,
            "info: instructions per inference min={} max={}",
            outcome.min_instructions, outcome.max_instructions
        )?;
    }
    let line = ResultLine {
        board: config::BOARD,
        cpu: config::CPU,
        outcome: &outcome,
        arena: arena.len(),
        stack_peak: stack::peak_bytes(),
    };
    bench::report(out, &line)?;
    benchmark.check(&outcome)?;
    Ok(())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if let Some(mut out) = SemihostingWriter::stdout() {
        let _ = writeln!(out, "tern-firmware: error: panic: {info}");
    }
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if let Some(mut out) = SemihostingWriter::stdout() {
        let _ = writeln!(
            out,
            "tern-firmware: error: hard fault at pc={:#010x} lr={:#010x}",
            frame.pc(),
            frame.lr()
        );
    }
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if let Some(mut out) = SemihostingWriter::stdout() {
        let _ = writeln!(out, "tern-firmware: error: unexpected exception {irqn}");
    }
    exit(false)
}
