"""Replay ElastAlert 2 rules once over a fixed past span, for the bench.

ElastAlert's own loop exits at once when --end lies before its next
wall-clock run, and without --end it replays up to now and then sleeps,
so this driver builds the same ElastAlerter and runs each rule's
execution exactly once from START to END (ElastAlert splits the span into
buffer_time segments, as `elastalert --start` does).

  replay.py create-index CONFIG
  replay.py run CONFIG RULE START END

`run` prints one JSON line when the rules are loaded (ElastAlert's
start-up: imports, config, and new_term's terms_window_size aggregation
of the history), then waits for a line on stdin, so the caller can read
the engine's CPU between start-up and replay; then it replays and prints
a second JSON line. "cpu" is this process's user+system CPU in seconds,
waited-for children included (os.times), like /usr/bin/time.

Some Elasticsearch builds (the integration-test distribution) do not
serve GET /, which ElastAlert asks for the cluster version; the driver
then reads the version of the local node from GET /_nodes/_local.
"""
import json
import os
import sys

import elastalert.create_index as create_index
import elastalert.util as util
from elasticsearch.exceptions import TransportError

_cluster_version = util.get_version_from_cluster_info


def _version(client):
    try:
        info = client.info()
    except TransportError:
        nodes = client.transport.perform_request("GET", "/_nodes/_local")["nodes"]
        return next(iter(nodes.values()))["version"]
    if info["version"].get("distribution") == "opensearch":
        return _cluster_version(client)
    return info["version"]["number"]


util.get_version_from_cluster_info = _version
create_index.get_version_from_cluster_info = _version


def cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def say(**kw):
    print(json.dumps(kw), flush=True)


def run(config, rule, start, end):
    from elastalert.elastalert import ElastAlerter

    ea = ElastAlerter(["--config", config, "--rule", rule, "--start", start, "--end", end, "--verbose"])
    say(phase="loaded", cpu=cpu(), rules=len(ea.rules))
    sys.stdin.readline()
    matches = 0
    run_rule = ea.run_rule

    def counting(r, endtime, starttime=None):
        nonlocal matches
        n = run_rule(r, endtime, starttime)
        matches += n
        return n

    ea.run_rule = counting
    begin = util.ts_to_dt(start)
    for r in ea.rules:
        r["initial_starttime"] = begin
        ea.handle_rule_execution(r)
    say(phase="done", cpu=cpu(), matches=matches)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "create-index":
        sys.argv = ["elastalert-create-index", "--config", sys.argv[2]]
        create_index.main()
    elif len(sys.argv) == 6 and sys.argv[1] == "run":
        run(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
