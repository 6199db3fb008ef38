// Comparing two models in the real app: open the demo model and a perturbed copy — the Diff screen ranks the
// perturbed tensors first and draws the difference map; copy a tensor from B into A and the
// open model then holds B's bytes. Expected values come from gguf-py + numpy on the same files.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const demo = path.join(root, "demo/hotpatch-demo.gguf");
const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
// One tensor of several kinds: Q4_K, Q8_0, F16, F32 (see scripts/make_demo_model.py).
const PERTURBED = ["blk.0.attn_q.weight", "blk.0.attn_output.weight", "blk.1.attn_q.weight", "blk.2.attn_output.weight"];

/** gguf-py + numpy: which tensors differ in value, each one's max |A−B|, and raw bytes. */
function oracle(a, b) {
  const script = `
import sys, json
import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf.quants import dequantize
def vals(t):
    q = T(int(t.tensor_type))
    raw = np.asarray(t.data)
    if q == T.F32: return raw.astype(np.float64).reshape(-1)
    if q == T.F16: return raw.astype(np.float16).astype(np.float64).reshape(-1)
    return dequantize(raw, q).astype(np.float64).reshape(-1)
ra, rb = GGUFReader(sys.argv[1]), GGUFReader(sys.argv[2])
tb = {t.name: t for t in rb.tensors}
out = {}
for t in ra.tensors:
    u = tb[t.name]
    x, y = vals(t), vals(u)
    d = np.abs(x.astype(np.float32) - y.astype(np.float32))
    out[t.name] = {"differs": bool(np.any(x != y)), "max_abs": float(d.max()),
                   "b_bytes": bytes(np.asarray(u.data).tobytes()).hex() if t.name in json.loads(sys.argv[3]) else None}
print(json.dumps(out))`;
  return JSON.parse(execFileSync(python, ["-c", script, a, b, JSON.stringify(PERTURBED)], { encoding: "utf8", maxBuffer: 64 << 20 }));
}

async function invoke(browser, cmd, args = {}) {
  const r = await browser.executeAsync(
    (cmd, args, done) => {
      window.__TAURI_INTERNALS__
        .invoke(cmd, args)
        .then((v) => done({ ok: v instanceof ArrayBuffer ? Array.from(new Uint8Array(v)) : v }))
        .catch((e) => done({ err: e }));
    },
    cmd,
    args,
  );
  if (r.err) throw new Error(`${cmd}: ${JSON.stringify(r.err)}`);
  return r.ok;
}

