// `node --import ./module-log.mjs …`: appends the URL of every module the process loads (ES
// modules through a resolve hook, CommonJS through Module._load's filename) to the file named by
// MODULE_LOG, one per line. Used to check which dependencies a command loads.
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';

const out = process.env.MODULE_LOG;
if (out) {
  register(
    'data:text/javascript,' +
      encodeURIComponent(`
        import { appendFileSync } from 'node:fs';
        export async function resolve(specifier, context, next) {
          const r = await next(specifier, context);
          appendFileSync(${JSON.stringify(out)}, r.url + '\\n');
          return r;
        }`),
  );
  const load = Module._load;
  Module._load = function (request, parent, isMain) {
    try {
      appendFileSync(out, Module._resolveFilename(request, parent, isMain) + '\n');
    } catch {
      // unresolvable: the real load reports it
    }
    return load.apply(this, [request, parent, isMain]);
  };
}
