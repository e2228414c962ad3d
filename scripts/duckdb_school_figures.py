#!/usr/bin/env python3
"""The DuckDB peer: school figures of ../shared/spec/metrics.md computed in one batch.

    scripts/duckdb_school_figures.py EVENTS_FILE CONFIG_TOML OUT_FILE [--as-of YYYY-MM-DD]

This stands for "the nightly batch districts run today": read the whole NDJSON file once
with DuckDB, apply corrections and withdrawals (per `type` + `id` the last valid version
in file order wins; a last version with `"deleted": true` removes the record), and
compute, per school, as of D:

    enrolled, cumulative_enrollment, chronic_absence_rate, suspension_rate,
    tier_1, tier_2, tier_3, oversized_sections

OUT_FILE gets one JSON object per school record in force (sorted by school_id), with the
same keys and the same rendering as `wholechild replay`'s schools.ndjson (rates: exact
fraction rounded half-up to 9 decimals, or null). Timing goes to stderr.

D defaults to the district clock of `wholechild replay`: the greatest `date` seen on a
valid attendance, discipline, grade or health_visit line (every version read, including
later-corrected ones; withdrawals carry no date). The engine's clock also moves with a
help-desk ticket's local day; if the tickets would move it further this script says so on
stderr (pass --as-of to both tools to be sure they agree).

Lines are checked like the engine's decoder (required fields, domains, strict
YYYY-MM-DD dates, ranges) for the record types used here; a rejected line is not a
version (a rejected correction leaves the earlier version in force). Lines that are not
JSON are skipped by read_json(ignore_errors=true).

Line order: the file is read with one parallel CREATE TABLE AS over read_json with
preserve_insertion_order=true, and the table's rowid is the file's line index (a
malformed line becomes an all-NULL row, so rowids stay aligned with line numbers). This
was checked against a line-by-line read of generated files (1.3 and 19.6 million
lines) with DuckDB 2.0.1. Careful when editing: the same CREATE TABLE AS with a WHERE
clause did NOT keep file order in rowid (corrections were applied in the wrong order), so
filtering is done after the read.

Every threshold comes from the config TOML, with the defaults of metrics.md when a key is
absent ([attendance], [flags], [sections]).
"""

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from fractions import Fraction
from zoneinfo import ZoneInfo

import duckdb

ABSENT = ("absent_excused", "absent_unexcused", "suspended")

# Columns read from every line; dates as VARCHAR, checked and cast in SQL.
COLUMNS = {
    "type": "VARCHAR",
    "id": "VARCHAR",
    "source": "VARCHAR",
    "deleted": "BOOLEAN",
    "student_id": "VARCHAR",
    "school_id": "VARCHAR",
    "date": "VARCHAR",
    "status": "VARCHAR",
    "action": "VARCHAR",
    "behavior": "VARCHAR",
    "days": "DOUBLE",
    "reason": "VARCHAR",
    "grade": "BIGINT",
    "entry_date": "VARCHAR",
    "exit_date": "VARCHAR",
    "term": "VARCHAR",
    "grading_period": "VARCHAR",
    "course_id": "VARCHAR",
    "subject": "VARCHAR",
    "mark": "VARCHAR",
    "enrolled": "BIGINT",
    "name": "VARCHAR",
    "level": "VARCHAR",
    "local_district": "VARCHAR",
    "community": "VARCHAR",
    "region": "VARCHAR",
    "at": "VARCHAR",
}


def sql_list(values):
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def strict_date(col):
    """A strict YYYY-MM-DD date (as the engine's Day::parse), else NULL."""
    return f"CASE WHEN regexp_full_match({col}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({col} AS DATE) END"


def to_date(value, what):
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    sys.exit(f"config: {what} is not a date: {value!r}")


