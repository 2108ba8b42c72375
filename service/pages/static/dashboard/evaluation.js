// A fitted model's evaluation (GET /v1/models/{id}: `evaluation`, measured on its validation
// split, or its training split when none was held out): accuracy, log-loss and ROC AUC, the
// confusion matrix as a table, and the ROC curve drawn with uPlot. Loaded before app.js,
// whose helpers (el, $, state, makeChart, fmt*) these functions call once the page runs.
"use strict";

const CHANCE_COLOR = "#94a3b8";

function renderEvaluation(model) {
  const evaluation = model.evaluation;
  state.rocChart?.destroy();
  state.rocChart = null;
  $("#evaluation-section").hidden = !evaluation;
  if (!evaluation) return; // a model from before evaluations, or a listing's copy
  $("#evaluation-split").textContent =
    `on the ${evaluation.split} split, ${fmtInt(evaluation.rows)} rows`;
  $("#evaluation-facts").replaceChildren(...factRows([
    ["Accuracy", fmtPercent(evaluation.accuracy)],
    ["Log-loss", fmtNumber(evaluation.log_loss)],
    ["ROC AUC", aucLabel(evaluation.roc_auc)],
    ["Macro F1", fmtNumber(evaluation.macro?.f1)],
  ]));
  renderConfusionMatrix(evaluation.confusion_matrix, model.classes);
  drawRocChart(evaluation.roc_curve, model.classes);
}

/** A number for two classes; "macro 0.98 · weighted 0.97" (one-vs-rest) for more. */
function aucLabel(auc) {
  if (auc === null || auc === undefined) return "— (one class in the split)";
  if (isNumber(auc)) return fmtNumber(auc);
  return `macro ${fmtNumber(auc.macro)} · weighted ${fmtNumber(auc.weighted)}`;
}

/** Rows: the true class; columns: the predicted one. A cell's shade is its share of its row
 * (recall on the diagonal), so a rare class's errors show as plainly as a common one's. */
function renderConfusionMatrix(matrix, classes) {
  const names = classes.map(String);
  $("#confusion-matrix thead").replaceChildren(el("tr", {},
    el("th", { scope: "col" }, "true \\ predicted"),
    ...names.map((name) => el("th", { scope: "col", className: "num" }, name))));
  $("#confusion-matrix tbody").replaceChildren(...matrix.map((counts, i) => {
    const total = counts.reduce((sum, count) => sum + count, 0);
    return el("tr", {}, el("th", { scope: "row" }, names[i]),
      ...counts.map((count, j) => {
        const share = total ? count / total : 0;
        const hue = i === j ? "37 99 235" : "220 38 38"; // right: blue; wrong: red
        return el("td", {
          className: "num",
          title: `${names[i]} predicted as ${names[j]}: ${fmtInt(count)} of ${fmtInt(total)}`,
          style: count ? `background: rgb(${hue} / ${(0.08 + 0.5 * share).toFixed(3)})` : null,
        }, fmtInt(count));
      }));
  }));
}

/** One curve for two classes, one per class (one-vs-rest) for more, and the chance line.
 * uPlot draws series over one shared x array: the curves' points are merged in order of
 * false positive rate, each series null where another's point stands, and spanGaps joins a
 * curve's own points with straight lines, as an ROC curve is drawn. */
function drawRocChart(roc, classes) {
  const container = $("#roc-chart");
  if (!roc) {
    container.replaceChildren(el("p", { className: "empty" }, "No ROC curve for this split."));
    return;
  }
  const curves = Array.isArray(roc)
    ? roc.map((curve) => ({ label: `${curve.class} vs rest`, fpr: curve.fpr, tpr: curve.tpr }))
    : [{ label: `${classes.at(-1)} (positive)`, fpr: roc.fpr, tpr: roc.tpr }];
  curves.push({ label: "chance", fpr: [0, 1], tpr: [0, 1], chance: true });
  const points = curves.flatMap((curve, series) =>
    curve.fpr.map((fpr, i) => ({ series, fpr, tpr: curve.tpr[i] })));
  points.sort((a, b) => a.fpr - b.fpr || a.tpr - b.tpr || a.series - b.series);
  const data = [points.map((p) => p.fpr),
    ...curves.map((_, series) => points.map((p) => (p.series === series ? p.tpr : null)))];
  state.rocChart = makeChart(container, curves.map((curve, i) => ({
    label: curve.label,
    stroke: curve.chance ? CHANCE_COLOR : PALETTE[i % PALETTE.length],
    dash: curve.chance ? [4, 4] : undefined,
    width: curve.chance ? 1 : 2,
    spanGaps: true,
  })), data, "true positive rate", {
    format: fmtNumber,
    x: { label: "false positive rate", format: fmtNumber },
    y: { range: [0, 1] },
  });
}
