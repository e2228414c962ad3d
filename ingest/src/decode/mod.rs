//! Decoding one NDJSON line into a validated canonical [`Event`], or a [`Rejection`].
//!
//! Design: the line is parsed once by serde into a flat struct of every field any type
//! may carry, borrowing strings from the line where it can; validation per type then
//! builds the typed event. Only a line that fails is parsed a second time, into a
//! generic value, to say which field had the wrong JSON type. Reasons never quote the
//! record's contents (the raw line is kept beside the reason, not inside it).

mod flat;

use chrono::DateTime;
use compact_str::CompactString;
use model::{
    AttendanceStatus, CaseloadRole, Day, DisciplineAction, Event, EventBody, HealthReason, Mark, ProgramKind,
    RecordKey, RecordType, SchoolLevel, StaffRole, Subject, TicketAction, TicketPriority, TicketQueue,
};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// Why a line was rejected. The messages name fields and domains, never values.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Reason {
    /// Not parseable as JSON (serde's message: what was expected and where).
    InvalidJson(String),
    /// Valid JSON, but a field has the wrong JSON type.
    WrongType {
        field: String,
        expected: &'static str,
    },
    MissingField {
        record_type: Option<RecordType>,
        field: &'static str,
    },
    UnknownType,
    OutOfDomain {
        field: &'static str,
        domain: &'static str,
    },
    InvalidDate {
        field: &'static str,
    },
    InvalidInstant {
        field: &'static str,
    },
    OutOfRange {
        field: &'static str,
        range: &'static str,
    },
    EndBeforeBegin {
        begin: &'static str,
        end: &'static str,
    },
    /// A mapped source record (`[sources.TOPIC]`) that the mapping cannot turn canonical.
    Unmappable {
        field: &'static str,
        problem: &'static str,
    },
    /// A Kafka tombstone (empty value) whose key is not `type:id` with a known type.
    TombstoneKey,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::InvalidJson(message) => write!(f, "invalid JSON: {message}"),
            Reason::WrongType { field, expected } => {
                write!(f, "field `{field}`: expected {expected}")
            }
            Reason::MissingField { record_type: Some(t), field } => {
                write!(f, "missing required field `{field}` for type `{}`", t.as_str())
            }
            Reason::MissingField { record_type: None, field } => write!(f, "missing required field `{field}`"),
            Reason::UnknownType => {
                write!(f, "field `type`: expected one of: {}", RecordType::domain())
            }
            Reason::OutOfDomain { field, domain } => {
                write!(f, "field `{field}`: expected one of: {domain}")
            }
            Reason::InvalidDate { field } => {
                write!(f, "field `{field}`: expected a date YYYY-MM-DD")
            }
            Reason::InvalidInstant { field } => write!(f, "field `{field}`: expected an RFC 3339 instant with offset"),
            Reason::OutOfRange { field, range } => {
                write!(f, "field `{field}`: out of range ({range})")
            }
            Reason::EndBeforeBegin { begin, end } => write!(f, "field `{end}` is before `{begin}`"),
            Reason::Unmappable { field, problem } => write!(f, "source mapping, field `{field}`: {problem}"),
            Reason::TombstoneKey => {
                write!(
                    f,
                    "a tombstone (empty value) needs a key `type:id` whose type is one of: {}",
                    RecordType::domain()
                )
            }
        }
    }
}

