// nmt attention explorer: the browser side of the TensorBoard plugin "nmt_attention".
// A plain ES module (no framework, no build step). render() builds the whole page into
// document.body: a controls bar, a sentence picker, attention grids (piece/word mode, gold links,
// coverage, per-head grids, run-vs-run), the beam-search tree and a live "what if" box.
// It talks to the backend through the JSON routes runs / sentences / sentence / translate
// (relative URLs, documented in ../plugin.py). Untrusted text (sentences, pieces) is only set via textContent.

const CELL_PX = 22;            // main grid cell size; cells never shrink, the container scrolls
const HEAD_CELL_PX = 14;       // per-head grids
const SOURCE_PREVIEW_CHARS = 90;
const STEP_DEBOUNCE_MS = 120;
const WORD_MODE_NOTE =
  "words: a source word's weight is the sum over its pieces; a target word's row is the mean of its pieces' rows";

const state = {
  runs: [],            // [{run, tags, live}]
  run: null,
  tag: null,
  step: null,          // step of the loaded sentence list
  steps: [],
  sentences: [],       // summaries of the loaded list
  index: null,         // selected sentence index
  view: "reference",   // preferred view; falls back to what the record has
  mode: "piece",       // "piece" | "word"
  compareRun: "",      // "" = no comparison
  showHeads: false,
  search: "",
  sort: "index",
  live: null,          // {record, text, run} while a live translation is displayed
  busy: false,         // a translate request is in flight (only one at a time)
};

const listCache = new Map();    // "run|tag|step" -> sentences response
const recordCache = new Map();  // "run|tag|step|index" -> sentence record
const ui = {};                  // element references
let loadSeq = 0;                // guards against out-of-order responses
let lastDrawn = null;           // {record, compare} of the current display, for cheap redraws

