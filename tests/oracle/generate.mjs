// Greedy generation with real llama.cpp (node-llama-cpp, CPU, mmap) — a runtime for tests.
// Usage: node generate.mjs MODEL.gguf [PROMPT] [N_TOKENS]   prints {"tokens":[...],"text":"..."}
import { getLlama } from "node-llama-cpp";

const [model, prompt = "hello world", n = "16"] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const m = await llama.loadModel({ modelPath: model, useMmap: true, gpuLayers: 0 });
const ctx = await m.createContext({ contextSize: 256 });
const seq = ctx.getSequence();
const tokens = [];
const input = m.tokenize(prompt);
for await (const t of seq.evaluate(input, { temperature: 0 })) {
  tokens.push(t);
  if (tokens.length >= Number(n)) break;
}
console.log(JSON.stringify({ tokens, text: m.detokenize(tokens) }));
await ctx.dispose();
await m.dispose();
await llama.dispose();
