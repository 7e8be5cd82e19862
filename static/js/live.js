// Live updates: the page's one WebSocket (htmx ws extension) receives small signals and
// rendered partials. A company signal asks every live region to re-fetch itself
// (elements with hx-trigger="live-refresh from:body"); bell pushes are swapped in place.
(function () {
  "use strict";
  function setLive(on) {
    var el = document.getElementById("live-indicator");
    if (!el) return;
    el.classList.toggle("on", on);
    el.classList.toggle("off", !on);
    el.querySelector(".live-label").textContent = on ? "Live" : "Offline";
  }
  var opened = false;
  document.addEventListener("htmx:wsOpen", function (event) {
    if (event.target.id !== "live-socket") return;
    setLive(true);
    // After a reconnect, fetch whatever changed while the socket was down.
    if (opened) {
      htmx.trigger(document.body, "live-refresh");
      htmx.trigger(document.body, "notifications-changed");
    }
    opened = true;
  });
  document.addEventListener("htmx:wsClose", function (event) {
    if (event.target.id === "live-socket") setLive(false);
  });
  document.addEventListener("htmx:wsAfterMessage", function (event) {
    var message = event.detail.message || "";
    if (message.indexOf('id="live-signal"') !== -1) {
      htmx.trigger(document.body, "live-refresh");
    }
    if (message.indexOf('id="desktop-notify"') !== -1) {
      var n = document.getElementById("desktop-notify");
      if (n && n.dataset.level === "critical" && window.Notification &&
          Notification.permission === "granted") {
        var shown = new Notification(n.dataset.title, { body: n.dataset.body, tag: "aw-" + n.dataset.id });
        shown.onclick = function () { window.focus(); if (n.dataset.url) window.location = n.dataset.url; };
      }
      htmx.trigger(document.body, "notifications-changed");
    }
  });
  document.addEventListener("click", function (event) {
    var ask = event.target.closest("[data-enable-desktop-notifications]");
    if (ask && window.Notification) {
      event.preventDefault();
      Notification.requestPermission().then(function (p) {
        ask.textContent = p === "granted" ? "Desktop notifications on" : "Desktop notifications blocked";
      });
    }
  });
})();
