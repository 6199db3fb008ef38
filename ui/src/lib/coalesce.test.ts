import { describe, expect, it } from "vitest";
import { coalesce } from "./coalesce";

describe("coalesce", () => {
  it("runs at once, then once more for any number of triggers during a run", async () => {
    const gates: (() => void)[] = [];
    let runs = 0;
    const trigger = coalesce(
      () =>
        new Promise<void>((resolve) => {
          runs += 1;
          gates.push(resolve);
        }),
    );
    trigger();
    expect(runs).toBe(1);
    trigger();
    trigger();
    trigger();
    expect(runs).toBe(1);
    gates[0]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(runs).toBe(2);
    gates[1]!();
    await new Promise((r) => setTimeout(r, 0));
    expect(runs).toBe(2);
    trigger();
    expect(runs).toBe(3);
  });
  it("keeps going after a failing run", async () => {
    let runs = 0;
    const trigger = coalesce(async () => {
      runs += 1;
      throw new Error("x");
    });
    trigger();
    await new Promise((r) => setTimeout(r, 0));
    trigger();
    expect(runs).toBe(2);
  });
});
