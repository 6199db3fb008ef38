import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { useQuery, type Query } from "./query";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** Promises the test resolves by hand, one per fetch, keyed by what was asked. */
let pending: { key: string; signal: AbortSignal; resolve: (v: string) => void; reject: (e: unknown) => void }[] = [];
function ask(key: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => pending.push({ key, signal, resolve, reject }));
}

let q: Query<string> | null = null;
let host: HTMLDivElement;
let root: Root;

function Probe({ k, rev, keep }: { k: string | null; rev: number; keep?: boolean }) {
  q = useQuery((signal) => (k === null ? null : ask(k, signal)), [k], { keep: keep ?? false, on: [rev] });
  return null;
}
const render = (k: string | null, rev = 0, keep = false) => act(() => root.render(<Probe k={k} rev={rev} keep={keep} />));
const settle = (i: number, v: string) => act(async () => pending[i]!.resolve(v));

beforeEach(() => {
  pending = [];
  host = document.createElement("div");
  root = createRoot(host);
});
afterEach(() => act(() => root.unmount()));

describe("useQuery", () => {
  it("drops an older fetch that resolves after a newer one, and clears data when deps change", async () => {
    render("a");
    expect(q!.loading).toBe(true);
    await settle(0, "A");
    expect(q!.data).toBe("A");
    render("b");
    // New deps: the old tensor's data is not shown meanwhile.
    expect(q!.data).toBeNull();
    render("c");
    expect(pending.map((p) => p.key)).toEqual(["a", "b", "c"]);
    // The superseded fetches were told (a job cancels its backend work on it).
    expect(pending.map((p) => p.signal.aborted)).toEqual([true, true, false]);
    await settle(2, "C");
    await settle(1, "B (late)");
    expect(q!.data).toBe("C");
    expect(q!.loading).toBe(false);
  });

  it("refetches on `on` keeping the data shown, and `keep` keeps it across deps", async () => {
    render("a", 0);
    await settle(0, "A0");
    render("a", 1);
    // The revision moved: the same tensor is read again.
    expect(pending.map((p) => p.key)).toEqual(["a", "a"]);
    expect(q!.data).toBe("A0");
    expect(q!.loading).toBe(true);
    await settle(1, "A1");
    expect(q!.data).toBe("A1");
    render("b", 1, true);
    expect(q!.data).toBe("A1");
    await settle(2, "B1");
    expect(q!.data).toBe("B1");
  });

  it("a null fetch means no data; a failure is the error, and reload fetches again", async () => {
    render(null);
    expect(pending).toHaveLength(0);
    expect(q!.data).toBeNull();
    expect(q!.loading).toBe(false);
    render("a");
    await act(async () => pending[0]!.reject(new Error("no such tensor")));
    expect((q!.error as Error).message).toBe("no such tensor");
    expect(q!.data).toBeNull();
    act(() => q!.reload());
    expect(pending).toHaveLength(2);
    expect(q!.error).toBeNull();
    await settle(1, "A");
    expect(q!.data).toBe("A");
    // What a mutation returned shows at once.
    act(() => q!.set("A, locked"));
    expect(q!.data).toBe("A, locked");
    act(() => root.unmount());
    expect(pending[1]!.signal.aborted).toBe(true);
    root = createRoot(host);
  });
});
