/**
 * Run by store.test.ts inside `dbus-run-session` with gnome-keyring unlocked: exercises the
 * keychain backend against a real Secret Service and prints one JSON line of results.
 */
import { execFileSync } from 'node:child_process';
import { KeychainTokenStore } from '../../src/broker/keychain.js';
import { Secret } from '../../src/secret.js';

const k = new KeychainTokenStore({ timeoutMs: 10_000, service: 'mcp-token-rotator-test' });
const slot = `certorix-${process.pid.toString(16).padStart(8, '0').slice(-8)}`;
const probe = (await k.probe()).ok;
await k.write(slot, new Secret('ctx_keychain_value_0000001'));
const readBack = (await k.read(slot))?.reveal() ?? null;
await k.write(slot, new Secret('ctx_keychain_value_0000002'));
const replaced = (await k.read(slot))?.reveal() ?? null;
// Another Secret Service client sees the same item: it is in the real store, not in memory.
let secretTool: string | null = null;
try {
  secretTool = execFileSync('secret-tool', ['lookup', 'service', 'mcp-token-rotator-test', 'username', slot], { encoding: 'utf8' }).trim() || null;
} catch {
  secretTool = 'secret-tool failed';
}
await k.remove(slot);
const afterRemove = (await k.read(slot))?.reveal() ?? null;
k.close();
process.stdout.write(JSON.stringify({ probe, readBack, replaced, afterRemove, secretTool }) + '\n');
