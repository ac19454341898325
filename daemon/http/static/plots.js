// Time-series plots with uPlot (bundled): rule thresholds as dashed level-coloured lines,
// the inverse-velocity forecast as a vertical line, rainfall as bars.
"use strict";
window.Plots = (function () {
  const COLORS = { blue: "#2f6fdf", yellow: "#e0b900", orange: "#f07c1a", red: "#d7261e" };
  const LEVELS = ["blue", "yellow", "orange", "red"];

  function width(el) { return Math.max(260, Math.floor(el.clientWidth || 320)); }

  // a vertical line at the forecast failure time, drawn over the plot
  function forecastPlugin(ft) {
    return { hooks: { draw: [u => {
      const x = u.valToPos(ft, "x", true);
      if (!isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      const c = u.ctx; c.save(); c.strokeStyle = COLORS.red; c.setLineDash([6, 4]); c.lineWidth = 2;
      c.beginPath(); c.moveTo(x, u.bbox.top); c.lineTo(x, u.bbox.top + u.bbox.height); c.stroke(); c.restore();
    }] } };
  }

  // threshold lines: absolute values as they are; changes from a baseline, taken as the first
  // point shown (the rule's own baseline may lie before the plotted window) and drawn on the
  // side the series is moving to, since a change counts either way
  function thresholdLines(s, t) {
    const out = [], th = s.thresholds || {};
    const first = s.v.length ? s.v[0] : 0, sign = s.v.length && s.v[s.v.length - 1] < first ? -1 : 1;
    for (const [what, base, dir] of [["absolute", 0, 1], ["change", first, sign]]) {
      const lv = th[what]; if (!lv) continue;
      for (const level of LEVELS) {
        if (lv[level] == null) continue;
        const y = base + dir * lv[level];
        out.push({ label: `${t.lv[level]} ${what === "change" ? "Δ" : ""}${lv[level]}`, color: COLORS[level],
                   data: s.t.map(() => y) });
      }
    }
    return out;
  }

  function line(el, s, t) {
    const lines = thresholdLines(s, t);
    const fc = s.forecast;
    const xs = s.t.slice();
    let xmax = xs.length ? xs[xs.length - 1] : null;
    // show the predicted failure when it falls within a week after the newest reading
    if (fc && xmax != null && fc.failure_time > xmax && fc.failure_time < xmax + 7 * 86400) xmax = fc.failure_time;
    const opts = {
      width: width(el), height: 220, cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true, range: (u, min, max) => [min, Math.max(max, xmax ?? max)] } },
      series: [{}, { label: `${s.device} ${s.channel}`, stroke: "#18243a", width: 1.5, points: { show: s.t.length < 60 } },
        ...lines.map(l => ({ label: l.label, stroke: l.color, width: 1, dash: [5, 4], points: { show: false } }))],
      axes: [{}, { size: 56 }],
      plugins: fc ? [forecastPlugin(fc.failure_time)] : [],
    };
    return new uPlot(opts, [xs, s.v, ...lines.map(l => l.data)], el);
  }

  function bars(el, s, t) {
    const opts = {
      width: width(el), height: 180,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{}, { label: `${s.device} mm`, stroke: COLORS.blue, fill: "rgba(47,111,223,.45)",
                     paths: uPlot.paths.bars({ size: [0.8, 12] }), points: { show: false } }],
      axes: [{}, { size: 48 }],
    };
    return new uPlot(opts, [s.t, s.v], el);
  }

  // a phone turned sideways: plots follow their box's new width
  function fit(u) { u.setSize({ width: width(u.root.parentNode), height: u.height }); }

  return { line, bars, fit, COLORS };
})();
