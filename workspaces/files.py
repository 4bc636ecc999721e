"""Workspace files: the operations behind the files API and the workspace page.

Every operation is one call to the file agent (infrastructure/remote/fileagent.py): in-process for
the local engine, `python3 -I -c <agent source>` over the pinned SSH connection otherwise, with the
request as JSON on stdin. Files come from the workspace folder on its server, not from the
container, so they are there whether the workspace runs or not.

The functions here check each path (workspaces.paths), record refusals and changes in the audit log
(a change stores only the content's sha256), keep last activity and the listing cache right, and
raise FileError, whose `status` is the HTTP status the API answers with.
"""

import base64
import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

import audit.services as audit
from audit.choices import Outcome
from infrastructure.remote import RemoteError, fileagent, run_command

from . import cache
from .activity import touch_activity
from .models import Workspace
from .patches import FilePatch, PatchConflict, apply_file, parse_diff
from .paths import PathRefused, clean_path

AGENT_SOURCE = open(fileagent.__file__, encoding="utf-8").read()  # noqa: SIM115 - read once at import
AGENT_TIMEOUT = 120
TREE_MAX_ENTRIES = 100_000
MAX_TREE_DEPTH = fileagent.MAX_TREE_LEVELS

_STATUS = {
    "refused": 400, "invalid": 400, "not_a_directory": 400, "is_a_directory": 400, "not_a_file": 400,
    "denied": 403, "not_found": 404, "exists": 409, "io": 409, "no_folder": 409, "conflict": 409,
    "precondition": 412, "too_large": 413, "binary": 415, "unavailable": 503,
}


class FileError(Exception):
    """A refused or failed file operation; `status` is the HTTP answer, `extra` goes in the body."""

    def __init__(self, code: str, message: str, **extra):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra
        self.status = _STATUS[code]


@dataclass(frozen=True)
class FileContent:
    path: str
    data: bytes
    sha256: str
    size: int
    modified: str
    binary: bool


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def folder_of(workspace: Workspace):
    """(server, absolute data folder) of a placed workspace, or FileError when it has none yet."""
    placement = getattr(workspace, "placement", None)  # the reverse one-to-one raises an AttributeError
    if placement is None or not placement.data_path:
        raise FileError("no_folder", "The workspace has no folder yet: it is still waiting for a server.")
    server = placement.server
    root = posixpath.normpath(posixpath.join(server.storage_root, placement.data_path))
    if not root.startswith("/") or ".." in root.split("/"):
        raise FileError("no_folder", "The workspace's folder is not a valid path on its server.")
    return server, root


def _call(workspace: Workspace, op: str, **request) -> dict:
    """One agent round trip; agent errors come back as FileError."""
    server, root = folder_of(workspace)
    request.update(op=op, root=root, uid=settings.BERTH_WORKSPACE_UID)
    response = fileagent.handle(request) if server.is_local else _call_remote(server, request)
    if not response.get("ok"):
        extra = {k: v for k, v in response.items() if k in ("path", "size", "limit")}
        raise FileError(response.get("error") if response.get("error") in _STATUS else "io",
                        response.get("message", "The file operation failed."), **extra)
    return response


def _call_remote(server, request: dict) -> dict:
    try:
        result = run_command(server, ["python3", "-I", "-c", AGENT_SOURCE],
                             stdin=json.dumps(request).encode(), timeout=AGENT_TIMEOUT)
    except RemoteError as exc:
        raise FileError("unavailable", f"The server {server.name} could not be reached: {exc}") from exc
    try:
        return json.loads(result.stdout)
    except ValueError:
        hint = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {result.exit_code}"]
        raise FileError("unavailable", f"The file agent did not answer on {server.name} (is python3 installed?): "
                                       f"{hint[0][:200]}") from None


def _checked(workspace: Workspace, raw, *, actor, allow_root: bool = False) -> str:
    """The clean path, or FileError; a path that could reach outside is an audit event too (a
    missing one is merely invalid)."""
    try:
        return clean_path(raw, allow_root=allow_root)
    except PathRefused as exc:
        if not raw:
            raise FileError("invalid", str(exc)) from None
        _record_refusal(workspace, raw, str(exc), actor=actor)
        raise FileError("refused", str(exc)) from None


def _record_refusal(workspace: Workspace, raw, reason: str, *, actor) -> None:
    audit.record(actor=actor, action="file.path_refused", target=workspace, outcome=Outcome.DENIED,
                 message=reason, change={"path": str(raw)[:4096]})


def _agent(workspace: Workspace, op: str, *, actor, shown_path, **request) -> dict:
    """_call, with the agent's own refusals (symlink escapes, swapped links) audited too."""
    try:
        return _call(workspace, op, **request)
    except FileError as exc:
        if exc.code == "refused":
            _record_refusal(workspace, shown_path, exc.message, actor=actor)
        raise


@transaction.atomic
def _record_change(workspace: Workspace, action: str, *, actor, change: dict, message: str = "") -> None:
    audit.record(actor=actor, action=action, target=workspace, change=change, message=message[:500])
    touch_activity(workspace)


# Reads --------------------------------------------------------------------------------------------

def list_tree(workspace: Workspace, raw_path, *, depth: int, actor, refresh: bool = False) -> tuple[dict, bool]:
    """({"path", "entries", "truncated"}, served_from_cache). depth 0 lists the whole tree."""
    path = _checked(workspace, raw_path, actor=actor, allow_root=True)

    def build() -> dict:
        listing = _agent(workspace, "tree", actor=actor, shown_path=path, path=path, depth=depth,
                         limit=TREE_MAX_ENTRIES)
        for entry in listing["entries"]:
            entry["modified"] = iso_time(entry["modified"])
        return {"path": path, "entries": listing["entries"], "truncated": listing["truncated"]}

    return cache.cached_tree(workspace.pk, path, depth, build, refresh=refresh)


