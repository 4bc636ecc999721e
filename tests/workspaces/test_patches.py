import pytest

from workspaces.patches import PatchConflict, PatchError, apply_file, parse_diff

ORIGINAL = "".join(f"line {n}\n" for n in range(1, 21))

TWO_HUNKS = """\
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -15,3 +15,4 @@ def section():
 line 15
 line 16
+inserted
 line 17
"""


def _apply_one(diff: str, original: str | None) -> str | None:
    (patch,) = parse_diff(diff)
    return apply_file(patch, original)


def test_it_applies_several_hunks_of_one_file():
    result = _apply_one(TWO_HUNKS, ORIGINAL)
    expected = ORIGINAL.replace("line 3\n", "line three\n").replace("line 16\n", "line 16\ninserted\n")
    assert result == expected


def test_it_strips_git_prefixes_and_names_the_kind():
    (patch,) = parse_diff(TWO_HUNKS)
    assert (patch.old_path, patch.new_path, patch.kind) == ("src/app.py", "src/app.py", "modify")
    summary = patch.summary()
    assert summary["added"] == 2 and summary["removed"] == 1
    assert [h["header"] for h in summary["hunks"]] == ["@@ -2,3 +2,3 @@", "@@ -15,3 +15,4 @@"]


def test_it_keeps_paths_without_prefixes():
    diff = "--- notes.txt\t2024-01-01 10:00:00\n+++ notes.txt\t2024-01-02 10:00:00\n@@ -1 +1 @@\n-old\n+new\n"
    (patch,) = parse_diff(diff)
    assert patch.path == "notes.txt"
    assert apply_file(patch, "old\n") == "new\n"


def test_it_adds_a_file_from_dev_null():
    diff = "--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# Title\n+text\n"
    (patch,) = parse_diff(diff)
    assert patch.kind == "add" and patch.path == "docs/new.md"
    assert apply_file(patch, None) == "# Title\ntext\n"


def test_adding_a_file_that_exists_is_a_conflict():
    diff = "--- /dev/null\n+++ b/a.txt\n@@ -0,0 +1 @@\n+x\n"
    with pytest.raises(PatchConflict, match="already exists"):
        _apply_one(diff, "something\n")


def test_it_deletes_a_file_to_dev_null():
    diff = "--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-one\n-two\n"
    (patch,) = parse_diff(diff)
    assert patch.kind == "delete"
    assert apply_file(patch, "one\ntwo\n") is None


def test_deleting_a_file_with_lines_the_diff_does_not_name_is_a_conflict():
    diff = "--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-one\n-two\n"
    with pytest.raises(PatchConflict, match="does not remove"):
        _apply_one(diff, "one\ntwo\nthree\n")


def test_changing_a_missing_file_is_a_conflict():
    with pytest.raises(PatchConflict, match="does not exist"):
        _apply_one(TWO_HUNKS, None)


def test_a_renamed_file_keeps_both_names():
    diff = "--- a/old.txt\n+++ b/new.txt\n@@ -1 +1 @@\n-a\n+b\n"
    (patch,) = parse_diff(diff)
    assert (patch.kind, patch.old_path, patch.new_path) == ("rename", "old.txt", "new.txt")
    assert apply_file(patch, "a\n") == "b\n"


def test_a_hunk_that_does_not_match_names_itself():
    changed = ORIGINAL.replace("line 16\n", "line sixteen\n")
    with pytest.raises(PatchConflict) as raised:
        _apply_one(TWO_HUNKS, changed)
    assert raised.value.path == "src/app.py"
    assert raised.value.hunk == 2
    assert raised.value.header == "@@ -15,3 +15,4 @@"


def test_it_applies_at_the_named_line_only_no_offset_no_fuzz():
    shifted = "extra\n" + ORIGINAL  # every line moved down by one: patch(1) would apply with offset 1
    with pytest.raises(PatchConflict) as raised:
        _apply_one(TWO_HUNKS, shifted)
    assert raised.value.hunk == 1


def test_no_newline_at_end_of_file_on_both_sides():
    diff = (
        "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
        "\\ No newline at end of file\n"
    )
    assert _apply_one(diff, "a\nb") == "a\nc"


def test_adding_a_newline_at_end_of_file():
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -1 +1 @@\n-b\n\\ No newline at end of file\n+b\n"
    assert _apply_one(diff, "b") == "b\n"
    with pytest.raises(PatchConflict):
        _apply_one(diff, "b\n")


def test_an_empty_context_line_without_its_space_still_counts():
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n a\n\n-c\n+C\n"
    assert _apply_one(diff, "a\n\nc\n") == "a\n\nC\n"


def test_hunk_headers_without_counts_mean_one_line():
    diff = "--- a/f\n+++ b/f\n@@ -2 +2 @@\n-two\n+2\n"
    assert _apply_one(diff, "one\ntwo\nthree\n") == "one\n2\nthree\n"


def test_pure_insertion_after_a_line():
    diff = "--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+between\n"
    assert _apply_one(diff, "one\ntwo\n") == "one\nbetween\ntwo\n"


def test_it_parses_several_files_with_a_preamble():
    diff = "From: someone\nSubject: change\n\n" + TWO_HUNKS + "--- /dev/null\n+++ b/b.txt\n@@ -0,0 +1 @@\n+b\n"
    assert [p.path for p in parse_diff(diff)] == ["src/app.py", "b.txt"]


MALFORMED = [
    ("", "empty"),
    ("just some text\n", "no unified diff"),
    ("--- a/x\n@@ -1 +1 @@\n-a\n+b\n", "expected '\\+\\+\\+ '"),
    ("--- a/x\n+++ b/x\n", "no hunks"),
    ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n", "header says"),
    ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n+c\n", "more lines than its header says"),
    ("--- a/x\n+++ b/x\n@@ nonsense @@\n-a\n", "malformed hunk header"),
    ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n?b\n", "expected ' ', '-' or '\\+'"),
    ("--- /dev/null\n+++ /dev/null\n@@ -0,0 +1 @@\n+a\n", "both sides"),
    ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "twice"),
    ("--- /dev/null\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "cannot remove"),
    ("--- a/x\n+++ /dev/null\n@@ -1 +1 @@\n-a\n+b\n", "cannot add"),
    ("--- a/x\n+++ b/x\n@@ -5 +5 @@\n-a\n+b\n@@ -1 +1 @@\n-c\n+d\n", "overlaps or precedes"),
    ("--- a/x\n+++ b/x\n@@ -0,1 +0,1 @@\n-a\n+b\n", "from 0"),
    ('--- "a/x y"\n+++ "b/x y"\n@@ -1 +1 @@\n-a\n+b\n', "quoted"),
    ("diff --git a/img.png b/img.png\nGIT binary patch\nliteral 5\n", "binary"),
]


@pytest.mark.parametrize(("diff", "reason"), MALFORMED)
def test_malformed_diffs_are_refused_with_a_reason(diff, reason):
    with pytest.raises(PatchError, match=reason):
        parse_diff(diff)
