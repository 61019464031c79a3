//! Remoting benchmarks (work in progress).
fn main() {}
