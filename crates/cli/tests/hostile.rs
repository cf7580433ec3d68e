//! Hostile flags and files end to end (issue 10): each is a clean error
//! naming the flag or file (non-zero exit, no panic), before any work.

use dae_model::{Architecture, Checkpoint, History, TrainConfig, TrainState};
use std::io::Write;
use std::path::Path;

mod common;
use common::*;
use dae_data::testing::raw_npy;

/// A small untrained checkpoint for the 784-wide small data, in `dir`.
fn tiny_run(dir: &Path) {
    let arch = Architecture::new(784, vec![4]).unwrap();
    let mut state = TrainState::initialize(&arch, 1);
    state.step = 8;
    Checkpoint {
        arch,
        config: TrainConfig {
            epochs: 1,
            ..TrainConfig::lab()
        },
        state,
        history: History {
            loss: vec![0.5],
            val_loss: vec![0.5],
            lr: vec![],
        },
        data: "test".into(),
    }
    .save(&dir.join("checkpoint.safetensors"))
    .unwrap();
}

/// The checkpoint's safetensors header as JSON, and the tensor bytes after it.
fn split_safetensors(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join_safetensors(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let mut text = serde_json::to_vec(header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    out
}

/// Rewrites one metadata entry of `run`'s checkpoint.
fn set_metadata(run: &Path, key: &str, value: &str) {
    let path = run.join("checkpoint.safetensors");
    let (mut header, data) = split_safetensors(&std::fs::read(&path).unwrap());
    header["__metadata__"][key] = serde_json::Value::String(value.into());
    std::fs::write(&path, join_safetensors(&header, &data)).unwrap();
}

#[test]
fn huge_layer_widths_are_refused_with_the_limit() {
    let dir = scratch();
    for layers in ["2305843009213693952", "18446744073709551615", "16777217"] {
        let err = fails(dir.path(), &["summary", "--layers", layers], &["limit"]);
        assert!(!err.contains("capacity overflow"), "{err}");
    }
    // Widths each within the limit whose product is not.
    fails(
        dir.path(),
        &["summary", "--layers", "16777216", "--input-dim", "16777216"],
        &["parameters", "limit"],
    );
    fails(
        dir.path(),
        &["summary", "--input-dim", "99999999999"],
        &["input width", "limit"],
    );
}

#[test]
fn image_shape_whose_product_wraps_is_refused() {
    let dir = scratch();
    fails(
        dir.path(),
        &[
            "train",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            s(&dir.path().join("run")),
            "--image-shape",
            "2,9223372036854776200",
        ],
        &["--image-shape", "784"],
    );
    assert!(!dir.path().join("run").exists());
}

#[test]
fn upscale_sizes_beyond_the_limit_are_refused() {
    let dir = scratch();
    for size in ["100000", "4294967296", "18446744073709551615"] {
        fails(
            dir.path(),
            &[
                "data",
                "upscale",
                "--data",
                s(small_data()),
                "--size",
                size,
                "--out",
                s(&dir.path().join("u.npz")),
            ],
            &["--size", "at most 4096"],
        );
    }
    assert!(!dir.path().join("u.npz").exists());
}

#[test]
fn cv_folds_beyond_the_samples_fail_before_any_fold() {
    let dir = scratch();
    let out = dir.path().join("cv");
    let started = std::time::Instant::now();
    fails(
        dir.path(),
        &[
            "cv",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--folds",
            "100000000",
            "--out",
            s(&out),
        ],
        &[
            "--folds 100000000",
            "more folds than the 2000 training samples",
        ],
    );
    assert!(started.elapsed().as_secs() < 30);
    assert!(!out.exists(), "cv created {} before failing", out.display());
}

#[test]
fn checkpoint_with_a_layer_of_10_pow_15_units_is_refused() {
    let dir = scratch();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    tiny_run(&run);
    set_metadata(
        &run,
        "architecture",
        r#"{"input_dim":784,"encoder":[1000000000000000]}"#,
    );
    for cmd in ["eval", "encode", "figure"] {
        fails(
            dir.path(),
            &[
                cmd,
                "--run",
                s(&run),
                "--data",
                s(small_data()),
                "--device",
                "cpu",
            ],
            &["checkpoint.safetensors", "architecture", "limit"],
        );
    }
    fails(
        dir.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--data",
            s(small_data()),
            "--device",
            "cpu",
        ],
        &["checkpoint.safetensors", "architecture", "limit"],
    );
}

#[test]
fn cv_with_a_label_of_u32_max_runs_without_a_label_table() {
    let dir = scratch();
    let data = dir.path().join("d.npz");
    let rows = 12;
    let pixels: Vec<u8> = (0..rows * 16).map(|i| (i * 37 % 256) as u8).collect();
    let mut labels = Vec::new();
    for i in 0..rows {
        let l: u32 = if i % 2 == 0 { u32::MAX } else { 3 };
        labels.extend_from_slice(&l.to_le_bytes());
    }
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&data).unwrap());
    for (name, bytes) in [
        (
            "x_train",
            raw_npy("|u1", &format!("({rows}, 4, 4)"), &pixels),
        ),
        ("y_train", raw_npy("<u4", &format!("({rows},)"), &labels)),
        ("x_test", raw_npy("|u1", "(4, 4, 4)", &pixels[..64])),
    ] {
        zip.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    let out = ok(
        dir.path(),
        &[
            "cv",
            "--data",
            s(&data),
            "--device",
            "cpu",
            "--folds",
            "2",
            "--epochs",
            "1",
            "--layers",
            "3",
            "--quiet",
            "--out",
            s(&dir.path().join("cv")),
        ],
    );
    assert!(out.contains("wrote"), "{out}");
}

