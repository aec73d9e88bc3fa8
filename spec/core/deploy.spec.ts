import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LivelyError } from '../../src/shared/errors.ts';
import { connect } from '../../src/store/couch.ts';
import { initStore } from '../../src/store/init.ts';
import { deployDir } from '../../src/core/deploy.ts';
import { sampleDir } from '../../src/core/sample.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

describe('deploy <dir>', () => {
  it('pushes events/*.json and workers/<name>/ folders with their files as attachments; an unchanged redeploy writes nothing', async () => {
    const prefix = uniquePrefix();
    const nano = connect(couchUrl());
    await initStore(nano, { prefix });
    const events = nano.use<Record<string, unknown>>(`${prefix}events`);
    const workers = nano.use<Record<string, unknown>>(`${prefix}workers`);
    const first = await deployDir(sampleDir, events, workers);
    expect(first.written).to.include.members(['email_event', 'shout', 'send_email']);
    const worker = (await workers.get('send_email', { attachments: true })) as unknown as { delegate: string; _attachments: Record<string, { data: string }> };
    expect(worker.delegate).to.equal('sendmail.js');
    expect(Object.keys(worker._attachments).sort()).to.deep.equal(['sendmail.js', 'someOtherScript.js']);
    expect(Buffer.from(worker._attachments['someOtherScript.js']!.data, 'base64').toString()).to.contain('exports.compose');
    const again = await deployDir(sampleDir, events, workers);
    expect(again.written).to.deep.equal([]);
    expect(again.unchanged.length).to.equal(first.written.length);
  });
});

describe('deploy <dir>: a bad folder fails naming the file and writes nothing', () => {
  const prefix = uniquePrefix();
  const nano = connect(couchUrl());
  const events = nano.use<Record<string, unknown>>(`${prefix}events`);
  const workers = nano.use<Record<string, unknown>>(`${prefix}workers`);
  before(() => initStore(nano, { prefix }));
  after(() => dropPrefix(prefix));
  const dirs: string[] = [];
  const tempDir = (prefix: string) => { const dir = mkdtempSync(path.join(os.tmpdir(), prefix)); dirs.push(dir); return dir; };
  afterEach(() => { for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true }); });

  /** A good app: worker w (node) and event e; `change` breaks it. */
  function app(change: (dir: string) => void): string {
    const dir = tempDir('lively-deploy-');
    mkdirSync(path.join(dir, 'workers', 'w'), { recursive: true });
    mkdirSync(path.join(dir, 'events'));
    writeFileSync(path.join(dir, 'workers', 'w', 'doc.json'), JSON.stringify({ type: 'node', delegate: 'index.js' }));
    writeFileSync(path.join(dir, 'workers', 'w', 'index.js'), 'module.exports = async () => 1;');
    writeFileSync(path.join(dir, 'events', 'e.json'), JSON.stringify({ trigger: { '/e': {} }, workers: { w: {} } }));
    change(dir);
    return dir;
  }

  async function rejects(dir: string, file: string, reason: RegExp): Promise<void> {
    let err: unknown;
    try { await deployDir(dir, events, workers); } catch (e) { err = e; }
    expect(err, 'deploy should fail').to.be.instanceOf(LivelyError);
    const msg = (err as Error).message;
    expect(msg.startsWith(path.join(dir, file) + ':'), msg).to.equal(true);
    expect(msg).to.match(reason);
    expect(msg).to.not.contain('\n');
    const written = [...(await events.list()).rows, ...(await workers.list()).rows].filter((r) => !r.id.startsWith('_design/'));
    expect(written).to.deep.equal([]);
  }

  it('a worker folder without doc.json', () => rejects(app((d) => rmSync(path.join(d, 'workers', 'w', 'doc.json'))), 'workers/w/doc.json', /missing/));
  it('bad JSON in an event file', () => rejects(app((d) => writeFileSync(path.join(d, 'events', 'e.json'), '{ "trigger": ')), 'events/e.json', /not valid JSON/));
  it('bad JSON in a doc.json', () => rejects(app((d) => writeFileSync(path.join(d, 'workers', 'w', 'doc.json'), '[1,')), 'workers/w/doc.json', /not valid JSON/));
  it('a doc.json that is not an object', () => rejects(app((d) => writeFileSync(path.join(d, 'workers', 'w', 'doc.json'), '[]')), 'workers/w/doc.json', /must hold a JSON object/));
  it('a delegate file that is not there', () => rejects(app((d) => rmSync(path.join(d, 'workers', 'w', 'index.js'))), 'workers/w/doc.json', /delegate "index.js" is not a file/));
  it('an event the validation rules refuse', () => rejects(app((d) => writeFileSync(path.join(d, 'events', 'e.json'), JSON.stringify({ trigger: { 'e': {} }, workers: { w: {} } }))), 'events/e.json', /must start with "\/"/));
  it('a worker the validation rules refuse', () => rejects(app((d) => writeFileSync(path.join(d, 'workers', 'w', 'doc.json'), JSON.stringify({ delegate: 'index.js', timeout: -1 }))), 'workers/w/doc.json', /timeout/));
  it('a sub-folder in a worker folder', () => rejects(app((d) => mkdirSync(path.join(d, 'workers', 'w', 'lib'))), 'workers/w/lib', /files only/));
  it('two event files with one _id', () => rejects(app((d) => writeFileSync(path.join(d, 'events', 'f.json'), JSON.stringify({ _id: 'e', trigger: { '/f': {} }, workers: { w: {} } }))), 'events/f.json', /also defined by/));
  it('a folder with neither events/ nor workers/', () => rejects(tempDir('lively-empty-'), '', /found neither/));

  it('reports created, updated, unchanged; removes documents of files gone when told what was deployed before', async () => {
    const dir = app(() => undefined);
    const first = await deployDir(dir, events, workers);
    expect(first.steps).to.deep.equal([{ kind: 'worker', id: 'w', action: 'created' }, { kind: 'event', id: 'e', action: 'created' }]);
    writeFileSync(path.join(dir, 'workers', 'w', 'index.js'), 'module.exports = async () => 2;');
    writeFileSync(path.join(dir, 'events', 'g.json'), JSON.stringify({ trigger: { '/g': {} }, workers: { w: {} } }));
    const second = await deployDir(dir, events, workers);
    expect(second.steps).to.deep.equal([
      { kind: 'worker', id: 'w', action: 'updated' }, { kind: 'event', id: 'e', action: 'unchanged' }, { kind: 'event', id: 'g', action: 'created' },
    ]);
    // An event written by hand, not by deploy, is never removed.
    await events.insert({ _id: 'manual', trigger: { '/m': {} }, workers: { w: {} } });
    rmSync(path.join(dir, 'events', 'g.json'));
    const third = await deployDir(dir, events, workers, { previous: [...second.steps, { kind: 'event' as const, id: 'manual' }] });
    expect(third.steps.filter((s) => s.action !== 'unchanged')).to.deep.equal([{ kind: 'event', id: 'g', action: 'deleted' }]);
    const ids = (await events.list()).rows.map((r) => r.id).filter((id) => !id.startsWith('_design/'));
    expect(ids.sort()).to.deep.equal(['e', 'manual']);
    // Clean up for the fault specs, which expect empty databases.
    for (const db of [events, workers]) {
      for (const r of (await db.list()).rows) if (!r.id.startsWith('_design/')) await db.destroy(r.id, r.value.rev);
    }
  });
});

