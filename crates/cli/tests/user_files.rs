//! No user file lost (issue 10): dae writes only into folders it marked as
//! its own and replaces only its own files there, never writes an output
//! over an input, locks a run folder while training into it, and clears the
//! temp files of interrupted writes.

use std::path::Path;

mod common;
use common::*;

fn train_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--quiet",
        "--epochs",
        "1",
        "--batch",
        "500",
        "--layers",
        "8",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

/// Every file in `dir` with its bytes, sorted.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_users_own_folder_is_refused_and_force_replaces_nothing_of_theirs() {
    let tmp = scratch();
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("history.json"), "my notes").unwrap();
    std::fs::write(mine.join("figure.png"), "my picture").unwrap();
    let before = snapshot(&mine);
    fails(
        tmp.path(),
        &train_args(&mine, &[]),
        &["mine", "not a dae run folder"],
    );
    fails(
        tmp.path(),
        &train_args(&mine, &["--force"]),
        &["mine", "not written by dae", "--force"],
    );
    assert_eq!(snapshot(&mine), before);

    // A folder of the user's that holds none of dae's names: --force adds
    // dae's files beside theirs and touches nothing else.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "keep me").unwrap();
    fails(
        tmp.path(),
        &train_args(&other, &[]),
        &["not a dae run folder"],
    );
    ok(tmp.path(), &train_args(&other, &["--force"]));
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"keep me");
    assert!(other.join("checkpoint.safetensors").exists());
    assert!(other.join(".dae-run").exists());
}

#[test]
fn the_filesystem_root_is_refused() {
    let tmp = scratch();
    for extra in [&[][..], &["--force"][..]] {
        fails(
            tmp.path(),
            &train_args(Path::new("/"), extra),
            &["--out /", "root"],
        );
    }
    fails(
        tmp.path(),
        &train_args(Path::new("/tmp/.."), &["--force"]),
        &["root"],
    );
}

#[test]
fn outputs_never_overwrite_inputs() {
    let tmp = scratch();
    let run = tmp.path().join("run");
    ok(tmp.path(), &train_args(&run, &[]));
    let ck = run.join("checkpoint.safetensors");
    let ck_bytes = std::fs::read(&ck).unwrap();
    let data_file = small_data().join("t10k-labels-idx1-ubyte.gz");
    let data_bytes = std::fs::read(&data_file).unwrap();
    let base = |cmd: &'static str| {
        vec![
            cmd,
            "--run",
            s(&run),
            "--data",
            s(small_data()),
            "--device",
            "cpu",
        ]
    };
    let mut figure = base("figure");
    figure.extend(["--out", s(&ck)]);
    fails(
        tmp.path(),
        &figure,
        &["--out", "checkpoint.safetensors", "input"],
    );
    let history = run.join("history.json");
    let mut figure = base("figure");
    figure.extend(["--out", s(&history)]);
    fails(tmp.path(), &figure, &["history.json", "input"]);
    let mut encode = base("encode");
    encode.extend(["--out", s(&data_file)]);
    fails(tmp.path(), &encode, &["--out", "the data"]);
    // Through another spelling of the same path.
    let dotted = run.join("..").join("run").join("encoder.safetensors");
    let mut encode = base("encode");
    encode.extend(["--out", s(&dotted)]);
    fails(tmp.path(), &encode, &["input"]);
    let mut eval = base("eval");
    eval.extend(["--json", s(&history)]);
    fails(tmp.path(), &eval, &["--json", "input"]);
    assert_eq!(std::fs::read(&ck).unwrap(), ck_bytes);
    assert_eq!(std::fs::read(&data_file).unwrap(), data_bytes);
    // figure.png is the run's figure: redrawing it is what figure is for.
    let own_figure = run.join("figure.png");
    let mut figure = base("figure");
    figure.extend(["--out", s(&own_figure)]);
    ok(tmp.path(), &figure);
}

#[test]
fn a_locked_run_folder_names_the_process_training_into_it() {
    let tmp = scratch();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join(".dae-run"), "").unwrap();
    std::fs::write(run.join(".dae-lock"), "4242\n").unwrap();
    let lock = std::fs::File::open(run.join(".dae-lock")).unwrap();
    // This test process plays the other trainer.
    fs4::FileExt::try_lock_shared(&lock).unwrap();
    fails(
        tmp.path(),
        &train_args(&run, &[]),
        &[
            "another dae process (pid 4242)",
            "training into this folder",
        ],
    );
    assert!(!run.join("checkpoint.safetensors").exists());
    fs4::FileExt::unlock(&lock).unwrap();
    drop(lock);
    ok(tmp.path(), &train_args(&run, &[]));
}

#[test]
fn orphan_temp_files_of_interrupted_writes_are_removed() {
    let tmp = scratch();
    let run = tmp.path().join("run");
    ok(tmp.path(), &train_args(&run, &[]));
    // What a kill -9 during a checkpoint write leaves behind.
    std::fs::write(run.join(".dae-tmp-Ab12Cd"), "torn checkpoint").unwrap();
    std::fs::write(run.join(".tmp-not-ours"), "someone else's").unwrap();
    ok(
        tmp.path(),
        &[
            "train",
            "--resume",
            s(&run),
            "--data",
            s(small_data()),
            "--device",
            "cpu",
            "--quiet",
            "--epochs",
            "2",
        ],
    );
    assert!(!run.join(".dae-tmp-Ab12Cd").exists());
    assert!(run.join(".tmp-not-ours").exists());
}

#[test]
fn a_run_that_fails_before_saving_leaves_no_folder() {
    let tmp = scratch();
    let out = tmp.path().join("new");
    // Without CUDA, --device cuda fails after the folder was made and
    // before any checkpoint.
    if dae_core::cuda::libraries_present().is_ok() {
        eprintln!("skipped: a CUDA device is present");
        return;
    }
    let mut args = train_args(&out, &[]);
    let device = args.iter().position(|a| *a == "cpu").unwrap();
    args[device] = "cuda";
    let out_text = dae_in(tmp.path(), &args);
    assert!(!out_text.status.success());
    assert!(
        !out.exists(),
        "left {:?}",
        std::fs::read_dir(&out).map(|d| d.count())
    );
}

/// `dae data fetch` never replaces a file of MNIST's name that is not
/// MNIST's: it refuses before downloading anything.
#[test]
fn fetch_refuses_to_replace_a_users_file_of_the_same_name() {
    let tmp = scratch();
    let out = tmp.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    let mine = out.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&mine, "my own labels").unwrap();
    // Nothing listens there: a download would fail differently.
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
        &[
            "t10k-labels-idx1-ubyte.gz",
            "not MNIST's",
            "refusing to replace",
        ],
    );
    assert_eq!(std::fs::read(&mine).unwrap(), b"my own labels");
}
