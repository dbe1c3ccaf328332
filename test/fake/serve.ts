/**
 * Runs the fake Certorix API as its own process, for demos and spawned end-to-end runs
 * (after `npm run build`: `node dist/test/fake/serve.js`).
 *
 *   PORT                 port to listen on (default 0: any free port)
 *   HOST                 address to bind (default 127.0.0.1)
 *   FAKE_CERTORIX_SEED   JSON array of addToken options, e.g.
 *                        '[{"email":"a@example.com","role":"editor","ageDays":95}]'
 *
 * Prints one JSON line, `{"url": "...", "tokens": ["..."]}` (the seeded token values, in
 * order, since a seed without `token` gets a generated one), then serves until SIGTERM or
 * SIGINT. The `/_fake/state`, `/_fake/tokens` and `/_fake/fault` endpoints let the spawning
 * process inspect and steer it. Seeds come from the environment rather than argv because
 * they are token values and argv is visible in `ps`.
 */
import { startFakeCertorix, type FakeCertorix } from './certorix.js';

type Seed = Parameters<FakeCertorix['addToken']>[0];

function parseSeed(raw: string | undefined): Seed[] {
  if (!raw) return [];
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed)) throw new Error('FAKE_CERTORIX_SEED must be a JSON array of token options');
  return parsed as Seed[];
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got "${process.env.PORT}"`);
  const seeds = parseSeed(process.env.FAKE_CERTORIX_SEED);
  const fake = await startFakeCertorix({ port, host: process.env.HOST || '127.0.0.1', control: true });
  const tokens = seeds.map((s) => fake.addToken(s));
  process.stdout.write(`${JSON.stringify({ url: fake.url, tokens })}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    fake.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`fake certorix: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
