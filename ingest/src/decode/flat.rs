//! The fast path of decoding: a flat JSON object whose values are plain strings (no
//! escapes), numbers, booleans or nulls, which is what nearly every canonical record is.
//!
//! Design: JSON parsing is the engine's largest cost (a district year is ~110 million
//! lines). This scanner finds the quotes with `memchr` and matches the known keys
//! directly into the same [`RawRecord`] serde fills, then the same validation runs. It
//! declines (returns `None`) on anything it is not sure of: escapes, nested values,
//! unusual number syntax, duplicate known keys, trailing text. serde_json then decodes
//! the line and reports any error, so the fast path can change speed, never results;
//! a test decodes random and mutated lines both ways and compares.

use super::{RawRecord, Str};
use std::borrow::Cow;

enum Scalar<'a> {
    Text(&'a str),
    Integer(i64),
    Number(f64),
    Bool(bool),
    Null,
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// A string starting at the quote at `at`, if it has no escapes or control characters.
fn plain_string(text: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    let end = at + 1 + memchr::memchr(b'"', &bytes[at + 1..])?;
    let inner = &bytes[at + 1..end];
    if inner.iter().any(|&b| b == b'\\' || b < 0x20) {
        return None;
    }
    Some((&text[at + 1..end], end + 1))
}

/// A number in JSON's grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number(text: &str, at: usize) -> Option<(Scalar<'_>, usize)> {
    let bytes = text.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = at;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    let integer_start = i;
    i = digits(i)?;
    if bytes[integer_start] == b'0' && i - integer_start > 1 {
        return None; // leading zero
    }
    let mut integral = true;
    if bytes.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
        integral = false;
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        i = digits(i)?;
        integral = false;
    }
    let literal = &text[at..i];
    let scalar = if integral {
        Scalar::Integer(literal.parse().ok()?)
    } else {
        let value: f64 = literal.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        Scalar::Number(value)
    };
    Some((scalar, i))
}

fn scalar(text: &str, at: usize) -> Option<(Scalar<'_>, usize)> {
    let rest = &text.as_bytes()[at..];
    match rest.first()? {
        b'"' => plain_string(text, at).map(|(s, next)| (Scalar::Text(s), next)),
        b't' if rest.starts_with(b"true") => Some((Scalar::Bool(true), at + 4)),
        b'f' if rest.starts_with(b"false") => Some((Scalar::Bool(false), at + 5)),
        b'n' if rest.starts_with(b"null") => Some((Scalar::Null, at + 4)),
        b'-' | b'0'..=b'9' => number(text, at),
        _ => None,
    }
}

/// Sets an optional text field once; `None` (decline) on a repeat or a non-string.
fn set_text<'a>(field: &mut Option<Str<'a>>, seen: &mut bool, value: Scalar<'a>) -> Option<()> {
    if std::mem::replace(seen, true) {
        return None;
    }
    match value {
        Scalar::Text(text) => *field = Some(Str(Cow::Borrowed(text))),
        Scalar::Null => *field = None,
        _ => return None,
    }
    Some(())
}

fn set_once<T>(field: &mut Option<T>, seen: &mut bool, value: Option<T>) -> Option<()> {
    if std::mem::replace(seen, true) {
        return None;
    }
    *field = value;
    Some(())
}

/// Parses `line` if it is a flat object the fast path can vouch for.
pub(super) fn parse_flat(line: &[u8]) -> Option<RawRecord<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let bytes = text.as_bytes();
    let mut at = skip_whitespace(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(bytes, at + 1);
    let mut raw = RawRecord::default();
    let mut seen = [false; 64];
    if bytes.get(at) == Some(&b'}') {
        return (skip_whitespace(bytes, at + 1) == bytes.len()).then_some(raw);
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let (key, next) = plain_string(text, at)?;
        at = skip_whitespace(bytes, next);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let (value, next) = scalar(text, skip_whitespace(bytes, at + 1))?;
        set_field(&mut raw, &mut seen, key, value)?;
        at = skip_whitespace(bytes, next);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_whitespace(bytes, at + 1) == bytes.len()).then_some(raw)
}

