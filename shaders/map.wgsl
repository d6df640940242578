// hybrid kernel {{signature}}
// Generated: one `let` per value of the kernel's program; the hy_ helpers give WGSL's
// operations the exact meaning the CPU evaluator implements (src/kernel/ops.rs).

{{params}}

{{bindings}}
@group(0) @binding({{params_binding}}) var<uniform> params: Params;
{{helpers}}
@compute @workgroup_size({{workgroup_size}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let li = gid.x + gid.y * params.row;
    if (li >= params.len) {
        return;
    }
    let index = params.base + li;
{{body}}
{{store}}
}
