//! Loops that carry several values, run to a count known only at the call, or stop
//! when a condition fails: [`fold_with`] and [`fold_while`]. ([`fold`](crate::fold),
//! one value and a constant count, is the simplest case of the same loop.)
//!
//! Both devices run the same loop: `carries = init; trips = 0; while trips < count &&
//! cond(carries, trips) { carries = body(carries, trips); trips += 1 }`. The count is
//! any `u32` expression: a constant, a [`Param`](crate::Param), a table's length, or a
//! value that differs per element.
//!
//! On the CPU the loop runs block-wise (each iteration over a block of elements at
//! once): where every element of a block runs the same number of trips (a count that
//! is the same for the whole call, and no condition) there is no per-element check at
//! all; otherwise each element stops at its own trip (its carried values stop
//! changing), and the block stops when all of its elements have. A condition that is
//! NaN-fed compares false (IEEE), so the loop stops: the same trip count on every
//! device.

use std::sync::Arc;

use super::expr::{fresh_vars, node, typed, var, Expr, LoopNode, Node, NodeRef};
use super::scalar::Scalar;

mod sealed {
    pub trait Sealed {}
}

/// Values a loop carries from one iteration to the next: one `Expr`, or a tuple of up
/// to 8 (of any mix of types).
pub trait Carry: sealed::Sealed + Clone {
    #[doc(hidden)]
    const COUNT: u32;
    #[doc(hidden)]
    fn into_nodes(self) -> Vec<NodeRef>;
    /// The loop's variables, ids `first..first + COUNT`.
    #[doc(hidden)]
    fn vars(first: u32) -> Self;
    /// The loop's outputs.
    #[doc(hidden)]
    fn outputs(lp: &Arc<LoopNode>) -> Self;
}

fn out<T: Scalar>(lp: &Arc<LoopNode>, k: usize) -> Expr<T> {
    typed(node(T::TYPE, Node::LoopOut(lp.clone(), k)))
}

impl<T: Scalar> sealed::Sealed for Expr<T> {}
impl<T: Scalar> Carry for Expr<T> {
    const COUNT: u32 = 1;
    fn into_nodes(self) -> Vec<NodeRef> {
        vec![self.into_node()]
    }
    fn vars(first: u32) -> Self {
        var(first)
    }
    fn outputs(lp: &Arc<LoopNode>) -> Self {
        out(lp, 0)
    }
}

macro_rules! carry_tuple {
    ($n:expr; $($T:ident $k:tt),+) => {
        impl<$($T: Scalar),+> sealed::Sealed for ($(Expr<$T>,)+) {}
        impl<$($T: Scalar),+> Carry for ($(Expr<$T>,)+) {
            const COUNT: u32 = $n;
            fn into_nodes(self) -> Vec<NodeRef> {
                vec![$(self.$k.into_node()),+]
            }
            fn vars(first: u32) -> Self {
                ($(var::<$T>(first + $k),)+)
            }
            fn outputs(lp: &Arc<LoopNode>) -> Self {
                ($(out::<$T>(lp, $k),)+)
            }
        }
    };
}

carry_tuple!(1; A 0);
carry_tuple!(2; A 0, B 1);
carry_tuple!(3; A 0, B 1, C 2);
carry_tuple!(4; A 0, B 1, C 2, D 3);
carry_tuple!(5; A 0, B 1, C 2, D 3, E 4);
carry_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);
carry_tuple!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
carry_tuple!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

fn build<C: Carry>(
    count: Expr<u32>,
    init: C,
    cond: Option<&dyn Fn(C, Expr<u32>) -> Expr<bool>>,
    body: impl FnOnce(C, Expr<u32>) -> C,
) -> Arc<LoopNode> {
    let first = fresh_vars(C::COUNT + 1);
    let counter = first + C::COUNT;
    let vars = C::vars(first);
    let cond = cond.map(|c| c(vars.clone(), var(counter)).into_node());
    let nexts = body(vars, var(counter)).into_nodes();
    Arc::new(LoopNode {
        count: count.into_node(),
        inits: init.into_nodes(),
        vars: (first..counter).collect(),
        counter,
        cond,
        nexts,
    })
}

/// A loop carrying one value or a tuple of values, run `count` times, where `count` is
/// any `u32` expression (a [`Param`](crate::Param), a table's length, a per-element
/// value): `carries = init`, then for `i` in `0..count`, `carries = body(carries, i)`.
///
/// ```
/// use hybrid::{fold_with, Expr, Kernel, Table};
/// // the sum and the sum of squares of a table, for every element
/// let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
///     let (s, s2) = fold_with(t.len(), (x.clone(), x * 0.0), |(s, s2), j| {
///         let v = t.at(j);
///         (s + v.clone(), s2 + v.clone() * v)
///     });
///     (s, s2)
/// });
/// # let _ = k;
/// ```
pub fn fold_with<C: Carry>(
    count: impl Into<Expr<u32>>,
    init: C,
    body: impl FnOnce(C, Expr<u32>) -> C,
) -> C {
    C::outputs(&build(count.into(), init, None, body))
}

/// A loop that stops early: `carries = init; trips = 0;` then while `trips < max` and
/// `cond(carries, trips)` holds, `carries = body(carries, trips)` and `trips += 1`.
/// Gives the final carried values and `trips`, the number of iterations run.
///
/// A condition that is false from the start runs no iteration; a NaN compared with
/// anything is false, so a NaN reaching the condition stops the loop (on every device).
///
/// ```
/// use hybrid::{fold_while, Expr, Kernel};
/// // Mandelbrot: iterations until |z| > 2, at most 256
/// let k = Kernel::new(|(cr, ci): (Expr<f32>, Expr<f32>)| {
///     let zero = Expr::constant(0.0f32);
///     let (_, n) = fold_while(
///         256u32,
///         (zero.clone(), zero),
///         |(x, y), _| (x.clone() * x + y.clone() * y).le(4.0),
///         |(x, y), _| (x.clone() * x.clone() - y.clone() * y.clone() + cr.clone(),
///                      x * y * 2.0 + ci.clone()),
///     );
///     n
/// });
/// # let _ = k;
/// ```
pub fn fold_while<C: Carry>(
    max: impl Into<Expr<u32>>,
    init: C,
    cond: impl Fn(C, Expr<u32>) -> Expr<bool>,
    body: impl FnOnce(C, Expr<u32>) -> C,
) -> (C, Expr<u32>) {
    let lp = build(max.into(), init, Some(&cond), body);
    let trips = typed(node(
        super::scalar::ScalarType::U32,
        Node::LoopOut(lp.clone(), C::COUNT as usize),
    ));
    (C::outputs(&lp), trips)
}
