import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const HTTP = {
  group: ['**/http/**', '**/grpc/**', 'fastify', '@fastify/*', '@grpc/*'],
  message: 'Domain, operations and infrastructure must not depend on the HTTP or gRPC layer.',
};
const OPERATIONS = {
  group: ['**/operations/**'],
  message:
    'src/operations (sweeper, storage migration, timers) sits above the domain; only entry points import it.',
};
const METRICS = {
  group: ['prom-client', '**/metrics/*', '!**/metrics/port.ts'],
  message:
    'Code below the composition root reports metrics through the Metrics port (src/metrics/port.ts) it is given; prom-client lives in src/metrics.',
};
/** One `no-restricted-imports` rule for `files`, naming every pattern they must not import. */
const layer = (files, ...patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'lib/**', 'lib.*/**', '.tmp/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['*.mjs', 'bin/*.mjs', 'scripts/*.mjs', 'src/infra/imaging/*.mjs'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['describe', 'test', 'it', 'suite'], package: 'node:test' },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      // Fastify plugins and hooks are async by contract, awaited or not.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Layering (docs/ARCHITECTURE.md "Layers"): entry → http/grpc → operations → domain → infrastructure.
  // Each folder lists everything it must not import (one rule per file set: a later entry would
  // replace, not extend, an earlier one).
  // (sharp, exifr, pg-boss, child processes and src/infra: the adapter block below.)
  layer(['src/media/**'], HTTP, OPERATIONS, METRICS, {
    group: ['**/processing/**', '**/posts/**', '**/circles/**', '**/profiles/**', '**/infra/**'],
    message:
      'media is the core of the domain: processing, posts and circles build on it, never the other way round (shared shapes go into src/media).',
  }),
  layer(
    ['src/posts/**', 'src/circles/**', 'src/profiles/**', 'src/devices/**', 'src/auth/**'],
    HTTP,
    OPERATIONS,
    METRICS,
  ),
  layer(['src/webhooks/**', 'src/events/**'], HTTP, OPERATIONS, METRICS),
  // src/infra is also off limits here, except to the composition root runtime.ts (the adapters
  // block below, which has its own rule name).
  layer(['src/processing/**'], HTTP, OPERATIONS, METRICS),
  // The audit log sits under the domain folders that record into it (migration 0027's triggers
  // do the recording; they only name the actor): it reads principals, nothing else of the domain.
  layer(['src/audit/**'], HTTP, OPERATIONS, METRICS, {
    group: [
      '**/media/**',
      '**/processing/**',
      '**/posts/**',
      '**/circles/**',
      '**/devices/**',
      '**/infra/**',
    ],
    message: 'src/audit is below the domain folders that record into it; it must not import them.',
  }),
  layer(['src/operations/**'], HTTP, METRICS),
  layer(['src/storage/**', 'src/db/**'], HTTP, OPERATIONS, METRICS, {
    group: [
      '**/media/**',
      '**/processing/**',
      '**/posts/**',
      '**/circles/**',
      '**/profiles/**',
      '**/devices/**',
      '**/auth/**',
    ],
    message: 'Infrastructure must not depend on the domain.',
  }),
  {
    // Layering (issue 14 §3): the domain reaches sharp, libheif, exifr, ffmpeg and pg-boss only
    // through the ports of src/processing/ports.ts; the adapters live in src/infra/. Only the
    // composition roots (src/app.ts, src/main.ts, src/cli/, src/processing/runtime.ts) import them.
    // Its own rule name (typescript-eslint's), so this block and the HTTP one above do not replace
    // each other's options.
    files: [
      'src/processing/**',
      'src/media/**',
      'src/posts/**',
      'src/circles/**',
      'src/profiles/**',
      'src/devices/**',
      'src/operations/**',
    ],
    ignores: ['src/processing/runtime.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['sharp', 'exifr', 'pg-boss', 'libheif-js', 'node:child_process', 'child_process'].map(
            (name) => ({
              name,
              message: 'Domain code uses the ports of src/processing/ports.ts; adapters live in src/infra/.',
            }),
          ),
          patterns: [
            {
              group: ['**/infra/**', 'libheif-js/*'],
              message: 'Domain code must not import src/infra/ (only the composition roots wire adapters).',
            },
          ],
        },
      ],
    },
  },
  {
    // Adapters are infrastructure: they never depend on the HTTP layer either.
    files: ['src/infra/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/http/**', 'fastify', '@fastify/*'],
              message: 'Infrastructure code must not depend on the HTTP layer.',
            },
          ],
        },
      ],
    },
  },
  {
    // URLs are the HTTP layer's (issue 14 §4): below it no code names a path of this API or reads
    // the public address; it asks src/http/urls.ts through a port it declares (UploadUrls,
    // PlaybackUrls, StorageUrls) that the composition root injects.
    files: [
      'src/media/**',
      'src/processing/**',
      'src/posts/**',
      'src/circles/**',
      'src/profiles/**',
      'src/devices/**',
      'src/auth/**',
      'src/audit/**',
      'src/events/**',
      'src/webhooks/**',
      'src/operations/**',
      'src/storage/**',
      'src/db/**',
      'src/infra/**',
    ],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...['Literal[value=/\\/api\\/v1\\//]', 'TemplateElement[value.raw=/\\/api\\/v1\\//]'].map(
          (selector) => ({
            selector,
            message: 'API paths belong to the HTTP layer (src/http/urls.ts); take a URL port instead.',
          }),
        ),
        ...["Identifier[name='publicUrl']", "Literal[value='publicUrl']"].map((selector) => ({
          selector,
          message: 'PUBLIC_URL is read by the HTTP layer only (src/http/urls.ts); take a URL port instead.',
        })),
      ],
    },
  },
  {
    // Lit calls listeners bound in templates (`@click=${this.method}`) with the element as `this`.
    files: ['src/web/**'],
    rules: { '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // Tests and benchmarks read untyped JSON responses on purpose.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The wire contract depends on nothing but TypeBox (and itself): server, OpenAPI and SDK share it.
    files: ['src/contract/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!@sinclair/typebox$|\\./)',
              message: 'src/contract imports only @sinclair/typebox and its own modules.',
            },
          ],
        },
      ],
    },
  },
  {
    // The SDK takes types from the contract, never schemas: TypeBox stays out of its bundles.
    files: ['src/client/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/contract/*', '!**/contract/statuses.ts', '@sinclair/typebox'],
              allowTypeImports: true,
              message: 'The SDK imports the contract’s schemas as types only (import type).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    // Plain JavaScript: no type information, so no TypeScript project is needed to parse it.
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: globals.node,
      parserOptions: { project: false, program: null, projectService: false },
    },
  },
);
