import { createContext } from "react";

/** What node components need from the editor without threading props through xyflow. */
export interface EditorActions {
  setValue(nodeId: string, field: string, value: unknown): Promise<void>;
}

export const EditorContext = createContext<EditorActions>({
  setValue: async () => undefined,
});
