//! `Expr<T>`: symbolic values, and the operators and functions that combine them.
//!
//! An `Expr` is a shared node of an expression tree. Arithmetic on it builds the tree;
//! nothing is computed. Which operations a type has is decided at compile time: `sqrt`
//! exists on `Expr<f32>` only, `<<` on integer expressions only, `-x` on `f32` and `i32`.
//!
//! This module uses `param` (a [`Param`]'s shared cell is a leaf of the tree) and
//! `param` does not use it: `Param::expr` is written here, not there.

use std::marker::PhantomData;
use std::ops;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::param::{Param, ParamCell};
use super::scalar::{Float, Integer, Numeric, Scalar, ScalarType};

/// Unary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum UnOp {
    Neg,
    /// Bitwise not on integers, logical not on bool.
    Not,
    Abs,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Exp,
    Exp2,
    Ln,
    Log2,
    Floor,
    Ceil,
    Round,
    Fract,
}

/// Binary operations. Both operands have the same type, except `Shl`/`Shr`, whose right
/// operand is `u32`. Comparisons give `bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    Max,
    Pow,
    /// Bitwise and on integers, logical and on bool.
    And,
    /// Bitwise or on integers, logical or on bool.
    Or,
    Xor,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne
        )
    }
}

/// A node of the expression tree.
#[derive(Debug)]
pub(crate) enum Node {
    /// The element of input 0 or 1.
    Input(u8),
    /// The element's global index, `u32`.
    Index,
    /// A literal: its type and 32-bit pattern.
    Const(ScalarType, u64),
    /// A fold's accumulator or counter, by a process-unique id.
    Var(u32),
    /// A kernel parameter ([`super::Param`]): read per call, never a literal.
    Param(Arc<ParamCell>),
    Unary(UnOp, NodeRef),
    Binary(BinOp, NodeRef, NodeRef),
    /// `cond ? a : b`.
    Select(NodeRef, NodeRef, NodeRef),
    /// Conversion to the node's type.
    Cast(NodeRef),
    /// `a * b + c`.
    MulAdd(NodeRef, NodeRef, NodeRef),
    /// `min(max(x, lo), hi)`.
    Clamp(NodeRef, NodeRef, NodeRef),
    /// Element `index` (an `i32` or `u32` node) of whole-array input `table`: an
    /// index outside the table reads its nearest element, or `default` where given.
    Load {
        table: u8,
        index: NodeRef,
        default: Option<NodeRef>,
    },
    /// The number of elements of whole-array input `table`, `u32`.
    TableLen(u8),
    /// Output `k` of a loop: its carried value `k`, or for `k == carries`, the number
    /// of iterations it ran.
    LoopOut(Arc<LoopNode>, usize),
}

/// A loop, shared by the nodes of its outputs: `carries = inits; trips = 0; while
/// trips < count && cond { carries = nexts; trips += 1 }`, where `cond` and `nexts`
/// read the carries (`vars`) and the counter (`trips` so far).
#[derive(Debug)]
#[doc(hidden)]
pub struct LoopNode {
    /// Most iterations, `u32`.
    pub(crate) count: NodeRef,
    pub(crate) inits: Vec<NodeRef>,
    /// The carried values' variables, by process-unique id.
    pub(crate) vars: Vec<u32>,
    /// The counter's variable.
    pub(crate) counter: u32,
    /// Checked before each iteration; the loop stops when it is false.
    pub(crate) cond: Option<NodeRef>,
    pub(crate) nexts: Vec<NodeRef>,
}

/// A typed node. (Public in name only: the module is private; it appears in the
/// signatures of sealed traits' hidden methods.)
#[derive(Debug)]
#[doc(hidden)]
pub struct NodeData {
    pub(crate) ty: ScalarType,
    pub(crate) node: Node,
}

#[doc(hidden)]
pub type NodeRef = Arc<NodeData>;

