import { describe, expect, it } from "vitest";
import { describeFailure, IpcFailure, unwrap } from "./ipc";

describe("unwrap", () => {
  it("returns the data of an ok result", () => {
    expect(unwrap({ status: "ok", data: 42 })).toBe(42);
  });
  it("throws the typed error with its code", () => {
    const r = { status: "error", error: { code: "NotGguf", message: "not a GGUF file: magic …" } } as const;
    expect(() => unwrap(r)).toThrowError(IpcFailure);
    try {
      unwrap(r);
    } catch (e) {
      expect((e as IpcFailure).code).toBe("NotGguf");
      expect((e as IpcFailure).message).toBe("not a GGUF file: magic …");
    }
  });
});

describe("describeFailure", () => {
  it("titles by code and keeps the backend's message verbatim", () => {
    const d = describeFailure(new IpcFailure({ code: "InvalidGguf", message: "tensor 'x' at offset 0x40: bad" }));
    expect(d).toEqual({
      title: "The GGUF file is damaged or unsupported",
      detail: "tensor 'x' at offset 0x40: bad",
      code: "InvalidGguf",
    });
  });
  it("handles errors that did not come from a command", () => {
    expect(describeFailure(new Error("boom"))).toEqual({ title: "Unexpected error", detail: "boom", code: null });
    expect(describeFailure("plain")).toMatchObject({ detail: "plain", code: null });
  });
});
