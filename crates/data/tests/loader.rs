//! Loading datasets end to end: the shipped Fashion-MNIST, small IDX
//! directories (gzip'd and raw) with every kind of damage, and `.npy`/`.npz`
//! arrays of the dtypes and shapes dae accepts and refuses.

use dae_data::testing::{gzip, idx_bytes, raw_npy, shape_tuple};
use dae_data::{load, read_idx, write_idx_gz, DataSplits, Pixels, FASHION_CLASSES};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- helpers

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist")
}

/// `{:#}` of the error of a load that must fail.
fn load_err(path: &Path, validation: Option<&Path>) -> String {
    match load(path, validation) {
        Ok(s) => panic!(
            "{} loaded ({}) but should have failed",
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

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Deterministic pseudo-random pixels.
fn pixels(n: usize, salt: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 13) as u8)
        .collect()
}

/// The four decompressed IDX files of a small 4×3-pixel dataset: 12 train and
/// 5 test samples, labels 0..9.
fn small_idx_files() -> Vec<(&'static str, Vec<u8>)> {
    let (h, w) = (4u32, 3u32);
    let n = |rows: u32| (rows * h * w) as usize;
    vec![
        (STEMS[0], idx_bytes(&[12, h, w], &pixels(n(12), 1))),
        (
            STEMS[1],
            idx_bytes(&[12], &(0..12).map(|i| (i % 10) as u8).collect::<Vec<_>>()),
        ),
        (STEMS[2], idx_bytes(&[5, h, w], &pixels(n(5), 2))),
        (STEMS[3], idx_bytes(&[5], &[9, 0, 3, 3, 7])),
    ]
}

/// Writes `files` into a fresh temp dir, gzip'd (`name.gz`) or raw.
fn write_dir(files: &[(&str, Vec<u8>)], gz: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (stem, bytes) in files {
        if gz {
            std::fs::write(dir.path().join(format!("{stem}.gz")), gzip(bytes)).unwrap();
        } else {
            std::fs::write(dir.path().join(stem), bytes).unwrap();
        }
    }
    dir
}

fn write_sums(dir: &Path, files: &[(&str, Vec<u8>)]) {
    let text: String = files
        .iter()
        .map(|(stem, bytes)| format!("{}  {stem}\n", dae_data::sha256_hex(bytes)))
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), text).unwrap();
}

/// All pixels of a split as f32 in [0,1], through `gather`.
fn gathered(d: &dae_data::Dataset) -> Vec<f32> {
    let rows: Vec<u32> = (0..d.rows as u32).collect();
    let mut out = vec![f32::NAN; d.rows * d.dim];
    d.gather(&rows, &mut out);
    out
}

fn npy<T: npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    dae_data::npy_bytes(&shape, data).unwrap()
}

fn write_npz(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// Values in [0,1] for float arrays.
fn unit_values(n: usize) -> Vec<f64> {
    (0..n).map(|i| (i % 11) as f64 / 10.0).collect()
}

fn f32_pixels(d: &dae_data::Dataset) -> &[f32] {
    match &d.pixels {
        Pixels::F32(p) => p,
        Pixels::U8(_) => panic!("{}: expected f32 pixels", d.name),
    }
}

// ---------------------------------------------------------------- shipped data

#[test]
fn shipped_fashion_mnist_loads_verified() {
    let s: DataSplits = load(&shipped(), None).unwrap();
    assert_eq!((s.train.rows, s.test.rows), (60_000, 10_000));
    assert_eq!((s.train.dim, s.test.dim), (784, 784));
    assert_eq!(s.train.image_shape, Some((28, 28)));
    assert_eq!(s.test.image_shape, Some((28, 28)));
    assert_eq!(s.train.bytes(), 60_000 * 784);
    assert!(
        s.description.contains("checksums verified"),
        "{}",
        s.description
    );
    assert!(
        s.description.contains("60000 train / 10000 test"),
        "{}",
        s.description
    );
    assert_eq!(s.class_names, FASHION_CLASSES.map(String::from).to_vec());
    assert_eq!(s.class_name(0), "T-shirt/top");
    assert_eq!(s.class_name(9), "Ankle boot");

    for split in [&s.train, &s.test] {
        let labels = split.labels.as_ref().unwrap();
        assert_eq!(labels.len(), split.rows);
        let mut counts = [0usize; 10];
        for &l in labels {
            assert!(l < 10, "label {l}");
            counts[l as usize] += 1;
        }
        // Fashion-MNIST is balanced: 6,000 / 1,000 of each class.
        assert!(counts.iter().all(|&c| c == split.rows / 10), "{counts:?}");
    }
    // The first training label of Fashion-MNIST is 9 (ankle boot), the first
    // test label too.
    assert_eq!(s.train.label(0), Some(9));
    assert_eq!(s.test.label(0), Some(9));

    let Pixels::U8(raw) = &s.test.pixels else {
        panic!("IDX pixels should stay u8")
    };
    let rows: Vec<u32> = vec![0, 1, 9_999];
    let mut out = vec![f32::NAN; 3 * 784];
    s.test.gather(&rows, &mut out);
    for (k, &r) in rows.iter().enumerate() {
        for j in 0..784 {
            let p = raw[r as usize * 784 + j];
            assert_eq!(out[k * 784 + j], p as f32 / 255.0);
        }
    }
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        out.contains(&0.0) && out.contains(&1.0),
        "full 0..255 range expected"
    );
}

