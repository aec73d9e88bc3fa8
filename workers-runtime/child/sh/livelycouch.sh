# The helper for sh and bash workers, found on PATH (set by the LivelyCouch runtime):
#
#   . livelycouch.sh
#   while IFS= read -r message; do
#     lc_log "got $message"
#     lc_result '{"ok":true}'
#   done
#
# lc_result takes a JSON value as it is (default null); lc_emit a name and a JSON object;
# lc_log a plain text and a level. Answering with lc_result or lc_done makes the worker an
# acknowledging one: the runtime waits for the answer instead of guessing from silence.
# The worker's CouchDB URL ("couch": true) is in $COUCHDB_URL.
# `lc_pipeline 16` before the loop lets the runtime send up to 16 messages before they are
# answered; a loop answers them in order, which is how the runtime attributes its lines.

lc_json_string() {
  # a JSON string of $1: backslashes, quotes, tabs and carriage returns escaped, lines joined by \n
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' -e "s/$(printf '\r')/\\\\r/g" \
    | awk 'BEGIN { ORS = ""; printf "\"" } { if (NR > 1) printf "\\n"; print } END { printf "\"" }'
}

lc_pipeline() { printf '{"pipeline":%s}\n' "${1:-16}"; }
lc_result() { printf '{"result":%s}\n' "${1:-null}"; }
lc_done() { printf '{"done":true}\n'; }
lc_emit() { printf '{"emit":%s,"parameters":%s}\n' "$(lc_json_string "$1")" "${2:-{\}}"; }
lc_log() { printf '{"log":%s,"level":"%s"}\n' "$(lc_json_string "$1")" "${2:-info}"; }
