//! SHA-256 of decompressed bytes, against a `SHA256SUMS` file beside the data
//! and against the digests of the datasets we know.

use crate::error::{fail, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// (dataset, file name, SHA-256 of the decompressed file).
pub const KNOWN_FILES: &[(&str, &str, &str)] = &[
    (
        "fashion-mnist",
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "fashion-mnist",
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "fashion-mnist",
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "fashion-mnist",
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The dataset a file's digest identifies, if any.
pub fn known_dataset(digest: &str) -> Option<&'static str> {
    KNOWN_FILES
        .iter()
        .find(|(_, _, d)| *d == digest)
        .map(|(name, _, _)| *name)
}

/// Parses `SHA256SUMS` (`<hex>  <name>` lines) in `dir`, if present.
pub fn read_sums(dir: &Path) -> Result<HashMap<String, String>> {
    let path = dir.join("SHA256SUMS");
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let text = crate::read_regular_text(&path)?;
    let mut sums = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(hex), Some(name)) if hex.len() == 64 => {
                sums.insert(name.trim_start_matches('*').to_string(), hex.to_lowercase());
            }
            _ => fail!(
                format,
                path.display(),
                "line {}: expected '<sha256>  <file name>'",
                n + 1
            ),
        }
    }
    Ok(sums)
}
