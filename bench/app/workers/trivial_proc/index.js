const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const msg = JSON.parse(line);
  process.stdout.write(JSON.stringify({ result: { ok: true, n: msg.parameters.n ?? null } }) + '\n');
});
