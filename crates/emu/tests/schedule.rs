//! The learning-rate schedule as the kernels evaluate it (kernels/lamb.cu
//! `dae_lr_at`, `dae_cos_pi`, run by the test probes `schedule_probe` and
//! `cos_pi_probe`) equals crates/core/src/schedule.rs bit for bit: both use
//! only correctly rounded f64 operations in the same order.

use dae_core::ops::{Arg, Launch};
use dae_core::rng::{Purpose, Rng};
use dae_core::schedule::{cos_pi, LrSchedule, ScheduleKind};
use dae_core::Buffer;
use dae_emu::{suite_seed, Emulator};

fn probe(emu: &Emulator, s: &LrSchedule, steps: usize) -> Vec<f32> {
    let out = Buffer::<_, f32>::from_host(emu, &vec![f32::NAN; steps]).unwrap();
    let a = s.device_args();
    emu.launch(&Launch {
        kernel: "schedule_probe",
        grid: (3, 1, 1), // grid-stride: fewer blocks than steps / 256
        block: (256, 1, 1),
        args: vec![
            Arg::Ptr(out.ptr()),
            Arg::I32(steps as i32),
            Arg::I32(a.kind),
            Arg::F32(a.peak),
            Arg::I32(a.warmup),
            Arg::I32(a.total),
            Arg::F32(a.final_fraction),
        ],
    })
    .unwrap();
    out.download(emu, steps).unwrap()
}

#[test]
fn device_schedule_equals_the_rust_schedule_bit_for_bit() {
    let emu = Emulator::new(132);
    let seed = suite_seed();
    let mut rng = Rng::named(seed, Purpose::Test, "lr schedule");
    let mut cases = Vec::new();
    for kind in ScheduleKind::ALL {
        for (warmup, total) in [
            (0u32, 1u32),
            (0, 1000),
            (1, 7),
            (100, 1000),
            (37, 2500),
            (500, 500),
        ] {
            let peak = 1e-4 + rng.uniform_in(0.0, 1.0) * 1e-2;
            let f = [0.0, 1.0, rng.uniform_in(0.0, 1.0)][cases.len() % 3];
            cases.push(LrSchedule::new(kind, peak, warmup, total, f).unwrap());
        }
    }
    cases.push(LrSchedule::constant(1e-3).unwrap());
    for s in &cases {
        let steps = s.total_steps as usize + 300; // past the end: held at f·peak
        let got = probe(&emu, s, steps);
        for (i, &lr) in got.iter().enumerate() {
            let want = s.lr_at(i as u32 + 1);
            assert_eq!(
                lr.to_bits(),
                want.to_bits(),
                "seed {seed} {s:?} step {}: device {lr:e}, Rust {want:e}",
                i + 1
            );
        }
    }
}

#[test]
fn device_cos_pi_equals_the_rust_one_bit_for_bit() {
    let emu = Emulator::new(132);
    let seed = suite_seed();
    let mut rng = Rng::named(seed, Purpose::Test, "cos_pi");
    let mut p: Vec<f64> = (0..=4096).map(|i| i as f64 / 4096.0).collect();
    for b in [0.25f64, 0.5, 0.75, 1.0] {
        p.push(f64::from_bits(b.to_bits() - 1));
        if b < 1.0 {
            p.push(f64::from_bits(b.to_bits() + 1));
        }
    }
    // Uniform f64 in [0, 1) with all 53 bits.
    p.extend((0..10_000).map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64));
    let n = p.len();
    let input = Buffer::<_, f64>::from_host(&emu, &p).unwrap();
    let out = Buffer::<_, f64>::from_host(&emu, &vec![f64::NAN; n]).unwrap();
    emu.launch(&Launch {
        kernel: "cos_pi_probe",
        grid: (7, 1, 1),
        block: (256, 1, 1),
        args: vec![
            Arg::Ptr(input.ptr()),
            Arg::Ptr(out.ptr()),
            Arg::I32(n as i32),
        ],
    })
    .unwrap();
    for (i, (&x, &c)) in p.iter().zip(&out.download(&emu, n).unwrap()).enumerate() {
        assert_eq!(
            c.to_bits(),
            cos_pi(x).to_bits(),
            "seed {seed} p[{i}] = {x:e}: device {c:e}, Rust {:e}",
            cos_pi(x)
        );
    }
}
