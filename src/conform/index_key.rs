//! Index key columns, as `pg_index` stores them and as `expect.toml` writes them.
//!
//! Identifiers are compared by their real names (`pg_attribute.attname`), never by how SQL
//! prints them: `pg_get_indexdef` quotes `"conversationId"`, `expect.toml` and foreign keys name
//! it `conversationId`. The sort order is read from `pg_index.indoption`, not parsed from text.

/// A key column's sort order. PostgreSQL's default is ascending with NULLs last, and a
/// descending key sorts NULLs first unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortOrder {
    pub(crate) descending: bool,
    pub(crate) nulls_first: bool,
}

impl SortOrder {
    pub(crate) const ASC: SortOrder = SortOrder {
        descending: false,
        nulls_first: false,
    };

    /// From one `pg_index.indoption` entry (bit 0 `INDOPTION_DESC`, bit 1
    /// `INDOPTION_NULLS_FIRST`).
    pub(crate) fn from_indoption(opt: i16) -> SortOrder {
        SortOrder {
            descending: opt & 1 != 0,
            nulls_first: opt & 2 != 0,
        }
    }

    /// The same ordering scanned backwards (a btree serves both directions).
    pub(crate) fn reversed(self) -> SortOrder {
        SortOrder {
            descending: !self.descending,
            nulls_first: !self.nulls_first,
        }
    }

    /// As PostgreSQL prints it after a key column: defaults left out.
    pub(crate) fn suffix(self) -> &'static str {
        match (self.descending, self.nulls_first) {
            (false, false) => "",
            (false, true) => " NULLS FIRST",
            (true, true) => " DESC",
            (true, false) => " DESC NULLS LAST",
        }
    }
}

/// One key column of an index in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexKey {
    /// The column's real name (`attname`) for a plain column, `None` for an expression.
    pub(crate) column: Option<String>,
    /// `pg_get_indexdef(index, k, true)`: the expression, or the column as SQL quotes it.
    pub(crate) printed: String,
    pub(crate) order: SortOrder,
    /// Operator class and collation OIDs (`indclass`, `indcollation`): `(x text_pattern_ops)`
    /// serves other queries than `(x)`.
    pub(crate) opclass: u32,
    pub(crate) collation: u32,
}

impl IndexKey {
    /// Column name or expression, without the sort order.
    pub(crate) fn target(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.printed)
    }

    /// How reports show the key: `conversationId`, `created_at DESC`, `lower(email)`.
    pub(crate) fn label(&self) -> String {
        format!("{}{}", self.target(), self.order.suffix())
    }

    /// Same column or expression, operator class and collation: one can stand in for the
    /// other (sort order aside).
    pub(crate) fn same_key(&self, other: &IndexKey) -> bool {
        self.same_target(other)
            && self.opclass == other.opclass
            && self.collation == other.collation
    }

    /// Same column or expression (order aside).
    pub(crate) fn same_target(&self, other: &IndexKey) -> bool {
        match (&self.column, &other.column) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.printed == other.printed,
            _ => false,
        }
    }
}

/// A key column as `expect.toml` writes it: a column name (bare or double-quoted) or an
/// expression, optionally followed by `ASC`/`DESC` and `NULLS FIRST`/`NULLS LAST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// The column or expression, with the order clause removed.
    pub(crate) target: String,
    pub(crate) order: SortOrder,
}

impl KeySpec {
    /// Splits the trailing order clause off. Errors name what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<KeySpec, String> {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let upper = |w: &str| w.to_ascii_uppercase();
        let mut nulls_first = None;
        if let Some(last) = words.last().map(|w| upper(w)) {
            if last == "FIRST" || last == "LAST" {
                if words.len() >= 2 && upper(words[words.len() - 2]) == "NULLS" {
                    nulls_first = Some(last == "FIRST");
                    words.truncate(words.len() - 2);
                }
            } else if last == "NULLS" {
                return Err(format!("index column {text:?}: NULLS needs FIRST or LAST"));
            }
        }
        let mut descending = false;
        if let Some(last) = words.last().map(|w| upper(w)) {
            if last == "ASC" || last == "DESC" {
                descending = last == "DESC";
                words.truncate(words.len() - 1);
            }
        }
        let n = words.len();
        let misplaced = words
            .last()
            .is_some_and(|w| ["ASC", "DESC", "NULLS"].contains(&upper(w).as_str()))
            || (n >= 2
                && upper(words[n - 2]) == "NULLS"
                && ["FIRST", "LAST"].contains(&upper(words[n - 1]).as_str()));
        if misplaced {
            return Err(format!(
                "index column {text:?}: the order is `[ASC|DESC] [NULLS FIRST|NULLS LAST]`"
            ));
        }
        if words.is_empty() {
            return Err(format!(
                "index column {text:?} names no column or expression"
            ));
        }
        // Rebuild the target from the original text so an expression keeps its spacing.
        let end = {
            let last = words[words.len() - 1];
            let start = last.as_ptr() as usize - text.as_ptr() as usize;
            start + last.len()
        };
        Ok(KeySpec {
            target: text[..end].trim().to_string(),
            order: SortOrder {
                descending,
                nulls_first: nulls_first.unwrap_or(descending),
            },
        })
    }
}

