//! kernels/adam.cu's adam_step with the learning-rate schedule evaluated on
//! the device and AdamW's decoupled weight decay: bit for bit the CPU op
//! (crates/core/src/cpu/adam.rs with `lr` = LrSchedule::lr_at(t)), step
//! after step with the counter advanced on the device; and its copy of the
//! schedule's source is kernels/lamb.cu's, character for character.

use dae_core::cpu::adam_step;
use dae_core::ops::{Arg, Launch};
use dae_core::ops::{Op, StepIncrement};
use dae_core::rng::{Purpose, Rng};
use dae_core::schedule::{LrSchedule, ScheduleKind};
use dae_core::AdamConfig;
use dae_core::{Buffer, KernelDevice};
use dae_emu::{suite_seed, Emulator};

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn adam_with_a_schedule_and_decay_equals_the_cpu_bit_for_bit() {
    let seed = suite_seed();
    let emu = Emulator::new(132);
    let n = 4 * 1031 + 3; // float4 body and a scalar tail
    let mut rng = Rng::named(seed, Purpose::Test, "adam schedule");
    let mut draw =
        |scale: f32| -> Vec<f32> { (0..n).map(|_| scale * rng.uniform_in(-1.0, 1.0)).collect() };
    let (p0, m0) = (draw(1.0), draw(1e-3));
    let v0: Vec<f32> = draw(3e-3).iter().map(|x| x * x).collect();
    let grads: Vec<Vec<f32>> = (0..12).map(|_| draw(1e-2)).collect();
    let schedules = [
        LrSchedule::constant(1e-3).unwrap(),
        LrSchedule::new(ScheduleKind::Cosine, 3e-3, 4, 10, 0.05).unwrap(),
        LrSchedule::new(ScheduleKind::Linear, 2e-3, 0, 8, 0.0).unwrap(),
        LrSchedule::new(ScheduleKind::OneCycle, 5e-3, 0, 11, 0.01).unwrap(),
    ];
    for s in &schedules {
        for wd in [0.0f32, 0.05] {
            let base = AdamConfig {
                weight_decay: wd,
                ..AdamConfig::default()
            };
            let up = |x: &[f32]| Buffer::<_, f32>::from_host(&emu, x).unwrap();
            let (p, m, v) = (up(&p0), up(&m0), up(&v0));
            let mut g = up(&grads[0]);
            let step = Buffer::<_, i32>::from_host(&emu, &[0]).unwrap();
            let (mut cp, mut cm, mut cv) = (p0.clone(), m0.clone(), v0.clone());
            let a = s.device_args();
            for (t, gt) in (1u64..).zip(&grads) {
                g.upload(&emu, gt).unwrap();
                emu.run(&Op::StepIncrement(StepIncrement { step: step.ptr() }))
                    .unwrap();
                emu.launch(&Launch {
                    kernel: "adam_step",
                    grid: (2, 1, 1),
                    block: (256, 1, 1),
                    args: vec![
                        Arg::Ptr(p.ptr()),
                        Arg::Ptr(g.ptr()),
                        Arg::Ptr(m.ptr()),
                        Arg::Ptr(v.ptr()),
                        Arg::I32(n as i32),
                        Arg::Ptr(step.ptr()),
                        Arg::I32(a.kind),
                        Arg::F32(a.peak),
                        Arg::I32(a.warmup),
                        Arg::I32(a.total),
                        Arg::F32(a.final_fraction),
                        Arg::F32(base.beta1),
                        Arg::F32(base.beta2),
                        Arg::F32(base.eps),
                        Arg::F32(wd),
                    ],
                })
                .unwrap();
                let cfg = AdamConfig {
                    lr: s.lr_at(t as u32),
                    ..base
                };
                adam_step(&mut cp, gt, &mut cm, &mut cv, t, &cfg);
                let what = format!("seed {seed} {s:?} wd {wd} step {t}");
                assert!(
                    bits(&p.download(&emu, n).unwrap()) == bits(&cp),
                    "params: {what}"
                );
                assert!(
                    bits(&m.download(&emu, n).unwrap()) == bits(&cm),
                    "m: {what}"
                );
                assert!(
                    bits(&v.download(&emu, n).unwrap()) == bits(&cv),
                    "v: {what}"
                );
            }
            // The decay moved the parameters (and the schedule the rate).
            if wd != 0.0 {
                let mut plain = (p0.clone(), m0.clone(), v0.clone());
                for (t, gt) in (1u64..).zip(&grads) {
                    let cfg = AdamConfig {
                        lr: s.lr_at(t as u32),
                        weight_decay: 0.0,
                        ..base
                    };
                    adam_step(&mut plain.0, gt, &mut plain.1, &mut plain.2, t, &cfg);
                }
                assert!(
                    bits(&plain.0) != bits(&cp),
                    "{s:?}: weight decay had no effect"
                );
            }
        }
    }
}

/// adam.cu's copy of the schedule (the files are compiled one at a time, no
/// #include) is lamb.cu's, from its first line to the end of dae_lr_at.
#[test]
fn the_schedule_source_is_the_same_in_both_kernel_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels");
    let section = |file: &str| -> String {
        let src = std::fs::read_to_string(dir.join(file)).unwrap();
        let start = src
            .find("// 1/n! with alternating signs")
            .unwrap_or_else(|| panic!("{file}: no schedule"));
        let body = &src[start..];
        let end = body
            .find("__device__ __forceinline__ float dae_lr_at")
            .unwrap();
        let close = end + body[end..].find("\n}\n").unwrap();
        body[..close].to_string()
    };
    assert_eq!(section("adam.cu"), section("lamb.cu"));
}
