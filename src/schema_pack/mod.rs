//! A schema pack on disk, for `conform` and `db-bench` alike: `migrations/NNN_name.sql`
//! (+ `NNN_name.down.sql` or `NNN_name_down.sql`), an optional `expect.toml` and an optional
//! `workload.toml`. This module owns `--schema` resolution ([`SchemaPack::resolve`]), the
//! migration listing, the SQL files split into statements ([`sql`]) and their
//! statement-by-statement apply ([`apply`]); every problem with a pack is [`Error::BadPack`].

pub(crate) mod apply;
pub(crate) mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use sql::{line_col, SqlFile};

use crate::Error;

/// The directory `--schema` resolves names against: the working directory.
pub(crate) fn working_root() -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|e| Error::Io {
        path: PathBuf::from("."),
        source: e,
    })
}

/// The one answer to `--schema`, for `conform` and `db-bench` alike: the directory of
/// `reference` (the reference server's migrations beside its `expect.toml`), of a pack
/// directory, of a pack name under `root/scenarios/schemas/`, or of a built-in pack; a path on
/// disk wins over a built-in one.
pub(crate) fn locate(schema: &str, root: &Path) -> Result<PathBuf, Error> {
    // A directory given by path is the pack, whatever it holds (loading says what is missing).
    if schema != "reference" && Path::new(schema).is_dir() {
        return Ok(PathBuf::from(schema));
    }
    let on_disk = if schema == "reference" {
        vec![root.join("reference-server")]
    } else {
        vec![
            PathBuf::from(schema),
            root.join("scenarios").join("schemas").join(schema),
        ]
    };
    if let Some(dir) = on_disk.iter().find(|d| d.join("migrations").is_dir()) {
        return Ok(dir.clone());
    }
    if let Some(dir) = builtin_pack(schema)? {
        return Ok(dir);
    }
    Err(Error::BadPack(format!(
        "--schema {schema:?}: no such pack (looked for a migrations/ directory in {}, and \
         among the built-in packs: {}); give a built-in pack name, a pack name under \
         scenarios/schemas/, or a pack directory",
        on_disk
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        crate::builtin::pack_names().join(", ")
    )))
}

/// A built-in pack's directory (written out on first use), or `None` if there is none.
pub(crate) fn builtin_pack(name: &str) -> Result<Option<PathBuf>, Error> {
    crate::builtin::pack_dir(name).map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })
}

/// An up migration and its optional rollback.
#[derive(Debug, Clone)]
pub struct Migration {
    pub(crate) number: u64,
    /// The number as written (`001`).
    pub(crate) digits: String,
    /// File stem of the up migration (`001_init`).
    pub(crate) stem: String,
    pub(crate) up: SqlFile,
    pub(crate) down: Option<SqlFile>,
}

impl fmt::Display for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.up.name())
    }
}

/// A loaded pack: its migrations read and split, nothing applied.
#[derive(Debug, Clone)]
pub struct SchemaPack {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// Up migrations (with their rollbacks), ordered by their number.
    pub migrations: Vec<Migration>,
    /// Where `expect.toml` is (it may not exist).
    pub(crate) expect_path: PathBuf,
}

impl SchemaPack {
    /// Resolves `--schema`: `reference`, a pack name under `scenarios/schemas/`, or a directory.
    /// `reference` is the reference server's migrations directory with its expectations beside it.
    pub fn resolve(schema: &str, root: &Path) -> Result<SchemaPack, Error> {
        let dir = locate(schema, root)?;
        if schema == "reference" {
            return SchemaPack::load_dirs(
                "reference",
                &dir.join("migrations"),
                &dir.join("expect.toml"),
            );
        }
        SchemaPack::load(&dir)
    }

