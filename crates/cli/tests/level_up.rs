//! The lab's "level up" commands end to end on small real data: `compare`,
//! `cv`, `data upscale` (then training on its high-dimensional output),
//! `data fetch` against loopback servers only, and the memory refusal.

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn compare_trains_each_architecture_the_same_way() {
    let tmp = scratch();
    let out = tmp.path().join("cmp");
    let data = s(small_data());
    let base = [
        "compare", "--data", data, "--device", "cpu", "--quiet", "--epochs", "2", "--batch", "128",
    ];
    let mut args = base.to_vec();
    args.extend(["--layers", "8", "--layers", "16,8", "--out", s(&out)]);
    let stdout = ok(tmp.path(), &args);
    assert!(
        stdout.contains("ae-8") && stdout.contains("ae-16-8"),
        "{stdout}"
    );
    let doc = json(&out.join("compare.json"));
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        assert_eq!(m["history"]["val_loss"].as_array().unwrap().len(), 2);
        let best = m["best_val_loss"].as_f64().unwrap();
        let last = m["final_val_loss"].as_f64().unwrap();
        assert!(best <= last && best.is_finite());
    }
    assert_eq!(models[0]["params"], 784 * 8 + 8 + 8 * 784 + 784);
    assert_eq!(doc["settings"]["seed"], 42);
    assert!(out.join("ae-8/checkpoint.safetensors").exists());
    assert!(out.join("ae-16-8/checkpoint.safetensors").exists());
    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    let (w, h) = png_dims(&out.join("reconstructions.png"));
    assert!(w > 10 * 84 && h > 3 * 84, "{w}x{h}");
    png_dims(&out.join("val_loss.png"));

    // Re-running refuses to overwrite; duplicates are refused.
    fails(tmp.path(), &args, &["--force"]);
    let dup_out = tmp.path().join("dup");
    let mut dup = base.to_vec();
    dup.extend(["--layers", "8", "--layers", "8", "--out", s(&dup_out)]);
    fails(tmp.path(), &dup, &["--layers 8", "twice"]);
}

