/**
 * The konva stage: draws the document of a CanvasStore (raster and control layers, the
 * inpaint mask in red, each region's mask in its colour) and turns pointer input into
 * document changes (brush/eraser strokes on the paint target, moving and scaling layers,
 * moving and sizing the box, panning; the wheel zooms). It owns its own div: React never
 * touches it.
 */
import Konva from "konva";
import { contentBounds, maskExtent, type Doc } from "./doc";
import { snap8 } from "./mode";
import { canvasOf, drawMask } from "./raster";
import { INPAINT, type CanvasStore } from "./store";

const MASK_COLOR = "rgb(255, 60, 60)";

export class CanvasEngine {
  readonly stage: Konva.Stage;
  private raster = new Konva.Layer();
  private maskLayer = new Konva.Layer({ opacity: 0.55, listening: false });
  private overlay = new Konva.Layer();
  private nodes = new Map<string, Konva.Image>();
  private maskImage = new Konva.Image({ image: undefined, listening: false });
  private regionImages = new Map<string, Konva.Image>();
  private staging = new Konva.Image({ image: undefined, listening: false, visible: false });
  private box = new Konva.Rect({ stroke: "#2f81f7", strokeWidth: 2, dash: [8, 5], strokeScaleEnabled: false, fill: "rgba(0,0,0,0.001)", name: "bbox" });
  private boxLabel = new Konva.Text({ fontSize: 12, fill: "#2f81f7", listening: false });
  private layerTr = new Konva.Transformer({ rotateEnabled: false, keepRatio: true, ignoreStroke: true });
  private boxTr = new Konva.Transformer({ rotateEnabled: false, keepRatio: false, ignoreStroke: true, flipEnabled: false });
  private cursor = new Konva.Circle({ stroke: "#333", strokeWidth: 1, strokeScaleEnabled: false, listening: false, visible: false });
  private live: { line: Konva.Line; points: number[]; erase: boolean } | null = null;
  private drawn: Doc | null = null;
  private unsubscribe: () => void;
  private resize: ResizeObserver;

  constructor(
    private readonly el: HTMLElement,
    private readonly store: CanvasStore,
  ) {
    this.stage = new Konva.Stage({ container: el as HTMLDivElement, width: el.clientWidth || 800, height: el.clientHeight || 560 });
    this.maskLayer.add(this.maskImage);
    this.overlay.add(this.staging, this.box, this.boxLabel, this.layerTr, this.boxTr, this.cursor);
    this.stage.add(this.raster, this.maskLayer, this.overlay);
    this.bindPointer();
    this.unsubscribe = store.subscribe(() => this.render());
    this.resize = new ResizeObserver(() => {
      this.stage.size({ width: el.clientWidth, height: el.clientHeight });
    });
    this.resize.observe(el);
    this.render();
  }

  dispose(): void {
    this.unsubscribe();
    this.resize.disconnect();
    this.stage.destroy();
  }

  /** Zoom and pan so that the box and every layer are in view. */
  fit(): void {
    const r = contentBounds(this.store.doc);
    const pad = 40;
    const s = Math.min((this.stage.width() - 2 * pad) / r.width, (this.stage.height() - 2 * pad) / r.height, 4);
    this.stage.scale({ x: s, y: s });
    this.stage.position({ x: (this.stage.width() - r.width * s) / 2 - r.x * s, y: (this.stage.height() - r.height * s) / 2 - r.y * s });
    this.render();
  }

  /** Document coordinates -> page coordinates (tests and tools use it). */
  toScreen(x: number, y: number): { x: number; y: number } {
    const p = this.stage.getAbsoluteTransform().point({ x, y });
    const r = this.el.getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }

  private render(): void {
    const { doc, tool, selected } = this.store;
    const docChanged = doc !== this.drawn;
    this.drawn = doc;
    if (docChanged) {
      this.renderLayers(doc);
      this.renderMask(doc);
    }
    const b = doc.bbox;
    this.box.setAttrs({ x: b.x, y: b.y, width: b.width, height: b.height, scaleX: 1, scaleY: 1, draggable: tool === "bbox", listening: tool === "bbox" });
    const zoom = this.stage.scaleX();
    this.boxLabel.setAttrs({ x: b.x, y: b.y - 16 / zoom, fontSize: 12 / zoom, text: `${b.width} × ${b.height}${this.store.mode ? ` · ${this.store.mode}` : ""}` });
    this.boxTr.nodes(tool === "bbox" ? [this.box] : []);
    const sel = selected ? this.nodes.get(selected) : undefined;
    this.layerTr.nodes(tool === "move" && sel ? [sel] : []);
    for (const [, n] of this.nodes) n.draggable(tool === "move");
    const st = this.store.staged[this.store.stagedIndex];
    if (st) this.staging.setAttrs({ image: st.image, x: b.x, y: b.y, width: st.width, height: st.height, visible: true });
    else this.staging.visible(false);
    this.stage.draggable(tool === "pan");
    this.el.style.cursor = tool === "pan" ? "grab" : tool === "brush" || tool === "eraser" ? "none" : "default";
    this.stage.batchDraw();
  }

