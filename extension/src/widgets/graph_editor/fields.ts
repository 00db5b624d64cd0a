/**
 * How to edit a field, read from its schema: which widget, limits and step for numbers,
 * choices for enums, and how a typed value is turned into what the kernel expects.
 */
import type { TypeDescriptor } from "../../shared/types";
import type { FieldSchema } from "./protocol";

export type EditorKind = "int" | "float" | "slider" | "text" | "textarea" | "enum" | "bool" | "json" | "model" | "image";

export interface Editor {
  kind: EditorKind;
  min?: number;
  max?: number;
  step?: number;
  choices?: (string | number | boolean | null)[];
  nullable: boolean;
}

/** Numeric limits from a JSON schema (possibly inside anyOf for optional fields). */
export function limits(schema: Record<string, unknown> | undefined): { min?: number; max?: number; step?: number } {
  if (!schema) return {};
  const parts = [schema, ...((schema.anyOf as Record<string, unknown>[] | undefined) ?? [])];
  const out: { min?: number; max?: number; step?: number } = {};
  for (const p of parts) {
    if (typeof p.minimum === "number") out.min = p.minimum;
    if (typeof p.maximum === "number") out.max = p.maximum;
    if (typeof p.exclusiveMinimum === "number") out.min = p.exclusiveMinimum;
    if (typeof p.exclusiveMaximum === "number") out.max = p.exclusiveMaximum;
    if (typeof p.multipleOf === "number") out.step = p.multipleOf;
  }
  return out;
}

export function editorFor(f: FieldSchema): Editor {
  const t: TypeDescriptor = f.type;
  const nullable = !!t.optional;
  const hint = f.ui_hint ?? null;
  const lim = limits(f.schema);
  switch (t.kind) {
    case "int":
    case "float": {
      const step = lim.step ?? (t.kind === "int" ? 1 : undefined);
      const slider = hint === "slider" && lim.min !== undefined && lim.max !== undefined;
      return { kind: slider ? "slider" : t.kind, ...lim, step: step ?? (slider ? (lim.max! - lim.min!) / 100 : undefined), nullable };
    }
    case "str":
      return { kind: hint === "textarea" ? "textarea" : "text", nullable };
    case "bool":
      return { kind: "bool", nullable };
    case "enum":
      return { kind: "enum", choices: t.values, nullable };
    case "class":
      // model pickers and catalog image pickers for InvokeAI's reference fields
      if (t.name === "ModelIdentifierField") return { kind: "model", nullable };
      if (t.name === "ImageField" || t.bases?.includes("ImageField")) return { kind: "image", nullable };
      return { kind: "json", nullable };
    default:
      return { kind: "json", nullable };
  }
}

/** The value a field shows: the literal set on the node, else the schema default. */
export function shownValue(f: FieldSchema, values: Record<string, unknown>): unknown {
  if (f.name in values) return values[f.name];
  return f.schema?.default;
}

/** Parse what the person typed into the value to send; throws with a message on bad input. */
export function parseInput(ed: Editor, text: string): unknown {
  const s = text.trim();
  if (s === "" && ed.nullable) return null;
  switch (ed.kind) {
    case "int":
    case "float":
    case "slider": {
      const n = Number(s);
      if (s === "" || !Number.isFinite(n)) throw new Error(`${JSON.stringify(text)} is not a number`);
      if (ed.kind === "int" && !Number.isInteger(n)) throw new Error(`${s} is not a whole number`);
      return n;
    }
    case "json":
      try {
        return JSON.parse(s === "" ? "null" : s);
      } catch {
        throw new Error("not valid JSON");
      }
    default:
      return text;
  }
}
