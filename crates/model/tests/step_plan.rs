//! The GPU's train-step op list, run on the CPU through host addresses,
//! against the CPU backend: same parameters, moments, step and loss, bit for
//! bit. This checks the CUDA backend's wiring (buffers, offsets into the
//! flat parameters, ReLU masks, gradient ping-pong, the device-held batch
//! offset and step counter) on a machine without a GPU.

use dae_core::cuda::{Offset, Precision};
use dae_core::rng::{epoch_permutation, Purpose, Rng};
use dae_core::AdamConfig;
use dae_data::{Dataset, Pixels};
use dae_model::step_plan::{BatchSource, StepBuffers, StepPlan};
use dae_model::{Architecture, Backend, CpuBackend, Silent, TrainState};

fn addr<T>(v: &mut [T]) -> u64 {
    v.as_mut_ptr() as u64
}

#[test]
fn gpu_op_list_on_the_host_matches_the_cpu_backend() {
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
        let layers = arch.layers();
        let mut rng = Rng::new(5, Purpose::Test, case as u64);
        let mut pixels: Vec<u8> = (0..rows * dim).map(|_| rng.below(256) as u8).collect();
        let data = Dataset {
            name: "t".into(),
            rows,
            dim,
            pixels: Pixels::U8(pixels.clone().into()),
            labels: None,
            image_shape: None,
        };
        let state = TrainState::initialize(&arch, 9);
        let adam = AdamConfig::default();
        let mut perm = epoch_permutation(3, 0, rows);

        // The CPU backend's epoch.
        let mut cpu = CpuBackend::new(&arch, adam, state.clone()).unwrap();
        let cpu_loss = cpu.train_epoch(&data, &perm, batch, &mut Silent).unwrap();
        let want = cpu.state().unwrap();

        // The same epoch as the GPU would run it, op by op, on host memory.
        let cap = batch;
        let mut input = vec![f32::NAN; cap * dim];
        let mut outputs: Vec<Vec<f32>> = layers
            .iter()
            .map(|l| vec![f32::NAN; cap * l.fan_out])
            .collect();
        let mut delta = [
            vec![f32::NAN; cap * arch.max_width()],
            vec![f32::NAN; cap * arch.max_width()],
        ];
        let (mut params, mut m, mut v) = (state.params.clone(), state.m.clone(), state.v.clone());
        let mut grads = vec![f32::NAN; params.len()];
        let (mut step, mut offset, mut loss_sum) = ([0i32], [0i32], [0.0f64]);
        let mut partial = vec![0.0f32; 1024];
        let bufs = StepBuffers {
            input: addr(&mut input),
            outputs: outputs.iter_mut().map(|o| addr(o)).collect(),
            delta: [addr(&mut delta[0]), addr(&mut delta[1])],
            params: addr(&mut params),
            grads: addr(&mut grads),
            m: addr(&mut m),
            v: addr(&mut v),
            step: addr(&mut step),
            loss_sum: addr(&mut loss_sum),
            loss_partial: addr(&mut partial),
            work: 0,
        };
        let source = BatchSource {
            u8_data: true,
            data: addr(&mut pixels),
            index: addr(&mut perm),
            offset: Offset::Device(addr(&mut offset)),
        };
        let plan = StepPlan {
            layers: &layers,
            precision: Precision::Fp32,
            adam,
        };
        let sizes = std::iter::repeat_n(batch, rows / batch)
            .chain((rows % batch > 0).then_some(rows % batch));
        for step_rows in sizes {
            for op in plan.train_step(&bufs, &source, step_rows, true) {
                // SAFETY: every address points into the vectors above, sized
                // for `cap` rows; none of them is borrowed meanwhile.
                unsafe { op.op.execute_on_host() };
            }
        }
        assert_eq!(
            offset[0] as usize, rows,
            "case {case}: the batch offset walks the permutation"
        );
        assert_eq!(step[0] as u64, want.step, "case {case}: the step counter");
        let bits = |a: &[f32]| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&params), bits(&want.params), "case {case}: parameters");
        assert_eq!(bits(&m), bits(&want.m), "case {case}: first moments");
        assert_eq!(bits(&v), bits(&want.v), "case {case}: second moments");
        let gpu_loss = loss_sum[0] / (rows * dim) as f64;
        assert!(
            (gpu_loss - cpu_loss).abs() <= 1e-12 * cpu_loss,
            "case {case}: loss {gpu_loss} vs {cpu_loss}"
        );
    }
}

#[test]
fn gpu_inference_ops_on_the_host_match_the_cpu_backend() {
    let (dim, rows) = (20, 23);
    let arch = Architecture::new(dim, vec![9, 4]).unwrap();
    let layers = arch.layers();
    let mut rng = Rng::new(6, Purpose::Test, 0);
    let mut pixels: Vec<f32> = (0..rows * dim).map(|_| rng.uniform()).collect();
    let data = Dataset {
        name: "t".into(),
        rows,
        dim,
        pixels: Pixels::F32(pixels.clone().into()),
        labels: None,
        image_shape: None,
    };
    let state = TrainState::initialize(&arch, 4);
    let mut cpu = CpuBackend::new(&arch, AdamConfig::default(), state.clone()).unwrap();
    let mut wanted: Vec<u32> = vec![5, 0, 22, 7, 7, 13];
    let n = wanted.len();
    let codes = cpu.encode(&data, &wanted).unwrap();
    let recon = cpu.reconstruct(&data, &wanted).unwrap();

    let mut input = vec![f32::NAN; n * dim];
    let mut outputs: Vec<Vec<f32>> = layers
        .iter()
        .map(|l| vec![f32::NAN; n * l.fan_out])
        .collect();
    let mut params = state.params.clone();
    let bufs = StepBuffers {
        input: addr(&mut input),
        outputs: outputs.iter_mut().map(|o| addr(o)).collect(),
        delta: [0, 0],
        params: addr(&mut params),
        grads: 0,
        m: 0,
        v: 0,
        step: 0,
        loss_sum: 0,
        loss_partial: 0,
        work: 0,
    };
    let source = BatchSource {
        u8_data: false,
        data: addr(&mut pixels),
        index: addr(&mut wanted),
        offset: Offset::Value(0),
    };
    let plan = StepPlan {
        layers: &layers,
        precision: Precision::Fp32,
        adam: AdamConfig::default(),
    };
    // The gather of a training step, then the forward pass of inference.
    let gather = plan.train_step(&bufs, &source, n, false).remove(0);
    let run = |last: dae_core::Activation, count: usize| {
        // SAFETY: addresses point into the vectors above, sized for n rows.
        unsafe {
            gather.op.execute_on_host();
            for op in plan.forward(&bufs, n, count, last) {
                op.op.execute_on_host();
            }
        }
    };
    run(dae_core::Activation::Identity, arch.encoder_layer_count());
    assert_eq!(outputs[arch.encoder_layer_count() - 1], codes, "codes");
    run(dae_core::Activation::Sigmoid, layers.len());
    assert_eq!(outputs[layers.len() - 1], recon, "reconstructions");
}
