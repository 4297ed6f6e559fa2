// Stockade console: the baseline proposal of a learning zone, with
// Accept / Snooze / Deny for each proposed link (POST /v1/baseline/decisions).
'use strict';

(() => {
  const { pages, api, h, add, table, badge, panel, identity, ago, num } = Stockade;

  function target(to) {
    if (to.identity) return identity(to.identity);
    return to.address || JSON.stringify(to);
  }

  pages.baseline = {
    title: 'Baseline',
    zone: null,
    notice: null,
    async render(root) {
      const zones = await api('GET', '/v1/zones');
      if (!zones.length) {
        add(root, h('h1', {}, 'Baseline'), h('div', { class: 'empty' }, 'No zones yet.'));
        return;
      }
      if (!this.zone || !zones.some((z) => z.name === this.zone)) {
        const learning = zones.find((z) => z.mode === 'learn');
        this.zone = (learning || zones[0]).name;
      }
      const zone = zones.find((z) => z.name === this.zone);
      const proposal = await api('POST', '/v1/baseline/proposal?zone=' + encodeURIComponent(this.zone));
      const select = h('select', { id: 'baseline-zone', onchange: (e) => { this.zone = e.target.value; this.notice = null; Stockade.render(); } },
        zones.map((z) => h('option', { value: z.name, selected: z.name === this.zone }, `${z.name} (${z.mode})`)));
      const links = proposal.rules.flatMap((r) => r.links.map((l) => l.key));
      const notice = this.notice;
      this.notice = null;
      add(root, 
        h('h1', {}, 'Baseline', h('span', { class: 'sub' }, 'the narrowest allow rules that cover what a learning zone was seen to do')),
        notice ? h('div', { class: 'banner ' + notice.kind }, notice.text) : null,
        h('div', { class: 'toolbar' },
          h('label', {}, 'Zone', select),
          h('button', { type: 'button', class: 'accept', id: 'accept-all', disabled: !links.length, onclick: () => this.decide(links, 'accept') }, `Accept all (${links.length})`)),
        zone.mode !== 'learn' ? h('div', { class: 'banner warn' }, `Zone ${zone.name} is in ${zone.mode} mode: it learns no new edges.`) : null,
        panel(`Proposed rules (${proposal.rules.length})`,
          proposal.rules.length
            ? proposal.rules.map((rule) => this.ruleBlock(rule))
            : h('div', { class: 'empty' }, 'Nothing to propose: the rules already cover every learned edge (or none was seen yet).')),
        panel(`Already allowed (${proposal.covered.length}) · refused by a deny rule (${proposal.refused.length})`, table(
          ['Edge', 'State'],
          [
            ...proposal.covered.map((k) => [edgeText(k), badge('covered', 'ok')]),
            ...proposal.refused.map((k) => [edgeText(k), badge('refused', 'bad')]),
          ],
          'None.',
        )),
      );
    },

    ruleBlock(rule) {
      const heading = `${identity(rule.from)} → ${target(rule.to)} ${rule.protocol} ${rule.ports.join(', ')}`;
      return h('div', { class: 'proposed-rule' },
        h('h2', {}, heading),
        table(
          ['Link', ['Connections', 'num'], 'Last seen', 'Nodes', 'Decision'],
          rule.links.map((link) => ({
            class: 'proposed-link',
            cells: [
              h('span', { class: 'link-text' }, edgeText(link.key)),
              num(link.connections),
              ago(link.last_ms),
              [...link.nodes].join(', '),
              h('div', { class: 'buttons' },
                h('button', { type: 'button', class: 'accept', 'data-decision': 'accept', onclick: () => this.decide([link.key], 'accept') }, 'Accept'),
                h('button', { type: 'button', class: 'snooze', 'data-decision': 'snooze', onclick: () => this.decide([link.key], 'snooze') }, 'Snooze'),
                h('button', { type: 'button', class: 'deny', 'data-decision': 'deny', onclick: () => this.decide([link.key], 'deny') }, 'Deny')),
            ],
          })),
        ));
    },

    async decide(links, decision) {
      for (const b of document.querySelectorAll('#page-baseline button')) b.disabled = true;
      try {
        const written = await api('POST', '/v1/baseline/decisions', { links, decision });
        const what = { accept: 'accepted: the rules are written', snooze: 'snoozed until seen again', deny: 'denied: never proposed again' }[decision];
        this.notice = { kind: 'ok', text: `${links.length} link(s) ${what} (policy version ${written.index}).` };
      } catch (e) {
        this.notice = { kind: 'bad', text: `Not written: ${e.message}` };
      }
      await Stockade.render();
    },
  };

  function edgeText(key) {
    return `${identity(key.from)} → ${target(key.to)} ${key.protocol}/${key.port}`;
  }
})();
