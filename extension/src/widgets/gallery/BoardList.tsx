/** Boards: the sidebar of wide views (all images, uncategorized, each board, a new board) and
 * the drop-down of narrow ones. */
import { useState } from "react";
import type { Boards } from "./protocol";

/** Both board pickers: the boards, the current one, pick one, create one. */
export interface BoardPickerProps {
  boards: Boards | null;
  current: string;
  onPick: (boardId: string) => void;
  onCreate: (name: string) => void;
}

export function BoardList({
  boards,
  current,
  onPick,
  onCreate,
}: BoardPickerProps) {
  const [newBoard, setNewBoard] = useState<string | null>(null);
  const boardButton = (id: string, label: string, count: number | undefined) => (
    <button
      key={id || "all"}
      className={"inb-board" + (current === id ? " inb-board-active" : "")}
      data-board={id}
      onClick={() => onPick(id)}
    >
      <span className="inb-board-name">{label}</span>
      <span className="inb-board-count">{count ?? ""}</span>
    </button>
  );
  return (
    <aside className="inb-boards">
      <div className="inb-boards-list">
        <div className="inb-boards-title">Boards</div>
        {boardButton("", "All images", boards?.all)}
        {boardButton(boards?.uncategorized_id ?? "none", "Uncategorized", boards?.uncategorized)}
        {boards?.boards.map((b) => boardButton(b.board_id, b.board_name, b.image_count))}
        {newBoard === null ? (
          <button className="inb-board inb-board-new" onClick={() => setNewBoard("")}>
            + New board
          </button>
        ) : (
          <input
            className="inb-board-input"
            autoFocus
            placeholder="board name, Enter"
            value={newBoard}
            onChange={(e) => setNewBoard(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") {
                setNewBoard(null);
                onCreate(newBoard);
              }
              if (e.key === "Escape") setNewBoard(null);
            }}
            onBlur={() => setNewBoard(null)}
          />
        )}
      </div>
    </aside>
  );
}

/** The boards as a drop-down (narrow views), with "+ New board…" asking for a name. */
export function BoardSelect({
  boards,
  current,
  onPick,
  onCreate,
}: BoardPickerProps) {
  return (
    <select
      className="inb-board-select"
      aria-label="Board"
      value={current}
      onChange={(e) => {
        if (e.target.value === "__new") {
          const name = window.prompt("New board name");
          if (name) onCreate(name);
        } else onPick(e.target.value);
      }}
    >
      <option value="">All images{boards ? ` (${boards.all})` : ""}</option>
      <option value={boards?.uncategorized_id ?? "none"}>
        Uncategorized{boards ? ` (${boards.uncategorized})` : ""}
      </option>
      {boards?.boards.map((b) => (
        <option key={b.board_id} value={b.board_id}>
          {b.board_name} ({b.image_count})
        </option>
      ))}
      <option value="__new">+ New board…</option>
    </select>
  );
}
