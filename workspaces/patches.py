"""Unified diffs: parse, then apply to text in memory. Pure functions, no I/O.

Strict on purpose: a hunk applies only at the line it names, with every context and removed line
equal to the file's (no offset, no fuzz), because a patch applied somewhere else than its author
meant is worse than a refused one. Paths lose one leading "a/" or "b/" (git's prefixes);
/dev/null marks an added or deleted file; "\\ No newline at end of file" is honoured.
"""

import re
from dataclasses import dataclass, field

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
NO_NEWLINE = "\\ No newline at end of file"


class PatchError(ValueError):
    """The diff is malformed (400)."""


class PatchConflict(Exception):
    """The diff does not match the files (409): names the file and the failing hunk."""

    def __init__(self, path: str, message: str, *, hunk: int | None = None, header: str = ""):
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.hunk, self.header = path, message, hunk, header


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (" " | "-" | "+", text with its newline)

    @property
    def old_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [text for op, text in self.lines if op != "-"]

    def summary(self) -> dict:
        return {
            "header": self.header,
            "added": sum(op == "+" for op, _ in self.lines),
            "removed": sum(op == "-" for op, _ in self.lines),
        }


@dataclass
class FilePatch:
    old_path: str | None  # None: the file is added
    new_path: str | None  # None: the file is deleted
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path

    @property
    def kind(self) -> str:
        if self.old_path is None:
            return "add"
        if self.new_path is None:
            return "delete"
        return "modify" if self.old_path == self.new_path else "rename"

    def summary(self) -> dict:
        hunks = [hunk.summary() for hunk in self.hunks]
        return {
            "path": self.path,
            "old_path": self.old_path,
            "kind": self.kind,
            "added": sum(h["added"] for h in hunks),
            "removed": sum(h["removed"] for h in hunks),
            "hunks": hunks,
        }


def _file_name(line: str, marker: str, prefix: str, number: int) -> str | None:
    name = line[len(marker):].split("\t", 1)[0].rstrip("\r\n")
    if name.startswith('"'):
        raise PatchError(f"line {number}: quoted file names are not supported")
    if name == "/dev/null":
        return None
    if name.startswith(prefix):
        name = name[len(prefix):]
    if not name.strip():
        raise PatchError(f"line {number}: a file name is missing after '{marker.strip()}'")
    return name


