import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    sys.stdout.write(json.dumps({"result": {"ok": True}}) + "\n")
    sys.stdout.flush()