/// A symbolic value of type `T` inside a kernel: an input element, a constant, or an
/// expression over them. Clone it to use a value twice; the tree shares it, and the
/// compiler evaluates it once.
pub struct Expr<T> {
    node: NodeRef,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Expr<T> {
    fn clone(&self) -> Self {
        Expr {
            node: self.node.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Expr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr<{}>({:?})", self.node.ty, self.node.node)
    }
}

fn mk<T: Scalar>(node: Node) -> Expr<T> {
    Expr {
        node: Arc::new(NodeData { ty: T::TYPE, node }),
        _t: PhantomData,
    }
}

impl<T: Scalar> Expr<T> {
    pub(crate) fn input(slot: u8) -> Self {
        mk(Node::Input(slot))
    }

    pub(crate) fn param(cell: Arc<ParamCell>) -> Self {
        mk(Node::Param(cell))
    }

    pub(crate) fn into_node(self) -> NodeRef {
        self.node
    }

    /// A constant.
    pub fn constant(value: T) -> Self {
        mk(Node::Const(T::TYPE, value.bits()))
    }

    /// Converts to another element type, with WGSL's rules: float to integer clamps to
    /// the destination's range as the float type holds it, then rounds toward zero
    /// (`3e9` and `+inf` as `i32` give 2147483520, the largest `f32` below 2^31, as
    /// WGSL's `i32(x)` does; as `u32`, 4294967040), NaN gives 0 (WGSL leaves it
    /// indeterminate), integer to float rounds to nearest,
    /// `i32` to `u32` and back keep the bit pattern, `bool` gives 0 or 1.
    /// `f64` to `i32` or `u32` clamps to the integer type's own range (an `f64` holds
    /// its ends exactly), `f32` to `f64` is exact and `f64` to `f32` rounds to nearest.
    pub fn cast<U: Numeric>(&self) -> Expr<U> {
        if T::TYPE == U::TYPE {
            return Expr {
                node: self.node.clone(),
                _t: PhantomData,
            };
        }
        mk(Node::Cast(self.node.clone()))
    }

    fn un<R: Scalar>(&self, op: UnOp) -> Expr<R> {
        mk(Node::Unary(op, self.node.clone()))
    }

    fn bin<R: Scalar>(&self, op: BinOp, rhs: &NodeRef) -> Expr<R> {
        mk(Node::Binary(op, self.node.clone(), rhs.clone()))
    }
}

impl<T: Numeric> Param<T> {
    /// The parameter as a symbolic value inside a kernel.
    pub fn expr(&self) -> Expr<T> {
        Expr::param(self.cell().clone())
    }
}

impl<T: Numeric> From<&Param<T>> for Expr<T> {
    fn from(p: &Param<T>) -> Expr<T> {
        p.expr()
    }
}

impl<T: Scalar> From<T> for Expr<T> {
    fn from(value: T) -> Self {
        Expr::constant(value)
    }
}

impl<T: Scalar> From<&Expr<T>> for Expr<T> {
    fn from(value: &Expr<T>) -> Self {
        value.clone()
    }
}

/// The global index of the element being computed (0 for the first element of the
/// input, whichever device computes it), as `u32`; it wraps past `u32::MAX`.
pub fn index() -> Expr<u32> {
    mk(Node::Index)
}

/// `if cond { a } else { b }`, element-wise. Both sides are evaluated.
pub fn select<T: Scalar>(
    cond: impl Into<Expr<bool>>,
    a: impl Into<Expr<T>>,
    b: impl Into<Expr<T>>,
) -> Expr<T> {
    mk(Node::Select(cond.into().node, a.into().node, b.into().node))
}

static NEXT_VAR: AtomicU32 = AtomicU32::new(0);

/// `n` fresh loop variables' ids.
pub(crate) fn fresh_vars(n: u32) -> u32 {
    NEXT_VAR.fetch_add(n, Ordering::Relaxed)
}

/// A variable of a loop, as an expression (its type is `T`).
pub(crate) fn var<T: Scalar>(id: u32) -> Expr<T> {
    mk(Node::Var(id))
}

/// An expression of type `T` over any node (the caller knows its type is `T`).
pub(crate) fn typed<T: Scalar>(node: NodeRef) -> Expr<T> {
    Expr {
        node,
        _t: PhantomData,
    }
}

/// A node of type `ty` (for the loop and table builders).
pub(crate) fn node(ty: ScalarType, node: Node) -> NodeRef {
    Arc::new(NodeData { ty, node })
}

/// A bounded loop with a constant trip count: `acc = init`, then for `i` in
/// `0..count`, `acc = body(acc, i)`; the value is the final `acc`.
///
/// The body closure runs once, when the kernel is built. It may use values from
/// outside the loop; those that do not depend on `acc` or `i` are computed once, before
/// the loop. For several carried values, a trip count known only at the call, or a
/// loop that stops early, see [`fold_with`](crate::fold_with) and
/// [`fold_while`](crate::fold_while).
///
/// ```
/// use hybrid::{fold, Expr, Kernel};
/// // x^16 by repeated multiplication
/// let k = Kernel::map(|x: Expr<f32>| fold(16, 1.0, |acc, _i| acc * x.clone()));
/// # let _ = k;
/// ```
pub fn fold<A: Scalar>(
    count: u32,
    init: impl Into<Expr<A>>,
    body: impl FnOnce(Expr<A>, Expr<u32>) -> Expr<A>,
) -> Expr<A> {
    let acc = fresh_vars(2);
    let counter = acc + 1;
    let next = body(var(acc), var(counter));
    let lp = LoopNode {
        count: Expr::constant(count).node,
        inits: vec![init.into().node],
        vars: vec![acc],
        counter,
        cond: None,
        nexts: vec![next.node],
    };
    mk(Node::LoopOut(Arc::new(lp), 0))
}

impl<T: Numeric> Expr<T> {
    /// The smaller of two values (for floats with a NaN, either may be returned).
    pub fn min(&self, other: impl Into<Expr<T>>) -> Expr<T> {
        self.bin(BinOp::Min, &other.into().node)
    }
    /// The larger of two values (for floats with a NaN, either may be returned).
    pub fn max(&self, other: impl Into<Expr<T>>) -> Expr<T> {
        self.bin(BinOp::Max, &other.into().node)
    }
    /// `min(max(self, lo), hi)`.
    pub fn clamp(&self, lo: impl Into<Expr<T>>, hi: impl Into<Expr<T>>) -> Expr<T> {
        mk(Node::Clamp(
            self.node.clone(),
            lo.into().node,
            hi.into().node,
        ))
    }
    /// Absolute value (`i32::MIN` stays `i32::MIN`; identity on `u32`).
    pub fn abs(&self) -> Expr<T> {
        self.un(UnOp::Abs)
    }
    /// `self * b + c`; a GPU may fuse it into one rounding.
    pub fn mul_add(&self, b: impl Into<Expr<T>>, c: impl Into<Expr<T>>) -> Expr<T> {
        mk(Node::MulAdd(
            self.node.clone(),
            b.into().node,
            c.into().node,
        ))
    }
    /// `self < other`.
    pub fn lt(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Lt, &other.into().node)
    }
    /// `self <= other`.
    pub fn le(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Le, &other.into().node)
    }
    /// `self > other`.
    pub fn gt(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Gt, &other.into().node)
    }
    /// `self >= other`.
    pub fn ge(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Ge, &other.into().node)
    }
    /// `self == other`.
    pub fn eq(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Eq, &other.into().node)
    }
    /// `self != other`.
    pub fn ne(&self, other: impl Into<Expr<T>>) -> Expr<bool> {
        self.bin(BinOp::Ne, &other.into().node)
    }
}

