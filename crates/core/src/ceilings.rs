//! Datasheet ceilings of the cards dae is built for: what a kernel's floor
//! (the least time its bytes and FLOPs can take) is measured against in
//! `dae check --bench`. Vendor datasheet figures for the SXM parts, dense
//! (no sparsity); `dae bench` measures the real ceilings of the card at hand.

use super::Precision;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ceilings {
    pub card: &'static str,
    pub sm_count: usize,
    /// Device memory bandwidth, GB/s.
    pub memory_gbps: f64,
    /// FP32 on the CUDA cores, TFLOP/s.
    pub fp32_tflops: f64,
    /// Tensor-core TF32 and BF16 (FP32 accumulation), TFLOP/s.
    pub tf32_tflops: f64,
    pub bf16_tflops: f64,
}

const CARDS: [Ceilings; 3] = [
    Ceilings {
        card: "H200",
        sm_count: 132,
        memory_gbps: 4800.0,
        fp32_tflops: 67.0,
        tf32_tflops: 495.0,
        bf16_tflops: 989.0,
    },
    Ceilings {
        card: "H100",
        sm_count: 132,
        memory_gbps: 3350.0,
        fp32_tflops: 67.0,
        tf32_tflops: 495.0,
        bf16_tflops: 989.0,
    },
    Ceilings {
        card: "A100",
        sm_count: 108,
        memory_gbps: 2039.0,
        fp32_tflops: 19.5,
        tf32_tflops: 156.0,
        bf16_tflops: 312.0,
    },
];

impl Ceilings {
    /// The cards known here, by name.
    pub fn known() -> [Ceilings; 3] {
        CARDS
    }

    /// The card a device name (as the driver gives it) belongs to.
    pub fn for_device(name: &str) -> Option<Ceilings> {
        CARDS.into_iter().find(|c| name.contains(c.card))
    }

    /// The least milliseconds `flops` and `bytes` can take: the slower of
    /// the arithmetic (in `p`'s pipe; None: the CUDA cores) and the memory.
    pub fn floor_ms(&self, flops: f64, bytes: f64, p: Option<Precision>) -> f64 {
        let tflops = match p {
            None | Some(Precision::Fp32) => self.fp32_tflops,
            Some(Precision::Tf32) => self.tf32_tflops,
            Some(Precision::Bf16) => self.bf16_tflops,
        };
        (flops / (tflops * 1e12)).max(bytes / (self.memory_gbps * 1e9)) * 1e3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_take_the_slower_of_memory_and_arithmetic() {
        let h200 = Ceilings::for_device("NVIDIA H200").unwrap();
        assert_eq!(h200.card, "H200");
        assert!(Ceilings::for_device("NVIDIA GeForce RTX 4090").is_none());
        // 4.8 GB at 4.8 TB/s: 1 ms, however few FLOPs.
        assert!((h200.floor_ms(1.0, 4.8e9, None) - 1.0).abs() < 1e-12);
        // 989 TFLOP in bf16: 1 s.
        assert!((h200.floor_ms(989e12, 1.0, Some(Precision::Bf16)) - 1000.0).abs() < 1e-9);
    }
}
