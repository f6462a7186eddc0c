// The agent's page: no external CDN, everything inline. Polls the JSON API.
export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>telegen</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#0f1419;color:#e6e6e6}
header{padding:12px 20px;background:#1a2029;border-bottom:1px solid #2a3340}
h1{font-size:18px;margin:0} h2{font-size:15px;margin:18px 0 8px}
main{padding:0 20px 20px} table{border-collapse:collapse;width:100%}
td,th{padding:4px 8px;border-bottom:1px solid #2a3340;text-align:left;font-variant-numeric:tabular-nums}
.ok{color:#7ee787}.bad{color:#ff7b72} code{color:#a5d6ff}
</style></head><body>
<header><h1>telegen</h1><div id="status">loading…</div></header>
<main>
<h2>Tracers</h2><table id="tracers"></table>
<h2>Decoders</h2><table id="decoders"></table>
<h2>Agent counters</h2><table id="counters"></table>
</main>
<script>
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
async function refresh(){
  try{
    const st=await (await fetch('/api/status')).json();
    document.getElementById('status').textContent='up '+Math.round(st.uptimeSeconds||0)+' s · '+(st.exportTarget||'');
    document.getElementById('tracers').innerHTML='<tr><th>tracer</th><th>state</th><th>detail</th></tr>'+
      (st.tracers||[]).map(t=>'<tr><td>'+esc(t.name)+'</td><td class="'+(t.ok?'ok':'bad')+'">'+(t.ok?'running':'not running')+'</td><td>'+esc(t.detail||'')+'</td></tr>').join('');
    const ds=await (await fetch('/api/decoders')).json();
    document.getElementById('decoders').innerHTML='<tr><th>name</th><th>version</th><th>protocols</th><th>records</th><th>traps</th><th>sha256</th></tr>'+
      ds.map(d=>'<tr><td>'+esc(d.name)+'</td><td>'+esc(d.version)+'</td><td>'+esc(d.protocols.join(', '))+'</td><td>'+d.counters.records+'</td><td>'+d.counters.traps+'</td><td><code>'+esc(d.sha256.slice(0,16))+'</code></td></tr>').join('');
    const m=await (await fetch('/metrics')).text();
    document.getElementById('counters').innerHTML=m.split('\\n').filter(l=>l&&!l.startsWith('#')).map(l=>{const i=l.lastIndexOf(' ');return '<tr><td><code>'+esc(l.slice(0,i))+'</code></td><td>'+esc(l.slice(i+1))+'</td></tr>'}).join('');
  }catch(e){document.getElementById('status').textContent='agent unreachable'}
}
refresh();setInterval(refresh,2000);
</script></body></html>`;
