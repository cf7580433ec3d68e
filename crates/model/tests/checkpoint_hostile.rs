//! Checkpoints from elsewhere (issue 10): non-finite tensors, settings Adam
//! cannot run with and inconsistent histories are refused on load, each
//! error naming the file and the field; non-finite state is never saved.

use dae_model::{Architecture, Checkpoint, History, TrainConfig, TrainState};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn checkpoint() -> Checkpoint {
    let arch = Architecture::new(6, vec![3, 2]).unwrap();
    let state = TrainState::initialize(&arch, 7);
    Checkpoint {
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
    }
}

fn saved(dir: &Path) -> PathBuf {
    let path = dir.join("checkpoint.safetensors");
    let mut ck = checkpoint();
    ck.state.step = 4;
    ck.save(&path).unwrap();
    path
}

/// (header JSON, the bytes after it).
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

fn load_err(path: &Path) -> String {
    match Checkpoint::load(path) {
        Ok(_) => panic!("{} loaded but should fail", path.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn assert_mentions(err: &str, needles: &[&str]) {
    for n in needles {
        assert!(err.contains(n), "error does not mention {n:?}: {err}");
    }
}

/// Writes `value` as element `index` of tensor `name` in the saved file.
fn poke(path: &Path, name: &str, index: usize, value: f32) {
    let (header, mut data) = split(&std::fs::read(path).unwrap());
    let start = header[name]["data_offsets"][0].as_u64().unwrap() as usize + 4 * index;
    data[start..start + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(path, join(&header, &data)).unwrap();
}

fn set_metadata(path: &Path, key: &str, value: &str) {
    let (mut header, data) = split(&std::fs::read(path).unwrap());
    header["__metadata__"][key] = Value::String(value.into());
    std::fs::write(path, join(&header, &data)).unwrap();
}

#[test]
fn the_valid_checkpoint_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    assert_eq!(Checkpoint::load(&path).unwrap().state.step, 4);
}

#[test]
fn non_finite_tensors_are_refused_by_name() {
    for (tensor, index, value) in [
        ("encoder_1.kernel", 5, f32::NAN),
        ("encoder_2.bias", 1, f32::INFINITY),
        ("decoder_2.kernel", 0, f32::NEG_INFINITY),
        ("optimizer.m", 9, f32::NAN),
        ("optimizer.v", 3, f32::INFINITY),
        ("optimizer.v", 2, -1.0),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        poke(&path, tensor, index, value);
        let err = load_err(&path);
        assert_mentions(&err, &["checkpoint.safetensors", tensor]);
    }
}

#[test]
fn bad_settings_and_histories_are_refused_by_field() {
    let lab = serde_json::to_value(TrainConfig {
        epochs: 3,
        ..TrainConfig::lab()
    })
    .unwrap();
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "training",
            set(&lab, "lr", Value::from(-1.0)),
            &["'training'", "lr"],
        ),
        ("training", set(&lab, "lr", Value::Null), &["'training'"]),
        ("training", set(&lab, "beta2", Value::from(1.5)), &["beta2"]),
        (
            "training",
            set(&lab, "epsilon", Value::from(0.0)),
            &["epsilon"],
        ),
        ("training", set(&lab, "batch", Value::from(0)), &["batch"]),
        (
            "training",
            set(&lab, "weight_decay", Value::from(-0.5)),
            &["weight_decay"],
        ),
        (
            "training",
            set(&lab, "optimizer", Value::from("sgd")),
            &["sgd"],
        ),
        (
            "training",
            set(&lab, "accumulate", Value::from(0)),
            &["accumulate"],
        ),
        (
            "training",
            set(&lab, "precision", Value::from("fp8")),
            &["fp8"],
        ),
        (
            "training",
            set(&lab, "final_lr", Value::from(1.5)),
            &["final_lr 1.5", "[0, 1]"],
        ),
        (
            "training",
            set(&lab, "target_val_loss", Value::from(-0.1)),
            &["target_val_loss -0.1"],
        ),
        (
            "training",
            set(&lab, "warmup", serde_json::json!({"epochs": -2.0})),
            &["warmup epochs -2"],
        ),
        (
            "training",
            set(&lab, "schedule", Value::from("triangle")),
            &["triangle"],
        ),
        (
            "history",
            r#"{"loss":[0.7,0.6],"val_loss":[0.7,0.6],"lr":[0.001,null]}"#.into(),
            &["'history'"],
        ),
        (
            "history",
            r#"{"loss":[0.7,0.6],"val_loss":[0.7]}"#.into(),
            &["'history'", "2 losses but 1"],
        ),
        (
            "history",
            r#"{"loss":[0.7,0.6,0.5,0.4],"val_loss":[0.7,0.6,0.5,0.4]}"#.into(),
            &["'history'", "4 epochs"],
        ),
        ("epoch", "7".into(), &["'epoch'"]),
        ("step", "1".into(), &["'step'"]),
        ("step", "-1".into(), &["'step'"]),
        (
            "architecture",
            r#"{"input_dim":6}"#.into(),
            &["'architecture'"],
        ),
        (
            "architecture",
            r#"{"input_dim":6,"encoder":[2000000000]}"#.into(),
            &["'architecture'", "limit"],
        ),
        (
            "architecture",
            r#"{"input_dim":1000000,"encoder":[10000]}"#.into(),
            &["'architecture'", "parameters", "limit"],
        ),
        // Within the limits, but far more than the file holds: refused
        // before anything is reserved for it.
        (
            "architecture",
            r#"{"input_dim":6,"encoder":[16000000]}"#.into(),
            &["'architecture'", "but the file has"],
        ),
        (
            "architecture",
            r#"{"input_dim":6,"encoder":[3,3]}"#.into(),
            &["tensor"],
        ),
        ("format", "dae-checkpoint-0".into(), &["format"]),
    ];
    for (key, value, needles) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        set_metadata(&path, key, &value);
        let err = load_err(&path);
        eprintln!("{key}={value}: {err}");
        assert_mentions(&err, &["checkpoint.safetensors"]);
        assert_mentions(&err, needles);
        // The size named is the file's own.
        if err.contains("but the file has") {
            let size = std::fs::metadata(&path).unwrap().len();
            assert_mentions(&err, &[&format!("but the file has {size} bytes")]);
        }
    }
}

