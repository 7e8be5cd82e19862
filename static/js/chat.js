// Chat room. The room's own WebSocket (htmx ws extension on #chat) brings rendered
// partials: new messages (appended to #chat-messages), the online list, the answer to a post
// and a signal that another room changed. This script keeps the log scrolled, sends the
// presence heartbeat (with the newest message seen while the tab is visible) and, once
// connected, asks for what it missed; Enter sends, and while the socket is down the form is
// posted as a plain form. The chat socket's events stay inside #chat, away from the page's
// live indicator (live.js).
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root) return;
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-input");
  var status = document.getElementById("chat-status");
  var me = root.dataset.user;
  var socket = null;
  var heartbeat = null;
  var seenSent = 0;
  var pending = "";
  var followNew = true;
  var olderFromBottom = null;

  function lastId() {
    var last = 0;
    root.querySelectorAll(".chat-msg[data-id]").forEach(function (el) {
      last = Math.max(last, Number(el.dataset.id));
    });
    return last;
  }
  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function toBottom() { log.scrollTop = log.scrollHeight; }
  function send(data) { if (socket) socket.send(JSON.stringify(data)); }
  function beat() {
    var message = { type: "heartbeat" };
    var seen = document.visibilityState === "visible" ? lastId() : 0;
    if (seen > seenSent) { message.seen = seen; seenSent = seen; }
    send(message);
  }

  toBottom();

  root.addEventListener("htmx:wsOpen", function (event) {
    event.stopPropagation();
    socket = event.detail.socketWrapper;
    root.dataset.connected = "true";
    status.textContent = "Live";
    send({ type: "sync", after: lastId() });
    seenSent = 0;
    beat();
    clearInterval(heartbeat);
    heartbeat = setInterval(beat, (Number(root.dataset.heartbeat) || 20) * 1000);
  });
  root.addEventListener("htmx:wsClose", function (event) {
    event.stopPropagation();
    socket = null;
    clearInterval(heartbeat);
    root.dataset.connected = "false";
    var retrying = [1006, 1011, 1012, 1013].indexOf(event.detail.event.code) !== -1;
    status.textContent = retrying ? "Reconnecting…" : "Offline: reload the page";
  });
  root.addEventListener("htmx:wsAfterMessage", function (event) {
    event.stopPropagation();
    var message = event.detail.message || "";
    if (message.indexOf('id="chat-rooms-signal"') !== -1) {
      htmx.trigger(document.body, "chat-rooms-changed");
    }
    if (message.indexOf('id="chat-error"') !== -1) {
      var error = document.getElementById("chat-error");
      if (error.textContent.trim() && !input.value) input.value = pending;
      pending = "";
    }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") beat();
  });

  // Sending: over the socket when it is open, else as the plain form it also is.
  form.addEventListener("htmx:wsConfigSend", function (event) {
    if (!socket) {
      event.preventDefault();
      form.submit();
    }
  });
  form.addEventListener("htmx:wsAfterSend", function () {
    pending = input.value;
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (input.value.trim()) form.requestSubmit();
    }
  });

  // New messages: skip any already shown (a catch-up can overlap the live feed), follow
  // them when the reader is at the bottom or wrote the newest one.
  root.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (event.detail.target.id !== "chat-messages") return;
    followNew = nearBottom();
    event.detail.fragment.querySelectorAll(".chat-msg").forEach(function (el) {
      if (document.getElementById(el.id)) el.remove();
    });
  });
  root.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target.id !== "chat-messages") return;
    root.querySelectorAll('.chat-msg[data-author="' + me + '"]').forEach(function (el) {
      el.classList.add("mine");
    });
    var newest = root.querySelector(".chat-msg:last-of-type");
    if (followNew || (newest && newest.dataset.author === me)) toBottom();
  });

  // Older messages replace the "older" marker at the top: keep the reader's place.
  root.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.target.classList.contains("chat-older")) {
      olderFromBottom = log.scrollHeight - log.scrollTop;
    }
  });
  root.addEventListener("htmx:afterSwap", function () {
    if (olderFromBottom !== null) {
      log.scrollTop = log.scrollHeight - olderFromBottom;
      olderFromBottom = null;
    }
  });
})();