    /// Loads a pack directory (`migrations/` + optional `expect.toml`).
    pub fn load(dir: &Path) -> Result<SchemaPack, Error> {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "pack".into());
        SchemaPack::load_dirs(&name, &dir.join("migrations"), &dir.join("expect.toml"))
    }

    /// Where the pack's db-bench workload is (it may not exist).
    pub(crate) fn workload_path(&self) -> PathBuf {
        self.dir.join("workload.toml")
    }

    fn load_dirs(
        name: &str,
        migrations_dir: &Path,
        expect_path: &Path,
    ) -> Result<SchemaPack, Error> {
        let entries = std::fs::read_dir(migrations_dir).map_err(|e| {
            Error::BadPack(format!(
                "{}: cannot read the migrations directory: {e}",
                migrations_dir.display()
            ))
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::Io {
                path: migrations_dir.to_path_buf(),
                source: e,
            })?;
            let path = entry.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
        files.sort();
        let migrations = pair_migrations(&files)?;
        if migrations.is_empty() {
            return Err(Error::BadPack(format!(
                "{}: no NNN_name.sql migrations",
                migrations_dir.display()
            )));
        }
        Ok(SchemaPack {
            name: name.to_string(),
            dir: migrations_dir
                .parent()
                .unwrap_or(migrations_dir)
                .to_path_buf(),
            migrations,
            expect_path: expect_path.to_path_buf(),
        })
    }
}

/// What a file name says it is.
#[derive(Debug, PartialEq, Eq)]
struct FileName {
    number: u64,
    digits: String,
    stem: String,
    down: bool,
}

fn parse_file_name(file: &str) -> Option<FileName> {
    let stem = file.strip_suffix(".sql")?;
    let digits: String = stem.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || !stem[digits.len()..].starts_with('_') || stem.len() == digits.len() + 1
    {
        return None;
    }
    let number = digits.parse().ok()?;
    let (up_stem, down) = if let Some(s) = stem.strip_suffix(".down") {
        (s, true)
    } else if let Some(s) = stem.strip_suffix("_down") {
        (s, true)
    } else {
        (stem, false)
    };
    Some(FileName {
        number,
        digits,
        stem: up_stem.to_string(),
        down,
    })
}

fn pair_migrations(files: &[PathBuf]) -> Result<Vec<Migration>, Error> {
    let mut ups: BTreeMap<u64, (FileName, PathBuf)> = BTreeMap::new();
    let mut downs: BTreeMap<u64, (FileName, PathBuf)> = BTreeMap::new();
    for path in files {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parsed = parse_file_name(&file).ok_or_else(|| {
            Error::BadPack(format!(
                "{}: not a migration file name; expected NNN_name.sql, NNN_name.down.sql or NNN_name_down.sql",
                path.display()
            ))
        })?;
        let map = if parsed.down { &mut downs } else { &mut ups };
        if let Some((_, other)) = map.get(&parsed.number) {
            return Err(Error::BadPack(format!(
                "{} and {}: two {} migrations numbered {}",
                other.display(),
                path.display(),
                if parsed.down { "rollback" } else { "up" },
                parsed.number
            )));
        }
        map.insert(parsed.number, (parsed, path.clone()));
    }
    if let Some((n, (_, path))) = downs.iter().find(|(n, _)| !ups.contains_key(n)) {
        return Err(Error::BadPack(format!(
            "{}: a rollback for migration {n}, which does not exist",
            path.display()
        )));
    }
    let mut out = Vec::new();
    for (number, (name, path)) in ups {
        let down = match downs.remove(&number) {
            Some((_, p)) => Some(SqlFile::read(&p)?),
            None => None,
        };
        out.push(Migration {
            number,
            digits: name.digits,
            stem: name.stem,
            up: SqlFile::read(&path)?,
            down,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_pair_up_and_down() {
        assert_eq!(
            parse_file_name("001_init.down.sql"),
            Some(FileName {
                number: 1,
                digits: "001".into(),
                stem: "001_init".into(),
                down: true
            })
        );
        assert_eq!(
            parse_file_name("010_x_down.sql").map(|f| (f.number, f.down, f.stem)),
            Some((10, true, "010_x".into()))
        );
        assert_eq!(
            parse_file_name("2_devices.sql").map(|f| f.down),
            Some(false)
        );
        assert_eq!(parse_file_name("init.sql"), None);
        assert_eq!(parse_file_name("001_.sql"), None);
    }
}
