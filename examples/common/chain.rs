//! The ten-stage signal chain shared by `examples/pipeline.rs` and `benches/chain.rs`:
//! gain, rectify, compress, clip, square, and back out of the log domain, each stage a
//! cheap element-wise kernel (the case where moving data costs most), with the same
//! chain written by hand in Rust for the baselines.

use hybrid::{Expr, Kernel};

/// The stages, in order.
pub fn stages() -> Vec<Kernel<f32, f32>> {
    vec![
        Kernel::map(|x: Expr<f32>| x * 0.5 + 0.25),
        Kernel::map(|x: Expr<f32>| x.abs()),
        Kernel::map(|x: Expr<f32>| x.sqrt()),
        Kernel::map(|x: Expr<f32>| x * 1.5 - 0.1),
        Kernel::map(|x: Expr<f32>| x.clamp(0.0, 2.0)),
        Kernel::map(|x: Expr<f32>| x.clone() * x),
        Kernel::map(|x: Expr<f32>| x + 0.01),
        Kernel::map(|x: Expr<f32>| x.ln()),
        Kernel::map(|x: Expr<f32>| x * 0.3),
        Kernel::map(|x: Expr<f32>| x.exp()),
    ]
}

/// The same stages by hand, one element at a time.
#[allow(dead_code)]
pub fn by_hand(x: f32) -> f32 {
    let x = x * 0.5 + 0.25;
    let x = x.abs();
    let x = x.sqrt();
    let x = x * 1.5 - 0.1;
    let x = x.clamp(0.0, 2.0);
    let x = x * x;
    let x = x + 0.01;
    let x = x.ln();
    let x = x * 0.3;
    x.exp()
}

/// The input signal: a deterministic, bounded waveform.
pub fn signal(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i % 4096) as f32 * 0.0015).sin() * 3.0)
        .collect()
}
