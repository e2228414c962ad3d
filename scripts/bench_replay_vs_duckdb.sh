#!/usr/bin/env bash
# Side by side, on one generated district: `wholechild replay` against the DuckDB peer
# (scripts/duckdb_school_figures.py, "the nightly batch districts run today"), then a
# figure-by-figure comparison of their school outputs.
#
#   scripts/bench_replay_vs_duckdb.sh STUDENTS SCHOOLS [DAYS]
#   e.g. REPEAT=1 scripts/bench_replay_vs_duckdb.sh 20000 40 60
#
# Environment (all optional):
#   REPEAT=3        measurements of each tool; the table shows the median of each column
#   WORK_DIR=/tmp/wholechild-bench   where the district file and the outputs go
#   SEED=1          generator seed
#   CONFIG=config/example.toml       calendar and parameters (both tools read it)
#   AS_OF=          YYYY-MM-DD passed to both tools (default: each tool's own clock)
#   PYTHON=python3  interpreter with the `duckdb` package (scripts/requirements.txt)
#   ENGINE_ARGS=    extra arguments for `wholechild replay` (e.g. "--workers 2")
#   PEER_ARGS=      extra arguments for the peer, e.g. "--memory-limit 12GB" (DuckDB's default
#                   is 80% of RAM; beyond its limit it spills to $WORK_DIR/duckdb-tmp, or to
#                   "--temp-dir DIR" given here)
#   WARM_CACHE=1    read the file once before measuring, so neither tool pays the cold read
#   WHOLECHILD_BIN= the engine binary (default target/release/wholechild)
#
# The district file is generated once and KEPT: it is named by its parameters
# ($WORK_DIR/district-s<STUDENTS>-k<SCHOOLS>-d<DAYS|all>-seed<SEED>.ndjson) and reused
# by any later run with the same parameters (generation is skipped, which saves minutes at
# district scale). It is written to a .tmp name and renamed only when complete, so an
# interrupted generation is never reused. Its line count is cached beside it (.lines).
# Delete the file to regenerate it (e.g. after the generator changes).
#
# Measured per run with /usr/bin/time -v: wall seconds, peak RSS, CPU seconds (user + sys).
# events/s = records / wall seconds, records = lines in the file minus the lines the
# engine rejected (the same record count is used for both tools: same input).
# Exit status: the comparison's (0 = every compared figure agrees).
set -euo pipefail

usage() { echo "usage: $0 STUDENTS SCHOOLS [DAYS]   (env: REPEAT, WORK_DIR, SEED, CONFIG, AS_OF, ...)" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
STUDENTS=$1
SCHOOLS=$2
DAYS=${3:-}
for n in "$STUDENTS" "$SCHOOLS" ${DAYS:+"$DAYS"}; do [[ $n =~ ^[0-9]+$ ]] || usage; done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPEAT=${REPEAT:-3}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "REPEAT must be a positive integer" >&2; exit 2; }
WORK_DIR=${WORK_DIR:-/tmp/wholechild-bench}
SEED=${SEED:-1}
CONFIG=${CONFIG:-$ROOT/config/example.toml}
AS_OF=${AS_OF:-}
PYTHON=${PYTHON:-python3}
ENGINE_ARGS=${ENGINE_ARGS:-}
PEER_ARGS=${PEER_ARGS:-}
WARM_CACHE=${WARM_CACHE:-1}
BIN=${WHOLECHILD_BIN:-$ROOT/target/release/wholechild}
PEER=$ROOT/scripts/duckdb_school_figures.py
COMPARE=$ROOT/scripts/compare_schools.py
TIME=/usr/bin/time

[[ -x $TIME ]] || { echo "needs GNU time at $TIME" >&2; exit 2; }
"$PYTHON" -c 'import duckdb' 2>/dev/null || {
  echo "$PYTHON cannot import duckdb: pip install -r $ROOT/scripts/requirements.txt" >&2; exit 2; }
if [[ ! -x $BIN ]]; then
  echo "building $BIN (missing)" >&2
  (cd "$ROOT" && cargo build --release -p wholechild)
fi

