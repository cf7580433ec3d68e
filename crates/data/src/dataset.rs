use std::sync::Arc;

/// Pixel storage: u8 (0–255, scaled by 1/255 when gathered) or f32 in [0,1].
/// Immutable and shared: a clone is the same pixels, and while anything
/// holds them their address names their contents (the device backend keys its
/// uploaded copies by it).
#[derive(Clone, Debug)]
pub enum Pixels {
    U8(Arc<[u8]>),
    F32(Arc<[f32]>),
}

impl Pixels {
    /// The address of the first value: the same for clones, different for
    /// any other live pixels.
    pub fn address(&self) -> usize {
        match self {
            Pixels::U8(p) => p.as_ptr() as usize,
            Pixels::F32(p) => p.as_ptr() as usize,
        }
    }
}

/// `rows` samples of `dim` values each, with optional integer labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub rows: usize,
    pub dim: usize,
    pub pixels: Pixels,
    pub labels: Option<Vec<u32>>,
    /// (height, width) when the samples are images.
    pub image_shape: Option<(usize, usize)>,
}

impl Dataset {
    /// Copies the given rows, scaled to [0,1], into `out` [rows.len(), dim].
    /// A u8 pixel becomes `p as f32 / 255.0` (the GPU gather does the same).
    pub fn gather(&self, rows: &[u32], out: &mut [f32]) {
        let pixels = match &self.pixels {
            Pixels::U8(p) => dae_core::cpu::Pixels::U8(p),
            Pixels::F32(p) => dae_core::cpu::Pixels::F32(p),
        };
        dae_core::cpu::gather(pixels, rows, self.dim, out);
    }

    /// The rows at `indices`, as a new dataset.
    pub fn select(&self, indices: &[usize], name: &str) -> Dataset {
        let dim = self.dim;
        let pixels = match &self.pixels {
            Pixels::U8(p) => Pixels::U8(
                indices
                    .iter()
                    .flat_map(|&i| &p[i * dim..(i + 1) * dim])
                    .copied()
                    .collect(),
            ),
            Pixels::F32(p) => Pixels::F32(
                indices
                    .iter()
                    .flat_map(|&i| &p[i * dim..(i + 1) * dim])
                    .copied()
                    .collect(),
            ),
        };
        Dataset {
            name: name.to_string(),
            rows: indices.len(),
            dim,
            pixels,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i]).collect()),
            image_shape: self.image_shape,
        }
    }

    /// The first `n` rows (all of them when n ≥ rows).
    pub fn head(&self, n: usize) -> Dataset {
        let n = n.min(self.rows);
        self.select(&(0..n).collect::<Vec<_>>(), &self.name)
    }

    /// Bytes of host memory the pixels take.
    pub fn bytes(&self) -> usize {
        match &self.pixels {
            Pixels::U8(p) => p.len(),
            Pixels::F32(p) => p.len() * 4,
        }
    }

    pub fn label(&self, row: usize) -> Option<u32> {
        self.labels.as_ref().map(|l| l[row])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The device backend's upload cache relies on this: clones share the
    /// address, any other pixels (a copy with the same values included)
    /// have their own.
    #[test]
    fn pixel_addresses_name_the_storage() {
        let d = Dataset {
            name: "t".into(),
            rows: 2,
            dim: 2,
            pixels: Pixels::U8(vec![1, 2, 3, 4].into()),
            labels: None,
            image_shape: None,
        };
        let clone = d.clone();
        assert_eq!(clone.pixels.address(), d.pixels.address());
        let copy = d.head(2);
        assert_ne!(copy.pixels.address(), d.pixels.address());
    }

    #[test]
    fn gather_scales_and_orders_rows() {
        let d = Dataset {
            name: "t".into(),
            rows: 3,
            dim: 2,
            pixels: Pixels::U8(vec![0, 255, 51, 102, 1, 2].into()),
            labels: Some(vec![7, 8, 9]),
            image_shape: None,
        };
        let mut out = vec![f32::NAN; 4];
        d.gather(&[2, 0], &mut out);
        assert_eq!(out, [1.0 / 255.0, 2.0 / 255.0, 0.0, 1.0]);
        let s = d.select(&[1], "s");
        assert_eq!(s.labels, Some(vec![8]));
        let mut out = vec![f32::NAN; 2];
        s.gather(&[0], &mut out);
        assert_eq!(out, [0.2, 0.4]);
    }
}
