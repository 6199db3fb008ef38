// Holds a model loaded in real llama.cpp (node-llama-cpp, CPU, mmap) and generates on request,
// so that tests can change the model file while it is loaded and see what the runtime sees.
// Usage: node hold.mjs MODEL.gguf [PROMPT] [N_TOKENS]
// Prints {"ready":true} once loaded; then each stdin line "gen" (or {"prompt":..,"n":..})
// prints one line {"tokens":[...],"text":"..."} with greedy tokens from a fresh sequence.
// The model is never reloaded; stdin EOF or "quit" exits.
import { getLlama } from "node-llama-cpp";
import readline from "node:readline";

const [model, defPrompt = "hello world", defN = "16"] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const m = await llama.loadModel({ modelPath: model, useMmap: true, gpuLayers: 0 });
// One thread: llama.cpp's worker threads spin on barriers, which on a busy 2-core machine made
// each token take seconds; a single thread is fast and deterministic for this tiny model.
const ctx = await m.createContext({ contextSize: 256, threads: 1 });
const seq = ctx.getSequence();

async function gen(prompt, n) {
  await seq.clearHistory();
  const tokens = [];
  for await (const t of seq.evaluate(m.tokenize(prompt), { temperature: 0 })) {
    tokens.push(t);
    if (tokens.length >= n) break;
  }
  return { tokens, text: m.detokenize(tokens) };
}

console.log(JSON.stringify({ ready: true }));
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const l = line.trim();
  if (l === "" ) continue;
  if (l === "quit") break;
  try {
    const req = l === "gen" ? {} : JSON.parse(l);
    const out = await gen(req.prompt ?? defPrompt, Number(req.n ?? defN));
    console.log(JSON.stringify(out));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e) }));
  }
}
await ctx.dispose();
await m.dispose();
await llama.dispose();
process.exit(0);
