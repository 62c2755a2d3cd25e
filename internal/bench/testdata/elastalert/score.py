"""Score ElastAlert matches (one pipe_match_json list per line) against synth labels.

A planted attack is caught when a match is one of its labelled events.
Usage: score.py labels.json matches.ndjson START END
"""
import json
import sys

labels = json.load(open(sys.argv[1]))
start, end = sys.argv[3], sys.argv[4]
owner = {}
for i, sc in enumerate(labels["scenarios"]):
    for eid in sc.get("event_ids") or []:
        if eid in owner and labels["scenarios"][owner[eid]]["kind"] == "attack":
            continue
        owner[eid] = i
matches = []
for line in open(sys.argv[2]):
    line = line.strip()
    if line:
        # pipe_match_json sends a list of matches per alert
        m = json.loads(line)
        matches.extend(m if isinstance(m, list) else [m])
caught, false = set(), 0
for m in matches:
    i = owner.get(m.get("_id"))
    if i is not None and labels["scenarios"][i]["kind"] == "attack":
        caught.add(i)
    else:
        false += 1
attacks = [i for i, sc in enumerate(labels["scenarios"]) if sc["kind"] == "attack"
           and sc["end"] >= start and sc["start"] <= end]
idw = len(labels["identities"]) * 3 / 7
print(json.dumps({
    "alerts": len(matches),
    "attacks_in_span": len(attacks),
    "caught": len([i for i in attacks if i in caught]),
    "false_alerts": false,
    "false_per_100_identity_weeks": round(false / idw * 100, 1),
    "missed": [labels["scenarios"][i]["id"] for i in attacks if i not in caught],
}))