  private renderLayers(doc: Doc): void {
    const ids = new Set(doc.layers.map((l) => l.id));
    for (const [id, n] of this.nodes) {
      if (!ids.has(id)) {
        n.destroy();
        this.nodes.delete(id);
      }
    }
    doc.layers.forEach((l, z) => {
      let n = this.nodes.get(l.id);
      const image = this.store.images.get(l.id) as HTMLImageElement | undefined;
      if (!n) {
        n = new Konva.Image({ image, name: "raster" });
        n.setAttr("layerId", l.id);
        n.on("mousedown touchstart", () => this.store.tool === "move" && this.store.set("selected", l.id));
        n.on("dragend", () => this.store.updateLayer(l.id, { x: Math.round(n!.x()), y: Math.round(n!.y()) }));
        n.on("transformend", () =>
          this.store.updateLayer(l.id, { x: Math.round(n!.x()), y: Math.round(n!.y()), scale_x: n!.scaleX(), scale_y: n!.scaleY() }),
        );
        this.raster.add(n);
        this.nodes.set(l.id, n);
      }
      n.setAttrs({ image, x: l.x, y: l.y, width: l.width, height: l.height, scaleX: l.scale_x, scaleY: l.scale_y, visible: l.visible, opacity: l.opacity });
      n.zIndex(z);
    });
  }

  /** The colour strokes on the current paint target are shown in. */
  private targetColor(): string {
    const t = this.store.target;
    return t === INPAINT ? MASK_COLOR : (this.store.doc.regions.find((r) => r.id === t)?.color ?? MASK_COLOR);
  }

  private renderRegions(doc: Doc): void {
    const ids = new Set(doc.regions.map((r) => r.id));
    for (const [id, n] of this.regionImages) {
      if (!ids.has(id)) {
        n.destroy();
        this.regionImages.delete(id);
      }
    }
    doc.regions.forEach((r, z) => {
      let n = this.regionImages.get(r.id);
      if (!n) {
        n = new Konva.Image({ image: undefined, listening: false, name: "region" });
        this.maskLayer.add(n);
        this.regionImages.set(r.id, n);
      }
      n.zIndex(z);
      const ext = maskExtent(r.ops);
      if (!ext || !r.visible) {
        n.visible(false);
        return;
      }
      const c = canvasOf(ext.width, ext.height);
      drawMask(c.getContext("2d")!, r.ops, ext, r.color, this.store.bitmaps);
      n.setAttrs({ image: c, x: ext.x, y: ext.y, width: ext.width, height: ext.height, visible: true });
    });
    this.maskImage.moveToTop();
  }

  private renderMask(doc: Doc): void {
    this.renderRegions(doc);
    const ext = maskExtent(doc.mask);
    if (!ext) {
      this.maskImage.visible(false);
      return;
    }
    const c = canvasOf(ext.width, ext.height);
    drawMask(c.getContext("2d")!, doc.mask, ext, MASK_COLOR, this.store.bitmaps);
    this.maskImage.setAttrs({ image: c, x: ext.x, y: ext.y, width: ext.width, height: ext.height, visible: true });
  }

  private bindPointer(): void {
    const st = this.stage;
    st.on("wheel", (e) => {
      e.evt.preventDefault();
      const old = st.scaleX();
      const p = st.getPointerPosition();
      if (!p) return;
      const at = { x: (p.x - st.x()) / old, y: (p.y - st.y()) / old };
      const s = Math.min(20, Math.max(0.05, e.evt.deltaY > 0 ? old / 1.1 : old * 1.1));
      st.scale({ x: s, y: s });
      st.position({ x: p.x - at.x * s, y: p.y - at.y * s });
      this.render();
    });
    st.on("mousedown touchstart", (e) => {
      const tool = this.store.tool;
      if (tool === "move" && e.target === st) this.store.set("selected", null);
      if (tool !== "brush" && tool !== "eraser") return;
      const p = st.getRelativePointerPosition();
      if (!p) return;
      const erase = tool === "eraser";
      const line = new Konva.Line({
        points: [p.x, p.y, p.x + 0.01, p.y],
        stroke: this.targetColor(),
        strokeWidth: this.store.brushSize,
        lineCap: "round",
        lineJoin: "round",
        globalCompositeOperation: erase ? "destination-out" : "source-over",
        listening: false,
      });
      this.maskLayer.add(line);
      this.live = { line, points: [p.x, p.y], erase };
      this.maskLayer.batchDraw();
    });
    st.on("mousemove touchmove", () => {
      const p = st.getRelativePointerPosition();
      if (!p) return;
      const brushing = this.store.tool === "brush" || this.store.tool === "eraser";
      this.cursor.setAttrs({ x: p.x, y: p.y, radius: this.store.brushSize / 2, visible: brushing });
      if (this.live) {
        this.live.points.push(p.x, p.y);
        this.live.line.points(this.live.points);
        this.maskLayer.batchDraw();
      }
      this.overlay.batchDraw();
    });
    st.on("mouseleave", () => {
      this.cursor.visible(false);
      this.overlay.batchDraw();
    });
    const end = () => {
      if (!this.live) return;
      const { line, points, erase } = this.live;
      this.live = null;
      line.destroy();
      this.store.addMaskOp({ kind: "stroke", points: points.map((v) => Math.round(v * 10) / 10), size: this.store.brushSize, erase });
    };
    st.on("mouseup touchend", end);
    st.on("mouseleave", end);
    this.box.on("dragend", () => this.commitBox());
    this.box.on("transformend", () => this.commitBox());
  }

  private commitBox(): void {
    const b = this.box;
    this.store.setBox({
      x: Math.round(b.x()),
      y: Math.round(b.y()),
      width: snap8(b.width() * b.scaleX()),
      height: snap8(b.height() * b.scaleY()),
    });
  }
}
