//! The memory plan is what the device backend allocates, on the emulator:
//! the backend runs its real kernels there (an epoch, a validation pass, a
//! reconstruction), and the live bytes afterwards equal the plan's total
//! (issue 10's item 6 also holds on crates/model's counting stand-in).

use dae_core::Precision;
use dae_data::testing::flat_dataset;
use dae_data::{Dataset, Pixels};
use dae_emu::Emulator;
use dae_model::{
    Architecture, Backend, DeviceBackend, MemoryPlan, Optimizer, Silent, TrainConfig, TrainState,
};

fn data(rows: usize, dim: usize, salt: u8) -> Dataset {
    let pixels: Vec<u8> = (0..rows * dim)
        .map(|i| (i * 31 + salt as usize) as u8)
        .collect();
    flat_dataset("d", rows, dim, Pixels::U8(pixels.into()))
}

/// (input, encoder, batch, SMs, train rows, validation rows)
type Case = (usize, &'static [usize], usize, usize, usize, usize);

#[test]
fn the_device_plan_equals_the_emulators_live_bytes() {
    // (input, encoder, batch, SMs, train rows, validation rows): the lab at
    // batch 1, 256 (split-K at 132 SMs; none at 2) and 65,536, and a
    // 224×224 input with 2048,512,128.
    let cases: [Case; 5] = [
        (784, &[128, 64, 32], 256, 132, 300, 100),
        (784, &[128, 64, 32], 256, 2, 300, 100),
        (784, &[128, 64, 32], 1, 132, 3, 2),
        (784, &[128, 64, 32], 65_536, 132, 40, 10),
        (50_176, &[2048, 512, 128], 1, 132, 1, 1),
    ];
    for (input, encoder, batch, sms, train_rows, val_rows) in cases {
        let arch = Architecture::new(input, encoder.to_vec()).unwrap();
        let cfg = TrainConfig {
            batch,
            ..TrainConfig::lab()
        };
        let (train, val) = (data(train_rows, input, 1), data(val_rows, input, 2));
        let data_bytes = train.bytes() + val.bytes();
        let plan =
            MemoryPlan::device(&arch, Optimizer::Adam, batch, sms, train_rows, data_bytes).unwrap();
        let emu = Emulator::new(sms);
        let state = TrainState::initialize(&arch, 1);
        let mut backend =
            DeviceBackend::on(emu, &arch, cfg.adam(), Precision::Fp32, batch, state).unwrap();
        let perm: Vec<u32> = (0..train_rows as u32).collect();
        backend
            .train_epoch(&train, &perm, batch, &mut Silent)
            .unwrap();
        backend.evaluate(&val, true).unwrap();
        backend.reconstruct(&val, &[0]).unwrap();
        assert_eq!(
            backend.device().live_bytes(),
            plan.total(),
            "{} batch {batch}, {sms} SMs, {train_rows}/{val_rows} rows: {}",
            arch.describe(),
            plan.describe()
        );
    }
}
