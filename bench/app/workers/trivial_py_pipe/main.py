from livelycouch import messages, result

for msg in messages(pipeline=16):
    result({"ok": True})
