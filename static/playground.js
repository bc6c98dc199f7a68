// The playground's live answer: posts the same form to /playground/stream and shows the
// answer as it streams. Without this script the form posts to /playground and the page
// comes back with the whole answer.
"use strict";
(function () {
  var form = document.getElementById("playground");
  if (!form || !window.fetch || !window.TextDecoder) {
    return;
  }
  var answer = document.getElementById("answer");
  var meta = document.getElementById("answer-meta");
  var button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    answer.textContent = "";
    meta.textContent = form.dataset.waiting || "";
    button.disabled = true;
    var body = new URLSearchParams(new FormData(form));
    fetch("/playground/stream", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      var type = response.headers.get("content-type") || "";
      if (!response.ok || type.indexOf("text/event-stream") !== 0) {
        return response.text().then(function (text) {
          var message = text;
          try {
            var parsed = JSON.parse(text);
            message = (parsed.error && parsed.error.message) || text;
          } catch (ignored) {}
          meta.textContent = message;
        });
      }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var pending = "";
      function read() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            meta.textContent = form.dataset.done || "";
            return;
          }
          pending += decoder.decode(chunk.value, { stream: true });
          var lines = pending.split("\n");
          pending = lines.pop();
          lines.forEach(function (line) {
            if (line.indexOf("data:") !== 0) {
              return;
            }
            var data = line.slice(5).trim();
            if (data === "[DONE]") {
              return;
            }
            try {
              var event = JSON.parse(data);
              if (event.error) {
                meta.textContent = event.error.message || "";
              }
              var choice = event.choices && event.choices[0];
              if (choice && choice.delta && choice.delta.content) {
                answer.textContent += choice.delta.content;
              }
            } catch (ignored) {}
          });
          return read();
        });
      }
      return read();
    }).catch(function (error) {
      meta.textContent = String(error);
    }).then(function () {
      button.disabled = false;
    });
  });
})();
