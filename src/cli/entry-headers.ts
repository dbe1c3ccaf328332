// The `headers` command's own entry: scripts/bundle.mjs builds it into dist/src/cli/headers.cjs, and
// boot.cjs runs that instead of the whole CLI bundle (main.cjs) when argv[2] is "headers"
// (Claude Code's headersHelper, run at every connection).
// Same help, usage errors, messages and exit codes as through main.ts (run-command.ts).
import { HEADERS_SPEC } from './broker-child-specs.js';
import { runCommand, startCli } from './run-command.js';

startCli(() => runCommand(HEADERS_SPEC, process.argv.slice(3)));