// ---------------------------------------------------------------- small helpers

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function routeUrl(route, params) {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}=${encodeURIComponent(value)}`);
  return parts.length ? `${route}?${parts.join("&")}` : route;
}

async function fetchJson(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`network error: ${err.message}`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!response.ok || body === null) {
    const detail = body && body.error ? body.error : `HTTP ${response.status} for ${url}`;
    throw new Error(detail);
  }
  return body;
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

function showStatus(message, isError = false) {
  ui.status.textContent = message || "";
  ui.status.classList.toggle("error-line", Boolean(isError && message));
}

// Viridis, 11 anchors interpolated into a 256-entry lookup table.
const VIRIDIS_ANCHORS = [
  [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142], [32, 144, 140],
  [34, 167, 132], [68, 190, 112], [121, 209, 81], [189, 222, 38], [253, 231, 37],
];
const VIRIDIS_LUT = Array.from({ length: 256 }, (_, i) => {
  const pos = (i / 255) * (VIRIDIS_ANCHORS.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, VIRIDIS_ANCHORS.length - 1);
  const f = pos - lo;
  const rgb = VIRIDIS_ANCHORS[lo].map((c, k) => Math.round(c + (VIRIDIS_ANCHORS[hi][k] - c) * f));
  return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
});

function viridis(weight) {
  const clamped = Math.min(1, Math.max(0, Number(weight) || 0));
  return VIRIDIS_LUT[Math.round(clamped * 255)];
}

// ---------------------------------------------------------------- data access (cached)

async function getSentenceList(run, tag, step) {
  const key = `${run}|${tag}|${step ?? "latest"}`;
  if (!listCache.has(key)) {
    const data = await fetchJson(routeUrl("sentences", { run, tag, step }));
    listCache.set(key, data);
    listCache.set(`${run}|${tag}|${data.step}`, data);
  }
  return listCache.get(key);
}

async function getRecord(run, tag, step, index) {
  const key = `${run}|${tag}|${step}|${index}`;
  if (!recordCache.has(key)) {
    recordCache.set(key, await fetchJson(routeUrl("sentence", { run, tag, step, index })));
  }
  return recordCache.get(key);
}

// The comparison run's latest step <= the chosen step, else its latest step.
async function getCompareRecord(run, tag, step, index) {
  const info = state.runs.find((r) => r.run === run);
  if (!info || !info.tags.includes(tag)) return { run, error: `run ${run} has no tag "${tag}"` };
  try {
    const latest = await getSentenceList(run, tag, null);
    const earlier = latest.steps.filter((s) => s <= step);
    const compareStep = earlier.length ? earlier[earlier.length - 1] : latest.step;
    const record = await getRecord(run, tag, compareStep, index);
    return { run, step: compareStep, record };
  } catch (err) {
    return { run, error: err.message };
  }
}

// ---------------------------------------------------------------- piece / word model

// Groups pieces by word index (order of first appearance); "</s>" (-1) stays alone.
function groupPieces(pieces, words) {
  const groups = [];
  const byWord = new Map();
  pieces.forEach((piece, i) => {
    const word = Array.isArray(words) ? words[i] : i;
    let group = word === -1 ? null : byWord.get(word);
    if (!group) {
      group = { word, pieces: [] };
      groups.push(group);
      if (word !== -1) byWord.set(word, group);
    }
    group.pieces.push(i);
  });
  for (const group of groups) {
    group.label = group.word === -1
      ? pieces[group.pieces[0]]
      : group.pieces.map((i) => pieces[i]).join("").replaceAll("▁", "");
  }
  return groups;
}

function pieceGroups(pieces, words) {
  return pieces.map((piece, i) => ({
    word: Array.isArray(words) ? words[i] : i, pieces: [i], label: piece,
  }));
}

// weight(row group, col group) = mean over the row's pieces of the sum over the column's pieces.
function mergeMatrix(matrix, rowGroups, colGroups) {
  return rowGroups.map((rowGroup) => colGroups.map((colGroup) => {
    let total = 0;
    for (const t of rowGroup.pieces) for (const s of colGroup.pieces) total += matrix[t][s];
    return total / rowGroup.pieces.length;
  }));
}

function goldLookup(gold) {
  if (!gold) return null;
  const links = new Map();
  for (const [sw, tw] of gold.possible || []) links.set(`${sw},${tw}`, "gold-possible");
  for (const [sw, tw] of gold.sure || []) links.set(`${sw},${tw}`, "gold-sure");
  return links;
}

// Everything a grid needs, in piece or word mode.
function buildModel(view, mode) {
  const byWord = mode === "word";
  const cols = byWord ? groupPieces(view.src, view.src_words) : pieceGroups(view.src, view.src_words);
  const rows = byWord ? groupPieces(view.tgt, view.tgt_words) : pieceGroups(view.tgt, view.tgt_words);
  const merge = (matrix) => (byWord ? mergeMatrix(matrix, rows, cols) : matrix);
  return {
    cols,
    rows,
    weights: merge(view.attn),
    heads: Array.isArray(view.heads) ? view.heads.map(merge) : null,
    gold: goldLookup(view.gold),
  };
}

function goldClass(model, row, col) {
  if (!model.gold) return null;
  const tw = model.rows[row].word;
  const sw = model.cols[col].word;
  if (tw === -1 || sw === -1) return null;
  return model.gold.get(`${sw},${tw}`) || null;
}

function columnSums(matrix) {
  const sums = new Array(matrix.length ? matrix[0].length : 0).fill(0);
  for (const row of matrix) row.forEach((w, c) => { sums[c] += w; });
  return sums;
}

// ---------------------------------------------------------------- attention grid

// One grid: column labels, rows (label + cells), coverage row. Returns the scroll container.
function buildGrid(model, matrix, { cellPx = CELL_PX, head = null, onRowClick = null } = {}) {
  const grid = el("div", { class: "attn-grid" });
  grid.style.setProperty("--cell", `${cellPx}px`);
  grid.style.gridTemplateColumns = `max-content repeat(${model.cols.length}, ${cellPx}px)`;
  if (cellPx < CELL_PX) grid.classList.add("attn-grid-small");

  const frag = document.createDocumentFragment();
  frag.append(el("div", { class: "attn-corner" }));
  model.cols.forEach((col, c) => {
    frag.append(el("div", { class: "attn-col-label", "data-col": c, title: col.label, text: col.label }));
  });
  matrix.forEach((weights, r) => {
    const label = model.rows[r].label;
    frag.append(el("div", { class: "attn-row-label", "data-row": r, title: label, text: label }));
    weights.forEach((w, c) => frag.append(buildCell(w, r, c, goldClass(model, r, c))));
  });
  appendCoverageRow(frag, columnSums(matrix));
  grid.append(frag);

  const scroller = el("div", { class: "attn-grid-scroll" }, [grid]);
  attachGridEvents(scroller, grid, model, head, onRowClick);
  return scroller;
}

const CELL_TEMPLATE = document.createElement("div");

// Cloning a template and setting attribute strings is the fastest way to make ~20k cells.
function buildCell(weight, row, col, gold) {
  const cell = CELL_TEMPLATE.cloneNode(false);
  cell.setAttribute("class", gold ? `attn-cell ${gold}` : "attn-cell");
  cell.setAttribute("data-row", row);
  cell.setAttribute("data-col", col);
  cell.setAttribute("data-weight", weight.toFixed(3));
  cell.setAttribute("style", `background-color:${viridis(weight)}`);
  return cell;
}

function appendCoverageRow(frag, sums) {
  const max = Math.max(1, ...sums);
  frag.append(el("div", { class: "attn-coverage-label", title: "attention summed over target steps", text: "coverage" }));
  sums.forEach((total, c) => {
    const bar = el("div", { class: "attn-coverage-bar" });
    bar.style.height = `${Math.round((total / max) * 100)}%`;
    bar.style.backgroundColor = viridis(Math.min(total, 1));
    frag.append(el("div", {
      class: "attn-coverage", "data-col": c, "data-coverage": total.toFixed(3),
      title: `coverage ${total.toFixed(3)}`,
    }, [bar, el("span", { class: "attn-coverage-value", text: total.toFixed(1) })]));
  });
}

// Tooltip on hover and row selection via event delegation (one listener per grid, not per cell).
function attachGridEvents(scroller, grid, model, head, onRowClick) {
  scroller.addEventListener("mouseover", (event) => {
    const cell = event.target.closest(".attn-cell");
    if (!cell) return hideTooltip();
    const r = Number(cell.dataset.row);
    const c = Number(cell.dataset.col);
    let text = `source: ${model.cols[c].label} · target: ${model.rows[r].label} · weight: ${cell.dataset.weight}`;
    if (head !== null) text += ` · head ${head + 1}`;
    showTooltip(text, event);
  });
  scroller.addEventListener("mousemove", (event) => {
    if (ui.tooltip.style.display === "block") placeTooltip(event);
  });
  scroller.addEventListener("mouseleave", hideTooltip);
  scroller.addEventListener("click", (event) => {
    const label = event.target.closest(".attn-row-label");
    if (!label) return;
    const row = Number(label.dataset.row);
    highlightRow(grid, row);
    if (onRowClick) onRowClick(row);
  });
}

function highlightRow(grid, row) {
  for (const node of grid.querySelectorAll(".attn-row-selected")) node.classList.remove("attn-row-selected");
  for (const node of grid.querySelectorAll(`[data-row="${row}"]`)) node.classList.add("attn-row-selected");
  grid.classList.add("has-selected-row");
}

function showTooltip(text, event) {
  ui.tooltip.textContent = text;
  ui.tooltip.style.display = "block";
  placeTooltip(event);
}

function placeTooltip(event) {
  const pad = 14;
  const box = ui.tooltip.getBoundingClientRect();
  const x = Math.min(event.clientX + pad, window.innerWidth - box.width - 4);
  const y = event.clientY + pad + box.height > window.innerHeight
    ? event.clientY - box.height - pad : event.clientY + pad;
  ui.tooltip.style.left = `${Math.max(0, x)}px`;
  ui.tooltip.style.top = `${Math.max(0, y)}px`;
}

function hideTooltip() {
  ui.tooltip.style.display = "none";
}

// ---------------------------------------------------------------- row detail (source text, top-k)

function buildSourceText(model, matrix, row) {
  const weights = matrix[row];
  const max = Math.max(...weights) || 1;
  const box = el("div", { class: "attn-source-text" }, [
    el("span", { class: "attn-source-caption", text: `target “${model.rows[row].label}” attends to: ` }),
  ]);
  model.cols.forEach((col, c) => {
    if (c > 0 && model.cols[c - 1].word !== col.word) box.append(" ");  // space between words
    const text = col.label === "</s>" ? col.label : col.label.replaceAll("▁", "");
    const span = el("span", { class: "attn-source-token", title: `weight: ${weights[c].toFixed(3)}`, text });
    span.style.backgroundColor = `rgba(255, 143, 0, ${(weights[c] / max).toFixed(3)})`;
    box.append(span);
  });
  return box;
}

// Alternatives of the first piece of the clicked row (view.topk is per target piece).
function buildTopkPanel(view, model, row, live) {
  const pieceRow = model.rows[row].pieces[0];
  const alternatives = view.topk && view.topk[pieceRow];
  if (!alternatives) return null;
  const panel = el("div", { class: "topk-panel" }, [
    el("div", { class: "topk-caption", text: `top-${alternatives.length} at output step ${pieceRow}` +
      (live ? " (click one to re-decode from there)" : "") }),
  ]);
  const chosenId = view.ids ? view.ids[pieceRow] : null;
  for (const alt of alternatives) {
    const label = `${alt.piece}  ${fmt(alt.prob)}`;
    const item = live
      ? el("button", { type: "button", class: "topk-alt", disabled: state.busy, text: label })
      : el("span", { class: "topk-alt", text: label });
    if (alt.id === chosenId) item.classList.add("topk-chosen");
    if (live) {
      item.addEventListener("click", () => {
        const prefix = [...view.ids.slice(0, pieceRow), alt.id];
        requestTranslation(live.text, prefix, live.run);
      });
    }
    panel.append(item);
  }
  return panel;
}

// ---------------------------------------------------------------- attention panel (title + grid)

function buildAttentionPanel(record, viewName, { title, withHeads, live }) {
  const view = record.views[viewName];
  const model = buildModel(view, state.mode);
  const detail = el("div", { class: "row-detail" });
  const onRowClick = (row) => {
    const topk = viewName === "hypothesis" ? buildTopkPanel(view, model, row, live) : null;
    detail.replaceChildren(buildSourceText(model, model.weights, row), ...(topk ? [topk] : []));
  };
  const panel = el("section", { class: "attn-panel" }, [
    el("h3", { class: "panel-title", text: title }),
    model.gold ? buildGoldLegend() : null,
    detail,
    buildGrid(model, model.weights, { onRowClick }),
  ]);
  if (withHeads && model.heads) panel.append(buildHeadGrids(model));
  return panel;
}

function buildGoldLegend() {
  return el("div", { class: "gold-legend" }, [
    el("span", { class: "legend-swatch gold-sure" }), " sure gold link  ",
    el("span", { class: "legend-swatch gold-possible" }), " possible gold link",
  ]);
}

// Head grids are built one per task after the main grid, so the main grid shows at once.
function buildHeadGrids(model) {
  const box = el("div", { class: "head-grids" });
  const addHead = (k) => {
    if (k >= model.heads.length || (k > 0 && !box.isConnected)) return;
    box.append(el("div", { class: "head-grid" }, [
      el("h4", { class: "head-title", text: `head ${k + 1}` }),
      buildGrid(model, model.heads[k], { cellPx: HEAD_CELL_PX, head: k }),
    ]));
    setTimeout(() => addHead(k + 1), 0);
  };
  setTimeout(() => addHead(0), 0);
  return box;
}

// ---------------------------------------------------------------- beam tree (SVG)

const SVG_NS = "http://www.w3.org/2000/svg";
const BEAM_BOX = { w: 64, h: 20, gapX: 30, gapY: 8, pad: 8 };

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// Rows within a depth follow their parent's row, then the score (best first).
function layoutBeam(nodes) {
  const byDepth = new Map();
  for (const node of nodes) {
    if (!byDepth.has(node.depth)) byDepth.set(node.depth, []);
    byDepth.get(node.depth).push(node);
  }
  const position = new Map();
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    const column = byDepth.get(depth);
    column.sort((a, b) => ((position.get(a.parent) ?? 0) - (position.get(b.parent) ?? 0)) || (b.score - a.score));
    column.forEach((node, i) => position.set(node.id, i));
  }
  const maxDepth = Math.max(...byDepth.keys());
  const maxRows = Math.max(...[...byDepth.values()].map((c) => c.length));
  return { position, maxDepth, maxRows };
}

function buildBeamTree(beam) {
  const { w, h, gapX, gapY, pad } = BEAM_BOX;
  const { position, maxDepth, maxRows } = layoutBeam(beam.nodes);
  const best = new Set(beam.best || []);
  const byId = new Map(beam.nodes.map((n) => [n.id, n]));
  const xOf = (node) => pad + node.depth * (w + gapX);
  const yOf = (node) => pad + position.get(node.id) * (h + gapY);
  const root = svg("svg", {
    class: "beam-tree",
    width: pad * 2 + (maxDepth + 1) * (w + gapX),
    height: pad * 2 + maxRows * (h + gapY),
  });
  for (const node of beam.nodes) {
    const parent = byId.get(node.parent);
    if (!parent) continue;
    const x1 = xOf(parent) + w, y1 = yOf(parent) + h / 2, x2 = xOf(node), y2 = yOf(node) + h / 2;
    const onBest = best.has(node.id) && best.has(parent.id);
    root.append(svg("path", {
      class: onBest ? "beam-edge beam-best" : "beam-edge",
      d: `M${x1},${y1} C${x1 + gapX / 2},${y1} ${x2 - gapX / 2},${y2} ${x2},${y2}`,
    }));
  }
  for (const node of beam.nodes) root.append(buildBeamNode(node, xOf(node), yOf(node), best.has(node.id)));
  return root;
}

function buildBeamNode(node, x, y, onBest) {
  const { w, h } = BEAM_BOX;
  const classes = ["beam-node"];
  if (node.final !== null && node.final !== undefined) classes.push("beam-final");
  if (onBest) classes.push("beam-best");
  const group = svg("g", { class: classes.join(" "), "data-node": node.id, transform: `translate(${x},${y})` });
  const title = svg("title");
  title.textContent = `${node.piece} · score ${fmt(node.score)}` +
    (node.final !== null && node.final !== undefined ? ` · final rank ${node.final}` : "");
  const text = svg("text", { x: 4, y: h / 2 + 4 });
  text.textContent = node.piece.length > 9 ? `${node.piece.slice(0, 8)}…` : node.piece;
  group.append(title, svg("rect", { width: w, height: h, rx: 3 }), text);
  if (node.final !== null && node.final !== undefined) {
    const rank = svg("text", { class: "beam-rank", x: w + 3, y: h / 2 + 4 });
    rank.textContent = `#${node.final}`;
    group.append(rank);
  }
  return group;
}

