"""A person in a real browser (Debian's Chromium, driven by Playwright) against the live app:
sign in, create a workspace cloned from a repository, open a file, edit, save, reload, patch.
Screenshots of each page are taken every run; they replace the README's (docs/screenshots/) only
when BERTH_SCREENSHOTS_DIR names that folder, so a test run leaves the checkout as it was."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.fixtures.workspace_files import folder_of
from workspaces.choices import WorkspaceStatus
from workspaces.models import Workspace
from workspaces.state import report_progress, transition

CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]

pytestmark = [pytest.mark.browser, pytest.mark.docker]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


@pytest.fixture
def shot(browser_page, tmp_path):
    """Take a full-page screenshot named `name`."""
    folder = Path(os.environ.get("BERTH_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return lambda name: browser_page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_sign_in_create_edit_save_reload_and_patch(browser_page, shot, live_server, alice, default_image,
                                                   local_server, git_server, server_containers):
    page = browser_page
    page.goto(live_server.url + "/")
    expect(page.locator("h1")).to_have_text("Sign in to Berth")
    shot("sign-in")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Workspaces")

    page.fill("#id_name", "webapp")
    page.check("input[name=source][value=clone]")
    page.fill("#id_repo_url", f"{git_server}/demo.git")
    page.fill("#id_branch", "main")
    page.click("text=Create workspace")
    row = page.locator("tr", has=page.locator("a.ws-name", has_text="webapp"))
    expect(row.locator(".badge")).to_have_text("Running", timeout=120_000)  # live rows, no reload
    shot("home")
    page.set_viewport_size({"width": 420, "height": 860})
    shot("home-narrow")
    page.set_viewport_size({"width": 1280, "height": 860})

    workspace = Workspace.objects.get(name="webapp")
    folder = folder_of(workspace)
    page.click("a.ws-name:has-text('webapp')")
    page.click("#tree button.entry:has-text('README.md')")
    expect(page.locator("#editor")).to_have_value("hello from the test repository\n")
    page.fill("#editor", "hello from the browser\nsecond line\n")
    page.locator("#editor").press("Control+s")
    expect(page.locator("#flash")).to_have_text("Saved README.md.")
    assert (folder / "README.md").read_text() == "hello from the browser\nsecond line\n"
    shot("workspace")

    page.reload()
    page.click("#tree button.entry:has-text('README.md')")
    expect(page.locator("#editor")).to_have_value("hello from the browser\nsecond line\n")

    diff = (
        "--- a/README.md\n+++ b/README.md\n@@ -1,2 +1,2 @@\n hello from the browser\n-second line\n+patched line\n"
        "--- /dev/null\n+++ b/notes/todo.md\n@@ -0,0 +1 @@\n+- ship it\n"
    )
    page.click("#patch-box summary")
    page.fill("#patch-text", diff)
    page.click("#patch-preview")
    expect(page.locator("#patch-result")).to_contain_text("This patch changes 2 file(s)")
    expect(page.locator("#patch-result")).to_contain_text("@@ -1,2 +1,2 @@")
    shot("patch-preview")
    page.click("#patch-apply")
    expect(page.locator("#patch-result")).to_contain_text("Applied to 2 file(s)")
    expect(page.locator("#editor")).to_have_value("hello from the browser\npatched line\n")
    expect(page.locator("#tree button.entry:has-text('notes/')")).to_be_visible()
    assert (folder / "notes" / "todo.md").read_text() == "- ship it\n"

    page.click("#patch-preview")  # the same patch again no longer matches: named, nothing written
    expect(page.locator("#patch-result")).to_contain_text("Failing hunk 1 in README.md: @@ -1,2 +1,2 @@")
    shot("patch-conflict")
    assert (folder / "README.md").read_text() == "hello from the browser\npatched line\n"


def test_errors_show_as_messages_and_narrow_windows_stack(browser_page, shot, live_server, alice, placed_workspace):
    page = browser_page
    page.context.add_cookies([_session_cookie(live_server, alice)])
    (folder_of(placed_workspace) / "image.bin").write_bytes(b"\x89PNG\x00\x00")
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{live_server.url}/workspaces/{placed_workspace.pk}/")
    page.click("#tree button.entry:has-text('image.bin')")
    expect(page.locator("#flash")).to_contain_text("binary file")
    expect(page.locator("#download")).to_be_visible()
    tree_box, editor_box = page.locator(".tree-pane").bounding_box(), page.locator(".editor-pane").bounding_box()
    assert editor_box["y"] >= tree_box["y"] + tree_box["height"]  # stacked, not side by side
    shot("workspace-narrow")


def test_create_rename_delete_upload_and_download_files(browser_page, live_server, alice, placed_workspace):
    page = browser_page
    folder = folder_of(placed_workspace)
    page.context.add_cookies([_session_cookie(live_server, alice)])
    page.goto(f"{live_server.url}/workspaces/{placed_workspace.pk}/")
    expect(page.locator("#tree")).to_contain_text("No files yet")
    answers = []
    page.on("dialog", lambda dialog: dialog.accept(answers.pop(0)) if answers else dialog.accept())

    answers.append("src")
    page.click("#new-folder")
    expect(page.locator("#flash")).to_have_text("Created folder src.")
    answers.append("src/main.py")
    page.click("#new-file")
    expect(page.locator("#flash")).to_have_text("Created src/main.py.")
    assert (folder / "src" / "main.py").read_text() == ""

    page.set_input_files("#upload", files=[{"name": "logo.bin", "mimeType": "application/octet-stream",
                                            "buffer": b"\x89PNG\x00data"}])
    expect(page.locator("#flash")).to_have_text("Uploaded src/logo.bin.")  # into the selected file's folder
    assert (folder / "src" / "logo.bin").read_bytes() == b"\x89PNG\x00data"

    page.click("#tree button.entry:has-text('main.py')")
    answers.append("app/main.py")
    page.click("#rename")
    expect(page.locator("#flash")).to_have_text("Moved src/main.py to app/main.py.")
    expect(page.locator("#current-path")).to_have_text("app/main.py")
    assert (folder / "app" / "main.py").exists() and not (folder / "src" / "main.py").exists()

    page.click("#tree button.entry:has-text('logo.bin')")
    expect(page.locator("#flash")).to_contain_text("binary file")
    expect(page.locator("#download")).to_have_attribute("href", re.compile(r"logo\.bin&download=1$"))
    with page.expect_download() as download:
        page.click("#download")
    assert Path(download.value.path()).read_bytes() == b"\x89PNG\x00data"

    page.click("#tree button.entry:has-text('src/')")
    page.click("#delete")  # confirm() is accepted
    expect(page.locator("#flash")).to_have_text("Deleted src.")
    expect(page.locator("#tree button.entry:has-text('src/')")).to_have_count(0)
    assert not (folder / "src").exists()


def test_statuses_and_progress_update_live_without_a_reload(browser_page, live_server, alice, placed_workspace):
    page = browser_page
    Workspace.objects.filter(pk=placed_workspace.pk).update(status=WorkspaceStatus.PROVISIONING,
                                                            status_message="Cloning: 10%")
    placed_workspace.refresh_from_db()
    page.context.add_cookies([_session_cookie(live_server, alice)])
    page.goto(live_server.url + "/")
    row = page.locator(f"#ws-{placed_workspace.pk}")
    expect(row.locator(".progress")).to_have_text("Cloning: 10%")
    page.evaluate("window.notReloaded = true")
    report_progress(placed_workspace, "Cloning: 80%")
    expect(row.locator(".progress")).to_have_text("Cloning: 80%", timeout=10_000)
    transition(placed_workspace, WorkspaceStatus.RUNNING, message="Running")
    expect(page.locator(f"#ws-{placed_workspace.pk} .badge")).to_have_text("Running", timeout=10_000)
    expect(page.locator(f"#ws-{placed_workspace.pk} button:has-text('Stop')")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True


def _session_cookie(live_server, user) -> dict:
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    return {"name": "sessionid", "value": session, "url": live_server.url}

