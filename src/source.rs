//! Positions in input files (scenario files, schema packs, workloads): every bad-input error
//! names `file:line:column`, computed here from the byte offset a parser reports.

use std::path::Path;

/// 1-based line and column (in characters) of a byte offset in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `file:line:column` of a byte offset in `text`, the contents of `path`.
pub(crate) fn location(path: &Path, text: &str, offset: usize) -> String {
    let (line, col) = line_column(text, offset);
    format!("{}:{line}:{col}", path.display())
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Reads a UTF-8 text file of at most `max` bytes; a longer one (or an endless stream such
/// as `/dev/zero`) is an error naming the bound, read no further than `max + 1` bytes.
pub(crate) fn read_capped(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than the bound of {max} bytes"
        )));
    }
    String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}
