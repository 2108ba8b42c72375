// The dashboard: datasets, jobs and sweeps from this service's own API, and a selected job's
// loss and accuracy curves drawn live from its event stream. A dataset's columns and the
// prediction form are columns.js's, a model's evaluation evaluation.js's (loaded first). Plain JS, no build step; the charts are uPlot's (vendored
// under /static/vendor). Everything is same-origin: no CDN, no fonts.
"use strict";

const JOBS_LIMIT = 50; // rows in the jobs table
const SWEEPS_LIMIT = 20;
const REFRESH_MS = 2000; // the lists are polled this often while the page is visible
const SLOW_EVERY = 5; // datasets and sweeps change rarely: every 5th refresh
const HISTORY_POINTS = 1000; // a long run's history arrives down-sampled to this many points
const SWEEP_POINTS = 300; // per trial: a sweep chart holds many curves
const LIVE_POINTS = 20000; // past this, a live chart drops every other point (stays fast)
const RECONNECT_MS = 1000; // a dropped event stream is resumed after this pause
const NOTICE_MS = 8000; // an error message stays this long (a failing poll shows it again)
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const KEY_STORAGE = "backprop.apiKey";
const TRAIN_COLOR = "#2563eb";
const VAL_COLOR = "#ea580c";
const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2",
  "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

const state = {
  apiKey: readStoredKey(),
  needsKey: false, // a 401 was seen: polling pauses until a key is entered
  datasets: new Map(), // id -> dataset, to name datasets in the jobs table
  jobs: [],
  sweep: null, // the selected sweep, with its leaderboard
  selection: null, // {kind: "job" | "sweep" | "dataset", id}
  job: null, // the selected job, as last reported (GET, its stream, or the jobs list)
  generation: 0, // bumped on each selection, so late answers about an old one are dropped
  stream: null, // AbortController of the followed job's event stream
  chart: null, // the selected job's loss uPlot
  chartData: null, // [epochs, train losses, val losses]: the arrays the chart draws
  accuracyChart: null, // its accuracy uPlot
  accuracyData: null, // [epochs, train accuracies, val accuracies]
  logScale: false, // the loss axis: a linear one flattens everything after the first epochs
  rocChart: null, // the selected model's ROC curve (evaluation.js)
  sweepChart: null,
  sweepHistories: new Map(), // job id -> points of a finished trial (they no longer change)
  redrawPending: false,
  refreshing: false,
  ticks: 0,
};
window.dashboard = state; // for the browser tests (and curious users): dashboard.chart.data

// ---------------------------------------------------------------------------------------
// Small helpers

const $ = (selector) => document.querySelector(selector);

/** A DOM element with attributes and children (text is always text: names are user input). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const isNumber = (value) => typeof value === "number" && Number.isFinite(value);
const shortId = (id) => (id ? id.slice(0, 8) : "—");

// ---------------------------------------------------------------------------------------
// Formatting: every number goes through one of these, so nothing prints NaN or 17 digits.

const significant = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 });
const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const timeOfDay = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});

/** Losses span many decades: 4 significant digits, scientific when tiny or huge; null is —. */
function fmtNumber(value) {
  if (!isNumber(value)) return "—";
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e6)) return value.toExponential(2);
  return significant.format(value);
}

const fmtInt = (value) => (isNumber(value) ? integer.format(value) : "—");
const percent = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

function fmtPercent(fraction) {
  if (!isNumber(fraction)) return "—";
  if (fraction > 0 && fraction < 0.0005) return "<0.1%"; // a probability, not a certainty
  return `${percent.format(fraction * 100)}%`;
}
/** Today's times alone, older ones with their day: the tables stay narrow. */
function fmtTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  return (today ? timeOfDay : dayAndTime).format(date);
}
const humanize = (name) => String(name).replaceAll("_", " ");

function fmtSeconds(seconds) {
  if (!isNumber(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function modelLabel(model) {
  if (!model) return "—";
  if (model.type === "two_layer_network") return `network ${model.hidden_units} ${model.activation}`;
  return humanize(model.type);
}

function badge(status) {
  return el("span", { className: `badge status-${status || "unknown"}` }, status || "deleted");
}

// ---------------------------------------------------------------------------------------
// The API: one place adds the key and turns a 401 into the key prompt.

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
  }
}

function readStoredKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage may be disabled; the page still works without a key
  }
}

