// Stockade console: the topology map. The graph of GET /v1/topology drawn
// as inline SVG: vertices grouped by zone, each group laid out on a circle,
// edges styled by verdict (allowed, denied, mixed, encrypted).
'use strict';

(() => {
  const { pages, api, h, add, s, table, badge, panel, missingBanner, ago, ruleRef, num } = Stockade;
  const LEVELS = ['zone', 'app', 'service', 'process'];
  const BOX_H = 30;
  const CHAR_W = 7.1;
  const OUTSIDE = 'outside the cluster';

  /** `allowed`, `denied`, `mixed` or `encrypted`: how an edge is drawn. */
  function verdict(e) {
    if (e.encrypted && !e.denied) return 'encrypted';
    if (e.denied && e.allowed) return 'mixed';
    return e.denied ? 'denied' : 'allowed';
  }

  function boxWidth(label) {
    return Math.max(70, Math.round(label.length * CHAR_W) + 24);
  }

  /** The group a vertex is drawn in: its zone, or what it is without one. */
  function groupOf(graph, v) {
    if (graph.level === 'zone') return '';
    if (v.zone) return 'zone ' + v.zone;
    return v.kind === 'world' ? OUTSIDE : 'no zone';
  }

  /** Positions every vertex: groups (one per zone, or a single one at the
   *  zone level) side by side, each a circle of its vertices with callers
   *  first, so that most edges run left to right. */
  function layout(graph) {
    const degree = new Map(graph.nodes.map((v) => [v.id, 0]));
    for (const e of graph.edges) {
      if (e.from === e.to) continue;
      degree.set(e.from, (degree.get(e.from) || 0) + 1);
      degree.set(e.to, (degree.get(e.to) || 0) - 1);
    }
    const groups = new Map();
    for (const v of graph.nodes) {
      const key = groupOf(graph, v);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(v);
    }
    const rank = (k) => (k.startsWith('zone ') ? 0 : k === 'no zone' ? 1 : 2);
    const keys = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    const boxes = [];
    const at = new Map();
    let x = 20;
    let height = 0;
    for (const key of keys) {
      const members = groups.get(key).sort((a, b) => degree.get(b.id) - degree.get(a.id) || a.label.localeCompare(b.label));
      const widest = Math.max(...members.map((v) => boxWidth(v.label)));
      const n = members.length;
      const radius = n === 1 ? 0 : n === 2 ? widest / 2 + 70 : Math.max(widest * 0.6 + 50, (n * (widest * 0.8 + 36)) / (2 * Math.PI));
      // Around (0, 0) first, starting on the left and going clockwise.
      const placed = members.map((v, i) => {
        const angle = Math.PI + (2 * Math.PI * i) / n;
        return { v, x: radius * Math.cos(angle), y: radius * Math.sin(angle), w: boxWidth(v.label), h: BOX_H };
      });
      const left = Math.min(...placed.map((p) => p.x - p.w / 2));
      const right = Math.max(...placed.map((p) => p.x + p.w / 2));
      const top = Math.min(...placed.map((p) => p.y - p.h / 2));
      const bottom = Math.max(...placed.map((p) => p.y + p.h / 2));
      const title = key ? 40 : 0;
      const pad = 30;
      // Room above for the loops of edges from a vertex to itself.
      const loops = 40;
      for (const p of placed) {
        p.x += x + pad - left;
        p.y += 20 + title + loops - top;
        at.set(p.v.id, p);
      }
      const w = Math.max(right - left + 2 * pad, key ? key.length * 8 + 30 : 0);
      const hgt = bottom - top + title + loops + pad;
      boxes.push({ key, x, y: 20, w, h: hgt });
      x += w + 60;
      height = Math.max(height, hgt);
    }
    return { boxes, at, width: Math.max(x, 400), height: height + 40 };
  }

  /** Where the segment from the centre of `a` towards (tx, ty) leaves `a`'s box. */
  function border(a, tx, ty) {
    const dx = tx - a.x;
    const dy = ty - a.y;
    if (!dx && !dy) return { x: a.x, y: a.y };
    const sx = dx ? a.w / 2 / Math.abs(dx) : Infinity;
    const sy = dy ? a.h / 2 / Math.abs(dy) : Infinity;
    const k = Math.min(sx, sy) + 0.02;
    return { x: a.x + dx * k, y: a.y + dy * k };
  }

  function edgePath(a, b, bend) {
    if (a === b) {
      const x = a.x + a.w / 2 - 12;
      const y = a.y - a.h / 2;
      return { d: `M ${x - 14} ${y} C ${x - 30} ${y - 46}, ${x + 30} ${y - 46}, ${x + 10} ${y}`, mx: x, my: y - 38 };
    }
    const mx0 = (a.x + b.x) / 2;
    const my0 = (a.y + b.y) / 2;
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    // Bend to the left of the direction of travel, so a → b and b → a part.
    const cx = mx0 + (-(b.y - a.y) / len) * bend;
    const cy = my0 + ((b.x - a.x) / len) * bend;
    const p = border(a, cx, cy);
    const q = border(b, cx, cy);
    return { d: `M ${p.x} ${p.y} Q ${cx} ${cy} ${q.x} ${q.y}`, mx: (p.x + 2 * cx + q.x) / 4, my: (p.y + 2 * cy + q.y) / 4 };
  }

  function lock(x, y) {
    return s('g', { class: 'lock', transform: `translate(${x - 6} ${y - 10})` },
      s('circle', { class: 'lock-bg', cx: 6, cy: 8, r: 10 }),
      s('path', { class: 'lock-shackle', d: 'M 3 6 V 4 a 3 3 0 0 1 6 0 V 6' }),
      s('rect', { class: 'lock-body', x: 1, y: 6, width: 10, height: 8, rx: 1.5 }));
  }

  function markers() {
    return s('defs', {}, ['allowed', 'denied', 'mixed', 'encrypted'].map((k) =>
      s('marker', { id: 'arrow-' + k, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: k === 'encrypted' ? 4 : 7, markerHeight: k === 'encrypted' ? 4 : 7, orient: 'auto-start-reverse' },
        s('path', { class: 'arrow-' + k, d: 'M 0 0 L 10 5 L 0 10 z' }))));
  }

  /** The SVG picture of `graph`. */
  function draw(graph) {
    const { boxes, at, width, height } = layout(graph);
    const svg = s('svg', { class: 'topology', id: 'topology-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `topology at ${graph.level} level` });
    svg.append(markers());
    for (const b of boxes) {
      if (!b.key) continue;
      svg.append(s('rect', { class: 'zone-box', x: b.x, y: b.y, width: b.w, height: b.h, rx: 12 }),
        s('text', { class: 'zone-title', x: b.x + 14, y: b.y + 22 }, b.key));
    }
    const pairs = new Set(graph.edges.map((e) => e.from + '\u0000' + e.to));
    const edges = s('g', { class: 'edges' });
    const labels = s('g', { class: 'edge-labels' });
    for (const e of graph.edges) {
      const a = at.get(e.from);
      const b = at.get(e.to);
      if (!a || !b) continue;
      const kind = verdict(e);
      const both = pairs.has(e.to + '\u0000' + e.from) && e.from !== e.to;
      const { d, mx, my } = edgePath(a, b, both ? 26 : 12);
      const title = s('title', {}, `${e.from} → ${e.to} ${e.protocol}/${e.ports.join(',') || '?'}: ${num(e.allowed)} allowed, ${num(e.denied)} denied${e.encrypted ? ', encrypted' : ''}; ${e.rules.map(ruleRef).join(', ')}`);
      const g = s('g', { class: 'edge-group ' + kind, 'data-from': e.from, 'data-to': e.to, 'data-verdict': kind }, title,
        s('path', { class: 'edge ' + kind, d, 'marker-end': `url(#arrow-${kind})` }));
      if (kind === 'encrypted') g.append(s('path', { class: 'edge-inner', d }));
      edges.append(g);
      labels.append(s('text', { class: 'edge-label', x: mx, y: my + 14, 'text-anchor': 'middle' }, `${e.protocol}/${e.ports.join(',') || '?'} ×${num(e.connections)}`));
      if (kind === 'encrypted') labels.append(lock(mx, my));
    }
    svg.append(edges);
    const vertices = s('g', { class: 'vertices' });
    for (const { v, x, y, w, h: hh } of at.values()) {
      vertices.append(s('g', { class: 'vertex ' + v.kind, 'data-id': v.id, transform: `translate(${x - w / 2} ${y - hh / 2})` },
        s('title', {}, `${v.label} (${v.kind})`),
        s('rect', { width: w, height: hh, rx: 7 }),
        s('text', { x: w / 2, y: hh / 2 + 4.5, 'text-anchor': 'middle' }, v.label)));
    }
    // Labels last, so that no box hides them.
    svg.append(vertices, labels);
    return svg;
  }

  function legendItem(kind, text) {
    const line = s('svg', { width: 46, height: 14, class: 'topology' },
      s('path', { class: 'edge ' + kind, d: 'M 2 7 H 44' }),
      kind === 'encrypted' ? s('path', { class: 'edge-inner', d: 'M 2 7 H 44' }) : null);
    return h('span', {}, line, text);
  }

  pages.topology = {
    title: 'Topology',
    level: 'app',
    async render(root) {
      const graph = await api('GET', '/v1/topology?level=' + encodeURIComponent(this.level));
      const select = h('select', { id: 'topology-level', onchange: (e) => { this.level = e.target.value; Stockade.render(); } },
        LEVELS.map((l) => h('option', { value: l, selected: l === this.level }, l)));
      add(root, 
        h('h1', {}, 'Topology', h('span', { class: 'sub' }, `who talks to whom, from every node's flow records: ${graph.nodes.length} vertices, ${graph.edges.length} edges`)),
        missingBanner(graph.missing),
        h('div', { class: 'toolbar' }, h('label', {}, 'Level', select)),
        panel(null,
          graph.nodes.length ? h('div', { class: 'topo-wrap' }, draw(graph)) : h('div', { class: 'empty' }, 'No flows recorded yet.'),
          h('div', { class: 'legend' },
            legendItem('allowed', 'allowed'), legendItem('denied', 'denied'),
            legendItem('mixed', 'some denied'), legendItem('encrypted', 'encrypted (Noise tunnel)'),
            h('span', {}, badge('unknown', 'bad'), ' red boxes have no identity'))),
        panel('Edges', table(
          ['From', 'To', 'Proto / ports', ['Allowed', 'num'], ['Denied', 'num'], 'Verdict', 'Rules', 'Last seen'],
          graph.edges.map((e) => [
            e.from, e.to, `${e.protocol} ${e.ports.join(', ') || '?'}`, num(e.allowed), num(e.denied),
            badge(verdict(e), { allowed: 'ok', denied: 'bad', mixed: 'warn', encrypted: 'enc' }[verdict(e)]),
            e.rules.map(ruleRef).join(', '), ago(e.last_seen_ms),
          ]),
        )),
      );
    },
  };
})();
