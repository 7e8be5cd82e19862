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

  document.addEventListener("click", function (event) {
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

  // data-hold-while-focused: htmx leaves the element alone while the user works in it.
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (elt.hasAttribute("data-hold-while-focused") && elt.contains(document.activeElement)) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:load", function (event) { revealCopyButtons(event.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  } else {
    revealCopyButtons(document);
  }
})();