function buildBeamPanel(beam) {
  return el("section", { class: "beam-panel" }, [
    el("h3", { class: "panel-title", text: `beam search (size ${beam.beam_size})` }),
    el("div", { class: "beam-legend", text: "bold: chosen output · red: finished hypotheses (#rank) · hover: score" }),
    el("div", { class: "beam-scroll" }, [buildBeamTree(beam)]),
  ]);
}

// Validation logs the greedy output it scored, without a search tree or alternatives: offer
// to search the sentence live (beam tree, top-k, "what if") with the run's checkpoint.
function buildSearchLivePanel(record) {
  const info = state.runs.find((r) => r.run === state.run);
  const button = el("button", { type: "button", id: "search-live", text: "search this sentence live" });
  button.disabled = !(info && info.live);
  button.addEventListener("click", () => {
    ui.liveInput.value = record.source;
    requestTranslation(record.source);
  });
  return el("section", { class: "beam-panel" }, [
    el("h3", { class: "panel-title", text: "beam search" }),
    el("div", { class: "beam-legend", text:
      "validation logs the greedy output it scored; the beam tree and the top-k alternatives " +
      "come from a live search with the run's checkpoint" }),
    button,
  ]);
}

// ---------------------------------------------------------------- display (title, grids, beam)

function pickView(record) {
  if (state.live) return "hypothesis";
  if (record.views[state.view]) return state.view;
  return record.views.reference ? "reference" : "hypothesis";
}

