// Editing one weight in the real app: open a COPY of the demo model, pick a quantized tensor, click a
// weight in the heatmap, type a value, check the preview, apply, save — then the file's values
// (read by the `hotpatch tensor` CLI) and bytes match what the app reported: the stored value
// at the element, the side effects on its block, nothing else changed. Also: bad input shows
// an inline error, a locked tensor refuses the edit, the heatmap zooms and the value grid shows
// exact values. Heatmap round-trip timings are written to tests/artifacts (measured, not asserted).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const TENSOR = "blk.0.attn_q.weight"; // Q4_K, 256 × 256

/** The `hotpatch tensor` CLI: values of elements [start, start + count). */
function cli(file, name, start, count) {
  const out = execFileSync(
    "cargo",
    ["run", "-q", "-p", "hotpatch-cli", "--", "tensor", file, name, "--start", String(start), "--count", String(count), "--json"],
    { cwd: root, encoding: "utf8", env: process.env },
  );
  return JSON.parse(out).values.map(Number);
}

/** gguf-py: the tensor's absolute data offset and its type's (block size, type size). */
function layout(file, name) {
  const script = `
import sys, json, gguf
r = gguf.GGUFReader(sys.argv[1])
t = next(t for t in r.tensors if t.name == sys.argv[2])
bs, ts = gguf.GGML_QUANT_SIZES[t.tensor_type]
print(json.dumps({"offset": int(t.data_offset), "type": t.tensor_type.name, "block": bs, "typeSize": ts, "dims": [int(d) for d in t.shape]}))`;
  return JSON.parse(execFileSync(python, ["-c", script, file, name], { encoding: "utf8" }));
}

const testid = (id) => `[data-testid="${id}"]`;

