//! `[kafka]`, `[metrics]` and `[sources.TOPIC]`: where the live engine reads its records,
//! where it exposes its metrics, and how a district system whose records are not canonical
//! is mapped onto `events.md` without code.

use model::RecordType;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// `[kafka]`: the brokers, consumer group and topics of `wholechild run` and `produce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port,...`, librdkafka's `bootstrap.servers`.
    pub brokers: String,
    pub group_id: String,
    /// Topics consumed; the first is the one `produce` publishes to.
    pub topics: Vec<String>,
    /// Where records that fail to decode or map are set aside, with their reason.
    pub dead_letter_topic: String,
    /// Raw librdkafka options, applied after (and so overriding) the engine's own.
    pub options: BTreeMap<String, String>,
}

/// `[metrics]`: the Prometheus endpoint of `wholechild run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint; `None` when `listen = ""` turns it off.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))) }
    }
}

/// `[sources.TOPIC]`: a topic whose records are mapped onto one canonical type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMapping {
    pub topic: String,
    pub record_type: RecordType,
    /// The envelope's `source` when no field mapping gives one.
    pub source: String,
    /// Canonical field name -> where to find it in the source record.
    pub fields: BTreeMap<&'static str, FieldMapping>,
}

/// One canonical field of a mapped record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldMapping {
    /// JSON pointers (RFC 6901) into the source record; several are joined with `:`
    /// (an `id` made of a student and a date, say).
    pub paths: Vec<String>,
    /// Source value -> canonical value; a value missing from a present map is rejected.
    pub values: Option<BTreeMap<String, String>>,
    /// chrono `strftime` format of a source date (or, for `at`, an instant with offset).
    pub date_format: Option<String>,
    /// Used when the source record has nothing at the path.
    pub default: Option<String>,
}

/// The fields of each canonical type besides the envelope (`events.md`), with the JSON
/// type each takes, so a mapping can be checked when the configuration loads.
pub fn canonical_fields(record_type: RecordType) -> &'static [(&'static str, FieldKind)] {
    use FieldKind::*;
    match record_type {
        RecordType::School => {
            &[("name", Text), ("level", Text), ("local_district", Text), ("community", Text), ("region", Text)]
        }
        RecordType::Staff => &[
            ("name", Text),
            ("email", Text),
            ("role", Text),
            ("schools", TextList),
            ("region", Text),
            ("local_district", Text),
        ],
        RecordType::Enrollment => {
            &[("student_id", Text), ("school_id", Text), ("grade", Integer), ("entry_date", Date), ("exit_date", Date)]
        }
        RecordType::Attendance => &[("student_id", Text), ("school_id", Text), ("date", Date), ("status", Text)],
        RecordType::Discipline => &[
            ("student_id", Text),
            ("school_id", Text),
            ("date", Date),
            ("behavior", Text),
            ("action", Text),
            ("days", Integer),
        ],
        RecordType::Grade => &[
            ("student_id", Text),
            ("school_id", Text),
            ("term", Text),
            ("grading_period", Text),
            ("course_id", Text),
            ("subject", Text),
            ("mark", Text),
            ("date", Date),
        ],
        RecordType::HealthVisit => &[("student_id", Text), ("school_id", Text), ("date", Date), ("reason", Text)],
        RecordType::Program => &[("student_id", Text), ("program", Text), ("begin_date", Date), ("end_date", Date)],
        RecordType::Caseload => {
            &[("student_id", Text), ("staff_id", Text), ("role", Text), ("begin_date", Date), ("end_date", Date)]
        }
        RecordType::Section => &[("school_id", Text), ("course_id", Text), ("subject", Text), ("enrolled", Integer)],
        RecordType::Ticket => &[
            ("ticket_id", Text),
            ("queue", Text),
            ("at", Instant),
            ("action", Text),
            ("school_id", Text),
            ("category", Text),
            ("priority", Text),
            ("assignee", Text),
        ],
    }
}

/// The envelope fields every mapping may give besides the type's own.
pub const ENVELOPE_FIELDS: &[(&str, FieldKind)] =
    &[("id", FieldKind::Text), ("source", FieldKind::Text), ("deleted", FieldKind::Boolean)];

/// The JSON type of a canonical field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    TextList,
    Integer,
    Boolean,
    Date,
    Instant,
}