#[test]
fn shipped_files_match_their_sums_and_read_idx() {
    let a = read_idx(&shipped().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(a.dims, [10_000]);
    assert_eq!(a.data.len(), 10_000);
    assert_eq!(
        a.sha256,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    );
    let sums = std::fs::read_to_string(shipped().join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&a.sha256));
}

// ---------------------------------------------------------------- IDX directories

#[test]
fn small_idx_dir_loads_gz_and_raw_identically() {
    let files = small_idx_files();
    let gz = write_dir(&files, true);
    let raw = write_dir(&files, false);
    let a = load(gz.path(), None).unwrap();
    let b = load(raw.path(), None).unwrap();
    for (x, y) in [(&a.train, &b.train), (&a.test, &b.test)] {
        assert_eq!(
            (x.rows, x.dim, x.image_shape),
            (y.rows, y.dim, y.image_shape)
        );
        assert_eq!(x.labels, y.labels);
        assert_eq!(gathered(x), gathered(y));
    }
    assert_eq!((a.train.rows, a.test.rows, a.train.dim), (12, 5, 12));
    assert_eq!(a.train.image_shape, Some((4, 3)));
    assert_eq!(a.test.labels, Some(vec![9, 0, 3, 3, 7]));
    // Unknown data: no class names, no claim of verification.
    assert!(a.class_names.is_empty());
    assert_eq!(a.class_name(3), "3");
    assert!(!a.description.contains("verified"), "{}", a.description);
    // The pixels are exactly the bytes written, scaled.
    let expect: Vec<f32> = pixels(5 * 12, 2)
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    assert_eq!(gathered(&a.test), expect);
}

#[test]
fn raw_idx_matches_gzip_on_real_data() {
    // The real test labels, decompressed next to the real gzip'd ones.
    let dir = tempfile::tempdir().unwrap();
    let gz_path = shipped().join("t10k-labels-idx1-ubyte.gz");
    let raw_path = dir.path().join("t10k-labels-idx1-ubyte");
    std::fs::write(&raw_path, gunzip(&std::fs::read(&gz_path).unwrap())).unwrap();
    let (a, b) = (read_idx(&gz_path).unwrap(), read_idx(&raw_path).unwrap());
    assert_eq!((a.dims, a.data, a.sha256), (b.dims, b.data, b.sha256));
}

