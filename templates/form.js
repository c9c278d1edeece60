(function(){var f=document.getElementById('join'),d=f.dataset,s=document.getElementById('summary'),u=s.querySelector('ul'),b=f.querySelector('button[type=submit]'),t=f.elements._token,l=b.textContent,born=Date.now(),ttl=d.ttl*1e3,usable=born+d.wait*1e3,busy=0,pw=f.elements.altcha,S=window.crypto&&crypto.subtle,P=Promise.resolve(),at=0,life=0,solving=0,K=[],I=[],W=new Int32Array(64),p=2,q;
for(;K.length<64;p++){for(q=2;q*q<=p&&p%q;q++);if(q*q>p){if(I.length<8)I.push(Math.sqrt(p)*4294967296|0);K.push(Math.pow(p,1/3)*4294967296|0)}}
function R(x,n){return x>>>n|x<<32-n}
function H(x){var l=x.length,n=l+72>>6<<6,h=I.slice(),w=W,A,B,C,D,E,F,G,J,i,j,k,t,u;
for(i=0;i<n;i+=64){for(j=0;j<16;j++){for(t=k=0;k<4;k++){u=i+j*4+k;t=t<<8|(u<l?x.charCodeAt(u):u==l?128:u>=n-4?l*8>>>(n-1-u)*8&255:0)}w[j]=t}
for(;j<64;j++){t=w[j-15];u=w[j-2];w[j]=(R(t,7)^R(t,18)^t>>>3)+(R(u,17)^R(u,19)^u>>>10)+w[j-7]+w[j-16]}
A=h[0];B=h[1];C=h[2];D=h[3];E=h[4];F=h[5];G=h[6];J=h[7];for(j=0;j<64;j++){t=J+(R(E,6)^R(E,11)^R(E,25))+(E&F^~E&G)+K[j]+w[j]|0;u=(R(A,2)^R(A,13)^R(A,22))+(A&B^A&C^B&C)|0;J=G;G=F;F=E;E=D+t|0;D=C;C=B;B=A;A=t+u|0}
h[0]=h[0]+A|0;h[1]=h[1]+B|0;h[2]=h[2]+C|0;h[3]=h[3]+D|0;h[4]=h[4]+E|0;h[5]=h[5]+F|0;h[6]=h[6]+G|0;h[7]=h[7]+J|0}return h}
f.sha256=H;
function ascii(x){for(var u=new Uint8Array(x.length),i=0;i<x.length;i++)u[i]=x.charCodeAt(i);return u}
function later(g){var c=new MessageChannel;c.port1.onmessage=g;c.port2.postMessage(0)}
function solve(c){var g=c.challenge.match(/.{8}/g).map(function(x){return parseInt(x,16)|0}),n=0,m=c.maxnumber;if(!(m>=0))throw c;
function same(x){for(var y=0;y<8&&x[y]==g[y];y++);return y==8}
return new Promise(function(ok){(function step(){var z=[],k=Math.min(n+(S?500:1e3),m+1),i;if(!S){for(i=n;i<k;i++)if(same(H(c.salt+i)))return ok(i);n=k;return n>m?ok(null):later(step)}
for(i=n;i<k;i++)z.push(S.digest('SHA-256',ascii(c.salt+i)));Promise.all(z).then(function(z){for(var j=0,v;j<z.length;j++){v=new DataView(z[j]);if(v.getInt32(0)==g[0]&&same([0,1,2,3,4,5,6,7].map(function(y){return v.getInt32(y*4)})))return ok(n+j)}n=k;n>m?ok(null):later(step)},function(){S=0;step()})})()})}
function work(){solving=1;at=0;pw.value='';d.pow='solving';return P=fetch(d.challengeUrl,{headers:{Accept:'application/json'},cache:'no-store'}).then(function(r){if(!r.ok)throw r;var now=Date.parse(r.headers.get('Date'))||Date.now();return r.json().then(function(c){var x=/[?&]expires=(\d+)/.exec(c.salt),end=Date.now()+(life=x?x[1]*1e3-now:6e5),t0=performance.now();
return solve(c).then(function(n){var ms=performance.now()-t0;if(n==null)throw c;pw.value=btoa(JSON.stringify({algorithm:c.algorithm,challenge:c.challenge,number:n,salt:c.salt,signature:c.signature,took:Math.round(ms)}));at=end;d.powMs=ms;d.pow='solved'})})}).catch(function(){d.pow='failed'}).then(function(){solving=0})}
function due(){return !solving&&Date.now()>at-life/10}
function proof(){if(due())work();return Promise.race([P,new Promise(function(ok){setTimeout(ok,2e4)})])}
work();setInterval(function(){if(due())work()},3e4);
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
Promise.all([(old()?fresh():Promise.resolve()).then(function(){return new Promise(function(ok){setTimeout(ok,Math.max(0,usable-Date.now()+250))})}),proof()]).then(function(){return fetch(f.action,{method:'POST',body:new URLSearchParams(new FormData(f)),headers:{Accept:'application/json'}})}).then(function(r){if(r.status==201)return r.json().then(function(j){location.assign(j.confirm_by_mail?d.thanksConfirm:d.thanks)},function(){location.assign(d.thanks)});return r.json().then(function(j){show(r.status==422?j.errors||[]:[],r.status==422?'':d.busy)},function(){show([],d.busy)})}).catch(function(){show([],d.net)}).then(function(){busy=0;b.disabled=false;b.textContent=l})})})();
