//! Instruction counting: the [`InstructionClock`] trait the benchmark is generic
//! over, and [`SysTickClock`], its implementation for QEMU.
//!
//! QEMU does not model the DWT cycle counter (it reads 0), but SysTick runs at the
//! board's system clock in virtual time, and under `qemu-system-arm -icount shift=0`
//! every instruction advances virtual time by exactly 1 ns. So
//! `instructions = ticks * 1e9 / sysclk_hz`. SysTick is a 24-bit down-counter; the
//! SysTick exception counts its wraps so that [`SysTickClock`] is a 64-bit counter.
//! This module owns SysTick and its exception; nothing else may touch them.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{SCB, SYST, syst::SystClkSource};
use cortex_m_rt::exception;
use embedded_hal::delay::DelayNs;

/// A monotonic count of executed instructions (on hardware, a cycle counter).
pub trait InstructionClock {
    /// Instructions executed since the clock started.
    fn now(&mut self) -> u64;
}

/// SysTick reload value: the full 24-bit range.
const RELOAD: u32 = 0x00ff_ffff;
/// Ticks per SysTick period (the counter goes RELOAD, ..., 1, 0).
const PERIOD: u64 = RELOAD as u64 + 1;
/// Nanoseconds per second: virtual time of one instruction under `-icount shift=0`.
const NS_PER_S: u64 = 1_000_000_000;

/// SysTick periods completed since [`SysTickClock::start`], counted by the exception.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // The only writer; readers mask interrupts (see `SysTickClock::ticks`).
    WRAPS.store(WRAPS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// SysTick on the processor clock, extended to 64 bits by counting wraps.
pub struct SysTickClock {
    /// Owned so that nothing else reconfigures SysTick.
    _syst: SYST,
    sysclk_hz: u32,
    /// Instructions per tick as the reduced fraction `1e9 / sysclk_hz`.
    ns_per_tick: (u64, u64),
}

impl SysTickClock {
    /// Takes SysTick, clocks it from the processor clock of `sysclk_hz` and starts
    /// it with its wrap interrupt enabled.
    pub fn start(mut syst: SYST, sysclk_hz: u32) -> SysTickClock {
        assert!(sysclk_hz > 0, "the system clock has a frequency");
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        WRAPS.store(0, Ordering::Relaxed);
        syst.enable_interrupt();
        syst.enable_counter();
        let divisor = gcd(NS_PER_S, u64::from(sysclk_hz));
        SysTickClock {
            _syst: syst,
            sysclk_hz,
            ns_per_tick: (NS_PER_S / divisor, u64::from(sysclk_hz) / divisor),
        }
    }

    /// Frequency of the clock SysTick counts, as given to [`SysTickClock::start`].
    pub fn sysclk_hz(&self) -> u32 {
        self.sysclk_hz
    }

    /// SysTick ticks since [`SysTickClock::start`] (64-bit, monotonic).
    pub fn ticks(&self) -> u64 {
        // With interrupts masked the wrap count cannot change under us; a wrap that
        // happened but is not yet counted shows as a pending SysTick exception. Read
        // the pending bit on both sides of the counter so that the counter value and
        // the number of wraps agree (retry if a wrap fell in between).
        cortex_m::interrupt::free(|_| {
            loop {
                let pending_before = SCB::is_pendst_pending();
                let current = SYST::get_current();
                let pending_after = SCB::is_pendst_pending();
                if pending_before == pending_after {
                    let wraps =
                        u64::from(WRAPS.load(Ordering::Relaxed)) + u64::from(pending_before);
                    // The wrap is signalled when the counter reaches 0, so 0 is the
                    // first tick of a period, RELOAD the second, ..., 1 the last.
                    let in_period = (PERIOD - u64::from(current)) % PERIOD;
                    return wraps * PERIOD + in_period;
                }
            }
        })
    }

    /// Measures the frequency SysTick runs at by timing a loop of a known number of
    /// instructions, and checks it against the configured one (within 0.1 %). Only
    /// meaningful under `-icount shift=0`, where an instruction takes 1 ns.
    pub fn verify_sysclk(&mut self) -> Result<SysclkMeasurement, SysclkMismatch> {
        /// Loop iterations; each runs 1000 `nop`s, `subs` and `bne`.
        const ITERATIONS: u32 = 1000;
        const INSTRUCTIONS_PER_ITERATION: u64 = 1002;
        let start = self.ticks();
        spin_1000_nops(ITERATIONS);
        let ticks = self.ticks() - start;
        let instructions = u64::from(ITERATIONS) * INSTRUCTIONS_PER_ITERATION;
        let measured_hz = (ticks * NS_PER_S + instructions / 2) / instructions;
        let configured_hz = u64::from(self.sysclk_hz);
        // Tick quantisation (1 in ~20,000) and the two `ticks` calls (tens of
        // instructions in ~1e6) stay far below 0.1 %; the boards differ by 20 % or more.
        if measured_hz.abs_diff(configured_hz) * 1000 > configured_hz {
            return Err(SysclkMismatch {
                configured_hz: self.sysclk_hz,
                measured_hz,
            });
        }
        Ok(SysclkMeasurement {
            measured_hz,
            instructions,
            ticks,
        })
    }
}

impl InstructionClock for SysTickClock {
    fn now(&mut self) -> u64 {
        let (numerator, denominator) = self.ns_per_tick;
        self.ticks() * numerator / denominator
    }
}

impl DelayNs for SysTickClock {
    /// Busy-waits at least `ns` nanoseconds of (virtual) time.
    fn delay_ns(&mut self, ns: u32) {
        let ticks = (u64::from(ns) * u64::from(self.sysclk_hz)).div_ceil(NS_PER_S);
        if ticks == 0 {
            return;
        }
        // The first tick may be partly over already: wait for one more.
        let start = self.ticks();
        while self.ticks() - start <= ticks {}
    }
}

/// The result of [`SysTickClock::verify_sysclk`].
#[derive(Clone, Copy, Debug)]
pub struct SysclkMeasurement {
    /// SysTick frequency derived from the loop, in Hz.
    pub measured_hz: u64,
    /// Instructions the loop executed.
    pub instructions: u64,
    /// SysTick ticks the loop took.
    pub ticks: u64,
}

/// SysTick does not run at the frequency the board table says (or the emulator
/// does not run with `-icount shift=0`).
#[derive(Clone, Copy, Debug)]
pub struct SysclkMismatch {
    /// Frequency from the board table.
    pub configured_hz: u32,
    /// Frequency measured under the 1 instruction = 1 ns assumption.
    pub measured_hz: u64,
}

impl core::fmt::Display for SysclkMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SysTick runs at {} Hz if one instruction takes 1 ns, but the board's system \
             clock is {} Hz: run QEMU with -icount shift=0, or fix the board table in build.rs",
            self.measured_hz, self.configured_hz
        )
    }
}

/// Greatest common divisor.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Runs `iterations` times a loop of 1000 `nop`s, `subs` and `bne`.
///
/// A function of its own: LLVM sizes inline assembly by its line count, not by
/// what `.rept` expands to, so a caller's literal pool placed after this block
/// could end up out of reach of its loads ("out of range pc-relative fixup").
#[inline(never)]
fn spin_1000_nops(iterations: u32) {
    // SAFETY: the block only executes `nop`s and counts down the register it
    // is given (declared clobbered); it touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            ".rept 1000",
            "nop",
            ".endr",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) iterations => _,
            options(nomem, nostack),
        );
    }
}
