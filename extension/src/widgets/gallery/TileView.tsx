/** One thumbnail of the grid, with its star and details buttons. */
import type { CSSProperties, MouseEvent } from "react";
import type { Tile } from "./protocol";

export function TileView({
  tile: t,
  index: i,
  style,
  selected,
  cursor,
  onClick,
  onOpen,
  onStar,
  onThumbLoad,
}: {
  tile: Tile;
  index: number;
  style: CSSProperties;
  selected: boolean;
  cursor: boolean;
  onClick: (e: MouseEvent) => void;
  onOpen: () => void;
  onStar: (starred: boolean) => void;
  onThumbLoad: () => void;
}) {
  return (
    <div
      className={"inb-tile" + (selected ? " inb-tile-selected" : "") + (cursor ? " inb-tile-cursor" : "")}
      style={style}
      data-name={t.image_name}
      data-index={i}
      title={t.positive_prompt ?? t.image_name}
      onClick={onClick}
      onDoubleClick={onOpen}
    >
      {t.url ? (
        <img src={t.url} alt="" draggable={false} onLoad={onThumbLoad} />
      ) : (
        <div className="inb-nothumb">no thumbnail</div>
      )}
      <button
        className={"inb-star" + (t.starred ? " inb-starred" : "")}
        title={t.starred ? "Unstar" : "Star"}
        aria-label={t.starred ? "Unstar" : "Star"}
        onClick={(e) => {
          e.stopPropagation();
          onStar(!t.starred);
        }}
      >
        {t.starred ? "★" : "☆"}
      </button>
      <button
        className="inb-open"
        title="Details"
        aria-label="Details"
        onClick={(e) => {
          e.stopPropagation();
          onOpen();
        }}
      >
        ⤢
      </button>
    </div>
  );
}
