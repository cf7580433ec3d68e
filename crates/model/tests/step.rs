//! The one training step, as every device runs it, against a float64
//! reference written independently here from `dae_core::reference`'s ops:
//! an epoch of mini-batches (a partial last one included, rows gathered
//! through a shuffled order) gives the parameters, moments, step count and
//! loss the reference gives. This checks the step's wiring (which buffer
//! feeds which product, the ReLU masks, the per-layer gradient buffers, offsets into
//! the flat parameters, the device-held batch offset and step counter),
//! with each optimizer: Adam, AdamW (`reference::adam` with its weight
//! decay) and LAMB (`reference_lamb::lamb`, a trust ratio per weight matrix
//! and per bias, the biases not decayed).

use dae_core::ops::lamb::LambTensor;
use dae_core::reference::{self, relative_error};
use dae_core::reference_lamb;
use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::{Activation, AdamConfig};
use dae_data::{Dataset, Pixels};
use dae_model::{Architecture, Backend, CpuBackend, Optimizer, Silent, TrainState};

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// One reference step on `x` [rows, dim]: f64 inside every op, f32 between
/// them (as the buffers hold); returns the batch's mean loss.
fn reference_step(
    arch: &Architecture,
    s: &mut TrainState,
    x: &[f32],
    rows: usize,
    adam: &AdamConfig,
    optimizer: Optimizer,
) -> f64 {
    let layers = arch.layers();
    let p = s.params.clone();
    let mut acts = vec![x.to_vec()];
    for l in &layers {
        let w = &p[l.weight_offset..l.bias_offset];
        let b = &p[l.bias_offset..l.bias_offset + l.fan_out];
        let act = match l.activation {
            Activation::Sigmoid => Activation::Identity, // fused into the loss
            a => a,
        };
        let y = reference::dense_forward(acts.last().unwrap(), w, Some(b), l.shape(rows), act);
        acts.push(f32s(&y));
    }
    let count = rows * arch.input_dim;
    let (loss, dz) = reference::bce_logits(acts.last().unwrap(), x, 1.0 / count as f64);
    let mut dz = f32s(&dz);
    let mut grads = vec![0.0f32; p.len()];
    for (i, l) in layers.iter().enumerate().rev() {
        let shape = l.shape(rows);
        let dw = reference::dense_backward_weight(&acts[i], &dz, shape);
        grads[l.weight_offset..l.bias_offset].copy_from_slice(&f32s(&dw));
        let db = reference::column_sums(&dz, rows, l.fan_out);
        grads[l.bias_offset..l.bias_offset + l.fan_out].copy_from_slice(&f32s(&db));
        if i > 0 {
            let w = &p[l.weight_offset..l.bias_offset];
            dz = f32s(&reference::dense_backward_input(
                &dz,
                w,
                Some(&acts[i]),
                shape,
            ));
        }
    }
    s.step += 1;
    let (np, nm, nv) = match optimizer {
        Optimizer::Adam | Optimizer::AdamW => {
            reference::adam(&s.params, &grads, &s.m, &s.v, s.step, adam)
        }
        Optimizer::Lamb => {
            // Each weight matrix decayed, each bias not.
            let tensors: Vec<LambTensor> = layers
                .iter()
                .flat_map(|l| {
                    [
                        (l.weight_offset, l.bias_offset - l.weight_offset, true),
                        (l.bias_offset, l.fan_out, false),
                    ]
                })
                .map(|(offset, len, decay)| LambTensor { offset, len, decay })
                .collect();
            let (p, m, v, _) =
                reference_lamb::lamb(&s.params, &grads, &s.m, &s.v, s.step, adam, &tensors);
            (p, m, v)
        }
    };
    (s.params, s.m, s.v) = (f32s(&np), f32s(&nm), f32s(&nv));
    loss / count as f64
}

#[test]
fn an_epoch_of_the_step_matches_a_float64_reference() {
    an_epoch_matches(Optimizer::Adam, AdamConfig::default());
}

#[test]
fn an_adamw_epoch_matches_a_float64_reference() {
    // Large enough that the decay moves the weights far past the tolerance.
    let adam = AdamConfig {
        weight_decay: 0.5,
        ..AdamConfig::default()
    };
    an_epoch_matches(Optimizer::AdamW, adam);
}

#[test]
fn a_lamb_epoch_matches_a_float64_reference() {
    let adam = AdamConfig {
        weight_decay: 0.01,
        ..AdamConfig::default()
    };
    an_epoch_matches(Optimizer::Lamb, adam);
}

