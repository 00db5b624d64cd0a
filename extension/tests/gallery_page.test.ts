import { Binary, Bool, Table, Utf8, tableToIPC, vectorFromArray } from "apache-arrow";
import { expect, it } from "vitest";
import { readPage, toBase64 } from "../src/widgets/gallery/page";

it("turns a page's thumbnail column into data URLs and leaves the rows without the bytes", async () => {
  const webp = new Uint8Array([82, 73, 70, 70, 1, 2, 3]);
  const table = new Table({
    image_name: vectorFromArray(["a.png", "b.png"], new Utf8()),
    has_thumbnail: vectorFromArray([true, false], new Bool()),
    thumbnail: vectorFromArray([webp, new Uint8Array(0)], new Binary()),
  });
  const tiles = readPage(tableToIPC(table, "stream"));
  expect(tiles.map((t) => t.image_name)).toEqual(["a.png", "b.png"]);
  expect("thumbnail" in tiles[0]).toBe(false);
  expect(tiles[1].url).toBeNull();
  const blob = await (await fetch(tiles[0].url!)).arrayBuffer();
  expect(new Uint8Array(blob)).toEqual(webp);
  expect(tiles[0].url!.startsWith("data:image/webp;base64,")).toBe(true);
});

it("encodes bytes as base64 across its 32 kB chunks", () => {
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString("base64"));
  expect(toBase64(new Uint8Array(0))).toBe("");
});
