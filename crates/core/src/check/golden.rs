//! Hardware bit-goldens. The fp32 products, the column sums and Adam use
//! explicit fmaf/_rn operations in a fixed order, so a GPU running the
//! 132-SM launch plans should give the emulator's bits exactly. Their
//! emulator outputs on the default seed's inputs, for a few small shapes,
//! are committed (`crates/core/goldens/`, embedded in the binary); `dae
//! check` on a 132-SM GPU compares them bit for bit, a difference being
//! its own failure class. Excluded, with the reason:
//! - tf32 and bf16: the tensor cores' accumulation order and rounding are
//!   not specified, so the emulator only bounds them;
//! - the sigmoid epilogue and the loss: CUDA's expf/log1pf are not glibc's;
//! - the gathers: already compared exactly with the CPU's own division.

use super::CaseKey;
use crate::{err, fail, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};

/// The SM count whose launch plans the goldens were recorded with.
pub const GOLDEN_SM_COUNT: usize = 132;

/// The product shapes with goldens (M×N×K): small, and covering the fused,
/// split and ragged paths.
pub const GOLDEN_SHAPES: [&str; 4] = ["16×34×5", "31×33×1", "65×1×63", "257×131×67"];

const EMBEDDED: &[u8] = include_bytes!("../../goldens/emulator-sm132.safetensors");

/// Whether a case is bit-deterministic by construction and has a golden.
pub fn is_golden(key: &CaseKey) -> bool {
    if key.precision != "fp32" {
        return false;
    }
    let product_shape = GOLDEN_SHAPES.contains(&key.shape.as_str());
    match key.family {
        // Not the largest shape's forward outputs (270 KB for what
        // 65×1×63's split forward already covers).
        "gemm_fwd" => {
            product_shape && key.shape != GOLDEN_SHAPES[3] && !key.name.contains("sigmoid")
        }
        "gemm_dx" | "gemm_dw" => product_shape,
        "bias_grad" => GOLDEN_SHAPES
            .iter()
            .any(|s| s.rsplit_once('×').is_some_and(|(mn, _)| mn == key.shape)),
        "adam" => key.shape == "1000",
        _ => false,
    }
}

/// How a case's output compares with its golden.
#[derive(Clone, Debug, PartialEq)]
pub enum GoldenVerdict {
    Same,
    Differs {
        /// Elements whose bits differ, the first of them, and its values.
        count: usize,
        first: usize,
        got: f32,
        golden: f32,
    },
}

pub struct Goldens {
    pub seed: u64,
    pub sm_count: usize,
    outputs: HashMap<String, Vec<f32>>,
}

impl Goldens {
    /// The goldens committed with this build.
    pub fn embedded() -> Result<Goldens> {
        Goldens::parse(EMBEDDED).map_err(|e| err!(Input, "the embedded goldens: {e}"))
    }

