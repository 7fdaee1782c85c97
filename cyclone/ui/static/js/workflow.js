// Workflow page: a stage chosen in the DAG (click or Enter) opens its YAML below.
(function () {
  "use strict";
  function openStage(name) {
    var target = document.getElementById("stage-" + name);
    if (!target) return;
    target.open = true;
    target.scrollIntoView({ block: "start" });
  }
  function fromHash() {
    if (location.hash.indexOf("#stage-") === 0) openStage(decodeURIComponent(location.hash.slice(7)));
  }
  window.addEventListener("hashchange", fromHash);
  document.addEventListener("DOMContentLoaded", function () {
    fromHash();
    var svg = document.getElementById("workflow-dag");
    if (svg) {
      svg.addEventListener("dag:select", function (event) {
        if (event.detail && event.detail.stage) openStage(event.detail.stage);
      });
    }
  });
})();
