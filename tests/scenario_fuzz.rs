//! Property tests over scenario text (a bounded fuzz run inside `cargo test`): whatever the
//! text, parsing and validation return `Ok` or an error naming the file, never panic, and
//! never hold more than a set amount of memory. Inputs are the smoke scenario with keys set
//! to hostile values, and the same text with random bytes spliced in.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2ee_harness::scenario::Scenario;
use proptest::prelude::*;

/// Live and peak heap bytes of this test binary.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Most heap one parse may add on top of what was live before it: scenario files are small,
/// so anything near this means an input-driven allocation.
const MEMORY_CAP: usize = 32 * 1024 * 1024;

const SMOKE: &str = include_str!("../scenarios/smoke.toml");

/// Keys of the smoke scenario (as `key = `) whose values the generator replaces.
const KEYS: &[&str] = &[
    "name",
    "model",
    "seed",
    "duration",
    "warmup",
    "drain",
    "message_size",
    "memory_probe_devices",
    "max_late_starts",
    "users",
    "devices_per_user",
    "one_time_prekeys",
    "replenish_threshold",
    "rate",
    "register",
    "initiate",
    "converse",
    "messages",
    "group_size",
    "away",
];

/// Values chosen to hit bounds, types and the parsers' corners.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "-5.0",
    "1",
    "2",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1e12",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "0.0",
    "1.5",
    "\"\"",
    "\"0s\"",
    "\"999999h\"",
    "\"18446744073709551615s\"",
    "\"1ns\"",
    "\"24h\"",
    "\"25h\"",
    "\"1h 1s\"",
    "\"-1s\"",
    "\"fast\"",
    "\"open\"",
    "\"closed\"",
    "\"é\\u0000\"",
    "true",
    "[]",
    "[1, 2]",
    "{}",
    "{ a = 1 }",
    "\"../../etc\"",
    "1979-05-27T07:32:00Z",
];

/// The smoke scenario with some keys given hostile values.
fn hostile_values() -> impl Strategy<Value = String> {
    prop::collection::vec((0..KEYS.len(), 0..VALUES.len()), 1..6).prop_map(|edits| {
        let mut text = SMOKE.to_string();
        for (k, v) in edits {
            text = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with(&format!("{} = ", KEYS[k])) {
                        format!("{} = {}", KEYS[k], VALUES[v])
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        text
    })
}

/// The smoke scenario with random characters spliced in at random places.
fn spliced() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<String>()), 1..4).prop_map(|cuts| {
        let mut text = SMOKE.to_string();
        for (at, piece) in cuts {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            text.insert_str(i, &piece);
        }
        text
    })
}

fn parse_within_the_cap(text: &str) -> Result<(), TestCaseError> {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result =
        std::panic::catch_unwind(|| Scenario::parse(Path::new("fuzz.toml"), text).map(|_| ()));
    let added = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    prop_assert!(result.is_ok(), "parsing panicked on:\n{text}");
    if let Ok(Err(e)) = result {
        prop_assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
    }
    prop_assert!(
        added < MEMORY_CAP,
        "parsing took {added} bytes of heap on:\n{text}"
    );
    Ok(())
}

proptest! {
    // Bounded, so that the run fits in CI; failures print the offending text. One test, so
    // that no other test thread allocates while a parse is measured.
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn scenario_text_never_panics_nor_allocates_past_the_cap(
        text in prop_oneof![hostile_values(), spliced()]
    ) {
        parse_within_the_cap(&text)?;
    }
}
