//! The indicator dataflows (the only crate that knows timely and differential).
//!
//! Facts about students flow into one stateful operator per worker
//! ([`student_operator`]), which evaluates each student's indicators
//! ([`indicators`], [`evaluate`]) and emits what the student contributes to school
//! counts; differential joins and sums those into school and rollup counts
//! ([`rollups`]). [`run`] builds it all on N workers and hands worker 0 an [`Engine`].

pub mod alerting;
pub mod engine;
pub mod evaluate;
pub mod indicators;
pub mod rollups;
pub mod student_operator;
pub mod student_state;

pub use alerting::AlertSink;
pub use engine::{run, CountSink, DirectorySink, Engine, EngineParams, Outputs};
pub use evaluate::{Category, StudentParams};
pub use rollups::RollupKey;
pub use student_operator::{ClockTick, Snapshot};
