// Greedy generation with real llama.cpp (node-llama-cpp, CPU, mmap), shared by the oracle
// scripts: loads `model`, evaluates `prompt` at temperature 0 for `n` tokens in a 256-token
// context (extra context options, e.g. a LoRA adapter, merged in) and prints
// {"tokens":[...],"text":"..."}.
import { getLlama } from "node-llama-cpp";

export async function printGreedy(model, prompt, n, contextOptions = {}) {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  const m = await llama.loadModel({ modelPath: model, useMmap: true, gpuLayers: 0 });
  const ctx = await m.createContext({ contextSize: 256, ...contextOptions });
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
}