/// Sets every element of tensor `name` in `run`'s checkpoint to `value`.
fn fill_tensor(run: &Path, name: &str, value: f32) {
    let path = run.join("checkpoint.safetensors");
    let (header, mut data) = split_safetensors(&std::fs::read(&path).unwrap());
    let range = &header[name]["data_offsets"];
    let (a, b) = (
        range[0].as_u64().unwrap() as usize,
        range[1].as_u64().unwrap() as usize,
    );
    for c in data[a..b].chunks_exact_mut(4) {
        c.copy_from_slice(&value.to_le_bytes());
    }
    std::fs::write(&path, join_safetensors(&header, &data)).unwrap();
}

fn on_run<'a>(cmd: &'a str, run: &'a Path) -> Vec<&'a str> {
    vec![
        cmd,
        "--run",
        s(run),
        "--data",
        s(small_data()),
        "--device",
        "cpu",
    ]
}

#[test]
fn checkpoints_with_nan_or_inf_are_refused_everywhere() {
    for (tensor, value) in [
        ("encoder_1.kernel", f32::NAN),
        ("decoder_1.bias", f32::INFINITY),
        ("optimizer.m", f32::NAN),
        ("optimizer.v", f32::NEG_INFINITY),
    ] {
        let dir = scratch();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        tiny_run(&run);
        fill_tensor(&run, tensor, value);
        for cmd in ["eval", "encode", "figure"] {
            fails(
                dir.path(),
                &on_run(cmd, &run),
                &["checkpoint.safetensors", tensor],
            );
        }
        let mut resume = on_run("train", &run);
        resume[1] = "--resume";
        resume.extend(["--epochs", "2"]);
        fails(dir.path(), &resume, &["checkpoint.safetensors", tensor]);
        // Nothing was written beside the checkpoint.
        assert_eq!(std::fs::read_dir(&run).unwrap().count(), 1);
    }
}

