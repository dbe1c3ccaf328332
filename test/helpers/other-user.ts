/**
 * "Another local user" for the tests that need one: as root, a node script run as uid 65534
 * (nobody) through `setpriv`; otherwise the caller skips with a note. The script is written to
 * a world-readable temp dir (uid 65534 cannot read this checkout if it is 0700) and may use
 * node built-ins only. It talks back through stdout lines.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const NOBODY = 65534;
export const CAN_SWITCH_USER = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
export const SKIP_NOTE = 'needs root and setpriv to run a process as another uid (65534); skipped';

export interface OtherUserProcess {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

export async function runAsNobody(source: string, args: string[] = []): Promise<OtherUserProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mtr-other-'));
  await chmod(dir, 0o755);
  const file = path.join(dir, 'script.mjs');
  await writeFile(file, source, { mode: 0o644 });
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  return {
    child,
    output: () => out,
    async line(re, timeoutMs = 15_000) {
      const t0 = Date.now();
      for (;;) {
        const hit = out.split('\n').find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (child.exitCode !== null || Date.now() - t0 > timeoutMs) throw new Error(`no line ${re} from the uid ${NOBODY} script; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Listens on 127.0.0.1:<port> and accepts everything (a squatter); prints "listening". */
export const SQUATTER = `
import { createServer } from 'node:net';
const port = Number(process.argv[2]);
const srv = createServer((s) => { s.on('data', () => undefined); s.on('error', () => undefined); });
srv.listen(port, '127.0.0.1', () => console.log('listening ' + port));
`;

/**
 * Opens argv[3] idle connections to 127.0.0.1:argv[2] (64 at a time) and holds them; prints
 * "done opened=<n> refused=<n> closed=<n> open=<n>" once every attempt settled, and the same
 * line again on "report" lines... it simply reprints every 500 ms.
 */
export const FLOOD = `
import { connect } from 'node:net';
const port = Number(process.argv[2]);
const total = Number(process.argv[3]);
let opened = 0, refused = 0, closed = 0, open = 0, started = 0;
const held = [];
function one() {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let was = false;
    s.on('connect', () => { was = true; opened++; open++; held.push(s); resolve(); });
    s.on('error', () => { if (!was) { refused++; resolve(); } });
    s.on('close', () => { if (was) { closed++; open--; } });
  });
}
async function worker() { while (started < total) { started++; await one(); } }
await Promise.all(Array.from({ length: 64 }, worker));
const line = () => console.log('done opened=' + opened + ' refused=' + refused + ' closed=' + closed + ' open=' + open);
line();
setInterval(line, 500);
`;

/** One HTTP POST (an MCP initialize) to argv[2]; prints "status <code>" or "error <code>". */
export const ONE_REQUEST = `
import { request } from 'node:http';
const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'other', version: '1' } } });
const req = request(process.argv[2], { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => { console.log('status ' + res.statusCode); res.resume(); });
req.on('error', (e) => console.log('error ' + (e.code ?? e.message)));
req.end(body);
`;
