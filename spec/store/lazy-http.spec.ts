/**
 * The embedded store defers PouchDB's HTTP client (src/store/embedded/lazy-http.ts): its
 * packages load at the first request to a remote database, and behave as loaded at once.
 * Run in a node process of its own, as the store child runs it: the require cache is the
 * process's. Replication by URL through the real store is in ./replicate.spec.ts.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const kLazy = fileURLToPath(new URL('../../src/store/embedded/lazy-http.ts', import.meta.url));

/** What the child reports. */
interface Report {
  loadedAtStart: string[];
  headerKind: string;
  first: string;
  secondCookie: string;
  loadedAfter: string[];
}

const kChild = `
import { createRequire } from 'node:module';
import http from 'node:http';
import { deferPouchHttp } from ${JSON.stringify(kLazy)};
const require = createRequire(${JSON.stringify(import.meta.url)});
const heavy = () => Object.keys(require.cache).filter((k) => /[\\\\/](tough-cookie|psl)[\\\\/]/.test(k));
deferPouchHttp(require);
require('pouchdb-node');
const pf = require('pouchdb-fetch');
const loadedAtStart = heavy().map((k) => k.replace(/.*node_modules[\\\\/]/, ''));
// a server that sets a cookie, then echoes the cookie it is sent
let hits = 0;
const server = http.createServer((req, res) => {
  hits++;
  if (hits === 1) res.setHeader('set-cookie', 'AuthSession=lazy-spec; Path=/');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ cookie: req.headers.cookie ?? '', accept: req.headers.accept ?? '' }));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = 'http://127.0.0.1:' + server.address().port + '/';
const headers = new pf.Headers({ accept: 'application/json' });
const first = await (await pf.fetch(url, { headers })).json();
const second = await (await pf.fetch(url, { headers: new pf.Headers({ accept: 'application/json' }) })).json();
server.close();
const real = require('node-fetch');
process.stdout.write(JSON.stringify({
  loadedAtStart,
  headerKind: headers instanceof real.Headers ? 'the package Headers' : 'something else',
  first: first.accept,
  secondCookie: second.cookie,
  loadedAfter: heavy().length > 0 ? ['loaded'] : [],
}));
`;

describe('embedded store: PouchDB\'s HTTP client loads on first use', function () {
  this.timeout(30_000);

  it('is not loaded with PouchDB; the first remote request loads it, with headers and cookies as before', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', kChild], { encoding: 'utf8' });
    const report = JSON.parse(out) as Report;
    expect(report.loadedAtStart, 'cookie and URL packages loaded with PouchDB').to.deep.equal([]);
    expect(report.headerKind).to.equal('the package Headers');
    expect(report.first).to.equal('application/json');
    // fetch-cookie kept the session cookie the first answer set
    expect(report.secondCookie).to.equal('AuthSession=lazy-spec');
    expect(report.loadedAfter).to.deep.equal(['loaded']);
  });
});
