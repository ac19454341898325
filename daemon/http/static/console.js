// geowarn operator console: overview (map, counts, open alerts) and site pages, kept live by
// the server's event stream. No framework: the page is small and must work offline.
"use strict";
(function () {
  const LEVELS = ["normal", "blue", "yellow", "orange", "red"];
  const store = window.localStorage;
  const state = { lang: store.getItem("geowarn.lang") || "zh", network: null, site: null, counties: null,
                  route: null, plots: [], hours: Number(store.getItem("geowarn.hours")) || 72 };
  const $ = (sel, el = document) => el.querySelector(sel);
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const t = () => window.I18N[state.lang];
  const view = $("#view");

  // --- formatting ----------------------------------------------------------------------------
  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso), p = n => String(n).padStart(2, "0");
    return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  const badge = level => `<span class="badge lv-${esc(level)}">${esc(t().lv[level] || level)}</span>`;
  // words from the service (fault names, roles, outbox states) shown in the officer's language
  const word = (group, key) => (t()[group] || {})[String(key).split(":")[0]] || key;
  const num = (v, unit = "") => v == null ? "—" : `${Math.round(v * 10) / 10}${unit}`;

  // --- API -----------------------------------------------------------------------------------
  function headers(json) {
    const h = {}; const tok = store.getItem("geowarn.token");
    if (tok) h.Authorization = `Bearer ${tok}`;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }
  async function api(path, body) {
    const r = await fetch(path, body === undefined ? { headers: headers(false) }
      : { method: "POST", headers: headers(true), body: JSON.stringify(body) });
    const doc = await r.json().catch(() => ({}));
    if (r.status === 401 || r.status === 403 || r.status === 503) { notice(t().need_token + ` (${doc.error || r.status})`); showSettings(true); }
    if (!r.ok) throw new Error(doc.error || `HTTP ${r.status}`);
    return doc;
  }
  function notice(text) { const n = $("#notice"); n.textContent = text || ""; n.hidden = !text; }
  const operator = () => store.getItem("geowarn.operator") || (state.lang === "zh" ? "值班员" : "duty officer");

  // --- live events: fetch-based SSE so the token travels in a header, not the URL ------------
  async function listen() {
    for (;;) {
      try {
        const r = await fetch("/api/v1/events", { headers: headers(false), cache: "no-store" });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        setLive(true);
        const reader = r.body.getReader(), dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i); buf = buf.slice(i + 2);
            const data = block.split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
            if (/^event: network$/m.test(block) && data) onNetwork(JSON.parse(data));
          }
        }
      } catch (e) { /* reconnect below */ }
      setLive(false);
      await new Promise(res => setTimeout(res, 2000));
    }
  }
  function setLive(on) { const el = $("#live"); el.className = `live ${on ? "on" : "off"}`; el.textContent = on ? t().live : t().offline; }

  function onNetwork(doc) {
    const before = state.network;
    state.network = doc;
    if (state.route.page === "overview") renderOverview();
    else if (state.route.page === "site") {
      const id = state.route.id;
      const key = d => d && JSON.stringify([d.sites.find(s => s.id === id), d.alerts.filter(a => a.site === id)]);
      if (key(before) !== key(doc)) loadSite(id);
    }
  }

  // --- overview ------------------------------------------------------------------------------
  async function counties() {
    if (!state.counties) state.counties = await (await fetch("/console/boundaries.geojson")).json();
    return state.counties;
  }
  // every outer ring of a Polygon or MultiPolygon (county exclaves included)
  const outerRings = g => g.type === "MultiPolygon" ? g.coordinates.map(p => p[0]) : g.type === "Polygon" ? [g.coordinates[0]] : [];

  function project(bounds, W, H, pad) {
    // equirectangular, x shrunk by cos(latitude): true shapes at this scale
    const k = Math.cos((bounds.s + bounds.n) / 2 * Math.PI / 180);
    const sx = (W - 2 * pad) / ((bounds.e - bounds.w) * k), sy = (H - 2 * pad) / (bounds.n - bounds.s);
    const s = Math.min(sx, sy);
    const ox = (W - (bounds.e - bounds.w) * k * s) / 2, oy = (H - (bounds.n - bounds.s) * s) / 2;
    return (lon, lat) => [ox + (lon - bounds.w) * k * s, oy + (bounds.n - lat) * s];
  }

  function mapSvg(net, geo) {
    const W = 640, H = 480;
    const b = { w: 180, e: -180, s: 90, n: -90 };
    const grow = (lon, lat) => { b.w = Math.min(b.w, lon); b.e = Math.max(b.e, lon); b.s = Math.min(b.s, lat); b.n = Math.max(b.n, lat); };
    net.sites.forEach(s => grow(s.lon, s.lat));
    const inCounties = geo.features.filter(f => net.sites.some(s => s.county === f.properties.name));
    inCounties.forEach(f => outerRings(f.geometry).forEach(r => r.forEach(([x, y]) => grow(x, y))));
    if (b.e - b.w < 0.02) { b.w -= 0.05; b.e += 0.05; }
    if (b.n - b.s < 0.02) { b.s -= 0.05; b.n += 0.05; }
    const P = project(b, W, H, 24);
    const polys = inCounties.map(f => {
      const rings = outerRings(f.geometry);
      const shapes = rings.map(r => `<polygon class="county" data-county="${esc(f.properties.name)}" points="${
        r.map(([x, y]) => P(x, y).map(v => v.toFixed(1)).join(",")).join(" ")}"></polygon>`).join("");
      // the label where the file says, else the middle of the largest ring's extent
      const big = rings.reduce((a, r) => r.length > a.length ? r : a, []);
      const mid = k => (Math.min(...big.map(p => p[k])) + Math.max(...big.map(p => p[k]))) / 2;
      const [lx, ly] = P(...(f.properties.label || [mid(0), mid(1)]));
      const name = state.lang === "zh" ? f.properties.name : (f.properties.name_en || f.properties.name);
      return `${shapes}<text class="county-label" x="${lx.toFixed(1)}" y="${ly.toFixed(1)}">${esc(name)}</text>`;
    }).join("");
    // draw calm sites first so warnings are never hidden under them
    const order = net.sites.slice().sort((a, c) => LEVELS.indexOf(a.level) - LEVELS.indexOf(c.level));
    const few = net.sites.length <= 12;
    const dots = order.map(s => {
      const [x, y] = P(s.lon, s.lat), r = s.level === "normal" ? 6 : 9;
      const tip = `${s.name} (${s.id}) · ${t().lv[s.level]}${s.faults.length ? " · " + t().faults + " " + s.faults.length : ""}`;
      return `<g><a href="#/site/${encodeURIComponent(s.id)}"><circle class="site" data-site="${esc(s.id)}" data-level="${esc(s.level)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}"><title>${esc(tip)}</title></circle></a>`
        + (s.faults.length ? `<circle class="fault-mark" data-site="${esc(s.id)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r + 4}"></circle>` : "")
        + (few ? `<text class="site-label" x="${(x + r + 3).toFixed(1)}" y="${(y + 4).toFixed(1)}">${esc(s.name)}</text>` : "") + "</g>";
    }).join("");
    return `<svg id="map" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t().map)}">${polys}${dots}</svg>`;
  }

  function alertItem(a, net) {
    const site = (net ? net.sites : []).find(s => s.id === a.site);
    const name = site ? site.name : (state.site && state.site.id === a.site ? state.site.name : a.site);
    const head = a.kind === "hazard" ? badge(a.level) : `<span class="badge fault">${esc(t().fault_alert)}</span>`;
    const reasons = a.kind === "hazard" ? a.reasons : [`${a.device}: ${word("fault_names", a.fault)} · ${a.detail || ""}`];
    const open = a.status === "open";
    const ack = a.acked_at ? `<span class="acked">${esc(t().acked_by)}: ${esc(a.acked_by)} ${when(a.acked_at)}</span>`
      : `<span class="unacked">${esc(t().not_acked)}</span>`;
    return `<li class="alert" data-alert="${a.id}" data-kind="${esc(a.kind)}" data-level="${esc(a.level || "")}" data-acked="${a.acked_at ? 1 : 0}" data-status="${esc(a.status)}">
      <div class="head">${head} <a href="#/site/${encodeURIComponent(a.site)}"><b>${esc(name)}</b></a> <span class="muted">A${a.id}</span>
        ${a.drill ? `<span class="badge lv-yellow">${esc(t().drill)}</span>` : ""}${a.silenced ? `<span class="muted">${esc(t().silenced)}</span>` : ""}</div>
      <ul class="reasons">${reasons.map(r => `<li>${esc(r)}</li>`).join("")}</ul>
      <div class="meta">${esc(t().opened)} ${when(a.opened_at)}${open ? "" : ` · ${esc(a.close_reason || "")} ${when(a.closed_at)}`}</div>
      ${open ? `<div class="acts">${ack}
        ${a.acked_at ? "" : `<button type="button" class="ack primary" data-alert="${a.id}">${esc(t().ack)}</button>`}
        <button type="button" class="stand-down danger" data-alert="${a.id}">${esc(t().stand_down)}</button></div>
      <form class="inline-form stand-down-form" data-alert="${a.id}" hidden>
        <input class="reason" name="reason" required placeholder="${esc(t().reason)}" data-keep="sd-${a.id}">
        <button type="submit" class="danger">${esc(t().confirm)}</button></form>` : ""}</li>`;
  }

  function alertList(alerts, net) {
    return alerts.length ? `<ul class="alerts">${alerts.map(a => alertItem(a, net)).join("")}</ul>` : `<p class="muted">${esc(t().none)}</p>`;
  }

  // keep what the officer is typing across live re-renders
  function keepInputs(fn) {
    const kept = {};
    document.querySelectorAll("[data-keep]").forEach(el => {
      const form = el.closest("form");
      kept[el.dataset.keep] = { value: el.value, open: form && !form.hidden, focus: document.activeElement === el };
    });
    fn();
    for (const [k, v] of Object.entries(kept)) {
      const el = document.querySelector(`[data-keep="${k}"]`); if (!el) continue;
      el.value = v.value; const form = el.closest("form"); if (form && v.open) form.hidden = false;
      if (v.focus) el.focus();
    }
  }

  async function renderOverview() {
    const net = state.network;
    if (!net) return;
    const geo = await counties();
    keepInputs(() => {
      view.className = "overview";
      const counts = LEVELS.slice().reverse().map(l => `<span class="count lv-${l}" data-level="${l}">${esc(t().lv[l])} <b>${net.counts[l]}</b></span>`).join("");
      const worst = net.sites.slice().sort((a, b) => LEVELS.indexOf(b.level) - LEVELS.indexOf(a.level) || a.id.localeCompare(b.id));
      view.innerHTML = `
        <section class="card counts-card"><h2>${esc(t().counts)}${net.drill ? ` <span class="badge lv-yellow">${esc(t().drill)}</span>` : ""}</h2><div class="counts">${counts}</div></section>
        <section class="card"><h2>${esc(t().map)} · ${esc(net.name)}</h2>${mapSvg(net, geo)}<p class="map-note">${esc(t().fault_ring)} · ${esc(t().approx)}</p></section>
        <section class="card"><h2>${esc(t().alerts)} (${net.alerts.length})</h2><div id="alerts">${alertList(net.alerts, net)}</div></section>
        <section class="card counts-card"><h2>${esc(t().all_sites)}</h2><div class="scroll"><table id="sites">
          <tr><th>${esc(t().site)}</th><th>${esc(t().level)}</th><th>${esc(t().county)}</th><th class="hide-narrow">${esc(t().township)}</th><th>${esc(t().last_seen)}</th><th>${esc(t().faults)}</th></tr>
          ${worst.map(s => `<tr data-site="${esc(s.id)}"><td><a href="#/site/${encodeURIComponent(s.id)}">${esc(s.name)}</a> <span class="muted">${esc(s.id)}</span></td><td>${badge(s.level)}</td><td>${esc(s.county)}</td><td class="hide-narrow">${esc(s.township)}</td><td>${when(s.last_seen)}</td><td>${s.faults.map(f => `${esc(f.device)}: ${esc(word("fault_names", f.fault))}`).join("<br>")}</td></tr>`).join("")}
        </table></div></section>`;
    });
  }

  // --- site page -----------------------------------------------------------------------------
  let siteSeq = 0;
  async function loadSite(id) {
    const seq = ++siteSeq;
    try {
      const doc = await api(`/api/v1/sites/${encodeURIComponent(id)}?hours=${state.hours}`);
      if (seq !== siteSeq || state.route.page !== "site" || state.route.id !== id) return;
      state.site = doc; renderSite();
    } catch (e) { notice(`${t().failed}: ${e.message}`); }
  }

  function rainTable(s) {
    const th = s.thresholds.rain_totals_mm || {};
    const rows = Object.entries(s.rain_totals_mm || {}).map(([h, mm]) => {
      const lv = th[h] || {};
      const reached = ["red", "orange", "yellow", "blue"].find(l => lv[l] != null && mm >= lv[l]);
      const limits = ["blue", "yellow", "orange", "red"].filter(l => lv[l] != null).map(l => `<span class="badge lv-${l}">${lv[l]}</span>`).join(" ");
      return `<tr data-window="${h}"><td>${h} h</td><td>${num(mm, " mm")} ${reached ? badge(reached) : ""}</td><td>${limits || "—"}</td></tr>`;
    }).join("");
    return `<table class="rain-totals"><tr><th>${esc(t().window)}</th><th>${esc(t().totals)}</th><th>${esc(t().threshold)}</th></tr>${rows}</table>`;
  }

  function plotCard(s, i) {
    const th = s.thresholds || {};
    const notes = [];
    if (th.rate_per_day) notes.push(`${t().rate}: ${Object.entries(th.rate_per_day).map(([l, v]) => `${t().lv[l]} ${v}`).join(", ")}`);
    if (th.change) notes.push(`${t().change}: ${t().baseline}`);
    const fc = s.forecast ? `<p class="forecast">${esc(t().forecast)}: ${when(s.forecast.failure_at)} (${esc(t().fit)} R² ${s.forecast.fit_r2.toFixed(2)})</p>` : "";
    return `<div class="plot" data-series="${esc(s.device)}:${esc(s.channel)}"><h3>${esc(t().kinds[s.kind] || s.kind)} ${esc(s.device)} · ${esc(s.channel)} ${s.level !== "normal" ? badge(s.level) : ""}</h3>
      ${fc}<div class="chart" id="chart-${i}"></div>${notes.map(n => `<p class="note">${esc(n)}</p>`).join("")}
      ${s.kind === "rain" && s.rain_totals_mm ? rainTable(s) : ""}</div>`;
  }

  function renderSite() {
    const d = state.site;
    state.plots.forEach(p => p.destroy()); state.plots = [];
    const shown = d.series.filter(s => s.judged || s.kind === "rain" && s.channel === "mm");
    keepInputs(() => {
      view.className = "site-page";
      view.innerHTML = `
        <section class="card wide" id="site-head" data-site="${esc(d.id)}" data-level="${esc(d.level)}"><a href="#/">← ${esc(t().back)}</a>
          <h2>${esc(d.name)} <span class="muted">${esc(d.id)}</span> ${badge(d.level)}</h2>
          <div class="muted">${esc(d.county)} ${esc(d.township)} · ${esc(t().hazards[d.hazard] || d.hazard)} · ${d.households} ${esc(t().households)} ${d.people} ${esc(t().people)} · ${d.lon.toFixed(4)}, ${d.lat.toFixed(4)}</div></section>
        <section class="card wide"><h2>${esc(t().site_alerts)}</h2>${alertList(d.alerts.filter(a => a.status === "open"), state.network)}</section>
        <section class="card wide"><h2>${esc(t().plots)} (<span id="window-h">${d.window_h}</span> h)
          <select id="hours" aria-label="${esc(t().window)}">${[24, 72, 168, 720].map(h => `<option value="${h}"${h === d.window_h ? " selected" : ""}>${h >= 168 ? h / 24 + " d" : h + " h"}</option>`).join("")}</select></h2>
          <div class="plots">${shown.length ? shown.map(plotCard).join("") : `<p class="muted">${esc(t().no_data)}</p>`}</div></section>
        <section class="card"><h2>${esc(t().devices)}</h2><div class="scroll"><table id="devices">
          <tr><th>${esc(t().device)}</th><th>${esc(t().battery)}</th><th>${esc(t().signal)}</th><th>${esc(t().last_seen)}</th><th>${esc(t().faults)}</th><th></th></tr>
          ${d.devices.map(v => `<tr data-device="${esc(v.id)}"><td>${esc(v.id)}<br><span class="muted">${esc(t().kinds[v.kind] || v.kind)}</span></td>
            <td>${num(v.battery_pct, "%")}</td><td>${num(v.signal)}</td><td>${when(v.last_seen)}</td>
            <td>${v.faults.map(f => `<span class="badge fault" title="${esc(f.fault)}">${esc(word("fault_names", f.fault))}</span> ${esc(f.detail)}${f.silenced ? ` (${esc(t().silenced)})` : ""}`).join("<br>") || "—"}</td>
            <td><button type="button" class="silence" data-device="${esc(v.id)}">${esc(t().silence)}</button>
              <form class="inline-form silence-form" data-device="${esc(v.id)}" hidden>
                <select name="hours" data-keep="sh-${esc(v.id)}">${[2, 8, 24, 72].map(h => `<option value="${h}">${h} ${esc(t().hours)}</option>`).join("")}</select>
                <input name="reason" required placeholder="${esc(t().reason)}" data-keep="sr-${esc(v.id)}">
                <button type="submit">${esc(t().confirm)}</button></form></td></tr>`).join("")}
        </table></div><p class="note muted">${esc(t().note_silence)}</p></section>
        <section class="card"><h2>${esc(t().notifications)}</h2><div class="scroll"><table id="notifications">
          <tr><th>${esc(t().time)}</th><th>${esc(t().role)}</th><th>${esc(t().content)}</th><th>${esc(t().status)}</th></tr>
          ${d.notifications.map(n => `<tr data-outbox="${n.id}"><td>${when(n.created)}</td><td>${esc(word("roles", n.role || n.purpose))}<br><span class="muted">${esc(n.recipient || n.device || "")}</span></td>
            <td>${esc(n.title || n.command || "")}</td><td>${esc(word("statuses", n.status))} ×${n.attempts}${n.last_error ? `<br><span class="muted">${esc(n.last_error)}</span>` : ""}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">${esc(t().none)}</td></tr>`}
        </table></div></section>`;
    });
    shown.forEach((s, i) => {
      const el = $(`#chart-${i}`);
      if (!s.t.length) { el.innerHTML = `<p class="muted">${esc(t().no_data)}</p>`; return; }
      state.plots.push(s.kind === "rain" ? Plots.bars(el, s, t()) : Plots.line(el, s, t()));
    });
  }

  // --- actions (the alert API audits each) ---------------------------------------------------
  async function act(path, body, button) {
    if (button) button.disabled = true;
    try { await api(path, body); notice(""); }
    catch (e) { notice(`${t().failed}: ${e.message}`); if (button) button.disabled = false; return; }
    await refresh();
  }

  view.addEventListener("click", e => {
    const b = e.target.closest("button"); if (!b) return;
    if (b.classList.contains("ack")) act(`/api/v1/alerts/${b.dataset.alert}/ack`, { by: operator() }, b);
    else if (b.classList.contains("stand-down")) { const f = $(`.stand-down-form[data-alert="${b.dataset.alert}"]`); f.hidden = !f.hidden; if (!f.hidden) $("input", f).focus(); }
    else if (b.classList.contains("silence")) { const f = $(`.silence-form[data-device="${CSS.escape(b.dataset.device)}"]`); f.hidden = !f.hidden; }
  });
  view.addEventListener("change", e => {
    if (e.target.id !== "hours") return;
    state.hours = Number(e.target.value); store.setItem("geowarn.hours", String(state.hours));
    loadSite(state.route.id);
  });
  view.addEventListener("submit", e => {
    const f = e.target; e.preventDefault();
    if (f.classList.contains("stand-down-form")) {
      act(`/api/v1/alerts/${f.dataset.alert}/stand-down`, { by: operator(), reason: f.reason.value.trim() }, $("button", f));
      f.reason.value = "";
    } else if (f.classList.contains("silence-form")) {
      const until = Date.now() / 1000 + Number(f.hours.value) * 3600;
      act("/api/v1/silences", { device: f.dataset.device, until, by: operator(), reason: f.reason.value.trim() }, $("button", f));
      f.reason.value = "";
    }
  });

  // --- header, routing -----------------------------------------------------------------------
  function showSettings(open) {
    const f = $("#settings"); f.hidden = !open;
    if (open) { $("#token").value = store.getItem("geowarn.token") || ""; $("#operator").value = store.getItem("geowarn.operator") || ""; }
  }
  $("#token-btn").addEventListener("click", () => showSettings($("#settings").hidden));
  $("#settings").addEventListener("submit", e => {
    e.preventDefault();
    store.setItem("geowarn.token", $("#token").value.trim());
    if ($("#operator").value.trim()) store.setItem("geowarn.operator", $("#operator").value.trim());
    showSettings(false); notice(""); refresh(); restartListen();
  });
  $("#lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; store.setItem("geowarn.lang", state.lang); applyLang(); render(); });

  function applyLang() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = t().title;
    document.querySelectorAll("[data-i18n]").forEach(el => { el.textContent = t()[el.dataset.i18n]; });
    $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
    setLive($("#live").classList.contains("on"));
  }

  function parseRoute() {
    const m = location.hash.match(/^#\/site\/(.+)$/);
    return m ? { page: "site", id: decodeURIComponent(m[1]) } : { page: "overview" };
  }
  async function refresh() {
    try {
      state.network = await api("/api/v1/network");
      if (state.route.page === "site") await loadSite(state.route.id); else renderOverview();
    } catch (e) { notice(`${t().failed}: ${e.message}`); }
  }
  function render() {
    if (state.route.page === "site") { if (state.site && state.site.id === state.route.id) renderSite(); else loadSite(state.route.id); }
    else renderOverview();
  }
  window.addEventListener("hashchange", () => { state.route = parseRoute(); state.site = null; view.innerHTML = ""; render(); window.scrollTo(0, 0); });

  let listening = null;
  function restartListen() { if (!listening) listening = listen(); }

  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => state.plots.forEach(Plots.fit), 150);
  });

  // new readings do not change the network document: a site page fetches its plots again now and then
  setInterval(() => { if (state.route.page === "site" && !document.hidden) loadSite(state.route.id); }, 30000);

  state.route = parseRoute();
  applyLang();
  refresh();
  restartListen();
})();
