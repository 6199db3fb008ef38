// The model inside the studio, in the real app with the real embedded llama.cpp: open a copy of
// SmolLM2-135M-Instruct (Q4_1, installed by scripts/setup.sh), type "The capital of France is"
// on the Run screen and see " Paris" from the original and the edited model; edit one weight
// of the final norm on the Tensors screen (staged, ×3000); back on Run, the edited answer
// differs while the original still says Paris — with no reload; undo, and both agree again.
// Also: Stop ends a run, the behaviour diff measures KL (edited vs original, and A vs B on the
// Diff screen), the Model screen says what default llama.cpp copies at load, and the Server
// screen starts the proxy on the built-in engine.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const smol = process.env.HOTPATCH_SMOLLM2 ?? path.join(root, "demo/SmolLM2-135M-Instruct.Q4_1.gguf");
const testid = (id) => `[data-testid="${id}"]`;
const PROMPT = "The capital of France is";

describe("Run screen: both models answer, an edit shows, undo restores (real app, real llama.cpp)", () => {
  let app;
  let browser;
  let copy;
  let original;

  before(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-e2e-run-"));
    copy = path.join(dir, "smollm2.gguf");
    copyFileSync(smol, copy);
    original = readFileSync(copy);
    app = await startApp([copy]);
    browser = app.browser;
    await browser.setWindowSize(1440, 900);
    await browser.waitUntil(async () => (await browser.$$(testid("tensor-item"))).length > 0, {
      timeout: 30000,
      timeoutMsg: "the model never opened",
    });
  });

  after(async () => {
    await app?.stop();
  });

  const text = (side) => browser.$(testid(`run-text-${side}`)).getText();
  /** An element's text content (also when CSS clips it). */
  const content = (id) => browser.execute((sel) => document.querySelector(sel)?.textContent ?? "", testid(id));
  /** The engine line once it names a loaded engine. */
  async function engineLine() {
    await browser.waitUntil(async () => /loaded in/.test(await content("run-engine")), { timeout: 10000, timeoutMsg: "the engine line never said it is loaded" });
    return content("run-engine");
  }

  /** Runs the prompt on the Run screen and waits until both answers are complete. */
  async function runPrompt(shot) {
    await browser.$(testid("run-go")).waitForClickable({ timeout: 10000 });
    await browser.$(testid("run-go")).click();
    await browser.$(testid("run-verdict")).waitForExist({ timeout: 120000, timeoutMsg: "the run never finished" });
    if (shot) await browser.saveScreenshot(path.join(artifacts, shot));
    return {
      edited: await text("edited"),
      original: await text("original"),
      same: (await browser.$(testid("run-verdict")).getAttribute("data-same")) === "true",
    };
  }

  it("Alt+7 opens Run; both models answer ' Paris', streamed, greedy", async () => {
    await browser.keys(["Alt", "7"]);
    await browser.$(testid("screen-run")).waitForExist({ timeout: 5000, timeoutMsg: "Alt+7 did not open the Run screen" });
    await fill(browser, await browser.$(testid("run-prompt")), PROMPT);
    await fill(browser, await browser.$(testid("run-max-tokens")), "8");
    const r = await runPrompt("run-before-edit.png");
    assert.match(r.original, /^\s*Paris/, `the original answers Paris: ${JSON.stringify(r.original)}`);
    assert.match(r.edited, /^\s*Paris/, `no edit yet, the edited side too: ${JSON.stringify(r.edited)}`);
    assert.ok(r.same, "no edit: the same answer");
    assert.equal(await browser.$(testid("run-top1")).getAttribute("data-changed"), "false");
    const first = await browser.execute((sel) => document.querySelector(sel)?.textContent ?? null, `${testid("run-topk")} tbody tr td:nth-child(2)`);
    assert.equal(first, " Paris", "the original's most likely next token is ' Paris'");
    assert.equal(await browser.$(testid("run-kld")).getText(), "0 nats", "identical distributions: KL 0");
    assert.match(await engineLine(), /not repacked/);
  });

  it("an edit on the Tensors screen changes the edited answer only, with no reload", async () => {
    const engineBefore = await engineLine();
    await browser.$(testid("nav-tensors")).click();
    await browser.$('[data-testid="tensor-item"][data-name="output_norm.weight"]').click();
    await browser.waitUntil(async () => (await browser.$(testid("detail-name")).getText()) === "output_norm.weight", { timeout: 10000 });
    const cell = await browser.$('[data-testid="grid-cell"][data-row="0"][data-col="0"]');
    await cell.waitForExist({ timeout: 15000, timeoutMsg: "the value grid never showed element 0" });
    await cell.click();
    await browser.waitUntil(async () => (await browser.$(testid("edit-current")).getText()) !== "…", { timeout: 5000 });
    await fill(browser, await browser.$(testid("edit-value")), "3000");
    await browser.$(testid("edit-apply")).waitForEnabled({ timeout: 5000 });
    await browser.$(testid("edit-apply")).click();
    await browser.$(testid("edit-result")).waitForDisplayed({ timeout: 5000 });
    assert.equal(Number(await browser.$(testid("edit-stored-final")).getText()), 3000, "F32 stores 3000 exactly");

    await browser.keys(["Alt", "7"]);
    await browser.$(testid("run-stale")).waitForExist({ timeout: 5000, timeoutMsg: "the Run screen did not say the answer is stale" });
    assert.equal(await browser.$(testid("run-prompt")).getValue(), PROMPT, "the prompt is still there");
    const r = await runPrompt("run-after-edit.png");
    assert.match(r.original, /^\s*Paris/, `the original still answers Paris: ${JSON.stringify(r.original)}`);
    assert.ok(!r.same, `the edited answer differs: ${JSON.stringify(r.edited)}`);
    assert.notEqual(r.edited, r.original);
    assert.equal(await browser.$(testid("run-top1")).getAttribute("data-changed"), "true", "the very next token changed");
    assert.ok((await browser.$$(testid("run-shift"))).length > 0, "what changed is listed");
    const engineAfter = await engineLine();
    const loaded = (s) => s.match(/loaded in ([\d.]+) s/)?.[1];
    assert.equal(loaded(engineAfter), loaded(engineBefore), "the same engine, not reloaded");
    assert.ok(readFileSync(copy).equals(original), "staged: the file is untouched");
  });

  it("the behaviour diff over the bundled sample sees the edit", async () => {
    await browser.$(testid("behaviour-tokens")).scrollIntoView({ block: "center" });
    await fill(browser, await browser.$(testid("behaviour-tokens")), "128");
    await browser.$(testid("behaviour-run")).click();
    await browser.$(testid("behaviour-stats")).waitForExist({ timeout: 120000, timeoutMsg: "the behaviour diff never finished" });
    const kl = Number(await browser.$(testid("behaviour-kld-mean")).getText());
    assert.ok(kl > 0, `KL mean > 0 after the edit (got ${kl})`);
    const top1 = parseFloat(await browser.$(testid("behaviour-top1")).getText());
    assert.ok(top1 < 100, `top-1 agreement below 100 % (${top1})`);
    assert.ok((await browser.$$(`${testid("behaviour-tokens-view")} span`)).length > 50, "the per-token view shows the text");
    await browser.$(testid("behaviour-worst")).scrollIntoView();
    await browser.saveScreenshot(path.join(artifacts, "run-behaviour.png"));
  });

  it("undo returns the original answer exactly", async () => {
    await browser.$(testid("nav-tensors")).click();
    await browser.$(testid("undo-button")).waitForEnabled({ timeout: 5000 });
    await browser.$(testid("undo-button")).click();
    await browser.keys(["Alt", "7"]);
    await browser.$(testid("run-stale")).waitForExist({ timeout: 5000 });
    const r = await runPrompt();
    assert.ok(r.same, `after undo both answer the same: ${JSON.stringify(r)}`);
    assert.match(r.edited, /^\s*Paris/);
    assert.equal(await browser.$(testid("run-kld")).getText(), "0 nats", "bit-exact: KL 0 again");
  });

  it("Stop ends a long run early", async () => {
    await fill(browser, await browser.$(testid("run-max-tokens")), "1024");
    await browser.$(testid("run-mode-chat")).click();
    await fill(browser, await browser.$(testid("run-prompt")), "Write a long story about a lighthouse keeper.");
    await browser.$(testid("run-go")).click();
    await browser.waitUntil(async () => (await text("edited")).length > 10, { timeout: 60000, timeoutMsg: "no token streamed" });
    await browser.$(testid("run-stop")).click();
    await browser.$(testid("run-verdict")).waitForExist({ timeout: 30000, timeoutMsg: "the stopped run never returned" });
    const stop = await browser.$(testid("run-stop-edited")).getText();
    assert.match(stop, /stopped/, `the answer says it was stopped: ${stop}`);
    const n = Number(stop.match(/^(\d+) tok/)?.[1]);
    assert.ok(n > 0 && n < 1024, `stopped early (${n} tokens)`);
  });

  it("the Diff screen measures A against model B: the unedited file is the same model, KL 0", async () => {
    await browser.$(testid("nav-diff")).click();
    await fill(browser, await browser.$(testid("diff-path")), smol);
    await browser.$(testid("diff-open")).click();
    await browser.$(testid("diff-behaviour-toggle")).waitForEnabled({ timeout: 20000 });
    await browser.$(testid("diff-behaviour-toggle")).click();
    await fill(browser, await browser.$(testid("behaviour-tokens")), "64");
    await browser.$(testid("behaviour-run")).click();
    await browser.$(testid("behaviour-stats")).waitForExist({ timeout: 120000, timeoutMsg: "A vs B never finished" });
    assert.equal(await content("behaviour-kld-mean"), "0", "after undo A is the file B is: KL 0");
    assert.equal(await content("behaviour-top1"), "100.0 %");
    assert.equal(await content("behaviour-ppl-edited"), await content("behaviour-ppl-original"), "the same perplexity");
    await browser.saveScreenshot(path.join(artifacts, "run-diff-behaviour.png"));
  });

  it("the Model screen says what default llama.cpp copies at load, measured", async () => {
    await browser.$(testid("nav-model")).click();
    await browser.$(testid("load-buffers-summary")).waitForExist({ timeout: 60000, timeoutMsg: "the measurement never showed" });
    const count = Number(await browser.$(testid("load-buffers-count")).getAttribute("data-copied"));
    assert.ok(count >= 0);
    assert.match(await browser.$(testid("load-buffers-hint")).getText(), /--no-repack/);
    await browser.$(testid("load-buffers-all")).click();
    const rows = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="load-buffers-row"]')].map((r) => [r.getAttribute("data-copied"), r.getAttribute("data-buffer")]),
    );
    assert.equal(rows.length, 272, "every tensor of SmolLM2 is listed");
    for (const [copied, buffer] of rows) {
      assert.equal(copied === "true", buffer !== "" && buffer !== "CPU_Mapped", `copied means a buffer other than the mapped file (${buffer})`);
    }
    assert.equal(rows.filter(([c]) => c === "true").length, count);
    await browser.$(testid("load-buffers")).scrollIntoView();
    await browser.saveScreenshot(path.join(artifacts, "run-model-liveness.png"));
  });

  it("the Server screen starts the proxy on the built-in engine, answering from the open model", async () => {
    await browser.$(testid("nav-server")).click();
    await fill(browser, await browser.$(testid("server-port")), "0");
    await browser.$(testid("server-start-builtin")).click();
    await browser.$(testid("server-builtin")).waitForExist({ timeout: 20000, timeoutMsg: "the built-in upstream did not start" });
    const listening = (await browser.$(testid("server-status")).getText()).replace("Listening on ", "").trim();
    const res = await fetch(`${listening}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: PROMPT, max_tokens: 4 }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.match(body.choices[0].text, /^\s*Paris/, `the proxy answers from the open model: ${JSON.stringify(body)}`);
    await browser.waitUntil(async () => (await browser.$$(testid("log-row"))).length > 0, { timeout: 10000, timeoutMsg: "the request did not show in the log" });
    await browser.saveScreenshot(path.join(artifacts, "run-server-builtin.png"));
    await browser.$(testid("server-stop")).click();
    await browser.$(`${testid("server-status")}[data-running="false"]`).waitForExist({ timeout: 10000 });
  });
});
