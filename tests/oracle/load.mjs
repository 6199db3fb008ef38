// Does real llama.cpp (node-llama-cpp, CPU, mmap) load these files? The oracle for what
// llama.cpp refuses. Usage: node load.mjs FILE...   prints one JSON line per file:
// {"file", "loaded": true} | {"file", "loaded": false, "error": "..."} |
// {"file", "loaded": false, "aborted": true, "error": "<last stderr line>"}.
// Each file is loaded in its own child process, so a file that makes llama.cpp abort (a
// failed GGML_ASSERT, an uncaught C++ exception) is reported instead of ending the run.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
if (args[0] === "--one") {
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  try {
    const m = await llama.loadModel({ modelPath: args[1], useMmap: true, gpuLayers: 0 });
    await m.dispose();
    console.log(JSON.stringify({ file: args[1], loaded: true }));
  } catch (e) {
    console.log(JSON.stringify({ file: args[1], loaded: false, error: String(e?.message ?? e) }));
  }
  await llama.dispose();
} else {
  const self = fileURLToPath(import.meta.url);
  for (const file of args) {
    const r = spawnSync(process.execPath, [self, "--one", file], { encoding: "utf8" });
    const line = (r.stdout || "").trim().split("\n").filter((l) => l.startsWith("{")).pop();
    if (r.status === 0 && line) {
      console.log(line);
    } else {
      const err = (r.stderr || "").trim().split("\n").filter(Boolean);
      const why = err.filter((l) => !l.startsWith("[node-llama-cpp]")).pop() ?? err.pop() ?? "";
      console.log(JSON.stringify({ file, loaded: false, aborted: true, error: why.slice(0, 300) }));
    }
  }
}
