// Greedy generation with real llama.cpp applying a LoRA adapter at run time (its own path:
// W·x + scale·alpha/rank·B·(A·x)) — the reference for adapters merged into the weights.
// Usage: node generate_lora.mjs MODEL.gguf ADAPTER.gguf SCALE [PROMPT] [N_TOKENS]
//   prints {"tokens":[...],"text":"..."}
import { getLlama } from "node-llama-cpp";

const [model, adapter, scale = "1", prompt = "hello world", n = "16"] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const m = await llama.loadModel({ modelPath: model, useMmap: true, gpuLayers: 0 });
const ctx = await m.createContext({
  contextSize: 256,
  lora: { adapters: [{ filePath: adapter, scale: Number(scale) }] },
});
const seq = ctx.getSequence();
const tokens = [];
for await (const t of seq.evaluate(m.tokenize(prompt), { temperature: 0 })) {
  tokens.push(t);
  if (tokens.length >= Number(n)) break;
}
console.log(JSON.stringify({ tokens, text: m.detokenize(tokens) }));
await ctx.dispose();
await m.dispose();
await llama.dispose();
