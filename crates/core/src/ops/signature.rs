//! Every kernel's signature, read from kernels/*.cu at build time (build.rs,
//! through build/kernel_signatures.rs), and the check each launch passes
//! before it reaches a GPU: an argument list that drifted from the kernel's
//! parameters is an error here, never undefined behaviour on the device.
//!
//! Test-only kernels (launched by tests, never by an op family) are marked
//! in their .cu file by a `// test-only` line directly above them.

use super::{Arg, Launch};
use crate::{err, Result};

/// How a kernel parameter is passed: the kind of its `Arg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Ptr,
    I32,
    F32,
    F64,
}

impl ArgKind {
    pub fn of(arg: &Arg) -> ArgKind {
        match arg {
            Arg::Ptr(_) => ArgKind::Ptr,
            Arg::I32(_) => ArgKind::I32,
            Arg::F32(_) => ArgKind::F32,
            Arg::F64(_) => ArgKind::F64,
        }
    }
}

/// One `extern "C" __global__` kernel of kernels/.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSignature {
    pub name: &'static str,
    /// Its file in kernels/ ("gemm_tc.cu").
    pub file: &'static str,
    pub args: &'static [ArgKind],
    /// Marked `// test-only` in its file: no op family launches it.
    pub test_only: bool,
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The kernel named `name`, if kernels/ has one.
pub fn lookup(name: &str) -> Option<&'static KernelSignature> {
    KERNELS.iter().find(|k| k.name == name)
}

/// Ok when `launch` names a kernel of kernels/ and passes exactly its
/// parameters' kinds, in order.
pub fn check(launch: &Launch) -> Result<()> {
    let sig = lookup(launch.kernel)
        .ok_or_else(|| err!(Plan, "no kernel named {} in kernels/*.cu", launch.kernel))?;
    let kinds: Vec<ArgKind> = launch.args.iter().map(ArgKind::of).collect();
    if kinds.len() != sig.args.len() {
        return Err(err!(
            Plan,
            "launch of {} passes {} arguments; kernels/{} declares {} parameters {:?}",
            sig.name,
            kinds.len(),
            sig.file,
            sig.args.len(),
            sig.args
        ));
    }
    if let Some(i) = (0..kinds.len()).find(|&i| kinds[i] != sig.args[i]) {
        return Err(err!(
            Plan,
            "launch of {}: parameter {i} is {:?} in kernels/{}, launched with {:?}",
            sig.name,
            sig.args[i],
            sig.file,
            kinds[i]
        ));
    }
    Ok(())
}