describe('deploy <dir>: an event naming a worker that is nowhere is written, with a warning', () => {
  const prefix = uniquePrefix();
  const nano = connect(couchUrl());
  const events = nano.use<Record<string, unknown>>(`${prefix}events`);
  const workers = nano.use<Record<string, unknown>>(`${prefix}workers`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lively-deploy-warn-'));
  before(() => initStore(nano, { prefix }));
  after(async () => {
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the file, the event and each missing worker (keyed and list forms, an endpoint\'s); a worker already in the database is found', async () => {
    mkdirSync(path.join(dir, 'workers', 'w'), { recursive: true });
    mkdirSync(path.join(dir, 'events'));
    writeFileSync(path.join(dir, 'workers', 'w', 'doc.json'), JSON.stringify({ type: 'node', delegate: 'index.js' }));
    writeFileSync(path.join(dir, 'workers', 'w', 'index.js'), 'module.exports = async () => 1;');
    await workers.insert({ _id: 'stored', type: 'node', delegate: 'index.js', _attachments: { 'index.js': { content_type: 'application/javascript', data: Buffer.from('module.exports = async () => 2;').toString('base64') } } });
    writeFileSync(path.join(dir, 'events', 'keyed.json'), JSON.stringify({ trigger: { '/keyed': {} }, workers: { w: {}, stored: {}, ghost: {} } }));
    writeFileSync(path.join(dir, 'events', 'listed.json'), JSON.stringify({ trigger: [{ path: '/listed' }], workers: [{ name: 'w' }, { name: 'phantom' }] }));
    writeFileSync(path.join(dir, 'events', 'endpoint.json'), JSON.stringify({ trigger: { '/endpoint': {} }, workers: { answerer: {} }, response: 'answerer' }));
    const report = await deployDir(dir, events, workers);
    expect(report.written.sort()).to.deep.equal(['endpoint', 'keyed', 'listed', 'w']);
    const file = (f: string) => path.join(dir, 'events', f);
    expect(report.warnings.sort()).to.deep.equal([
      `${file('endpoint.json')}: event "endpoint" names worker "answerer", which is neither in this app nor in the workers database`,
      `${file('keyed.json')}: event "keyed" names worker "ghost", which is neither in this app nor in the workers database`,
      `${file('listed.json')}: event "listed" names worker "phantom", which is neither in this app nor in the workers database`,
    ]);
    // once the worker exists, the warning is gone; an unchanged redeploy still checks
    await workers.insert({ _id: 'ghost', type: 'node', delegate: 'index.js', _attachments: { 'index.js': { content_type: 'application/javascript', data: Buffer.from('module.exports = async () => 3;').toString('base64') } } });
    const again = await deployDir(dir, events, workers);
    expect(again.written).to.deep.equal([]);
    expect(again.warnings.map((w) => /worker "(\w+)"/.exec(w)![1]).sort()).to.deep.equal(['answerer', 'phantom']);
  });
});
