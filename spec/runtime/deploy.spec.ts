import { expect } from 'chai';
import { connect } from '../../src/store/couch.ts';
import { initStore } from '../../src/store/init.ts';
import { deployDir } from '../../src/runtime/deploy.ts';
import { sampleDir } from '../../src/runtime/sample.ts';
import { couchUrl, uniquePrefix } from '../support/couch.ts';

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
