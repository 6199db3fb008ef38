import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

// A channel the test can push progress into (the real one needs the Tauri runtime).
const channels: { onmessage: ((p: unknown) => void) | null }[] = [];
vi.mock("@tauri-apps/api/core", () => ({
  Channel: class {
    onmessage: ((p: unknown) => void) | null = null;
    constructor() {
      channels.push(this);
    }
  },
}));
const cancelJob = vi.fn();
let backendRevision = 0;
let patchChannel: { onmessage: ((p: unknown) => void) | null } | null = null;
vi.mock("./ipc", async (importOriginal) => {
  const real = await importOriginal<typeof import("./ipc")>();
  return {
    ...real,
    commands: {
      ...real.commands,
      cancelJob: (id: number) => cancelJob(id),
      sessionRevision: async () => backendRevision,
      watchPatchEvents: async (c: { onmessage: ((p: unknown) => void) | null }) => {
        patchChannel = c;
        return { events: [], undoable: [], redoable: [] };
      },
      openModel: async () => ({ status: "ok", data: { path: "/m/b.gguf" } }),
      listTensors: async () => ({ status: "ok", data: [] }),
      readMetadata: async () => ({ status: "ok", data: [] }),
    },
  };
});

import { IpcFailure } from "./ipc";
import { useJobs, type Jobs } from "./jobs";
import { SessionProvider, useSession, type Session } from "./session";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement | null = null;
let root: Root | null = null;
/** What the tests read: the session and the jobs, as one object. */
let session: (Session & Jobs) | null = null;
let sessionOnly: Session | null = null;
/** How many times a component that reads only the session rendered. */
let sessionRenders = 0;

function Probe() {
  session = { ...useSession(), ...useJobs() };
  return null;
}

function SessionConsumer() {
  sessionOnly = useSession();
  sessionRenders += 1;
  return null;
}

/** The channel of the job that started last (the session's own patch channel comes first). */
const jobChannel = () => channels[channels.length - 1]!;

function mount() {
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
  act(() =>
    root!.render(
      <SessionProvider>
        <Probe />
        <SessionConsumer />
      </SessionProvider>,
    ),
  );
}

