// How far a zlib stream inflates, counted with a cap: memory and time stay bounded whatever the stream
// holds, and nothing inflated is kept. fflate (the inflater fast-png uses), fed a slice at a time:
// deflate inflates at most 1032 bytes per input byte, so a slice of about limit / 1032 bytes inflates
// to about the cap at most, and a bomb at that ratio is over it after one slice. (A DecompressionStream
// inflates everything written to it, even once its reader has stopped: 200 MB took workerd seconds
// after the first 1 MB had been counted.)
import { Unzlib } from "fflate";

/** Deflate's largest ratio: a 258-byte match coded in 2 bits. */
const MAX_RATIO = 1032;

/**
 * Bytes the zlib stream made of `parts` inflates to, counting stopped once past `limit`, by at most
 * `overshoot` (the most one slice inflates to, and the most held at a time; larger slices are faster).
 * A corrupt or truncated stream counts what it gave before its error.
 */
export function inflatedLength(parts: readonly Uint8Array[], limit: number, overshoot = limit): number {
  let total = 0;
  const inflater = new Unzlib((chunk) => {
    total += chunk.length;
  });
  // Each push costs a copy of fflate's 32 KiB window, so many small parts are pushed as full slices.
  const slice = new Uint8Array(Math.max(1024, Math.ceil(overshoot / MAX_RATIO) + 64));
  let filled = 0;
  try {
    for (const part of parts) {
      for (let at = 0; at < part.length; ) {
        const n = Math.min(slice.length - filled, part.length - at);
        slice.set(part.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled < slice.length) continue;
        inflater.push(slice.slice());
        filled = 0;
        if (total > limit) return total;
      }
    }
    inflater.push(slice.subarray(0, filled), true);
  } catch {
    // Corrupt: what it gave so far is the count.
  }
  return total;
}
