//! Faults while training (issue 10): a closed stdout/stderr never stops a
//! run, and SIGINT ends it after the current step with the last good
//! checkpoint kept and the way to resume printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

fn train_command(out: &Path, epochs: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dae"));
    c.args([
        "train",
        "--data",
        s(small_data()),
        "--device",
        "cpu",
        "--batch",
        "500",
        "--layers",
        "8",
        "--epochs",
        epochs,
        "--out",
        s(out),
    ])
    .env_remove("RUST_BACKTRACE");
    c
}

fn epochs_saved(run: &Path) -> usize {
    dae_model::Checkpoint::load(&run.join("checkpoint.safetensors"))
        .unwrap()
        .history
        .epochs_done()
}

fn no_temp_files(run: &Path) {
    for e in std::fs::read_dir(run).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".dae-tmp-"), "temp file left: {name}");
    }
}

/// `dae train | head -1`, with stderr closed as well: the run completes
/// and saves everything.
#[test]
fn closed_stdout_and_stderr_do_not_stop_training() {
    let tmp = scratch();
    let run = tmp.path().join("run");
    let mut child = train_command(&run, "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader is gone now: every later write to stdout fails with EPIPE.
    let status = child.wait().unwrap();
    assert!(status.success(), "dae train | head -1 exited with {status}");
    for f in [
        "checkpoint.safetensors",
        "figure.png",
        "run.json",
        "history.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    assert_eq!(epochs_saved(&run), 3);
    no_temp_files(&run);
}

#[test]
fn sigint_keeps_the_last_good_checkpoint_and_says_how_to_resume() {
    let tmp = scratch();
    let run = tmp.path().join("run");
    let child = train_command(&run, "100000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !run.join("checkpoint.safetensors").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.starts_with("error:") && !err.contains("panicked"),
        "{err}"
    );
    for needle in ["interrupted", "is kept", "dae train --resume", s(&run)] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    let done = epochs_saved(&run);
    assert!(
        run.join(".dae-run").exists(),
        "the run's marker was removed"
    );
    assert!((1..100_000).contains(&done), "{done} epochs saved");
    no_temp_files(&run);
    // And the run continues from there.
    let more = (done + 1).to_string();
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
            &more,
        ],
    );
    assert_eq!(epochs_saved(&run), done + 1);
}
