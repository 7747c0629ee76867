//! Local provider, start to ready: initdb, server start, and the first successful query, then
//! stop and cleanup. This is what every `run`, `conform` and test binary pays once.

use criterion::{criterion_group, criterion_main, Criterion};
use disposable_pg::{Choice, Durability, Options, Postgres};

fn start_to_ready(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("local_provider");
    group.sample_size(10);
    for (name, durability) in [
        ("start_to_ready_fast", Durability::Fast),
        ("start_to_ready_durable", Durability::Durable),
    ] {
        let opts = Options {
            choice: Choice::Local,
            durability,
            ..Options::default()
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let pg = rt
                    .block_on(Postgres::start(&opts))
                    .expect("local PostgreSQL");
                drop(pg);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, start_to_ready);
criterion_main!(benches);
