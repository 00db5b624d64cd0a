/** The detail panel: the full image, its actions and its metadata. */
import type { Detail } from "./protocol";

export type DetailAction = "recall" | "img2img" | "canvas" | "rerun";

export function DetailPanel({
  detail,
  onClose,
  onStar,
  onAction,
  onDelete,
}: {
  detail: Detail & { url: string | null };
  onClose: () => void;
  onStar: (starred: boolean) => void;
  onAction: (kind: DetailAction) => void;
  onDelete: () => void;
}) {
  return (
    <aside className="inb-detail">
      <div className="inb-detail-head">
        <strong>{detail.width}×{detail.height}</strong>
        <button className="inb-close" onClick={onClose} aria-label="Close">
          ✕
        </button>
      </div>
      {detail.url && <img className="inb-detail-img" src={detail.url} alt={detail.image_name} />}
      <div className="inb-detail-actions">
        <button onClick={() => onStar(!detail.starred)}>{detail.starred ? "★ Unstar" : "☆ Star"}</button>
        <button onClick={() => onAction("recall")}>Recall graph</button>
        <button onClick={() => onAction("img2img")}>Use as img2img</button>
        <button onClick={() => onAction("canvas")}>Use on canvas</button>
        <button onClick={() => onAction("rerun")}>Re-run, new seed</button>
        <button className="inb-danger" onClick={onDelete}>
          Delete
        </button>
      </div>
      <dl className="inb-meta">
        {(
          [
            ["Prompt", detail.positive_prompt],
            ["Negative", detail.negative_prompt],
            ["Model", detail.model_name && `${detail.model_name}${detail.model_base ? ` (${detail.model_base})` : ""}`],
            ["Seed", detail.seed],
            ["Steps", detail.steps],
            ["CFG", detail.cfg_scale],
            ["Scheduler", detail.scheduler],
            ["Board", detail.board_name ?? "Uncategorized"],
            ["Created", new Date(detail.created_at).toLocaleString()],
            ["Name", detail.image_name],
          ] as [string, unknown][]
        )
          .filter(([, v]) => v !== null && v !== undefined && v !== "")
          .map(([k, v]) => (
            <div key={k} className="inb-meta-row" data-key={k.toLowerCase()}>
              <dt>{k}</dt>
              <dd>{String(v)}</dd>
            </div>
          ))}
      </dl>
      <details>
        <summary>All metadata</summary>
        <pre className="inb-meta-json">{JSON.stringify(detail.metadata, null, 2)}</pre>
      </details>
    </aside>
  );
}