    pub fn parse(bytes: &[u8]) -> Result<Goldens> {
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| err!(Input, "not a goldens file: {e}"))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| err!(Input, "{e}"))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let number = |key: &str| -> Result<u64> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| err!(Input, "goldens metadata lacks a number \"{key}\""))
        };
        let (seed, sm_count) = (number("seed")?, number("sm_count")? as usize);
        let mut outputs = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 || view.data().len() % 4 != 0 {
                fail!(Input, "golden {name} is not f32");
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            outputs.insert(name, values);
        }
        Ok(Goldens {
            seed,
            sm_count,
            outputs,
        })
    }

    /// A goldens file of `outputs` (case id → the first run's output).
    pub fn serialize(
        seed: u64,
        sm_count: usize,
        outputs: &[(String, Vec<f32>)],
    ) -> Result<Vec<u8>> {
        let views: Vec<(String, TensorView<'_>)> = outputs
            .iter()
            .map(|(id, v)| {
                let view = TensorView::new(Dtype::F32, vec![v.len()], bytemuck::cast_slice(v))
                    .map_err(|e| err!(Input, "golden {id}: {e}"))?;
                Ok((id.clone(), view))
            })
            .collect::<Result<_>>()?;
        let meta: HashMap<String, String> = BTreeMap::from([
            ("seed".to_string(), seed.to_string()),
            ("sm_count".to_string(), sm_count.to_string()),
            (
                "what".to_string(),
                "dae check outputs on the host emulator (crates/emu), first run of each case"
                    .to_string(),
            ),
        ])
        .into_iter()
        .collect();
        safetensors::serialize(views, Some(meta))
            .map_err(|e| err!(Input, "cannot write the goldens: {e}"))
    }

    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Whether these goldens hold for a run at `sm_count` SMs under `seed`
    /// (other plans split differently, other seeds draw other inputs).
    pub fn apply_to(&self, sm_count: usize, seed: u64) -> bool {
        self.sm_count == sm_count && self.seed == seed
    }

    /// `got` against the golden of case `id` (None: no golden).
    pub fn compare(&self, id: &str, got: &[f32]) -> Option<GoldenVerdict> {
        let golden = self.outputs.get(id)?;
        if golden.len() != got.len() {
            return Some(GoldenVerdict::Differs {
                count: got.len().max(golden.len()),
                first: got.len().min(golden.len()),
                got: f32::NAN,
                golden: f32::NAN,
            });
        }
        let differ: Vec<usize> = (0..got.len())
            .filter(|&i| got[i].to_bits() != golden[i].to_bits())
            .collect();
        Some(match differ.first() {
            None => GoldenVerdict::Same,
            Some(&first) => GoldenVerdict::Differs {
                count: differ.len(),
                first,
                got: got[first],
                golden: golden[first],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Precision;

    #[test]
    fn golden_cases_are_the_deterministic_fp32_ones() {
        let key = |family, name: &str, p, shape: &str| CaseKey::new(family, name, p, shape.into());
        assert!(is_golden(&key(
            "gemm_fwd",
            "gemm_fwd relu",
            Precision::Fp32,
            "65×1×63"
        )));
        assert!(is_golden(&key(
            "gemm_dx",
            "gemm_dx relu-mask",
            Precision::Fp32,
            "257×131×67"
        )));
        assert!(!is_golden(&key(
            "gemm_fwd",
            "gemm_fwd sigmoid",
            Precision::Fp32,
            "65×1×63"
        )));
        assert!(!is_golden(&key(
            "gemm_fwd",
            "gemm_fwd relu",
            Precision::Tf32,
            "65×1×63"
        )));
        assert!(!is_golden(&key(
            "gemm_dw",
            "gemm_dw",
            Precision::Fp32,
            "256×128×784"
        )));
        assert!(is_golden(&key(
            "bias_grad",
            "bias_grad",
            Precision::Fp32,
            "257×131"
        )));
        assert!(is_golden(&key(
            "adam",
            "adam p (t=3)",
            Precision::Fp32,
            "1000"
        )));
        assert!(!is_golden(&key(
            "bce_logits",
            "bce_logits loss",
            Precision::Fp32,
            "1000"
        )));
    }

    #[test]
    fn goldens_round_trip_and_locate_differences() {
        let bytes = Goldens::serialize(1, 132, &[("a".into(), vec![1.0, 2.0, 3.0])]).unwrap();
        let g = Goldens::parse(&bytes).unwrap();
        assert!(g.apply_to(132, 1) && !g.apply_to(108, 1) && !g.apply_to(132, 2));
        assert_eq!(g.compare("a", &[1.0, 2.0, 3.0]), Some(GoldenVerdict::Same));
        assert_eq!(g.compare("b", &[1.0]), None);
        let d = g.compare("a", &[1.0, 2.0000002, 3.5]).unwrap();
        assert_eq!(
            d,
            GoldenVerdict::Differs {
                count: 2,
                first: 1,
                got: 2.0000002,
                golden: 2.0
            }
        );
        assert!(Goldens::parse(b"nonsense").is_err());
    }
}
