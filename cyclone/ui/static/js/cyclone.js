// Behaviour every page shares: theme, local times, the Ctrl-K palette, confirmations and
// copy buttons. Loaded in <head> (not deferred) so the theme is set before first paint.
(function () {
  "use strict";
  var THEMES = ["system", "light", "dark"];
  var root = document.documentElement;

  function storedTheme() {
    try { return localStorage.getItem("cyclone-theme") || "system"; } catch (e) { return "system"; }
  }
  function applyTheme(theme) {
    root.setAttribute("data-theme", theme);
    document.querySelectorAll("[data-theme-label]").forEach(function (el) {
      el.textContent = theme.charAt(0).toUpperCase() + theme.slice(1);
    });
  }
  applyTheme(storedTheme());

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function localTimes(scope) {
    (scope || document).querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate()) +
        " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds());
      el.setAttribute("data-local", "");
    });
  }
  window.Cyclone = window.Cyclone || {};
  window.Cyclone.localTimes = localTimes;
  window.Cyclone.csrf = function () { return document.body ? document.body.dataset.csrf : ""; };

  function openPalette() {
    var dialog = document.getElementById("palette");
    if (!dialog || dialog.open) return;
    dialog.showModal();
    var input = document.getElementById("palette-input");
    if (input) { input.value = ""; input.focus(); }
  }
  function movePalette(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("#palette-results a"));
    if (!links.length) return;
    var current = links.findIndex(function (a) { return a.getAttribute("aria-selected") === "true"; });
    var next = (current + step + links.length) % links.length;
    links.forEach(function (a, i) { a.setAttribute("aria-selected", i === next ? "true" : "false"); });
    links[next].scrollIntoView({ block: "nearest" });
  }

  // Enter goes to the selected entry when the list answers what is typed; typed faster
  // than the list follows, it asks for the current text first and goes to its first entry.
  function choosePalette() {
    var input = document.getElementById("palette-input");
    var chosen = document.querySelector('#palette-results a[aria-selected="true"]') ||
      document.querySelector("#palette-results a");
    var item = chosen && chosen.closest("[data-q]");
    if (chosen && (!input || !item || item.getAttribute("data-q") === input.value)) {
      window.location.href = chosen.href;
      return;
    }
    if (!input || !window.htmx) return;
    window.htmx.ajax("GET", "/ui/palette?q=" + encodeURIComponent(input.value),
                     { target: "#palette-results", swap: "innerHTML" }).then(function () {
      var first = document.querySelector("#palette-results a");
      if (first) window.location.href = first.href;
    });
  }

  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      openPalette();
      return;
    }
    var dialog = document.getElementById("palette");
    if (dialog && dialog.open) {
      if (event.key === "ArrowDown") { event.preventDefault(); movePalette(1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); movePalette(-1); }
      else if (event.key === "Enter") { event.preventDefault(); choosePalette(); }
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-palette-open]");
    if (target) { openPalette(); return; }
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
      try { localStorage.setItem("cyclone-theme", next); } catch (e) { /* private mode */ }
      applyTheme(next);
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var text = copy.getAttribute("data-copy");
      if (navigator.clipboard) navigator.clipboard.writeText(text);
      copy.setAttribute("data-copied", "");
      setTimeout(function () { copy.removeAttribute("data-copied"); }, 1500);
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-autosubmit]")) {
      event.target.form.submit();
    }
  });

  // A plain form with data-confirm asks first (htmx elements use hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    applyTheme(storedTheme());
    localTimes(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.target); });
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = window.Cyclone.csrf();
  });
})();