describe("Tensors screen: click a weight, set a value, save (real app)", () => {
  let app;
  let browser;
  let dir;
  let copy;
  let original;
  /** The edit made by the heatmap test, checked on disk by the save test. */
  let edited = null;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-tensors-"));
    copy = path.join(dir, "model.gguf");
    copyFileSync(demo, copy);
    original = readFileSync(copy);
    app = await startApp([copy]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, {
      timeout: 20000,
      timeoutMsg: "the tensor list never appeared",
    });
    const nav = await browser.$(testid("nav-tensors"));
    if (await nav.isExisting()) await nav.click();
  });

  after(async () => {
    await app?.stop();
  });

  async function tileLoaded(id = "heatmap") {
    await browser.waitUntil(
      async () => {
        const el = await browser.$(testid(id));
        return (await el.getAttribute("data-tile")) !== "" && (await el.getAttribute("data-loading")) === "0";
      },
      { timeout: 15000, timeoutMsg: `the ${id} never painted a tile` },
    );
  }

  it("shows the quantized tensor's heatmap and exact values", async () => {
    await browser.$(`[data-testid="tensor-item"][data-name="${TENSOR}"]`).click();
    await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === TENSOR, { timeout: 10000 });
    assert.equal(await browser.$(testid("detail-type")).getText(), "Q4_K");
    await tileLoaded();
    // The canvas is bigger than 256 px in neither axis? Then one cell per element; else fewer.
    const tile = await browser.$(testid("heatmap")).getAttribute("data-tile");
    const [tw, th] = tile.split("x").map(Number);
    assert.ok(tw >= 1 && tw <= 256 && th >= 1 && th <= 256, `tile ${tile} fits the 256×256 matrix`);
    // The grid's first cells are the exact values the CLI reads for row 0.
    await browser.waitUntil(async () => (await browser.$$(testid("grid-cell"))).length > 0, { timeout: 10000 });
    const cells = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="grid-cell"]')]
        .filter((e) => e.getAttribute("data-row") === "0" && Number(e.getAttribute("data-col")) < 4)
        .map((e) => [Number(e.getAttribute("data-col")), e.textContent]),
    );
    const want = cli(copy, TENSOR, 0, 4);
    assert.ok(cells.length === 4, `4 cells of row 0 rendered (got ${cells.length})`);
    for (const [c, text] of cells) assert.equal(Math.fround(Number(text)), Math.fround(want[c]), `grid [0, ${c}]`);
  });

  it("zooms around the cursor with the wheel and resets", async () => {
    const canvas = await browser.$(testid("heatmap-canvas"));
    const before = await browser.$(testid("heatmap-zoom")).getText();
    const timings = [];
    for (let k = 0; k < 3; k++) {
      const t0 = Date.now();
      await browser.execute((sel) => {
        const c = document.querySelector(sel);
        const r = c.getBoundingClientRect();
        c.dispatchEvent(new WheelEvent("wheel", { deltaY: -200, clientX: r.left + r.width / 3, clientY: r.top + r.height / 3, bubbles: true, cancelable: true }));
      }, testid("heatmap-canvas"));
      await tileLoaded();
      timings.push(Date.now() - t0);
    }
    const zoomed = await browser.$(testid("heatmap-zoom")).getText();
    assert.notEqual(zoomed, before, "the zoom level changed");
    assert.ok(parseFloat(zoomed) > parseFloat(before), `${zoomed} > ${before}`);
    await browser.$(testid("heatmap-reset")).click();
    await tileLoaded();
    assert.equal(await browser.$(testid("heatmap-zoom")).getText(), before, "Fit shows the whole matrix again");
    writeFileSync(path.join(artifacts, "tensors-zoom-timings.json"), JSON.stringify({ tensor: TENSOR, wheelStepsMs: timings }, null, 2));
    assert.ok(await canvas.isDisplayed());
  });

  it("refuses a value that is not a number, next to the field", async () => {
    // Select element (0, 0) from the grid, then type garbage.
    await browser.$('[data-testid="grid-cell"][data-row="0"][data-col="0"]').click();
    const input = await browser.$(testid("edit-value"));
    await fill(browser, input, "abc");
    const err = await browser.$(testid("edit-error"));
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /abc.*not a number/);
    assert.equal(await browser.$(testid("edit-apply")).isEnabled(), false, "Apply is disabled");
    await input.clearValue();
  });

  it("colours by a robust range by default (outliers saturate), max |x| and symlog on request", async () => {
    const legend = () =>
      browser.execute((sel) => {
        const e = document.querySelector(sel);
        return e ? { scale: Number(e.getAttribute("data-scale")), range: e.getAttribute("data-range"), curve: e.getAttribute("data-curve"), text: e.textContent } : null;
      }, testid("heatmap-legend"));
    const stat = (l) => browser.execute((x) => Number(document.querySelector(`[data-testid="tensor-stats"] [data-stat="${x}"]`)?.getAttribute("data-raw")), l);
    await browser.waitUntil(async () => (await legend())?.scale > 0, { timeout: 10000, timeoutMsg: "no legend scale" });
    const robust = await legend();
    assert.equal(robust.range, "robust");
    assert.match(robust.text, /p99\.5/, "the legend says which range");
    await browser.waitUntil(async () => Number.isFinite(await stat("max")), { timeout: 20000 });
    const absMax = Math.max(Math.abs(await stat("min")), Math.abs(await stat("max")));
    assert.ok(robust.scale > 0 && robust.scale <= absMax * (1 + 1e-6), `robust ${robust.scale} within max |x| ${absMax}`);
    await browser.$(testid("heatmap-range-max")).click();
    await browser.waitUntil(async () => (await legend()).range === "max", { timeout: 5000 });
    assert.ok(Math.abs((await legend()).scale - absMax) <= 1e-6 * absMax, `max range ${(await legend()).scale} = the tensor's max |x| ${absMax}`);
    await browser.$(testid("heatmap-symlog")).click();
    await browser.waitUntil(async () => (await legend()).curve === "symlog", { timeout: 5000 });
    assert.match((await legend()).text, /symlog/);
    await browser.$(testid("heatmap-symlog")).click();
    await browser.$(testid("heatmap-range-robust")).click();
    await browser.waitUntil(async () => (await legend()).range === "robust", { timeout: 5000 });
  });

  it("click a weight in the heatmap, preview, apply: the edit is staged", async () => {
    const info = layout(copy, TENSOR);
    const [cols, rows] = info.dims;
    // Click a point of the canvas (fit view: the whole matrix fills it).
    const rect = await browser.execute((sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return { w: r.width, h: r.height };
    }, testid("heatmap-canvas"));
    const fx = 0.63;
    const fy = 0.41;
    const x = Math.round(rect.w * fx);
    const y = Math.round(rect.h * fy);
    await browser
      .action("pointer")
      .move({ origin: await browser.$(testid("heatmap-canvas")), x: Math.round(x - rect.w / 2), y: Math.round(y - rect.h / 2) })
      .down()
      .up()
      .perform();
    const row = Math.floor((y / rect.h) * rows);
    const col = Math.floor((x / rect.w) * cols);
    const index = row * cols + col;
    await browser.waitUntil(async () => (await browser.$(testid("edit-element")).getText()).startsWith(`[${row}, ${col}]`), {
      timeout: 5000,
      timeoutMsg: `the edit panel did not select [${row}, ${col}]`,
    });
    // The current value shown is the CLI's.
    const [before] = cli(copy, TENSOR, index, 1);
    await browser.waitUntil(async () => (await browser.$(testid("edit-current")).getText()) !== "…", { timeout: 5000 });
    assert.equal(Math.fround(Number(await browser.$(testid("edit-current")).getText())), Math.fround(before));

    // Type a value well outside the block's grid: the preview shows the rounding and the block.
    await fill(browser, await browser.$(testid("edit-value")), "0.75");
    const preview = await browser.$(testid("edit-preview"));
    await preview.waitForDisplayed({ timeout: 5000 });
    const willStore = await browser.$(testid("edit-stored")).getText();
    const allEffects = async () => {
      const more = await browser.$(testid("edit-show-all"));
      if ((await more.isExisting()) && (await more.getText()).startsWith("Show all")) await more.click();
      return browser.execute(() =>
        [...document.querySelectorAll('[data-testid="edit-side-effects"] tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
      );
    };
    const previewEffects = await allEffects();
    await browser.saveScreenshot(path.join(artifacts, "tensors-preview.png"));

    // Nothing is written by a preview.
    assert.deepEqual(cli(copy, TENSOR, index, 1), [before], "preview changed nothing");

    await browser.$(testid("edit-apply")).click();
    const result = await browser.$(testid("edit-result"));
    await result.waitForDisplayed({ timeout: 5000 });
    const stored = await browser.$(testid("edit-stored-final")).getText();
    assert.equal(stored, willStore, "the preview was what got stored");
    const effects = await allEffects();
    assert.deepEqual(effects, previewEffects, "the preview listed the side effects that happened");

    // The edit is staged: the grid shows the stored value, the file is unchanged until Save.
    assert.ok(readFileSync(copy).equals(original), "staged: nothing written before Save");
    edited = { index, stored, effects, cols, info };
  });

  it("save writes exactly the edited block: the file matches the CLI", async (t) => {
    assert.ok(edited, "the previous test made an edit");
    const { index, stored, effects, cols, info } = edited;
    // Save: the save button (the Model helper's edit controls) or its shortcut Ctrl+S.
    const save = await browser.$(testid("save-button"));
    if (!(await save.isExisting())) {
      t.skip("no save control in this build yet");
      return;
    }
    await save.click();
    await browser.waitUntil(async () => !readFileSync(copy).equals(original), {
      timeout: 20000,
      timeoutMsg: "the file on disk never changed after Save",
    });
    // The first changed bytes on disk do not mean the save is over: wait for the app to say so
    // (a fixed pause was a guess about this machine's speed).
    await browser.waitUntil(async () => (await browser.$(testid("modified-indicator")).getAttribute("data-modified")) === "false", {
      timeout: 20000,
      timeoutMsg: "the app never reported the save finished",
    });
    await browser.saveScreenshot(path.join(artifacts, "tensors.png"));

    // The CLI reads the saved element as the stored value, and the whole block as reported.
    const bs = info.block;
    const first = Math.floor(index / bs) * bs;
    const blockBefore = cli(demo, TENSOR, first, bs);
    const blockAfter = cli(copy, TENSOR, first, bs);
    assert.equal(Math.fround(blockAfter[index - first]), Math.fround(Number(stored)), "stored value on disk");
    const moved = new Map(effects.map(([rc, b, a]) => {
      const [r, c] = rc.replace(/[[\]\s]/g, "").split(",").map(Number);
      return [r * cols + c, { before: Number(b), after: Number(a) }];
    }));
    for (let k = 0; k < bs; k++) {
      const i = first + k;
      if (i === index) continue;
      const m = moved.get(i);
      if (m) {
        assert.equal(Math.fround(blockBefore[k]), Math.fround(m.before), `side effect ${i}: before`);
        assert.equal(Math.fround(blockAfter[k]), Math.fround(m.after), `side effect ${i}: after`);
      } else {
        assert.equal(Math.fround(blockAfter[k]), Math.fround(blockBefore[k]), `element ${i} of the block is unchanged`);
      }
    }
    // Bytes: only the element's block differs from the original file.
    const now = readFileSync(copy);
    assert.equal(now.length, original.length);
    const b0 = info.offset + (first / bs) * info.typeSize;
    const b1 = b0 + info.typeSize;
    let outside = 0;
    for (let k = 0; k < now.length; k++) if ((k < b0 || k >= b1) && now[k] !== original[k]) outside++;
    assert.equal(outside, 0, "no byte outside the edited block changed");
    assert.ok(!now.subarray(b0, b1).equals(original.subarray(b0, b1)), "the block's bytes changed");
  });

  it("a locked tensor refuses the edit with the backend's message", async () => {
    await browser.$(testid("lock-toggle")).click();
    await browser.waitUntil(async () => (await browser.$(testid("lock-toggle")).getText()).includes("Locked"), { timeout: 5000 });
    // The selected element: the grid scrolled it to its middle, clear of the headers.
    await browser.$('[data-testid="grid-cell"].selected').click();
    await fill(browser, await browser.$(testid("edit-value")), "0.5");
    const err = await browser.$(testid("edit-error"));
    await err.waitForDisplayed({ timeout: 5000 });
    assert.match(await err.getText(), /protect|lock/i);
    await browser.$(testid("lock-toggle")).click();
    await browser.waitUntil(async () => !(await browser.$(testid("lock-toggle")).getText()).includes("Locked"), { timeout: 5000 });
  });

  it("a transform runs as a job (progress in the status bar): values scale exactly, undo restores", async () => {
    const name = "blk.1.attn_norm.weight"; // F32: ×2 is exact, so the expected bytes are computable
    const info = layout(copy, name);
    const n = info.dims.reduce((a, b) => a * b, 1);
    const readF32 = () =>
      browser.executeAsync(
        (offset, len, done) => {
          window.__TAURI_INTERNALS__
            .invoke("read_bytes", { shard: 0, offset, len })
            .then((b) => done(Array.from(new Float32Array(b))))
            .catch((e) => done({ err: e }));
        },
        info.offset,
        n * 4,
      );
    const before = await readF32();
    assert.ok(Array.isArray(before), `read_bytes failed: ${JSON.stringify(before)}`);
    await browser.$(`${testid("tensor-item")}[data-name="${name}"]`).click();
    await browser.$(testid("tf-op")).selectByAttribute("value", "scale");
    await browser.$(testid("tf-kind")).selectByAttribute("value", "all");
    await fill(browser, await browser.$(testid("tf-value")), "2");
    await browser.$(testid("tf-apply")).click();
    const report = await browser.$(testid("tf-report"));
    await report.waitForDisplayed({ timeout: 20000, timeoutMsg: "no transform report" });
    assert.match(await report.getText(), new RegExp(`on ${n.toLocaleString("en-US")} elements`));
    const [status, count] = await browser.execute(() => {
      const el = document.querySelector('[data-testid="status-message"]');
      return [el?.textContent ?? "", Number(el?.getAttribute("data-progress-count") ?? 0)];
    });
    assert.match(status, new RegExp(`transforming ${name}`), "the job's progress line reached the status bar");
    assert.ok(count >= 1, `progress streamed over the job's channel (${count} messages)`);
    const after = await readF32();
    assert.deepEqual(after, before.map((x) => Math.fround(x * 2)), "every element doubled exactly (staged)");
    await browser.$(testid("undo-button")).click();
    await browser.waitUntil(async () => JSON.stringify(await readF32()) === JSON.stringify(before), {
      timeout: 5000,
      timeoutMsg: "undo did not restore the values",
    });
  });
});

