import { expect, it } from "vitest";
import { roomBelow } from "../src/shared/dock";

it("a docked view gets the panel's height below its top, less a margin, never too little", () => {
  expect(roomBelow(0, 900)).toBe(894);
  expect(roomBelow(30.5, 900, 6)).toBe(863);
  expect(roomBelow(800, 900)).toBe(160);
});
