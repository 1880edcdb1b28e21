// A node:test reporter that writes one line per skipped or todo test. scripts/test.mjs runs it
// beside the spec reporter and fails the run when it wrote anything: CI never passes with a test
// that did not run.
export default async function* skipped(source) {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { skip, todo, name, file } = event.data;
    if (skip !== undefined || todo !== undefined) {
      const why = typeof skip === 'string' ? skip : typeof todo === 'string' ? todo : '';
      yield `${file ?? '?'}: ${name}${why ? ` (${why})` : ''}\n`;
    }
  }
}
