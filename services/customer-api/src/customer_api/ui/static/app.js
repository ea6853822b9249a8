// The UI's own script (no inline scripts anywhere: the CSP forbids them).
// - sends the session's CSRF token with every htmx request;
// - pauses polling while the tab is hidden (htmx trigger filters would need eval);
// - refreshes relative times; closes toasts.
"use strict";

(function () {
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // A poll started while the tab is hidden is dropped; the next one after it is shown runs.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.hasAttribute("data-poll")) {
      elt.setAttribute("aria-busy", "true");
    }
  });

  // An error answer (4xx/5xx) still carries a readable HTML fragment: show it in place.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status !== 401) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  var UNITS = [
    [3600, 60, "min"],
    [86400, 3600, "h"],
    [30 * 86400, 86400, "d"],
  ];

  function relative(date) {
    var seconds = (Date.now() - date.getTime()) / 1000;
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    if (seconds < 45) {
      return future ? "in a few seconds" : "just now";
    }
    for (var i = 0; i < UNITS.length; i++) {
      if (seconds < UNITS[i][0]) {
        var amount = Math.max(1, Math.round(seconds / UNITS[i][1]));
        return future ? "in " + amount + " " + UNITS[i][2] : amount + " " + UNITS[i][2] + " ago";
      }
    }
    return null; // older: the server's absolute date stays
  }

  function refreshTimes() {
    document.querySelectorAll("time[datetime][data-relative]").forEach(function (el) {
      var text = relative(new Date(el.getAttribute("datetime")));
      if (text && el.textContent !== text) {
        el.textContent = text;
      }
    });
  }

  setInterval(refreshTimes, 30000);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-dismiss]");
    if (button) {
      var target = button.closest(button.getAttribute("data-dismiss"));
      if (target) {
        target.remove();
      }
    }
  });
})();
