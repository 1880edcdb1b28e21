/**
 * Which ffmpeg/ffprobe and which HEIC decoder the worker uses, chosen once at start-up:
 * the configured command (FFMPEG_PATH, FFPROBE_PATH, HEIF_CONVERT_PATH, default: looked up on
 * PATH) when it runs, else the copy shipped in npm packages (`@ffmpeg-installer/ffmpeg`,
 * `@ffprobe-installer/ffprobe`: static binaries inside the package tarballs; `libheif-js`:
 * libheif compiled to WebAssembly, run in a worker thread). So `npm ci && npm start` processes
 * videos and HEIC photos on a machine without Debian's ffmpeg or libheif-examples, and a machine
 * that has them keeps using them (faster, and patched by the system's updates). A command set
 * explicitly (not the default name) is used as is: when it does not run there is no fallback.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import type { ProcessingConfig } from '../config.ts';
import type { HeifDecoder } from '../processing/ports.ts';
import { HeifConverter } from './imaging/heif.ts';
import { WasmHeifDecoder } from './imaging/heif-wasm.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

/** Where a tool comes from: set in the configuration, found on PATH, or shipped in an npm package. */
export type ToolSource = 'config' | 'system' | 'npm';

export interface ResolvedTool {
  path: string;
  source: ToolSource;
}

export interface ProcessingTools {
  /** Undefined when neither the configured/system binary nor an npm one runs. */
  ffmpeg: ResolvedTool | undefined;
  ffprobe: ResolvedTool | undefined;
  heif: { decoder: HeifDecoder; kind: 'heif-convert' | 'libheif-wasm'; source: ToolSource } | undefined;
}

/** Defaults of FFMPEG_PATH, FFPROBE_PATH and HEIF_CONVERT_PATH (src/config.ts): looked up on PATH. */
const DEFAULT_COMMANDS = new Set(['ffmpeg', 'ffprobe', 'heif-convert']);

/** Whether `command -version` runs and exits 0 (a missing or broken binary does not). */
async function runs(command: string): Promise<boolean> {
  try {
    await run(command, ['-version'], { timeout: 15_000 });
    return true;
  } catch {
    return false;
  }
}

/** The path of the binary an npm installer package ships for this platform, if installed. */
export function npmBinary(
  pkg: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe',
): string | undefined {
  try {
    // The package throws (a string) for a platform it has no build for.
    return (require(pkg) as { path: string }).path;
  } catch {
    return undefined;
  }
}

const sourceOf = (command: string): ToolSource => (DEFAULT_COMMANDS.has(command) ? 'system' : 'config');

async function resolveBinary(
  configured: string,
  pkg: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe',
): Promise<ResolvedTool | undefined> {
  if (await runs(configured)) return { path: configured, source: sourceOf(configured) };
  // A path the operator set is theirs to fix: no silent fallback (the start-up log warns).
  if (sourceOf(configured) === 'config') return undefined;
  const shipped = npmBinary(pkg);
  if (shipped !== undefined && (await runs(shipped))) return { path: shipped, source: 'npm' };
  return undefined;
}

/** Chooses each tool: configured command → command on PATH → npm-shipped fallback. */
export async function resolveProcessingTools(config: ProcessingConfig): Promise<ProcessingTools> {
  const [ffmpeg, ffprobe] = await Promise.all([
    resolveBinary(config.video.ffmpegPath, '@ffmpeg-installer/ffmpeg'),
    resolveBinary(config.video.ffprobePath, '@ffprobe-installer/ffprobe'),
  ]);
  const timeoutMs = config.jobTimeoutSeconds * 1000;
  const converter = new HeifConverter(config.heifConvert, timeoutMs);
  let heif: ProcessingTools['heif'];
  if (await converter.isAvailable()) {
    heif = { decoder: converter, kind: 'heif-convert', source: sourceOf(config.heifConvert) };
  } else if (sourceOf(config.heifConvert) === 'system') {
    const wasm = new WasmHeifDecoder(timeoutMs);
    if (await wasm.isAvailable()) heif = { decoder: wasm, kind: 'libheif-wasm', source: 'npm' };
  }
  return { ffmpeg, ffprobe, heif };
}

/** The configuration with the chosen ffmpeg/ffprobe paths (unchanged for a tool not found). */
export function withTools(config: ProcessingConfig, tools: ProcessingTools): ProcessingConfig {
  return {
    ...config,
    video: {
      ...config.video,
      ffmpegPath: tools.ffmpeg?.path ?? config.video.ffmpegPath,
      ffprobePath: tools.ffprobe?.path ?? config.video.ffprobePath,
    },
  };
}

/** One start-up line saying which tool each job uses, and a warning for each one missing. */
export function logTools(logger: Logger, tools: ProcessingTools): void {
  logger.info(
    {
      ffmpeg: tools.ffmpeg ?? null,
      ffprobe: tools.ffprobe ?? null,
      heif: tools.heif ? { decoder: tools.heif.kind, source: tools.heif.source } : null,
    },
    `processing tools: video jobs use ${describe(tools.ffmpeg)} ffmpeg, image jobs decode HEIC with ${
      tools.heif ? `${tools.heif.kind} (${tools.heif.source})` : 'nothing'
    }`,
  );
  if (!tools.ffmpeg || !tools.ffprobe) {
    logger.warn(
      'ffmpeg/ffprobe not found (neither configured, on PATH nor shipped for this platform): video uploads will fail with "ffmpeg is not installed" (apt-get install ffmpeg)',
    );
  }
  if (!tools.heif) {
    logger.warn(
      'no HEIC decoder (heif-convert or libheif-js): HEIC/HEIF uploads will fail (install libheif-examples)',
    );
  }
}

const describe = (tool: ResolvedTool | undefined) => (tool ? `the ${tool.source}` : 'no');
