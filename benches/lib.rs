//! Tern's benchmarks live in this crate's `[[bench]]` targets; run them with
//! `cargo bench -p tern-benches`.
