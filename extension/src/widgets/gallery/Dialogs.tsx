/** The delete confirmation and the toast line. */
export type Toast = { kind: "error" | "info"; text: string };

export function ConfirmDelete({ names, onCancel, onConfirm }: { names: string[]; onCancel: () => void; onConfirm: () => void }) {
  return (
    <div className="inb-modal-back">
      <div className="inb-modal" role="dialog">
        <p>
          Delete {names.length} image{names.length === 1 ? "" : "s"}? The files are removed from disk.
        </p>
        <div className="inb-modal-buttons">
          <button onClick={onCancel}>Cancel</button>
          <button className="inb-danger inb-confirm-delete" onClick={onConfirm}>
            Delete
          </button>
        </div>
      </div>
    </div>
  );
}

export function ToastLine({ toast }: { toast: Toast }) {
  return <div className={`inb-gtoast inb-gtoast-${toast.kind}`}>{toast.text}</div>;
}
