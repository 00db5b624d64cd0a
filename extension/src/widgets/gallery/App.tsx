/**
 * The gallery: boards on the left, toolbar on top, a virtualized grid of thumbnails, a detail
 * panel. Only the visible pages are fetched (Arrow records + one WebP buffer per thumbnail);
 * filters live in the widget's traits so Python sees and sets them.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent, type ReactElement } from "react";
import { watchDock } from "../../shared/dock";
import type { Dispatcher } from "../../shared/messages";
import { cellPosition, contentHeight, geometry, moveCursor, NARROW, NARROW_CELL, PageCache, pagesFor, scrollToShow, visibleRange } from "./grid";
import { readPage } from "./page";
import type { Boards, Events, Filter, Methods, Tile } from "./protocol";
import { applyRange, click, EMPTY, namesFromCache, type Selection } from "./selection";
import { BoardList, BoardSelect } from "./BoardList";
import { SelectionBar } from "./SelectionBar";
import { DetailPanel } from "./DetailPanel";
import { ConfirmDelete, ToastLine, type Toast } from "./Dialogs";
import { TileView } from "./TileView";
import { useImageActions } from "./actions";
import { bufferUrl, useTrait, type ModelLike } from "./traits";

export type { ModelLike } from "./traits";

type Rpc = Dispatcher<Methods, Events>;
type FirstPageMeta = { filter: Filter; offset: number; count: number; total: number };

export function App({ model, rpc, root }: { model: ModelLike; rpc: Rpc; root: HTMLElement }) {
  const [board, setBoard] = useTrait<string>(model, "board");
  const [starred, setStarred] = useTrait<boolean>(model, "starred");
  const [search, setSearch] = useTrait<string>(model, "search");
  const [order, setOrder] = useTrait<Filter["order"]>(model, "order");
  const [starredFirst, setStarredFirst] = useTrait<boolean>(model, "starred_first");
  const [selNames, setSelNames] = useTrait<string[]>(model, "selection");
  const [pageSize] = useTrait<number>(model, "page_size");
  const [thumbSize] = useTrait<number>(model, "thumb_size");
  const [height] = useTrait<number>(model, "height");
  const [firstPage] = useTrait<DataView | null>(model, "_first_page");
  const [firstMeta] = useTrait<FirstPageMeta | null>(model, "_first_page_meta");

  const filter: Filter = useMemo(
    () => ({ board, starred, search, order, starred_first: starredFirst }),
    [board, starred, search, order, starredFirst],
  );
  const filterKey = JSON.stringify(filter);

  const [boards, setBoards] = useState<Boards | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [gen, setGen] = useState(0); // bumps on every invalidation: stale answers are dropped
  const [tick, setTick] = useState(0); // bumps when a page arrives
  const [scrollTop, setScrollTop] = useState(0);
  const [width, setWidth] = useState(800); // of the grid
  const [gridH, setGridH] = useState(0); // of the grid's viewport, when docked
  const [rootW, setRootW] = useState(800); // of the whole view: narrow panels get another layout
  const [dockH, setDockH] = useState<number | null>(null); // the panel's height, when docked
  const [cursor, setCursor] = useState<number | null>(null); // keyboard position in the grid
  const [anchor, setAnchor] = useState<number | null>(null);
  const [preview, setPreview] = useState<{ url: string; step: number | null; total: number | null } | null>(null);
  const [toast, setToast] = useState<Toast | null>(null);
  const [searchText, setSearchText] = useState(search);

  const scroller = useRef<HTMLDivElement>(null);
  const cache = useMemo(() => new PageCache<Tile>(pageSize || 100, 30), [pageSize]);
  const inflight = useRef(new Set<string>());
  const measure = useRef<{ gen: number; t0: number; names: Set<string>; count: number } | null>(null);
  const genRef = useRef(gen);
  genRef.current = gen;

  const show = useCallback((kind: Toast["kind"], text: string) => setToast({ kind, text }), []);
  const fail = useCallback((e: unknown) => show("error", (e as Error).message), [show]);
  useEffect(() => {
    if (!toast) return;
    const t = setTimeout(() => setToast(null), toast.kind === "error" ? 6000 : 2500);
    return () => clearTimeout(t);
  }, [toast]);

  // the generation asked for; `gen` catches up at the next render. Effects of the render that
  // invalidated still see the old `gen` and must not ask for its pages (a wasted request that
  // would delay the real one).
  const nextGen = useRef(0);
  const invalidate = useCallback(() => {
    cache.clear();
    inflight.current.clear();
    setGen(++nextGen.current);
  }, [cache]);

  const loadBoards = useCallback(() => {
    rpc.call("boards", {}).then(setBoards, fail);
  }, [rpc, fail]);

  // filters changed (here or in Python): start over at the top (not at mount: nothing to drop,
  // and a second request for the first page would delay it)
  const shownFilter = useRef(filterKey);
  useEffect(() => {
    if (shownFilter.current === filterKey) return;
    shownFilter.current = filterKey;
    invalidate();
    setTotal(null);
    setAnchor(null);
    setCursor(null);
    if (scroller.current) scroller.current.scrollTop = 0;
    setScrollTop(0);
  }, [filterKey, invalidate]);
  useEffect(() => setSearchText(search), [search]);
  // boards (counts over the whole catalog) after the first page's request, which the kernel
  // then answers first
  useEffect(() => {
    const t = setTimeout(loadBoards, 0);
    return () => clearTimeout(t);
  }, [loadBoards]);

  // live: coalesce bursts of new images into one refresh
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        invalidate();
        loadBoards();
      }, 150);
    };
    const offs = [
      rpc.on("image_added", later),
      rpc.on("changed", later),
      rpc.on("preview", (d, buffers) => {
        const url = bufferUrl(buffers[0], "image/jpeg");
        if (!url) return;
        setPreview((old) => {
          if (old) URL.revokeObjectURL(old.url);
          return { url, step: d.step, total: d.total };
        });
      }),
      rpc.on("preview_done", () =>
        setPreview((old) => {
          if (old) URL.revokeObjectURL(old.url);
          return null;
        }),
      ),
    ];
    return () => {
      clearTimeout(timer);
      offs.forEach((off) => off());
    };
  }, [rpc, invalidate, loadBoards]);

  // sizes: of the grid, of the whole view, and of the panel it is docked in
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const sizeGrid = () => {
      setWidth(el.clientWidth);
      setGridH(el.clientHeight);
    };
    const ro = new ResizeObserver(sizeGrid);
    ro.observe(el);
    sizeGrid();
    const rootRo = new ResizeObserver(() => setRootW(root.clientWidth));
    rootRo.observe(root);
    setRootW(root.clientWidth);
    const undock = watchDock(root, setDockH);
    return () => {
      ro.disconnect();
      rootRo.disconnect();
      undock();
    };
  }, [root]);

  const narrow = rootW < NARROW;
  const minCell = narrow ? Math.min(thumbSize || 100, NARROW_CELL) : thumbSize || 100;
  const geo = useMemo(() => geometry(Math.max(60, width - 12), minCell, 6), [width, minCell]);
  // in a cell the grid is `height` tall (less when the images fit); docked it fills the panel
  const viewH = dockH !== null ? Math.max(60, gridH - 12) : height || 560;
  const range = visibleRange(scrollTop, viewH, geo, total ?? pageSize, 1);
  const wanted = pagesFor(range, pageSize);

  // the first page may have come with the widget (its `_first_page` trait): no round trip
  useEffect(() => {
    if (cache.has(0) || !firstPage || firstPage.byteLength === 0 || !firstMeta) return;
    if (JSON.stringify(firstMeta.filter) !== filterKey || firstMeta.count > pageSize) return;
    const t0 = performance.now();
    const tiles = readPage(firstPage);
    cache.put(0, tiles);
    setTotal(firstMeta.total);
    const names = new Set(tiles.filter((t) => t.url).map((t) => t.image_name));
    measure.current = { gen, t0, names, count: names.size };
    setTick((t) => t + 1);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [firstPage, firstMeta, gen]);

  // fetch the pages under the viewport, one at a time, top first: the first page's reply is
  // not slowed by the kernel and the browser working on the pages below it
  useEffect(() => {
    const g = gen;
    if (g !== nextGen.current) return; // invalidated: the next render asks
    if (g === 0 && !cache.has(0) && firstPage && firstPage.byteLength > 0 && JSON.stringify(firstMeta?.filter) === filterKey) return; // the effect above has it
    if ([...inflight.current].some((k) => k.startsWith(`${g}:`))) return;
    // the pages below wait (up to 600 ms) until the first page's thumbnails are decoded: the
    // browser's decoding them would delay what is seen first
    const m = measure.current;
    if (m && m.gen === g && m.names.size > 0 && cache.has(0) && performance.now() - m.t0 < 600) {
      const t = setTimeout(() => setTick((x) => x + 1), 600 - (performance.now() - m.t0));
      return () => clearTimeout(t);
    }
    for (const p of cache.missing(wanted).slice(0, 1)) {
      const key = `${g}:${p}`;
      inflight.current.add(key);
      const t0 = performance.now();
      rpc
        .request("page", { ...filter, offset: p * pageSize, limit: pageSize })
        .then(({ result, buffers }) => {
          inflight.current.delete(key);
          if (genRef.current !== g) return;
          const tiles = readPage(buffers[0]);
          cache.put(p, tiles, wanted);
          setTotal(result.total);
          if (p === 0 && (!measure.current || measure.current.gen !== g)) {
            const names = new Set(tiles.filter((t) => t.url).map((t) => t.image_name));
            measure.current = { gen: g, t0, names, count: names.size };
            root.dataset.pageReplyMs = (performance.now() - t0).toFixed(1);
          }
          setTick((t) => t + 1);
        })
        .catch((e) => {
          inflight.current.delete(key);
          fail(e);
        });
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [gen, wanted.join(","), filterKey, pageSize, tick]);

  const onThumbLoad = useCallback(
    (name: string) => {
      const m = measure.current;
      if (!m || m.gen !== genRef.current || !m.names.delete(name) || m.names.size > 0) return;
      // every thumbnail of the first page is decoded and laid out
      requestAnimationFrame(() => {
        root.dataset.pageMs = (performance.now() - m.t0).toFixed(1);
        root.dataset.pageShownAt = (performance.timeOrigin + performance.now()).toFixed(1); // epoch ms
        root.dataset.pageCount = String(m.count);
        root.dataset.pageGen = String(m.gen);
        setTick((t) => t + 1); // the pages below may come now
      });
    },
    [root],
  );

  const nameAt = useCallback((i: number) => cache.item(i)?.image_name, [cache]);
  const selected = useMemo(() => new Set(selNames), [selNames]);
  const setSelection = useCallback((s: Selection) => {
    setSelNames(s.names);
    setAnchor(s.anchor);
  }, [setSelNames]);

  const onTileClick = useCallback(
    async (index: number, name: string, e: MouseEvent) => {
      const r = click({ names: selNames, anchor }, index, name, {
        shift: e.shiftKey,
        ctrl: e.ctrlKey || e.metaKey,
      });
      if (r.kind === "set") return setSelection(r.selection);
      let names = namesFromCache(r.start, r.end, nameAt);
      if (names === null) {
        try {
          names = await rpc.call("names", { ...filter, offset: r.start, limit: Math.min(500, r.end - r.start) });
        } catch (err) {
          return fail(err);
        }
      }
      setSelection(applyRange(r.keep, names, r.anchor));
    },
    [selNames, anchor, nameAt, rpc, filter, fail, setSelection],
  );

  const { detail, confirmDelete, setConfirmDelete, openDetail, closeDetail, star, move, doDelete, createBoard, action } =
    useImageActions(rpc, { show, fail, invalidate, loadBoards, setSelection });

  // search box: send after a pause in typing
  useEffect(() => {
    if (searchText === search) return;
    const t = setTimeout(() => setSearch(searchText), 250);
    return () => clearTimeout(t);
  }, [searchText, search, setSearch]);

  // Keyboard (documented in invoke_nb.widgets.gallery): arrows, Home/End and PageUp/PageDown
  // move the selection through the grid, Shift extends it, Enter opens the details, Space
  // stars or unstars, Delete asks to delete, Escape closes the details or clears.
  const goTo = useCallback(
    async (index: number, extend: boolean) => {
      setCursor(index);
      const el = scroller.current;
      if (el) {
        const top = scrollToShow(index, el.scrollTop, viewH, geo);
        if (top !== el.scrollTop) el.scrollTop = top;
      }
      const name = cache.item(index)?.image_name;
      if (!name) return;
      if (!extend || anchor === null) return setSelection({ names: [name], anchor: index });
      const start = Math.min(anchor, index);
      const end = Math.max(anchor, index) + 1;
      let names = namesFromCache(start, end, nameAt);
      if (names === null) {
        try {
          names = await rpc.call("names", { ...filter, offset: start, limit: Math.min(500, end - start) });
        } catch (err) {
          return fail(err);
        }
      }
      setSelection(applyRange([], names, anchor));
    },
    [viewH, geo, cache, anchor, setSelection, nameAt, rpc, filter, fail],
  );

  const onKey = useCallback(
    (e: KeyboardEvent) => {
      const tag = (e.target as HTMLElement).tagName;
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (tag === "BUTTON" && e.key !== "Escape")) return;
      const rows = Math.max(1, Math.floor(viewH / geo.rowHeight));
      const current = cursor ?? (anchor !== null ? anchor : null);
      const next = moveCursor(current, e.key, geo.columns, total ?? 0, rows);
      if (next !== null && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        goTo(next, e.shiftKey);
        return;
      }
      const name = current !== null ? cache.item(current)?.image_name : undefined;
      if (e.key === "Escape") {
        if (detail) closeDetail();
        else setSelection(EMPTY);
      } else if (e.key === "Delete" && selNames.length) {
        setConfirmDelete(selNames);
      } else if (e.key === "Enter" && name) {
        e.preventDefault();
        openDetail(name);
      } else if (e.key === " ") {
        e.preventDefault();
        const names = selNames.length ? selNames : name ? [name] : [];
        const first = names.length ? cache.item(current ?? -1) : undefined;
        const on = !(first && names.includes(first.image_name) ? first.starred : false);
        star(names, on);
      }
    },
    [detail, closeDetail, selNames, setSelection, viewH, geo, cursor, anchor, total, goTo, cache, openDetail, star],
  );

  const tiles: ReactElement[] = [];
  void tick;
  for (let i = range.start; i < range.end; i++) {
    const t = cache.item(i);
    const pos = cellPosition(i, geo);
    const style = { left: pos.left, top: pos.top, width: geo.cell, height: geo.cell };
    if (!t) {
      tiles.push(<div key={`p${i}`} className="inb-tile inb-tile-loading" style={style} />);
      continue;
    }
    tiles.push(
      <TileView
        key={t.image_name}
        tile={t}
        index={i}
        style={style}
        selected={selected.has(t.image_name)}
        cursor={cursor === i}
        onClick={(e) => {
          setCursor(i);
          onTileClick(i, t.image_name, e);
        }}
        onOpen={() => openDetail(t.image_name)}
        onStar={(on) => star([t.image_name], on)}
        onThumbLoad={() => onThumbLoad(t.image_name)}
      />,
    );
  }

  return (
    <div
      className={"inb-gallery-root" + (narrow ? " inb-narrow" : "") + (dockH !== null ? " inb-gdocked" : "")}
      style={dockH !== null ? { height: dockH } : undefined}
      tabIndex={0}
      onKeyDown={onKey}
      aria-label="Gallery: arrow keys move, Enter opens, Space stars"
    >
      {!narrow && <BoardList boards={boards} current={board} onPick={setBoard} onCreate={createBoard} />}
      <section className="inb-main-col">
        <div className="inb-gbar">
          <input
            className="inb-gsearch"
            placeholder="Search prompts"
            value={searchText}
            onChange={(e) => setSearchText(e.target.value)}
          />
          {narrow && <BoardSelect boards={boards} current={board} onPick={setBoard} onCreate={createBoard} />}
          <label className="inb-check">
            <input type="checkbox" checked={starred} onChange={(e) => setStarred(e.target.checked)} /> Starred
          </label>
          <select
            className="inb-sort"
            value={starredFirst ? "starred" : order}
            onChange={(e) => {
              const v = e.target.value;
              setStarredFirst(v === "starred", false);
              setOrder(v === "oldest" ? "oldest" : "newest");
            }}
          >
            <option value="newest">Newest first</option>
            <option value="oldest">Oldest first</option>
            <option value="starred">Starred first</option>
          </select>
          <span className="inb-gcount">
            {total === null ? "…" : `${total.toLocaleString()} image${total === 1 ? "" : "s"}`}
            {selNames.length ? ` · ${selNames.length} selected` : ""}
          </span>
        </div>
        {selNames.length > 0 && (
          <SelectionBar
            count={selNames.length}
            boards={boards}
            onStar={(on) => star(selNames, on)}
            onMove={(boardId) => move(selNames, boardId)}
            onDelete={() => setConfirmDelete(selNames)}
            onClear={() => setSelection(EMPTY)}
          />
        )}
        {preview && (
          <div className="inb-preview">
            <img src={preview.url} alt="preview" />
            <span>
              Generating{preview.step != null && preview.total ? ` · step ${preview.step}/${preview.total}` : "…"}
            </span>
          </div>
        )}
        <div
          className="inb-grid-scroll"
          ref={scroller}
          style={dockH !== null ? undefined : { height: Math.min(viewH, Math.max(180, contentHeight(total ?? 0, geo) + 12)) }}
          onScroll={(e) => setScrollTop((e.target as HTMLDivElement).scrollTop)}
        >
          <div className="inb-grid" style={{ height: contentHeight(total ?? 0, geo) }}>
            {tiles}
          </div>
          {total === 0 && <div className="inb-gempty">No images match.</div>}
        </div>
      </section>
      {detail && (
        <DetailPanel
          detail={detail}
          onClose={closeDetail}
          onStar={(on) => star([detail.image_name], on)}
          onAction={(kind) => action(kind, detail.image_name)}
          onDelete={() => setConfirmDelete([detail.image_name])}
        />
      )}
      {confirmDelete && (
        <ConfirmDelete names={confirmDelete} onCancel={() => setConfirmDelete(null)} onConfirm={() => doDelete(confirmDelete)} />
      )}
      {toast && <ToastLine toast={toast} />}
    </div>
  );
}
