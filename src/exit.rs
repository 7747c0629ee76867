//! Exit codes, the same for every command (documented in `--help` and README.md).

/// How a command ended. CI systems act on these numbers, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: every check and budget held.
    Pass = 0,
    /// 1: a check, budget or integrity count failed.
    Failed = 1,
    /// 2: bad usage or a bad input file (flags, scenario, schema pack).
    BadInput = 2,
    /// 3: infrastructure unavailable (no PostgreSQL provider, target unreachable).
    Unavailable = 3,
}

impl Outcome {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Outcome> for std::process::ExitCode {
    fn from(o: Outcome) -> Self {
        std::process::ExitCode::from(o.code())
    }
}
