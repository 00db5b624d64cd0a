"""Other tools' formats, read and written: InvokeAI libraries (:mod:`.invokeai`, one module per
entity), PNG metadata of InvokeAI, ComfyUI, A1111 and InvokeAI 2.x (:mod:`.pngmeta`), images
of other tools in PNG, JPEG and WebP (:mod:`.othertools`, :mod:`.importer`) and recall of an
image's graph (:mod:`.recall`).

This package sits beside the Studio, above the catalog: it uses the catalog, the catalog never
imports it. Importing it loads no torch (only :mod:`.recall` reaches the node library).
"""
