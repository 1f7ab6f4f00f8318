// The dashboard: reads the JSON API (/api/v1), keeps its state in the URL query
// (?day=&genre=&from=&to=), draws the charts with charts.js. No framework, no build step.
import { addDays, barChart, lineChart, stackedColumns } from "./charts.js";

const API = "/api/v1";
const RANGE_DAYS = 30;
const RUN_LIMIT = 30;
const KEYS = ["day", "genre", "from", "to"];

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const seconds = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const count = (n) => integer.format(n);
const hours = (ms) => `${decimal.format(ms / 3_600_000)} h`;
const minutes = (ms) => `${decimal.format(ms / 60_000)} min`;

/** An API or network failure, with the message the API gave. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const cache = new Map();

/** GET an API path as JSON (memoised for the page's life: the data does not change under it). */
async function api(path) {
  if (!cache.has(path)) cache.set(path, fetchJson(path));
  try {
    return await cache.get(path);
  } catch (error) {
    cache.delete(path);
    throw error;
  }
}

async function fetchJson(path) {
  let response;
  try {
    response = await fetch(API + path, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new ApiError(0, "unreachable", `Could not reach the server for ${path} (${error.message}): is music-etl serve still running?`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body?.error;
    throw new ApiError(response.status, detail?.code ?? "http_error", detail?.message ?? `${API}${path} answered HTTP ${response.status}.`);
  }
  if (body === null) throw new ApiError(response.status, "bad_body", `${API}${path} did not answer JSON.`);
  return body;
}

// ---- dates -------------------------------------------------------------------------------

/** The trend range in force: explicit from/to, else the 30 days ending at the day. */
function range(state) {
  const to = state.to || state.day;
  return { from: state.from || addDays(to, 1 - RANGE_DAYS), to };
}

// ---- the URL is the state ------------------------------------------------------------------

function readUrl() {
  const query = new URLSearchParams(window.location.search);
  return Object.fromEntries(KEYS.map((k) => [k, query.get(k) || null]));
}

function writeUrl(state, push) {
  const query = new URLSearchParams();
  for (const k of KEYS) if (state[k]) query.set(k, state[k]);
  const url = `${window.location.pathname}?${query}`;
  if (push) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

// ---- page plumbing -------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function element(tag, attrs = {}, content = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of [].concat(content)) node.append(c);
  return node;
}

/** Put a chart, a table or an error message into a section's container. */
function fill(id, ...nodes) {
  $(id).replaceChildren(...nodes);
}

function errorNode(error) {
  const code = error instanceof ApiError ? error.code : "page_error";
  return element("p", { class: "error", role: "alert", "data-error-code": code }, error.message);
}

function note(text) {
  return element("p", { class: "empty" }, text);
}

function message(text) {
  const box = $("message");
  box.textContent = text ?? "";
  box.hidden = !text;
}

// ---- sections --------------------------------------------------------------------------------

function kpiCards(kpi, day) {
  const cards = [
    ["listen_count", "Listens", count(kpi.listen_count)],
    ["unique_listeners", "Unique listeners", count(kpi.unique_listeners)],
    ["total_listening_time", "Listening time", hours(kpi.total_listening_time)],
    ["avg_listening_time", "Per listener", minutes(kpi.avg_listening_time)],
  ];
  return element(
    "dl",
    { class: "cards", "data-genre": kpi.genre, "data-date": day },
    cards.map(([key, label, shown]) =>
      element("div", { class: "card", "data-kpi": key, "data-value": String(kpi[key]) }, [
        element("dt", {}, label),
        element("dd", {}, shown),
      ]),
    ),
  );
}

function topGenresChart(body, state) {
  const items = body.top_genres.map((g) => ({
    label: `${g.rank}. ${g.genre}`,
    value: g.listen_count,
    selected: g.genre === state.genre,
    data: { genre: g.genre, rank: g.rank },
    genre: g.genre,
  }));
  return barChart(items, {
    label: `Top ${items.length} genres by listens on ${body.date}`,
    valueLabel: "Listens",
    format: count,
    onSelect: (item) => navigate({ ...state, genre: item.genre }),
  });
}

function topSongsChart(body, state) {
  const entry = body.top_songs.find((t) => t.genre === state.genre);
  if (!entry || entry.songs.length === 0) return note(`No top songs for ${state.genre} on ${body.date}.`);
  const items = entry.songs.map((s) => ({
    label: `${s.rank}. ${s.track_name}`,
    value: s.play_count,
    title: `${s.rank}. ${s.track_name} — ${s.artists}: ${count(s.play_count)} plays`,
    data: { "track-id": s.track_id, rank: s.rank, genre: entry.genre },
  }));
  return barChart(items, {
    label: `Top songs of ${entry.genre} on ${body.date} by plays`,
    valueLabel: "Plays",
    format: count,
  });
}

function trendChart(body) {
  if (body.points.length === 0) return note(`No results for ${body.genre} between ${body.from} and ${body.to}.`);
  const series = [
    ["listen_count", "Listens"],
    ["unique_listeners", "Unique listeners"],
  ].map(([key, name]) => ({ key, name, points: body.points.map((p) => ({ date: p.date, value: p[key] })) }));
  const chart = lineChart(series, {
    label: `${body.genre}: listens and unique listeners per day, ${body.from} to ${body.to}`,
    valueLabel: "Count",
    format: count,
    from: body.from,
    to: body.to,
  });
  chart.dataset.genre = body.genre;
  chart.dataset.from = body.from;
  chart.dataset.to = body.to;
  const caption = note(`${body.genre}: ${count(body.points.length)} days with results from ${body.from} to ${body.to}.`);
  return [chart, caption];
}

function qualityChart(body) {
  if (body.by_day.length === 0) return [note(`No files were processed between ${body.from} and ${body.to}.`)];
  const reasons = [...new Set(body.by_day.flatMap((d) => Object.keys(d.reasons)))].sort();
  const rowsIn = body.by_day.reduce((s, d) => s + d.rows_in, 0);
  const rowsBad = body.by_day.reduce((s, d) => s + d.rows_bad, 0);
  const summary = note(`${count(rowsBad)} bad rows of ${count(rowsIn)} read, by the day their file was processed (${body.from} to ${body.to}).`);
  const nodes = [];
  if (reasons.length === 0) nodes.push(note("No bad rows."));
  else {
    const columns = body.by_day.map((d) => ({ key: d.date, label: d.date, parts: d.reasons }));
    nodes.push(stackedColumns(columns, reasons, {
      label: `Bad rows by reason per processing day, ${body.from} to ${body.to}`,
      valueLabel: "Bad rows",
      axisLabel: "Day processed",
      format: count,
      dataName: "reason",
    }));
  }
  nodes.push(summary);
  if (body.failed_files.length) nodes.push(failedTable(body.failed_files));
  return nodes;
}

function table(caption, headers, rows, rowAttrs) {
  const head = element("tr", {}, headers.map((h) => element("th", { scope: "col" }, h)));
  const body = rows.map((r, i) => element("tr", rowAttrs(i), r.map((c) => element("td", {}, c))));
  return element("table", {}, [element("caption", {}, caption), element("thead", {}, head), element("tbody", {}, body)]);
}

function failedTable(files) {
  return table(
    "Failed files",
    ["File", "Day", "Error", "Retry?"],
    files.map((f) => [f.file_key, f.day, f.error ?? "", f.retryable ? "later" : "after a fix"]),
    (i) => ({ "data-file-key": files[i].file_key }),
  );
}

function runsSection(body) {
  if (body.runs.length === 0) return [note("No runs yet.")];
  const runs = [...body.runs].reverse();
  const columns = runs.map((r) => ({
    key: r.run_id,
    label: (r.started ?? "").slice(0, 10),
    parts: { valid: r.rows_valid, bad: r.rows_bad },
  }));
  const chart = stackedColumns(columns, ["valid", "bad"], {
    label: `Rows per run, the last ${runs.length} runs`,
    valueLabel: "Rows",
    axisLabel: "Run started",
    format: count,
    dataName: "rows",
  });
  const rows = body.runs.slice(0, 10).map((r) => [
    (r.started ?? "").replace("T", " ").slice(0, 19),
    r.duration_seconds == null ? "—" : `${seconds.format(r.duration_seconds)} s`,
    count(r.files),
    count(r.rows_in),
    count(r.rows_valid),
    count(r.rows_bad),
    r.status,
  ]);
  const recent = table(
    `The ${rows.length} most recent runs`,
    ["Started (UTC)", "Duration", "Files", "Rows in", "Valid", "Bad", "Status"],
    rows,
    (i) => ({ "data-run-id": body.runs[i].run_id, "data-status": body.runs[i].status }),
  );
  return [chart, recent];
}

// ---- controls ------------------------------------------------------------------------------

const site = { days: [], known: new Set(), state: null, token: 0 };

function nearest(day) {
  const after = site.days.find((d) => d >= day);
  const before = [...site.days].reverse().find((d) => d <= day);
  return [before, after].filter(Boolean);
}

function chooseDay(value) {
  const input = $("day");
  if (!site.known.has(value)) {
    const near = nearest(value).join(" or ");
    const why = `No results on ${value || "that day"}${near ? `: try ${near}` : ""}.`;
    input.setCustomValidity(why);
    input.reportValidity();
    $("day-hint").textContent = why;
    return;
  }
  input.setCustomValidity("");
  $("day-hint").textContent = "";
  navigate({ ...site.state, day: value });
}

function step(offset) {
  const at = site.days.indexOf(site.state.day);
  const next = site.days[at + offset];
  if (at >= 0 && next) navigate({ ...site.state, day: next });
}

function bindControls() {
  $("controls").addEventListener("submit", (e) => e.preventDefault());
  $("day").addEventListener("change", (e) => chooseDay(e.target.value));
  $("prev-day").addEventListener("click", () => step(-1));
  $("next-day").addEventListener("click", () => step(1));
  $("genre").addEventListener("change", (e) => navigate({ ...site.state, genre: e.target.value }));
  for (const key of ["from", "to"]) {
    $(key).addEventListener("change", (e) => navigate({ ...site.state, [key]: e.target.value || null }));
  }
  window.addEventListener("popstate", () => show(readUrl(), false));
}

function syncControls(state, genres) {
  const day = $("day");
  day.value = state.day;
  day.setCustomValidity("");
  const at = site.days.indexOf(state.day);
  $("prev-day").disabled = at <= 0;
  $("next-day").disabled = at < 0 || at === site.days.length - 1;
  const select = $("genre");
  select.replaceChildren(...genres.map((g) => element("option", { value: g }, g)));
  select.value = state.genre ?? "";
  const { from, to } = range(state);
  $("from").value = from;
  $("to").value = to;
}

// ---- one state on screen ------------------------------------------------------------------

function navigate(state) {
  return show(state, true);
}

/** Show `wanted` (missing values defaulted); `push` adds a history entry. */
async function show(wanted, push) {
  const token = ++site.token;
  document.body.dataset.state = "loading";
  const state = { ...wanted, day: wanted.day || site.days.at(-1) || null };
  if (!state.day) {
    message("No results yet: run `music-etl run` on this lake, then reload.");
    return done(token, state);
  }
  let day = null;
  try {
    day = await api(`/days/${encodeURIComponent(state.day)}`);
  } catch (error) {
    if (token !== site.token) return;
    return showDayError(token, state, error, push);
  }
  if (token !== site.token) return;
  const genres = day.kpis.map((k) => k.genre).sort();
  message(null);
  if (!state.genre || !genres.includes(state.genre)) {
    if (state.genre) message(`${state.genre} has no results on ${state.day}: showing ${day.top_genres[0]?.genre ?? "its first genre"}.`);
    state.genre = day.top_genres[0]?.genre ?? genres[0] ?? null;
  }
  site.state = state;
  writeUrl(state, push);
  syncControls(state, genres);
  const kpi = day.kpis.find((k) => k.genre === state.genre);
  fill("kpis", kpi ? kpiCards(kpi, day.date) : note("No genre on this day."));
  if (day.flagged) $("kpis").append(note(`${count(day.flagged)} items could not be loaded for this day: its numbers are partial.`));
  fill("top-genres", topGenresChart(day, state));
  fill("top-songs", topSongsChart(day, state));
  $("top-songs-heading").textContent = `Top songs: ${state.genre}, ${state.day}`;
  $("trend-heading").textContent = `${state.genre} over time`;
  await showTrend(token, state);
  done(token, state);
}

async function showTrend(token, state) {
  const { from, to } = range(state);
  const path = `/genres/${encodeURIComponent(state.genre)}/trend?from=${from}&to=${to}`;
  let nodes;
  try {
    nodes = [].concat(trendChart(await api(path)));
  } catch (error) {
    nodes = [errorNode(error)];
  }
  if (token === site.token) fill("trend", ...nodes);
}

function showDayError(token, state, error, push) {
  site.state = state;
  writeUrl(state, push);
  syncControls(state, state.genre ? [state.genre] : []);
  message(error.message);
  for (const id of ["kpis", "top-genres", "top-songs", "trend"]) fill(id, errorNode(error));
  done(token, state);
}

function done(token, state) {
  if (token !== site.token) return;
  document.body.dataset.shown = `${state.day ?? ""}|${state.genre ?? ""}`;
  document.body.dataset.state = "ready";
  if (!document.body.dataset.readyMs) document.body.dataset.readyMs = String(Math.round(performance.now()));
}

// ---- what does not depend on the state: quality and runs ---------------------------------

async function showLedger(runsPromise) {
  let runs = null;
  try {
    runs = await runsPromise;
    fill("runs", ...runsSection(runs));
  } catch (error) {
    fill("runs", errorNode(error));
  }
  $("runs").dataset.state = "ready";
  // A file's quality day is the day it was processed: show the 30 days ending at the last run.
  const last = runs?.runs[0]?.started?.slice(0, 10);
  const path = last ? `/quality?from=${addDays(last, 1 - RANGE_DAYS)}&to=${last}` : "/quality";
  try {
    fill("quality", ...qualityChart(await api(path)));
  } catch (error) {
    fill("quality", errorNode(error));
  }
  $("quality").dataset.state = "ready";
}

async function start() {
  bindControls();
  const runs = api(`/runs?limit=${RUN_LIMIT}`);
  runs.catch(() => {}); // handled in showLedger
  const ledger = showLedger(runs);
  try {
    const body = await api("/days");
    site.days = body.days;
    site.known = new Set(body.days);
    const day = $("day");
    day.min = body.days[0] ?? "";
    day.max = body.days.at(-1) ?? "";
    await show(readUrl(), false);
  } catch (error) {
    message(error.message);
    for (const id of ["kpis", "top-genres", "top-songs", "trend"]) fill(id, errorNode(error));
    done(site.token, {});
  }
  await ledger;
}

start();
