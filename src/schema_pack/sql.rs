//! A SQL file of a pack, split into statements here, by us, so that a PostgreSQL error can
//! name the file, the statement and its position.

use std::path::{Path, PathBuf};

use crate::Error;

/// One SQL statement of a file, with where it starts (for error positions).
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) text: String,
    /// Byte offset of `text` in the file.
    pub(crate) offset: usize,
    /// 1-based index among the file's statements.
    pub(crate) index: usize,
}

/// A migration file, read and split.
#[derive(Debug, Clone)]
pub(crate) struct SqlFile {
    pub(crate) path: PathBuf,
    pub(crate) source: String,
    pub(crate) statements: Vec<Statement>,
}

impl SqlFile {
    pub(crate) fn read(path: &Path) -> Result<SqlFile, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let source = String::from_utf8(bytes).map_err(|e| {
            Error::BadPack(format!(
                "{}: not UTF-8 (byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let statements = split_statements(&source);
        Ok(SqlFile {
            path: path.to_path_buf(),
            source,
            statements,
        })
    }

    /// The file name, as shown in reports.
    pub(crate) fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// Where a statement fails: PostgreSQL's 1-based *character* position inside the statement
    /// (if it gave one) mapped to `file:line:column`.
    pub(crate) fn locate(&self, stmt: &Statement, pg_position: Option<u32>) -> String {
        let offset = match pg_position {
            Some(p) if p > 0 => {
                let chars = (p - 1) as usize;
                stmt.offset
                    + stmt
                        .text
                        .char_indices()
                        .nth(chars)
                        .map(|(i, _)| i)
                        .unwrap_or(stmt.text.len())
            }
            _ => stmt.offset,
        };
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.path.display())
    }
}

pub(crate) use crate::source::line_column as line_col;

/// Splits SQL text into statements at top-level `;`, respecting `'…'`, `E'…'`, `"…"`,
/// `$tag$…$tag$`, `--` and nested `/* */` comments, and `BEGIN ATOMIC … END` bodies.
/// Statements holding only whitespace and comments are dropped.
// Long by nature: one scanner loop, a branch per lexical construct, all sharing the cursor.
pub(crate) fn split_statements(sql: &str) -> Vec<Statement> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut atomic_depth = 0usize;
    let mut prev_word = String::new();
    let push = |from: usize, to: usize, out: &mut Vec<Statement>| {
        let text = &sql[from..to];
        if has_code(text) {
            let lead = text.len() - text.trim_start().len();
            let index = out.len() + 1;
            out.push(Statement {
                text: text.trim().to_string(),
                offset: from + lead,
                index,
            });
        }
    };
    while i < b.len() {
        if let Some(end) = comment_end(b, i) {
            i = end;
            continue;
        }
        let c = b[i];
        match c {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_word(b[i - 2]));
                i = skip_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'$' if i == 0 || !is_word(b[i - 1]) => {
                if let Some(tag_end) = dollar_tag_end(b, i) {
                    let tag = &sql[i..=tag_end];
                    i = match sql[tag_end + 1..].find(tag) {
                        Some(p) => tag_end + 1 + p + tag.len(),
                        None => b.len(),
                    };
                } else {
                    i += 1;
                }
            }
            b';' if atomic_depth == 0 => {
                push(start, i, &mut out);
                start = i + 1;
                i += 1;
                prev_word.clear();
            }
            c if is_word(c) && (i == 0 || !is_word(b[i - 1])) => {
                let end = (i..b.len()).find(|&j| !is_word(b[j])).unwrap_or(b.len());
                let word = sql[i..end].to_ascii_lowercase();
                // `BEGIN ATOMIC … END` (SQL-standard function bodies) contain `;`; so do
                // CASE … END inside them, which is why CASE counts as an opener there.
                let opens = (word == "atomic" && prev_word == "begin")
                    || (atomic_depth > 0 && word == "case");
                if opens {
                    atomic_depth += 1;
                } else if atomic_depth > 0 && word == "end" {
                    atomic_depth -= 1;
                }
                prev_word = word;
                i = end;
            }
            _ => i += 1,
        }
    }
    push(start, b.len(), &mut out);
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Index just past the closing quote (a doubled quote is an escaped quote).
fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// If a dollar-quote tag (`$$` or `$tag$`) starts at `i`, the index of its closing `$`.
fn dollar_tag_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if b.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None; // `$1` is a parameter, not a tag
    }
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j)
}

/// If a comment (`-- …` to the end of the line, or nested `/* … */`) starts at `i`, the index
/// just past it.
fn comment_end(b: &[u8], mut i: usize) -> Option<usize> {
    match (b.get(i), b.get(i + 1)) {
        (Some(b'-'), Some(b'-')) => {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Some(i)
        }
        (Some(b'/'), Some(b'*')) => {
            let mut depth = 1;
            i += 2;
            while i < b.len() && depth > 0 {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            Some(i)
        }
        _ => None,
    }
}

/// Whether `text` holds anything besides whitespace and comments.
fn has_code(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if let Some(end) = comment_end(b, i) {
            i = end;
        } else {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split_statements(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x text DEFAULT ';');\n-- a comment; with a semicolon\n\
                   CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN PERFORM 1; RETURN NEW; END $body$ LANGUAGE plpgsql;\n\
                   /* outer /* nested; */ still; */ SELECT \"a;b\" FROM t; SELECT E'it\\'s;'; DO $$ BEGIN NULL; END $$";
        assert_eq!(
            texts(sql),
            vec![
                "CREATE TABLE a (x text DEFAULT ';')",
                "-- a comment; with a semicolon\nCREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN PERFORM 1; RETURN NEW; END $body$ LANGUAGE plpgsql",
                "/* outer /* nested; */ still; */ SELECT \"a;b\" FROM t",
                "SELECT E'it\\'s;'",
                "DO $$ BEGIN NULL; END $$",
            ]
        );
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END; SELECT 2; END; SELECT 3;";
        let t = texts(sql);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[0].ends_with("SELECT 2; END"));
    }

    #[test]
    fn comment_only_tail_is_dropped_and_offsets_point_at_code() {
        let sql = "\n\n  SELECT 1;\n-- done\n";
        let s = split_statements(sql);
        assert_eq!(s.len(), 1);
        assert_eq!(line_col(sql, s[0].offset), (3, 3));
    }

    #[test]
    fn locate_maps_character_positions_to_file_lines() {
        let f = SqlFile {
            path: "m/001_x.sql".into(),
            source: "SELECT 1;\nCREATE TABLEX t ();".into(),
            statements: split_statements("SELECT 1;\nCREATE TABLEX t ();"),
        };
        assert_eq!(f.locate(&f.statements[1], Some(8)), "m/001_x.sql:2:8");
    }
}
