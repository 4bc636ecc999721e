/* Live workspace rows: while a workspace is on its way somewhere (placing, cloning, stopping...),
   poll the rows endpoint and swap in rows whose status, progress message or activity changed.
   No framework: the server renders the row, this only replaces it. */
(function () {
  "use strict";
  var table = document.querySelector("[data-rows-url]");
  if (!table) return;
  var url = table.getAttribute("data-rows-url") + "?next=" + encodeURIComponent(location.pathname);
  var FAST = 2000, SLOW = 15000;

  function anyInFlight() { return !!table.querySelector("tr[data-in-flight='1']"); }

  function swap(id, html) {
    var row = document.getElementById("ws-" + id);
    if (!row) return;
    var holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    var fresh = holder.firstElementChild;
    if (fresh && fresh.getAttribute("data-state") !== row.getAttribute("data-state")) row.replaceWith(fresh);
  }

  function poll() {
    if (document.hidden) { setTimeout(poll, SLOW); return; }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) Object.keys(data.rows).forEach(function (id) { swap(id, data.rows[id]); });
      })
      .catch(function () { /* offline or restarting: try again later */ })
      .then(function () { setTimeout(poll, anyInFlight() ? FAST : SLOW); });
  }

  setTimeout(poll, anyInFlight() ? FAST : SLOW);

  // The create form: repository fields only when cloning.
  var form = document.querySelector(".create form");
  if (form) {
    var clone = form.querySelector(".clone-fields");
    var sync = function () {
      var chosen = form.querySelector("input[name=source]:checked");
      clone.hidden = !chosen || chosen.value !== "clone";
    };
    form.addEventListener("change", sync);
    sync();
  }
})();
