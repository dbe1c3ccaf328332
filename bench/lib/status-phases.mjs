// Diagnosis only: run as a script in a HOME set up by bench/diagnose.mjs. Does what
// `status --json` does, timing each phase; prints one JSON line on stderr.
import { performance } from 'node:perf_hooks';

const T = () => performance.now();
const start = T();
const marks = [];
const step = async (name, fn) => {
  const t = T();
  const r = await fn();
  marks.push([name, T() - t]);
  return r;
};
const dist = new URL('../../dist/src/', import.meta.url);
const { Context } = await step('import context.js (settings, log, paths, store; pino, better-sqlite3)', () => import(new URL('context.js', dist)));
const ctx = await step('new Context (read and validate the settings file)', () => new Context());
await step('open the store (addon, open, pragmas, migrations, checkpoint)', () => ctx.store);
const { recoverIfNeeded } = await step('import rotation/recover.js', () => import(new URL('rotation/recover.js', dist)));
const { brokerPort } = await step('import broker/rotation-port.js', () => import(new URL('broker/rotation-port.js', dist)));
await step('recoverIfNeeded', () => recoverIfNeeded(ctx, { broker: brokerPort }));
const { buildStatus } = await step('import status.js', () => import(new URL('status.js', dist)));
const tokens = await step('buildStatus', () => buildStatus(ctx));
await step('JSON.stringify', () => JSON.stringify({ tokens }, null, 2));
await step('close', () => ctx.close());
process.stderr.write(JSON.stringify({ sinceProcessStart: T(), script: T() - start, marks }) + '\n');
