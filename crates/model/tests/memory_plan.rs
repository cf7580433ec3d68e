//! The memory plan is what the CPU backend allocates (issue 10): after an
//! epoch and a validation pass, the backend's buffers (parameters,
//! gradients, moments, activations) are exactly the plan's bytes.

use dae_core::rng::{Purpose, Rng};
use dae_data::testing::flat_dataset;
use dae_data::{Dataset, Pixels};
use dae_model::{Architecture, Backend, CpuBackend, MemoryPlan, Silent, TrainConfig, TrainState};

fn data(rows: usize, dim: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed, Purpose::Test, rows as u64);
    let pixels: Vec<u8> = (0..rows * dim).map(|_| rng.next_u32() as u8).collect();
    flat_dataset("d", rows, dim, Pixels::U8(pixels.into()))
}

#[test]
fn the_cpu_plan_equals_its_buffers() {
    // (input, encoder, batch, train rows, validation rows)
    let cases: [(usize, &[usize], usize, usize, usize); 5] = [
        (784, &[128, 64, 32], 256, 2000, 500),
        (784, &[128, 64, 32], 1, 40, 16),
        (784, &[128, 64, 32], 65_536, 3000, 2000),
        (784, &[128, 64, 32], 64, 100, 5000),
        (12_544, &[2048, 512, 128], 1, 2, 3),
    ];
    for (input, encoder, batch, train_rows, val_rows) in cases {
        let arch = Architecture::new(input, encoder.to_vec()).unwrap();
        let cfg = TrainConfig {
            batch,
            ..TrainConfig::lab()
        };
        let (train, val) = (data(train_rows, input, 1), data(val_rows, input, 2));
        let rows = CpuBackend::activation_rows(batch, train_rows, val_rows);
        let plan = MemoryPlan::new(&arch, rows, train.bytes() + val.bytes()).unwrap();
        let mut backend =
            CpuBackend::new(&arch, cfg.adam(), TrainState::initialize(&arch, 1)).unwrap();
        let perm: Vec<u32> = (0..train_rows as u32).collect();
        backend
            .train_epoch(&train, &perm, batch, &mut Silent)
            .unwrap();
        backend.evaluate(&val, true).unwrap();
        backend.reconstruct(&val, &[0]).unwrap();
        assert_eq!(
            plan.params + plan.optimizer + plan.activations,
            backend.buffer_bytes(),
            "{} batch {batch}, {train_rows} train / {val_rows} validation rows: {}",
            arch.describe(),
            plan.describe()
        );
    }
}
