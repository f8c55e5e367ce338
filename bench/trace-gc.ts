/**
 * Preloaded into the CLI by `bench/cli-stages.ts ws --trace-gc` (NODE_OPTIONS="--import ...":
 * Node refuses `--trace-gc` itself in NODE_OPTIONS): turns on V8's GC trace, one line per
 * collection on stdout.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--trace-gc');