describe("Diff screen (real app under Xvfb)", () => {
  let app;
  let browser;
  let dir;
  let a;
  let b;
  let expected;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "hotpatch-diff-e2e-"));
    a = path.join(dir, "a.gguf");
    b = path.join(dir, "b.gguf");
    copyFileSync(demo, a);
    execFileSync(python, [path.join(root, "scripts/make_demo_model.py"), b, "--perturb", PERTURBED.join(",")]);
    expected = oracle(a, b);
    app = await startApp([a]);
    browser = app.browser;
    await browser.waitUntil(async () => (await browser.$$('[data-testid="tensor-item"]')).length > 0, {
      timeout: 20000,
      timeoutMsg: "model A never opened",
    });
  });

  after(async () => {
    await app?.stop();
  });

  it("ranks exactly the perturbed tensors first", async () => {
    const differing = Object.entries(expected)
      .filter(([, v]) => v.differs)
      .map(([k]) => k)
      .sort();
    assert.deepEqual(differing, [...PERTURBED].sort(), "numpy: the perturbed copy differs in exactly these tensors");

    await browser.$('[data-testid="nav-diff"]').click();
    const field = await browser.$('[data-testid="diff-path"]');
    await field.waitForDisplayed({ timeout: 10000 });
    await fill(browser, field, b);
    await browser.$('[data-testid="diff-open"]').click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="diff-row"]')).length === Object.keys(expected).length, {
      timeout: 30000,
      timeoutMsg: "the ranking never listed every tensor",
    });
    const names = await browser.execute(() => [...document.querySelectorAll('[data-testid="diff-row"]')].map((e) => e.getAttribute("data-name")));
    assert.deepEqual(names.slice(0, PERTURBED.length).sort(), differing, "the perturbed tensors rank first");
    const counts = await browser.$('[data-testid="diff-counts"]').getText();
    assert.equal(counts, `${PERTURBED.length} of ${names.length} differ`);
  });

  it("shows A, B and the difference map of the top tensor, legend max = numpy's max |Δ|", async () => {
    const compare = await browser.$('[data-testid="diff-compare"]');
    await compare.waitForExist({ timeout: 10000 });
    const name = await compare.getAttribute("data-name");
    const topRow = await browser.$('[data-testid="diff-row"]').getAttribute("data-name");
    assert.equal(name, topRow, "the top-ranked tensor is selected");
    await browser.waitUntil(async () => (await compare.getAttribute("data-abs-max-diff")) !== "", { timeout: 15000 });
    const maxAbs = Number(await compare.getAttribute("data-abs-max-diff"));
    const want = expected[name].max_abs;
    assert.ok(want > 0, "numpy sees a difference");
    assert.ok(Math.abs(maxAbs - want) <= 1e-6 * want, `difference map scale ${maxAbs}, numpy max |A−B| ${want}`);
    // Every map has drawn a tile, and the difference map's pixels are not blank.
    for (const id of ["diff-map-a", "diff-map-b", "diff-map-diff"]) {
      await browser.waitUntil(async () => (await browser.$(`[data-testid="${id}"]`).getAttribute("data-tile")) !== "", {
        timeout: 15000,
        timeoutMsg: `${id} never drew a tile`,
      });
    }
    const painted = await browser.execute(() => {
      const c = document.querySelector('[data-testid="diff-map-diff-canvas"]');
      const ctx = c.getContext("2d");
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let opaque = 0;
      const colours = new Set();
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 0) {
          opaque++;
          if (colours.size < 64) colours.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
        }
      }
      return { opaque, total: d.length / 4, colours: colours.size };
    });
    assert.ok(painted.opaque > painted.total / 2, `the difference map covers its canvas (${painted.opaque}/${painted.total})`);
    assert.ok(painted.colours > 4, `the difference map shows varied differences (${painted.colours} colours)`);
    await browser.saveScreenshot(path.join(artifacts, "diff.png"));
  });

  it("jumps to the largest difference: all three maps zoom and pan together", async () => {
    const first = await browser.$('[data-testid="diff-top-row"] td');
    await first.waitForExist({ timeout: 15000 });
    await first.click();
    await browser.waitUntil(async () => (await browser.$('[data-testid="diff-map-a-zoom"]').getText()) !== "1.00×", { timeout: 5000 });
    const zooms = await Promise.all(["diff-map-a", "diff-map-b", "diff-map-diff"].map((id) => browser.$(`[data-testid="${id}-zoom"]`).getText()));
    assert.ok(zooms.every((z) => z === zooms[0]), `the three maps share one zoom: ${zooms}`);
    await browser.$('[data-testid="diff-map-b-zoom-in"]').click();
    await browser.waitUntil(async () => (await browser.$('[data-testid="diff-map-diff-zoom"]').getText()) !== zooms[0], {
      timeout: 5000,
      timeoutMsg: "zooming map B did not move the difference map",
    });
    await browser.$('[data-testid="diff-fit"]').click();
  });

  it("copies the tensor from B into A: A then holds B's bytes and the tensor ranks identical", async () => {
    const name = await browser.$('[data-testid="diff-compare"]').getAttribute("data-name");
    await browser.$('[data-testid="diff-copy-go"]').click();
    await browser.$('[data-testid="diff-copy-done"]').waitForExist({ timeout: 15000 });
    const tensors = await invoke(browser, "list_tensors");
    const list = Array.isArray(tensors) ? tensors : tensors.data;
    const t = list.find((x) => x.name === name);
    const bytes = await invoke(browser, "read_bytes", { shard: t.shard, offset: t.offset, len: t.nbytes });
    const hex = Buffer.from(bytes).toString("hex");
    assert.equal(hex.length, expected[name].b_bytes.length);
    assert.ok(hex === expected[name].b_bytes, `${name}: the session's bytes equal B's bytes as gguf-py reads them`);
    // The ranking was re-run: the copied tensor is identical now.
    await browser.waitUntil(
      async () => (await browser.$('[data-testid="diff-counts"]').getText()) === `${PERTURBED.length - 1} of ${list.length} differ`,
      { timeout: 20000, timeoutMsg: "the ranking did not refresh after the copy" },
    );
    // Bad input is refused next to the control, naming the problem (on a tensor that still
    // differs: the top row now).
    await browser.$('[data-testid="diff-row"] td.name').click();
    await browser.waitUntil(async () => (await browser.$('[data-testid="diff-compare"]').getAttribute("data-name")) !== name, { timeout: 5000 });
    const kind = await browser.$('[data-testid="diff-copy-kind"]');
    await kind.selectByAttribute("value", "rows");
    await fill(browser, await browser.$('[data-testid="diff-copy-start"]'), "abc");
    await browser.$('[data-testid="diff-copy-go"]').click();
    const err = await browser.$('[data-testid="diff-copy-error"]');
    await err.waitForExist({ timeout: 5000 });
    assert.match(await err.getText(), /row start "abc" is not a whole number/);
  });

  it("a file that is not a model is refused with the backend's message", async () => {
    const field = await browser.$('[data-testid="diff-path"]');
    await fill(browser, field, path.join(root, "package.json"));
    await browser.$('[data-testid="diff-open"]').click();
    const err = await browser.$('[data-testid="diff-open-error"]');
    await err.waitForExist({ timeout: 10000 });
    assert.match(await err.getText(), /package\.json/);
  });

  it("keeps its state when you leave and come back: B, the ranking, selection, sort and filter, not recomputed", async () => {
    // Each progress line of a comparison says what the bar says: the share of the data compared
    // (the bar counts bytes), then the tensors done. The command run directly, its channel's
    // messages recorded (the status bar shows only the latest, and a demo model is quick).
    const progress = await browser.executeAsync((done) => {
      const got = [];
      const T = window.__TAURI_INTERNALS__;
      const id = T.transformCallback((m) => got.push(m && typeof m === "object" && "message" in m && "index" in m ? m.message : m));
      T.invoke("run_diff", { job: 990001, onProgress: `__CHANNEL__:${id}` }).then(
        () => setTimeout(() => done({ got }), 300),
        (e) => done({ err: e }),
      );
    });
    assert.ok(!progress.err, JSON.stringify(progress.err));
    const reports = progress.got.filter((p) => p && typeof p.message === "string"); // not the channel's end marker
    const lines = reports.map((p) => [p.done, p.total, p.message]).filter(([, , m]) => !m.startsWith("compared "));
    assert.match(reports.at(-1).message, /^compared \d+ tensors/, "the outcome line comes last");
    assert.ok(lines.length > 0, "progress was streamed");
    for (const [doneBytes, total, message] of lines) {
      const m = /^comparing tensors: (\d+) % of the data \((\d+) of (\d+) tensors done\)$/.exec(message);
      assert.ok(m, `progress line "${message}"`);
      assert.equal(Number(m[1]), Math.floor((doneBytes * 100) / total), `"${message}" says what the bar (${doneBytes} / ${total}) says`);
    }
    assert.match(lines.at(-1)[2], /^comparing tensors: 100 % of the data \((\d+) of \1 tensors done\)$/);
    await fill(browser, await browser.$('[data-testid="diff-filter"]'), "attn");
    await browser.$('[data-testid="diff-sort-name"]').click();
    const rows = () => browser.execute(() => [...document.querySelectorAll('[data-testid="diff-row"]')].map((e) => e.getAttribute("data-name")));
    const shown = await rows();
    assert.ok(shown.length > 1 && shown.every((n) => n.includes("attn")), "filtered");
    const pick = shown[1];
    await browser.$(`[data-testid="diff-row"][data-name="${pick}"] td.name`).click();
    await browser.waitUntil(async () => (await browser.$('[data-testid="diff-compare"]').getAttribute("data-name")) === pick, { timeout: 5000 });
    const info = await browser.$('[data-testid="diff-run-info"]').getText();
    const messages = await browser.$('[data-testid="status-message"]').getAttribute("data-progress-count");

    await browser.$('[data-testid="nav-tensors"]').click();
    await browser.$('[data-testid="screen-tensors"]').waitForExist({ timeout: 5000 });
    await browser.$('[data-testid="nav-diff"]').click();
    // At once: the same rows in the same order, the same selection, no new comparison.
    await browser.$('[data-testid="diff-table"]').waitForExist({ timeout: 2000 });
    assert.deepEqual(await rows(), shown);
    assert.equal(await browser.$('[data-testid="diff-filter"]').getValue(), "attn");
    assert.equal(await browser.$(`[data-testid="diff-row"][data-name="${pick}"]`).getAttribute("aria-selected"), "true");
    assert.equal(await browser.$('[data-testid="diff-compare"]').getAttribute("data-name"), pick);
    assert.equal(await browser.$('[data-testid="diff-path"]').getValue(), b);
    await browser.pause(1000);
    assert.equal(await browser.$('[data-testid="diff-run-info"]').getText(), info, "the ranking was not recomputed");
    assert.equal(await browser.$('[data-testid="diff-run"]').getText(), "Compare again");
    assert.equal(await browser.$('[data-testid="status-message"]').getAttribute("data-progress-count"), messages, "no job ran");
    await browser.saveScreenshot(path.join(artifacts, "diff-kept.png"));
  });
});
