//! The lab model's training as the CUDA backend builds it (the same op
//! list, the same split-K scratch sizing, the launch plans of a chosen SM
//! count, the device-held batch offset and step counter), run by the kernels
//! themselves on the emulator and compared with the CPU backend under
//! `dae check`'s model tolerances, in every precision.

use dae_core::cuda::{Buffer, KernelDevice, Offset, Precision, LOSS_BLOCKS};
use dae_core::rng::epoch_permutation;
use dae_data::{Dataset, Pixels};
use dae_emu::Emulator;
use dae_model::gpu_check::{
    compare_step, lab_step_setup, model_tolerance, step_outcome, update_tolerance, StepOutcome,
};
use dae_model::step_plan::{work_len, BatchSource, StepBuffers, StepPlan};
use dae_model::{Architecture, Backend, CpuBackend, StepObserver, TrainState};

type Buf<'a, T> = Buffer<'a, Emulator, T>;

/// The CUDA backend's training buffers in emulated device memory, every
/// activation, gradient and scratch buffer poisoned with NaN.
struct EmulatedTraining<'e> {
    emu: &'e Emulator,
    plan: StepPlan<'e>,
    bufs: StepBuffers,
    source: BatchSource,
    _held: Vec<Buf<'e, f32>>,
    _data: (Buf<'e, u8>, Buf<'e, u32>),
    params: Buf<'e, f32>,
    grads: Buf<'e, f32>,
    m: Buf<'e, f32>,
    v: Buf<'e, f32>,
    step: Buf<'e, i32>,
    offset: Buf<'e, i32>,
    loss_sum: Buf<'e, f64>,
}

impl<'e> EmulatedTraining<'e> {
    fn new(
        emu: &'e Emulator,
        plan: StepPlan<'e>,
        state: &TrainState,
        data: &Dataset,
        rows: &[u32],
        capacity: usize,
    ) -> Self {
        let Pixels::U8(pixels) = &data.pixels else {
            panic!("the lab data is u8")
        };
        let nan = |len: usize| Buf::<f32>::from_host(emu, &vec![f32::NAN; len]).unwrap();
        let widest = plan
            .layers
            .iter()
            .map(|l| l.fan_out.max(l.fan_in))
            .max()
            .unwrap();
        let input = nan(capacity * data.dim);
        let outputs: Vec<Buf<f32>> = plan
            .layers
            .iter()
            .map(|l| nan(capacity * l.fan_out))
            .collect();
        let delta = [nan(capacity * widest), nan(capacity * widest)];
        let partial = nan(LOSS_BLOCKS);
        let work = nan(work_len(plan.layers, capacity, emu.sm_count()));
        let params = Buf::from_host(emu, &state.params).unwrap();
        let grads = nan(state.params.len());
        let m = Buf::from_host(emu, &state.m).unwrap();
        let v = Buf::from_host(emu, &state.v).unwrap();
        let step = Buf::<i32>::from_host(emu, &[state.step as i32]).unwrap();
        let offset = Buf::<i32>::zeros(emu, 1).unwrap();
        let loss_sum = Buf::<f64>::zeros(emu, 1).unwrap();
        let data_d = Buf::<u8>::from_host(emu, pixels).unwrap();
        let index = Buf::<u32>::from_host(emu, rows).unwrap();
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
        let mut held = vec![input, partial, work];
        held.extend(outputs);
        held.extend(delta);
        EmulatedTraining {
            emu,
            plan,
            bufs,
            source,
            _held: held,
            _data: (data_d, index),
            params,
            grads,
            m,
            v,
            step,
            offset,
            loss_sum,
        }
    }

    /// One train step on the next `rows` rows of the index.
    fn step(&self, rows: usize) {
        for op in self.plan.train_step(&self.bufs, &self.source, rows, true) {
            self.emu
                .run(&op.op)
                .unwrap_or_else(|e| panic!("{} ({}): {e:#}", op.name, self.plan.precision.name()));
        }
    }

    fn state(&self) -> TrainState {
        let n = self.params.len();
        TrainState {
            params: self.params.download(n).unwrap(),
            m: self.m.download(n).unwrap(),
            v: self.v.download(n).unwrap(),
            step: self.step.download(1).unwrap()[0] as u64,
        }
    }
}

