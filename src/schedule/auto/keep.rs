//! Keep or move: `Auto` for an array whose parts already sit on devices. Each part
//! computed where it is, or the GPUs' parts read back and the call planned as for
//! host data, whichever the models predict faster by a clear margin.

use super::Call;
use crate::error::Result;
use crate::report::secs;
use crate::schedule::plan::{self, Cost};

/// `Auto` for an array whose parts are (some of them only) in GPU memory: keep the
/// partition, each part computed where it is (`plan`: its device and range), or read
/// back what only the GPUs hold (`device_bytes` per device) and plan as for host data.
/// Moves only when the models predict it at least 20% faster; with no model, keeps.
/// Returns whether to keep, and why.
pub(crate) fn keep_or_move(
    call: &Call<'_>,
    plan: &[(usize, std::ops::Range<usize>)],
    device_bytes: &[(usize, u64)],
) -> Result<(bool, String)> {
    let hash = call.hash()?;
    let n: usize = plan.iter().map(|(_, r)| r.len()).sum();
    let keep = |why: &str| Ok((true, format!("auto: kept where the data is ({why})")));
    let mut busy = vec![0.0f64; call.devices.len()];
    for (d, r) in plan {
        let Some(m) = call.models.get(hash, *d) else {
            return keep("no model yet says moving pays");
        };
        // resident: nothing crosses the link and the output stays, so the compute
        // stage's own fit (a device with a link), or the whole runs' (the CPU)
        let fit = match call.devices[*d].link() {
            Some(_) => m.compute.fit(),
            None => m.end_to_end.fit(),
        };
        let Some(f) = fit else {
            return keep("no model yet says moving pays");
        };
        busy[*d] += f.fixed_s + f.per_elem_s * r.len() as f64;
    }
    let keep_s = busy.iter().copied().fold(0.0, f64::max);
    let read_s: f64 = device_bytes
        .iter()
        .filter_map(|&(d, b)| call.devices[d].link().map(|l| l.down.time_s(b)))
        .sum();
    let costs: Vec<Cost> = (0..call.devices.len())
        .filter(|&d| call.is_healthy(d))
        .filter_map(|d| call.predict(hash, d).map(|p| p.cost))
        .collect();
    if costs.is_empty() {
        return keep("no model yet says moving pays");
    }
    let move_s = read_s + plan::makespan_s(&costs, &plan::solve(n, &costs));
    if move_s < 0.8 * keep_s {
        Ok((
            false,
            format!(
                "auto: moved the data (predicted {} to read back and replan, {} to keep it where it is)",
                secs(move_s),
                secs(keep_s)
            ),
        ))
    } else {
        keep(&format!(
            "predicted {} where it is, {} to read back and replan",
            secs(keep_s),
            secs(move_s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::device::sim::SimDevice;
    use crate::device::{Device, DeviceInfo};
    use crate::kernel::{Expr, Kernel};
    use crate::schedule::model::Models;

    /// A CPU and a GPU whose models say what `cpu_per`, `gpu_per` (compute, seconds
    /// per element) give, the GPU behind a link of `link_bps` each way.
    fn decide(cpu_per: f64, gpu_per: f64, link_bps: f64) -> (bool, String) {
        let devices: Vec<Arc<dyn Device>> = vec![
            Arc::new(
                SimDevice::cpu("cpu", 1.0 / cpu_per)
                    .into_device()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            Arc::new(
                SimDevice::gpu("gpu", 1.0 / gpu_per)
                    .link(1e-5, link_bps, link_bps)
                    .into_device()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        ];
        let infos: Vec<DeviceInfo> = devices.iter().map(|d| d.info().clone()).collect();
        let dir = std::env::temp_dir().join(format!("hybrid-keep-{}", std::process::id()));
        let models = Arc::new(Models::new(&infos, &[false, false], dir));
        let k = Kernel::map(|x: Expr<f32>| x * 2.0);
        let kernel = k.inner().bind();
        let call = Call {
            devices: &devices,
            infos: &infos,
            models: &models,
            kernel: &kernel,
            inputs: &[],
            tables: &[],
            table_bytes: &[],
            virtual_clock: true,
            op: None,
            healthy: &[true, true],
            teach: false,
        };
        let hash = call.hash().unwrap_or_else(|e| panic!("{e}"));
        for n in [1usize << 16, 1 << 18, 1 << 20] {
            models.record(hash, 0, n, n as f64 * cpu_per, 0.0);
            // the GPU's whole runs include the transfers of a slice call
            let moved = 8.0 * n as f64 / link_bps + 2e-5;
            models.record(hash, 1, n, n as f64 * gpu_per + moved, n as f64 * gpu_per);
        }
        // 16M elements, all on the GPU
        let n = 1usize << 24;
        keep_or_move(&call, &[(1, 0..n)], &[(1, 4 * n as u64)]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn data_on_a_fast_gpu_stays_there() {
        // the GPU computes 10x faster than the CPU: keeping wins whatever the link
        let (keep, why) = decide(1e-8, 1e-9, 1e9);
        assert!(keep, "{why}");
        assert!(why.contains("kept where the data is"), "{why}");
    }

    #[test]
    fn data_on_a_slow_gpu_moves_only_when_that_pays() {
        // the GPU computes 20x slower than the CPU and the link is fast: reading the
        // data back and computing on the CPU wins by far
        let (keep, why) = decide(1e-9, 2e-8, 1e11);
        assert!(!keep, "{why}");
        assert!(why.contains("moved the data"), "{why}");
        // the same devices behind a slow link: reading back costs more than it saves
        let (keep, why) = decide(1e-9, 2e-8, 1e8);
        assert!(keep, "{why}");
        // a GPU 10% slower than the CPU behind a 10 GB/s link: reading back (6.7 ms)
        // and splitting with the CPU (8.8 ms) would save about 15% of keeping
        // (18.5 ms), under the 20% margin: it stays
        let (keep, why) = decide(1e-9, 1.1e-9, 1e10);
        assert!(keep, "{why}");
    }
}
