// Follows a running deployment: asks the same link for the log after the
// last byte shown (since=), appends the new lines, and updates the title
// block, until the deployment ends. Log text only ever goes into
// textContent, never into HTML.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || log.dataset.ended === "true") {
    return;
  }
  var offset = Number(log.dataset.offset) || 0;
  var count = Number(log.dataset.lines) || 0;
  var states = ["queued", "running", "success", "failure", "error", "cancelled"];
  var live = document.getElementById("live");
  var failures = 0;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el && value !== undefined && value !== null) {
      el.textContent = value;
    }
  }

  function atBottom() {
    var doc = document.documentElement;
    return window.innerHeight + window.scrollY >= doc.scrollHeight - 40;
  }

  function append(lines) {
    if (!lines || lines.length === 0) {
      return;
    }
    var follow = atBottom();
    var empty = document.getElementById("empty");
    if (empty) {
      empty.remove();
    }
    var frag = document.createDocumentFragment();
    lines.forEach(function (line) {
      count += 1;
      var row = document.createElement("div");
      row.className = "l";
      row.id = "L" + count;
      var n = document.createElement("a");
      n.className = "n";
      n.href = "#L" + count;
      n.textContent = String(count);
      var t = document.createElement("span");
      t.className = "t";
      t.textContent = line;
      row.appendChild(n);
      row.appendChild(t);
      frag.appendChild(row);
    });
    log.appendChild(frag);
    log.dataset.lines = String(count);
    if (follow) {
      window.scrollTo(0, document.documentElement.scrollHeight);
    }
  }

  function show(chunk) {
    var badge = document.getElementById("state");
    if (badge) {
      badge.textContent = chunk.state;
      badge.className = "badge s-" + (states.indexOf(chunk.state) >= 0 ? chunk.state : "other");
    }
    text("duration", chunk.duration_text);
    text("what", chunk.what);
    var detail = document.getElementById("detail");
    if (detail) {
      detail.textContent = chunk.detail || "";
      detail.hidden = !chunk.detail;
    }
    document.title = chunk.title || document.title;
  }

  function schedule(ms) {
    window.setTimeout(poll, ms);
  }

  function poll() {
    var url = new URL(window.location.href);
    url.hash = "";
    url.searchParams.set("since", String(offset));
    fetch(url.toString(), { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 404) {
          throw new Error("gone");
        }
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status);
        }
        return resp.json();
      })
      .then(function (chunk) {
        failures = 0;
        append(chunk.lines);
        offset = chunk.offset;
        log.dataset.offset = String(offset);
        show(chunk);
        if (chunk.ended && !chunk.more) {
          log.dataset.ended = "true";
          text("live", "");
          return;
        }
        text("live", "following live");
        schedule(chunk.more ? 0 : 1000);
      })
      .catch(function (err) {
        if (err.message === "gone") {
          text("live", "this link no longer opens the log; stopped following");
          return;
        }
        failures += 1;
        text("live", "lost the connection (" + err.message + "); retrying");
        schedule(Math.min(1000 * Math.pow(2, failures), 30000));
      });
  }

  text("live", "following live");
  schedule(1000);
})();
