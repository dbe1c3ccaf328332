import { spawn, type ChildProcess } from 'node:child_process';
import type { Secret } from '../../secret.js';
import { parseMessage } from './message.js';
import { RelaySession, type SessionAction, type SessionEvent, type SessionOptions, type TimerName } from './session.js';

/**
 * The stdio wrapper's thin I/O layer: lines from the client's stdin and the children's
 * stdout go into the RelaySession; its actions are performed here. stdout carries only
 * relayed MCP messages; everything else goes to stderr.
 */
export interface RelayOptions {
  command: string;
  args: string[];
  /** The server's environment, without the token (it is added per child). */
  env: NodeJS.ProcessEnv;
  /** The variable the token is handed over in: the entry's own (default CERTORIX_API_TOKEN). */
  envVar?: string;
  token: () => Promise<Secret>;
  log: (level: 'info' | 'warn' | 'error', msg: string) => void;
  /** After an announce, once no call is in flight (the rotating process waits for it). */
  onDrained?: () => void;
  /** Every event the session handles (the memory trim waits for a quiet relay: process/memory-trim.ts). */
  onActivity?: () => void;
  session?: Partial<SessionOptions>;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** Stdio shutdown sequence: close stdin, wait, SIGTERM, wait, SIGKILL. */
  termMs?: number;
}

export interface Relay {
  /** Feed a rotation signal (from the generation-file watcher). */
  signal(phase: 'announce' | 'stored' | 'aborted', revoke: boolean): void;
  readonly session: RelaySession;
  /** The wrapper was told to stop (SIGTERM): the servers get SIGTERM now, SIGKILL after termMs. */
  terminate(signal: NodeJS.Signals): void;
  /** Resolves with the exit code once the client is gone and every child has ended. */
  readonly done: Promise<number>;
}

function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let buf = '';
  return (chunk) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line.trim() !== '') onLine(line);
    }
  };
}

export function startRelay(o: RelayOptions): Relay {
  const session = new RelaySession(o.session);
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const children = new Map<number, { proc: ChildProcess | null; queue: string[]; ended: boolean }>();
  const timers = new Map<string, NodeJS.Timeout>();
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const termMs = o.termMs ?? 2000;

  const feed = (ev: SessionEvent): void => {
    o.onActivity?.();
    for (const a of session.handle(ev)) act(a);
  };

  const timerKey = (name: TimerName, child?: number) => `${name}:${child ?? ''}`;

  const writeChild = (id: number, line: string): void => {
    const c = children.get(id);
    if (!c || c.ended) return;
    if (!c.proc) c.queue.push(line);
    else if (c.proc.stdin?.writable) c.proc.stdin.write(line + '\n');
  };

  const startChild = async (id: number): Promise<void> => {
    const entry = { proc: null as ChildProcess | null, queue: [] as string[], ended: false };
    children.set(id, entry);
    let token: Secret;
    try {
      token = await o.token();
    } catch (e) {
      feed({ type: 'spawn-failed', child: id, reason: (e as Error).message });
      return;
    }
    if (entry.ended) return;
    // The token goes to the child in its environment only, never in argv.
    const proc = spawn(o.command, o.args, { env: { ...o.env, [o.envVar ?? 'CERTORIX_API_TOKEN']: token.reveal() }, stdio: ['pipe', 'pipe', 'inherit'] });
    entry.proc = proc;
    let exited = false;
    const onExit = (code: number | null) => {
      if (exited) return;
      exited = true;
      entry.ended = true;
      feed({ type: 'child-exit', child: id, code });
    };
    proc.on('error', (e) => {
      o.log('error', `cannot start ${o.command}: ${e.message}`);
      onExit(127);
    });
    proc.on('exit', (code, sig) => onExit(code ?? (sig ? 128 : 1)));
    proc.stdin?.on('error', () => undefined);
    proc.stdout?.setEncoding('utf8');
    proc.stdout?.on(
      'data',
      lineSplitter((line) => feed({ type: 'child', child: id, line, msg: parseMessage(line) })),
    );
    for (const line of entry.queue.splice(0)) proc.stdin?.write(line + '\n');
  };

  const endChild = (id: number): void => {
    const c = children.get(id);
    if (!c || c.ended) return;
    c.ended = true;
    const p = c.proc;
    if (!p) return;
    p.stdin?.end();
    const t1 = setTimeout(() => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
      const t2 = setTimeout(() => {
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }, termMs);
      t2.unref();
    }, termMs);
    t1.unref();
  };

  const act = (a: SessionAction): void => {
    switch (a.type) {
      case 'to-client':
        output.write(a.line + '\n');
        break;
      case 'to-child':
        writeChild(a.child, a.line);
        break;
      case 'spawn':
        void startChild(a.child);
        break;
      case 'end-child':
        endChild(a.child);
        break;
      case 'set-timer': {
        const k = timerKey(a.name, a.child);
        clearTimeout(timers.get(k));
        timers.set(
          k,
          setTimeout(() => {
            timers.delete(k);
            feed({ type: 'timer', name: a.name, ...(a.child !== undefined ? { child: a.child } : {}) });
          }, a.ms),
        );
        break;
      }
      case 'clear-timer': {
        const k = timerKey(a.name, a.child);
        clearTimeout(timers.get(k));
        timers.delete(k);
        break;
      }
      case 'log':
        o.log(a.level, a.msg);
        break;
      case 'drained':
        o.onDrained?.();
        break;
      case 'exit':
        for (const t of timers.values()) clearTimeout(t);
        resolveDone(a.code);
        break;
    }
  };

  (input as NodeJS.ReadStream).setEncoding?.('utf8');
  input.on(
    'data',
    lineSplitter((line) => feed({ type: 'client', line, msg: parseMessage(line) })),
  );
  input.on('end', () => feed({ type: 'client-end' }));
  input.on('error', () => feed({ type: 'client-end' }));
  output.on('error', () => feed({ type: 'client-end' }));
  feed({ type: 'start' });

  return {
    session,
    done,
    signal: (phase, revoke) => feed({ type: 'signal', phase, revoke }),
    terminate(signal) {
      feed({ type: 'client-end' });
      for (const c of children.values()) {
        const p = c.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) continue;
        p.kill(signal);
        setTimeout(() => {
          if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
        }, termMs).unref();
      }
    },
  };
}
