// Starts the JWT worker thread from the TypeScript source (tests, `tsx example/main.ts`): Node 20
// does not apply a host's `--import tsx` to a worker's entry module, so the worker registers
// tsx's loader itself before it loads the program. The built package starts jwt-worker-thread.js.
import { register } from 'tsx/esm/api';

register();
await import('./jwt-worker-thread.ts');