function authHeaders(headers = {}) {
  return state.apiKey ? { ...headers, Authorization: `Bearer ${state.apiKey}` } : headers;
}

async function readProblem(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

/** fetch + JSON; throws ApiError (status 0: the service could not be reached). */
async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: authHeaders({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    setConnection(false);
    throw new ApiError(0, { detail: "Cannot reach the service" });
  }
  setConnection(true);
  if (response.status === 401) askForKey();
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  return response.status === 204 ? null : response.json();
}

/** Shows what went wrong on the page; never rethrows, so no promise is left unhandled. */
function report(error) {
  if (error.name === "AbortError" || error.status === 401) return; // 401: the prompt says it
  const notice = $("#notice");
  notice.textContent = error.message;
  notice.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => { notice.hidden = true; }, NOTICE_MS);
}

const guard = (promise) => promise.catch(report);

function setConnection(ok) {
  const node = $("#connection");
  node.textContent = ok ? "connected" : "cannot reach the service; retrying";
  node.classList.toggle("offline", !ok);
}

// ---------------------------------------------------------------------------------------
// API keys: asked for only when the service answers 401.

function askForKey() {
  state.needsKey = true;
  stopFollowing();
  $("#auth-message").textContent = state.apiKey
    ? "The stored key was refused. Enter another one."
    : "Enter your key to continue. It is kept in this browser only (localStorage).";
  $("#auth").hidden = false;
}

function useKey(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return;
  state.apiKey = key;
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // kept for this page only
  }
  state.needsKey = false;
  $("#auth").hidden = true;
  $("#api-key").value = "";
  guard(refresh(true).then(restoreSelection));
}

// ---------------------------------------------------------------------------------------
// The lists, refreshed every REFRESH_MS while the page is visible.

async function refresh(everything = false) {
  if (state.needsKey || state.refreshing) return;
  state.refreshing = true;
  try {
    const slow = everything || state.ticks++ % SLOW_EVERY === 0;
    if (slow) await refreshDatasets(); // first: the jobs table names their datasets
    await Promise.all([
      refreshJobs(),
      slow ? refreshSweeps() : null,
      state.selection?.kind === "sweep" && state.sweep ? refreshSweep() : null,
    ]);
  } finally {
    state.refreshing = false;
  }
}

async function poll() {
  if (!document.hidden) await guard(refresh());
  setTimeout(poll, REFRESH_MS);
}

async function refreshDatasets() {
  const page = await api("/v1/datasets?limit=100");
  state.datasets = new Map(page.data.map((dataset) => [dataset.id, dataset]));
  renderRows("#datasets-table", "#datasets-empty", page.data, datasetRow);
}

function datasetRow(dataset) {
  const selected = state.selection?.kind === "dataset" && state.selection.id === dataset.id;
  return el("tr", { className: selected ? "selected" : null },
    el("td", {}, el("button", {
      type: "button", className: "link name", title: dataset.id, "data-id": dataset.id,
      "aria-current": selected ? "true" : null,
      "aria-label": `Show the columns of dataset ${dataset.name}`,
      onclick: () => guard(selectDataset(dataset.id)),
    }, dataset.name)),
    el("td", { className: "num" }, fmtInt(dataset.rows)),
    el("td", { className: "num" }, fmtInt(columnsIn(dataset, "feature"))),
    el("td", {}, classesLabel(dataset.classes)),
    el("td", {}, fmtTime(dataset.created_at)));
}

/** Columns of a role: `features` also names the columns left out of training ("ignored"). */
const columnsIn = (dataset, role) => dataset.schema.filter((column) => column.role === role).length;

function classesLabel(classes) {
  const names = classes.map(String);
  return names.length <= 4 ? names.join(", ") : `${names.length} classes`;
}

async function refreshJobs() {
  const page = await api(`/v1/jobs?limit=${JOBS_LIMIT}`);
  state.jobs = page.data;
  renderRows("#jobs-table", "#jobs-empty", page.data, jobRow);
  const selected = state.selection?.kind === "job" && state.job?.id === state.selection.id
    ? page.data.find((job) => job.id === state.job.id) : null;
  if (selected) updateSelectedJob(selected);
}

