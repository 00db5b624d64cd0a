import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { checkConnection, outputType } from "../src/widgets/graph_editor/connect";
import type { GraphJSON, Schemas } from "../src/widgets/graph_editor/protocol";

// Every (output, input) pair of a small graph with Python Graph.connect's verdict.
const fixture = JSON.parse(readFileSync(new URL("./fixtures/connection_cases.json", import.meta.url), "utf8")) as {
  graph: GraphJSON;
  schemas: Schemas;
  cases: { edge: [string, string, string, string]; ok: boolean; error: string }[];
};

it("accepts exactly the connections the Python Graph accepts", () => {
  const wrong: string[] = [];
  for (const c of fixture.cases) {
    const [source, source_field, destination, destination_field] = c.edge;
    const r = checkConnection(fixture.graph, fixture.schemas, { source, source_field, destination, destination_field });
    if (r.ok !== c.ok) wrong.push(`${c.edge.join(" ")}: python ${c.ok ? "accepts" : c.error}, editor ${r.ok ? "accepts" : r.reason}`);
  }
  expect(wrong).toEqual([]);
  expect(fixture.cases.filter((c) => c.ok).length).toBeGreaterThan(10);
  expect(fixture.cases.filter((c) => !c.ok).length).toBeGreaterThan(10);
});

it("gives a reason naming the ports and types", () => {
  const r = checkConnection(fixture.graph, fixture.schemas, {
    source: "s1",
    source_field: "value",
    destination: "a2",
    destination_field: "b",
  });
  expect(r).toEqual({ ok: false, reason: "s1.value (str) does not fit a2.b (int)" });
  const dup = checkConnection(fixture.graph, fixture.schemas, {
    source: "n1",
    source_field: "value",
    destination: "a1",
    destination_field: "a",
  });
  expect(dup.ok ? "" : dup.reason).toMatch(/already fed by n1.value/);
  const cyc = checkConnection(fixture.graph, fixture.schemas, {
    source: "a2",
    source_field: "value",
    destination: "a1",
    destination_field: "b",
  });
  expect(cyc.ok ? "" : cyc.reason).toMatch(/cycle/);
});

it("infers iterate.item and collect.collection from what feeds them", () => {
  expect(outputType(fixture.graph, fixture.schemas, "it", "item")).toEqual({ kind: "int" });
  expect(outputType(fixture.graph, fixture.schemas, "co", "collection")).toEqual({ kind: "list", item: { kind: "int" } });
});
