import { TransferMeter } from "../../activities/images/transfer-meter";

/** The stall rules on a clock of the test's own (milliseconds from 0). */
describe("TransferMeter", () => {
  const policy = { windowMs: 10_000, minBytes: 1_000, idleMs: 5_000, retries: 0 };

  test("a steady transfer above the floor never stalls", () => {
    const meter = new TransferMeter(policy, 0, 0);
    for (let t = 1_000; t <= 60_000; t += 1_000) {
      meter.observe(t / 5, t); // 200 B/s: 2000 bytes per 10 s window
      expect(meter.stallReason(t)).toBeNull();
    }
  });

  test("a trickle stalls once a whole window is below the floor; silence at the idle limit", () => {
    const trickle = new TransferMeter(policy, 500, 0);
    for (let t = 1_000; t < 10_000; t += 1_000) {
      trickle.observe(500 + t / 1_000, t);
      expect(trickle.stallReason(t)).toBeNull();
    }
    trickle.observe(510, 10_000);
    expect(trickle.stallReason(10_000)).toMatch(/^10 bytes in 10 s, below the floor/);
    const silent = new TransferMeter(policy, 0, 0);
    silent.observe(5_000, 1_000);
    expect(silent.stallReason(5_999)).toBeNull();
    expect(silent.stallReason(6_000)).toBe("no data for 5 s");
  });

  test("time our own disk held the transfer up is not the server's", () => {
    const meter = new TransferMeter(policy, 0, 0);
    meter.observe(100, 1_000);
    meter.excuse(8_000);
    expect(meter.stallReason(12_000)).toBeNull();
    expect(meter.stallReason(13_000)).toBe("no data for 5 s");
  });
});
