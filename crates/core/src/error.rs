//! The core library's errors, by kind, so callers and tests can tell a
//! driver failure from a shape the kernels cannot take without matching text.

/// What went wrong in dae-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A size the kernels' 32-bit arguments or a buffer cannot hold.
    #[error("{0}")]
    TooLarge(String),
    /// An op whose buffers do not fit its launch plan (a missing split-K
    /// work buffer, a copy past a buffer's end).
    #[error("{0}")]
    Plan(String),
    /// No usable GPU here: no driver, no NVRTC, or no device.
    #[error("{0}")]
    NoDevice(String),
    /// The CUDA driver, NVRTC or cuBLAS failed.
    #[error("{0}")]
    Cuda(String),
    /// A device that cannot do what was asked (timing on the emulator).
    #[error("{0}")]
    Unsupported(String),
    /// Bad input from a user or a file: a case pattern, a shape, a goldens
    /// or kernel-cache file.
    #[error("{0}")]
    Input(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Err(Error::$kind(format!(...)))`, returned.
#[macro_export]
#[doc(hidden)]
macro_rules! fail {
    ($kind:ident, $($fmt:tt)+) => {
        return Err($crate::Error::$kind(format!($($fmt)+)))
    };
}

/// `Error::$kind(format!(...))`.
#[macro_export]
#[doc(hidden)]
macro_rules! err {
    ($kind:ident, $($fmt:tt)+) => {
        $crate::Error::$kind(format!($($fmt)+))
    };
}
