// The run page: follows the run's event stream and changes only what changed (DAG nodes,
// stage table rows, the header's phase and duration), toggles graph and timeline, opens a
// stage in the side panel, and shows a browser notification when a watched run ends.
(function () {
  "use strict";
  var TERMINAL = { Succeeded: true, Failed: true, Cancelled: true };
  var PAUSE_REASON = "ManuallyPause";

  var cfg = null, svg = null, source = null, ticker = null;
  var overall = {}, completion = null, stages = {}, shownNode = {}, shownRow = {};
  var notify = false, timelineTimer = null, ended = false;

  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "";
    if (seconds < 10) return Math.max(seconds, 0).toFixed(1) + "s";
    var whole = Math.floor(seconds);
    var hours = Math.floor(whole / 3600), minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    if (hours) return hours + "h" + minutes + "m";
    if (minutes) return minutes + "m" + secs + "s";
    return secs + "s";
  }
  function parseTime(value) {
    if (!value) return null;
    var when = new Date(value);
    return isNaN(when) ? null : when;
  }
  function between(start, end, now) {
    var began = parseTime(start);
    if (!began) return null;
    return ((parseTime(end) || now) - began) / 1000;
  }

  // What a node and a table row show of one stage (the same as dag_view.stage_info).
  function stageInfo(stage, now) {
    var status = (stage && stage.status) || {};
    var phase = status.phase || "Pending";
    var terminal = !!TERMINAL[phase];
    var finished = terminal ? status.lastTransitionTime : null;
    var seconds = null;
    if ((terminal && finished) || phase === "Running") {
      seconds = between(status.startTime, finished, now);
    }
    return {
      phase: phase, duration: formatSeconds(seconds), started: status.startTime || "",
      attempt: stage && stage.attempts ? String(stage.attempts) : "",
      message: status.message || ""
    };
  }
  function nodeKey(info) { return info.phase + "\u0000" + info.duration; }
  function rowKey(info) {
    return [info.phase, info.duration, info.attempt, info.message].join("\u0000");
  }

  function badge(phase) {
    var span = document.createElement("span");
    span.className = "badge phase-" + phase.toLowerCase();
    span.setAttribute("data-phase", phase);
    span.textContent = phase;
    return span;
  }
  function setCell(row, cell, text) {
    var el = row.querySelector('[data-cell="' + cell + '"]');
    if (el && el.textContent !== text) el.textContent = text;
  }
  function rowOf(name) {
    var table = document.getElementById("run-stages");
    return table ? table.querySelector('tr[data-stage="' + CSS.escape(name) + '"]') : null;
  }
  function updateRow(name, info) {
    var row = rowOf(name);
    if (!row) return;
    if (row.getAttribute("data-phase") !== info.phase) {
      row.setAttribute("data-phase", info.phase);
      var cell = row.querySelector('[data-cell="phase"]');
      if (cell) cell.replaceChildren(badge(info.phase));
    }
    setCell(row, "attempt", info.attempt);
    setCell(row, "duration", info.duration);
    setCell(row, "message", info.message);
    var started = row.querySelector('[data-cell="started"]');
    if (started && row.getAttribute("data-started") !== info.started) {
      row.setAttribute("data-started", info.started);
      var time = started.querySelector("time");
      var when = parseTime(info.started);
      if (when && (!time || parseTime(time.getAttribute("datetime")) - when !== 0)) {
        var tag = document.createElement("time");
        tag.setAttribute("datetime", when.toISOString());
        tag.setAttribute("title", when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"));
        tag.textContent = when.toISOString();
        started.replaceChildren(tag);
        if (window.Cyclone && window.Cyclone.localTimes) window.Cyclone.localTimes(started);
      }
    }
  }

  // Apply stage statuses; only the nodes and rows whose shown values differ are touched.
  function applyStages(changed) {
    var now = new Date(), updates = {}, any = false;
    Object.keys(changed || {}).forEach(function (name) {
      stages[name] = changed[name];
      var info = stageInfo(changed[name], now), key = nodeKey(info), row = rowKey(info);
      if (shownNode[name] !== key) {
        shownNode[name] = key;
        updates[name] = { phase: info.phase, duration: info.duration };
        any = true;
      }
      if (name in shownRow && shownRow[name] !== row) {
        shownRow[name] = row;
        updateRow(name, info);
      }
    });
    if (any && svg && window.CycloneDag) window.CycloneDag.update(svg, updates);
    return updates;
  }

  // What the server rendered, so the first snapshot touches nothing that did not change.
  function readNodes() {
    if (!svg) return;
    svg.querySelectorAll(".dag-node[data-stage]").forEach(function (node) {
      var took = node.querySelector(".dag-duration");
      shownNode[node.getAttribute("data-stage")] = node.getAttribute("data-phase") +
        "\u0000" + (took ? took.textContent.trim() : "");
    });
  }
  function readRows() {
    var table = document.getElementById("run-stages");
    if (!table) return;
    table.querySelectorAll("tbody tr[data-stage]").forEach(function (row) {
      var text = function (cell) {
        var el = row.querySelector('[data-cell="' + cell + '"]');
        return el ? el.textContent.trim() : "";
      };
      shownRow[row.getAttribute("data-stage")] = [row.getAttribute("data-phase"),
        text("duration"), text("attempt"), text("message")].join("\u0000");
    });
    var now = new Date();
    Object.keys(stages).forEach(function (name) {
      var info = stageInfo(stages[name], now), key = rowKey(info);
      if (name in shownRow && shownRow[name] !== key) {
        shownRow[name] = key;
        updateRow(name, info);
      }
    });
  }

  function displayPhase(status) {
    var phase = (status && status.phase) || "Pending";
    return phase === "Running" && status.reason === PAUSE_REASON ? "Paused" : phase;
  }
  // Only the answer to the latest request is shown: an earlier one may arrive later.
  var headerAsked = 0;
  function refreshHeader() {
    var asked = ++headerAsked;
    fetch(cfg.runUrl + "?part=header", { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var header = document.getElementById("run-header");
        if (html === null || asked !== headerAsked || !header || !window.htmx) return;
        window.htmx.swap(header, html, { swapStyle: "outerHTML" });
        if (window.Cyclone && window.Cyclone.localTimes) {
          window.Cyclone.localTimes(document.getElementById("run-header"));
        }
      })
      .catch(function () { /* the stream's next change asks again */ });
  }
  function setOverall(status) {
    var before = displayPhase(overall);
    overall = (status && status.overall) || {};
    completion = (status && status.completionTime) || null;
    var phase = displayPhase(overall);
    var header = document.getElementById("run-header");
    if (header) {
      var duration = header.querySelector("[data-run-duration]");
      if (duration) {
        duration.setAttribute("data-start", overall.startTime || "");
        duration.setAttribute("data-end", TERMINAL[overall.phase] ?
          (completion || overall.lastTransitionTime || "") : "");
      }
      if (header.getAttribute("data-phase") !== phase) {
        header.setAttribute("data-phase", phase);
        var holder = header.querySelector("[data-run-phase]");
        if (holder) holder.replaceChildren(badge(phase));
      }
    }
    if (before !== phase) refreshHeader();
    tick();
  }

  function tick() {
    var now = new Date();
    var duration = document.querySelector("#run-header [data-run-duration]");
    if (duration && duration.getAttribute("data-start")) {
      var text = formatSeconds(between(duration.getAttribute("data-start"),
        duration.getAttribute("data-end"), now));
      if (duration.textContent !== text) duration.textContent = text;
    }
    var running = {};
    Object.keys(stages).forEach(function (name) {
      var status = stages[name] && stages[name].status;
      if (status && status.phase === "Running") running[name] = stages[name];
    });
    applyStages(running);
  }

  function flash(text, kind) {
    var box = document.getElementById("flash");
    if (!box) return;
    var alert = document.createElement("div");
    alert.className = "alert " + (kind || "error");
    alert.setAttribute("role", kind === "ok" ? "status" : "alert");
    alert.textContent = text;
    box.replaceChildren(alert);
  }

  function loadTriage() {
    var slot = document.getElementById("triage");
    if (!slot || !window.htmx || slot.getAttribute("data-loaded")) return;
    slot.setAttribute("data-loaded", "");
    window.htmx.ajax("GET", cfg.triage, { target: "#triage", swap: "innerHTML" });
  }

  // Mark the critical path and the regressions the server computed for the run as it
  // ended (the page showed those of the moment it was opened).
  function markInsights() {
    var legend = document.getElementById("run-insights");
    if (!legend || !svg) return;
    var critical = {}, flagged = {};
    try {
      JSON.parse(legend.getAttribute("data-critical") || "[]").forEach(function (name) {
        critical[name] = true;
      });
      flagged = JSON.parse(legend.getAttribute("data-flagged") || "{}");
    } catch (e) { return; }
    svg.querySelectorAll(".dag-node[data-stage]").forEach(function (node) {
      var name = node.getAttribute("data-stage");
      node.classList.toggle("critical", !!critical[name]);
      node.classList.toggle("regression", name in flagged);
      if (name in flagged) node.setAttribute("data-flag", flagged[name]);
      else node.removeAttribute("data-flag");
    });
    svg.querySelectorAll(".dag-edge[data-from]").forEach(function (edge) {
      edge.classList.toggle("critical", !!critical[edge.getAttribute("data-from")] &&
        !!critical[edge.getAttribute("data-to")]);
    });
  }
  function refreshInsights() {
    var legend = document.getElementById("run-insights");
    if (!legend) return;
    fetch(cfg.runUrl + "?part=insights", { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        var current = document.getElementById("run-insights");
        if (html === null || !current || !window.htmx) return;
        window.htmx.swap(current, html, { swapStyle: "outerHTML" });
        markInsights();
      })
      .catch(function () { /* the legend of the page's opening stays */ });
  }

  function finish() {
    if (source) source.close();
    if (ended) return;
    ended = true;
    if (ticker) clearInterval(ticker);
    tick();
    refreshHeader();
    scheduleTimeline();
    var phase = overall.phase || "";
    var bell = document.querySelector("[data-run-notify]");
    if (bell) bell.hidden = true;
    if (phase === "Failed") loadTriage();
    refreshInsights();
    document.dispatchEvent(new CustomEvent("run:end", { detail: { name: cfg.name, phase: phase } }));
    if (notify && window.Notification && Notification.permission === "granted") {
      try {
        new Notification("Run " + cfg.name + ": " + (phase || "ended"), {
          body: "Cyclone run " + cfg.name + " ended " + (phase || ""), tag: "cyclone-run-" + cfg.name
        });
      } catch (e) { flash("The browser refused the notification: " + e.message); }
    }
  }

  function follow() {
    if (!window.EventSource || !cfg.stream) return;
    source = new EventSource(cfg.stream);
    source.addEventListener("snapshot", function (event) {
      var run = JSON.parse(event.data), status = run.status || {};
      setOverall(status);
      applyStages(status.stages || {});
      if (TERMINAL[overall.phase]) scheduleTimeline();
    });
    source.addEventListener("change", function (event) {
      var change = JSON.parse(event.data);
      if (change.status) setOverall(change.status);
      applyStages(change.stages || {});
      (change.removedStages || []).forEach(function (name) { delete stages[name]; });
      scheduleTimeline();
    });
    source.addEventListener("end", finish);
  }

  function timelineVisible() {
    var view = document.getElementById("timeline-view");
    return view && !view.hidden;
  }
  function loadTimeline() {
    if (!window.htmx) return;
    window.htmx.ajax("GET", cfg.runUrl + "?part=timeline",
      { target: "#timeline-view", swap: "innerHTML" });
  }
  function scheduleTimeline() {
    if (!timelineVisible() || timelineTimer) return;
    timelineTimer = setTimeout(function () { timelineTimer = null; loadTimeline(); }, 800);
  }
  function setQuery(key, value) {
    var url = new URL(window.location.href);
    if (value) url.searchParams.set(key, value); else url.searchParams.delete(key);
    window.history.replaceState(null, "", url);
  }
  function showView(view) {
    document.querySelectorAll(".run-view").forEach(function (section) {
      section.hidden = section.getAttribute("data-view") !== view;
    });
    document.querySelectorAll("[data-run-view]").forEach(function (link) {
      var on = link.getAttribute("data-run-view") === view;
      link.classList.toggle("active", on);
      if (on) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
    });
    setQuery("view", view === "dag" ? "" : view);
    if (view === "timeline") loadTimeline();
    if (view === "dag" && svg && window.CycloneDag) window.CycloneDag.fit(svg);
  }

  function openStage(name) {
    var panel = document.getElementById("stage-side");
    if (!panel || !window.htmx) return;
    panel.hidden = false;
    document.querySelector("[data-run-body]").classList.add("with-panel");
    var title = panel.querySelector("[data-stage-title]");
    if (title) title.textContent = name;
    window.htmx.ajax("GET", cfg.stageBase + encodeURIComponent(name),
      { target: "#stage-panel-body", swap: "innerHTML" });
    setQuery("stage", name);
    if (svg && window.CycloneDag) window.CycloneDag.select(svg, name, { focus: false });
  }
  function closeStage() {
    var panel = document.getElementById("stage-side");
    if (!panel) return;
    panel.hidden = true;
    document.querySelector("[data-run-body]").classList.remove("with-panel");
    document.getElementById("stage-panel-body").replaceChildren();
    setQuery("stage", "");
  }

  function toggleNotify(button) {
    if (notify) {
      notify = false;
      button.setAttribute("aria-pressed", "false");
      return;
    }
    if (!window.Notification) { flash("This browser cannot show notifications."); return; }
    if (ended) { flash("This run has already ended.", "ok"); return; }
    Promise.resolve(Notification.requestPermission()).then(function (permission) {
      if (permission !== "granted") {
        flash("Notifications are blocked for this site: allow them in the browser to be told.");
        return;
      }
      notify = true;
      button.setAttribute("aria-pressed", "true");
      flash("You will be notified when " + cfg.name + " ends.", "ok");
    });
  }

  function start() {
    var data = document.getElementById("run-config");
    if (!data) return;
    cfg = JSON.parse(data.textContent);
    svg = document.getElementById("run-dag");
    overall = cfg.phase === "Paused" ? { phase: "Running", reason: PAUSE_REASON }
      : { phase: cfg.phase };
    readNodes();
    readRows();
    document.body.addEventListener("cyclone:run-changed", refreshHeader);
    document.addEventListener("htmx:afterSettle", function (event) {
      if (document.getElementById("run-stages") &&
          (event.target.id === "run-stages" || event.target.querySelector("#run-stages"))) {
        readRows();
      }
    });
    document.addEventListener("dag:select", function (event) {
      if (!svg || event.target !== svg) return;
      event.preventDefault();
      openStage(event.detail.stage);
    });
    document.addEventListener("click", function (event) {
      var link = event.target.closest("[data-stage-open]");
      if (link && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
        event.preventDefault();
        openStage(link.getAttribute("data-stage-open"));
        return;
      }
      if (event.target.closest("[data-stage-close]")) { closeStage(); return; }
      var view = event.target.closest("[data-run-view]");
      if (view) { event.preventDefault(); showView(view.getAttribute("data-run-view")); return; }
      var bell = event.target.closest("[data-run-notify]");
      if (bell) toggleNotify(bell);
    });
    ended = !!TERMINAL[cfg.phase];
    if (!ended) ticker = setInterval(tick, 1000);
    follow();
    window.CycloneRun = { openStage: openStage, showView: showView, info: stageInfo };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
