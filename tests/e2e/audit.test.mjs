// The audit in the real window: a clean file gets the "clean" badge on open and the Model
// screen shows the prompt its chat template renders; a file with a structure problem llama.cpp
// refuses (planted by gguf-py) gets an error badge that leads to the finding; a chat template
// edited into an injection gadget and saved is flagged after the save; and the provenance check
// re-derives the demo's quantized tensors from its F32 base (and not from the F16 one).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { artifacts, fill, root, startApp } from "./harness.mjs";

const python = process.env.HOTPATCH_PYTHON ?? path.join(root, ".venv/bin/python");
const demo = path.join(root, "demo/hotpatch-demo.gguf");

describe("Audit (real app under Xvfb)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "hotpatch-audit-e2e-"));
  // gguf-py writes the planted files (crates/audit's fixtures) and the demo's F32/F16 bases.
  execFileSync(python, [path.join(root, "crates/audit/tests/fixtures/make_planted.py"), dir], { encoding: "utf8" });
  const base32 = path.join(dir, "base-f32.gguf");
  const base16 = path.join(dir, "base-f16.gguf");
  execFileSync(python, [path.join(root, "scripts/make_demo_model.py"), base32, "--variant", "f32"]);
  execFileSync(python, [path.join(root, "scripts/make_demo_model.py"), base16, "--variant", "f16"]);
  const quant = path.join(dir, "demo-copy.gguf");
  copyFileSync(demo, quant);
  const clean = path.join(dir, "clean.gguf");
  let app;
  let browser;

  const $ = (id) => browser.$(`[data-testid="${id}"]`);
  const openPath = async () => (await browser.$('[data-testid="model-title"] .model-path')).getAttribute("title");
  const badgeText = async () => browser.execute(() => document.querySelector('[data-testid="audit-badge"]')?.textContent ?? null);
  const codes = async (testId) =>
    browser.execute(
      (t) => [...document.querySelectorAll(`[data-testid="${t}"] [data-testid="audit-finding"]`)].map((e) => `${e.getAttribute("data-severity")}:${e.getAttribute("data-code")}`),
      testId,
    );

  async function openFile(file) {
    await (await $("nav-model")).click();
    await fill(browser, await $("model-open-path"), file);
    await (await $("model-open-button")).click();
    await browser.waitUntil(async () => (await openPath()) === file, { timeout: 20000, timeoutMsg: `${file} never opened` });
  }

  before(async () => {
    process.env.HOTPATCH_RECENT = path.join(dir, "recent.json");
    app = await startApp([]);
    browser = app.browser;
  });

  after(async () => {
    await app?.stop();
  });

  it("badges a clean file clean and shows the prompt its template renders", async () => {
    await openFile(clean);
    await browser.waitUntil(async () => (await badgeText()) !== null, { timeout: 10000, timeoutMsg: "no audit badge" });
    assert.equal(await badgeText(), "Audit: clean");
    assert.equal(await (await $("audit-verdict")).getText(), "clean");
    assert.deepEqual(await codes("audit-findings"), [], "no finding on a clean file");
    // The fixed conversations rendered by the file's ChatML template.
    await (await browser.$('[data-testid="audit-renders"] summary')).click();
    const prompts = await browser.execute(() => [...document.querySelectorAll('[data-testid="audit-render"] pre')].map((e) => e.textContent));
    assert.ok(prompts.length >= 2, `renders: ${prompts.length}`);
    assert.ok(
      prompts.some((p) => p.includes("<|im_start|>user\n") && p.endsWith("<|im_start|>assistant\n")),
      `a ChatML prompt ending in the generation prompt: ${JSON.stringify(prompts[0])}`,
    );
  });

  it("badges a file llama.cpp refuses with an error that leads to the finding", async () => {
    const file = path.join(dir, "tensor-name-too-long.gguf");
    await openFile(file);
    await browser.waitUntil(async () => (await badgeText())?.includes("error"), { timeout: 10000, timeoutMsg: "no error badge" });
    assert.match(await badgeText(), /^Audit: \d+ errors?/);
    // The badge is the way to the findings from any screen.
    await (await $("nav-tensors")).click();
    await (await $("audit-badge")).click();
    await (await $("audit-card")).waitForDisplayed({ timeout: 5000 });
    const found = await codes("audit-findings");
    assert.ok(found.includes("error:tensor-name-too-long"), `findings: ${found}`);
    const where = await browser.execute(
      () => document.querySelector('[data-testid="audit-finding"][data-code="tensor-name-too-long"] .audit-where')?.textContent ?? "",
    );
    assert.match(where, /tensor '.{64,}'/, "the finding names the tensor");
    await browser.saveScreenshot(path.join(artifacts, "audit-finding.png"));
  });

  it("flags a chat template edited into an injection gadget once it is saved", async () => {
    const file = path.join(dir, "clean-edited.gguf");
    copyFileSync(clean, file);
    await openFile(file);
    await browser.waitUntil(async () => (await badgeText()) === "Audit: clean", { timeout: 10000 });
    const area = await $("chat-template-input");
    await area.scrollIntoView();
    await fill(browser, area, "{{ messages.__class__.__mro__ }}{% for m in messages %}{{ m['content'] }}{% endfor %}");
    await (await $("chat-template-stage")).click();
    await (await $("save-button")).click();
    await browser.waitUntil(async () => (await (await $("modified-indicator")).getText()) === "Saved", { timeout: 20000 });
    await browser.waitUntil(async () => (await codes("audit-findings")).some((c) => c.endsWith(":template-dunder")), {
      timeout: 10000,
      timeoutMsg: "the saved template's dunder access was not reported",
    });
    assert.notEqual(await badgeText(), "Audit: clean");
    const where = await browser.execute(
      () => document.querySelector('[data-testid="audit-finding"][data-code="template-dunder"] .audit-where')?.textContent ?? "",
    );
    assert.match(where, /tokenizer\.chat_template line 1/, `where: ${where}`);
  });

  it("re-derives the demo's tensors from its F32 base, and not from the F16 one", async () => {
    await openFile(quant);
    await fill(browser, await $("audit-base"), base32);
    await (await $("audit-check-base")).click();
    const summary = await $("audit-provenance-summary");
    await summary.waitForExist({ timeout: 60000, timeoutMsg: "the provenance check never finished" });
    const m = /^(\d+) of (\d+) tensors re-derive byte for byte \((\d+) differ, (\d+) unverifiable\)$/.exec(await summary.getText());
    assert.ok(m, await summary.getText());
    assert.equal(m[1], m[2], "every tensor re-derives from the true base");
    assert.equal(m[3], "0");

    await fill(browser, await $("audit-base"), base16);
    await (await $("audit-check-base")).click();
    const differing = async () => {
      const t = await browser.execute(() => document.querySelector('[data-testid="audit-provenance-summary"]')?.textContent ?? "");
      const d = /\((\d+) differ/.exec(t);
      return d ? Number(d[1]) : 0;
    };
    await browser.waitUntil(async () => (await differing()) > 0, { timeout: 60000, timeoutMsg: "the F16 base was not told apart" });
    const differ = await codes("audit-provenance-findings");
    assert.ok(differ.length > 0, "the tensors that differ are listed");
    await browser.saveScreenshot(path.join(artifacts, "audit-provenance.png"));
  });

  it("names a base that is not there", async () => {
    await fill(browser, await $("audit-base"), path.join(dir, "missing.gguf"));
    await (await $("audit-check-base")).click();
    const err = await $("audit-base-error");
    await err.waitForExist({ timeout: 10000 });
    assert.match(await err.getText(), /missing\.gguf/);
  });
});
