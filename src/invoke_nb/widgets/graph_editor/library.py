"""The studio's workflow library in the editor: save, open, list and delete workflows."""

from __future__ import annotations

from typing import Any

from invoke_nb.graph import Graph
from invoke_nb.widgets.graph_editor.protocol import LibraryList, LibrarySave, WorkflowId
from invoke_nb.widgets.messages import handler

__all__ = ["WorkflowLibrary"]


class WorkflowLibrary:
    """Mixed into :class:`GraphEditor`: the library's Python methods and browser requests."""

    def save_to_library(
        self, name: str, *, workflow_id: str | None = None, description: str = ""
    ) -> str:
        """Save the workflow in the studio's library (a new entry, or ``workflow_id``'s);
        returns its id."""
        studio = self._need_studio("save to the workflow library")
        self.meta["name"] = name
        if description:
            self.meta["description"] = description
        data = self.workflow().to_dict()
        repo = studio.workflows
        if workflow_id:
            rec = repo.update(workflow_id, workflow=data, name=name, description=description)
        else:
            rec = repo.create(data, name=name, description=description)
        self.workflow_id = rec.workflow_id
        return rec.workflow_id

    def open_from_library(self, workflow_id: str) -> Graph:
        """Open a workflow of the studio's library (and mark it recently opened)."""
        studio = self._need_studio("open from the workflow library")
        rec = studio.workflows.get(workflow_id)
        g = self.load(rec.workflow)
        studio.workflows.mark_opened(workflow_id)
        self.workflow_id = workflow_id
        return g

    @handler("library_list", LibraryList)
    def _library_list(self, p: LibraryList, _b: list[bytes]) -> dict[str, Any]:
        studio = self._need_studio("list the workflow library")
        return {
            "workflows": [
                {
                    "workflow_id": r.workflow_id,
                    "name": r.name,
                    "description": r.description,
                    "category": r.category,
                    "nodes": len((r.workflow.get("graph") or r.workflow).get("nodes") or {}),
                    "updated_at": r.updated_at.isoformat(),
                    "opened_at": r.opened_at.isoformat() if r.opened_at else None,
                }
                for r in studio.workflows.list(query=p.query)
            ]
        }

    @handler("library_open", WorkflowId)
    def _library_open(self, p: WorkflowId, _b: list[bytes]) -> dict[str, Any]:
        g = self.open_from_library(p.workflow_id)
        return {"nodes": len(g.nodes), "name": self.meta.get("name")}

    @handler("library_save", LibrarySave)
    def _library_save(self, p: LibrarySave, _b: list[bytes]) -> dict[str, Any]:
        wid = self.save_to_library(p.name, workflow_id=p.workflow_id, description=p.description)
        return {"workflow_id": wid}

    @handler("library_delete", WorkflowId)
    def _library_delete(self, p: WorkflowId, _b: list[bytes]) -> dict[str, Any]:
        self._need_studio("delete from the workflow library").workflows.delete(p.workflow_id)
        if self.workflow_id == p.workflow_id:
            self.workflow_id = None
        return {"ok": True}
