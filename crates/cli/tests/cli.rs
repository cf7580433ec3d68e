//! The `dae` binary end to end on the CPU: every subcommand on a small real
//! dataset (the first 2,000 train / 500 test images of the shipped
//! Fashion-MNIST), reproducibility, resuming, and the errors users meet.

use dae_model::Checkpoint;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

mod common;
use common::*;

/// `dae CMD --run RUN --data <small data> --device cpu EXTRA...`
fn on_run<'a>(cmd: &'a str, run: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        cmd,
        "--run",
        s(run),
        "--data",
        s(small_data()),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    args
}

/// `dae CMD --data <small data> --device cpu EXTRA...`
fn on_data<'a>(cmd: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![cmd, "--data", s(small_data()), "--device", "cpu"];
    args.extend_from_slice(extra);
    args
}

/// A 3-epoch run on the small data (seed 1, batch 128), trained once and
/// shared read-only by the tests below.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let run = fixtures().join("run");
        train(fixtures(), &run, &["--epochs", "3", "--seed", "1"]);
        run
    })
}

/// `dae train` on the small data, quietly on the CPU, batch 128.
fn train(cwd: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--quiet",
        "--batch",
        "128",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    ok(cwd, &args)
}

fn history(run: &Path) -> (Vec<f64>, Vec<f64>) {
    let v: Value =
        serde_json::from_slice(&std::fs::read(run.join("history.json")).unwrap()).unwrap();
    let list = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("history.json lacks list '{k}': {v}"))
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    (list("loss"), list("val_loss"))
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> (Vec<u64>, Vec<T>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<T>().unwrap())
}

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    std::fs::write(path, dae_data::npy_bytes(&shape, data).unwrap()).unwrap();
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Output files are readable as a plain `File::create`'s would be (0666 less
/// the umask): not the private 0600 of a temp file, and not more readable
/// than the umask allows.
#[cfg(unix)]
fn assert_plain_modes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let probe = dir
        .join("..")
        .join(format!("mode-probe-{}", std::process::id()));
    std::fs::write(&probe, "").unwrap();
    let want = mode(&probe);
    std::fs::remove_file(&probe).unwrap();
    for name in file_names(dir) {
        let got = mode(&dir.join(&name));
        assert_eq!(
            got & 0o444,
            want & 0o444,
            "{name}: mode {got:o}, expected the read bits of {want:o}"
        );
    }
}

#[cfg(not(unix))]
fn assert_plain_modes(_: &Path) {}

// ---------------------------------------------------------------- summary

#[test]
fn summary_prints_the_lab_counts() {
    let tmp = scratch();
    let out = ok(tmp.path(), &["summary"]);
    assert!(out.contains("Total params: 222,384"), "{out}");
    assert!(out.contains("Total params: 110,816"), "{out}");
    assert!(out.contains("Model: \"autoencoder\"") && out.contains("Model: \"encoder\""));
    for n in ["100,480", "8,256", "2,080", "decoder_3 (Dense)"] {
        assert!(out.contains(n), "{n}: {out}");
    }

    // The simple autoencoder: 784-32-784.
    let out = ok(tmp.path(), &["summary", "--layers", "32"]);
    assert!(out.contains("Total params: 50,992"), "{out}"); // 784·32+32 + 32·784+784
    assert!(out.contains("Total params: 25,120"), "{out}"); // 784·32+32
    assert!(
        !out.contains("encoder_2") && out.contains("decoder_1 (Dense)"),
        "{out}"
    );
}

// ---------------------------------------------------------------- train

#[test]
fn train_writes_every_file_and_learns() {
    let run = trained_run();
    let names = file_names(run);
    assert_eq!(
        names,
        [
            // The run marker and the trainers' lock (issue 10).
            ".dae-lock",
            ".dae-run",
            "checkpoint.safetensors",
            "encoder.safetensors",
            "figure.png",
            "history.csv",
            "history.json",
            "history.png",
            "run.json"
        ],
        "unexpected files (a temp file left behind?)"
    );
    assert_plain_modes(run);

    let (loss, val_loss) = history(run);
    assert_eq!((loss.len(), val_loss.len()), (3, 3));
    assert!(loss
        .iter()
        .chain(&val_loss)
        .all(|v| v.is_finite() && *v > 0.0 && *v < 1.0));
    assert!(
        loss[0] > loss[1] && loss[1] > loss[2],
        "loss does not fall: {loss:?}"
    );
    assert!(
        val_loss[0] > val_loss[2],
        "val_loss does not fall: {val_loss:?}"
    );

    let csv = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(lines[0], "epoch,loss,val_loss");
    let row: Vec<f64> = lines[3].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(row, [3.0, loss[2], val_loss[2]]);

    let (w, h) = png_dims(&run.join("figure.png"));
    assert!(w > 10 * 28 && h > 2 * 28, "{w}x{h}");
    // The loss chart: one panel (no learning rate recorded yet), legible size.
    let (w, h) = png_dims(&run.join("history.png"));
    assert!(w >= 640 && h >= 400, "history.png is {w}x{h}");

    let info: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["architecture"], "784-128-64-32-64-128-784");
    assert_eq!(info["params"], 222_384);
    assert_eq!(info["encoder_params"], 110_816);
    assert_eq!(info["epochs_trained_now"], 3);
    assert_eq!(info["settings"]["batch"], 128);
    assert_eq!(info["settings"]["seed"], 1);
    assert_eq!(info["final_val_loss"].as_f64(), Some(val_loss[2]));
    assert!(
        info["device"].as_str().unwrap().starts_with("cpu"),
        "{info}"
    );

    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.arch.describe(), "784-128-64-32-64-128-784");
    assert_eq!(
        (ck.history.loss.clone(), ck.history.val_loss.clone()),
        (loss, val_loss)
    );
    assert_eq!(ck.state.step, 3 * TRAIN_ROWS.div_ceil(128) as u64);
    assert_eq!(ck.config.epochs, 3);
}

