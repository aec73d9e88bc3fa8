/**
 * A runtime whose isolate engine cannot load (here: one named that is not installed) starts,
 * says why, fails isolate workers with LC_ISOLATE_UNAVAILABLE, and runs every other type.
 */
import { expect } from 'chai';
import { rmSync } from 'node:fs';
import { request } from 'undici';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, dropPrefix } from '../support/couch.ts';
import { eventually, startRuntime } from '../support/runtime.ts';

const att = (code: string, type = 'application/javascript') => ({ content_type: type, data: Buffer.from(code).toString('base64') });
const kMissing = '@livelycouch/isolated-vm-missing';

async function call(rt: Runtime, path: string) {
  const res = await request(rt.url + path, { headers: path.startsWith('/_lively/') ? adminHeaders() : {} });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> };
}

describe('a runtime without an isolate engine', function () {
  this.timeout(30_000);
  let rt: Runtime;
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn(msg: string) { warnings.push(msg); }, error() {} };

  before(async () => {
    rt = await startRuntime({ isolateEngine: kMissing, logger });
    await rt.db.workers.bulk({ docs: [
      { _id: 'boxed', type: 'isolate', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ boxed: true });') } },
      { _id: 'threaded', type: 'node', delegate: 'index.js', _attachments: { 'index.js': att('module.exports = () => ({ threaded: true });') } },
      { _id: 'shelled', type: 'sh', delegate: 'main.sh', _attachments: { 'main.sh': att('while read -r line; do echo \'{"result":{"shelled":true}}\'; done', 'text/x-sh') } },
    ] });
    await rt.db.events.insert({ _id: 'all_types', trigger: { '/all/types': {} }, workers: { boxed: {}, threaded: {}, shelled: {} } });
    await eventually(() => !!rt.catalog.get('all_types'), 5_000, 'event loaded');
  });
  after(async () => {
    await rt.stop();
    await dropPrefix(rt.config.dbPrefix);
    rmSync(rt.config.dataDir, { recursive: true, force: true });
  });

  it('says at start why isolate workers cannot run', () => {
    expect(warnings.some((w) => w.includes(kMissing) && w.includes('isolate workers are unavailable')), warnings.join('\n')).to.equal(true);
  });

  it('fails the isolate worker with LC_ISOLATE_UNAVAILABLE; the node and sh workers of the same event run', async () => {
    const r = await call(rt, '/_events/all/types?wait=true');
    const byWorker = Object.fromEntries(r.body.outcomes.map((o: Record<string, any>) => [o.worker, o]));
    expect(byWorker.boxed.status).to.equal('error');
    expect(byWorker.boxed.error.code).to.equal('LC_ISOLATE_UNAVAILABLE');
    expect(byWorker.boxed.error.message).to.contain(kMissing);
    expect(byWorker.threaded).to.deep.include({ status: 'ok', result: { threaded: true } });
    expect(byWorker.shelled).to.deep.include({ status: 'ok', result: { shelled: true } });
  });

  it('/_lively/status names the missing engine and lists the isolate worker as a problem', async () => {
    const { body } = await call(rt, '/_lively/status');
    expect(body.isolateEngine).to.deep.include({ package: kMissing, node: process.versions.node });
    expect(body.isolateEngine.error.code).to.equal('LC_ISOLATE_UNAVAILABLE');
    const problems = Object.fromEntries(body.workers.problems.map((p: { id: string; code: string }) => [p.id, p.code]));
    expect(problems).to.deep.equal({ boxed: 'LC_ISOLATE_UNAVAILABLE' });
  });
});