// Statuses only move forward; a list fetched before the stream's latest event may lag it.
const STATUS_ORDER = { queued: 0, running: 1, cancelling: 2, succeeded: 3, failed: 3, cancelled: 3 };

/** The list's copy of the selected job refreshes what the stream does not carry (best
 * epoch, time left), without stepping back behind the stream's status or epoch. */
function updateSelectedJob(fresh) {
  const current = state.job;
  if (STATUS_ORDER[fresh.status] < STATUS_ORDER[current.status] || TERMINAL.has(current.status)) {
    return;
  }
  if (fresh.progress.epoch < current.progress.epoch) {
    const { epoch, train_loss, val_loss, train_accuracy, val_accuracy, percent } = current.progress;
    Object.assign(fresh.progress,
      { epoch, train_loss, val_loss, train_accuracy, val_accuracy, percent });
  }
  renderJob(fresh);
}

function jobRow(job) {
  const { progress } = job;
  const selected = state.selection?.kind === "job" && state.selection.id === job.id;
  return el("tr", { className: selected ? "selected" : null },
    el("td", {}, el("button", {
      type: "button", className: "link", title: job.id, "data-id": job.id,
      "aria-current": selected ? "true" : null,
      "aria-label": `Show job ${shortId(job.id)}`, onclick: () => guard(selectJob(job.id)),
    }, shortId(job.id)), job.sweep_id
      ? el("span", { className: "tag", title: `A trial of sweep ${job.sweep_id}` }, "trial") : null),
    el("td", {}, badge(job.status)),
    el("td", {}, modelLabel(job.model)),
    el("td", {}, datasetName(job.dataset_id)),
    el("td", {}, `${fmtInt(progress.epoch)} / ${fmtInt(progress.epochs)}`,
      el("span", { className: "bar", "aria-hidden": "true" },
        el("span", { style: `width: ${Math.min(100, progress.percent || 0)}%` }))),
    el("td", { className: "num" }, fmtNumber(progress.train_loss)),
    el("td", { className: "num" }, fmtNumber(progress.val_loss)),
    el("td", {}, fmtTime(job.created_at)));
}

function datasetName(id) {
  if (!id) return "deleted";
  return state.datasets.get(id)?.name || shortId(id);
}

/** A job's dataset as a button that shows its columns (a job's warnings are often theirs). */
function datasetLink(id) {
  if (!id) return datasetName(id);
  return el("button", {
    type: "button", className: "link name", title: id,
    "aria-label": `Show dataset ${datasetName(id)}`, onclick: () => guard(selectDataset(id)),
  }, datasetName(id));
}

/** Replaces a table's rows, keeping keyboard focus on the same item across refreshes. */
function renderRows(tableSelector, emptySelector, items, row) {
  const focusedId = document.activeElement?.closest?.(tableSelector)
    ? document.activeElement.dataset.id : null;
  $(`${tableSelector} tbody`).replaceChildren(...items.map(row));
  $(emptySelector).hidden = items.length > 0;
  if (focusedId) $(`${tableSelector} [data-id="${focusedId}"]`)?.focus();
}

// ---------------------------------------------------------------------------------------
// A selected job: its facts, its loss chart (history, then the live stream), its model.

function showPanel(id) {
  for (const panel of ["#placeholder", "#job-detail", "#sweep-detail", "#dataset-detail"]) {
    $(panel).hidden = panel !== id;
  }
}

function select(kind, id) {
  stopFollowing();
  state.selection = { kind, id };
  history.replaceState(null, "", `#${kind}=${id}`); // a link to this view
  for (const table of ["#jobs-table", "#sweeps-table", "#datasets-table"]) {
    for (const button of document.querySelectorAll(`${table} tbody button[data-id]`)) {
      const selected = button.dataset.id === id;
      button.closest("tr").classList.toggle("selected", selected);
      if (selected) button.setAttribute("aria-current", "true");
      else button.removeAttribute("aria-current");
    }
  }
  return ++state.generation;
}