/// The real name a bare (`conversationId`) or double-quoted (`"conversationId"`) identifier
/// stands for in `expect.toml`, or `None` when `text` is not a single identifier. A bare name is
/// taken as written: `expect.toml` names columns as the catalog spells them.
pub(crate) fn identifier(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        // Inside, a quote only appears doubled.
        if inner.is_empty() || inner.replace("\"\"", "").contains('"') {
            return None;
        }
        return Some(inner.replace("\"\"", "\""));
    }
    let mut chars = t.chars();
    let first = chars.next()?;
    ((first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$'))
    .then(|| t.to_string())
}

/// `identifier(text)` where it is one, else `text` unchanged: column names in `expect.toml`
/// may be written quoted.
pub(crate) fn column_name(text: &str) -> String {
    identifier(text).unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(descending: bool, nulls_first: bool) -> SortOrder {
        SortOrder {
            descending,
            nulls_first,
        }
    }

    #[test]
    fn order_clauses_are_split_off_with_postgres_defaults() {
        let cases = [
            ("created_at", "created_at", order(false, false)),
            ("created_at ASC", "created_at", order(false, false)),
            ("created_at DESC", "created_at", order(true, true)),
            (
                "created_at desc nulls last",
                "created_at",
                order(true, false),
            ),
            ("x NULLS FIRST", "x", order(false, true)),
            (
                "\"conversationId\" DESC",
                "\"conversationId\"",
                order(true, true),
            ),
            ("lower(email)  DESC", "lower(email)", order(true, true)),
            ("(a + b)", "(a + b)", order(false, false)),
            // A quoted identifier that happens to end in a keyword is not an order clause.
            ("\"sort DESC\"", "\"sort DESC\"", order(false, false)),
        ];
        for (text, target, ord) in cases {
            let spec = KeySpec::parse(text).unwrap();
            assert_eq!(spec.target, target, "{text}");
            assert_eq!(spec.order, ord, "{text}");
        }
    }

    #[test]
    fn malformed_order_clauses_are_errors() {
        for text in [
            "x NULLS",
            "x DESC DESC",
            "x ASC NULLS",
            "DESC",
            "",
            "x NULLS FIRST DESC",
        ] {
            assert!(KeySpec::parse(text).is_err(), "{text:?} should not parse");
        }
    }

    #[test]
    fn suffix_round_trips_through_parse() {
        for opt in 0..4 {
            let o = SortOrder::from_indoption(opt);
            let spec = KeySpec::parse(&format!("c{}", o.suffix())).unwrap();
            assert_eq!(spec.order, o, "indoption {opt}");
            assert_eq!(o.reversed().reversed(), o);
        }
        assert_eq!(SortOrder::from_indoption(3), order(true, true));
        assert_eq!(SortOrder::ASC.reversed(), SortOrder::from_indoption(3));
    }

    #[test]
    fn identifiers_are_unquoted_and_expressions_are_not_identifiers() {
        assert_eq!(
            identifier("conversationId").as_deref(),
            Some("conversationId")
        );
        assert_eq!(
            identifier("\"conversationId\"").as_deref(),
            Some("conversationId")
        );
        assert_eq!(
            identifier("\"say \"\"hi\"\"\"").as_deref(),
            Some("say \"hi\"")
        );
        assert_eq!(identifier("_x$1").as_deref(), Some("_x$1"));
        assert_eq!(identifier("lower(email)"), None);
        assert_eq!(identifier("a + b"), None);
        assert_eq!(identifier("\"a\" || \"b\""), None);
        assert_eq!(identifier("\"\""), None);
        assert_eq!(column_name("\"userId\""), "userId");
        assert_eq!(column_name("lower(email)"), "lower(email)");
    }

    #[test]
    fn keys_compare_by_real_name() {
        let col = |name: &str, printed: &str| IndexKey {
            column: Some(name.into()),
            printed: printed.into(),
            order: SortOrder::ASC,
            opclass: 3126,
            collation: 100,
        };
        let a = col("conversationId", "\"conversationId\"");
        let pattern = IndexKey {
            opclass: 10052,
            ..a.clone()
        };
        assert!(a.same_target(&pattern) && !a.same_key(&pattern));
        assert!(a.same_target(&col("conversationId", "\"conversationId\"")));
        assert!(!a.same_target(&col("conversationid", "conversationid")));
        assert_eq!(a.label(), "conversationId");
        let d = IndexKey {
            order: SortOrder::from_indoption(3),
            ..col("created_at", "created_at")
        };
        assert_eq!(d.label(), "created_at DESC");
    }
}
