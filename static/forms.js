// Forms that come back with problems: the page opens at their summary (the form posted to
// "…#errors"); this puts the first bad field in focus, so the person can type at once. It
// waits until the page has loaded, as the browser settles on the "#errors" fragment first.
// After a form that went through, the "#errors" its address kept is dropped.
"use strict";
(function () {
  function settle() {
    var summary = document.getElementById("errors");
    if (!summary) {
      if (window.location.hash === "#errors" && window.history.replaceState) {
        window.history.replaceState(null, "", window.location.pathname + window.location.search);
      }
      return;
    }
    var form = summary.closest("form") || document;
    var field = form.querySelector("[aria-invalid=true]");
    if (field) {
      field.focus({ preventScroll: true });
    } else {
      // Only a problem above the form: the summary itself takes the focus.
      summary.setAttribute("tabindex", "-1");
      summary.focus({ preventScroll: true });
    }
  }
  if (document.readyState === "complete") {
    settle();
  } else {
    window.addEventListener("load", function () {
      window.requestAnimationFrame(settle);
    });
  }
})();
