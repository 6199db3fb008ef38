// A split model (`m-0000k-of-00004.gguf`, written as llama.cpp's gguf-split does) in the real
// app: opening its third file opens the whole model, every tensor of every file is listed,
// a weight of a quantized tensor in the LAST file is edited in the value grid and saved into
// that file (gguf-py reads the stored value from it; the other files are unchanged), and the
// Bytes screen shows and searches one file at a time.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const TENSOR = "blk.3.ffn_down.weight"; // Q4_K, in the 4th file

/** gguf-py reading one file: the dequantized values of a tensor, and the tensor count. */
function gguf(file, name) {
  const script = `
import sys, json, gguf
r = gguf.GGUFReader(sys.argv[1])
t = next((t for t in r.tensors if t.name == sys.argv[2]), None)
v = None if t is None else [float(x) for x in gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)[:64]]
print(json.dumps({"tensors": len(r.tensors), "values": v}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file, name], { encoding: "utf8", maxBuffer: 64 << 20 }));
}

const testid = (id) => `[data-testid="${id}"]`;

describe("Split model: open, edit and save across files, bytes per file (real app)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-split-"));
  const file = (k) => path.join(dir, `m-${String(k).padStart(5, "0")}-of-00004.gguf`);
  let app;
  let browser;
  let before4;
  let originals;

  before(async () => {
    execFileSync(python, [path.join(root, "scripts/make_demo_model.py"), path.join(dir, "m.gguf"), "--split-max-tensors", "12"]);
    originals = [1, 2, 3, 4].map((k) => readFileSync(file(k)));
    before4 = gguf(file(4), TENSOR);
    process.env.HOTPATCH_RECENT = path.join(dir, "recent.json");
    app = await startApp([file(3)]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, {
      timeout: 20000,
      timeoutMsg: "the tensor list never appeared",
    });
  });

  after(async () => {
    await app?.stop();
  });

  it("opening the third file opens all four: every tensor is listed", async () => {
    await browser.$(testid("nav-model")).click();
    await browser.$(testid("screen-model")).waitForExist({ timeout: 10000 });
    await browser.waitUntil(async () => (await browser.$$(testid("shard-row"))).length === 4, {
      timeout: 10000,
      timeoutMsg: "the Model screen never listed 4 files",
    });
    assert.match(await browser.$(testid("overview-size")).getText(), /in 4 files/);
    await browser.saveScreenshot(path.join(artifacts, "split-model.png"));
    const title = await browser.$('[data-testid="model-title"] .model-path').getAttribute("title");
    assert.equal(title, file(1), "the model is named by its first file");
    assert.equal(await browser.$(testid("model-files")).getText(), "4 files");
    const total = [1, 2, 3, 4].map((k) => gguf(file(k), "").tensors).reduce((a, b) => a + b, 0);
    await browser.$(testid("nav-tensors")).click();
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, { timeout: 10000 });
    // The tree may fold blocks; the summary counts every tensor.
    const status = await browser.$("footer").getText();
    assert.match(status, new RegExp(`\\b${total} tensors`), `status bar: ${status}`);
  });

  it("edits a Q4_K weight of the last file and saves it into that file", async () => {
    await browser.$(`[data-testid="tensor-item"][data-name="${TENSOR}"]`).click();
    await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === TENSOR, { timeout: 10000 });
    assert.match(await browser.$(testid("detail-shard")).getText(), /in file 4 of 4/);
    await browser.waitUntil(async () => (await browser.$$(testid("grid-cell"))).length > 0, { timeout: 10000 });
    // Element (0, 3), in view: the grid shows gguf-py's value of the 4th file.
    const sel = '[data-testid="grid-cell"][data-row="0"][data-col="3"]';
    const cell = await browser.$(sel);
    const shown = async () => Number(await browser.execute((q) => document.querySelector(q)?.textContent ?? "NaN", sel));
    const want = Math.fround(before4.values[3]);
    // The grid fetches the new tensor's window after the selection: wait for it.
    await browser.waitUntil(async () => Math.fround(await shown()) === want, { timeout: 10000 }).catch(() => {});
    assert.equal(Math.fround(await shown()), want);
    await cell.click();
    await fill(browser, await browser.$(testid("edit-value")), "0.75");
    await browser.$(testid("edit-preview")).waitForDisplayed({ timeout: 5000 });
    await browser.$(testid("edit-apply")).click();
    await browser.$(testid("edit-result")).waitForDisplayed({ timeout: 5000 });
    const stored = Number(await browser.$(testid("edit-stored-final")).getText());
    await browser.$(testid("save-button")).click();
    await browser.waitUntil(async () => !readFileSync(file(4)).equals(originals[3]), {
      timeout: 20000,
      timeoutMsg: "the 4th file never changed after Save",
    });
    // The first changed bytes on disk do not mean the save is over: wait for the app to say so
    // (a fixed pause was a guess about this machine's speed).
    await browser.waitUntil(async () => (await browser.$(testid("modified-indicator")).getAttribute("data-modified")) === "false", {
      timeout: 20000,
      timeoutMsg: "the app never reported the save finished",
    });
    const after4 = gguf(file(4), TENSOR);
    assert.equal(Math.fround(after4.values[3]), Math.fround(stored), "gguf-py reads the stored value from file 4");
    for (const k of [1, 2, 3]) assert.ok(readFileSync(file(k)).equals(originals[k - 1]), `file ${k} unchanged`);
    await browser.saveScreenshot(path.join(artifacts, "split-tensors.png"));
  });

  it("the Bytes screen shows one file at a time and searches the chosen one", async () => {
    await browser.$(testid("nav-bytes")).click();
    await browser.$(testid("bytes-file")).waitForExist({ timeout: 10000 });
    const outline = async () => browser.execute(() => document.querySelector('[data-testid="screen-bytes"]')?.textContent ?? "");
    await browser.waitUntil(async () => (await outline()).includes("token_embd.weight"), {
      timeout: 10000,
      timeoutMsg: "file 1's outline (token_embd.weight) never showed",
    });
    await browser.$(testid("bytes-file")).selectByAttribute("value", "3");
    await browser.waitUntil(async () => (await outline()).includes("output.weight") && !(await outline()).includes("token_embd.weight"), {
      timeout: 10000,
      timeoutMsg: "choosing file 4 did not show its structure",
    });
    // A text search runs over the chosen file: its tensor names are in its header only.
    await browser.$(testid("search-text")).click();
    await fill(browser, await browser.$(testid("search-input")), "output.weight");
    await browser.$(testid("search-run")).click();
    await browser.waitUntil(async () => (await browser.$(testid("search-count")).getText()) === "1 match", {
      timeout: 15000,
      timeoutMsg: "file 4 should hold the name output.weight once",
    });
    const at = Number(await browser.$(testid("match")).getAttribute("data-offset"));
    const idx = readFileSync(file(4)).indexOf(Buffer.from("output.weight"));
    assert.equal(at, idx, "the match offset is the one in file 4");
    await browser.saveScreenshot(path.join(artifacts, "split-bytes.png"));
  });
});
