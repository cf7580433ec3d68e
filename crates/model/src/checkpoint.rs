//! Checkpoints as safetensors: each layer's kernel [in, out] and bias [out]
//! (Keras layout; a PyTorch nn.Linear weight is the kernel transposed), the
//! Adam moments as flat tensors, and the architecture, settings, step and
//! history as JSON in the header's metadata.

use crate::error::{err, fail, Context as _};
use crate::validate::{check_config, check_history, check_state, first_non_finite};
use crate::Result;
use crate::{Architecture, History, TrainConfig, TrainState};
use dae_data::write_atomically;
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "dae-checkpoint-1";

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub arch: Architecture,
    pub config: TrainConfig,
    pub state: TrainState,
    pub history: History,
    /// Where the training data came from.
    pub data: String,
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Each of the first `layer_count` layers' kernel [in, out] and bias [out].
fn layer_tensors<'a>(
    arch: &Architecture,
    params: &'a [f32],
    layer_count: usize,
) -> Result<Vec<(String, TensorView<'a>)>> {
    let mut tensors = Vec::new();
    for l in &arch.layers()[..layer_count] {
        let w = &params[l.weight_offset..l.bias_offset];
        let b = &params[l.bias_offset..l.bias_offset + l.fan_out];
        tensors.push((
            format!("{}.kernel", l.name),
            TensorView::new(Dtype::F32, vec![l.fan_in, l.fan_out], f32_bytes(w))?,
        ));
        tensors.push((
            format!("{}.bias", l.name),
            TensorView::new(Dtype::F32, vec![l.fan_out], f32_bytes(b))?,
        ));
    }
    Ok(tensors)
}

/// The encoder alone (the lab's "extract the encoder"): its layers' kernels
/// and biases, ReLU after each, as safetensors with the widths in metadata.
pub fn save_encoder(arch: &Architecture, params: &[f32], path: &Path) -> Result<()> {
    if let Some((i, v)) = first_non_finite(params) {
        fail!(
            Checkpoint,
            "{}: refusing to save an encoder with non-finite parameter {i} ({v})",
            path.display()
        );
    }
    let tensors = layer_tensors(arch, params, arch.encoder_layer_count())?;
    let mut widths = vec![arch.input_dim];
    widths.extend(&arch.encoder);
    let meta = HashMap::from([
        ("format".to_string(), "dae-encoder-1".to_string()),
        ("widths".to_string(), serde_json::to_string(&widths)?),
        (
            "activation".to_string(),
            "relu after every layer".to_string(),
        ),
        (
            "layout".to_string(),
            "kernel [in, out] (Keras); y = relu(x @ kernel + bias)".to_string(),
        ),
    ]);
    Ok(write_atomically(
        path,
        &safetensors::serialize(tensors, Some(meta))?,
    )?)
}

