//! Start to ready, per provider: from `Postgres::start` to the first successful query, then
//! stop and cleanup. This is what every `run`, `conform` and test binary pays once.
//!
//! - local: initdb (from a cached cluster) and `postgres` in a temp dir;
//! - docker: a container of `E2EE_HARNESS_PG_IMAGE` (default `e2ee-harness/postgres:15`, see
//!   docker/postgres/build-image.sh), initdb inside it, readiness by a real query over the
//!   published port, then removal.

use criterion::{criterion_group, criterion_main, Criterion};
use disposable_pg::{Choice, Durability, Options, Postgres};

fn bench_provider(c: &mut Criterion, group_name: &str, choice: Choice, image: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    for (name, durability) in [
        ("start_to_ready_fast", Durability::Fast),
        ("start_to_ready_durable", Durability::Durable),
    ] {
        let opts = Options {
            choice: choice.clone(),
            durability,
            image: image.to_string(),
            ..Options::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let pg = rt
                    .block_on(Postgres::start(&opts))
                    .unwrap_or_else(|e| panic!("{group_name}: {e}"));
                drop(pg);
            })
        });
    }
    group.finish();
}

fn start_to_ready(c: &mut Criterion) {
    let image = Options::image_for_tests();
    bench_provider(c, "local_provider", Choice::Local, &image);
    bench_provider(c, "docker_provider", Choice::Docker, &image);
}

criterion_group!(benches, start_to_ready);
criterion_main!(benches);
