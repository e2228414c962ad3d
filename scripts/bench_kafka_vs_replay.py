#!/usr/bin/env python3
"""Kafka ingest beside replay, in one run, on the same records.

    scripts/bench_kafka_vs_replay.py --students 20000 --schools 40 [--days N] [--repeat 3]

1. Generates a district (kept in $WORK_DIR, named by its parameters, reused later).
2. Starts tansu (scripts/install-broker.sh installs it) on a free loopback port, creates a
   topic of --partitions partitions and publishes the district to it (`wholechild produce`).
3. Interleaved --repeat times: `wholechild run --exit-when-caught-up` (broker -> updated
   indicators, then the output files) and `wholechild replay` of the same file, each
   under /usr/bin/time -v. Prints the medians: wall seconds, records/s, peak RSS, CPU
   seconds of the engine and of the broker, and the ratio of the two rates.
4. A burst: a live `wholechild run` waits on an empty topic; the district is published to
   it at full speed; the consumer lag (from the engine's /metrics) is sampled every 250 ms.
   Prints the greatest lag seen, how long after the burst began the engine had consumed
   it all, and the effect-latency histogram's p50 and p99.

Records = lines of the file less the lines replay rejected (the same for both tools).
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("WHOLECHILD_BIN", ROOT / "target/release/wholechild"))
TANSU = Path(os.environ.get("WHOLECHILD_TANSU", "/var/cache/wholechild/tools/bin/tansu"))
TIME = "/usr/bin/time"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_v(args, stderr_path):
    """Runs args under GNU time; returns (wall s, peak RSS MiB, CPU s, stderr text)."""
    time_path = str(stderr_path) + ".time"
    with open(stderr_path, "w") as err:
        result = subprocess.run([TIME, "-v", "-o", time_path, *map(str, args)], stderr=err, stdout=subprocess.DEVNULL)
    text = Path(stderr_path).read_text()
    if result.returncode != 0:
        sys.exit(f"{args[0]} {args[1]} failed:\n{text}")
    fields = dict(
        line.strip().split(": ", 1) for line in Path(time_path).read_text().splitlines() if ": " in line
    )
    wall = 0.0
    for part in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
        wall = wall * 60 + float(part)
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
    return wall, rss, cpu, text


def process_cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def metric(text, name):
    """Samples of a metric: list of (labels text, value)."""
    out = []
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            labels = line[len(name) : line.rfind(" ")]
            out.append((labels, float(line.rsplit(" ", 1)[1])))
    return out


def histogram_quantile(text, name, q):
    buckets = []
    for labels, value in metric(text, name + "_bucket"):
        le = re.search(r'le="([^"]+)"', labels).group(1)
        buckets.append((float("inf") if le == "+Inf" else float(le), value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= target:
            return bound
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20000)
    parser.add_argument("--schools", type=int, default=40)
    parser.add_argument("--days", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", default=os.environ.get("WORK_DIR", "/tmp/wholechild-bench"))
    args = parser.parse_args()

    if not BIN.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "wholechild"], cwd=ROOT, check=True)
    if not TANSU.exists():
        subprocess.run(["bash", ROOT / "scripts/install-broker.sh"], check=True)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    tag = f"s{args.students}-k{args.schools}-d{args.days or 'all'}-seed{args.seed}"
    events = work / f"district-{tag}.ndjson"
    if not events.exists():
        print(f"generating {events}", file=sys.stderr)
        gen = [BIN, "generate", "--students", args.students, "--schools", args.schools, "--seed", args.seed]
        if args.days:
            gen += ["--days", args.days]
        subprocess.run([*map(str, gen), "--out", str(events) + ".tmp"], check=True)
        os.rename(str(events) + ".tmp", events)
    lines = sum(1 for _ in open(events, "rb"))
    run_dir = Path(tempfile.mkdtemp(prefix="kafka-bench-", dir=work))

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker_log = open(run_dir / "broker.log", "w")
    broker = subprocess.Popen(
        [TANSU, "broker", "--kafka-listener-url", url, "--kafka-advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--silent"],
        stdout=broker_log, stderr=broker_log, env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("the broker did not start")
                time.sleep(0.1)
        example = (ROOT / "config/example.toml").read_text()
        start = example.index("\n[calendar]\n") + 1
        end = example.index("\n[", start + 1) + 1

        def config(group, topic, dead_letters="dead-letters"):
            path = run_dir / f"{group}.toml"
            path.write_text(
                example[start:end]
                + f'[kafka]\nbrokers = "127.0.0.1:{port}"\ngroup_id = "{group}"\ntopics = ["{topic}"]\n'
                + f'dead_letter_topic = "{dead_letters}"\n[metrics]\nlisten = "127.0.0.1:0"\n'
            )
            return path

        produce_config = config("produce", "district")
        dead_letters_config = config("setup", "dead-letters", dead_letters="unused")
        subprocess.run([BIN, "produce", "--config", dead_letters_config, "--events", "-", "--create-partitions", "1"],
                       input=b"", check=True)
        print("publishing the district", file=sys.stderr)
        produce = time_v([BIN, "produce", "--config", produce_config, "--events", events,
                          "--create-partitions", args.partitions], run_dir / "produce.stderr")

        engine, peer, broker_cpu = [], [], []
        rejected = None
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat}: run --exit-when-caught-up", file=sys.stderr)
            out = run_dir / "kafka-out"
            shutil.rmtree(out, ignore_errors=True)
            before = process_cpu_seconds(broker.pid)
            engine.append(time_v([BIN, "run", "--config", config(f"backfill-{i}", "district"),
                                  "--exit-when-caught-up", "--out", out, "--workers", args.workers],
                                 run_dir / "run.stderr"))
            broker_cpu.append(process_cpu_seconds(broker.pid) - before)
            print(f"run {i + 1}/{args.repeat}: replay", file=sys.stderr)
            replay_out = run_dir / "replay-out"
            shutil.rmtree(replay_out, ignore_errors=True)
            peer.append(time_v([BIN, "replay", "--config", produce_config, "--events", events, "--out", replay_out,
                                "--workers", args.workers], run_dir / "replay.stderr"))
            rejected = int(re.search(r"rejected (\d+) lines", peer[-1][3]).group(1))
            for name in ["students.ndjson", "schools.ndjson", "rollups.ndjson"]:
                if (out / name).read_bytes() != (replay_out / name).read_bytes():
                    sys.exit(f"{name} differs between the Kafka backfill and replay")
        records = lines - rejected

        print("burst: a live engine, then the district published at full speed", file=sys.stderr)
        burst_config = config("burst", "burst")
        subprocess.run([BIN, "produce", "--config", burst_config, "--events", "-", "--create-partitions",
                        str(args.partitions)], input=b"", check=True)
        live = subprocess.Popen([BIN, "run", "--config", burst_config, "--workers", str(args.workers)],
                                stderr=subprocess.PIPE, text=True)
        metrics_url = None
        for line in live.stderr:
            if line.startswith("metrics: "):
                metrics_url = line.split(" ", 1)[1].strip()
                break
        threading.Thread(target=lambda: [None for _ in live.stderr], daemon=True).start()
        time.sleep(2)  # joined the group and assigned
        began = time.time()
        producer = subprocess.Popen([BIN, "produce", "--config", burst_config, "--events", events],
                                    stderr=subprocess.DEVNULL)
        max_lag, consumed, caught_up = 0, 0, None
        deadline = began + 1800
        while time.time() < deadline:
            text = scrape(metrics_url)
            max_lag = max(max_lag, int(sum(v for _, v in metric(text, "wholechild_consumer_lag_records"))))
            consumed = sum(v for _, v in metric(text, "wholechild_records_consumed_total"))
            if consumed >= lines:
                caught_up = time.time() - began
                break
            time.sleep(0.25)
        producer.wait()
        published_at = time.time() - began
        time.sleep(1.5)
        text = scrape(metrics_url)
        p50 = histogram_quantile(text, "wholechild_record_effect_latency_seconds", 0.5)
        p99 = histogram_quantile(text, "wholechild_record_effect_latency_seconds", 0.99)
        live.terminate()
        live.wait(timeout=60)
    finally:
        broker.terminate()
        broker.wait()

    def med(rows, column):
        return statistics.median(row[column] for row in rows)

    e_wall, p_wall = med(engine, 0), med(peer, 0)
    print(f"""
