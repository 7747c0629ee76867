//! The generator's threads before the rest of the machine. An open-model generator must
//! start work when it is due and read each response when it arrives; on a machine it shares
//! with the server and the database (the bundled server, a local PostgreSQL), a saturated
//! machine must show as the server's latency, not as the generator's late starts.
//!
//! Raising the threads' nice value was not enough: at 200 flows/s on 2 cores, 4–7 % of flows
//! still started more than 1 ms late, because a waking thread of the fair scheduler does not
//! always preempt the thread on its CPU. A real-time policy does: the generator's threads
//! (the pacer and the runtime's workers) run `SCHED_FIFO` at the lowest real-time priority
//! where the kernel allows it (root or `CAP_SYS_NICE`), and fall back to nice −10, then to
//! nothing. They sleep between operations, so the rest of the machine keeps its CPU; the
//! kernel's real-time throttling (by default 95 % of each second) bounds them in any case.
//!
//! `SCHED_RESET_ON_FORK` keeps the privilege to these threads: a thread or process they
//! create (the bundled server's runtime, a local PostgreSQL) starts at normal priority, and
//! [`normal_for_this_thread`] says so explicitly where it matters.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

/// How the generator's threads were favoured, as recorded in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// `SCHED_FIFO`, priority 1: they preempt every normal thread when they wake.
    Realtime,
    /// Nice −10: favoured by the fair scheduler, not always first on waking.
    Raised,
    /// The kernel allowed neither: they compete with the server as equals.
    Normal,
}

impl Priority {
    pub fn describe(self) -> &'static str {
        match self {
            Priority::Realtime => "real-time (SCHED_FIFO 1)",
            Priority::Raised => "nice -10",
            Priority::Normal => "normal",
        }
    }
}

/// Nice value of the generator's threads when real-time is refused.
const GENERATOR_NICE: i32 = -10;

/// What the last [`favour_this_thread`] achieved (0: never called).
static ACHIEVED: AtomicU8 = AtomicU8::new(0);

/// Favours the calling thread (see the module's doc). Called by the pacer thread and by the
/// generator runtime's workers.
pub fn favour_this_thread() {
    let got = favour();
    ACHIEVED.store(got as u8 + 1, Ordering::Relaxed);
}

/// How the generator's threads were favoured, once any was.
pub(crate) fn achieved() -> Option<Priority> {
    match ACHIEVED.load(Ordering::Relaxed) {
        1 => Some(Priority::Realtime),
        2 => Some(Priority::Raised),
        3 => Some(Priority::Normal),
        _ => None,
    }
}

/// The most a user allows (`E2EE_HARNESS_PRIORITY=realtime|raised|normal`; default
/// `realtime`): a shared machine's owner may not want real-time threads on it.
fn allowed() -> Priority {
    match std::env::var("E2EE_HARNESS_PRIORITY").as_deref() {
        Ok("normal") => Priority::Normal,
        Ok("raised") => Priority::Raised,
        _ => Priority::Realtime,
    }
}

#[cfg(target_os = "linux")]
fn favour() -> Priority {
    let allowed = allowed();
    if allowed == Priority::Normal {
        return Priority::Normal;
    }
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: both calls change only the calling thread's scheduling (pid 0 / its own tid).
    unsafe {
        if allowed == Priority::Realtime
            && libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
                == 0
        {
            return Priority::Realtime;
        }
        let tid = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, GENERATOR_NICE) == 0 {
            return Priority::Raised;
        }
    }
    Priority::Normal
}

#[cfg(not(target_os = "linux"))]
fn favour() -> Priority {
    Priority::Normal
}

/// Puts the calling thread back at normal priority (`SCHED_OTHER`, nice 0): for a thread a
/// favoured one created that runs the server's side (the bundled server's runtime), whatever
/// it inherited.
pub(crate) fn normal_for_this_thread() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls change only the calling thread's scheduling.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        let _ = libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        let _ = libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_favoured_thread_says_how_and_its_children_start_normal() {
        let (got, child) = std::thread::spawn(|| {
            favour_this_thread();
            let got = achieved().expect("recorded");
            // A thread it creates: real-time never passes on (SCHED_RESET_ON_FORK).
            let child = std::thread::spawn(|| unsafe { libc::sched_getscheduler(0) })
                .join()
                .unwrap();
            (got, child)
        })
        .join()
        .unwrap();
        assert_eq!(
            child,
            libc::SCHED_OTHER,
            "a child of a favoured thread is normal"
        );
        if got == Priority::Realtime {
            // Only the favoured thread itself, not this one.
            assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        }
    }

    #[test]
    fn normal_undoes_favour() {
        std::thread::spawn(|| {
            favour_this_thread();
            normal_for_this_thread();
            let policy = unsafe { libc::sched_getscheduler(0) };
            assert_eq!(policy & !libc::SCHED_RESET_ON_FORK, libc::SCHED_OTHER);
            let nice =
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
            assert_eq!(nice, 0);
        })
        .join()
        .unwrap();
    }
}