macro_rules! float_unary {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl<T: Float> Expr<T> {
            $($(#[$doc])* pub fn $name(&self) -> Expr<T> { self.un(UnOp::$op) })*
        }
    };
}

float_unary! {
    /// Square root (NaN below zero).
    sqrt => Sqrt;
    /// Sine, in radians.
    sin => Sin;
    /// Cosine, in radians.
    cos => Cos;
    /// Tangent, in radians.
    tan => Tan;
    /// e to the power of the value.
    exp => Exp;
    /// 2 to the power of the value.
    exp2 => Exp2;
    /// Natural logarithm (NaN below zero, -inf at zero).
    ln => Ln;
    /// Base-2 logarithm.
    log2 => Log2;
    /// Largest integer not above the value.
    floor => Floor;
    /// Smallest integer not below the value.
    ceil => Ceil;
    /// Nearest integer, ties to even (WGSL's rule; not Rust's `f32::round`).
    round => Round;
    /// `x - floor(x)`.
    fract => Fract;
}

impl<T: Float> Expr<T> {
    /// `self` to the power `y`, as WGSL defines it: `exp2(y * log2(self))`, so NaN for a
    /// negative base.
    pub fn pow(&self, y: impl Into<Expr<T>>) -> Expr<T> {
        self.bin(BinOp::Pow, &y.into().node)
    }
}

impl Expr<bool> {
    /// Logical and (both sides are evaluated).
    pub fn and(&self, other: impl Into<Expr<bool>>) -> Expr<bool> {
        self.bin(BinOp::And, &other.into().node)
    }
    /// Logical or (both sides are evaluated).
    pub fn or(&self, other: impl Into<Expr<bool>>) -> Expr<bool> {
        self.bin(BinOp::Or, &other.into().node)
    }
    /// `if self { a } else { b }`.
    pub fn select<T: Scalar>(&self, a: impl Into<Expr<T>>, b: impl Into<Expr<T>>) -> Expr<T> {
        select(self.clone(), a, b)
    }
}

impl ops::Not for Expr<bool> {
    type Output = Expr<bool>;
    fn not(self) -> Expr<bool> {
        self.un(UnOp::Not)
    }
}

// Binary operators for every (lhs, rhs) form: Expr, &Expr, and a plain number on
// either side.
macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $op:ident, $Bound:ident) => {
        impl<T: $Bound> ops::$Trait<Expr<T>> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: Expr<T>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: $Bound> ops::$Trait<&Expr<T>> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: &Expr<T>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: $Bound> ops::$Trait<Expr<T>> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: Expr<T>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: $Bound> ops::$Trait<&Expr<T>> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: &Expr<T>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: $Bound> ops::$Trait<T> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: T) -> Expr<T> {
                self.bin(BinOp::$op, &Expr::constant(rhs).node)
            }
        }
        impl<T: $Bound> ops::$Trait<T> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: T) -> Expr<T> {
                self.bin(BinOp::$op, &Expr::constant(rhs).node)
            }
        }
    };
}

