import { expect } from 'chai';
import { connect } from '../../src/store/couch.ts';
import { couchUrl, dropPrefix, uniquePrefix } from '../support/couch.ts';

describe('spec fixture', () => {
  const prefix = uniquePrefix();
  after(() => dropPrefix(prefix));

  it('PUT /<prefix>db - db.create, then dropPrefix removes it', async () => {
    const server = connect(couchUrl());
    await server.db.create(`${prefix}db`);
    expect(await server.db.list()).to.include(`${prefix}db`);
    await dropPrefix(prefix);
    expect(await server.db.list()).not.to.include(`${prefix}db`);
  });
});