#[test]
fn finite_weights_that_overflow_fail_eval_encode_and_figure() {
    let dir = scratch();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    tiny_run(&run);
    // Finite, but x @ W overflows to inf for any non-black image.
    fill_tensor(&run, "encoder_1.kernel", 1e38);
    let json = dir.path().join("eval.json");
    let mut eval = on_run("eval", &run);
    eval.extend(["--json", s(&json)]);
    fails(
        dir.path(),
        &eval,
        &["checkpoint.safetensors", "non-finite", "overflow"],
    );
    assert!(!json.exists(), "eval wrote {}", json.display());
    fails(
        dir.path(),
        &on_run("encode", &run),
        &["codes", "non-finite"],
    );
    assert!(!run.join("codes-test.npy").exists());
    fails(dir.path(), &on_run("figure", &run), &["non-finite"]);
    assert!(!run.join("figure.png").exists());
}

/// `dae bench` on the small data, one batch size, one timed epoch.
fn bench_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "bench",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--batch-sizes",
        "500",
        "--repeats",
        "1",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn bench_report_gates_fail_on_bad_or_unmatched_results() {
    let dir = scratch();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let row = |batch: &str, ms: &str| {
        format!(
            r#"{{"batch": {batch}, "precision": "fp32", "ms_per_step": {ms}, "samples_per_second": 1000.0}}"#
        )
    };
    let doc =
        |rows: &str| format!(r#"{{"schema": "dae-bench-1", "tool": "dae", "results": [{rows}]}}"#);
    let empty = file("empty.json", "[]");
    let string = file("string.json", &doc(&row("500", r#""fast""#)));
    let other = file("other.json", &doc(&row("256", "1.0")));
    let cases: [(&Path, &[&str]); 3] = [
        (&empty, &["empty.json", "no dae-bench-1 result"]),
        (
            &string,
            &["string.json", "results[0]", "ms_per_step", "\"fast\""],
        ),
        (&other, &["other.json", "no row matches", "fp32 batch 256"]),
    ];
    for (path, needles) in cases {
        let started = std::time::Instant::now();
        fails(dir.path(), &bench_args(&["--compare", s(path)]), needles);
        // Refused before the benchmark ran, not after.
        assert!(started.elapsed().as_secs() < 20);
    }
    let peers = file(
        "peers.json",
        &doc(r#"{"batch": 500, "precision": "fp32", "ms_per_step": 1.0}"#),
    );
    let plot = dir.path().join("p.png");
    fails(
        dir.path(),
        &bench_args(&["--peers", s(&peers), "--plot", s(&plot)]),
        &["peers.json", "results[0]", "samples_per_second"],
    );
    // A compare that matches: compares, and a 1000× slowdown allowance passes.
    let good = file("good.json", &doc(&row("500", "1000.0")));
    let out = ok(
        dir.path(),
        &bench_args(&["--compare", s(&good), "--max-regression", "999%"]),
    );
    assert!(out.contains("ms/step"), "{out}");
    // Copies of the data beyond the limit are refused before any is made.
    fails(
        dir.path(),
        &bench_args(&["--rotate", "100000000"]),
        &["--rotate 100000000", "at most 64"],
    );
    // --json may not overwrite what it compares against.
    fails(
        dir.path(),
        &bench_args(&["--compare", s(&good), "--json", s(&good)]),
        &["--json", "--compare", "input"],
    );
}

/// The memory plan compares against `ulimit -v` too (issue 10): a run the
/// host's free memory would fit but the address-space limit would abort is
/// refused up front, naming the limit.
#[cfg(target_os = "linux")]
#[test]
fn the_memory_plan_respects_the_address_space_limit() {
    let dir = scratch();
    let out = dir.path().join("big");
    // 784-200000-784: 314M parameters, 5 GB with gradients and moments.
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            r#"ulimit -v 4000000 && exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_dae"),
        ])
        .args([
            "train",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--layers",
            "200000",
            "--out",
            s(&out),
        ])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = text(&status.stderr);
    assert!(!status.status.success(), "{err}");
    for needle in ["needs", "available", "ulimit -v"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(
        !err.contains("memory allocation") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists());
}
