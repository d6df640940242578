// Helpers for the generated kernels, one per `// @helper name` section. The generator
// copies only the sections a kernel uses (and those they name in `// @needs`).

// @helper isnan
fn hy_isnan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// @helper nan
fn hy_nan() -> f32 {
    return bitcast<f32>(0x7fc00000u | params.zero);
}

// @helper div_i32
// a / 0 == a and i32::MIN / -1 == i32::MIN.
fn hy_div_i32(a: i32, b: i32) -> i32 {
    let keep = b == 0i || (a == (-2147483647i - 1i) && b == -1i);
    return select(a / select(b, 1i, keep), a, keep);
}

// @helper rem_i32
// a % 0 == 0 and i32::MIN % -1 == 0.
fn hy_rem_i32(a: i32, b: i32) -> i32 {
    let zero = b == 0i || (a == (-2147483647i - 1i) && b == -1i);
    return select(a % select(b, 1i, zero), 0i, zero);
}

// @helper div_u32
fn hy_div_u32(a: u32, b: u32) -> u32 {
    return select(a / select(b, 1u, b == 0u), a, b == 0u);
}

// @helper rem_u32
fn hy_rem_u32(a: u32, b: u32) -> u32 {
    return select(a % select(b, 1u, b == 0u), 0u, b == 0u);
}

// @helper rem_f32
// Truncated remainder by its formula, so every device computes the same thing.
fn hy_rem_f32(a: f32, b: f32) -> f32 {
    return a - b * trunc(a / b);
}

// @helper pow
// @needs nan
// NaN for a negative base, as exp2(y * log2(x)) is.
fn hy_pow(x: f32, y: f32) -> f32 {
    return select(pow(x, y), hy_nan(), x < 0.0f);
}

// @helper min_f32
// @needs isnan
// IEEE minNum: a NaN operand yields the other one.
fn hy_min_f32(a: f32, b: f32) -> f32 {
    return select(select(min(a, b), a, hy_isnan(b)), b, hy_isnan(a));
}

// @helper max_f32
// @needs isnan
// IEEE maxNum: a NaN operand yields the other one.
fn hy_max_f32(a: f32, b: f32) -> f32 {
    return select(select(max(a, b), a, hy_isnan(b)), b, hy_isnan(a));
}

// @helper f32_to_i32
// @needs isnan
// WGSL's own conversion (clamp to [-2^31, 2147483520], the ends an f32 holds, then
// truncate: what i32(x) gives), with NaN, which WGSL leaves indeterminate, as 0.
fn hy_f32_to_i32(x: f32) -> i32 {
    return select(i32(clamp(x, -2147483648.0f, 2147483520.0f)), 0i, hy_isnan(x));
}

// @helper f32_to_u32
// @needs isnan
// WGSL's own conversion (clamp to [0, 4294967040], then truncate), NaN as 0.
fn hy_f32_to_u32(x: f32) -> u32 {
    return select(u32(clamp(x, 0.0f, 4294967040.0f)), 0u, hy_isnan(x));
}

// @helper isnan_f64
// @needs isnan
// An f64 NaN stays NaN as f32 (and no other value becomes one): the f32 test on its
// bits, which no fast-math assumption folds away.
fn hy_isnan_f64(x: f64) -> bool {
    return hy_isnan(f32(x));
}

// @helper rem_f64
// Truncated remainder, as for f32.
fn hy_rem_f64(a: f64, b: f64) -> f64 {
    return a - b * trunc(a / b);
}

// @helper sum2_f64
// Two compensated sums (value, rounding error) added: Knuth's two-sum of the values
// (exact: its error is found, not lost), the errors added; as the CPU's partials.
fn hy_sum2_f64(a: vec2<f64>, b: vec2<f64>) -> vec2<f64> {
    let s = a.x + b.x;
    let bb = s - a.x;
    let e = (a.x - (s - bb)) + (b.x - bb);
    return vec2<f64>(s, a.y + b.y + e);
}

// @helper min_f64
// @needs isnan_f64
// IEEE minNum: a NaN operand yields the other one.
fn hy_min_f64(a: f64, b: f64) -> f64 {
    return select(select(min(a, b), a, hy_isnan_f64(b)), b, hy_isnan_f64(a));
}

