// Peer benchmark: node-llama-cpp's prebuilt llama.cpp (CPU, mmap, default repacking) on a model,
// at a given thread count: prompt evaluation and greedy generation, tokens per second (median of
// RUNS). Usage: node bench.mjs MODEL THREADS PROMPT_TEXT GEN_TOKENS [RUNS]
// Prints {"prompt_tokens", "prompt_tps", "gen_tokens", "gen_tps", "load_s"}.
import { getLlama } from "node-llama-cpp";

const [model, threads = "2", text = "hello world", genN = "64", runsArg = "5"] = process.argv.slice(2);
const runs = Number(runsArg);
const median = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const t0 = performance.now();
const m = await llama.loadModel({ modelPath: model, useMmap: true, gpuLayers: 0 });
const loadS = (performance.now() - t0) / 1000;
const ctx = await m.createContext({ contextSize: 1024, batchSize: 512, threads: Number(threads) });
const seq = ctx.getSequence();
const tokens = m.tokenize(text);
const promptTps = [];
const genTps = [];
let genTokens = 0;
for (let r = 0; r < runs; r++) {
  await seq.clearHistory();
  let t = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(tokens);
  promptTps.push(tokens.length / ((performance.now() - t) / 1000));
  await seq.clearHistory();
  const first = tokens.slice(0, 4);
  let n = 0;
  let tFirst = 0;
  for await (const _ of seq.evaluate(first, { temperature: 0 })) {
    n += 1;
    if (n === 1) tFirst = performance.now();
    if (n >= Number(genN)) break;
  }
  // Generation speed: tokens after the first (the first includes the prompt).
  genTps.push((n - 1) / ((performance.now() - tFirst) / 1000));
  genTokens = n;
}
console.log(JSON.stringify({ prompt_tokens: tokens.length, prompt_tps: median(promptTps), gen_tokens: genTokens, gen_tps: median(genTps), load_s: loadS }));
await ctx.dispose();
await m.dispose();
await llama.dispose();
