import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { matches } from "../src/widgets/graph_editor/Palette";
import { editorFor, limits, parseInput, shownValue } from "../src/widgets/graph_editor/fields";
import type { FieldSchema, Schemas } from "../src/widgets/graph_editor/protocol";

const schemas = (
  JSON.parse(readFileSync(new URL("./fixtures/connection_cases.json", import.meta.url), "utf8")) as { schemas: Schemas }
).schemas;

it("builds editors from real node schemas", () => {
  expect(editorFor(schemas.integer.inputs.value).kind).toBe("int");
  expect(editorFor(schemas.float.inputs.value).kind).toBe("float");
  expect(editorFor(schemas.string.inputs.value).kind).toMatch(/text/);
  expect(shownValue(schemas.add.inputs.b, {})).toBe(0);
  expect(shownValue(schemas.add.inputs.b, { b: 7 })).toBe(7);
});

it("reads limits (also inside anyOf) and makes sliders only with both limits", () => {
  expect(limits({ minimum: 1, maximum: 10, multipleOf: 2 })).toEqual({ min: 1, max: 10, step: 2 });
  expect(limits({ anyOf: [{ type: "integer", exclusiveMinimum: 0 }, { type: "null" }] })).toEqual({ min: 0 });
  const f = (schema: Record<string, unknown>, hint: string | null): FieldSchema => ({
    name: "x",
    title: "X",
    description: "",
    type: { kind: "float" },
    ui_hint: hint,
    schema,
  });
  expect(editorFor(f({ minimum: 0, maximum: 1 }, "slider"))).toMatchObject({ kind: "slider", min: 0, max: 1, step: 0.01 });
  expect(editorFor(f({ minimum: 0 }, "slider")).kind).toBe("float");
  const en: FieldSchema = { name: "s", title: "S", description: "", type: { kind: "enum", base: "str", values: ["euler", "ddim"] } };
  expect(editorFor(en)).toMatchObject({ kind: "enum", choices: ["euler", "ddim"] });
  expect(editorFor({ ...en, type: { kind: "class", name: "ModelIdentifierField" } }).kind).toBe("model");
  expect(editorFor({ ...en, type: { kind: "str" }, ui_hint: "textarea" }).kind).toBe("textarea");
});

it("parses typed input and names bad input", () => {
  expect(parseInput({ kind: "int", nullable: false }, " 42 ")).toBe(42);
  expect(() => parseInput({ kind: "int", nullable: false }, "4.5")).toThrow(/whole number/);
  expect(() => parseInput({ kind: "float", nullable: false }, "abc")).toThrow(/not a number/);
  expect(parseInput({ kind: "float", nullable: true }, "")).toBeNull();
  expect(parseInput({ kind: "json", nullable: false }, '{"key": "k"}')).toEqual({ key: "k" });
  expect(() => parseInput({ kind: "json", nullable: false }, "{")).toThrow(/JSON/);
});

it("palette search matches every word against type, title, category and tags", () => {
  expect(matches(schemas.add, "add")).toBe(true);
  expect(matches(schemas.add, "math add")).toBe(true);
  expect(matches(schemas.add, "math string")).toBe(false);
  expect(matches(schemas.string, "")).toBe(true);
});
