// The stage DAG (templates/components/dag.html): pan (drag), zoom (wheel, buttons), fit,
// find a stage, keyboard selection, and live updates of node phases and durations.
// Every DAG on the page keeps its own state on its <svg>; no inline handlers (CSP).
(function () {
  "use strict";
  var MIN_WIDTH = 120;
  var SMALLEST_START_SCALE = 0.45;
  var LARGEST_FIT_SCALE = 1;
  var DRAG_THRESHOLD = 4;

  function numberAttr(el, name) { return parseFloat(el.getAttribute(name)) || 0; }

  function state(svg) {
    if (!svg._dag) {
      var vb = svg.viewBox.baseVal;
      svg._dag = {
        full: { x: vb.x, y: vb.y, w: vb.width, h: vb.height },
        view: { x: vb.x, y: vb.y, w: vb.width, h: vb.height },
        nodes: null, matches: [], matchIndex: -1
      };
    }
    return svg._dag;
  }

  function nodes(svg) {
    var st = state(svg);
    if (!st.nodes) {
      st.nodes = {};
      svg.querySelectorAll(".dag-node[data-stage]").forEach(function (node) {
        st.nodes[node.getAttribute("data-stage")] = node;
      });
    }
    return st.nodes;
  }

  function setView(svg, view) {
    var st = state(svg);
    var maxWidth = Math.max(st.full.w, st.full.h) * 4;
    var w = Math.min(Math.max(view.w, MIN_WIDTH), maxWidth);
    var h = view.h * (w / view.w);
    st.view = { x: view.x + (view.w - w) / 2, y: view.y + (view.h - h) / 2, w: w, h: h };
    svg.setAttribute("viewBox", [st.view.x, st.view.y, st.view.w, st.view.h].join(" "));
  }

  // The view's aspect follows the element's, so zoom and pan stay proportional.
  function aspectView(svg, view) {
    var rect = svg.getBoundingClientRect();
    if (!rect.width || !rect.height) return view;
    var aspect = rect.width / rect.height;
    var cx = view.x + view.w / 2, cy = view.y + view.h / 2;
    var w = view.w, h = view.h;
    if (w / h < aspect) w = h * aspect; else h = w / aspect;
    return { x: cx - w / 2, y: cy - h / 2, w: w, h: h };
  }

  // Everything in view, but a small DAG at its own size rather than blown up to the page.
  function fit(svg) {
    setView(svg, aspectView(svg, state(svg).full));
    var shown = scale(svg);
    if (shown > LARGEST_FIT_SCALE) {
      var view = state(svg).view;
      setView(svg, { x: view.x, y: view.y, w: view.w * shown / LARGEST_FIT_SCALE,
                     h: view.h * shown / LARGEST_FIT_SCALE });
    }
  }

  function scale(svg) {
    var rect = svg.getBoundingClientRect();
    return rect.width ? rect.width / state(svg).view.w : 1;
  }

  function start(svg) {
    fit(svg);
    if (scale(svg) >= SMALLEST_START_SCALE) return;
    // Too large to read at once: start at the first stages, at reading size.
    var rect = svg.getBoundingClientRect();
    var full = state(svg).full;
    var w = rect.width, h = rect.height;
    var first = svg.querySelector('.dag-node[data-layer="0"]');
    var cy = first ? box(first).y + box(first).h / 2 : full.y + full.h / 2;
    setView(svg, { x: full.x, y: Math.max(full.y, cy - h / 2), w: w, h: h });
  }

  function toSvgPoint(svg, clientX, clientY) {
    var rect = svg.getBoundingClientRect();
    var view = state(svg).view;
    var k = view.w / rect.width;
    return { x: view.x + (clientX - rect.left) * k, y: view.y + (clientY - rect.top) * k,
             k: k, rect: rect };
  }

  function zoom(svg, factor, clientX, clientY) {
    var view = state(svg).view;
    var rect = svg.getBoundingClientRect();
    if (clientX === undefined) {
      clientX = rect.left + rect.width / 2;
      clientY = rect.top + rect.height / 2;
    }
    var at = toSvgPoint(svg, clientX, clientY);
    var w = view.w / factor, h = view.h / factor;
    var fx = (at.x - view.x) / view.w, fy = (at.y - view.y) / view.h;
    setView(svg, { x: at.x - fx * w, y: at.y - fy * h, w: w, h: h });
  }

  function box(node) {
    var matrix = node.transform.baseVal.consolidate();
    var rect = node.querySelector(".dag-box");
    return { x: matrix ? matrix.matrix.e : 0, y: matrix ? matrix.matrix.f : 0,
             w: rect ? rect.width.baseVal.value : 0, h: rect ? rect.height.baseVal.value : 0 };
  }

  function centre(svg, node) {
    var b = box(node), view = state(svg).view;
    setView(svg, { x: b.x + b.w / 2 - view.w / 2, y: b.y + b.h / 2 - view.h / 2,
                   w: view.w, h: view.h });
  }

  function visible(svg, node) {
    var b = box(node), v = state(svg).view;
    return b.x >= v.x && b.y >= v.y && b.x + b.w <= v.x + v.w && b.y + b.h <= v.y + v.h;
  }

  function select(svg, name, options) {
    var node = typeof name === "string" ? nodes(svg)[name] : name;
    if (!node) return null;
    svg.querySelectorAll(".dag-node.selected").forEach(function (el) {
      el.classList.remove("selected");
    });
    node.classList.add("selected");
    if (!visible(svg, node)) centre(svg, node);
    if (!options || options.focus !== false) node.focus({ preventScroll: true });
    return node;
  }

  // Tell listeners a stage was chosen; follow the node's link unless one handled it.
  function open(svg, node, viaKeyboard) {
    var chosen = new CustomEvent("dag:select", {
      bubbles: true, cancelable: true, detail: { stage: node.getAttribute("data-stage") }
    });
    var unhandled = svg.dispatchEvent(chosen);
    if (unhandled && viaKeyboard && node.getAttribute("data-href")) {
      window.location.href = node.getAttribute("data-href");
    }
    return unhandled;
  }

  function neighbour(svg, node, key) {
    var name = node.getAttribute("data-stage");
    var all = nodes(svg);
    if (key === "ArrowUp" || key === "ArrowDown") {
      var order = numberAttr(node, "data-order") + (key === "ArrowDown" ? 1 : -1);
      return svg.querySelector('.dag-node[data-layer="' + node.getAttribute("data-layer") +
                               '"][data-order="' + order + '"]');
    }
    var forward = key === "ArrowRight";
    var candidates = [];
    svg.querySelectorAll(".dag-edge:not(.dropped)").forEach(function (edge) {
      var from = edge.getAttribute("data-from"), to = edge.getAttribute("data-to");
      if (forward && from === name && all[to]) candidates.push(all[to]);
      if (!forward && to === name && all[from]) candidates.push(all[from]);
    });
    if (!candidates.length) return null;
    var y = box(node).y;
    candidates.sort(function (a, b) {
      return Math.abs(box(a).y - y) - Math.abs(box(b).y - y) ||
        (a.getAttribute("data-stage") < b.getAttribute("data-stage") ? -1 : 1);
    });
    return candidates[0];
  }

  function search(container, svg, query, step) {
    var st = state(svg);
    var count = container.querySelector("[data-dag-count]");
    var text = (query || "").trim().toLowerCase();
    svg.querySelectorAll(".dag-node.match").forEach(function (el) { el.classList.remove("match"); });
    if (!text) {
      svg.classList.remove("searching");
      st.matches = [];
      if (count) count.textContent = "";
      return;
    }
    if (!step) {
      st.matches = [];
      var all = nodes(svg);
      Object.keys(all).sort().forEach(function (name) {
        if (name.toLowerCase().indexOf(text) !== -1) st.matches.push(all[name]);
      });
      st.matchIndex = 0;
    } else if (st.matches.length) {
      st.matchIndex = (st.matchIndex + step + st.matches.length) % st.matches.length;
    }
    svg.classList.add("searching");
    st.matches.forEach(function (el) { el.classList.add("match"); });
    if (count) {
      count.textContent = st.matches.length ?
        (st.matchIndex + 1) + " of " + st.matches.length : "no stage matches";
    }
    if (st.matches.length) {
      var found = st.matches[st.matchIndex];
      select(svg, found, { focus: false });
      centre(svg, found);
    }
  }

  function init(container) {
    if (container._dagReady) return;
    var svg = container.querySelector("svg.dag-svg");
    if (!svg) return;
    container._dagReady = true;
    state(svg);
    if (svg.getBoundingClientRect().width) {
      start(svg);
    } else if (window.ResizeObserver) {
      // Hidden at load (a tab not shown yet): lay out the view once it has a size.
      var observer = new ResizeObserver(function () {
        if (!svg.getBoundingClientRect().width) return;
        observer.disconnect();
        start(svg);
      });
      observer.observe(svg);
    }

    container.addEventListener("click", function (event) {
      var zoomButton = event.target.closest("[data-dag-zoom]");
      if (zoomButton) {
        zoom(svg, zoomButton.getAttribute("data-dag-zoom") === "in" ? 1.25 : 0.8);
        return;
      }
      if (event.target.closest("[data-dag-fit]")) { fit(svg); return; }
    });

    var input = container.querySelector("[data-dag-search]");
    if (input) {
      input.addEventListener("input", function () { search(container, svg, input.value, 0); });
      input.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          event.preventDefault();
          search(container, svg, input.value, event.shiftKey ? -1 : 1);
        } else if (event.key === "Escape") {
          input.value = "";
          search(container, svg, "", 0);
        }
      });
    }

    svg.addEventListener("wheel", function (event) {
      event.preventDefault();
      zoom(svg, event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX, event.clientY);
    }, { passive: false });

    var drag = null;
    svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0 || event.target.closest("[data-dag-handle]")) return;
      drag = { x: event.clientX, y: event.clientY, view: state(svg).view, moved: false,
               id: event.pointerId };
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag || drag.id !== event.pointerId) return;
      var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < DRAG_THRESHOLD) return;
      if (!drag.moved) {
        drag.moved = true;
        svg.setPointerCapture(event.pointerId);
        svg.classList.add("panning");
      }
      var k = drag.view.w / svg.getBoundingClientRect().width;
      setView(svg, { x: drag.view.x - dx * k, y: drag.view.y - dy * k,
                     w: drag.view.w, h: drag.view.h });
    });
    function endDrag(event) {
      if (!drag || drag.id !== event.pointerId) return;
      if (drag.moved) {
        svg.classList.remove("panning");
        svg._dagPanned = true;
        setTimeout(function () { svg._dagPanned = false; }, 0);
      }
      drag = null;
    }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);

    svg.addEventListener("click", function (event) {
      var node = event.target.closest(".dag-node");
      if (svg._dagPanned) { event.preventDefault(); return; }
      if (!node) return;
      select(svg, node);
      if (!open(svg, node, false)) event.preventDefault();
    });

    svg.addEventListener("keydown", function (event) {
      var node = event.target.closest(".dag-node");
      if (!node) return;
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(svg, node);
        open(svg, node, true);
        return;
      }
      if (["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].indexOf(event.key) === -1) return;
      event.preventDefault();
      var next = neighbour(svg, node, event.key);
      if (next) select(svg, next);
    });

    svg.addEventListener("focusin", function (event) {
      var node = event.target.closest(".dag-node");
      if (node && !visible(svg, node)) centre(svg, node);
    });
  }

  function setText(node, selector, text) {
    var el = node.querySelector(selector);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // Change only the nodes named in `changes` ({name: {phase, duration}}); returns how many.
  function update(svg, changes) {
    var all = nodes(svg), changed = 0;
    Object.keys(changes || {}).forEach(function (name) {
      var node = all[name], change = changes[name] || {};
      if (!node) return;
      var phase = change.phase || node.getAttribute("data-phase");
      var took = change.duration !== undefined && change.duration !== null ?
        String(change.duration) : (node.querySelector(".dag-duration") || {}).textContent || "";
      if (node.getAttribute("data-phase") !== phase) node.setAttribute("data-phase", phase);
      setText(node, ".dag-phase", phase);
      setText(node, ".dag-duration", took);
      node.setAttribute("aria-label", name + ": " + phase + (took ? ", " + took : ""));
      var title = node.querySelector("title");
      var flag = node.getAttribute("data-flag");
      if (title) {
        title.textContent = name + " — " + phase + (took ? ", " + took : "") +
          (flag ? " · " + flag : "");
      }
      changed += 1;
    });
    return changed;
  }

  function initAll(root) {
    (root || document).querySelectorAll("[data-dag]").forEach(init);
    if (root && root.matches && root.matches("[data-dag]")) init(root);
  }

  window.CycloneDag = {
    init: initAll, update: update, fit: fit, select: select, zoom: zoom,
    centre: function (svg, name) { var n = nodes(svg)[name]; if (n) centre(svg, n); },
    view: function (svg) { var v = state(svg).view; return { x: v.x, y: v.y, w: v.w, h: v.h }; },
    forget: function (svg) { if (svg._dag) svg._dag.nodes = null; }
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { initAll(document); });
  } else {
    initAll(document);
  }
  document.addEventListener("htmx:load", function (event) { initAll(event.target); });
})();
