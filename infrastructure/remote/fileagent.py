"""Berth's workspace file agent: every file operation on a workspace folder, confined to that folder.

Why one module, run two ways: the local engine calls `handle(request)` in-process; an SSH server runs
this very source with `python3 -I -c <source>`, reading one JSON request on stdin and writing one JSON
response on stdout (like Ansible's modules). The source is a constant, so nothing a user typed is
ever part of a command line, and one request is one SSH exec, however large the tree.

Hence the rules for this file: standard library only, no imports from Berth, Python >= 3.7, no
annotations that need a newer interpreter.

Confinement: the workspace folder is opened once, then every path component is opened with
O_NOFOLLOW relative to its parent's descriptor (openat). A symlink met on the way is read with
readlinkat and followed only inside the descriptors already held: an absolute target, or one whose
'..' climbs above the workspace folder, is refused. A link swapped in between two steps makes the
O_NOFOLLOW open fail, which is refused too, so no byte outside the folder is read or written.
Writes go to a temporary file in the same folder and are renamed over the target (atomic);
deletions never follow links.

Request: {"op": ..., "root": "/abs/folder", ...}. Response: {"ok": true, ...} or
{"ok": false, "error": <code>, "message": ...} with code one of ERRORS.
"""

import base64
import errno
import hashlib
import itertools
import json
import os
import stat
import sys

ERRORS = (
    "refused", "not_found", "exists", "not_a_directory", "is_a_directory", "not_a_file",
    "too_large", "binary", "precondition", "invalid", "denied", "io",
)
MAX_LINKS = 40  # like the kernel's limit on symlinks followed in one lookup
MAX_TREE_LEVELS = 200  # nesting beyond this is reported as truncated
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
TEMP_PREFIX = ".berth-"


class AgentError(Exception):
    def __init__(self, code, message, **extra):
        Exception.__init__(self, message)
        self.code, self.message, self.extra = code, message, extra


def _refused(message):
    return AgentError("refused", message)


def _open_dir(name, dir_fd):
    """One step down; O_NOFOLLOW makes a symlink (even one swapped in a moment ago) fail with ELOOP."""
    return os.open(name, DIR_FLAGS, dir_fd=dir_fd)


def _open_file(name, dir_fd):
    return os.open(name, FILE_FLAGS, dir_fd=dir_fd)


def _os_error(exc, path):
    codes = {
        errno.ENOENT: ("not_found", "does not exist"),
        errno.ENOTDIR: ("not_a_directory", "is inside something that is not a folder"),
        errno.EISDIR: ("is_a_directory", "is a folder"),
        errno.EEXIST: ("exists", "already exists"),
        errno.ENOTEMPTY: ("exists", "is a folder that is not empty"),
        errno.ELOOP: ("refused", "is a symbolic link that changed during the request"),
        errno.EACCES: ("denied", "is not accessible on the server"),
        errno.EPERM: ("denied", "is not accessible on the server"),
        errno.EINVAL: ("invalid", "cannot be moved there"),
    }
    code, text = codes.get(exc.errno, ("io", exc.strerror or str(exc)))
    return AgentError(code, "'%s' %s" % (path or "/", text))


