#!/usr/bin/env python3
"""Time from the record that makes an alert's condition true to the notification handed
to the SMTP server, under a steady live load.

    scripts/bench_alert_latency.py [--rate 10000] [--triggers 100] [--students 20000]

Starts tansu and the aiosmtpd test server on loopback, and `wholechild run` with
`[alerts]` (grouping wait 0: the issue's target excludes it). A feeder pipes records into
one long-running `wholechild produce` at `--rate` records/s: a generated district as the
background load, and, one every 100 ms, the third consecutive absence of a homeless
student whose counselor has an address of their own. The feeder notes when it wrote each
trigger; the SMTP server's file for that counselor's e-mail has the time it was accepted.
Prints p50, p90, p99 and max of the differences.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("WHOLECHILD_BIN", ROOT / "target/release/wholechild"))
TANSU = Path(os.environ.get("WHOLECHILD_TANSU", "/var/cache/wholechild/tools/bin/tansu"))
DAYS = ["2026-09-28", "2026-09-29", "2026-09-30"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def effect_latency(log):
    """(p50, p99) bucket bounds of the engine's record -> effect histogram."""
    import re
    import urllib.request
    url = next(line.split(" ", 1)[1].strip() for line in open(log) if line.startswith("metrics: "))
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    buckets = sorted(
        (float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2)))
        for m in re.finditer(r'wholechild_record_effect_latency_seconds_bucket\{[^}]*le="([^"]+)"\} (\S+)', text)
    )
    merged = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0) + count
    bounds = sorted(merged.items())
    total = bounds[-1][1]
    quantile = lambda q: next(bound for bound, count in bounds if count >= q * total)
    return quantile(0.5), quantile(0.99)


def setup_lines(k):
    s, t = f"trig-{k}", f"cns-{k}"
    return [
        f'{{"type":"staff","id":"{t}","source":"hr","name":"C","email":"{t}@bench.example","role":"counselor","schools":[]}}',
        f'{{"type":"enrollment","id":"e-{s}","source":"sis","student_id":"{s}","school_id":"sch-1","grade":7,"entry_date":"2026-08-31","exit_date":null}}',
        f'{{"type":"program","id":"p-{s}","source":"sis","student_id":"{s}","program":"homeless","begin_date":"2026-08-31","end_date":null}}',
        f'{{"type":"caseload","id":"c-{s}","source":"sis","student_id":"{s}","staff_id":"{t}","role":"counselor","begin_date":"2026-08-31","end_date":null}}',
    ] + [absence(k, day) for day in DAYS[:2]]


