//! dae-data's errors: each names the file (or the flag, or the array in an
//! archive) and says what is wrong with it. The cause of an I/O failure is
//! part of the message, so `{}` alone says everything; `source()` is left
//! unset so that anyhow's `{:#}` chain does not repeat it.

use std::fmt::Display;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file that cannot be opened, read, created, written or replaced.
    #[error("{}: {action} ({cause})", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        cause: std::io::Error,
    },
    /// A path that is missing, not a regular file, or not what its name says.
    #[error("{}: {problem}", path.display())]
    NotData { path: PathBuf, problem: String },
    /// Contents that do not parse as the format they claim (`file` names
    /// the file, and the array within an archive).
    #[error("{file}: {problem}")]
    Format { file: String, problem: String },
    /// Sizes from a header that overflow or exceed the bytes present.
    #[error("{file}: {problem}")]
    TooLarge { file: String, problem: String },
    /// A digest that differs from the one SHA256SUMS lists.
    #[error(
        "{}: checksum mismatch: SHA-256 of {of} is {actual}, SHA256SUMS says {expected}",
        path.display()
    )]
    Checksum {
        path: PathBuf,
        of: &'static str,
        actual: String,
        expected: String,
    },
    /// Inputs that do not go together (flags, splits), or data an
    /// operation cannot take.
    #[error("{what}: {problem}")]
    Usage { what: String, problem: String },
    /// Data an operation cannot take, with no single file to blame.
    #[error("{problem}")]
    Unsupported { problem: String },
    /// An array that cannot be encoded (`what` names it).
    #[error("{what}: cannot write ({cause})")]
    Encode { what: String, cause: String },
    /// `inner`, in the context of `context` (e.g. the flag that named it).
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        cause: std::io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action,
            cause,
        }
    }

    pub(crate) fn format(file: impl Display, problem: impl Into<String>) -> Self {
        Error::Format {
            file: file.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn too_large(file: impl Display, problem: impl Into<String>) -> Self {
        Error::TooLarge {
            file: file.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn usage(what: impl Display, problem: impl Into<String>) -> Self {
        Error::Usage {
            what: what.to_string(),
            problem: problem.into(),
        }
    }

    pub(crate) fn not_data(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::NotData {
            path: path.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn encode(what: impl Display, cause: impl Display) -> Self {
        Error::Encode {
            what: what.to_string(),
            cause: cause.to_string(),
        }
    }

    /// This error with `context` in front (as anyhow's `.context` would).
    pub(crate) fn context(self, context: impl Display) -> Self {
        Error::Context {
            context: context.to_string(),
            inner: Box::new(self),
        }
    }
}

/// `return Err(Error::$kind(what, format!(...)))`: `bail!` with a kind.
macro_rules! fail {
    ($kind:ident, $what:expr, $($fmt:tt)+) => {
        return Err($crate::Error::$kind(&$what, format!($($fmt)+)))
    };
}
pub(crate) use fail;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn messages_name_the_file_and_carry_their_cause_once() {
        let io = Error::io(
            "d/x.npy",
            "cannot read",
            std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        );
        assert_eq!(io.to_string(), "d/x.npy: cannot read (gone)");
        // The cause is in the message, so no chain repeats it.
        assert!(io.source().is_none());
        let wrapped = Error::format("x.npy", "truncated").context("--data");
        assert_eq!(wrapped.to_string(), "--data: x.npy: truncated");
        let sum = Error::Checksum {
            path: "d/t10k".into(),
            of: "the file",
            actual: "ab".into(),
            expected: "cd".into(),
        };
        assert_eq!(
            sum.to_string(),
            "d/t10k: checksum mismatch: SHA-256 of the file is ab, SHA256SUMS says cd"
        );
    }
}
