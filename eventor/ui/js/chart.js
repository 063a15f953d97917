// A small live line chart in inline SVG: appends/s and deliveries/s over the last minutes.

import { fill, fmtRate, h, svg } from "./dom.js";

const W = 600;
const H = 160;
const PAD = { top: 10, right: 8, bottom: 20, left: 36 };

function niceMax(value) {
  if (value <= 5) return 5;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * rateChart(series, slots) → {element, update(values), setSlots(n)}: `series` is
 * [{key, label, tone}]; update takes {key: [numbers, oldest first]} and redraws the last `slots`.
 */
export function rateChart(series, slots = 300) {
  let last = {};
  const plot = svg("g");
  const grid = svg("g", { class: "chart-grid" });
  const figure = svg(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", class: "chart-svg", "aria-hidden": "true" },
    grid,
    plot,
  );
  const legend = h("ul", { class: "chart-legend" });
  const summary = h("figcaption", { class: "visually-hidden" });
  const element = h(
    "figure",
    { class: "chart" },
    h("div", { class: "chart-area" }, figure, h("div", { class: "chart-axis" })),
    legend,
    summary,
  );
  const axis = element.querySelector(".chart-axis");

  function update(values) {
    last = values;
    const all = series.flatMap((s) => (values[s.key] || []).slice(-slots));
    const max = niceMax(Math.max(0, ...all));
    const innerW = W - PAD.left - PAD.right;
    const innerH = H - PAD.top - PAD.bottom;
    const x = (i, n) => PAD.left + innerW * ((slots - n + i) / (slots - 1));
    const y = (v) => PAD.top + innerH * (1 - v / max);
    fill(
      grid,
      [0, 0.5, 1].map((f) =>
        svg("line", {
          x1: PAD.left,
          x2: W - PAD.right,
          y1: y(max * f),
          y2: y(max * f),
          "vector-effect": "non-scaling-stroke",
        }),
      ),
    );
    fill(
      plot,
      series.map((s) => {
        const data = (values[s.key] || []).slice(-slots);
        if (data.length < 2) return null;
        const points = data.map((v, i) => `${x(i, data.length).toFixed(1)},${y(v).toFixed(1)}`);
        const area = `M${x(0, data.length).toFixed(1)},${y(0)} L${points.join(" L")} L${x(data.length - 1, data.length).toFixed(1)},${y(0)} Z`;
        return svg(
          "g",
          { class: `series tone-${s.tone}` },
          svg("path", { d: area, class: "series-area" }),
          svg("polyline", {
            points: points.join(" "),
            class: "series-line",
            "vector-effect": "non-scaling-stroke",
          }),
        );
      }),
    );
    // Axis labels in HTML (an SVG stretched with preserveAspectRatio=none would squash text).
    fill(
      axis,
      h("span", { class: "axis-max" }, `${fmtRate(max)}/s`),
      h(
        "span",
        { class: "axis-start" },
        slots >= 120 ? `${Math.round(slots / 60)} min ago` : `${slots} s ago`,
      ),
      h("span", { class: "axis-end" }, "now"),
    );
    const now = series.map((s) => {
      const data = values[s.key] || [];
      return { ...s, value: data.length ? data[data.length - 1] : null };
    });
    fill(
      legend,
      now.map((s) =>
        h(
          "li",
          { class: `tone-${s.tone}`, dataset: { series: s.key } },
          h("span", { class: "swatch", "aria-hidden": "true" }),
          h("span", { class: "legend-label" }, s.label),
          h("strong", { class: "legend-value" }, s.value === null ? "—" : `${fmtRate(s.value)}/s`),
        ),
      ),
    );
    summary.textContent = now
      .map((s) => `${s.label}: ${s.value === null ? "no data" : `${fmtRate(s.value)} per second`}`)
      .join("; ");
  }

  function setSlots(count) {
    slots = count;
    update(last);
  }

  update({});
  return { element, update, setSlots };
}
