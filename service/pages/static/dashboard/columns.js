// Real tables on the dashboard: a dataset's columns (numeric or categorical, missing cells,
// levels) and a model's one-row prediction form, which takes numbers, levels and missing
// cells, and fills itself from a pasted CSV row. Loaded before app.js, whose helpers (el, $,
// api, state, select, ...) these functions call once the page has started.
"use strict";

// ---------------------------------------------------------------------------------------
// A selected dataset: its facts, warnings and one row per column of the file. Datasets
// uploaded before columns were summarized carry only name, type and role: the rest is —.

async function selectDataset(id) {
  const generation = select("dataset", id);
  const dataset = await api(`/v1/datasets/${id}`);
  if (generation !== state.generation) return;
  showPanel("#dataset-detail");
  renderDataset(dataset);
}

function renderDataset(dataset) {
  $("#dataset-name").textContent = dataset.name;
  $("#dataset-name").title = dataset.id;
  // class_counts is keyed by the service's str(label) ("True", "1.0"): shown as it comes.
  const classes = Object.entries(dataset.class_counts)
    .map(([label, count]) => `${label}: ${fmtInt(count)}`).join(" · ");
  $("#dataset-facts").replaceChildren(...factRows([
    ["Rows", fmtInt(dataset.rows)],
    ["Label", dataset.label],
    ["Classes", classes],
    ["Features", featuresLabel(dataset)],
    ["File", `${dataset.format}, ${fmtBytes(dataset.size_bytes)}`],
    ["Created", fmtTime(dataset.created_at)],
  ]));
  renderWarnings("#dataset-warnings", dataset.warnings);
  $("#schema-table tbody").replaceChildren(...dataset.schema.map(
    (column) => schemaRow(column, dataset.rows)));
}

/** "7, 1 left out": the columns a model reads, and those it does not. */
function featuresLabel(dataset) {
  const ignored = columnsIn(dataset, "ignored");
  const features = fmtInt(columnsIn(dataset, "feature"));
  return ignored ? `${features}, ${fmtInt(ignored)} left out` : features;
}

function schemaRow(column, rows) {
  return el("tr", { className: column.role === "ignored" ? "ignored" : null },
    el("th", { scope: "row" }, column.name),
    el("td", {}, column.role),
    el("td", {}, column.type),
    el("td", {}, column.kind ?? "—"),
    el("td", { className: "num" }, missingLabel(column.missing, rows)),
    el("td", { className: "num" }, fmtInt(column.distinct)),
    el("td", { className: "values" }, valuesLabel(column),
      column.warning ? el("div", { className: "column-warning" }, column.warning) : null));
}

/** "11 (3.2%)": missing cells, and their share of the rows. */
function missingLabel(missing, rows) {
  if (!isNumber(missing)) return "—";
  if (missing === 0 || !rows) return fmtInt(missing);
  return `${fmtInt(missing)} (${fmtPercent(missing / rows)})`;
}

/** A categorical's most frequent levels with their counts, a numeric's min / mean / max. */
function valuesLabel(column) {
  if (column.top_levels?.length) {
    // A level and its count never part at a line break.
    const shown = column.top_levels.map(({ level, count }) => `${level} ${fmtInt(count)}`);
    const more = isNumber(column.distinct) ? column.distinct - column.top_levels.length : 0;
    if (more > 0) shown.push(`… ${fmtInt(more)} more`);
    return shown.flatMap((text, i) => [i ? " · " : "", el("span", { className: "level" }, text)]);
  }
  if ([column.min, column.mean, column.max].some(isNumber)) {
    return `${fmtData(column.min, 6)} / ${fmtData(column.mean, 4)} / ${fmtData(column.max, 6)}`;
  }
  return "—";
}

// The data's own values: no thousands separator (years read 2007, not 2,007), and min / max
// with more digits than a loss needs, so that 123456 does not read 123500.
const DATA_FORMATS = {
  4: new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4, useGrouping: false }),
  6: new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6, useGrouping: false }),
};

