// The Worker isolate's own memory, read through V8's inspector of a workerd that Miniflare runs with
// `inspectorPort`, apart from the workerd process (which also holds Miniflare's workers, the local
// D1 database's SQLite, queues and the runtime itself):
//   heapBytes  V8's JS heap in use right after a garbage collection (Runtime.queryObjects collects
//              before it walks the heap; then Runtime.getHeapUsage): what the Worker keeps alive, not
//              garbage not yet collected (workerd's inspector does not answer HeapProfiler.collectGarbage);
//   wasmBytes  the byteLength of every WebAssembly.Memory in the isolate (onnxruntime-web's linear
//              memory, which the heap figure does not count), found with Runtime.queryObjects.
// `performance.measureUserAgentSpecificMemory` would be the in-Worker way, but it needs cross-origin
// isolation, which a Worker does not have (workerd does not offer it), hence the inspector.
import { type Miniflare, fetch as miniflareFetch } from "miniflare";

export interface IsolateMemory {
  heapBytes: number;
  wasmBytes: number;
}

interface Target {
  id: string;
  webSocketDebuggerUrl: string;
}

export interface IsolateInspector {
  sample(): Promise<IsolateMemory>;
  close(): void;
}

/**
 * Connects to the isolate of the user Worker `name` (wrangler.toml's name) in Miniflare's workerd.
 * Sample after the Worker has served a request: its context does not exist before.
 */
export async function inspectIsolate(mf: Miniflare, name: string): Promise<IsolateInspector> {
  const inspector = await mf.getInspectorURL();
  const targets = (await (await fetch(`http://${inspector.host}/json`)).json()) as Target[];
  const target = targets.find((t) => t.id === `core:user:${name}`);
  if (!target)
    throw new Error(`no inspector target core:user:${name}; targets: ${targets.map((t) => t.id).join(", ")}`);
  const ws = (
    await miniflareFetch(target.webSocketDebuggerUrl.replace(/^ws:/, "http:"), { headers: { Upgrade: "websocket" } })
  ).webSocket;
  if (!ws) throw new Error(`the inspector at ${target.webSocketDebuggerUrl} did not accept a WebSocket`);
  ws.accept();
  let id = 0;
  let contextId: number | undefined;
  const pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(String(e.data)) as {
      id?: number;
      method?: string;
      params?: { context?: { id: number } };
      result?: Record<string, unknown>;
      error?: { message: string };
    };
    if (m.method === "Runtime.executionContextCreated" && m.params?.context) contextId = m.params.context.id;
    if (m.id === undefined) return;
    const waiter = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) waiter?.reject(new Error(`inspector: ${m.error.message}`));
    else waiter?.resolve(m.result ?? {});
  });
  const call = <T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const i = ++id;
      pending.set(i, { resolve: resolve as (r: Record<string, unknown>) => void, reject });
      ws.send(JSON.stringify({ id: i, method, params }));
    });
  // Contexts are announced once enabled; the Worker's exists after its first request.
  await call("Runtime.enable");

  const wasmBytes = async () => {
    const proto = await call<{ result: { objectId: string } }>("Runtime.evaluate", {
      expression: "WebAssembly.Memory.prototype",
      ...(contextId === undefined ? {} : { contextId }),
    });
    const found = await call<{ objects: { objectId: string } }>("Runtime.queryObjects", {
      prototypeObjectId: proto.result.objectId,
    });
    const sum = await call<{ result: { value: number } }>("Runtime.callFunctionOn", {
      objectId: found.objects.objectId,
      functionDeclaration: "function () { return this.reduce((n, m) => n + m.buffer.byteLength, 0); }",
      returnByValue: true,
    });
    await call("Runtime.releaseObjectGroup", { objectGroup: "" }).catch(() => undefined);
    return sum.result.value;
  };

  return {
    async sample() {
      // queryObjects collects garbage before it walks the heap, so the heap read after it is what is live.
      const wasm = await wasmBytes();
      const heap = await call<{ usedSize: number }>("Runtime.getHeapUsage");
      return { heapBytes: heap.usedSize, wasmBytes: wasm };
    },
    close() {
      ws.close();
    },
  };
}
