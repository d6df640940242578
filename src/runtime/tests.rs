//! Unit tests of the runtime's own logic: the checks an entry point makes before
//! anything runs, the order partials are combined in, transfer's errors, and device
//! health (left out after a failure, probed back in).

use super::host::Partials;
use super::*;
use crate::device::sim::SimDevice;
use crate::kernel::reduce::Partial;
use crate::kernel::{Expr, Kernel, ScalarType};
use crate::placement::Placement;

fn sims(gpu: SimDevice) -> Runtime {
    Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", 1e9))
        .device(gpu)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn partials_combine_in_input_order_whatever_order_they_arrive_in() {
    // f64 addition is not associative: 1e16 + 1 - 1e16 is 0 in input order, 1 in
    // the order (-1e16 + 1e16) + 1
    let values = [(0usize, 1e16), (100, 1.0), (200, -1e16)];
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        let p = Partials::default();
        for &k in &order {
            p.push(values[k].0, Partial::F64(values[k].1));
        }
        let got = p.combine(Reduce::Sum, ScalarType::F32);
        assert_eq!(got, Partial::F64(0.0), "arrival order {order:?}");
    }
}

#[test]
fn entry_points_check_lengths_and_arity_before_running() {
    let rt = sims(SimDevice::gpu("sim-gpu", 1e9));
    let k2 = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a + b);
    let k1 = Kernel::map(|a: Expr<f32>| a + 1.0);
    let (a, b) = (vec![1.0f32; 5], vec![2.0f32; 4]);
    let e = rt.map2(&a, &b, &k2, Placement::Cpu).err();
    assert_eq!(e, Some(Error::LengthMismatch { left: 5, right: 4 }));
    let e = rt.map(&a, &k2, Placement::Cpu).err();
    assert_eq!(
        e,
        Some(Error::WrongArity {
            expected: 2,
            given: 1
        })
    );
    let e = rt.reduce2(&a, &a, &k1, Reduce::Sum, Placement::Cpu).err();
    assert_eq!(
        e,
        Some(Error::WrongArity {
            expected: 1,
            given: 2
        })
    );
    // arrays take the same checks, and the same path gives the same values
    let (x, y) = (crate::Array::from_vec(a.clone()), crate::Array::from_vec(b));
    let e = rt.map2(&x, &y, &k2, Placement::Cpu).err();
    assert_eq!(e, Some(Error::LengthMismatch { left: 5, right: 4 }));
    let host = rt.map(&a, &k1, Placement::Split(0.5)).map(|r| r.output);
    let arr = rt
        .map(&x, &k1, Placement::Split(0.5))
        .and_then(|r| r.output.to_vec());
    assert_eq!(host, arr);
    assert_eq!(host, Ok(vec![2.0; 5]));
}

#[test]
fn transfer_names_a_missing_device_and_one_with_no_link() {
    let rt = sims(SimDevice::gpu("sim-gpu", 1e9));
    let up = [1u32, 2, 3];
    assert_eq!(
        rt.transfer(7, Some(&up[..]), None).err(),
        Some(Error::NoSuchDevice {
            index: 7,
            devices: 2
        })
    );
    // the cpu works on host memory; a simulated gpu's link is only a model
    for (d, name) in [(0, "sim-cpu"), (1, "sim-gpu")] {
        assert_eq!(
            rt.transfer(d, Some(&up[..]), None).err(),
            Some(Error::NoTransfer {
                device: name.into()
            })
        );
    }
}

#[test]
fn a_failed_device_sits_out_then_is_probed_back_in() {
    // the gpu fails once its count passes 1,000 elements, and never recovers: every
    // probe fails too, so it stays out, and each failed probe doubles the wait
    let rt = sims(SimDevice::gpu("flaky", 1e9).fail_after(1000));
    let k = Kernel::map(|x: Expr<f32>| x * 2.0);
    let xs = vec![1.0f32; 4000];
    let first = rt
        .map(&xs, &k, Placement::Split(0.5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.output, vec![2.0; 4000], "redone elsewhere, complete");
    assert_eq!(first.report.recoveries().len(), 1);
    let sick = |rt: &Runtime| rt.health()[1].1.is_some();
    assert!(sick(&rt));
    let mut left_out = 0;
    let mut probed = 0;
    for _ in 0..health::SICK_WAIT * 3 + 2 {
        let r = rt
            .map(&xs, &k, Placement::Split(0.5))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.output, vec![2.0; 4000]);
        assert!(r.report.shares().iter().all(|s| s.device() == "sim-cpu"));
        let notes = r.report.notes().join("; ");
        if notes.contains("probed, still unhealthy") {
            probed += 1;
        } else {
            assert!(notes.contains("flaky left out"), "{notes}");
            left_out += 1;
        }
    }
    // a probe on the call after SICK_WAIT left it out, the next after 2 * SICK_WAIT more
    assert_eq!(probed, 2, "left out {left_out}");
    assert!(sick(&rt));
}