async function selectJob(id) {
  const generation = select("job", id);
  const job = await api(`/v1/jobs/${id}`);
  if (generation !== state.generation) return;
  showPanel("#job-detail");
  state.job = null; // a fresh answer: nothing carried over from an earlier look at this job
  renderJob(job);
  renderSpec("#model-spec", job.model);
  renderSpec("#training-spec", job.training);
  $("#model-section").hidden = true;
  const loaded = await api(`/v1/jobs/${id}/history?max_points=${HISTORY_POINTS}`);
  if (generation !== state.generation) return;
  drawJobChart(loaded.points);
  if (!TERMINAL.has(job.status)) {
    const lastEpoch = loaded.points.length ? loaded.points.at(-1).epoch : 0;
    guard(follow(job, Math.max(lastEpoch, loaded.next_since_epoch || 0), generation));
  } else if (job.model_id) {
    await showModel(job.model_id, generation);
  }
}

function renderJob(job) {
  // A listing or an event may leave out the warnings the job's own answer carried.
  if (job.warnings === undefined && state.job?.id === job.id) job.warnings = state.job.warnings;
  state.job = job;
  $("#job-id").textContent = shortId(job.id);
  $("#job-id").title = job.id;
  $("#job-status").replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
  renderProgress();
  const facts = [
    ["Model", modelLabel(job.model)],
    ["Dataset", datasetLink(job.dataset_id)],
    ["Sweep", job.sweep_id ? el("button", {
      type: "button", className: "link", title: job.sweep_id,
      "aria-label": `Show sweep ${shortId(job.sweep_id)}`, onclick: () => guard(selectSweep(job.sweep_id)),
    }, shortId(job.sweep_id)) : null],
    ["Trial", job.trial ? trialValues(job.trial) : null],
    ["Stop reason", job.stop_reason ? humanize(job.stop_reason) : "—"],
    ["Error", job.error ? `${job.error}${job.error_code ? ` (${job.error_code})` : ""}` : null],
    ["Best epoch", fmtInt(job.progress.best_epoch)],
    ["Attempts", `${job.attempts} of ${job.max_attempts}`],
    ["Created", fmtTime(job.created_at)],
    ["Finished", job.finished_at ? fmtTime(job.finished_at) : null],
  ];
  $("#job-facts").replaceChildren(...factRows(facts));
  renderWarnings("#job-warnings", job.warnings);
}

/** A list of warnings, hidden when there are none (older services send no field at all). */
function renderWarnings(selector, warnings) {
  const list = $(selector);
  list.replaceChildren(...(warnings || []).map((text) => el("li", {}, text)));
  list.hidden = list.childElementCount === 0;
}

function renderProgress() {
  const { progress, status } = state.job;
  const done = Math.min(100, progress.percent || 0);
  $("#job-progress").value = done;
  const parts = [`epoch ${fmtInt(progress.epoch)} of ${fmtInt(progress.epochs)}`,
    `${Math.floor(done)}%`,
    `train ${fmtNumber(progress.train_loss)}${accuracyNote(progress.train_accuracy, progress.train_loss)}`,
    `val ${fmtNumber(progress.val_loss)}${accuracyNote(progress.val_accuracy, progress.val_loss)}`];
  if (!TERMINAL.has(status) && isNumber(progress.remaining_seconds)) {
    parts.push(`${fmtSeconds(progress.remaining_seconds)} left`);
  } else if (TERMINAL.has(status)) {
    parts.push(`took ${fmtSeconds(progress.elapsed_seconds)}`);
  }
  $("#job-progress-text").textContent = parts.join(" · ");
}

/** " (97.4%)" after a loss; nothing without an accuracy (no validation split), nor after a
 * loss that is not a number (a diverged epoch: its accuracy means nothing). */
const accuracyNote = (accuracy, loss) =>
  (isNumber(accuracy) && isNumber(loss) ? ` (${fmtPercent(accuracy)})` : "");

/** dt/dd pairs; a null value leaves its row out. */
function factRows(facts) {
  return facts.filter(([, value]) => value !== null)
    .flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]);
}

// What a null means in a spec, where it means something.
const NULL_MEANS = {
  learning_rate: "optimizer default", batch_size: "full batch", early_stopping: "off",
  time_limit: "none",
};

function specValue(name, value) {
  if (value === null || value === undefined) return NULL_MEANS[name] || "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return Number.isInteger(value) ? fmtInt(value) : fmtNumber(value);
  if (Array.isArray(value)) return value.length ? value.map(String).join(", ") : "none";
  if (typeof value === "object") {
    return Object.entries(value).map(([key, item]) => `${humanize(key)} ${specValue(key, item)}`)
      .join(" · ");
  }
  return humanize(value);
}

