"use strict";
// The status page: fetches /api/status and draws it. Text goes in with textContent only:
// nicknames and messages come from the exchange and other people.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 15000;
  const TOKEN_KEY = "p2pbot-token";
  // The web token never travels in a URL the server sees: a link may carry it in the fragment
  // (/#token=...), which browsers do not send; else the form asks for it. It is kept for this
  // tab only (sessionStorage) and sent as `Authorization: Bearer`.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);  // out of the history
  }
  let token = sessionStorage.getItem(TOKEN_KEY);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  // Times are shown on the merchant's clock ([bot] timezone, from /api/status): by its IANA
  // name when it has one (the browser knows its daylight saving changes), else by its offset.
  let zone = null;

  function local(t) {  // {date: "2026-11-25", hm: "14:05"} on the merchant's clock
    if (zone && zone.name) {
      const f = new Intl.DateTimeFormat("en-CA", { timeZone: zone.name, year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      const p = Object.fromEntries(f.formatToParts(new Date(t * 1000)).map((x) => [x.type, x.value]));
      return { date: p.year + "-" + p.month + "-" + p.day, hm: p.hour + ":" + p.minute };
    }
    const iso = new Date((t + (zone ? zone.offset_seconds : 0)) * 1000).toISOString();
    return { date: iso.slice(0, 10), hm: iso.slice(11, 16) };
  }

  function clock(t, now) {
    if (t === null || t === undefined) return "-";
    const d = local(t);
    const sameDay = now && local(now).date === d.date;
    return sameDay ? d.hm : d.date.slice(5) + " " + d.hm;
  }

  function ago(t, now) {
    if (!t) return "";
    const s = Math.max(0, now - t);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }

  function fill(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    body.replaceChildren(...rows);
  }

  function said(code, message) {
    if (code === null && !message) return "";
    return (code !== null ? code + " " : "") + (message || "");
  }

  // --- markets: the adaptive cadence -----------------------------------------------------

  function marketRows(doc) {
    return Object.entries(doc.markets || {}).map(([name, m]) => el("tr", { "data-market": name },
      el("td", {}, name), el("td", {}, m.interval + " s"), el("td", {}, m.why)));
  }

  // --- capabilities and endpoints ------------------------------------------------------

  function capabilityRows(doc) {
    return doc.capabilities.map((c) => el("tr", { "data-capability": c.name },
      el("td", {}, c.name, c.essential ? el("span", { class: "badge", title: "needed for /readyz" }, " essential") : null),
      el("td", { class: "state " + c.state }, c.state),
      el("td", {}, c.source || "-"),
      el("td", { class: "changes", "data-says": c.state }, capabilityText(c))));
  }

  function capabilityText(c) {  // each state has its own words
    if (c.state === "enabled") return c.says || c.does;
    if (c.state === "unchecked") return "not seen working yet (tried at its first use): " + c.does;
    if (c.state === "paused") return c.says;  // a 429 pause or a 418 ban: its end, local time
    const down = (c.causes || []).map((x) => x.endpoint + " " + said(x.code, x.message)).join("; ");
    return (c.says || c.without) + (down ? " (" + down + ")" : "");
  }

  function timelineBar(ep, win) {
    const span = Math.max(1, win.to - win.from);
    const bar = svg("svg", { class: "timeline", viewBox: "0 0 1000 14", preserveAspectRatio: "none",
                             role: "img", "aria-label": ep.name + " timeline" });
    let state = ep.state_at_start;
    let from = win.from;
    const segments = [];
    for (const t of ep.timeline) {
      segments.push([from, t.at, state]);
      from = t.at;
      state = t.new;
    }
    segments.push([from, win.to, state]);
    for (const [a, b, s] of segments) {
      const x = ((a - win.from) / span) * 1000;
      const w = Math.max(1, ((b - a) / span) * 1000);
      const rect = svg("rect", { x: x.toFixed(1), y: 0, width: w.toFixed(1), height: 14, class: s });
      const title = svg("title", {});
      title.textContent = s + " from " + clock(a, win.to) + " to " + clock(b, win.to);
      rect.append(title);
      bar.append(rect);
    }
    return bar;
  }

  function changesText(ep, now) {
    if (!ep.timeline.length) return ep.since ? ep.state + " since " + clock(ep.since, now) : "no change in this window";
    return ep.timeline.slice(-4).map((t) => {
      const back = t.new === "available" && t.old !== "unknown" ? " (back)" : "";
      return clock(t.at, now) + " " + t.new + back + (t.code !== null ? " (" + t.code + ")" : "");
    }).join(" · ");
  }

  function endpointRows(doc) {
    return doc.endpoints.map((ep) => el("tr", { "data-endpoint": ep.name, "data-state": ep.state },
      el("td", {}, ep.name),
      el("td", { class: "state " + ep.state }, ep.state),
      el("td", { class: "changes" }, said(ep.code, ep.message)),
      el("td", {}, timelineBar(ep, doc.window), el("div", { class: "changes" }, changesText(ep, doc.now)))));
  }

  // --- ads ---------------------------------------------------------------------------------

  function chart(points, win) {
    const box = svg("svg", { class: "chart", viewBox: "0 0 300 90", preserveAspectRatio: "none",
                             role: "img", "aria-label": "price over the last hours" });
    const pts = points.filter((p) => p.price !== null).map((p) => [p.at, parseFloat(p.price), p.result]);
    if (pts.length < 1) return box;
    const prices = pts.map((p) => p[1]);
    let lo = Math.min(...prices), hi = Math.max(...prices);
    if (hi - lo < 1e-9) { lo -= 0.5; hi += 0.5; }
    const x = (t) => 4 + ((t - win.from) / Math.max(1, win.to - win.from)) * 292;
    const y = (v) => 80 - ((v - lo) / (hi - lo)) * 70;
    // a step line: the price holds until the next change
    const coords = [];
    pts.forEach((p, i) => {
      if (i > 0) coords.push(x(p[0]).toFixed(1) + "," + y(pts[i - 1][1]).toFixed(1));
      coords.push(x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1));
    });
    box.append(svg("polyline", { points: coords.join(" ") }));
    for (const p of pts) {
      if (p[2] === "applied") box.append(svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2 }));
    }
    const hiText = svg("text", { x: 2, y: 9 });
    hiText.textContent = hi.toFixed(2);
    const loText = svg("text", { x: 2, y: 89 });
    loText.textContent = lo.toFixed(2);
    box.append(hiText, loText);
    return box;
  }

  function adCard(ad, doc) {
    const last = ad.last;
    const rows = [
      ["rank", (ad.standing == null ? "-" : ad.standing + " among competitors that count") +
               (ad.rank == null ? "" : " (#" + ad.rank + " in search)")],
      ["best competitor", ad.best ? ad.best.nickname + " at " + ad.best.price : "-"],
      ["reference", ad.reference ? ad.reference.price + " (" + ad.reference.source + ")" : "-"],
      ["spread", ad.spread === null ? "-" : ad.spread],
      ["strategy", ad.strategy + (ad.enabled ? "" : " (disabled)")],
      ["budget", ad.budget ? ad.budget.text : "-"],
      ["own price reads", ad.settle ? (ad.settle.price ? "set " + ad.settle.price + ", lagging reads not believed until " +
                          clock(ad.settle.until, doc.now) : "believed") +
                          " (" + ad.settle.stale_reads_ignored + " lagging reads ignored so far)" : "-"],
      ["exchange band", ad.band ? (ad.band.low || "?") + " to " + (ad.band.high || "?") +
                        (ad.band.source === "bisect" ? " (finding the edge)" : "") : "-"],
      ["last decision", last ? last.result + ": " + last.reason + " (" + ago(last.at, doc.now) + repeated(last, doc.now) + ")" : "-"],
    ];
    const dl = el("dl", {});
    for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { "data-field": k }, v));
    const title = [ad.side, ad.asset && ad.fiat ? ad.asset + "/" + ad.fiat : null].filter(Boolean).join(" ");
    return el("div", { class: "card", "data-ad": ad.label },
      el("h3", {}, ad.label, " ", el("span", { class: "muted" }, title)),
      ad.problem ? el("p", { class: "error" }, ad.problem) : null,
      ad.price === null ? el("p", { class: "muted" }, "not found among your ads yet")
        : el("div", { class: "price" }, ad.price, " ", el("span", { class: "muted" }, ad.fiat || "")),
      ad.online ? null : el("p", { class: "error" }, "the ad is not online"),
      hoursLine(ad, doc),
      ad.hidden ? el("p", { class: "warn", "data-field": "hidden" }, "hidden by the exchange: " + ad.hidden) : null,
      ad.hidden_by_bot ? el("p", { class: "error", "data-field": "hidden_by_bot" },
                            "hidden by the bot (visible = 0): " + ad.hidden_by_bot) : null,
      dl,
      rivalsTable(ad.rivals || []),
      chart(ad.history, doc.window));
  }

  // its schedule ([schedule], [ads.schedule]): open, or closed until its next window
  function hoursLine(ad, doc) {
    const mine = doc.schedule ? doc.schedule.ads.find((h) => h.ad === ad.label) : null;
    if (!mine) return null;
    const next = mine.next_change ? " " + (mine.open ? "until " : "back at ") + clock(mine.next_change, doc.now) : "";
    return el("p", { class: mine.open ? "muted" : "warn", "data-field": "schedule" },
      (mine.open ? "open" : "closed (" + mine.outside + ")") + next + " · " + mine.hours +
      (mine.failed ? " · " + mine.failed : ""));
  }

  // --- trade by day: a small bar chart from /api/report ---------------------------------------

  function tradeChart(rep) {
    const days = rep.days || [];
    const w = 600, h = 110, base = 95, gap = 2;
    const box = svg("svg", { class: "trade", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none",
                             role: "img", "aria-label": "fiat traded per day" });
    const totals = days.map((d) => Number(d.sell_fiat) + Number(d.buy_fiat));  // drawing only
    const top = Math.max(1, ...totals);
    const bw = w / Math.max(1, days.length);
    days.forEach((d, i) => {
      const sell = Number(d.sell_fiat) / top * (base - 12), buy = Number(d.buy_fiat) / top * (base - 12);
      const x = (i * bw + gap).toFixed(1), width = Math.max(1, bw - 2 * gap).toFixed(1);
      const s = svg("rect", { class: "sell", x: x, y: (base - sell).toFixed(1), width: width, height: sell.toFixed(1) });
      const b = svg("rect", { class: "buy", x: x, y: (base - sell - buy).toFixed(1), width: width, height: buy.toFixed(1) });
      const tip = svg("title", {});
      tip.textContent = d.day + ": " + d.orders + " orders, sold " + d.sell_fiat + ", bought " + d.buy_fiat;
      s.append(tip.cloneNode(true));
      b.append(tip);
      const label = svg("text", { x: (i * bw + bw / 2).toFixed(1), y: h - 2, "text-anchor": "middle" });
      label.textContent = d.day.slice(8);
      box.append(s, b, label);
    });
    const t = rep.totals || {};
    return el("div", {}, box, el("p", { class: "muted" }, rep.from + " to " + rep.to + ": " + (t.orders || 0) +
      " orders, " + (t.completed || 0) + " completed, " + (t.cancelled || 0) + " cancelled · ",
      el("span", { class: "key sell" }, "sold"), " ", el("span", { class: "key buy" }, "bought"),
      " (fiat; p2pbot report for the figures)"));
  }

  // the competitors that matter (bot.pricing.rivals): who they are, what kind, how fast they answer us
  function rivalsTable(rivals) {
    if (!rivals.length) return null;
    const head = el("tr", {}, ...["rival", "kind", "price", "floor", "answers", "reprices/h", "completion"].map((h) => el("th", {}, h)));
    const rows = rivals.map((r) => el("tr", { "data-rival": r.user_no },
      el("td", {}, r.nickname || r.user_no),
      el("td", { class: "kind-" + r.kind, title: (r.decoy_signs || []).join(", ") }, r.kind),
      el("td", {}, r.price || "-"),
      el("td", {}, (r.floor || "-") + (r.at_floor ? " (at it)" : "")),
      el("td", {}, r.answers + "/" + r.chances + (r.answer_seconds == null ? "" : " in " + r.answer_seconds + " s")),
      el("td", {}, r.reprices_per_hour),
      el("td", {}, r.completion_rate + " (" + r.month_orders + "/month)")));
    return el("table", { class: "rivals" }, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // --- decisions and orders -------------------------------------------------------------

  // a decision repeated with the same inputs is one row: "x42 since 10:00"
  function repeated(d, now) {
    return d.repeats > 1 ? ", x" + d.repeats + " since " + clock(d.first_at, now) : "";
  }

  function decisionRows(doc) {
    return doc.decisions.map((d) => el("tr", {},
      el("td", {}, clock(d.at, doc.now)),
      el("td", {}, d.ad),
      el("td", { class: "result-" + d.result, "data-repeats": d.repeats },
         d.result, d.repeats > 1 ? " x" + d.repeats : null),
      el("td", {}, d.target && d.target !== d.price_before ? d.price_before + " → " + d.target : d.price_before),
      el("td", { class: "changes" }, d.reason)));
  }

  function ordersView(doc) {
    if (!doc.desk) return el("p", { class: "muted" }, "the order desk is not running");
    if (!doc.orders_known) return el("p", { class: "muted" }, "open orders are not available right now");
    if (!doc.orders.length) return el("p", { class: "muted" }, "no open order");
    const names = { 1: "trading", 2: "paid", 3: "appeal" };
    const head = el("tr", {}, ...["order", "status", "side", "amount", "total", "counterparty", "since"].map((h) => el("th", {}, h)));
    const rows = doc.orders.map((o) => el("tr", { "data-order": o.order_number },
      el("td", {}, o.order_number),
      el("td", { class: "state" }, names[o.status] || String(o.status)),
      el("td", {}, o.side || "-"),
      el("td", {}, o.amount ? o.amount + " " + (o.asset || "") : "-"),
      el("td", {}, o.total ? o.total + " " + (o.fiat || "") : "-"),
      el("td", {}, o.counterparty || "-"),
      el("td", {}, ago(o.created_at, doc.now))));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function wouldSendView(doc) {
    const head = el("tr", {}, ...["time", "order", "status", "would send"].map((h) => el("th", {}, h)));
    const rows = (doc.would_send || []).map((w) => el("tr", {},
      el("td", {}, clock(w.at, doc.now)),
      el("td", {}, w.order_number),
      el("td", {}, w.status),
      el("td", {}, w.content)));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // --- alerts and console changes -----------------------------------------------------------

  async function ackAlert(id, button) {
    button.disabled = true;
    const resp = await fetch("/api/alerts/" + encodeURIComponent(id) + "/ack", {
      method: "POST", headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
    if (!resp.ok) {
      const said = await resp.json().catch(() => ({}));
      button.disabled = false;
      button.textContent = "not acknowledged: " + (said.error || "HTTP " + resp.status);
      return;
    }
    refresh();
  }

  function alertsView(doc) {
    if (!(doc.alerts || []).length) return el("p", { class: "muted" }, "no alert waiting for an acknowledgement");
    const head = el("tr", {}, ...["id", "kind", "since", "sent", "alert", ""].map((h) => el("th", {}, h)));
    const rows = doc.alerts.map((a) => {
      const button = el("button", { type: "button" }, "acknowledge");
      button.addEventListener("click", () => ackAlert(a.id, button));
      return el("tr", { "data-alert": String(a.id) },
        el("td", {}, String(a.id)), el("td", {}, a.kind), el("td", {}, ago(a.first_at, doc.now)),
        el("td", {}, String(a.sent)), el("td", { class: "changes" }, a.text), el("td", {}, button));
    });
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function overridesView(doc) {
    if (!(doc.overrides || []).length) return el("p", { class: "muted" }, "no console change: the bot runs the file as it is");
    const items = doc.overrides.map((o) => el("li", {},
      (o.ad ? "ad " + o.ad : "the bot") + ": " + o.key + " = " + o.value + (o.set_by ? " (by " + o.set_by + ")" : "")));
    return el("div", {}, el("p", {}, "Console changes on top of the file (/clear in the console forgets them):"), el("ul", {}, ...items));
  }

  // --- the page ------------------------------------------------------------------------------

  function draw(doc) {
    zone = doc.timezone || null;
    const ready = document.getElementById("ready");
    ready.textContent = doc.ready ? "ready" : "not ready: " + doc.essential_down.join(", ") + " down";
    ready.className = "pill " + (doc.ready ? "ok" : "bad");
    const flags = [];
    if (doc.dry_run) flags.push(el("span", { class: "badge" }, "dry run"));
    if (doc.kill_switch) flags.push(el("span", { class: "badge" }, "kill switch on"));
    document.getElementById("flags").replaceChildren(...flags);
    const now = local(doc.now);
    document.getElementById("clock").textContent = now.date + " " + now.hm + " " + (zone ? zone.label : "UTC");
    document.getElementById("window").textContent = "(since " + clock(doc.window.from, doc.now) + ")";
    const ads = document.getElementById("ads");
    ads.replaceChildren(...(doc.ads.length ? doc.ads.map((a) => adCard(a, doc)) : [el("p", { class: "muted" }, "no ad configured")]));
    fill("markets", marketRows(doc));
    fill("capabilities", capabilityRows(doc));
    fill("endpoints", endpointRows(doc));
    fill("decisions", decisionRows(doc));
    document.getElementById("orders").replaceChildren(ordersView(doc));
    document.getElementById("console").hidden = !((doc.alerts || []).length || (doc.overrides || []).length);
    document.getElementById("alerts").replaceChildren(alertsView(doc));
    document.getElementById("overrides").replaceChildren(overridesView(doc));
    document.getElementById("dry").hidden = !(doc.would_send || []).length;
    document.getElementById("would-send").replaceChildren(wouldSendView(doc));
    document.getElementById("error").hidden = true;
  }

  function askForToken(wrong) {
    const form = document.getElementById("login");
    form.hidden = false;
    document.getElementById("login-said").textContent = wrong
      ? "this token was refused: enter the bot's web token (P2PBOT_WEB_TOKEN)"
      : "the bot needs its web token (P2PBOT_WEB_TOKEN)";
  }

  async function refresh() {
    try {
      const resp = await fetch("/api/status", { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
      if (resp.status === 401) {
        askForToken(Boolean(token));
        throw new Error("unauthorised");
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      document.getElementById("login").hidden = true;
      draw(await resp.json());
      const rep = await fetch("/api/report", { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
      if (rep.ok) document.getElementById("report").replaceChildren(tradeChart(await rep.json()));
    } catch (err) {
      const box = document.getElementById("error");
      box.textContent = "cannot read the bot's status: " + err.message;
      box.hidden = false;
    }
  }

  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();  // nothing is submitted anywhere: the token stays in this tab
    const input = document.getElementById("token");
    token = input.value.trim();
    input.value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    refresh();
  });

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