def load_params(path):
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    cal = cfg["calendar"]
    first, last = to_date(cal["first_day"], "first_day"), to_date(cal["last_day"], "last_day")
    holidays = {to_date(h, "holiday") for h in cal.get("holidays", [])}
    days, d = [], first
    while d <= last:
        if d.weekday() < 5 and d not in holidays:
            days.append(d)
        d += dt.timedelta(days=1)
    att, flags, sec = cfg.get("attendance", {}), cfg.get("flags", {}), cfg.get("sections", {})
    return {
        "first_day": first,
        "last_day": last,
        "instructional_days": days,
        "chronic_min_days": int(att.get("chronic_min_days_enrolled", 31)),
        # shares as exact fractions (10.0 -> 1/10), compared with integer arithmetic
        "chronic_share": Fraction(str(att.get("chronic_absence_min_percent", 10.0))) / 100,
        "window": int(att.get("window_instructional_days", 30)),
        "att_min_days": int(flags.get("attendance_min_days_enrolled", 10)),
        "att_rate_below": Fraction(str(flags.get("attendance_rate_below_percent", 90.0))) / 100,
        "min_suspensions": int(flags.get("behavior_min_suspensions", 1)),
        "min_incidents_30": int(flags.get("behavior_min_incidents_30", 2)),
        "min_failing_core": int(flags.get("course_min_failing_core", 1)),
        "min_failing_marks": int(flags.get("course_min_failing_marks", 2)),
        "cap": int(sec.get("cap", 39)),
        "capped_subjects": list(sec.get("capped_subjects", ["ela", "math"])),
        "capped_levels": list(sec.get("capped_levels", ["middle", "high"])),
    }


def validity_sql():
    """True when the line is a valid record of a type used here (the engine's checks)."""
    dte = lambda c: f"({strict_date(c)}) IS NOT NULL"
    nn = lambda *cs: " AND ".join(f"{c} IS NOT NULL" for c in cs)
    body = f"""CASE type
      WHEN 'school' THEN {nn('name', 'local_district', 'community', 'region')}
           AND level IN ('elementary', 'middle', 'high', 'span')
      WHEN 'enrollment' THEN {nn('student_id', 'school_id', 'grade')} AND grade BETWEEN -1 AND 12
           AND {dte('entry_date')}
           AND (exit_date IS NULL OR ({dte('exit_date')} AND {strict_date('exit_date')} >= {strict_date('entry_date')}))
      WHEN 'attendance' THEN {nn('student_id', 'school_id')} AND {dte('date')}
           AND status IN ('present', 'tardy', 'absent_excused', 'absent_unexcused', 'suspended')
      WHEN 'discipline' THEN {nn('student_id', 'school_id', 'behavior', 'days')} AND days BETWEEN 0 AND 365
           AND {dte('date')}
           AND action IN ('referral', 'in_school_suspension', 'out_of_school_suspension', 'expulsion')
      WHEN 'grade' THEN {nn('student_id', 'school_id', 'term', 'grading_period', 'course_id')} AND {dte('date')}
           AND subject IN ('ela', 'math', 'science', 'social_studies', 'other')
           AND mark IN ('A', 'B', 'C', 'D', 'F')
      WHEN 'health_visit' THEN {nn('student_id', 'school_id')} AND {dte('date')}
           AND reason IN ('illness', 'injury', 'mental_health', 'chronic_condition', 'other')
      WHEN 'section' THEN {nn('school_id', 'course_id', 'enrolled')} AND enrolled BETWEEN 0 AND 10000
           AND subject IN ('ela', 'math', 'science', 'social_studies', 'other')
      WHEN 'ticket' THEN TRY_CAST("at" AS TIMESTAMPTZ) IS NOT NULL
      ELSE false END"""
    return f"(id IS NOT NULL AND source IS NOT NULL AND (coalesce(deleted, false) OR coalesce({body}, false)))"


