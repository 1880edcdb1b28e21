/**
 * The wire contract of the Mediary API: every request and response schema, in one module that
 * depends on nothing but `@sinclair/typebox`. The server's route declarations and the OpenAPI
 * document use these schemas; the SDK's types (src/client/types.ts) are their `Static` types.
 */
export * from './common.ts';
export * from './media.ts';
export * from './multipart.ts';
export * from './posts.ts';
export * from './circles.ts';
export * from './profiles.ts';
export * from './devices.ts';
export * from './delivery.ts';
export * from './health.ts';
export * from './retention.ts';
export * from './metrics.ts';
export * from './archive.ts';
export * from './audit.ts';
