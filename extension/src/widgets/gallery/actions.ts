/** What the gallery does to images through the kernel: open and close the detail panel,
 * star, move, delete (after a confirmation), create boards, and the detail panel's actions
 * (recall, use as img2img or canvas input, re-run). Each refreshes what it changed and
 * reports failures in the toast line. */
import { useCallback, useState } from "react";
import type { Dispatcher } from "../../shared/messages";
import type { DetailAction } from "./DetailPanel";
import type { Toast } from "./Dialogs";
import type { Detail, Events, Methods } from "./protocol";
import { EMPTY, type Selection } from "./selection";
import { bufferUrl } from "./traits";

export interface ActionHost {
  show: (kind: Toast["kind"], text: string) => void;
  fail: (e: unknown) => void;
  /** Drop the cached pages (the grid fetches again). */
  invalidate: () => void;
  loadBoards: () => void;
  setSelection: (s: Selection) => void;
}

export function useImageActions(rpc: Dispatcher<Methods, Events>, host: ActionHost) {
  const { show, fail, invalidate, loadBoards, setSelection } = host;
  const [detail, setDetail] = useState<(Detail & { url: string | null }) | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string[] | null>(null);

  const openDetail = useCallback(
    async (name: string) => {
      try {
        const { result, buffers } = await rpc.request("detail", { name });
        setDetail((old) => {
          if (old?.url) URL.revokeObjectURL(old.url);
          return { ...result, url: bufferUrl(buffers[0], "image/png") };
        });
      } catch (e) {
        fail(e);
      }
    },
    [rpc, fail],
  );
  const closeDetail = useCallback(() => {
    setDetail((old) => {
      if (old?.url) URL.revokeObjectURL(old.url);
      return null;
    });
  }, []);

  const afterChange = useCallback(() => {
    invalidate();
    loadBoards();
  }, [invalidate, loadBoards]);

  const star = useCallback(
    async (names: string[], value: boolean) => {
      if (!names.length) return;
      try {
        await rpc.call("star", { names, starred: value });
        if (detail && names.includes(detail.image_name)) setDetail({ ...detail, starred: value });
        afterChange();
      } catch (e) {
        fail(e);
      }
    },
    [rpc, afterChange, fail, detail],
  );

  const move = useCallback(
    async (names: string[], boardId: string | null) => {
      if (!names.length) return;
      try {
        const r = await rpc.call("move", { names, board_id: boardId });
        show("info", `moved ${r.changed} image${r.changed === 1 ? "" : "s"}`);
        afterChange();
      } catch (e) {
        fail(e);
      }
    },
    [rpc, afterChange, fail, show],
  );

  const doDelete = useCallback(
    async (names: string[]) => {
      setConfirmDelete(null);
      try {
        const r = await rpc.call("delete", { names, confirm: true });
        show("info", `deleted ${r.deleted} image${r.deleted === 1 ? "" : "s"}`);
        if (detail && names.includes(detail.image_name)) closeDetail();
        setSelection(EMPTY);
        afterChange();
      } catch (e) {
        fail(e);
      }
    },
    [rpc, afterChange, fail, show, detail, closeDetail, setSelection],
  );

  const createBoard = useCallback(
    async (name: string) => {
      if (!name.trim()) return;
      try {
        await rpc.call("create_board", { name });
        loadBoards();
      } catch (e) {
        fail(e);
      }
    },
    [rpc, loadBoards, fail],
  );

  const action = useCallback(
    async (kind: DetailAction, name: string) => {
      try {
        if (kind === "recall") {
          const r = await rpc.call("recall", { name });
          show("info", `recalled a graph of ${r.nodes} nodes` + (r.listeners ? "" : " (no editor connected)"));
        } else if (kind === "rerun") {
          const r = await rpc.call("rerun", { name });
          show("info", `queued item ${r.item_ids.join(", ")} with seed ${r.seed}`);
        } else {
          await rpc.call("use", { name, purpose: kind });
          show("info", `selected as ${kind === "img2img" ? "img2img" : "canvas"} input`);
        }
      } catch (e) {
        fail(e);
      }
    },
    [rpc, show, fail],
  );

  return { detail, confirmDelete, setConfirmDelete, openDetail, closeDetail, star, move, doDelete, createBoard, action };
}
