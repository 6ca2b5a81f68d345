//! Stack high-water mark.
//!
//! cortex-m-rt's `paint-stack` feature fills the whole stack, from `_stack_end` (the
//! end of the statics) up to `_stack_start` (the top of RAM), with
//! [`cortex_m_rt::STACK_PAINT_VALUE`] in the reset handler, before `main` runs. The
//! lowest word that no longer holds the pattern is the deepest the stack has grown.

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    /// Top of the stack (initial SP), from cortex-m-rt's `link.x`.
    static _stack_start: u32;
    /// Lowest address the stack may use (end of `.bss`/`.uninit`), from `link.x`.
    static _stack_end: u32;
}

/// Bytes of stack used so far at most (from the top of the stack down to the
/// lowest word whose paint was overwritten).
pub fn peak_bytes() -> usize {
    let top = (&raw const _stack_start) as usize;
    let mut word = (&raw const _stack_end) as *const u32;
    while (word as usize) < top {
        // SAFETY: `word` lies in [_stack_end, _stack_start), RAM that cortex-m-rt
        // reserves for the stack: 4-byte aligned (link.x asserts it) and readable.
        // Volatile, because the compiler knows nothing about who wrote it.
        if unsafe { word.read_volatile() } != STACK_PAINT_VALUE {
            break;
        }
        // SAFETY: still at most one past the end of the painted range (`top`).
        word = unsafe { word.add(1) };
    }
    top - word as usize
}

/// Bytes between the end of the statics and the top of RAM (the stack's room).
pub fn capacity_bytes() -> usize {
    (&raw const _stack_start) as usize - (&raw const _stack_end) as usize
}
