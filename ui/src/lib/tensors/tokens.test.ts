import { describe, expect, it } from "vitest";
import { TOKEN_CHUNK, TokenTexts, type TokenRange } from "./tokens";

/** A fake vocabulary of `n` tokens "t0", "t1"…, recording each request. */
function fake(n: number) {
  const calls: [number, number][] = [];
  const waiting: (() => void)[] = [];
  const fetch = (start: number, count: number) => {
    calls.push([start, count]);
    return new Promise<TokenRange>((resolve) => {
      const texts: string[] = [];
      for (let i = start; i < Math.min(n, start + count); i++) texts.push(`t${i}`);
      waiting.push(() => resolve({ vocab: n, start, texts }));
    });
  };
  const flush = async () => {
    while (waiting.length) waiting.shift()!();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { calls, fetch, flush };
}

describe("TokenTexts", () => {
  it("fetches the chunk of an id once, then answers from it", async () => {
    const f = fake(262_144);
    let changes = 0;
    const t = new TokenTexts(f.fetch, () => changes++);
    expect(t.get(151_000)).toBeUndefined();
    expect(t.get(151_001)).toBeUndefined(); // same chunk: no second request
    const c = Math.floor(151_000 / TOKEN_CHUNK) * TOKEN_CHUNK;
    expect(f.calls).toEqual([[c, TOKEN_CHUNK]]);
    await f.flush();
    expect(changes).toBe(1);
    expect(t.vocab).toBe(262_144);
    expect(t.get(151_000)).toBe("t151000");
    expect(t.get(c + TOKEN_CHUNK - 1)).toBe(`t${c + TOKEN_CHUNK - 1}`);
    expect(f.calls).toHaveLength(1);
  });

  it("asks nothing past the vocabulary once its size is known; the last chunk is short", async () => {
    const f = fake(300);
    const t = new TokenTexts(f.fetch, () => {});
    t.load(0);
    await f.flush();
    expect(t.get(299)).toBeUndefined();
    await f.flush();
    expect(t.get(299)).toBe("t299");
    expect(t.get(300)).toBeUndefined();
    expect(t.get(-1)).toBeUndefined();
    expect(f.calls).toEqual([
      [0, TOKEN_CHUNK],
      [TOKEN_CHUNK, TOKEN_CHUNK],
    ]);
  });

  it("a failed fetch is remembered and can be retried", async () => {
    let fail = true;
    const t = new TokenTexts(
      (start) => (fail ? Promise.reject(new Error("no model")) : Promise.resolve({ vocab: 1, start, texts: ["x"] })),
      () => {},
    );
    expect(t.get(0)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 0));
    expect(t.failed).toBeInstanceOf(Error);
    fail = false;
    expect(t.get(0)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 0));
    expect(t.get(0)).toBe("x");
  });
});
