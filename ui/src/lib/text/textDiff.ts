/** A small text diff for showing metadata string changes (chat templates, names).
 *
 * Common prefix and suffix are cut first (the usual case: text appended or one part replaced),
 * then the middle is diffed line by line with an LCS table when it is small enough; otherwise
 * the middle is one removed and one added part. Pure, no DOM.
 */
export type DiffPart = { kind: "same" | "removed" | "added"; text: string };

/** Lines of the middle above which the LCS table (n × m) is not built. */
const MAX_LCS_LINES = 2000;

function splitLines(s: string): string[] {
  // Keep the newline with its line so joining the parts gives back the text exactly.
  const out = s.match(/[^\n]*\n|[^\n]+$/g);
  return out ?? [];
}

function push(parts: DiffPart[], kind: DiffPart["kind"], text: string) {
  if (text === "") return;
  const last = parts[parts.length - 1];
  if (last && last.kind === kind) last.text += text;
  else parts.push({ kind, text });
}

/** The diff of `before` → `after`: concatenating "same"+"removed" gives `before`,
 * "same"+"added" gives `after`. */
export function textDiff(before: string, after: string): DiffPart[] {
  let p = 0;
  const max = Math.min(before.length, after.length);
  while (p < max && before[p] === after[p]) p++;
  let s = 0;
  while (
    s < max - p &&
    before[before.length - 1 - s] === after[after.length - 1 - s]
  )
    s++;
  if (before.slice(p, before.length - s).includes("\n") || after.slice(p, after.length - s).includes("\n")) {
    // A multi-line change: the common end starts at a line start in both, so the middle's
    // last lines compare whole (the common start cuts both first lines at the same place).
    while (s > 0 && !(before[before.length - s - 1] === "\n" && after[after.length - s - 1] === "\n")) s--;
  }
  const parts: DiffPart[] = [];
  push(parts, "same", before.slice(0, p));
  const a = before.slice(p, before.length - s);
  const b = after.slice(p, after.length - s);
  const la = splitLines(a);
  const lb = splitLines(b);
  if (la.length > 1 && lb.length > 1 && la.length <= MAX_LCS_LINES && lb.length <= MAX_LCS_LINES) {
    const n = la.length;
    const m = lb.length;
    // t[i * (m + 1) + j]: length of the longest common subsequence of la[i..] and lb[j..].
    const w = m + 1;
    const t = new Int32Array((n + 1) * w);
    const at = (i: number, j: number): number => t[i * w + j] ?? 0;
    const line = (ls: string[], i: number): string => ls[i] ?? "";
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        t[i * w + j] =
          line(la, i) === line(lb, j) ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      if (line(la, i) === line(lb, j)) {
        push(parts, "same", line(la, i));
        i++;
        j++;
      } else if (at(i + 1, j) >= at(i, j + 1)) push(parts, "removed", line(la, i++));
      else push(parts, "added", line(lb, j++));
    }
    while (i < n) push(parts, "removed", line(la, i++));
    while (j < m) push(parts, "added", line(lb, j++));
  } else {
    push(parts, "removed", a);
    push(parts, "added", b);
  }
  push(parts, "same", before.slice(before.length - s));
  return parts;
}

/** Joins parts back: the text before (`"before"`) or after (`"after"`) the change. */
export function side(parts: DiffPart[], which: "before" | "after"): string {
  const skip = which === "before" ? "added" : "removed";
  return parts.filter((x) => x.kind !== skip).map((x) => x.text).join("");
}

/** A part to show: a diff part, or unchanged text left out (`skip` characters, `lines` of them). */
export type ShownPart = DiffPart | { kind: "skip"; chars: number; lines: number };

/**
 * The parts as a reader sees them: unchanged text longer than `2 × context` characters keeps
 * only `context` characters next to each change (cut at a line break when one is near) and the
 * rest is one `skip` part, so a 5,000-character template with a line appended shows the end
 * of the template and the new line, not 60 identical characters of before and after.
 */
export function condense(parts: DiffPart[], context = 160): ShownPart[] {
  const out: ShownPart[] = [];
  const countLines = (s: string) => (s.match(/\n/g) ?? []).length;
  parts.forEach((p, i) => {
    if (p.kind !== "same") {
      out.push(p);
      return;
    }
    const first = i === 0;
    const last = i === parts.length - 1;
    const keepHead = first ? 0 : context;
    const keepTail = last ? 0 : context;
    if (p.text.length <= keepHead + keepTail + 40) {
      out.push(p);
      return;
    }
    let head = p.text.slice(0, keepHead);
    let tail = p.text.slice(p.text.length - keepTail);
    // Prefer whole lines: cut the kept head after its last line break, the tail after its first.
    const hb = head.lastIndexOf("\n");
    if (hb > keepHead / 2) head = head.slice(0, hb + 1);
    const tb = tail.indexOf("\n");
    if (tb >= 0 && tb < keepTail / 2) tail = tail.slice(tb + 1);
    const skipped = p.text.slice(head.length, p.text.length - tail.length);
    if (head) out.push({ kind: "same", text: head });
    out.push({ kind: "skip", chars: skipped.length, lines: countLines(skipped) });
    if (tail) out.push({ kind: "same", text: tail });
  });
  return out;
}

/** Characters removed and added. */
export function diffCounts(parts: DiffPart[]): { removed: number; added: number } {
  let removed = 0;
  let added = 0;
  for (const p of parts) {
    if (p.kind === "removed") removed += p.text.length;
    else if (p.kind === "added") added += p.text.length;
  }
  return { removed, added };
}
