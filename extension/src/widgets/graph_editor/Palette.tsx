/** The list of every registered node type (custom ones included), searchable, by category. */
import { useMemo, useState } from "react";
import type { NodeSchema, Schemas } from "./protocol";

export function matches(s: NodeSchema, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const hay = [s.type, s.title, s.category, s.description, ...s.tags].join(" ").toLowerCase();
  return words.every((w) => hay.includes(w));
}

export function Palette({ schemas, onAdd }: { schemas: Schemas; onAdd: (type: string) => void }) {
  const [query, setQuery] = useState("");
  const groups = useMemo(() => {
    const by = new Map<string, NodeSchema[]>();
    for (const s of Object.values(schemas)) {
      if (!matches(s, query)) continue;
      const list = by.get(s.category) ?? [];
      list.push(s);
      by.set(s.category, list);
    }
    return [...by.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [schemas, query]);
  return (
    <div className="inb-palette">
      <input
        className="inb-search"
        type="search"
        placeholder="Search nodes…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          const first = groups[0]?.[1][0];
          if (e.key === "Enter" && first) onAdd(first.type);
        }}
      />
      <div className="inb-palette-list">
        {groups.map(([cat, list]) => (
          <div key={cat} className="inb-palette-group">
            <div className="inb-palette-category">{cat}</div>
            {list
              .sort((a, b) => a.title.localeCompare(b.title))
              .map((s) => (
                <button
                  key={s.type}
                  className="inb-palette-item"
                  data-type={s.type}
                  title={`${s.type}: ${s.description}`}
                  onClick={() => onAdd(s.type)}
                >
                  {s.title}
                  <span className="inb-palette-type">{s.type}</span>
                </button>
              ))}
          </div>
        ))}
        {groups.length === 0 && <div className="inb-empty">no node matches “{query}”</div>}
      </div>
    </div>
  );
}
