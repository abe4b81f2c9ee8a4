/**
 * Imported by `app.tsx` before `ink`, which decides at load time whether it runs in CI (`CI` or
 * `CONTINUOUS_INTEGRATION` set) and then draws nothing but the last frame at exit. The live view
 * only starts when stdout is a terminal, so someone is watching it: an operator whose shell
 * happens to export `CI` (build hosts, CI runners used as jump boxes) must still see it live.
 */
delete process.env['CI'];
delete process.env['CONTINUOUS_INTEGRATION'];
