//! Size fields that lie (issue 10): shapes whose product wraps, header
//! lengths past the file, archive entries claiming more than they hold, gzip
//! streams inflating past their IDX header. Each must be a clean error that
//! names the file, without allocating what the lie claims.

use dae_data::load;
use dae_data::testing::{gzip, idx_bytes, raw_npy};
use std::io::Write;
use std::path::Path;

fn load_err(path: &Path) -> String {
    match load(path, None) {
        Ok(s) => panic!(
            "{} loaded ({}) but should fail",
            path.display(),
            s.description
        ),
        Err(e) => {
            let s = format!("{e:#}");
            eprintln!("ERR: {s}");
            s
        }
    }
}

fn assert_mentions(err: &str, needles: &[&str]) {
    for n in needles {
        assert!(err.contains(n), "error does not mention {n:?}: {err}");
    }
}

/// A valid IDX directory with `replace` written over one of its files.
fn idx_dir(replace: (&str, Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "train-images-idx3-ubyte.gz",
            gzip(&idx_bytes(&[4, 2, 2], &[9; 16])),
        ),
        (
            "train-labels-idx1-ubyte.gz",
            gzip(&idx_bytes(&[4], &[0, 1, 2, 3])),
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            gzip(&idx_bytes(&[2, 2, 2], &[7; 8])),
        ),
        ("t10k-labels-idx1-ubyte.gz", gzip(&idx_bytes(&[2], &[0, 1]))),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    std::fs::write(dir.path().join(replace.0), replace.1).unwrap();
    dir
}

#[test]
fn npy_shape_whose_product_wraps_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    // (2^63 + 1) × 2 = 2^64 + 2, which wraps to the 2 bytes present.
    for shape in [
        "(9223372036854775809, 2)",
        "(4294967297, 4294967297, 3)",
        "(0, 18446744073709551615, 2)",
        "(18446744073709551615,)",
    ] {
        std::fs::write(&path, raw_npy("|u1", shape, &[1, 2])).unwrap();
        let err = load_err(&path);
        assert_mentions(&err, &["x.npy", "shape"]);
    }
    // A float array whose element count fits the bytes but not its width.
    std::fs::write(&path, raw_npy("<f4", "(3, 2)", &[0; 8])).unwrap();
    assert_mentions(&load_err(&path), &["x.npy", "needs 24 data bytes", "has 8"]);
}

#[test]
fn npy_header_length_past_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    // Version 2: a 32-bit header length of 4 GiB in a 12-byte file.
    std::fs::write(&path, b"\x93NUMPY\x02\x00\xff\xff\xff\xff").unwrap();
    assert_mentions(
        &load_err(&path),
        &["x.npy", "header claims 4294967295 bytes"],
    );
    std::fs::write(&path, b"\x93NUMPY\x01\x00\xff\x7f{}").unwrap();
    assert_mentions(&load_err(&path), &["x.npy", "header claims"]);
}

/// An `.npz` with one stored entry of `payload`, zip64 extra fields on.
fn npz_bytes(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    zip.start_file(name, options).unwrap();
    zip.write_all(payload).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Rewrites the uncompressed size in the zip64 extra field (tag 0x0001,
/// uncompressed size first) of each local and central header to `size`;
/// returns how many headers it patched.
fn patch_zip64_size(bytes: &mut [u8], size: u64) -> usize {
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let mut found = 0;
    for i in 0..bytes.len().saturating_sub(46) {
        // (signature, offset of the name length, fixed header size)
        let (name_len_at, fixed) = match bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => (26, 30),
            [0x50, 0x4b, 0x01, 0x02] => (28, 46),
            _ => continue,
        };
        let extra = i + fixed + u16_at(bytes, i + name_len_at);
        if u16_at(bytes, extra) == 1 && u16_at(bytes, extra + 2) >= 8 {
            bytes[extra + 4..extra + 12].copy_from_slice(&size.to_le_bytes());
            found += 1;
        }
    }
    found
}

#[test]
fn npz_entry_claiming_2_pow_62_bytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.npz");
    let payload = raw_npy("|u1", "(2, 2)", &[1, 2, 3, 4]);
    let mut bytes = npz_bytes("x_train.npy", &payload);
    assert_eq!(patch_zip64_size(&mut bytes, 1 << 62), 2, "zip64 fields");
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&path);
    assert_mentions(&err, &["d.npz", "x_train", "4611686018427387904"]);
}

