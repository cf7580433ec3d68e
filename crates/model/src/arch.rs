//! The dense stack: an encoder of given widths and the mirrored decoder.

use crate::error::fail;
use crate::Result;
use dae_core::{Activation, GemmShape};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    pub input_dim: usize,
    /// Encoder widths, outermost first; the last is the code size.
    pub encoder: Vec<usize>,
}

/// One dense layer: W [fan_in, fan_out] (Keras' kernel layout) and b [fan_out],
/// stored at `weight_offset` / `bias_offset` in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub name: String,
    pub fan_in: usize,
    pub fan_out: usize,
    pub activation: Activation,
    pub weight_offset: usize,
    pub bias_offset: usize,
}

impl Layer {
    pub fn param_count(&self) -> usize {
        self.fan_in * self.fan_out + self.fan_out
    }

    /// The shape of this layer's products at `rows` rows.
    pub fn shape(&self, rows: usize) -> GemmShape {
        GemmShape::new(rows, self.fan_out, self.fan_in)
    }
}

/// Widest layer accepted (input included): far above the 50,176 inputs of
/// the largest data dae makes (224×224), far below where products of
/// widths could overflow.
pub const MAX_WIDTH: usize = 1 << 24;

/// Most encoder layers accepted.
pub const MAX_DEPTH: usize = 64;

/// Most parameters accepted: every parameter-sized buffer (parameters,
/// gradients, Adam's moments) stays indexable by the kernels' 32-bit
/// signed offsets, and the sizes derived from it cannot overflow.
pub const MAX_PARAMS: usize = i32::MAX as usize;

impl Architecture {
    pub fn new(input_dim: usize, encoder: Vec<usize>) -> Result<Self> {
        if input_dim == 0 {
            fail!(Settings, "input width must be positive");
        }
        if input_dim > MAX_WIDTH {
            fail!(
                Settings,
                "input width {input_dim} exceeds dae's limit of {MAX_WIDTH} values per sample"
            );
        }
        if encoder.is_empty() {
            fail!(
                Settings,
                "--layers: the encoder needs at least one layer (e.g. --layers 128,64,32)"
            );
        }
        if encoder.len() > MAX_DEPTH {
            fail!(
                Settings,
                "{} encoder layers exceed dae's limit of {MAX_DEPTH}",
                encoder.len()
            );
        }
        if let Some(w) = encoder.iter().find(|&&w| w == 0) {
            fail!(Settings, "--layers: layer width {w} must be positive");
        }
        if let Some(w) = encoder.iter().find(|&&w| w > MAX_WIDTH) {
            fail!(
                Settings,
                "layer width {w} exceeds dae's limit of {MAX_WIDTH}"
            );
        }
        let arch = Architecture { input_dim, encoder };
        match arch.checked_param_count() {
            Some(p) if p <= MAX_PARAMS => Ok(arch),
            p => fail!(
                Settings,
                "layers {} have {} parameters, more than dae's limit of {MAX_PARAMS}",
                arch.describe(),
                p.map_or("too many".to_string(), |p| p.to_string())
            ),
        }
    }

    /// The parameter count, None on overflow (checked before any layout is
    /// computed; past `new` the plain sums cannot overflow).
    fn checked_param_count(&self) -> Option<usize> {
        self.widths().windows(2).try_fold(0usize, |acc, w| {
            w[0].checked_mul(w[1])?.checked_add(w[1])?.checked_add(acc)
        })
    }

