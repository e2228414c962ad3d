//! The Prometheus `/metrics` endpoint of `wholechild run` (`crate::http`).

use anyhow::Result;
use axum::{extract::State, http::header, response::IntoResponse, routing::get, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;

/// Serves `registry` at `/metrics` on `address` (port 0 picks a free one) for the life
/// of the process. Returns the bound address.
pub fn serve(registry: Registry, address: SocketAddr) -> Result<SocketAddr> {
    let app = Router::new().route("/metrics", get(render)).with_state(registry);
    crate::http::serve("metrics endpoint", address, app)
}

async fn render(State(registry): State<Registry>) -> impl IntoResponse {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(error) = encoder.encode(&registry.gather(), &mut body) {
        body = format!("# encoding failed: {error}\n").into_bytes();
    }
    ([(header::CONTENT_TYPE, encoder.format_type().to_string())], body)
}
