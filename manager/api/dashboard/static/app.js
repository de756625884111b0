// Shoal's dashboard: read-only, fed by the manager's server-sent events (state and events).
"use strict";
const MAX_EVENTS = 200;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${Math.round(n * 100) / 100} ${units[i]}`;
}

function clock(unix) {
  return new Date(unix * 1000).toLocaleTimeString([], {hour12: false});
}

function bar(kind, used, total, show) {
  const share = total > 0 ? Math.min(100, 100 * used / total) : 0;
  return el("div", {class: `bar ${kind}`, "data-used": used, "data-total": total},
    el("div", {class: "label"}, el("span", {}, kind === "cpu" ? "CPUs" : "Memory"),
       el("span", {}, `${show(used)} / ${show(total)}`)),
    el("div", {class: "track"}, el("div", {class: "fill", style: `width: ${share.toFixed(1)}%`})));
}

function nodeCard(node) {
  const labels = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`).join(", ");
  const rows = node.containers.map(c =>
    el("tr", {class: c.state, "data-container": c.name},
       el("td", {}, c.name), el("td", {}, c.image), el("td", {class: "status"}, c.status)));
  const drained = node.availability !== "active"
    ? el("span", {class: "availability"}, node.availability) : null;
  return el("div", {class: "node", "data-node": node.name, "data-addr": node.addr},
    el("h3", {}, node.name || node.addr, drained, el("span", {class: `state ${node.state}`}, node.state)),
    el("div", {class: "addr"}, node.addr),
    labels ? el("div", {class: "labels"}, labels) : null,
    node.error ? el("div", {class: "error"}, node.error) : null,
    bar("cpu", node.cpus.used, node.cpus.total, v => Math.round(v * 100) / 100),
    bar("memory", node.memory.used, node.memory.total, bytes),
    rows.length ? el("table", {}, ...rows) : el("div", {class: "empty"}, "no containers"));
}

function placementItem(p) {
  const what = p.kind === "container" ? `${p.name || "(unnamed)"} (${p.image})` : `${p.kind} ${p.name}`.trim();
  const head = p.outcome === "placed"
    ? [`${what} → `, el("b", {}, p.node)]
    : [`${what}: no fit (${p.rule})`];
  const reasons = p.reasons.map(r => {
    const more = r.count > r.nodes.length ? ` and ${r.count - r.nodes.length} more` : "";
    return el("li", {"data-node": r.nodes.join(" ")}, `${r.nodes.join(", ")}${more}: ${r.reason}`);
  });
  if (p.unshown) reasons.push(el("li", {}, `${p.unshown} more nodes with other reasons`));
  return el("li", {class: p.outcome, "data-outcome": p.outcome},
    el("span", {class: "time"}, clock(p.time)), ...head, ` ${p.took_ms} ms`,
    reasons.length ? el("ul", {class: "reasons"}, ...reasons) : null);
}

function eventItem(e) {
  const actor = e.actor || e.id || "";
  return el("li", {"data-node": e.node},
    el("span", {class: "time"}, clock(e.time)), el("b", {}, e.node), ` ${e.type} ${e.action} ${actor}`);
}

function showSummary(c) {
  document.getElementById("summary").textContent =
    `${c.nodes} nodes, ${c.healthy} healthy · ${c.containers} containers · strategy ${c.strategy}`;
}

function showPlacements(placements) {
  document.getElementById("placements").replaceChildren(...placements.slice().reverse().map(placementItem));
}

function showNoNodes(box) {
  if (!box.querySelector(".node")) box.replaceChildren(el("div", {class: "empty"}, "no nodes yet"));
}

function showState(state) {
  const box = document.getElementById("nodes");
  showSummary(state.cluster);
  box.replaceChildren(...state.nodes.map(nodeCard));
  showNoNodes(box);
  showPlacements(state.placements);
}

// An update redraws only the cards of the nodes that changed (by address).
function showUpdate(update) {
  const box = document.getElementById("nodes");
  const card = addr => box.querySelector(`.node[data-addr="${CSS.escape(addr)}"]`);
  showSummary(update.cluster);
  box.querySelector(":scope > .empty")?.remove();
  for (const addr of update.removed) card(addr)?.remove();
  for (const node of update.nodes) {
    const old = card(node.addr);
    if (old) old.replaceWith(nodeCard(node)); else box.append(nodeCard(node));
  }
  showNoNodes(box);
  if (update.placements) showPlacements(update.placements);
}

function showEvent(event) {
  const list = document.getElementById("events");
  list.prepend(eventItem(event));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("stream");
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  source.addEventListener("error", () => { live.textContent = "reconnecting"; live.className = "live off"; });
  source.addEventListener("state", m => showState(JSON.parse(m.data)));
  source.addEventListener("update", m => showUpdate(JSON.parse(m.data)));
  source.addEventListener("event", m => showEvent(JSON.parse(m.data)));
}

connect();
