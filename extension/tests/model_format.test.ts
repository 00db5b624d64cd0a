import { expect, it } from "vitest";
import { bytes, fraction, hitRate } from "../src/widgets/model_view/format";

it("formats sizes in binary units", () => {
  expect(bytes(0)).toBe("0 B");
  expect(bytes(1536)).toBe("1.5 KiB");
  expect(bytes(30 * 1024 * 1024)).toBe("30.0 MiB");
  expect(bytes(200 * 1024 ** 3)).toBe("200 GiB");
  expect(bytes(null)).toBe("");
});

it("turns progress into a clamped fraction, or null when the total is unknown", () => {
  expect(fraction(50, 200)).toBe(0.25);
  expect(fraction(300, 200)).toBe(1);
  expect(fraction(5, null)).toBeNull();
  expect(fraction(5, 0)).toBeNull();
});

it("reports the cache hit rate", () => {
  expect(hitRate(3, 1)).toBe("75%");
  expect(hitRate(0, 0)).toBe("–");
});