mkdir -p "$WORK_DIR"
TAG="s${STUDENTS}-k${SCHOOLS}-d${DAYS:-all}-seed${SEED}"
EVENTS=$WORK_DIR/district-$TAG.ndjson
RUN_DIR=$WORK_DIR/run-$TAG
PEER_TMP=$WORK_DIR/duckdb-tmp   # where DuckDB spills beyond its memory limit (it deletes its files on exit)
mkdir -p "$RUN_DIR" "$PEER_TMP"

# ---- the district, generated once per parameters ------------------------------------
if [[ -s $EVENTS ]]; then
  echo "reusing $EVENTS (delete it to regenerate)" >&2
else
  echo "generating $EVENTS" >&2
  gen_args=(generate --config "$CONFIG" --students "$STUDENTS" --schools "$SCHOOLS" --seed "$SEED" --out "$EVENTS.tmp")
  [[ -n $DAYS ]] && gen_args+=(--days "$DAYS")
  "$BIN" "${gen_args[@]}" 2> "$EVENTS.gen.txt"
  cat "$EVENTS.gen.txt" >&2
  mv "$EVENTS.tmp" "$EVENTS"
  rm -f "$EVENTS.lines"
fi
if [[ -s $EVENTS.lines && $EVENTS.lines -nt $EVENTS ]]; then
  LINES=$(cat "$EVENTS.lines")
else
  LINES=$(wc -l < "$EVENTS")
  echo "$LINES" > "$EVENTS.lines"
fi
BYTES=$(stat -c %s "$EVENTS")
if [[ $WARM_CACHE == 1 ]]; then cat "$EVENTS" > /dev/null; fi

# ---- helpers ------------------------------------------------------------------------
# field NAME FILE: a value from /usr/bin/time -v output
field() { grep -F "$1" "$2" | head -n1 | sed 's/.*: //'; }
# wall FILE: elapsed wall seconds ("h:mm:ss" or "m:ss.cc")
wall() {
  field 'Elapsed (wall clock) time' "$1" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }'
}
cpu() { awk -v u="$(field 'User time (seconds)' "$1")" -v s="$(field 'System time (seconds)' "$1")" 'BEGIN { printf "%.2f", u + s }'; }
rss_mib() { awk -v k="$(field 'Maximum resident set size (kbytes)' "$1")" 'BEGIN { printf "%.0f", k / 1024 }'; }
exit_status() { field 'Exit status' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
as_of_args=()
[[ -n $AS_OF ]] && as_of_args=(--as-of "$AS_OF")

: > "$RUN_DIR/engine.tsv"
: > "$RUN_DIR/peer.tsv"
REJECTED=

# ---- measurements: engine and peer interleaved, REPEAT times -------------------------
for ((i = 1; i <= REPEAT; i++)); do
  echo "run $i/$REPEAT: wholechild replay" >&2
  rm -rf "$RUN_DIR/engine-out"
  # shellcheck disable=SC2086  # ENGINE_ARGS is split on purpose
  if ! "$TIME" -v -o "$RUN_DIR/engine.time" "$BIN" replay --config "$CONFIG" --events "$EVENTS" \
      --out "$RUN_DIR/engine-out" "${as_of_args[@]}" $ENGINE_ARGS 2> "$RUN_DIR/engine.stderr"; then
    cat "$RUN_DIR/engine.stderr" "$RUN_DIR/engine.time" >&2
    echo "wholechild replay failed" >&2
    exit 1
  fi
  tail -n1 "$RUN_DIR/engine.stderr" >&2
  r=$(sed -n 's/.*rejected \([0-9][0-9]*\) lines.*/\1/p' "$RUN_DIR/engine.stderr" | tail -n1)
  [[ -n $r ]] || { echo "could not read the rejected-line count from the engine's stderr" >&2; exit 1; }
  REJECTED=$r
  printf '%s\t%s\t%s\n' "$(wall "$RUN_DIR/engine.time")" "$(rss_mib "$RUN_DIR/engine.time")" \
    "$(cpu "$RUN_DIR/engine.time")" >> "$RUN_DIR/engine.tsv"

  echo "run $i/$REPEAT: DuckDB peer" >&2
  rm -f "$RUN_DIR/peer-schools.ndjson"
  # shellcheck disable=SC2086
  if ! "$TIME" -v -o "$RUN_DIR/peer.time" "$PYTHON" "$PEER" "$EVENTS" "$CONFIG" "$RUN_DIR/peer-schools.ndjson" \
      --temp-dir "$PEER_TMP" "${as_of_args[@]}" $PEER_ARGS 2> "$RUN_DIR/peer.stderr"; then
    cat "$RUN_DIR/peer.stderr" "$RUN_DIR/peer.time" >&2
    echo "DuckDB peer failed" >&2
    exit 1
  fi
  cat "$RUN_DIR/peer.stderr" >&2
  phases=$(sed -n 's/.*read \([0-9.]*\) s, compute \([0-9.]*\) s.*/\1\t\2/p' "$RUN_DIR/peer.stderr" | tail -n1)
  printf '%s\t%s\t%s\t%s\n' "$(wall "$RUN_DIR/peer.time")" "$(rss_mib "$RUN_DIR/peer.time")" \
    "$(cpu "$RUN_DIR/peer.time")" "${phases:-NA	NA}" >> "$RUN_DIR/peer.tsv"
done

RECORDS=$((LINES - REJECTED))
col() { cut -f"$1" "$2" | median; }
eps() { awk -v r="$RECORDS" -v w="$1" 'BEGIN { if (w > 0) printf "%.0f", r / w; else print "n/a" }'; }
E_WALL=$(col 1 "$RUN_DIR/engine.tsv"); E_RSS=$(col 2 "$RUN_DIR/engine.tsv"); E_CPU=$(col 3 "$RUN_DIR/engine.tsv")
P_WALL=$(col 1 "$RUN_DIR/peer.tsv"); P_RSS=$(col 2 "$RUN_DIR/peer.tsv"); P_CPU=$(col 3 "$RUN_DIR/peer.tsv")
P_READ=$(col 4 "$RUN_DIR/peer.tsv"); P_COMPUTE=$(col 5 "$RUN_DIR/peer.tsv")

# ---- comparison of the last run's outputs --------------------------------------------
set +e
"$PYTHON" "$COMPARE" "$RUN_DIR/engine-out/schools.ndjson" "$RUN_DIR/peer-schools.ndjson" > "$RUN_DIR/compare.txt" 2>&1
CMP=$?
set -e

# ---- report -------------------------------------------------------------------------
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' || true)
MEM_GIB=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
DUCKDB_VERSION=$("$PYTHON" -c 'import duckdb; print(duckdb.__version__)')
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain -- . ':!scripts' 2>/dev/null | grep -q . && echo " (working tree has changes outside scripts/)" || true)

