//! Idle CPUs kept quick to wake while a load runs. A virtual machine's idle CPU halts (after
//! polling briefly), and waking a halted CPU goes through the hypervisor: tens to hundreds of
//! microseconds, paid by every start handed to a parked worker, every timer that ends a
//! pacer's sleep and every response a thread went idle waiting for. The pacer covers those
//! wake-ups by spinning ([`super::pacer`]), so their spread was generator CPU: measured here,
//! the fetch flow cost 357 µs of CPU per request with idle CPUs halting, 145 µs with them
//! polling (oha: 142–146 µs either way).
//!
//! Linux's PM QoS interface lets a process bound how slow to leave an idle state may be
//! (`/dev/cpu_dma_latency`); at 0 µs idle CPUs poll instead of halting. Latency tools do the
//! same (cyclictest holds it at 0 by default). The request lasts while the file stays open:
//! the kernel drops it when the holder closes it or exits, however it exits. Writing it needs
//! root; without it, or with `E2EE_HARNESS_IDLE=sleep`, nothing changes. The polling time is
//! the machine's idle time, counted in no process's CPU (the power draw goes up while a run
//! lasts), and the report records the machine's limit either way ([`current_limit_us`]).

use std::fs::File;
use std::io::{Read, Write};

const PM_QOS_CPU_LATENCY: &str = "/dev/cpu_dma_latency";

/// While alive, idle CPUs poll rather than halt (when the kernel allowed it).
#[derive(Debug)]
pub struct IdleHold {
    _request: Option<File>,
}

/// Asks that idle CPUs poll for as long as the returned hold lives.
pub fn hold() -> IdleHold {
    if std::env::var("E2EE_HARNESS_IDLE").as_deref() == Ok("sleep") {
        return IdleHold { _request: None };
    }
    let request = File::options()
        .write(true)
        .open(PM_QOS_CPU_LATENCY)
        .and_then(|mut f| f.write_all(&0i32.to_ne_bytes()).map(|()| f))
        .ok();
    IdleHold { _request: request }
}

/// The machine's current limit on leaving an idle state, in microseconds (whoever set it);
/// `None` when it cannot be read. A limit of 0 means idle CPUs poll.
pub(crate) fn current_limit_us() -> Option<u32> {
    let mut value = [0u8; 4];
    File::open(PM_QOS_CPU_LATENCY)
        .and_then(|mut f| f.read_exact(&mut value))
        .ok()?;
    u32::try_from(i32::from_ne_bytes(value)).ok()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_hold_sets_the_limit_to_zero_while_it_lives_and_no_longer() {
        let Some(before) = current_limit_us() else {
            // Not root (or no PM QoS device): the hold must then change nothing either.
            let _hold = hold();
            assert_eq!(current_limit_us(), None);
            return;
        };
        {
            let hold = hold();
            assert!(hold._request.is_some(), "root may write the request");
            assert_eq!(current_limit_us(), Some(0));
        }
        assert_eq!(
            current_limit_us(),
            Some(before),
            "closing the file drops the request"
        );
    }
}
