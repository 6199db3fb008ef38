// An OpenAI-compatible HTTP server over real llama.cpp inference (node-llama-cpp, CPU, mmap):
// the upstream the proxy tests run against.
//
// Usage: node openai-server.mjs MODEL.gguf [PORT]   (PORT 0 or absent: a free port)
// Prints one line {"port": N} on stdout once listening.
//
// Endpoints:
//   POST /v1/chat/completions   OpenAI chat (messages formatted as "role: content" lines), stream or not
//   POST /v1/completions        OpenAI completions (prompt), stream or not
//   POST /completion            llama.cpp server's native endpoint (prompt, n_predict), stream or not
//   GET  /v1/models             one model
//   GET  /__last_request        {method, path, headers, body} of the last generation request received
// Generation is greedy unless `temperature` > 0 (then `seed` is honoured); `stop` (string or array)
// becomes custom stop triggers; max_tokens / n_predict bound the length (default 16).
// Every generation response also carries the header `x-received-body` (the request body as
// received, base64) so a client can check what arrived.
import http from "node:http";
import { getLlama, LlamaCompletion } from "node-llama-cpp";

const [modelPath, portArg = "0"] = process.argv.slice(2);
if (!modelPath) {
  console.error("usage: node openai-server.mjs MODEL.gguf [PORT]");
  process.exit(2);
}
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true, gpuLayers: 0 });
// One thread: llama.cpp's spinning thread pool crawls when the cores are shared (seconds per token).
const context = await model.createContext({ contextSize: 512, threads: 1 });
const sequence = context.getSequence();
const completion = new LlamaCompletion({ contextSequence: sequence });
const MODEL_ID = "demo";

let lastRequest = null;
let queue = Promise.resolve();
// One sequence: generations run one after the other.
function serialized(fn) {
  const run = queue.then(fn, fn);
  queue = run.catch(() => {});
  return run;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(res, status, value, extra = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...extra });
  res.end(body);
}

function stopsOf(body) {
  const s = body.stop;
  if (s == null) return [];
  return (Array.isArray(s) ? s : [s]).filter((x) => typeof x === "string" && x.length > 0);
}

async function generate(prompt, body, maxTokens, onTextChunk, signal) {
  return serialized(async () => {
    await sequence.clearHistory();
    const temperature = typeof body.temperature === "number" ? body.temperature : 0;
    const stops = stopsOf(body);
    const result = await completion.generateCompletionWithMeta(prompt, {
      maxTokens,
      temperature,
      seed: typeof body.seed === "number" ? body.seed : undefined,
      customStopTriggers: stops.length ? stops : undefined,
      onTextChunk,
      signal,
      stopOnAbortSignal: true,
    });
    const reason = result.metadata.stopReason;
    return { text: result.response, finish: reason === "maxTokens" ? "length" : reason === "abort" ? "abort" : "stop" };
  });
}

function chatPrompt(messages) {
  if (!Array.isArray(messages)) throw new Error("messages must be an array");
  const text = (c) => (typeof c === "string" ? c : Array.isArray(c) ? c.map((p) => p.text ?? "").join("") : "");
  return messages.map((m) => `${m.role}: ${text(m.content)}\n`).join("") + "assistant:";
}

let nextId = 1;
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, "http://x");
    if (req.method === "GET" && url.pathname === "/__last_request") return sendJson(res, 200, lastRequest);
    if (req.method === "GET" && url.pathname === "/v1/models")
      return sendJson(res, 200, { object: "list", data: [{ id: MODEL_ID, object: "model", owned_by: "hotpatch-tests" }] });
    const kind = { "/v1/chat/completions": "chat", "/v1/completions": "completions", "/completion": "llama" }[url.pathname];
    if (req.method !== "POST" || !kind) return sendJson(res, 404, { error: { message: `no route ${req.method} ${url.pathname}` } });
    const raw = await readBody(req);
    let body;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
      return sendJson(res, 400, { error: { message: `bad JSON: ${e.message}` } });
    }
    lastRequest = { method: req.method, path: req.url, headers: req.headers, body };
    const received = { "x-received-body": raw.toString("base64") };
    const prompt = kind === "chat" ? chatPrompt(body.messages) : String(body.prompt ?? "");
    const maxTokens = Number(kind === "llama" ? body.n_predict ?? 16 : body.max_tokens ?? 16);
    const id = `cmpl-${nextId++}`;
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    res.on("close", () => abort.abort());

    if (!body.stream) {
      const { text, finish } = await generate(prompt, body, maxTokens, undefined, abort.signal);
      if (kind === "chat")
        return sendJson(res, 200, { id, object: "chat.completion", created, model: MODEL_ID,
          choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish }] }, received);
      if (kind === "completions")
        return sendJson(res, 200, { id, object: "text_completion", created, model: MODEL_ID,
          choices: [{ index: 0, text, finish_reason: finish }] }, received);
      return sendJson(res, 200, { content: text, stop: true, stop_type: finish === "length" ? "limit" : "eos", model: MODEL_ID }, received);
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...received });
    const send = (v) => res.write(`data: ${JSON.stringify(v)}\n\n`);
    const chunk = (text, finish) => {
      if (kind === "chat")
        return { id, object: "chat.completion.chunk", created, model: MODEL_ID,
          choices: [{ index: 0, delta: finish ? {} : { content: text }, finish_reason: finish }] };
      if (kind === "completions")
        return { id, object: "text_completion", created, model: MODEL_ID, choices: [{ index: 0, text, finish_reason: finish }] };
      return { content: text, stop: finish != null, ...(finish ? { stop_type: finish === "length" ? "limit" : "eos" } : {}) };
    };
    if (kind === "chat") send({ id, object: "chat.completion.chunk", created, model: MODEL_ID, choices: [{ index: 0, delta: { role: "assistant" }, finish_reason: null }] });
    const { finish } = await generate(prompt, body, maxTokens, (t) => send(chunk(t, null)), abort.signal);
    send(chunk("", finish));
    if (kind !== "llama") res.write("data: [DONE]\n\n");
    res.end();
  } catch (e) {
    if (!res.headersSent) sendJson(res, 500, { error: { message: String(e?.message ?? e) } });
    else res.end();
  }
});

server.listen(Number(portArg), "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
const stop = async () => {
  server.close();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