#[test]
fn sha256sums_are_checked_and_reported() {
    let files = small_idx_files();
    let dir = write_dir(&files, true);
    write_sums(dir.path(), &files);
    let s = load(dir.path(), None).unwrap();
    assert!(
        s.description.contains("SHA256SUMS verified"),
        "{}",
        s.description
    );

    // One digest wrong.
    let mut bad = files.clone();
    bad[2].1[20] ^= 0xff;
    write_sums(dir.path(), &bad);
    let err = load_err(dir.path(), None);
    assert_mentions(
        &err,
        &["t10k-images-idx3-ubyte", "checksum mismatch", "SHA256SUMS"],
    );
    assert!(err.contains(&dae_data::sha256_hex(&bad[2].1)), "{err}");

    // Digests of the stored .gz files, as `sha256sum *.gz` writes them.
    let stored: Vec<(String, Vec<u8>)> = STEMS
        .iter()
        .map(|stem| {
            let name = format!("{stem}.gz");
            let bytes = std::fs::read(dir.path().join(&name)).unwrap();
            (name, bytes)
        })
        .collect();
    let sums_text = |entries: &[(String, Vec<u8>)]| -> String {
        entries
            .iter()
            .map(|(name, bytes)| format!("{}  {name}\n", dae_data::sha256_hex(bytes)))
            .collect()
    };
    std::fs::write(dir.path().join("SHA256SUMS"), sums_text(&stored)).unwrap();
    let s = load(dir.path(), None).unwrap();
    assert!(
        s.description.contains("SHA256SUMS verified"),
        "{}",
        s.description
    );
    let mut bad_gz = stored.clone();
    bad_gz[1].1.push(0);
    std::fs::write(dir.path().join("SHA256SUMS"), sums_text(&bad_gz)).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["train-labels-idx1-ubyte.gz", "checksum mismatch"]);

    // A SHA256SUMS that lists none of the files verifies nothing.
    std::fs::write(
        dir.path().join("SHA256SUMS"),
        format!("{}  other-file\n", "0".repeat(64)),
    )
    .unwrap();
    let s = load(dir.path(), None).unwrap();
    assert!(!s.description.contains("verified"), "{}", s.description);
    // One that lists some of them says so.
    std::fs::write(dir.path().join("SHA256SUMS"), sums_text(&stored[..2])).unwrap();
    let s = load(dir.path(), None).unwrap();
    assert!(
        s.description.contains("partly verified"),
        "{}",
        s.description
    );

    // A malformed SHA256SUMS names itself and the line.
    std::fs::write(dir.path().join("SHA256SUMS"), "not a digest\n").unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["SHA256SUMS", "line 1"]);
}

#[test]
fn missing_file_is_named() {
    let files = small_idx_files();
    let dir = write_dir(&files[..3], true);
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["missing", "t10k-labels-idx1-ubyte"]);

    let err = load_err(&dir.path().join("nope"), None);
    assert_mentions(&err, &["nope", "no such file or directory"]);
}

#[test]
fn truncated_gzip_is_reported() {
    let files = small_idx_files();
    let dir = write_dir(&files, true);
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["train-images-idx3-ubyte.gz", "gzip"]);
    // Only the 8-byte trailer missing.
    std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["train-images-idx3-ubyte.gz", "gzip"]);
}

#[test]
fn corrupt_gzip_stream_is_reported() {
    let files = small_idx_files();
    let dir = write_dir(&files, true);
    let path = dir.path().join("t10k-images-idx3-ubyte.gz");
    let good = std::fs::read(&path).unwrap();

    // Bytes flipped in the deflate data (after the 10-byte header).
    let mut bad = good.clone();
    for b in &mut bad[12..16] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bad).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["t10k-images-idx3-ubyte.gz", "gzip"]);

    // A wrong CRC in the trailer: the data inflates fine but is not what was
    // compressed.
    let mut bad = good.clone();
    let crc_at = bad.len() - 8;
    bad[crc_at] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["t10k-images-idx3-ubyte.gz", "gzip"]);

    // A wrong length in the trailer.
    let mut bad = good;
    let len_at = bad.len() - 4;
    bad[len_at] ^= 0x01;
    std::fs::write(&path, &bad).unwrap();
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["t10k-images-idx3-ubyte.gz", "gzip"]);
}

#[test]
fn wrong_idx_magic_is_reported() {
    for gz in [true, false] {
        let mut files = small_idx_files();
        files[1].1[0] = 0x08; // labels: 08 00 08 01
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(
            &err,
            &["train-labels-idx1-ubyte", "not an IDX file", "magic"],
        );

        // Element type other than unsigned byte (0x0D: float).
        let mut files = small_idx_files();
        files[0].1[2] = 0x0d;
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(&err, &["train-images-idx3-ubyte", "element type", "0x0d"]);

        // Nonsense dimension count.
        let mut files = small_idx_files();
        files[0].1[3] = 0;
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(&err, &["train-images-idx3-ubyte", "dimensions"]);
    }
}

#[test]
fn header_dims_that_disagree_with_size_are_reported() {
    for gz in [true, false] {
        // Header says 13 images, data holds 12.
        let mut files = small_idx_files();
        files[0].1[7] = 13;
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(
            &err,
            &[
                "train-images-idx3-ubyte",
                "[13, 4, 3]",
                "156",
                "144",
                "truncated",
            ],
        );

        // Extra bytes after the data.
        let mut files = small_idx_files();
        files[3].1.push(1);
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(&err, &["t10k-labels-idx1-ubyte", "[5]", "need 5", "has 6"]);

        // Header itself cut short.
        let mut files = small_idx_files();
        files[2].1.truncate(9);
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(&err, &["t10k-images-idx3-ubyte", "truncated IDX header"]);

        // Images stored as 2-D.
        let mut files = small_idx_files();
        files[2].1 = idx_bytes(&[5, 12], &pixels(60, 2));
        let dir = write_dir(&files, gz);
        let err = load_err(dir.path(), None);
        assert_mentions(&err, &["t10k-images-idx3-ubyte", "3-D"]);
    }
}