fn set_field<'a>(raw: &mut RawRecord<'a>, seen: &mut [bool; 64], key: &str, value: Scalar<'a>) -> Option<()> {
    macro_rules! text_fields {
        ($($index:literal $name:literal => $field:ident),+ $(,)?) => {
            match key {
                $($name => return set_text(&mut raw.$field, &mut seen[$index], value),)+
                _ => {}
            }
        };
    }
    text_fields!(
        0 "type" => record_type, 1 "id" => id, 2 "source" => source, 3 "name" => name,
        4 "level" => level, 5 "local_district" => local_district, 6 "community" => community,
        7 "region" => region, 8 "email" => email, 9 "role" => role, 10 "student_id" => student_id,
        11 "school_id" => school_id, 12 "entry_date" => entry_date, 13 "exit_date" => exit_date,
        14 "date" => date, 15 "status" => status, 16 "behavior" => behavior, 17 "action" => action,
        18 "term" => term, 19 "grading_period" => grading_period, 20 "course_id" => course_id,
        21 "subject" => subject, 22 "mark" => mark, 23 "reason" => reason, 24 "program" => program,
        25 "begin_date" => begin_date, 26 "end_date" => end_date, 27 "staff_id" => staff_id,
        28 "ticket_id" => ticket_id, 29 "queue" => queue, 30 "at" => at, 31 "category" => category,
        32 "priority" => priority, 33 "assignee" => assignee,
    );
    match (key, value) {
        ("grade", Scalar::Integer(n)) => set_once(&mut raw.grade, &mut seen[40], Some(n)),
        ("grade", Scalar::Null) => set_once(&mut raw.grade, &mut seen[40], None),
        ("enrolled", Scalar::Integer(n)) => set_once(&mut raw.enrolled, &mut seen[41], Some(n)),
        ("enrolled", Scalar::Null) => set_once(&mut raw.enrolled, &mut seen[41], None),
        ("days", Scalar::Integer(n)) => set_once(&mut raw.days, &mut seen[42], Some(n as f64)),
        ("days", Scalar::Number(x)) => set_once(&mut raw.days, &mut seen[42], Some(x)),
        ("days", Scalar::Null) => set_once(&mut raw.days, &mut seen[42], None),
        ("deleted", Scalar::Bool(b)) => set_once(&mut raw.deleted, &mut seen[43], Some(b)),
        ("deleted", Scalar::Null) => set_once(&mut raw.deleted, &mut seen[43], None),
        ("grade" | "enrolled" | "days" | "deleted" | "schools", _) => None,
        // An unknown key: ignored, as serde ignores it.
        _ => Some(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode_with_serde, validate};
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const LINES: &[&str] = &[
        r#"{"type":"attendance","id":"a1","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","status":"absent_excused"}"#,
        r#" { "type" : "discipline", "id":"d1","source":"sis","student_id":"s1","school_id":"k1","date":"2026-09-01","behavior":"b","action":"out_of_school_suspension","days":1.5, "extra": [1,2] } "#,
        r#"{"type":"enrollment","id":"e1","source":"sis","student_id":"s1","school_id":"k1","grade":-1,"entry_date":"2026-08-31","exit_date":null,"note":"caf\u00e9"}"#,
        r#"{"type":"section","id":"x1","source":"sis","school_id":"k1","course_id":"m","subject":"math","enrolled":41,"unknown":{"a":1}}"#,
        r#"{"type":"grade","id":"g\"1","source":"sis","student_id":"s1","school_id":"k1","term":"T","grading_period":"P1","course_id":"m","subject":"math","mark":"F","date":"2026-09-01"}"#,
        r#"{"type":"program","id":"p1","source":"sis","student_id":"s1","program":"homeless","begin_date":"2026-08-31","end_date":"2026-08-30"}"#,
        r#"{"type":"ticket","id":"t1","source":"helpdesk","ticket_id":"T1","queue":"facilities","at":"2026-09-01T09:00:00-07:00","action":"opened","school_id":"k1","category":"hvac","priority":"urgent"}"#,
        r#"{"type":"attendance","id":"a2","source":"sis","deleted":true}"#,
        r#"{"type":"staff","id":"st1","source":"hr","name":"N","email":"n@x","role":"counselor","schools":["k1"]}"#,
        r#"{"type":"health_visit","id":"h1","source":"nurse","student_id":"s1","school_id":"k1","date":"2026-09-01","reason":"illness","days":1e400}"#,
    ];

    /// The fast path must agree with serde on every line it accepts.
    fn agree(line: &[u8]) {
        if let Some(raw) = parse_flat(line) {
            let fast = validate(raw);
            let general = decode_with_serde(line).and_then(validate);
            assert_eq!(fast, general, "line {}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn the_fast_path_agrees_with_serde_on_mutated_lines() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let alphabet = b"{}[]:,\"\\ -+.0123456789eEtruefalsnl_abc\x01\xc3\xa9";
        let mut accepted = 0;
        for _ in 0..200_000 {
            let mut line = LINES[rng.random_range(0..LINES.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(0..4) {
                let at = rng.random_range(0..line.len());
                match rng.random_range(0..3) {
                    0 => line[at] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => line.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    _ => {
                        line.remove(at);
                    }
                }
                if line.is_empty() {
                    break;
                }
            }
            if parse_flat(&line).is_some() {
                accepted += 1;
            }
            agree(&line);
        }
        assert!(accepted > 10_000, "the fast path took only {accepted} lines");
    }

    #[test]
    fn the_fast_path_takes_plain_records_and_declines_the_rest() {
        assert!(parse_flat(LINES[0].as_bytes()).is_some());
        assert!(parse_flat(LINES[1].as_bytes()).is_none(), "nested value");
        assert!(parse_flat(LINES[2].as_bytes()).is_none(), "escape");
        assert!(parse_flat(LINES[7].as_bytes()).is_some());
        assert!(parse_flat(LINES[9].as_bytes()).is_none(), "out-of-range number");
        assert!(parse_flat(br#"{"type":"a","type":"b"}"#).is_none(), "duplicate field");
        assert!(parse_flat(br#"{"grade":07}"#).is_none(), "leading zero");
        assert!(parse_flat(br#"{"id":"x"} x"#).is_none(), "trailing text");
        for line in LINES {
            agree(line.as_bytes());
        }
    }
}