def render_rate(num, den):
    """As the engine: null, or num/den rounded half-up to nine decimals."""
    if den == 0:
        return "null"
    scaled = (num * 1_000_000_000 * 2 + den) // (2 * den)
    return f"{scaled // 1_000_000_000}.{scaled % 1_000_000_000:09d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("events")
    ap.add_argument("config")
    ap.add_argument("out")
    ap.add_argument("--as-of", help="figures as of this day (default: the greatest date on a valid "
                    "attendance, discipline, grade or health_visit line, as the engine)")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, the core count)")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 8GB (default: DuckDB's, 80%% of RAM)")
    ap.add_argument("--temp-dir", help="DuckDB temp_directory for spilling beyond --memory-limit "
                    "(default: a fresh directory under the system temp dir, removed at exit)")
    ap.add_argument("--students-out", metavar="FILE",
                    help="also write per-student figures (days, flags, tier, school on D) as NDJSON, "
                         "to compare with the engine's students.ndjson when figures disagree")
    args = ap.parse_args()

    p = load_params(args.config)
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    # DuckDB's own default for an in-memory database is ./.tmp (the caller's directory)
    temp_dir = args.temp_dir or tempfile.mkdtemp(prefix="duckdb-peer-")
    if not args.temp_dir:
        atexit.register(shutil.rmtree, temp_dir, True)
    con.execute(f"SET temp_directory = '{temp_dir}'")

    # ---- read: one pass over the file, in file order, lines checked -----------------
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    events = args.events.replace("'", "''")
    con.execute(f"""
      CREATE TEMP TABLE lines AS
      SELECT type, id, coalesce(deleted, false) AS deleted, {validity_sql()} AS valid,
             student_id, school_id,
             -- a few shared columns keep the table narrow:
             CASE type WHEN 'enrollment' THEN {strict_date('entry_date')}
                       ELSE {strict_date('date')} END AS day,              -- date / entry_date
             {strict_date('exit_date')} AS exit_date,
             CASE type WHEN 'attendance' THEN status WHEN 'discipline' THEN action
                       WHEN 'grade' THEN mark WHEN 'school' THEN level END AS code,
             subject,                                                      -- grade, section
             CASE type WHEN 'discipline' THEN CAST(round(days * 100) AS BIGINT)
                       WHEN 'section' THEN enrolled END AS num,            -- days x 100 / head count
             term, course_id,
             CASE WHEN type = 'ticket' THEN epoch(TRY_CAST("at" AS TIMESTAMPTZ)) END AS at_epoch
      FROM read_json('{events}', format = 'newline_delimited', ignore_errors = true,
                     columns = {columns})
    """)  # no WHERE here: with a filter, DuckDB 2.0.1 did not keep file order in rowid
    t_read = time.perf_counter()

    # ---- D: the district clock -------------------------------------------------------
    clock, ticket_clock = con.execute("""
      SELECT max(day) FILTER (WHERE type IN ('attendance', 'discipline', 'grade', 'health_visit')),
             max(at_epoch) FILTER (WHERE type = 'ticket')
      FROM lines WHERE valid AND NOT deleted
    """).fetchone()
    if ticket_clock is not None:
        ticket_day = dt.datetime.fromtimestamp(ticket_clock, ZoneInfo("America/Los_Angeles")).date()
        if clock is None or ticket_day > clock:
            print(f"note: a ticket's local day {ticket_day} is past the last dated record {clock}; "
                  "the engine's clock would follow the ticket (pass --as-of to both)", file=sys.stderr)
    if args.as_of:
        as_of = dt.date.fromisoformat(args.as_of)
    elif clock is not None:
        as_of = clock
    else:
        sys.exit("the input has no dated record: give --as-of")
    day_after = as_of + dt.timedelta(days=1)

    # ---- calendar tables -------------------------------------------------------------
    instr = p["instructional_days"]
    upto = [d for d in instr if d <= as_of]
    window = upto[-p["window"]:] if p["window"] > 0 else []
    window_start = window[0] if window else day_after  # empty window: nothing is within
    # before(d) = instructional days < d, tabulated over first_day .. last_day + 1
    con.execute("CREATE TEMP TABLE instr (day DATE PRIMARY KEY)")
    con.executemany("INSERT INTO instr VALUES (?)", [(d,) for d in instr])
    rows, n, d = [], 0, p["first_day"]
    instr_set = set(instr)
    while d <= p["last_day"] + dt.timedelta(days=1):
        rows.append((d, n))
        n += d in instr_set
        d += dt.timedelta(days=1)
    con.execute("CREATE TEMP TABLE before_tab (day DATE PRIMARY KEY, n INTEGER)")
    con.executemany("INSERT INTO before_tab VALUES (?, ?)", rows)
    total = len(instr)

    cs = p["chronic_share"]   # absent/enrolled >= cs   <=>  absent * den >= num * enrolled
    ar = p["att_rate_below"]  # 1 - absent/enrolled < ar <=> (enrolled - absent) * den < num * enrolled
    prm = dict(
        D=f"DATE '{as_of}'", D1=f"DATE '{day_after}'", W=f"DATE '{window_start}'",
        first=f"DATE '{p['first_day']}'", total=total, absent=sql_list(ABSENT),
        cmin=p["chronic_min_days"], cnum=cs.numerator, cden=cs.denominator,
        amin=p["att_min_days"], anum=ar.numerator, aden=ar.denominator,
        smin=p["min_suspensions"], imin=p["min_incidents_30"],
        fcore=p["min_failing_core"], fmarks=p["min_failing_marks"], cap=p["cap"],
        subjects=sql_list(p["capped_subjects"]) if p["capped_subjects"] else "(NULL)",
        levels=sql_list(p["capped_levels"]) if p["capped_levels"] else "(NULL)",
    )

    # ---- the records in force: last valid version per (type, id), withdrawals removed -
    # Only what the figures read is kept: attendance only where the version in force is an
    # absence; health visits and tickets only moved the clock.
    con.execute(f"""
      CREATE TEMP TABLE cur AS
      SELECT l.type, l.id, l.student_id, l.school_id, l.day, l.exit_date, l.code, l.subject, l.num,
             l.term, l.course_id
      FROM (SELECT rowid AS rid, * FROM lines) l
      JOIN (SELECT type, id, max(rowid) AS rid FROM lines WHERE valid GROUP BY type, id) last
        ON l.rid = last.rid
      WHERE NOT l.deleted
        AND l.type IN ('school', 'enrollment', 'attendance', 'discipline', 'grade', 'section')
        AND (l.type <> 'attendance' OR l.code IN {sql_list(ABSENT)})
    """)
    con.execute("DROP TABLE lines")

    ctes = """
    WITH
    enr AS (  -- enrollments in force entered by D
      SELECT student_id, school_id, id, day AS entry_date, exit_date FROM cur
      WHERE type = 'enrollment' AND day <= {D}),
    bounds AS (  -- where the set of covering enrollments can change; D+1 closes the year
      SELECT student_id, entry_date AS b FROM enr
      UNION SELECT student_id, least(exit_date, {D1}) FROM enr WHERE exit_date IS NOT NULL
      UNION SELECT student_id, {D1} FROM enr),
    segs AS (
      SELECT * FROM (SELECT student_id, b AS s, lead(b) OVER (PARTITION BY student_id ORDER BY b) AS e FROM bounds)
      WHERE e IS NOT NULL AND s <= {D}),
    seg_school AS (  -- the school on every day of [s, e): latest entry_date, ties greatest id
      SELECT g.student_id, g.s, g.e, n.school_id
      FROM segs g JOIN enr n
        ON n.student_id = g.student_id AND n.entry_date <= g.s AND (n.exit_date IS NULL OR g.s < n.exit_date)
      QUALIFY row_number() OVER (PARTITION BY g.student_id, g.s ORDER BY n.entry_date DESC, n.id DESC) = 1),
    seg_days AS (  -- instructional days in [s, e)
      SELECT g.*,
        coalesce(be.n, CASE WHEN g.e < {first} THEN 0 ELSE {total} END)
        - coalesce(bs.n, CASE WHEN g.s < {first} THEN 0 ELSE {total} END) AS days
      FROM seg_school g LEFT JOIN before_tab bs ON bs.day = g.s LEFT JOIN before_tab be ON be.day = g.e),
    absent_days AS (  -- instructional student-days <= D with any absence record in force
      SELECT DISTINCT student_id, day AS date FROM cur
      WHERE type = 'attendance' AND code IN {absent} AND day <= {D} AND day IN (SELECT day FROM instr)),
    ssy_absent AS (
      SELECT g.student_id, g.school_id, count(*) AS absent
      FROM absent_days a JOIN seg_school g ON g.student_id = a.student_id AND a.date >= g.s AND a.date < g.e
      GROUP BY ALL),
    ssy AS (  -- student-school years
      SELECT g.student_id, g.school_id, sum(g.days) AS enrolled_days, coalesce(any_value(a.absent), 0) AS absent
      FROM seg_days g LEFT JOIN ssy_absent a USING (student_id, school_id)
      GROUP BY ALL),
    disc AS (SELECT student_id, school_id, day AS date, code AS action, num AS days_hundredths
             FROM cur WHERE type = 'discipline' AND day <= {D}),
    susp AS (  -- suspension days (hundredths) per student and discipline school_id
      SELECT student_id, school_id, sum(days_hundredths) AS h FROM disc
      WHERE action IN ('in_school_suspension', 'out_of_school_suspension') GROUP BY ALL),
    ssy_fig AS (
      SELECT y.*, coalesce(s.h, 0) >= 100 AS suspended FROM ssy y LEFT JOIN susp s USING (student_id, school_id)),
    on_d AS (  -- the school on D of every student enrolled on D
      SELECT student_id, school_id FROM seg_school WHERE e = {D1}),
    stu_att AS (SELECT student_id, sum(enrolled_days) AS de, sum(absent) AS da FROM ssy GROUP BY ALL),
    stu_disc AS (
      SELECT student_id,
        count(*) FILTER (WHERE action = 'out_of_school_suspension') AS suspensions,
        count(*) FILTER (WHERE date >= {W}) AS incidents_30
      FROM disc GROUP BY ALL),
    grades AS (SELECT student_id, id, day AS date, term, course_id, subject, code AS mark
               FROM cur WHERE type = 'grade' AND day <= {D}),
    cur_term AS (SELECT student_id, max(term) AS term FROM grades GROUP BY ALL),
    latest_mark AS (
      SELECT g.student_id, g.course_id, g.subject, g.mark
      FROM grades g JOIN cur_term t ON t.student_id = g.student_id AND t.term = g.term
      QUALIFY row_number() OVER (PARTITION BY g.student_id, g.course_id ORDER BY g.date DESC, g.id DESC) = 1),
    stu_course AS (
      SELECT student_id, count(*) FILTER (WHERE mark = 'F') AS failing_marks,
        count(*) FILTER (WHERE mark = 'F' AND subject IN ('ela', 'math')) AS failing_core
      FROM latest_mark GROUP BY ALL),
    flags AS (  -- every student with an enrollment entered by D
      SELECT student_id, o.school_id AS school_on_d, coalesce(a.de, 0) AS days_enrolled,
        coalesce(a.da, 0) AS days_absent, coalesce(x.suspensions, 0) AS suspensions,
        coalesce(x.incidents_30, 0) AS incidents_30, coalesce(c.failing_marks, 0) AS failing_marks,
        coalesce(c.failing_core, 0) AS failing_core,
        coalesce(a.de, 0) >= {amin} AND (a.de - a.da) * {aden} < {anum} * a.de AS attendance_flag,
        coalesce(x.suspensions, 0) >= {smin} OR coalesce(x.incidents_30, 0) >= {imin} AS behavior_flag,
        coalesce(c.failing_core, 0) >= {fcore} OR coalesce(c.failing_marks, 0) >= {fmarks} AS course_flag
      FROM (SELECT DISTINCT student_id FROM enr) LEFT JOIN on_d o USING (student_id)
        LEFT JOIN stu_att a USING (student_id) LEFT JOIN stu_disc x USING (student_id)
        LEFT JOIN stu_course c USING (student_id)),
    tiers AS (
      SELECT school_on_d AS school_id,
        1 + least(2, attendance_flag::INT + behavior_flag::INT + course_flag::INT) AS tier
      FROM flags WHERE school_on_d IS NOT NULL),
    schools AS (SELECT id AS school_id, code AS level FROM cur WHERE type = 'school'),
    oversized AS (
      SELECT c.school_id, count(*) AS n FROM cur c JOIN schools s ON s.school_id = c.school_id
      WHERE c.type = 'section' AND c.subject IN {subjects} AND s.level IN {levels} AND c.num > {cap}
      GROUP BY ALL),
    per_ssy AS (
      SELECT school_id, count(*) AS cumulative,
        count(*) FILTER (WHERE enrolled_days >= {cmin}) AS chronic_den,
        count(*) FILTER (WHERE enrolled_days >= {cmin} AND absent * {cden} >= {cnum} * enrolled_days) AS chronic_num,
        count(*) FILTER (WHERE suspended) AS susp_num
      FROM ssy_fig GROUP BY ALL),
    per_tier AS (
      SELECT school_id, count(*) AS enrolled,
        count(*) FILTER (WHERE tier = 1) AS t1, count(*) FILTER (WHERE tier = 2) AS t2,
        count(*) FILTER (WHERE tier = 3) AS t3
      FROM tiers GROUP BY ALL)
    """.format(**prm)
    result = con.execute(ctes + """
    SELECT s.school_id, coalesce(t.enrolled, 0), coalesce(y.cumulative, 0),
      coalesce(y.chronic_num, 0), coalesce(y.chronic_den, 0), coalesce(y.susp_num, 0),
      coalesce(t.t1, 0), coalesce(t.t2, 0), coalesce(t.t3, 0), coalesce(o.n, 0)
    FROM schools s LEFT JOIN per_ssy y USING (school_id) LEFT JOIN per_tier t USING (school_id)
      LEFT JOIN oversized o USING (school_id)
    """).fetchall()
    t_compute = time.perf_counter()
    if args.students_out:
        con.execute(ctes + """
          SELECT *, 1 + least(2, attendance_flag::INT + behavior_flag::INT + course_flag::INT) AS tier
          FROM flags ORDER BY student_id""")
        names = [c[0] for c in con.description]
        with open(args.students_out, "w") as f:
            for row in con.fetchall():
                f.write(json.dumps(dict(zip(names, row)), default=str) + "\n")

    result.sort(key=lambda r: r[0].encode())
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for (school, enrolled, cumulative, cnum, cden, snum, t1, t2, t3, over) in result:
            f.write(
                "{" f"\"school_id\":{json.dumps(school, ensure_ascii=False)},\"enrolled\":{enrolled},"
                f"\"cumulative_enrollment\":{cumulative},\"chronic_absence_rate\":{render_rate(cnum, cden)},"
                f"\"suspension_rate\":{render_rate(snum, cumulative)},\"tier_1\":{t1},\"tier_2\":{t2},"
                f"\"tier_3\":{t3},\"oversized_sections\":{over}" "}\n"
            )
    os.replace(tmp, args.out)
    t_end = time.perf_counter()
    print(
        f"duckdb {duckdb.__version__}: {len(result)} schools as of {as_of}; "
        f"read {t_read - t0:.3f} s, compute {t_compute - t_read:.3f} s, total {t_end - t0:.3f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
