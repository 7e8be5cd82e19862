// Console behaviour kept out of the HTML, so the Content-Security-Policy allows scripts
// from our own origin only (no inline script, no eval). Listeners are delegated from the
// document, so they also serve content htmx swaps in.
(function () {
  "use strict";

  // Copy buttons of the shown-once dialogs; hidden without JavaScript, where the fields
  // stay selectable by hand.
  function revealCopyButtons(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
    });
  }

  function copy(button) {
    var source = document.getElementById(button.dataset.copy);
    var text = "value" in source ? source.value : source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      if ("select" in source) { source.select(); } else {
        window.getSelection().removeAllRanges();
        window.getSelection().addRange(range);
      }
      if (document.execCommand("copy")) { done(); }
    }
  }

  document.documentElement.classList.add("js");

  // The browser's time zone, for the pages of people who chose none (console_time.py).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("aw_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "aw_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
    }
  } catch (ignored) { /* no Intl: UTC it is */ }

  document.addEventListener("click", function (event) {
    // The header's menu button (narrow windows) opens and closes the navigation.
    var toggle = event.target.closest("[data-toggle-menu]");
    if (toggle) {
      var open = toggle.closest(".topbar").classList.toggle("menu-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    var copyButton = event.target.closest("[data-copy]");
    if (copyButton) {
      copy(copyButton);
      return;
    }
    // data-clear="<id>": empty that element (closes the notifications dropdown).
    var clear = event.target.closest("[data-clear]");
    if (clear) {
      var target = document.getElementById(clear.dataset.clear);
      if (target) { target.replaceChildren(); }
    }
  });

  // data-autosubmit: a select that submits its form when changed (the company switcher).
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-autosubmit]")) { event.target.form.submit(); }
  });

  // data-hold-while-focused: htmx leaves the element alone while the user works in it;
  // data-hold-while-selected: likewise while rows of it are ticked for a bulk action.
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute("data-hold-while-focused") && elt.contains(document.activeElement)) {
      event.preventDefault();
    }
    if (elt.hasAttribute("data-hold-while-selected") &&
        elt.querySelector("input[type=checkbox]:checked")) {
      event.preventDefault();
    }
  });

  // The bulk form returns to the list as the address bar shows it now, and "Save this view"
  // saves what it shows (filters and page change without a reload).
  document.addEventListener("submit", function (event) {
    var next = event.target.querySelector("input[name=next][data-from-location]");
    if (next) { next.value = window.location.pathname + window.location.search; }
    var query = event.target.querySelector("input[data-query-from-location]");
    if (query) { query.value = window.location.search.replace(/^\?/, ""); }
  });

  // Keyboard: "/" search, "j"/"k" move through incidents, "a" take, "r" resolve, "?" help.
  // On a list "a" and "r" act on the focused row through the bulk form; on an incident page
  // on the incident itself.
  function focusedRow() {
    var row = document.activeElement && document.activeElement.closest("tr[data-incident]");
    return row && row.querySelector("input[name=ids]") ? row : null;
  }

  function bulk(row, action) {
    var form = document.getElementById("bulk-form");
    if (!form) { return false; }
    row.querySelector("input[name=ids]").checked = true;
    form.querySelector("[name=action]").value = action;
    if (action === "resolve") {
      form.querySelector("[name=note]").focus();
    } else {
      form.requestSubmit();
    }
    return true;
  }

  var keys = {
    "/": function () {
      var search = document.querySelector("[data-search-shortcut]");
      if (search) { search.focus(); return true; }
      return false;
    },
    "j": function () { return move(1); },
    "k": function () { return move(-1); },
    "a": function () {
      var row = focusedRow();
      if (row) { return bulk(row, "take"); }
      var take = document.querySelector("form[action$='/take/'] button[type=submit]");
      if (take) { take.click(); return true; }
      return false;
    },
    "r": function () {
      var row = focusedRow();
      if (row) { return bulk(row, "resolve"); }
      var status = document.querySelector("form[action$='/status/'] select[name=status]");
      if (!status) { return false; }
      status.value = "resolved";
      status.form.querySelector("textarea[name=note]").focus();
      return true;
    },
    "?": function () {
      var help = document.getElementById("shortcut-help");
      if (help && !help.open) { help.showModal(); return true; }
      return false;
    }
  };

  function move(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll("tr[data-incident] td a"));
    if (!links.length) { return false; }
    var at = links.indexOf(document.activeElement);
    var to = at === -1 ? 0 : Math.min(Math.max(at + step, 0), links.length - 1);
    links[to].focus();
    return true;
  }

  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (event.ctrlKey || event.metaKey || event.altKey || tag === "input" ||
        tag === "textarea" || tag === "select" || event.target.isContentEditable) { return; }
    var handler = keys[event.key];
    if (handler && handler()) { event.preventDefault(); }
  });

  document.addEventListener("htmx:load", function (event) { revealCopyButtons(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  } else {
    revealCopyButtons(document);
  }
})();
