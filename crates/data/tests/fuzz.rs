//! Fuzz targets for the data parsers (issue 10): IDX (raw and gzip'd),
//! `.npy`, `.npz` and `SHA256SUMS`, each a seeded mutation loop over valid
//! files that fails on any panic or oversize allocation. `DAE_FUZZ_CASES`
//! and `DAE_FUZZ_SEED` scale or vary them; the defaults are fixed.

use dae_data::testing::fuzz::{self, Mutator};
use dae_data::testing::{gzip_fast, idx_bytes, npy_with_order};
use std::io::Write;

#[global_allocator]
static ALLOC: fuzz::Capped = fuzz::Capped;

/// A valid IDX image (images [n, h, w] or labels [n]) with its size fields,
/// type and dimension count mutated, and sometimes random bytes too.
fn mutated_idx(m: &mut Mutator, labels: bool) -> Vec<u8> {
    let n = 1 + m.below(6) as u32;
    let dims = if labels {
        vec![n]
    } else {
        vec![n, 1 + m.below(5) as u32, 1 + m.below(5) as u32]
    };
    let len: u32 = dims.iter().product();
    let data: Vec<u8> = (0..len).map(|i| (i % 10) as u8).collect();
    let mut b = idx_bytes(&dims, &data);
    match m.below(4) {
        0 => {
            let at = 4 + 4 * m.below(dims.len());
            m.set_int(&mut b, at, 4, true);
        }
        1 => b[3] = m.below(8) as u8,
        2 => b[2] = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e][m.below(6)],
        _ => {}
    }
    if m.chance(2) {
        m.mutate_bytes(&mut b);
    }
    b
}

#[test]
fn fuzz_idx_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    fuzz::run(
        "idx",
        1,
        fuzz::cases(3000),
        |m| {
            let labels = m.chance(2);
            let raw = mutated_idx(m, labels);
            if m.chance(2) {
                let mut gz = gzip_fast(&raw);
                if m.chance(3) {
                    m.mutate_bytes(&mut gz);
                }
                gz
            } else {
                raw
            }
        },
        |bytes| {
            let path = dir.path().join("train-images-idx3-ubyte");
            std::fs::write(&path, bytes).unwrap();
            dae_data::read_idx(&path)
        },
    );
}

const DTYPES: &[(&str, usize)] = &[
    ("|u1", 1),
    ("<f4", 4),
    ("<f8", 8),
    ("<i8", 8),
    ("<u4", 4),
    ("<i2", 2),
    (">f4", 4),
    ("|b1", 1),
    ("<c8", 8),
    ("<U3", 12),
    ("|O", 8),
    ("<f2", 2),
    ("|V4", 4),
];

/// A `.npy` with a random dtype and shape whose header is then mutated:
/// a shape of interesting numbers, a wrong dtype or order, a header length
/// field or random bytes.
fn mutated_npy(m: &mut Mutator) -> Vec<u8> {
    let (descr, width) = DTYPES[m.below(DTYPES.len())];
    let dims: Vec<u64> = (0..1 + m.below(4))
        .map(|_| 1 + m.below(12) as u64)
        .collect();
    let count: u64 = dims.iter().product();
    // Values in [0, 1] for floats, small for integers.
    let payload: Vec<u8> = match descr {
        "<f4" => (0..count)
            .flat_map(|i| (i as f32 / count as f32).to_le_bytes())
            .collect(),
        "<f8" => (0..count)
            .flat_map(|i| (i as f64 / count as f64).to_le_bytes())
            .collect(),
        _ => (0..count as usize * width).map(|i| (i % 3) as u8).collect(),
    };
    let mut shape: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    if m.chance(2) {
        let i = m.below(shape.len());
        shape[i] = m.number().to_string();
    }
    if m.chance(6) {
        shape.push(m.number().to_string());
    }
    let shape_text = if shape.len() == 1 {
        format!("({},)", shape[0])
    } else {
        format!("({})", shape.join(", "))
    };
    let mut b = npy_with_order(descr, &shape_text, m.chance(8), &payload);
    if m.chance(6) {
        m.set_int(&mut b, 8, 2, false);
    }
    if m.chance(3) {
        m.mutate_bytes(&mut b);
    }
    b
}

