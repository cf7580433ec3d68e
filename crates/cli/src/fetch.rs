//! Downloading MNIST: the official mirrors (or one given), each file
//! bounded in size and verified against its published MD5 before it is
//! written, then parsed as IDX and its SHA-256 recorded in SHA256SUMS.

use anyhow::{anyhow, bail, Result};
use dae_data::read_idx;
use md5::{Digest, Md5};
use std::io::Read;
use std::path::Path;

/// Official MNIST mirrors, tried in order.
const MNIST_MIRRORS: &[&str] = &[
    "https://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
];

/// MNIST's files with the MD5 of each .gz as published by torchvision.
const MNIST_FILES: &[(&str, &str)] = &[
    (
        "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
];

/// Largest file accepted from a mirror (MNIST's biggest is 9.9 MB).
const MAX_DOWNLOAD: u64 = 64 << 20;

fn download(url: &str) -> Result<Vec<u8>> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .new_agent();
    let mut response = agent.get(url).call().map_err(|e| anyhow!("{url}: {e}"))?;
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("{url}: download interrupted ({e})"))?;
    Ok(bytes)
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Downloads MNIST's four .gz files into `out` (an existing, writable
/// directory) from `mirror` or else the official mirrors, each verified by
/// MD5 and parsed as IDX, and writes their SHA256SUMS beside them. Files
/// already there that are not MNIST's are refused, never replaced.
pub fn mnist(out: &Path, mirror: Option<&str>) -> Result<()> {
    let mirrors: Vec<String> = match mirror {
        Some(m) => vec![if m.ends_with('/') {
            m.to_string()
        } else {
            format!("{m}/")
        }],
        None => MNIST_MIRRORS.iter().map(|m| m.to_string()).collect(),
    };
    // A file of the same name that is not the official one is the user's:
    // refuse before downloading rather than replace it.
    for (name, md5) in MNIST_FILES {
        let path = out.join(name);
        if path.exists() && md5_hex(&dae_data::read_regular(&path)?) != *md5 {
            bail!(
                "--out {}: {name} there is not MNIST's (its MD5 differs); refusing to replace it \
                 (move it away or pass another --out)",
                out.display()
            );
        }
    }
    let mut sums = String::new();
    for (name, md5) in MNIST_FILES {
        let mut errors = Vec::new();
        let mut got = None;
        for mirror in &mirrors {
            let url = format!("{mirror}{name}");
            match download(&url) {
                Ok(bytes) if md5_hex(&bytes) == *md5 => {
                    got = Some(bytes);
                    break;
                }
                Ok(bytes) => errors.push(format!(
                    "{url}: checksum mismatch (MD5 {}, expected {md5}; {} bytes)",
                    md5_hex(&bytes),
                    bytes.len()
                )),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        let Some(bytes) = got else {
            bail!(
                "could not download {name}:\n  {}\nWithout a network: get the four MNIST files \
                 (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, \
                 t10k-labels-idx1-ubyte.gz) another way, put them in one directory and pass --data DIR",
                errors.join("\n  ")
            );
        };
        let path = out.join(name);
        dae_data::write_atomically(&path, &bytes)?;
        // Parse it as IDX (and record the digest of the decompressed bytes).
        let idx = read_idx(&path)?;
        sums += &format!("{}  {}\n", idx.sha256, name.trim_end_matches(".gz"));
        say!("{}: {} bytes, MD5 verified", path.display(), bytes.len());
    }
    let sums_path = out.join("SHA256SUMS");
    if sums_path.exists() && dae_data::read_regular(&sums_path)? != sums.as_bytes() {
        bail!(
            "--out {}: its SHA256SUMS is not the one dae writes for MNIST; refusing to replace it \
             (the four .gz files are verified and in place)",
            out.display()
        );
    }
    dae_data::write_atomically(&sums_path, sums.as_bytes())?;
    Ok(())
}
