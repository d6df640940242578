//! WGSL generation (stub, being written).
use super::program::Program;

/// A generated compute shader.
#[derive(Debug)]
pub(crate) struct Shader {
    pub(crate) source: String,
    pub(crate) hash: u64,
}

pub(crate) fn generate(p: &Program) -> Shader {
    let source = format!("{p:?}");
    let hash = fnv1a(source.as_bytes());
    Shader { source, hash }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