function fmtData(value, digits) {
  if (!isNumber(value)) return "—";
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-4 || size >= 1e9)) return value.toExponential(digits - 1);
  return DATA_FORMATS[digits].format(value);
}

function fmtBytes(bytes) {
  if (!isNumber(bytes)) return "—";
  if (bytes < 1024) return `${fmtInt(bytes)} B`;
  if (bytes < 1024 ** 2) return `${fmtNumber(bytes / 1024)} KiB`;
  return `${fmtNumber(bytes / 1024 ** 2)} MiB`;
}

// ---------------------------------------------------------------------------------------
// The prediction form: one control per input column, in feature_names order, a number box
// for a numeric column and a list of the training levels for a categorical one. Either can
// say "missing" (an empty box, the (missing) option): the request sends null, and the model
// fills the cell as it learned to in training.

function renderPredictForm(model) {
  const inputs = inputColumns(model).map((column, index) => el("div", { className: "field" },
    el("label", { for: `feature-${index}`, title: column.name }, column.name),
    column.kind === "categorical" ? levelSelect(column, `feature-${index}`)
      : numberBox(column, `feature-${index}`)));
  $("#predict-inputs").replaceChildren(...inputs);
  $("#prediction").replaceChildren();
  $("#csv-status").textContent = "";
  $("#predict-form").dataset.modelId = model.id;
}

/** The model's input columns; a model that describes none has numeric inputs only. */
function inputColumns(model) {
  const described = new Map((model.columns || []).map((column) => [column.name, column]));
  return model.feature_names.map((name) => described.get(name) || { name, kind: "numeric" });
}

function numberBox(column, id) {
  const filled = isNumber(column.fill_value) ? `: filled with ${fmtNumber(column.fill_value)}` : "";
  return el("input", {
    id, name: column.name, type: "number", step: "any", "data-kind": "numeric",
    placeholder: "empty = missing", title: `Leave empty for a missing value${filled}`,
  });
}

function levelSelect(column, id) {
  const options = [el("option", { value: "", "data-missing": true }, "(missing)"),
    ...sortedLevels(column.levels).map(levelOption)];
  // Levels too rare in training for a feature of their own are still known inputs.
  if (column.infrequent_levels?.length) {
    options.push(el("optgroup", { label: "rare in training" },
      ...sortedLevels(column.infrequent_levels).map(levelOption)));
  }
  return el("select", { id, name: column.name, "data-kind": "categorical" }, ...options);
}

const levelOption = (level) => el("option", { value: level }, level);

/** The model keeps levels in the order it met them; a person looks them up alphabetically
 * ("2" before "10"). */
const sortedLevels = (levels) => [...(levels || [])]
  .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));

/** The form as one record: {column: number | level | null}. */
function formRecord(form) {
  const record = {};
  for (const control of form.querySelectorAll("[data-kind]")) {
    if (control.dataset.kind === "categorical") {
      const option = control.selectedOptions[0];
      record[control.name] = !option || "missing" in option.dataset ? null : option.value;
    } else {
      record[control.name] = control.value === "" ? null : Number(control.value);
    }
  }
  return record;
}

async function predict(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const output = $("#prediction");
  try {
    const answer = await api(`/v1/models/${form.dataset.modelId}/predictions`,
      { method: "POST", body: { records: [formRecord(form)] } });
    output.replaceChildren(...predictionView(answer.predictions[0], answer.warnings || []));
  } catch (error) {
    if (error.status === 401) return;
    output.replaceChildren(el("p", { className: "error-text" }, error.message));
  }
}

