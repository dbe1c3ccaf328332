import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * Another process inside a read transaction on the state database (as a concurrent `status`
 * or the daemon may be): it pins an old snapshot, so a checkpoint can neither copy the newest
 * WAL frames nor truncate the WAL until it lets go after `ms`.
 */
export function holdReadTransaction(db: string, ms: number): Promise<{ released: Promise<void> }> {
  const code = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    const db = new Database(${JSON.stringify(db)});
    db.exec('BEGIN');
    db.prepare('SELECT count(*) FROM rotations').get();
    process.stdout.write('ready\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});
  `;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<void>((r) => child.on('close', () => r()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.once('data', () => resolve({ released }));
  });
}