impl Checkpoint {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let p = &self.state.params;
        let mut tensors = layer_tensors(&self.arch, p, self.arch.layers().len())?;
        let n = p.len();
        tensors.push((
            "optimizer.m".into(),
            TensorView::new(Dtype::F32, vec![n], f32_bytes(&self.state.m))?,
        ));
        tensors.push((
            "optimizer.v".into(),
            TensorView::new(Dtype::F32, vec![n], f32_bytes(&self.state.v))?,
        ));
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            (
                "architecture".to_string(),
                serde_json::to_string(&self.arch)?,
            ),
            ("layers".to_string(), self.arch.describe()),
            ("training".to_string(), serde_json::to_string(&self.config)?),
            ("step".to_string(), self.state.step.to_string()),
            ("epoch".to_string(), self.history.epochs_done().to_string()),
            ("history".to_string(), serde_json::to_string(&self.history)?),
            ("data".to_string(), self.data.clone()),
        ]);
        Ok(safetensors::serialize(tensors, Some(meta))?)
    }

    /// Writes to a temporary file beside `path`, then renames it over
    /// `path`: a crash never leaves a torn checkpoint.
    /// Refuses non-finite state: a checkpoint is the last good state, and
    /// a NaN saved over it would lose that.
    pub fn save(&self, path: &Path) -> Result<()> {
        check_state(&self.arch, &self.state).context(format!(
            "{}: refusing to save a checkpoint of non-finite state",
            path.display()
        ))?;
        let bytes = self.to_bytes()?;
        Ok(write_atomically(path, &bytes)?)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = dae_data::read_regular(path).context("cannot read the checkpoint")?;
        Self::from_bytes(&bytes).context(format!("{}: not a valid dae checkpoint", path.display()))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)?;
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| err!(Checkpoint, "metadata lacks '{k}'"))
        };
        if get("format")? != FORMAT {
            fail!(Checkpoint, "format '{}' is not {FORMAT}", get("format")?);
        }
        let arch: Architecture =
            serde_json::from_str(get("architecture")?).context("metadata 'architecture'")?;
        let arch =
            Architecture::new(arch.input_dim, arch.encoder).context("metadata 'architecture'")?;
        let config: TrainConfig =
            serde_json::from_str(get("training")?).context("metadata 'training'")?;
        check_config(&config)?;
        let history: History =
            serde_json::from_str(get("history")?).context("metadata 'history'")?;
        let step: u64 = get("step")?.parse().context("metadata 'step'")?;
        check_history(
            &history,
            &config,
            meta.get("epoch").map(String::as_str),
            step,
        )?;
        let total = arch.param_count();
        // Parameters and two moments, f32 each: what the architecture claims
        // must be in the file before anything is reserved for it.
        if total.checked_mul(12).is_none_or(|need| need > bytes.len()) {
            fail!(
                Checkpoint,
                "metadata 'architecture' {} needs {total} parameters and their moments ({} bytes) \
                 but the file has {} bytes",
                arch.describe(),
                total.saturating_mul(12),
                bytes.len()
            );
        }
        let read = |name: &str, shape: &[usize], out: &mut Vec<f32>| -> Result<()> {
            let t = st
                .tensor(name)
                .map_err(|_| err!(Checkpoint, "missing tensor '{name}'"))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                fail!(
                    Checkpoint,
                    "tensor '{name}' is {:?} {:?}, expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                );
            }
            out.extend(
                t.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
            );
            Ok(())
        };
        let mut params = Vec::with_capacity(total);
        for l in arch.layers() {
            read(
                &format!("{}.kernel", l.name),
                &[l.fan_in, l.fan_out],
                &mut params,
            )?;
            read(&format!("{}.bias", l.name), &[l.fan_out], &mut params)?;
        }
        let (mut m, mut v) = (Vec::with_capacity(total), Vec::with_capacity(total));
        read("optimizer.m", &[total], &mut m)?;
        read("optimizer.v", &[total], &mut v)?;
        let state = TrainState { params, m, v, step };
        check_state(&arch, &state)?;
        Ok(Checkpoint {
            arch,
            config,
            state,
            history,
            data: meta.get("data").cloned().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_architecture_check() {
        let arch = Architecture::new(20, vec![7, 3]).unwrap();
        let mut state = TrainState::initialize(&arch, 3);
        state.m[5] = 0.25;
        state.v[9] = 0.5;
        state.step = 17;
        let ck = Checkpoint {
            arch,
            config: TrainConfig::lab(),
            state,
            history: History {
                loss: vec![0.5, 0.4],
                val_loss: vec![0.45, 0.41],
                lr: vec![1e-3; 4],
            },
            data: "synthetic".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.safetensors");
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);

        let enc = dir.path().join("encoder.safetensors");
        save_encoder(&ck.arch, &ck.state.params, &enc).unwrap();
        let bytes = std::fs::read(&enc).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(
            names,
            [
                "encoder_1.bias",
                "encoder_1.kernel",
                "encoder_2.bias",
                "encoder_2.kernel"
            ]
        );
        let l = &ck.arch.layers()[1];
        let k = st.tensor("encoder_2.kernel").unwrap();
        assert_eq!(k.shape(), [7, 3]);
        assert_eq!(
            k.data(),
            f32_bytes(&ck.state.params[l.weight_offset..l.bias_offset])
        );

        std::fs::write(&path, b"garbage").unwrap();
        let err = format!("{:#}", Checkpoint::load(&path).unwrap_err());
        assert!(
            err.contains("ck.safetensors") && err.contains("not a valid"),
            "{err}"
        );
    }
}