function predictionView(prediction, warnings) {
  const ranked = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  return [
    el("p", {}, "Label ", el("strong", { id: "predicted-label" }, String(prediction.label))),
    el("div", { className: "probabilities" }, ...ranked.map(([label, p]) => el("div", {},
      el("span", {}, label),
      el("span", { className: "bar wide", "aria-hidden": "true" },
        el("span", { style: `width: ${100 * p}%` })),
      el("span", { className: "num" }, fmtPercent(p))))),
    ...(warnings.length ? [el("ul", { id: "prediction-warnings", className: "warnings" },
      ...warnings.map((text) => el("li", {}, text)))] : []),
  ];
}

// Filling the form from a pasted CSV row ----------------------------------------------
// Users have rows in files and spreadsheets: a pasted header line and row fill the form by
// column name (other columns, such as the label, are skipped); a row alone fills it in the
// order of the boxes. Empty cells and the service's null tokens are missing cells.

const NULL_TOKENS = new Set(["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]);

/** Rows of cells from CSV text: RFC 4180 quoting ("a ""b""", delimiters and line breaks
 * inside quotes), CRLF or LF; tab-separated when the first line has tabs and no commas (a
 * spreadsheet's copy). Unquoted cells are trimmed; blank lines are skipped. */
function parseCsv(text) {
  const firstLine = text.split(/\r?\n/, 1)[0];
  const delimiter = firstLine.includes("\t") && !firstLine.includes(",") ? "\t" : ",";
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false; // inside quotes
  let wasQuoted = false; // the cell had quotes: its spaces are its own
  const endCell = () => {
    row.push(wasQuoted ? cell : cell.trim());
    cell = "";
    wasQuoted = false;
  };
  const endRow = () => {
    endCell();
    if (row.length > 1 || row[0] !== "") rows.push(row);
    row = [];
  };
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char !== '"') cell += char;
      else if (text[i + 1] === '"') cell += text[++i]; // "" is one quote
      else quoted = false;
    } else if (char === '"') {
      quoted = wasQuoted = true;
    } else if (char === delimiter) {
      endCell();
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i++;
      endRow();
    } else {
      cell += char;
    }
  }
  if (quoted) throw new Error("A quoted cell is not closed: a \" is missing.");
  if (cell !== "" || row.length) endRow();
  return rows;
}

/** {cells: {column: text}, skipped: [header names not in `names`]} from pasted CSV. */
function csvCells(text, names) {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new Error("Paste a CSV row first.");
  if (rows.length > 2) {
    throw new Error(`Found ${rows.length} lines: paste one row, alone or under its header line.`);
  }
  const row = rows.at(-1);
  if (rows.length === 1) {
    if (row.length !== names.length) {
      throw new Error(`A row alone needs ${names.length} cells, in this order: ` +
        `${names.join(", ")}. It has ${row.length}; or paste the header line above it.`);
    }
    if (row.every((cell, i) => cell === names[i]) && names.length > 0) {
      throw new Error("That is the header line: paste a row under it.");
    }
    return { cells: Object.fromEntries(names.map((name, i) => [name, row[i]])), skipped: [] };
  }
  const header = rows[0];
  if (row.length !== header.length) {
    throw new Error(`The header line has ${header.length} cells, the row ${row.length}.`);
  }
  const absent = names.filter((name) => !header.includes(name));
  if (absent.length) throw new Error(`The header line has no column ${absent.join(", ")}.`);
  return {
    cells: Object.fromEntries(names.map((name) => [name, row[header.indexOf(name)]])),
    skipped: header.filter((name) => !names.includes(name)),
  };
}

/** What a control is set to for a CSV cell, or an Error saying why it cannot be. */
function controlValue(control, text) {
  if (NULL_TOKENS.has(text)) return { missing: true };
  if (control.dataset.kind === "numeric") {
    const number = Number(text);
    return Number.isFinite(number) ? { value: String(number) }
      : new Error(`${control.name}: "${text}" is not a number`);
  }
  const levels = [...control.options].filter((option) => !("missing" in option.dataset));
  // A file's True or TRUE is the level "true": the service keeps booleans as "false", "true".
  const option = levels.find((o) => o.value === text)
    || levels.find((o) => o.value.toLowerCase() === text.toLowerCase());
  return option ? { value: option.value } : { unseen: text };
}