#[test]
fn cv_reports_every_fold_and_their_spread() {
    let tmp = scratch();
    let out = tmp.path().join("cv");
    let data = s(small_data());
    let base = [
        "cv", "--data", data, "--device", "cpu", "--quiet", "--epochs", "1", "--batch", "128",
        "--layers", "8",
    ];
    let mut args = base.to_vec();
    args.extend(["--folds", "3", "--out", s(&out)]);
    let stdout = ok(tmp.path(), &args);
    assert!(stdout.contains("mean") && stdout.contains("±"), "{stdout}");
    let doc = json(&out.join("cv.json"));
    assert_eq!(doc["stratified"], true);
    let model = &doc["models"][0];
    let folds = model["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let val_rows: u64 = folds.iter().map(|f| f["val_rows"].as_u64().unwrap()).sum();
    assert_eq!(val_rows as usize, TRAIN_ROWS);
    for f in folds {
        assert_eq!(
            f["train_rows"].as_u64().unwrap() + f["val_rows"].as_u64().unwrap(),
            TRAIN_ROWS as u64
        );
        assert!(f["test_loss"].as_f64().unwrap().is_finite());
    }
    let vals: Vec<f64> = folds
        .iter()
        .map(|f| f["final_val_loss"].as_f64().unwrap())
        .collect();
    let mean = vals.iter().sum::<f64>() / 3.0;
    assert!((model["val_loss_mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((model["val_loss_std"].as_f64().unwrap() - sd).abs() < 1e-12);
    assert_eq!(
        std::fs::read_to_string(out.join("cv.csv"))
            .unwrap()
            .lines()
            .count(),
        4
    );

    let plain_out = tmp.path().join("cv2");
    let mut plain = base.to_vec();
    plain.extend(["--folds", "2", "--no-stratify", "--out", s(&plain_out)]);
    ok(tmp.path(), &plain);
    assert_eq!(json(&tmp.path().join("cv2/cv.json"))["stratified"], false);

    for (k, needle) in [
        ("1", "at least 2"),
        ("0", "at least 2"),
        ("5000", "more folds"),
    ] {
        let bad_out = tmp.path().join(format!("bad{k}"));
        let mut bad = base.to_vec();
        bad.extend(["--folds", k, "--out", s(&bad_out)]);
        fails(tmp.path(), &bad, &["--folds", needle]);
    }
}

#[test]
fn upscaled_data_trains_and_draws_at_its_own_size() {
    let tmp = scratch();
    let npz = tmp.path().join("f56.npz");
    let data = s(small_data());
    let stdout = ok(
        tmp.path(),
        &[
            "data",
            "upscale",
            "--data",
            data,
            "--size",
            "56",
            "--limit",
            "300",
            "--out",
            s(&npz),
        ],
    );
    assert!(stdout.contains("3136 inputs"), "{stdout}");
    let run = tmp.path().join("run56");
    let stdout = ok(
        tmp.path(),
        &[
            "train",
            "--data",
            s(&npz),
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--layers",
            "64,16",
            "--batch",
            "64",
            "--out",
            s(&run),
        ],
    );
    assert!(stdout.contains("3136-64-16-64-3136"), "{stdout}");
    assert!(stdout.contains("memory needed"), "{stdout}");
    let (_, h) = png_dims(&run.join("figure.png"));
    assert!(h > 2 * 84, "56-pixel images drawn at 84+ px: {h}");
    // Widths must match: a 784-wide run cannot evaluate 3136-wide data.
    fails(
        tmp.path(),
        &["eval", "--run", s(&run), "--data", data, "--device", "cpu"],
        &["3136", "784"],
    );
    fails(
        tmp.path(),
        &[
            "data",
            "upscale",
            "--data",
            data,
            "--size",
            "56",
            "--out",
            s(&tmp.path().join("x.npy")),
        ],
        &[".npz"],
    );
}

#[test]
fn runs_that_cannot_fit_in_memory_are_refused_up_front() {
    let tmp = scratch();
    let out = tmp.path().join("huge");
    let args = [
        "train",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--layers",
        "3000000",
        "--out",
        s(&out),
    ];
    // 4.7e9 parameters: past dae's parameter limit (issue 10), so refused
    // before the memory plan, whatever memory this machine has.
    fails(
        tmp.path(),
        &args,
        &["784-3000000-784", "parameters", "limit"],
    );
    assert!(!out.exists(), "a refused run leaves no directory");
}

/// Serves `body` with `status` to every request on a loopback port, for
/// `requests` requests.
fn loopback_server(status: &'static str, body: &'static [u8], requests: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{addr}/")
}

#[test]
fn fetch_fails_cleanly_without_the_real_files() {
    let tmp = scratch();
    let out = tmp.path().join("mnist");
    // Nothing listens there: the error says how to work offline.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/")
    };
    fails(
        tmp.path(),
        &[
            "data",
            "fetch",
            "mnist",
            "--out",
            s(&out),
            "--mirror",
            &closed,
        ],
        &["could not download", "--data DIR"],
    );
    // A server that answers with the wrong bytes: the checksum catches it.
    let wrong = loopback_server("200 OK", b"not mnist at all", 1);
    fails(
        tmp.path(),
        &[
            "data",
            "fetch",
            "mnist",
            "--out",
            s(&out),
            "--mirror",
            &wrong,
        ],
        &["checksum mismatch", "train-images-idx3-ubyte.gz"],
    );
    let missing = loopback_server("404 Not Found", b"", 1);
    fails(
        tmp.path(),
        &[
            "data",
            "fetch",
            "mnist",
            "--out",
            s(&out),
            "--mirror",
            &missing,
        ],
        &["404"],
    );
    assert!(
        !out.join("train-images-idx3-ubyte.gz").exists(),
        "nothing unverified is written"
    );
}

#[test]
fn known_datasets_are_found_by_name_or_explained() {
    let tmp = scratch();
    // A small IDX set standing in for MNIST (the digits are not shipped).
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("mnist")).unwrap();
    for f in std::fs::read_dir(small_data()).unwrap().flatten() {
        std::fs::copy(f.path(), home.join("mnist").join(f.file_name())).unwrap();
    }
    let run = |home: Option<&Path>, out: &Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dae"));
        cmd.args([
            "train",
            "--dataset",
            "mnist",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            s(out),
        ])
        .current_dir(tmp.path())
        .env_remove("DAE_DATA_HOME");
        if let Some(h) = home {
            cmd.env("DAE_DATA_HOME", h);
        }
        cmd.output().unwrap()
    };
    let found = run(Some(&home), &tmp.path().join("r1"));
    assert!(
        found.status.success(),
        "{}",
        String::from_utf8_lossy(&found.stderr)
    );
    let missing = run(None, &tmp.path().join("r2"));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && err.starts_with("error:"),
        "{err}"
    );
    assert!(
        err.contains("mnist was not found") && err.contains("dae data fetch mnist"),
        "{err}"
    );
    fails(
        tmp.path(),
        &["train", "--dataset", "mnist", "--data", s(small_data())],
        &["--data", "--dataset"],
    );
}
