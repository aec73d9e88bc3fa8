/**
 * The isolate engine: the isolated-vm made for the running Node line is the one installed and
 * loaded, and one that cannot load is a clear LC_ISOLATE_UNAVAILABLE for isolate workers only.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { IsolateDispatcher } from '../../src/workers/dispatch/isolate.ts';
import { enginePackageFor, kEngineByNodeMajor, loadIsolateEngine } from '../../src/workers/dispatch/isolate-engine.ts';
import { enginesRange, kNodeLines, unsupportedNodeNotice } from '../../src/shared/node-lines.ts';
import { isLivelyError } from '../../src/shared/errors.ts';
import { collectEmits, message, workerSpec } from '../fixtures/workers/process/specs.ts';

const json = (rel: string) => JSON.parse(readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8'));
/** The isolated-vm major that builds for each Node line. */
const kIsolatedVmMajor: Record<number, number> = { 20: 5, 22: 6, 24: 6, 26: 7 };
const nodeMajor = Number(process.versions.node.split('.')[0]);
const kMissing = '@livelycouch/isolated-vm-missing';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  throw new Error('expected a throw');
}

describe('isolate engine - the isolated-vm for the running Node', () => {
  it(`loads the isolated-vm major built for Node ${nodeMajor}, and it runs code`, async () => {
    const engine = loadIsolateEngine(enginePackageFor());
    expect(engine.package).to.equal(kEngineByNodeMajor[nodeMajor]);
    expect(Number(engine.version.split('.')[0]), `isolated-vm ${engine.version} on Node ${process.versions.node}`).to.equal(kIsolatedVmMajor[nodeMajor]);
    // the version its wrapper pins, so the lockfile and what loads agree
    const wrapper = json(`isolate-engines/${engine.package.replace('@livelycouch/', '')}/package.json`);
    expect(wrapper.dependencies['isolated-vm']).to.equal(engine.version);
    const isolate = new engine.ivm.Isolate({ memoryLimit: 8 });
    try {
      const context = await isolate.createContext();
      const script = await isolate.compileScript('6 * 7');
      expect(await script.run(context)).to.equal(42);
    } finally {
      isolate.dispose();
    }
  });

  it('picks an engine per supported line and none for others', () => {
    expect(enginePackageFor('20.19.0')).to.equal('@livelycouch/isolated-vm-5');
    expect(enginePackageFor('22.12.0')).to.equal('@livelycouch/isolated-vm-6');
    expect(enginePackageFor('24.22.3')).to.equal('@livelycouch/isolated-vm-6');
    expect(enginePackageFor('26.12.1')).to.equal('@livelycouch/isolated-vm-7');
    expect(enginePackageFor('25.1.0')).to.equal(undefined);
    const e = thrown(() => loadIsolateEngine(enginePackageFor('27.0.0')));
    expect(isLivelyError(e, 'LC_ISOLATE_UNAVAILABLE'), String(e)).to.equal(true);
    expect((e as Error).message).to.contain('no isolate engine').and.contain('20, 22, 24, 26');
  });

  it('an engine that is not installed is LC_ISOLATE_UNAVAILABLE naming it and the Node', () => {
    const e = thrown(() => loadIsolateEngine(kMissing));
    expect(isLivelyError(e, 'LC_ISOLATE_UNAVAILABLE'), String(e)).to.equal(true);
    expect((e as Error).message).to.contain(kMissing).and.contain('not installed').and.contain(process.versions.node);
  });

  it('package.json: engines lists the supported lines, and one optional engine per isolated-vm major, each installed only on its lines', () => {
    const pkg = json('package.json');
    expect(pkg.engines.node).to.equal(enginesRange());
    expect(pkg.dependencies).to.not.have.property('isolated-vm');
    const engines = [...new Set(Object.values(kEngineByNodeMajor))];
    expect(Object.keys(pkg.optionalDependencies).sort()).to.deep.equal(engines.sort());
    for (const name of engines) {
      const wrapper = json(`isolate-engines/${name.replace('@livelycouch/', '')}/package.json`);
      expect(wrapper.name).to.equal(name);
      const lines = Object.keys(kNodeLines).map(Number).filter((m) => kEngineByNodeMajor[m] === name);
      expect(wrapper.engines.node, name).to.equal(lines.map((m) => `^${kNodeLines[m]!.minimum}`).join(' || '));
      expect(Number(wrapper.dependencies['isolated-vm'].split('.')[0])).to.equal(kIsolatedVmMajor[lines[0]!]);
    }
  });

  it('a Node outside the supported lines gets one line saying so; a supported one nothing', () => {
    for (const v of ['20.19.0', '20.20.2', '22.0.0', '24.22.3', '26.12.1']) expect(unsupportedNodeNotice(v), v).to.equal(undefined);
    for (const v of ['18.20.4', '20.18.3', '21.7.3', '23.11.1', '25.0.0', '27.1.0']) {
      const notice = unsupportedNodeNotice(v);
      expect(notice, v).to.be.a('string').and.contain(`Node ${v} is not supported`).and.contain(enginesRange());
      expect(notice).to.not.contain('\n');
    }
  });

  describe('IsolateDispatcher without an engine', () => {
    let d: IsolateDispatcher;
    beforeEach(() => { d = new IsolateDispatcher({ engine: kMissing }); });
    afterEach(() => d.close(1000));

    it('fails each isolate message with LC_ISOLATE_UNAVAILABLE and reports it as the worker\'s problem', async () => {
      const spec = workerSpec('isolate', 'echo.js');
      const { onEmit } = collectEmits();
      for (let i = 0; i < 2; i++) {
        const o = await d.dispatch({ spec, message: message(spec), onEmit });
        expect(o.status).to.equal('error');
        expect(o.error!.code).to.equal('LC_ISOLATE_UNAVAILABLE');
        expect(o.error!.message).to.contain(kMissing);
      }
      expect(d.problem(spec)!.message).to.contain(kMissing);
      expect(d.engine()).to.deep.include({ package: kMissing, node: process.versions.node });
      expect(d.engine().error!.code).to.equal('LC_ISOLATE_UNAVAILABLE');
    });
  });

  it('IsolateDispatcher reports the engine it runs on', () => {
    const d = new IsolateDispatcher();
    const info = d.engine();
    expect(info.error).to.equal(undefined);
    expect(info.package).to.equal(kEngineByNodeMajor[nodeMajor]);
    expect(Number(info.version!.split('.')[0])).to.equal(kIsolatedVmMajor[nodeMajor]);
    expect(d.problem(workerSpec('isolate', 'echo.js'))).to.equal(undefined);
  });
});