class Workspace:
    """The open workspace folder and the descriptors below it that one request holds."""

    def __init__(self, root, uid=None):
        if not isinstance(root, str) or not root.startswith("/"):
            raise AgentError("invalid", "the workspace root must be an absolute path")
        try:
            self.fd = os.open(root, DIR_FLAGS)
        except OSError as exc:
            raise AgentError("not_found", "the workspace folder is missing on the server (%s)" % exc.strerror)
        self.chown_to = uid if (uid is not None and hasattr(os, "geteuid") and os.geteuid() == 0) else None
        self._opened = []

    def close(self):
        for fd in self._opened + [self.fd]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._opened = []

    def _keep(self, fd):
        self._opened.append(fd)
        return fd

    def resolve(self, path, follow_last, create_parents=False):
        """Walk `path` from the root: (fd of the containing folder, final name), or (root fd, None)
        for the root itself. Intermediate symlinks are followed inside the workspace only; the final
        one too when `follow_last`."""
        stack = [self.fd]
        pending = [part for part in path.split("/") if part] if path else []
        for part in pending:
            if part in (".", ".."):
                raise _refused("'.' and '..' are not allowed in paths")
        links = 0
        while pending:
            name = pending.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    raise _refused("'%s' leads outside the workspace through a symbolic link" % path)
                stack.pop()
                continue
            last = not pending
            dir_fd = stack[-1]
            if last and not follow_last:
                return dir_fd, name
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                if last:
                    return dir_fd, name
                if not create_parents:
                    raise AgentError("not_found", "'%s' does not exist" % path)
                self.make_dir(dir_fd, name, path)
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError as exc:
                raise _os_error(exc, path)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise _refused("'%s' has too many levels of symbolic links" % path)
                target = os.readlink(name, dir_fd=dir_fd)
                if target.startswith("/"):
                    raise _refused("'%s' goes through a symbolic link to an absolute path" % path)
                pending = target.split("/") + pending
                continue
            if last:
                return dir_fd, name
            if not stat.S_ISDIR(info.st_mode):
                raise AgentError("not_a_directory", "'%s' is inside something that is not a folder" % path)
            stack.append(self.descend(dir_fd, name, path))
        return stack[-1], None

    def descend(self, dir_fd, name, path):
        """Open the folder `name`; if it became a symlink since it was looked at, refuse."""
        try:
            return self._keep(_open_dir(name, dir_fd))
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(dir_fd, name):
                raise _refused("'%s' is a symbolic link that changed during the request" % path)
            raise _os_error(exc, path)

    def open_dir(self, path):
        dir_fd, name = self.resolve(path, follow_last=True)
        return dir_fd if name is None else self.descend(dir_fd, name, path)

    def make_dir(self, dir_fd, name, path):
        try:
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        except OSError as exc:
            raise _os_error(exc, path)
        if self.chown_to is not None:
            os.chown(name, self.chown_to, self.chown_to, dir_fd=dir_fd, follow_symlinks=False)

    def lstat(self, dir_fd, name, path):
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:
            raise _os_error(exc, path)


def _is_link(dir_fd, name):
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _kind(mode):
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _is_binary(data):
    if b"\x00" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _read_regular(dir_fd, name, path, max_bytes):
    """The bytes of a regular file and its stat, refusing anything that is not one."""
    try:
        fd = _open_file(name, dir_fd)
    except OSError as exc:
        raise _os_error(exc, path)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise AgentError("is_a_directory", "'%s' is a folder" % path)
        if not stat.S_ISREG(info.st_mode):
            raise AgentError("not_a_file", "'%s' is not a regular file" % path)
        if max_bytes is not None and info.st_size > max_bytes:
            raise AgentError("too_large", "'%s' is %d bytes, over the %d byte limit" % (path, info.st_size, max_bytes),
                             size=info.st_size, limit=max_bytes)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                raise AgentError("too_large", "'%s' grew over the %d byte limit" % (path, max_bytes),
                                 size=total, limit=max_bytes)
        return b"".join(chunks), info
    finally:
        os.close(fd)


def _describe(data, info):
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "modified": info.st_mtime,
        "binary": _is_binary(data),
    }


def op_tree(ws, req):
    """Entries below a folder, depth levels deep (0: all), in one pass: one round trip for any tree."""
    path, depth, limit = req.get("path", ""), int(req.get("depth", 1)), int(req.get("limit", 100000))
    levels = MAX_TREE_LEVELS if depth <= 0 else min(depth, MAX_TREE_LEVELS)
    fd = ws.open_dir(path)
    entries, state = [], {"truncated": False}

    def walk(dir_fd, prefix, level):
        try:
            with os.scandir(dir_fd) as listing:
                # At most what still fits (plus one, to know the listing is cut): a folder of millions
                # of names must not all be held in memory. A cut folder lists some names, sorted.
                found = sorted(itertools.islice(listing, limit - len(entries) + 1), key=lambda e: e.name)
        except OSError as exc:
            raise _os_error(exc, prefix)
        for entry in found:
            if len(entries) >= limit:
                state["truncated"] = True
                return
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while listing
            rel = prefix + "/" + entry.name if prefix else entry.name
            kind = _kind(info.st_mode)
            entries.append({"path": rel, "name": entry.name, "type": kind,
                            "size": info.st_size if kind == "file" else None, "modified": info.st_mtime})
            if kind != "dir":
                continue
            if level >= levels:
                state["truncated"] = state["truncated"] or depth <= 0
                continue
            try:
                sub = _open_dir(entry.name, dir_fd)
            except OSError:
                continue  # replaced (e.g. by a symlink) or removed meanwhile: not followed
            try:
                walk(sub, rel, level + 1)
            finally:
                os.close(sub)

    walk(fd, path, 1)
    return {"path": path, "entries": entries, "truncated": state["truncated"]}


