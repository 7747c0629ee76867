//! When open-model flows are meant to start: the arrival curve of constant or linearly
//! ramping stages, inverted so the n-th arrival's time is computed exactly (no drift from
//! adding up intervals, and the schedule never depends on how the run is going).

use std::time::Duration;

use crate::scenario::OpenPlan;

/// Arrival times of an open-model plan.
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    /// (stage start s, stage length s, rate at start, rate at end, arrivals before the stage)
    stages: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
}

impl ArrivalSchedule {
    pub fn new(plan: &OpenPlan) -> ArrivalSchedule {
        let mut stages = Vec::new();
        let (mut t, mut from, mut n) = (0.0, plan.start_rate, 0.0);
        for s in &plan.stages {
            let d = s.duration.as_secs_f64();
            stages.push((t, d, from, s.rate, n));
            n += (from + s.rate) / 2.0 * d;
            t += d;
            from = s.rate;
        }
        ArrivalSchedule { stages, total: n }
    }

    /// Arrivals the whole plan intends.
    pub fn total_arrivals(&self) -> u64 {
        (self.total + 1e-9).floor() as u64
    }

    /// Offset from the start at which arrival `k` (0-based) is due; `None` past the plan.
    pub(crate) fn time_of(&self, k: u64) -> Option<Duration> {
        let n = k as f64;
        for &(start, d, r0, r1, before) in &self.stages {
            let in_stage = (r0 + r1) / 2.0 * d;
            if n < before + in_stage - 1e-9 {
                let m = n - before;
                // Arrivals after t seconds into the stage: r0·t + a·t², a = (r1 − r0) / 2d.
                let a = (r1 - r0) / (2.0 * d);
                let t = if a.abs() < 1e-12 {
                    m / r0
                } else {
                    // The numerically stable root of a·t² + r0·t − m = 0.
                    let disc = (r0 * r0 + 4.0 * a * m).max(0.0);
                    2.0 * m / (r0 + disc.sqrt())
                };
                return Some(Duration::from_secs_f64(start + t.clamp(0.0, d)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stage;

    fn plan(start_rate: f64, stages: &[(u64, f64)]) -> OpenPlan {
        OpenPlan {
            start_rate,
            stages: stages
                .iter()
                .map(|&(s, rate)| Stage {
                    duration: Duration::from_secs(s),
                    rate,
                })
                .collect(),
            max_in_flight: 100,
        }
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let s = ArrivalSchedule::new(&plan(10.0, &[(2, 10.0)]));
        assert_eq!(s.total_arrivals(), 20);
        assert_eq!(s.time_of(0), Some(Duration::ZERO));
        assert_eq!(s.time_of(5).unwrap().as_millis(), 500);
        assert_eq!(s.time_of(19).unwrap().as_millis(), 1900);
        assert_eq!(s.time_of(20), None);
    }

    #[test]
    fn ramps_follow_the_integral() {
        // 0 → 10/s over 10 s: 50 arrivals; n arrivals by t = t²/2, so arrival 8 is at t = 4.
        let s = ArrivalSchedule::new(&plan(0.0, &[(10, 10.0), (5, 10.0)]));
        assert_eq!(s.total_arrivals(), 100);
        assert_eq!(s.time_of(8).unwrap().as_millis(), 4000);
        assert_eq!(s.time_of(50).unwrap().as_millis(), 10_000);
        assert_eq!(s.time_of(60).unwrap().as_millis(), 11_000);
        // Ramping down: 10 → 0 over 10 s, 50 arrivals, spaced ever wider.
        let down = ArrivalSchedule::new(&plan(10.0, &[(10, 0.0)]));
        let gaps: Vec<f64> = (1..49)
            .map(|k| (down.time_of(k).unwrap() - down.time_of(k - 1).unwrap()).as_secs_f64())
            .collect();
        assert!(gaps.windows(2).all(|w| w[1] >= w[0] - 1e-9));
        assert!(down.time_of(49).unwrap() <= Duration::from_secs(10));
    }

    #[test]
    fn times_are_monotonic_across_stages() {
        let s = ArrivalSchedule::new(&plan(2.0, &[(3, 8.0), (2, 8.0), (3, 1.0)]));
        let mut last = Duration::ZERO;
        for k in 0..s.total_arrivals() {
            let t = s.time_of(k).unwrap();
            assert!(t >= last, "arrival {k} at {t:?} before {last:?}");
            last = t;
        }
    }
}
