// Greedy generation with real llama.cpp (node-llama-cpp, CPU, mmap) — a runtime for tests.
// Usage: node generate.mjs MODEL.gguf [PROMPT] [N_TOKENS]   prints {"tokens":[...],"text":"..."}
import { printGreedy } from "./greedy.mjs";

const [model, prompt = "hello world", n = "16"] = process.argv.slice(2);
await printGreedy(model, prompt, n);
