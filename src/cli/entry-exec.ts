// The `exec` command's own entry: scripts/bundle.mjs builds it into dist/src/cli/exec.cjs, and
// boot.cjs runs that instead of the whole CLI bundle (main.cjs) when argv[2] is "exec"
// (every converted stdio server start: it stays resident beside the server).
// Same help, usage errors, messages and exit codes as through main.ts (run-command.ts).
import { EXEC_SPEC } from './broker-child-specs.js';
import { runCommand, startCli } from './run-command.js';

startCli(() => runCommand(EXEC_SPEC, process.argv.slice(3)));
