/** What can be done to the selected images: star, unstar, move to a board, delete, clear. */
import type { Boards } from "./protocol";

export function SelectionBar({
  count,
  boards,
  onStar,
  onMove,
  onDelete,
  onClear,
}: {
  count: number;
  boards: Boards | null;
  onStar: (starred: boolean) => void;
  onMove: (boardId: string | null) => void;
  onDelete: () => void;
  onClear: () => void;
}) {
  return (
    <div className="inb-selbar" data-count={count}>
      <button onClick={() => onStar(true)}>★ Star</button>
      <button onClick={() => onStar(false)}>☆ Unstar</button>
      <select
        className="inb-move"
        value=""
        onChange={(e) => {
          const v = e.target.value;
          if (v) onMove(v === "__none" ? null : v);
        }}
      >
        <option value="">Move to board…</option>
        <option value="__none">Uncategorized</option>
        {boards?.boards.map((b) => (
          <option key={b.board_id} value={b.board_id}>
            {b.board_name}
          </option>
        ))}
      </select>
      <button className="inb-danger" onClick={onDelete}>
        Delete
      </button>
      <button onClick={onClear}>Clear selection</button>
    </div>
  );
}
