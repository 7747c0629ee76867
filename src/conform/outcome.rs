//! The result of a conformance run: one [`Check`] per thing proved or disproved.

use serde::Serialize;

/// Checks are printed grouped by kind, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Migrations,
    Preservation,
    Catalog,
    Probes,
    Hazards,
    Behaviour,
    /// Behaviour the schema was never asked about, found by running it (rules module).
    Detection,
    /// E2EE policy rules read from the catalog (rules module).
    Policy,
    /// Protocol conformance of a running server (`conform --target`, [`super::target`]):
    /// one-time and signed prekeys.
    Prekeys,
    /// … authentication and isolation between devices.
    Auth,
    /// … delivery: fan-out, idempotency, backlog.
    Delivery,
    /// … malformed input.
    Input,
}

impl Kind {
    pub(crate) const ALL: [Kind; 12] = [
        Kind::Migrations,
        Kind::Preservation,
        Kind::Catalog,
        Kind::Probes,
        Kind::Hazards,
        Kind::Behaviour,
        Kind::Detection,
        Kind::Policy,
        Kind::Prekeys,
        Kind::Auth,
        Kind::Delivery,
        Kind::Input,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Migrations => "migrations",
            Kind::Preservation => "preservation",
            Kind::Catalog => "catalog",
            Kind::Probes => "probes",
            Kind::Hazards => "hazards",
            Kind::Behaviour => "behaviour",
            Kind::Detection => "detection",
            Kind::Policy => "policy",
            Kind::Prekeys => "prekeys",
            Kind::Auth => "auth",
            Kind::Delivery => "delivery",
            Kind::Input => "input",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Something the schema admits that it evidently should not (probes, hazards).
    Finding,
    /// A finding accepted on purpose by a `[[waive]]` entry.
    Waived,
    /// Could not be decided (e.g. no valid row could be built); never a failure.
    Skip,
    /// The property needs something the server's API does not offer (the detail names the
    /// missing capability); never a failure.
    NotApplicable,
}

impl Status {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Finding => "FINDING",
            Status::Waived => "WAIVED",
            Status::Skip => "SKIP",
            Status::NotApplicable => "N/A",
        }
    }

    pub(crate) fn is_bad(self) -> bool {
        matches!(self, Status::Fail | Status::Finding)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub kind: Kind,
    pub name: String,
    pub status: Status,
    /// Why it failed, what was observed, or why it was skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For findings: the rule id (docs/conformance.md sections 4 and 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For findings: the object as waivers name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// SQL that shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Protocol checks: the property, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) statement: Option<String>,
    /// Protocol checks: the requests and answers that show the verdict, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) evidence: Vec<String>,
}

impl Check {
    pub(crate) fn pass(kind: Kind, name: impl Into<String>) -> Check {
        Check {
            kind,
            name: name.into(),
            status: Status::Pass,
            detail: String::new(),
            rule: None,
            object: None,
            sql: None,
            statement: None,
            evidence: Vec::new(),
        }
    }

    pub(crate) fn fail(kind: Kind, name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            detail: detail.into(),
            ..Check::pass(kind, name)
        }
    }

    pub(crate) fn skip(kind: Kind, name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            status: Status::Skip,
            detail: detail.into(),
            ..Check::pass(kind, name)
        }
    }

    /// A finding under `rule` about `object`, with the SQL that shows it.
    pub(crate) fn finding(
        kind: Kind,
        rule: &str,
        object: impl Into<String>,
        detail: impl Into<String>,
        sql: impl Into<String>,
    ) -> Check {
        let object = object.into();
        Check {
            kind,
            name: format!("{rule} {object}"),
            status: Status::Finding,
            detail: detail.into(),
            rule: Some(rule.to_string()),
            object: Some(object),
            sql: Some(sql.into()),
            ..Check::pass(kind, "")
        }
    }

    /// `pass` if `ok`, else `fail` with `detail`.
    pub(crate) fn verdict(
        kind: Kind,
        name: impl Into<String>,
        ok: bool,
        detail: impl Into<String>,
    ) -> Check {
        if ok {
            Check::pass(kind, name)
        } else {
            Check::fail(kind, name, detail)
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Check {
        self.detail = detail.into();
        self
    }

    pub(crate) fn with_sql(mut self, sql: impl Into<String>) -> Check {
        self.sql = Some(sql.into());
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub(crate) passed: usize,
    pub failed: usize,
    pub findings: usize,
    pub(crate) waived: usize,
    pub(crate) skipped: usize,
    /// Protocol checks the server's API cannot express.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) not_applicable: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct ConformReport {
    pub(crate) pack: String,
    pub(crate) source: String,
    pub(crate) postgres: String,
    pub checks: Vec<Check>,
}

impl ConformReport {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.checks {
            match c.status {
                Status::Pass => s.passed += 1,
                Status::Fail => s.failed += 1,
                Status::Finding => s.findings += 1,
                Status::Waived => s.waived += 1,
                Status::Skip => s.skipped += 1,
                Status::NotApplicable => s.not_applicable += 1,
            }
        }
        s
    }

    /// Whether every check held and nothing was found.
    pub fn held(&self) -> bool {
        !self.checks.iter().any(|c| c.status.is_bad())
    }

    pub fn outcome(&self) -> crate::Outcome {
        if self.held() {
            crate::Outcome::Pass
        } else {
            crate::Outcome::Failed
        }
    }

    /// Findings and failures (for tests and summaries).
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status.is_bad())
    }

    /// Findings of one rule.
    pub fn findings_of<'a>(&'a self, rule: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.checks
            .iter()
            .filter(move |c| c.status == Status::Finding && c.rule.as_deref() == Some(rule))
    }
}