// The whole round trip of a 4096×4096 heatmap in the app (IPC, Rust LOD, binary transfer,
// parse), for F16 and Q4_K: first paint and each wheel zoom step. Measured, not asserted:
// written to tests/artifacts/heatmap-roundtrip.json (docs/PERFORMANCE.md quotes it).
describe("Heatmap round trip at 4096×4096 (timing, not asserted)", () => {
  let app;
  let browser;
  let model;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-heatmap-"));
    model = path.join(dir, "heatmap.gguf");
    execFileSync(python, [path.join(root, "scripts/make_heatmap_model.py"), model], { stdio: "inherit" });
    app = await startApp([model]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length === 2, { timeout: 30000 });
    const nav = await browser.$(testid("nav-tensors"));
    if (await nav.isExisting()) await nav.click();
  });

  after(async () => {
    await app?.stop();
  });

  it("paints and zooms both tensors", async () => {
    const results = {};
    const settled = async () => {
      await browser.waitUntil(
        async () => {
          const el = await browser.$(testid("heatmap"));
          return (await el.getAttribute("data-tile")) !== "" && (await el.getAttribute("data-loading")) === "0";
        },
        { timeout: 30000, interval: 5 },
      );
      return Number(await browser.$(testid("heatmap")).getAttribute("data-last-ms"));
    };
    for (const name of ["bench.f16.weight", "bench.q4_k.weight"]) {
      const t0 = Date.now();
      await browser.$(`[data-testid="tensor-item"][data-name="${name}"]`).click();
      await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === name, { timeout: 10000 });
      const firstInApp = await settled();
      const first = { wallMs: Date.now() - t0, fetchMs: firstInApp, tile: await browser.$(testid("heatmap")).getAttribute("data-tile") };
      const steps = [];
      for (let k = 0; k < 8; k++) {
        const s0 = Date.now();
        await browser.execute((sel) => {
          const c = document.querySelector(sel);
          const r = c.getBoundingClientRect();
          c.dispatchEvent(new WheelEvent("wheel", { deltaY: -200, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true, cancelable: true }));
        }, testid("heatmap-canvas"));
        await browser.pause(1);
        const inApp = await settled();
        steps.push({
          zoom: await browser.$(testid("heatmap-zoom")).getText(),
          wallMs: Date.now() - s0,
          fetchMs: inApp,
          tile: await browser.$(testid("heatmap")).getAttribute("data-tile"),
        });
      }
      results[name] = { first, steps };
    }
    writeFileSync(path.join(artifacts, "heatmap-roundtrip.json"), JSON.stringify(results, null, 2));
    await browser.saveScreenshot(path.join(artifacts, "tensors-4096.png"));
    assert.ok(results["bench.q4_k.weight"].steps.length === 8);
  });

  it("statistics of a 4096×4096 tensor run as a job: Cancel leaves 'canceled — Recompute', Recompute gives numpy's numbers", async () => {
    const name = "bench.f16.weight";
    // numpy over gguf-py's values (f16 → f32): the expected statistics.
    const script = `
import sys, json, gguf, numpy as np
r = gguf.GGUFReader(sys.argv[1])
t = next(t for t in r.tensors if t.name == sys.argv[2])
v = np.asarray(t.data).astype(np.float32).ravel()
print(json.dumps({"min": float(v.min()), "max": float(v.max()), "mean": float(v.astype(np.float64).mean()), "zeros": int((v == 0).sum())}))`;
    const want = JSON.parse(execFileSync(python, ["-c", script, model, name], { encoding: "utf8" }));
    const stat = (label) =>
      browser.execute((l) => document.querySelector(`[data-testid="tensor-stats"] [data-stat="${l}"]`)?.getAttribute("data-raw") ?? null, label);
    const state = () => browser.$(testid("tensor-stats")).getAttribute("data-state");
    const statusText = () => browser.execute(() => document.querySelector('[data-testid="status-message"]')?.textContent ?? "");
    // Selecting the tensor starts its statistics job (the other tensor was selected last). Its
    // Cancel is clicked from inside the page the moment it shows: a WebDriver round trip per
    // poll could come after a fast CPU finished the job (or after the bar moved on to the
    // histogram job, leaving a stale button), which is a fact of the host, not of the app.
    await browser.execute(() => {
      window.__statsCanceled = null;
      const obs = new MutationObserver(() => {
        const button = document.querySelector('[data-testid="job-cancel"]');
        const msg = document.querySelector('[data-testid="status-message"]')?.textContent ?? "";
        if (button && /statistics/.test(msg)) {
          obs.disconnect();
          window.__statsCanceled = msg;
          button.click();
        }
      });
      obs.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await browser.$(`[data-testid="tensor-item"][data-name="${name}"]`).click();
    await browser.waitUntil(async () => (await browser.execute(() => window.__statsCanceled)) !== null, {
      timeout: 10000,
      interval: 20,
      timeoutMsg: "the statistics of a 16.8 M-element tensor never showed as a job",
    });
    assert.match(await browser.execute(() => window.__statsCanceled), /statistics/);
    await browser.$(testid("stats-canceled")).waitForDisplayed({ timeout: 10000, timeoutMsg: "no canceled state after Cancel" });
    assert.equal(await state(), "canceled");
    assert.equal(await stat("min"), null, "no stale numbers after a cancel");
    assert.ok(await browser.$(testid("histogram-canceled")).isDisplayed());
    assert.ok(!(await browser.$(testid("histogram")).isExisting()), "no histogram after a cancel");
    assert.ok(!(await browser.$(testid("tensor-error")).isExisting()), "a cancel is not an error");
    assert.match(await statusText(), /canceled/);
    await browser.saveScreenshot(path.join(artifacts, "tensors-stats-canceled.png"));
    // Recompute: the job runs again to the end.
    await browser.$(testid("stats-recompute")).click();
    await browser.waitUntil(async () => (await state()) === "ready", { timeout: 60000, timeoutMsg: "Recompute never finished" });
    // min/max cross IPC as the shortest decimal of the f32: equal as f32 values.
    assert.equal(Math.fround(Number(await stat("min"))), Math.fround(want.min));
    assert.equal(Math.fround(Number(await stat("max"))), Math.fround(want.max));
    assert.equal(Number(await stat("zeros")), want.zeros);
    assert.ok(Math.abs(Number(await stat("mean")) - want.mean) < 1e-9, `mean ${await stat("mean")} vs numpy ${want.mean}`);
    assert.ok(await browser.$(testid("histogram")).isDisplayed());
  });
});

