// Small hand-written SVG charts: horizontal bars, a line chart, stacked columns.
// Each mark carries data-* attributes (what it shows) and a <title> (its tooltip).

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];

/** Create an SVG element with attributes and children. */
export function svgEl(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

/** An SVG text node. */
function text(x, y, content, attrs = {}) {
  const node = svgEl("text", { x, y, ...attrs });
  node.textContent = content;
  return node;
}

/** A <title> tooltip. */
function tip(content) {
  const node = svgEl("title");
  node.textContent = content;
  return node;
}

/** data-* attributes from a plain object ({genre: "pop"} -> {"data-genre": "pop"}). */
function dataAttrs(data = {}) {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [`data-${k}`, v]));
}

/** A colour for the i-th series or category. */
export function colour(index) {
  return PALETTE[index % PALETTE.length];
}

/** Round axis ticks from 0 to at least `max`: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = 0; t < max + step; t += step) ticks.push(Math.round(t * 1e9) / 1e9);
  return ticks;
}

function frame(width, height, label) {
  return svgEl("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": label,
    preserveAspectRatio: "xMinYMin meet",
  });
}

/**
 * Horizontal bars, one per item, longest scale at the top value.
 * items: [{label, value, data, title}]; opts: {label, valueLabel, format, onSelect}.
 */
export function barChart(items, opts) {
  const width = 640;
  const left = 190;
  const right = 70;
  const rowHeight = 30;
  const top = 10;
  const bottom = 44;
  const height = top + bottom + rowHeight * items.length;
  const svg = frame(width, height, opts.label);
  const ticks = niceTicks(Math.max(...items.map((i) => i.value), 0));
  const max = ticks.at(-1);
  const plotWidth = width - left - right;
  const x = (v) => left + (v / max) * plotWidth;
  const axis = svgEl("g", { class: "axis" });
  for (const t of ticks) {
    axis.append(svgEl("line", { x1: x(t), x2: x(t), y1: top, y2: height - bottom, class: "grid" }));
    axis.append(text(x(t), height - bottom + 16, opts.format(t), { "text-anchor": "middle" }));
  }
  axis.append(text(left + plotWidth / 2, height - 6, opts.valueLabel, { "text-anchor": "middle", class: "axis-label" }));
  svg.append(axis);
  items.forEach((item, i) => {
    const y = top + i * rowHeight;
    const bar = svgEl("rect", {
      x: left,
      y: y + 4,
      width: Math.max(x(item.value) - left, 1),
      height: rowHeight - 8,
      fill: item.selected ? colour(1) : colour(0),
      class: opts.onSelect ? "bar selectable" : "bar",
      "data-selected": item.selected ? "true" : null,
      ...dataAttrs(item.data),
      "data-value": item.value,
    });
    bar.append(tip(item.title ?? `${item.label}: ${opts.format(item.value)}`));
    if (opts.onSelect) bar.addEventListener("click", () => opts.onSelect(item));
    const label = text(left - 8, y + rowHeight / 2 + 4, truncate(item.label, 28), { "text-anchor": "end", class: "bar-label" });
    const value = text(x(item.value) + 6, y + rowHeight / 2 + 4, opts.format(item.value), { class: "bar-value" });
    svg.append(bar, label, value);
  });
  return svg;
}

function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Evenly spread indexes 0..n-1, at most `count` of them, always the first and the last. */
function spread(n, count) {
  if (n <= count) return [...Array(n).keys()];
  const step = (n - 1) / (count - 1);
  return [...new Set([...Array(count).keys()].map((i) => Math.round(i * step)))];
}

/** The YYYY-MM-DD `n` days after `date`. */
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Days since the epoch of a YYYY-MM-DD string (UTC). */
function dayNumber(date) {
  return Date.parse(`${date}T00:00:00Z`) / 86_400_000;
}

/**
 * A line chart over dates. series: [{name, points: [{date, value}]}];
 * opts: {label, valueLabel, format, from, to}.
 */
