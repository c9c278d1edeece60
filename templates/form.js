(function(){var f=document.getElementById('join'),d=f.dataset,s=document.getElementById('summary'),u=s.querySelector('ul'),b=f.querySelector('button[type=submit]'),t=f.elements._token,l=b.textContent,born=Date.now(),ttl=d.ttl*1e3,usable=born+d.wait*1e3,busy=0;
function fresh(){return fetch(d.tokenUrl,{headers:{Accept:'application/json'},cache:'no-store'}).then(function(r){if(!r.ok)throw r;return r.json()}).then(function(j){t.value=j.token;born=Date.now();ttl=j.expires_in_seconds*1e3;usable=born+j.usable_after_seconds*1e3})}
function short(x){var w=x.trim().split(/\s+/);return w.slice(0,4).join(' ')+(w.length>4?'…':'')}
function old(){return Date.now()-born>ttl*.9}
setInterval(function(){if(old())fresh().catch(function(){})},Math.max(1e3,Math.min(ttl/10,6e5)));
function item(text,id){var li=document.createElement('li'),a;if(id){a=document.createElement('a');a.href='#'+id;a.textContent=text;li.appendChild(a)}else li.textContent=text;u.appendChild(li)}
function show(errs,general){var i,e,id,el,p,lab;
f.querySelectorAll('.err').forEach(function(p){p.hidden=true;p.textContent=''});
f.querySelectorAll('[aria-invalid]').forEach(function(el){el.removeAttribute('aria-invalid');var k=(el.getAttribute('aria-describedby')||'').split(' ').filter(function(x){return x&&x.slice(-2)!='-e'}).join(' ');if(k)el.setAttribute('aria-describedby',k);else el.removeAttribute('aria-describedby')});
u.textContent='';if(general)item(general);
for(i=0;i<errs.length;i++){e=errs[i];id='f-'+e.field;el=document.getElementById(id);p=document.getElementById(id+'-e');lab=f.querySelector('label[for="'+id+'"]');
if(el&&p){p.textContent=e.message;p.hidden=false;el.setAttribute('aria-invalid','true');el.setAttribute('aria-describedby',((el.getAttribute('aria-describedby')||'')+' '+id+'-e').trim());item((lab?short(lab.firstChild.textContent)+': ':'')+e.message,id)}else item(e.message)}
s.hidden=false;s.focus()}
f.addEventListener('submit',function(ev){ev.preventDefault();if(busy)return;busy=1;b.disabled=true;b.textContent=d.sending;
(old()?fresh():Promise.resolve()).then(function(){return new Promise(function(ok){setTimeout(ok,Math.max(0,usable-Date.now()+250))})}).then(function(){return fetch(f.action,{method:'POST',body:new URLSearchParams(new FormData(f)),headers:{Accept:'application/json'}})}).then(function(r){if(r.status==201)return r.json().then(function(j){location.assign(j.confirm_by_mail?d.thanksConfirm:d.thanks)},function(){location.assign(d.thanks)});return r.json().then(function(j){show(r.status==422?j.errors||[]:[],r.status==422?'':d.busy)},function(){show([],d.busy)})}).catch(function(){show([],d.net)}).then(function(){busy=0;b.disabled=false;b.textContent=l})})})();
