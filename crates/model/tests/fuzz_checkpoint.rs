//! Fuzz target for checkpoints (issue 10): safetensors framing, tensor
//! entries (dtype, shape, offsets) and dae's metadata (architecture,
//! settings, history, step) of a valid checkpoint mutated, plus random
//! bytes; loading must fail cleanly or succeed with finite state, never
//! panic or allocate beyond the limit.

use dae_data::testing::fuzz::{self, Mutator};
use dae_model::{Architecture, Checkpoint, History, TrainConfig, TrainState};
use serde_json::{json, Value};

#[global_allocator]
static ALLOC: fuzz::Capped = fuzz::Capped;

fn valid() -> Vec<u8> {
    let arch = Architecture::new(6, vec![3, 2]).unwrap();
    let mut state = TrainState::initialize(&arch, 3);
    state.step = 4;
    let ck = Checkpoint {
        arch,
        config: TrainConfig {
            epochs: 3,
            ..TrainConfig::lab()
        },
        state,
        history: History {
            loss: vec![0.7, 0.6],
            val_loss: vec![0.71, 0.65],
            lr: vec![],
        },
        data: "synthetic".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    ck.save(&path).unwrap();
    std::fs::read(&path).unwrap()
}

fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let mut text = serde_json::to_vec(header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// A JSON number (possibly huge, negative or fractional) or another type.
fn any_value(m: &mut Mutator) -> Value {
    match m.below(8) {
        0 => json!(-((m.number() >> 1) as i64)),
        1 => json!(m.number() as f64 * 1e300),
        2 => json!("NaN"),
        3 => Value::Null,
        4 => json!([m.number()]),
        _ => json!(m.number()),
    }
}

/// Mutates one tensor entry: dtype, a shape entry or an offset.
fn mutate_tensor(m: &mut Mutator, header: &mut Value) {
    let names: Vec<String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    let t = &mut header[&names[m.below(names.len())]];
    match m.below(3) {
        0 => {
            let dtypes = ["F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "X"];
            t["dtype"] = json!(dtypes[m.below(dtypes.len())]);
        }
        1 => {
            let len = t["shape"].as_array().map_or(0, Vec::len);
            if len == 0 || m.chance(4) {
                t["shape"] = json!([m.number(), m.number()]);
            } else {
                t["shape"][m.below(len)] = json!(m.number());
            }
        }
        _ => t["data_offsets"][m.below(2)] = json!(m.number()),
    }
}

/// Mutates one of dae's metadata entries (all JSON text or numbers).
fn mutate_metadata(m: &mut Mutator, header: &mut Value) {
    let meta = &mut header["__metadata__"];
    match m.below(6) {
        0 => {
            let enc: Vec<u64> = (0..1 + m.below(3)).map(|_| m.number()).collect();
            let arch =
                json!({"input_dim": if m.chance(2) { 6 } else { m.number() }, "encoder": enc});
            meta["architecture"] = json!(arch.to_string());
        }
        1 => {
            let mut t: Value = serde_json::from_str(meta["training"].as_str().unwrap()).unwrap();
            let fields = [
                "epochs",
                "batch",
                "seed",
                "lr",
                "beta1",
                "beta2",
                "epsilon",
                "precision",
            ];
            t[fields[m.below(fields.len())]] = any_value(m);
            meta["training"] = json!(t.to_string());
        }
        2 => {
            let n = m.below(5);
            let k = m.below(5);
            let h = json!({"loss": vec![0.5; n], "val_loss": vec![0.5; k]});
            meta["history"] = json!(h.to_string());
        }
        3 => meta["step"] = json!(m.number().to_string()),
        4 => meta["epoch"] = json!(m.number().to_string()),
        _ => meta["format"] = json!(["dae-checkpoint-1", "dae-checkpoint-2", ""][m.below(3)]),
    }
}

#[test]
fn fuzz_checkpoint() {
    let seed = valid();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    fuzz::run(
        "checkpoint",
        5,
        fuzz::cases(1500),
        |m| {
            let (mut header, mut data) = split(&seed);
            match m.below(4) {
                0 => mutate_tensor(m, &mut header),
                1 => mutate_metadata(m, &mut header),
                2 => {
                    // Non-finite or huge values in a tensor's bytes.
                    let at = 4 * m.below(data.len() / 4);
                    let v = [f32::NAN, f32::INFINITY, -f32::INFINITY, f32::MAX, -1.0][m.below(5)];
                    data[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {}
            }
            let mut bytes = join(&header, &data);
            if m.chance(3) {
                m.mutate_bytes(&mut bytes);
            }
            bytes
        },
        |bytes| {
            std::fs::write(&path, bytes).unwrap();
            let ck = Checkpoint::load(&path)?;
            // What loads is finite and consistent.
            assert!(ck.state.params.iter().all(|v| v.is_finite()));
            assert_eq!(ck.state.params.len(), ck.arch.param_count());
            assert_eq!(ck.history.loss.len(), ck.history.val_loss.len());
            Ok::<_, dae_model::Error>(ck)
        },
    );
}
