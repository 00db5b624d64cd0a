/** The canvas's side of the kernel boundary (mirrors invoke_nb/widgets/canvas.py). */
import type { ControlDoc, LayerDoc, LayerKind, Rect } from "./doc";
import type { Mode } from "./mode";

export interface Settings {
  prompt: string;
  negative: string;
  model: string | null;
  steps: number;
  cfg_scale: number;
  scheduler: string;
  seed: number | null;
  strength: number;
}

/** A control layer's adapter (a ControlNet or T2I-Adapter key; the mode is ControlNet's). */
export type ControlState = ControlDoc;

export interface RegionState {
  id: string;
  name: string;
  prompt: string;
  negative: string;
  visible: boolean;
  mask_empty: boolean;
}

/** A reference image for an IP-Adapter: global (region null) or a region's. */
export interface ReferenceState {
  id: string;
  model: string | null;
  weight: number;
  begin: number;
  end: number;
  method: "full" | "style" | "composition" | "style_strong" | "style_precise";
  clip_vision_model: "ViT-H" | "ViT-G" | "ViT-L";
  region: string | null;
}

export interface ReferenceDoc extends ReferenceState {
  name: string;
  width: number;
  height: number;
}

export interface RegionInfo {
  id: string;
  name: string;
  prompt: string;
  negative: string;
  visible: boolean;
}

export interface ModelRow {
  key: string;
  name: string;
  base: string;
  type: string;
}

export interface LayerState {
  id: string;
  x: number;
  y: number;
  scale_x: number;
  scale_y: number;
  visible: boolean;
  opacity: number;
  name?: string;
  kind: LayerKind;
  control: ControlState | null;
}

export interface StagedItem {
  image_name: string;
  width: number;
  height: number;
}

export type Methods = {
  /** buffers: each layer's PNG, the mask's (if painted), each region's mask, each reference */
  init: [
    Record<string, never>,
    { layers: LayerDoc[]; bbox: Rect; mask: boolean; regions: RegionInfo[]; references: ReferenceDoc[] },
  ];
  models: [Record<string, never>, { models: ModelRow[]; control: ModelRow[]; ip_adapters: ModelRow[] }];
  recent_images: [{ limit?: number }, { images: StagedItem[] }];
  add_image: [{ image_name: string; x?: number; y?: number; kind?: LayerKind }, { id: string }];
  add_file: [{ name: string; x?: number; y?: number; kind?: LayerKind }, { id: string }];
  /** one buffer: the file's bytes (or an image_name instead) */
  add_reference: [{ image_name?: string; name?: string; region?: string | null }, { id: string }];
  /** buffers: the inpaint mask PNG if painted, then each painted region's mask PNG (box-sized) */
  sync: [
    { bbox: Rect; layers: LayerState[]; mask_empty: boolean; regions: RegionState[]; references: ReferenceState[] },
    { mode: Mode },
  ];
  generate: [Settings, { mode: Mode }];
  accept: [{ index: number }, { id: string }];
  discard: [{ index?: number | null }, { staged: number }];
};

export type Events = {
  layer_added: LayerDoc;
  layer_removed: { id: string };
  /** buffer: the region's mask PNG over `rect` (the box when it was added) */
  region_added: RegionInfo & { rect: Rect };
  /** buffer: the reference image PNG */
  reference_added: ReferenceDoc;
  staging: { items: StagedItem[] };
  staging_cleared: Record<string, never>;
  generation_error: { message: string };
};
