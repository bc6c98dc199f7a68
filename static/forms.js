// Forms that come back with problems: the page opens at their summary (the form posted to
// "…#errors"); this puts the first bad field in focus, so the person can type at once. After
// a form that went through, the "#errors" its address kept is dropped.
"use strict";
(function () {
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
    field.focus();
  } else {
    summary.focus();
  }
})();
