/**
 * Type descriptors and the connection compatibility rule.
 *
 * The Python registry (invoke_nb.nodes.types.type_descriptor) exports these small JSON trees
 * in every node schema. `compatible` must decide exactly as Python's `compatible()` does, so
 * the editor refuses the same edges the Python Graph refuses; tests/fixtures/compat_cases.json
 * is generated from the Python function and checked here.
 */

export type Scalar = string | number | boolean | null;

export type TypeDescriptor =
  | { kind: "any"; optional?: boolean }
  | { kind: "none"; optional?: boolean }
  | { kind: "int" | "float" | "str" | "bool" | "dict"; optional?: boolean }
  | { kind: "enum"; base: string; values: Scalar[]; name?: string; optional?: boolean }
  | { kind: "list"; item: TypeDescriptor; optional?: boolean }
  | { kind: "union"; options: TypeDescriptor[]; optional?: boolean }
  | { kind: "class"; name: string; bases?: string[]; optional?: boolean };

const PLAIN = new Set(["int", "float", "str", "bool", "dict", "none"]);

/** Whether an output of type `src` may feed an input of type `dst`. */
export function compatible(src: TypeDescriptor, dst: TypeDescriptor): boolean {
  const sk = src.kind;
  const dk = dst.kind;
  if (sk === "any" || dk === "any") return true;
  if (src.kind === "union") return src.options.every((o) => compatible(o, dst));
  if (dst.kind === "union") return dst.options.some((o) => compatible(src, o));
  if (dst.kind === "list") return src.kind === "list" ? compatible(src.item, dst.item) : false;
  if (sk === "list") return false;
  if (sk === dk && PLAIN.has(sk)) return true;
  if (sk === "int" && dk === "float") return true;
  if ((sk === "int" || sk === "float") && dk === "str") return true;
  if (src.kind === "enum") {
    if (dst.kind === "enum") return src.values.every((v) => dst.values.some((w) => sameValue(v, w)));
    return src.base === dk || (src.base === "int" && dk === "float");
  }
  if (dst.kind === "enum") return sk === dst.base || (sk === "str" && dst.base === "str");
  if (src.kind === "class" && dst.kind === "class") {
    return src.name === dst.name || (src.bases ?? []).includes(dst.name);
  }
  return false;
}

/** Python set membership: 1 == 1.0 == True, but "1" differs from 1. */
function sameValue(a: Scalar, b: Scalar): boolean {
  const num = (x: Scalar) => (typeof x === "boolean" ? Number(x) : x);
  return num(a) === num(b);
}

/** A short human-readable name of a descriptor, as Python's `describe()` writes it. */
export function describe(d: TypeDescriptor): string {
  let s: string;
  switch (d.kind) {
    case "list":
      s = `list[${describe(d.item)}]`;
      break;
    case "union":
      s = d.options.map(describe).join(" | ");
      break;
    case "class":
      s = d.name;
      break;
    case "enum":
      s =
        "Literal[" +
        d.values.slice(0, 6).map(pyRepr).join(", ") +
        (d.values.length > 6 ? ", ..." : "") +
        "]";
      break;
    default:
      s = d.kind;
  }
  return s + (d.optional ? " | None" : "");
}

function pyRepr(v: Scalar): string {
  if (typeof v === "string") return `'${v}'`;
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  return String(v);
}