fn an_epoch_matches(optimizer: Optimizer, adam: AdamConfig) {
    for (case, (encoder, rows, batch)) in [
        (vec![7usize, 3], 50usize, 16usize),
        (vec![12, 5, 2], 37, 37),
        (vec![4], 9, 4),
    ]
    .into_iter()
    .enumerate()
    {
        let dim = 20;
        let arch = Architecture::new(dim, encoder).unwrap();
        let seed = 5;
        let mut rng = Rng::new(seed, Purpose::Test, case as u64);
        let pixels: Vec<u8> = (0..rows * dim).map(|_| rng.below(256) as u8).collect();
        let data = Dataset {
            name: "t".into(),
            rows,
            dim,
            pixels: Pixels::U8(pixels.clone().into()),
            labels: None,
            image_shape: None,
        };
        let state = TrainState::initialize(&arch, 9);
        let perm = epoch_permutation(3, 0, rows);

        let mut cpu = CpuBackend::new(&arch, adam, batch, state.clone())
            .and_then(|b| b.with_optimizer(optimizer))
            .unwrap();
        let loss = cpu.train_epoch(&data, &perm, batch, &mut Silent).unwrap();
        let got = cpu.state().unwrap();

        let mut want = state.clone();
        let (mut weighted, mut done) = (0.0, 0);
        for chunk in perm.chunks(batch) {
            let x: Vec<f32> = chunk
                .iter()
                .flat_map(|&r| &pixels[r as usize * dim..(r as usize + 1) * dim])
                .map(|&v| v as f32 / 255.0)
                .collect();
            let batch_loss = reference_step(&arch, &mut want, &x, chunk.len(), &adam, optimizer);
            weighted += batch_loss * chunk.len() as f64;
            done += chunk.len();
        }
        let want_loss = weighted / done as f64;
        let what = format!(
            "{optimizer} case {case} (seed {seed}): {}, batch {batch}",
            arch.describe()
        );
        assert_eq!(got.step, want.step, "{what}: the step counter");
        assert!(
            (loss - want_loss).abs() <= 1e-5 * want_loss,
            "{what}: loss {loss} vs {want_loss}"
        );
        // Normwise: Adam's first steps are ≈ lr·sign(g), so a gradient near
        // zero whose sign the f32 rounding flips moves one element by 2·lr;
        // over all parameters that stays far below 1e-4.
        let as64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        for (name, g, w) in [
            ("parameters", &got.params, &want.params),
            ("first moments", &got.m, &want.m),
            ("second moments", &got.v, &want.v),
        ] {
            let e = relative_error(g, &as64(w));
            assert!(e < 1e-4, "{what}: {name} relative error {e}");
        }
    }
}

#[test]
fn inference_outputs_are_the_forward_pass() {
    let (dim, rows) = (20, 23);
    let arch = Architecture::new(dim, vec![9, 4]).unwrap();
    let mut rng = Rng::new(6, Purpose::Test, 0);
    let pixels: Vec<f32> = (0..rows * dim).map(|_| rng.uniform()).collect();
    let data = Dataset {
        name: "t".into(),
        rows,
        dim,
        pixels: Pixels::F32(pixels.clone().into()),
        labels: None,
        image_shape: None,
    };
    let state = TrainState::initialize(&arch, 4);
    let mut cpu = CpuBackend::new(&arch, AdamConfig::default(), 8, state.clone()).unwrap();
    let wanted: Vec<u32> = vec![5, 0, 22, 7, 7, 13];
    let n = wanted.len();
    let codes = cpu.encode(&data, &wanted).unwrap();
    let recon = cpu.reconstruct(&data, &wanted).unwrap();
    let x: Vec<f32> = wanted
        .iter()
        .flat_map(|&r| pixels[r as usize * dim..(r as usize + 1) * dim].to_vec())
        .collect();
    let mut a = x;
    let layers = arch.layers();
    for (i, l) in layers.iter().enumerate() {
        let p = &state.params;
        let y = reference::dense_forward(
            &a,
            &p[l.weight_offset..l.bias_offset],
            Some(&p[l.bias_offset..l.bias_offset + l.fan_out]),
            l.shape(n),
            l.activation,
        );
        a = f32s(&y);
        if i + 1 == arch.encoder_layer_count() {
            assert!(relative_error(&codes, &y) < 1e-5, "codes");
        }
    }
    let last: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    assert!(relative_error(&recon, &last) < 1e-5, "reconstructions");
}
