/* hwnas report: draws the page's SVG plots from its embedded JSON (#hwnas-data) and makes its tables sortable
   and filterable. Plain JavaScript, no library, nothing fetched: the page works offline. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("hwnas-data").textContent);
  var OBJ = D.objectives, RUNS = D.runs, SRC = D.sources, MULTI = RUNS.length > 1;
  var GREY = "#9aa5b1", W = 560, H = 380, M = {l: 64, r: 16, t: 14, b: 46};
  var selected = null;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function fmt(v) {
    if (v === null || v === undefined) return "n/a";
    var a = Math.abs(v);
    return (a !== 0 && (a >= 1e5 || a < 1e-3)) ? v.toExponential(3) : String(+v.toPrecision(4));
  }
  function quote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
  function finite(v) { return v !== null && v !== undefined && isFinite(v); }

  function scale(lo, hi, a, b, log) {
    var f = log ? Math.log10 : function (v) { return v; };
    lo = f(lo); hi = f(hi);
    if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
    return function (v) { return a + (f(v) - lo) * (b - a) / (hi - lo); };
  }
  function ticks(lo, hi, n, log) {
    var out = [], k, v;
    if (log) {
      for (k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
        v = Math.pow(10, k);
        if (v >= lo / 1.0001 && v <= hi * 1.0001) out.push(v);
      }
      return out.length ? out : [lo, hi];
    }
    if (!(hi > lo)) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    if ((hi - lo) / step > n * 5) step *= 5; else if ((hi - lo) / step > n * 2) step *= 2;
    for (v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function extent(vals) {
    var lo = Infinity, hi = -Infinity;
    vals.forEach(function (v) { if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (lo === Infinity) return [0, 1];
    var pad = (hi - lo) * 0.04 || Math.abs(lo) * 0.04 || 1;
    return [lo - pad, hi + pad];
  }

  /* axes, grid and labels of a plot area: returns SVG markup */
  function axes(xd, yd, xs, ys, xlabel, ylabel, xlog) {
    var s = "", x0 = M.l, x1 = W - M.r, y0 = H - M.b, y1 = M.t;
    ticks(xd[0], xd[1], 6, xlog).forEach(function (t) {
      var x = xs(t).toFixed(1);
      s += "<line class='grid' x1='" + x + "' x2='" + x + "' y1='" + y0 + "' y2='" + y1 + "'/>" +
        "<text class='tick' x='" + x + "' y='" + (y0 + 15) + "' text-anchor='middle'>" + fmt(t) + "</text>";
    });
    ticks(yd[0], yd[1], 6).forEach(function (t) {
      var y = ys(t).toFixed(1);
      s += "<line class='grid' x1='" + x0 + "' x2='" + x1 + "' y1='" + y + "' y2='" + y + "'/>" +
        "<text class='tick' x='" + (x0 - 5) + "' y='" + y + "' dy='0.32em' text-anchor='end'>" + fmt(t) + "</text>";
    });
    s += "<rect class='frame' x='" + x0 + "' y='" + y1 + "' width='" + (x1 - x0) + "' height='" + (y0 - y1) + "'/>";
    s += "<text class='label' x='" + ((x0 + x1) / 2) + "' y='" + (H - 8) + "' text-anchor='middle'>" + esc(xlabel) +
      "</text><text class='label' transform='translate(14," + ((y0 + y1) / 2) + ") rotate(-90)' text-anchor='middle'>" +
      esc(ylabel) + "</text>";
    return s;
  }
  function svg(inner, label, w, h) {
    return "<svg class='plot' viewBox='0 0 " + (w || W) + " " + (h || H) + "' role='img' aria-label='" + esc(label) +
      "'>" + inner + "</svg>";
  }

  /* the front of one run in one pair of objectives, as a staircase */
  function staircase(pts, xs, ys) {
    pts = pts.slice().sort(function (p, q) { return p[0] - q[0] || p[1] - q[1]; });
    var best = Infinity, keep = [];
    pts.forEach(function (p) { if (p[1] < best) { best = p[1]; keep.push(p); } });
    if (keep.length < 2) return "";
    var d = "M" + xs(keep[0][0]).toFixed(1) + "," + ys(keep[0][1]).toFixed(1);
    for (var i = 1; i < keep.length; i++) {
      d += "H" + xs(keep[i][0]).toFixed(1) + "V" + ys(keep[i][1]).toFixed(1);
    }
    return d;
  }

  function scatter(xi, yi) {
    var xv = [], yv = [];
    // one objective: plotted against the evaluation order
    var X = xi === yi ? function (e) { return e.o; } : function (e) { return e.v[xi]; };
    var xlabel = xi === yi ? "evaluation order" : OBJ[xi].label;
    RUNS.forEach(function (run) { run.evals.forEach(function (e) { xv.push(X(e)); yv.push(e.v[yi]); }); });
    var xd = extent(xv), yd = extent(yv);
    var xs = scale(xd[0], xd[1], M.l, W - M.r), ys = scale(yd[0], yd[1], H - M.b, M.t);
    var back = "", fronts = "", lines = "", legend = "";
    RUNS.forEach(function (run, ri) {
      var pts = [];
      run.evals.forEach(function (e, ei) {
        if (!finite(X(e)) || !finite(e.v[yi])) return;
        var c = "cx='" + xs(X(e)).toFixed(1) + "' cy='" + ys(e.v[yi]).toFixed(1) + "' data-k='" + ri + ":" + ei + "'";
        if (e.f) {
          pts.push([X(e), e.v[yi]]);
          fronts += "<circle class='pt front' " + c + " r='5' fill='" + run.colour + "'/>";
        } else if (!e.ok) {
          back += "<circle class='pt infeasible' " + c + " r='3.5'/>";
        } else {
          back += "<circle class='pt' " + c + " r='3' fill='" + (MULTI ? run.colour : GREY) + "' fill-opacity='0.35'/>";
        }
      });
      var d = staircase(pts, xs, ys);
      if (d) lines += "<path class='stair' d='" + d + "' stroke='" + run.colour + "'/>";
      if (MULTI) {
        legend += "<g class='legend'><rect x='" + (W - M.r - 150) + "' y='" + (M.t + 8 + 16 * ri) +
          "' width='10' height='10' fill='" + run.colour + "'/><text x='" + (W - M.r - 135) + "' y='" +
          (M.t + 17 + 16 * ri) + "'>" + esc(run.name) + " (" + pts.length + " on the front)</text></g>";
      }
    });
    var bounds = "";
    (xi === yi ? [[yi, false]] : [[xi, true], [yi, false]]).forEach(function (b) {
      var bound = OBJ[b[0]].bound;
      if (bound === null || bound === undefined) return;
      var p = (b[1] ? xs : ys)(bound).toFixed(1);
      bounds += b[1] ? "<line class='bound' x1='" + p + "' x2='" + p + "' y1='" + M.t + "' y2='" + (H - M.b) + "'/>"
        : "<line class='bound' x1='" + M.l + "' x2='" + (W - M.r) + "' y1='" + p + "' y2='" + p + "'/>";
    });
    return svg(axes(xd, yd, xs, ys, xlabel, OBJ[yi].label) + bounds + back + lines + fronts + legend,
      OBJ[yi].label + " against " + xlabel);
  }

  /* a scatter matrix (every pair of objectives once) up to 5 objectives; beyond, the first against each other */
  function pairs() {
    var m = OBJ.length, out = [];
    if (m === 1) return [[0, 0]];
    for (var i = 0; i < m; i++)
      for (var j = i + 1; j < m; j++) if (m <= 5 || i === 0) out.push([j, i]);
    return out;
  }

  /* parallel coordinates: one axis per objective, lines coloured by Pareto rank, infeasible ones dashed grey */
  function parallel(run) {
    var m = OBJ.length, w = 900, h = 360, left = 80, right = 90, top = 34, bottom = 40;
    var gap = (w - left - right) / (m - 1), ys = [], maxRank = 1, s = "", lines = [];
    for (var j = 0; j < m; j++) {
      var d = extent(run.evals.map(function (e) { return e.v[j]; }));
      ys.push(scale(d[0], d[1], h - bottom, top));
      var x = left + gap * j;
      s += "<line class='axis' x1='" + x + "' x2='" + x + "' y1='" + top + "' y2='" + (h - bottom) + "'/>" +
        "<text class='label' x='" + x + "' y='" + (top - 12) + "' text-anchor='middle'>" + esc(OBJ[j].label) + "</text>" +
        "<text class='tick' x='" + (x + 4) + "' y='" + (h - bottom + 14) + "'>" + fmt(d[0]) + "</text>" +
        "<text class='tick' x='" + (x + 4) + "' y='" + (top + 10) + "'>" + fmt(d[1]) + "</text>";
    }
    run.evals.forEach(function (e) { if (e.ok) maxRank = Math.max(maxRank, e.r); });
    run.evals.forEach(function (e, ei) {
      var p = [];
      for (var j = 0; j < m; j++) {
        if (!finite(e.v[j])) return;
        p.push((left + gap * j).toFixed(1) + "," + ys[j](e.v[j]).toFixed(1));
      }
      var cls = !e.ok ? "pt pc infeasible" : e.r === 0 ? "pt pc front" : "pt pc";
      var colour = !e.ok ? "" : " stroke='" + (e.r === 0 ? RUNS[0].colour : rankColour(e.r / maxRank)) + "'";
      lines.push([e.ok ? -e.r : -1e9, "<polyline class='" + cls + "'" + colour + " points='" + p.join(" ") +
        "' data-k='0:" + ei + "'/>"]);
    });
    lines.sort(function (a, b) { return a[0] - b[0]; });  // the front drawn last, on top
    s += lines.map(function (l) { return l[1]; }).join("");
    s += "<text class='tick' x='" + left + "' y='" + (h - 8) + "'>colour: Pareto rank (red: the front; blue, " +
      "lighter as the rank grows, up to rank " + maxRank + "); dashed grey: infeasible</text>";
    return svg(s, "parallel coordinates", w, h);
  }
  function rankColour(t) {  // ranks 1.. -> blue, lighter for worse ranks
    return "hsl(210,55%," + Math.round(38 + 45 * Math.min(1, t)) + "%)";
  }

  /* hypervolume against evaluations, one line per run; log: a logarithmic evaluations axis */
  function hvPlot(log) {
    var xv = [], yv = [], s = "", legend = "";
    RUNS.forEach(function (run) { run.history.forEach(function (p) { xv.push(p[0]); yv.push(p[1]); }); });
    if (!xv.length) return "<p>No hypervolume history.</p>";
    var xlo = Math.max(1, Math.min.apply(null, xv)), xhi = Math.max.apply(null, xv);
    var xd = log ? [xlo, Math.max(xhi, xlo * 1.5)] : [0, xhi], yd = extent(yv.concat([0]));
    var xs = scale(xd[0], xd[1], M.l, W - M.r, log), ys = scale(yd[0], yd[1], H - M.b, M.t);
    RUNS.forEach(function (run, ri) {
      var pts = run.history.filter(function (p) { return finite(p[1]) && p[0] >= xd[0]; });
      s += "<polyline class='hvline' stroke='" + run.colour + "' points='" + pts.map(function (p) {
        return xs(p[0]).toFixed(1) + "," + ys(p[1]).toFixed(1);
      }).join(" ") + "'/>";
      pts.forEach(function (p) {
        s += "<circle cx='" + xs(p[0]).toFixed(1) + "' cy='" + ys(p[1]).toFixed(1) + "' r='2' fill='" + run.colour +
          "'><title>" + esc(run.name) + ": " + p[0] + " evaluations, hypervolume " + fmt(p[1]) + "</title></circle>";
      });
      if (MULTI) {
        legend += "<rect x='" + (M.l + 10) + "' y='" + (M.t + 8 + 16 * ri) + "' width='10' height='10' fill='" +
          run.colour + "'/><text x='" + (M.l + 25) + "' y='" + (M.t + 17 + 16 * ri) + "'>" + esc(run.name) + "</text>";
      }
    });
    return svg(axes(xd, yd, xs, ys, "unique archs evaluated" + (log ? " (log scale)" : ""),
      "hypervolume (normalised)", log) + s + legend, "hypervolume against evaluations");
  }

  /* tooltip and details panel */
  function item(k) {
    var p = k.split(":"), run = RUNS[+p[0]];
    return {run: run, e: run.evals[+p[1]]};
  }
  function status(e) {
    return (e.ok ? "feasible" : "infeasible (violation " + fmt(e.x) + ")") +
      (e.f ? ", on the Pareto front" : ", Pareto rank " + e.r);
  }
  function values(e) {  // [label, value, provenance] of every objective and constraint
    var out = OBJ.map(function (o, j) { return [o.label, e.v[j], SRC[e.s[j]]]; });
    (e.c || []).forEach(function (c) { out.push([c[0] + " (constraint)", c[1], SRC[c[2]]]); });
    (e.m || []).forEach(function (m) { out.push([m[0] + " (measurement store)", m[1], SRC[m[2]]]); });
    return out;
  }
  function tipHtml(it) {
    var s = (MULTI ? "<b>" + esc(it.run.name) + "</b><br>" : "") + "<code>" + esc(it.e.a) + "</code><br>";
    values(it.e).forEach(function (v) {
      s += esc(v[0]) + " = " + fmt(v[1]) + " <span class='src'>(" + esc(v[2]) + ")</span><br>";
    });
    return s + status(it.e);
  }
  function compared(e) {  // measured vs predicted of one quantity, validation vs test error
    var out = [], byName = {};
    values(e).forEach(function (v) {
      var name = v[0].split("@")[0].split(" ")[0], kind = String(v[2]).split(":")[0];
      (byName[name] = byName[name] || {})[kind] = v;
    });
    Object.keys(byName).forEach(function (n) {
      var b = byName[n];
      if (b.measured && b.predicted) {
        out.push(n + ": measured " + fmt(b.measured[1]) + " (" + b.measured[2] + ") vs predicted " +
          fmt(b.predicted[1]) + " (" + b.predicted[2] + "), predicted - measured = " +
          fmt(b.predicted[1] - b.measured[1]));
      }
    });
    var j = OBJ.map(function (o) { return o.label; }).indexOf("error");
    if (e.t && j >= 0) {
      out.push("error: validation " + fmt(e.v[j]) + " (" + SRC[e.s[j]] + ", what the search selected on) vs test " +
        fmt(e.t[0]) + " (" + SRC[e.t[1]] + ", read once after the search)");
    }
    return out;
  }
  function showDetails(k) {
    var it = item(k), e = it.e, cmd = it.run.export + " " + quote(e.a);
    var rows = values(e).map(function (v) {
      return "<tr><td>" + esc(v[0]) + "</td><td>" + fmt(v[1]) + "</td><td>" + esc(v[2]) + "</td></tr>";
    }).join("");
    var cmp = compared(e);
    document.getElementById("details").innerHTML = "<h3>Selected architecture" +
      (MULTI ? " (" + esc(it.run.name) + ")" : "") + " #" + e.o + "</h3>" +
      "<p>arch: <code id='details-arch'>" + esc(e.a) + "</code></p><p>" + status(e) + "</p>" +
      "<div class='scroll'><table><thead><tr><th>value</th><th></th><th>how it was obtained</th></tr></thead><tbody>" +
      rows + "</tbody></table></div>" +
      (cmp.length ? "<ul>" + cmp.map(function (c) { return "<li>" + esc(c) + "</li>"; }).join("") + "</ul>"
        : "<p>Measured and predicted latency do not both exist for this arch; no test error was read for it.</p>") +
      "<p>Export it (ONNX; <code>--format tflite</code> for LiteRT):</p><pre><code id='export-cmd'>" + esc(cmd) +
      "</code></pre>";
    if (selected) selected.forEach(function (n) { n.classList.remove("sel"); });
    selected = Array.prototype.slice.call(document.querySelectorAll("[data-k='" + k + "']"));
    selected.forEach(function (n) { n.classList.add("sel"); });
  }
  function wireTooltip() {
    var tip = document.getElementById("tip");
    document.addEventListener("mouseover", function (ev) {
      var k = ev.target.getAttribute && ev.target.getAttribute("data-k");
      if (!k) return;
      tip.innerHTML = tipHtml(item(k));
      tip.hidden = false;
      var x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
      tip.style.left = Math.max(4, x) + "px";
      var y = ev.clientY + 14;
      if (y + tip.offsetHeight > window.innerHeight - 4) y = Math.max(4, ev.clientY - tip.offsetHeight - 14);
      tip.style.top = y + "px";
    });
    document.addEventListener("mouseout", function (ev) {
      if (ev.target.getAttribute && ev.target.getAttribute("data-k")) tip.hidden = true;
    });
    document.addEventListener("click", function (ev) {
      var k = ev.target.getAttribute && ev.target.getAttribute("data-k");
      if (k) showDetails(k);
    });
  }

  /* sortable (click a header) and filterable (type into the box above) tables */
  function cellKey(row, i) {
    var t = (row.cells[i] ? row.cells[i].textContent : "").trim(), n = Number(t);
    return t !== "" && isFinite(n) ? [0, n] : [1, t.toLowerCase()];
  }
  function sortBy(table, th) {
    var i = th.cellIndex, asc = th.getAttribute("data-sort") !== "asc", body = table.tBodies[0];
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("data-sort"); });
    th.setAttribute("data-sort", asc ? "asc" : "desc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var p = cellKey(a, i), q = cellKey(b, i), c = p[0] - q[0] || (p[1] < q[1] ? -1 : p[1] > q[1] ? 1 : 0);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function wireTables() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.title = "click to sort";
        th.addEventListener("click", function () { sortBy(table, th); });
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("input.filter"), function (box) {
      var table = document.getElementById(box.getAttribute("data-for")), count = box.nextElementSibling;
      box.addEventListener("input", function () {
        var text = box.value.trim().toLowerCase(), shown = 0, rows = table.tBodies[0].rows;
        Array.prototype.forEach.call(rows, function (r) {
          var show = !text || r.textContent.toLowerCase().indexOf(text) >= 0;
          r.hidden = !show;
          shown += show ? 1 : 0;
        });
        if (count) count.textContent = shown + " of " + rows.length + " rows";
      });
    });
  }

  function draw() {
    var plots = document.getElementById("plots");
    if (plots) plots.innerHTML = pairs().map(function (p) { return scatter(p[0], p[1]); }).join("");
    var pc = document.getElementById("parallel");
    if (pc && OBJ.length >= 3 && !MULTI) pc.innerHTML = parallel(RUNS[0]);
    var hv = document.getElementById("hv"), log = document.getElementById("hv-log");
    if (hv) {
      hv.innerHTML = hvPlot(log && log.checked);
      if (log) log.addEventListener("change", function () { hv.innerHTML = hvPlot(log.checked); });
    }
  }
  draw();
  wireTooltip();
  wireTables();
  document.body.setAttribute("data-ready", "1");
})();
