//! How a product's reduction is split (split-K) so small shapes fill the
//! GPU: over the batch rows for dW and db, over k for the forward product,
//! over n for the input gradient (kernels/README.md "Choosing splits",
//! "Small shapes"). The partial sums are finished by reduce.cu's kernels.

use super::launch::cdiv;
use crate::GemmShape;

/// Output tile edge of the GEMM kernels.
pub(crate) const TILE: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    pub splits: usize,
    /// Reduction indices per split: batch rows for dW / db, k for the
    /// forward product, n for the input gradient (the kernels'
    /// `rows_per_split`, `k_per_split`, `n_per_split`).
    pub per_split: usize,
}

impl SplitPlan {
    /// About two blocks per SM, whole 32-index chunks per split. A pure
    /// function of the shape and SM count, so the result's bits are
    /// reproducible.
    pub fn new(reduction: usize, tiles: usize, sm_count: usize) -> Self {
        let splits0 = cdiv(2 * sm_count, tiles.max(1)).clamp(1, cdiv(reduction, 32).max(1));
        let per_split = cdiv(cdiv(reduction, splits0), 32) * 32;
        SplitPlan {
            splits: cdiv(reduction, per_split),
            per_split,
        }
    }

    /// dW[k,n] = Xᵀ·dY, split over the m rows.
    pub fn for_weight_grad(s: GemmShape, sm_count: usize) -> Self {
        Self::new(s.m, cdiv(s.n, TILE) * cdiv(s.k, TILE), sm_count)
    }

    /// db[n] = column sums of dY[m,n], split over the m rows.
    pub fn for_bias_grad(m: usize, n: usize, sm_count: usize) -> Self {
        Self::new(m, cdiv(n, 32), sm_count)
    }

    /// Y = X·W split over k only when the 64×64 output tiles are fewer than
    /// the SMs; otherwise one split (the fused kernel).
    pub fn for_forward(s: GemmShape, sm_count: usize) -> Self {
        Self::for_product(cdiv(s.n, TILE) * cdiv(s.m, TILE), s.k, sm_count)
    }

    /// dX = dY·Wᵀ split over n under the same rule.
    pub fn for_input_grad(s: GemmShape, sm_count: usize) -> Self {
        Self::for_product(cdiv(s.k, TILE) * cdiv(s.m, TILE), s.n, sm_count)
    }

    fn for_product(tiles: usize, reduction: usize, sm_count: usize) -> Self {
        if tiles >= sm_count {
            SplitPlan {
                splits: 1,
                per_split: reduction,
            }
        } else {
            Self::new(reduction, tiles, sm_count)
        }
    }

    /// Scratch floats the split path needs for an output of `outputs`
    /// elements (splits·outputs; 0 when unsplit, the result is written
    /// directly).
    pub fn partial_len(&self, outputs: usize) -> usize {
        if self.splits > 1 {
            self.splits * outputs
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_plans_follow_the_readme() {
        // kernels/README.md examples (132 SMs).
        let p = SplitPlan::for_weight_grad(GemmShape::new(65_536, 128, 784), 132);
        assert_eq!((p.splits, p.per_split), (11, 5_984));
        let p = SplitPlan::for_weight_grad(GemmShape::new(256, 128, 784), 132);
        assert_eq!((p.splits, p.per_split), (8, 32));
        for m in [1, 31, 33, 257, 65_535] {
            for tiles in [1, 7, 26, 300] {
                let p = SplitPlan::new(m, tiles, 132);
                assert!(p.splits * p.per_split >= m && (p.splits - 1) * p.per_split < m);
            }
        }
    }

    /// (splits, per_split) of the lab model's (784-128-64-32-64-128-784)
    /// forward and input-gradient products: kernels/README.md "Small shapes".
    #[test]
    fn forward_and_input_grad_plans_follow_the_readme() {
        let fwd = |m, n, k| {
            let p = SplitPlan::for_forward(GemmShape::new(m, n, k), 132);
            (p.splits, p.per_split)
        };
        let dx = |m, n, k| {
            let p = SplitPlan::for_input_grad(GemmShape::new(m, n, k), 132);
            (p.splits, p.per_split)
        };
        // M = 256: (N, K) per layer
        assert_eq!(fwd(256, 128, 784), (25, 32));
        assert_eq!(fwd(256, 64, 128), (4, 32));
        assert_eq!(fwd(256, 32, 64), (2, 32));
        assert_eq!(fwd(256, 64, 32), (1, 32));
        assert_eq!(fwd(256, 128, 64), (2, 32));
        assert_eq!(fwd(256, 784, 128), (4, 32));
        assert_eq!(dx(256, 784, 128), (25, 32));
        assert_eq!(dx(256, 128, 64), (4, 32));
        assert_eq!(dx(256, 64, 32), (2, 32));
        assert_eq!(dx(256, 32, 64), (1, 32));
        assert_eq!(dx(256, 64, 128), (2, 32));
        // Enough tiles: never split (65,536 rows; the 8192³ benchmark).
        assert_eq!(fwd(65_536, 32, 64).0, 1);
        assert_eq!(dx(65_536, 784, 32).0, 1);
        assert_eq!(fwd(8192, 8192, 8192).0, 1);
        // 131 tiles still split, 132 do not.
        assert!(fwd(131 * 64, 64, 784).0 > 1);
        assert_eq!(fwd(132 * 64, 64, 784).0, 1);
        for m in [1, 63, 65, 96, 257, 4096] {
            for (n, k) in [(1, 1), (33, 31), (128, 784), (784, 128), (5, 1000)] {
                for p in [
                    SplitPlan::for_forward(GemmShape::new(m, n, k), 132),
                    SplitPlan::for_input_grad(GemmShape::new(m, k, n), 132),
                ] {
                    // k is the reduction of both (for_input_grad's n = k here)
                    assert!(p.splits * p.per_split >= k);
                    assert!((p.splits - 1) * p.per_split < k);
                    assert!(p.splits <= k.div_ceil(32).max(1));
                    if p.splits > 1 {
                        assert_eq!(p.per_split % 32, 0);
                    }
                }
            }
        }
    }
}
