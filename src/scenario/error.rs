//! Scenario errors: always `file:line:column: what is wrong`.

use std::fmt;
use std::ops::Range;
use std::path::Path;

/// A problem in a scenario file (or in a `--budget` flag), with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file, or `--budget` for a command-line budget.
    pub(crate) origin: String,
    /// 1-based line and column, when the problem has a place in the file.
    pub(crate) position: Option<(usize, usize)>,
    pub(crate) message: String,
}

impl ScenarioError {
    /// An error at a byte span of `source` (the file's text).
    pub(crate) fn at(
        path: &Path,
        source: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        ScenarioError {
            origin: path.display().to_string(),
            position: span.map(|s| line_column(source, s.start)),
            message: message.into(),
        }
    }

    /// An error in a command-line `--budget` value.
    pub(crate) fn flag(value: &str, message: impl Into<String>) -> Self {
        ScenarioError {
            origin: format!("--budget {value}"),
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

impl From<ScenarioError> for crate::Error {
    fn from(e: ScenarioError) -> Self {
        crate::Error::BadInput(e.to_string())
    }
}

pub(crate) use crate::source::line_column;

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn offsets_become_one_based_lines_and_columns() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_column(s, 0), (1, 1));
        assert_eq!(line_column(s, 6), (2, 1));
        assert_eq!(line_column(s, 11), (2, 6));
    }
}