#[test]
fn image_and_label_counts_must_agree() {
    let mut files = small_idx_files();
    files[1].1 = idx_bytes(&[11], &[1; 11]);
    let dir = write_dir(&files, true);
    let err = load_err(dir.path(), None);
    assert_mentions(
        &err,
        &[
            "train-labels-idx1-ubyte",
            "11 labels for 12 images",
            "train-images-idx3-ubyte",
        ],
    );

    // Train and test images of different sizes.
    let mut files = small_idx_files();
    files[2].1 = idx_bytes(&[5, 3, 3], &pixels(45, 2));
    let dir = write_dir(&files, true);
    let err = load_err(dir.path(), None);
    assert_mentions(&err, &["(4, 3)", "(3, 3)"]);
}

#[test]
fn write_idx_gz_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x-idx3-ubyte.gz");
    let data = pixels(2 * 5 * 7, 9);
    write_idx_gz(&path, &[2, 5, 7], &data).unwrap();
    let a = read_idx(&path).unwrap();
    assert_eq!(a.dims, [2, 5, 7]);
    assert_eq!(a.data, data);
    assert_eq!(
        a.sha256,
        dae_data::sha256_hex(&idx_bytes(&[2, 5, 7], &data))
    );

    let err = format!(
        "{:#}",
        write_idx_gz(&dir.path().join("no/such/dir/x.gz"), &[1], &[0]).unwrap_err()
    );
    assert_mentions(&err, &["x.gz"]);
}

#[test]
fn val_data_is_refused_for_idx_and_npz() {
    let files = small_idx_files();
    let dir = write_dir(&files, true);
    let v = dir.path().join("v.npy");
    std::fs::write(&v, npy::<u8>(&[2, 12], &[0; 24])).unwrap();
    let err = load_err(dir.path(), Some(&v));
    assert_mentions(&err, &["--val-data", "IDX"]);

    let npz = dir.path().join("d.npz");
    write_npz(
        &npz,
        &[
            ("x_train", npy::<u8>(&[4, 12], &[0; 48])),
            ("x_test", npy::<u8>(&[2, 12], &[0; 24])),
        ],
    );
    let err = load_err(&npz, Some(&v));
    assert_mentions(&err, &["--val-data", "d.npz"]);
}

// ---------------------------------------------------------------- .npy / .npz

#[test]
fn npy_u8_2d_holds_out_last_tenth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let data = pixels(20 * 6, 3);
    std::fs::write(&path, npy::<u8>(&[20, 6], &data)).unwrap();
    let s = load(&path, None).unwrap();
    assert_eq!((s.train.rows, s.test.rows, s.train.dim), (18, 2, 6));
    assert_eq!(s.train.image_shape, None);
    assert!(s.train.labels.is_none());
    assert!(
        s.description.contains("last 2 samples held out"),
        "{}",
        s.description
    );
    let scaled: Vec<f32> = data.iter().map(|&p| p as f32 / 255.0).collect();
    assert_eq!(gathered(&s.train), scaled[..18 * 6]);
    assert_eq!(gathered(&s.test), scaled[18 * 6..]);

    // Too few samples to hold out a tenth.
    std::fs::write(&path, npy::<u8>(&[3, 6], &data[..18])).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["x.npy", "too few", "--val-data"]);
}

#[test]
fn npy_f32_3d_with_validation_file() {
    let dir = tempfile::tempdir().unwrap();
    let (train, val) = (dir.path().join("train.npy"), dir.path().join("val.npy"));
    let t: Vec<f32> = unit_values(7 * 2 * 3).iter().map(|&v| v as f32).collect();
    let v: Vec<f32> = unit_values(4 * 2 * 3)
        .iter()
        .map(|&v| 1.0 - v as f32)
        .collect();
    std::fs::write(&train, npy::<f32>(&[7, 2, 3], &t)).unwrap();
    std::fs::write(&val, npy::<f32>(&[4, 2, 3], &v)).unwrap();
    let s = load(&train, Some(&val)).unwrap();
    assert_eq!((s.train.rows, s.test.rows, s.train.dim), (7, 4, 6));
    assert_eq!(s.train.image_shape, Some((2, 3)));
    assert_eq!(f32_pixels(&s.train), &t[..]);
    assert_eq!(gathered(&s.test), v);
    assert!(s.description.contains("val.npy"), "{}", s.description);

    // [n, h, w, 1] is an image stack too.
    std::fs::write(&train, npy::<f32>(&[7, 2, 3, 1], &t)).unwrap();
    let s = load(&train, Some(&val)).unwrap();
    assert_eq!((s.train.dim, s.train.image_shape), (6, Some((2, 3))));
}