fn set(base: &Value, key: &str, v: Value) -> String {
    let mut c = base.clone();
    c[key] = v;
    c.to_string()
}

#[test]
fn a_history_with_nan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    // JSON has no NaN; serde writes null for it, which is not a number.
    set_metadata(
        &path,
        "history",
        r#"{"loss":[0.7,null],"val_loss":[0.7,0.6]}"#,
    );
    assert_mentions(&load_err(&path), &["'history'"]);
    set_metadata(
        &path,
        "history",
        r#"{"loss":[0.7,1e999],"val_loss":[0.7,0.6]}"#,
    );
    assert_mentions(&load_err(&path), &["'history'"]);
}

#[test]
fn non_finite_state_is_never_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved(dir.path());
    let before = std::fs::read(&path).unwrap();
    for field in 0..3 {
        let mut ck = checkpoint();
        match field {
            0 => ck.state.params[4] = f32::NAN,
            1 => ck.state.m[0] = f32::INFINITY,
            _ => ck.state.v[1] = f32::NAN,
        }
        let err = format!("{:#}", ck.save(&path).unwrap_err());
        assert_mentions(&err, &["checkpoint.safetensors", "non-finite"]);
        // The last good checkpoint is untouched, and no temp file is left.
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
    let ck = checkpoint();
    let mut params = ck.state.params.clone();
    params[0] = f32::NAN;
    let enc = dir.path().join("encoder.safetensors");
    assert!(dae_model::checkpoint::save_encoder(&ck.arch, &params, &enc).is_err());
    assert!(!enc.exists());
}

/// Inputs that found bugs (the fuzz target's saved inputs), kept as
/// regression tests: each must be refused, naming the file.
#[test]
fn corpus_inputs_are_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let err = load_err(&path);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_mentions(&err, &[&name]);
        eprintln!("{name}: {err}");
        seen += 1;
    }
    assert!(seen >= 1, "the corpus at {} is missing", dir.display());
}

#[cfg(unix)]
#[test]
fn a_checkpoint_that_is_a_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert_mentions(
        &load_err(&path),
        &["checkpoint.safetensors", "not a regular file"],
    );
}
