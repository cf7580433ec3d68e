//! Resolving `--data`: a directory of IDX files, an `.npz` archive holding
//! x_train/x_test (and optionally y_train/y_test, as Keras' mnist.npz), or an
//! `.npy` array of training samples.

use crate::checksum::{known_dataset, read_sums};
use crate::error::{fail, Error, Result};
use crate::npy::{read_npy_file, read_npz_file, NpyArray, NpyData};
use crate::{read_idx, Dataset, Pixels};
use std::path::{Path, PathBuf};

pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Fraction held out (from the end, as Keras' validation_split) when a bare
/// `.npy` comes without validation data.
const DEFAULT_VALIDATION_SPLIT: f64 = 0.1;

pub struct DataSplits {
    pub train: Dataset,
    pub test: Dataset,
    /// Display names of the label values, when known.
    pub class_names: Vec<String>,
    /// What was loaded, for logs and checkpoint metadata.
    pub description: String,
}

impl DataSplits {
    pub fn class_name(&self, label: u32) -> String {
        self.class_names
            .get(label as usize)
            .cloned()
            .unwrap_or_else(|| label.to_string())
    }
}

/// Loads the dataset at `path`; `validation` optionally names a separate
/// validation array for `.npy` training data.
pub fn load(path: &Path, validation: Option<&Path>) -> Result<DataSplits> {
    if !path.exists() {
        fail!(not_data, path, "no such file or directory");
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if path.is_dir() {
        if validation.is_some() {
            fail!(
                usage,
                "--val-data",
                "{} is an IDX directory, which brings its own test split",
                path.display()
            );
        }
        load_idx_dir(path)
    } else if ext == "npz" {
        if let Some(v) = validation {
            fail!(
                usage,
                format!("--val-data {}", v.display()),
                "{} is an .npz archive, which brings its own x_test split",
                path.display()
            );
        }
        load_npz(path)
    } else if ext == "npy" {
        load_npy(path, validation)
    } else {
        fail!(
            not_data,
            path,
            "expected a directory of IDX files, an .npz or an .npy file"
        )
    }
}

fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for name in [stem, &dotted] {
        for suffix in [".gz", ""] {
            let p = dir.join(format!("{name}{suffix}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    fail!(
        not_data,
        dir,
        "missing {stem}[.gz] (an IDX dataset directory holds train-images-idx3-ubyte, \
         train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte)"
    )
}

fn load_idx_dir(dir: &Path) -> Result<DataSplits> {
    let sums = read_sums(dir)?;
    let mut known = Vec::new();
    let mut checked = 0;
    let mut split = |images: &str, labels: &str, name: &str| -> Result<Dataset> {
        let mut arrays = Vec::new();
        for stem in [images, labels] {
            let path = find_file(dir, stem)?;
            let array = read_idx(&path)?;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let uncompressed = file_name.trim_end_matches(".gz");
            // SHA256SUMS may list the decompressed file (as ours does) or
            // the file as stored (as `sha256sum *.gz` writes it).
            let (expected, actual, what) =
                if let Some(e) = sums.get(uncompressed).or(sums.get(stem)) {
                    (Some(e), array.sha256.clone(), "the decompressed data")
                } else if let Some(e) = sums.get(&file_name) {
                    let stored = crate::read_regular(&path)?;
                    (Some(e), crate::sha256_hex(&stored), "the file")
                } else {
                    (None, String::new(), "")
                };
            if let Some(expected) = expected {
                if *expected != actual {
                    return Err(Error::Checksum {
                        path,
                        of: what,
                        actual,
                        expected: expected.clone(),
                    });
                }
                checked += 1;
            }
            known.push(known_dataset(&array.sha256));
            arrays.push((path, array));
        }
        let (labels_path, labels) = arrays.pop().unwrap();
        let (images_path, images) = arrays.pop().unwrap();
        if images.dims.len() != 3 {
            fail!(
                format,
                images_path.display(),
                "expected a 3-D image array, header says {:?}",
                images.dims
            );
        }
        if labels.dims.len() != 1 {
            fail!(
                format,
                labels_path.display(),
                "expected a 1-D label array, header says {:?}",
                labels.dims
            );
        }
        let (rows, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
        if labels.dims[0] != rows {
            fail!(
                format,
                labels_path.display(),
                "{} labels for {rows} images in {}",
                labels.dims[0],
                images_path.display()
            );
        }
        let Some(dim) = h.checked_mul(w) else {
            fail!(
                too_large,
                images_path.display(),
                "image shape {h}×{w} overflows"
            );
        };
        if rows == 0 || dim == 0 {
            fail!(format, images_path.display(), "empty image array");
        }
        Ok(Dataset {
            name: name.to_string(),
            rows,
            dim,
            pixels: Pixels::U8(images.data.into()),
            labels: Some(labels.data.into_iter().map(u32::from).collect()),
            image_shape: Some((h, w)),
        })
    };
    let train = split(
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "train",
    )?;
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "test")?;
    if train.dim != test.dim {
        fail!(
            format,
            dir.display(),
            "train images are {:?} but test images are {:?}",
            train.image_shape.unwrap(),
            test.image_shape.unwrap()
        );
    }
    let fashion = known.iter().all(|k| *k == Some("fashion-mnist"));
    let class_names = if fashion {
        FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    let verified = if fashion {
        ", checksums verified"
    } else if checked == 4 {
        ", SHA256SUMS verified"
    } else if checked > 0 {
        ", partly verified: SHA256SUMS lists only some of the files"
    } else {
        ""
    };
    Ok(DataSplits {
        description: format!(
            "{} (IDX{}): {} train / {} test, {} values each",
            dir.display(),
            verified,
            train.rows,
            test.rows,
            train.dim
        ),
        train,
        test,
        class_names,
    })
}

/// Builds a dataset from a sample array: [n, d], [n, h, w] or [n, h, w, 1].
fn dataset_from_array(
    array: NpyArray,
    labels: Option<NpyArray>,
    what: &str,
    name: &str,
) -> Result<Dataset> {
    let shape = array.shape.clone();
    let (rows, dim, image_shape) = match shape[..] {
        [n, d] => (n, d, None),
        [n, h, w] | [n, h, w, 1] => match h.checked_mul(w) {
            Some(d) => (n, d, Some((h, w))),
            None => fail!(too_large, what, "image shape {h}×{w} overflows"),
        },
        _ => fail!(
            format,
            what,
            "expected shape [n, d], [n, h, w] or [n, h, w, 1], found {shape:?}"
        ),
    };
    if rows == 0 || dim == 0 {
        fail!(format, what, "empty array (shape {shape:?})");
    }
    let pixels = match array.data {
        NpyData::U8(p) => Pixels::U8(p.into()),
        NpyData::F32(p) => {
            if let Some(i) = p.iter().position(|v| !v.is_finite()) {
                fail!(format, what, "non-finite value {} at flat index {i}", p[i]);
            }
            if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
                fail!(
                    format,
                    what,
                    "value {} at flat index {i} is outside [0, 1] (floats must be scaled; \
                     uint8 arrays are scaled by 1/255)",
                    p[i]
                );
            }
            Pixels::F32(p.into())
        }
        NpyData::Int(_) => fail!(format, what, "integer samples must be uint8 (0–255)"),
    };
    let labels = match labels {
        None => None,
        Some(l) => {
            let values: Vec<i64> = match l.data {
                NpyData::Int(v) => v,
                NpyData::U8(v) => v.into_iter().map(i64::from).collect(),
                NpyData::F32(_) => fail!(format, what, "labels must be integers"),
            };
            if l.shape.len() != 1 || values.len() != rows {
                fail!(
                    format,
                    what,
                    "labels of shape {:?} for {rows} samples",
                    l.shape
                );
            }
            if let Some(v) = values
                .iter()
                .find(|&&v| !(0..=u32::MAX as i64).contains(&v))
            {
                fail!(too_large, what, "label {v} is negative or too large");
            }
            Some(values.into_iter().map(|v| v as u32).collect())
        }
    };
    Ok(Dataset {
        name: name.to_string(),
        rows,
        dim,
        pixels,
        labels,
        image_shape,
    })
}

fn load_npz(path: &Path) -> Result<DataSplits> {
    let p = path.display().to_string();
    let mut arrays = read_npz_file(path)?;
    let names: Vec<String> = arrays.iter().map(|(n, _)| n.clone()).collect();
    let mut take = |name: &str| {
        arrays
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| arrays.swap_remove(i).1)
    };
    let (Some(x_train), Some(x_test)) = (take("x_train"), take("x_test")) else {
        fail!(
            format,
            p,
            "expected arrays x_train and x_test (optionally y_train, y_test); found {names:?}"
        );
    };
    let (y_train, y_test) = (take("y_train"), take("y_test"));
    let train = dataset_from_array(x_train, y_train, &format!("{p}: x_train"), "train")?;
    let test = dataset_from_array(x_test, y_test, &format!("{p}: x_test"), "test")?;
    if train.dim != test.dim {
        fail!(
            format,
            p,
            "x_train has {} values per sample but x_test has {}",
            train.dim,
            test.dim
        );
    }
    Ok(DataSplits {
        description: format!(
            "{p} (npz): {} train / {} test, {} values each",
            train.rows, test.rows, train.dim
        ),
        train,
        test,
        class_names: Vec::new(),
    })
}

fn load_npy(path: &Path, validation: Option<&Path>) -> Result<DataSplits> {
    let p = path.display().to_string();
    let all = dataset_from_array(
        read_npy_file(path).map_err(|e| e.context("--data"))?,
        None,
        &p,
        "train",
    )?;
    let (train, test, how) = match validation {
        Some(v) => {
            let vp = v.display().to_string();
            let array = read_npy_file(v).map_err(|e| e.context("--val-data"))?;
            let test = dataset_from_array(array, None, &format!("--val-data {vp}"), "test")?;
            if test.dim != all.dim {
                fail!(
                    usage,
                    vp,
                    "{} values per sample, but {p} has {}",
                    test.dim,
                    all.dim
                );
            }
            (all, test, format!("validation from {vp}"))
        }
        None => {
            let held = ((all.rows as f64) * DEFAULT_VALIDATION_SPLIT).round() as usize;
            if held == 0 || held == all.rows {
                fail!(
                    format,
                    p,
                    "{} samples are too few to hold out a validation split; pass --val-data",
                    all.rows
                );
            }
            let cut = all.rows - held;
            let train = all.select(&(0..cut).collect::<Vec<_>>(), "train");
            let test = all.select(&(cut..all.rows).collect::<Vec<_>>(), "validation");
            (
                train,
                test,
                format!("last {held} samples held out for validation"),
            )
        }
    };
    Ok(DataSplits {
        description: format!(
            "{p} (npy): {} train / {} validation, {} values each; {how}",
            train.rows, test.rows, train.dim
        ),
        train,
        test,
        class_names: Vec::new(),
    })
}