#[test]
fn same_seed_same_history_other_seed_differs() {
    let tmp = scratch();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(tmp.path(), &a, &["--epochs", "3", "--seed", "1"]);
    train(tmp.path(), &b, &["--epochs", "1", "--seed", "2"]);
    let same = std::fs::read(a.join("history.json")).unwrap();
    assert_eq!(
        same,
        std::fs::read(trained_run().join("history.json")).unwrap()
    );
    assert_eq!(
        Checkpoint::load(&a.join("checkpoint.safetensors"))
            .unwrap()
            .state,
        Checkpoint::load(&trained_run().join("checkpoint.safetensors"))
            .unwrap()
            .state
    );
    let (la, va) = history(&a);
    let (lb, vb) = history(&b);
    assert_ne!(la[0], lb[0]);
    assert_ne!(va[0], vb[0]);
}

/// LAMB with weight decay trains (the loss falls over two epochs), is
/// recorded in run.json and the checkpoint, and a resume may not change it.
#[test]
fn lamb_trains_and_resume_keeps_the_optimizer() {
    let tmp = scratch();
    let run = tmp.path().join("lamb");
    let lamb = ["--optimizer", "lamb", "--weight-decay", "0.01"];
    train(
        tmp.path(),
        &run,
        &[&["--epochs", "2", "--seed", "3"][..], &lamb].concat(),
    );
    let (loss, val_loss) = history(&run);
    assert!(loss[1] < loss[0], "LAMB's loss did not fall: {loss:?}");
    assert!(val_loss.iter().all(|v| v.is_finite()), "{val_loss:?}");
    let report: Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["settings"]["optimizer"], "lamb", "{report}");
    assert_eq!(report["settings"]["weight_decay"], 0.01, "{report}");
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.config.optimizer, dae_model::Optimizer::Lamb);
    let resume = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--resume", s(&run), "--epochs", "3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--data", s(small_data()), "--device", "cpu"].map(String::from));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    for (extra, needles) in [
        (
            &["--optimizer", "adamw"][..],
            &["--optimizer adamw differs from the resumed run's lamb"][..],
        ),
        (
            &["--weight-decay", "0.1"],
            &["--weight-decay 0.1 differs from the resumed run's 0.01"],
        ),
        (
            &["--beta2", "0.99"],
            &["--beta2 0.99 differs from the resumed run's 0.999"],
        ),
    ] {
        let args = resume(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(tmp.path(), &args, needles);
    }
}

/// `--beta1`, `--beta2` and `--epsilon` reach the optimizer (the losses
/// differ from the defaults') and are recorded in run.json.
#[test]
fn adam_moments_and_epsilon_are_settings() {
    let tmp = scratch();
    let (plain, tuned) = (tmp.path().join("plain"), tmp.path().join("tuned"));
    train(tmp.path(), &plain, &["--epochs", "1", "--seed", "3"]);
    train(
        tmp.path(),
        &tuned,
        &[
            "--epochs",
            "1",
            "--seed",
            "3",
            "--beta1",
            "0.8",
            "--beta2",
            "0.95",
            "--epsilon",
            "1e-6",
        ],
    );
    assert_ne!(history(&plain).0, history(&tuned).0);
    let report: Value =
        serde_json::from_slice(&std::fs::read(tuned.join("run.json")).unwrap()).unwrap();
    let settings = &report["settings"];
    assert_eq!(
        (&settings["beta1"], &settings["beta2"], &settings["epsilon"]),
        (&Value::from(0.8), &Value::from(0.95), &Value::from(1e-6)),
        "{report}"
    );
}

/// `--threads N` sets the CPU's threads (recorded as the device), and the
/// same count trains the same bits; 0 is refused.
#[test]
fn threads_flag_sets_the_cpu_threads() {
    let tmp = scratch();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for run in [&a, &b] {
        let mut args = vec!["--threads", "3"];
        args.extend(on_data(
            "train",
            &["--quiet", "--epochs", "1", "--out", s(run)],
        ));
        ok(tmp.path(), &args);
    }
    assert_eq!(history(&a), history(&b));
    let report = json(&a.join("run.json"));
    assert_eq!(report["device"], "cpu (3 threads)", "{report}");
    fails(tmp.path(), &["--threads", "0", "summary"], &["--threads"]);
    fails(
        tmp.path(),
        &["--threads", "100000", "summary"],
        &["--threads", "1024 threads allowed"],
    );
}

