//! `Interpreter::invoke` must not touch the heap: a counting global allocator
//! (per thread, so parallel tests do not disturb each other) proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tern_export::convert::Precision;
use tern_export::models::ModelKind;
use tern_runtime::{AlignedBytes, Interpreter, Model};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter
// is a const-initialised thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn assert_invoke_does_not_allocate(precision: Precision) {
    let converted = tern_tests::convert_fixture(ModelKind::Cnn, precision);
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).expect("valid model");
    // A caller-supplied arena, as firmware would pass a static buffer.
    let mut arena = vec![0u8; model.arena_size()];
    let mut interp = Interpreter::new(&model, &mut arena).expect("arena fits");
    let image = vec![0.5f32; 28 * 28];
    interp.set_input_f32(0, &image).expect("input");
    interp.invoke().expect("warm-up run");
    let before = allocations();
    for _ in 0..3 {
        interp.invoke().expect("invoke");
    }
    let during = allocations() - before;
    assert_eq!(during, 0, "{precision:?}: invoke allocated {during} times");
    assert!(interp.output(0).expect("output").info.len() == 10);
}

#[test]
fn invoke_does_not_allocate_f32() {
    assert_invoke_does_not_allocate(Precision::F32);
}

#[test]
fn invoke_does_not_allocate_int8() {
    assert_invoke_does_not_allocate(Precision::Int8);
}

/// TFLite Micro's arena-threshold test, for Tern: the planned arena of the CNN
/// fixture must not grow unnoticed. The bounds are the plans measured when this
/// test was written; lower them when the planner improves. int8 twice: the
/// firmware's `--small-arena` plan (31,360 bytes) and the default plan, whose
/// convolution scratch holds 128-pixel panels (94,912 bytes).
#[test]
fn cnn_arena_stays_within_recorded_size() {
    for (precision, small, recorded) in [
        (Precision::F32, false, 300 * 1024),
        (Precision::Int8, true, 32 * 1024),
        (Precision::Int8, false, 96 * 1024),
    ] {
        let converted = tern_tests::convert_fixture_with(ModelKind::Cnn, precision, small);
        let arena = converted.file.arena_size;
        let sum: usize = converted.plan.iter().map(|p| p.size).sum();
        assert!(
            arena <= recorded,
            "{precision:?}: arena {arena} bytes > recorded {recorded}"
        );
        assert!(
            arena < sum,
            "{precision:?}: planning shared no memory ({arena} of {sum})"
        );
    }
}