#[test]
fn npz_entry_holding_more_or_less_than_it_claims_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.npz");
    let payload = raw_npy("|u1", "(2, 2)", &[1, 2, 3, 4]);
    for claim in [payload.len() as u64 - 1, payload.len() as u64 + 100] {
        let mut bytes = npz_bytes("x_train.npy", &payload);
        assert_eq!(patch_zip64_size(&mut bytes, claim), 2);
        std::fs::write(&path, &bytes).unwrap();
        assert_mentions(&load_err(&path), &["d.npz"]);
    }
}

#[test]
fn gzip_inflating_past_its_idx_header_stops_there() {
    // 1 declared label byte, 256 MiB of zeros after it: a 256 KB file that
    // was once inflated whole (8 GiB for 8 MB) before the header was read.
    let mut body = idx_bytes(&[4], &[0, 1, 2, 3]);
    body.resize(256 << 20, 0);
    let dir = idx_dir(("train-labels-idx1-ubyte.gz", gzip(&body)));
    drop(body);
    let started = std::time::Instant::now();
    let err = load_err(dir.path());
    assert_mentions(
        &err,
        &["train-labels-idx1-ubyte.gz", "[4]", "need 4", "or more"],
    );
    assert!(!err.contains("out of memory"), "{err}");
    // Stopping at the declared size is immediate; inflating it all is not.
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}

#[test]
fn idx_dimensions_that_overflow_or_exceed_the_file_are_refused() {
    for dims in [
        vec![u32::MAX, u32::MAX, u32::MAX],
        vec![u32::MAX, u32::MAX, u32::MAX, u32::MAX],
    ] {
        let dir = idx_dir((
            "train-images-idx3-ubyte.gz",
            gzip(&idx_bytes(&dims, &[1; 64])),
        ));
        let err = load_err(dir.path());
        assert_mentions(&err, &["train-images-idx3-ubyte.gz"]);
    }
    // 2^40 bytes declared, 64 present: no 1 TiB buffer, a truncation error.
    let dir = idx_dir((
        "train-images-idx3-ubyte.gz",
        gzip(&idx_bytes(&[1 << 20, 1 << 10, 1 << 10], &[1; 64])),
    ));
    assert_mentions(&load_err(dir.path()), &["truncated"]);
}

#[test]
fn npz_label_of_u32_max_loads_without_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let entries = [
        ("x_train", raw_npy("|u1", "(2, 2)", &[1, 2, 3, 4])),
        ("x_test", raw_npy("|u1", "(1, 2)", &[5, 6])),
        (
            "y_train",
            raw_npy("<u4", "(2,)", &[255, 255, 255, 255, 0, 0, 0, 0]),
        ),
    ];
    for (name, bytes) in entries {
        zip.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    let splits = load(&path, None).unwrap();
    assert_eq!(splits.train.labels, Some(vec![u32::MAX, 0]));
}

/// A FIFO would block `open` forever and /dev/zero would be read until
/// memory runs out: both are refused as not regular files, at once.
#[cfg(unix)]
#[test]
fn devices_and_pipes_posing_as_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("x.npy");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    assert_mentions(&load_err(&zero), &["x.npy", "not a regular file"]);
    let fifo = dir.path().join("d.npz");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        assert_mentions(&load_err(&fifo), &["d.npz", "not a regular file"]);
    }
    // SHA256SUMS as a pipe beside valid IDX files.
    let idx_dir = idx_dir(("t10k-labels-idx1-ubyte.gz", gzip(&idx_bytes(&[2], &[0, 1]))));
    let sums = idx_dir.path().join("SHA256SUMS");
    std::os::unix::fs::symlink("/dev/zero", &sums).unwrap();
    assert_mentions(
        &load_err(idx_dir.path()),
        &["SHA256SUMS", "not a regular file"],
    );
    // read_idx on a device directly (dae data fetch reads what it wrote).
    let err = format!(
        "{:#}",
        dae_data::read_idx(Path::new("/dev/zero")).err().unwrap()
    );
    assert!(err.contains("not a regular file"), "{err}");
}
