//! The lab model's train step as the CUDA backend builds it (the same op
//! list, the same split-K scratch sizing, the split plans of an H100's 132
//! SMs), run by the kernels themselves on the emulator and compared with the
//! CPU backend under `dae check`'s model tolerances: loss, every gradient,
//! the Adam update and both moments, in every precision.

use dae_core::cuda::{Buffer, KernelDevice, Offset, Precision, LOSS_BLOCKS};
use dae_data::{Dataset, Pixels};
use dae_emu::Emulator;
use dae_model::gpu_check::{compare_step, lab_step_setup, step_outcome, StepOutcome};
use dae_model::step_plan::{work_len, BatchSource, StepBuffers, StepPlan};
use dae_model::{Architecture, CpuBackend, TrainState};

type Buf<'a, T> = Buffer<'a, Emulator, T>;

/// One step of the op list on the emulator, every output poisoned with NaN.
fn emulated_step(
    emu: &Emulator,
    arch: &Architecture,
    p: Precision,
    state: &TrainState,
    data: &Dataset,
    rows: &[u32],
) -> StepOutcome {
    let Pixels::U8(pixels) = &data.pixels else {
        panic!("the lab data is u8")
    };
    let (batch, dim) = (rows.len(), data.dim);
    let layers = arch.layers();
    let nan = |len: usize| Buf::<f32>::from_host(emu, &vec![f32::NAN; len]).unwrap();
    let input = nan(batch * dim);
    let outputs: Vec<Buf<f32>> = layers.iter().map(|l| nan(batch * l.fan_out)).collect();
    let delta = [nan(batch * arch.max_width()), nan(batch * arch.max_width())];
    let params = Buf::from_host(emu, &state.params).unwrap();
    let grads = nan(state.params.len());
    let m = Buf::from_host(emu, &state.m).unwrap();
    let v = Buf::from_host(emu, &state.v).unwrap();
    let step = Buf::<i32>::from_host(emu, &[state.step as i32]).unwrap();
    let loss_sum = Buf::<f64>::zeros(emu, 1).unwrap();
    let partial = nan(LOSS_BLOCKS);
    let work = nan(work_len(&layers, batch, emu.sm_count()));
    let data_d = Buf::<u8>::from_host(emu, pixels).unwrap();
    let index = Buf::<u32>::from_host(emu, rows).unwrap();
    let offset = Buf::<i32>::zeros(emu, 1).unwrap();
    let bufs = StepBuffers {
        input: input.ptr(),
        outputs: outputs.iter().map(|o| o.ptr()).collect(),
        delta: [delta[0].ptr(), delta[1].ptr()],
        params: params.ptr(),
        grads: grads.ptr(),
        m: m.ptr(),
        v: v.ptr(),
        step: step.ptr(),
        loss_sum: loss_sum.ptr(),
        loss_partial: partial.ptr(),
        work: work.ptr(),
    };
    let source = BatchSource {
        u8_data: true,
        data: data_d.ptr(),
        index: index.ptr(),
        offset: Offset::Device(offset.ptr()),
    };
    let plan = StepPlan {
        layers: &layers,
        precision: p,
        adam: dae_core::AdamConfig::default(),
    };
    for op in plan.train_step(&bufs, &source, batch, true) {
        emu.run(&op.op)
            .unwrap_or_else(|e| panic!("{} ({}): {e:#}", op.name, p.name()));
    }
    let n = state.params.len();
    assert_eq!(
        offset.download(1).unwrap()[0] as usize,
        batch,
        "batch offset"
    );
    StepOutcome {
        loss: loss_sum.download(1).unwrap()[0] / (batch * dim) as f64,
        grads: grads.download(n).unwrap(),
        after: TrainState {
            params: params.download(n).unwrap(),
            m: m.download(n).unwrap(),
            v: v.download(n).unwrap(),
            step: step.download(1).unwrap()[0] as u64,
        },
    }
}

#[test]
fn lab_train_step_on_the_emulator_matches_the_cpu_backend() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    let data = dae_data::load(&dir, None).unwrap().test.head(2_000);
    let mut failed = Vec::new();
    // 132 SMs (an H100): at batch 256 the forward and input-gradient
    // products split over k, one 32-wide tile per split; 2 SMs: they do not,
    // and loop over the whole reduction. 97: a ragged last batch.
    for (sm, batch) in [(132, 256), (132, 97), (2, 256)] {
        let emu = Emulator::new(sm);
        let (arch, state, adam, rows) = lab_step_setup(&data, batch, 3).unwrap();
        let mut cpu = CpuBackend::new(&arch, adam, state.clone()).unwrap();
        let want = step_outcome(&mut cpu, &data, &rows).unwrap();
        for p in Precision::ALL {
            let got = emulated_step(&emu, &arch, p, &state, &data, &rows);
            assert_eq!(got.after.step, 1, "step counter");
            let shape = format!("{batch} rows, {}, {sm} SMs", arch.describe());
            let cases = compare_step(&arch, p, &shape, &state, &want, &got);
            for c in &cases {
                println!(
                    "{:<32} {:<5} {:>9.2e} {:>8.1e}",
                    c.kernel, c.precision, c.rel_error, c.tolerance
                );
            }
            failed.extend(cases.into_iter().filter(|c| !c.passed()));
        }
    }
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
}
