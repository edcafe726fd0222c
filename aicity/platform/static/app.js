// aicity operations dashboard: everything comes from this server's API, nothing from the internet.
"use strict";
const params = new URLSearchParams(location.search);
if (params.get("token")) { sessionStorage.setItem("aicity-token", params.get("token")); }
let token = sessionStorage.getItem("aicity-token") || "";

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { "Authorization": "Bearer " + token,
    "Content-Type": "application/json", ...(options.headers || {}) } });
  if (res.status === 401) { document.getElementById("login").hidden = false; throw new Error("unauthorized"); }
  const body = res.status === 204 ? null : await res.json();
  if (!res.ok) { throw new Error(body && body.detail ? body.detail : res.statusText); }
  return body;
}

function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

async function drawMap() {
  const geo = await api("/city/map");
  const svg = document.getElementById("map");
  const pts = [];
  for (const f of geo.features) {
    const c = f.geometry.coordinates;
    if (f.geometry.type === "Point") pts.push(c); else pts.push(...c);
  }
  if (!pts.length) return;
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const w = Math.max(maxX - minX, 1), h = Math.max(maxY - minY, 1), pad = 0.05 * Math.max(w, h);
  svg.setAttribute("viewBox", `${minX - pad} ${-(maxY + pad)} ${w + 2 * pad} ${h + 2 * pad}`);
  const ns = "http://www.w3.org/2000/svg", stroke = Math.max(w, h) / 200;
  svg.innerHTML = "";
  for (const f of geo.features) {
    if (f.geometry.type === "LineString") {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", f.geometry.coordinates.map(p => `${p[0]},${-p[1]}`).join(" "));
      line.setAttribute("class", "road"); line.setAttribute("stroke-width", stroke);
      svg.appendChild(line);
    }
  }
  for (const f of geo.features) {
    if (f.geometry.type === "Point") {
      const dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", f.geometry.coordinates[0]); dot.setAttribute("cy", -f.geometry.coordinates[1]);
      dot.setAttribute("r", stroke * 4); dot.setAttribute("class", "signal");
      dot.setAttribute("data-id", f.properties.id);
      const title = document.createElementNS(ns, "title"); title.textContent = f.properties.id; dot.appendChild(title);
      svg.appendChild(dot);
    }
  }
}

async function refresh() {
  const status = await api("/city/status");
  const state = document.getElementById("state");
  state.textContent = `${status.scenario} · ${status.mode} · ${status.state} · t=${Math.round(status.sim_s)} s` +
    (status.stopped ? " · STOPPED" : "");
  state.className = status.stopped ? "stopped" : "";
  state.dataset.sim = status.sim_s;
  const k = await api("/city/kpis");
  const tiles = document.getElementById("kpis"); tiles.innerHTML = "";
  const add = (label, value) => { const t = el("div", undefined, "tile"); t.append(el("b", String(value)), el("span", label)); tiles.append(t); };
  add("simulated s", k.sim_s); add("loop steps", k.steps);
  for (const [d, s] of Object.entries(k.by_domain || {})) { add(`${d} actuated (AI)`, s.actuated); add(`${d} proposals`, s.proposals); }
  add("dead letters", k.dead_letters); add("ledger records", k.ledger_size);
  if (k.smart_vs_ai) {  // a KPI with nothing to measure (null) shows as "–", never as 0
    const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(1) : "–");
    for (const [d, table] of Object.entries(k.smart_vs_ai)) for (const [name, row] of Object.entries(table)) if (row.headline)
      add(`${d} ${name} smart → ai (${row.unit})`, `${num(row.smart)} → ${num(row.ai)}`);
  }
  const approvals = await api("/city/approvals");
  const ul = document.getElementById("approvals"); ul.innerHTML = "";
  for (const a of approvals.slice(0, 10)) {
    const li = el("li", `#${a.id} ${a.domain}: ${a.action} on ${a.target} `);
    li.dataset.id = a.id;
    const ok = el("button", "Approve", "approve"), no = el("button", "Reject", "reject");
    ok.onclick = () => decide(a.id, "approve"); no.onclick = () => decide(a.id, "reject");
    li.append(ok, no); ul.append(li);
  }
  if (!approvals.length) ul.append(el("li", "nothing waiting"));
  const auto = await api("/city/autonomy");
  const al = document.getElementById("autonomy"); al.innerHTML = "";
  for (const a of auto) al.append(el("li", `${a.domain}/${a.action_type}: ${a.level}`));
  const decisions = await api("/city/decisions?limit=12");
  const ol = document.getElementById("decisions"); ol.innerHTML = "";
  for (const d of decisions) ol.append(el("li", `${d.time} — ${d.text}`));
}

async function decide(id, verb) {
  const reason = prompt(`Reason to ${verb} #${id}`, verb === "approve" ? "checked on camera" : "not now");
  if (!reason) return;
  await api(`/city/approvals/${id}/${verb}`, { method: "POST", body: JSON.stringify({ reason }) });
  await refresh();
}

document.getElementById("stop").onclick = async () => {
  const reason = prompt("Why stop the AI? (the city goes to its safe state)", "operator stop");
  if (!reason) return;
  await api("/city/stop", { method: "POST", body: JSON.stringify({ reason }) });
  await refresh();
};
document.getElementById("resume").onclick = async () => {
  const reason = prompt("Why resume?", "cleared");
  if (!reason) return;
  await api("/city/resume", { method: "POST", body: JSON.stringify({ reason }) });
  await refresh();
};
document.getElementById("loginform").onsubmit = (ev) => {
  ev.preventDefault(); token = document.getElementById("token").value;
  sessionStorage.setItem("aicity-token", token); document.getElementById("login").hidden = true; start();
};

async function start() {
  try {
    const me = await api("/whoami");
    document.getElementById("who").textContent = `${me.person} (${me.role})`;
    await drawMap(); await refresh();
  } catch (e) { console.log(e); }
}
setInterval(() => refresh().catch(() => {}), 1000);
start();
