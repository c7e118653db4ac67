// Stat tiles with small time charts (uPlot, vendored). A stats message comes once a second;
// each tile keeps the last POINTS of its figure and redraws in place.
import uPlot from "../vendor/uPlot.esm.js";
import { el } from "./ui.js";

const POINTS = 300; // five minutes at one stats message a second

// At least two minutes wide: a single point (a tile's first second, a one-minute live) would
// otherwise stretch the time axis over years.
function timeRange(u, min, max) {
  const xs = u.data[0];
  if (!xs.length) return [min, max];
  const [first, last] = [xs[0], xs[xs.length - 1]];
  return last - first < 120 ? [first - 60, last + 60] : [first, last];
}

export function lineChart(container, { width, height, series, xs, ys, axes = false }) {
  const options = {
    width,
    height,
    legend: { show: false },
    cursor: { show: axes },
    scales: { x: { time: true, range: timeRange } },
    axes: axes ? [{}, { size: 60 }] : [{ show: false }, { show: false }],
    series: [{}, ...series.map((label) => ({ label, stroke: "#e4572e", width: 1.5 }))],
  };
  return new uPlot(options, [xs, ...ys], container);
}

export class StatTile {
  constructor(label, format) {
    this.format = format;
    this.xs = [];
    this.ys = [];
    this.value = el("div", { class: "tile-value" }, "—");
    this.chartBox = el("div", { class: "tile-chart" });
    this.root = el("div", { class: "tile" }, el("div", { class: "tile-label" }, label),
      this.value, this.chartBox);
    this.chart = null;
  }

  push(ts, value) {
    this.value.textContent = this.format(value);
    this.xs.push(ts / 1000);
    this.ys.push(value);
    if (this.xs.length > POINTS) {
      this.xs.shift();
      this.ys.shift();
    }
    if (this.chart === null) {
      this.chart = lineChart(this.chartBox, {
        width: 180, height: 40, series: [""], xs: this.xs, ys: [this.ys],
      });
    } else {
      this.chart.setData([this.xs, this.ys]);
    }
  }
}
