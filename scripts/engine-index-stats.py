#!/usr/bin/env python3
"""Where the engine spent the bench's timed ticks, by index and operation.

Usage: scripts/engine-index-stats.py URL -- offtrail bench --store URL ...

Runs the command, reads the engine's index stats (`_stats`, per index)
every second while it runs, and prints, for each scope the bench timed,
what each index's searches, gets, indexing and refreshes took between the
bench's "timing" and "timed" log lines (shard-level milliseconds, which
the engine's CPU per tick in BENCHMARKS.md contains along with the REST
layer, coordination and the JVM's own work).
"""
import json
import subprocess
import sys
import threading
import time
import urllib.request

KEYS = ["search.query_total", "search.query_time_in_millis", "search.fetch_time_in_millis", "get.total",
        "get.time_in_millis", "indexing.index_total", "indexing.index_time_in_millis", "refresh.total",
        "refresh.total_time_in_millis", "merges.total_time_in_millis"]


def stats(url):
    u = url + "/_stats/search,get,indexing,refresh,merge?level=indices"
    with urllib.request.urlopen(u, timeout=5) as r:
        return {k: v["total"] for k, v in json.load(r)["indices"].items()}


def value(doc, key):
    for part in key.split("."):
        doc = doc.get(part, {}) if isinstance(doc, dict) else {}
    return doc if isinstance(doc, (int, float)) else 0


def nearest(samples, t):
    return min(samples, key=lambda s: abs(s[0] - t))[1]


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    url, cmd = sys.argv[1], sys.argv[3:]
    samples, done = [], threading.Event()

    def poll():
        while not done.is_set():
            try:
                samples.append((time.time(), stats(url)))
            except OSError as e:
                print(f"engine-index-stats: {e}", file=sys.stderr)
            done.wait(1)

    threading.Thread(target=poll, daemon=True).start()
    marks = []
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        sys.stderr.write(line)
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("message") in ("timing", "timed"):
            marks.append((time.time(), d["message"], d.get("scope", "?"), d.get("index", "?")))
    rc = proc.wait()
    time.sleep(1.2)
    done.set()
    if rc != 0:
        sys.exit(f"engine-index-stats: the command exited {rc}")
    starts = [m for m in marks if m[1] == "timing"]
    ends = [m for m in marks if m[1] == "timed"]
    if not starts or len(starts) != len(ends) or not samples:
        sys.exit("engine-index-stats: no timed ticks seen (is it an offtrail bench command on this engine?)")
    print("| scope | index | " + " | ".join(k.replace("_in_millis", " ms") for k in KEYS) + " |")
    print("|" + "---|" * (len(KEYS) + 2))
    for (t0, _, scope, _), (t1, _, _, _) in zip(starts, ends):
        a, b = nearest(samples, t0), nearest(samples, t1)
        for ix in sorted(b):
            d = [value(b[ix], k) - value(a.get(ix, {}), k) for k in KEYS]
            if any(d):
                print(f"| {scope} | {ix} | " + " | ".join(str(x) for x in d) + " |")


if __name__ == "__main__":
    main()
