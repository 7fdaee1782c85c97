// The runs list and overview: rows replaced by the live stream show their times in the
// browser's zone like the rest of the page.
(function () {
  "use strict";
  document.addEventListener("htmx:load", function (event) {
    if (window.Cyclone && window.Cyclone.localTimes) window.Cyclone.localTimes(event.target);
  });
})();
