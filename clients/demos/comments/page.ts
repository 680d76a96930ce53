/**
 * The live comments page (Olive's idea): the comments so far, a form that saves one into PostgreSQL,
 * and every comment saved by anyone appearing at once for everyone on the page (the server's
 * PostgreSQL monitor publishes the table's NOTIFY on the `comments` channel), with "N people here"
 * from presence.
 */

/** The channel the comments arrive on. */
export const COMMENTS_CHANNEL = 'comments';

/** The page's HTML; `wsUrl` is the pub/sub server. */
export function commentsPage(wsUrl: string): string {
  const httpUrl = wsUrl.replace(/^ws/, 'http');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Live comments</title>
<link rel="icon" href="data:,">
<style>
body{font:15px system-ui,sans-serif;margin:2em auto;max-width:640px;color:#222}
#people{color:#2a6;font-weight:600}ol{padding-left:1.2em}li{margin:.4em 0}li b{margin-right:.4em}
form{display:flex;gap:.5em;margin:1em 0}input{padding:.4em}#body{flex:1}
</style></head><body>
<h1>Live comments</h1>
<p><span id="people">1 person here</span> · connection <span id="state">connecting</span></p>
<form id="form"><input id="name" placeholder="name" maxlength="40" required><input id="body" placeholder="say something" maxlength="500" required><button>Send</button></form>
<p id="error" role="alert"></p>
<ol id="comments"></ol>
<script type="module">
import { connect } from ${JSON.stringify(`${httpUrl}/client.js`)};
const list = document.getElementById('comments');
const shown = new Set();
function show(comment) {
  if (shown.has(comment.id)) return;
  shown.add(comment.id);
  const item = document.createElement('li');
  const who = document.createElement('b');
  who.textContent = comment.name;
  item.append(who, document.createTextNode(comment.body));
  list.prepend(item);
}
const client = connect(${JSON.stringify(wsUrl)});
client.on('state', (s) => (document.getElementById('state').textContent = s));
async function countPeople() {
  const members = await client.presence(${JSON.stringify(COMMENTS_CHANNEL)});
  document.getElementById('people').textContent = members.length === 1 ? '1 person here' : members.length + ' people here';
}
client.on('join', () => void countPeople());
client.on('leave', () => void countPeople());
await client.subscribe(${JSON.stringify(COMMENTS_CHANNEL)}, show, { joinLeave: true }).ready;
for (const comment of await (await fetch('/comments.json')).json()) show(comment);
await countPeople();
document.getElementById('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = { name: document.getElementById('name').value, body: document.getElementById('body').value };
  const res = await fetch('/comments', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  document.getElementById('error').textContent = res.ok ? '' : (await res.json()).error;
  if (res.ok) document.getElementById('body').value = '';
});
</script>
</body></html>
`;
}