#[test]
fn resume_continues_exactly() {
    let tmp = scratch();
    let run = tmp.path().join("resumed");
    train(tmp.path(), &run, &["--epochs", "1", "--seed", "1"]);
    assert_eq!(history(&run).0.len(), 1);
    let out = ok(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "3",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
        ],
    );
    // Not quiet: one line per epoch trained now, starting at epoch 2.
    assert!(
        out.contains("Epoch 2/3") && out.contains("Epoch 3/3"),
        "{out}"
    );
    assert!(!out.contains("Epoch 1/3"), "{out}");
    let full = trained_run();
    assert_eq!(
        std::fs::read(run.join("history.json")).unwrap(),
        std::fs::read(full.join("history.json")).unwrap()
    );
    assert_eq!(
        std::fs::read(run.join("history.csv")).unwrap(),
        std::fs::read(full.join("history.csv")).unwrap()
    );
    let a = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(&full.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.state, b.state);
    assert_eq!(a.history, b.history);
    assert_eq!((&a.arch, &a.config), (&b.arch, &b.config));
    assert_eq!(
        file_names(&run),
        file_names(full),
        "temp files left after resuming?"
    );

    // Already trained that far.
    fails(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "3",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
        ],
        &["already trained 3 epochs", "--epochs"],
    );
    // Settings that contradict the run.
    fails(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "4",
            "--batch",
            "64",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
        ],
        &["--batch 64", "128"],
    );
    fails(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "4",
            "--accumulate",
            "2",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
        ],
        &["--accumulate 2", "differs from the resumed run's 1"],
    );
}

/// `--batch 64 --accumulate 2` trains as `--batch 128` does (the same rows
/// and mean gradient per step; only the summation order of the gradient
/// differs: the losses agree to 1e-6), records the setting, and a resumed
/// run keeps it.
#[test]
fn accumulated_batches_train_as_the_full_batch() {
    let tmp = scratch();
    let run = tmp.path().join("accumulated");
    let mut args = vec![
        "train",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--quiet",
        "--batch",
        "64",
        "--accumulate",
        "2",
        "--epochs",
        "2",
        "--seed",
        "1",
        "--out",
        s(&run),
    ];
    ok(tmp.path(), &args);
    let (loss, val) = history(&run);
    let (full_loss, full_val) = history(trained_run());
    for (got, want) in loss.iter().zip(&full_loss).chain(val.iter().zip(&full_val)) {
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "{loss:?} {val:?} vs {full_loss:?} {full_val:?}"
        );
    }
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!((ck.config.batch, ck.config.accumulate), (64, 2));
    assert_eq!(ck.state.step, 2 * 2_000u64.div_ceil(128));
    args.truncate(5);
    args.extend(["--resume", s(&run), "--epochs", "3"]);
    ok(tmp.path(), &args);
    let ck = Checkpoint::load(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.config.accumulate, 2);
    assert_eq!(ck.state.step, 3 * 2_000u64.div_ceil(128));
}

