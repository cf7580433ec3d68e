//! Datasets for dae: IDX files (gzip'd or raw, checksummed), `.npy`/`.npz`
//! arrays, held in memory as u8 or f32 and gathered into f32 batches.

mod checksum;
mod dataset;
mod error;
mod files;
mod idx;
mod npy;
mod npy_header;
mod source;
#[cfg(feature = "testing")]
pub mod testing;
mod upscale;

pub use checksum::sha256_hex;
pub use dataset::{Dataset, Pixels};
pub use error::{Error, Result};
pub use files::{
    open_regular, read_regular, read_regular_text, remove_orphan_temp_files, temp_file_beside,
    write_atomically, TEMP_PREFIX,
};
pub use idx::{read_idx, write_idx_gz, IdxArray};
pub use npy::{npy_bytes, read_array, write_npz_entry, NpyArray};
pub use source::{load, DataSplits, FASHION_CLASSES};
pub use upscale::upscaled;
