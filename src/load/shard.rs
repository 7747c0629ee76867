//! Sharded load: an orchestrator the user already runs (a Kubernetes Indexed Job, Docker
//! Compose, a CI matrix) starts N copies of `run`, and each copy runs its own slice of one
//! scenario, as k6's execution segments do. There is no coordinator: every worker computes
//! its slice from the scenario and its shard `I/N` alone, so the slices are disjoint and the
//! same on every attempt, and together they are exactly the scenario.
//!
//! - Open model: the scenario's arrival schedule is numbered 0, 1, 2, …; shard `I` runs the
//!   arrivals `k` with `k mod N = I − 1` (1/N of the rate, in the same shape). Every worker
//!   draws every arrival's flow kind and seed in order and keeps its own, so the union of the
//!   shards' flows is the unsharded run's, flow for flow.
//! - Closed model: the scenario's virtual users are dealt out (the first `users mod N` shards
//!   get one more).
//! - Population: dealt out the same way. Users of different shards never message each other
//!   (a worker only knows its own), so delivery latency is measured within one worker.
//! - Ids: users and devices are numbered by the server; key material comes from a seed
//!   derived from the scenario's seed and the shard; message ids carry the shard index in
//!   their first two bytes, so no two workers can send the same message id.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::load::mix::Mix;
use crate::report::model::ShardInfo;
use crate::scenario::{ClosedPlan, FlowKind, Load, Scenario};

/// Most shards of one test: the shard index must fit the two bytes of a message id.
pub const MAX_SHARDS: u32 = u16::MAX as u32;

