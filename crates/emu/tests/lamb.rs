//! LAMB's launch plan (crates/core/src/cuda/lamb_plan.rs) running
//! kernels/lamb.cu on the emulator: against the float64 reference under its
//! stated per-element bound (dae_core::reference_lamb::check_lamb), m and v
//! bit for bit the CPU op's, and the same bits twice and under the plans of
//! 2 and 132 SMs (the grids differ; the sums' order does not).

use dae_core::cpu::lamb_step;
use dae_core::ops::lamb::LambTensor;
use dae_core::ops::lamb::{lamb_launches, LambBuffers, LambTable, LAMB_CHUNK};
use dae_core::reference_lamb::check_lamb;
use dae_core::rng::{Purpose, Rng};
use dae_core::schedule::{LrSchedule, ScheduleKind};
use dae_core::AdamConfig;
use dae_core::{Buffer, KernelDevice};
use dae_emu::{suite_seed, Emulator};

/// Tensors of 1, 3, 1000 and 4097 elements, gaps between some, one all-zero
/// weight tensor (‖w‖ = 0), one with zero gradients and moments and no decay
/// (‖u‖ = 0), one of more than 256 chunks (lamb_trust_ratio's threads each
/// sum several partials).
fn layout() -> (Vec<LambTensor>, usize) {
    let lens = [
        (1, true),
        (3, false),
        (1000, true),
        (4097, true),
        (64, true),
        (50, false),
        (257 * LAMB_CHUNK + 5, true),
    ];
    let mut tensors = Vec::new();
    let mut at = 0;
    for (i, &(len, decay)) in lens.iter().enumerate() {
        at += i % 2; // a gap before every other tensor: left alone
        tensors.push(LambTensor {
            offset: at,
            len,
            decay,
        });
        at += len;
    }
    (tensors, at + 3)
}

const ZERO_W: usize = 4;
const ZERO_U: usize = 5;

fn inputs(seed: u64, tensors: &[LambTensor], n: usize) -> [Vec<f32>; 4] {
    let mut rng = Rng::named(seed, Purpose::Test, "lamb inputs");
    let mut draw = |scale: f32, square: bool| -> Vec<f32> {
        (0..n)
            .map(|_| {
                let x = rng.uniform_in(-1.0, 1.0);
                scale * if square { x * x } else { x }
            })
            .collect()
    };
    let (mut p, mut g, mut m) = (draw(1.0, false), draw(1e-2, false), draw(1e-3, false));
    let v = draw(1e-5, true);
    let range = |k: usize| tensors[k].offset..tensors[k].offset + tensors[k].len;
    p[range(ZERO_W)].fill(0.0);
    g[range(ZERO_U)].fill(0.0);
    m[range(ZERO_U)].fill(0.0);
    [p, g, m, v]
}

/// One step on the emulator: (params, grads = u, m, v).
fn run(
    emu: &Emulator,
    inp: &[Vec<f32>; 4],
    t: u64,
    cfg: &AdamConfig,
    schedule: &LrSchedule,
    tensors: &[LambTensor],
) -> [Vec<f32>; 4] {
    let n = inp[0].len();
    let table = LambTable::new(tensors, n).unwrap();
    let up = |x: &[f32]| Buffer::<_, f32>::from_host(emu, x).unwrap();
    let (p, g, m, v) = (up(&inp[0]), up(&inp[1]), up(&inp[2]), up(&inp[3]));
    let words = Buffer::<_, i32>::from_host(emu, &table.words).unwrap();
    let step = Buffer::<_, i32>::from_host(emu, &[t as i32]).unwrap();
    // Poisoned: a partial or scale never written is NaN in the result.
    let scratch = Buffer::<_, f64>::from_host(emu, &vec![f64::NAN; table.scratch_len()]).unwrap();
    let b = LambBuffers {
        params: p.ptr(),
        grads: g.ptr(),
        m: m.ptr(),
        v: v.ptr(),
        step: step.ptr(),
        table: words.ptr(),
        scratch: scratch.ptr(),
    };
    let launches = lamb_launches(
        &b,
        table.counts(),
        cfg,
        &schedule.device_args(),
        emu.sm_count(),
    )
    .unwrap();
    for l in &launches {
        emu.launch(l)
            .unwrap_or_else(|e| panic!("{}: {e}", l.kernel));
    }
    [p, g, m, v].map(|x| x.download(emu, n).unwrap())
}

#[test]
fn lamb_on_the_emulator_matches_the_reference_and_is_deterministic() {
    let seed = suite_seed();
    let (tensors, n) = layout();
    // A cosine schedule, evaluated on the device from the step counter.
    let schedule = LrSchedule::new(ScheduleKind::Cosine, 4e-3, 3, 20, 0.1).unwrap();
    for (t, wd) in [(1u64, 0.01f32), (9, 0.0), (25, 0.1)] {
        let cfg = AdamConfig {
            lr: schedule.lr_at(t as u32),
            eps: 1e-6,
            weight_decay: wd,
            ..AdamConfig::default()
        };
        let inp = inputs(seed ^ t, &tensors, n);
        let out = run(&Emulator::new(132), &inp, t, &cfg, &schedule, &tensors);
        let [p, u, m, v] = &out;
        let worst = check_lamb([p, m, v], &inp, t, &cfg, &tensors)
            .unwrap_or_else(|e| panic!("seed {seed} t {t} wd {wd}: {e}"));
        println!("seed {seed} t {t} wd {wd}: worst p error / bound {worst:.3}");
        // ‖u‖ = 0: r = 1 and w stays bit for bit.
        let z = tensors[ZERO_U];
        assert_eq!(
            p[z.offset..z.offset + z.len],
            inp[0][z.offset..z.offset + z.len]
        );

        // The CPU op: the same elementwise arithmetic (m, v, u bit for bit).
        let [mut cp, mut cu, mut cm, mut cv] = inp.clone();
        lamb_step(&mut cp, &mut cu, &mut cm, &mut cv, t, &cfg, &tensors).unwrap();
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert!(
            bits(m) == bits(&cm) && bits(v) == bits(&cv),
            "seed {seed} t {t}: m, v differ from the CPU's"
        );
        assert!(
            bits(u) == bits(&cu),
            "seed {seed} t {t}: u differs from the CPU's"
        );

        // Twice, and with the grids of 2 SMs: the same bits.
        for sm in [132, 2] {
            let again = run(&Emulator::new(sm), &inp, t, &cfg, &schedule, &tensors);
            for (k, (a, b)) in out.iter().zip(&again).enumerate() {
                assert!(
                    bits(a) == bits(b),
                    "seed {seed} t {t}: output {k} differs on a rerun with {sm} SMs"
                );
            }
        }
    }
}
