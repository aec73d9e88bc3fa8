# Changes trigger (and HTTP), python worker: one JSON message per line on stdin,
# one result line per message on stdout; any other line is a log line of the activation.
import json, sys

URGENT = {"urgent", "asap", "down", "broken", "outage"}

for line in sys.stdin:
    msg = json.loads(line)
    params = msg["parameters"]
    # A change carries the document (include_docs); a request carries its JSON body.
    doc = params.get("doc") if msg["trigger"] == "changes" else params
    if not doc or doc.get("_deleted") or "text" not in doc:
        print(json.dumps({"result": {"id": params.get("id"), "skipped": True}}), flush=True)
        continue
    words = [w.strip(".,;:!?").lower() for w in str(doc["text"]).split()]
    label = "urgent" if URGENT.intersection(words) else "normal"
    print(f"{label}: message from {doc.get('from', 'anonymous')}", flush=True)
    print(json.dumps({"result": {"id": doc.get("_id"), "label": label, "words": len(words)}}), flush=True)
