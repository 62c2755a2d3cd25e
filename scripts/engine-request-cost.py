#!/usr/bin/env python3
"""Engine CPU per request, for the requests a tick sends.

Usage: scripts/engine-request-cost.py URL INDEX FROM TO [N]

Sends each request N times (200) over one kept-alive connection, after 30
untimed, and prints the engine process's CPU (user + system from
/proc/PID/stat, all its threads) and the wall time per request. The engine
must run on this machine (its pid comes from its node info). FROM and TO
bound the window read (RFC 3339), e.g. one 15-minute tick.

It answers "what does one tick's read cost the engine, whoever sends it":
the floor under offtrail's and ElastAlert's per-tick figures (BENCHMARKS.md).
Repeating one size-0 request lets the shard request cache answer it, which
a tick's new window never is; those requests are sent with the cache off,
beside one left on to show the difference.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse


# The fields a pack's counts read (the bench's rules group and filter on these).
FIELDS = ["@timestamp", "aws.cloudtrail.user_identity.arn", "aws.cloudtrail.user_identity.type", "event.action",
          "event.provider", "event.outcome", "source.ip", "cloud.region", "aws.cloudtrail.error_code",
          "user_agent.original", "source.geo.country_iso_code"]


def engine_pid(call):
    """The engine's pid, from its own node info (it must run here)."""
    nodes = json.loads(call("GET", "/_nodes/_local/process"))["nodes"]
    pid = next(iter(nodes.values()))["process"]["id"]
    if not os.path.exists(f"/proc/{pid}/stat"):
        sys.exit(f"engine-request-cost: the engine's pid {pid} is not on this machine")
    return pid


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    url, index, frm, to = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)

    def call(method, path, body=None, headers=None):
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        conn.request(method, path, data, {"content-type": "application/json", **(headers or {})})
        r = conn.getresponse()
        out = r.read()
        if r.status >= 300:
            sys.exit(f"engine-request-cost: {method} {path}: {r.status} {out[:200]!r}")
        return out

    pid = engine_pid(call)
    window = {"range": {"@timestamp": {"gte": frm, "lt": to}}}
    hits = json.loads(call("POST", f"/{index}/_count", {"query": window}))["count"]
    probe = "offtrail-probe-request-cost"
    call("PUT", f"/{probe}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": {"dynamic": False}})
    state = json.dumps({"kind": "incident-actor", "doc": "x" * 2000})
    seq = [0]

    def bulk5(_):
        seq[0] += 1
        lines = "".join(json.dumps({"create": {"_index": probe, "_id": f"s{seq[0]}-{k}"}}) + "\n" + state + "\n" for k in range(5))
        call("POST", "/_bulk?refresh=false", lines)

    cases = [
        (f"read the window ({hits} events, full _source, sorted)", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "query": {"bool": {"filter": [window]}}, "sort": [{"@timestamp": "asc"}]})),
        (f"the same read, response gzipped (Accept-Encoding: gzip, as Go's transport asks by default)", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "query": {"bool": {"filter": [window]}}, "sort": [{"@timestamp": "asc"}]},
            {"accept-encoding": "gzip"})),
        (f"read the window, _source limited to {len(FIELDS)} fields", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "_source": {"includes": FIELDS},
            "query": {"bool": {"filter": [window]}}, "sort": [{"@timestamp": "asc"}]})),
        (f"read the window, {len(FIELDS)} fields from doc values, no _source", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "_source": False, "docvalue_fields": FIELDS,
            "query": {"bool": {"filter": [window]}}, "sort": [{"@timestamp": "asc"}]})),
        (f"read the window as sort values of @timestamp and {len(FIELDS) - 1} fields, no stored fields", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "stored_fields": "_none_", "query": {"bool": {"filter": [window]}},
            "sort": [{"@timestamp": "asc"}] + [{f: {"order": "asc", "missing": "_last"}} for f in FIELDS if f != "@timestamp"]})),
        ("the hits alone: no stored fields, sorted by @timestamp", lambda _: call("POST", f"/{index}/_search", {
            "size": 10000, "track_total_hits": False, "stored_fields": "_none_", "query": {"bool": {"filter": [window]}},
            "sort": [{"@timestamp": "asc"}]})),
        ("the same with size 0 (the request alone)", lambda _: call("POST", f"/{index}/_search?request_cache=false", {
            "size": 0, "track_total_hits": False, "query": {"bool": {"filter": [window]}}})),
        ("_count of the window (the sealed-hour check; _count is not cached)", lambda _: call("POST", f"/{index}/_count", {"query": {"bool": {"filter": [window]}}})),
        ("composite (ARN, action) over the window (the same request again: served by the request cache)", lambda _: call("POST", f"/{index}/_search", {
            "size": 0, "track_total_hits": False, "query": {"bool": {"filter": [window]}},
            "aggs": {"c": {"composite": {"size": 10000, "sources": [
                {"a": {"terms": {"field": "aws.cloudtrail.user_identity.arn"}}}, {"b": {"terms": {"field": "event.action"}}}]}}}})),
        ("the same composite, request cache off (a new window each tick)", lambda _: call("POST", f"/{index}/_search?request_cache=false", {
            "size": 0, "track_total_hits": False, "query": {"bool": {"filter": [window]}},
            "aggs": {"c": {"composite": {"size": 1000, "sources": [
                {"a": {"terms": {"field": "aws.cloudtrail.user_identity.arn"}}}, {"b": {"terms": {"field": "event.action"}}}]}}}})),
        ("composite (account, ARN, action, hour), request cache off", lambda _: call("POST", f"/{index}/_search?request_cache=false", {
            "size": 0, "track_total_hits": False, "query": {"bool": {"filter": [window, {"term": {"event.outcome": "success"}}]}},
            "aggs": {"c": {"composite": {"size": 1000, "sources": [
                {"p": {"terms": {"field": "cloud.account.id"}}},
                {"a": {"terms": {"field": "aws.cloudtrail.user_identity.arn"}}}, {"b": {"terms": {"field": "event.action"}}},
                {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}}}]}}}})),
        ("put a 2 KB state document", lambda i: call("PUT", f"/{probe}/_doc/a{i % 50}", state)),
        ("get a state document", lambda i: call("GET", f"/{probe}/_doc/a{i % 50}")),
        ("the same get, _source=false (its version only)", lambda i: call("GET", f"/{probe}/_doc/a{i % 50}?_source=false")),
        ("bulk-create 5 documents", bulk5),
    ]
    print(f"engine pid {pid}, {n} requests each, {index} {frm}..{to}")
    print("| request | engine CPU per request | wall per request |")
    print("|---|---|---|")
    try:
        for name, fn in cases:
            for i in range(30):
                fn(i)
            c0, t0 = cpu_seconds(pid), time.time()
            for i in range(n):
                fn(i)
            c1, t1 = cpu_seconds(pid), time.time()
            print(f"| {name} | {(c1 - c0) * 1000 / n:.2f} ms | {(t1 - t0) * 1000 / n:.2f} ms |")
    finally:
        call("DELETE", f"/{probe}")


if __name__ == "__main__":
    main()
