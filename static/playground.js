// The playground's live answer: posts the same form to /playground/stream, shows the answer
// as it streams, then adds the exchange to the conversation the form carries (its hidden
// "history" field), as the page without this script does on the server.
"use strict";
(function () {
  var form = document.getElementById("playground");
  var list = document.getElementById("conversation");
  if (!form || !list || !window.fetch || !window.TextDecoder || !window.TextEncoder) {
    return;
  }
  // Keep in step with HISTORY_BYTES and HISTORY_TURNS in src/web/playground.rs.
  var HISTORY_BYTES = 48 * 1024;
  var HISTORY_TURNS = 40;
  var button = form.querySelector("button[type=submit]");
  var status = document.getElementById("playground-status");
  var history = form.elements.namedItem("history");
  var message = form.elements.namedItem("message");

  function turn(fromPerson, text) {
    var item = document.createElement("li");
    item.className = "turn " + (fromPerson ? "person" : "model");
    var who = document.createElement("p");
    who.className = "who";
    who.textContent = fromPerson ? list.dataset.you : list.dataset.model;
    var content = document.createElement("div");
    content.className = "content";
    content.textContent = text;
    item.appendChild(who);
    item.appendChild(content);
    list.appendChild(item);
    var empty = document.getElementById("conversation-empty");
    if (empty) {
      empty.remove();
    }
    return item;
  }

  function meta(item, text) {
    var line = document.createElement("p");
    line.className = "meta";
    line.textContent = text;
    item.appendChild(line);
  }

  // The field's problem next to it, as the server writes it.
  function markField(name, text) {
    var field = form.elements.namedItem(name);
    if (!field || !field.id) {
      status.textContent = text;
      return;
    }
    var id = field.id + "-error";
    var note = document.getElementById(id);
    if (!note) {
      note = document.createElement("p");
      note.className = "field-error";
      note.id = id;
      field.parentNode.appendChild(note);
    }
    note.textContent = text;
    field.setAttribute("aria-invalid", "true");
    var described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(id) < 0) {
      described.push(id);
      field.setAttribute("aria-describedby", described.join(" "));
    }
    field.parentNode.classList.add("invalid");
    field.focus();
  }

  function clearMarks() {
    form.querySelectorAll("[aria-invalid=true]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
      field.parentNode.classList.remove("invalid");
      var note = document.getElementById(field.id + "-error");
      if (note) {
        note.remove();
      }
    });
    var summary = document.getElementById("errors");
    if (summary) {
      summary.remove();
    }
  }

  function remember(question, answer, usage) {
    var turns = [];
    try {
      turns = JSON.parse(history.value || "[]");
    } catch (ignored) {}
    turns.push({ role: "user", content: question });
    var said = { role: "assistant", content: answer };
    if (usage && typeof usage.cost === "number") {
      said.usage = {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost: usage.cost
      };
    }
    turns.push(said);
    var encoder = new TextEncoder();
    while (turns.length > HISTORY_TURNS ||
           encoder.encode(JSON.stringify(turns)).length > HISTORY_BYTES) {
      turns.splice(0, turns.length > 1 && turns[1].role === "assistant" ? 2 : 1);
    }
    history.value = JSON.stringify(turns);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearMarks();
    var question = message.value;
    var body = new URLSearchParams(new FormData(form));
    status.textContent = form.dataset.waiting || "";
    button.disabled = true;
    var asked = null;
    var answered = null;
    var answer = "";
    var usage = null;
    fetch("/playground/stream", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      var type = response.headers.get("content-type") || "";
      if (!response.ok || type.indexOf("text/event-stream") !== 0) {
        return response.text().then(function (text) {
          var problem = { message: text };
          try {
            problem = JSON.parse(text).error || problem;
          } catch (ignored) {}
          status.textContent = "";
          if (problem.field) {
            markField(problem.field, problem.message);
          } else {
            status.textContent = problem.message;
          }
        });
      }
      asked = turn(true, question);
      answered = turn(false, "");
      var content = answered.querySelector(".content");
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var pending = "";
      var kind = "message";
      var data = [];
      function dispatch() {
        var text = data.join("\n");
        data = [];
        var name = kind;
        kind = "message";
        if (!text || text === "[DONE]") {
          return;
        }
        var parsed;
        try {
          parsed = JSON.parse(text);
        } catch (ignored) {
          return;
        }
        if (name === "usage") {
          usage = parsed;
          return;
        }
        if (parsed.error) {
          status.textContent = parsed.error.message || "";
        }
        var choice = parsed.choices && parsed.choices[0];
        if (choice && choice.delta && choice.delta.content) {
          answer += choice.delta.content;
          content.textContent = answer;
        }
      }
      function read() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            dispatch();
            if (usage && usage.meta) {
              meta(answered, usage.meta);
            }
            if (status.textContent === form.dataset.waiting) {
              status.textContent = "";
            }
            remember(question, answer, usage);
            message.value = "";
            return;
          }
          pending += decoder.decode(chunk.value, { stream: true });
          var lines = pending.split("\n");
          pending = lines.pop();
          lines.forEach(function (line) {
            line = line.replace(/\r$/, "");
            if (line === "") {
              dispatch();
            } else if (line.indexOf("event:") === 0) {
              kind = line.slice(6).trim();
            } else if (line.indexOf("data:") === 0) {
              data.push(line.slice(5).trim());
            }
          });
          return read();
        });
      }
      return read();
    }).catch(function (error) {
      status.textContent = String(error);
    }).then(function () {
      button.disabled = false;
    });
  });
})();
