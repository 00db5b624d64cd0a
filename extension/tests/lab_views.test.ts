import { describe, expect, it } from "vitest";
import { commandId, openCode, pyString, readSettings, VIEWS, viewOfTitle } from "../src/lab/views";

describe("lab plugin: views and kernel code", () => {
  it("quotes any root as a Python string literal", () => {
    expect(pyString(`C:\\it's "here"\n`)).toBe(`"C:\\\\it's \\"here\\"\\n"`);
  });

  it("opens a view through invoke_nb.studio_views.open_view", () => {
    expect(openCode("gallery", "right", "")).toBe(
      'from invoke_nb.studio_views import open_view as _inb_open_view\n_inb_open_view("gallery", area="right", root=None);',
    );
    expect(openCode("editor", "main", "/data/studio")).toContain('area="main", root="/data/studio");');
  });

  it("reads settings, replacing bad values by defaults", () => {
    expect(readSettings({ studioRoot: " /x ", defaultArea: "split-right" })).toEqual({
      studioRoot: "/x",
      defaultArea: "split-right",
    });
    expect(readSettings({ studioRoot: 3, defaultArea: "left" })).toEqual({ studioRoot: "", defaultArea: "right" });
  });

  it("recognises our panel titles only", () => {
    expect(viewOfTitle("Invoke: Node editor")?.kind).toBe("editor");
    expect(viewOfTitle("Invoke: Something")).toBeUndefined();
    expect(viewOfTitle("Gallery")).toBeUndefined();
    expect(VIEWS.map((v) => commandId(v.kind))).toEqual([
      "invoke-nb:open-gallery",
      "invoke-nb:open-editor",
      "invoke-nb:open-canvas",
      "invoke-nb:open-queue",
      "invoke-nb:open-models",
    ]);
  });
});
