// How far a zlib stream inflates, counted with a cap: memory and time stay bounded whatever the stream
// holds, and nothing inflated is kept.

/**
 * Bytes the zlib stream made of `parts` inflates to, counting stopped once past `limit` (so at most
 * limit + one block). A corrupt or truncated stream counts what it gave before its error.
 */
export async function inflatedLength(parts: readonly Uint8Array[], limit: number): Promise<number> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  void (async () => {
    for (const part of parts) await writer.write(part as Uint8Array<ArrayBuffer>);
    await writer.close();
  })().catch(() => undefined);
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return total;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => undefined);
        return total;
      }
    }
  } catch {
    return total;
  }
}