cat <<EOF

## wholechild replay vs DuckDB peer: $STUDENTS students, $SCHOOLS schools, ${DAYS:-all} days (seed $SEED)

Input: \`$EVENTS\`, $LINES lines ($(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1048576 }') MiB), $REJECTED rejected, $RECORDS records.
Median of $REPEAT run(s) per column (each column's median on its own); runs interleaved; file in page cache: $([[ $WARM_CACHE == 1 ]] && echo yes || echo "not forced").

| tool | wall s | events/s | peak RSS MiB | CPU s |
|---|---:|---:|---:|---:|
| wholechild replay | $E_WALL | $(eps "$E_WALL") | $E_RSS | $E_CPU |
| DuckDB peer (duckdb $DUCKDB_VERSION) | $P_WALL | $(eps "$P_WALL") | $P_RSS | $P_CPU |

DuckDB peer phases (median): read ${P_READ} s, compute ${P_COMPUTE} s (the rest of its wall time is Python start-up and writing).

Machine: $(nproc) cores (nproc), ${CPU_MODEL:-unknown CPU}, ${MEM_GIB} GiB RAM; load average before the runs: $LOAD.
Engine: \`$BIN\` built $(date -r "$BIN" '+%Y-%m-%d %H:%M'), HEAD $COMMIT$DIRTY.
Per-run values: $RUN_DIR/engine.tsv, $RUN_DIR/peer.tsv (wall, RSS MiB, CPU s[, read, compute]).

Comparison (\`compare_schools.py\`, last run's outputs):
\`\`\`
$(cat "$RUN_DIR/compare.txt")
\`\`\`
EOF
exit "$CMP"
