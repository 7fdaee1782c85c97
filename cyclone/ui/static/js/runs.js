// The runs list and the overview: rows replaced by the live stream show their times in the
// browser's zone like the rest of the page, and a live element says whether its stream is
// connected (data-live="open" | "closed").
(function () {
  "use strict";
  document.addEventListener("htmx:load", function (event) {
    if (window.Cyclone && window.Cyclone.localTimes) window.Cyclone.localTimes(event.target);
  });
  document.addEventListener("htmx:sseOpen", function (event) {
    event.target.setAttribute("data-live", "open");
  });
  document.addEventListener("htmx:sseError", function (event) {
    event.target.setAttribute("data-live", "closed");
  });
})();