#[test]
fn fuzz_npy() {
    let dir = tempfile::tempdir().unwrap();
    fuzz::run("npy", 2, fuzz::cases(4000), mutated_npy, |bytes| {
        // The whole load (shapes to datasets), then the array parser alone.
        let path = dir.path().join("x.npy");
        std::fs::write(&path, bytes).unwrap();
        let _ = dae_data::load(&path, None);
        dae_data::read_array(bytes, "fuzz.npy")
    });
}

/// Overwrites the size fields of each local and central zip header with
/// interesting values.
fn mutate_zip_sizes(m: &mut Mutator, bytes: &mut [u8]) {
    for i in 0..bytes.len().saturating_sub(46) {
        let fields: &[usize] = match bytes[i..i + 4] {
            [0x50, 0x4b, 0x03, 0x04] => &[18, 22, 26, 28],
            [0x50, 0x4b, 0x01, 0x02] => &[20, 24, 28, 30, 42],
            [0x50, 0x4b, 0x05, 0x06] => &[8, 10, 12, 16],
            _ => continue,
        };
        if m.chance(2) {
            let f = fields[m.below(fields.len())];
            let width = if f >= 26 && f != 42 { 2 } else { 4 };
            m.set_int(bytes, i + f, width, false);
        }
    }
}

fn mutated_npz(m: &mut Mutator) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if m.chance(2) {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .large_file(m.chance(3));
    let train = npy_with_order("|u1", "(3, 2, 2)", false, &[7; 12]);
    let test = npy_with_order("|u1", "(2, 2, 2)", false, &[9; 8]);
    let labels: Vec<u8> = [1i64, 0, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let labels = npy_with_order("<i8", "(3,)", false, &labels);
    for (name, mut bytes) in [("x_train", train), ("x_test", test), ("y_train", labels)] {
        if m.chance(3) {
            bytes = mutated_npy(m);
        }
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    let mut bytes = zip.finish().unwrap().into_inner();
    match m.below(3) {
        0 => mutate_zip_sizes(m, &mut bytes),
        1 => m.mutate_bytes(&mut bytes),
        _ => {}
    }
    bytes
}

#[test]
fn fuzz_npz() {
    let dir = tempfile::tempdir().unwrap();
    fuzz::run("npz", 3, fuzz::cases(2000), mutated_npz, |bytes| {
        let path = dir.path().join("d.npz");
        std::fs::write(&path, bytes).unwrap();
        dae_data::load(&path, None)
    });
}

/// A valid 4-file IDX directory's SHA256SUMS, mutated line by line.
fn mutated_sums(m: &mut Mutator, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut text = String::new();
    for (name, bytes) in files {
        let raw = name.trim_end_matches(".gz");
        let digest = dae_data::sha256_hex(&if name.ends_with(".gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            bytes.clone()
        });
        match m.below(6) {
            0 => text += &format!("{}  {raw}\n", &digest[..m.below(64)]),
            1 => text += &format!("{digest}\n"),
            2 => text += &format!("{digest} *{raw}\n# comment\n\n"),
            3 => text += &format!("{}  {raw}\n", "0".repeat(64)),
            _ => text += &format!("{digest}  {raw}\n"),
        }
    }
    let mut bytes = text.into_bytes();
    if m.chance(3) {
        m.mutate_bytes(&mut bytes);
    }
    bytes
}

#[test]
fn fuzz_sha256sums() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "train-images-idx3-ubyte.gz",
            gzip_fast(&idx_bytes(&[4, 2, 2], &[9; 16])),
        ),
        ("train-labels-idx1-ubyte", idx_bytes(&[4], &[0, 1, 2, 3])),
        (
            "t10k-images-idx3-ubyte.gz",
            gzip_fast(&idx_bytes(&[2, 2, 2], &[7; 8])),
        ),
        (
            "t10k-labels-idx1-ubyte.gz",
            gzip_fast(&idx_bytes(&[2], &[0, 1])),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let accepted = fuzz::run(
        "sha256sums",
        4,
        fuzz::cases(1000),
        |m| mutated_sums(m, &files),
        |bytes| {
            std::fs::write(dir.path().join("SHA256SUMS"), bytes).unwrap();
            dae_data::load(dir.path(), None)
        },
    );
    // The mutations keep some lists valid: the loop reaches the loader.
    assert!(accepted > 0);
}