/// A string field, borrowed from the line unless it had escapes. (serde's own
/// `Option<Cow<str>>` always allocates: it cannot borrow through the `Option`.)
struct Str<'a>(Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for StrVisitor<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(value.to_owned())))
            }
            fn visit_string<E>(self, value: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

/// Every field any canonical type may carry. Unknown fields are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRecord<'a> {
    #[serde(rename = "type", borrow)]
    record_type: Option<Str<'a>>,
    #[serde(borrow)]
    id: Option<Str<'a>>,
    #[serde(borrow)]
    source: Option<Str<'a>>,
    deleted: Option<bool>,
    #[serde(borrow)]
    name: Option<Str<'a>>,
    #[serde(borrow)]
    level: Option<Str<'a>>,
    #[serde(borrow)]
    local_district: Option<Str<'a>>,
    #[serde(borrow)]
    community: Option<Str<'a>>,
    #[serde(borrow)]
    region: Option<Str<'a>>,
    #[serde(borrow)]
    email: Option<Str<'a>>,
    #[serde(borrow)]
    role: Option<Str<'a>>,
    #[serde(borrow)]
    schools: Option<Vec<Str<'a>>>,
    #[serde(borrow)]
    student_id: Option<Str<'a>>,
    #[serde(borrow)]
    school_id: Option<Str<'a>>,
    grade: Option<i64>,
    #[serde(borrow)]
    entry_date: Option<Str<'a>>,
    #[serde(borrow)]
    exit_date: Option<Str<'a>>,
    #[serde(borrow)]
    date: Option<Str<'a>>,
    #[serde(borrow)]
    status: Option<Str<'a>>,
    #[serde(borrow)]
    behavior: Option<Str<'a>>,
    #[serde(borrow)]
    action: Option<Str<'a>>,
    days: Option<f64>,
    #[serde(borrow)]
    term: Option<Str<'a>>,
    #[serde(borrow)]
    grading_period: Option<Str<'a>>,
    #[serde(borrow)]
    course_id: Option<Str<'a>>,
    #[serde(borrow)]
    subject: Option<Str<'a>>,
    #[serde(borrow)]
    mark: Option<Str<'a>>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
    #[serde(borrow)]
    program: Option<Str<'a>>,
    #[serde(borrow)]
    begin_date: Option<Str<'a>>,
    #[serde(borrow)]
    end_date: Option<Str<'a>>,
    #[serde(borrow)]
    staff_id: Option<Str<'a>>,
    enrolled: Option<i64>,
    #[serde(borrow)]
    ticket_id: Option<Str<'a>>,
    #[serde(borrow)]
    queue: Option<Str<'a>>,
    #[serde(borrow)]
    at: Option<Str<'a>>,
    #[serde(borrow)]
    category: Option<Str<'a>>,
    #[serde(borrow)]
    priority: Option<Str<'a>>,
    #[serde(borrow)]
    assignee: Option<Str<'a>>,
}

/// The JSON type each typed field of [`RawRecord`] expects, for the slow error path.
const FIELD_TYPES: &[(&str, &str)] = &[
    ("deleted", "a boolean"),
    ("grade", "an integer"),
    ("days", "a number"),
    ("enrolled", "an integer"),
    ("schools", "a list of strings"),
    ("exit_date", "a string or null"),
    ("end_date", "a string or null"),
];

/// Decodes one line (without its newline).
pub fn decode_line(line: &[u8]) -> Result<Event, Reason> {
    let raw = match flat::parse_flat(line) {
        Some(raw) => raw,
        None => decode_with_serde(line)?,
    };
    validate(raw)
}

/// The general path: any JSON, with serde's error when it is not a valid record.
fn decode_with_serde(line: &[u8]) -> Result<RawRecord<'_>, Reason> {
    serde_json::from_slice(line).map_err(|error| explain_parse_error(line, error))
}

/// A parse error: say which field has the wrong type when the line is valid JSON.
fn explain_parse_error(line: &[u8], error: serde_json::Error) -> Reason {
    use serde_json::Value;
    let Ok(value) = serde_json::from_slice::<Value>(line) else {
        return Reason::InvalidJson(error.to_string());
    };
    let Value::Object(map) = value else {
        return Reason::WrongType { field: String::from("(record)"), expected: "a JSON object" };
    };
    for (field, expected) in FIELD_TYPES {
        if map.get(*field).is_some() {
            let ok = match (*field, &map[*field]) {
                ("deleted", Value::Bool(_)) => true,
                ("grade" | "enrolled", Value::Number(n)) => n.is_i64(),
                ("days", Value::Number(_)) => true,
                ("schools", Value::Array(items)) => items.iter().all(Value::is_string),
                ("exit_date" | "end_date", Value::String(_) | Value::Null) => true,
                (_, Value::Null) => true,
                _ => false,
            };
            if !ok {
                return Reason::WrongType { field: field.to_string(), expected };
            }
        }
    }
    for (field, value) in &map {
        if !matches!(value, Value::String(_) | Value::Null)
            && !FIELD_TYPES.iter().any(|(f, _)| f == field)
            && KNOWN_TEXT_FIELDS.contains(&field.as_str())
        {
            return Reason::WrongType { field: field.clone(), expected: "a string" };
        }
    }
    Reason::InvalidJson(error.to_string())
}

const KNOWN_TEXT_FIELDS: &[&str] = &[
    "type",
    "id",
    "source",
    "name",
    "level",
    "local_district",
    "community",
    "region",
    "email",
    "role",
    "student_id",
    "school_id",
    "entry_date",
    "date",
    "status",
    "behavior",
    "action",
    "term",
    "grading_period",
    "course_id",
    "subject",
    "mark",
    "reason",
    "program",
    "begin_date",
    "staff_id",
    "ticket_id",
    "queue",
    "at",
    "category",
    "priority",
    "assignee",
];

fn text(value: &Str) -> CompactString {
    CompactString::from(&**value)
}

/// Reads one type's fields, reporting the first problem.
struct Fields<'r, 'a> {
    record_type: RecordType,
    raw: &'r RawRecord<'a>,
}