/** Sets the form's controls; a level the model never saw is added as an option of its own
 * (the service encodes it as all zeros and says so), so the row is sent as it was pasted. */
function setControl(control, setting) {
  control.querySelector("option[data-unseen]")?.remove();
  if (setting.missing) {
    control.value = "";
  } else if (setting.unseen !== undefined) {
    control.append(el("option", { value: setting.unseen, "data-unseen": true },
      `${setting.unseen} (not seen in training)`));
    control.value = setting.unseen;
  } else {
    control.value = setting.value;
  }
}

function fillFromCsv(event) {
  event.preventDefault();
  const status = $("#csv-status");
  const controls = [...$("#predict-form").querySelectorAll("[data-kind]")];
  try {
    const { cells, skipped } = csvCells($("#csv-row").value, controls.map((c) => c.name));
    const settings = controls.map((control) => controlValue(control, cells[control.name]));
    const errors = settings.filter((setting) => setting instanceof Error);
    if (errors.length) throw new Error(errors.map((error) => error.message).join("; "));
    controls.forEach((control, i) => setControl(control, settings[i]));
    const missing = settings.filter((setting) => setting.missing).length;
    const unseen = settings.filter((setting) => setting.unseen !== undefined).length;
    status.textContent = [`Filled ${controls.length} columns`,
      missing ? `${missing} missing` : null, unseen ? `${unseen} not seen in training` : null,
      skipped.length ? `skipped ${skipped.join(", ")}` : null].filter(Boolean).join(", ") + ".";
    status.classList.remove("error-text");
  } catch (error) {
    status.textContent = error.message;
    status.classList.add("error-text");
  }
}

// Filling the form from a stored dataset's row ------------------------------------------
// A row of the model's own dataset (or any stored one with its columns) fills the form as
// the file had it; the label is shown beside, so the prediction can be checked against it.

function renderRowForm(model) {
  const select = $("#row-dataset");
  const datasets = [...state.datasets.values()];
  select.replaceChildren(...datasets.map((dataset) =>
    el("option", { value: dataset.id }, `${dataset.name} (${fmtInt(dataset.rows)} rows)`)));
  if (model.dataset_id && state.datasets.has(model.dataset_id)) select.value = model.dataset_id;
  $("#row-form").hidden = datasets.length === 0;
  $("#row-status").textContent = "";
}

async function fillFromRow(event) {
  event.preventDefault();
  const status = $("#row-status");
  const datasetId = $("#row-dataset").value;
  const row = Number($("#row-number").value);
  try {
    if (!Number.isInteger(row) || row < 0) throw new Error("A row number is 0 or more.");
    const page = await api(`/v1/datasets/${datasetId}/rows?offset=${row}&limit=1`);
    if (!page.rows.length) {
      throw new Error(`The dataset has ${fmtInt(page.total_rows)} rows: the last is ` +
        `${fmtInt(page.total_rows - 1)}.`);
    }
    const { values, label } = page.rows[0];
    const controls = [...$("#predict-form").querySelectorAll("[data-kind]")];
    const absent = controls.filter((control) => !(control.name in values));
    if (absent.length) {
      throw new Error(`That dataset has no column ${absent.map((c) => c.name).join(", ")}.`);
    }
    for (const control of controls) {
      const value = values[control.name];
      setControl(control, value === null ? { missing: true } : controlValue(control, String(value)));
    }
    status.textContent = `Filled from row ${fmtInt(row)}; its label is ${label}.`;
    status.dataset.label = String(label);
    status.classList.remove("error-text");
  } catch (error) {
    if (error.status === 401) return;
    status.textContent = error.message;
    status.classList.add("error-text");
  }
}