/// The environment variable `--shard` is read from.
pub const SHARD_ENV: &str = "E2EE_HARNESS_SHARD";
/// Kubernetes sets it (from 0) in the pods of an Indexed Job; `--shards N` uses it.
pub const JOB_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` (from 1) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a shard could not be had, or does not fit the scenario.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    #[error("{from} {value:?}: not a shard like 2/3 (shard I of N, I counting from 1)")]
    Malformed { from: &'static str, value: String },
    #[error("{from} {value:?}: N must be between 1 and {MAX_SHARDS}")]
    BadCount { from: &'static str, value: String },
    #[error("{from} {value:?}: the shard index counts from 1 to N (JOB_COMPLETION_INDEX counts from 0: use --shards N with it)")]
    BadIndex { from: &'static str, value: String },
    #[error("{JOB_INDEX_ENV}={value:?} with --shards {count}: expected 0 to {last} (Kubernetes numbers the pods of an Indexed Job from 0)", last = count - 1)]
    BadJobIndex { value: String, count: u32 },
    #[error("--shards {count} takes the shard index from {JOB_INDEX_ENV} (Kubernetes Indexed Jobs), which is not set; elsewhere give --shard I/{count}")]
    NoJobIndex { count: u32 },
    #[error("give --shard I/N (or {SHARD_ENV}) or --shards N (with {JOB_INDEX_ENV}), not both")]
    Both,
    #[error("a sharded run needs --target: the workers of one test must load one server (start it with `e2ee-harness serve` or deploy/compose.yaml)")]
    NoTarget,
    #[error("{path}: {what} = {total} dealt out to {count} shards leaves shard {index}/{count} {share}, below the {least} it needs{why}")]
    TooSmall {
        path: String,
        what: &'static str,
        total: u64,
        index: u32,
        count: u32,
        share: u64,
        least: u64,
        why: &'static str,
    },
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Shard `index` (from 1) of `count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        ((1..=MAX_SHARDS).contains(&count) && (1..=count).contains(&index))
            .then_some(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Parses `I/N`; `from` names where the text came from, for the error.
    pub fn parse(text: &str, from: &'static str) -> Result<Shard, ShardError> {
        let malformed = || ShardError::Malformed {
            from,
            value: text.to_string(),
        };
        let (i, n) = text.trim().split_once('/').ok_or_else(malformed)?;
        let (i, n): (u32, u32) = (
            i.trim().parse().map_err(|_| malformed())?,
            n.trim().parse().map_err(|_| malformed())?,
        );
        if !(1..=MAX_SHARDS).contains(&n) {
            return Err(ShardError::BadCount {
                from,
                value: text.to_string(),
            });
        }
        Shard::new(i, n).ok_or(ShardError::BadIndex {
            from,
            value: text.to_string(),
        })
    }

    /// The shard of a command line: `--shard I/N` (or [`SHARD_ENV`]), or `--shards N` with
    /// the index from [`JOB_INDEX_ENV`] (which counts from 0). `None`: not sharded.
    /// `shard_from` names where `shard` came from (the flag or [`SHARD_ENV`]).
    pub fn resolve(
        shard: Option<&str>,
        shard_from: &'static str,
        shards: Option<u32>,
        job_index: Option<&str>,
    ) -> Result<Option<Shard>, ShardError> {
        match (shard, shards) {
            (Some(_), Some(_)) => Err(ShardError::Both),
            (Some(text), None) => Shard::parse(text, shard_from).map(Some),
            (None, None) => Ok(None),
            (None, Some(count)) => {
                let raw = job_index.ok_or(ShardError::NoJobIndex { count })?;
                if !(1..=MAX_SHARDS).contains(&count) {
                    return Err(ShardError::BadCount {
                        from: "--shards",
                        value: count.to_string(),
                    });
                }
                let bad = || ShardError::BadJobIndex {
                    value: raw.to_string(),
                    count,
                };
                let i: u32 = raw.trim().parse().map_err(|_| bad())?;
                Shard::new(i.checked_add(1).ok_or_else(bad)?, count)
                    .ok_or_else(bad)
                    .map(Some)
            }
        }
    }

    /// This shard's part of `total` things dealt out as evenly as possible.
    pub fn share(&self, total: u32) -> u32 {
        let (base, extra) = (total / self.count, total % self.count);
        base + u32::from(self.index - 1 < extra)
    }

    /// Whether arrival `k` (from 0) of the open-model schedule is this shard's.
    pub fn owns_arrival(&self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The seed of this shard's key material and devices: distinct per shard, the same on
    /// every attempt.
    pub fn seed(&self, seed: u64) -> u64 {
        seed ^ u64::from(self.index)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
    }

    /// `id` with the shard index in its first two bytes: message ids of different shards
    /// can never be equal.
    pub fn stamp(&self, id: Uuid) -> Uuid {
        let mut bytes = *id.as_bytes();
        bytes[..2].copy_from_slice(&(self.index as u16).to_be_bytes());
        Uuid::from_bytes(bytes)
    }

    /// The shard a stamped message id belongs to.
    pub fn of_message(id: Uuid) -> u32 {
        let b = id.as_bytes();
        u32::from(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Refuses a split that leaves a shard too little to run the scenario's flows.
    pub fn check(&self, scenario: &Scenario) -> Result<(), ShardError> {
        let too_small = |what, total: u64, share: u64, least: u64, why| ShardError::TooSmall {
            path: scenario.path.display().to_string(),
            what,
            total,
            index: self.count,
            count: self.count,
            share,
            least,
            why,
        };
        // The smallest share is the last shard's.
        let last = Shard::new(self.count, self.count).expect("count is valid");
        let users = scenario.population.users;
        let least = u64::from(scenario.fanout_group_size.max(1) + 1);
        if u64::from(last.share(users)) < least {
            return Err(too_small(
                "population.users",
                u64::from(users),
                u64::from(last.share(users)),
                least,
                " (users of different shards never message each other; fanout.group_size + 1, at least 2)",
            ));
        }
        match &scenario.load {
            Load::Closed(plan) if last.share(plan.users) == 0 => {
                Err(too_small("closed.users", u64::from(plan.users), 0, 1, ""))
            }
            Load::Open(plan) => {
                let arrivals = crate::load::schedule::ArrivalSchedule::new(plan).total_arrivals();
                if arrivals < u64::from(self.count) {
                    return Err(too_small(
                        "the open schedule's arrivals",
                        arrivals,
                        0,
                        1,
                        "",
                    ));
                }
                Ok(())
            }
            Load::Closed(_) => Ok(()),
        }
    }
}

/// What one worker runs of a scenario: the whole of it, or its shard's slice.
pub(crate) struct Slice {
    shard: Option<Shard>,
    /// Users of the population this worker sets up.
    pub users: u32,
    /// Seed of this worker's key material and devices.
    pub seed: u64,
}

impl Slice {
    pub fn new(scenario: &Scenario, shard: Option<Shard>) -> Slice {
        let users = scenario.population.users;
        Slice {
            shard,
            users: shard.map_or(users, |s| s.share(users)),
            seed: shard.map_or(scenario.seed, |s| s.seed(scenario.seed)),
        }
    }

    /// Into how many parts the scenario is split (1 when not sharded).
    pub fn parts(&self) -> f64 {
        self.shard.map_or(1.0, |s| f64::from(s.count))
    }

    /// The closed-model plan of this worker: its share of the virtual users.
    pub fn closed_plan(&self, plan: &ClosedPlan) -> ClosedPlan {
        ClosedPlan {
            users: self.shard.map_or(plan.users, |s| s.share(plan.users)),
            ..plan.clone()
        }
    }

    /// What the report says of the slice.
    pub fn info(&self, scenario: &Scenario) -> Option<ShardInfo> {
        self.shard.map(|s| ShardInfo {
            index: s.index,
            count: s.count,
            users: self.users,
            closed_users: match &scenario.load {
                Load::Closed(plan) => s.share(plan.users),
                Load::Open(_) => 0,
            },
        })
    }
}

/// The global number of a closed-model iteration: the `n`-th iteration (from 0) of this
/// worker, numbered so that no two workers share one (its flow's seed comes from it).
pub fn iteration_number(shard: Option<Shard>, n: u64) -> u64 {
    shard.map_or(n, |s| n * u64::from(s.count) + u64::from(s.index - 1))
}

/// Every arrival's flow kind and seed, drawn in schedule order by every worker; a shard keeps
/// its own arrivals' draws and discards the others', so whatever the split, arrival `k` runs
/// the same flow with the same seed.
pub struct ArrivalDraws {
    rng: ChaCha20Rng,
    mix: Mix,
    /// (first arrival, step) of the arrivals this worker runs.
    stride: (u64, u64),
    next: u64,
}

impl ArrivalDraws {
    pub fn new(seed: u64, mix: Mix, shard: Option<Shard>) -> ArrivalDraws {
        let stride = shard.map_or((0, 1), |s| (u64::from(s.index - 1), u64::from(s.count)));
        ArrivalDraws {
            rng: ChaCha20Rng::seed_from_u64(seed),
            mix,
            stride,
            next: 0,
        }
    }

    fn draw(&mut self) -> (FlowKind, u64) {
        let kind = self.mix.pick(&mut self.rng);
        (kind, self.rng.gen())
    }

    /// Kind and seed of this worker's next arrival.
    pub fn next_flow(&mut self) -> (FlowKind, u64) {
        let (first, step) = self.stride;
        let own = if self.next == 0 {
            first
        } else {
            // `next` is one past the last arrival drawn, which was ours.
            self.next - 1 + step
        };
        while self.next < own {
            self.draw();
            self.next += 1;
        }
        self.next += 1;
        self.draw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_flags_environment_and_job_index() {
        assert_eq!(
            Shard::parse("2/3", "--shard"),
            Ok(Shard::new(2, 3).unwrap())
        );
        assert_eq!(
            Shard::parse(" 1 / 1 ", "--shard").unwrap().to_string(),
            "1/1"
        );
        for bad in ["3", "a/3", "2/", "2/3/4", ""] {
            assert!(matches!(
                Shard::parse(bad, "--shard"),
                Err(ShardError::Malformed { .. })
            ));
        }
        assert!(matches!(
            Shard::parse("0/3", "--shard"),
            Err(ShardError::BadIndex { .. })
        ));
        let e = Shard::parse("4/3", "--shard").unwrap_err().to_string();
        assert!(
            e.contains("counts from 1") && e.contains("JOB_COMPLETION_INDEX"),
            "{e}"
        );
        assert!(matches!(
            Shard::parse("1/0", "--shard"),
            Err(ShardError::BadCount { .. })
        ));
        assert!(matches!(
            Shard::parse("1/70000", "--shard"),
            Err(ShardError::BadCount { .. })
        ));
        // Kubernetes counts from 0.
        assert_eq!(
            Shard::resolve(None, "--shard", Some(3), Some("0")),
            Ok(Shard::new(1, 3))
        );
        assert_eq!(
            Shard::resolve(None, "--shard", Some(3), Some("2")),
            Ok(Shard::new(3, 3))
        );
        assert!(Shard::resolve(None, "--shard", Some(3), Some("3")).is_err());
        assert_eq!(
            Shard::resolve(None, "--shard", Some(3), None),
            Err(ShardError::NoJobIndex { count: 3 })
        );
        assert_eq!(
            Shard::resolve(Some("1/3"), "--shard", Some(3), Some("0")),
            Err(ShardError::Both)
        );
        assert_eq!(Shard::resolve(None, "--shard", None, Some("1")), Ok(None));
    }

    #[test]
    fn shares_add_up_and_arrivals_are_dealt_once() {
        for (total, n) in [(12u32, 3u32), (13, 3), (14, 3), (2, 2), (100, 7)] {
            let sum: u32 = (1..=n)
                .map(|i| Shard::new(i, n).unwrap().share(total))
                .sum();
            assert_eq!(sum, total, "{total} over {n}");
        }
        for k in 0..100u64 {
            let owners = (1..=4)
                .filter(|&i| Shard::new(i, 4).unwrap().owns_arrival(k))
                .count();
            assert_eq!(owners, 1, "arrival {k}");
        }
    }

    #[test]
    fn the_shards_draws_together_are_the_unsharded_draws() {
        let mix = Mix::new([1, 1, 1, 2, 2, 1, 1, 0]);
        let mut whole = ArrivalDraws::new(7, mix.clone(), None);
        let all: Vec<(FlowKind, u64)> = (0..60).map(|_| whole.next_flow()).collect();
        for i in 1..=3 {
            let shard = Shard::new(i, 3).unwrap();
            let mut d = ArrivalDraws::new(7, mix.clone(), Some(shard));
            for k in (0..60u64).filter(|k| shard.owns_arrival(*k)) {
                assert_eq!(d.next_flow(), all[k as usize], "shard {shard}, arrival {k}");
            }
        }
    }

    #[test]
    fn closed_model_iterations_are_numbered_apart() {
        let mut all: Vec<u64> = (1..=3)
            .flat_map(|i| (0..10).map(move |n| iteration_number(Shard::new(i, 3), n)))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..30).collect::<Vec<u64>>());
        assert_eq!(iteration_number(None, 7), 7);
    }

    #[test]
    fn seeds_and_message_ids_differ_per_shard() {
        let (a, b) = (Shard::new(1, 3).unwrap(), Shard::new(2, 3).unwrap());
        assert_ne!(a.seed(1), b.seed(1));
        assert_eq!(a.seed(1), Shard::new(1, 5).unwrap().seed(1));
        let id = Uuid::from_u128(0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF);
        assert_ne!(a.stamp(id), b.stamp(id));
        assert_eq!(Shard::of_message(b.stamp(id)), 2);
        assert_eq!(&b.stamp(id).as_bytes()[2..], &id.as_bytes()[2..]);
    }

    #[test]
    fn a_split_too_thin_for_the_scenario_is_refused() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml"),
        )
        .unwrap();
        let s = Scenario::parse(Path::new("smoke.toml"), &text).unwrap();
        // 12 users, fanout groups of 3: a shard needs 4 users.
        assert!(Shard::new(3, 3).unwrap().check(&s).is_ok());
        let e = Shard::new(1, 4).unwrap().check(&s).unwrap_err().to_string();
        assert!(
            e.contains("population.users = 12") && e.contains("shard 4/4 3"),
            "{e}"
        );
    }
}
