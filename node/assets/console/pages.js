// Stockade console: the read-only pages (status, inventory, flows, rules,
// alerts). Each renders into the element it is given from API replies.
'use strict';

(() => {
  const { pages, api, h, add, table, badge, panel, missingBanner, identity, time, ago, ruleRef, num } = Stockade;

  function card(label, value) {
    return h('div', { class: 'card' }, h('div', { class: 'k' }, label), h('div', { class: 'v' }, value));
  }

  // ---- status -----------------------------------------------------------

  pages.status = {
    title: 'Cluster status',
    async render(root) {
      const [status, members] = await Promise.all([api('GET', '/v1/status'), api('GET', '/v1/members')]);
      const leader = members.members.find((m) => m.leader);
      const lagging = members.members.filter((m) => m.dataplane_lag > 0).length;
      add(root, 
        h('h1', {}, 'Cluster status', h('span', { class: 'sub' }, `answered by ${status.name} (node ${status.node_id}), term ${status.term}`)),
        missingBanner(members.missing),
        h('div', { class: 'cards' },
          card('Leader', leader ? `${leader.name}` : 'none'),
          card('Members', `${members.members.length}`),
          card('Voters', `${Object.keys(status.voters).length}`),
          card('Policy version', num(members.cluster_index)),
          card('Dataplanes behind', `${lagging}`),
        ),
        panel('Members', table(
          ['Node', 'Name', 'Address', 'Membership', 'Raft role', 'Version', ['Applied', 'num'], ['Dataplane', 'num'], ['Lag', 'num'], 'Last contact'],
          members.members.map((m) => {
            const r = m.report;
            return {
              class: 'member',
              cells: [
                m.id,
                [h('strong', {}, m.name), m.leader ? [' ', badge('leader', 'info')] : null],
                h('span', { class: 'mono' }, m.address),
                m.membership,
                r ? r.role : badge('no answer', 'bad'),
                r ? r.version : '—',
                r ? num(r.applied_index) : '—',
                r && r.dataplane_index !== null && r.dataplane_index !== undefined ? num(r.dataplane_index) : h('span', { class: 'muted' }, 'none'),
                lag(m),
                m.id === status.node_id ? h('span', { class: 'muted' }, 'this node') : m.last_contact_ms === null || m.last_contact_ms === undefined ? '—' : `${num(m.last_contact_ms)} ms`,
              ],
            };
          }),
          'No members recorded.',
        )),
        panel(`This node: ${status.name}`, table(
          ['Part', 'State'],
          [
            ['Log', `last index ${num(status.last_log_index)}, applied ${num(status.applied_index)}, snapshot ${num(status.snapshot_index)}`],
            ['Dataplane', status.dataplane
              ? `index ${num(status.dataplane.index)}, ${status.dataplane.attachment}, ${num(status.dataplane.entries)} map entries, ${num(status.dataplane.allowed)} allowed / ${num(status.dataplane.denied)} denied` + (status.dataplane.error ? `, error: ${status.dataplane.error}` : '')
              : 'none (this node only replicates)'],
            ['Flow log', status.flows
              ? `${num(status.flows.log_records)} records, ${num(status.flows.log_bytes)} bytes, ${num(status.flows.dropped_records)} dropped`
              : 'none'],
            ['Tunnel', status.tunnel ? 'running' : 'none'],
          ],
        )),
      );
    },
  };

  function lag(m) {
    if (m.dataplane_lag === null || m.dataplane_lag === undefined) return h('span', { class: 'muted' }, '—');
    return m.dataplane_lag === 0 ? badge('0', 'ok') : badge(num(m.dataplane_lag), 'warn');
  }

  // ---- inventory --------------------------------------------------------

  const STATUS_BADGE = {
    identified: ['identified', 'ok'],
    unknown_binary: ['unknown binary', 'bad'],
    modified_binary: ['modified binary', 'warn'],
  };

  pages.inventory = {
    title: 'Inventory',
    async render(root) {
      const rows = await api('GET', '/v1/inventory');
      const unknown = rows.filter((w) => w.status !== 'identified');
      rows.sort((a, b) => (a.status === 'identified') - (b.status === 'identified') || a.node - b.node || a.exe.localeCompare(b.exe));
      add(root, 
        h('h1', {}, 'Inventory', h('span', { class: 'sub' }, 'what runs on every node, as each last reported')),
        unknown.length
          ? h('div', { class: 'banner bad' }, `${unknown.length} workload(s) run a binary nobody registered, or a registered path with other bytes: they have no identity.`)
          : h('div', { class: 'banner ok' }, 'Every workload is identified.'),
        panel(null, table(
          ['Node', 'Executable', 'Identity', 'Status', 'User', 'Cgroup', ['Procs', 'num'], 'Listening', 'SHA-256'],
          rows.map((w) => ({
            class: w.status === 'unknown_binary' ? 'workload unknown' : w.status === 'modified_binary' ? 'workload modified' : 'workload',
            cells: [
              w.node_name || w.node,
              h('span', { class: 'mono' }, w.exe),
              w.identity ? identity(w.identity) : w.zone ? h('span', { class: 'muted' }, `zone ${w.zone}`) : '—',
              badge(...(STATUS_BADGE[w.status] || [w.status, ''])),
              w.user || '—',
              h('span', { class: 'mono' }, w.cgroup || '—'),
              `${w.processes}`,
              (w.listening || []).map((p) => `${p.protocol}/${p.port}`).join(', ') || '—',
              h('span', { class: 'mono', title: w.sha256 || '' }, w.sha256 ? w.sha256.slice(0, 12) + '…' : '—'),
            ],
          })),
          'No node has reported its workloads yet.',
        )),
      );
    },
  };

  // ---- flows ------------------------------------------------------------

  function end(peer) {
    const who = peer.identity ? identity(peer.identity) : peer.class === 'unknown' ? 'unknown binary' : peer.class;
    const where = peer.port ? `${peer.ip}:${peer.port}` : peer.ip;
    return [h('div', {}, who), h('div', { class: 'mono muted' }, where), peer.process ? h('div', { class: 'mono muted' }, `${peer.process.exe} [${peer.process.pid}]`) : null];
  }

  const FLOW_FILTERS = ['zone', 'app', 'action', 'rule', 'port'];

  pages.flows = {
    title: 'Flows',
    filter: {},
    async render(root) {
      const query = new URLSearchParams({ limit: '300' });
      for (const k of FLOW_FILTERS) if (this.filter[k]) query.set(k, this.filter[k]);
      const flows = await api('GET', '/v1/flows?' + query);
      const inputs = {};
      const form = h('form', { class: 'toolbar', onsubmit: (e) => {
        e.preventDefault();
        for (const k of FLOW_FILTERS) this.filter[k] = inputs[k].value.trim();
        Stockade.render();
      } },
      FLOW_FILTERS.map((k) => {
        inputs[k] = k === 'action'
          ? h('select', { name: k }, ['', 'allow', 'deny'].map((v) => h('option', { value: v, selected: this.filter[k] === v }, v || 'any')))
          : h('input', { name: k, value: this.filter[k] || '', placeholder: k === 'rule' ? 'e.g. 256 or zone_default' : 'any' });
        return h('label', {}, k, inputs[k]);
      }),
      h('button', { type: 'submit', class: 'primary' }, 'Filter'));
      add(root, 
        h('h1', {}, 'Flows', h('span', { class: 'sub' }, `newest first, from ${flows.answered.length} node(s)${flows.truncated ? ', truncated' : ''}`)),
        missingBanner(flows.missing),
        form,
        panel(null, table(
          ['Last seen', 'Node', 'Dir', 'Source', 'Destination', 'Proto', 'Verdict', 'Deciding rule', ['Conns', 'num']],
          flows.records.map((r) => ({
            class: 'flow ' + r.action,
            cells: [
              h('span', { class: 'nowrap', title: time(r.last_ms) }, ago(r.last_ms)),
              r.node,
              r.direction,
              end(r.src),
              end(r.dst),
              r.protocol,
              [badge(r.action, r.action === 'allow' ? 'ok' : 'bad'), r.encrypted ? [' ', badge('encrypted', 'enc')] : null],
              h('span', { class: 'rule' }, ruleRef(r.rule)),
              num(r.connections),
            ],
          })),
          'No flow matches.',
        )),
      );
    },
  };

  // ---- rules ------------------------------------------------------------

  function peer(p) {
    if (!p) return '';
    if (p.cidr) return p.cidr;
    return [p.zone, p.app || '*', p.service || '*'].join('/');
  }

  function hitCells(hit) {
    return [
      hit ? num(hit.connections) : '0',
      hit ? num(hit.allowed) : '0',
      hit ? num(hit.denied) : '0',
      hit && hit.last_ms ? h('span', { title: time(hit.last_ms) }, ago(hit.last_ms)) : h('span', { class: 'muted' }, 'never'),
    ];
  }

  pages.rules = {
    title: 'Rules',
    async render(root) {
      const [rules, hits] = await Promise.all([api('GET', '/v1/rules'), api('GET', '/v1/rules/hits')]);
      const byRule = new Map();
      const builtIn = [];
      for (const hit of hits.hits) {
        if (hit.rule && typeof hit.rule === 'object') byRule.set(hit.rule.rule, hit);
        else builtIn.push(hit);
      }
      const countHeads = [['Connections', 'num'], ['Allowed', 'num'], ['Denied', 'num'], 'Last decided'];
      add(root, 
        h('h1', {}, 'Rules', h('span', { class: 'sub' }, `hit counts from the flow logs of ${hits.answered.length} node(s)`)),
        missingBanner(hits.missing),
        panel(`Policy rules (${rules.length})`, table(
          ['#', 'From', 'To', 'Ports', 'Action', 'Owner / why', ...countHeads],
          rules.map((r) => ({
            class: 'rule-row',
            cells: [
              r.id,
              h('span', { class: 'mono' }, peer(r.spec.from)),
              h('span', { class: 'mono' }, peer(r.spec.to)),
              `${r.spec.protocol} ${(r.spec.ports || []).join(', ') || 'any'}`,
              [badge(r.spec.action, r.spec.action === 'allow' ? 'ok' : 'bad'), r.spec.encrypt ? [' ', badge('encrypt', 'enc')] : null],
              [r.spec.owner ? h('div', {}, r.spec.owner) : null, r.spec.description ? h('div', { class: 'muted' }, r.spec.description) : null],
              ...hitCells(byRule.get(r.id)),
            ],
          })),
          'The policy has no rules: zone modes decide everything.',
        )),
        panel('Built-in decisions', table(
          ['Reason', ...countHeads],
          builtIn.map((hit) => ({ class: 'builtin-row', cells: [ruleRef(hit.rule), ...hitCells(hit)] })),
        )),
      );
    },
  };

  // ---- alerts -----------------------------------------------------------

  const SEVERITY = { info: 'info', warning: 'warn', critical: 'bad' };
  const DELIVERY = { delivered: 'ok', pending: 'warn', not_routed: '' };

  pages.alerts = {
    title: 'Alerts',
    async render(root) {
      const reply = await api('GET', '/v1/alerts?limit=200');
      const alerts = reply.alerts.slice().reverse();
      add(root, 
        h('h1', {}, 'Alerts', h('span', { class: 'sub' }, `newest first; ${num(reply.last_seq)} raised in all`)),
        reply.dropped ? h('div', { class: 'banner warn' }, `${num(reply.dropped)} undelivered alert(s) had to be dropped from the backlog.`) : null,
        panel(`Sinks (${reply.sinks.length})`, table(
          ['Sink', ['Delivered through', 'num'], ['Pending', 'num'], 'State', ['Sent here', 'num'], ['Failed here', 'num']],
          reply.sinks.map((k) => [
            h('strong', {}, k.name), num(k.delivered_through), num(k.pending),
            k.failing ? badge('failing', 'bad') : k.pending ? badge('catching up', 'warn') : badge('up to date', 'ok'),
            num(k.counters && k.counters.sent), num(k.counters && k.counters.failed),
          ]),
          'No sink is configured: alerts are kept in the cluster only.',
        )),
        panel(`Alerts (${alerts.length} shown)`, table(
          ['#', 'Last seen', 'Severity', 'Kind', 'Class', ['Count', 'num'], 'Node', 'Summary', 'Delivery'],
          alerts.map((a) => ({
            class: 'alert-row',
            cells: [
              a.seq,
              h('span', { class: 'nowrap', title: time(a.last_seen_ms) }, ago(a.last_seen_ms)),
              badge(a.severity, SEVERITY[a.severity]),
              h('span', { class: 'nowrap' }, a.kind.replace(/_/g, ' ')),
              h('span', { class: 'nowrap' }, a.class.replace(/_/g, ' ')),
              num(a.count),
              a.node,
              a.summary,
              Object.keys(a.delivery).length
                ? Object.entries(a.delivery).map(([sink, state]) => h('div', {}, badge(`${sink}: ${state.replace('_', ' ')}`, DELIVERY[state])))
                : h('span', { class: 'muted' }, 'no sinks'),
            ],
          })),
          'No alerts.',
        )),
      );
    },
  };
})();
