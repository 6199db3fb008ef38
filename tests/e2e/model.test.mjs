// The Model screen, driven for real: open a copy of the demo through the path field, edit a
// metadata value (a bad value first: inline error) and the chat template, undo/redo them with
// the keyboard, Save As — then gguf-py (tests/oracle/gguf_dump.py) reads the new file with the
// new values and byte-identical tensor data, and the recent files list shows it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const dumpScript = path.join(root, "tests/oracle/gguf_dump.py");

/** gguf-py's view of a file: metadata values and a SHA-256 per tensor's data. */
function dump(file) {
  return JSON.parse(execFileSync(python, [dumpScript, file], { encoding: "utf8", maxBuffer: 64 << 20 }));
}

const TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] ";

describe("Model screen (real app under Xvfb)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-model-e2e-"));
  const copy = path.join(dir, "copy.gguf");
  const out = path.join(dir, "saved.gguf");
  copyFileSync(demo, copy);
  const original = dump(copy);
  let app;
  let browser;

  const $ = (id) => browser.$(`[data-testid="${id}"]`);
  const row = (key) => browser.$(`[data-testid="meta-row"][data-key="${key}"]`);
  const rowValue = (key) =>
    browser.execute((k) => document.querySelector(`[data-testid="meta-row"][data-key="${k}"] [data-testid="meta-value"]`)?.textContent ?? null, key);
  const rowStatus = async (key) => (await row(key)).getAttribute("data-status");
  /** The open model's path, from the top bar (its title attribute holds the full path). */
  const openPath = async () => (await browser.$('[data-testid="model-title"] .model-path')).getAttribute("title");

  before(async () => {
    // Keep the user's recent list out of it: the app reads $HOTPATCH_RECENT (inherited).
    process.env.HOTPATCH_RECENT = path.join(dir, "recent.json");
    app = await startApp([]);
    browser = app.browser;
  });

  after(async () => {
    await app?.stop();
  });

  it("opens a copy of the demo through the Model screen's path field", async () => {
    await (await $("nav-model")).click();
    await (await $("screen-model")).waitForExist({ timeout: 20000 });
    await fill(browser, await $("model-open-path"), copy);
    await (await $("model-open-button")).click();
    await browser.waitUntil(async () => (await openPath()) === copy, {
      timeout: 20000,
      timeoutMsg: "the copy never became the open model",
    });
    await browser.waitUntil(async () => (await browser.$$('[data-testid="meta-row"]')).length > 0, { timeout: 10000 });
    const keys = await browser.execute(() => [...document.querySelectorAll('[data-testid="meta-row"]')].map((e) => e.getAttribute("data-key")));
    assert.deepEqual(keys, Object.keys(original.metadata), "every key gguf-py reads, in file order");
    assert.equal(await rowValue("llama.context_length"), String(original.metadata["llama.context_length"].value));
    assert.equal(await (await $("modified-indicator")).getText(), "Saved");
    assert.equal(await (await $("mode-chip")).getText(), "Staged");
  });

  it("says which tensors a running llama.cpp sees live on this machine's CPU", async () => {
    // The host's own CPU flags decide the verdict (llama.cpp repacks Q4_0 matrix weights on
    // AVX2 and Q2_K ones on AVX-512): read them here, as the app does, instead of assuming them.
    const flags = new Set((readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "").trim().split(/\s+/));
    await (await $("live-cpu")).waitForExist({ timeout: 10000 });
    const cpu = await (await $("live-cpu")).getText();
    assert.match(cpu, new RegExp(process.arch === "x64" ? "x86_64" : process.arch), cpu);
    assert.match(cpu, /--no-repack/, "says how to make an external server see every edit");
    const vis = (name) => browser.execute((n) => document.querySelector(`[data-testid="live-row"][data-name="${n}"]`)?.getAttribute("data-visibility") ?? null, name);
    await browser.waitUntil(async () => (await vis("output_norm.weight")) !== null, { timeout: 10000 });
    assert.equal(await vis("output_norm.weight"), "live", "a 1-D tensor is never copied");
    assert.equal(await vis("token_embd.weight"), "live", "the row-lookup embedding stays mapped");
    if (process.arch === "x64" && !flags.has("amx_int8")) {
      assert.equal(await vis("blk.0.ffn_gate.weight"), flags.has("avx2") ? "copied" : "live", "Q4_0 on this CPU");
      assert.equal(await vis("blk.1.attn_output.weight"), flags.has("avx512f") ? "copied" : "live", "Q2_K on this CPU");
      assert.equal(await vis("blk.0.attn_output.weight"), "live", "Q8_0 on x86-64 without AMX");
    }
  });

  it("shows an inline error naming the key and type for a bad value, then stages a good one", async () => {
    await (await (await row("llama.context_length")).$('[data-testid="meta-edit"]')).click();
    const input = await $("meta-input");
    await fill(browser, input, "abc");
    await (await $("meta-apply")).click();
    const err = await $("meta-error");
    await err.waitForDisplayed({ timeout: 5000 });
    assert.equal(await err.getText(), "llama.context_length (UINT32): 'abc' is not a whole number");
    assert.equal(await rowStatus("llama.context_length"), "unchanged", "nothing was staged");

    await fill(browser, input, "4096");
    await (await $("meta-apply")).click();
    await browser.waitUntil(async () => (await rowStatus("llama.context_length")) === "changed", { timeout: 5000 });
    assert.equal(await rowValue("llama.context_length"), "4096");
    assert.equal(await (await $("modified-indicator")).getText(), "● Modified");
  });

  it("edits the chat template in the multi-line editor", async () => {
    const area = await $("chat-template-input");
    await area.scrollIntoView();
    // Typed as a user would: the line break is the Enter key.
    const [first, second] = TEMPLATE.split("\n");
    await fill(browser, area, first);
    await browser.keys(["Enter"]);
    await area.addValue(second);
    assert.equal(await area.getValue(), TEMPLATE);
    await (await $("chat-template-stage")).click();
    await browser.waitUntil(async () => (await rowStatus("tokenizer.chat_template")) === "changed", { timeout: 5000 });
    const history = await browser.execute(() => [...document.querySelectorAll('[data-testid="history-row"]')].map((e) => e.textContent));
    assert.equal(history.length, 2, `two staged edits in the history: ${history}`);
    assert.match(history[1], /tokenizer\.chat_template/);
  });

  it("undoes and redoes with Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y, and the table follows", async () => {
    // Inside the template editor, Ctrl+Z is the text field's own undo, not the session's.
    await (await $("chat-template-input")).click();
    await browser.keys(["Control", "z"]);
    await browser.pause(500);
    assert.equal(await rowStatus("tokenizer.chat_template"), "changed", "Ctrl+Z in a text field left the session alone");
    // Leave the text field (clicking the screen's middle may land in another field, as the
    // layout grows): the session's Ctrl+Z applies outside text fields.
    await browser.execute(() => document.activeElement?.blur());
    await browser.keys(["Control", "z"]);
    await browser.waitUntil(async () => (await rowStatus("tokenizer.chat_template")) === "unchanged", {
      timeout: 5000,
      timeoutMsg: "Ctrl+Z did not undo the chat template edit",
    });
    assert.equal(await rowStatus("llama.context_length"), "changed", "one step only");
    await browser.keys(["Control", "z"]);
    await browser.waitUntil(async () => (await rowValue("llama.context_length")) === "512", { timeout: 5000 });
    assert.equal(await (await $("modified-indicator")).getText(), "Saved");
    await browser.keys(["Control", "Shift", "z"]);
    await browser.waitUntil(async () => (await rowValue("llama.context_length")) === "4096", { timeout: 5000 });
    await browser.keys(["Control", "y"]);
    await browser.waitUntil(async () => (await rowStatus("tokenizer.chat_template")) === "changed", {
      timeout: 5000,
      timeoutMsg: "Ctrl+Y did not redo the chat template edit",
    });
  });

  it("saves as a new file that gguf-py reads with the new values and identical tensors", async () => {
    await browser.saveScreenshot(path.join(artifacts, "model-screen-pending.png"));
    await (await $("save-as-button")).click();
    const field = await $("save-as-path");
    await fill(browser, field, out);
    await (await $("save-as-confirm")).click();
    await browser.waitUntil(async () => (await openPath()) === out, {
      timeout: 30000,
      timeoutMsg: "Save As did not switch to the new file",
    });
    await browser.waitUntil(async () => (await (await $("modified-indicator")).getText()) === "Saved", { timeout: 10000 });
    assert.ok(existsSync(out));

    const saved = dump(out);
    assert.equal(saved.metadata["llama.context_length"].value, 4096);
    assert.equal(saved.metadata["llama.context_length"].type, "UINT32");
    assert.equal(saved.metadata["tokenizer.chat_template"].value, TEMPLATE);
    for (const [k, v] of Object.entries(original.metadata)) {
      if (k === "llama.context_length" || k === "tokenizer.chat_template") continue;
      assert.deepEqual(saved.metadata[k], v, `metadata ${k} unchanged`);
    }
    assert.deepEqual(saved.tensors, original.tensors, "every tensor's type, shape and data bytes unchanged");
    assert.deepEqual(dump(copy), original, "the source copy is untouched");

    // The table now reads the saved file: nothing pending.
    await browser.waitUntil(async () => (await rowStatus("llama.context_length")) === "unchanged", { timeout: 5000 });
    assert.equal(await rowValue("llama.context_length"), "4096");
  });

  it("saves in place with Ctrl+S: the open file gets the new value, tensors unchanged", async () => {
    await (await (await row("general.name")).$('[data-testid="meta-edit"]')).click();
    const input = await $("meta-input");
    await fill(browser, input, "Renamed by e2e");
    await (await $("meta-apply")).click();
    await browser.waitUntil(async () => (await rowStatus("general.name")) === "changed", { timeout: 5000 });
    await (await $("screen-model")).click();
    await browser.keys(["Control", "s"]);
    await browser.waitUntil(async () => (await (await $("modified-indicator")).getText()) === "Saved", {
      timeout: 20000,
      timeoutMsg: "Ctrl+S did not save",
    });
    const saved = dump(out);
    assert.equal(saved.metadata["general.name"].value, "Renamed by e2e");
    assert.equal(saved.metadata["llama.context_length"].value, 4096);
    assert.deepEqual(saved.tensors, original.tensors);
    assert.equal(await openPath(), out, "still the same file");
  });

  it("lists the saved file first in the recent files, the copy after it", async () => {
    await browser.waitUntil(async () => (await browser.$$('[data-testid="recent-item"]')).length >= 2, { timeout: 5000 });
    const paths = await browser.execute(() => [...document.querySelectorAll('[data-testid="recent-item"]')].map((e) => e.getAttribute("data-path")));
    assert.equal(paths[0], out);
    assert.ok(paths.includes(copy), `the opened copy is listed: ${paths}`);
    await browser.saveScreenshot(path.join(artifacts, "model-screen.png"));
  });

  it("asks before opening another model over unsaved edits", async () => {
    await (await (await row("general.name")).$('[data-testid="meta-edit"]')).click();
    const input = await $("meta-input");
    await fill(browser, input, "unsaved");
    await (await $("meta-apply")).click();
    await browser.waitUntil(async () => (await rowStatus("general.name")) === "changed", { timeout: 5000 });
    const field = await $("model-open-path");
    await fill(browser, field, copy);
    await (await $("model-open-button")).click();
    await (await $("discard-confirm")).waitForDisplayed({ timeout: 5000 });
    assert.equal(await openPath(), out, "nothing opened before the answer");
    await (await $("discard-open")).click();
    await browser.waitUntil(async () => (await openPath()) === copy, { timeout: 20000, timeoutMsg: "the copy did not open" });
    await browser.waitUntil(async () => (await (await $("modified-indicator")).getText()) === "Saved", { timeout: 5000 });
    assert.equal(dump(out).metadata["general.name"].value, "Renamed by e2e", "the discarded edit never reached the file");
  });

  it("the top bar's Open asks too, and Keep editing keeps the model and its edit", async () => {
    await (await (await row("general.name")).$('[data-testid="meta-edit"]')).click();
    const input = await $("meta-input");
    await fill(browser, input, "unsaved in the top bar");
    await (await $("meta-apply")).click();
    await browser.waitUntil(async () => (await rowStatus("general.name")) === "changed", { timeout: 5000 });
    const field = await $("open-path");
    await fill(browser, field, out);
    await (await $("open-button")).click();
    const prompt = await $("discard-confirm");
    await prompt.waitForDisplayed({ timeout: 5000, timeoutMsg: "no discard prompt from the top bar" });
    assert.equal(await openPath(), copy, "nothing opened before the answer");
    await (await prompt.$("button=Keep editing")).click();
    await browser.waitUntil(async () => !(await (await $("discard-confirm")).isExisting()), { timeout: 5000 });
    assert.equal(await openPath(), copy, "Keep editing keeps the open model");
    assert.equal(await rowStatus("general.name"), "changed", "and its unsaved edit");
  });
});
