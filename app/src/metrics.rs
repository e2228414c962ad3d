//! The Prometheus `/metrics` endpoint of `wholechild run` (axum on a small tokio runtime
//! of its own, so scraping never shares a thread with the dataflows).

use anyhow::{Context, Result};
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;

/// Binds `address` (port 0 picks a free one) and serves `registry` at `/metrics` on a
/// background thread for the life of the process. Returns the bound address.
pub fn serve(registry: Registry, address: SocketAddr) -> Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind(address).with_context(|| format!("binding the metrics endpoint {address}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(String::from("metrics")).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => return eprintln!("metrics endpoint: {error}"),
            };
            let app = Router::new().route("/metrics", get(render)).with_state(registry);
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("metrics endpoint stopped: {error}");
            }
        })
    })?;
    Ok(bound)
}

async fn render(State(registry): State<Registry>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(error) = encoder.encode(&registry.gather(), &mut body) {
        body = format!("# encoding failed: {error}\n").into_bytes();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_string())], body)
}
