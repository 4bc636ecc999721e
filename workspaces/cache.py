"""Caching of the two hot reads: a user's workspace list (5 min) and a folder listing (1 min).

Nothing is deleted to invalidate: keys carry generation counters, and a change bumps exactly the
counters of what it touched, so old entries are simply never read again and expire on their own.
- Workspace lists: one counter per organization. Any change to one of its workspaces (status,
  progress message, activity, creation) bumps it, so every list in that organization is rebuilt.
- Folder listings: one counter per folder, bumped for every ancestor of a changed path (a change to
  a/b/c.txt changes the listings of a/b, a and the root, at any depth, and nothing else), plus one
  epoch per workspace bumped when a folder itself is deleted or moved (its sub-folders' cached
  listings would otherwise outlive it).
Counters start at the current time in nanoseconds, so a counter evicted and recreated never
repeats an old value. With Redis down every call degrades to a miss (IGNORE_EXCEPTIONS), never an
error. Changes made from inside the container bypass Berth and show up when the minute runs out.
"""

import hashlib
import time
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction

from .paths import ancestors

WORKSPACE_LIST_TTL = 5 * 60
TREE_TTL = 60
GENERATION_TTL = 7 * 24 * 3600


def _generations(keys: list[str]) -> list[int]:
    found = cache.get_many(keys)
    values = []
    for key in keys:
        if found.get(key) is None:
            cache.add(key, time.time_ns(), GENERATION_TTL)
            found[key] = cache.get(key) or time.time_ns()  # Redis down: a value no entry was stored under
        values.append(found[key])
    return values


def _bump(keys: list[str]) -> None:
    for key in keys:
        try:
            cache.incr(key)
        except ValueError:  # missing (never set, or evicted): start a fresh, never-used value
            cache.set(key, time.time_ns(), GENERATION_TTL)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


# Workspace lists ----------------------------------------------------------------------------------

def _organization_generation_key(organization_id) -> str:
    return f"berth:wslist:gen:{organization_id}"


def cached_workspace_list(user, organization, role: str, build: Callable[[], list]) -> list:
    """The user's workspace rows in `organization`, from the cache or from `build()`.
    The role is part of the key, so a changed role never serves the old role's list."""
    (generation,) = _generations([_organization_generation_key(organization.pk)])
    key = f"berth:wslist:{organization.pk}:{generation}:{user.pk}:{role}"
    rows = cache.get(key)
    if rows is None:
        rows = build()
        cache.set(key, rows, WORKSPACE_LIST_TTL)
    return rows


def workspace_changed(workspace) -> None:
    """Call after any change to a workspace row. Runs after the surrounding transaction commits, so
    a reader can never cache the old row under the new generation."""
    organization_id = workspace.organization_id
    transaction.on_commit(lambda: _bump([_organization_generation_key(organization_id)]))


# Folder listings ----------------------------------------------------------------------------------

def _folder_generation_key(workspace_id, folder: str) -> str:
    return f"berth:tree:gen:{workspace_id}:{_digest(folder)}"


def _epoch_key(workspace_id) -> str:
    return f"berth:tree:epoch:{workspace_id}"


def _tree_key(workspace_id, folder: str, depth: int) -> str:
    epoch, generation = _generations([_epoch_key(workspace_id), _folder_generation_key(workspace_id, folder)])
    return f"berth:tree:{workspace_id}:{_digest(folder)}:{depth}:{epoch}:{generation}"


def cached_tree(workspace_id, folder: str, depth: int, build: Callable[[], dict], *,
                refresh: bool = False) -> tuple[dict, bool]:
    """(listing, served_from_cache) for one folder of one workspace at one depth. `refresh` skips
    the cached copy and stores the fresh one (to see changes made from inside the container)."""
    key = _tree_key(workspace_id, folder, depth)
    listing = None if refresh else cache.get(key)
    if listing is not None:
        return listing, True
    listing = build()
    cache.set(key, listing, TREE_TTL)
    return listing, False


def paths_changed(workspace_id, paths: list[str], *, structure: bool = False) -> None:
    """Invalidate the listings that show `paths`: their folders and every ancestor. `structure`
    is for a deleted or moved folder, whose own sub-folders' listings are stale too."""
    folders = {folder for path in paths for folder in ancestors(path)}
    keys = [_folder_generation_key(workspace_id, folder) for folder in sorted(folders)]
    if structure:
        keys.append(_epoch_key(workspace_id))
    _bump(keys)