def op_read(ws, req):
    path = req["path"]
    dir_fd, name = ws.resolve(path, follow_last=True)
    if name is None:
        raise AgentError("is_a_directory", "'/' is a folder")
    data, info = _read_regular(dir_fd, name, path, req.get("max_bytes"))
    result = _describe(data, info)
    if result["binary"] and not req.get("allow_binary", False):
        raise AgentError("binary", "'%s' is a binary file" % path, **result)
    result["content"] = base64.b64encode(data).decode("ascii")
    return result


def op_read_many(ws, req):
    """Several text files at once (for a patch): missing files are reported, not errors."""
    files = {}
    for path in req["paths"]:
        try:
            files[path] = op_read(ws, {"path": path, "max_bytes": req.get("max_bytes")})
        except AgentError as exc:
            if exc.code != "not_found":
                raise
            files[path] = {"missing": True}
    return {"files": files}


def op_stat(ws, req):
    path = req.get("path", "")
    dir_fd, name = ws.resolve(path, follow_last=True)
    if name is None:
        return {"path": path, "type": "dir", "size": None, "modified": os.fstat(ws.fd).st_mtime}
    info = ws.lstat(dir_fd, name, path)
    result = {"path": path, "type": _kind(info.st_mode), "size": None, "modified": info.st_mtime}
    if result["type"] == "file":
        data, info = _read_regular(dir_fd, name, path, req.get("max_bytes"))
        result.update(_describe(data, info))
    return result


def _current_sha(dir_fd, name, path):
    """sha256 of the file at name, or None when there is none; a folder or link is an error."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None, None
    if stat.S_ISDIR(info.st_mode):
        raise AgentError("is_a_directory", "'%s' is a folder" % path)
    if not stat.S_ISREG(info.st_mode):
        raise _refused("'%s' is not a regular file" % path)
    data, info = _read_regular(dir_fd, name, path, None)
    return hashlib.sha256(data).hexdigest(), info


def op_commit(ws, req):
    """Write and delete several files all-or-nothing as far as a filesystem allows: every
    precondition is checked and every new file is fully written to a temporary name first; only
    then are they renamed into place (each rename atomic) and deletions done."""
    planned = []
    for change in req["changes"]:
        path, action = change["path"], change["action"]
        if action not in ("write", "delete"):
            raise AgentError("invalid", "unknown change action %r" % action)
        try:
            dir_fd, name = ws.resolve(path, follow_last=True)
        except AgentError as exc:
            if exc.code != "not_found" or action != "write":
                raise
            dir_fd = name = None  # its folder is created below, once every check has passed
        if dir_fd is not None and name is None:
            raise AgentError("is_a_directory", "'/' is a folder")
        current, info = _current_sha(dir_fd, name, path) if name is not None else (None, None)
        expect = change.get("expect")
        if expect == "absent" and current is not None:
            raise AgentError("exists", "'%s' already exists" % path, path=path)
        if expect not in (None, "absent") and current != expect:
            message = "'%s' does not exist" % path if current is None else "'%s' changed since it was read" % path
            raise AgentError("precondition", message, path=path, sha256=current)
        if action == "delete" and current is None:
            raise AgentError("not_found", "'%s' does not exist" % path, path=path)
        planned.append((change, dir_fd, name, info))
    for index, (change, dir_fd, name, info) in enumerate(planned):
        if dir_fd is None:
            dir_fd, name = ws.resolve(change["path"], follow_last=True, create_parents=True)
            planned[index] = (change, dir_fd, name, info)
    temps = []
    try:
        for change, dir_fd, name, info in planned:
            if change["action"] == "write":
                data = base64.b64decode(change.get("content", ""))
                temps.append((dir_fd, _write_temp(ws, dir_fd, data, info), name, change["path"], data))
    except BaseException:
        for dir_fd, temp, _, _, _ in temps:
            _unlink_quietly(temp, dir_fd)
        raise
    results = []
    for index, (dir_fd, temp, name, path, data) in enumerate(temps):
        try:
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            for later_fd, later_temp, _, _, _ in temps[index:]:
                _unlink_quietly(later_temp, later_fd)
            raise _os_error(exc, path)
        results.append({"path": path, "action": "write", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    for change, dir_fd, name, _ in planned:
        if change["action"] == "delete":
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError as exc:
                raise _os_error(exc, change["path"])
            results.append({"path": change["path"], "action": "delete", "sha256": None, "size": None})
    return {"results": results}


def _write_temp(ws, dir_fd, data, existing):
    """A new file beside the target holding `data`, owned and moded like the file it replaces, minus
    setuid, setgid and sticky: an agent that is not root would otherwise make the workspace user's
    content its own setuid program on the server."""
    temp = TEMP_PREFIX + base64.b32encode(os.urandom(10)).decode("ascii").lower() + ".tmp"
    mode = stat.S_IMODE(existing.st_mode) & 0o777 if existing is not None else 0o644
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                 mode, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, mode)
        if existing is not None and ws.chown_to is not None:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        elif ws.chown_to is not None:
            os.fchown(fd, ws.chown_to, ws.chown_to)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp, dir_fd)
        raise
    os.close(fd)
    return temp


def _unlink_quietly(name, dir_fd):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _empty_level(parent_fd, name):
    """Open the folder `name`, unlink everything in it that is not a folder (links included, never
    followed) and return [parent_fd, name, fd, its sub-folders]."""
    fd = _open_dir(name, parent_fd)
    folders = []
    try:
        with os.scandir(fd) as listing:
            for entry in listing:  # unlinked while listed: a folder of millions of files is never held whole
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    os.unlink(entry.name, dir_fd=fd)
    except BaseException:
        os.close(fd)
        raise
    return [parent_fd, name, fd, folders]


def _remove_tree(parent_fd, name):
    """Delete a folder and everything in it without following any link (rm -r with openat). A loop
    with one descriptor per level, not recursion: a workspace user can nest folders deeper than
    Python's recursion limit."""
    stack = [_empty_level(parent_fd, name)]
    try:
        while stack:
            level = stack[-1]
            if level[3]:
                stack.append(_empty_level(level[2], level[3].pop()))
                continue
            stack.pop()
            os.close(level[2])
            os.rmdir(level[1], dir_fd=level[0])
    finally:
        for level in stack:
            os.close(level[2])


