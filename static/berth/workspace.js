/* The workspace page: file tree (folders load when opened), editor with line numbers and Ctrl/Cmd+S,
   create / rename / delete / upload / download, and the patch box (preview, then apply).
   Everything goes through the files API with the session cookie and the CSRF token. */
(function () {
  "use strict";
  var ide = document.getElementById("ide");
  if (!ide) return;
  var api = ide.getAttribute("data-api");
  var mayEdit = ide.getAttribute("data-may-edit") === "1";
  var csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  function $(id) { return document.getElementById(id); }
  var editor = $("editor"), gutter = $("gutter"), flash = $("flash"), tree = $("tree");
  var current = null;      // the open file: {path, etag}
  var selected = "";       // the selected tree entry (file or folder), "" = the workspace folder
  var selectedType = "dir";
  var expanded = {};       // folder path -> true while open
  var dirty = false;

  function show(message, kind) {
    flash.textContent = message;
    flash.className = "flash " + (kind || "info");
  }

  function q(path) { return encodeURIComponent(path); }
  function parentOf(path) { return path.indexOf("/") < 0 ? "" : path.slice(0, path.lastIndexOf("/")); }
  function folderForNew() { return selectedType === "dir" ? selected : parentOf(selected); }

  function call(method, url, options) {
    options = options || {};
    var headers = Object.assign({ "X-CSRFToken": csrf, Accept: "application/json" }, options.headers || {});
    var init = { method: method, headers: headers, credentials: "same-origin" };
    if (options.json !== undefined) {
      init.body = JSON.stringify(options.json);
      headers["Content-Type"] = "application/json";
    } else if (options.body !== undefined) {
      init.body = options.body;
    }
    return fetch(url, init).then(function (response) {
      if (response.ok) return response;
      return response.json().catch(function () { return {}; }).then(function (data) {
        var error = new Error(data.detail || (response.status + " " + response.statusText));
        error.status = response.status;
        error.data = data;
        throw error;
      });
    });
  }

  function fail(error) { show(error.message, "error"); }

  /* Tree --------------------------------------------------------------------------------------- */

  function entryNode(entry) {
    var li = document.createElement("li");
    li.className = entry.type;
    li.setAttribute("role", "treeitem");
    li.dataset.path = entry.path;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "entry";
    button.textContent = entry.name + (entry.type === "dir" ? "/" : entry.type === "symlink" ? " →" : "");
    button.title = entry.path + (entry.size !== null ? " (" + entry.size + " bytes)" : "");
    li.appendChild(button);
    if (entry.type === "dir") {
      var children = document.createElement("ul");
      children.setAttribute("role", "group");
      children.hidden = true;
      li.appendChild(children);
      li.setAttribute("aria-expanded", "false");
    }
    return li;
  }

  function loadFolder(path, list) {
    return call("GET", api + "files/?path=" + q(path) + "&depth=1").then(function (response) {
      return response.json();
    }).then(function (listing) {
      var entries = listing.entries.slice().sort(function (a, b) {
        if ((a.type === "dir") !== (b.type === "dir")) return a.type === "dir" ? -1 : 1;
        return a.name.localeCompare(b.name);
      });
      list.innerHTML = "";
      if (!entries.length) {
        var empty = document.createElement("li");
        empty.className = "muted";
        empty.textContent = path ? "(empty folder)" : "No files yet: create one or upload one.";
        list.appendChild(empty);
      }
      entries.forEach(function (entry) { list.appendChild(entryNode(entry)); });
      markSelected();
    });
  }

  function nodeFor(path) {
    var found = null;
    tree.querySelectorAll("li[data-path]").forEach(function (li) { if (li.dataset.path === path) found = li; });
    return found;
  }

  function reloadTree() {
    var open = Object.keys(expanded).sort(function (a, b) { return a.length - b.length; });
    return loadFolder("", tree).then(function () {
      return open.reduce(function (chain, path) {
        return chain.then(function () {
          var li = nodeFor(path);
          if (!li) { delete expanded[path]; return null; }
          return expand(li);
        });
      }, Promise.resolve());
    }).catch(fail);
  }

  function expand(li) {
    var list = li.querySelector("ul");
    expanded[li.dataset.path] = true;
    li.setAttribute("aria-expanded", "true");
    list.hidden = false;
    return loadFolder(li.dataset.path, list);
  }

  function select(path, type) {
    selected = path;
    selectedType = type;
    markSelected();
    ["rename", "delete"].forEach(function (id) { if ($(id)) $(id).disabled = !mayEdit || !path; });
  }

  function markSelected() {
    tree.querySelectorAll("li.selected").forEach(function (li) { li.classList.remove("selected"); });
    var li = selected && nodeFor(selected);
    if (li) li.classList.add("selected");
  }

  tree.addEventListener("click", function (event) {
    var button = event.target.closest("button.entry");
    if (!button) return;
    var li = button.parentElement;
    var path = li.dataset.path;
    if (li.classList.contains("dir")) {
      select(path, "dir");
      if (li.getAttribute("aria-expanded") === "true") {
        delete expanded[path];
        li.setAttribute("aria-expanded", "false");
        li.querySelector("ul").hidden = true;
      } else {
        expand(li).catch(fail);
      }
    } else {
      select(path, "file");
      openFile(path);
    }
  });

  /* Editor ------------------------------------------------------------------------------------- */

  function renumber() {
    var count = editor.value.split("\n").length;
    var numbers = [];
    for (var i = 1; i <= count; i++) numbers.push(i);
    gutter.textContent = numbers.join("\n");
    gutter.scrollTop = editor.scrollTop;
  }

  editor.addEventListener("input", function () { dirty = true; renumber(); });
  editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Tab" && !event.shiftKey) {  // a tab character, not leaving the editor
      event.preventDefault();
      editor.setRangeText("\t", editor.selectionStart, editor.selectionEnd, "end");
      dirty = true;
    }
  });

  function setOpen(path, content, etag) {
    current = path === null ? null : { path: path, etag: etag };
    editor.value = content;
    editor.disabled = path === null;
    editor.readOnly = !mayEdit;
    dirty = false;
    renumber();
    $("current-path").textContent = path === null ? "Select a file in the tree" : path;
    if ($("save")) $("save").disabled = path === null || !mayEdit;
    var download = $("download");
    download.hidden = path === null;
    if (path !== null) download.href = api + "files/content?path=" + q(path) + "&download=1";
  }

  function openFile(path) {
    if (dirty && !window.confirm("Discard your unsaved changes to " + current.path + "?")) return;
    call("GET", api + "files/content?path=" + q(path)).then(function (response) {
      var etag = response.headers.get("ETag");
      return response.json().then(function (data) {
        setOpen(path, data.content, etag);
        show("Opened " + path + ".", "info");
      });
    }).catch(function (error) {
      if (error.status === 415 || error.status === 413) {
        setOpen(null, "", null);
        var download = $("download");
        download.hidden = false;
        download.href = api + "files/content?path=" + q(path) + "&download=1";
        show(error.message.replace(/\.?$/, ".") + " Use Download to get it.", "error");
      } else {
        fail(error);
      }
    });
  }

  function save() {
    if (!current || !mayEdit) return;
    var headers = current.etag ? { "If-Match": current.etag } : {};
    call("PUT", api + "files/content?path=" + q(current.path), { json: { content: editor.value }, headers: headers })
      .then(function (response) {
        current.etag = response.headers.get("ETag");
        dirty = false;
        show("Saved " + current.path + ".", "success");
      })
      .catch(function (error) {
        if (error.status === 412) {
          show("Not saved: " + current.path + " changed on the server since you opened it. Copy your text, then open the file again.", "error");
        } else {
          fail(error);
        }
      });
  }

  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && (event.key === "s" || event.key === "S")) {
      event.preventDefault();
      save();
    }
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });

  /* File operations ---------------------------------------------------------------------------- */

  function joined(folder, name) { return folder ? folder + "/" + name : name; }

  function bind(id, handler) { if ($(id)) $(id).addEventListener("click", handler); }

  bind("save", save);
  bind("refresh", function () {
    call("GET", api + "files/?path=&depth=1&refresh=1").then(reloadTree).catch(fail);
  });
  bind("new-file", function () {
    var path = window.prompt("New file (path inside the workspace):", joined(folderForNew(), ""));
    if (!path) return;
    call("PUT", api + "files/content?path=" + q(path), { json: { content: "" }, headers: { "If-None-Match": "*" } })
      .then(function (response) {
        setOpen(path, "", response.headers.get("ETag"));
        select(path, "file");
        show("Created " + path + ".", "success");
        var parent = parentOf(path);
        if (parent) expanded[parent] = true;
        return reloadTree();
      }).catch(fail);
  });
  bind("new-folder", function () {
    var path = window.prompt("New folder (path inside the workspace):", joined(folderForNew(), ""));
    if (!path) return;
    call("POST", api + "files/mkdir", { json: { path: path } }).then(function () {
      expanded[path] = true;
      select(path, "dir");
      show("Created folder " + path + ".", "success");
      return reloadTree();
    }).catch(fail);
  });
  bind("rename", function () {
    if (!selected) return;
    var target = window.prompt("Rename or move " + selected + " to:", selected);
    if (!target || target === selected) return;
    var source = selected;
    call("POST", api + "files/move", { json: { from: source, to: target } }).then(function () {
      if (current && current.path === source) { current.path = target; $("current-path").textContent = target; }
      delete expanded[source];
      select(target, selectedType);
      show("Moved " + source + " to " + target + ".", "success");
      return reloadTree();
    }).catch(fail);
  });
  bind("delete", function () {
    if (!selected) return;
    var what = selectedType === "dir" ? "the folder " + selected + " and everything in it" : selected;
    if (!window.confirm("Delete " + what + "?")) return;
    var path = selected;
    call("DELETE", api + "files/content?path=" + q(path)).then(function () {
      if (current && (current.path === path || current.path.indexOf(path + "/") === 0)) setOpen(null, "", null);
      delete expanded[path];
      select("", "dir");
      show("Deleted " + path + ".", "success");
      return reloadTree();
    }).catch(fail);
  });
  if ($("upload")) {
    $("upload").addEventListener("change", function () {
      var file = this.files[0];
      if (!file) return;
      var path = joined(folderForNew(), file.name);
      call("PUT", api + "files/content?path=" + q(path), {
        body: file, headers: { "Content-Type": "application/octet-stream" },
      }).then(function () {
        show("Uploaded " + path + ".", "success");
        this.value = "";
        return reloadTree();
      }.bind(this)).catch(fail);
    });
  }

  /* Patches ------------------------------------------------------------------------------------ */

  function describe(files) {
    var list = document.createElement("ul");
    files.forEach(function (file) {
      var item = document.createElement("li");
      var title = file.kind === "rename" ? file.old_path + " → " + file.path : file.path;
      item.textContent = title + " (" + file.kind + ", +" + file.added + " −" + file.removed + ")";
      var hunks = document.createElement("ul");
      file.hunks.forEach(function (hunk) {
        var line = document.createElement("li");
        line.className = "hunk";
        line.textContent = hunk.header + "  +" + hunk.added + " −" + hunk.removed;
        hunks.appendChild(line);
      });
      item.appendChild(hunks);
      list.appendChild(item);
    });
    return list;
  }

  function patchFailed(error) {
    var result = $("patch-result");
    result.className = "patch-result error";
    result.textContent = error.message;
    if (error.data && error.data.header) {
      var hunk = document.createElement("pre");
      hunk.textContent = "Failing hunk " + error.data.hunk + " in " + error.data.path + ": " + error.data.header;
      result.appendChild(hunk);
    }
    $("patch-apply").disabled = true;
  }

  function sendPatch(preview) {
    var url = api + "patch/" + (preview ? "?preview=1" : "");
    return call("POST", url, { json: { diff: $("patch-text").value } }).then(function (r) { return r.json(); });
  }

  function showPatch(data, kind, summary) {
    var result = $("patch-result");
    result.className = "patch-result " + kind;
    result.textContent = summary;
    result.appendChild(describe(data.files));
  }

  bind("patch-preview", function () {
    sendPatch(true).then(function (data) {
      showPatch(data, "", "This patch changes " + data.files.length + " file(s):");
      $("patch-apply").disabled = false;
    }).catch(patchFailed);
  });
  bind("patch-apply", function () {
    sendPatch(false).then(function (data) {
      showPatch(data, "success", "Applied to " + data.files.length + " file(s).");
      $("patch-apply").disabled = true;
      var touched = data.files.some(function (f) { return current && (f.path === current.path || f.old_path === current.path); });
      if (touched && !dirty) openFile(current.path);
      return reloadTree();
    }).catch(patchFailed);
  });
  if ($("patch-text")) $("patch-text").addEventListener("input", function () { $("patch-apply").disabled = true; });

  reloadTree();
})();