// Spec fields that mean something only with a given model, init or optimizer.
const APPLIES = {
  hidden_units: (spec) => spec.type === "two_layer_network",
  activation: (spec) => spec.type === "two_layer_network",
  init_scale: (spec) => spec.init === "random",
  momentum: (spec) => spec.optimizer === "momentum",
  beta1: (spec) => spec.optimizer === "adam",
  beta2: (spec) => spec.optimizer === "adam",
  epsilon: (spec) => spec.optimizer === "adam",
  shuffle: (spec) => spec.batch_size !== null,
};

function renderSpec(selector, spec) {
  const facts = Object.entries(spec).filter(([name]) => !APPLIES[name] || APPLIES[name](spec))
    .map(([name, value]) => [humanize(name), specValue(name, value)]);
  $(selector).replaceChildren(...factRows(facts));
}

// Charts ------------------------------------------------------------------------------

function lossAxes(yLabel, format = fmtNumber, xLabel = "epoch") {
  const axis = { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } };
  return [
    { ...axis, label: xLabel },
    { ...axis, label: yLabel, size: 60, values: (u, ticks) => ticks.map(format) },
  ];
}

/** A uPlot sized to its container that follows the container's width. `options`: `log`
 * (a log10 y axis), `format` (the y values' formatter), `x` (the x series: label, formatter),
 * `y` (extra y scale settings, e.g. a fixed range). */
function makeChart(container, series, data, yLabel, options = {}) {
  const format = options.format || fmtNumber;
  const x = options.x || { label: "epoch", format: fmtInt };
  container.replaceChildren();
  const chart = new uPlot({
    width: Math.max(container.clientWidth, 300),
    height: 280,
    scales: { x: { time: false }, y: { ...(options.log ? { distr: 3, log: 10 } : {}), ...options.y } },
    axes: lossAxes(yLabel, format, x.label),
    cursor: { drag: { x: true, y: false } },
    series: [{ label: x.label, value: (u, v) => x.format(v) },
      ...series.map((s) => ({ width: 2, value: (u, v) => format(v), ...s }))],
  }, data, container);
  const resize = new ResizeObserver(() => {
    if (container.clientWidth > 0) chart.setSize({ width: container.clientWidth, height: 280 });
  });
  resize.observe(container);
  const destroy = chart.destroy.bind(chart);
  chart.destroy = () => { // a destroyed chart must not be resized
    resize.disconnect();
    destroy();
  };
  return chart;
}

/** The loss chart and, beside it, the accuracy chart; both share one epochs array. */
function drawJobChart(points) {
  const epochs = points.map((p) => p.epoch);
  state.chartData = [epochs, points.map((p) => p.train_loss), points.map((p) => p.val_loss)];
  state.accuracyData = [epochs, points.map((p) => p.train_accuracy),
    points.map((p) => p.val_accuracy)];
  drawLossChart();
  state.accuracyChart?.destroy();
  state.accuracyChart = makeChart($("#accuracy-chart"), [
    { label: "train accuracy", stroke: TRAIN_COLOR },
    { label: "validation accuracy", stroke: VAL_COLOR },
  ], state.accuracyData, "accuracy", { format: fmtPercent });
}

function drawLossChart() {
  state.chart?.destroy();
  state.chart = makeChart($("#job-chart"), [
    { label: "train loss", stroke: TRAIN_COLOR },
    { label: "validation loss", stroke: VAL_COLOR },
  ], state.chartData, state.logScale ? "loss (log scale)" : "loss", { log: state.logScale });
}

function toggleLogScale(event) {
  state.logScale = event.currentTarget.checked;
  if (state.chartData) drawLossChart();
}

function appendPoint(point) {
  const [epochs, train, val] = state.chartData;
  if (epochs.length && point.epoch <= epochs.at(-1)) return; // already drawn from the history
  epochs.push(point.epoch); // the accuracy chart's epochs too: the same array
  train.push(point.train_loss);
  val.push(point.val_loss);
  state.accuracyData[1].push(point.train_accuracy);
  state.accuracyData[2].push(point.val_accuracy);
  if (epochs.length > LIVE_POINTS) {
    state.chartData.forEach(halve);
    state.accuracyData.slice(1).forEach(halve);
  }
  // Epochs can arrive by the hundred per second: redraw once per frame, not per epoch.
  if (!state.redrawPending) {
    state.redrawPending = true;
    requestAnimationFrame(() => {
      state.redrawPending = false;
      state.chart?.setData(state.chartData);
      state.accuracyChart?.setData(state.accuracyData);
    });
  }
}

