/* The owner's console: sign-in, then Integrations (API Settings, Facilities,
 * Activity), all through the admin API with the session cookie and the
 * session's CSRF token. No framework, nothing fetched but our own API. */
'use strict';

const $ = (id) => document.getElementById(id);
const state = { me: null, keys: [], facilities: [], current: null };

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)lg_csrf=([0-9a-f]+)/);
  return m ? m[1] : (state.me ? state.me.csrf : '');
}

async function api(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined || body === '' ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
  if (res.status === 401 && !path.endsWith('/sign-in')) { showSignIn(); }
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || ('HTTP ' + res.status));
    err.status = res.status;
    err.retryAfter = res.headers.get('Retry-After');
    throw err;
  }
  return data;
}

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of kids) if (c != null) e.append(c);
  return e;
}

function when(iso) {
  if (!iso) return 'never';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function say(text) { $('status').textContent = text; }

/* ---- sign-in ---- */

function showSignIn() {
  state.me = null;
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  $('app').hidden = true;
  $('who').hidden = true;
  $('sign-out').hidden = true;
  $('signin').hidden = false;
  document.title = 'Sign in - lockgate';
  $('signin-email').focus();
}

async function showApp(me) {
  state.me = me;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('who').textContent = me.email;
  $('who').hidden = false;
  $('sign-out').hidden = false;
  document.title = 'Integrations - lockgate';
  await loadAll();
}

function waitText(retryAfter) {
  const s = Number(retryAfter) || 60;
  return s > 90 ? Math.ceil(s / 60) + ' minutes' : s + ' seconds';
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('signin-error').textContent = '';
  try {
    const me = await api('POST', '/console/api/sign-in',
      { email: $('signin-email').value.trim(), password: $('signin-password').value });
    $('signin-password').value = '';
    await showApp(me);
    $('tab-keys').focus();
  } catch (e) {
    $('signin-error').textContent = e.status === 429
      ? 'Too many failed sign-ins. Try again in ' + waitText(e.retryAfter) + '.'
      : e.status === 401 ? 'The email or password is wrong.' : e.message;
  }
});

$('sign-out').addEventListener('click', async () => {
  try { await api('POST', '/console/api/sign-out', ''); } catch (e) { /* ended anyway */ }
  showSignIn();
});

/* ---- tabs ---- */

const tabs = ['keys', 'facilities', 'activity'];
function selectTab(name, focus) {
  say('');
  for (const t of tabs) {
    const on = t === name;
    $('tab-' + t).setAttribute('aria-selected', on ? 'true' : 'false');
    $('tab-' + t).tabIndex = on ? 0 : -1;
    $('panel-' + t).hidden = !on;
  }
  if (focus) $('tab-' + name).focus();
  if (name === 'activity') loadActivity();
}
for (const t of tabs) {
  $('tab-' + t).addEventListener('click', () => selectTab(t, false));
  $('tab-' + t).addEventListener('keydown', (ev) => {
    const i = tabs.indexOf(t);
    let j = null;
    if (ev.key === 'ArrowRight') j = (i + 1) % tabs.length;
    if (ev.key === 'ArrowLeft') j = (i + tabs.length - 1) % tabs.length;
    if (ev.key === 'Home') j = 0;
    if (ev.key === 'End') j = tabs.length - 1;
    if (j !== null) { ev.preventDefault(); selectTab(tabs[j], true); }
  });
}

/* ---- dialogs: modal (the rest of the page is inert), focus returns ---- */

function openDialog(d, focusEl) {
  d.returnTo = document.activeElement;
  d.returnKey = d.returnTo && d.returnTo.dataset ? d.returnTo.dataset.focusKey : undefined;
  d.showModal();
  if (focusEl) focusEl.focus();
}
const FOCUSABLE = 'button:not([hidden]), input:not([type=hidden]), select, [href], [tabindex]:not([tabindex="-1"])';
function visible(e) { return e.offsetParent !== null || e === document.activeElement; }
for (const d of document.querySelectorAll('dialog')) {
  // Tab and Shift+Tab cycle inside the open dialog
  d.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const f = [...d.querySelectorAll(FOCUSABLE)].filter(visible);
    if (!f.length) return;
    const first = f[0], last = f[f.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  });
  d.addEventListener('close', () => {
    // a list redrawn meanwhile has a new button for the same row
    const back = d.returnTo && document.contains(d.returnTo) ? d.returnTo
      : d.returnKey ? document.querySelector(`[data-focus-key="${d.returnKey}"]`) : null;
    if (back) back.focus();
  });
  for (const b of d.querySelectorAll('[data-close]')) b.addEventListener('click', () => d.close());
}

