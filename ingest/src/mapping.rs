//! Source mappings: a district system's own record, mapped onto a canonical record of
//! `events.md` by configuration (`[sources.TOPIC]`), then decoded like any other.
//!
//! Design: the source record is parsed into a `serde_json::Value`, each canonical field
//! is read at its JSON pointer(s), translated through its value map or date format, and
//! the canonical object is written out and handed to [`decode_line`], so a mapped record
//! is validated by exactly the rules of a canonical one. Mapped topics carry a few
//! systems' records, not the bulk of the stream, so the extra allocation is affordable.
//!
//! ```
//! let text = r#"
//! [calendar]
//! first_day = 2026-08-31
//! last_day = 2027-06-11
//! [sources.nurse]
//! type = "health_visit"
//! source = "nurse"
//! [sources.nurse.fields]
//! id = "/visit"
//! student_id = "/pupil"
//! school_id = "/site"
//! date = { path = "/when", date_format = "%m/%d/%Y" }
//! reason = { path = "/kind", values = { ILL = "illness", INJ = "injury" } }
//! "#;
//! let config = config::Config::parse(text).unwrap();
//! let record = br#"{"visit":7,"pupil":"s1","site":"k1","when":"09/14/2026","kind":"INJ"}"#;
//! let event = ingest::map_record(&config.sources[0], record).unwrap();
//! assert_eq!(event.key.id, "7");
//! ```

use crate::decode::{decode_line, Reason};
use config::{canonical_fields, FieldKind, FieldMapping, SourceMapping, ENVELOPE_FIELDS};
use model::Event;
use serde_json::{Map, Value};

/// Maps one source record onto its canonical type and decodes it.
pub fn map_record(mapping: &SourceMapping, raw: &[u8]) -> Result<Event, Reason> {
    let canonical = to_canonical(mapping, raw)?;
    decode_line(&serde_json::to_vec(&Value::Object(canonical)).expect("a JSON object serializes"))
}

/// The canonical JSON object of a source record.
fn to_canonical(mapping: &SourceMapping, raw: &[u8]) -> Result<Map<String, Value>, Reason> {
    let source: Value = serde_json::from_slice(raw).map_err(|error| Reason::InvalidJson(error.to_string()))?;
    if !source.is_object() {
        return Err(Reason::WrongType { field: String::from("(record)"), expected: "a JSON object" });
    }
    let mut out = Map::new();
    out.insert(String::from("type"), Value::from(mapping.record_type.as_str()));
    out.insert(String::from("source"), Value::from(mapping.source.as_str()));
    let kinds = ENVELOPE_FIELDS.iter().chain(canonical_fields(mapping.record_type));
    for &(field, kind) in kinds {
        let Some(field_mapping) = mapping.fields.get(field) else {
            continue;
        };
        if let Some(value) = field_value(&source, field, kind, field_mapping)? {
            out.insert(field.to_string(), value);
        }
    }
    Ok(out)
}

/// One canonical field's value, or `None` when the source has nothing for it (the
/// canonical decoder then says whether the field was required).
fn field_value(
    source: &Value,
    field: &'static str,
    kind: FieldKind,
    mapping: &FieldMapping,
) -> Result<Option<Value>, Reason> {
    let mut parts = Vec::with_capacity(mapping.paths.len());
    for path in &mapping.paths {
        match source.pointer(path) {
            None | Some(Value::Null) => {}
            Some(value) => parts.push(value),
        }
    }
    if parts.is_empty() || parts.len() < mapping.paths.len() {
        return Ok(mapping.default.as_ref().map(|default| typed(default, kind)));
    }
    let passes_through = matches!(kind, FieldKind::TextList | FieldKind::Integer | FieldKind::Boolean);
    if parts.len() == 1 && passes_through && mapping.values.is_none() {
        // Passed through unchanged: the canonical decoder checks its JSON type.
        return Ok(Some(parts[0].clone()));
    }
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            text.push(':');
        }
        match part {
            Value::String(s) => text.push_str(s),
            Value::Number(n) => text.push_str(&n.to_string()),
            Value::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
            _ => {
                return Err(Reason::Unmappable {
                    field,
                    problem: "the source value is not a string, number or boolean",
                })
            }
        }
    }
    let text = text.trim();
    if let Some(values) = &mapping.values {
        let Some(mapped) = values.get(text) else {
            return Err(Reason::Unmappable {
                field,
                problem: "the source value has no entry in the mapping's `values`",
            });
        };
        return Ok(Some(typed(mapped, kind)));
    }
    if let Some(format) = &mapping.date_format {
        return reformat_date(text, format, kind).map(Some).ok_or(Reason::Unmappable {
            field,
            problem: "the source value does not match the mapping's `date_format`",
        });
    }
    Ok(Some(typed(text, kind)))
}

/// A mapped text as the canonical field's JSON type (numbers and booleans stay text
/// when they do not parse, so the decoder reports the wrong type).
fn typed(text: &str, kind: FieldKind) -> Value {
    match kind {
        FieldKind::Integer => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text)),
        FieldKind::Boolean => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::from(text),
        },
        FieldKind::TextList => Value::Array(vec![Value::from(text)]),
        _ => Value::from(text),
    }
}

