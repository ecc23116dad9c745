"""The report's style and script, inlined into every report: no request leaves the page.

The style has a light and a dark scheme (the reader's `prefers-color-scheme`). The
script only adds to a page that reads without it: a tooltip for the bar under the
pointer or the keyboard's focus (from the attempts table's row of the same index), a
click on a compact bar opening its details file, and a filter by status."""

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#5b6570;--line:#d0d7de;
--track:#f3f5f7;--success:#2da44e;--failure:#cf222e;--timeout:#bc4c00;--error:#8250df;
--cancelled:#8c959f;--requeued:#bf8700;--running:#0969da;--unfinished:#6e7781;--panel:#f6f8fa;
--ok-text:#1a7f37}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;
--line:#30363d;--track:#161b22;--success:#3fb950;--failure:#f85149;--timeout:#db6d28;
--error:#a371f7;--cancelled:#6e7681;--requeued:#d29922;--running:#58a6ff;
--unfinished:#8b949e;--panel:#161b22;--ok-text:#3fb950}}
body{background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",sans-serif;margin:0 auto;padding:16px 24px;max-width:1260px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
a{color:var(--running)}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.verdict{font-weight:700;font-size:16px}.pass{color:var(--ok-text)}.fail{color:var(--failure)}
.note{background:var(--panel);border-left:4px solid var(--requeued);padding:6px 10px;margin:8px 0}
dl.counts{display:flex;flex-wrap:wrap;gap:4px 18px;margin:8px 0}
dl.counts div{display:flex;gap:6px}dl.counts dt{color:var(--muted)}
dl.counts dd{margin:0;font-weight:600}
.facts{color:var(--muted)}.facts b{color:var(--fg);font-weight:600}
.cmd{display:block;background:var(--panel);padding:6px 8px;overflow-x:auto;white-space:pre}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:4px}
svg text{fill:var(--muted);font:10px ui-monospace,Menlo,monospace}
svg .label{text-anchor:end}svg .end{text-anchor:end}svg .middle{text-anchor:middle}
.track{fill:var(--track)}.axis line{stroke:var(--line)}.axis text{text-anchor:middle}
.hatch{fill:var(--fg);opacity:.35}.pause{fill:url(#hatch)}
.backoff{stroke:var(--muted);stroke-dasharray:3 2;stroke-width:1.5}
.hbin{fill:var(--running)}a.bar rect{stroke:var(--bg);stroke-width:.5}
#histogram{width:100%;max-width:420px;height:auto}#timeline{width:100%;min-width:720px;height:auto}
a.bar:focus rect:first-of-type,a.bar.on rect,rect[data-i].on{stroke:var(--fg);stroke-width:2}
.st-success{fill:var(--success)}.st-failure{fill:var(--failure)}.st-timeout{fill:var(--timeout)}
.st-error{fill:var(--error)}.st-cancelled{fill:var(--cancelled)}.st-requeued{fill:var(--requeued)}
.st-running{fill:var(--running)}.st-unfinished{fill:var(--unfinished)}
a.bar:focus{outline:none}
.legend span{display:inline-flex;align-items:center;gap:4px;margin-right:12px;color:var(--muted)}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px}
i.st-success{background:var(--success)}i.st-failure{background:var(--failure)}
i.st-timeout{background:var(--timeout)}i.st-error{background:var(--error)}
i.st-cancelled{background:var(--cancelled)}i.st-requeued{background:var(--requeued)}
i.st-running{background:var(--running)}i.st-unfinished{background:var(--unfinished)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:8px 24px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.st{font-weight:600}tr.st-failure td.st,li.st-failure b{color:var(--failure)}
tr.st-timeout td.st,li.st-timeout b{color:var(--timeout)}
tr.st-error td.st,li.st-error b{color:var(--error)}
tr.st-success td.st{color:var(--ok-text)}
ol.failures{padding-left:22px}ol.failures li{margin:4px 0}
.summary{white-space:pre-wrap;word-break:break-word}
#tip{position:fixed;z-index:9;max-width:520px;background:var(--panel);color:var(--fg);
border:1px solid var(--line);border-radius:6px;padding:6px 9px;font-size:12px;
box-shadow:0 4px 14px rgba(0,0,0,.25);pointer-events:none;white-space:pre-wrap}
details>summary{cursor:pointer;color:var(--muted)}
.filter{margin:6px 0}.filter label{margin-right:10px}
body.hide-success .st-success.bar,body.hide-success #timeline rect[data-i]:not([class*="st-"]),
body.hide-success #attempts tbody tr:not([class]){display:none}
:where(#timeline rect[data-i]){fill:var(--success)}
#attempts td:nth-child(-n+7):nth-child(n+4),#attempts td:nth-child(2){text-align:right;
font-variant-numeric:tabular-nums}#attempts td:nth-child(6){font-weight:600}
#attempts tbody tr:not([class]) td:nth-child(6){color:var(--ok-text)}
#attempts tr.st-failure td:nth-child(6){color:var(--failure)}
#attempts tr.st-timeout td:nth-child(6){color:var(--timeout)}
#attempts tr.st-error td:nth-child(6){color:var(--error)}
#attempts td:nth-child(8){white-space:pre-wrap;word-break:break-word}
@media (forced-colors:active){[data-i],.agg{forced-color-adjust:none}}
"""

SCRIPT = """
(function(){
var table=document.getElementById('attempts');if(!table)return;
var rows=table.tBodies[0].rows,tip=document.getElementById('tip'),on=null;
function cell(r,n){return r.cells[n]?r.cells[n].textContent:'';}
function show(bar,x,y){var i=+bar.getAttribute('data-i'),r=rows[i];if(!r)return;
if(on)on.classList.remove('on');on=bar;bar.classList.add('on');
tip.textContent=cell(r,0)+'  attempt '+cell(r,1)+'  '+cell(r,2)+'\\n'+cell(r,5)+
(cell(r,6)?' (exit '+cell(r,6)+')':'')+' after '+cell(r,4)+'s, from '+cell(r,3)+'s\\n'+cell(r,7);
tip.hidden=false;var w=tip.offsetWidth,h=tip.offsetHeight;
tip.style.left=Math.max(4,Math.min(x+12,innerWidth-w-4))+'px';
tip.style.top=(y+16+h>innerHeight?y-h-10:y+16)+'px';}
function hide(){tip.hidden=true;if(on)on.classList.remove('on');on=null;}
var svg=document.getElementById('timeline');
svg.addEventListener('mouseover',function(e){var b=e.target.closest('[data-i]');
if(b)show(b,e.clientX,e.clientY);});
svg.addEventListener('mouseleave',hide);
svg.addEventListener('focusin',function(e){var b=e.target.closest('[data-i]');if(!b)return;
var r=b.getBoundingClientRect();show(b,r.left,r.bottom);});
svg.addEventListener('focusout',hide);
svg.addEventListener('click',function(e){var b=e.target.closest('rect[data-i]');if(!b)return;
var a=rows[+b.getAttribute('data-i')];a=a&&a.querySelector('a');if(a)location.href=a.href;});
var f=document.getElementById('filter');if(f){f.hidden=false;
f.querySelector('input').addEventListener('change',function(e){
document.body.classList.toggle('hide-success',e.target.checked);});}
})();
"""