// @helper max_f64
// @needs isnan_f64
// IEEE maxNum: a NaN operand yields the other one.
fn hy_max_f64(a: f64, b: f64) -> f64 {
    return select(select(max(a, b), a, hy_isnan_f64(b)), b, hy_isnan_f64(a));
}

// @helper f64_to_i32
// @needs isnan_f64
// WGSL's rule with f64's own range ends (every i32 is an f64): clamp, truncate; NaN 0.
fn hy_f64_to_i32(x: f64) -> i32 {
    return select(i32(clamp(x, -2147483648.0lf, 2147483647.0lf)), 0i, hy_isnan_f64(x));
}

// @helper f64_to_u32
// @needs isnan_f64
fn hy_f64_to_u32(x: f64) -> u32 {
    return select(u32(clamp(x, 0.0lf, 4294967295.0lf)), 0u, hy_isnan_f64(x));
}

// @helper div_i64
// As div_i32: a / 0 == a, i64::MIN / -1 == i64::MIN.
fn hy_div_i64(a: i64, b: i64) -> i64 {
    let keep = b == 0li || (a == (-9223372036854775807li - 1li) && b == -1li);
    return select(a / select(b, 1li, keep), a, keep);
}

// @helper rem_i64
fn hy_rem_i64(a: i64, b: i64) -> i64 {
    let zero = b == 0li || (a == (-9223372036854775807li - 1li) && b == -1li);
    return select(a % select(b, 1li, zero), 0li, zero);
}

// @helper div_u64
fn hy_div_u64(a: u64, b: u64) -> u64 {
    return select(a / select(b, 1lu, b == 0lu), a, b == 0lu);
}

// @helper rem_u64
fn hy_rem_u64(a: u64, b: u64) -> u64 {
    return select(a % select(b, 1lu, b == 0lu), 0lu, b == 0lu);
}

// @helper f32_to_i64
// @needs isnan
// WGSL's rule at 64 bits: clamp to the ends an f32 holds, truncate; NaN 0.
fn hy_f32_to_i64(x: f32) -> i64 {
    return select(i64(clamp(x, -9223372036854775808.0f, 9223371487098961920.0f)), 0li, hy_isnan(x));
}

// @helper f32_to_u64
// @needs isnan
fn hy_f32_to_u64(x: f32) -> u64 {
    return select(u64(clamp(x, 0.0f, 18446742974197923840.0f)), 0lu, hy_isnan(x));
}

// @helper f64_to_i64
// @needs isnan_f64
fn hy_f64_to_i64(x: f64) -> i64 {
    return select(i64(clamp(x, -9223372036854775808.0lf, 9223372036854774784.0lf)), 0li, hy_isnan_f64(x));
}

// @helper f64_to_u64
// @needs isnan_f64
fn hy_f64_to_u64(x: f64) -> u64 {
    return select(u64(clamp(x, 0.0lf, 18446744073709549568.0lf)), 0lu, hy_isnan_f64(x));
}

// @helper f64_from_bits
// An f64 from its bit pattern's two words (a parameter's), put together from its
// fields, as naga has no bitcast to f64: the mantissa is exact in f64, ldexp scales
// it exactly; zeros keep their sign, infinities come from f32's, a NaN is the quiet
// NaN (its payload is not kept).
fn hy_f64_from_bits(lo: u32, hi: u32) -> f64 {
    let e = i32((hi >> 20u) & 0x7ffu);
    let m = f64(u64(lo) | (u64(hi & 0xfffffu) << 32u));
    let s = select(1.0lf, -1.0lf, (hi >> 31u) == 1u);
    if (e == 0x7ff) {
        if (m == 0.0lf) {
            return s * f64(bitcast<f32>(0x7f800000u | params.zero));
        }
        return f64(bitcast<f32>(0x7fc00000u | params.zero));
    }
    if (e == 0) {
        return s * ldexp(m, -1074);
    }
    return s * ldexp(m + 4503599627370496.0lf, e - 1075);
}
