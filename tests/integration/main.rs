//! The integration tests, one binary with a module per area (as ripgrep does): one link
//! instead of one per file, and one shared disposable PostgreSQL for every module that asks
//! for it. `scenario_fuzz` stays a binary of its own: it installs a counting global allocator.

mod common;
mod conform_cli;
mod conform_detect;
mod conform_engine;
mod conform_packs;
mod conform_reference;
mod conform_target;
mod crypto_ratchet;
mod crypto_vectors;
mod db_command;
mod dbbench;
mod dbbench_findings;
mod delivery_accounting;
mod deploy_compose;
mod hostile_cli;
mod hostile_packs;
mod report_compare;
mod report_files;
mod report_html_chromium;
mod report_merge;
mod report_merge_shards;
mod run_cli;
mod run_faults;
mod run_frozen;
mod run_smoke;
mod shard_cli;