def op_delete(ws, req):
    path = req["path"]
    dir_fd, name = ws.resolve(path, follow_last=False)
    if name is None:
        raise _refused("the workspace folder itself cannot be deleted")
    kind = _kind(ws.lstat(dir_fd, name, path).st_mode)
    try:
        if kind == "dir":
            _remove_tree(dir_fd, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        raise _os_error(exc, path)
    return {"path": path, "type": kind}


def op_move(ws, req):
    source, target = req["from"], req["to"]
    src_fd, src_name = ws.resolve(source, follow_last=False)
    dst_fd, dst_name = ws.resolve(target, follow_last=False, create_parents=True)
    if src_name is None or dst_name is None:
        raise _refused("the workspace folder itself cannot be moved")
    kind = _kind(ws.lstat(src_fd, src_name, source).st_mode)
    try:
        os.stat(dst_name, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise AgentError("exists", "'%s' already exists" % target, path=target)
    try:
        os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        raise _os_error(exc, target)
    return {"from": source, "to": target, "type": kind}


def op_mkdir(ws, req):
    path = req["path"]
    dir_fd, name = ws.resolve(path, follow_last=False, create_parents=True)
    if name is None:
        raise AgentError("exists", "the workspace folder already exists")
    ws.make_dir(dir_fd, name, path)
    return {"path": path, "type": "dir"}


OPERATIONS = {
    "tree": op_tree, "read": op_read, "read_many": op_read_many, "stat": op_stat,
    "commit": op_commit, "delete": op_delete, "move": op_move, "mkdir": op_mkdir,
}


def handle(req):
    """Run one request; every failure comes back as {"ok": false, "error", "message"}."""
    try:
        operation = OPERATIONS.get(req.get("op"))
        if operation is None:
            raise AgentError("invalid", "unknown operation %r" % req.get("op"))
        ws = Workspace(req.get("root"), req.get("uid"))
        try:
            result = operation(ws, req)
        finally:
            ws.close()
    except AgentError as exc:
        return dict(exc.extra, ok=False, error=exc.code, message=exc.message)
    except OSError as exc:
        return {"ok": False, "error": "io", "message": "%s: %s" % (type(exc).__name__, exc.strerror or exc)}
    except (KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "error": "invalid", "message": "malformed request: %r" % (exc,)}
    result["ok"] = True
    return result


def main():
    try:
        req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError as exc:
        response = {"ok": False, "error": "invalid", "message": "request is not JSON: %s" % exc}
    else:
        response = handle(req)
    sys.stdout.write(json.dumps(response))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