/** Keeps every other point and the last, in place: the chart holds these very arrays. */
function halve(column) {
  const kept = column.filter((_, i) => i % 2 === 0 || i === column.length - 1);
  column.length = 0;
  column.push(...kept);
}

// The live stream ----------------------------------------------------------------------
// EventSource can neither send the API key nor resume after the epochs already loaded (it
// sends Last-Event-ID only on reconnects), so the stream is read with fetch: the same
// text/event-stream protocol, with our headers.

function stopFollowing() {
  state.stream?.abort();
  state.stream = null;
}

async function follow(job, afterEpoch, generation) {
  const controller = new AbortController();
  state.stream = controller;
  let lastEpoch = afterEpoch;
  const onEvent = (type, data) => {
    if (generation !== state.generation) return true;
    if (type === "epoch") {
      lastEpoch = data.epoch;
      appendPoint(data);
      Object.assign(state.job.progress, {
        epoch: data.epoch, train_loss: data.train_loss, val_loss: data.val_loss,
        train_accuracy: data.train_accuracy, val_accuracy: data.val_accuracy,
        percent: (100 * data.epoch) / state.job.progress.epochs,
      });
      renderProgress();
    } else if ((type === "status" || type === "end") && data.status) {
      renderJob(data);
    }
    return type === "end";
  };
  while (!controller.signal.aborted) {
    try {
      if (await readEvents(`/v1/jobs/${job.id}/events`, lastEpoch, controller.signal, onEvent)) {
        break; // the job ended
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status) { // 401, 404: reconnecting would not help
        report(error);
        return;
      }
      setConnection(false);
    }
    await sleep(RECONNECT_MS);
  }
  if (state.stream === controller) state.stream = null;
  if (generation === state.generation && state.job.model_id) {
    await guard(showModel(state.job.model_id, generation));
  }
}

/** Reads one connection of a text/event-stream; true when `onEvent` saw the last event. */
async function readEvents(url, lastEventId, signal, onEvent) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (lastEventId > 0) headers["Last-Event-ID"] = String(lastEventId);
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: "no-store" });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return false; // unreachable: the caller retries
  }
  if (response.status === 401) askForKey();
  if (!response.ok) throw new ApiError(response.status, await readProblem(response));
  setConnection(true);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event && onEvent(event.type, event.data)) {
        reader.cancel();
        return true;
      }
    }
  }
}

/** One event block: `event:` and `data:` lines; comments (keep-alives) and `retry:` carry none. */
function parseEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? { type, data: JSON.parse(data.join("\n")) } : null;
}

// The fitted model: diagnostics, and a one-row prediction form (columns.js) -----------

async function showModel(modelId, generation) {
  const model = await api(`/v1/models/${modelId}?include_parameters=false`);
  if (generation !== state.generation) return;
  renderDiagnostics(model);
  renderEvaluation(model);
  renderPredictForm(model);
  renderRowForm(model);
  $("#model-section").hidden = false;
}

function renderDiagnostics(model) {
  const { diagnostics: d, metrics: m } = model;
  const units = isNumber(d.identical_hidden_units)
    ? `${fmtInt(d.identical_hidden_units)} identical, ${fmtInt(d.distinct_hidden_units)} distinct`
    : "—";
  $("#diagnostics").replaceChildren(...factRows([
    ["Fine-tuned from", parentModelLink(model.parent_model_id)],
    ["Parameters of", modelEpochLabel(m)],
    ["Val loss / accuracy", lossAndAccuracy(m.model_val_loss, m.model_val_accuracy)],
    ["Train loss / accuracy", lossAndAccuracy(m.model_train_loss, m.model_train_accuracy)],
    ["Best epoch", `${fmtInt(m.best_epoch)}: val ${lossAndAccuracy(m.best_val_loss, m.best_val_accuracy)}`],
    ["Last epoch", `${fmtInt(m.epochs_run)}: val ${lossAndAccuracy(m.final_val_loss, m.final_val_accuracy)}`],
    ["Train / val rows", `${fmtInt(m.n_train)} / ${fmtInt(m.n_validation)}`],
    ["Hidden units", units],
    ["Dead units", fmtPercent(d.dead_unit_fraction)],
  ]));
  $("#gradient-norms tbody").replaceChildren(...Object.entries(d.gradient_norms).map(
    ([name, norm]) => el("tr", {}, el("th", { scope: "row" }, name),
      el("td", { className: "num" }, fmtNumber(norm)))));
  const warnings = d.warnings.length ? d.warnings : ["No warnings."];
  $("#warnings").replaceChildren(...warnings.map((text) => el("li", {}, text)));
  $("#warnings").classList.toggle("none", d.warnings.length === 0);
}