/// A source date (or instant, with its offset) in the canonical form.
fn reformat_date(text: &str, format: &str, kind: FieldKind) -> Option<Value> {
    match kind {
        FieldKind::Instant => {
            let instant = chrono::DateTime::parse_from_str(text, format).ok()?;
            Some(Value::from(instant.to_rfc3339()))
        }
        _ => {
            // A date, a local date and time, or an instant: the date as the source wrote it.
            let day = chrono::NaiveDate::parse_from_str(text, format)
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, format).map(|at| at.date()))
                .or_else(|_| chrono::DateTime::parse_from_str(text, format).map(|at| at.date_naive()))
                .ok()?;
            Some(Value::from(day.format("%Y-%m-%d").to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISTRICT_SOURCES: &str = include_str!("../../config/district-sources.toml");

    fn mapping(topic: &str) -> SourceMapping {
        let config = config::Config::parse(DISTRICT_SOURCES).expect("config/district-sources.toml is valid");
        config.sources.into_iter().find(|mapping| mapping.topic == topic).expect("topic mapped")
    }

    fn canonical(line: &str) -> Event {
        decode_line(line.as_bytes()).expect("canonical line decodes")
    }

    #[test]
    fn sis_attendance_export_maps_codes_dates_and_numeric_ids() {
        let sis = mapping("sis.attendance");
        let mapped = map_record(
            &sis,
            br#"{"ATT_ID": 99812, "STU_NUM": "s000123", "SCH_CD": "k0007", "ATT_DT": "09/14/2026", "ATT_CD": "U", "VOID_FLAG": "N"}"#,
        )
        .unwrap();
        let expected = canonical(
            r#"{"type":"attendance","id":"99812","source":"sis","student_id":"s000123","school_id":"k0007","date":"2026-09-14","status":"absent_unexcused"}"#,
        );
        assert_eq!(mapped, expected);
    }

    #[test]
    fn sis_void_flag_withdraws_the_record() {
        let sis = mapping("sis.attendance");
        let mapped =
            map_record(&sis, br#"{"ATT_ID": 5, "STU_NUM": "s1", "SCH_CD": "k1", "ATT_DT": "09/14/2026", "ATT_CD": "P", "VOID_FLAG": "Y"}"#)
                .unwrap();
        assert_eq!(mapped.key.id, "5");
        assert_eq!(mapped.body, None);
    }

    #[test]
    fn nurse_visit_maps_nested_paths_and_an_instant_to_its_date() {
        let nurse = mapping("nurse.visits");
        let mapped = map_record(
            &nurse,
            br#"{"visit": {"id": "NV-1", "time": "2026-09-14T10:32:00-07:00"}, "patient": {"student_number": "s9", "school": "k2"}, "complaint_code": "MH", "status": "active"}"#,
        )
        .unwrap();
        let expected = canonical(
            r#"{"type":"health_visit","id":"NV-1","source":"nurse","student_id":"s9","school_id":"k2","date":"2026-09-14","reason":"mental_health"}"#,
        );
        assert_eq!(mapped, expected);
        let withdrawn = map_record(&nurse, br#"{"visit": {"id": "NV-1"}, "status": "entered_in_error"}"#).unwrap();
        assert_eq!(withdrawn.body, None);
    }

    #[test]
    fn an_unknown_source_code_is_rejected_without_quoting_it() {
        let sis = mapping("sis.attendance");
        let reason = map_record(
            &sis,
            br#"{"ATT_ID": 1, "STU_NUM": "s1", "SCH_CD": "k1", "ATT_DT": "09/14/2026", "ATT_CD": "Q"}"#,
        )
        .unwrap_err();
        assert_eq!(
            reason,
            Reason::Unmappable { field: "status", problem: "the source value has no entry in the mapping's `values`" }
        );
        assert!(!reason.to_string().contains('Q'));
    }

    #[test]
    fn a_date_in_another_format_is_rejected() {
        let sis = mapping("sis.attendance");
        let reason = map_record(
            &sis,
            br#"{"ATT_ID": 1, "STU_NUM": "s1", "SCH_CD": "k1", "ATT_DT": "2026-09-14", "ATT_CD": "P"}"#,
        )
        .unwrap_err();
        assert!(matches!(reason, Reason::Unmappable { field: "date", .. }), "{reason:?}");
    }

    #[test]
    fn a_missing_required_field_is_reported_by_the_canonical_decoder() {
        let sis = mapping("sis.attendance");
        let reason =
            map_record(&sis, br#"{"ATT_ID": 1, "SCH_CD": "k1", "ATT_DT": "09/14/2026", "ATT_CD": "P"}"#).unwrap_err();
        assert!(matches!(reason, Reason::MissingField { field: "student_id", .. }), "{reason:?}");
        let reason = map_record(&sis, b"[1,2]").unwrap_err();
        assert!(matches!(reason, Reason::WrongType { .. }), "{reason:?}");
        let reason = map_record(&sis, b"{not json").unwrap_err();
        assert!(matches!(reason, Reason::InvalidJson(_)), "{reason:?}");
    }
}
