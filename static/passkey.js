// Passkeys for Wicket: shows the passkey parts of a page (marked data-passkey-only)
// in browsers with WebAuthn, and runs a form marked data-passkey="login" or "add":
// ask data-options for a challenge, let the authenticator sign it, post the result
// to the form's action, and show the answer (a redirect, or the section to swap in).
(() => {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const reveal = (root) => {
    const marked = [...root.querySelectorAll('[data-passkey-only]')];
    if (root.matches && root.matches('[data-passkey-only]')) marked.push(root);
    marked.forEach((el) => { el.hidden = false; });
  };
  document.addEventListener('DOMContentLoaded', () => reveal(document));
  document.addEventListener('htmx:load', (event) => reveal(event.target));

  const bytes = (text) => {
    const plain = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(plain, (c) => c.charCodeAt(0));
  };
  const text = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  // The server's options (base64url where WebAuthn wants bytes) as the browser takes them.
  const creation = ({ publicKey }) => ({
    ...publicKey,
    challenge: bytes(publicKey.challenge),
    user: { ...publicKey.user, id: bytes(publicKey.user.id) },
    excludeCredentials: (publicKey.excludeCredentials || [])
      .map((c) => ({ ...c, id: bytes(c.id) })),
  });
  const request = ({ publicKey }) => ({
    ...publicKey,
    challenge: bytes(publicKey.challenge),
    allowCredentials: (publicKey.allowCredentials || [])
      .map((c) => ({ ...c, id: bytes(c.id) })),
  });

  // The browser's credential as the server reads it.
  const made = (c) => ({
    id: c.id, rawId: text(c.rawId), type: c.type,
    extensions: c.getClientExtensionResults(),
    response: {
      attestationObject: text(c.response.attestationObject),
      clientDataJSON: text(c.response.clientDataJSON),
    },
  });
  const signed = (c) => ({
    id: c.id, rawId: text(c.rawId), type: c.type,
    extensions: c.getClientExtensionResults(),
    response: {
      authenticatorData: text(c.response.authenticatorData),
      clientDataJSON: text(c.response.clientDataJSON),
      signature: text(c.response.signature),
      userHandle: c.response.userHandle ? text(c.response.userHandle) : null,
    },
  });

  const post = (url, fields) => fetch(url, {
    method: 'POST',
    body: new URLSearchParams(fields),
    headers: { 'HX-Request': 'true' },
    credentials: 'same-origin',
  });

  const say = (form, message) => {
    const error = form.querySelector('[data-passkey-error]');
    if (!error) return;
    error.textContent = message;
    error.hidden = false;
  };

  // Puts an HTML answer in place of the form's section (as htmx would).
  const swap = async (form, response) => {
    const section = form.closest('section');
    const html = await response.text();
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (!section || !fresh || fresh.tagName !== 'SECTION') {
      say(form, 'Something went wrong. Reload the page and try again.');
      return;
    }
    section.replaceWith(fresh);
    reveal(fresh);
    if (window.htmx) window.htmx.process(fresh);
    const focus = fresh.querySelector('[aria-invalid="true"], [role="alert"]:not([hidden]), [role="status"]');
    if (focus) {
      if (!focus.matches('input')) focus.tabIndex = -1;
      focus.focus();
    }
  };

  const run = async (form) => {
    const login = form.dataset.passkey === 'login';
    const csrf = form.elements.csrf.value;
    const start = await post(form.dataset.options, new FormData(form));
    if (!(start.headers.get('Content-Type') || '').includes('json')) {
      await swap(form, start);
      return;
    }
    const answer = await start.json();
    if (!start.ok) {
      say(form, answer.error || 'Something went wrong. Try again.');
      return;
    }
    let credential;
    // One request at a time: the button's replaces the autofill's.
    if (login) stopAutofill();
    try {
      credential = login
        ? await navigator.credentials.get({ publicKey: request(answer.options) })
        : await navigator.credentials.create({ publicKey: creation(answer.options) });
    } catch (err) {
      say(form, err && err.name === 'InvalidStateError'
        ? 'That passkey is registered here already.'
        : login
          ? 'No passkey was used. Try again, or log in with your password.'
          : 'No passkey was made. Try again when you are ready.');
      return;
    }
    await finish(form, answer, login ? signed(credential) : made(credential));
  };

  // Posts the signed (or made) `credential` for the ceremony of `answer` to the
  // form's action, and shows what came back.
  const finish = async (form, answer, credential) => {
    const login = form.dataset.passkey === 'login';
    const fields = {
      csrf: form.elements.csrf.value,
      ceremony: answer.ceremony,
      credential: JSON.stringify(credential),
    };
    if (login) {
      if (form.elements.next) fields.next = form.elements.next.value;
      const remember = document.getElementById('remember');
      if (remember && remember.checked) fields.remember = 'on';
    }
    const done = await post(form.action, fields);
    const to = done.headers.get('HX-Redirect');
    if (to) {
      window.location.assign(to);
      return;
    }
    await swap(form, done);
  };

  // Passkey autofill: where the browser offers passkeys among a field's suggestions
  // (conditional mediation), the login form's username field (autocomplete
  // "username webauthn") lists the site's; picking one logs in as the button does.
  let autofill = null;
  const stopAutofill = () => {
    if (autofill) autofill.abort();
    autofill = null;
  };
  const offer = async (root) => {
    const field = root.querySelector('input[autocomplete~="webauthn"]');
    const form = document.querySelector('form[data-passkey="login"]');
    if (!field || !form || !PublicKeyCredential.isConditionalMediationAvailable) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    stopAutofill();
    const controller = new AbortController();
    autofill = controller;
    const start = await post(form.dataset.options, new FormData(form));
    if (!start.ok || !(start.headers.get('Content-Type') || '').includes('json')) return;
    const answer = await start.json();
    let credential;
    try {
      credential = await navigator.credentials.get({
        publicKey: request(answer.options),
        mediation: 'conditional',
        signal: controller.signal,
      });
    } catch (err) {
      return; // aborted for the button, or nothing picked
    }
    if (!credential || autofill !== controller) return;
    autofill = null;
    await finish(form, answer, signed(credential));
  };
  const offerQuietly = (root) => { offer(root).catch(() => {}); };
  document.addEventListener('DOMContentLoaded', () => offerQuietly(document));
  // A login form htmx swapped in asks again (htmx's own start-up load of the body is
  // the page's, already asked for).
  document.addEventListener('htmx:load', (event) => {
    const root = event.target;
    if (root === document.body || !root.querySelector) return;
    if (root.querySelector('input[autocomplete~="webauthn"]')) offerQuietly(root);
  });

  document.addEventListener('submit', (event) => {
    const form = event.target.closest('form[data-passkey]');
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    run(form)
      .catch(() => say(form, 'Something went wrong. Check your connection and try again.'))
      .finally(() => { if (button && button.isConnected) button.disabled = false; });
  });
})();