function confirmDialog(title, text, yes) {
  return new Promise((resolve) => {
    const d = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yes;
    const done = (v) => { cleanup(); d.close(); resolve(v); };
    const onYes = () => done(true), onNo = () => done(false), onCancel = () => { cleanup(); resolve(false); };
    const cleanup = () => {
      $('confirm-yes').removeEventListener('click', onYes);
      $('confirm-no').removeEventListener('click', onNo);
      d.removeEventListener('cancel', onCancel);
    };
    $('confirm-yes').addEventListener('click', onYes);
    $('confirm-no').addEventListener('click', onNo);
    d.addEventListener('cancel', onCancel);
    openDialog(d, $('confirm-no'));
  });
}

/* ---- switches ---- */

function setSwitch(b, on) { b.setAttribute('aria-checked', on ? 'true' : 'false'); }
function switchOn(b) { return b.getAttribute('aria-checked') === 'true'; }

/* All Facilities switch + checklist pair */
function scopeEditor(sw, fieldset, checks, errorEl) {
  const sync = () => { fieldset.hidden = switchOn(sw); };
  sw.addEventListener('click', () => { setSwitch(sw, !switchOn(sw)); sync(); });
  return {
    fill(all, chosen) {
      setSwitch(sw, all);
      checks.replaceChildren();
      for (const f of state.facilities) {
        const id = checks.id + '-' + f.facility_id;
        const box = el('input', { type: 'checkbox', id, value: f.facility_id });
        box.checked = chosen.includes(f.facility_id);
        checks.append(el('div', { class: 'check' }, box, el('label', { for: id, text: f.name })));
      }
      errorEl.textContent = '';
      sync();
    },
    value() {
      if (switchOn(sw)) return { all_facilities: true };
      const facilities = [...checks.querySelectorAll('input:checked')].map((b) => b.value);
      return { all_facilities: false, facilities };
    },
    error(text) {
      errorEl.textContent = /at least one facility/.test(text)
        ? 'Select at least one facility, or turn All Facilities on.' : text;
    },
  };
}

/* Shows an API error next to its field: the message names the field. */
function fieldError(msg, fields) {
  for (const [name, show] of Object.entries(fields)) {
    if (msg.startsWith(name + ':')) { show(msg.slice(name.length + 1).trim()); return true; }
  }
  return false;
}

/* ---- copy buttons ---- */

document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('[data-copy]');
  if (!b) return;
  const text = $(b.dataset.copy).textContent;
  try {
    await navigator.clipboard.writeText(text);
    say('Copied.');
  } catch (e) {
    const r = document.createRange();
    r.selectNodeContents($(b.dataset.copy));
    const s = getSelection(); s.removeAllRanges(); s.addRange(r);
    say('Selected: press Ctrl+C to copy.');
  }
});

/* ---- data ---- */

async function loadAll() {
  const acct = state.me.account_id;
  const [f, k] = await Promise.all([
    api('GET', '/admin/v1/accounts/' + acct + '/facilities'),
    api('GET', '/admin/v1/accounts/' + acct + '/keys'),
  ]);
  state.facilities = f.facilities.sort((x, y) => x.name.localeCompare(y.name));
  state.keys = k.keys;
  renderKeys();
  renderFacilities();
  renderKeyFilter();
}

function facilityName(id) {
  const f = state.facilities.find((x) => x.facility_id === id);
  return f ? f.name : id;
}

function scopeText(k) {
  if (k.all_facilities) return 'All Facilities';
  if (!k.facilities.length) return 'none';
  return k.facilities.map(facilityName).join(', ');
}

function statusText(s) {
  return s === 'disabled' ? 'Locked' : s === 'expired' ? 'Expired' : 'Active';
}

function cell(label, ...kids) { return el('td', { 'data-label': label }, ...kids); }

function renderKeys() {
  const body = $('keys');
  body.replaceChildren();
  for (const k of state.keys) {
    body.append(el('tr', {},
      cell('Name', el('button', { type: 'button', class: 'link', text: k.name, 'data-focus-key': k.key_id, onclick: () => openKey(k.key_id) })),
      cell('API Key', el('code', { text: k.key_id })),
      cell('Status', el('span', { class: 'badge ' + k.status, text: statusText(k.status) })),
      cell('Facilities', scopeText(k)),
      cell('Last used', when(k.last_used_at))));
  }
  $('keys-empty').hidden = state.keys.length > 0;
  $('keys-table').hidden = state.keys.length === 0;
}

