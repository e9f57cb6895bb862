"""The two HTML pages the service serves: a chat box (``GET /``) and the rating page
(``GET /rate``). Plain HTML, CSS and JavaScript with nothing loaded from elsewhere, so
they work offline."""

import html

_STYLE = """
body { font: 16px/1.45 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }
input[type=text] { font: inherit; padding: .35rem .5rem; }
button { font: inherit; padding: .35rem .9rem; }
.error { color: #b00020; } .muted { color: #666; font-size: .9em; }
.line { margin: .15rem 0; } .who { font-weight: 600; margin-right: .4rem; }
.reply { background: #eef4ff; border-left: 4px solid #3b6fd8; padding: .5rem .75rem; }
fieldset { border: 1px solid #ccc; margin: .8rem 0; } label { margin-right: .8rem; }
"""

CHAT_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Retrieval chatbot</title>
<style>{_STYLE}</style></head>
<body>
<h1>Retrieval chatbot</h1>
<form id="ask">
  <input id="message" type="text" size="50" maxlength="{{max_chars}}" autocomplete="off"
         placeholder="Say something" aria-label="your message" autofocus>
  <button id="send">Send</button>
</form>
<p id="error" class="error" role="alert"></p>
<ol id="responses"></ol>
<p id="unknown" class="muted"></p>
<p id="timings" class="muted"></p>
<script>
const $ = (id) => document.getElementById(id);
$("ask").addEventListener("submit", async (event) => {{
  event.preventDefault();
  for (const id of ["error", "responses", "unknown", "timings"]) $(id).textContent = "";
  let data, response;
  try {{
    response = await fetch("reply", {{
      method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{message: $("message").value}}),
    }});
    data = await response.json();
  }} catch (e) {{ $("error").textContent = "The server did not answer: " + e; return; }}
  if (!response.ok) {{ $("error").textContent = data.detail; return; }}
  for (const r of data.responses) {{
    const li = document.createElement("li");
    li.textContent = r.text + "  (" + r.confidence.toFixed(2) + ")";
    $("responses").append(li);
  }}
  if (data.unknown_words.length)
    $("unknown").textContent = "Words the model does not know: " + data.unknown_words.join(", ");
  $("timings").textContent = Object.entries(data.timings_ms)
    .map(([k, v]) => k + " " + v.toFixed(2) + " ms").join(", ");
}});
</script>
</body></html>
"""

_RADIOS = "".join(
    f'<fieldset id="{score}"><legend>{html.escape(question)}</legend>'
    + "".join(
        f'<label><input type="radio" name="{score}" value="{v}"> {v}</label>' for v in range(1, 6)
    )
    + f'<span class="muted">1 = {low}, 5 = {high}</span></fieldset>'
    for score, question, low, high in (
        ("appropriateness", "Does the reply fit the conversation?", "not at all", "perfectly"),
        ("fluency", "Is the reply fluent, natural English?", "not at all", "perfectly"),
    )
)

RATE_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rate the chatbot</title>
<style>{_STYLE}</style></head>
<body>
<h1>Rate the chatbot's replies</h1>
<p><label>Your name <input id="rater" type="text" maxlength="50" autocomplete="name"></label>
  <span id="progress" class="muted">loading...</span></p>
<form id="rating">
  <h2 id="title"></h2>
  <div id="context"></div>
  <p class="reply"><span class="who">Bot:</span><span id="reply"></span></p>
  {_RADIOS}
  <button id="submit" type="submit">Submit and show the next</button>
  <button id="skip" type="button">Skip</button>
</form>
<p id="status" role="status"></p>
<script>
const $ = (id) => document.getElementById(id);
let conversations = [], index = 0, rated = new Set(), rater = "";

function progress() {{
  $("progress").textContent = rated.size + " / " + conversations.length + " rated";
}}
function say(text, isError) {{
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}}
function nextUnrated(start) {{
  for (let step = 0; step < conversations.length; step++) {{
    const i = (start + step) % conversations.length;
    if (!rated.has(conversations[i].id)) return i;
  }}
  return -1;
}}
function show(i) {{
  if (i < 0) {{
    $("rating").hidden = true;
    say("All " + conversations.length + " conversations rated. Thank you!", false);
    return;
  }}
  index = i;
  const c = conversations[i];
  $("rating").hidden = false;
  $("title").textContent = "Conversation " + (i + 1) + " of " + conversations.length;
  $("context").replaceChildren(...c.context.map((line) => {{
    const p = document.createElement("p"), who = document.createElement("span");
    p.className = "line"; who.className = "who";
    const m = line.match(/^([A-Za-z ]{{1,20}}):\\s*(.*)$/);
    who.textContent = m ? m[1] + ":" : "";
    p.append(who, m ? m[2] : line);
    return p;
  }}));
  $("reply").textContent = c.reply;
  for (const input of document.querySelectorAll("input[type=radio]")) input.checked = false;
}}
async function getJSON(url, options) {{
  const response = await fetch(url, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}}
// A new name starts from what the server knows about that rater. The answer is
// merged, not assigned: a rating submitted while it was on its way stays counted.
async function useRater(name) {{
  if (!name || name === rater) return;
  rater = name;
  rated = new Set();
  progress();
  try {{
    const data = await getJSON("rate/progress?rater=" + encodeURIComponent(name));
    if (name !== rater) return;  // the name changed again meanwhile
    for (const id of data.rated) rated.add(id);
    progress();
    if (rated.has(conversations[index].id)) show(nextUnrated(index));
  }} catch (e) {{ say(e.message, true); }}
}}
$("rater").addEventListener("change", () => useRater($("rater").value.trim()));
$("skip").addEventListener("click", () => show(nextUnrated(index + 1)));
$("rating").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const picked = (name) => document.querySelector("input[name=" + name + "]:checked");
  const name = $("rater").value.trim();
  if (!name) return say("Type your name first (1 to 50 characters).", true);
  useRater(name);
  if (!picked("appropriateness") || !picked("fluency"))
    return say("Pick a score from 1 to 5 for both questions.", true);
  const c = conversations[index];
  $("submit").disabled = true;
  try {{
    await getJSON("rate", {{
      method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{
        conversation_id: c.id, rater: name, system: c.system,
        appropriateness: Number(picked("appropriateness").value),
        fluency: Number(picked("fluency").value),
      }}),
    }});
    rated.add(c.id);
    progress();
    say("Saved conversation " + (index + 1) + ".", false);
    show(nextUnrated(index + 1));
  }} catch (e) {{
    say("Not saved: " + e.message, true);
  }} finally {{
    $("submit").disabled = false;
  }}
}});
(async () => {{
  try {{
    conversations = await getJSON("rate/conversations");
  }} catch (e) {{ return say("Could not load the conversations: " + e.message, true); }}
  progress();
  if (conversations.length) show(0);
  else {{ $("rating").hidden = true; say("There are no conversations to rate.", true); }}
}})();
</script>
</body></html>
"""
