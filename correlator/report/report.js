// The script of the `vmtrace report` page: draws the analyses embedded in
// the #vmtrace-data element (docs/analysis-output.md) with plain DOM and
// SVG, no libraries, no network.  When done it sets
// <html data-render="ok">; errors are recorded on data-js-errors.
(function () {
  'use strict';

  var STATES = [
    { key: 'guest', label: 'Guest', what: 'running guest code (entry to exit)' },
    { key: 'hypervisor', label: 'Hypervisor', what: 'in KVM or QEMU between an exit and the next entry' },
    { key: 'preempted', label: 'Preempted', what: 'switched out by the host while runnable' },
    { key: 'idle', label: 'Idle', what: 'switched out while blocked (e.g. after HLT)' }
  ];
  var UNKNOWN = { key: 'unknown', label: 'Unknown', what: 'before the first event that tells, or not covered' };
  var NONDET = [
    ['pio', 'Port I/O'], ['mmio', 'MMIO'], ['msr', 'MSR'], ['interrupt', 'Interrupt injections'],
    ['exception', 'Exception injections'], ['hypercall', 'Hypercalls']
  ];

  // ---- small helpers -------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, children) {
    var node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === 'text') node.textContent = String(value);
      else if (name === 'style' && typeof value === 'object') Object.assign(node.style, value);
      else node.setAttribute(name, String(value));
    });
  }

  function append(node, children) {
    if (children === undefined || children === null || children === false) return;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (child) {
      if (child === undefined || child === null || child === false) return;
      if (Array.isArray(child)) append(node, child);
      else node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    });
  }

  function num(value) {
    var n = typeof value === 'number' ? value : (typeof value === 'string' && value !== '' ? Number(value) : NaN);
    return isFinite(n) ? n : NaN;
  }

  function sum(values) {
    var total = 0;
    (values || []).forEach(function (v) { var n = num(v); if (!isNaN(n)) total += n; });
    return total;
  }

  function present(value) { return value !== undefined && value !== null; }
  function isObject(value) { return value !== null && typeof value === 'object' && !Array.isArray(value); }
  function asArray(value) { return Array.isArray(value) ? value : []; }
  function asObject(value) { return isObject(value) ? value : {}; }

  var DASH = '\u2013';

  function fmtInt(value) {
    var n = num(value);
    if (isNaN(n)) return DASH;
    var text = String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (n < 0 ? '-' : '') + text;
  }

  function sig3(x) {
    var a = Math.abs(x);
    if (a >= 100) return x.toFixed(0);
    if (a >= 10) return x.toFixed(1);
    return x.toFixed(2);
  }

  function fmtDur(value) {
    var ns = num(value);
    if (isNaN(ns)) return DASH;
    var a = Math.abs(ns);
    if (a === 0) return '0';
    if (a < 1e3) return Math.round(ns) + ' ns';
    if (a < 1e6) return sig3(ns / 1e3) + ' \u00b5s';
    if (a < 1e9) return sig3(ns / 1e6) + ' ms';
    if (a < 1e12) return sig3(ns / 1e9) + ' s';
    return fmtInt(ns / 1e9) + ' s';
  }

  // Two significant digits, no space: axis labels.
  function fmtDurShort(value) {
    var ns = num(value);
    if (isNaN(ns)) return DASH;
    if (ns === 0) return '0';
    var units = [[1e9, 's'], [1e6, 'ms'], [1e3, '\u00b5s'], [1, 'ns']];
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(ns) >= units[i][0] || i === units.length - 1) {
        var v = ns / units[i][0];
        return (Math.abs(v) >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10)) + units[i][1];
      }
    }
    return DASH;
  }

  function fmtPct(fraction) {
    var f = num(fraction);
    if (isNaN(f)) return DASH;
    var p = f * 100;
    if (p === 0) return '0%';
    if (p < 0.1) return '<0.1%';
    if (p > 99.9 && p < 100) return '>99.9%';
    return p.toFixed(1) + '%';
  }

  function fmtRate(value) {
    var r = num(value);
    if (isNaN(r)) return DASH;
    return r >= 1000 ? fmtInt(r) : sig3(r);
  }

  function share(part, total) { return total > 0 ? part / total : NaN; }

  // ---- hover box -----------------------------------------------------

  var tip = document.getElementById('tip');
  var rowInfo = new WeakMap();  // timeline row -> {vm, vcpu, ...}

  function showTip(text, x, y) {
    var lines = String(text).split('\n');
    tip.textContent = '';
    tip.appendChild(el('b', { text: lines[0] }));
    if (lines.length > 1) tip.appendChild(document.createTextNode('\n' + lines.slice(1).join('\n')));
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = x + 14, top = y + 16;
    if (left + w > window.innerWidth - 8) left = Math.max(8, x - w - 14);
    if (top + h > window.innerHeight - 8) top = Math.max(8, y - h - 12);
    tip.style.left = left + 'px';
    tip.style.top = top + 'px';
  }

  function hideTip() { tip.hidden = true; }

  function timelineTip(row, event) {
    var info = rowInfo.get(row);
    var rect = row.getBoundingClientRect();
    if (!info || rect.width <= 0 || info.bins <= 0) return null;
    var offset = Math.min(Math.max(event.clientX - rect.left, 0), rect.width - 0.001);
    var bin = Math.floor(offset / rect.width * info.bins);
    var cursor = row.querySelector('.tl-cursor');
    if (cursor) cursor.style.left = ((bin + 0.5) / info.bins * 100) + '%';
    var from = bin * info.binNs, to = (bin + 1) * info.binNs;
    var lines = [info.vmName + ' \u00b7 vCPU ' + info.vcpu,
                 fmtSeconds(from / 1e9, info.binNs / 1e9) + ' \u2013 ' + fmtSeconds(to / 1e9, info.binNs / 1e9) + ' s'];
    var known = 0;
    STATES.forEach(function (s) {
      var f = num(asArray(info.series[s.key])[bin]);
      if (isNaN(f)) f = 0;
      known += f;
      lines.push(s.label + ': ' + fmtPct(f) + '  (' + fmtDur(f * info.binNs) + ')');
    });
    if (known < 0.9995) lines.push(UNKNOWN.label + ': ' + fmtPct(1 - known));
    return lines.join('\n');
  }

  document.addEventListener('mousemove', function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var row = target && target.closest('.tl-row');
    var text = row ? timelineTip(row, event) : null;
    if (!text) {
      var holder = target && target.closest('[data-tip]');
      text = holder ? holder.getAttribute('data-tip') : null;
    }
    if (text) showTip(text, event.clientX, event.clientY);
    else hideTip();
  });
  document.addEventListener('mouseleave', hideTip);
  window.addEventListener('scroll', hideTip, { passive: true });

  // ---- time axis -----------------------------------------------------

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / power;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
  }

  function decimalsFor(step) {
    return Math.max(0, Math.min(9, -Math.floor(Math.log10(step) + 1e-9)));
  }

  function fmtSeconds(seconds, step) {
    return seconds.toFixed(decimalsFor(step > 0 ? step : 1));
  }

  function axis(spanS) {
    var node = el('div', { class: 'axis' });
    if (!(spanS > 0)) return node;
    var step = niceStep(spanS / 8);
    var count = Math.floor(spanS / step + 1e-9);
    for (var i = 0; i <= count; i++) {
      var t = i * step;
      var pct = t / spanS * 100;
      node.appendChild(el('div', { class: 'tick', style: { left: pct + '%' } }));
      var cls = 'tick-label' + (i === 0 ? ' first' : (pct > 97 ? ' last' : ''));
      node.appendChild(el('div', { class: cls, style: { left: pct + '%' }, text: fmtSeconds(t, step) }));
    }
    return node;
  }

  // ---- timeline ------------------------------------------------------

  // The SVG path of one state's band: between the cumulative fractions of
  // the states below it (lo) and including it (hi), as steps per bin, in a
  // viewBox of bins x 1.
  function bandPath(lo, hi) {
    var n = hi.length;
    var r = function (v) { return Math.round(v * 10000) / 10000; };
    var parts = ['M0 ' + r(1 - hi[0])];
    for (var i = 0; i < n; i++) {
      if (i > 0 && hi[i] !== hi[i - 1]) parts.push('V' + r(1 - hi[i]));
      parts.push('H' + (i + 1));
    }
    parts.push('V' + r(1 - lo[n - 1]));
    for (var j = n - 1; j >= 0; j--) {
      if (j < n - 1 && lo[j] !== lo[j + 1]) parts.push('V' + r(1 - lo[j]));
      parts.push('H' + j);
    }
    parts.push('Z');
    return parts.join('');
  }

  function timelineRow(vm, series, bins, binNs) {
    var vcpu = series.vcpu;
    var graphic = svg('svg', { viewBox: '0 0 ' + bins + ' 1', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    var lo = new Array(bins).fill(0);
    STATES.forEach(function (s) {
      var values = asArray(series[s.key]);
      var hi = lo.map(function (base, i) {
        var f = num(values[i]);
        return Math.min(1, base + (f > 0 ? f : 0));
      });
      if (hi.some(function (v, i) { return v > lo[i]; })) {
        graphic.appendChild(svg('path', { d: bandPath(lo, hi), class: 'band band-' + s.key }));
      }
      lo = hi;
    });
    var row = el('div', {
      class: 'tl-row', 'data-vm': vm.name, 'data-vcpu': vcpu, 'data-bins': bins,
      role: 'img', 'aria-label': 'vCPU ' + vcpu + ' state timeline'
    }, [graphic, el('div', { class: 'tl-cursor' })]);
    rowInfo.set(row, { vmName: vm.name, vcpu: vcpu, bins: bins, binNs: binNs, series: series });
    return row;
  }

  function legend(withUnknown) {
    var states = withUnknown ? STATES.concat([UNKNOWN]) : STATES;
    return el('div', { class: 'legend' }, states.map(function (s) {
      return el('span', { class: 'key', 'data-tip': s.label + '\n' + s.what }, [
        el('span', { class: 'swatch state-' + s.key }), s.label
      ]);
    }));
  }

  function timelineSection(vm, vcpuByNumber) {
    var timeline = asObject(vm.timeline);
    var bins = Math.max(0, Math.floor(num(timeline.bins)) || 0);
    var binNs = num(timeline.bin_ns);
    var rows = asArray(timeline.vcpus).slice().sort(function (a, b) { return num(a.vcpu) - num(b.vcpu); });
    var section = el('section', { class: 'timeline-section' }, [el('h3', { text: 'vCPU states over time' })]);
    if (!bins || !rows.length || !(binNs > 0)) {
      section.appendChild(el('p', { class: 'muted', text: 'No timeline in the analysis.' }));
      return section;
    }
    section.appendChild(legend(true));
    var grid = el('div', { class: 'timeline', 'data-vm': vm.name });
    rows.forEach(function (series) {
      var info = vcpuByNumber[series.vcpu];
      grid.appendChild(el('div', { class: 'tl-label' }, [
        'vCPU ' + series.vcpu,
        present(series.tid) ? el('span', { class: 'sub', text: 'tid ' + series.tid })
          : (info && present(info.tid) ? el('span', { class: 'sub', text: 'tid ' + info.tid }) : null)
      ]));
      grid.appendChild(timelineRow(vm, series, bins, binNs));
    });
    grid.appendChild(el('div'));
    grid.appendChild(axis(bins * binNs / 1e9));
    grid.appendChild(el('div', {
      class: 'axis-title',
      text: 'seconds since the start of the trace \u00b7 ' + fmtInt(bins) + ' bins of ' + fmtDur(binNs)
    }));
    section.appendChild(grid);
    return section;
  }

  // ---- tables --------------------------------------------------------

  function table(headers, rows, options) {
    options = options || {};
    var head = el('thead', null, el('tr', null, headers.map(function (h) {
      return el('th', { class: h.cls, text: h.label, 'data-tip': h.tip });
    })));
    var body = el('tbody', null, rows);
    return el('div', { class: 'table-wrap' }, el('table', { class: options.cls }, [head, body]));
  }

  function td(content, attrs) { return el('td', attrs, content); }

  function shareBar(parts) {
    return el('div', { class: 'bar' }, parts.filter(function (p) { return p.fraction > 0; }).map(function (p) {
      return el('span', {
        class: 'state-' + p.key, style: { width: (p.fraction * 100) + '%' },
        'data-tip': p.label + '\n' + fmtPct(p.fraction)
      });
    }));
  }

  function statesSection(vm) {
    var vcpus = asArray(vm.vcpus).slice().sort(function (a, b) { return num(a.vcpu) - num(b.vcpu); });
    var section = el('section', null, [el('h3', { text: 'Time per state and vCPU' })]);
    if (!vcpus.length) {
      section.appendChild(el('p', { class: 'muted', text: 'No vCPU was seen.' }));
      return section;
    }
    var all = STATES.concat([UNKNOWN]);
    var totals = {};
    var rows = vcpus.map(function (v) {
      var states = asObject(v.states_ns);
      var total = sum(all.map(function (s) { return states[s.key]; }));
      all.forEach(function (s) { totals[s.key] = (totals[s.key] || 0) + (num(states[s.key]) || 0); });
      var cells = [td('vCPU ' + v.vcpu), td(present(v.tid) ? String(v.tid) : DASH)];
      all.forEach(function (s) {
        var ns = num(states[s.key]);
        var pct = share(ns, total);
        cells.push(td([fmtDur(ns), isNaN(pct) ? null : el('span', { class: 'pct', text: fmtPct(pct) })], {
          'data-tip': 'vCPU ' + v.vcpu + ' \u00b7 ' + s.label + '\n' + fmtDur(ns) + ' (' + fmtPct(share(ns, total)) +
            ')' + (asObject(v.intervals)[s.key] !== undefined ? '\n' + fmtInt(v.intervals[s.key]) + ' intervals' : '')
        }));
      });
      cells.push(td(fmtInt(v.exits)));
      cells.push(td(fmtInt(v.pcpu_migrations)));
      cells.push(td(shareBar(all.map(function (s) {
        return { key: s.key, label: s.label, fraction: share(num(states[s.key]) || 0, total) };
      })), { class: 'text' }));
      return el('tr', { 'data-vcpu': v.vcpu }, cells);
    });
    var headers = [{ label: 'vCPU' }, { label: 'Thread', tip: 'Host thread (QEMU vCPU thread)' }]
      .concat(all.map(function (s) { return { label: s.label, tip: s.label + '\n' + s.what }; }))
      .concat([{ label: 'Exits' }, { label: 'pCPU migrations', tip: 'Moves of the vCPU thread between physical CPUs' },
               { label: 'Share', cls: 'text' }]);
    section.appendChild(table(headers, rows, { cls: 'states' }));
    return section;
  }

  // ---- exits ---------------------------------------------------------

  function exitRow(e, withVcpu) {
    var lat = asObject(e.latency_ns);
    var cells = [];
    if (withVcpu) cells.push(td('vCPU ' + e.vcpu));
    cells.push(td(e.reason, { class: 'text' }));
    cells.push(td(present(e.code) ? String(e.code) : DASH));
    cells.push(td(fmtInt(e.count)));
    cells.push(td(fmtRate(e.rate_per_s)));
    ['min', 'p50', 'p90', 'p99', 'max', 'mean'].forEach(function (k) { cells.push(td(fmtDur(lat[k]))); });
    return cells;
  }

  var EXIT_HEADERS = [
    { label: 'Reason', cls: 'text' }, { label: 'Code' }, { label: 'Count' }, { label: 'Rate /s' },
    { label: 'Min' }, { label: 'p50' }, { label: 'p90' }, { label: 'p99' }, { label: 'Max' }, { label: 'Mean' }
  ];

  function exitsTable(vm) {
    var exits = asArray(vm.exits);
    var overall = exits.filter(function (e) { return e.vcpu === 'all'; });
    var perVcpu = exits.filter(function (e) { return e.vcpu !== 'all'; });
    if (!overall.length) overall = perVcpu;
    if (!overall.length) return [el('p', { class: 'muted', text: 'No exits in the analysis.' })];
    var total = sum(overall.map(function (e) { return e.count; }));
    overall = overall.slice().sort(function (a, b) { return num(b.count) - num(a.count); });
    var rows = overall.map(function (e) {
      var cells = exitRow(e, false);
      var f = share(num(e.count), total);
      cells.push(td(el('div', { class: 'hbar', style: { width: (f * 100 || 0) + '%' } }), {
        class: 'hbar-cell text', 'data-tip': e.reason + '\n' + fmtPct(f) + ' of the exits'
      }));
      return el('tr', { 'data-reason': e.reason }, cells);
    });
    var nodes = [table(EXIT_HEADERS.concat([{ label: 'Share', cls: 'text' }]), rows, { cls: 'exits' }),
      el('p', { class: 'small muted', text: 'Latency: from an exit to the same vCPU\u2019s next entry, including time ' +
        'preempted or idle after the exit; percentiles within 1/64 relative.' })];
    if (perVcpu.length && perVcpu !== overall) {
      perVcpu = perVcpu.slice().sort(function (a, b) {
        return (num(a.vcpu) - num(b.vcpu)) || (num(b.count) - num(a.count));
      });
      nodes.push(el('details', null, [
        el('summary', { text: 'Per vCPU (' + perVcpu.length + ' rows)' }),
        table([{ label: 'vCPU' }].concat(EXIT_HEADERS), perVcpu.map(function (e) {
          return el('tr', null, exitRow(e, true));
        }), { cls: 'exits-vcpu compact' })
      ]));
    }
    return nodes;
  }

  function bucketLabel(bounds, i) {
    var low = num(bounds[i]);
    var high = num(bounds[i + 1]);
    if (i + 1 >= bounds.length || isNaN(high)) return '\u2265 ' + fmtDur(low);
    return fmtDur(low) + ' \u2013 ' + fmtDur(high);
  }

  function histograms(vm) {
    var histogram = asObject(vm.exit_histogram);
    var bounds = asArray(histogram.bounds_ns);
    var reasons = asObject(histogram.reasons);
    var names = Object.keys(reasons).filter(function (r) { return Array.isArray(reasons[r]) && sum(reasons[r]) > 0; });
    if (!bounds.length || !names.length) {
      return [el('p', { class: 'muted', text: 'No exit latency histogram in the analysis.' })];
    }
    names.sort(function (a, b) { return sum(reasons[b]) - sum(reasons[a]); });
    // Show the buckets from the first to the last one that holds an exit.
    var first = bounds.length, last = -1;
    names.forEach(function (r) {
      reasons[r].forEach(function (c, i) {
        if (i < bounds.length && num(c) > 0) { first = Math.min(first, i); last = Math.max(last, i); }
      });
    });
    if (last < 0) return [el('p', { class: 'muted', text: 'No exits.' })];
    var n = last - first + 1;
    var W = 300, H = 120, top = 6, bottom = 20, plot = H - top - bottom;
    var labelEvery = Math.max(1, Math.ceil(n / 6));
    var charts = names.map(function (reason) {
      var counts = reasons[reason];
      var total = sum(counts);
      var max = 0;
      for (var i = first; i <= last; i++) max = Math.max(max, num(counts[i]) || 0);
      var chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img',
        'aria-label': reason + ' exit latency histogram' });
      chart.appendChild(svg('line', { x1: 0, x2: W, y1: top + plot + 0.5, y2: top + plot + 0.5 }));
      var bw = W / n;
      for (var b = 0; b < n; b++) {
        var k = first + b;
        var c = num(counts[k]) || 0;
        var h = max > 0 ? c / max * plot : 0;
        if (c > 0) h = Math.max(h, 1);
        chart.appendChild(svg('rect', {
          class: 'bar-rect', x: b * bw + bw * 0.1, width: bw * 0.8, y: top + plot - h, height: h,
          'data-tip': reason + ' \u00b7 ' + bucketLabel(bounds, k) + '\n' + fmtInt(c) + ' exits (' +
            fmtPct(share(c, total)) + ')'
        }));
        if (b % labelEvery === 0) {
          chart.appendChild(svg('text', { x: b * bw + bw / 2, y: H - 5, 'text-anchor': 'middle',
            text: fmtDurShort(num(bounds[k])) }));
        }
      }
      return el('div', { class: 'histogram', 'data-reason': reason }, [
        el('div', { class: 'title' }, [el('span', { text: reason }),
          el('span', { class: 'muted', text: fmtInt(total) + ' exits \u00b7 max bucket ' + fmtInt(max) })]),
        chart
      ]);
    });
    return [el('p', { class: 'small muted', text: 'Exits per latency bucket (log2 buckets, lower bound shown; ' +
      'each chart has its own vertical scale).' }), el('div', { class: 'histograms' }, charts)];
  }

  // ---- migrations and placement ---------------------------------------

  function heatColor(fraction) {
    if (!(fraction > 0)) return null;
    var alpha = 0.1 + 0.8 * Math.min(1, fraction);
    return { background: 'rgba(' + getHeat() + ', ' + alpha.toFixed(3) + ')', color: alpha > 0.55 ? '#fff' : '' };
  }

  var heatRgb = null;
  function getHeat() {
    if (heatRgb === null) {
      heatRgb = getComputedStyle(document.documentElement).getPropertyValue('--heat').trim() || '0, 114, 178';
    }
    return heatRgb;
  }

  function heatTable(cls, corner, columns, rows) {
    var head = el('thead', null, el('tr', null, [el('th', { class: 'corner text', text: corner })]
      .concat(columns.map(function (c) { return el('th', { text: c }); }))));
    return el('div', { class: 'table-wrap' }, el('table', { class: 'heat ' + cls }, [head, el('tbody', null, rows)]));
  }

  function guestMigrations(vm) {
    var nodes = [el('h3', { text: 'Guest threads between vCPUs' })];
    var migrations = vm.guest_migrations;
    if (!present(vm.guest_trace)) {
      nodes.push(el('p', { class: 'muted', text: 'Unknown: this VM has no guest trace.' }));
      return nodes;
    }
    var matrix = isObject(migrations) ? asArray(migrations.matrix) : [];
    if (!matrix.length) {
      nodes.push(el('p', { class: 'muted', text: 'No migration matrix in the analysis.' }));
      return nodes;
    }
    var size = matrix.length;
    var max = 0;
    matrix.forEach(function (row) { asArray(row).forEach(function (v) { max = Math.max(max, num(v) || 0); }); });
    var columns = [];
    for (var j = 0; j < size; j++) columns.push('vCPU ' + j);
    var rows = matrix.map(function (row, i) {
      var cells = [el('th', { class: 'text', text: 'vCPU ' + i })];
      for (var k = 0; k < size; k++) {
        var v = num(asArray(row)[k]) || 0;
        cells.push(el('td', {
          class: 'cell' + (v ? '' : ' zero'), style: heatColor(share(v, max)), text: i === k && !v ? '\u00b7' : fmtInt(v),
          'data-tip': 'vCPU ' + i + ' \u2192 vCPU ' + k + '\n' + fmtInt(v) + ' migration' + (v === 1 ? '' : 's')
        }));
      }
      return el('tr', null, cells);
    });
    nodes.push(el('p', { class: 'small muted' }, [
      fmtInt(isObject(migrations) ? migrations.count : sum(matrix.map(sum))) + ' migrations; row: from, column: to.'
    ]));
    nodes.push(heatTable('migrations', 'from \\ to', columns, rows));
    return nodes;
  }

  function placement(vm) {
    var nodes = [el('h3', { text: 'vCPUs on physical CPUs' })];
    var p = asObject(vm.placement);
    var pcpus = asArray(p.pcpus);
    var residency = asArray(p.residency_ns);
    if (!pcpus.length || !residency.length) {
      nodes.push(el('p', { class: 'muted', text: 'No placement data in the analysis.' }));
      return nodes;
    }
    var vcpus = asArray(vm.vcpus);
    var rows = residency.map(function (row, v) {
      row = asArray(row);
      var total = sum(row);
      var label = vcpus[v] && present(vcpus[v].vcpu) ? vcpus[v].vcpu : v;
      var cells = [el('th', { class: 'text', text: 'vCPU ' + label })];
      pcpus.forEach(function (cpu, k) {
        var ns = num(row[k]) || 0;
        var f = share(ns, total);
        cells.push(el('td', {
          class: 'cell' + (ns ? '' : ' zero'), style: heatColor(f), text: ns ? fmtPct(f) : '\u00b7',
          'data-tip': 'vCPU ' + label + ' on CPU ' + cpu + '\n' + fmtDur(ns) + ' (' + fmtPct(f) +
            ' of its time on a CPU)'
        }));
      });
      cells.push(el('td', { text: fmtDur(total) }));
      cells.push(el('td', { text: vcpus[v] ? fmtInt(vcpus[v].pcpu_migrations) : DASH }));
      return el('tr', null, cells);
    });
    var columns = pcpus.map(function (c) { return 'CPU ' + c; }).concat(['On a CPU', 'Migrations']);
    nodes.push(el('p', { class: 'small muted', text: 'Share of each vCPU thread\u2019s time on a physical CPU ' +
      '(running or in guest mode).' }));
    nodes.push(heatTable('placement', 'vCPU \\ pCPU', columns, rows));
    return nodes;
  }

  function guestThreads(vm) {
    if (!present(vm.guest_trace)) return [];
    var threads = asArray(vm.guest_threads).slice().sort(function (a, b) { return num(b.guest_ns) - num(a.guest_ns); });
    var nodes = [el('h3', { text: 'Guest threads' })];
    if (!threads.length) {
      nodes.push(el('p', { class: 'muted', text: 'No guest thread in the analysis.' }));
      return nodes;
    }
    var shown = threads.slice(0, 15);
    var total = sum(threads.map(function (t) { return t.guest_ns; }));
    var rows = shown.map(function (t) {
      var byVcpu = asObject(t.guest_ns_by_vcpu);
      var split = Object.keys(byVcpu).sort(function (a, b) { return num(byVcpu[b]) - num(byVcpu[a]); })
        .slice(0, 4).map(function (k) { return 'vCPU ' + k + ' ' + fmtDur(byVcpu[k]); }).join(' \u00b7 ');
      return el('tr', null, [td(present(t.comm) ? String(t.comm) : DASH, { class: 'text' }), td(String(t.tid)),
        td([fmtDur(t.guest_ns), el('span', { class: 'pct', text: fmtPct(share(num(t.guest_ns), total)) })]),
        td(fmtInt(t.vcpu_migrations)), td(split || DASH, { class: 'text muted' })]);
    });
    nodes.push(table([{ label: 'Command', cls: 'text' }, { label: 'TID' }, { label: 'On a vCPU' },
      { label: 'vCPU migrations' }, { label: 'Where', cls: 'text' }], rows, { cls: 'threads compact' }));
    var omitted = num(vm.guest_threads_omitted) || 0;
    if (threads.length > shown.length || omitted > 0) {
      nodes.push(el('p', { class: 'small muted', text: 'The ' + shown.length + ' busiest of ' +
        fmtInt(threads.length + omitted) + ' guest threads.' }));
    }
    return nodes;
  }

  function coscheduling(vm) {
    var nodes = [el('h3', { text: 'Co-scheduling' })];
    var running = asArray(asObject(vm.coscheduling).running_ns);
    if (!running.length) {
      nodes.push(el('p', { class: 'muted', text: 'No co-scheduling data in the analysis.' }));
      return nodes;
    }
    var total = sum(running);
    var rows = running.map(function (ns, k) {
      var f = share(num(ns), total);
      return el('tr', null, [td(k + ' of ' + (running.length - 1)), td(fmtDur(ns)), td(fmtPct(f)),
        td(el('div', { class: 'hbar', style: { width: (f * 100 || 0) + '%' } }), { class: 'hbar-cell text' })]);
    });
    nodes.push(el('p', { class: 'small muted', text: 'Time during which exactly k vCPUs of the VM ran guest code.' }));
    nodes.push(table([{ label: 'vCPUs in guest' }, { label: 'Time' }, { label: 'Share' }, { label: '', cls: 'text' }],
      rows, { cls: 'cosched compact' }));
    return nodes;
  }

  function nondet(vm) {
    var nodes = [el('h3', { text: 'Non-deterministic events' })];
    if (!isObject(vm.nondet)) {
      nodes.push(el('p', { class: 'muted', text: 'No counts in the analysis.' }));
      return nodes;
    }
    var counts = NONDET.map(function (pair) {
      return el('div', { class: 'count', 'data-kind': pair[0] }, [
        el('div', { class: 'label', text: pair[1] }), el('div', { class: 'value', text: fmtInt(vm.nondet[pair[0]]) })
      ]);
    });
    counts.push(el('div', { class: 'count' }, [el('div', { class: 'label', text: 'Total' }),
      el('div', { class: 'value', text: fmtInt(sum(NONDET.map(function (p) { return vm.nondet[p[0]]; }))) })]));
    nodes.push(el('div', { class: 'counts' }, counts));
    nodes.push(el('p', { class: 'small muted', text: 'Logged in time order in nondet.csv, the input a VM replay ' +
      'system records.' }));
    var log = vm.replay_log;
    if (isObject(log)) {
      nodes.push(el('p', { class: 'small', 'data-replay-log': '', text: 'Replay log (nondet.jsonl, in each vCPU\'s ' +
        'order): ' + fmtInt(log.entries) + ' entries; values unknown ' + fmtInt(log.unknown_values) +
        ', missing ' + fmtInt(log.missing_values) + ', never completed ' + fmtInt(log.incomplete) + '.' }));
    }
    return nodes;
  }

  // ---- synchronisation -------------------------------------------------

  function syncStatus(vm) {
    var hasGuest = present(vm.guest_trace);
    if (!hasGuest) {
      return {
        badge: 'no guest trace', cls: 'none',
        notice: 'No guest trace for this VM: vCPU states, exits and placement come from the host trace alone; ' +
          'guest threads and their migrations between vCPUs are unknown. Nothing was synchronised.'
      };
    }
    if (!isObject(vm.sync)) {
      return {
        badge: 'not synchronised', cls: 'caution', noticeCls: 'caution',
        notice: 'The guest trace \u201c' + vm.guest_trace + '\u201d was not synchronised by vmtrace: its events are ' +
          'not known to be on the host\u2019s time base, so guest threads may be attributed to the wrong vCPU ' +
          'intervals.'
      };
    }
    var quality = String(vm.sync.quality);
    var bound = num(vm.sync.bound_ns);
    var boundText = isNaN(bound) ? '' : ' \u00b1 ' + fmtDur(bound);
    var map = { accurate: 'ok', approximate: 'caution', incomplete: 'caution', fail: 'bad', absent: 'bad' };
    var cls = map[quality] || 'caution';
    var result = { badge: 'sync ' + quality + boundText, cls: cls };
    if (quality === 'accurate') {
      result.notice = 'Guest clock synchronised (accurate): every guest event is on the host\u2019s time base ' +
        'within ' + (isNaN(bound) ? 'the reported bound' : fmtDur(bound)) + '.';
      result.noticeCls = 'ok';
    } else if (quality === 'fail' || quality === 'absent') {
      result.notice = 'Synchronisation ' + quality + ': the guest events cannot be placed on the host\u2019s time ' +
        'base; guest-side results of this VM are not trustworthy.';
      result.noticeCls = 'bad';
    } else {
      result.notice = 'Synchronisation ' + quality + (isNaN(bound) ? '' : ', bound ' + fmtDur(bound)) +
        ': guest events near the bound may be attributed to the neighbouring host interval.';
      result.noticeCls = 'caution';
    }
    return result;
  }

  // ---- page ------------------------------------------------------------

  function vmId(index) { return 'vm-' + index; }

  function vmTotals(vm) {
    var totals = { all: 0 };
    asArray(vm.vcpus).forEach(function (v) {
      var states = asObject(v.states_ns);
      STATES.concat([UNKNOWN]).forEach(function (s) {
        var ns = num(states[s.key]) || 0;
        totals[s.key] = (totals[s.key] || 0) + ns;
        totals.all += ns;
      });
    });
    var exits = asArray(vm.exits);
    var overall = exits.filter(function (e) { return e.vcpu === 'all'; });
    totals.exits = overall.length ? sum(overall.map(function (e) { return e.count; }))
      : sum(asArray(vm.vcpus).map(function (v) { return v.exits; }));
    return totals;
  }

  function header(analysis, meta) {
    var host = asObject(analysis.host);
    var events = asObject(analysis.events);
    var vms = asArray(analysis.vms);
    var hostname = host.hostname ? String(host.hostname) : 'unknown host';
    // wide: two columns; mono: the sub-line in monospace
    var fact = function (label, value, sub, tipText, wide, mono) {
      return el('div', { class: 'fact' + (wide ? ' wide' : ''), 'data-tip': tipText }, [
        el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }),
        sub ? el('div', { class: 'sub' + (mono ? ' mono' : ''), text: sub }) : null]);
    };
    var vcpuCount = sum(vms.map(function (vm) { return asArray(vm.vcpus).length; }));
    return [
      el('header', { class: 'masthead' }, [
        el('h1', null, [el('span', { class: 'brand', text: 'vmtrace' }), 'KVM trace report \u00b7 ' + hostname]),
        el('div', { class: 'muted small', text: 'generated ' + (meta.generated || DASH) })
      ]),
      el('div', { class: 'facts' }, [
        fact('Host', hostname, present(host.cpus) ? fmtInt(host.cpus) + ' CPUs' : null, null, hostname.length > 11),
        fact('Duration', fmtDur(meta.duration_ns), 'from ' + (meta.begin_s || DASH) + ' s\nto ' +
          (meta.end_s || DASH) + ' s', 'Time range on the host\u2019s time base\n(seconds since the host clock\u2019s origin)',
          true, true),
        fact('VMs', fmtInt(vms.length), fmtInt(vcpuCount) + ' vCPUs'),
        fact('Host events', fmtInt(events.host)),
        fact('Guest events', fmtInt(events.guests)),
        fact('Ignored events', fmtInt(events.ignored), [
          present(events.unattributed) ? fmtInt(events.unattributed) + ' unattributed' : null,
          present(events.reordered) ? fmtInt(events.reordered) + ' reordered' : null
        ].filter(Boolean).join('\n') || null, 'Events the analyses do not use')
      ])
    ];
  }

  function overview(vms) {
    var card = el('section', { class: 'card', id: 'overview' }, [el('h2', { text: 'Virtual machines' })]);
    if (!vms.length) {
      card.appendChild(el('p', { class: 'muted', text: 'The analysis found no virtual machine in the host trace.' }));
      return card;
    }
    var rows = vms.map(function (vm, i) {
      var t = vmTotals(vm);
      var status = syncStatus(vm);
      return el('tr', null, [
        td(el('a', { href: '#' + vmId(i), text: vm.name })),
        td(fmtInt(asArray(vm.vcpus).length)),
        td(present(vm.guest_trace) ? String(vm.guest_trace) : 'none', { class: 'text' }),
        td(el('span', { class: 'badge ' + status.cls, text: status.badge }), { class: 'text' }),
        td(fmtPct(share(t.guest, t.all))), td(fmtPct(share(t.hypervisor, t.all))), td(fmtPct(share(t.preempted, t.all))),
        td(fmtPct(share(t.idle, t.all))), td(fmtInt(t.exits)),
        td(shareBar(STATES.concat([UNKNOWN]).map(function (s) {
          return { key: s.key, label: s.label, fraction: share(t[s.key] || 0, t.all) };
        })), { class: 'text' })
      ]);
    });
    card.appendChild(table([{ label: 'VM', cls: 'text' }, { label: 'vCPUs' }, { label: 'Guest trace', cls: 'text' },
      { label: 'Synchronisation', cls: 'text' }, { label: 'Guest' }, { label: 'Hypervisor' }, { label: 'Preempted' },
      { label: 'Idle' }, { label: 'Exits' }, { label: 'vCPU time', cls: 'text' }], rows, { cls: 'overview' }));
    return card;
  }

  function warnings(list) {
    var items = asArray(list);
    var card = el('section', { class: 'card', id: 'warnings' }, [el('h2', { text: 'Warnings' })]);
    if (!items.length) {
      card.appendChild(el('div', { class: 'notice ok', text: 'The analysis reported no warnings.' }));
      return card;
    }
    card.appendChild(el('div', { class: 'notice caution' }, [
      fmtInt(items.length) + ' warning' + (items.length === 1 ? '' : 's') + ' from the analysis:',
      el('ul', { class: 'warnings' }, items.map(function (w) { return el('li', { text: String(w) }); }))
    ]));
    return card;
  }

  function vmCard(vm, index) {
    var status = syncStatus(vm);
    var vcpuByNumber = {};
    asArray(vm.vcpus).forEach(function (v) { vcpuByNumber[v.vcpu] = v; });
    var t = vmTotals(vm);
    var card = el('section', { class: 'card vm', id: vmId(index), 'data-vm': vm.name }, [
      el('div', { class: 'vm-head' }, [el('h2', { text: 'VM ' + vm.name }),
        el('span', { class: 'badge ' + status.cls, text: status.badge })]),
      el('div', { class: 'vm-meta' }, [
        el('span', null, ['vCPUs ', el('b', { text: fmtInt(asArray(vm.vcpus).length) })]),
        present(vm.qemu_pid) ? el('span', null, ['QEMU pid ', el('b', { text: String(vm.qemu_pid) })]) : null,
        present(vm.vm_uid) ? el('span', null, ['vm_uid ', el('b', { class: 'mono', text: String(vm.vm_uid) })]) : null,
        el('span', null, ['guest trace ', el('b', {
          text: present(vm.guest_trace) ? String(vm.guest_trace) : 'none'
        })]),
        el('span', null, ['exits ', el('b', { text: fmtInt(t.exits) })])
      ]),
      status.notice ? el('div', { class: 'notice ' + (status.noticeCls || ''), text: status.notice }) : null,
      timelineSection(vm, vcpuByNumber),
      statesSection(vm),
      el('section', null, [el('h3', { text: 'Exits by reason' })].concat(exitsTable(vm))),
      el('section', null, [el('h3', { text: 'Exit latency histograms' })].concat(histograms(vm))),
      el('section', null, placement(vm)),
      el('div', { class: 'grid2' }, [
        el('section', null, guestMigrations(vm)),
        el('section', null, coscheduling(vm))
      ]),
      el('section', null, guestThreads(vm)),
      el('section', null, nondet(vm))
    ]);
    return card;
  }

  function render() {
    var root = document.getElementById('report');
    var data = JSON.parse(document.getElementById('vmtrace-data').textContent);
    var analysis = asObject(data.analysis);
    var meta = asObject(data.report);
    var vms = asArray(analysis.vms);
    append(root, header(analysis, meta));
    root.appendChild(overview(vms));
    root.appendChild(warnings(analysis.warnings));
    vms.forEach(function (vm, i) { root.appendChild(vmCard(vm, i)); });
    root.appendChild(el('footer', null, [
      'vmtrace ' + (meta.vmtrace_version || '') + ' \u00b7 from ', el('code', { text: meta.source || 'analysis.json' }),
      ' \u00b7 all times on the host\u2019s time base \u00b7 format ' + analysis.format + ' version ' + analysis.version
    ]));
  }

  try {
    render();
    document.documentElement.setAttribute('data-render', 'ok');
  } catch (error) {
    document.documentElement.setAttribute('data-render', 'failed');
    var root = document.getElementById('report');
    root.appendChild(el('div', { class: 'notice bad', text: 'The report could not be drawn: ' + error }));
    throw error;  // window.onerror records it
  }
})();
