/**
 * `mediary claim`: a device claims itself. It prints a short code, waits until its owner types the
 * code into Mediary (`POST /devices/claim`, the web app's Admin page), and stores the key it then
 * receives in a file only its user can read — so no key is ever typed or copied by hand.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { claimDevice } from '../client/claim.ts';
import { UsageError } from './common.ts';

export async function claimCommand(args: string[], env = process.env): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      server: { type: 'string' },
      name: { type: 'string' },
      'key-file': { type: 'string' },
    },
  });
  const server = values.server ?? env.MEDIARY_SERVER;
  if (!server) throw new UsageError('no server: pass --server URL or set MEDIARY_SERVER');
  if (!values.name) throw new UsageError('claim needs --name NAME (how the device is listed)');
  const keyFile = values['key-file'] ?? env.MEDIARY_KEY_FILE;
  if (!keyFile)
    throw new UsageError('claim needs --key-file PATH (or MEDIARY_KEY_FILE): where the key is kept');
  const device = await claimDevice({
    server,
    name: values.name,
    onCode: ({ userCode, expiresAt }) => {
      const minutes = Math.max(1, Math.round((expiresAt.getTime() - Date.now()) / 60_000));
      console.log(`Claim code: ${userCode}`);
      console.log(
        `Enter it in Mediary (web app: Admin → Claim a device) within ${minutes} minutes. Waiting…`,
      );
    },
  });
  await mkdir(path.dirname(path.resolve(keyFile)), { recursive: true });
  await writeFile(keyFile, `${device.apiKey}\n`, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  console.log(`Claimed by ${device.ownerUserId} as "${device.name}" (device ${device.deviceId}).`);
  console.log(`Key saved to ${keyFile}; run the agent with --key-file ${keyFile}.`);
  return 0;
}