/** A job the test finishes by hand. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const progress = (done: number, message: string) => ({ job: 1, stage: "read", done, total: 100, message });

beforeEach(() => {
  vi.useFakeTimers();
  channels.length = 0;
  cancelJob.mockReset();
  backendRevision = 0;
  patchChannel = null;
  sessionRenders = 0;
  mount();
});
afterEach(() => {
  act(() => root?.unmount());
  host?.remove();
  host = null;
  vi.useRealTimers();
});

describe("runJob with quietMs", () => {
  it("a job that ends before quietMs never shows and leaves the note alone", async () => {
    const d = deferred<number>();
    let out: Promise<number> | null = null;
    act(() => {
      out = session!.runJob("statistics of t", () => d.promise, { quietMs: 200 });
    });
    act(() => vi.advanceTimersByTime(150));
    expect(session!.job).toBeNull();
    await act(async () => d.resolve(7));
    expect(await out!).toBe(7);
    act(() => vi.advanceTimersByTime(500));
    expect(session!.job).toBeNull();
    expect(session!.note).toBeNull();
  });

  it("a job still running after quietMs shows with the progress it already had, then its outcome", async () => {
    const d = deferred<string>();
    let outcome: Promise<unknown> | null = null;
    act(() => {
      // runJob rethrows the failure to its caller (the screen): keep it.
      outcome = session!.runJob("statistics of t", () => d.promise, { quietMs: 200 }).catch((e: unknown) => e);
    });
    act(() => jobChannel().onmessage!(progress(10, "statistics and histogram of t")));
    expect(session!.job).toBeNull();
    act(() => vi.advanceTimersByTime(200));
    expect(session!.job?.label).toBe("statistics of t");
    expect(session!.job?.progress?.done).toBe(10);
    expect(session!.job?.messages).toBe(1);
    act(() => jobChannel().onmessage!(progress(60, "statistics and histogram of t")));
    expect(session!.job?.progress?.done).toBe(60);
    // Cancel from the status bar reaches the backend with the job's id.
    act(() => session!.cancelJob());
    expect(cancelJob).toHaveBeenCalledWith(session!.job!.id);
    expect(session!.job?.canceling).toBe(true);
    await act(async () => {
      d.reject(new IpcFailure({ code: "Canceled", message: "canceled" }));
      await d.promise.catch(() => {});
    });
    expect(session!.job).toBeNull();
    expect(session!.note?.text).toBe("statistics of t: canceled");
    expect(((await outcome!) as IpcFailure).code).toBe("Canceled");
  });

  it("without quietMs the bar shows at once (as before)", async () => {
    const d = deferred<void>();
    act(() => {
      void session!.runJob("save m.gguf", () => d.promise);
    });
    expect(session!.job?.label).toBe("save m.gguf");
    await act(async () => d.resolve());
    expect(session!.job).toBeNull();
    expect(session!.note?.text).toBe("save m.gguf: done");
  });
});

describe("open", () => {
  it("a job of the old model that ends after another model opened leaves no stale line", async () => {
    const d = deferred<void>();
    act(() => {
      void session!.runJob("statistics of blk.1.attn_q.weight", () => d.promise);
    });
    await act(async () => {
      await session!.open("/m/b.gguf");
    });
    expect(session!.note?.text).toBe("open b.gguf: done");
    await act(async () => d.resolve());
    expect(session!.note?.text).toBe("open b.gguf: done");
  });

  it("a quiet job of the old model never shows once another model opened (its quiet period ends later)", async () => {
    const d = deferred<void>();
    act(() => {
      void session!.runJob("statistics of blk.1.attn_q.weight", () => d.promise, { quietMs: 300 });
    });
    expect(session!.job).toBeNull();
    await act(async () => {
      await session!.open("/m/b.gguf");
    });
    expect(session!.note?.text).toBe("open b.gguf: done");
    // The statistics job's quiet period ends while it still runs: the bar stays on the open.
    await act(async () => {
      vi.advanceTimersByTime(1000);
    });
    expect(session!.job).toBeNull();
    expect(session!.note?.text).toBe("open b.gguf: done");
    await act(async () => d.resolve());
    expect(session!.note?.text).toBe("open b.gguf: done");
  });
});

describe("what re-renders", () => {
  it("progress messages re-render the jobs' consumers, not the session's", async () => {
    const d = deferred<void>();
    act(() => {
      void session!.runJob("statistics of t", () => d.promise);
    });
    const before = sessionRenders;
    for (let i = 1; i <= 20; i++) act(() => jobChannel().onmessage!(progress(i * 5, "statistics of t")));
    expect(session!.job?.messages).toBe(20);
    expect(sessionRenders).toBe(before);
    await act(async () => d.resolve());
    expect(session!.note?.text).toBe("statistics of t");
    expect(sessionRenders).toBe(before);
  });
});

describe("revision", () => {
  const event = (id: number) => ({ id, change: id, layer: "tensor", operation: "write", target: "t", source: null, file: null, bytesChanged: 4, bytesWritten: 4, timeUnixMs: 0, undoable: true });

  it("is pushed by a patch event, with no poll, and the event reaches the listeners", async () => {
    expect(patchChannel).not.toBeNull();
    expect(sessionOnly!.revision).toBe(0);
    backendRevision = 3;
    // Time alone changes nothing: there is no poll.
    await act(async () => {
      vi.advanceTimersByTime(5000);
    });
    expect(sessionOnly!.revision).toBe(0);
    const seen: number[] = [];
    const off = sessionOnly!.onPatchEvent((e) => seen.push(e.id));
    await act(async () => {
      patchChannel!.onmessage!(event(1));
    });
    expect(sessionOnly!.revision).toBe(3);
    expect(seen).toEqual([1]);
    off();
    backendRevision = 4;
    await act(async () => {
      patchChannel!.onmessage!(event(2));
    });
    expect(sessionOnly!.revision).toBe(4);
    expect(seen).toEqual([1]);
  });
});