function renderFacilities() {
  const body = $('facilities');
  body.replaceChildren();
  for (const f of state.facilities) {
    const idEl = 'fid-' + f.facility_id;
    const sw = el('button', {
      type: 'button', role: 'switch', class: 'switch', 'aria-checked': f.included ? 'true' : 'false',
      'aria-label': 'Include in API: ' + f.name,
    }, el('span', { 'aria-hidden': 'true' }));
    sw.addEventListener('click', () => toggleFacility(f, sw));
    body.append(el('tr', {},
      cell('Name', f.name),
      cell('Facility ID', el('code', { id: idEl, text: f.facility_id }), ' ',
        el('button', { type: 'button', class: 'secondary copy', 'data-copy': idEl, 'aria-label': 'Copy Facility ID of ' + f.name, text: 'Copy' })),
      cell('Include in API', sw),
      cell('Created', when(f.created_at))));
  }
  $('facilities-empty').hidden = state.facilities.length > 0;
  $('facilities-table').hidden = state.facilities.length === 0;
}

async function toggleFacility(f, sw) {
  const include = !f.included;
  if (!include) {
    const ok = await confirmDialog('Exclude ' + f.name + ' from the API?',
      'No API key will reach ' + f.name + ' any more. Excluding a facility from the API also removes it from OverlockRelease.',
      'Exclude');
    if (!ok) return;
  }
  try {
    const r = await api('PATCH', '/admin/v1/facilities/' + f.facility_id, { included: include });
    f.included = r.included;
    setSwitch(sw, f.included);
    say(f.name + (f.included ? ' is included in the API.' : ' is excluded from the API.'));
  } catch (e) { say(e.message); }
}

function renderKeyFilter() {
  const sel = $('activity-key');
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '', text: 'All keys' }));
  for (const k of state.keys) sel.append(el('option', { value: k.key_id, text: k.name + ' (' + k.key_id + ')' }));
  sel.value = keep;
}

const ACTIONS = {
  'unlock_code.read': 'Unlock code read', 'key.created': 'Key created', 'key.revealed': 'Secret shown',
  'key.updated': 'Key changed', 'key.disabled': 'Key locked', 'key.enabled': 'Key unlocked',
  'key.rotated': 'Key rotated', 'key.deleted': 'Key deleted', 'facility.excluded': 'Facility excluded',
  'facility.included': 'Facility included', 'facility.created': 'Facility created',
  'facility.updated': 'Facility changed', 'facility.deleted': 'Facility deleted', 'account.created': 'Account created',
};

async function loadActivity() {
  const key = $('activity-key').value;
  const q = 'limit=100' + (key ? '&key=' + encodeURIComponent(key) : '');
  try {
    const r = await api('GET', '/admin/v1/audit?' + q);
    const body = $('activity');
    body.replaceChildren();
    for (const e of r.entries) {
      body.append(el('tr', {},
        cell('When', when(e.at)),
        cell('What', ACTIONS[e.action] || e.action),
        cell('API Key', e.key_id ? el('code', { text: e.key_id }) : '-'),
        cell('Facility', e.facility_id ? facilityName(e.facility_id) : '-'),
        cell('Who', e.actor === 'admin-token' ? 'Operator (admin token)'
          : e.actor || (e.action === 'unlock_code.read' ? 'API key' : '-'))));
    }
    $('activity-empty').hidden = r.entries.length > 0;
    $('activity-table').hidden = r.entries.length === 0;
  } catch (e) { say(e.message); }
}
$('activity-key').addEventListener('change', loadActivity);

/* ---- create a key ---- */

const createScope = scopeEditor($('create-all'), $('create-facilities'), $('create-checks'), $('create-facilities-error'));

$('create-key').addEventListener('click', () => {
  $('create-form').hidden = false;
  $('created').hidden = true;
  $('create-name').value = '';
  $('create-name-error').textContent = '';
  $('create-name').removeAttribute('aria-invalid');
  $('create-error').textContent = '';
  createScope.fill(true, []);
  openDialog($('create-dialog'), $('create-name'));
});

