// hybrid reduction {{signature}}, combined with {{op}}
// Generated: each workgroup maps {{per_group}} elements ({{per_thread}} per thread, read
// with a stride of the workgroup size so neighbouring threads read neighbouring words),
// combines each thread's values in order, then the 256 threads' values in a tree in
// workgroup memory, and writes one partial per workgroup; the host combines those. A
// partial is {{acc}} ({{partial_words}} words, low first); an f64 sum carries its
// rounding error beside it (compensated, as the CPU's).

{{params}}

{{bindings}}
@group(0) @binding({{params_binding}}) var<uniform> params: Params;
{{helpers}}
var<workgroup> hy_part: array<{{acc}}, {{workgroup_size}}>;

// The kernel for the element at `li` of this dispatch.
fn hy_elem(li: u32) -> {{ty}} {
    let index = params.base + li;
{{body}}
    return {{result}};
}

fn hy_combine(a: {{acc}}, b: {{acc}}) -> {{acc}} {
    return {{combine}};
}

fn hy_lift(x: {{ty}}) -> {{acc}} {
    return {{lift}};
}

@compute @workgroup_size({{workgroup_size}})
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let g = wid.x + wid.y * groups.x;
    var acc: {{acc}} = {{identity}};
    for (var k: u32 = 0u; k < {{per_thread}}u; k += 1u) {
        let li = g * {{per_group}}u + k * {{workgroup_size}}u + lid;
        if (li < params.len) {
            acc = hy_combine(acc, hy_lift(hy_elem(li)));
        }
    }
    hy_part[lid] = acc;
    workgroupBarrier();
    for (var s: u32 = {{workgroup_size}}u / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            hy_part[lid] = hy_combine(hy_part[lid], hy_part[lid + s]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let v = hy_part[0];
{{store}}
    }
}
