import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A fenced code block of README.md, with the kind the HTML comment on the line before it gives:
 * `<!-- sample: file NAME -->` (a whole file, runs pasted into a new app as NAME) or
 * `<!-- sample: excerpt -->` (lines meant to go into a file of one's own).
 */
export interface ReadmeSample {
  lang: string;
  code: string;
  /** The line of the opening fence, 1-based. */
  line: number;
  kind: { file: string } | 'excerpt' | undefined;
}

/** Languages whose samples are code a user pastes into an app, and so must say which kind they are. */
export const CODE_LANGS: readonly string[] = ['ts', 'typescript', 'js', 'javascript', 'mjs', 'cjs', 'tsx', 'jsx'];

/** Every fenced code block of README.md, in order. */
export function readmeSamples(): ReadmeSample[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const found: ReadmeSample[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w+)$/.exec(lines[i] as string);
    if (!open) continue;
    const marker = /^<!-- sample: (?:file (\S+)|(excerpt)) -->$/.exec(lines[i - 1] ?? '');
    const kind = marker?.[1] !== undefined ? { file: marker[1] } : marker?.[2] !== undefined ? 'excerpt' as const : undefined;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] as string);
    found.push({ lang: open[1] as string, code: `${body.join('\n')}\n`, line: start + 1, kind });
  }
  return found;
}

/** The code of the sample marked `<!-- sample: file NAME -->`; throws unless there is exactly one. */
export function fileSample(name: string): string {
  const found = readmeSamples().filter((s) => typeof s.kind === 'object' && s.kind.file === name);
  if (found.length !== 1) throw new Error(`README.md has ${found.length} samples marked as file ${name}`);
  return (found[0] as ReadmeSample).code;
}

/** The code of the one sample holding `marker` (an excerpt, or a shell block); throws unless there is exactly one. */
export function sampleWith(marker: string): string {
  const found = readmeSamples().filter((s) => s.code.includes(marker));
  if (found.length !== 1) throw new Error(`README.md has ${found.length} samples holding ${JSON.stringify(marker)}`);
  return (found[0] as ReadmeSample).code;
}
