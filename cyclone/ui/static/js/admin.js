// Admin forms: add a row to a General integration's items (names renumbered, values empty).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-general]");
    if (!add) return;
    var body = document.querySelector("#general-items tbody");
    if (!body) return;
    var rows = body.querySelectorAll("[data-general-row]");
    var last = rows[rows.length - 1];
    var row = last.cloneNode(true);
    var index = rows.length;
    row.querySelectorAll("input").forEach(function (input) {
      input.name = input.name.replace(/^general\.\d+\./, "general." + index + ".");
      input.value = "";
      if (input.type === "password") input.placeholder = "not set";
    });
    row.querySelectorAll(".field-error").forEach(function (el) { el.remove(); });
    body.appendChild(row);
    var first = row.querySelector("input");
    if (first) first.focus();
  });
})();