#[test]
fn npy_f64_is_converted_to_f32() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x64.npy");
    let data = unit_values(10 * 4);
    std::fs::write(&path, npy::<f64>(&[10, 4], &data)).unwrap();
    let s = load(&path, None).unwrap();
    assert_eq!((s.train.rows, s.test.rows), (9, 1));
    let all: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    assert_eq!(f32_pixels(&s.train), &all[..36]);
    assert_eq!(f32_pixels(&s.test), &all[36..]);
}

#[test]
fn npy_unsupported_dtypes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.npy");
    for (descr, size) in [("<c8", 8), ("|S4", 4), ("<U2", 8), ("|b1", 1), ("<f2", 2)] {
        std::fs::write(
            &path,
            raw_npy(descr, &shape_tuple(&[10, 3]), &vec![0u8; 30 * size]),
        )
        .unwrap();
        let err = load_err(&path, None);
        assert_mentions(&err, &["odd.npy", "dtype"]);
    }
    // Integer samples other than uint8.
    std::fs::write(&path, npy::<i32>(&[10, 3], &[1; 30])).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["odd.npy", "uint8"]);
    // Not an .npy at all.
    std::fs::write(&path, b"hello").unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["odd.npy", "not a valid .npy"]);
    // Payload shorter than the header's shape.
    let mut short = npy::<f32>(&[10, 3], &[0.5; 30]);
    short.truncate(short.len() - 4);
    std::fs::write(&path, short).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["odd.npy"]);
}

#[test]
fn npy_non_finite_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nan.npy");
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut data = vec![0.5f32; 30];
        data[17] = bad;
        std::fs::write(&path, npy::<f32>(&[10, 3], &data)).unwrap();
        let err = load_err(&path, None);
        assert_mentions(&err, &["nan.npy", "non-finite", "index 17"]);
    }
    let mut data = vec![0.5f64; 30];
    data[3] = f64::NAN;
    std::fs::write(&path, npy::<f64>(&[10, 3], &data)).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["nan.npy", "non-finite", "index 3"]);
}

#[test]
fn npy_values_outside_unit_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("range.npy");
    for bad in [1.5f32, -0.25, 255.0] {
        let mut data = vec![0.5f32; 30];
        data[4] = bad;
        std::fs::write(&path, npy::<f32>(&[10, 3], &data)).unwrap();
        let err = load_err(&path, None);
        assert_mentions(&err, &["range.npy", "outside [0, 1]", "index 4"]);
    }
    // A float64 too large for f32 is refused too.
    let mut data = vec![0.5f64; 30];
    data[5] = 1e300;
    std::fs::write(&path, npy::<f64>(&[10, 3], &data)).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["range.npy", "index 5"]);
    // Exactly 0 and 1 are fine.
    let data: Vec<f32> = (0..30).map(|i| (i % 2) as f32).collect();
    std::fs::write(&path, npy::<f32>(&[10, 3], &data)).unwrap();
    load(&path, None).unwrap();
}

#[test]
fn npy_wrong_ndim_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nd.npy");
    for shape in [vec![30u64], vec![2, 3, 5, 1, 1], vec![5, 2, 1, 3]] {
        std::fs::write(&path, npy::<u8>(&shape, &[0; 30])).unwrap();
        let err = load_err(&path, None);
        assert_mentions(&err, &["nd.npy", "expected shape"]);
    }
    // Empty arrays.
    std::fs::write(&path, npy::<u8>(&[0, 3], &[])).unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["nd.npy", "empty"]);
}

