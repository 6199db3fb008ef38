// The Surgery screen in the real window, on a copy of the demo model (every ggml type): a bad
// type and a layer that does not exist are refused in the form, naming what is wrong; drop a
// layer and re-encode the attention queries as Q8_0, preview (block_count 4 → 3, the dropped
// layer's tensors removed), write the new file as a job, and gguf-py reads it: 3 layers,
// renumbered, the queries Q8_0 and every untouched tensor byte-identical to its source. The
// recipe saved as a configuration holds both operations; the result opens as model B on Diff.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const demo = path.join(root, "demo/hotpatch-demo.gguf");
const dumpScript = path.join(root, "tests/oracle/gguf_dump.py");

function dump(file) {
  return JSON.parse(execFileSync(python, [dumpScript, file], { encoding: "utf8", maxBuffer: 64 << 20 }));
}

describe("Surgery screen (real app under Xvfb)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-surgery-e2e-"));
  const model = path.join(dir, "demo.gguf");
  const out = path.join(dir, "demo-3-layers.gguf");
  const recipe = path.join(dir, "recipe.json");
  copyFileSync(demo, model);
  const source = dump(model);
  let app;
  let browser;

  const $ = (id) => browser.$(`[data-testid="${id}"]`);
  const text = (id) => browser.execute((t) => document.querySelector(`[data-testid="${t}"]`)?.textContent ?? null, id);

  before(async () => {
    process.env.HOTPATCH_RECENT = path.join(dir, "recent.json");
    app = await startApp([model]);
    browser = app.browser;
    await browser.waitUntil(async () => (await (await browser.$('[data-testid="model-title"] .model-path')).getAttribute("title")) === model, {
      timeout: 20000,
    });
  });

  after(async () => {
    await app?.stop();
  });

  it("refuses a type ggml does not have and a layer the model does not have", async () => {
    await (await $("nav-surgery")).click();
    await (await $("screen-surgery")).waitForExist({ timeout: 10000 });
    await (await $("surgery-kind-convert")).click();
    await fill(browser, await $("surgery-types"), "blk.*.attn_q.weight=Q9_9");
    await (await $("surgery-add")).click();
    await browser.waitUntil(async () => (await text("surgery-form-error")) !== null, { timeout: 10000, timeoutMsg: "no error for Q9_9" });
    assert.match(await text("surgery-form-error"), /Q9_9/);
    assert.match(await text("surgery-form-error"), /types\[0\]\.type/, "names the field");
    assert.equal((await browser.$$('[data-testid="surgery-op"]')).length, 0, "a refused operation is not added");

    await (await $("surgery-kind-layers")).click();
    await (await $("surgery-layers-drop")).click();
    await fill(browser, await $("surgery-layer-list"), "9");
    await (await $("surgery-add")).click();
    await browser.waitUntil(async () => /layer 9 does not exist/.test((await text("surgery-form-error")) ?? ""), {
      timeout: 10000,
      timeoutMsg: "no error for layer 9",
    });
    assert.match(await text("surgery-form-error"), /has 4 layers/);
  });

  it("previews a dropped layer and a type change", async () => {
    await fill(browser, await $("surgery-layer-list"), "2");
    await (await $("surgery-add")).click();
    await (await $("surgery-kind-convert")).click();
    await fill(browser, await $("surgery-types"), "blk.*.attn_q.weight=Q8_0");
    await (await $("surgery-add")).click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="surgery-op"]')).length === 2, { timeout: 5000 });
    const meta = await $("surgery-metadata");
    await meta.waitForExist({ timeout: 15000, timeoutMsg: "no preview" });
    const after = await browser.execute(
      () => document.querySelector('[data-testid="surgery-meta-row"][data-key="llama.block_count"] [data-testid="surgery-meta-after"]')?.textContent ?? null,
    );
    assert.equal(after, "UINT32 3");
    const actions = await browser.execute(() =>
      Object.fromEntries([...document.querySelectorAll('[data-testid="surgery-tensor-row"]')].map((r) => [r.getAttribute("data-name"), r.textContent])),
    );
    // Layer 3 becomes layer 2; the queries of every layer are re-encoded.
    assert.ok(Object.keys(actions).some((n) => n.startsWith("blk.2.")), `renumbered: ${Object.keys(actions)}`);
    assert.match(actions["blk.0.attn_q.weight"] ?? "", /Q4_K→Q8_0/, `blk.0.attn_q: ${actions["blk.0.attn_q.weight"]}`);
    assert.equal(await text("surgery-error"), null, "no error left");
    await browser.saveScreenshot(path.join(artifacts, "surgery-preview.png"));
  });

  it("writes the new file, which gguf-py reads as the preview said", async () => {
    await fill(browser, await $("surgery-out"), out);
    await (await $("surgery-write")).click();
    await (await $("surgery-written")).waitForExist({ timeout: 60000, timeoutMsg: "the write never finished" });
    assert.ok(existsSync(out));
    const got = dump(out);
    assert.equal(got.metadata["llama.block_count"].value, 3);
    const names = Object.keys(got.tensors);
    assert.ok(!names.some((n) => n.startsWith("blk.3.")), "no layer 3 left");
    for (const n of names.filter((n) => n.startsWith("blk.2."))) {
      const from = n.replace(/^blk\.2\./, "blk.3.");
      if (n.endsWith("attn_q.weight")) continue;
      assert.equal(got.tensors[n].sha256, source.tensors[from].sha256, `${n} is the old ${from}, byte for byte`);
    }
    for (let l = 0; l < 3; l++) assert.equal(got.tensors[`blk.${l}.attn_q.weight`].type, "Q8_0");
    assert.equal(got.tensors["token_embd.weight"].sha256, source.tensors["token_embd.weight"].sha256);
    assert.deepEqual(dump(model), source, "the open model is not changed");
  });

  it("saves the recipe as a configuration and opens the result as model B", async () => {
    await fill(browser, await $("surgery-record-path"), recipe);
    await (await $("surgery-record")).click();
    await browser.waitUntil(async () => existsSync(recipe), { timeout: 10000, timeoutMsg: "no configuration written" });
    const config = JSON.parse(readFileSync(recipe, "utf8"));
    assert.equal(config.version, 3);
    assert.deepEqual(
      config.surgery.map((o) => o.op),
      ["layers", "convert"],
    );
    assert.deepEqual(config.surgery[0].slices, [{ layers: "0,1,3" }]);
    await (await $("surgery-compare")).click();
    await (await $("screen-diff")).waitForExist({ timeout: 10000 });
    await browser.waitUntil(async () => (await browser.execute(() => document.body.textContent ?? "")).includes("demo-3-layers.gguf"), {
      timeout: 10000,
      timeoutMsg: "the Diff screen does not show the new file as model B",
    });
  });
});
