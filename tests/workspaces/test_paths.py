import pytest

from workspaces.paths import MAX_PATH_LENGTH, PathRefused, ancestors, clean_path

# Each payload once tried to leave a folder somewhere; all must be refused.
TRAVERSAL_PAYLOADS = [
    "..",
    "../etc/passwd",
    "a/../../etc/passwd",
    "a/..",
    "./a",
    "a/./b",
    "/etc/passwd",
    "//etc/passwd",
    "~/.ssh/id_rsa",
    "~root/.bashrc",
    "a\\..\\..\\etc\\passwd",
    "..\\etc",
    "C:\\Windows",
    "C:/Windows",
    "%2e%2e/etc/passwd",
    "%2E%2E%2Fetc%2Fpasswd",
    "..%2fetc",
    "a%2f..%2f..",
    "%252e%252e/etc",
    "a%5c..%5c..",
    "a%00.txt",
    "a\x00.txt",
    "a\n.txt",
    "a//b",
    "a/",
    "/",
    "a/\x7f",
    "\udc80",  # lone surrogate: not UTF-8
]


@pytest.mark.parametrize("payload", TRAVERSAL_PAYLOADS)
def test_it_refuses_traversal_and_malformed_paths(payload):
    with pytest.raises(PathRefused):
        clean_path(payload)


@pytest.mark.parametrize("path", ["a.txt", "src/main.py", ".env", "..hidden", "a..b/c", "dir with spaces/ü.txt",
                                  "100%/done", "%41.txt", "...", "a/b/c/d/e/f.txt"])
def test_it_accepts_ordinary_relative_paths_unchanged(path):
    assert clean_path(path) == path


def test_it_refuses_overlong_paths_and_names():
    with pytest.raises(PathRefused, match="longer"):
        clean_path("a/" * (MAX_PATH_LENGTH // 2) + "b")
    with pytest.raises(PathRefused, match="255 bytes"):
        clean_path("x" * 256)
    with pytest.raises(PathRefused, match="255 bytes"):
        clean_path("é" * 128)  # 256 bytes in UTF-8
    assert clean_path("x" * 255) == "x" * 255


def test_the_root_is_only_allowed_when_asked_for():
    assert clean_path("", allow_root=True) == ""
    assert clean_path(None, allow_root=True) == ""
    with pytest.raises(PathRefused, match="required"):
        clean_path("")


def test_it_refuses_non_strings():
    with pytest.raises(PathRefused):
        clean_path(["a"])


def test_ancestors_are_every_containing_folder_up_to_the_root():
    assert ancestors("a/b/c.txt") == ["a/b", "a", ""]
    assert ancestors("top.txt") == [""]
