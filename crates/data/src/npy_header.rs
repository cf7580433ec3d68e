//! The part of a `.npy` header that sizes things, read before npyz sees the
//! file: npyz trusts the header's length field (allocating up to 4 GiB for
//! it) and multiplies the shape without overflow checks, so both are checked
//! here against the bytes actually present.

use crate::error::{fail, Error, Result};

/// Where the array data starts and the shape the header declares.
pub struct Declared {
    pub data_offset: usize,
    pub shape: Vec<u64>,
}

/// Reads the magic, the header length and the `'shape'` tuple of a `.npy`
/// image, and checks that the header fits in the file and that the shape's
/// product does not exceed the data bytes present (each value takes at
/// least one).
pub fn declared(bytes: &[u8], what: &str) -> Result<Declared> {
    if bytes.len() < 10 || !bytes.starts_with(b"\x93NUMPY") {
        fail!(format, what, "not a valid .npy array (no \\x93NUMPY magic)");
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => fail!(format, what, "not a valid .npy array (format version {v})"),
    };
    let data_offset = start
        .checked_add(len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            Error::too_large(
                what,
                format!(
                    ".npy header claims {len} bytes but the file has {}",
                    bytes.len() - start
                ),
            )
        })?;
    let header = String::from_utf8_lossy(&bytes[start..data_offset]);
    let shape = parse_shape(&header)
        .ok_or_else(|| Error::format(what, ".npy header has no readable 'shape' tuple"))?;
    let present = (bytes.len() - data_offset) as u64;
    // npyz also multiplies the trailing dimensions for strides, so the
    // product of the non-zero ones must not overflow even when one is zero.
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let empty = shape.contains(&0);
    match nonzero {
        Some(_) if empty => {}
        Some(n) if n <= present => {}
        _ => fail!(
            too_large,
            what,
            ".npy shape {shape:?} needs more values than the {present} data bytes present \
             (truncated file or a corrupt header)"
        ),
    }
    Ok(Declared { data_offset, shape })
}

/// The integers of the `'shape': (a, b, …)` entry of a header dict.
fn parse_shape(header: &str) -> Option<Vec<u64>> {
    let key = header
        .find("'shape'")
        .or_else(|| header.find("\"shape\""))?;
    let rest = header[key + 7..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse::<u64>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse() {
        assert_eq!(parse_shape("{'shape': (3, 4), }"), Some(vec![3, 4]));
        assert_eq!(parse_shape("{'shape':(5,)}"), Some(vec![5]));
        assert_eq!(parse_shape("{'shape': ()}"), Some(vec![]));
        assert_eq!(parse_shape("{'shape': (a,)}"), None);
        assert_eq!(parse_shape("{'descr': '<f4'}"), None);
    }
}
