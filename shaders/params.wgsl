// The uniform block's header, written once and spliced by the generator
// (src/kernel/wgsl/mod.rs) where a template says {{params}}. The GPU device fills it
// per dispatch: HEADER_BYTES in wgsl/mod.rs, PARAMS_BYTES in transfer/staging.
// The generator copies what follows this first paragraph.

struct Params {
    // Global index of this dispatch's first element (wraps at 2^32).
    base: u32,
    // Number of elements in this dispatch.
    len: u32,
    // Threads per row of a 2D dispatch: element = gid.x + gid.y * row.
    row: u32,
    // Always 0; mixed into special constants so no compiler folds them.
    zero: u32,{{user}}
}
