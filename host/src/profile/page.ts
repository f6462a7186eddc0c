// The flame graph section of the agent's page (host/src/api/page.ts embeds these): a service
// picker, a window, and an icicle drawn from GET /api/profile's tree as positioned divs. No
// external code. Click a frame to zoom into it, the root to zoom out.
export const FLAME_CSS = `
#flame{position:relative;background:#121820;border:1px solid #2a3340;border-radius:6px;overflow:hidden;min-height:40px}
#flame .f{position:absolute;height:17px;box-sizing:border-box;border:1px solid #121820;border-radius:2px;font:11px/15px ui-monospace,monospace;color:#111;overflow:hidden;white-space:nowrap;padding:0 3px;cursor:pointer}
#flamebar select,#flamebar input{background:#1a2029;color:#e6e6e6;border:1px solid #2a3340;border-radius:4px;padding:2px 4px}
`;

export const FLAME_HTML = `
<h2>CPU profile</h2>
<div id="flamebar">service <select id="flamesvc"><option value="">all</option></select>
 window <select id="flamesec"><option>60</option><option>300</option><option selected>900</option></select> s
 <span id="flameinfo" class="muted"></span></div>
<div id="flame" role="img" aria-label="CPU flame graph"></div>
`;

export const FLAME_SCRIPT = `
var flameZoom=null;var flameSeq=0;
function flameColor(n){var h=0;for(var i=0;i<n.length;i++)h=(h*31+n.charCodeAt(i))>>>0;
  if(/^\\[|\\+0x/.test(n))return 'hsl(0,0%,'+(55+h%15)+'%)';
  return 'hsl('+(15+h%40)+','+(70+h%20)+'%,'+(55+h%12)+'%)'}
function flameFind(n,path){if(!path.length)return n;for(var i=0;i<n.children.length;i++)if(n.children[i].name===path[0])return flameFind(n.children[i],path.slice(1));return n}
function flameDraw(tree){
  var box=document.getElementById('flame');var W=box.clientWidth||800;var out=[];var maxDepth=0;
  var root=flameZoom?flameFind(tree,flameZoom):tree;
  function walk(n,x,w,d,path){if(w<2)return;maxDepth=Math.max(maxDepth,d);
    var pct=(100*n.value/Math.max(1,root.value)).toFixed(1);
    out.push('<div class="f" data-path="'+esc(JSON.stringify(path))+'" title="'+esc(n.name)+' · '+n.value+' samples · '+pct+'%" style="left:'+x+'px;top:'+(d*18)+'px;width:'+w+'px;background:'+flameColor(n.name)+'">'+esc(n.name)+'</div>');
    var cx=x;for(var i=0;i<n.children.length;i++){var c=n.children[i];var cw=w*c.value/Math.max(1,n.value);walk(c,cx,cw,d+1,path.concat([c.name]));cx+=cw}}
  walk(root,0,W,0,flameZoom||[]);
  box.style.height=((maxDepth+1)*18+2)+'px';box.innerHTML=out.join('');
}
async function flameRefresh(){
  try{
    var svcSel=document.getElementById('flamesvc');var svc=svcSel.value;var sec=document.getElementById('flamesec').value;
    var seq=++flameSeq;
    var r=await fetch('/api/profile?seconds='+sec+(svc?'&service='+encodeURIComponent(svc):''));
    // A slower answer to an older choice must not overwrite the newer one.
    if(seq!==flameSeq)return;
    if(!r.ok){document.getElementById('flameinfo').textContent='profiler not running';return}
    var j=await r.json();if(seq!==flameSeq)return;
    var have={};for(var i=0;i<svcSel.options.length;i++)have[svcSel.options[i].value]=1;
    (j.services||[]).forEach(function(s){if(!have[s.service]){var o=document.createElement('option');o.value=o.textContent=s.service;svcSel.appendChild(o)}});
    document.getElementById('flameinfo').textContent=j.tree.value+' samples'+(j.enabled?'':' · profiling is off');
    window.flameTree=j.tree;flameDraw(j.tree);
  }catch(e){document.getElementById('flameinfo').textContent='profile unavailable'}
}
document.getElementById('flame').addEventListener('click',function(e){var t=e.target;if(!t.dataset||!t.dataset.path)return;var p=JSON.parse(t.dataset.path);flameZoom=p.length?p:null;if(window.flameTree)flameDraw(window.flameTree)});
document.getElementById('flamesvc').addEventListener('change',function(){flameZoom=null;flameRefresh()});
document.getElementById('flamesec').addEventListener('change',flameRefresh);
flameRefresh();setInterval(flameRefresh,5000);
`;
