// Test-only preload (`node --import` for a spawned `mediary serve`): an `rm` from node:fs/promises
// of a path containing one of the lines of the file $MEDIARY_TEST_STALL_RM_FILE never completes,
// while that file exists. The deletion crash test uses it to hold a delete between its database
// change and its store deletes, and SIGKILL the process there. Nothing in src/ knows about it.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const file = process.env.MEDIARY_TEST_STALL_RM_FILE;
if (file) {
  const rm = fs.promises.rm;
  fs.promises.rm = (target, ...rest) => {
    let markers = [];
    try {
      markers = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      // no file: nothing stalls
    }
    if (markers.some((m) => String(target).includes(m))) return new Promise(() => undefined);
    return rm(target, ...rest);
  };
  syncBuiltinESMExports();
}
