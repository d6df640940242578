//! Kernels of any signature ([`Kernel::new`]) over the cluster: element-wise inputs of
//! any [`Value`] type cut into each node's share (by their words: an `f64` is two),
//! tables sent whole to every node with a share (their bytes are a fixed cost in the
//! plan, so a node whose link makes the tables dear gets nothing), results of any
//! tuple gathered on the root; and their reductions. Each node runs its share with
//! its own runtime's `call` path, over its own devices.

use super::call::{Args, Part, What};
use super::cluster::{Cluster, ClusterRun};
use super::plan::Spread;
use crate::error::{Error, Result};
use crate::kernel::reduce::combine_bits;
use crate::kernel::{InTypes, Kernel, Reduce, Value};
use crate::runtime::{ArgView, CallData, ResultArrays};

/// The call's data as words, from host data only.
fn args<'a>(each: &[ArgView<'a>], whole: &[ArgView<'a>], out_words: usize) -> Result<Args<'a>> {
    let host = |v: &ArgView<'a>| {
        v.host_words().ok_or_else(|| Error::InvalidKernel {
            reason: "a cluster call takes host data (slices or Vecs), not arrays: a \
                     DistArray keeps data on the nodes"
                .into(),
        })
    };
    let each: Vec<(&[u32], usize)> = each.iter().map(host).collect::<Result<_>>()?;
    let tables: Vec<&[u32]> = whole
        .iter()
        .map(|v| host(v).map(|(d, _)| d))
        .collect::<Result<_>>()?;
    Ok(Args {
        words: each.iter().map(|&(_, w)| w).collect(),
        each: each.into_iter().map(|(d, _)| d).collect(),
        tables,
        out_words,
    })
}

/// The call's data and the kernel's id; data the cluster cannot take becomes the
/// call's error (the root then cancels the call on every rank, which stays in step).
fn checked<'a, I, O>(args: Result<Args<'a>>, kernel: &Kernel<I, O>) -> (Args<'a>, Result<u64>) {
    match args {
        Ok(a) => (a, kernel.id()),
        Err(e) => (Args::plain(Vec::new()), Err(e)),
    }
}

impl Cluster {
    /// Runs a kernel of any signature ([`Kernel::new`]) over host data spread over the
    /// nodes: each node gets its share of the element-wise inputs and every table
    /// whole, the root gets one `Vec` per result. Every rank calls it with data of
    /// the kernel's types (the root's is used; other ranks may pass empty slices).
    ///
    /// ```no_run
    /// # fn main() -> hybrid::Result<()> {
    /// use hybrid::cluster::{Cluster, Spread};
    /// use hybrid::{Expr, Kernel, Table};
    /// let universe = hybrid::cluster::init()?;
    /// let cluster = Cluster::new(&universe.world())?;
    /// let k = Kernel::new(|(x, w): (Expr<f64>, Table<f64>)| {
    ///     (x.clone() * w.at(0u32), x.cast::<f32>())
    /// });
    /// let (xs, ws) = (vec![1.5f64; 1000], vec![2.0f64]);
    /// let run = cluster.call(&k, (&xs, &ws), Spread::Auto)?;
    /// if let Some((scaled, single)) = run.output {
    ///     assert_eq!((scaled[0], single[0]), (3.0, 1.5));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        spread: Spread,
    ) -> Result<ClusterRun<O::Host>> {
        let def = kernel.inner();
        let out_words = def.out_words();
        let (each, whole) = data.split();
        let (args, id) = checked(args(&each, &whole, out_words), kernel);
        let what = What {
            op: None,
            arity: I::KINDS.len() - whole.len(),
        };
        let p = self.local;
        let (parts, report) = self.call_words(id, what, &args, spread, &|ins, tabs, n| {
            let run = self
                .runtime
                .map_host::<O::Row>(def, ins, tabs, n, p, I::KINDS)?;
            let words: Vec<u32> = bytemuck::allocation::pod_collect_to_vec(&run.output);
            Ok((Part::Words(words), run.report))
        })?;
        let output = parts.map(|ps| {
            let mut words = Vec::new();
            for p in ps {
                if let Part::Words(w) = p {
                    words.extend_from_slice(&w);
                }
            }
            O::from_rows(bytemuck::allocation::pod_collect_to_vec(&words))
        });
        Ok(ClusterRun { output, report })
    }

    /// [`call`](Self::call)'s reduction: each node reduces its share with its own
    /// runtime (an `f64` sum compensated there), the root combines the partials in
    /// rank order (integers exactly; a float sum with one rounding per node).
    pub fn call_reduce<I: InTypes, O: Value, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        op: Reduce,
        spread: Spread,
    ) -> Result<ClusterRun<O>> {
        let def = kernel.inner();
        let (each, whole) = data.split();
        let (args, id) = checked(args(&each, &whole, 1), kernel);
        let what = What {
            op: Some(op),
            arity: I::KINDS.len() - whole.len(),
        };
        let p = self.local;
        let (parts, report) = self.call_words(id, what, &args, spread, &|ins, tabs, n| {
            let run = self
                .runtime
                .reduce_host(def, op, ins, tabs, n, p, I::KINDS)?;
            Ok((Part::Bits(run.output), run.report))
        })?;
        let output = parts.map(|ps| {
            let bits = ps.iter().filter_map(|p| match p {
                Part::Bits(b) => Some(*b),
                Part::Words(_) => None,
            });
            let all = bits.reduce(|a, b| combine_bits(op, O::TYPE, a, b));
            O::from_bits64(all.unwrap_or_else(|| op.identity_bits(O::TYPE)))
        });
        Ok(ClusterRun { output, report })
    }
}
