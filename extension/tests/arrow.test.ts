import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { readRecords } from "../src/shared/arrow";

it("reads the Arrow IPC records written by invoke_nb.widgets.records_to_ipc", () => {
  const ipc = readFileSync(new URL("./fixtures/records.arrow", import.meta.url));
  const expected = JSON.parse(readFileSync(new URL("./fixtures/records.json", import.meta.url), "utf8"));
  const rows = readRecords(new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength));
  expect(rows).toEqual(expected.rows);
  expect(rows[1].seed).toBe(2 ** 40);
});
