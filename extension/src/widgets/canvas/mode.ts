/**
 * What Generate does with the box, decided from its pixels as InvokeAI's canvas decides:
 * nothing visible -> txt2img; partly transparent -> outpaint; opaque with an empty mask ->
 * img2img; opaque with a painted mask -> inpaint. Mirrors
 * invoke_nb.widgets.canvas.generation_mode (the kernel decides again when generating).
 */
export type Mode = "txt2img" | "img2img" | "inpaint" | "outpaint";

/** `composite` and `mask` are RGBA pixel data (ImageData.data); only alpha is read. */
export function generationMode(composite: ArrayLike<number>, mask: ArrayLike<number> | null): Mode {
  let any = false;
  let all = true;
  for (let i = 3; i < composite.length; i += 4) {
    if (composite[i] > 0) any = true;
    if (composite[i] < 255) all = false;
    if (any && !all) return "outpaint";
  }
  if (!any) return "txt2img";
  if (mask && hasPaint(mask)) return "inpaint";
  return "img2img";
}

/** Whether any mask pixel is painted (alpha above zero). */
export function hasPaint(mask: ArrayLike<number>): boolean {
  for (let i = 3; i < mask.length; i += 4) if (mask[i] > 0) return true;
  return false;
}

/** Round a box side to the multiple of 8 the models need (at least 8). */
export function snap8(n: number): number {
  return Math.max(8, Math.round(n / 8) * 8);
}
