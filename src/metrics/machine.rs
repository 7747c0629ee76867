//! The machine's state around a run, read from `/proc`: load average and the share of CPU
//! time stolen by the hypervisor, so a report can say when the numbers were taken on a busy or
//! oversubscribed machine.

use crate::report::model::Machine;

/// Cumulative CPU time counters of `/proc/stat`'s `cpu` line (all in clock ticks).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTimes {
    total: u64,
    steal: u64,
}

impl CpuTimes {
    pub(crate) fn now() -> CpuTimes {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| parse_cpu_line(s.lines().next()?))
            .unwrap_or_default()
    }

    /// Share of CPU time stolen between `self` and `later` (0 when unknown).
    pub(crate) fn steal_share_until(&self, later: &CpuTimes) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return 0.0;
        }
        later.steal.saturating_sub(self.steal) as f64 / total as f64
    }
}

/// `cpu user nice system idle iowait irq softirq steal guest guest_nice`; guest time is
/// already counted in user, so it is left out of the total.
fn parse_cpu_line(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
    (v.len() == 8).then(|| CpuTimes {
        total: v.iter().sum(),
        steal: v[7],
    })
}

/// 1, 5 and 15-minute load averages (zeros when unknown).
pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, v) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = v.parse().unwrap_or(0.0);
    }
    out
}

/// Samples taken at the harness's start, at the clock's start and at its end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MachineProbe {
    setup: CpuTimes,
    start: Option<(CpuTimes, [f64; 3])>,
    idle_exit_limit_us: Option<u32>,
}

impl MachineProbe {
    pub(crate) fn begin() -> MachineProbe {
        MachineProbe {
            setup: CpuTimes::now(),
            start: None,
            idle_exit_limit_us: None,
        }
    }

    /// The measured run starts now.
    pub(crate) fn clock_started(&mut self) {
        self.start = Some((CpuTimes::now(), load_average()));
        self.idle_exit_limit_us = crate::load::wakeup::current_limit_us();
    }

    /// The run ended now: what the report records.
    pub(crate) fn finish(&self) -> Machine {
        let (start_cpu, load_start) = self.start.unwrap_or((self.setup, load_average()));
        let end = CpuTimes::now();
        Machine {
            load_avg_start: load_start,
            load_avg_end: load_average(),
            cpu_steal_start: round4(self.setup.steal_share_until(&start_cpu)),
            cpu_steal_end: round4(start_cpu.steal_share_until(&end)),
            generator_priority: crate::load::priority::achieved(),
            idle_exit_limit_us: self.idle_exit_limit_us,
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_a_share_of_all_cpu_time() {
        let a = parse_cpu_line("cpu  100 0 100 700 0 0 0 100 0 0").unwrap();
        let b = parse_cpu_line("cpu  200 0 200 1400 0 0 0 200 0 0").unwrap();
        assert_eq!(a.steal_share_until(&b), 0.1);
        assert!(parse_cpu_line("cpu0 1 2 3").is_none());
    }
}
