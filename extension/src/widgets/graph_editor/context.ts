import { createContext } from "react";
import type { ImageRef, ModelRef } from "./protocol";

/** What node components need from the editor without threading props through xyflow. */
export interface EditorActions {
  setValue(nodeId: string, field: string, value: unknown): Promise<void>;
  /** The studio's models a node's model field accepts (null: no studio). */
  models?(nodeType: string, field: string): Promise<ModelRef[]>;
  /** Recent catalog images with thumbnail URLs. */
  recentImages?(): Promise<(ImageRef & { url: string })[]>;
  /** A thumbnail URL of a catalog image. */
  thumbnail?(imageName: string): Promise<string>;
}

export const EditorContext = createContext<EditorActions>({
  setValue: async () => undefined,
});