fn plan(arch_layers: &[dae_model::Layer], p: Precision) -> StepPlan<'_> {
    StepPlan {
        layers: arch_layers,
        precision: p,
        adam: dae_core::AdamConfig::default(),
    }
}

fn lab_test_data() -> Dataset {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    dae_data::load(&dir, None).unwrap().test.head(2_000)
}

#[test]
fn lab_train_step_on_the_emulator_matches_the_cpu_backend() {
    let data = lab_test_data();
    let mut failed = Vec::new();
    // 132 SMs (an H100): at batch 256 the forward and input-gradient
    // products split over k, one 32-wide tile per split; 2 SMs: they do not,
    // and loop over the whole reduction. 97: a ragged last batch.
    for (sm, batch) in [(132, 256), (132, 97), (2, 256)] {
        let emu = Emulator::new(sm);
        let (arch, state, adam, rows) = lab_step_setup(&data, batch, 3).unwrap();
        let layers = arch.layers();
        let mut cpu = CpuBackend::new(&arch, adam, state.clone()).unwrap();
        let want = step_outcome(&mut cpu, &data, &rows).unwrap();
        for p in Precision::ALL {
            let t = EmulatedTraining::new(&emu, plan(&layers, p), &state, &data, &rows, batch);
            t.step(batch);
            assert_eq!(
                t.offset.download(1).unwrap()[0] as usize,
                batch,
                "batch offset"
            );
            let got = StepOutcome {
                loss: t.loss_sum.download(1).unwrap()[0] / (batch * data.dim) as f64,
                grads: t.grads.download(state.params.len()).unwrap(),
                after: t.state(),
            };
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

struct Silent;
impl StepObserver for Silent {
    fn on_step(&mut self, _: usize, _: usize, _: Option<f64>) {}
}

/// A short epoch as the CUDA backend replays it: the same full-batch op list
/// again and again (the device-held offset walks the permutation, the
/// device-held step counter drives Adam), then the ragged last batch.
#[test]
fn lab_epoch_on_the_emulator_matches_the_cpu_backend() {
    let data = lab_test_data().head(300);
    let arch = Architecture::new(data.dim, vec![128, 64, 32]).unwrap();
    let layers = arch.layers();
    let state = TrainState::initialize(&arch, 11);
    let perm = epoch_permutation(11, 0, data.rows);
    let batch = 128;
    let mut cpu = CpuBackend::new(&arch, Default::default(), state.clone()).unwrap();
    let cpu_loss = cpu.train_epoch(&data, &perm, batch, &mut Silent).unwrap();
    let want = cpu.state().unwrap();
    let emu = Emulator::new(132);
    for p in Precision::ALL {
        let t = EmulatedTraining::new(&emu, plan(&layers, p), &state, &data, &perm, batch);
        for rows in [batch, batch, data.rows % batch] {
            t.step(rows);
        }
        let got = t.state();
        assert_eq!(t.offset.download(1).unwrap()[0] as usize, data.rows);
        assert_eq!(got.step, want.step, "{}: step counter", p.name());
        let loss = t.loss_sum.download(1).unwrap()[0] / (data.rows * data.dim) as f64;
        let tol = model_tolerance(p);
        assert!(
            (loss - cpu_loss).abs() <= tol * cpu_loss,
            "{}: epoch loss {loss} vs {cpu_loss}",
            p.name()
        );
        // The epoch's change of every parameter (the parameters themselves
        // would hide it behind their initial values).
        let moved = |s: &TrainState| -> Vec<f64> {
            s.params
                .iter()
                .zip(&state.params)
                .map(|(a, b)| (a - b) as f64)
                .collect()
        };
        let got_moved: Vec<f32> = moved(&got).iter().map(|&x| x as f32).collect();
        let rel = dae_core::reference::relative_error(&got_moved, &moved(&want));
        println!(
            "{}: epoch loss {loss:.6} vs {cpu_loss:.6}; parameter change rel {rel:.2e}",
            p.name()
        );
        assert!(
            rel <= update_tolerance(p),
            "{}: the epoch's parameter change, rel {rel:.2e}",
            p.name()
        );
    }
}
