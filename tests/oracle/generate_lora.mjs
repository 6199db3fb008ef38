// Greedy generation with real llama.cpp applying a LoRA adapter at run time (its own path:
// W·x + scale·alpha/rank·B·(A·x)) — the reference for adapters merged into the weights.
// Usage: node generate_lora.mjs MODEL.gguf ADAPTER.gguf SCALE [PROMPT] [N_TOKENS]
//   prints {"tokens":[...],"text":"..."}
import { printGreedy } from "./greedy.mjs";

const [model, adapter, scale = "1", prompt = "hello world", n = "16"] = process.argv.slice(2);
await printGreedy(model, prompt, n, {
  lora: { adapters: [{ filePath: adapter, scale: Number(scale) }] },
});