function recordTitle(record) {
  if (state.live) return `live translation · run ${state.live.run}`;
  return `sentence #${record.index} · run ${state.run} · ${state.tag} · step ${record.step}`;
}

function recordAer(record, viewName) {
  const reference = record.views.reference;
  if (reference && reference.aer !== null && reference.aer !== undefined) return reference.aer;
  return record.views[viewName].aer ?? null;
}

function buildRecordHeader(record, viewName) {
  const aer = recordAer(record, viewName);
  const view = record.views[viewName];
  const title = el("h2", { class: "record-title" }, [
    el("span", { text: recordTitle(record) }),
    state.live && aer === null ? null : el("span", { class: "record-aer", text: `AER ${fmt(aer)}` }),
    el("span", { class: "record-entropy", text: `entropy ${fmt(view.entropy)}` }),
  ]);
  if (state.live) {
    const back = el("button", { type: "button", id: "back-to-logged", text: "back to logged sentence" });
    back.addEventListener("click", () => { state.live = null; showCurrent(); });
    title.append(back);
  }
  const lines = [["source", record.source], ["reference", record.reference], ["hypothesis", record.hypothesis]]
    .filter(([, text]) => text !== null && text !== undefined)
    .map(([name, text]) => el("div", { class: "record-line" }, [
      el("span", { class: "record-line-name", text: `${name}: ` }), el("span", { text }),
    ]));
  return el("div", { class: "record-header" }, [title, ...lines]);
}

