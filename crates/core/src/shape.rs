//! The shape of a dense layer's products, passed by name instead of as
//! positional sizes (CUTLASS's `GemmCoord`): one value serves the forward
//! product and both gradients of a layer.

/// A layer's products at `m` rows: `k` inputs (fan-in), `n` outputs
/// (fan-out).
///
/// - forward: Y[m,n] = X[m,k]·W[k,n]
/// - input gradient: dX[m,k] = dY[m,n]·Wᵀ
/// - weight gradient: dW[k,n] = Xᵀ·dY
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GemmShape {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl GemmShape {
    pub const fn new(m: usize, n: usize, k: usize) -> Self {
        GemmShape { m, n, k }
    }

    /// Elements of X (and of dX): m·k.
    pub const fn x_len(&self) -> usize {
        self.m * self.k
    }

    /// Elements of W (and of dW): k·n.
    pub const fn w_len(&self) -> usize {
        self.k * self.n
    }

    /// Elements of Y (and of dY): m·n.
    pub const fn y_len(&self) -> usize {
        self.m * self.n
    }

    /// Multiply-adds ×2 of any one of the three products.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

impl std::fmt::Display for GemmShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.m, self.n, self.k)
    }
}
