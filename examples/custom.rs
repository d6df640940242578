//! A hand-written kernel: a WGSL function body for the GPU and the same function in
//! Rust for the CPU, for what the expression language cannot say (here: counting set
//! bits with WGSL's `countOneBits` and Rust's `count_ones`). The library checks on a
//! sample that the two halves agree before using the GPU half; the second kernel here
//! deliberately disagrees, and the error names the element.
//!
//! `cargo run --release --example custom [-- --n 4000000]`

use hybrid::{Kernel, Placement, Reduce, Runtime};

#[path = "common/args.rs"]
mod args;

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let n = args.n(4_000_000)?;
    let xs: Vec<u32> = (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let bits = Kernel::custom("return countOneBits(x);", |x: u32, _index: u32| {
        x.count_ones()
    });
    let rt = Runtime::new()?;
    let placement = if rt.has_gpu() {
        Placement::Split(0.5)
    } else {
        Placement::Cpu
    };
    let run = rt.map(&xs, &bits, placement)?;
    anyhow::ensure!(run
        .output
        .iter()
        .zip(&xs)
        .all(|(&y, &x)| y == x.count_ones()));
    println!("== popcount of {n} words, {placement}\n{}", run.report);
    let total = rt.reduce(&xs, &bits, Reduce::Sum, Placement::Auto)?;
    println!("== total set bits: {}\n{}", total.output, total.report);

    // a kernel whose halves disagree on one element
    let wrong = Kernel::custom("return countOneBits(x);", |x: u32, index: u32| {
        x.count_ones() + u32::from(index == 5)
    });
    match rt.map(&xs, &wrong, Placement::Auto) {
        Err(e) => println!("== a kernel whose halves disagree\n{e}"),
        Ok(_) if !rt.has_gpu() => {
            println!("== no gpu here: nothing to check the cpu half against")
        }
        Ok(_) => anyhow::bail!("the disagreeing kernel was not caught"),
    }
    Ok(())
}