impl<'r, 'a> Fields<'r, 'a> {
    fn required<'v>(&self, value: &'v Option<Str<'a>>, field: &'static str) -> Result<&'v Str<'a>, Reason> {
        value.as_ref().ok_or(Reason::MissingField { record_type: Some(self.record_type), field })
    }

    fn text(&self, value: &Option<Str<'a>>, field: &'static str) -> Result<CompactString, Reason> {
        self.required(value, field).map(text)
    }

    fn day(&self, value: &Option<Str<'a>>, field: &'static str) -> Result<Day, Reason> {
        Day::parse(self.required(value, field)?).ok_or(Reason::InvalidDate { field })
    }

    fn optional_day(&self, value: &Option<Str<'a>>, field: &'static str) -> Result<Option<Day>, Reason> {
        value.as_ref().map(|text| Day::parse(text).ok_or(Reason::InvalidDate { field })).transpose()
    }

    fn choice<T>(
        &self,
        value: &Option<Str<'a>>,
        field: &'static str,
        parse: fn(&str) -> Option<T>,
        domain: &'static str,
    ) -> Result<T, Reason> {
        parse(self.required(value, field)?).ok_or(Reason::OutOfDomain { field, domain })
    }

    fn integer(&self, value: Option<i64>, field: &'static str) -> Result<i64, Reason> {
        value.ok_or(Reason::MissingField { record_type: Some(self.record_type), field })
    }

    /// A span's end must not come before its beginning.
    fn span(&self, begin: Day, end: Option<Day>, names: (&'static str, &'static str)) -> Result<(), Reason> {
        match end {
            Some(end) if end < begin => Err(Reason::EndBeforeBegin { begin: names.0, end: names.1 }),
            _ => Ok(()),
        }
    }
}

fn validate(raw: RawRecord) -> Result<Event, Reason> {
    let missing = |field| Reason::MissingField { record_type: None, field };
    let type_text = raw.record_type.as_ref().ok_or(missing("type"))?;
    let record_type = RecordType::parse(type_text).ok_or(Reason::UnknownType)?;
    let id = raw.id.as_ref().ok_or(Reason::MissingField { record_type: Some(record_type), field: "id" })?;
    let source = raw.source.as_ref().ok_or(Reason::MissingField { record_type: Some(record_type), field: "source" })?;
    let key = RecordKey { record_type, id: text(id) };
    let source = text(source);
    if raw.deleted == Some(true) {
        return Ok(Event { key, source, body: None });
    }
    let body = validate_body(Fields { record_type, raw: &raw })?;
    Ok(Event { key, source, body: Some(body) })
}