#[test]
fn npy_validation_width_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let (train, val) = (dir.path().join("t.npy"), dir.path().join("v.npy"));
    std::fs::write(&train, npy::<u8>(&[6, 5], &[1; 30])).unwrap();
    std::fs::write(&val, npy::<u8>(&[2, 4], &[1; 8])).unwrap();
    let err = load_err(&train, Some(&val));
    assert_mentions(&err, &["v.npy", "4 values per sample", "t.npy", "5"]);

    // A bad validation file is named as such.
    std::fs::write(&val, npy::<f32>(&[2, 5], &[2.0; 10])).unwrap();
    let err = load_err(&train, Some(&val));
    assert_mentions(&err, &["--val-data", "v.npy", "outside [0, 1]"]);
    let err = load_err(&train, Some(&dir.path().join("missing.npy")));
    assert_mentions(&err, &["--val-data", "missing.npy"]);
}

#[test]
fn npz_with_and_without_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.npz");
    let xt = pixels(8 * 2 * 2, 5);
    let xs: Vec<f32> = unit_values(3 * 4).iter().map(|&v| v as f32).collect();
    write_npz(
        &path,
        &[
            ("x_train", npy::<u8>(&[8, 2, 2], &xt)),
            ("y_train", npy::<i64>(&[8], &[0, 1, 2, 3, 4, 5, 6, 7])),
            ("x_test", npy::<f32>(&[3, 4], &xs)),
            ("y_test", npy::<u8>(&[3], &[2, 2, 9])),
        ],
    );
    let s = load(&path, None).unwrap();
    assert_eq!(
        (s.train.rows, s.test.rows, s.train.dim, s.test.dim),
        (8, 3, 4, 4)
    );
    assert_eq!(s.train.image_shape, Some((2, 2)));
    assert_eq!(s.train.label(7), Some(7));
    assert_eq!(s.test.labels, Some(vec![2, 2, 9]));
    assert_eq!(gathered(&s.test), xs);
    assert!(s.description.contains("npz"), "{}", s.description);

    // Without labels.
    write_npz(
        &path,
        &[
            ("x_train", npy::<f64>(&[5, 4], &unit_values(20))),
            ("x_test", npy::<f64>(&[2, 4], &unit_values(8))),
        ],
    );
    let s = load(&path, None).unwrap();
    assert!(s.train.labels.is_none() && s.test.labels.is_none());

    // Labels that do not fit.
    write_npz(
        &path,
        &[
            ("x_train", npy::<u8>(&[5, 4], &[0; 20])),
            ("y_train", npy::<i64>(&[4], &[0; 4])),
            ("x_test", npy::<u8>(&[2, 4], &[0; 8])),
        ],
    );
    let err = load_err(&path, None);
    assert_mentions(&err, &["d.npz", "x_train", "labels"]);
    write_npz(
        &path,
        &[
            ("x_train", npy::<u8>(&[5, 4], &[0; 20])),
            ("y_train", npy::<i64>(&[5], &[0, 1, -1, 0, 0])),
            ("x_test", npy::<u8>(&[2, 4], &[0; 8])),
        ],
    );
    let err = load_err(&path, None);
    assert_mentions(&err, &["d.npz", "label -1"]);
}

#[test]
fn npz_errors_name_the_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npz");
    write_npz(&path, &[("x_train", npy::<u8>(&[5, 4], &[0; 20]))]);
    let err = load_err(&path, None);
    assert_mentions(&err, &["bad.npz", "x_test", "x_train"]);

    write_npz(
        &path,
        &[
            ("x_train", npy::<u8>(&[5, 4], &[0; 20])),
            ("x_test", npy::<u8>(&[2, 3], &[0; 6])),
        ],
    );
    let err = load_err(&path, None);
    assert_mentions(&err, &["bad.npz", "4 values", "3"]);

    let mut nan = vec![0.5f32; 6];
    nan[1] = f32::NAN;
    write_npz(
        &path,
        &[
            ("x_train", npy::<u8>(&[5, 3], &[0; 15])),
            ("x_test", npy::<f32>(&[2, 3], &nan)),
        ],
    );
    let err = load_err(&path, None);
    assert_mentions(&err, &["bad.npz", "x_test", "non-finite"]);

    write_npz(
        &path,
        &[
            ("x_train", raw_npy("<c16", &shape_tuple(&[5, 3]), &[0; 240])),
            ("x_test", npy::<u8>(&[2, 3], &[0; 6])),
        ],
    );
    let err = load_err(&path, None);
    assert_mentions(&err, &["bad.npz", "x_train", "dtype"]);

    std::fs::write(&path, b"PK but not really").unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["bad.npz", "not a valid .npz"]);
}

#[test]
fn unknown_file_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.csv");
    std::fs::write(&path, "1,2,3\n").unwrap();
    let err = load_err(&path, None);
    assert_mentions(&err, &["data.csv", ".npz", ".npy"]);
}
