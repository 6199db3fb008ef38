import { describe, expect, it } from "vitest";
import { auditBadge, findingTone } from "./audit";

describe("auditBadge", () => {
  it("calls a file with only notes clean and counts the notes in the title", () => {
    const b = auditBadge({ clean: true, errors: 0, warnings: 0, infos: 2 });
    expect(b).toMatchObject({ label: "Audit: clean", tone: "ok" });
    expect(b.title).toContain("2 notes");
  });
  it("counts errors before warnings and takes the tone of the worst", () => {
    expect(auditBadge({ clean: false, errors: 1, warnings: 3, infos: 0 })).toMatchObject({ label: "Audit: 1 error, 3 warnings", tone: "error" });
    expect(auditBadge({ clean: false, errors: 0, warnings: 1, infos: 5 })).toMatchObject({ label: "Audit: 1 warning", tone: "warn" });
  });
});

describe("findingTone", () => {
  it("maps each severity", () => {
    expect(findingTone({ severity: "error" })).toBe("error");
    expect(findingTone({ severity: "warning" })).toBe("warn");
    expect(findingTone({ severity: "info" })).toBe("info");
  });
});
