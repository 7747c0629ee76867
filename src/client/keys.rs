//! Key material made ahead of the timed window, where the protocol allows: whole device key
//! sets (identity, signed prekey, one-time prekeys) for registrations, and spare one-time
//! prekeys for replenishing. Ephemeral and ratchet keys cannot be made ahead: the protocol
//! needs them fresh inside the step that uses them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::crypto::identity::IdentityKeyPair;
use crate::crypto::prekeys::{generate_one_time_batch, OneTimePreKey, SignedPreKey};

/// Keys of one device before registration.
pub struct DeviceKeys {
    pub(crate) identity: IdentityKeyPair,
    pub(crate) registration_id: u32,
    pub(crate) signed: SignedPreKey,
    pub(crate) one_time: Vec<OneTimePreKey>,
}

/// How often [`KeyFactory::precompute`] reports progress and looks for a stop request (a
/// set takes ~0.1–3 ms).
pub(crate) const PROGRESS_EVERY: usize = 100;

/// A pool of precomputed keys. When it runs dry it generates on demand (and counts it, so a
/// report shows whether the precomputation was big enough).
pub struct KeyFactory {
    one_time_per_device: usize,
    rng: Mutex<ChaCha20Rng>,
    devices: Mutex<Vec<DeviceKeys>>,
    spare_one_time: Mutex<Vec<OneTimePreKey>>,
    pub(crate) generated_on_demand: AtomicU64,
}

impl KeyFactory {
    /// A factory with `devices` key sets of `one_time_per_device` one-time prekeys, seeded.
    pub fn with_seed(seed: u64, devices: usize, one_time_per_device: usize) -> KeyFactory {
        Self::precompute(
            seed,
            devices,
            one_time_per_device,
            &AtomicBool::new(false),
            |_| {},
        )
        .expect("never stopped")
    }

    /// Like [`KeyFactory::with_seed`] for large populations: calls `progress` with the number
    /// of sets made so far every [`PROGRESS_EVERY`] sets, and gives up (`None`) as soon as
    /// `stop` is set, since a run interrupted while it makes keys must end promptly.
    pub(crate) fn precompute(
        seed: u64,
        devices: usize,
        one_time_per_device: usize,
        stop: &AtomicBool,
        progress: impl Fn(usize),
    ) -> Option<KeyFactory> {
        let f = KeyFactory {
            one_time_per_device,
            rng: Mutex::new(ChaCha20Rng::seed_from_u64(seed)),
            devices: Mutex::new(Vec::new()),
            spare_one_time: Mutex::new(Vec::new()),
            generated_on_demand: AtomicU64::new(0),
        };
        let mut sets = Vec::with_capacity(devices);
        for i in 0..devices {
            if i % PROGRESS_EVERY == 0 {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
                progress(i);
            }
            sets.push(f.generate());
        }
        *f.devices.lock().unwrap_or_else(|p| p.into_inner()) = sets;
        Some(f)
    }

    /// Unseeded shorthand for tests.
    pub(crate) fn new(devices: usize, one_time_per_device: usize) -> KeyFactory {
        Self::with_seed(rand::random(), devices, one_time_per_device)
    }

    /// Adds `n` spare one-time prekeys (for replenishing).
    pub(crate) fn stock_one_time(&self, n: usize) {
        let batch = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            generate_one_time_batch(0, n, &mut *rng)
        };
        self.spare_one_time
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(batch);
    }

    fn generate(&self) -> DeviceKeys {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let identity = IdentityKeyPair::generate(&mut *rng);
        let signed = SignedPreKey::generate(&identity, 1, &mut *rng);
        let one_time = generate_one_time_batch(1, self.one_time_per_device, &mut *rng);
        DeviceKeys {
            registration_id: rng.gen_range(1..=16380),
            identity,
            signed,
            one_time,
        }
    }

    /// A precomputed key set (or a fresh one if the pool is empty).
    pub(crate) fn take(&self) -> DeviceKeys {
        let pooled = self.devices.lock().unwrap_or_else(|p| p.into_inner()).pop();
        pooled.unwrap_or_else(|| {
            self.generated_on_demand.fetch_add(1, Ordering::Relaxed);
            self.generate()
        })
    }

    /// `n` one-time prekeys (ids to be assigned by the device).
    pub(crate) fn take_one_time(&self, n: usize) -> Vec<OneTimePreKey> {
        let mut out = {
            let mut spare = self
                .spare_one_time
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let at = spare.len().saturating_sub(n);
            spare.split_off(at)
        };
        if out.len() < n {
            self.generated_on_demand.fetch_add(1, Ordering::Relaxed);
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(generate_one_time_batch(0, n - out.len(), &mut *rng));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_then_generates_on_demand() {
        let f = KeyFactory::new(1, 3);
        let a = f.take();
        assert_eq!(a.one_time.len(), 3);
        assert_eq!(f.generated_on_demand.load(Ordering::Relaxed), 0);
        let b = f.take();
        assert_ne!(a.identity.public(), b.identity.public());
        assert_eq!(f.generated_on_demand.load(Ordering::Relaxed), 1);
        f.stock_one_time(4);
        assert_eq!(f.take_one_time(3).len(), 3);
        assert_eq!(f.take_one_time(3).len(), 3);
        assert_eq!(f.generated_on_demand.load(Ordering::Relaxed), 2);
    }
}