export function lineChart(series, opts) {
  const width = 640;
  const height = 300;
  const key = legend(series.map((s) => s.name), 70, width - 20);
  const m = { left: 70, right: 20, top: key.height + 12, bottom: 50 };
  const svg = frame(width, height, opts.label);
  svg.append(key.group);
  const values = series.flatMap((s) => s.points.map((p) => p.value));
  const ticks = niceTicks(Math.max(...values, 0));
  const max = ticks.at(-1);
  const start = dayNumber(opts.from);
  const span = Math.max(dayNumber(opts.to) - start, 1);
  const x = (date) => m.left + ((dayNumber(date) - start) / span) * (width - m.left - m.right);
  const y = (v) => height - m.bottom - (v / max) * (height - m.top - m.bottom);
  const axis = svgEl("g", { class: "axis" });
  for (const t of ticks) {
    axis.append(svgEl("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t), class: "grid" }));
    axis.append(text(m.left - 6, y(t) + 4, opts.format(t), { "text-anchor": "end" }));
  }
  const marks = spread(span + 1, 5);
  for (const i of marks) {
    const date = addDays(opts.from, i);
    const anchor = i === 0 ? "start" : i === marks.at(-1) ? "end" : "middle";
    axis.append(svgEl("line", { x1: x(date), x2: x(date), y1: height - m.bottom, y2: height - m.bottom + 5, class: "tick" }));
    axis.append(text(x(date), height - m.bottom + 18, date, { "text-anchor": anchor }));
  }
  axis.append(text(width / 2, height - 8, "Day", { "text-anchor": "middle", class: "axis-label" }));
  axis.append(text(14, m.top + (height - m.top - m.bottom) / 2, opts.valueLabel, {
    "text-anchor": "middle",
    class: "axis-label",
    transform: `rotate(-90 14 ${m.top + (height - m.top - m.bottom) / 2})`,
  }));
  svg.append(axis);
  series.forEach((s, si) => {
    const group = svgEl("g", { class: "series", "data-series": s.key, "aria-label": s.name });
    const path = s.points.map((p, i) => `${i ? "L" : "M"}${x(p.date).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
    group.append(svgEl("path", { d: path, fill: "none", stroke: colour(si), "stroke-width": 2 }));
    for (const p of s.points) {
      const dot = svgEl("circle", {
        cx: x(p.date),
        cy: y(p.value),
        r: s.points.length > 60 ? 2 : 3.5,
        fill: colour(si),
        class: "point",
        "data-series": s.key,
        "data-date": p.date,
        "data-value": p.value,
      });
      dot.append(tip(`${s.name} on ${p.date}: ${opts.format(p.value)}`));
      group.append(dot);
    }
    svg.append(group);
  });
  return svg;
}

/** A legend that wraps to new rows before `maxX`; returns the group and its height. */
function legend(names, x0, maxX) {
  const group = svgEl("g", { class: "legend" });
  let x = x0;
  let y = 14;
  names.forEach((name, i) => {
    const w = 24 + name.length * 7;
    if (x + w > maxX && x > x0) {
      x = x0;
      y += 18;
    }
    const item = svgEl("g", { "data-name": name });
    item.append(svgEl("rect", { x, y: y - 9, width: 10, height: 10, fill: colour(i) }), text(x + 14, y, name));
    group.append(item);
    x += w;
  });
  return { group, height: y + 12 };
}

/**
 * Stacked columns. columns: [{key, label, parts: {name: value}, data}]; names: the stack order;
 * opts: {label, valueLabel, format, dataName}.
 */
export function stackedColumns(columns, names, opts) {
  const width = 640;
  const height = 300;
  const key = legend(names, 70, width - 20);
  const m = { left: 70, right: 20, top: key.height + 12, bottom: 50 };
  const svg = frame(width, height, opts.label);
  svg.append(key.group);
  const totals = columns.map((c) => names.reduce((sum, n) => sum + (c.parts[n] ?? 0), 0));
  const ticks = niceTicks(Math.max(...totals, 0));
  const max = ticks.at(-1);
  const plotWidth = width - m.left - m.right;
  const slot = plotWidth / Math.max(columns.length, 1);
  const barWidth = Math.max(Math.min(slot * 0.7, 40), 1);
  const y = (v) => height - m.bottom - (v / max) * (height - m.top - m.bottom);
  const axis = svgEl("g", { class: "axis" });
  for (const t of ticks) {
    axis.append(svgEl("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t), class: "grid" }));
    axis.append(text(m.left - 6, y(t) + 4, opts.format(t), { "text-anchor": "end" }));
  }
  for (const i of spread(columns.length, 6)) {
    axis.append(text(m.left + slot * (i + 0.5), height - m.bottom + 18, columns[i].label, { "text-anchor": "middle" }));
  }
  axis.append(text(width / 2, height - 8, opts.axisLabel, { "text-anchor": "middle", class: "axis-label" }));
  axis.append(text(14, m.top + (height - m.top - m.bottom) / 2, opts.valueLabel, {
    "text-anchor": "middle",
    class: "axis-label",
    transform: `rotate(-90 14 ${m.top + (height - m.top - m.bottom) / 2})`,
  }));
  svg.append(axis);
  columns.forEach((c, i) => {
    const group = svgEl("g", { class: "column", "data-key": c.key, "data-total": totals[i] });
    let base = 0;
    names.forEach((name, ni) => {
      const value = c.parts[name] ?? 0;
      if (!value) return;
      const seg = svgEl("rect", {
        x: m.left + slot * (i + 0.5) - barWidth / 2,
        y: y(base + value),
        width: barWidth,
        height: Math.max(y(base) - y(base + value), 0.5),
        fill: colour(ni),
        class: "segment",
        "data-key": c.key,
        [`data-${opts.dataName}`]: name,
        "data-value": value,
      });
      seg.append(tip(`${c.label} · ${name}: ${opts.format(value)}`));
      group.append(seg);
      base += value;
    });
    svg.append(group);
  });
  return svg;
}
