//! The tensors LAMB computes its trust ratios over (issue 12): slices of the
//! flat parameter buffer, one per weight matrix and one per bias vector.
//!
//! One trust ratio per tensor, weights and bias separately, as the paper's
//! per-layer ratio is applied in practice (NVIDIA's FusedLAMB, TensorFlow
//! Addons' LAMB: per variable): a bias's norm is unrelated to its matrix's,
//! and mixing them lets the larger one set the step for both. `decay`
//! chooses whether the weight decay term enters the tensor's update
//! (commonly off for biases).

use anyhow::{bail, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LambTensor {
    /// First element in the flat parameter buffer.
    pub offset: usize,
    /// Elements (≥ 1).
    pub len: usize,
    /// Whether the weight decay term applies to this tensor.
    pub decay: bool,
}

/// The kernels index with `int` and step a chunk of 4096 past an index:
/// every tensor must end this far below `i32::MAX`.
const INDEX_HEADROOM: usize = 1 << 13;

/// Checks that the tensors are non-empty, in ascending order, disjoint and
/// inside a buffer of `n` elements (gaps are allowed: they are not updated).
pub fn check_tensors(tensors: &[LambTensor], n: usize) -> Result<()> {
    if tensors.is_empty() {
        bail!("LAMB: no tensors to update");
    }
    let limit = (i32::MAX as usize - INDEX_HEADROOM).min(n);
    let mut end = 0usize;
    for (i, t) in tensors.iter().enumerate() {
        if t.len == 0 {
            bail!("LAMB: tensor {i} (offset {}) has no elements", t.offset);
        }
        if t.offset < end {
            bail!(
                "LAMB: tensor {i} starts at {} inside the previous one (ends at {end}); tensors must be ascending and disjoint",
                t.offset
            );
        }
        end = match t.offset.checked_add(t.len) {
            Some(e) if e <= limit => e,
            _ => bail!(
                "LAMB: tensor {i} ({} elements at {}) ends past the {limit} elements the buffer (and the kernels' int indices) allow",
                t.len,
                t.offset
            ),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(offset: usize, len: usize) -> LambTensor {
        LambTensor {
            offset,
            len,
            decay: true,
        }
    }

    #[test]
    fn tables_are_checked() {
        assert!(check_tensors(&[t(0, 6), t(6, 2), t(10, 1)], 11).is_ok());
        let err = |v: &[LambTensor], n| check_tensors(v, n).unwrap_err().to_string();
        assert!(err(&[], 5).contains("no tensors"));
        assert!(err(&[t(0, 0)], 5).contains("no elements"));
        assert!(err(&[t(0, 4), t(3, 1)], 5).contains("ascending and disjoint"));
        assert!(err(&[t(0, 6)], 5).contains("ends past the 5"));
        assert!(err(&[t(usize::MAX, 2)], usize::MAX).contains("ends past"));
        assert!(err(&[t(0, i32::MAX as usize)], usize::MAX).contains("int indices"));
    }
}