function buildComparePanel(compare, viewName) {
  const title = `run ${compare.run}` + (compare.step !== undefined ? ` · step ${compare.step}` : "");
  if (compare.error) {
    return el("section", { class: "attn-panel" }, [
      el("h3", { class: "panel-title", text: title }),
      el("div", { class: "error-line", text: compare.error }),
    ]);
  }
  if (!compare.record.views[viewName]) {
    return el("section", { class: "attn-panel" }, [
      el("h3", { class: "panel-title", text: title }),
      el("div", { class: "note", text: `no ${viewName} view for this sentence in run ${compare.run}` }),
    ]);
  }
  return buildAttentionPanel(compare.record, viewName, { title, withHeads: false, live: null });
}

function drawDisplay(record, compare) {
  lastDrawn = { record, compare };
  hideTooltip();
  const viewName = pickView(record);
  const view = record.views[viewName];
  syncViewControls(record, viewName);
  const mainTitle = state.live ? "live" : `run ${state.run} · step ${record.step}`;
  const row = el("div", { class: "display-row" }, [
    buildAttentionPanel(record, viewName, {
      title: mainTitle, withHeads: state.showHeads, live: state.live,
    }),
  ]);
  if (compare) row.append(buildComparePanel(compare, viewName));
  if (record.beam && record.beam.nodes && record.beam.nodes.length) row.append(buildBeamPanel(record.beam));
  else if (!state.live) row.append(buildSearchLivePanel(record));
  ui.display.replaceChildren(buildRecordHeader(record, viewName), row);
  ui.headsControl.hidden = !(view.heads && view.heads.length);
  // User Timing mark: how long the tab takes to show its first grid (scripts/attention_screenshot.py)
  if (!performance.getEntriesByName("nmt-first-grid").length) performance.mark("nmt-first-grid");
}

