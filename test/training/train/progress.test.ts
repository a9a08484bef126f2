import { describe, expect, it } from "vitest";
import { ProgressBar, formatDuration, progressLine, runRemainingText } from "../../../training/train/progress.ts";

describe("progress", () => {
  it("shows done/total, images/s, ETA, loss and accuracy", () => {
    const line = progressLine(
      "wide-kd epoch 2/30",
      { done: 2560, total: 10240, imagesPerSecond: 64, loss: 0.51234, accuracy: 0.8125 },
      8,
    );
    expect(line).toBe("wide-kd epoch 2/30 [=>      ] 2560/10240 64 img/s ETA 2m00s loss 0.5123 acc 81.3%");
    expect(progressLine("x", { done: 10, total: 10, imagesPerSecond: 5, loss: 1, accuracy: 1 }, 4)).toMatch(
      /^x \[====\] 10\/10 5 img\/s ETA 0s/,
    );
    expect([formatDuration(59.4), formatDuration(3599), formatDuration(7260), formatDuration(Infinity)]).toEqual([
      "59s",
      "59m59s",
      "2h01m",
      "?",
    ]);
  });

  it("adds the whole run's remaining sub-runs, epochs and ETA", () => {
    const stats = {
      done: 2560,
      total: 10240,
      imagesPerSecond: 64,
      loss: 0.5,
      accuracy: 0.8,
      run: { seconds: 7300, epochs: 12.25, subRuns: 2 },
    };
    expect(progressLine("x", stats, 4)).toMatch(/ acc 80\.0% \| run: 2 sub-runs, 13 epochs left, ETA 2h01m$/);
    expect(runRemainingText({ seconds: 30, epochs: 1, subRuns: 1 })).toBe("1 sub-run, 1 epoch left, ETA 30s");
    expect(runRemainingText({ seconds: Infinity, epochs: 3, subRuns: 1 })).toBe("1 sub-run, 3 epochs left, ETA ?");
    expect(runRemainingText({ seconds: 0, epochs: 0, subRuns: 0 })).toBe("nothing left");
  });

  it("redraws in place on a terminal and writes a line at most every interval elsewhere", () => {
    const stats = { done: 1, total: 4, imagesPerSecond: 1, loss: 1, accuracy: 0 };
    const tty = {
      text: "",
      isTTY: true,
      write(s: string) {
        this.text += s;
      },
    };
    new ProgressBar(tty, 1000).update("a", stats);
    expect(tty.text.startsWith("\r\x1b[2Ka [")).toBe(true);
    const log = {
      text: "",
      isTTY: false,
      write(s: string) {
        this.text += s;
      },
    };
    const bar = new ProgressBar(log, 60_000);
    bar.update("a", stats);
    bar.update("a", { ...stats, done: 2 });
    expect(log.text.split("\n").filter(Boolean)).toHaveLength(1);
    const off = {
      text: "",
      isTTY: true,
      write(s: string) {
        this.text += s;
      },
    };
    new ProgressBar(off, 0, false).update("a", stats);
    expect(off.text).toBe("");
  });
});
