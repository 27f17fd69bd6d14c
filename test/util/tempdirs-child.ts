/**
 * Child process of tempdirs.test.ts (not a test): creates the folder argv[2] with a file in it,
 * registers it with src/util/tempdirs.ts (then unregisters it again when argv[3] is "unregister";
 * with "app", installs its own SIGTERM handler that exits 0), prints "ready" and waits to be stopped.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { registerTemp, unregisterTemp } from "../../src/util/tempdirs.ts";

const dir = process.argv[2]!;
mkdirSync(dir);
writeFileSync(join(dir, "work.bin"), Buffer.alloc(1 << 16));
registerTemp(dir);
if (process.argv[3] === "unregister") unregisterTemp(dir);
if (process.argv[3] === "app") {
  // an application's own handler: it decides to exit (0) after a moment of cleanup of its own
  process.on("SIGTERM", () => setTimeout(() => process.exit(0), 50));
}
setInterval(() => {}, 1000);
process.stdout.write("ready\n");