def read_file(workspace: Workspace, raw_path, *, actor, max_bytes: int, allow_binary: bool = False) -> FileContent:
    path = _checked(workspace, raw_path, actor=actor)
    found = _agent(workspace, "read", actor=actor, shown_path=path, path=path, max_bytes=max_bytes,
                   allow_binary=allow_binary)
    return FileContent(path, base64.b64decode(found["content"]), found["sha256"], found["size"],
                       iso_time(found["modified"]), found["binary"])


# Writes -------------------------------------------------------------------------------------------

def write_file(workspace: Workspace, raw_path, data: bytes, *, actor, expected_sha256: str | None = None) -> dict:
    """Write atomically, creating parent folders. `expected_sha256` (from If-Match) refuses to
    overwrite a version other than the one the writer read: 412; "absent" refuses any existing file: 409."""
    path = _checked(workspace, raw_path, actor=actor)
    change = {"path": path, "action": "write", "content": base64.b64encode(data).decode("ascii"),
              "expect": expected_sha256}
    written = _agent(workspace, "commit", actor=actor, shown_path=path, changes=[change])["results"][0]
    cache.paths_changed(workspace.pk, [path])
    _record_change(workspace, "file.write", actor=actor, change={"path": path, "sha256": written["sha256"]},
                   message=f"wrote {path} ({written['size']} bytes)")
    return written


def delete_path(workspace: Workspace, raw_path, *, actor) -> dict:
    path = _checked(workspace, raw_path, actor=actor)
    deleted = _agent(workspace, "delete", actor=actor, shown_path=path, path=path)
    cache.paths_changed(workspace.pk, [path], structure=deleted["type"] == "dir")
    _record_change(workspace, "file.delete", actor=actor, change={"path": path, "type": deleted["type"]},
                   message=f"deleted {path}")
    return deleted


def move_path(workspace: Workspace, raw_from, raw_to, *, actor) -> dict:
    source = _checked(workspace, raw_from, actor=actor)
    target = _checked(workspace, raw_to, actor=actor)
    moved = _agent(workspace, "move", actor=actor, shown_path=f"{source} -> {target}", **{"from": source, "to": target})
    cache.paths_changed(workspace.pk, [source, target], structure=moved["type"] == "dir")
    _record_change(workspace, "file.move", actor=actor, change={"from": source, "to": target},
                   message=f"moved {source} to {target}")
    return moved


def make_folder(workspace: Workspace, raw_path, *, actor) -> dict:
    path = _checked(workspace, raw_path, actor=actor)
    made = _agent(workspace, "mkdir", actor=actor, shown_path=path, path=path)
    cache.paths_changed(workspace.pk, [path])
    _record_change(workspace, "file.mkdir", actor=actor, change={"path": path}, message=f"created folder {path}")
    return made


# Patches ------------------------------------------------------------------------------------------

def apply_patch(workspace: Workspace, diff: str, *, actor, preview: bool = False) -> list[dict]:
    """Apply a unified diff all-or-nothing: read every file it touches in one call, apply every hunk
    in memory (PatchError: 400, PatchConflict: 409, nothing written), then write and delete in one
    call that first re-checks each file's sha256, so a file changed in between refuses the lot.
    With `preview`, only say which files and hunks would change."""
    patches = parse_diff(diff)
    for patch in patches:
        for name in {patch.old_path, patch.new_path} - {None}:
            _checked(workspace, name, actor=actor)
    names = sorted({name for patch in patches for name in (patch.old_path, patch.new_path) if name})
    current = _agent(workspace, "read_many", actor=actor, shown_path=", ".join(names)[:4096], paths=names,
                     max_bytes=settings.BERTH_EDITOR_MAX_BYTES)["files"]
    changes = [change for patch in patches for change in _changes_for(patch, current)]
    summary = [patch.summary() for patch in patches]
    if preview:
        return summary
    try:
        written = _agent(workspace, "commit", actor=actor, shown_path=", ".join(names)[:4096], changes=changes)
    except FileError as exc:
        if exc.code not in ("precondition", "exists"):
            raise
        raise FileError("conflict", f"{exc.message}; it changed while the patch was applied, nothing was written.",
                        path=exc.extra.get("path")) from None
    cache.paths_changed(workspace.pk, names)
    hashes = {result["path"]: result["sha256"] for result in written["results"]}
    _record_change(workspace, "file.patch", actor=actor,
                   change={"files": [{"path": name, "sha256": hashes.get(name)} for name in names]},
                   message=f"patched {len(patches)} file(s)")
    return summary


def _changes_for(patch: FilePatch, current: dict) -> list[dict]:
    """The agent changes that turn the read files into the patched ones; PatchConflict if it does not apply."""
    source = current[patch.old_path] if patch.old_path else current[patch.new_path]
    original = None if source.get("missing") else base64.b64decode(source["content"]).decode("utf-8")
    new_text = apply_file(patch, original)
    expect = "absent" if source.get("missing") else source["sha256"]
    if patch.kind == "delete":
        return [{"path": patch.old_path, "action": "delete", "expect": expect}]
    content = base64.b64encode(new_text.encode("utf-8")).decode("ascii")
    if patch.kind == "rename":
        if not current[patch.new_path].get("missing"):
            raise PatchConflict(patch.new_path, "the diff renames a file to this name, but it already exists")
        return [{"path": patch.new_path, "action": "write", "content": content, "expect": "absent"},
                {"path": patch.old_path, "action": "delete", "expect": expect}]
    return [{"path": patch.path, "action": "write", "content": content, "expect": expect}]
