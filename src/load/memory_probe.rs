//! Measures what one virtual device holding an open WebSocket costs the generator: register
//! N devices, connect them all, and divide the growth of the resident set by N. Run before
//! the load, on a quiet process, so the growth is theirs. With the bundled server in the same
//! process the figure also includes the server's side of each connection: an upper bound.

use std::sync::Arc;

use futures::StreamExt;

use crate::client::population::SetupError;
use crate::client::{Device, World};
use crate::metrics::process;

/// Result of a probe.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeResult {
    pub(crate) devices: u64,
    pub(crate) bytes_per_device: u64,
}

/// Registers and connects `n` devices, measures, then disconnects them.
pub(crate) async fn run(world: &Arc<World>, n: u32) -> Result<Option<ProbeResult>, SetupError> {
    if n == 0 {
        return Ok(None);
    }
    // Keys first (their cost is part of a device), then the baseline.
    let keys: Vec<_> = (0..n).map(|_| world.keys.take()).collect();
    let before = process::current_rss().unwrap_or(0);
    let mut devices: Vec<Arc<Device>> = Vec::with_capacity(n as usize);
    let mut stream = futures::stream::iter(keys)
        .map(|k| {
            let w = world.clone();
            async move {
                let mut k = k;
                let reg = w.api.register_user(&mut k).await?;
                let d = w.device_from(reg, k);
                w.connect(&d).await?;
                Ok::<_, SetupError>(d)
            }
        })
        .buffer_unordered(16);
    while let Some(d) = stream.next().await {
        devices.push(d?);
    }
    drop(stream);
    let after = process::current_rss().unwrap_or(0);
    let mut conns = Vec::new();
    for d in &devices {
        conns.extend(d.connection.lock().await.take());
    }
    futures::future::join_all(conns.into_iter().map(|c| c.close(world))).await;
    Ok(Some(ProbeResult {
        devices: n as u64,
        bytes_per_device: after.saturating_sub(before) / n as u64,
    }))
}
