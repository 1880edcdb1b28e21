/**
 * `mediary --help` and `mediary <command> [<subcommand>] --help`: one table of every command with
 * its options and an example, so the overview and the per-command help cannot disagree.
 * Plain text only: loading it must not load the client or the server.
 */

interface CommandHelp {
  /** `mediary <usage>` */
  usage: string;
  summary: string;
  options?: [flag: string, meaning: string][];
  example: string;
}

const CONNECTION: [string, string][] = [
  ['--server URL', 'the Mediary API (default: $MEDIARY_SERVER)'],
  ['--key KEY', 'a device API key or a user JWT (default: $MEDIARY_KEY)'],
  [
    '--key-file PATH',
    'read the key from this file, e.g. one `mediary claim` wrote (default: $MEDIARY_KEY_FILE)',
  ],
];

const COMMANDS: Record<string, CommandHelp> = {
  serve: {
    usage: 'serve',
    summary:
      'run the API (embedded Postgres + local disk unless configured) and, unless WORKER_ENABLED=false, the processing worker; SIGTERM/SIGINT stop it cleanly',
    example: 'PORT=8080 mediary serve',
  },
  worker: {
    usage: 'worker',
    summary: 'run a processing worker only (beside a running API; start more to scale out)',
    example: 'DATABASE_URL=postgres://… mediary worker',
  },
  migrate: {
    usage: 'migrate',
    summary: 'apply database migrations and exit',
    example: 'mediary migrate',
  },
  openapi: {
    usage: 'openapi',
    summary: 'print the OpenAPI document (JSON)',
    example: 'mediary openapi > openapi.json',
  },
  claim: {
    usage: 'claim --server URL --name NAME --key-file PATH',
    summary:
      'a device claims itself: prints a short code, waits until its owner enters it in Mediary (web app: Admin → Claim a device), then saves its key (mode 0600)',
    options: [
      ['--server URL', 'the Mediary API (default: $MEDIARY_SERVER)'],
      ['--name NAME', 'how the device is listed (its owner can rename it)'],
      ['--key-file PATH', 'where the key is saved (default: $MEDIARY_KEY_FILE)'],
    ],
    example: 'mediary claim --server https://media.example.com --name porch-cam --key-file /etc/mediary/key',
  },
  'devices create': {
    usage: 'devices create --name NAME [--owner USER_ID] [--json]',
    summary: 'register a device; prints its id and API key once (works while the service runs)',
    options: [
      ['--name NAME', 'a label for the device'],
      ['--owner USER_ID', 'the user who owns its media'],
      ['--json', 'print {id, name, …, apiKey} as JSON'],
    ],
    example: 'mediary devices create --name cam-1 --owner alice --json',
  },
  'devices list': {
    usage: 'devices list [--json]',
    summary: 'list the active devices',
    options: [['--json', 'print JSON']],
    example: 'mediary devices list --json',
  },
  'devices revoke': {
    usage: 'devices revoke DEVICE_ID',
    summary: 'revoke a device: its key stops working at once',
    example: 'mediary devices revoke 0b6c…',
  },
  'users token': {
    usage: 'users token --user USER_ID [--ttl SECONDS] [--issuer ISS] [--audience AUD]',
    summary: 'mint a user JWT with JWT_SECRET (for testing and scripts)',
    options: [
      ['--user USER_ID', 'the token’s subject'],
      ['--ttl SECONDS', 'lifetime (default 3600)'],
      ['--issuer ISS', 'the `iss` claim (default JWT_ISSUER)'],
      ['--audience AUD', 'the `aud` claim (default JWT_AUDIENCE)'],
    ],
    example: 'JWT_SECRET=… mediary users token --user alice',
  },
  audit: {
    usage:
      'audit [--action A] [--resource ID] [--owner USER_ID] [--since T] [--until T] [--limit N] [--json]',
    summary: 'read the audit log (read-only; newest first): who did what to which resource, when, from where',
    options: [
      ['--action A', 'one action, e.g. media.deleted, device.revoked, media.downloaded'],
      ['--resource ID', 'a media, device, post or circle id'],
      ['--owner USER_ID', 'only rows about this user’s resources'],
      ['--since T, --until T', 'an ISO 8601 time range'],
      ['--limit N', 'rows (default 50, at most 10000)'],
      ['--json', 'one JSON object per line'],
    ],
    example: 'mediary audit --resource 5b0c… --action media.deleted',
  },
  'storage setup': {
    usage: 'storage setup [--to local|s3|gcs] [--tag-existing]',
    summary:
      'prepare a store (default: STORAGE_BACKEND): create the bucket if missing, apply CORS for S3_CORS_ORIGINS (GCS: GCS_CORS_ORIGINS; uniform access, public access prevention), S3: the archive lifecycle rule for S3_ARCHIVE_AFTER_DAYS (other rules kept), check it is writable',
    options: [
      ['--to local|s3|gcs', 'the store to prepare (default: STORAGE_BACKEND)'],
      [
        '--tag-existing',
        'S3 with S3_ARCHIVE_AFTER_DAYS: also tag the originals of existing media for the rule',
      ],
    ],
    example: 'S3_BUCKET=media S3_ENDPOINT=http://127.0.0.1:7480 mediary storage setup --to s3',
  },
  'storage sweep': {
    usage: 'storage sweep',
    summary: 'abort expired uploads, remove objects without a row (once)',
    example: 'mediary storage sweep',
  },
  'storage migrate': {
    usage: 'storage migrate --from local --to s3|gcs [--dry-run] [--recheck]',
    summary:
      'copy every object of each media (original, variants, HLS), verify size + sha256, then repoint its row',
    options: [
      ['--from STORE --to STORE', 'source and target stores: local, s3 or gcs'],
      ['--dry-run', 'show what would be copied; change nothing'],
      ['--recheck', 'also fill in objects missing for media already on the target'],
    ],
    example: 'mediary storage migrate --from local --to s3 --dry-run',
  },
  upload: {
    usage:
      'upload <files…> [--wait] [--concurrency N] [--camera ID] [--reason TEXT] [--new] [--state-dir DIR] [--json]',
    summary:
      'upload files (parts in parallel, retries, resumable: run the same command again after an interruption). The same file uploaded again by the same key returns its existing media',
    options: [
      ...CONNECTION,
      ['--wait', 'wait until processing ends (READY or FAILED)'],
      ['--concurrency N', 'parts in flight at once (default 4)'],
      ['--camera ID', 'devices: the camera id (default "default")'],
      ['--reason TEXT', 'a note stored with the media'],
      ['--new', 'create a new media even if this file was uploaded before'],
      ['--state-dir DIR', 'where resume state is kept (default: $MEDIARY_STATE_DIR or the user state dir)'],
      ['--json', 'print one JSON row per file'],
    ],
    example: 'mediary upload --server http://localhost:8080 --key "$KEY" photo.jpg clip.mp4 --wait',
  },
  'media list': {
    usage: 'media list [--device ID] [--camera ID] [--status S] [--limit N] [--cursor C] [--json]',
    summary:
      'newest first: a device key lists its own media; a user token lists theirs, or one of their devices with --device',
    options: [
      ...CONNECTION,
      ['--device ID', 'a device (default: $MEDIARY_DEVICE; a device key: itself)'],
      ['--camera ID', 'only this camera'],
      ['--status S', 'PENDING, UPLOADED, PROCESSING, READY or FAILED'],
      ['--limit N', 'page size (default 20)'],
      ['--cursor C', 'the next page (printed after a full page)'],
      ['--json', 'print the page as JSON'],
    ],
    example: 'mediary media list --status READY --limit 5',
  },
  'media get': {
    usage: 'media get MEDIA_ID',
    summary: 'print the media record (JSON)',
    options: CONNECTION,
    example: 'mediary media get 3f2a…',
  },
  'media download': {
    usage: 'media download MEDIA_ID [-o FILE]',
    summary: 'the original bytes, to FILE or stdout',
    options: [...CONNECTION, ['-o, --output FILE', 'write to FILE instead of stdout']],
    example: 'mediary media download 3f2a… -o photo.jpg',
  },
  agent: {
    usage:
      'agent (--capture "COMMAND" [--interval 10s] [--ext jpg] | --watch DIR) [--camera ID] [--spool DIR] [--max-spool-bytes 1GiB] [--max-spool-files 10000] [--once]',
    summary:
      'camera agent: capture or watch, spool, upload (needs MEDIA_ENABLED=true; see docs/RUNBOOKS/CAMERA.md)',
    options: [
      ...CONNECTION,
      ['--capture "COMMAND"', 'run COMMAND every --interval; it writes the capture to $MEDIARY_OUTPUT'],
      ['--interval 10s', 'time between captures (500ms, 10s, 2m, 1h)'],
      ['--ext jpg', 'extension of the captured files'],
      ['--watch DIR', 'upload files that appear in DIR instead'],
      ['--camera ID', 'the camera id sent with each capture'],
      ['--spool DIR', 'where captures wait for upload (default: the user state dir)'],
      ['--max-spool-bytes SIZE', 'spool limit in bytes (default 1GiB); the oldest go first'],
      ['--max-spool-files N', 'spool limit in files (default 10000)'],
      ['--concurrency N', 'uploads at once (default 2)'],
      ['--reason TEXT', 'a note stored with each media'],
      ['--once', 'one capture (or one pass over DIR), upload, exit'],
    ],
    example:
      'mediary agent --capture "libcamera-still -o \\"$MEDIARY_OUTPUT\\"" --interval 30s --camera front',
  },
};

