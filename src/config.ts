// The configuration's entry point for the rest of the code: the settings modules are in
// src/config/ (one per concern), assembled by `loadConfig` in src/config/index.ts.
export * from './config/index.ts';