/** "epoch 29 (the best; training ran 49)": which epoch's parameters the model holds. */
function modelEpochLabel(metrics) {
  if (!isNumber(metrics.model_epoch)) return "—"; // a model from before the field
  const which = metrics.model_parameters === "best" ? "the best" : "the last";
  return `epoch ${fmtInt(metrics.model_epoch)} (${which} of ${fmtInt(metrics.epochs_run)} run)`;
}

const lossAndAccuracy = (loss, accuracy) => `${fmtNumber(loss)} / ${fmtPercent(accuracy)}`;

/** A fine-tuned model's parent (warm start) as a button that opens the job that trained it,
 * the parent model's page; null (no row) for a model trained from fresh weights. */
function parentModelLink(parentId) {
  if (!parentId) return null;
  return el("button", {
    type: "button", className: "link", title: parentId, id: "parent-model",
    "aria-label": `Show parent model ${shortId(parentId)}`,
    onclick: () => guard(api(`/v1/models/${parentId}?include_parameters=false`)
      .then((parent) => selectJob(parent.job_id))),
  }, shortId(parentId));
}

// ---------------------------------------------------------------------------------------
// Sweeps.

async function refreshSweeps() {
  const page = await api(`/v1/sweeps?limit=${SWEEPS_LIMIT}`);
  renderRows("#sweeps-table", "#sweeps-empty", page.data, sweepRow);
}

function sweepRow(sweep) {
  const selected = state.selection?.kind === "sweep" && state.selection.id === sweep.id;
  return el("tr", { className: selected ? "selected" : null },
    el("td", {}, el("button", {
      type: "button", className: "link", title: sweep.id, "data-id": sweep.id,
      "aria-current": selected ? "true" : null,
      "aria-label": `Show sweep ${shortId(sweep.id)}`, onclick: () => guard(selectSweep(sweep.id)),
    }, shortId(sweep.id))),
    el("td", {}, badge(sweep.status)),
    el("td", {}, searchLabel(sweep.search)),
    el("td", { className: "num" }, trialsDone(sweep.counts)),
    el("td", {}, fmtTime(sweep.created_at)));
}

/** "grid: learning rate × activation" */
const searchLabel = (search) =>
  `${search.strategy}: ${Object.keys(search.space).map(humanize).join(" × ")}`;

/** "4 / 6": trials that have ended, of all. */
function trialsDone(counts) {
  const ended = counts.succeeded + counts.failed + counts.cancelled;
  return `${fmtInt(ended)} / ${fmtInt(counts.total)}`;
}

/** "learning rate 0.1, activation relu": the values a trial set. */
const trialValues = (values) => Object.entries(values || {})
  .map(([name, value]) => `${humanize(name)} ${specValue(name, value)}`).join(", ");

async function selectSweep(id) {
  const generation = select("sweep", id);
  state.sweep = null;
  state.sweepChart?.destroy();
  state.sweepChart = null;
  await refreshSweep(generation);
}

