#!/usr/bin/env python3
"""Compares two school-figure files key by key: the engine's and the peer's.

    scripts/compare_schools.py ENGINE_SCHOOLS PEER_SCHOOLS [--max-report N]

Both are NDJSON, one object per school, keyed by `school_id` (ENGINE_SCHOOLS is
`wholechild replay`'s OUT/schools.ndjson; PEER_SCHOOLS the output of
duckdb_school_figures.py). Numbers are equal when they differ by at most 1e-9; null only
equals null. Keys the engine writes that the peer does not compute are skipped (and
listed); a key only the peer writes is a difference, as is a school in one file only.

Exit status: 0 when every compared figure is equal, 1 on any difference (the first
differences are printed), 2 when a file cannot be read.
"""

import argparse
import json
import sys

TOLERANCE = 1e-9


def load(path):
    rows = {}
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                school = row.get("school_id")
                if school is None:
                    sys.exit(f"{path}:{n}: no school_id")
                if school in rows:
                    sys.exit(f"{path}:{n}: school {school} twice")
                rows[school] = row
    except (OSError, json.JSONDecodeError) as e:
        print(f"{path}: {e}", file=sys.stderr)
        sys.exit(2)
    return rows


def equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= TOLERANCE + 1e-12  # 1e-12: float noise of a 9-decimal rendering
    return a == b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engine")
    ap.add_argument("peer")
    ap.add_argument("--max-report", type=int, default=20, help="differences printed (default 20)")
    args = ap.parse_args()

    engine, peer = load(args.engine), load(args.peer)
    engine_keys = set().union(*(r.keys() for r in engine.values())) - {"school_id"}
    peer_keys = set().union(*(r.keys() for r in peer.values())) - {"school_id"}
    skipped = sorted(engine_keys - peer_keys)
    compared = sorted(engine_keys & peer_keys)

    diffs = []
    for key in sorted(peer_keys - engine_keys):
        diffs.append(f"key {key}: only in the peer")
    for school in sorted(engine.keys() - peer.keys()):
        diffs.append(f"school {school}: only in the engine")
    for school in sorted(peer.keys() - engine.keys()):
        diffs.append(f"school {school}: only in the peer")
    figures = 0
    for school in sorted(engine.keys() & peer.keys()):
        e, p = engine[school], peer[school]
        for key in compared:
            figures += 1
            if key not in e or key not in p:
                diffs.append(f"school {school} {key}: engine {e.get(key, '<missing>')}, peer {p.get(key, '<missing>')}")
            elif not equal(e[key], p[key]):
                diffs.append(f"school {school} {key}: engine {json.dumps(e[key])}, peer {json.dumps(p[key])}")

    print(f"compared {figures} figures of {len(engine.keys() & peer.keys())} schools; "
          f"keys compared: {', '.join(compared) or '(none)'}")
    print(f"keys skipped (not computed by the peer): {', '.join(skipped) or '(none)'}")
    if diffs:
        print(f"DIFFERENT: {len(diffs)} differences; the first {min(len(diffs), args.max_report)}:")
        for d in diffs[: args.max_report]:
            print("  " + d)
        sys.exit(1)
    print("EQUAL: every compared figure agrees (tolerance 1e-9)")


if __name__ == "__main__":
    main()
