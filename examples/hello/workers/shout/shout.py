# A process worker: one JSON message per line on stdin, one result line per message.
import json, sys

for line in sys.stdin:
    msg = json.loads(line)
    word = str(msg["parameters"].get("word", "hello"))
    print(json.dumps({"result": {"shout": word.upper() + "!"}}), flush=True)
