// The `exec` command's own entry: scripts/bundle.mjs builds it into dist/src/cli/exec.cjs, and
// boot.cjs runs that instead of the whole CLI bundle (main.cjs) when argv[2] is "exec" (every
// converted stdio server start: it stays resident beside the server, all day).
// Same help, usage errors, messages and exit codes as through main.ts (run-command.ts).
import { setFlagsFromString } from 'node:v8';
import { EXEC_SPEC } from './broker-child-specs.js';
import { runCommand, startCli } from './run-command.js';

// No optimizing compiler: the relay's hot path (a JSON line in, a JSON line out) gets no faster
// from TurboFan, and its compiler's code and zones stay resident once used: measured, an idle
// wrapper after 600 relayed calls and 10 rotations is 55 MiB with it, 47.5 MiB without, at the
// same per-call overhead (docs/benchmarks.md). Set before any code of the relay runs; the
// server it starts is not affected (a V8 flag of this process, not NODE_OPTIONS).
setFlagsFromString('--max-opt=0');
setFlagsFromString('--semi-space-growth-factor=1');

startCli(() => runCommand(EXEC_SPEC, process.argv.slice(3)));
