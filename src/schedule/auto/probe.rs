//! Probing: a device with no model for a kernel is measured before `Auto` plans with
//! it. A simulated device off the call's clock; a real device (a GPU, and the CPU too)
//! on the call's thread, from a copy of the call's first elements, once per kernel and
//! device. The CPU is probed as a GPU is: a plan made with the GPU's model alone puts
//! everything on the GPU, and the CPU, never run, would never get a model.

use super::Call;
use crate::device::{Task, Timed};
use crate::error::Result;
use crate::report::secs;

/// The largest probe run.
const PROBE_MAX: usize = 1 << 20;

/// Probes each healthy device that has no model for the call's kernel (`hash`) yet,
/// for a call of `n` elements. Returns a note per probe, for the report. A simulated
/// device's failed probe fails the call; a real device's leaves it without a model.
pub(super) fn unmodelled(call: &Call<'_>, hash: u64, n: usize) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for dev in 0..call.devices.len() {
        if call.models.get(hash, dev).is_some() || !call.is_healthy(dev) {
            continue;
        }
        if call.devices[dev].is_virtual() {
            probe(call, hash, dev, &sample(call, n), n.min(PROBE_MAX))?;
            notes.push(format!("probed {} (off the clock)", call.infos[dev].name));
        } else if call.models.start_probe(hash, dev) {
            // On this thread, before the call goes on. A probe on a thread of its own
            // (as this was) can still be submitting to the GPU when the program
            // exits, and a driver torn down under a running submission crashes the
            // process: seen as SIGSEGV at exit on lavapipe, in a doctest that exited
            // right after its first Auto call. The cost is paid once per kernel and
            // device, by the first call large enough to plan for.
            let t = std::time::Instant::now();
            let data = sample(call, n);
            let r = probe(call, hash, dev, &data, n.min(PROBE_MAX));
            // A probe that failed is not tried again for this kernel: every later
            // call would pay for it again and still give the device nothing. The
            // device stays without a model for the kernel, so Auto leaves it out.
            if r.is_ok() {
                call.models.end_probe(hash, dev);
            }
            call.models.save(true);
            let name = &call.infos[dev].name;
            notes.push(match r {
                Ok(()) => format!(
                    "{name} had no model for this kernel: measured it first ({} elements, {})",
                    n.min(PROBE_MAX),
                    secs(t.elapsed().as_secs_f64())
                ),
                // a device that fails its probe gets no model and is not used
                Err(e) => format!(
                    "{name} had no model for this kernel and its probe failed: {e}; not probed again for it"
                ),
            });
        }
    }
    Ok(notes)
}

/// A copy of the call's first elements, at most [`PROBE_MAX`], for probing.
fn sample(call: &Call<'_>, n: usize) -> Vec<Vec<u32>> {
    let m = n.min(PROBE_MAX);
    let words = call.kernel.input_words();
    crate::device::slice_inputs(call.inputs, &words, 0..m)
        .into_iter()
        .map(<[u32]>::to_vec)
        .collect()
}

fn probe(call: &Call<'_>, hash: u64, dev: usize, data: &[Vec<u32>], m: usize) -> Result<()> {
    probe_as(call, hash, dev, dev, data, m)
}

/// Runs the first `m` elements (`data`: the element-wise inputs' copies) on device
/// `local` of `call` (known to the models as `global`) at a few sizes, after a warm-up
/// run on a real device, and records what each took.
fn probe_as(
    call: &Call<'_>,
    hash: u64,
    local: usize,
    global: usize,
    data: &[Vec<u32>],
    m: usize,
) -> Result<()> {
    if m == 0 {
        return Ok(());
    }
    let d = &call.devices[local];
    let kernel = call.kernel;
    let outputs = call.outputs();
    let mut out = vec![0u32; if call.op.is_some() { 0 } else { m * outputs }];
    let mut sizes = vec![(m / 16).max(1), (m / 4).max(1), m];
    if !d.is_virtual() {
        sizes.insert(0, m.min(1024));
    }
    let link = d.link();
    let (i, o) = call.bytes();
    for (k, &s) in sizes.iter().enumerate() {
        let data: Vec<&[u32]> = data.iter().map(Vec::as_slice).collect();
        let ins = crate::device::slice_inputs(&data, &kernel.input_words(), 0..s);
        let task = Task::new(kernel, &ins, 0, s).with_tables(call.tables);
        let Timed { stats, secs } = match call.op {
            None => d.run(&task, &mut out[..s * outputs])?,
            Some(op) => d.reduce(&task, op)?.1,
        };
        if k == 0 && !d.is_virtual() {
            continue;
        }
        let compute = if link.is_some() { stats.compute_s } else { 0.0 };
        // the tables are sent once per call, planned for apart
        let secs = (secs - stats.table_s).max(0.0);
        let mdl = call.models.record(hash, global, s, secs, compute);
        let _ = mdl.predict(link.as_ref(), i, o);
    }
    Ok(())
}