macro_rules! scalar_lhs_operator {
    ($Trait:ident, $method:ident, $op:ident; $($t:ty),*) => {$(
        impl ops::$Trait<Expr<$t>> for $t {
            type Output = Expr<$t>;
            fn $method(self, rhs: Expr<$t>) -> Expr<$t> {
                Expr::constant(self).bin(BinOp::$op, &rhs.node)
            }
        }
        impl ops::$Trait<&Expr<$t>> for $t {
            type Output = Expr<$t>;
            fn $method(self, rhs: &Expr<$t>) -> Expr<$t> {
                Expr::constant(self).bin(BinOp::$op, &rhs.node)
            }
        }
    )*};
}

binary_operator!(Add, add, Add, Numeric);
binary_operator!(Sub, sub, Sub, Numeric);
binary_operator!(Mul, mul, Mul, Numeric);
binary_operator!(Div, div, Div, Numeric);
binary_operator!(Rem, rem, Rem, Numeric);
binary_operator!(BitAnd, bitand, And, Integer);
binary_operator!(BitOr, bitor, Or, Integer);
binary_operator!(BitXor, bitxor, Xor, Integer);
scalar_lhs_operator!(Add, add, Add; f32, f64, i32, u32, i64, u64);
scalar_lhs_operator!(Sub, sub, Sub; f32, f64, i32, u32, i64, u64);
scalar_lhs_operator!(Mul, mul, Mul; f32, f64, i32, u32, i64, u64);
scalar_lhs_operator!(Div, div, Div; f32, f64, i32, u32, i64, u64);
scalar_lhs_operator!(Rem, rem, Rem; f32, f64, i32, u32, i64, u64);
scalar_lhs_operator!(BitAnd, bitand, And; i32, u32, i64, u64);
scalar_lhs_operator!(BitOr, bitor, Or; i32, u32, i64, u64);
scalar_lhs_operator!(BitXor, bitxor, Xor; i32, u32, i64, u64);

// Shifts: the amount is u32 and is masked to 0..=31, as WGSL does.
macro_rules! shift_operator {
    ($Trait:ident, $method:ident, $op:ident) => {
        impl<T: Integer> ops::$Trait<Expr<u32>> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: Expr<u32>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: Integer> ops::$Trait<&Expr<u32>> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: &Expr<u32>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: Integer> ops::$Trait<Expr<u32>> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: Expr<u32>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: Integer> ops::$Trait<&Expr<u32>> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: &Expr<u32>) -> Expr<T> {
                self.bin(BinOp::$op, &rhs.node)
            }
        }
        impl<T: Integer> ops::$Trait<u32> for Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: u32) -> Expr<T> {
                self.bin(BinOp::$op, &Expr::constant(rhs).node)
            }
        }
        impl<T: Integer> ops::$Trait<u32> for &Expr<T> {
            type Output = Expr<T>;
            fn $method(self, rhs: u32) -> Expr<T> {
                self.bin(BinOp::$op, &Expr::constant(rhs).node)
            }
        }
    };
}

shift_operator!(Shl, shl, Shl);
shift_operator!(Shr, shr, Shr);

macro_rules! neg_operator {
    ($($t:ty),*) => {$(
        impl ops::Neg for Expr<$t> {
            type Output = Expr<$t>;
            fn neg(self) -> Expr<$t> {
                self.un(UnOp::Neg)
            }
        }
        impl ops::Neg for &Expr<$t> {
            type Output = Expr<$t>;
            fn neg(self) -> Expr<$t> {
                self.un(UnOp::Neg)
            }
        }
    )*};
}
neg_operator!(f32, f64, i32, i64);

impl<T: Integer> ops::Not for Expr<T> {
    type Output = Expr<T>;
    fn not(self) -> Expr<T> {
        self.un(UnOp::Not)
    }
}

impl<T: Integer> ops::Not for &Expr<T> {
    type Output = Expr<T>;
    fn not(self) -> Expr<T> {
        self.un(UnOp::Not)
    }
}
