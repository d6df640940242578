//! Tests of the GPU device on the first adapter found: rejected shaders, chunking,
//! the buffer pool and the pipeline cache. Each skips (saying why) with no GPU, and
//! fails instead when `HYBRID_REQUIRE_GPU=1`.

use std::sync::Arc;

use super::pipelines::CACHE_CAPACITY;
use super::{discover, lock, GpuDevice};
use crate::error::Error;
use crate::kernel::wgsl::Shader;
use crate::kernel::{index, Expr, Kernel};
use crate::transfer::TransferConfig;

/// The first GPU, or `None` (after saying why) when the test must skip.
fn device() -> Option<GpuDevice> {
    let var = |k: &str| {
        std::env::var(k)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    };
    // the same rule as tests/common: a required GPU is never skipped, not even when
    // HYBRID_BACKEND=cpu leaves GPUs out
    let required = var("HYBRID_REQUIRE_GPU") == "1";
    if var("HYBRID_BACKEND") == "cpu" && !required {
        eprintln!("skipped: HYBRID_BACKEND=cpu");
        return None;
    }
    match discover() {
        Ok(mut d) if !d.is_empty() => Some(d.swap_remove(0)),
        Ok(_) | Err(_) if required => {
            panic!("HYBRID_REQUIRE_GPU=1 but no gpu: {:?}", discover().err())
        }
        other => {
            eprintln!("skipped: no gpu: {:?}", other.err());
            None
        }
    }
}

#[test]
fn rejected_shader_names_message_and_line() {
    let Some(d) = device() else { return };
    let src = "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
               @compute @workgroup_size(256)\n\
               fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
               \x20   out[gid.x] = undefined_thing + 1u;\n\
               }\n";
    let shader = Shader::from_source(src.into(), 0);
    match d.pipeline(&shader) {
        Err(Error::ShaderRejected {
            message,
            line,
            source_line,
            ..
        }) => {
            assert!(message.contains("undefined_thing"), "{message}");
            assert_eq!(line, 4, "{message}");
            assert!(source_line.contains("undefined_thing"), "{source_line}");
        }
        Err(e) => panic!("expected ShaderRejected, got {e}"),
        Ok(_) => panic!("an invalid shader was accepted"),
    }
    // The device still works afterwards.
    let k = Kernel::map(|x: Expr<u32>| x + 1u32);
    let mut out = [0u32; 3];
    let stats = d.map_streamed(k.inner(), &[&[1, 2, 3]], &[], 0, &mut out);
    assert!(stats.is_ok(), "{stats:?}");
    assert_eq!(out, [2, 3, 4]);
}

#[test]
fn many_chunks_equal_one() {
    let Some(d) = device() else { return };
    d.configure(&TransferConfig {
        chunk_bytes: Some(512 * 4),
        ring: Some(2),
        ..Default::default()
    });
    let k = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| (a * 7u32) ^ b ^ index());
    let n = 512 * 5 + 3;
    let a: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
    let b: Vec<u32> = (0..n as u32).rev().collect();
    // Start near the top of the u32 range: the global index wraps.
    let first = u32::MAX as u64 - 1000;
    let mut out = vec![0u32; n];
    let stats = d
        .map_streamed(k.inner(), &[&a, &b], &[], first, &mut out)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.chunks, 6);
    assert_eq!(stats.bytes_to_device, 8 * n as u64);
    assert_eq!(stats.bytes_from_device, 4 * n as u64);
    for i in 0..n {
        let idx = (first + i as u64) as u32;
        assert_eq!(out[i], a[i].wrapping_mul(7) ^ b[i] ^ idx, "element {i}");
    }
}

#[test]
fn pool_reuses_buffers_across_calls_and_kernels() {
    let Some(d) = device() else { return };
    d.configure(&TransferConfig {
        chunk_bytes: Some(4096),
        ring: Some(3),
        ..Default::default()
    });
    let n = 1024 * 7 + 5;
    let xs: Vec<u32> = (0..n as u32).collect();
    let k1 = Kernel::map(|x: Expr<u32>| x + 1u32);
    let k2 = Kernel::map(|x: Expr<u32>| x * 3u32);
    let mut out = vec![0u32; n];
    let first = d.map_streamed(k1.inner(), &[&xs], &[], 0, &mut out);
    let first = first.unwrap_or_else(|e| panic!("{e}"));
    assert!(first.transfer.allocations > 0);
    assert_eq!(first.chunks, 8);
    let warm = d.pool_allocations();
    for k in [&k1, &k2, &k1] {
        let s = d.map_streamed(k.inner(), &[&xs], &[], 0, &mut out);
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.transfer.allocations, 0, "no allocation once warm");
    }
    assert_eq!(out[n - 1], n as u32);
    assert_eq!(d.pool_allocations(), warm);
    // The pool is bounded: shrinking the bound releases idle buffers.
    assert!(d.pool.idle_bytes() > 0);
    d.pool.set_max_idle_bytes(0);
    assert_eq!(d.pool.idle_bytes(), 0);
}

#[test]
fn pipeline_cache_is_bounded_and_reuses() {
    let Some(d) = device() else { return };
    let k = Kernel::map(|x: Expr<f32>| x * 2.0);
    let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
    let p1 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
    let p2 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
    assert!(Arc::ptr_eq(&p1, &p2), "a kernel compiles once per device");
    for c in 0..(CACHE_CAPACITY as u32 + 5) {
        let k = Kernel::map(move |x: Expr<u32>| x + c);
        let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
        assert!(d.pipeline(&s).is_ok());
    }
    let cache = lock(&d.cache);
    assert_eq!(cache.map.len(), CACHE_CAPACITY);
    assert!(
        !cache.map.contains_key(&s.hash),
        "the least recently used went first"
    );
}