// ---------------------------------------------------------------- schedules / time to quality

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_cosine_schedule_with_warmup_records_each_steps_rate() {
    let tmp = scratch();
    let run = tmp.path().join("cosine");
    let out = train(
        tmp.path(),
        &run,
        &[
            "--epochs",
            "2",
            "--seed",
            "1",
            "--schedule",
            "cosine",
            "--warmup",
            "1",
        ],
    );
    assert!(!out.contains("reach"), "no target, no clause: {out}");
    let h = json(&run.join("history.json"));
    let lr: Vec<f64> = h["lr"]
        .as_array()
        .unwrap_or_else(|| panic!("history.json lacks 'lr': {h}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // 2,000 rows at batch 128: 16 steps an epoch; warmup is the first 16.
    assert_eq!(lr.len(), 32);
    let peak = lr.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(peak, 1e-3f32 as f64);
    assert_eq!(lr[15], peak, "the warmup ends at the peak");
    assert!(lr[..16].windows(2).all(|w| w[0] < w[1]), "{lr:?}");
    assert!(lr[15..].windows(2).all(|w| w[0] > w[1]), "{lr:?}");
    assert_eq!(lr[31], 0.0, "--final-lr defaults to 0");
    let settings = &json(&run.join("run.json"))["settings"];
    assert_eq!(settings["schedule"], "cosine");
    assert_eq!(settings["warmup"]["epochs"], 1.0);
    // The loss differs from the constant-rate run of the same seed.
    let constant = tmp.path().join("constant");
    train(tmp.path(), &constant, &["--epochs", "2", "--seed", "1"]);
    assert_ne!(history(&run).0, history(&constant).0);
    assert_eq!(
        json(&constant.join("history.json"))["lr"]
            .as_array()
            .unwrap()
            .len(),
        32
    );

    // Resuming may not change the schedule, nor a decaying schedule's length.
    let resume = |extra: &[&str], needles: &[&str]| {
        let mut args = vec![
            "train",
            "--resume",
            s(&run),
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        fails(tmp.path(), &args, needles);
    };
    resume(
        &["--schedule", "linear"],
        &["--schedule linear", "resumed run's cosine"],
    );
    resume(&["--warmup", "2s"], &["--warmup 2s", "resumed run's 1"]);
    resume(&["--final-lr", "0.5"], &["--final-lr 0.5"]);
    resume(&["--epochs", "4"], &["--epochs 4", "cosine schedule spans"]);
}

#[test]
fn time_to_a_target_val_loss_is_reported() {
    let tmp = scratch();
    // The shared 3-epoch run's first validation loss: the same seed meets it
    // after exactly one epoch.
    let first_val = history(trained_run()).1[0];
    let target = first_val.to_string();
    let run = tmp.path().join("reached");
    let out = train(
        tmp.path(),
        &run,
        &["--epochs", "3", "--seed", "1", "--target-val-loss", &target],
    );
    assert!(
        out.contains(&format!(
            "reached val_loss ≤ {target} after 1 epochs (16 steps,"
        )),
        "{out}"
    );
    assert_eq!(history(&run).1, [first_val]);
    let t = &json(&run.join("run.json"))["target"];
    assert_eq!(t["value"].as_f64(), Some(first_val), "{t}");
    assert_eq!(t["reached"], true, "{t}");
    assert_eq!(
        (&t["epoch"], &t["steps"], &t["samples"]),
        (&1.into(), &16.into(), &2000.into())
    );
    let (train_s, wall_s) = (
        t["train_seconds"].as_f64().unwrap(),
        t["wall_seconds"].as_f64().unwrap(),
    );
    assert!(0.0 < train_s && train_s <= wall_s, "{t}");

    // Below any loss two epochs reach: trains them all and says so.
    let run = tmp.path().join("missed");
    let out = train(
        tmp.path(),
        &run,
        &["--epochs", "2", "--seed", "1", "--target-val-loss", "1e-6"],
    );
    assert!(
        out.contains("did not reach val_loss ≤ 0.000001 in 2 epochs"),
        "{out}"
    );
    assert_eq!(history(&run).1.len(), 2);
    let t = &json(&run.join("run.json"))["target"];
    assert_eq!(t["reached"], false, "{t}");
    assert!(t.get("epoch").is_none(), "{t}");
}

#[test]
fn bad_schedule_and_target_flags_are_refused() {
    let tmp = scratch();
    let out = tmp.path().join("never");
    let cases: &[(&[&str], &[&str])] = &[
        // 2 epochs × 16 steps = 32.
        (
            &["--warmup", "33s"],
            &["--warmup 33s is 33 steps", "run's 32"],
        ),
        (
            &["--warmup", "2.5"],
            &["--warmup 2.5 is 40 steps", "run's 32"],
        ),
        (&["--warmup", "soon"], &["--warmup", "'soon'"]),
        (&["--final-lr", "1.5"], &["--final-lr 1.5", "[0, 1]"]),
        (&["--final-lr=-0.1"], &["--final-lr -0.1", "[0, 1]"]),
        (&["--schedule", "cos"], &["--schedule", "'cos'", "cosine"]),
        (
            &["--lr-scaling", "root"],
            &["--lr-scaling", "none, sqrt or linear"],
        ),
        (
            &["--lr-scaling", "sqrt", "--reference-batch", "0"],
            &["--reference-batch"],
        ),
        (
            &["--target-val-loss", "0"],
            &["--target-val-loss", "positive finite"],
        ),
        (
            &["--target-val-loss=-1"],
            &["--target-val-loss", "positive finite"],
        ),
        (
            &["--target-val-loss", "nan"],
            &["--target-val-loss", "positive finite"],
        ),
        (
            &["--target-val-loss", "inf"],
            &["--target-val-loss", "positive finite"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec![
            "train",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
            "--batch",
            "128",
            "--epochs",
            "2",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        fails(tmp.path(), &args, needles);
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    }
}

/// `dae scan` on the small data: each batch size's trials, the best per
/// batch, the noise scale at the chosen steps, and its three files.
#[test]
fn scan_reports_steps_to_the_target_and_the_noise_scale() {
    let tmp = scratch();
    let out = tmp.path().join("scan");
    let said = ok(
        tmp.path(),
        &on_data(
            "scan",
            &[
                "--layers",
                "32",
                "--batch-sizes",
                "64,128",
                "--target",
                "0.45",
                "--max-epochs",
                "3",
                "--lrs",
                "4e-3,8e-3",
                "--warmup",
                "0.5",
                "--noise-batches",
                "4",
                "--noise-steps",
                "0,20",
                "--out",
                s(&out),
            ],
        ),
    );
    assert!(said.contains("B_simple"), "{said}");
    let report = json(&out.join("scan.json"));
    assert_eq!(report["trials"].as_array().unwrap().len(), 4, "{report}");
    let best = report["best"].as_array().unwrap();
    assert_eq!(best.len(), 2, "{report}");
    for b in best {
        assert!(b["best_val_loss"].as_f64().unwrap() < 0.69, "{b}");
    }
    let noise = &report["noise_run"];
    assert_eq!(noise["batch"], 256, "{noise}");
    let at: Vec<u64> = noise["at"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["step"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [0, 20], "{noise}");
    assert!(
        noise["at"][0]["trace_sigma"].as_f64().unwrap() > 0.0,
        "{noise}"
    );
    assert!(out.join("scan.csv").exists());
}

#[test]
fn bad_scan_flags_are_refused() {
    let tmp = scratch();
    let out = tmp.path().join("never");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--batch-sizes", ""], &["--batch-sizes"]),
        (&["--target", "0"], &["--target 0", "positive finite"]),
        (&["--target", "nan"], &["--target NaN", "positive finite"]),
        (&["--final-lr", "2"], &["--final-lr 2", "[0, 1]"]),
        (&["--beta2", "1"], &["--beta2 1", "[0, 1)"]),
        (&["--lrs", "0"], &["--lrs", "positive learning rate"]),
        (&["--warmup", "3"], &["--warmup 3", "--max-epochs 3"]),
        (&["--noise-steps", "100000"], &["--noise-steps 100000"]),
    ];
    for (extra, needles) in cases {
        let mut args = on_data("scan", &["--max-epochs", "3", "--out", s(&out)]);
        if !extra.contains(&"--batch-sizes") {
            args.extend(["--batch-sizes", "64"]);
        }
        if !extra.contains(&"--target") {
            args.extend(["--target", "0.3"]);
        }
        args.extend_from_slice(extra);
        fails(tmp.path(), &args, needles);
        assert!(!out.join("scan.json").exists(), "{extra:?} wrote a report");
    }
}

// ---------------------------------------------------------------- encode / eval / figure

#[test]
fn encode_writes_codes_and_labels() {
    let tmp = scratch();
    let codes = tmp.path().join("codes.npy");
    let out = ok(
        tmp.path(),
        &on_run("encode", trained_run(), &["--out", s(&codes)]),
    );
    assert!(out.contains("codes.npy"), "{out}");
    let (shape, values) = read_npy::<f32>(&codes);
    assert_eq!(shape, [TEST_ROWS as u64, 32]);
    assert!(
        values.iter().all(|v| v.is_finite() && *v >= 0.0),
        "ReLU codes"
    );
    assert!(values.iter().any(|&v| v > 0.0));
    let (shape, labels) = read_npy::<i64>(&tmp.path().join("codes-labels.npy"));
    assert_eq!(shape, [TEST_ROWS as u64]);
    let data = dae_data::load(small_data(), None).unwrap();
    let expect: Vec<i64> = data
        .test
        .labels
        .unwrap()
        .iter()
        .map(|&l| l as i64)
        .collect();
    assert_eq!(labels, expect);

    // The training split, to another name.
    let codes = tmp.path().join("train-codes.npy");
    ok(
        tmp.path(),
        &on_run(
            "encode",
            trained_run(),
            &["--split", "train", "--out", s(&codes)],
        ),
    );
    assert_eq!(read_npy::<f32>(&codes).0, [TRAIN_ROWS as u64, 32]);
    assert_eq!(
        read_npy::<i64>(&tmp.path().join("train-codes-labels.npy")).0,
        [TRAIN_ROWS as u64]
    );
    assert_eq!(
        file_names(tmp.path()),
        [
            "codes-labels.npy",
            "codes.npy",
            "train-codes-labels.npy",
            "train-codes.npy"
        ]
    );
    assert_plain_modes(tmp.path());

    fails(
        tmp.path(),
        &on_run(
            "encode",
            trained_run(),
            &["--out", s(&tmp.path().join("codes.txt"))],
        ),
        &["--out", "codes.txt", ".npy"],
    );
}

#[test]
fn eval_reports_overall_and_per_class_loss() {
    let tmp = scratch();
    let json = tmp.path().join("eval.json");
    let out = ok(
        tmp.path(),
        &on_run("eval", trained_run(), &["--json", s(&json)]),
    );
    assert!(out.contains("mean binary cross-entropy"), "{out}");
    assert!(out.contains(&format!("{TEST_ROWS} samples")), "{out}");
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("label"))
        .skip(1)
        .collect();
    assert_eq!(table.len(), 10, "one row per class expected:\n{out}");

    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let loss = v["loss"].as_f64().unwrap();
    let (_, val_loss) = history(trained_run());
    // The test split is the validation split: the same number, bit for bit.
    assert_eq!(loss, val_loss[2]);
    assert_eq!(v["samples"], TEST_ROWS);
    let per_class = v["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    let (mut count, mut weighted) = (0, 0.0);
    for (i, c) in per_class.iter().enumerate() {
        assert_eq!(c["label"], i);
        let n = c["count"].as_u64().unwrap();
        count += n;
        weighted += n as f64 * c["loss"].as_f64().unwrap();
    }
    assert_eq!(count, TEST_ROWS as u64);
    assert!((weighted / count as f64 - loss).abs() < 1e-9);

    // The training split too.
    let out = ok(
        tmp.path(),
        &on_run("eval", trained_run(), &["--split", "train"]),
    );
    assert!(out.contains(&format!("{TRAIN_ROWS} samples")), "{out}");
}

#[test]
fn figure_writes_a_png() {
    let tmp = scratch();
    let png = tmp.path().join("fig.png");
    ok(
        tmp.path(),
        &on_run("figure", trained_run(), &["--out", s(&png), "--seed", "5"]),
    );
    let dims = png_dims(&png);
    assert_eq!(dims, png_dims(&trained_run().join("figure.png")));
    assert_eq!(file_names(tmp.path()), ["fig.png"]);
}

// ---------------------------------------------------------------- errors

#[test]
fn bad_flags_are_clean_errors() {
    let tmp = scratch();
    let out = tmp.path().join("run");
    let data = s(small_data());
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--data", data, "--device", "cpu", "--quiet"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--out".to_string(), s(&out).to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: &[(&[&str], &[&str])] = &[
        (&["--batch", "0"], &["--batch"]),
        (&["--accumulate", "0"], &["--accumulate", "at least 1"]),
        (&["--epochs", "0"], &["--epochs"]),
        (&["--layers", ""], &["--layers"]),
        (&["--layers", "0"], &["--layers"]),
        (&["--layers", "abc"], &["--layers", "abc"]),
        (&["--layers", "64,,32"], &["--layers"]),
        (&["--lr=-1", "--epochs", "1"], &["--lr"]),
        (&["--lr=nan", "--epochs", "1"], &["--lr"]),
        (&["--optimizer", "sgd"], &["unknown optimizer 'sgd'"]),
        (&["--beta1", "1"], &["--beta1 1", "in [0, 1)"]),
        (&["--beta2=-0.5"], &["--beta2 -0.5", "in [0, 1)"]),
        (&["--epsilon", "0"], &["--epsilon 0", "positive finite"]),
        (
            &["--optimizer", "adamw", "--weight-decay=-0.1"],
            &["--weight-decay", "non-negative finite"],
        ),
        (
            &["--optimizer", "lamb", "--weight-decay", "inf"],
            &["--weight-decay", "non-negative finite"],
        ),
        (
            &["--weight-decay", "0.01"],
            &["--weight-decay", "plain adam", "--optimizer adamw"],
        ),
        (
            &["--epochs", "1", "--image-shape", "20,20"],
            &["--image-shape", "784"],
        ),
        (&["--epochs", "1", "--image-shape", "x"], &["--image-shape"]),
    ];
    for (extra, needles) in cases {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(tmp.path(), &args, needles);
    }
    assert!(!out.join("checkpoint.safetensors").exists());
    // A step size that blows the weights up: a clean error naming epoch and step.
    let args = base(&["--lr", "1e30", "--epochs", "3"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        tmp.path(),
        &args,
        &["diverged", "non-finite loss at epoch", "step"],
    );
    // The same with accumulated steps: the step named is an optimizer step
    // of ceil(2000 / (256 · 2)) = 4.
    let args = base(&["--lr", "1e30", "--epochs", "3", "--accumulate", "2"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        tmp.path(),
        &args,
        &["diverged", "non-finite loss at epoch", "of 4"],
    );
    fails(tmp.path(), &["frobnicate"], &["frobnicate"]);
    fails(tmp.path(), &["summary", "--layers", "32,x"], &["--layers"]);
    fails(
        tmp.path(),
        &["summary", "--input-dim", "0"],
        &["--input-dim"],
    );
}

/// `dae check` fails cleanly where it cannot run: an unknown device, the
/// emulator in a build without it, and (on a machine with no GPU) CUDA.
#[test]
fn check_without_its_device_is_a_clean_error() {
    let tmp = scratch();
    fails(
        tmp.path(),
        &["check", "--device", "tpu"],
        &["unknown device 'tpu'"],
    );
    fails(
        tmp.path(),
        &["check", "--device", "emulator"],
        &["built without the emulator", "--features emulator"],
    );
    match dae_core::cuda::libraries_present() {
        Err(why) => {
            fails(tmp.path(), &["check", "--quick"], &[why.to_string().as_str()]);
        }
        Ok(_) => eprintln!("check_without_its_device_is_a_clean_error: CUDA part skipped: a CUDA device is present"),
    }
}

/// `dae check --list` names every case the selection picks, without a
/// device; selections that pick nothing and malformed flags are clean errors.
#[test]
fn check_selections_list_cases_and_bad_flags_are_named() {
    let tmp = scratch();
    let listed = ok(
        tmp.path(),
        &["check", "--list", "--case", "adam p", "--shape", "1000"],
    );
    assert!(
        listed.contains("adam p (t=3)") && listed.ends_with("1 cases\n"),
        "{listed}"
    );
    let all = ok(tmp.path(), &["check", "--list"]);
    for family in [
        "gemm_fwd",
        "gemm_dx",
        "gemm_dw",
        "bias_grad",
        "bce_logits",
        "adam",
        "gather",
        "accumulate_add",
        "model step",
        "model epoch",
    ] {
        assert!(all.contains(family), "{family} not listed");
    }
    let tf32 = ok(
        tmp.path(),
        &[
            "check",
            "--list",
            "--case",
            "gemm_*relu",
            "--precision",
            "tf32",
        ],
    );
    assert!(
        tf32.lines().filter(|l| l.contains("tf32")).count() >= 14,
        "{tf32}"
    );
    assert!(!tf32.contains("fp32"));
    fails(
        tmp.path(),
        &["check", "--case", "gemm_nope"],
        &["no case matches --case 'gemm_nope'", "--list"],
    );
    fails(
        tmp.path(),
        &["check", "--case", "adam", "--shape", "7x7"],
        &["no case matches --case 'adam' --shape 7×7"],
    );
    fails(
        tmp.path(),
        &["check", "--shape", "256x"],
        &["malformed --shape '256x'"],
    );
    fails(
        tmp.path(),
        &["check", "--precision", "fp16"],
        &["unknown precision 'fp16'"],
    );
    fails(
        tmp.path(),
        &["check", "--case", ""],
        &["--case needs a pattern"],
    );
    fails(
        tmp.path(),
        &["check", "--max-growth", "0.5"],
        &["--max-growth 0.5"],
    );
}

/// `dae bench --plan` predicts a step on a named card without one: every
/// launch listed, a step total, and a clean error for an unknown card.
#[test]
fn bench_plan_predicts_without_a_gpu() {
    let tmp = scratch();
    let out = ok(
        tmp.path(),
        &[
            "bench",
            "--plan",
            "--precisions",
            "bf16",
            "--batch-sizes",
            "256,65536",
        ],
    );
    assert!(out.contains("predicted on H200 (132 SMs"), "{out}");
    assert_eq!(out.matches("  step: ").count(), 2, "{out}");
    for kernel in [
        "gather_u8_dev",
        "gemm_fwd_partial_bf16",
        "splitk_bias_act",
        "bce_logits",
        "gemm_dw_bf16",
        "adam_step",
    ] {
        assert!(out.contains(kernel), "{kernel} missing:\n{out}");
    }
    let a100 = ok(
        tmp.path(),
        &[
            "bench",
            "--plan",
            "--card",
            "A100",
            "--precisions",
            "fp32",
            "--batch-sizes",
            "256",
        ],
    );
    assert!(a100.contains("A100 (108 SMs"), "{a100}");
    fails(
        tmp.path(),
        &["bench", "--plan", "--card", "V100"],
        &["unknown card 'V100'", "H200"],
    );
    fails(
        tmp.path(),
        &["bench", "--plan", "--launch-us=-1"],
        &["--launch-us -1"],
    );
}

/// `dae bench --device cpu --breakdown`: every op of the step timed, and
/// the same in the JSON report; `--gemm` still needs CUDA.
#[test]
fn bench_breaks_a_cpu_step_down_by_op() {
    let tmp = scratch();
    let json_path = tmp.path().join("bench.json");
    let out = ok(
        tmp.path(),
        &on_data(
            "bench",
            &[
                "--batch-sizes",
                "100",
                "--repeats",
                "1",
                "--breakdown",
                "--json",
                s(&json_path),
            ],
        ),
    );
    assert!(
        out.contains("step breakdown on the CPU: batch 100"),
        "{out}"
    );
    for op in [
        "gather batch",
        "fwd encoder_1",
        "sigmoid+BCE",
        "dW encoder_1",
        "Adam",
    ] {
        assert!(out.contains(op), "{op} missing:\n{out}");
    }
    let report = json(&json_path);
    // The CPU is named beside its timings, with the SIMD copy that ran.
    let simd = dae_core::cpu::simd_level();
    assert_eq!(report["device"]["simd"], simd, "{report}");
    assert_eq!(
        report["device"]["cpu"],
        dae_core::cpu::cpu_model(),
        "{report}"
    );
    assert!(out.contains(&format!(", {simd}; model ")), "{out}");
    let ops = report["breakdown"][0]["ops"].as_array().unwrap();
    assert!(ops.len() >= 20, "{report}");
    assert!(
        ops.iter().all(|o| o["ms"].as_f64().unwrap() >= 0.0),
        "{report}"
    );
    fails(
        tmp.path(),
        &[
            "bench",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--gemm",
        ],
        &["--gemm", "CUDA"],
    );
}

/// `--compare` reads the earlier report before anything runs: a missing
/// file, one that is not JSON, or a report of another format each fail
/// with the file named.
#[test]
fn check_compare_refuses_what_is_not_a_check_report() {
    let tmp = scratch();
    let path = tmp.path().join("old.json");
    let p = s(&path);
    fails(
        tmp.path(),
        &["check", "--compare", p],
        &["cannot read the --compare report", "old.json"],
    );
    std::fs::write(&path, "{ not json").unwrap();
    fails(
        tmp.path(),
        &["check", "--compare", p],
        &["old.json is not JSON"],
    );
    std::fs::write(&path, r#"[{"batch": 256, "samples_per_s": 1}]"#).unwrap();
    fails(
        tmp.path(),
        &["check", "--compare", p],
        &["not a dae-check/1 report"],
    );
    std::fs::write(
        &path,
        r#"{"format": "dae-check/1", "cases": [{"case": "x"}]}"#,
    )
    .unwrap();
    fails(
        tmp.path(),
        &["check", "--compare", p],
        &["case 0 has no string \"precision\""],
    );
}

#[test]
fn unusable_out_and_data_paths_are_named() {
    let tmp = scratch();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let data = s(small_data());
    let common = ["train", "--device", "cpu", "--quiet", "--epochs", "1"];
    let with = |extra: &[&str]| -> Vec<String> {
        common.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], needles: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(tmp.path(), &args, needles)
    };
    run(&["--data", data, "--out", s(&file)], &["--out", "a-file"]);
    let under = file.join("run");
    run(&["--data", data, "--out", s(&under)], &["--out", "a-file"]);

    let missing = tmp.path().join("no-such-data");
    run(
        &["--data", s(&missing), "--out", s(&tmp.path().join("r1"))],
        &["no-such-data", "no such file"],
    );

    // A copy of the data with a damaged gzip member.
    let bad = tmp.path().join("bad-data");
    std::fs::create_dir(&bad).unwrap();
    for e in std::fs::read_dir(small_data()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), bad.join(e.file_name())).unwrap();
    }
    let victim = bad.join("t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b ^= 0xa5;
    }
    std::fs::write(&victim, bytes).unwrap();
    run(
        &["--data", s(&bad), "--out", s(&tmp.path().join("r2"))],
        &["t10k-labels-idx1-ubyte.gz", "gzip"],
    );

    // Data with NaN.
    let nan = tmp.path().join("nan.npy");
    let mut values = vec![0.5f32; 40 * 6];
    values[7] = f32::NAN;
    write_npy(&nan, &[40, 6], &values);
    run(
        &["--data", s(&nan), "--out", s(&tmp.path().join("r3"))],
        &["nan.npy", "non-finite"],
    );

    // No GPU here: --device cuda must say so, not panic.
    let args = [
        "train", "--data", data, "--device", "cuda", "--quiet", "--epochs", "1", "--out",
    ];
    let mut args: Vec<&str> = args.to_vec();
    let r4 = tmp.path().join("r4");
    args.push(s(&r4));
    fails(tmp.path(), &args, &["--device cuda"]);
    for sub in ["eval", "encode", "figure"] {
        fails(
            tmp.path(),
            &[
                sub,
                "--run",
                s(trained_run()),
                "--data",
                data,
                "--device",
                "cuda",
            ],
            &["--device cuda"],
        );
    }

    // A run dir without a checkpoint.
    let empty = tmp.path().join("empty-run");
    std::fs::create_dir(&empty).unwrap();
    fails(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&empty),
            "--data",
            data,
            "--device",
            "cpu",
            "--quiet",
        ],
        &["empty-run", "checkpoint"],
    );
    for sub in ["eval", "encode", "figure"] {
        fails(
            tmp.path(),
            &[sub, "--run", s(&empty), "--data", data, "--device", "cpu"],
            &["empty-run", "checkpoint"],
        );
    }
    fails(
        tmp.path(),
        &[
            "eval",
            "--run",
            s(&missing),
            "--data",
            data,
            "--device",
            "cpu",
        ],
        &["no-such-data"],
    );
    // A checkpoint that is not one.
    std::fs::write(empty.join("checkpoint.safetensors"), b"not a checkpoint").unwrap();
    fails(
        tmp.path(),
        &[
            "eval",
            "--run",
            s(&empty),
            "--data",
            data,
            "--device",
            "cpu",
        ],
        &["checkpoint.safetensors", "not a valid"],
    );
}

#[test]
fn other_architectures_existing_runs_and_force() {
    let tmp = scratch();
    // A run on 50-wide samples.
    let npy = tmp.path().join("wide50.npy");
    let values: Vec<u8> = (0..120 * 50).map(|i| (i * 37 % 256) as u8).collect();
    write_npy(&npy, &[120, 50], &values);
    let run = tmp.path().join("run50");
    let train50 = |extra: &[&str]| -> Output {
        let mut args = vec![
            "train",
            "--data",
            s(&npy),
            "--device",
            "cpu",
            "--quiet",
            "--epochs",
            "1",
            "--layers",
            "16,8",
            "--batch",
            "32",
            "--out",
            s(&run),
        ];
        args.extend_from_slice(extra);
        dae_in(tmp.path(), &args)
    };
    let first = train50(&[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let (w, h) = png_dims(&run.join("figure.png"));
    assert!(w > 0 && h > 0);

    // The 784-wide data does not fit it.
    for sub in ["eval", "encode", "figure"] {
        fails(
            tmp.path(),
            &[
                sub,
                "--run",
                s(&run),
                "--data",
                s(small_data()),
                "--device",
                "cpu",
            ],
            &["checkpoint.safetensors", "50-16-8-16-50", "784"],
        );
    }
    fails(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "2",
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
        ],
        &["checkpoint.safetensors", "784"],
    );

    // An existing run is kept unless --force.
    let before = std::fs::read(run.join("checkpoint.safetensors")).unwrap();
    let again = train50(&[]);
    let err = text(&again.stderr);
    assert!(
        !again.status.success() && err.starts_with("error:"),
        "{err}"
    );
    assert!(err.contains("--force") && err.contains("run50"), "{err}");
    assert_eq!(
        before,
        std::fs::read(run.join("checkpoint.safetensors")).unwrap()
    );
    let forced = train50(&["--force", "--seed", "9"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(
        before,
        std::fs::read(run.join("checkpoint.safetensors")).unwrap()
    );

    // --image-shape for flat data: fits, or is refused.
    let shaped = tmp.path().join("shaped");
    let out = dae_in(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&npy),
            "--device",
            "cpu",
            "--quiet",
            "--epochs",
            "1",
            "--layers",
            "8",
            "--out",
            s(&shaped),
            "--image-shape",
            "5,10",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    fails(
        tmp.path(),
        &[
            "figure",
            "--run",
            s(&shaped),
            "--data",
            s(&npy),
            "--device",
            "cpu",
            "--image-shape",
            "7,7",
        ],
        &["--image-shape", "49", "50"],
    );
    assert_eq!(
        file_names(&run),
        file_names(&shaped),
        "both runs hold the same files, nothing else"
    );
}

#[test]
fn eval_on_npz_with_sparse_labels() {
    use std::io::Write;
    let tmp = scratch();
    let npz = tmp.path().join("sparse.npz");
    let array = |shape: &[u64], data: &[i64]| -> Vec<u8> {
        let path = tmp.path().join("a.npy");
        write_npy(&path, shape, data);
        std::fs::read(&path).unwrap()
    };
    let pixels = |n: usize| -> Vec<u8> {
        let path = tmp.path().join("p.npy");
        let v: Vec<u8> = (0..n * 6).map(|i| (i * 41 % 256) as u8).collect();
        write_npy(&path, &[n as u64, 6], &v);
        std::fs::read(&path).unwrap()
    };
    let big = 3_000_000_000i64;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&npz).unwrap());
    for (name, bytes) in [
        ("x_train", pixels(40)),
        ("y_train", array(&[40], &[1; 40])),
        ("x_test", pixels(6)),
        ("y_test", array(&[6], &[0, big, 0, 7, 7, 7])),
    ] {
        zip.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();

    let run = tmp.path().join("run");
    ok(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&npz),
            "--device",
            "cpu",
            "--quiet",
            "--epochs",
            "1",
            "--layers",
            "4",
            "--out",
            s(&run),
        ],
    );
    let json = tmp.path().join("eval.json");
    let out = ok(
        tmp.path(),
        &[
            "eval",
            "--run",
            s(&run),
            "--data",
            s(&npz),
            "--device",
            "cpu",
            "--json",
            s(&json),
        ],
    );
    assert!(out.contains("3000000000"), "{out}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let per_class: Vec<(u64, u64)> = v["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["label"].as_u64().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(per_class, [(0, 2), (7, 3), (big as u64, 1)]);
}
