// Rewrites the dashboard's times into the browser's locale and time zone: the exact time on
// hover (the title) with Intl.DateTimeFormat, and relative times ("3 hours ago") with
// Intl.RelativeTimeFormat. Pages are complete without it (UTC on hover, English text).
(function () {
  "use strict";
  var exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  var relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  // The same units and thresholds as the server's text (a month 30 days, a year 365).
  var units = [
    ["year", 31536000],
    ["month", 2592000],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60]
  ];

  function relativeText(at) {
    var seconds = (at.getTime() - Date.now()) / 1000;
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(seconds) >= units[i][1]) {
        return relative.format(Math.trunc(seconds / units[i][1]), units[i][0]);
      }
    }
    return relative.format(0, "second");
  }

  function localize(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var time = times[i];
      var at = new Date(time.getAttribute("datetime"));
      if (isNaN(at.getTime())) {
        continue;
      }
      time.title = exact.format(at);
      if (time.classList.contains("relative")) {
        time.textContent = relativeText(at);
      }
      time.setAttribute("data-localized", "");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
  });
  // Parts of a page that htmx replaces.
  document.addEventListener("htmx:afterSettle", function (event) {
    localize(event.target);
  });
})();
