// The 2010 worker shape: read the message from stdin, answer on stdout.
const { compose } = require('./someOtherScript.js');

process.stdin.on('data', (chunk) => {
  for (const line of chunk.toString().split('\n')) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    const mail = compose(msg.arguments.from, msg.arguments.recipient);
    console.log(`would send "${mail.subject}" to ${mail.to}`);
    console.log(JSON.stringify({ result: mail }));
  }
});