function redraw() {
  if (lastDrawn) drawDisplay(lastDrawn.record, lastDrawn.compare);
}

async function showCurrent() {
  const seq = ++loadSeq;
  if (state.live) {
    drawDisplay(state.live.record, null);
    markSelectedRow();
    return;
  }
  if (state.index === null) {
    lastDrawn = null;
    ui.display.replaceChildren(el("div", { class: "note", text: "No sentence logged for this run/tag/step." }));
    return;
  }
  const { run, tag, step, index } = state;
  try {
    const [record, compare] = await Promise.all([
      getRecord(run, tag, step, index),
      state.compareRun ? getCompareRecord(state.compareRun, tag, step, index) : null,
    ]);
    if (seq !== loadSeq) return;
    showStatus("");
    drawDisplay(record, compare);
  } catch (err) {
    if (seq === loadSeq) showStatus(`could not load sentence ${index}: ${err.message}`, true);
  }
  markSelectedRow();
}

// ---------------------------------------------------------------- sentence picker

function matchesSearch(sentence, needle) {
  if (!needle) return true;
  return [sentence.source, sentence.reference, sentence.hypothesis]
    .some((text) => typeof text === "string" && text.toLowerCase().includes(needle));
}

const SORTERS = {
  index: (a, b) => a.index - b.index,
  aer: (a, b) => {
    const an = a.aer === null || a.aer === undefined, bn = b.aer === null || b.aer === undefined;
    if (an || bn) return an - bn || a.index - b.index;
    return a.aer - b.aer || a.index - b.index;
  },
  length: (a, b) => a.src_len - b.src_len || a.index - b.index,
  entropy: (a, b) => b.entropy - a.entropy || a.index - b.index,
};

function renderSentenceList() {
  const needle = state.search.trim().toLowerCase();
  const shown = state.sentences.filter((s) => matchesSearch(s, needle)).sort(SORTERS[state.sort]);
  const frag = document.createDocumentFragment();
  for (const sentence of shown) {
    const source = sentence.source || "";
    frag.append(el("div", { class: "sentence-row", "data-index": sentence.index, title: source }, [
      el("span", { class: "sentence-index", text: `#${sentence.index}` }),
      el("span", { class: "sentence-aer", text: `AER ${fmt(sentence.aer, 2)}` }),
      el("span", { class: "sentence-source", text: source.length > SOURCE_PREVIEW_CHARS
        ? `${source.slice(0, SOURCE_PREVIEW_CHARS)}…` : source }),
    ]));
  }
  ui.list.replaceChildren(frag);
  ui.listCount.textContent = `${shown.length} of ${state.sentences.length} sentences`;
  markSelectedRow();
}

function markSelectedRow() {
  for (const row of ui.list.querySelectorAll(".sentence-row")) {
    row.classList.toggle("selected", !state.live && Number(row.dataset.index) === state.index);
  }
}

function selectSentence(index) {
  state.index = index;
  state.live = null;
  showCurrent();
}

// ---------------------------------------------------------------- loading runs / steps

async function loadStep(step) {
  const seq = ++loadSeq;
  const { run, tag } = state;
  let data;
  try {
    data = await getSentenceList(run, tag, step);
  } catch (err) {
    if (seq === loadSeq) showStatus(`could not load sentences of ${run}/${tag}: ${err.message}`, true);
    return;
  }
  if (seq !== loadSeq) return;
  state.step = data.step;
  state.steps = data.steps || [data.step];
  state.sentences = data.sentences || [];
  if (!state.sentences.some((s) => s.index === state.index)) {
    state.index = state.sentences.length ? Math.min(...state.sentences.map((s) => s.index)) : null;
  }
  state.live = null;
  syncStepSlider();
  renderSentenceList();
  await showCurrent();
}

