//! The generator's own footprint, read from `/proc`: process CPU time, CPU time of threads
//! that belong to an in-process server (so they can be subtracted), and peak RSS.

use std::time::Duration;

/// Thread-name prefix of the in-process reference server's runtime; its CPU is not the
/// generator's.
pub(crate) const SERVER_THREAD_PREFIX: &str = "refserver";

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a `/proc/.../stat` line, in seconds.
fn stat_cpu(stat: &str) -> Option<(String, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After "pid (comm) ": state is field 3 → index 0; utime is field 14 → index 11.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / clock_ticks_per_second()))
}

/// CPU seconds used so far by the whole process.
pub(crate) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu(&stat).map(|(_, s)| Duration::from_secs_f64(s))
}

/// CPU seconds used so far by live threads whose name starts with `prefix`.
pub(crate) fn threads_cpu(prefix: &str) -> Option<Duration> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((comm, s)) = stat_cpu(&stat) {
            if comm.starts_with(prefix) {
                total += s;
            }
        }
    }
    Some(Duration::from_secs_f64(total))
}

/// A `/proc/self/status` field in kB, as bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Peak resident set size (VmHWM).
pub(crate) fn peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Current resident set size (VmRSS).
pub(crate) fn current_rss() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Logical CPUs available to this process.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let busy = std::time::Instant::now();
        let mut x = 0u64;
        while busy.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert!(x != 1);
        assert!(process_cpu().unwrap() > Duration::ZERO);
        assert!(peak_rss().unwrap() >= current_rss().unwrap() / 2);
        assert!(current_rss().unwrap() > 0);
        assert_eq!(threads_cpu("no-such-thread-name").unwrap(), Duration::ZERO);
    }

    #[test]
    fn parses_a_stat_line_with_spaces_in_comm() {
        let line = "123 (tokio rt) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        let (comm, secs) = stat_cpu(line).unwrap();
        assert_eq!(comm, "tokio rt");
        assert!((secs - 300.0 / clock_ticks_per_second()).abs() < 1e-9);
    }
}
