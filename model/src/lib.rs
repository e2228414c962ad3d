//! Plain data shared by every part of `wholechild`: days, interned identifiers, the
//! canonical events of `shared/spec/events.md`, and the indicator rows of
//! `shared/spec/metrics.md`. No IO, no clocks, no threads.
//!
//! ```
//! use model::Day;
//! let day = Day::parse("2026-09-01").unwrap();
//! assert_eq!(day.to_string(), "2026-09-01");
//! assert_eq!(day.next().to_string(), "2026-09-02");
//! ```

pub mod alerts;
pub mod day;
pub mod enums;
pub mod event;
pub mod fact;
pub mod intern;
pub mod rows;

pub use alerts::{AlertChangeKind, StudentAlertChange, StudentEvidence};
pub use day::Day;
pub use enums::*;
pub use event::{Event, EventBody, RecordKey};
pub use fact::{Fact, SchoolInfo, StudentFact};
pub use intern::{Interner, Sym};
pub use rows::{Rate, RollupLevel, RollupRow, SchoolRow, StudentRow};
