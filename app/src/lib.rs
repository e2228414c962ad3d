//! The `wholechild` application: the commands (`replay`, `generate`, `demo`, `run`, `produce`) over the
//! library crates, and the driver they share. `main.rs` only parses arguments.

pub mod alert_api;
pub mod alert_log;
pub mod demo;
pub mod driver;
pub mod entity_alerts;
pub mod generate;
pub mod http;
pub mod live_alerts;
pub mod metrics;
pub mod output;
pub mod produce;
pub mod replay;
pub mod run;

/// Loads a configuration file, or the embedded example when none is given.
pub fn load_config(path: Option<&std::path::PathBuf>) -> anyhow::Result<config::Config> {
    match path {
        Some(path) => config::Config::load(path).map_err(|error| anyhow::anyhow!("{}: {error}", path.display())),
        None => Ok(config::Config::example()),
    }
}
