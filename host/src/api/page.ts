// The agent's page: no external CDN, everything inline (SVG drawn by hand). Polls the JSON API:
// /api/topology (service graph + RED), /api/traces (latest, or ?edge=client->server), /api/status,
// /api/decoders, /metrics. Plain JS inside a template string: no backticks or dollar-brace below.
import { FLAME_CSS, FLAME_HTML, FLAME_SCRIPT } from '../profile/page';

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
#graphbox{overflow-x:auto}#graph{min-width:100%;height:420px;background:#121820;border:1px solid #2a3340;border-radius:6px}
#graph .node rect{fill:#1f2a37;stroke:#58a6ff;stroke-width:1.5}
#graph .node.database rect{stroke:#d2a8ff}#graph .node.dns rect{stroke:#e3b341}#graph .node.external rect,#graph .node.user rect{stroke:#8b949e}#graph .node.broker rect{stroke:#ffa657}
#graph .node text{fill:#e6e6e6;font-size:12px}
#graph .edge{stroke:#58a6ff;stroke-width:2;fill:none}#graph .edge.err{stroke:#ff7b72}
#graph .hit{stroke:transparent;stroke-width:14;fill:none;cursor:pointer}
#graph .edge.sel{stroke:#f0f6fc;stroke-width:3}
#graph .elabel{fill:#c9d1d9;font-size:11px;pointer-events:none}#graph .elabelg{cursor:pointer}#graph .elabelg rect{fill:#1a2029;stroke:#2a3340}#graph .edge{pointer-events:none}#graph .node{pointer-events:none}
.trace{border:1px solid #2a3340;border-radius:6px;margin:6px 0;padding:6px 8px}
.trace .sp{display:flex;align-items:center;font-size:12px;height:18px}
.trace .nm{width:340px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.trace .bar{height:10px;background:#58a6ff;border-radius:2px;position:relative}
.trace .sp.err .bar{background:#ff7b72}.trace .lane{flex:1;position:relative;height:10px}
#red{display:flex;flex-wrap:wrap;gap:12px}.chart{background:#121820;border:1px solid #2a3340;border-radius:6px;padding:8px;width:330px}
.chart svg{width:310px;height:60px}.muted{color:#8b949e}
${FLAME_CSS}</style></head><body>
<header><h1>telegen</h1><div id="status">loading…</div><div id="drops"></div></header>
<main>
<h2>Service graph</h2>
<div id="graphbox"><svg id="graph" role="img" aria-label="service graph"></svg></div>
<div class="muted">Edges: requests/s over the last minute · error % · mean latency. Click an edge for its traces.</div>
<h2 id="traces-title">Latest traces</h2><div id="traces"></div>
<h2>RED per service (server requests, 5 s slots)</h2><div id="red"></div>
${FLAME_HTML}
<h2>Tracers</h2><table id="tracers"></table>
<h2>Decoders</h2><table id="decoders"></table>
<h2>Agent counters</h2><table id="counters"></table>
</main>
<script>
var NS='http://www.w3.org/2000/svg';var selected=null;
function esc(s){return String(s).replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]})}
function el(tag,attrs,parent){var e=document.createElementNS(NS,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e}
function fmtS(s){return s==null?'–':s<1?(s*1000).toFixed(1)+' ms':s.toFixed(2)+' s'}
function layout(nodes,edges){
  var depth={};nodes.forEach(function(n){depth[n.id]=0});
  for(var i=0;i<nodes.length;i++)edges.forEach(function(e){if(e.client!==e.server&&depth[e.server]<=depth[e.client]&&depth[e.client]<nodes.length)depth[e.server]=depth[e.client]+1});
  var cols={};nodes.forEach(function(n){(cols[depth[n.id]]=cols[depth[n.id]]||[]).push(n)});
  var pos={};var ncol=Object.keys(cols).length||1;
  Object.keys(cols).forEach(function(d){var c=cols[d];c.sort(function(a,b){return a.id<b.id?-1:1});c.forEach(function(n,i){pos[n.id]={x:20+Number(d)*330,y:40+i*80}})});
  return pos;
}
var graphKey='';
function edgeLabel(e){var lat=e.clientMeanSeconds!=null?e.clientMeanSeconds:e.serverMeanSeconds;return e.ratePerSec.toFixed(2)+'/s · '+(e.total?(100*e.failed/e.total).toFixed(0):0)+'% err · '+fmtS(lat)+' ('+e.total+')'}
function drawGraph(t){
  var svg=document.getElementById('graph');
  var key=t.nodes.map(function(n){return n.id}).join('|')+'#'+t.edges.map(function(e){return e.id}).join('|');
  if(key===graphKey){
    // Same shape: update in place so elements stay put (clicks, hovers) between refreshes.
    t.edges.forEach(function(e){var g=svg.querySelector('g.elabelg[data-edge="'+CSS.escape(e.id)+'"] text');if(g)g.textContent=edgeLabel(e);
      var p=svg.querySelector('path.edge[data-e="'+CSS.escape(e.id)+'"]');if(p)p.classList.toggle('err',e.failed>0)});
    return;
  }
  graphKey=key;while(svg.firstChild)svg.removeChild(svg.firstChild);
  var pos=layout(t.nodes,t.edges);var W=170,H=34;
  var defs=el('defs',{},svg);var m=el('marker',{id:'arr',viewBox:'0 0 10 10',refX:'10',refY:'5',markerWidth:'6',markerHeight:'6',orient:'auto'},defs);el('path',{d:'M0 0L10 5L0 10z',fill:'#58a6ff'},m);
  t.edges.forEach(function(e,i){
    var a=pos[e.client],b=pos[e.server];if(!a||!b)return;
    var x1=a.x+W,y1=a.y+H/2,x2=b.x,y2=b.y+H/2,mx=(x1+x2)/2;
    var d='M'+x1+' '+y1+' C'+mx+' '+y1+' '+mx+' '+y2+' '+x2+' '+y2;
    var click=function(){showEdge(e.id,e.client,e.server)};
    el('path',{d:d,'class':'hit'},svg).addEventListener('click',click);
    el('path',{d:d,'class':'edge'+(e.failed?' err':'')+(selected===e.id?' sel':''),'data-e':e.id,'marker-end':'url(#arr)'},svg);
    var g=el('g',{'class':'elabelg','data-edge':e.id,transform:'translate('+(mx-75)+','+((y1+y2)/2-22-(i%2)*14)+')'},svg);
    el('rect',{width:150,height:16,rx:3},g);var lb=el('text',{x:4,y:12,'class':'elabel'},g);lb.textContent=edgeLabel(e);
    g.addEventListener('click',click);
  });
  t.nodes.forEach(function(n){
    var p=pos[n.id];var g=el('g',{'class':'node '+n.type,'data-id':n.id,transform:'translate('+p.x+','+p.y+')'},svg);
    el('rect',{width:W,height:H,rx:6},g);var tx=el('text',{x:8,y:21},g);tx.textContent=(n.id.length>24?n.id.slice(0,23)+'…':n.id);
    var ti=el('title',{},g);ti.textContent=n.type+': '+n.id;
  });
  var maxY=0,maxX=0;for(var k in pos){maxY=Math.max(maxY,pos[k].y);maxX=Math.max(maxX,pos[k].x)}svg.style.height=Math.max(200,maxY+80)+'px';svg.style.width=(maxX+W+40)+'px';
}
function drawTraces(list){
  var box=document.getElementById('traces');
  if(!list.length){box.innerHTML='<div class="muted">no traces yet</div>';return}
  box.innerHTML=list.map(function(tr){
    var sp=tr.spans;var t0=Math.min.apply(null,sp.map(function(s){return s.startMs}));var t1=Math.max.apply(null,sp.map(function(s){return s.startMs+s.durationMs}));var span=Math.max(t1-t0,0.001);
    var byId={};sp.forEach(function(s){byId[s.spanId]=s});
    function depth(s){var d=0;while(s&&s.parentSpanId&&byId[s.parentSpanId]&&d<20){s=byId[s.parentSpanId];d++}return d}
    return '<div class="trace" data-trace="'+esc(tr.traceId)+'"><div class="muted">trace <code>'+esc(tr.traceId)+'</code> · '+sp.length+' spans · '+fmtS(span/1000)+'</div>'+
      sp.map(function(s){var l=(s.startMs-t0)/span*100,w=Math.max(s.durationMs/span*100,0.5);
        return '<div class="sp'+(s.error?' err':'')+'" data-span="'+esc(s.spanId)+'"><div class="nm" style="padding-left:'+(depth(s)*14)+'px">'+esc(s.service)+' · '+esc(s.kind)+' · '+esc(s.name)+'</div>'+
        '<div class="lane"><div class="bar" style="left:'+l+'%;width:'+w+'%" title="'+esc(fmtS(s.durationMs/1000))+' '+esc(s.correlation||'')+'"></div></div></div>'}).join('')+'</div>'}).join('');
}
async function showEdge(id,c,s){
  // The list under the new title is emptied at once and marked with its edge only once filled, so
  // what is shown never belongs to another selection (a slow reply to an earlier click is dropped).
  selected=id;document.getElementById('traces-title').textContent='Traces through '+c+' \\u2192 '+s;
  var box=document.getElementById('traces');box.removeAttribute('data-edge');box.innerHTML='<div class="muted">loading\\u2026</div>';
  var r=await (await fetch('/api/traces?limit=20&edge='+encodeURIComponent(id))).json();
  if(selected!==id)return;
  drawTraces(r.traces);box.setAttribute('data-edge',id);
  document.querySelectorAll('#graph .edge').forEach(function(p){p.classList.toggle('sel',p.getAttribute('data-e')===id)});
}
function drawRed(t){
  var box=document.getElementById('red');
  box.innerHTML='';
  t.services.forEach(function(s){
    var tl=s.timeline;if(!tl.length)return;
    var div=document.createElement('div');div.className='chart';div.setAttribute('data-service',s.service);
    var n=tl.reduce(function(a,x){return a+x.count},0),e=tl.reduce(function(a,x){return a+x.errors},0);
    div.innerHTML='<b>'+esc(s.service)+'</b> <span class="muted">'+n+' req · '+e+' err · mean '+fmtS(tl.reduce(function(a,x){return a+x.meanSeconds*x.count},0)/Math.max(n,1))+'</span>';
    var svg=el('svg',{viewBox:'0 0 310 60'});div.appendChild(svg);
    var maxC=Math.max.apply(null,tl.map(function(x){return x.count}).concat([1]));var maxL=Math.max.apply(null,tl.map(function(x){return x.meanSeconds}).concat([1e-6]));
    var first=tl[0].t,bw=310/36;
    tl.forEach(function(x){var i=(x.t-first)/5000;if(i>35)return;var h=x.count/maxC*50;el('rect',{x:i*bw,y:55-h,width:bw-1,height:h,fill:'#1f6feb'},svg);if(x.errors){var he=x.errors/maxC*50;el('rect',{x:i*bw,y:55-he,width:bw-1,height:he,fill:'#ff7b72'},svg)}});
    el('polyline',{points:tl.map(function(x){return ((x.t-first)/5000*bw+bw/2)+','+(55-x.meanSeconds/maxL*50)}).join(' '),fill:'none',stroke:'#e3b341','stroke-width':1.5},svg);
    box.appendChild(div);
  });
}
async function refresh(){
  try{
    var t=await (await fetch('/api/topology')).json();drawGraph(t);drawRed(t);
    if(!selected){var r=await (await fetch('/api/traces?limit=10')).json();if(!selected)drawTraces(r.traces)}
    var st=await (await fetch('/api/status')).json();
    var dr=st.drops||{total:0,nonzero:[]};var de=document.getElementById('drops');
    document.getElementById('status').textContent='up '+Math.round(st.uptimeSeconds||0)+' s · '+(st.exportTarget||'');
    de.className=dr.total?'bad':'ok';
    de.textContent=dr.total?'lost: '+dr.nonzero.map(function(d){var l=Object.keys(d.labels).map(function(k){return d.labels[k]}).join(' ');return d.metric.replace(/^telegen_|_total$/g,'')+(l?' ('+l+')':'')+' '+d.value}).join(' · '):'nothing lost (ring, shedding, export)';
    document.getElementById('tracers').innerHTML='<tr><th>tracer</th><th>state</th><th>detail</th></tr>'+
      (st.tracers||[]).map(function(x){return '<tr><td>'+esc(x.name)+'</td><td class="'+(x.ok?'ok':'bad')+'">'+(x.ok?'running':'not running')+'</td><td>'+esc(x.detail||'')+'</td></tr>'}).join('');
    var ds=await (await fetch('/api/decoders')).json();
    document.getElementById('decoders').innerHTML='<tr><th>name</th><th>version</th><th>protocols</th><th>records</th><th>traps</th><th>sha256</th></tr>'+
      ds.map(function(d){return '<tr><td>'+esc(d.name)+'</td><td>'+esc(d.version)+'</td><td>'+esc(d.protocols.join(', '))+'</td><td>'+d.counters.records+'</td><td>'+d.counters.traps+'</td><td><code>'+esc(d.sha256.slice(0,16))+'</code></td></tr>'}).join('');
    var m=await (await fetch('/metrics')).text();
    document.getElementById('counters').innerHTML=m.split('\\n').filter(function(l){return l&&l.charAt(0)!=='#'}).map(function(l){var i=l.lastIndexOf(' ');return '<tr><td><code>'+esc(l.slice(0,i))+'</code></td><td>'+esc(l.slice(i+1))+'</td></tr>'}).join('');
  }catch(e){document.getElementById('status').textContent='agent unreachable'}
}
refresh();setInterval(refresh,2000);
${FLAME_SCRIPT}</script></body></html>`;
