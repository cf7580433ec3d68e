//! The kernel suite's bounds, swept over a thousand seeds on the host: the
//! cheap cases (small products, loss, Adam, LAMB, reductions, gathers) through
//! the very code `dae check` runs, on `HostDevice` (the CPU ops, with
//! tensor-core operand rounding). Correct ops pass every seed; each
//! deliberate mutation fails every seed, so the bounds are neither loose
//! enough to hide a real bug nor tight enough to fail a right kernel.

use dae_core::check::{groups, run_groups, CaseResult, Group, Selection};
use dae_core::ops::{Bce, Op};
use dae_core::HostDevice;
use dae_core::Result;
use std::collections::BTreeMap;

const SEEDS: u64 = 1000;

fn cheap_groups() -> Vec<Group> {
    groups().into_iter().filter(Group::is_cheap).collect()
}

/// A bug planted in one op, on top of the host ops.
#[derive(Clone, Copy, Debug)]
enum Mutant {
    /// Adam's bias correction from step t−1.
    AdamStepMinusOne,
    /// m and v swapped.
    AdamMomentsSwapped,
    /// ε dropped from √v + ε.
    AdamNoEpsilon,
    /// LAMB's bias corrections from step t−1.
    LambStepMinusOne,
    /// LAMB's weight decay dropped.
    LambNoDecay,
    /// The bias gradient's column sums skip their last row.
    ColumnSumSkipsLast,
    /// The loss sum skips its last element.
    LossSumSkipsLast,
    /// dX masked by the output buffer instead of the layer's activations.
    ReluMaskWrongBuffer,
    /// Gradient accumulation leaves the last element unadded.
    AccumulateSkipsLast,
}

impl Mutant {
    /// A host device with this bug planted.
    fn device(self) -> HostDevice {
        HostDevice::with_hook(132, Box::new(move |op, run| self.run(op, run)))
    }

    /// `op` as the mutant runs it, through the plain host execution `run`.
    fn run(self, op: &Op, run: &dyn Fn(&Op) -> Result<()>) -> Result<()> {
        let mut op = op.clone();
        match (&mut op, self) {
            (Op::Adam(a), Mutant::AdamStepMinusOne) => {
                // SAFETY: the op's step is a live host i32.
                let earlier = [unsafe { *(a.step as *const i32) } - 1];
                a.step = earlier.as_ptr() as u64;
                return run(&op);
            }
            (Op::Adam(a), Mutant::AdamMomentsSwapped) => std::mem::swap(&mut a.m, &mut a.v),
            (Op::Adam(a), Mutant::AdamNoEpsilon) => a.cfg.eps = 0.0,
            (Op::Lamb(l), Mutant::LambStepMinusOne) => {
                // SAFETY: the op's step is a live host i32.
                let earlier = [unsafe { *(l.buffers.step as *const i32) } - 1];
                l.buffers.step = earlier.as_ptr() as u64;
                return run(&op);
            }
            (Op::Lamb(l), Mutant::LambNoDecay) => l.cfg.weight_decay = 0.0,
            (Op::BiasGrad(b), Mutant::ColumnSumSkipsLast) => b.m -= 1,
            (Op::Bce(_), Mutant::LossSumSkipsLast) => return loss_skipping_last(&op, run),
            (Op::GemmDx(d), Mutant::ReluMaskWrongBuffer) if d.mask != 0 => d.mask = d.dx,
            (Op::AccumulateAdd(a), Mutant::AccumulateSkipsLast) => a.count -= 1,
            _ => {}
        }
        run(&op)
    }
}

/// Every element's gradient, but the sum of all elements but the last.
fn loss_skipping_last(op: &Op, run: &dyn Fn(&Op) -> Result<()>) -> Result<()> {
    let Op::Bce(bce) = op else {
        unreachable!("a loss op")
    };
    let mut scratch_sum = [0.0f64];
    let mut scratch_dz = vec![0.0f32; bce.count];
    let grads_only = Bce {
        accum: scratch_sum.as_mut_ptr() as u64,
        ..bce.clone()
    };
    let short_sum = Bce {
        dz: scratch_dz.as_mut_ptr() as u64,
        count: bce.count - 1,
        rows: 1,
        ..bce.clone()
    };
    run(&Op::Bce(grads_only))?;
    run(&Op::Bce(short_sum))
}

fn describe_failure(seed: u64, r: &CaseResult) -> String {
    let c = r.checked().expect("ran");
    format!(
        "seed {seed}: {} ({}) worst {:.3} of its bound {} [{}]; bits differ at {:?}; first mismatches {:?}",
        r.key.id(),
        r.path,
        c.verdict.worst,
        c.bound.describe(),
        c.bound.rule,
        c.bits_differ_at,
        &c.verdict.mismatches[..c.verdict.mismatches.len().min(3)]
    )
}

#[test]
fn correct_ops_pass_every_seed() {
    let (dev, cheap, all) = (HostDevice::new(132), cheap_groups(), Selection::default());
    // The largest share of its bound each case used, over all seeds.
    let mut worst: BTreeMap<String, f64> = BTreeMap::new();
    let mut cases = 0;
    for seed in 0..SEEDS {
        let results = run_groups(&dev, seed, &cheap, &all).unwrap();
        cases = results.len();
        for r in &results {
            assert!(r.passed(), "{}", describe_failure(seed, r));
            let w = worst
                .entry(format!("{} [{}]", r.key.name, r.key.precision))
                .or_default();
            *w = w.max(r.worst().unwrap());
        }
    }
    assert!(cases >= 60, "only {cases} cheap cases");
    println!("{cases} cases × {SEEDS} seeds passed; the largest share of its bound each used:");
    for (name, w) in worst {
        println!("  {name:<48} {w:.3}");
    }
}

#[test]
fn every_mutant_fails_every_seed() {
    let (cheap, all) = (cheap_groups(), Selection::default());
    for mutant in [
        Mutant::AdamStepMinusOne,
        Mutant::AdamMomentsSwapped,
        Mutant::AdamNoEpsilon,
        Mutant::LambStepMinusOne,
        Mutant::LambNoDecay,
        Mutant::ColumnSumSkipsLast,
        Mutant::LossSumSkipsLast,
        Mutant::ReluMaskWrongBuffer,
        Mutant::AccumulateSkipsLast,
    ] {
        let dev = mutant.device();
        let mut caught_by: BTreeMap<String, u64> = BTreeMap::new();
        for seed in 0..SEEDS {
            let results = run_groups(&dev, seed, &cheap, &all).unwrap();
            let failed: Vec<&CaseResult> = results.iter().filter(|r| r.failed()).collect();
            assert!(
                !failed.is_empty(),
                "{mutant:?} passed every case with seed {seed}"
            );
            for r in failed {
                *caught_by.entry(r.key.name.clone()).or_default() += 1;
            }
        }
        println!("{mutant:?}: failed all {SEEDS} seeds; failing cases (seeds): {caught_by:?}");
    }
}
