//! Scenarios and schema packs built into the binary, so that `run` with no scenario and
//! `conform --schema <pack>|reference` work from any directory and after `cargo install`.
//! A path on disk always wins when it exists; the built-in copy is the fallback.
//!
//! Packs are read from directories everywhere else (with `file:line:column` in every
//! message), so a built-in pack is written out once to a content-addressed directory under
//! the system temp dir and read from there: messages name a file the user can open.

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};

static SCENARIOS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/scenarios");
static REFERENCE_MIGRATIONS: Dir<'static> =
    include_dir!("$CARGO_MANIFEST_DIR/reference-server/migrations");
const REFERENCE_EXPECT: &str = include_str!("../reference-server/expect.toml");

/// The scenario file a built-in name stands for: `default`, `default.toml` or
/// `scenarios/default.toml` all name `scenarios/default.toml`. Returns its shown path
/// (`built-in:scenarios/default.toml`) and its text.
pub(crate) fn scenario(name: &Path) -> Option<(PathBuf, &'static str)> {
    let s = name.to_str()?;
    let s = s.strip_prefix("scenarios/").unwrap_or(s);
    let file = if s.ends_with(".toml") {
        s.to_string()
    } else {
        format!("{s}.toml")
    };
    let text = SCENARIOS.get_file(&file)?.contents_utf8()?;
    Some((PathBuf::from(format!("built-in:scenarios/{file}")), text))
}

/// Names of the built-in scenarios (`default`, `smoke`, …), sorted.
pub(crate) fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = SCENARIOS
        .files()
        .filter_map(|f| {
            let p = f.path();
            if p.extension()? != "toml" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// Names of the built-in schema packs: `reference` and every seed pack.
pub(crate) fn pack_names() -> Vec<String> {
    let mut names = vec!["reference".to_string()];
    if let Some(schemas) = SCENARIOS.get_dir("schemas") {
        let mut seeds: Vec<String> = schemas
            .dirs()
            .filter(|d| d.get_dir(d.path().join("migrations")).is_some())
            .filter_map(|d| Some(d.path().file_name()?.to_string_lossy().into_owned()))
            .collect();
        seeds.sort();
        names.extend(seeds);
    }
    names
}

/// A built-in pack written out as a pack directory (`migrations/`, `expect.toml`, …), or
/// `None` when no pack has that name. `reference` gives the reference server's migrations.
pub(crate) fn pack_dir(name: &str) -> Result<Option<PathBuf>, std::io::Error> {
    let root = unpacked_root()?;
    if name == "reference" {
        return Ok(Some(root.join("reference")));
    }
    let valid = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
    let dir = root.join("scenarios/schemas").join(name);
    Ok((valid && dir.join("migrations").is_dir()).then_some(dir))
}

/// Writes everything built in under one directory named by a hash of the contents, once:
/// later calls (and other processes) find it complete and write nothing.
fn unpacked_root() -> Result<PathBuf, std::io::Error> {
    let root = std::env::temp_dir().join(format!("e2ee-harness-builtin-{:016x}", content_hash()));
    if root.join(".complete").is_file() {
        return Ok(root);
    }
    // Written beside, then renamed, so a concurrent reader never sees half a tree.
    let staging = tempfile::Builder::new()
        .prefix(".e2ee-harness-builtin-")
        .tempdir_in(std::env::temp_dir())?;
    write_dir(&SCENARIOS, &staging.path().join("scenarios"))?;
    write_dir(
        &REFERENCE_MIGRATIONS,
        &staging.path().join("reference/migrations"),
    )?;
    std::fs::write(
        staging.path().join("reference/expect.toml"),
        REFERENCE_EXPECT,
    )?;
    std::fs::write(staging.path().join(".complete"), "")?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &root).is_err() {
        // Another process got there first: its copy is the same content.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(root)
}

fn write_dir(dir: &Dir<'_>, to: &Path) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(to)?;
    for file in dir.files() {
        let rel = file.path().strip_prefix(dir.path()).unwrap_or(file.path());
        std::fs::write(to.join(rel), file.contents())?;
    }
    for sub in dir.dirs() {
        let rel = sub.path().strip_prefix(dir.path()).unwrap_or(sub.path());
        write_dir(sub, &to.join(rel))?;
    }
    Ok(())
}

/// FNV-1a over every built-in file's path and contents.
fn content_hash() -> u64 {
    fn feed(h: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *h ^= u64::from(*b);
            *h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    fn walk(h: &mut u64, dir: &Dir<'_>) {
        for f in dir.files() {
            feed(h, f.path().to_string_lossy().as_bytes());
            feed(h, f.contents());
        }
        for d in dir.dirs() {
            walk(h, d);
        }
    }
    let mut h = 0xcbf2_9ce4_8422_2325;
    walk(&mut h, &SCENARIOS);
    walk(&mut h, &REFERENCE_MIGRATIONS);
    feed(&mut h, REFERENCE_EXPECT.as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_scenario_is_built_in_under_every_spelling() {
        for name in ["default", "default.toml", "scenarios/default.toml"] {
            let (shown, text) = scenario(Path::new(name)).expect(name);
            assert_eq!(shown, Path::new("built-in:scenarios/default.toml"));
            crate::scenario::Scenario::parse(&shown, text).expect("the built-in default parses");
        }
        assert!(scenario(Path::new("no-such-scenario")).is_none());
        assert!(scenario_names().contains(&"default".to_string()));
        assert!(scenario_names().contains(&"smoke".to_string()));
    }

    #[test]
    fn every_seed_pack_and_the_reference_unpack_to_a_pack_directory() {
        let names = pack_names();
        assert!(names.len() >= 6, "{names:?}");
        for name in &names {
            let dir = pack_dir(name).unwrap().expect(name);
            assert!(dir.join("migrations").is_dir(), "{}", dir.display());
            assert!(dir.join("expect.toml").is_file(), "{}", dir.display());
        }
        assert!(pack_dir("nope").unwrap().is_none());
        assert!(pack_dir("../schemas").unwrap().is_none());
    }
}