// Issue 15 item 4: find things in a tensor whose rows are token ids (the demo's token_embd.weight:
// 279 tokens × 256 columns, Q8_0), and zoom one axis at a time; item 6: one dimension order.
describe("Tensors screen: go to a token, token texts, zoom per axis (real app)", () => {
  let app;
  let browser;
  const NAME = "token_embd.weight";

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-find-"));
    const copy = path.join(dir, "model.gguf");
    copyFileSync(demo, copy);
    app = await startApp([copy]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, { timeout: 20000 });
    const nav = await browser.$(testid("nav-tensors"));
    if (await nav.isExisting()) await nav.click();
    await browser.$(`[data-testid="tensor-item"][data-name="${NAME}"]`).click();
    await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === NAME, { timeout: 10000 });
    await settled();
  });

  after(async () => {
    await app?.stop();
  });

  async function settled() {
    await browser.waitUntil(
      async () => {
        const el = await browser.$(testid("heatmap"));
        return (await el.getAttribute("data-tile")) !== "" && (await el.getAttribute("data-loading")) === "0";
      },
      { timeout: 15000, timeoutMsg: "the heatmap never painted a tile" },
    );
  }

  /** The heatmap's view (col0, row0, cols, rows), its zoom per axis and the canvas size. */
  async function view() {
    return browser.execute(() => {
      const h = document.querySelector('[data-testid="heatmap"]');
      const [col0, row0, cols, rows] = h.getAttribute("data-view").split(",").map(Number);
      const z = h.querySelector('[data-testid="heatmap-zoom"]');
      const r = h.querySelector('[data-testid="heatmap-canvas"]').getBoundingClientRect();
      return { col0, row0, cols, rows, zx: Number(z.getAttribute("data-zoom-x")), zy: Number(z.getAttribute("data-zoom-y")), w: r.width, h: r.height };
    });
  }

  async function wheel(opts) {
    await browser.execute((o) => {
      const c = document.querySelector('[data-testid="heatmap-canvas"]');
      const r = c.getBoundingClientRect();
      c.dispatchEvent(new WheelEvent("wheel", { ...o, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true, cancelable: true }));
    }, opts);
    await settled();
  }

  const selected = () =>
    browser.execute(() => {
      const e = document.querySelector('[data-testid="grid-cell"].selected');
      return e ? [Number(e.getAttribute("data-row")), Number(e.getAttribute("data-col"))] : null;
    });

  async function goTo(text) {
    await fill(browser, await browser.$(testid("goto-input")), text);
    await browser.$(testid("goto-go")).click();
  }

  it("dimensions read the same way in the header and on the heatmap: ne0 × ne1 (columns × rows)", async () => {
    const dims = await browser.$(testid("detail-dims"));
    const mapDims = await browser.$(testid("heatmap-dims"));
    assert.equal(await dims.getText(), "256 × 279");
    assert.equal(await mapDims.getText(), "256 × 279");
    for (const el of [dims, mapDims]) assert.match(await el.getAttribute("title"), /^ne0 × ne1 \(columns × rows\)/);
  });

  it("shows each row's token text in the grid's row header and in the heatmap's readout", async () => {
    const label = (row) =>
      browser.execute((r) => document.querySelector(`[data-testid="grid-rowhead"][data-row="${r}"] [data-testid="grid-token"]`)?.textContent ?? null, row);
    await browser.waitUntil(async () => (await label(0)) !== null, { timeout: 10000, timeoutMsg: "no token text in the row header" });
    assert.equal(await label(0), '"<unk>"');
    assert.equal(await label(1), '"<s>"');
    assert.equal(await label(3), '"<0x00>"');
    // Hover row 259 on the heatmap: its token is "▁hello" (scripts/make_demo_model.py).
    const v = await view();
    await browser.execute(
      (y) => {
        const c = document.querySelector('[data-testid="heatmap-canvas"]');
        const r = c.getBoundingClientRect();
        c.dispatchEvent(new PointerEvent("pointermove", { clientX: r.left + 10, clientY: r.top + y, bubbles: true }));
      },
      ((259.5 - v.row0) * v.h) / v.rows,
    );
    const readout = () => browser.execute(() => document.querySelector('[data-testid="heatmap-readout"]').textContent);
    const token = () => browser.execute(() => document.querySelector('[data-testid="heatmap-token"]')?.textContent ?? null);
    await browser.waitUntil(async () => (await token()) !== null, {
      timeout: 10000,
      timeoutMsg: async () => `no token text in the hover readout: ${await readout()}`,
    });
    assert.match(await readout(), /row 259, col \d+/);
    assert.equal(await token(), '"\u2581hello"');
  });

  it("goes to a token id: its row is selected, in the grid and in the middle of the zoomed heatmap", async () => {
    await goTo("260");
    await browser.waitUntil(async () => (await selected())?.[0] === 260, { timeout: 10000, timeoutMsg: "row 260 was not selected" });
    assert.deepEqual(await selected(), [260, 0]);
    await browser.waitUntil(
      async () => (await browser.execute(() => document.querySelector('[data-testid="grid-rowhead"][data-row="260"] [data-testid="grid-token"]')?.textContent)) === '"\u2581world"',
      { timeout: 10000, timeoutMsg: "row 260's header does not show its token" },
    );
    await settled();
    const v = await view();
    assert.ok(v.row0 <= 260 && 260 < v.row0 + v.rows, `row 260 is in view (${v.row0} + ${v.rows})`);
    assert.ok(v.h / v.rows >= 6, `rows zoomed in to be seen: ${(v.h / v.rows).toFixed(1)} px each`);
    assert.equal(v.cols, 256, "a row alone leaves the columns as they were");
    assert.equal(v.zx, 1);
    assert.ok(v.zy > 1);
  });

  it("goes to row, col and to a flat element; refuses a place outside the tensor, naming the last row", async () => {
    await goTo("3, 7");
    await browser.waitUntil(async () => JSON.stringify(await selected()) === "[3,7]", { timeout: 10000, timeoutMsg: "element (3, 7) was not selected" });
    await goTo("#515"); // 2 · 256 + 3
    await browser.waitUntil(async () => JSON.stringify(await selected()) === "[2,3]", { timeout: 10000, timeoutMsg: "element #515 was not selected" });
    await goTo("279");
    const err = await browser.$(testid("goto-error"));
    await err.waitForExist({ timeout: 5000 });
    assert.equal(await err.getText(), "Token id 279 is past the last row (278).");
    assert.deepEqual(await selected(), [2, 3], "a refused place leaves the selection alone");
    await goTo("4");
    await browser.waitUntil(async () => !(await browser.$(testid("goto-error")).isExisting()), { timeout: 5000, timeoutMsg: "the error stayed" });
  });

  it("zooms the rows only with Shift+wheel, the columns only with Alt+wheel; Fit width and Fit height", async () => {
    await browser.$(testid("heatmap-reset")).click();
    await settled();
    let v = await view();
    assert.deepEqual([v.zx, v.zy], [1, 1]);
    await wheel({ deltaY: -400, shiftKey: true });
    v = await view();
    assert.equal(v.zx, 1, "Shift+wheel leaves the columns");
    assert.ok(v.zy > 2, `Shift+wheel zooms the rows (${v.zy})`);
    const zy = v.zy;
    await wheel({ deltaY: -200, altKey: true });
    v = await view();
    assert.ok(v.zx > 1.4, `Alt+wheel zooms the columns (${v.zx})`);
    assert.equal(v.zy, zy, "Alt+wheel leaves the rows");
    assert.match(await browser.$(testid("heatmap-zoom")).getText(), /↔.*↕/);

    await browser.$(testid("heatmap-fit-width")).click();
    await settled();
    v = await view();
    assert.deepEqual([v.col0, v.cols], [0, 256], "every column across");
    assert.ok(Math.abs(v.w / v.cols - v.h / v.rows) < 1e-6 || v.rows === 279, "square pixels (or every row, if they all fit)");
    await browser.$(testid("heatmap-fit-height")).click();
    await settled();
    v = await view();
    assert.deepEqual([v.row0, v.rows], [0, 279], "every row down");
    await browser.saveScreenshot(path.join(artifacts, "tensors-find.png"));
  });
});
