# A python worker: one JSON message per line on stdin, one {"result": ...} line per message.
import json
import sys

for line in sys.stdin:
    msg = json.loads(line)
    word = str(msg["parameters"].get("word", ""))
    print(json.dumps({"log": "shouting " + word}), flush=True)
    print(json.dumps({"result": {"shout": word.upper() + "!"}}), flush=True)
