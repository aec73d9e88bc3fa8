import { expect } from 'chai';
import { statusLines } from '../../src/cli/format.ts';

describe('livelycouch status - the isolate engine line', () => {
  it('names the isolated-vm loaded and the Node it runs on', () => {
    const lines = statusLines({ url: 'http://x', isolateEngine: { package: '@livelycouch/isolated-vm-7', version: '7.0.2', node: '26.12.1' } });
    expect(lines).to.include('isolates    isolated-vm 7.0.2 (@livelycouch/isolated-vm-7) on Node 26.12.1');
  });

  it('says why isolate workers cannot run', () => {
    const message = 'isolate workers are unavailable on Node 26.12.1: @livelycouch/isolated-vm-7 is not installed';
    const lines = statusLines({ url: 'http://x', isolateEngine: { package: '@livelycouch/isolated-vm-7', node: '26.12.1', error: { code: 'LC_ISOLATE_UNAVAILABLE', message } } });
    expect(lines).to.include(`isolates    unavailable: ${message}`);
  });
});
