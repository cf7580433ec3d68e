//! Everything training mutates: parameters, Adam moments and the step count.

use crate::Architecture;
use dae_core::rng::{Purpose, Rng};

#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    pub params: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    /// Optimizer steps taken so far.
    pub step: u64,
}

impl TrainState {
    /// Glorot-uniform weights (limit √(6/(fan_in+fan_out)), Keras' default)
    /// and zero biases; each layer draws from its own seeded stream.
    pub fn initialize(arch: &Architecture, seed: u64) -> Self {
        let total = arch.param_count();
        let mut params = vec![0.0f32; total];
        for (i, layer) in arch.layers().iter().enumerate() {
            let limit = (6.0 / (layer.fan_in + layer.fan_out) as f64).sqrt() as f32;
            let mut rng = Rng::new(seed, Purpose::Init, i as u64);
            let w = &mut params[layer.weight_offset..layer.bias_offset];
            for v in w {
                *v = rng.uniform_in(-limit, limit);
            }
        }
        TrainState {
            params,
            m: vec![0.0; total],
            v: vec![0.0; total],
            step: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_init_is_seeded_and_bounded() {
        let a = Architecture::new(784, vec![128, 64, 32]).unwrap();
        let s = TrainState::initialize(&a, 1);
        assert_eq!(s, TrainState::initialize(&a, 1));
        assert_ne!(s.params, TrainState::initialize(&a, 2).params);
        for l in a.layers() {
            let limit = (6.0 / (l.fan_in + l.fan_out) as f32).sqrt();
            let w = &s.params[l.weight_offset..l.bias_offset];
            assert!(w.iter().all(|v| v.abs() <= limit));
            let var = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
            // Uniform(-L, L) has variance L²/3.
            assert!(
                (var / (limit * limit / 3.0) - 1.0).abs() < 0.1,
                "{}",
                l.name
            );
            assert!(s.params[l.bias_offset..l.bias_offset + l.fan_out]
                .iter()
                .all(|&b| b == 0.0));
        }
    }
}
