import { describe, expect, it } from "vitest";
import {
  asciiChar,
  formatOffset,
  hexByte,
  parseHexBytes,
  parseOffset,
  revealRow,
  rowCount,
  rowsWindow,
  scrollFromTopRow,
  scrollGeometry,
  spanIndexAt,
  textToHex,
  topRowFromScroll,
} from "./hex";
import type { SpanView } from "../../bindings";

describe("offsets typed by the user", () => {
  it("reads decimal, 0x hex and h-suffixed hex", () => {
    expect(parseOffset("4096")).toEqual({ ok: true, value: 4096 });
    expect(parseOffset(" 0x1F40 ")).toEqual({ ok: true, value: 0x1f40 });
    expect(parseOffset("1000h")).toEqual({ ok: true, value: 0x1000 });
    expect(parseOffset("1_000")).toEqual({ ok: true, value: 1000 });
  });

  it("refuses what is not a number, with a hint for bare hex", () => {
    const abc = parseOffset("abc");
    expect(abc.ok).toBe(false);
    if (!abc.ok) expect(abc.error).toContain("0x prefix");
    const junk = parseOffset("12q");
    expect(junk.ok).toBe(false);
    if (!junk.ok) expect(junk.error).toContain('"12q"');
    expect(parseOffset("").ok).toBe(false);
    expect(parseOffset("-5").ok).toBe(false);
    expect(parseOffset("0x").ok).toBe(false);
  });

  it("refuses an offset past the end, naming both", () => {
    const r = parseOffset("0x2000", 0x1fff);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toBe("offset 0x00002000 is past the end (0x00001fff)");
    expect(parseOffset("0x1fff", 0x1fff)).toEqual({ ok: true, value: 0x1fff });
    expect(parseOffset("99999999999999999999").ok).toBe(false);
  });
});

describe("cells", () => {
  it("formats hex and ascii", () => {
    expect(hexByte(0)).toBe("00");
    expect(hexByte(0xab)).toBe("ab");
    expect(formatOffset(0x1f40)).toBe("0x00001f40");
    expect(formatOffset(2 ** 33)).toBe("0x200000000");
    expect(asciiChar(0x41)).toBe("A");
    expect(asciiChar(0x7f)).toBe("·");
    expect(asciiChar(0x0a)).toBe("·");
    expect(textToHex("Gé")).toBe("47 c3 a9");
  });

  it("parses literal hex bytes", () => {
    const r = parseHexBytes("de ad,BEEF");
    expect(r.ok && Array.from(r.value)).toEqual([0xde, 0xad, 0xbe, 0xef]);
    const odd = parseHexBytes("abc");
    expect(odd.ok).toBe(false);
    const bad = parseHexBytes("0g");
    expect(!bad.ok && bad.error).toBe('"g" is not a hex digit');
    expect(parseHexBytes("??").ok).toBe(false);
  });
});

describe("spans", () => {
  const span = (start: number, end: number, label: string): SpanView => ({ start, end, class: "metadata", label, tensor: null });
  const spans = [span(0, 24, "a"), span(24, 40, "b"), span(40, 41, "c"), span(41, 100, "d")];
  it("finds the span under an offset", () => {
    expect(spanIndexAt(spans, 0)).toBe(0);
    expect(spanIndexAt(spans, 23)).toBe(0);
    expect(spanIndexAt(spans, 24)).toBe(1);
    expect(spanIndexAt(spans, 40)).toBe(2);
    expect(spanIndexAt(spans, 99)).toBe(3);
    expect(spanIndexAt(spans, 100)).toBe(-1);
    expect(spanIndexAt([], 0)).toBe(-1);
  });
});

describe("virtual scrolling", () => {
  it("maps exactly below the cap", () => {
    const g = scrollGeometry(rowCount(1000 * 16), 20, 400);
    expect(g).toEqual({ trackPx: 20000, maxTop: 980, visibleRows: 20 });
    // track range = 20000 - 400 = 19600 px for 980 rows: 20 px a row.
    expect(topRowFromScroll(200, g, 400)).toBe(10);
    expect(scrollFromTopRow(10, g, 400)).toBe(200);
    expect(topRowFromScroll(19600, g, 400)).toBe(980);
    expect(topRowFromScroll(1e9, g, 400)).toBe(980);
  });

  it("reaches every row of a file far larger than the cap", () => {
    const size = 40 * 2 ** 30; // 40 GiB
    const rows = rowCount(size);
    const g = scrollGeometry(rows, 20, 600);
    expect(g.trackPx).toBe(8_000_000);
    expect(topRowFromScroll(0, g, 600)).toBe(0);
    expect(topRowFromScroll(g.trackPx - 600, g, 600)).toBe(rows - 30);
    // Round trip through the scroll position lands on the same row.
    for (const row of [0, 1, 12345, Math.floor(rows / 3), rows - 30]) {
      expect(topRowFromScroll(scrollFromTopRow(row, g, 600), g, 600)).toBe(row);
    }
    const w = rowsWindow(rows - 30, 31, size);
    expect(w.end).toBe(size);
    expect(w.end - w.start).toBe(30 * 16);
  });

  it("moves the least to reveal an offset", () => {
    const g = scrollGeometry(1000, 20, 200); // 10 rows visible
    expect(revealRow(50 * 16, 45, g)).toBe(45); // already visible
    expect(revealRow(10 * 16, 45, g)).toBe(10); // above: it becomes the first row
    expect(revealRow(70 * 16 + 3, 45, g)).toBe(61); // below: it becomes the last row
    expect(revealRow(999 * 16, 0, g)).toBe(990);
  });

  it("handles a file smaller than the view", () => {
    const g = scrollGeometry(3, 20, 600);
    expect(g.maxTop).toBe(0);
    expect(topRowFromScroll(50, g, 600)).toBe(0);
    expect(rowsWindow(0, 30, 40)).toEqual({ start: 0, end: 40 });
  });
});
