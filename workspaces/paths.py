"""Path safety for the files API: the one check every user-supplied workspace path passes first.

A path is relative to the workspace root, written with "/" separators. The HTTP layer has already
percent-decoded query strings once; anything that still looks percent-encoded and would decode to a
separator, a dot, a backslash or NUL is refused rather than decoded again (a second decode is how
double-encoding attacks slip past a check). This lexical check is only the first line: the file
agent (infrastructure/remote/fileagent.py) opens every component with O_NOFOLLOW relative to its
parent's descriptor, so a symlink swapped in after this check still cannot lead outside the folder.
"""

import re

MAX_PATH_LENGTH = 4096  # Linux PATH_MAX
MAX_SEGMENT_BYTES = 255  # Linux NAME_MAX

# %2e (.), %2f (/), %5c (\), %00 (NUL), also when themselves encoded again (%252e ...).
_ENCODED_DANGER = re.compile(r"%(?:25)*(?:2e|2f|5c|00)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


class PathRefused(ValueError):
    """The path could reach outside the workspace or is malformed; the message says why."""


def clean_path(raw, *, allow_root: bool = False) -> str:
    """Return `raw` as a safe workspace-relative path, or raise PathRefused.

    `allow_root` lets "" (or absence) mean the workspace folder itself, for listings; operations on
    a single file or on a folder to create, move or delete always need a name."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise PathRefused("The path must be a string.")
    if raw == "":
        if allow_root:
            return ""
        raise PathRefused("A path is required.")
    if len(raw) > MAX_PATH_LENGTH:
        raise PathRefused(f"The path is longer than {MAX_PATH_LENGTH} characters.")
    if "\x00" in raw or _CONTROL.search(raw):
        raise PathRefused("The path contains a NUL byte or a control character.")
    if "\\" in raw:
        raise PathRefused("The path contains a backslash; use '/' between folders.")
    if _ENCODED_DANGER.search(raw):
        raise PathRefused("The path contains a percent-encoded '.', '/', '\\' or NUL.")
    if raw.startswith("/") or raw.startswith("~") or _DRIVE.match(raw):
        raise PathRefused("The path must be relative to the workspace folder.")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise PathRefused("The path is not valid UTF-8.") from None
    for segment in raw.split("/"):
        if segment == "":
            raise PathRefused("The path has an empty segment ('//' or a trailing '/').")
        if segment in (".", ".."):
            raise PathRefused("The path may not contain '.' or '..' segments.")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise PathRefused(f"A name in the path is longer than {MAX_SEGMENT_BYTES} bytes.")
    return raw


def ancestors(path: str) -> list[str]:
    """The folders containing `path`, nearest first, ending with the root "": a change to `path`
    changes the listing of each of them."""
    parts = path.split("/") if path else []
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, -1, -1)]
