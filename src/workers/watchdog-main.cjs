'use strict';
/*
 * The orphan watchdog: a tiny process that outlives the LivelyCouch runtime by a moment.
 * Worker processes run in their own process groups so that a signal to the runtime's group
 * does not cut them off mid-message; the price is that nothing kills them when the runtime
 * dies. The runtime tells this process which groups exist ("+pid" / "-pid" lines on its stdin);
 * when that pipe closes — the runtime exited, crashed or got SIGKILL — every group left is
 * sent SIGTERM, then SIGKILL after a grace period.
 * Plain CommonJS with no imports from the project, so it starts in milliseconds without tsx.
 */
const groups = new Set();
const grace = Math.max(0, Number(process.argv[2]) || 1000);

// the runtime's own group may be signalled as a whole (Ctrl-C): stay alive to clean up
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => {});

const signal = (sig) => {
  for (const pgid of groups) {
    try { process.kill(-pgid, sig); } catch { groups.delete(pgid); }
  }
};

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf('\n')) !== -1) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 1) continue;
    if (line[0] === '+') groups.add(pid);
    else if (line[0] === '-') groups.delete(pid);
  }
});
const finish = () => {
  if (groups.size === 0) process.exit(0);
  signal('SIGTERM');
  setTimeout(() => { signal('SIGKILL'); process.exit(0); }, grace);
};
process.stdin.on('end', finish);
process.stdin.on('error', finish);
