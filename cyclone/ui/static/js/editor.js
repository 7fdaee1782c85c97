// The workflow editor (templates/editor.html): drag from a stage's handle to another stage
// to connect them, click a stage to edit it. Both only fill in and submit the page's one
// form, which works without this script too; the server renders the result.
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";

  function submit(form, action) {
    var button = form.querySelector('button[name="action"][value="' + action + '"]');
    if (!button) {
      button = document.createElement("button");
      button.type = "submit";
      button.name = "action";
      button.value = action;
      button.hidden = true;
      form.appendChild(button);
    }
    if (form.requestSubmit) form.requestSubmit(button); else button.click();
  }

  function pointIn(svg, event) {
    var matrix = svg.getScreenCTM();
    if (!matrix) return { x: 0, y: 0 };
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(matrix.inverse());
  }

  function setSelect(form, name, value) {
    var select = form.querySelector('select[name="' + name + '"]');
    if (!select) return false;
    select.value = value;
    return select.value === value;
  }

  function init(form) {
    if (form._editorReady) return;
    form._editorReady = true;
    var svg = form.querySelector("svg.dag-svg");
    if (!svg) return;
    var drag = null;

    svg.addEventListener("pointerdown", function (event) {
      var handle = event.target.closest("[data-dag-handle]");
      if (!handle || event.button !== 0) return;
      event.preventDefault();
      event.stopPropagation();
      var node = handle.closest(".dag-node");
      var start = pointIn(svg, event);
      var line = document.createElementNS(SVG_NS, "path");
      line.setAttribute("class", "dag-drag-line");
      svg.appendChild(line);
      drag = { from: node.getAttribute("data-stage"), start: start, line: line,
               id: event.pointerId };
      svg.setPointerCapture(event.pointerId);
      svg.classList.add("connecting");
    });

    svg.addEventListener("pointermove", function (event) {
      if (!drag || drag.id !== event.pointerId) return;
      var at = pointIn(svg, event);
      var bend = Math.max(20, Math.abs(at.x - drag.start.x) / 2);
      drag.line.setAttribute("d", "M" + drag.start.x + "," + drag.start.y + " C" +
        (drag.start.x + bend) + "," + drag.start.y + " " + (at.x - bend) + "," + at.y + " " +
        at.x + "," + at.y);
      svg.querySelectorAll(".dag-node.drop-target").forEach(function (el) {
        el.classList.remove("drop-target");
      });
      var over = document.elementFromPoint(event.clientX, event.clientY);
      var target = over && over.closest ? over.closest(".dag-node") : null;
      if (target && svg.contains(target) && target.getAttribute("data-stage") !== drag.from) {
        target.classList.add("drop-target");
      }
    });

    function finish(event, cancelled) {
      if (!drag || drag.id !== event.pointerId) return;
      var from = drag.from;
      drag.line.remove();
      drag = null;
      svg.classList.remove("connecting");
      var target = svg.querySelector(".dag-node.drop-target");
      svg.querySelectorAll(".dag-node.drop-target").forEach(function (el) {
        el.classList.remove("drop-target");
      });
      svg._editorDragged = true;
      setTimeout(function () { svg._editorDragged = false; }, 0);
      if (cancelled || !target) return;
      var to = target.getAttribute("data-stage");
      if (setSelect(form, "connect_from", from) && setSelect(form, "connect_to", to)) {
        submit(form, "connect");
      }
    }
    svg.addEventListener("pointerup", function (event) { finish(event, false); });
    svg.addEventListener("pointercancel", function (event) { finish(event, true); });

    // The click that ends a drag does not also choose a stage.
    svg.addEventListener("click", function (event) {
      if (svg._editorDragged || event.target.closest("[data-dag-handle]")) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    }, true);

    // Choosing a stage in the graph opens its form, as its name in the table does.
    svg.addEventListener("dag:select", function (event) {
      event.preventDefault();
      submit(form, "select:" + event.detail.stage);
    });
  }

  function initAll() { document.querySelectorAll("form[data-editor]").forEach(init); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initAll);
  } else {
    initAll();
  }
})();
