/**
 * Drawing the document onto plain 2D canvases: the mask (replaying its operations) and the
 * flattened layers of a region. Used for what the kernel gets (mask PNG of the box), for the
 * mode shown before generating, and for showing the mask on screen.
 */
import { liveOps, type Doc, type MaskOp, type Rect } from "./doc";

export type Images = Map<string, CanvasImageSource>;

export function canvasOf(width: number, height: number): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(width));
  c.height = Math.max(1, Math.round(height));
  return c;
}

/** Replay mask operations in document coordinates onto `ctx`, whose origin is `origin`. */
export function drawMask(ctx: CanvasRenderingContext2D, ops: MaskOp[], origin: { x: number; y: number }, color: string, bitmaps: Images): void {
  ctx.save();
  ctx.translate(-origin.x, -origin.y);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const op of liveOps(ops)) {
    if (op.kind === "stroke") {
      ctx.globalCompositeOperation = op.erase ? "destination-out" : "source-over";
      ctx.strokeStyle = ctx.fillStyle = color;
      ctx.lineWidth = op.size;
      const p = op.points;
      if (p.length === 2) {
        ctx.beginPath();
        ctx.arc(p[0], p[1], op.size / 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.beginPath();
        ctx.moveTo(p[0], p[1]);
        for (let i = 2; i < p.length; i += 2) ctx.lineTo(p[i], p[i + 1]);
        ctx.stroke();
      }
    } else if (op.kind === "invert") {
      ctx.globalCompositeOperation = "xor";
      ctx.fillStyle = color;
      ctx.fillRect(op.rect.x, op.rect.y, op.rect.width, op.rect.height);
    } else if (op.kind === "bitmap") {
      const img = bitmaps.get(op.key);
      if (!img) continue;
      ctx.globalCompositeOperation = "source-over";
      // the bitmap is white-on-transparent; tint it to the colour asked for
      const tinted = canvasOf(op.rect.width, op.rect.height);
      const t = tinted.getContext("2d")!;
      t.drawImage(img, 0, 0);
      t.globalCompositeOperation = "source-in";
      t.fillStyle = color;
      t.fillRect(0, 0, tinted.width, tinted.height);
      ctx.drawImage(tinted, op.rect.x, op.rect.y);
    }
  }
  ctx.restore();
}

/** The inpaint mask (or other mask operations) over `rect` (white where painted, transparent elsewhere). */
export function maskCanvas(doc: Pick<Doc, "mask">, rect: Rect, bitmaps: Images, ops: MaskOp[] = doc.mask): HTMLCanvasElement {
  const c = canvasOf(rect.width, rect.height);
  drawMask(c.getContext("2d")!, ops, rect, "#ffffff", bitmaps);
  return c;
}

/** The visible raster layers flattened over `rect` (control layers guide, they are not the picture). */
export function compositeCanvas(doc: Doc, rect: Rect, images: Images): HTMLCanvasElement {
  const c = canvasOf(rect.width, rect.height);
  const ctx = c.getContext("2d")!;
  ctx.imageSmoothingQuality = "high";
  for (const l of doc.layers) {
    const img = images.get(l.id);
    if (!img || !l.visible || l.opacity <= 0 || l.kind === "control") continue;
    ctx.globalAlpha = l.opacity;
    ctx.drawImage(img, Math.round(l.x) - rect.x, Math.round(l.y) - rect.y, Math.max(1, Math.round(l.width * l.scale_x)), Math.max(1, Math.round(l.height * l.scale_y)));
  }
  return c;
}

export function pixels(c: HTMLCanvasElement): Uint8ClampedArray {
  return c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
}

export function toPng(c: HTMLCanvasElement): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) =>
    c.toBlob((b) => (b ? b.arrayBuffer().then(resolve, reject) : reject(new Error("could not encode the mask"))), "image/png"),
  );
}

/** An image element from PNG bytes (a kernel buffer). */
export function imageFromBytes(buf: DataView | ArrayBuffer | Blob): Promise<HTMLImageElement> {
  const blob = buf instanceof Blob ? buf : new Blob([buf as ArrayBuffer], { type: "image/png" });
  const url = URL.createObjectURL(blob);
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("could not decode an image"));
    img.src = url;
  });
}
