//! The model library's errors, by kind, so the CLI and tests can tell an
//! interrupted run from a diverged one or a bad checkpoint without matching
//! text.

use crate::{Interrupted, NonFiniteLoss};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings that describe no valid model or run (layers, folds, batch).
    #[error("{0}")]
    Settings(String),
    /// A checkpoint (or its metadata) that is not a valid dae checkpoint;
    /// the message names the file and the field.
    #[error("{0}")]
    Checkpoint(String),
    /// A backend asked for what it was not built for (rows past its
    /// capacity, data of another width).
    #[error("{0}")]
    Usage(String),
    /// Training met a non-finite loss; what is kept is said.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// A backend's step saw a non-finite loss (before `fit` words it).
    #[error(transparent)]
    NonFiniteLoss(#[from] NonFiniteLoss),
    /// Training stopped on a signal, in this epoch; what is kept is said.
    #[error("training interrupted in epoch {epoch} (not saved); {kept}: {cause}")]
    Interrupted {
        epoch: usize,
        kept: String,
        cause: Interrupted,
    },
    /// A backend stopped on a signal (before `fit` says which epoch).
    #[error(transparent)]
    StepInterrupted(#[from] Interrupted),
    /// `what` failed because of `source`.
    #[error("{what}: {source}")]
    Context { what: String, source: Box<Error> },
    #[error(transparent)]
    Core(#[from] dae_core::Error),
    #[error(transparent)]
    Data(#[from] dae_data::Error),
    /// An error of the caller's own code (an observer's checkpointing).
    #[error("{0}")]
    Caller(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether training stopped on a signal (at any depth of context).
    pub fn is_interrupted(&self) -> bool {
        match self {
            Error::Interrupted { .. } | Error::StepInterrupted(_) => true,
            Error::Context { source, .. } => source.is_interrupted(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The encodings checkpoints are made of: their errors are checkpoint
/// errors (the caller says which file and field).
macro_rules! checkpoint_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Checkpoint(e.to_string())
            }
        }
    )*};
}
checkpoint_errors!(
    serde_json::Error,
    safetensors::SafeTensorError,
    std::num::ParseIntError
);

/// `self` with `what` said before its error.
pub(crate) trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            what: what.into(),
            source: Box::new(e.into()),
        })
    }
}

/// `return Err(Error::$kind(format!(...)))`.
macro_rules! fail {
    ($kind:ident, $($fmt:tt)+) => {
        return Err($crate::Error::$kind(format!($($fmt)+)))
    };
}
pub(crate) use fail;

/// `Error::$kind(format!(...))`.
macro_rules! err {
    ($kind:ident, $($fmt:tt)+) => {
        $crate::Error::$kind(format!($($fmt)+))
    };
}
pub(crate) use err;
