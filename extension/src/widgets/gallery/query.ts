// Generated from invoke_nb.widgets.gallery.GalleryQuery by query_typescript(); do not
// edit. tests/widgets/test_gallery_query.py checks it; to regenerate:
//   python -c 'from invoke_nb.widgets.gallery import write_query_typescript as w; w()'

/** The filters the gallery keeps as traits (board: an id, "none" for no board,
 * "" for every board; starred false: no star filter). */
export interface GalleryFilter {
  board: string | null;
  starred: boolean | null;
  search: string | null;
  order: "newest" | "oldest";
  starred_first: boolean;
}

/** A page request: the filters, the slice and the catalog's other filters. */
export interface GalleryQuery extends GalleryFilter {
  category?: string | string[] | null;
  model?: string | null;
  base?: string | null;
  since?: string | null;
  until?: string | null;
  is_intermediate?: boolean | null;
  offset?: number;
  limit?: number;
  cursor?: string | null;
  with_total?: boolean;
}