function selectRun(run) {
  const info = state.runs.find((r) => r.run === run);
  state.run = run;
  state.tag = info.tags.includes("valid") ? "valid" : info.tags[0];
  if (state.compareRun === run) state.compareRun = "";
  syncRunControls();
  loadStep(null);
}

async function loadRuns() {
  let data;
  try {
    data = await fetchJson("runs");
  } catch (err) {
    showStatus(`could not load runs: ${err.message}`, true);
    return;
  }
  state.runs = (data.runs || []).filter((r) => r.tags && r.tags.length);
  if (!state.runs.length) {
    showStatus("No attention data logged yet (run validation or nmt-translate with attention logging).");
    return;
  }
  selectRun(state.runs[0].run);
}

// ---------------------------------------------------------------- live "what if" translation

async function requestTranslation(text, prefix = null, run = state.run) {
  if (state.busy) return;
  if (!text.trim()) {
    ui.liveError.textContent = "type a sentence first";
    return;
  }
  setBusy(true);
  ui.liveError.textContent = "";
  try {
    const url = routeUrl("translate", { run, text, prefix: prefix ? prefix.join(",") : null });
    const record = await fetchJson(url);
    state.live = { record, text, run };
    loadSeq++;  // a pending logged-sentence load must not overwrite this
    drawDisplay(record, null);
    markSelectedRow();
  } catch (err) {
    ui.liveError.textContent = err.message;
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  state.busy = busy;
  ui.liveStatus.textContent = busy ? "translating…" : "";
  syncLiveControls();
  for (const button of document.querySelectorAll("button.topk-alt")) button.disabled = busy;
}

// ---------------------------------------------------------------- controls

function labelled(text, control) {
  return el("label", { class: "control" }, [el("span", { class: "control-name", text }), control]);
}

function toggleButtons(name, options, onPick) {
  const box = el("div", { class: "toggle", role: "group" });
  for (const option of options) {
    const button = el("button", { type: "button", id: `${name}-${option}`, "data-value": option, text: option });
    button.addEventListener("click", () => onPick(option));
    box.append(button);
  }
  return box;
}

function setPressed(box, value) {
  for (const button of box.querySelectorAll("button")) {
    const on = button.dataset.value === value;
    button.classList.toggle("active", on);
    button.setAttribute("aria-pressed", String(on));
  }
}

function buildControls() {
  ui.runSelect = el("select", { id: "run-select" });
  ui.runSelect.addEventListener("change", () => selectRun(ui.runSelect.value));

  ui.tagSelect = el("select", { id: "tag-select" });
  ui.tagSelect.addEventListener("change", () => { state.tag = ui.tagSelect.value; loadStep(null); });

  ui.stepSlider = el("input", { id: "step-slider", type: "range", min: 0, max: 0, step: 1, value: 0 });
  ui.stepLabel = el("span", { id: "step-label", class: "step-label" });
  let stepTimer = null;
  ui.stepSlider.addEventListener("input", () => {
    const step = state.steps[Number(ui.stepSlider.value)];
    ui.stepLabel.textContent = String(step);
    clearTimeout(stepTimer);
    stepTimer = setTimeout(() => loadStep(step), STEP_DEBOUNCE_MS);
  });

  ui.viewToggle = toggleButtons("view", ["reference", "hypothesis"], (view) => {
    state.view = view;
    redraw();
  });
  ui.modeToggle = toggleButtons("mode", ["piece", "word"], (mode) => {
    state.mode = mode;
    setPressed(ui.modeToggle, mode);
    redraw();
  });
  setPressed(ui.modeToggle, state.mode);

  ui.compareSelect = el("select", { id: "compare-select" });
  ui.compareSelect.addEventListener("change", () => {
    state.compareRun = ui.compareSelect.value;
    showCurrent();
  });

  ui.headsCheckbox = el("input", { id: "heads-checkbox", type: "checkbox" });
  ui.headsCheckbox.addEventListener("change", () => { state.showHeads = ui.headsCheckbox.checked; redraw(); });
  ui.headsControl = el("label", { id: "heads-control", class: "control" }, [ui.headsCheckbox, " show heads"]);
  ui.headsControl.hidden = true;

  return el("header", { class: "controls-bar", id: "controls" }, [
    labelled("run", ui.runSelect),
    labelled("tag", ui.tagSelect),
    el("label", { class: "control step-control" }, [
      el("span", { class: "control-name", text: "step" }), ui.stepSlider, ui.stepLabel,
    ]),
    labelled("view", ui.viewToggle),
    el("div", { class: "control mode-control" }, [
      el("span", { class: "control-name", text: "unit" }), ui.modeToggle,
      el("span", { class: "mode-note", id: "mode-note", text: WORD_MODE_NOTE }),
    ]),
    labelled("compare with run", ui.compareSelect),
    ui.headsControl,
  ]);
}

function fillSelect(select, values, selected, labels = values) {
  select.replaceChildren(...values.map((value, i) => el("option", { value, text: labels[i] })));
  select.value = selected;
}

function syncRunControls() {
  const names = state.runs.map((r) => r.run);
  fillSelect(ui.runSelect, names, state.run);
  const info = state.runs.find((r) => r.run === state.run);
  fillSelect(ui.tagSelect, info.tags, state.tag);
  const others = names.filter((name) => name !== state.run);
  fillSelect(ui.compareSelect, ["", ...others], state.compareRun, ["none", ...others]);
  syncLiveControls();
}

function syncStepSlider() {
  const at = Math.max(0, state.steps.indexOf(state.step));
  ui.stepSlider.max = String(Math.max(0, state.steps.length - 1));
  ui.stepSlider.value = String(at);
  ui.stepSlider.disabled = state.steps.length < 2;
  ui.stepLabel.textContent = state.step === null ? "—" : String(state.step);
}

function syncViewControls(record, viewName) {
  setPressed(ui.viewToggle, viewName);
  const reference = ui.viewToggle.querySelector('[data-value="reference"]');
  reference.disabled = !record.views.reference || Boolean(state.live);
  ui.viewToggle.querySelector('[data-value="hypothesis"]').disabled = !record.views.hypothesis;
  setPressed(ui.modeToggle, state.mode);
}

function syncLiveControls() {
  const info = state.runs.find((r) => r.run === state.run);
  const live = Boolean(info && info.live);
  ui.liveButton.disabled = !live || state.busy;
  ui.liveInput.disabled = !live;
  ui.liveNote.textContent = !info || live ? "" : `run ${state.run} has no checkpoint: live translation is off`;
}

function buildPicker() {
  ui.searchInput = el("input", { id: "search-input", type: "search", placeholder: "search source / reference / hypothesis" });
  ui.searchInput.addEventListener("input", () => { state.search = ui.searchInput.value; renderSentenceList(); });
  ui.sortSelect = el("select", { id: "sort-select" });
  fillSelect(ui.sortSelect, ["index", "aer", "length", "entropy"], state.sort,
    ["index", "AER (low first)", "length (source pieces)", "entropy (high first)"]);
  ui.sortSelect.addEventListener("change", () => { state.sort = ui.sortSelect.value; renderSentenceList(); });
  ui.list = el("div", { id: "sentence-list", class: "sentence-list" });
  ui.list.addEventListener("click", (event) => {
    const row = event.target.closest(".sentence-row");
    if (row) selectSentence(Number(row.dataset.index));
  });
  ui.listCount = el("div", { class: "list-count" });
  return el("aside", { class: "picker-panel" }, [
    ui.searchInput, labelled("sort", ui.sortSelect), ui.listCount, ui.list,
  ]);
}

function buildLiveBox() {
  ui.liveInput = el("input", { id: "live-input", type: "text", placeholder: "type a source sentence…" });
  ui.liveButton = el("button", { id: "live-button", type: "button", text: "Translate" });
  ui.liveStatus = el("span", { id: "live-status", class: "live-status" });
  ui.liveNote = el("span", { id: "live-note", class: "note" });
  ui.liveError = el("div", { id: "live-error", class: "error-line" });
  const submit = () => requestTranslation(ui.liveInput.value);
  ui.liveButton.addEventListener("click", submit);
  ui.liveInput.addEventListener("keydown", (event) => { if (event.key === "Enter") submit(); });
  return el("section", { class: "live-box" }, [
    el("span", { class: "control-name", text: "what if:" }), ui.liveInput, ui.liveButton, ui.liveStatus, ui.liveNote,
    ui.liveError,
  ]);
}

// ---------------------------------------------------------------- entry point

export function render() {
  if (!document.querySelector('link[href="style.css"]')) {
    document.head.append(el("link", { rel: "stylesheet", href: "style.css" }));
  }
  const controls = buildControls();
  const picker = buildPicker();
  const liveBox = buildLiveBox();
  ui.status = el("div", { id: "status-line", class: "status-line" });
  ui.display = el("div", { id: "display", class: "display" });
  ui.tooltip = el("div", { id: "attn-tooltip", class: "attn-tooltip", role: "tooltip" });
  ui.tooltip.style.display = "none";
  document.body.replaceChildren(el("div", { class: "nmt-app" }, [
    controls,
    ui.status,
    el("div", { class: "app-body" }, [picker, el("main", { class: "display-panel" }, [liveBox, ui.display])]),
  ]), ui.tooltip);
  syncLiveControls();
  loadRuns();
}
