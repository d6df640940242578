//! Placement policy: which device computes which range, for every placement but the
//! model-driven split (`Auto`, in [`super::auto`]) — and for `Auto` over arrays, whether
//! to keep data where it lives. The static placements' ranges, handing an unhealthy
//! device's part to a healthy one, and the keep-or-move choice live here together.

use std::ops::Range;

use super::auto::{self, Call, Decided};
use super::exec::Runner;
use crate::array::PartAt;
use crate::device::DeviceKind;
use crate::error::{Error, Result};
use crate::placement::Placement;

/// Places a call of `out.len()` elements and runs each range through `runner`:
/// `Auto` by the models, any other placement as asked, an unhealthy device's part
/// handed to a healthy one (the CPU first). `no_gpu` says why the runtime has no GPU
/// when a placement needs one.
pub(crate) fn place<T: Send>(
    call: &Call<'_>,
    out: &mut [T],
    placement: Placement,
    runner: &Runner<'_, T>,
    no_gpu: &str,
) -> Result<Decided> {
    if placement == Placement::Auto {
        return auto::auto(call, out, runner);
    }
    let kinds: Vec<DeviceKind> = call.infos.iter().map(|i| i.kind).collect();
    let mut plan = shares(out.len(), placement, &kinds, no_gpu)?;
    let mut why = format!("{placement}, as asked");
    let mut standby: Vec<usize> = (0..kinds.len()).filter(|&d| call.healthy[d]).collect();
    standby.sort_by_key(|&d| kinds[d].is_gpu());
    for (d, _) in plan.iter_mut().filter(|(d, _)| !call.healthy[*d]) {
        if let Some(&s) = standby.first() {
            let name = &call.infos[*d].name;
            why.push_str(&format!(
                "; {name}'s part to {} ({name} is unhealthy)",
                call.infos[s].name
            ));
            *d = s;
        }
    }
    auto::fixed(call, plan, out, runner, why)
}

/// What `Auto` chose for arrays whose data is (partly) only in devices' memory.
pub(crate) enum Resident {
    /// Kept: each part computed where it lives; the run.
    Kept(Decided),
    /// Moved: the data is to be read back and planned for as host data; why.
    Move(String),
}

/// `Auto` for array inputs whose parts lie in `layout` (the first input's; `same`:
/// every input has that partition, `inputs` of them): keep each part where it is, or
/// move, as [`auto::keep_or_move`] predicts. A part on a device this call cannot use
/// (unhealthy, or gone) means moving.
pub(crate) fn resident<T: Send>(
    call: &Call<'_>,
    layout: &[PartAt],
    same: bool,
    inputs: usize,
    out: &mut [T],
    runner: &Runner<'_, T>,
) -> Result<Resident> {
    let cpu = call.infos.iter().position(|i| !i.kind.is_gpu());
    let at: Option<Vec<(usize, Range<usize>)>> = layout
        .iter()
        .map(|p| {
            let d = match p.owner {
                0 => cpu,
                o => call
                    .devices
                    .iter()
                    .position(|d| d.memory().map(|m| m.id()) == Some(o)),
            };
            d.filter(|&d| call.healthy[d]).map(|d| (d, p.range.clone()))
        })
        .collect();
    let Some(plan) = at.filter(|_| same) else {
        return Ok(Resident::Move(
            "auto: the inputs' parts differ, or a part is on a device this call cannot use: read back to plan on the host".into(),
        ));
    };
    let bytes: Vec<(usize, u64)> = plan
        .iter()
        .zip(layout)
        .map(|((d, _), p)| (*d, p.device_bytes * inputs as u64))
        .collect();
    let (keep, why) = auto::keep_or_move(call, &plan, &bytes)?;
    if !keep {
        return Ok(Resident::Move(why));
    }
    auto::fixed(call, plan, out, runner, why).map(Resident::Kept)
}

/// The ranges each device computes for a call of `n` elements, as (device index,
/// range); devices with nothing to do are left out. `kinds` lists the runtime's
/// devices; `placement` must not be `Auto` (resolve it first).
pub(crate) fn shares(
    n: usize,
    placement: Placement,
    kinds: &[DeviceKind],
    no_gpu_reason: &str,
) -> Result<Vec<(usize, Range<usize>)>> {
    let cpu = kinds.iter().position(|k| *k == DeviceKind::Cpu);
    let gpus: Vec<usize> = (0..kinds.len()).filter(|&i| kinds[i].is_gpu()).collect();
    let gpu_part = match placement {
        Placement::Cpu | Placement::Auto => 0,
        Placement::Gpu => n,
        Placement::Split(f) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::BadSplit { fraction: f });
            }
            (f * n as f64).round() as usize
        }
    };
    if gpu_part > 0 && gpus.is_empty() {
        return Err(Error::NoAdapter {
            reason: no_gpu_reason.to_string(),
        });
    }
    if gpu_part < n && cpu.is_none() {
        return Err(Error::NoDevice { kind: "cpu" });
    }
    let mut out = Vec::new();
    let per = gpu_part.checked_div(gpus.len()).unwrap_or(0);
    let mut start = 0;
    for (j, &g) in gpus.iter().enumerate() {
        let len = if j + 1 == gpus.len() {
            gpu_part - start
        } else {
            per
        };
        if len > 0 {
            out.push((g, start..start + len));
        }
        start += len;
    }
    if let Some(c) = cpu {
        if gpu_part < n {
            out.push((c, gpu_part..n));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceKind::*;

    #[test]
    fn split_covers_every_element_once_in_order() {
        let kinds = [Cpu, DiscreteGpu, DiscreteGpu];
        for n in [0, 1, 2, 3, 255, 256, 257, 1000] {
            for f in [0.0, 0.05, 0.25, 0.5, 0.999, 1.0] {
                let s = shares(n, Placement::Split(f), &kinds, "").unwrap_or_default();
                let mut next = 0;
                for (_, r) in &s {
                    assert_eq!(r.start, next, "n={n} f={f}");
                    assert!(!r.is_empty());
                    next = r.end;
                }
                assert_eq!(next, n, "n={n} f={f}");
                let gpu: usize = s
                    .iter()
                    .filter(|(d, _)| *d != 0)
                    .map(|(_, r)| r.len())
                    .sum();
                assert_eq!(gpu, (f * n as f64).round() as usize);
            }
        }
    }

    #[test]
    fn bad_fraction_and_missing_devices_are_errors() {
        assert!(matches!(
            shares(10, Placement::Split(1.5), &[Cpu], ""),
            Err(Error::BadSplit { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Split(f64::NAN), &[Cpu], ""),
            Err(Error::BadSplit { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Gpu, &[Cpu], "none"),
            Err(Error::NoAdapter { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Cpu, &[DiscreteGpu], ""),
            Err(Error::NoDevice { .. })
        ));
        assert_eq!(
            shares(10, Placement::Split(0.0), &[Cpu], "").map(|s| s.len()),
            Ok(1)
        );
    }
}
