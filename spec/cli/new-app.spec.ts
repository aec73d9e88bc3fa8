import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { request } from 'undici';
import { newApp } from '../../src/cli/new-app.ts';
import { compiledRules } from '../../src/events/rules.ts';
import { connect } from '../../src/store/couch.ts';
import { deployDir } from '../../src/core/deploy.ts';
import type { Runtime } from '../../src/runtime.ts';
import { adminHeaders, couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';
import { eventually, firstOutcome, startRuntime } from '../support/runtime.ts';

const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

/** Every event file and worker doc.json under an app folder. */
function documents(app: string): Array<{ kind: 'event' | 'worker'; file: string }> {
  const out: Array<{ kind: 'event' | 'worker'; file: string }> = [];
  for (const f of readdirSync(path.join(app, 'events'))) if (f.endsWith('.json')) out.push({ kind: 'event', file: path.join(app, 'events', f) });
  for (const w of readdirSync(path.join(app, 'workers'))) out.push({ kind: 'worker', file: path.join(app, 'workers', w, 'doc.json') });
  return out;
}

describe('livelycouch new <dir>', function () {
  this.timeout(60_000);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'lively-new-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('creates an app folder with the worker types and schemas; refuses a folder that is not empty', async () => {
    const dir = path.join(tmp, 'Shop App');
    const files = await newApp(dir);
    expect(files).to.include.members(['events/hello.json', 'workers/hello/hello.ts', 'workers/shout/shout.py', 'schemas/event.schema.json', 'types/livelycouch-worker.d.ts', 'package.json', 'README.md']);
    expect(readJson(path.join(dir, 'package.json')).name).to.equal('shop-app');
    expect(JSON.stringify(readJson(path.join(dir, 'events', 'on_note.json')))).to.contain('"db":"shop_app_notes"');
    let err: unknown;
    try { await newApp(dir); } catch (e) { err = e; }
    expect(String(err)).to.contain('not empty');
  });

  it('its TypeScript and JSDoc-typed workers typecheck against the shipped types, and a wrong use of the message does not', async () => {
    const dir = path.join(tmp, 'typed');
    await newApp(dir);
    await run(process.execPath, [tsc, '-p', dir]);
    writeFileSync(path.join(dir, 'workers', 'hello', 'hello.ts'),
      "import type { Handler, HttpMessage } from 'livelycouch/worker';\nconst h: Handler<HttpMessage> = async (msg) => msg.tick.at;\nexport default h;\n");
    const failed = await run(process.execPath, [tsc, '-p', dir]).then(() => undefined, (e: { stdout: string }) => e.stdout);
    expect(failed, 'tsc should refuse msg.tick on an HTTP message').to.match(/hello\.ts.*Property 'tick' does not exist/);
  });

  it('every document of the template and of examples/ is valid by the JSON Schemas and by the runtime\'s own rules', async () => {
    const dir = path.join(tmp, 'schemas');
    await newApp(dir);
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validators = {
      event: ajv.compile(readJson(path.join(root, 'schemas', 'event.schema.json'))),
      worker: ajv.compile(readJson(path.join(root, 'schemas', 'worker.schema.json'))),
    };
    const apps = [dir, ...readdirSync(path.join(root, 'examples')).map((e) => path.join(root, 'examples', e))];
    let checked = 0;
    for (const app of apps) {
      for (const { kind, file } of documents(app)) {
        const doc = readJson(file);
        expect(validators[kind](doc), `${file}: ${JSON.stringify(validators[kind].errors)}`).to.equal(true);
        const forRules = { _id: path.basename(file, '.json'), ...doc };
        if (kind === 'event') expect(compiledRules().eventProblem(forRules), file).to.equal(null);
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(10);
    // The schemas refuse what the rules refuse, for the mistakes an editor should catch.
    expect(validators.event({ trigger: { 'no-slash': {} }, workers: { w: {} } })).to.equal(false);
    expect(validators.event({ trigger: [{ schedule: { every: '1m', cron: '* * * * *' } }], workers: { w: {} } })).to.equal(false);
    expect(validators.event({ workers: { w: {} } })).to.equal(false);
    expect(validators.worker({ type: 'node' })).to.equal(false);
    expect(validators.worker({ delegate: 'a.js', isolation: 'fork' })).to.equal(false);
  });

  describe('deploys and runs as created', () => {
    const prefix = uniquePrefix();
    let rt: Runtime;
    let db = '';
    before(async () => { rt = await startRuntime({ config: { dbPrefix: prefix } }); });
    after(async () => {
      await rt.stop();
      rmSync(rt.config.dataDir, { recursive: true, force: true });
      await dropPrefix(prefix);
      if (db) await connect(couchUrl()).db.destroy(db).catch(() => undefined);
    });

    it('the HTTP endpoint (TypeScript), the python worker, the changes trigger and the schedule all load and run', async () => {
      const dir = path.join(tmp, `run${prefix.replace(/_$/, '')}`);
      await newApp(dir);
      db = String((readJson(path.join(dir, 'events', 'on_note.json')).trigger as Array<{ changes: { db: string } }>)[0]!.changes.db);
      const nano = connect(couchUrl());
      await nano.db.create(db);
      const report = await deployDir(dir, nano.use(`${prefix}events`), nano.use(`${prefix}workers`));
      expect(report.written.sort()).to.deep.equal(['every_minute', 'hello', 'hello', 'on_note', 'on_note', 'shout', 'shout', 'tick']);
      const stored = await nano.use<Record<string, unknown>>(`${prefix}events`).get('hello');
      expect(stored).to.not.have.property('$schema');
      const fire = (p: string) => firstOutcome(rt, p);
      expect(await fire('/hello/ada?wait=true')).to.deep.include({ status: 'ok', result: { text: 'Hello, ada!' } });
      expect(await fire('/shout/hey?wait=true')).to.deep.include({ status: 'ok', result: { shout: 'HEY!' } });
      await nano.use(db).insert({ _id: 'n1', text: 'three little words' } as never);
      const headers = adminHeaders();
      let found: { trigger: string; workers: Array<{ worker: string; status: string; result?: unknown }> } | undefined;
      await eventually(async () => {
        const res = await request(`${rt.url}/_lively/activations?event=on_note`, { headers });
        found = ((await res.body.json()) as { activations?: Array<typeof found> }).activations?.[0];
        return found !== undefined;
      }, 15_000, 'the on_note activation');
      expect(found!.trigger).to.equal('changes');
      expect(found!.workers[0]).to.deep.include({ worker: 'on_note', status: 'ok', result: { id: 'n1', words: 3 } });
      const status = await request(`${rt.url}/_lively/status`, { headers });
      const s = (await status.body.json()) as { events: { loaded: number; invalid: unknown[] } };
      expect(s.events).to.deep.equal({ loaded: 4, invalid: [] });
    });
  });
});
