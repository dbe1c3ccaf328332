import type { Values } from '../commands.js';
export async function run(_values: Values): Promise<number> {
  throw new Error('daemon: not built yet');
}
