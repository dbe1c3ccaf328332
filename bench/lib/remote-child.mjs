// The stand-in remote MCP server (and its fake API) in a process of its own, as a user's
// remote server is: `node bench/lib/remote-child.mjs` prints one JSON line
// {apiUrl, mcpUrl, token} (a live editor token) and serves until stdin closes.
import { randomUUID } from 'node:crypto';

const d = (p) => new URL(`../../dist/${p}`, import.meta.url);
const { startFakeCertorix } = await import(d('test/fake/certorix.js'));
const { startFakeRemote } = await import(d('test/fake/remote-server.js'));
const api = await startFakeCertorix();
const remote = await startFakeRemote(api);
const token = api.addToken({ email: `bench-remote-${randomUUID()}@example.com`, role: 'editor' });
process.stdout.write(JSON.stringify({ apiUrl: api.url, mcpUrl: remote.mcpUrl, token }) + '\n');
process.stdin.resume();
process.stdin.on('end', async () => {
  await remote.close();
  await api.close();
  process.exit(0);
});
