//! The configuration of `wholechild`: the school calendar and every threshold and
//! window of `shared/spec/metrics.md`, with the spec's defaults.
//!
//! Parsed in two stages (as ripgrep and Vector do): the TOML text is read into a syntax
//! tree, then every known key is checked and converted into [`Config`], whose values
//! cannot be invalid. Unknown keys are refused and every problem in a file is reported
//! at once, each with its line.
//!
//! ```
//! let config = config::Config::parse("[calendar]\nfirst_day = 2026-08-31\nlast_day = 2026-09-11\n").unwrap();
//! assert_eq!(config.calendar.instructional_days().len(), 10);
//! assert_eq!(config.attendance.chronic_min_days_enrolled, 31);
//! ```

mod alert_rules;
mod calendar;
mod notifications;
mod params;
mod streams;
mod walker;

pub use alert_rules::*;
pub use calendar::Calendar;
pub use notifications::*;
pub use params::*;
pub use streams::*;

use std::fmt;
use std::path::Path;

/// One problem found in a configuration file.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Problem {
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `calendar.first_day`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// A configuration that was refused, with every problem found in it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "configuration refused ({} problem(s)):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// A whole, valid configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub calendar: Calendar,
    pub attendance: AttendanceParams,
    pub flags: FlagParams,
    pub sections: SectionParams,
    pub sla: SlaParams,
    /// `[kafka]`: required by `wholechild run` and `produce`, unused by `replay`.
    pub kafka: Option<KafkaConfig>,
    pub metrics: MetricsConfig,
    /// `[sources.TOPIC]`: topics whose records are mapped onto a canonical type.
    pub sources: Vec<SourceMapping>,
    /// `[[rules]]`: the early-warning alert rules (the defaults of
    /// [`DEFAULT_RULES_TOML`] when the file has no `rules` key; `rules = []` for none).
    pub rules: Vec<AlertRule>,
    /// `[alerts]`: where `wholechild run` logs and delivers alerts; `None`: it evaluates
    /// no alert rules.
    pub alerts: Option<AlertsConfig>,
}

/// The configuration `wholechild demo` runs on: `config/example.toml`, embedded.
pub const EXAMPLE_TOML: &str = include_str!("../example.toml");

impl Config {
    /// Parses and validates a configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        walker::parse_config(text)
    }

    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            problems: vec![Problem {
                line: None,
                key: path.display().to_string(),
                message: format!("cannot read the configuration file: {error}"),
            }],
        })?;
        Config::parse(&text)
    }

    /// The embedded example configuration (the demo's defaults).
    pub fn example() -> Config {
        Config::parse(EXAMPLE_TOML).expect("config/example.toml is valid")
    }
}
