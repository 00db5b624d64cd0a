import { describe, expect, it } from "vitest";
import { editorFor } from "../src/widgets/graph_editor/fields";
import type { FieldSchema } from "../src/widgets/graph_editor/protocol";

const field = (type: FieldSchema["type"]): FieldSchema => ({ name: "f", title: "F", description: "", type });

describe("reference fields get pickers", () => {
  it("model identifier fields get a model picker", () => {
    expect(editorFor(field({ kind: "class", name: "ModelIdentifierField", bases: [] })).kind).toBe("model");
    expect(editorFor(field({ kind: "class", name: "ModelIdentifierField", optional: true })).nullable).toBe(true);
  });
  it("image fields (and subclasses) get an image picker", () => {
    expect(editorFor(field({ kind: "class", name: "ImageField", bases: [] })).kind).toBe("image");
    expect(editorFor(field({ kind: "class", name: "SpecialImage", bases: ["ImageField"] })).kind).toBe("image");
  });
  it("other classes stay JSON", () => {
    expect(editorFor(field({ kind: "class", name: "LatentsField", bases: [] })).kind).toBe("json");
  });
});
