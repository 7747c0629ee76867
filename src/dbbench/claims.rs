//! One-time prekey claims: an operation that hands out a key declares the result column
//! that holds it (`claims = "<column>"`); a key returned twice is an integrity failure.

use std::collections::BTreeMap;

use tokio_postgres::Row;

/// The claimed column of `row` as text, whatever its type; `Ok(None)` for SQL NULL (no key
/// was left to hand out).
pub(crate) fn claimed_value(row: &Row, column: &str) -> Result<Option<String>, String> {
    let named = row.columns().iter().filter(|c| c.name() == column).count();
    if named > 1 {
        return Err(format!(
            "claims = \"{column}\": the result has {named} columns of that name; alias the claimed one"
        ));
    }
    let idx = row
        .columns()
        .iter()
        .position(|c| c.name() == column)
        .ok_or_else(|| {
            let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
            format!(
                "claims = \"{column}\": the result has no such column (it has {})",
                names.join(", ")
            )
        })?;
    macro_rules! try_as {
        ($t:ty, $f:expr) => {
            if let Ok(v) = row.try_get::<_, Option<$t>>(idx) {
                return Ok(v.map($f));
            }
        };
    }
    try_as!(String, |v| v);
    try_as!(i64, |v| v.to_string());
    try_as!(i32, |v| v.to_string());
    try_as!(i16, |v| v.to_string());
    try_as!(Vec<u8>, |v| format!("\\x{}", hex::encode(v)));
    try_as!(uuid::Uuid, |v| v.to_string());
    try_as!(serde_json::Value, |v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    Err(format!(
        "claims = \"{column}\": cannot read a value of type {}",
        row.columns()[idx].type_()
    ))
}

/// Which fetches received each key: `key → [fetch ordinal]`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ledger {
    pub(crate) fetches: u64,
    pub(crate) keys: BTreeMap<String, Vec<u64>>,
}

impl Ledger {
    pub(crate) fn record(&mut self, key: Option<String>) {
        self.fetches += 1;
        if let Some(k) = key {
            self.keys.entry(k).or_default().push(self.fetches);
        }
    }

    pub(crate) fn merge(&mut self, other: &Ledger) {
        let base = self.fetches;
        for (k, v) in &other.keys {
            self.keys
                .entry(k.clone())
                .or_default()
                .extend(v.iter().map(|n| n + base));
        }
        self.fetches += other.fetches;
    }

    /// Keys handed out more than once.
    pub(crate) fn repeats(&self) -> impl Iterator<Item = (&String, &Vec<u64>)> {
        self.keys.iter().filter(|(_, v)| v.len() > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::Ledger;

    #[test]
    fn a_key_recorded_twice_is_a_repeat_across_merged_ledgers() {
        let (mut a, mut b) = (Ledger::default(), Ledger::default());
        a.record(Some("1 7".into()));
        a.record(None);
        b.record(Some("2 7".into()));
        b.record(Some("1 7".into()));
        assert_eq!(a.repeats().count(), 0);
        a.merge(&b);
        let repeats: Vec<_> = a.repeats().collect();
        assert_eq!(repeats.len(), 1);
        assert_eq!(repeats[0], (&"1 7".to_string(), &vec![1, 4]));
        assert_eq!(a.fetches, 4);
    }
}
