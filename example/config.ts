/**
 * The example's settings, from environment variables with defaults. Only example/ reads the
 * environment; the library never does.
 */
import { resolve } from 'node:path';

function port(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number`);
  return value;
}

function seconds(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number of seconds`);
  return value;
}

/** Where the three services listen and keep their data. */
export interface ExampleConfig {
  host: string;
  issuerPort: number;
  reportsPort: number;
  /** The issuer's SQLite file, created and migrated on first run. */
  databaseFile: string;
  /** Where the demo client's secret is handed to the nightly job, as a mounted secret file would be. */
  jobSecretFile: string;
  /** Where the ops client's secret is handed to the admin call. */
  opsSecretFile: string;
  /** The secretless job's private key (made on first run); the issuer keeps only its public key. */
  signerKeyFile: string;
  /** Lifetime of the demo client's tokens, short so that the job shows a refresh. */
  tokenLifetime: number;
  /** Seconds between two runs of the job's read. */
  jobInterval: number;
}

export function exampleConfig(): ExampleConfig {
  const databaseFile = resolve(process.env.M2M_SQLITE_FILE ?? 'example/.data/issuer.sqlite');
  return {
    host: process.env.EXAMPLE_HOST ?? '127.0.0.1',
    issuerPort: port('ISSUER_PORT', 4000),
    reportsPort: port('REPORTS_PORT', 4001),
    databaseFile,
    jobSecretFile: resolve(process.env.JOB_SECRET_FILE ?? `${databaseFile}.archival-service.secret`),
    opsSecretFile: resolve(process.env.OPS_SECRET_FILE ?? `${databaseFile}.ops-console.secret`),
    signerKeyFile: resolve(process.env.SIGNER_KEY_FILE ?? `${databaseFile}.archive-signer.key.pem`),
    tokenLifetime: seconds('DEMO_TOKEN_LIFETIME', 20),
    jobInterval: seconds('JOB_INTERVAL', 3),
  };
}

/** The audience of the reports API: the value its tokens must carry in `aud`. */
export const REPORTS_AUDIENCE = 'https://reports.internal';
/** The demo client: the nightly job's identity. */
export const DEMO_CLIENT = 'archival-service';