fn validate_body(f: Fields) -> Result<EventBody, Reason> {
    let r = f.raw;
    Ok(match f.record_type {
        RecordType::School => EventBody::School {
            name: f.required(&r.name, "name")?.to_string(),
            level: f.choice(&r.level, "level", SchoolLevel::parse, SchoolLevel::domain())?,
            local_district: f.text(&r.local_district, "local_district")?,
            community: f.text(&r.community, "community")?,
            region: f.text(&r.region, "region")?,
        },
        RecordType::Staff => EventBody::Staff {
            name: f.required(&r.name, "name")?.to_string(),
            email: f.required(&r.email, "email")?.to_string(),
            role: f.choice(&r.role, "role", StaffRole::parse, StaffRole::domain())?,
            schools: r
                .schools
                .as_ref()
                .ok_or(Reason::MissingField { record_type: Some(f.record_type), field: "schools" })?
                .iter()
                .map(text)
                .collect(),
            region: r.region.as_ref().map(text),
            local_district: r.local_district.as_ref().map(text),
        },
        RecordType::Enrollment => {
            let grade = f.integer(r.grade, "grade")?;
            if !(-1..=12).contains(&grade) {
                return Err(Reason::OutOfRange { field: "grade", range: "-1 to 12" });
            }
            let entry_date = f.day(&r.entry_date, "entry_date")?;
            let exit_date = f.optional_day(&r.exit_date, "exit_date")?;
            f.span(entry_date, exit_date, ("entry_date", "exit_date"))?;
            EventBody::Enrollment {
                student_id: f.text(&r.student_id, "student_id")?,
                school_id: f.text(&r.school_id, "school_id")?,
                grade: grade as i8,
                entry_date,
                exit_date,
            }
        }
        RecordType::Attendance => EventBody::Attendance {
            student_id: f.text(&r.student_id, "student_id")?,
            school_id: f.text(&r.school_id, "school_id")?,
            date: f.day(&r.date, "date")?,
            status: f.choice(&r.status, "status", AttendanceStatus::parse, AttendanceStatus::domain())?,
        },
        RecordType::Discipline => {
            let days = r.days.ok_or(Reason::MissingField { record_type: Some(f.record_type), field: "days" })?;
            if !(0.0..=365.0).contains(&days) {
                return Err(Reason::OutOfRange { field: "days", range: "0 to 365" });
            }
            EventBody::Discipline {
                student_id: f.text(&r.student_id, "student_id")?,
                school_id: f.text(&r.school_id, "school_id")?,
                date: f.day(&r.date, "date")?,
                behavior: f.text(&r.behavior, "behavior")?,
                action: f.choice(&r.action, "action", DisciplineAction::parse, DisciplineAction::domain())?,
                days_hundredths: (days * 100.0).round() as u32,
            }
        }
        RecordType::Grade => EventBody::Grade {
            student_id: f.text(&r.student_id, "student_id")?,
            school_id: f.text(&r.school_id, "school_id")?,
            term: f.text(&r.term, "term")?,
            grading_period: f.text(&r.grading_period, "grading_period")?,
            course_id: f.text(&r.course_id, "course_id")?,
            subject: f.choice(&r.subject, "subject", Subject::parse, Subject::domain())?,
            mark: f.choice(&r.mark, "mark", Mark::parse, Mark::domain())?,
            date: f.day(&r.date, "date")?,
        },
        RecordType::HealthVisit => EventBody::HealthVisit {
            student_id: f.text(&r.student_id, "student_id")?,
            school_id: f.text(&r.school_id, "school_id")?,
            date: f.day(&r.date, "date")?,
            reason: f.choice(&r.reason, "reason", HealthReason::parse, HealthReason::domain())?,
        },
        RecordType::Program => {
            let begin_date = f.day(&r.begin_date, "begin_date")?;
            let end_date = f.optional_day(&r.end_date, "end_date")?;
            f.span(begin_date, end_date, ("begin_date", "end_date"))?;
            EventBody::Program {
                student_id: f.text(&r.student_id, "student_id")?,
                program: f.choice(&r.program, "program", ProgramKind::parse, ProgramKind::domain())?,
                begin_date,
                end_date,
            }
        }
        RecordType::Caseload => {
            let begin_date = f.day(&r.begin_date, "begin_date")?;
            let end_date = f.optional_day(&r.end_date, "end_date")?;
            f.span(begin_date, end_date, ("begin_date", "end_date"))?;
            EventBody::Caseload {
                student_id: f.text(&r.student_id, "student_id")?,
                staff_id: f.text(&r.staff_id, "staff_id")?,
                role: f.choice(&r.role, "role", CaseloadRole::parse, CaseloadRole::domain())?,
                begin_date,
                end_date,
            }
        }
        RecordType::Section => {
            let enrolled = f.integer(r.enrolled, "enrolled")?;
            if !(0..=10_000).contains(&enrolled) {
                return Err(Reason::OutOfRange { field: "enrolled", range: "0 to 10000" });
            }
            EventBody::Section {
                school_id: f.text(&r.school_id, "school_id")?,
                course_id: f.text(&r.course_id, "course_id")?,
                subject: f.choice(&r.subject, "subject", Subject::parse, Subject::domain())?,
                enrolled: enrolled as u32,
            }
        }
        RecordType::Ticket => validate_ticket(&f)?,
    })
}

fn validate_ticket(f: &Fields) -> Result<EventBody, Reason> {
    let r = f.raw;
    let at = f.required(&r.at, "at")?;
    let instant = DateTime::parse_from_rfc3339(at).map_err(|_| Reason::InvalidInstant { field: "at" })?;
    let local = instant.with_timezone(&chrono_tz::America::Los_Angeles).date_naive();
    let action = f.choice(&r.action, "action", TicketAction::parse, TicketAction::domain())?;
    let opened = action == TicketAction::Opened;
    let school_id = if opened { Some(f.text(&r.school_id, "school_id")?) } else { r.school_id.as_ref().map(text) };
    let category = if opened { Some(f.text(&r.category, "category")?) } else { r.category.as_ref().map(text) };
    let priority = match (&r.priority, opened) {
        (None, false) => None,
        _ => Some(f.choice(&r.priority, "priority", TicketPriority::parse, TicketPriority::domain())?),
    };
    Ok(EventBody::Ticket {
        ticket_id: f.text(&r.ticket_id, "ticket_id")?,
        queue: f.choice(&r.queue, "queue", TicketQueue::parse, TicketQueue::domain())?,
        at_unix_seconds: instant.timestamp(),
        local_day: Day::from_date(local),
        action,
        school_id,
        category,
        priority,
        assignee: r.assignee.as_ref().map(text),
    })
}