## Kafka ingest vs replay: {args.students} students, {args.schools} schools, {args.days or 'all'} days (seed {args.seed})

Input: `{events}`, {lines} lines, {rejected} rejected, {records} records; topic of {args.partitions} partitions on
tansu (in-memory storage, same machine); --workers {args.workers}; median of {args.repeat} interleaved runs.
Publishing the file took {produce[0]:.1f} s ({lines / produce[0]:,.0f} messages/s, `wholechild produce`).

| path | wall s | records/s | peak RSS MiB | engine CPU s | broker CPU s |
|---|---:|---:|---:|---:|---:|
| Kafka -> `run --exit-when-caught-up` | {e_wall:.2f} | {records / e_wall:,.0f} | {med(engine, 1):.0f} | {med(engine, 2):.2f} | {statistics.median(broker_cpu):.2f} |
| file -> `replay` | {p_wall:.2f} | {records / p_wall:,.0f} | {med(peer, 1):.0f} | {med(peer, 2):.2f} | - |

Kafka rate / replay rate: **{p_wall / e_wall:.2f}** (target at least 0.5). Outputs identical: yes.

Burst into a live engine: {lines} messages published in {published_at:.1f} s; greatest consumer lag seen
{max_lag:,} records; everything consumed {caught_up if caught_up is None else f'{caught_up:.1f} s'} after the burst began;
record -> effect latency p50 <= {p50} s, p99 <= {p99} s (histogram bucket bounds).

Machine: {os.cpu_count()} cores; load average before: {open('/proc/loadavg').read().split()[:3]}.
""")


if __name__ == "__main__":
    main()
