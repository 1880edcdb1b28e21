/**
 * Every setting Mediary reads, parsed once at start-up (`loadConfig`) and passed down; nothing else
 * reads `process.env`. One module per concern, each with its slice of `Config` and the parser of
 * its variables; a new setting goes into the module of its concern (README "Configuration" lists
 * them all). Loaded by every command, `mediary --help` included: these modules import nothing but
 * Node and `src/contract/limits.ts` (no TypeBox, no server dependency).
 */
import { authSettings, type AuthSettings } from './auth.ts';
import { databaseSettings, type DatabaseSettings } from './database.ts';
import type { Env } from './env.ts';
import { eventsSettings, type EventsSettings } from './events.ts';
import { loadSettings, type LoadSettings } from './load.ts';
import { metricsSettings, type MetricsSettings } from './metrics.ts';
import { processingSettings, type ProcessingSettings } from './processing.ts';
import { retentionSettings, type RetentionSettings } from './retention.ts';
import { serverSettings, type ServerSettings } from './server.ts';
import { storageSettings, type StorageSettings } from './storage.ts';
import { uploadSettings, type UploadSettings } from './uploads.ts';

export { ConfigError, StartupError, type Env } from './env.ts';
export type { AuthSettings, Quotas } from './auth.ts';
export type { DatabaseSettings, DatabaseTimeouts } from './database.ts';
export type { EventsConfig, EventsSettings, WebhooksConfig } from './events.ts';
export type { LoadSettings } from './load.ts';
export { metricsEnabled, type MetricsConfig, type MetricsSettings } from './metrics.ts';
export type { ProcessingConfig, ProcessingSettings, VideoConfig } from './processing.ts';
export type { CdnPurgeConfig, DeletionConfig, RetentionSettings } from './retention.ts';
export type { MalwareScanConfig } from './scanning.ts';
export type { GrpcConfig, ServerSettings } from './server.ts';
export type { GcsConfig, S3ArchiveConfig, S3Config, StorageSettings } from './storage.ts';
export type { UploadSettings } from './uploads.ts';

/** Every setting Mediary reads: the slices of the modules above, side by side. */
export interface Config
  extends
    ServerSettings,
    DatabaseSettings,
    StorageSettings,
    AuthSettings,
    UploadSettings,
    LoadSettings,
    ProcessingSettings,
    EventsSettings,
    RetentionSettings,
    MetricsSettings {}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const server = serverSettings(env, cwd);
  return {
    ...server,
    ...databaseSettings(env, server.dataDir),
    ...storageSettings(env, cwd, server.dataDir),
    ...authSettings(env),
    ...uploadSettings(env, cwd, server.dataDir),
    ...loadSettings(env),
    ...processingSettings(env),
    ...eventsSettings(env),
    ...retentionSettings(env, server.publicUrl),
    ...metricsSettings(env),
  };
}
