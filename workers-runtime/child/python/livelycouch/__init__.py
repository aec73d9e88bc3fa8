"""The helper API for python workers, found on PYTHONPATH (set by the LivelyCouch runtime).

    from livelycouch import messages, result, emit, log

    for message in messages():
        emit("sent", {"to": message["parameters"].get("to")})
        result({"ok": True})

Each call writes one command line on the real stdout and flushes it. Answering with `result`
(or `done`) makes the worker an acknowledging one: the runtime then waits for the answer,
however long the work takes (up to the worker's timeout), instead of guessing from silence.
"""
import json
import os
import sys

__all__ = ["messages", "result", "done", "emit", "log", "COUCHDB_URL"]

# The worker's own CouchDB URL when its document says "couch": true, else None.
COUCHDB_URL = os.environ.get("COUCHDB_URL")


def _write(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def messages():
    """Yields each message (a dict) as it arrives on stdin; ends when the runtime ends stdin."""
    for line in sys.stdin:
        line = line.strip()
        if line:
            yield json.loads(line)


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