/** The selected sweep's leaderboard and curves; polled while any of its trials runs. */
async function refreshSweep(generation = state.generation) {
  if (state.sweep && TERMINAL.has(state.sweep.status)) return; // nothing changes any more
  const sweep = await api(`/v1/sweeps/${state.selection.id}`);
  if (generation !== state.generation) return;
  state.sweep = sweep;
  showPanel("#sweep-detail");
  $("#sweep-id").textContent = shortId(sweep.id);
  $("#sweep-id").title = sweep.id;
  $("#sweep-status").replaceWith(Object.assign(badge(sweep.status), { id: "sweep-status" }));
  const { counts } = sweep;
  const states = ["succeeded", "running", "cancelling", "queued", "failed", "cancelled"]
    .filter((name) => counts[name] > 0).map((name) => `${fmtInt(counts[name])} ${name}`);
  $("#sweep-facts").replaceChildren(...factRows([
    ["Search", searchLabel(sweep.search)],
    ["Base model", modelLabel(sweep.model)],
    ["Dataset", datasetName(sweep.dataset_id)],
    ["Trials", `${states.join(" · ") || "none"} (${fmtInt(counts.total)} in all)`],
    ["Created", fmtTime(sweep.created_at)],
  ]));
  $("#leaderboard tbody").replaceChildren(...sweep.leaderboard.map(leaderboardRow));
  const histories = await Promise.all(sweep.leaderboard.map(trialHistory));
  if (generation !== state.generation) return;
  drawSweepChart(sweep.leaderboard, histories);
}

function leaderboardRow(trial) {
  return el("tr", {},
    el("td", { className: "num" }, fmtInt(trial.rank)),
    el("td", {}, trialValues(trial.trial) || "—"),
    el("td", {}, badge(trial.status)),
    el("td", { className: "num" }, fmtNumber(trial.best_val_loss)),
    el("td", { className: "num" }, fmtInt(trial.best_epoch)),
    el("td", {}, el("button", {
      type: "button", className: "link", title: trial.job_id,
      "aria-label": `Show job ${shortId(trial.job_id)}`, onclick: () => guard(selectJob(trial.job_id)),
    }, shortId(trial.job_id))));
}

/** A trial's points; a finished trial's are fetched once (they no longer change). */
async function trialHistory(trial) {
  if (!trial.job_id) return [];
  const cached = state.sweepHistories.get(trial.job_id);
  if (cached) return cached;
  const page = await api(`/v1/jobs/${trial.job_id}/history?max_points=${SWEEP_POINTS}`);
  if (TERMINAL.has(trial.status)) state.sweepHistories.set(trial.job_id, page.points);
  return page.points;
}

/** One x axis for all trials: the union of their epochs, each curve null where it has none. */
function drawSweepChart(trials, histories) {
  const epochs = [...new Set(histories.flat().map((p) => p.epoch))].sort((a, b) => a - b);
  const column = new Map(epochs.map((epoch, i) => [epoch, i]));
  const curves = histories.map((points) => {
    const values = new Array(epochs.length).fill(null);
    for (const p of points) values[column.get(p.epoch)] = p.val_loss;
    return values;
  });
  const data = [epochs, ...curves];
  const labels = trials.map((trial) => `#${trial.rank} ${trialValues(trial.trial) || shortId(trial.job_id)}`);
  // Same trials in the same ranks: new data only. A new order rebuilds the legend.
  if (state.sweepChart && state.sweepChart.series.slice(1).map((s) => s.label).join() === labels.join()) {
    state.sweepChart.setData(data);
    return;
  }
  state.sweepChart?.destroy();
  state.sweepChart = makeChart($("#sweep-chart"), labels.map((label, i) => ({
    label, stroke: PALETTE[i % PALETTE.length], spanGaps: true,
    width: i === 0 ? 3 : 1.5, // the leader stands out
  })), data, "validation loss");
}

// ---------------------------------------------------------------------------------------
// Start: the lists, then whatever the address names (#job=ID, #sweep=ID or #dataset=ID).

function restoreSelection() {
  const match = location.hash.match(/^#(job|sweep|dataset)=([\w-]+)$/);
  if (!match) return null;
  const show = { job: selectJob, sweep: selectSweep, dataset: selectDataset };
  return show[match[1]](match[2]);
}

function start() {
  $("#auth-form").addEventListener("submit", useKey);
  $("#predict-form").addEventListener("submit", (event) => guard(predict(event)));
  $("#csv-form").addEventListener("submit", fillFromCsv);
  $("#row-form").addEventListener("submit", (event) => guard(fillFromRow(event)));
  $("#log-scale").addEventListener("change", toggleLogScale);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) guard(refresh());
  });
  guard(refresh(true).then(restoreSelection));
  setTimeout(poll, REFRESH_MS);
}

start();
