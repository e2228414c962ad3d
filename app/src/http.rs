//! The HTTP endpoints of `wholechild run` (`/metrics`, the alerts API): each an axum
//! router on a small tokio runtime and a thread of its own, so a request never shares a
//! thread with the dataflows.

use anyhow::{Context, Result};
use axum::Router;
use std::net::SocketAddr;

/// Binds `address` (port 0 picks a free one) and serves `app` on a background thread
/// named `name` for the life of the process. Returns the bound address.
pub fn serve(name: &'static str, address: SocketAddr, app: Router) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(address).with_context(|| format!("binding the {name} {address}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(name.replace(' ', "-")).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => return eprintln!("{name}: {error}"),
            };
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("{name} stopped: {error}");
            }
        })
    })?;
    Ok(bound)
}
