"""The helper API for python workers, found on PYTHONPATH (set by the LivelyCouch runtime).

    from livelycouch import messages, result, emit, log

    for message in messages():
        emit("sent", {"to": message["parameters"].get("to")})
        result({"ok": True})

Each call writes one command line on the real stdout and flushes it. Answering with `result`
(or `done`) makes the worker an acknowledging one: the runtime then waits for the answer,
however long the work takes (up to the worker's timeout), instead of guessing from silence.

`messages(pipeline=16)` also tells the runtime it may send up to 16 messages before they are
answered: they wait in the pipe instead of the process waking once per message. Each call then
names the message the loop is on (its "id"), so an answer can only reach its own message.
"""
import json
import os
import sys

__all__ = ["messages", "result", "done", "emit", "log", "COUCHDB_URL"]

# The worker's own CouchDB URL when its document says "couch": true, else None.
COUCHDB_URL = os.environ.get("COUCHDB_URL")

# the id of the message the loop is on, when the runtime sent one (pipelining)
_current = None


def _write(obj):
    if _current is not None:
        obj["id"] = _current
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def messages(pipeline=None):
    """Yields each message (a dict) as it arrives on stdin; ends when the runtime ends stdin.

    pipeline: how many messages the runtime may send before they are answered (1 to 256);
    by default one at a time."""
    global _current
    if pipeline is not None:
        sys.stdout.write(json.dumps({"pipeline": int(pipeline)}) + "\n")
        sys.stdout.flush()
    for line in sys.stdin:
        line = line.strip()
        if line:
            message = json.loads(line)
            _current = message.pop("id", None)
            yield message
    _current = None


def result(value=None):
    """Ends the current message with this result (any JSON value)."""
    _write({"result": value})


def done():
    """Ends the current message without a result."""
    _write({"done": True})


def emit(name, parameters=None):
    """Fires /<worker>/<name> with these parameters."""
    _write({"emit": str(name), "parameters": parameters or {}})


def log(msg, level="info"):
    """Adds a line to the activation's log (level: debug, info, warn or error)."""
    _write({"log": str(msg), "level": level})
