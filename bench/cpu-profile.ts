// Summarises a V8 .cpuprofile (as written by `node --cpu-prof`): top functions by self time, and
// time by package or source area, self and inclusive. Used by `bench/issuer.ts --profile DIR`;
// also runnable alone: `npx tsx bench/cpu-profile.ts FILE.cpuprofile [TOP]`.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code lives: a package, a project directory, node internals, or a V8 pseudo-frame. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  if (url.startsWith('node:')) return 'node: internals';
  const own = /\/(lib|bench|test)\/(.+)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.+)$/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  const own = /\/((?:lib|bench|test)\/.+)$/.exec(url);
  if (own?.[1] !== undefined) return own[1];
  return url;
}

const pct = (part: number, whole: number): string => `${((100 * part) / whole).toFixed(1).padStart(5)}%`;

/**
 * Summarises one profile. Idle time (`(idle)`) is left out of the percentages: they are shares of
 * the time the process was busy.
 */
export function summarizeProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }

  const selfByFunction = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const inclusiveByArea = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const dt = profile.timeDeltas[i] ?? 0;
    const node = id === undefined ? undefined : byId.get(id);
    if (!node || dt <= 0) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const frame = node.callFrame;
    const key = `${frame.functionName || '(anonymous)'}  ${frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`;
    selfByFunction.set(key, (selfByFunction.get(key) ?? 0) + dt);
    const area = areaOf(frame);
    selfByArea.set(area, (selfByArea.get(area) ?? 0) + dt);
    // Inclusive: every area on the stack counts once for this sample (bounded by the tree's depth).
    const seen = new Set<string>();
    let cursor: number | undefined = node.id;
    for (let depth = 0; cursor !== undefined && depth < 10_000; depth++) {
      const current = byId.get(cursor);
      if (!current) break;
      seen.add(areaOf(current.callFrame));
      cursor = parent.get(cursor);
    }
    for (const a of seen) inclusiveByArea.set(a, (inclusiveByArea.get(a) ?? 0) + dt);
  }

  const lines: string[] = [];
  lines.push(`${file}\n  main thread busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s `
    + `(${pct(idle, busy + idle).trim()} idle); the shares below are of the busy time`);
  lines.push(`  top ${top} functions by self time:`);
  for (const [key, t] of [...selfByFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`    ${pct(t, busy)}  ${key}`);
  }
  lines.push('  by package / area:          self   inclusive');
  const areas = [...selfByArea].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [area, t] of areas) {
    const name = area.length > 26 ? `${area.slice(0, 25)}…` : area;
    lines.push(`    ${name.padEnd(26)} ${pct(t, busy)}  ${pct(inclusiveByArea.get(area) ?? 0, busy)}`);
  }
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: npx tsx bench/cpu-profile.ts FILE.cpuprofile [TOP]');
    process.exit(2);
  }
  console.log(summarizeProfile(file, Number(process.argv[3] ?? 25)));
}
