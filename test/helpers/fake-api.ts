import { afterAll, beforeAll } from 'vitest';
import { startFakeCertorix, type FakeCertorix } from '../fake/certorix.js';

/**
 * The fake Certorix API for one test file (or one describe block, when called inside it):
 * started before its tests, closed after them, the preamble test files used to repeat. A
 * getter: the server exists once beforeAll has run.
 */
export function fakeApiForFile(): () => FakeCertorix {
  let api: FakeCertorix | undefined;
  beforeAll(async () => {
    api = await startFakeCertorix();
  });
  afterAll(async () => {
    await api?.close();
  });
  return () => {
    if (!api) throw new Error('the fake API is started in beforeAll: call this inside a test');
    return api;
  };
}
