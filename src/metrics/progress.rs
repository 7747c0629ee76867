//! Live progress: elapsed and total time, flow rate, errors, integrity failures and the
//! running p95 of the main operations. An indicatif bar on a terminal, a plain line every few
//! seconds otherwise (CI logs), nothing with `--quiet`. Always on stderr, so stdout carries
//! only the final summary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::{GeneratorCounters, Ledger, Op, Recorder};
use crate::report::summary::format_us;

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    /// A line every `PLAIN_EVERY`.
    Plain,
    Bar,
}

impl Mode {
    /// Bar on a terminal, plain lines otherwise, nothing when quiet.
    pub(crate) fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR_EVERY: Duration = Duration::from_millis(500);
/// Operations whose running p95 is shown.
const SHOWN: [Op; 4] = [
    Op::BundleFetch,
    Op::KeyInsert,
    Op::MessageInsert,
    Op::Delivery,
];

/// What progress reads.
#[derive(Clone)]
pub(crate) struct Sources {
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) counters: Arc<GeneratorCounters>,
    pub(crate) start: Instant,
    pub(crate) total: Duration,
    pub(crate) warmup: Duration,
}

/// A running progress display; [`Progress::finish`] stops it.
pub(crate) struct Progress {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(mode: Mode, sources: Sources) -> Progress {
        let (stop, mut stopped) = watch::channel(false);
        if mode == Mode::Quiet {
            return Progress { stop, task: None };
        }
        let task = tokio::spawn(async move {
            let bar = (mode == Mode::Bar).then(|| {
                let bar = ProgressBar::new(sources.total.as_secs().max(1));
                bar.set_style(
                    ProgressStyle::with_template(
                        "[{elapsed_precise}] {bar:24.cyan/blue} {pos}/{len}s {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar
            });
            let every = if bar.is_some() {
                BAR_EVERY
            } else {
                PLAIN_EVERY
            };
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => break,
                }
                let now = Instant::now();
                let started = GeneratorCounters::get(&sources.counters.flows_launched);
                let rate =
                    (started - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, started);
                let line = status_line(&sources, now, rate);
                match &bar {
                    Some(bar) => {
                        bar.set_position(
                            now.duration_since(sources.start)
                                .as_secs()
                                .min(sources.total.as_secs()),
                        );
                        bar.set_message(line);
                    }
                    None => {
                        let elapsed = now.duration_since(sources.start).as_secs();
                        eprintln!("[{elapsed:>4}s/{}s] {line}", sources.total.as_secs());
                    }
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Progress {
            stop,
            task: Some(task),
        }
    }

    pub(crate) async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn status_line(s: &Sources, now: Instant, rate: f64) -> String {
    let snap = s.recorder.snapshot();
    let errors: u64 = snap.errors.iter().sum();
    let phase = if now.duration_since(s.start) < s.warmup {
        "warm-up"
    } else if now.duration_since(s.start) < s.total {
        "measuring"
    } else {
        "draining"
    };
    let p95s: Vec<String> = SHOWN
        .iter()
        .map(|op| {
            let v = snap.p95_us[op.index()]
                .map(format_us)
                .unwrap_or_else(|| "-".into());
            format!("{} {v}", op.name())
        })
        .collect();
    format!(
        "{phase} | {rate:.1} flows/s | in flight {} | errors {errors} | sent {} | integrity failures {} | p95 {}",
        GeneratorCounters::get(&s.counters.flows_in_flight),
        s.ledger.sent(),
        s.ledger.failures_so_far(),
        p95s.join(", ")
    )
}
