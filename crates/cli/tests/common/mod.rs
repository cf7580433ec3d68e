//! Helpers shared by the CLI test files: running the binary, asserting clean
//! failures, and the small real dataset (the first 2,000 train / 500 test
//! images of the shipped Fashion-MNIST).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const TRAIN_ROWS: usize = 2_000;
pub const TEST_ROWS: usize = 500;

pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("dae-cli-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Runs `dae` with `args` in `cwd` (so no default `runs/` lands in the repo).
pub fn dae_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dae"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .env_remove("DAE_DATA")
        .output()
        .expect("cannot run the dae binary")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `dae` and requires success; returns stdout.
pub fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = dae_in(cwd, args);
    assert!(
        out.status.success(),
        "dae {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `dae` and requires a clean failure: non-zero exit, `error:` first,
/// no panic, and every needle in stderr. Returns stderr.
pub fn fails(cwd: &Path, args: &[&str], needles: &[&str]) -> String {
    let out = dae_in(cwd, args);
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "dae {args:?} succeeded but should have failed:\n{}",
        text(&out.stdout)
    );
    assert!(
        err.starts_with("error:"),
        "dae {args:?}: stderr does not start with 'error:':\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "dae {args:?} panicked:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "dae {args:?}: stderr lacks {n:?}:\n{err}");
    }
    err
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// This test process's fixture directory (statics are never dropped, so it
/// cannot be a TempDir); those of earlier runs are removed once stale.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-fixtures");
        std::fs::create_dir_all(&root).unwrap();
        for e in std::fs::read_dir(&root).unwrap().flatten() {
            let age = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a.as_secs() > 600) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The small real dataset, built once per test process.
pub fn small_data() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fixtures().join("small-fashion");
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
        for (prefix, rows) in [("train", TRAIN_ROWS), ("t10k", TEST_ROWS)] {
            let images =
                dae_data::read_idx(&shipped.join(format!("{prefix}-images-idx3-ubyte.gz")))
                    .unwrap();
            let labels =
                dae_data::read_idx(&shipped.join(format!("{prefix}-labels-idx1-ubyte.gz")))
                    .unwrap();
            assert_eq!(&images.dims[1..], [28, 28]);
            dae_data::write_idx_gz(
                &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
                &[rows, 28, 28],
                &images.data[..rows * 784],
            )
            .unwrap();
            dae_data::write_idx_gz(
                &dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
                &[rows],
                &labels.data[..rows],
            )
            .unwrap();
        }
        dir
    })
}

/// Width and height of a PNG, after checking its signature and decoding it.
pub fn png_dims(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}: no PNG signature",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(buf.iter().any(|&p| p < 128) && buf.iter().any(|&p| p > 128));
    (info.width, info.height)
}
