/** `GET /`: a minimal page listing the API and the symbols' last prices until the real dashboard lands. */
import type { FastifyPluginAsync } from 'fastify';

/** The page, static: the inline script fetches `/api/v1/symbols` every second. */
export const HOME_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Streamlines</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; } td, th { padding: 2px 12px; text-align: right; } th:first-child, td:first-child { text-align: left; }
#status { color: #888; }
</style>
</head>
<body>
<h1>Streamlines</h1>
<h2>Symbols</h2>
<p id="status">loading...</p>
<table><thead><tr><th>symbol</th><th>last price</th><th>last trade (UTC)</th></tr></thead><tbody id="symbols"></tbody></table>
<h2>API</h2>
<ul>
<li><a href="/api/v1/symbols">/api/v1/symbols</a></li>
<li>/api/v1/latest/:symbol</li>
<li>/api/v1/ticks/:symbol?from&amp;to&amp;limit</li>
<li>/api/v1/candles/:symbol?interval&amp;from&amp;to&amp;limit</li>
<li>/api/v1/indicators/:symbol?interval&amp;from&amp;to&amp;limit</li>
<li><a href="/api/v1/alerts">/api/v1/alerts</a>?symbol&amp;kind&amp;from&amp;to&amp;limit</li>
<li><a href="/api/v1/stats">/api/v1/stats</a></li>
<li><a href="/api/v1/dead-letters">/api/v1/dead-letters</a>?limit</li>
<li><a href="/health">/health</a>, <a href="/ready">/ready</a></li>
<li>WebSocket /ws: {"op":"subscribe","channels":["ticks:SYM","candles:SYM:1m","alerts"]}</li>
</ul>
<script>
const body = document.getElementById('symbols');
const status = document.getElementById('status');
function cell(text) { const td = document.createElement('td'); td.textContent = text; return td; }
async function refresh() {
  try {
    const response = await fetch('/api/v1/symbols');
    const { symbols } = await response.json();
    body.replaceChildren(...symbols.map((s) => {
      const tr = document.createElement('tr');
      tr.append(cell(s.symbol), cell(String(s.lastPrice)), cell(new Date(s.lastTs).toISOString()));
      return tr;
    }));
    status.textContent = symbols.length + ' symbols, updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    status.textContent = 'cannot reach the server: ' + error;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;

/** The encapsulated plugin serving the home page. */
export const homeRoutes: FastifyPluginAsync = async (app) => {
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(HOME_PAGE));
};
