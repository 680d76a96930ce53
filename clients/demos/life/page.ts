/**
 * The Life demo's page: a canvas that draws every cell's state as the cells publish it on the board
 * channel, through the browser client the server serves at /client.js. Alive is dark, dead is light,
 * and the hue shifts with each generation.
 */
import { BOARD_CHANNEL } from './rules.js';

/** The page's HTML for a grid of `size` x `size` on the pub/sub server at `wsUrl`. */
export function lifePage(wsUrl: string, size: number): string {
  const httpUrl = wsUrl.replace(/^ws/, 'http');
  const cell = Math.max(2, Math.floor(800 / size));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Life: ${size} x ${size} WebSocket cells</title>
<link rel="icon" href="data:,">
<style>body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}canvas{border:1px solid #ccc;image-rendering:pixelated}</style>
</head><body>
<h1>Game of Life: ${size * size} WebSocket clients, one per cell</h1>
<p>Each cell is a client of the server, subscribed to its 8 neighbours; the server only relays. Generation <b id="generation">-</b>,
<span id="alive">0</span> alive, connection <span id="state">connecting</span>.</p>
<canvas id="grid" width="${size * cell}" height="${size * cell}"></canvas>
<script type="module">
import { connect } from ${JSON.stringify(`${httpUrl}/client.js`)};
const size = ${size}, px = ${cell};
const ctx = document.getElementById('grid').getContext('2d');
const alive = new Uint8Array(size * size);
let generation = -1, count = 0;
const colour = (g, on) => \`hsl(\${(g * 11) % 360} \${on ? '60% 28%' : '35% 92%'})\`;
ctx.fillStyle = colour(0, false);
ctx.fillRect(0, 0, size * px, size * px);
const client = connect(${JSON.stringify(wsUrl)});
client.on('state', (s) => (document.getElementById('state').textContent = s));
client.subscribe(${JSON.stringify(BOARD_CHANNEL)}, ({ i, g, a }) => {
  count += a - alive[i];
  alive[i] = a;
  ctx.fillStyle = colour(g, a === 1);
  ctx.fillRect((i % size) * px, Math.floor(i / size) * px, px, px);
  if (g > generation) {
    generation = g;
    document.getElementById('generation').textContent = String(g);
  }
  document.getElementById('alive').textContent = String(count);
});
</script>
</body></html>
`;
}
