//! The whole network's analytic gradient (CPU, f32) against central finite
//! differences of a float64 forward pass built from the reference ops.

use dae_core::reference;
use dae_core::rng::{Purpose, Rng};
use dae_data::testing::flat_dataset;
use dae_data::Pixels;
use dae_model::{Architecture, Backend, CpuBackend, TrainState};

/// Mean BCE of the autoencoder with parameters `p`, all in float64.
fn loss64(arch: &Architecture, p: &[f64], x: &[f32], rows: usize) -> f64 {
    let mut a: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let layers = arch.layers();
    for l in &layers {
        let mut z = vec![0.0; rows * l.fan_out];
        for i in 0..rows {
            for j in 0..l.fan_out {
                let mut acc = p[l.bias_offset + j];
                for k in 0..l.fan_in {
                    acc += a[i * l.fan_in + k] * p[l.weight_offset + k * l.fan_out + j];
                }
                z[i * l.fan_out + j] = acc;
            }
        }
        if l.activation == dae_core::Activation::Relu {
            z.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        a = z;
    }
    // `a` now holds the logits; the target is the input.
    a.iter()
        .zip(x)
        .map(|(&z, &t)| z.max(0.0) - z * t as f64 + (-z.abs()).exp().ln_1p())
        .sum::<f64>()
        / (rows * arch.input_dim) as f64
}

#[test]
fn whole_network_gradient_matches_finite_differences() {
    for (case, (input, encoder, rows)) in [(13usize, vec![7usize, 5, 3], 9usize), (10, vec![4], 5)]
        .into_iter()
        .enumerate()
    {
        let arch = Architecture::new(input, encoder).unwrap();
        let mut rng = Rng::new(11, Purpose::Test, case as u64);
        let x: Vec<f32> = (0..rows * input).map(|_| rng.uniform()).collect();
        let data = flat_dataset("fd", rows, input, Pixels::F32(x.clone().into()));
        let mut state = TrainState::initialize(&arch, 5);
        // Non-zero biases so every term of the gradient is exercised.
        for l in arch.layers() {
            for b in &mut state.params[l.bias_offset..l.bias_offset + l.fan_out] {
                *b = rng.uniform_in(-0.1, 0.3);
            }
        }
        let mut cpu = CpuBackend::new(&arch, Default::default(), rows, state.clone()).unwrap();
        let all: Vec<u32> = (0..rows as u32).collect();
        let (loss, grads) = cpu.loss_and_gradients(&data, &all).unwrap();

        let p64: Vec<f64> = state.params.iter().map(|&v| v as f64).collect();
        let l64 = loss64(&arch, &p64, &x, rows);
        assert!((loss - l64).abs() < 1e-6, "loss {loss} vs {l64}");

        let h = 1e-6;
        let fd: Vec<f64> = (0..p64.len())
            .map(|i| {
                let mut p = p64.clone();
                p[i] += h;
                let up = loss64(&arch, &p, &x, rows);
                p[i] -= 2.0 * h;
                let down = loss64(&arch, &p, &x, rows);
                (up - down) / (2.0 * h)
            })
            .collect();
        let err = reference::relative_error(&grads, &fd);
        // f32 backward against f64 central differences: ~1e-6 expected.
        assert!(err < 1e-4, "case {case}: relative gradient error {err}");
        // A wrong gradient in any single layer must show: compare per layer.
        for l in arch.layers() {
            let span = l.weight_offset..l.bias_offset + l.fan_out;
            let e = reference::relative_error(&grads[span.clone()], &fd[span]);
            assert!(e < 1e-3, "case {case} layer {}: {e}", l.name);
        }
    }
}