def parse_diff(text: str) -> list[FilePatch]:
    """The files and hunks of a unified diff, or PatchError naming the line that is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PatchError("The diff is empty.")
    lines = text.splitlines(keepends=True)
    patches: list[FilePatch] = []
    seen: set[str] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(("GIT binary patch", "Binary files ")):
            raise PatchError(f"line {i + 1}: binary diffs are not supported")
        if not line.startswith("--- "):
            i += 1  # preamble: "diff --git", "index", mode lines, commit messages
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
            raise PatchError(f"line {i + 2}: expected '+++ ' after '--- '")
        patch = FilePatch(_file_name(line, "--- ", "a/", i + 1), _file_name(lines[i + 1], "+++ ", "b/", i + 2))
        if patch.old_path is None and patch.new_path is None:
            raise PatchError(f"line {i + 1}: both sides are /dev/null")
        for name in {patch.old_path, patch.new_path} - {None}:
            if name in seen:
                raise PatchError(f"line {i + 1}: '{name}' appears twice in the diff")
            seen.add(name)
        i += 2
        while i < len(lines) and lines[i].startswith("@@"):
            hunk, i = _parse_hunk(lines, i)
            if patch.hunks and hunk.old_start < patch.hunks[-1].old_start + patch.hunks[-1].old_count:
                raise PatchError(f"{patch.path}: hunk '{hunk.header}' overlaps or precedes the one before it")
            patch.hunks.append(hunk)
        if i < len(lines) and lines[i][:1] in ("+", "-", " ") and not lines[i].startswith("--- "):
            raise PatchError(f"line {i + 1}: hunk '{patch.hunks[-1].header if patch.hunks else ''}' has more "
                             "lines than its header says")
        if not patch.hunks:
            raise PatchError(f"line {i + 1}: '{patch.path}' has no hunks")
        _check_shape(patch)
        patches.append(patch)
    if not patches:
        raise PatchError("The text contains no unified diff ('--- ' and '+++ ' lines followed by '@@' hunks).")
    return patches


def _parse_hunk(lines: list[str], i: int) -> tuple[Hunk, int]:
    header = lines[i].rstrip("\r\n")
    match = _HUNK_HEADER.match(header)
    if not match:
        raise PatchError(f"line {i + 1}: malformed hunk header {header!r}")
    old_start, old_count, new_start, new_count = (
        int(match[1]), int(match[2] if match[2] is not None else 1),
        int(match[3]), int(match[4] if match[4] is not None else 1),
    )
    if (old_count and not old_start) or (new_count and not new_start):
        raise PatchError(f"line {i + 1}: hunk header {header!r} counts lines from 0; lines start at 1")
    hunk = Hunk(old_start, old_count, new_start, new_count, header[: header.index("@@", 2) + 2])
    old_seen = new_seen = 0
    i += 1
    while i < len(lines) and (old_seen < old_count or new_seen < new_count):
        line = lines[i]
        op, text = line[:1], line[1:]
        if line in ("\n", "\r\n"):  # an empty context line whose leading space an editor trimmed
            op, text = " ", line
        if op not in (" ", "-", "+"):
            if line.rstrip("\r\n") == NO_NEWLINE and hunk.lines:
                _drop_newline(hunk)
                i += 1
                continue
            raise PatchError(f"line {i + 1}: expected ' ', '-' or '+' in hunk '{hunk.header}', got {line[:40]!r}")
        old_seen += op != "+"
        new_seen += op != "-"
        hunk.lines.append((op, text))
        i += 1
    if old_seen != old_count or new_seen != new_count:
        raise PatchError(f"hunk '{hunk.header}' has {old_seen} old and {new_seen} new lines; its header says "
                         f"{old_count} and {new_count}")
    if i < len(lines) and lines[i].rstrip("\r\n") == NO_NEWLINE:
        _drop_newline(hunk)
        i += 1
    return hunk, i


def _drop_newline(hunk: Hunk) -> None:
    op, text = hunk.lines[-1]
    hunk.lines[-1] = (op, text.rstrip("\n").rstrip("\r") if text.endswith("\n") else text)


def _check_shape(patch: FilePatch) -> None:
    if patch.kind == "add" and any(hunk.old_count for hunk in patch.hunks):
        raise PatchError(f"{patch.path}: a new file's hunks cannot remove lines")
    if patch.kind == "delete" and any(hunk.new_count for hunk in patch.hunks):
        raise PatchError(f"{patch.path}: a deleted file's hunks cannot add lines")


def apply_file(patch: FilePatch, original: str | None) -> str | None:
    """The file's new text (None: deleted) after every hunk applied exactly, or PatchConflict.
    `original` is None when the file does not exist."""
    if patch.kind == "add":
        if original is not None:
            raise PatchConflict(patch.path, "the diff adds this file, but it already exists")
        return "".join(text for hunk in patch.hunks for text in hunk.new_lines)
    if original is None:
        raise PatchConflict(patch.old_path, "the diff changes this file, but it does not exist")
    lines = original.splitlines(keepends=True)
    result: list[str] = []
    position = 0  # next line of `lines` not yet copied
    for number, hunk in enumerate(patch.hunks, start=1):
        start = hunk.old_start - 1 if hunk.old_count else hunk.old_start
        expected = hunk.old_lines
        if start < position or lines[start:start + len(expected)] != expected:
            raise PatchConflict(
                patch.old_path, f"hunk {number} ({hunk.header}) does not match the file at line {hunk.old_start}",
                hunk=number, header=hunk.header,
            )
        result.extend(lines[position:start])
        result.extend(hunk.new_lines)
        position = start + len(expected)
    result.extend(lines[position:])
    if patch.kind == "delete":
        if result:
            raise PatchConflict(patch.old_path, "the diff deletes this file, but the file has lines the diff does not remove",
                                hunk=len(patch.hunks), header=patch.hunks[-1].header)
        return None
    return "".join(result)