/// The build script's parser, for its own tests and the README's signatures.
#[cfg(test)]
#[path = "../../build/kernel_signatures.rs"]
mod parser;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::data::{Gather, Offset, OffsetAdvance};
    use crate::ops::lamb::{lamb_launches, LambBuffers, LambTable, LambTensor};
    use crate::ops::{adam, data, gemm, lamb, loss, reduce};
    use crate::ops::{AdamStep, Bce, BiasGrad, Forward, InputGrad, Op, StepIncrement, WeightGrad};
    use crate::schedule::LrSchedule;
    use crate::{Activation, AdamConfig, GemmShape, Precision};
    use std::collections::BTreeSet;

    /// The names the op families build launches with.
    fn family_names() -> Vec<&'static str> {
        let mut v = [
            gemm::FORWARD,
            gemm::INPUT_GRAD,
            gemm::WEIGHT_GRAD,
            gemm::FORWARD_PARTIAL,
            gemm::INPUT_GRAD_PARTIAL,
        ]
        .concat();
        v.extend([
            reduce::REDUCE_SPLITS,
            reduce::SPLITK_BIAS_ACT,
            reduce::SPLITK_MASK,
            reduce::BIAS_GRAD,
            reduce::ACCUMULATE_ADD,
            loss::BCE_LOGITS,
            loss::LOSS_ACCUMULATE,
            adam::ADAM_STEP,
            adam::STEP_INCREMENT,
            data::GATHER_U8,
            data::GATHER_F32,
            data::GATHER_U8_DEV,
            data::GATHER_F32_DEV,
            data::OFFSET_ADVANCE,
            lamb::LAMB_MOMENTS,
            lamb::LAMB_TRUST_RATIO,
            lamb::LAMB_APPLY,
        ]);
        v
    }

    fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
        names.into_iter().collect()
    }

    #[test]
    fn families_name_exactly_the_kernels_that_are_not_test_only() {
        let families = set(family_names());
        assert_eq!(families.len(), family_names().len(), "a name twice");
        let kernels = set(KERNELS.iter().map(|k| k.name));
        assert_eq!(kernels.len(), KERNELS.len(), "a kernel defined twice");
        let missing: Vec<_> = families.difference(&kernels).collect();
        assert!(missing.is_empty(), "not in kernels/*.cu: {missing:?}");
        let unnamed: Vec<_> = KERNELS
            .iter()
            .filter(|k| !k.test_only && !families.contains(k.name))
            .map(|k| k.name)
            .collect();
        assert!(unnamed.is_empty(), "no family names {unnamed:?}");
        let test_only = set(KERNELS.iter().filter(|k| k.test_only).map(|k| k.name));
        assert_eq!(test_only, set(["schedule_probe", "cos_pi_probe"]));
        assert_eq!(set(crate::ops::kernel_names()), families);
    }

    /// Ops of every variant: split and unsplit products of each precision
    /// (132 SMs), split and unsplit bias gradients, the four gathers.
    fn representative_ops() -> Vec<Op> {
        let small = GemmShape::new(256, 128, 784);
        let large = GemmShape::new(65_536, 4096, 4096);
        let mut ops = Vec::new();
        for p in Precision::ALL {
            for shape in [small, large] {
                ops.push(Op::GemmFwd(Forward {
                    p,
                    x: 0x100,
                    w: 0x200,
                    b: 0x300,
                    y: 0x400,
                    work: 0x500,
                    shape,
                    act: Activation::Relu,
                }));
                ops.push(Op::GemmDx(InputGrad {
                    p,
                    dy: 0x100,
                    w: 0x200,
                    mask: 0x300,
                    dx: 0x400,
                    work: 0x500,
                    shape,
                }));
                ops.push(Op::GemmDw(WeightGrad {
                    p,
                    x: 0x100,
                    dy: 0x200,
                    dw: 0x300,
                    work: 0x400,
                    shape,
                }));
            }
        }
        for m in [256, 65_536] {
            ops.push(Op::BiasGrad(BiasGrad {
                dy: 0x100,
                db: 0x200,
                work: 0x300,
                m,
                n: 8192,
            }));
        }
        ops.push(Op::AccumulateAdd(crate::ops::reduce::AccumulateAdd {
            acc: 0x100,
            add: 0x200,
            count: 1001,
        }));
        for u8_data in [true, false] {
            for offset in [Offset::Value(7), Offset::Device(0x900)] {
                ops.push(Op::Gather(Gather {
                    u8_data,
                    data: 0x100,
                    index: 0x200,
                    offset,
                    rows: 256,
                    dim: 784,
                    out: 0x300,
                }));
            }
        }
        ops.push(Op::Bce(Bce {
            z: 0x100,
            t: 0x200,
            dz: 0x300,
            partial: 0x400,
            accum: 0x500,
            count: 1000,
            rows: 4,
            grad_scale: 0.5,
            weight: 2.0,
        }));
        ops.push(Op::StepIncrement(StepIncrement { step: 0x100 }));
        ops.push(Op::Adam(AdamStep {
            params: 0x100,
            grads: 0x200,
            m: 0x300,
            v: 0x400,
            n: 5000,
            step: 0x500,
            cfg: AdamConfig::default(),
            schedule: LrSchedule::constant(1e-3).unwrap(),
        }));
        ops.push(Op::OffsetAdvance(OffsetAdvance {
            offset: 0x100,
            rows: 256,
        }));
        ops
    }

    fn lamb_step() -> Vec<Launch> {
        let t = |offset, len, decay| LambTensor { offset, len, decay };
        let table = LambTable::new(&[t(0, 5000, true), t(5000, 30, false)], 5030).unwrap();
        let b = LambBuffers {
            params: 0x100,
            grads: 0x200,
            m: 0x300,
            v: 0x400,
            step: 0x500,
            table: 0x600,
            scratch: 0x700,
        };
        let lr = LrSchedule::constant(1e-3).unwrap().device_args();
        lamb_launches(&b, table.counts(), &AdamConfig::default(), &lr, 132).unwrap()
    }

    #[test]
    fn every_planned_launch_matches_its_kernels_signature() {
        let mut launched = BTreeSet::new();
        let mut splits = BTreeSet::new();
        for op in representative_ops() {
            // Which variants split is the plan's business; both must occur.
            let product = match op {
                Op::GemmFwd(_) => Some("fwd"),
                Op::GemmDx(_) => Some("dx"),
                Op::GemmDw(_) => Some("dw"),
                _ => None,
            };
            if let Some(product) = product {
                splits.insert((product, op.split(132).is_some()));
            }
            for l in op.launches(132).unwrap() {
                check(&l).unwrap_or_else(|e| panic!("{op:?}: {e}"));
                launched.insert(l.kernel);
            }
        }
        assert_eq!(
            splits.len(),
            6,
            "split and unsplit of each product: {splits:?}"
        );
        for l in lamb_step() {
            check(&l).unwrap();
            launched.insert(l.kernel);
        }
        // The set covers every kernel an op family can launch.
        assert_eq!(launched, set(crate::ops::kernel_names()));
    }

    #[test]
    fn a_launch_that_drifted_from_its_signature_is_refused() {
        let good = Op::OffsetAdvance(OffsetAdvance {
            offset: 0x100,
            rows: 256,
        })
        .launches(1)
        .unwrap()
        .remove(0);
        check(&good).unwrap();
        let mut extra = good.clone();
        extra.args.push(Arg::I32(1));
        let e = check(&extra).unwrap_err().to_string();
        assert!(
            e.contains("offset_advance passes 3 arguments") && e.contains("data.cu declares 2"),
            "{e}"
        );
        let mut wrong = good.clone();
        wrong.args[1] = Arg::F32(256.0);
        let e = check(&wrong).unwrap_err().to_string();
        assert!(
            e.contains("parameter 1 is I32 in kernels/data.cu, launched with F32"),
            "{e}"
        );
        let mut unknown = good;
        unknown.kernel = "offset_retreat";
        let e = check(&unknown).unwrap_err().to_string();
        assert!(e.contains("no kernel named offset_retreat"), "{e}");
        for bad in [extra, wrong, unknown] {
            assert!(matches!(check(&bad), Err(crate::Error::Plan(_))));
        }
    }

    /// kernels/README.md's contract table (file, kernel columns): every
    /// backticked kernel, with the parameter list where one is written.
    fn readme_table() -> Vec<(String, String, Option<String>)> {
        let readme = include_str!("../../../../kernels/README.md");
        let section = readme
            .split("## Contract and launch table")
            .nth(1)
            .expect("kernels/README.md has a contract table");
        let mut rows = Vec::new();
        for line in section.lines().skip_while(|l| !l.starts_with('|')) {
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let (file, kernels) = (cells[1], cells[2]);
            if file == "file" || file.starts_with("---") {
                continue;
            }
            for span in kernels.split('`').skip(1).step_by(2) {
                let (name, params) = match span.split_once('(') {
                    Some((n, p)) => (n, Some(p.trim_end_matches(')').to_string())),
                    None => (span, None),
                };
                rows.push((file.to_string(), name.to_string(), params));
            }
        }
        rows
    }

    #[test]
    fn the_readme_table_lists_exactly_the_kernels() {
        let rows = readme_table();
        let listed: Vec<(&str, &str)> = {
            let mut v: Vec<_> = rows
                .iter()
                .map(|(f, n, _)| (f.as_str(), n.as_str()))
                .collect();
            v.sort();
            v
        };
        let mut kernels: Vec<(&str, &str)> = KERNELS.iter().map(|k| (k.file, k.name)).collect();
        kernels.sort();
        assert_eq!(
            listed, kernels,
            "kernels/README.md's table against kernels/*.cu"
        );
        for (file, name, params) in &rows {
            let Some(params) = params else { continue };
            let kinds: Vec<&str> = parser::params(params)
                .unwrap_or_else(|e| panic!("README {name}: {e}"))
                .iter()
                .map(|k| k.name())
                .collect();
            let sig = lookup(name).unwrap();
            let declared: Vec<String> = sig.args.iter().map(|k| format!("{k:?}")).collect();
            assert_eq!(kinds, declared, "README signature of {name} ({file})");
        }
    }
}