    /// Parses `--layers 128,64,32`.
    pub fn parse_layers(spec: &str) -> Result<Vec<usize>> {
        let spec = spec.trim();
        if spec.is_empty() {
            fail!(
                Settings,
                "--layers: empty layer list (e.g. --layers 128,64,32)"
            );
        }
        spec.split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(0) => fail!(
                    Settings,
                    "--layers: layer width 0 in '{spec}' must be positive"
                ),
                Ok(v) if v > MAX_WIDTH => {
                    fail!(
                        Settings,
                        "--layers: layer width {v} exceeds dae's limit of {MAX_WIDTH}"
                    )
                }
                Ok(v) => Ok(v),
                Err(_) => fail!(
                    Settings,
                    "--layers: '{}' in '{spec}' is not a positive integer",
                    w.trim()
                ),
            })
            .collect()
    }

    /// All widths from input to output: [in, e1, …, ek, …, e1, in].
    pub fn widths(&self) -> Vec<usize> {
        let mut w = vec![self.input_dim];
        w.extend(&self.encoder);
        w.extend(self.encoder.iter().rev().skip(1));
        w.push(self.input_dim);
        w
    }

    pub fn layers(&self) -> Vec<Layer> {
        let widths = self.widths();
        let k = self.encoder.len();
        let count = widths.len() - 1;
        let mut offset = 0;
        (0..count)
            .map(|i| {
                let (fan_in, fan_out) = (widths[i], widths[i + 1]);
                let name = if i < k {
                    format!("encoder_{}", i + 1)
                } else {
                    format!("decoder_{}", i - k + 1)
                };
                let activation = if i + 1 == count {
                    Activation::Sigmoid
                } else {
                    Activation::Relu
                };
                let layer = Layer {
                    name,
                    fan_in,
                    fan_out,
                    activation,
                    weight_offset: offset,
                    bias_offset: offset + fan_in * fan_out,
                };
                offset += layer.param_count();
                layer
            })
            .collect()
    }

    pub fn encoder_layer_count(&self) -> usize {
        self.encoder.len()
    }

    pub fn code_dim(&self) -> usize {
        *self.encoder.last().unwrap()
    }

    pub fn param_count(&self) -> usize {
        self.layers().iter().map(Layer::param_count).sum()
    }

    pub fn encoder_param_count(&self) -> usize {
        self.layers()[..self.encoder.len()]
            .iter()
            .map(Layer::param_count)
            .sum()
    }

    /// Widest layer (input included): sizes the backward pass's buffers.
    pub fn max_width(&self) -> usize {
        *self.widths().iter().max().unwrap()
    }

    /// "784-128-64-32-64-128-784".
    pub fn describe(&self) -> String {
        self.widths()
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_architecture_counts() {
        let a = Architecture::new(784, vec![128, 64, 32]).unwrap();
        assert_eq!(a.widths(), [784, 128, 64, 32, 64, 128, 784]);
        assert_eq!(a.encoder_param_count(), 100_480 + 8_256 + 2_080);
        assert_eq!(a.encoder_param_count(), 110_816);
        assert_eq!(a.param_count(), 222_384);
        let l = a.layers();
        assert_eq!(l.len(), 6);
        assert_eq!(l[5].activation, Activation::Sigmoid);
        assert!(l[..5].iter().all(|l| l.activation == Activation::Relu));
        assert_eq!(l[1].weight_offset, 100_480);
        let simple = Architecture::new(784, vec![32]).unwrap();
        assert_eq!(simple.widths(), [784, 32, 784]);
        assert_eq!(simple.param_count(), 784 * 32 + 32 + 32 * 784 + 784);
    }

    #[test]
    fn layer_specs_are_validated() {
        assert_eq!(
            Architecture::parse_layers("128, 64,32").unwrap(),
            [128, 64, 32]
        );
        for bad in ["", "128,,32", "0", "a,b", "-3"] {
            assert!(Architecture::parse_layers(bad).is_err(), "{bad:?}");
        }
        assert!(Architecture::new(784, vec![]).is_err());
    }

    /// Sizes that overflowed or aborted (issue 10): refused with the limit.
    #[test]
    fn huge_architectures_are_refused() {
        for (input, enc) in [
            (784, vec![2_305_843_009_213_693_952]),
            (784, vec![usize::MAX]),
            (MAX_WIDTH + 1, vec![8]),
            (784, vec![1_000_000_000_000_000]),
            (50_176, vec![MAX_WIDTH]),
            (784, vec![1; MAX_DEPTH + 1]),
        ] {
            let err = Architecture::new(input, enc.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains("limit"), "{input} {enc:?}: {err}");
        }
        assert!(Architecture::parse_layers("2305843009213693952")
            .unwrap_err()
            .to_string()
            .contains("limit"));
        let a = Architecture::new(50_176, vec![2048, 512, 128]).unwrap();
        assert!(a.param_count() <= MAX_PARAMS);
    }
}