const GROUPS: [string, string[]][] = [
  ['Service', ['serve', 'worker', 'migrate', 'openapi']],
  [
    'Admin (work while the service runs on the embedded default)',
    ['devices create', 'devices list', 'devices revoke', 'users token', 'audit'],
  ],
  ['Storage', ['storage setup', 'storage sweep', 'storage migrate']],
  [
    'Client (--server URL --key KEY, or MEDIARY_SERVER / MEDIARY_KEY)',
    ['upload', 'media list', 'media get', 'media download', 'agent', 'claim'],
  ],
];

function describe(h: CommandHelp): string {
  const lines = [`  ${h.usage}`, `      ${h.summary}`];
  for (const [flag, meaning] of h.options ?? []) lines.push(`      ${flag.padEnd(24)} ${meaning}`);
  lines.push(`      e.g. ${h.example}`);
  return lines.join('\n');
}

/** The overview: every command with its options. */
export function usage(): string {
  const sections = GROUPS.map(
    ([title, names]) => `${title}\n${names.map((n) => describe(COMMANDS[n]!)).join('\n')}`,
  );
  return `Usage: mediary <command> [options]     (mediary <command> --help: one command)

${sections.join('\n\n')}

Configuration comes from the environment; see README.md.`;
}

/** Whether `args` ask for help (before a `--` terminator). */
export function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/**
 * Help for `mediary <command> [<subcommand>]`: that command, or every subcommand of a group;
 * undefined for an unknown command.
 */
export function commandHelp(command: string, args: string[]): string | undefined {
  const sub = args.find((a) => !a.startsWith('-'));
  const exact = sub !== undefined ? COMMANDS[`${command} ${sub}`] : undefined;
  const entries = exact
    ? [exact]
    : ((COMMANDS[command] ? [COMMANDS[command]] : undefined) ??
      Object.entries(COMMANDS)
        .filter(([n]) => n.startsWith(`${command} `))
        .map(([, h]) => h));
  if (entries.length === 0) return undefined;
  return entries
    .map((h) => {
      const opts = (h.options ?? []).map(([flag, meaning]) => `  ${flag.padEnd(24)} ${meaning}`);
      return [
        `Usage: mediary ${h.usage}`,
        '',
        h.summary,
        ...(opts.length > 0 ? ['', 'Options:', ...opts] : []),
        '',
        'Example:',
        `  ${h.example}`,
      ].join('\n');
    })
    .join('\n\n');
}

/** Every command and subcommand (`media list`, …) that has help. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);
