// Stockade console: the shell. Token handling, the API helper, element
// builders, hash routing. Pages register themselves in Stockade.pages.
'use strict';

const Stockade = (() => {
  const TOKEN_KEY = 'stockade.token';
  const pages = {};
  let generation = 0; // bumped on every navigation, so late replies are dropped

  /** An API answer that was not 2xx. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---- the token --------------------------------------------------------

  /** Moves a `token=` out of the URL fragment into session storage, and
   *  out of the address bar (and the history) at once. */
  function takeTokenFromFragment() {
    const hash = location.hash.slice(1);
    const match = /(^|[?&#])token=([^&]+)/.exec(hash);
    if (!match) return;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[2]));
    let rest = hash.replace(match[0], match[1] === '?' ? '?' : '').replace(/[?&]$/, '');
    if (!rest.startsWith('/')) rest = '/status';
    history.replaceState(null, '', location.pathname + location.search + '#' + rest);
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(message) {
    document.getElementById('login-message').textContent = message || '';
    document.getElementById('login').hidden = false;
    document.getElementById('who').textContent = '';
    document.getElementById('login-token').focus();
  }

  function signedIn() {
    document.getElementById('login').hidden = true;
    // A token is stk_<id>_<secret>: only the public id is shown.
    const id = (token() || '').split('_')[1];
    document.getElementById('who').textContent = id ? 'token ' + id : '';
  }

  // ---- the API ----------------------------------------------------------

  /** Calls this node's API with the token; returns the JSON reply. A 401
   *  forgets the token and asks for another; a 403 says what is missing. */
  async function api(method, path, body) {
    const t = token();
    if (!t) {
      showLogin('');
      throw new ApiError(401, 'no token');
    }
    const headers = { Authorization: 'Bearer ' + t, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (response.ok) return json;
    const why = (json && (json.error || json.message)) || text || response.statusText;
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin('The node refused the token (' + why + '). Enter a valid API token.');
    } else if (response.status === 403) {
      showLogin('This token may not do that: ' + why + '. Sign in with a token of a higher role, or close this and go on reading.');
    }
    throw new ApiError(response.status, why);
  }

  // ---- building the page (text only, never HTML strings) ---------------

  /** An HTML element: h('td', {class: 'num'}, 'text', child, ...). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  /** An SVG element. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  /** Appends `children` to `el`, leaving out null, undefined and false. */
  function add(el, ...children) {
    append(el, children);
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  /** A table from column heads and rows of cells (a row may be
   *  {cells, class}); `empty` is shown when there are no rows. */
  function table(heads, rows, empty) {
    if (!rows.length) return h('div', { class: 'empty' }, empty || 'Nothing yet.');
    const head = h('tr', {}, heads.map((x) => {
      const [label, cls] = Array.isArray(x) ? x : [x, undefined];
      return h('th', { class: cls }, label);
    }));
    const body = rows.map((row) => {
      const cells = Array.isArray(row) ? row : row.cells;
      return h('tr', { class: Array.isArray(row) ? undefined : row.class }, cells.map((c, i) => {
        const cls = Array.isArray(heads[i]) ? heads[i][1] : undefined;
        return h('td', { class: cls }, c);
      }));
    });
    return h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, head), h('tbody', {}, body)));
  }

  function badge(text, kind) {
    return h('span', { class: 'badge ' + (kind || '') }, text);
  }

  function panel(title, ...children) {
    return h('section', { class: 'panel' }, title ? h('h2', {}, title) : null, children);
  }

  /** A banner naming the nodes that did not answer a cluster-wide query. */
  function missingBanner(missing) {
    if (!missing || !missing.length) return null;
    const names = missing.map((m) => `${m.name || 'node ' + m.node} (${m.error})`).join('; ');
    return h('div', { class: 'banner warn' }, 'Partial result: no answer from ' + names + '.');
  }

  // ---- formatting -------------------------------------------------------

  function identity(i) {
    if (!i) return '';
    return [i.zone, i.app, i.service].filter((x) => x !== undefined && x !== null).join('/');
  }

  function time(ms) {
    if (!ms) return '—';
    const d = new Date(ms);
    return d.toLocaleString(undefined, { hour12: false });
  }

  function ago(ms) {
    if (!ms) return '—';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  /** A rule reference as records write it: {"rule": 17} or a reason. */
  function ruleRef(r) {
    if (r && typeof r === 'object' && 'rule' in r) return 'rule ' + r.rule;
    return String(r || '').replace(/_/g, ' ');
  }

  function num(n) {
    return n === undefined || n === null ? '—' : Number(n).toLocaleString('en-US');
  }

  // ---- routing ----------------------------------------------------------

  function current() {
    const hash = location.hash.replace(/^#\/?/, '');
    const name = hash.split(/[?&]/)[0];
    return pages[name] ? name : 'status';
  }

  async function render() {
    takeTokenFromFragment();
    const name = current();
    for (const a of document.querySelectorAll('#nav a')) {
      a.classList.toggle('active', a.dataset.page === name);
    }
    const main = document.getElementById('main');
    document.body.dataset.page = name;
    document.body.dataset.state = 'loading';
    if (!token()) {
      main.replaceChildren();
      showLogin('');
      return;
    }
    signedIn();
    const mine = ++generation;
    const page = pages[name];
    document.title = page.title + ' · Stockade';
    const root = h('div', { class: 'page', id: 'page-' + name });
    try {
      await page.render(root);
      if (mine !== generation) return;
      main.replaceChildren(root);
      document.body.dataset.state = 'ready';
    } catch (e) {
      if (mine !== generation) return;
      const why = e instanceof ApiError ? `The API answered ${e.status}: ${e.message}` : String(e);
      main.replaceChildren(h('h1', {}, page.title), h('div', { class: 'banner bad' }, why));
      document.body.dataset.state = 'error';
    }
  }

  function start() {
    document.getElementById('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const field = document.getElementById('login-token');
      const value = field.value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      field.value = '';
      render();
    });
    document.getElementById('signout').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      render();
    });
    document.getElementById('refresh').addEventListener('click', render);
    // Closing the prompt keeps the token there is (after a 403, say).
    document.getElementById('login-close').addEventListener('click', () => {
      if (token()) signedIn();
    });
    window.addEventListener('hashchange', render);
    render();
  }

  return {
    pages, api, h, s, add, table, badge, panel, missingBanner, identity, time, ago, ruleRef, num,
    render, start, ApiError,
  };
})();

document.addEventListener('DOMContentLoaded', () => Stockade.start());
