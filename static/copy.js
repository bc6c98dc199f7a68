// Copy buttons for what a page shows to be copied: a new key, the examples. Without this
// script the text is still there to select; with it, each element marked data-copy gets a
// button after it. The button's words come from the page (data-copy-label on <body>).
"use strict";
(function () {
  const body = document.body;
  const label = body.dataset.copyLabel || "Copy";
  const done = body.dataset.copiedLabel || "Copied";
  if (!navigator.clipboard) {
    return;
  }
  for (const target of document.querySelectorAll("[data-copy]")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small copy";
    button.textContent = label;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = done;
        setTimeout(() => { button.textContent = label; }, 2000);
      } catch (e) {
        // The browser refused (no permission): the text stays selectable.
      }
    });
    target.insertAdjacentElement("afterend", button);
  }
})();
