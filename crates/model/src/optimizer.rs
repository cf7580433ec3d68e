//! Which update ends each step (issue 12): Keras' Adam, AdamW (Adam with
//! decoupled weight decay) or LAMB (per-tensor trust ratios), and the
//! tensors LAMB computes its ratios over.

use crate::error::fail;
use crate::{Layer, Result};
use dae_core::ops::lamb::{LambTable, LambTensor};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Keras' Adam (no weight decay): the lab's.
    #[default]
    Adam,
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    AdamW,
    /// LAMB (You et al., ICLR 2020): Adam's update scaled per tensor by
    /// ‖w‖/‖u‖.
    Lamb,
}

impl Optimizer {
    pub const ALL: [Optimizer; 3] = [Optimizer::Adam, Optimizer::AdamW, Optimizer::Lamb];

    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adam => "adam",
            Optimizer::AdamW => "adamw",
            Optimizer::Lamb => "lamb",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match Self::ALL.into_iter().find(|o| o.name() == s) {
            Some(o) => Ok(o),
            None => fail!(Settings, "unknown optimizer '{s}' (adam, adamw or lamb)"),
        }
    }

    /// Whether it applies a weight decay.
    pub fn decays(self) -> bool {
        self != Optimizer::Adam
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// LAMB's tensors: each layer's weight matrix (decayed) and bias vector
/// (not decayed), as they lie in the flat parameter buffer.
pub fn lamb_tensors(layers: &[Layer]) -> Vec<LambTensor> {
    layers
        .iter()
        .flat_map(|l| {
            [
                LambTensor {
                    offset: l.weight_offset,
                    len: l.fan_in * l.fan_out,
                    decay: true,
                },
                LambTensor {
                    offset: l.bias_offset,
                    len: l.fan_out,
                    decay: false,
                },
            ]
        })
        .collect()
}

/// The kernels' tensor table of `layers`' LAMB tensors.
pub fn lamb_table(layers: &[Layer]) -> Result<LambTable> {
    let n = layers.iter().map(Layer::param_count).sum();
    Ok(LambTable::new(&lamb_tensors(layers), n)?)
}

/// Device bytes the optimizer holds beyond Adam's moments: for LAMB its
/// table (i32 words) and f64 scratch; saturates on overflow.
pub fn extra_bytes(optimizer: Optimizer, layers: &[Layer]) -> usize {
    if optimizer != Optimizer::Lamb {
        return 0;
    }
    // Counted as LambTable::new lays it out, without the checks (a table
    // that fails them is refused when the backend is built).
    let tensors = 2 * layers.len();
    let chunks: usize = lamb_tensors(layers)
        .iter()
        .map(|t| t.len.div_ceil(dae_core::ops::lamb::LAMB_CHUNK))
        .sum();
    let words = 4usize.saturating_mul(tensors).saturating_add(chunks);
    let scratch = 2usize.saturating_mul(chunks).saturating_add(tensors);
    4usize
        .saturating_mul(words)
        .saturating_add(8usize.saturating_mul(scratch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Architecture;

    #[test]
    fn names_round_trip() {
        for o in Optimizer::ALL {
            assert_eq!(Optimizer::parse(o.name()).unwrap(), o);
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
        let err = Optimizer::parse("sgd").unwrap_err().to_string();
        assert!(err.contains("unknown optimizer 'sgd'"), "{err}");
    }

    #[test]
    fn lamb_covers_every_parameter_once() {
        let arch = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let layers = arch.layers();
        let tensors = lamb_tensors(&layers);
        assert_eq!(tensors.len(), 12);
        assert_eq!(
            tensors.iter().map(|t| t.len).sum::<usize>(),
            arch.param_count()
        );
        assert!(tensors
            .windows(2)
            .all(|w| w[0].offset + w[0].len == w[1].offset));
        assert_eq!((tensors[0].decay, tensors[1].decay), (true, false));
        let table = lamb_table(&layers).unwrap();
        assert_eq!(
            extra_bytes(Optimizer::Lamb, &layers),
            4 * table.words.len() + 8 * table.scratch_len()
        );
        assert_eq!(extra_bytes(Optimizer::AdamW, &layers), 0);
    }
}