$('create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('create-name-error').textContent = '';
  $('create-name').removeAttribute('aria-invalid');
  createScope.error('');
  $('create-error').textContent = '';
  const body = Object.assign({ name: $('create-name').value.trim() }, createScope.value());
  try {
    const k = await api('POST', '/admin/v1/accounts/' + state.me.account_id + '/keys', body);
    $('created-key').textContent = k.key_id;
    $('created-secret').textContent = k.secret;
    $('create-form').hidden = true;
    $('created').hidden = false;
    $('created-title').focus();
    await loadAll();
  } catch (e) {
    const shown = fieldError(e.message, {
      name: (t) => { $('create-name-error').textContent = 'Name: ' + t; $('create-name').setAttribute('aria-invalid', 'true'); $('create-name').focus(); },
      facilities: (t) => createScope.error('Facilities: ' + t),
      all_facilities: (t) => createScope.error('All Facilities: ' + t),
    });
    if (!shown) $('create-error').textContent = e.message;
  }
});

/* ---- the key window ---- */

const keyScope = scopeEditor($('key-all'), $('key-facilities'), $('key-checks'), $('key-facilities-error'));

function fillKey(k) {
  state.current = k;
  $('key-title').textContent = k.name;
  $('key-id').textContent = k.key_id;
  $('key-state').textContent = 'Status: ' + statusText(k.status) + ' · created ' + when(k.created_at);
  $('lock').textContent = k.status === 'disabled' ? 'Unlock' : 'Lock';
  $('key-error').textContent = '';
  keyScope.fill(k.all_facilities, k.facilities);
}

async function openKey(id) {
  const k = await api('GET', '/admin/v1/keys/' + id);
  $('key-secret').textContent = '••••••••••••';
  $('copy-secret').hidden = true;
  $('show-key').hidden = false;
  fillKey(k);
  openDialog($('key-dialog'), $('show-key'));
}

async function keyAction(fn) {
  $('key-error').textContent = '';
  try { await fn(); } catch (e) {
    if (!fieldError(e.message, { facilities: (t) => keyScope.error('Facilities: ' + t) })) $('key-error').textContent = e.message;
  }
}

$('show-key').addEventListener('click', () => keyAction(async () => {
  const r = await api('POST', '/admin/v1/keys/' + state.current.key_id + '/reveal', '');
  $('key-secret').textContent = r.secret;
  $('show-key').hidden = true;
  $('copy-secret').hidden = false;
  $('copy-secret').focus();
}));

$('scope-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  keyScope.error('');
  keyAction(async () => {
    const k = await api('PATCH', '/admin/v1/keys/' + state.current.key_id, keyScope.value());
    fillKey(k);
    say('Facilities of ' + k.name + ' saved.');
    await loadAll();
  });
});

$('lock').addEventListener('click', () => keyAction(async () => {
  const verb = state.current.status === 'disabled' ? 'enable' : 'disable';
  const k = await api('POST', '/admin/v1/keys/' + state.current.key_id + '/' + verb, '');
  fillKey(k);
  say(k.name + (verb === 'disable' ? ' is locked.' : ' is unlocked.'));
  $('lock').focus();
  await loadAll();
}));

$('rotate').addEventListener('click', () => keyAction(async () => {
  const grace = Number($('grace').value);
  const ok = await confirmDialog('Rotate ' + state.current.name + '?',
    'A new key and secret replace this one' + (grace ? '; the old key keeps working for ' + $('grace').selectedOptions[0].text.replace('after ', '') + '.' : '; the old key stops at once.'),
    'Rotate');
  if (!ok) return;
  const k = await api('POST', '/admin/v1/keys/' + state.current.key_id + '/rotate', { grace_seconds: grace });
  $('key-dialog').close();
  await loadAll();
  $('created-key').textContent = k.key_id;
  $('created-secret').textContent = k.secret;
  $('create-form').hidden = true;
  $('created').hidden = false;
  openDialog($('create-dialog'), $('created-title'));
}));

$('delete').addEventListener('click', () => keyAction(async () => {
  const ok = await confirmDialog('Delete ' + state.current.name + '?',
    'The key stops working at once and cannot be brought back.', 'Delete');
  if (!ok) return;
  await api('DELETE', '/admin/v1/keys/' + state.current.key_id);
  $('key-dialog').close();
  say('The key was deleted.');
  await loadAll();
}));

/* ---- start ---- */

(async () => {
  try { await showApp(await api('GET', '/console/api/session')); } catch (e) { showSignIn(); }
})();
