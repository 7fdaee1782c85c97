// The log viewer of the stage panel and the panel's tabs.
//
// A log is kept as arrays (raw line, text without escapes, colour state at the line's start)
// and only the rows in view are in the DOM (virtual scrolling), so a 100,000-line log opens
// and scrolls without freezing the tab. Lines arrive in batches (a streamed fetch of a
// finished log, or the live Server-Sent Events of a running stage) and are processed in
// slices of a few milliseconds. Log text is only ever set with text nodes, never as markup.
(function () {
  "use strict";
  if (window.CycloneLogs) { window.CycloneLogs.scan(document); return; }

  var OVERSCAN = 40;
  var SLICE_MS = 8;
  // CSI sequences (group 1: parameters, group 2: final byte), OSC strings, character-set and
  // other escapes, and control characters but tab: what a terminal would not print.
  var ESCAPES = /\x1b\[([0-?]*)[ -\/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -\/]+[0-~]|\x1b[@-Z\\-_]?|[\x00-\x08\x0b-\x1f\x7f]/g;
  var ESCAPES_ONCE = new RegExp(ESCAPES.source, "g");
  var CUBE = [0, 95, 135, 175, 215, 255];

  function stripAnsi(line) {
    return line.indexOf("\x1b") < 0 && !/[\x00-\x08\x0b-\x1f\x7f]/.test(line)
      ? line : line.replace(ESCAPES_ONCE, "");
  }

  function applySgr(params, style) {
    var codes = params === "" ? [0] : params.split(/[;:]/).map(function (p) { return p === "" ? 0 : Number(p); });
    for (var i = 0; i < codes.length; i++) {
      var code = codes[i];
      if (code === 0) { style.fg = null; style.bold = false; }
      else if (code === 1) style.bold = true;
      else if (code === 22) style.bold = false;
      else if (code >= 30 && code <= 37) style.fg = code - 30;
      else if (code >= 90 && code <= 97) style.fg = code - 90 + 8;
      else if (code === 39) style.fg = null;
      else if (code === 38 || code === 48) {
        if (codes[i + 1] === 5) {
          if (code === 38 && codes[i + 2] >= 0 && codes[i + 2] <= 255) style.fg = codes[i + 2];
          i += 2;
        } else if (codes[i + 1] === 2) { i += 4; }
      }
    }
  }

  // Segments [{text, fg, bold}] of a line and the style in force after it. Only SGR colours
  // 30-37, 90-97, 38;5;n, bold and reset are kept; every other sequence is dropped.
  function parseAnsi(line, start) {
    var style = { fg: start ? start.fg : null, bold: start ? start.bold : false };
    var segs = [];
    var last = 0;
    var match;
    ESCAPES.lastIndex = 0;
    while ((match = ESCAPES.exec(line)) !== null) {
      if (match.index > last) segs.push({ text: line.slice(last, match.index), fg: style.fg, bold: style.bold });
      last = ESCAPES.lastIndex;
      if (match[2] === "m" && /^[0-9;:]*$/.test(match[1])) applySgr(match[1], style);
    }
    if (last < line.length) segs.push({ text: line.slice(last), fg: style.fg, bold: style.bold });
    return { segs: segs, state: style };
  }

  function xterm(n) {
    if (n >= 232) { var g = 8 + (n - 232) * 10; return "rgb(" + g + "," + g + "," + g + ")"; }
    n -= 16;
    return "rgb(" + CUBE[Math.floor(n / 36)] + "," + CUBE[Math.floor(n / 6) % 6] + "," + CUBE[n % 6] + ")";
  }

  function styled(seg) {
    if (seg.fg === null && !seg.bold) return null;
    var span = document.createElement("span");
    if (seg.fg !== null) {
      if (seg.fg < 16) span.className = "ansi-" + seg.fg;
      else span.style.color = xterm(seg.fg);
    }
    if (seg.bold) span.classList.add("ansi-bold");
    return span;
  }

  // Appends `text` to `parent`, its parts inside [from, to) ranges (offsets from `offset`)
  // wrapped in <mark>.
  function appendMarked(parent, text, offset, ranges) {
    var at = 0;
    for (var i = 0; i < ranges.length; i++) {
      var from = Math.max(ranges[i][0] - offset, 0), to = Math.min(ranges[i][1] - offset, text.length);
      if (to <= at || from >= text.length) continue;
      if (from > at) parent.appendChild(document.createTextNode(text.slice(at, from)));
      var mark = document.createElement("mark");
      mark.textContent = text.slice(Math.max(from, at), to);
      parent.appendChild(mark);
      at = to;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function Viewer(root) {
    this.root = root;
    root.setAttribute("data-ready", "");
    this.scroller = root.querySelector("[data-log-scroll]");
    this.sizer = root.querySelector("[data-log-sizer]");
    this.rows = root.querySelector("[data-log-rows]");
    this.status = root.querySelector("[data-log-status]");
    this.searchBox = root.querySelector("[data-log-search]");
    this.countEl = root.querySelector("[data-log-count]");
    this.followBox = root.querySelector("[data-log-follow]");
    this.picker = root.querySelector("[data-log-container]");
    this.download = root.querySelector("[data-log-download]");
    this.logUrl = root.getAttribute("data-log-url");
    this.streamUrl = root.getAttribute("data-stream-url");
    this.live = root.getAttribute("data-live") === "true";
    this.container = root.getAttribute("data-container") || "";
    this.lineHeight = this.measure();
    this.autoTop = -100;
    this.bind();
    this.target = this.hashLine();
    this.start();
  }

  Viewer.prototype.measure = function () {
    var probe = document.createElement("div");
    probe.className = "logview-row";
    probe.textContent = "0";
    this.rows.appendChild(probe);
    var height = probe.getBoundingClientRect().height || 18;
    this.rows.removeChild(probe);
    return height;
  };

  Viewer.prototype.reset = function () {
    this.lines = [];
    this.plain = [];
    this.lower = null;
    this.starts = [];
    this.style = null;
    this.partial = "";
    this.queue = [];
    this.draining = false;
    this.done = false;
    this.matches = [];
    this.current = -1;
    this.highlight = this.highlight || 0;
    this.window = null;
    this.sizer.style.height = "0px";
    this.rows.replaceChildren();
  };

  Viewer.prototype.bind = function () {
    var self = this;
    this.scroller.addEventListener("scroll", function () {
      if (Math.abs(self.scroller.scrollTop - self.autoTop) > 2 && !self.atBottom()) self.setFollow(false);
      self.scheduleRender();
    }, { passive: true });
    this.scroller.addEventListener("wheel", function (event) {
      if (event.deltaY < 0) self.setFollow(false);
    }, { passive: true });
    this.rows.addEventListener("click", function (event) {
      var link = event.target.closest("a.ln");
      if (!link) return;
      event.preventDefault();
      var n = Number(link.getAttribute("data-ln"));
      history.replaceState(history.state, "", "#L" + n);
      self.setHighlight(n);
    });
    if (this.followBox) {
      this.followBox.addEventListener("change", function () {
        self.setFollow(self.followBox.checked);
        if (self.follow) self.scheduleRender();
      });
    }
    this.follow = this.followBox ? this.followBox.checked : false;
    if (this.searchBox) {
      var timer = null;
      this.searchBox.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { self.search(self.searchBox.value); }, 120);
      });
      this.searchBox.addEventListener("keydown", function (event) {
        if (event.key !== "Enter") return;
        event.preventDefault();
        clearTimeout(timer);
        if (self.searchBox.value.toLowerCase() !== self.query) self.search(self.searchBox.value);
        else self.step(event.shiftKey ? -1 : 1);
      });
      var prev = this.root.querySelector("[data-log-prev]");
      var next = this.root.querySelector("[data-log-next]");
      if (prev) prev.addEventListener("click", function () { self.step(-1); });
      if (next) next.addEventListener("click", function () { self.step(1); });
    }
    if (this.picker) {
      this.picker.addEventListener("change", function () { self.switchTo(self.picker.value); });
    }
    window.addEventListener("hashchange", function () {
      var n = self.hashLine();
      if (n) { self.target = n; self.reachTarget(); }
    });
  };

  Viewer.prototype.hashLine = function () {
    var found = /^#L(\d+)$/.exec(window.location.hash);
    return found ? Number(found[1]) : 0;
  };

  Viewer.prototype.setFollow = function (on) {
    this.follow = on;
    if (this.followBox) this.followBox.checked = on;
    this.root.classList.toggle("following", on);
  };

  Viewer.prototype.atBottom = function () {
    var s = this.scroller;
    return s.scrollTop + s.clientHeight >= s.scrollHeight - this.lineHeight * 1.5;
  };

  Viewer.prototype.query_suffix = function () {
    return this.container ? "?container=" + encodeURIComponent(this.container) : "";
  };

  Viewer.prototype.start = function () {
    this.reset();
    this.query = "";
    if (this.searchBox && this.searchBox.value) this.query = this.searchBox.value.toLowerCase();
    if (this.live) this.stream(); else this.fetchAll();
  };

  Viewer.prototype.stop = function () {
    if (this.source) { this.source.close(); this.source = null; }
    if (this.reader) { this.reader.cancel().catch(function () {}); this.reader = null; }
  };

  Viewer.prototype.switchTo = function (container) {
    this.stop();
    this.container = container;
    this.root.setAttribute("data-container", container);
    if (this.download) this.download.setAttribute("href", this.logUrl + this.query_suffix());
    var url = new URL(window.location.href);
    if (url.pathname.indexOf("/stages/") >= 0) {
      url.searchParams.set("container", container);
      url.hash = "";
      history.replaceState(history.state, "", url.toString());
    }
    this.highlight = 0;
    this.start();
  };

  Viewer.prototype.stream = function () {
    var self = this;
    var source = new EventSource(this.streamUrl + this.query_suffix());
    this.source = source;
    this.setStatus("Live: waiting for log lines…");
    source.onmessage = function (event) {
      if (!document.contains(self.root)) { self.stop(); return; }
      self.enqueue(event.data.split("\n"));
    };
    source.addEventListener("end", function () {
      self.stop();
      self.done = true;
      self.afterDrain();
    });
    source.onerror = function () {
      if (self.source !== source) return;
      self.stop();
      self.done = true;
      self.stopped = "The live log stopped (connection lost): reload the page to continue.";
      self.afterDrain();
    };
  };

  Viewer.prototype.fetchAll = function () {
    var self = this;
    this.setStatus("Loading…");
    fetch(this.logUrl + this.query_suffix(), { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          self.done = true;
          self.stopped = response.status === 404
            ? "No log is stored for this stage" + (self.container ? " container" : "") + "."
            : (body && body.message) || "The log could not be read (" + response.status + ").";
          self.afterDrain();
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      self.reader = reader;
      function pump() {
        return reader.read().then(function (step) {
          if (self.reader !== reader) return null;
          if (step.done) {
            var rest = self.partial + decoder.decode();
            self.partial = "";
            if (rest) self.enqueue([rest]);
            self.reader = null;
            self.done = true;
            self.afterDrain();
            return null;
          }
          var text = self.partial + decoder.decode(step.value, { stream: true });
          var parts = text.split("\n");
          self.partial = parts.pop();
          if (parts.length) self.enqueue(parts);
          return pump();
        });
      }
      return pump();
    }).catch(function () {
      self.done = true;
      self.stopped = "The log could not be read.";
      self.afterDrain();
    });
  };

  Viewer.prototype.enqueue = function (lines) {
    this.queue.push(lines);
    if (!this.draining) {
      this.draining = true;
      var self = this;
      setTimeout(function () { self.drain(); }, 0);
    }
  };

  // Processes queued lines for a few milliseconds, then yields to the browser.
  Viewer.prototype.drain = function () {
    var began = performance.now();
    var firstNew = this.lines.length;
    while (this.queue.length && performance.now() - began < SLICE_MS) {
      var batch = this.queue[0];
      var from = batch.from || 0;
      var end = Math.min(batch.length, from + 2000);
      for (var i = from; i < end; i++) this.add(batch[i]);
      if (end >= batch.length) this.queue.shift(); else batch.from = end;
    }
    if (this.query) this.matchFrom(firstNew);
    this.scheduleRender();
    var self = this;
    if (this.queue.length) setTimeout(function () { self.drain(); }, 0);
    else { this.draining = false; this.afterDrain(); }
  };

  Viewer.prototype.add = function (raw) {
    if (raw.charCodeAt(raw.length - 1) === 13) raw = raw.slice(0, -1);
    this.starts.push(this.style);
    if (raw.indexOf("\x1b") >= 0) {
      var parsed = parseAnsi(raw, this.style);
      this.style = parsed.state.fg === null && !parsed.state.bold ? null : parsed.state;
    }
    this.lines.push(raw);
    this.plain.push(stripAnsi(raw));
    if (this.lower) this.lower.push(this.plain[this.plain.length - 1].toLowerCase());
  };

  Viewer.prototype.afterDrain = function () {
    this.reachTarget();
    if (this.draining) return;
    var n = this.lines.length;
    var words = n + " line" + (n === 1 ? "" : "s");
    if (this.stopped) this.setStatus((n ? words + ". " : "") + this.stopped);
    else if (this.done) this.setStatus(n ? words + "." : "The log is empty.");
    else if (this.live) this.setStatus(n ? words + " · live" : "Live: waiting for log lines…");
  };

  Viewer.prototype.setStatus = function (text) {
    if (this.status) this.status.textContent = text;
    this.root.setAttribute("data-state", this.done ? "done" : (this.live ? "live" : "loading"));
  };

  Viewer.prototype.reachTarget = function () {
    var settled = this.done && !this.draining && !this.queue.length;
    if (!this.target || (this.lines.length < this.target && !settled)) return;
    var n = Math.min(this.target, this.lines.length);
    this.target = 0;
    if (!n) return;
    this.setHighlight(n);
    this.scrollToLine(n);
  };

  Viewer.prototype.setHighlight = function (n) {
    this.highlight = n;
    this.window = null;
    this.scheduleRender();
  };

  Viewer.prototype.scrollToLine = function (n) {
    this.setFollow(false);
    var top = (n - 1) * this.lineHeight - this.scroller.clientHeight / 2 + this.lineHeight / 2;
    this.sizer.style.height = this.lines.length * this.lineHeight + "px";
    this.scroller.scrollTop = Math.max(0, top);
    this.window = null;
    this.render();
  };

  Viewer.prototype.search = function (text) {
    this.query = (text || "").toLowerCase();
    this.matches = [];
    this.current = -1;
    if (this.query) {
      this.matchFrom(0);
      if (this.matches.length) {
        var top = Math.floor(this.scroller.scrollTop / this.lineHeight);
        var at = this.matches.findIndex(function (i) { return i >= top; });
        this.current = at < 0 ? 0 : at;
        this.scrollToLine(this.matches[this.current] + 1);
      }
    }
    this.showCount();
    this.window = null;
    this.scheduleRender();
  };

  Viewer.prototype.matchFrom = function (first) {
    if (!this.lower) this.lower = this.plain.map(function (line) { return line.toLowerCase(); });
    for (var i = first; i < this.lower.length; i++) {
      if (this.lower[i].indexOf(this.query) >= 0) this.matches.push(i);
    }
    this.showCount();
  };

  Viewer.prototype.showCount = function () {
    if (!this.countEl) return;
    if (!this.query) { this.countEl.textContent = ""; return; }
    var n = this.matches.length;
    this.countEl.textContent = n ? (this.current + 1) + " of " + n : "No matches";
    this.root.setAttribute("data-matches", String(n));
  };

  Viewer.prototype.step = function (by) {
    var n = this.matches.length;
    if (!n) return;
    this.current = ((this.current < 0 ? (by > 0 ? -1 : 0) : this.current) + by + n) % n;
    this.showCount();
    this.scrollToLine(this.matches[this.current] + 1);
  };

  Viewer.prototype.scheduleRender = function () {
    if (this.renderPending) return;
    this.renderPending = true;
    var self = this;
    requestAnimationFrame(function () { self.renderPending = false; self.render(); });
  };

  Viewer.prototype.render = function () {
    var n = this.lines.length;
    var lh = this.lineHeight;
    this.sizer.style.height = n * lh + "px";
    this.root.style.setProperty("--ln-digits", String(Math.max(3, String(n).length)));
    if (this.follow && n) {
      this.autoTop = Math.max(0, n * lh - this.scroller.clientHeight);
      this.scroller.scrollTop = this.autoTop;
    }
    var top = this.scroller.scrollTop;
    var first = Math.max(0, Math.floor(top / lh) - OVERSCAN);
    var last = Math.min(n, Math.ceil((top + this.scroller.clientHeight) / lh) + OVERSCAN);
    var key = first + ":" + last + ":" + n;
    if (this.window === key) return;
    this.window = key;
    this.rows.style.top = first * lh + "px";
    var current = this.current >= 0 ? this.matches[this.current] : -1;
    var frag = document.createDocumentFragment();
    for (var i = first; i < last; i++) frag.appendChild(this.row(i, i === current));
    this.rows.replaceChildren(frag);
  };

  Viewer.prototype.row = function (i, current) {
    var row = document.createElement("div");
    row.className = "logview-row";
    row.id = "";
    row.setAttribute("data-line", String(i + 1));
    if (i + 1 === this.highlight) row.classList.add("highlight");
    if (current) row.classList.add("current-match");
    var ln = document.createElement("a");
    ln.className = "ln";
    ln.href = "#L" + (i + 1);
    ln.setAttribute("data-ln", String(i + 1));
    ln.textContent = String(i + 1);
    row.appendChild(ln);
    var text = document.createElement("span");
    text.className = "lt";
    var raw = this.lines[i];
    var ranges = [];
    if (this.query) {
      var lower = this.lower[i];
      for (var at = lower.indexOf(this.query); at >= 0; at = lower.indexOf(this.query, at + this.query.length)) {
        ranges.push([at, at + this.query.length]);
      }
      if (ranges.length) row.classList.add("match");
    }
    var segs = raw.indexOf("\x1b") < 0 && this.starts[i] === null
      ? [{ text: this.plain[i], fg: null, bold: false }]
      : parseAnsi(raw, this.starts[i]).segs;
    var offset = 0;
    for (var s = 0; s < segs.length; s++) {
      var seg = segs[s];
      var holder = styled(seg);
      appendMarked(holder || text, seg.text, offset, ranges);
      if (holder) text.appendChild(holder);
      offset += seg.text.length;
    }
    row.appendChild(text);
    return row;
  };

  // The stage panel's tabs: click or arrow keys select; the Logs tab is first.
  function selectTab(tab) {
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      var on = other === tab;
      other.setAttribute("aria-selected", on ? "true" : "false");
      other.setAttribute("tabindex", on ? "0" : "-1");
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    tab.focus();
    viewers.forEach(function (v) { if (document.contains(v.root)) { v.window = null; v.scheduleRender(); } });
  }

  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[data-stage-tabs] [role=tab]");
    if (tab) selectTab(tab);
  });
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[data-stage-tabs] [role=tab]");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
    var tabs = Array.prototype.slice.call(tab.parentNode.querySelectorAll("[role=tab]"));
    var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length];
    event.preventDefault();
    selectTab(next);
  });

  var viewers = [];
  function scan(scope) {
    viewers = viewers.filter(function (v) {
      if (document.contains(v.root)) return true;
      v.stop();
      return false;
    });
    (scope || document).querySelectorAll("[data-logview]:not([data-ready])").forEach(function (root) {
      viewers.push(new Viewer(root));
    });
  }

  window.CycloneLogs = { parseAnsi: parseAnsi, stripAnsi: stripAnsi, scan: scan, viewers: function () { return viewers; } };
  document.addEventListener("htmx:load", function (event) { scan(event.detail && event.detail.elt ? event.detail.elt.parentNode || document : document); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    viewers.forEach(function (v) { if (event.target.contains && event.target.contains(v.root)) v.stop(); });
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { scan(document); });
  else scan(document);
})();
