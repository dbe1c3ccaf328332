// The `exec` command's own entry: scripts/bundle.mjs builds it into dist/src/cli/exec.cjs, and
// boot.cjs runs that instead of the whole CLI bundle (main.cjs) when argv[2] is "exec" (every
// converted stdio server start: it stays resident beside the server, all day).
// Same help, usage errors, messages and exit codes as through main.ts (run-command.ts).
import { setFlagsFromString } from 'node:v8';
import { EXEC_SPEC } from './broker-child-specs.js';
import { runCommand, startCli } from './run-command.js';

// No optimizing compiler: the relay's hot path (a JSON line in, a JSON line out) gets no faster
// from it, and the compiler's code and zones stay resident once used; and a young generation
// that stays at its first size instead of doubling under a burst of calls (--max-semi-space-size
// works only on the command line, the growth factor also at run time). Measured on the bench's
// idle wrapper after 600 relayed calls and 10 rotations: 55.0 MiB -> 46.9 MiB, the same
// per-call overhead (docs/benchmarks.md). Set before any code of the relay runs; the server it
// starts is not affected (V8 flags of this process, not NODE_OPTIONS).
setFlagsFromString('--max-opt=0');
setFlagsFromString('--semi-space-growth-factor=1');

startCli(() => runCommand(EXEC_SPEC, process.argv.slice(3)));