def absence(k, day):
    s = f"trig-{k}"
    return f'{{"type":"attendance","id":"a-{s}-{day}","source":"sis","student_id":"{s}","school_id":"sch-1","date":"{day}","status":"absent_unexcused"}}'


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=10000)
    parser.add_argument("--triggers", type=int, default=100)
    parser.add_argument("--students", type=int, default=20000)
    parser.add_argument("--publish-ms", type=int, default=20)
    parser.add_argument("--fetch-wait-ms", type=int, help="the consumer's fetch.wait.max.ms (engine default 10)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alert-latency-"))
    events = work / "district.ndjson"
    subprocess.run([BIN, "generate", "--students", str(args.students), "--schools", "40", "--days", "25",
                    "--no-malformed", "--out", events], check=True, stderr=subprocess.DEVNULL)
    background = events.read_text().splitlines()

    kafka_port, smtp_port = free_port(), free_port()
    url = f"tcp://127.0.0.1:{kafka_port}"
    procs = []
    try:
        procs.append(subprocess.Popen([TANSU, "broker", "--kafka-listener-url", url, "--kafka-advertised-listener-url",
                                       url, "--storage-engine", "memory://tansu/", "--silent"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        maildir = work / "mail"
        procs.append(subprocess.Popen([sys.executable, ROOT / "scripts/smtp_test_server.py", str(smtp_port), maildir],
                                      stdout=subprocess.DEVNULL))
        wait_listening(kafka_port)
        wait_listening(smtp_port)
        example = (ROOT / "config/example.toml").read_text()
        start = example.index("\n[calendar]\n") + 1
        end = example.index("\n[", start + 1) + 1
        options = ""
        if args.fetch_wait_ms is not None:
            options = f'[kafka.options]\n"fetch.wait.max.ms" = "{args.fetch_wait_ms}"\n' + os.environ.get("KAFKA_EXTRA_OPTIONS", "")
        config = work / "config.toml"
        config.write_text(example[start:end] + f"""
[kafka]
brokers = "127.0.0.1:{kafka_port}"
group_id = "bench"
topics = ["load"]
dead_letter_topic = "dead"
{options}
[metrics]
listen = "127.0.0.1:0"
[alerts]
store = "sqlite:{work / 'alerts.sqlite'}"
dashboard_url = "https://dashboard.bench.example"
group_wait_seconds = 0
group_interval_seconds = 0
delivery_hours = "00:00-24:00"
delivery_weekdays_only = false
daily_budget = 0
[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "wholechild <alerts@bench.example>"
""")
        dead = work / "dead.toml"
        dead.write_text(config.read_text().replace('topics = ["load"]', 'topics = ["dead"]').replace(
            'dead_letter_topic = "dead"', 'dead_letter_topic = "unused"'))
        subprocess.run([BIN, "produce", "--config", dead, "--events", "-", "--create-partitions", "1"], input=b"",
                       check=True, stderr=subprocess.DEVNULL)
        subprocess.run([BIN, "produce", "--config", config, "--events", "-", "--create-partitions", "4"], input=b"",
                       check=True, stderr=subprocess.DEVNULL)
        engine = subprocess.Popen([BIN, "run", "--config", config, "--as-of", DAYS[-1], "--publish-ms",
                                   str(args.publish_ms)], stderr=open(work / "engine.log", "w"))
        procs.append(engine)
        producer = subprocess.Popen([BIN, "produce", "--config", config, "--events", "-"], stdin=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        procs.append(producer)
        time.sleep(3)  # the engine joins the group

        def write(lines):
            producer.stdin.write(("\n".join(lines) + "\n").encode())
            producer.stdin.flush()

        for k in range(args.triggers):
            write(setup_lines(k))
        sent = {}
        tick = 0.01  # write every 10 ms: rate / 100 records each time
        per_tick = max(1, args.rate // 100)
        line, next_trigger, began = 0, 0, time.time()
        while next_trigger < args.triggers or time.time() < began + 2:
            batch = [background[(line + i) % len(background)] for i in range(per_tick)]
            line += per_tick
            write(batch)
            if next_trigger < args.triggers and time.time() >= began + 1 + 0.1 * next_trigger:
                sent[f"cns-{next_trigger}@bench.example"] = time.time()
                write([absence(next_trigger, DAYS[2])])
                next_trigger += 1
            time.sleep(max(0.0, began + tick * (line / per_tick) - time.time()))
        elapsed = time.time() - began
        time.sleep(3)
        kafka_part = effect_latency(work / "engine.log")
        received = {}
        for path in maildir.glob("*.eml"):
            text = path.read_text(errors="replace")
            for address in sent:
                if f"To: {address}" in text:
                    received[address] = path.stat().st_mtime
        latencies = sorted((received[a] - sent[a]) * 1000 for a in sent if a in received)
        if not latencies:
            sys.exit(f"no trigger e-mail arrived; see {work / 'engine.log'}")
        q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
        print(f"""
## Alert latency: record -> e-mail handed to the SMTP server

Load {line / elapsed:,.0f} records/s for {elapsed:.1f} s ({line} background records); {len(latencies)} of
{args.triggers} trigger e-mails received; `run --publish-ms {args.publish_ms}`, group_wait 0,
fetch.wait.max.ms {args.fetch_wait_ms if args.fetch_wait_ms is not None else "10 (the engine default)"}.

| p50 ms | p90 ms | p99 ms | max ms |
|---:|---:|---:|---:|
| {q(0.5):.1f} | {q(0.9):.1f} | {q(0.99):.1f} | {latencies[-1]:.1f} |

Of which Kafka to indicators (the engine's record -> effect histogram, every record,
bucket bounds): p50 <= {kafka_part[0]} s, p99 <= {kafka_part[1]} s.
""")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
