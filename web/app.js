// Settings -> Integrations: connections, export settings, product import, exports, sales and margins.
//
// A plain ES module, no build step. It calls only the public API, with the app's bearer token, and holds
// nothing else: provider tokens and codes never reach this page (the OAuth popup's last page reports only
// the provider, the status and the company name).
//
// Where the token comes from, first match wins:
//   1. window.PARTSEMBLE_TOKEN, set by the host app: a string, or a function returning one (or a promise
//      of one), called before every request so the host can renew it;
//   2. on a loopback host only: a `token` query parameter (removed from the address bar as soon as read);
//   3. the local stack only: POST /_local/token mints a development token for the organisation named by the
//      `org` query parameter (or the demo organisation).
// The API base is window.PARTSEMBLE_API_BASE, else <meta name="partsemble-api-base">, else this origin.
//
// Each section below is one object with mount(section) and update(state); a section whose route answers
// 404 hides itself, so the page works while parts of the API are still being built. To add a section,
// add its <section> to index.html and its object to SECTIONS.

const config = {
  apiBase: (window.PARTSEMBLE_API_BASE
    ?? document.querySelector('meta[name="partsemble-api-base"]')?.content ?? "").replace(/\/+$/, ""),
};
const apiOrigin = new URL(config.apiBase || "/", window.location.href).origin;
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;
const MAX_IMPORT_BYTES = 5 * 1024 * 1024;
const MAX_TABLE_ROWS = 500;
const REFRESH_EVERY_MS = 60_000;

// ---- small DOM helpers --------------------------------------------------------------------------------

const present = (child) => child !== null && child !== undefined && child !== false && child !== "";

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).filter(present));
  return element;
}

const part = (root, role) => root.querySelector(`[data-role="${role}"]`);

/** Replaces a container's content (skipping absent parts), keeping keyboard focus on the element with the
 * same data-key. */
function replaceKeepingFocus(container, ...nodes) {
  const focusedKey = container.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  container.replaceChildren(...nodes.filter(present));
  if (focusedKey) container.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
}

function announce(text) {
  const announcer = document.getElementById("announcer");
  announcer.textContent = "";
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

function showPageProblem(text) {
  const banner = document.getElementById("page-problem");
  banner.textContent = text;
  banner.hidden = !text;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

function when(iso, { dateOnly = false } = {}) {
  if (!iso) return null;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return h("time", { datetime: iso }, (dateOnly ? dateFormat : dateTimeFormat).format(date));
}

// A disabled button loses focus to <body>: once it acts again, focus returns to it unless the person has
// moved on to another control meanwhile.
function busy(button, isBusy, busyLabel) {
  if (isBusy) {
    button.dataset.label = button.textContent;
    button.textContent = busyLabel;
    button.dataset.hadFocus = String(document.activeElement === button);
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
  button.disabled = isBusy;
  button.setAttribute("aria-busy", String(isBusy));
  const focusLost = !document.activeElement || document.activeElement === document.body;
  if (!isBusy && button.dataset.hadFocus === "true" && focusLost && button.isConnected) button.focus();
}

/** A table that reads as a table on a wide screen and as labelled blocks at phone width. */
function table(caption, columns, rows) {
  return h("div", { class: "table-wrap" },
    h("table", { class: "stacking" },
      h("caption", { class: caption.visible ? "" : "visually-hidden" }, caption.text),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", { dataset: row.dataset ?? {} },
        columns.map((c) => h("td", { "data-label": c.label, class: c.class ?? false },
          h("div", { class: "cell" }, c.cell(row.value)))))))));
}

// ---- the API --------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the server answered ${status}`);
    this.status = status;
    this.body = body ?? {};
  }

  /** Field problems as {field, problem}: the API's `details`, or a `field_errors` object. */
  get fieldProblems() {
    if (Array.isArray(this.body.details)) return this.body.details;
    return Object.entries(this.body.field_errors ?? {}).map(([field, problem]) => ({ field, problem }));
  }
}

const session = {
  token: null,

  async start() {
    const url = new URL(window.location.href);
    const fromUrl = url.searchParams.get("token");
    if (fromUrl) {
      url.searchParams.delete("token");
      window.history.replaceState(null, "", url);
    }
    if (window.PARTSEMBLE_TOKEN) return;
    // Only on this machine: a link carrying someone else's token could otherwise attach the reader's
    // accounting company to that organisation.
    if (fromUrl && LOOPBACK.test(window.location.hostname)) {
      this.token = fromUrl;
      return;
    }
    const organisation = url.searchParams.get("org");
    const response = await fetch(`${config.apiBase}/_local/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(organisation ? { organisation_id: organisation } : {}),
    }).catch(() => null);
    if (!response?.ok) {
      throw new Error("This page needs a Partsemble sign-in. Open it from Partsemble's Settings menu.");
    }
    this.token = (await response.json()).token;
  },

  async bearer() {
    const provided = window.PARTSEMBLE_TOKEN;
    if (typeof provided === "function") return provided();
    return provided || this.token;
  },
};

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${await session.bearer()}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    // credentials: the connect answer sets a short-lived cookie that binds the OAuth popup to this browser
    response = await fetch(`${config.apiBase}${path}`, {
      method, headers, credentials: "include", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { message: "Partsemble could not be reached. Check your connection and try again." });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (response.status === 401) signedOut();
  if (response.status === 409 && data?.error === "AuthExpired") connectionEnded();
  if (!response.ok) throw new ApiError(response.status, providerBusy(response, data) ?? data);
  return data;
}

// The provider down or throttling, said in its name with when to try again (the API's Retry-After), not as
// "qbo: the provider is unavailable (HTTP 503)".
function providerBusy(response, data) {
  if (data?.error !== "RateLimited" && data?.error !== "ProviderUnavailable") return null;
  const label = connections.active()?.provider_label ?? "Your accounting system";
  const wait = Math.ceil(Number(response.headers.get("retry-after")));
  const what = data.error === "RateLimited" ? `${label} asks Partsemble to slow down (its rate limit)`
    : `${label} is not answering right now`;
  return { ...data, message: `${what}: try again ${wait > 0 ? `in ${plural(wait, "second")}` : "shortly"}.` };
}

// A connection the provider no longer accepts, met by whatever asked (a sync, a pull, the books check): its card
// shows it at once, with Reconnect, and the words say what to do, not the provider's error code.
function connectionEnded() {
  connections.refresh().catch(() => {});
  const label = connections.active()?.provider_label ?? "Your accounting system";
  throw new ApiError(409, { error: "AuthExpired",
    message: `${label} no longer accepts Partsemble's access: reconnect it on its card above.` });
}

// The gateway's 401 says only "Unauthorized": the page says it once at the top, and a section or a button's
// status that met it says what happened, not the gateway's word.
function signedOut() {
  showPageProblem("Your Partsemble sign-in has expired. Reload the page to sign in again.");
  throw new ApiError(401, { message: "Your sign-in has expired: reload the page." });
}

/** A file the API answers (a download), as a Blob. */
async function apiBlob(path) {
  let response;
  try {
    response = await fetch(`${config.apiBase}${path}`, {
      headers: { authorization: `Bearer ${await session.bearer()}` }, credentials: "include",
    });
  } catch {
    throw new ApiError(0, { message: "Partsemble could not be reached. Check your connection and try again." });
  }
  if (response.status === 401) signedOut();
  if (!response.ok) { // the API's own words when it gave them (a refusal, an outage), else the status
    const said = await response.json().catch(() => null);
    throw new ApiError(response.status, { message: said?.message || `the server answered ${response.status}` });
  }
  return response.blob();
}

const isMissingRoute = (error) => error instanceof ApiError && error.status === 404;
const listOf = (data, key) => (Array.isArray(data) ? data : data?.[key] ?? data?.items ?? []);

/** Runs a section's loader; a 404 hides the section (its route is not deployed), other errors show in it. */
async function loadSection(section, loader, problemTarget) {
  try {
    await loader();
    section.hidden = false;
  } catch (error) {
    if (isMissingRoute(error)) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    problemTarget.replaceChildren(h("p", { class: "banner banner-error", role: "alert" }, error.message));
  }
}

function confirmAction({ title, body, confirmLabel }) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-body").replaceChildren(...body.map((text) => h("p", {}, text)));
  part(dialog, "confirm").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

// ---- connections ------------------------------------------------------------------------------------

const STATUS_WORDS = {
  connected: "Connected",
  expired: "Needs reconnecting",
  disconnected: "Disconnected",
  not_connected: "Not connected",
};
const ACTIVE = new Set(["connected", "expired"]);

const connections = {
  views: [],
  popups: new Map(), // provider -> the sign-in window it is waiting for
  disconnecting: new Set(), // providers whose disconnect has been sent and not answered yet
  acting: new Map(), // provider -> the data-key of the control that started its sign-in, while it had focus
  messages: new Map(), // provider -> {kind, text} shown on its card until the next action

  mount(section, onChange) {
    this.section = section;
    this.cards = part(section, "cards");
    this.onChange = onChange;
    window.addEventListener("message", (event) => this.receive(event));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh();
    });
    window.setInterval(() => this.refresh(), REFRESH_EVERY_MS);
  },

  active() {
    return this.views.find((view) => ACTIVE.has(view.status)) ?? null;
  },

  async refresh() {
    const stale = part(this.section, "stale");
    try {
      this.show(await api("GET", "/integrations"));
      stale.hidden = true;
    } catch (error) {
      this.cards.setAttribute("aria-busy", "false");
      if (!this.views.length) {
        this.cards.replaceChildren(h("p", { class: "banner banner-error" }, error.message));
        return;
      }
      // the cards stay as last read, and say so: a connection revoked meanwhile must not look healthy unsaid
      stale.replaceChildren("The connection status could not be checked again (", error.message,
        "); the cards show it as it was ", when(this.readAt.toISOString()), ".");
      stale.hidden = false;
    }
  },

  show(views) {
    if (views !== this.views) this.readAt = new Date(); // a new reading, not a re-render of the last one
    this.views = views;
    this.cards.setAttribute("aria-busy", "false");
    replaceKeepingFocus(this.cards, ...views.map((view) => this.card(view)));
    this.onChange();
  },

  replace(view) {
    this.show(this.views.map((v) => (v.provider === view.provider ? view : v)));
  },

  card(view) {
    const { provider, provider_label: label, status } = view;
    const other = this.active();
    const blockedBy = other && other.provider !== provider ? other : null;
    // a note is read out once, through the page's live region, when it is set (``note``): the cards are
    // drawn again at every status read, and a note drawn again must not be read out again
    const message = this.messages.get(provider);
    const popup = this.popups.get(provider);
    const waiting = Boolean(popup);
    const leaving = this.disconnecting.has(provider); // a disconnect is on its way: nothing else is sent
    const key = (name) => `${provider}-${name}`;
    const button = (name, text, onclick, className = "") => h("button", {
      type: "button", class: className, dataset: { key: key(name), action: name }, disabled: waiting || leaving,
      "aria-busy": leaving && name === "disconnect" ? "true" : false, onclick,
    }, leaving && name === "disconnect" ? "Disconnecting…" : text);

    const facts = [];
    const fact = (term, ...value) => facts.push(h("dt", {}, term), h("dd", {}, ...value));
    if (view.company_name) fact(capitalised(companyWord(provider)), view.company_name);
    if (ACTIVE.has(status)) {
      fact("Connected since", when(view.connected_at) ?? "—");
      fact("Last successful sync", when(view.last_successful_sync_at) ?? "No sync yet");
      fact("Sign-in", tokenWords(view));
    }
    if (status === "disconnected") fact("Disconnected on", when(view.disconnected_at) ?? "—");
    // another Partsemble organisation posts to this company too: its journals are in these books as well
    const others = ACTIVE.has(status) ? view.other_organisations ?? 0 : 0;
    const shared = others > 0 ? `${others === 1 ? "Another Partsemble organisation is" : `${others} other `
      + "Partsemble organisations are"} also connected to this ${companyWord(provider)}`
      + ": each organisation posts into its books, and each one's books check counts the others' postings among "
      + "the entries it did not make." : null;
    // expired, or connected with a switch of company that did not finish: the API says why in reconnect_hint
    const reconnect = status === "expired" || (status === "connected" && Boolean(view.reconnect_hint));
    const hint = reconnect ? view.reconnect_hint : null;
    if (view.last_error?.reason && !hint?.includes(view.last_error.reason)) {
      fact("Last problem", h("span", { class: "problem" }, view.last_error.reason),
        view.last_error.at ? h("span", { class: "muted" }, " (", when(view.last_error.at), ")") : null);
    }

    const actions = []; // one accounting system at a time: no Connect while the other one is active
    if (reconnect) {
      actions.push(button("reconnect", "Reconnect", () => this.connect(provider), "primary"));
    } else if (!blockedBy && (status === "not_connected" || status === "disconnected")) {
      actions.push(button("connect", `Connect ${label}`, () => this.connect(provider), "primary"));
    }
    // an expired connection may not be reconnectable to its company (closed, or the person no longer has
    // access): the refusal of a reconnect to another company says to switch explicitly, so the card offers it
    if ((status === "disconnected" || status === "expired") && view.company_name && !blockedBy) {
      actions.push(button("switch", `Connect a different ${companyWord(provider)}`,
        () => this.switchCompany(view)));
    }
    if (ACTIVE.has(status)) {
      actions.push(button("disconnect", "Disconnect", () => this.disconnect(view), "danger"));
    }

    return h("article", { class: `card status-${reconnect ? "expired" : status}`, dataset: { provider, status },
      "aria-labelledby": key("title") },
    h("header", { class: "card-header" },
      h("h3", { id: key("title"), tabindex: "-1", dataset: { key: key("title") } }, label),
      h("span", { class: "badge", dataset: { role: "status" } }, STATUS_WORDS[reconnect ? "expired" : status]
        ?? status)),
    hint ? h("p", { class: "hint", dataset: { role: "hint" } }, hint) : null,
    shared ? h("p", { class: "hint", dataset: { role: "shared" } }, shared) : null,
    status === "disconnected" ? h("p", { class: "muted" },
      "Your products, exports and history are kept in Partsemble.") : null,
    facts.length ? h("dl", { class: "facts" }, facts) : null,
    blockedBy ? h("p", { class: "muted" }, `Disconnect ${blockedBy.provider_label} first to connect ${label}.`)
      : null,
    waiting ? h("div", { class: "waiting", dataset: { role: "waiting" } },
      h("p", { class: "muted" }, `Finish signing in to ${label} in the window that opened.`),
      // the sign-in window can end up behind this one, or be left half done: a way back to it, and out
      h("div", { class: "actions" },
        h("button", { type: "button", dataset: { key: key("show-window") }, onclick: () => popup.focus() },
          "Show the sign-in window"),
        h("button", { type: "button", dataset: { key: key("cancel-sign-in") }, onclick: () => popup.close() },
          "Cancel sign-in"))) : null,
    message ? h("p", { class: `card-message ${message.kind}`, dataset: { role: "message" } }, message.text)
      : null,
    actions.length ? h("div", { class: "actions" }, actions) : null);
  },

  async connect(provider, switchCompany = false) {
    const label = this.label(provider);
    this.messages.delete(provider);
    // Opened inside the click so the browser allows it, then sent to the provider once the API answers.
    const popup = window.open("", "_blank", "popup,width=540,height=760");
    if (!popup) {
      this.note(provider, "error", "Your browser blocked the sign-in window. Allow pop-ups for this page, "
        + "then try again.");
      return;
    }
    popup.document.title = `Connecting to ${label}`;
    popup.document.body.textContent = `Opening ${label}…`;
    // the card's buttons are disabled while the window is open, which drops focus to <body>: remembered, to
    // come back to when the sign-in ends without a connection (closed, declined, refused)
    const focusedKey = this.cards.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    if (focusedKey) this.acting.set(provider, focusedKey);
    else this.acting.delete(provider);
    this.popups.set(provider, popup);
    this.show(this.views);
    announce(`Finish signing in to ${label} in the window that opened.`);
    try {
      const { authorize_url: authorizeUrl } = await api("POST", `/integrations/${provider}/connect`,
        { switch_company: switchCompany });
      popup.location.href = authorizeUrl;
    } catch (error) {
      popup.close();
      this.popups.delete(provider);
      this.note(provider, "error", error.message);
      this.refocus(provider);
      // a refusal (409: the other system was connected meanwhile, in another tab or by a colleague) means what
      // the cards show is out of date: read it again, so the page agrees with the message
      if (error.status === 409) this.refresh();
      return;
    }
    const watch = window.setInterval(() => {
      if (!popup.closed) return;
      window.clearInterval(watch);
      if (this.popups.get(provider) !== popup) return; // its result already arrived
      this.popups.delete(provider);
      this.note(provider, "info", `The ${label} window was closed before the connection finished.`);
      this.refocus(provider);
      this.refresh();
    }, 500);
  },

  /** Focus back on the control that started the sign-in (or what stands in its place), unless the person
   * has moved on to another control meanwhile. */
  refocus(provider) {
    const key = this.acting.get(provider);
    this.acting.delete(provider);
    const lost = !document.activeElement || document.activeElement === document.body;
    if (!key || !lost) return;
    const card = this.cards.querySelector(`article[data-provider="${CSS.escape(provider)}"]`);
    (card?.querySelector(`[data-key="${CSS.escape(key)}"]`) ?? card?.querySelector("button:not(:disabled)"))
      ?.focus();
  },

  /** The popup's last page reports the result; only a message from the popup we opened, from the API's
   * origin, is believed, and it only tells the page to show the result and re-read the status. */
  receive(event) {
    const data = event.data;
    if (event.origin !== apiOrigin || !data || data.source !== "partsemble-oauth") return;
    const popup = this.popups.get(data.provider);
    if (!popup || event.source !== popup) return;
    this.popups.delete(data.provider);
    const label = this.label(data.provider);
    if (data.status === "connected") {
      const view = this.views.find((v) => v.provider === data.provider);
      this.messages.set(data.provider, { kind: "success", text: `Connected to ${data.company_name}.` });
      this.acting.delete(data.provider);
      this.replace({ ...view, status: "connected", company_name: data.company_name, last_error: null });
      announce(`${label} connected: ${data.company_name}.`);
      document.getElementById(`${data.provider}-title`)?.focus?.();
    } else {
      this.note(data.provider, "error", data.message || `${label} did not connect.`);
      this.refocus(data.provider);
    }
    this.refresh();
  },

  async switchCompany(view) {
    const confirmed = await confirmAction({
      title: `Connect a different ${companyWord(view.provider)}?`,
      body: [`Partsemble was connected to ${view.company_name}. You can connect another one instead: what was `
        + `already posted stays in ${view.company_name}, and your data in Partsemble is kept.`],
      confirmLabel: `Choose another ${companyWord(view.provider)}`,
    });
    if (confirmed) this.connect(view.provider, true);
  },

  async disconnect(view) {
    const label = view.provider_label;
    const confirmed = await confirmAction({
      title: `Disconnect ${label}?`,
      body: [
        `Partsemble stops posting to ${view.company_name ?? label} and stops reading its sales.`,
        "Your data is kept: products, exports, history and margins stay in Partsemble, and what was already "
          + `posted stays in ${label}. You can connect again at any time.`,
      ],
      confirmLabel: `Disconnect ${label}`,
    });
    if (!confirmed || this.disconnecting.has(view.provider)) return;
    // the card's buttons wait, disabled, until the answer: a second Disconnect would be refused once the first
    // is done, its refusal shown over the first one's success
    this.disconnecting.add(view.provider);
    this.messages.delete(view.provider);
    this.show(this.views);
    try {
      const updated = await api("POST", `/integrations/${view.provider}/disconnect`);
      this.disconnecting.delete(view.provider);
      const text = `Disconnected from ${label}. Your data is kept.`;
      this.messages.set(view.provider, { kind: "success", text });
      this.replace(updated);
      announce(text);
      this.cards.querySelector(`[data-key="${view.provider}-connect"]`)?.focus();
    } catch (error) {
      this.disconnecting.delete(view.provider);
      this.note(view.provider, "error", error.message);
      this.cards.querySelector(`[data-key="${view.provider}-disconnect"]`)?.focus();
    }
  },

  note(provider, kind, text) {
    this.messages.set(provider, { kind, text });
    this.show(this.views);
    announce(text);
  },

  label(provider) {
    return this.views.find((v) => v.provider === provider)?.provider_label ?? provider;
  },
};

function tokenWords(view) {
  if (view.status === "expired") {
    return `No longer accepted by ${view.provider_label}: reconnect to sign in again.`;
  }
  if (view.status === "error") return "Partsemble could not check it; it will try again.";
  const words = ["Active — Partsemble renews it automatically."];
  const hardLimit = view.refresh_token_hard_expires_at;
  if (hardLimit) words.push(" ", `You will need to reconnect by `, when(hardLimit, { dateOnly: true }), ".");
  return h("span", {}, words);
}

// ---- export settings ------------------------------------------------------------------------------
// GET /integrations/{provider}/export-settings: {mode: "inventory_adjustments"|"journals", accounts: {role:
// {account_id, code, name} or null}, warnings: [text] (null with ?warnings=false)}; PUT takes {mode, accounts: {role: account id or null}} and answers the
// same view, or 400 with details [{field, problem}] whose field is "mode" or "accounts.<role>".
// GET /integrations/{provider}/accounts lists the synced chart: [{account_id, code, name, type, active}].

const ACCOUNT_ROLES = {
  receiving_debit: ["Inventory asset", "Debited when goods are received; received lots sit here."],
  receiving_credit: ["Accounts payable or receiving clearing", "Credited when goods are received. On "
    + "QuickBooks Accounts Payable every receipt needs a supplier that is a QuickBooks vendor; Xero's Accounts "
    + "Payable can't take journals, so use a clearing account such as Goods received not invoiced."],
  build_debit: ["Finished goods asset", "Debited with what a build produces; built lots sit here."],
  build_credit: ["Raw materials asset (not used)", "Optional and no longer posted to: a build credits the "
    + "account each consumed lot sits in."],
  waste: ["Waste or scrap", "Debited with rejected goods."],
  adjustment: ["Inventory adjustment offset", "Used for QuickBooks inventory adjustments only."],
  cogs: ["Cost of goods sold", "Where the cost of what you sell is recorded, one journal per business day."],
  subassembly: ["Work in progress (optional)", "Sub-assemblies (built products that other builds consume) "
    + "sit here instead of in finished goods, and leave it when they are consumed."],
  rounding: ["Rounding (optional)", "Takes the cents rounding leaves over, so every other account holds "
    + "exactly its rounded value. Without it the odd cent goes to the account nearest its half cent."],
};
const JOURNALS = "journals";
const SYNC_KINDS = ["accounts", "items", "suppliers"];

const exportSettings = {
  provider: null,

  mount(section) {
    this.section = section;
    this.form = part(section, "form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.form.addEventListener("change", (event) => {
      if (event.target.name === "mode") this.showRoles();
    });
  },

  update() {
    const active = connections.active();
    const provider = active?.provider ?? null;
    if (provider === this.provider) return;
    this.provider = provider;
    // the other provider's items are not this one's to link, nor its "saved" this one's
    part(this.section, "items").replaceChildren();
    part(this.form, "status").textContent = "";
    if (!provider) {
      this.section.hidden = true;
      return;
    }
    this.label = active.provider_label;
    part(this.section, "intro").textContent = `How Partsemble posts receipts, builds and rejections to `
      + `${this.label}. The accounts come from your ${this.label} chart of accounts.`;
    this.renderSync();
    loadSection(this.section, () => this.load(), part(this.section, "accounts"));
  },

  async load() {
    const [settings, accounts] = await Promise.all([
      api("GET", `/integrations/${this.provider}/export-settings`),
      api("GET", `/integrations/${this.provider}/accounts`),
    ]);
    this.render(settings ?? {}, listOf(accounts, "accounts"));
  },

  renderSync() {
    const buttons = SYNC_KINDS.map((kind) => h("button", { type: "button", dataset: { key: `sync-${kind}` },
      onclick: (event) => this.sync(kind, event.currentTarget) }, `Sync ${kind}`));
    part(this.section, "sync").replaceChildren(h("span", {}, `Copy from ${this.label}:`), ...buttons,
      h("span", { class: "form-status", role: "status" }));
  },

  async sync(kind, button) {
    const status = part(this.section, "sync").querySelector(".form-status");
    busy(button, true, "Syncing…");
    try {
      const result = await api("POST", `/integrations/${this.provider}/sync/${kind}`);
      const counts = Object.entries(result ?? {}).filter(([, value]) => typeof value === "number")
        .map(([name, value]) => `${value} ${name.replaceAll("_", " ")}`);
      status.textContent = `${capitalised(kind)} synced${counts.length ? ` (${counts.join(", ")})` : ""}.`;
      if (kind === "accounts") {
        const accounts = listOf(await api("GET", `/integrations/${this.provider}/accounts`), "accounts");
        this.render(this.collect(), accounts);
      }
      if (kind === "items") await items.show(this.provider, this.label, part(this.section, "items"));
      await connections.refresh();  // "Last successful sync" moves on now, not at the next reload
    } catch (error) {
      if (isMissingRoute(error)) button.remove();
      else status.textContent = error.message;
    } finally {
      busy(button, false);
    }
  },

  render(settings, accounts) {
    this.accounts = accounts;
    const isQbo = this.provider === "qbo";
    const modeField = this.form.querySelector('[data-field="mode"]');
    modeField.hidden = !isQbo;
    for (const radio of this.form.elements.mode) radio.checked = radio.value === (settings.mode ?? JOURNALS);
    const chosen = settings.accounts ?? {};
    const roles = [...new Set([...Object.keys(ACCOUNT_ROLES), ...Object.keys(chosen)])];
    replaceKeepingFocus(part(this.form, "accounts"),
      accounts.length ? null : h("p", { class: "banner" },
        `No accounts yet: sync the accounts from ${this.label} to choose them here.`),
      ...(settings.warnings ?? []).map((warning) => h("p", { class: "banner", role: "note" }, warning)),
      ...roles.map((role) => this.picker(role, chosenId(chosen[role]))));
    this.clearErrors();
    this.showRoles();
  },

  picker(role, selected) {
    const [label, hint] = ACCOUNT_ROLES[role] ?? [role.replaceAll("_", " "), ""];
    const id = `account-${role}`;
    const usable = this.accounts.filter((a) => accountActive(a) || accountId(a) === selected);
    const groups = Map.groupBy(usable, (a) => accountType(a) || "Other");
    const options = [h("option", { value: "" }, "— Not set —")];
    if (selected && !usable.some((a) => accountId(a) === selected)) {
      options.push(h("option", { value: selected }, `${selected} (not in the synced accounts)`));
    }
    for (const [type, list] of groups) {
      options.push(h("optgroup", { label: type }, list.map((a) => h("option", { value: accountId(a) },
        accountName(a)))));
    }
    const select = h("select", { id, name: role, "aria-describedby": `${id}-hint ${id}-error` }, options);
    select.value = selected;
    return h("div", { class: "field", dataset: { field: `accounts.${role}` } },
      h("label", { for: id }, label),
      select,
      h("p", { class: "hint", id: `${id}-hint` }, hint),
      h("p", { class: "field-error", id: `${id}-error`, dataset: { role: "error" } }));
  },

  showRoles() {
    const adjustment = this.form.querySelector('[data-field="accounts.adjustment"]');
    if (adjustment) adjustment.hidden = this.form.elements.mode.value === JOURNALS;
  },

  collect() {
    const accounts = {};
    for (const select of part(this.form, "accounts").querySelectorAll("select")) {
      accounts[select.name] = select.closest("[data-field]").hidden ? null : select.value || null;
    }
    return this.provider === "qbo" ? { mode: this.form.elements.mode.value, accounts } : { accounts };
  },

  clearErrors() {
    part(this.form, "form-error").hidden = true;
    for (const field of this.form.querySelectorAll("[data-field]")) {
      field.classList.remove("invalid");
      part(field, "error").textContent = "";
      field.querySelector("select, input")?.removeAttribute("aria-invalid");
    }
  },

  async save() {
    const submit = this.form.querySelector('button[type="submit"]');
    const status = part(this.form, "status");
    this.clearErrors();
    status.textContent = "";
    busy(submit, true, "Saving…");
    try {
      const saved = await api("PUT", `/integrations/${this.provider}/export-settings`, this.collect());
      if (saved) this.render(saved, this.accounts);
      status.textContent = "Export settings saved.";
      books.refresh();
    } catch (error) {
      this.showErrors(error);
    } finally {
      busy(submit, false);
    }
  },

  showErrors(error) {
    const unplaced = [];
    for (const { field, problem } of error.fieldProblems ?? []) {
      const name = String(field);
      const role = name.split(".").pop();
      const target = this.form.querySelector(`[data-field="${CSS.escape(name)}"]`)
        ?? this.form.querySelector(`[data-field="accounts.${CSS.escape(role)}"]`)
        ?? this.form.querySelector(`[data-field="${CSS.escape(role)}"]`);
      if (!target) {
        unplaced.push(problem);
        continue;
      }
      target.classList.add("invalid");
      part(target, "error").textContent = problem;
      target.querySelector("select, input")?.setAttribute("aria-invalid", "true");
    }
    const banner = part(this.form, "form-error");
    const placed = this.form.querySelector(".invalid");
    banner.textContent = unplaced.length ? unplaced.join(" ")
      : placed ? "Some settings were not saved: see the fields marked below." : error.message;
    banner.hidden = false;
    (placed?.querySelector("select, input") ?? banner).focus?.();
  },
};

const accountId = (a) => String(a.account_id ?? a.id ?? "");
const chosenId = (choice) => (typeof choice === "object" && choice !== null ? accountId(choice) : choice ?? "");
const accountType = (a) => a.type ?? a.account_type ?? "";
const accountActive = (a) => a.active ?? (a.status ? String(a.status).toUpperCase() === "ACTIVE" : true);
function accountName(a) {
  const code = a.code ?? a.number ?? a.acct_num;
  return code ? `${code} · ${a.name}` : a.name;
}

// ---- product import ---------------------------------------------------------------------------------
// POST /products/import?mode=dry_run|apply with {"filename", "content_base64"}: {mode, file_errors,
// ignored_columns (the first 50), ignored_columns_left_out, rows_read, valid_count, error_count, skipped_count, created, updated, unchanged,
// row_ranges: {created|updated|unchanged|error|skipped: [[first, last]]}, details: [{row, outcome, sku, name,
// errors: [{column, problem}], warnings}], details_left_out}. Details list only the rows with errors or
// warnings (the first 1,000); in a dry run created/updated/unchanged say what an apply would do.

const ROW_WORDS = { valid: "Ready", error: "Has errors" };
const MAX_RANGES_SHOWN = 50;

/** "3, 5–9, 12" from [[3, 3], [5, 9], [12, 12]], shortened past MAX_RANGES_SHOWN ranges. */
function rowRanges(ranges) {
  const text = ranges.slice(0, MAX_RANGES_SHOWN)
    .map(([first, last]) => (first === last ? String(first) : `${first}–${last}`)).join(", ");
  return ranges.length > MAX_RANGES_SHOWN ? `${text} and more` : text;
}

const productImport = {
  mount(section) {
    this.section = section;
    this.report = part(section, "report");
    const input = part(section, "file");
    input.addEventListener("change", () => this.check(input.files[0]));
    // choosing the file just checked again (fixed and saved meanwhile) must check it again: the browser fires
    // no change for the same file, so the input is emptied as its picker opens, and given back its file
    // when the picker is dismissed
    input.addEventListener("click", () => { input.value = ""; });
    input.addEventListener("cancel", () => {
      if (!this.chosen) return;
      const files = new DataTransfer();
      files.items.add(this.chosen);
      input.files = files.files;
    });
  },

  update() {
    // Shown without asking the API first: a probe would be a refused request on every page load. A 404 when a
    // file is checked hides the section.
    this.section.hidden = false;
  },

  async check(file) {
    // each check is numbered: the answer of a file chosen before another one is dropped, never shown for it
    const turn = (this.turn = (this.turn ?? 0) + 1);
    this.file = null;
    this.chosen = file ?? null;
    if (!file) {
      this.report.replaceChildren();
      return;
    }
    if (file.size > MAX_IMPORT_BYTES) {
      this.report.replaceChildren(h("p", { class: "banner banner-error", role: "alert" },
        `${file.name} is larger than 5 MB. Split it into smaller files and import them one by one.`));
      return;
    }
    this.report.replaceChildren(h("p", { class: "muted" }, `Checking ${file.name}…`));
    try {
      const chosen = { filename: file.name, content_base64: await base64Of(file) };
      if (turn !== this.turn) return;
      this.file = chosen;
      const result = await api("POST", "/products/import?mode=dry_run", chosen);
      if (turn !== this.turn) return;
      this.show(result);
    } catch (error) {
      if (turn !== this.turn) return;
      if (isMissingRoute(error)) this.section.hidden = true;
      this.report.replaceChildren(h("p", { class: "banner banner-error", role: "alert" }, error.message));
    }
  },

  show(result) {
    const fileErrors = result.file_errors ?? [];
    if (fileErrors.length) {
      this.report.replaceChildren(h("div", { class: "banner banner-error", role: "alert",
        dataset: { role: "file-errors" } },
      h("p", {}, `${this.file.filename} cannot be imported:`),
      h("ul", {}, fileErrors.map((e) => h("li", {}, e)))));
      return;
    }
    const valid = result.valid_count ?? 0;
    const errors = result.error_count ?? 0;
    const skipped = result.skipped_count ?? 0;
    const details = result.details ?? [];
    const shown = details.slice(0, MAX_TABLE_ROWS);
    const leftOut = (result.details_left_out ?? 0) + details.length - shown.length;
    const errorRanges = result.row_ranges?.error ?? [];
    const changes = [
      [result.created, (n) => `create ${plural(n, "product")}`],
      [result.updated, (n) => `update ${n}`],
      [result.unchanged, (n) => `leave ${n} unchanged`],
    ].filter(([count]) => count).map(([count, words]) => words(count));
    const status = (d) => (d.outcome === "error" ? "error" : "valid");
    const apply = h("button", { type: "button", class: "primary", disabled: valid === 0,
      dataset: { key: "apply" }, onclick: () => this.apply(apply) }, `Import ${plural(valid, "product")}`);
    replaceKeepingFocus(this.report,
      h("p", { class: `banner ${errors ? "banner-warning" : "banner-success"}`, dataset: { role: "summary" } },
        `${valid} ${valid === 1 ? "row is" : "rows are"} ready to import`,
        errors ? `; ${errors} ${errors === 1 ? "row has" : "rows have"} errors and will not be imported until `
          + "fixed." : "."),
      h("p", { class: "muted", dataset: { role: "counts" } },
        `${plural(result.rows_read ?? 0, "row")} read`,
        changes.length ? `; an import would ${changes.join(", ")}` : "",
        skipped ? `; ${plural(skipped, "blank row")} skipped.` : "."),
      errors ? h("p", { class: "muted", dataset: { role: "error-rows" } },
        `Rows with errors: ${rowRanges(errorRanges)}.`) : null,
      result.ignored_columns?.length ? h("p", { class: "muted" },
        `Columns Partsemble does not use and ignores: ${result.ignored_columns.join(", ")}`
        + (result.ignored_columns_left_out ? ` and ${result.ignored_columns_left_out} more.` : ".")) : null,
      shown.length ? table({ text: "Rows with problems", visible: true }, [
        { label: "Row", cell: (d) => String(d.row) },
        { label: "SKU", cell: (d) => d.sku ?? "" },
        { label: "Name", cell: (d) => d.name ?? "" },
        { label: "Status", cell: (d) => h("span", { class: `badge row-${status(d)}` }, ROW_WORDS[status(d)]) },
        { label: "Problems", class: "problems", cell: (d) => problemList(d) },
      ], shown.map((d) => ({ value: d, dataset: { row: String(d.row), status: status(d) } }))) : null,
      leftOut > 0 ? h("p", { class: "muted", dataset: { role: "left-out" } },
        `${plural(leftOut, "more row")} with errors or warnings ${leftOut === 1 ? "is" : "are"} not listed; `
        + "fix the rows above and check the file again.") : null,
      h("div", { class: "actions" }, apply, h("span", { class: "form-status", role: "status", tabindex: "-1",
        dataset: { role: "apply-status" } })));
  },

  async apply(button) {
    const status = part(this.report, "apply-status");
    busy(button, true, "Importing…");
    try {
      const result = await api("POST", "/products/import?mode=apply", this.file);
      const parts = [[result.created, "new"], [result.updated, "updated"], [result.unchanged, "unchanged"]]
        .filter(([count]) => count);
      status.textContent = result.file_errors?.length ? `Nothing was imported: ${result.file_errors.join(" ")}`
        : parts.length
          ? `Imported: ${parts.map(([count, word]) => `${plural(count, "product")} ${word}`).join(", ")}.`
          : "Nothing to import.";
      button.remove();
      status.focus(); // the button is gone: focus stays where the person acted, not back at the page's top
      announce(status.textContent);
    } catch (error) {
      status.textContent = error.message;
      busy(button, false);
    }
  },
};

function problemList(row) {
  const problems = [
    ...(row.errors ?? []).map((problem) => [problem, "error"]),
    ...(row.warnings ?? []).map((problem) => [problem, "warning"]),
  ];
  if (!problems.length) return "";
  return h("ul", { class: "problems" }, problems.map(([p, kind]) => h("li", { class: kind },
    p.column ? h("strong", {}, `${p.column}: `) : null, p.problem)));
}

async function base64Of(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return window.btoa(binary);
}

// ---- exports --------------------------------------------------------------------------------------
// GET /exports?limit=&cursor=: {items: [{export_id, kind, record_id, status, provider, document_type, document_id,
// document_link, adopted, attempts, last_error, happened_at, created_at, updated_at}], next_cursor}, newest
// first, a page at a time (next_cursor null: the last page); POST
// /exports/{export_id}/retry[?post_on=YYYY-MM-DD] (a later date for a document refused for a locked period). Kinds: receipt, build, rejection (record_id: its id), cogs (a business day's cost
// of goods sold; record_id: the date, "@" and the company whose sales it costs), trueup (a correction of values already posted). Status skipped: there
// was nothing to post, last_error says why.

const EXPORT_WORDS = { pending: "Queued", posting: "Posting", posted: "Posted", failed: "Failed",
  waiting: "Waiting for reconnect", skipped: "Nothing to post" };
const PROVIDER_SHORT = { qbo: "QuickBooks", xero: "Xero" };
const DOCUMENT_WORDS = { JournalEntry: "journal", ManualJournal: "manual journal",
  InventoryAdjustment: "inventory adjustment" };
const RECORD_WORDS = { receipt: "receipt", build: "build", rejection: "QA rejection" };
// The providers' refusals of a date in a locked period: Xero's lock dates, QBO's closing date (error 6210)
const LOCKED_PERIOD = /lock date|closing date|period closed|period has closed/i;

const dayFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric",
  timeZone: "UTC" });
const dayMonthFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });

/** "10 Nov 2026" for a calendar date (YYYY-MM-DD), the same wherever the reader is. */
function calendarDay(iso) {
  const date = new Date(`${String(iso).slice(0, 10)}T00:00:00Z`);
  return Number.isNaN(date.getTime()) ? String(iso) : dayFormat.format(date);
}

/** "30 Nov" for a moment this year, "30 Nov 2025" before. */
function shortDay(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (date.getFullYear() === new Date().getFullYear() ? dayMonthFormat : dateFormat).format(date);
}

const providerWords = (provider) => PROVIDER_SHORT[provider] ?? provider ?? "";
const documentWords = (type) => DOCUMENT_WORDS[type] ?? (type ? type.replace(/([a-z])([A-Z])/g, "$1 $2")
  .toLowerCase() : "document");

/** What an export is, in words: "Cost of goods sold for 10 Nov 2026", "Receipt R-1". */
function exportSubject(item) {
  // a business day's id, then "@" and the company whose sales it costs: one day can have two, after a switch
  if (item.kind === "cogs") {
    const [day, company] = String(item.record_id).split("@");
    const connected = connections.active()?.tenant_id;
    const theirs = company && connected && company !== connected ? " (sales of the company connected before)" : "";
    return `Cost of goods sold for ${calendarDay(day)}${theirs}`;
  }
  if (item.kind === "trueup") return "True-up of values already posted";
  return capitalised(`${RECORD_WORDS[item.kind] ?? item.kind ?? "export"} ${item.record_id ?? ""}`.trim());
}

/** One sentence per export: "Manual journal in Xero for receipt R-1, posted 30 Nov". */
function exportSentence(item) {
  const where = item.provider ? providerWords(item.provider) : null;
  const subject = exportSubject(item);
  const posted = item.status === "posted";
  const document = posted && item.document_type ? documentWords(item.document_type) : null;
  if (document && (item.kind === "cogs" || item.kind === "trueup")) {
    return `${subject} – ${document}${where ? ` in ${where}` : ""}, posted ${shortDay(item.updated_at)}`;
  }
  if (document) {
    // "receipt R-1", but "QA rejection ..." keeps its capitals
    const lowered = /^[A-Z]{2}/.test(subject) ? subject : subject[0].toLowerCase() + subject.slice(1);
    return `${capitalised(document)}${where ? ` in ${where}` : ""} for ${lowered}`
      + `, posted ${shortDay(item.updated_at)}`;
  }
  return where ? `${subject} – for ${where}` : subject;
}

function exportReason(item) {
  if (!item.last_error) return "";
  if (item.status === "skipped" && !/^nothing to post/i.test(item.last_error)) {
    return `Nothing to post: ${item.last_error}`;
  }
  if (item.status === "skipped") return capitalised(item.last_error);
  // queued again (a retry, a backoff): the refusal is the last attempt's, not the reason it is queued
  if (item.status === "pending" || item.status === "posting") return `Last attempt: ${item.last_error}`;
  return item.last_error;
}

const EXPORTS_PAGE = 100; // exports read at first and at each Show more
const MAX_PAGE = 500; // the API's largest page

/** The path of a page of a paged list: `limit` items after `cursor` (none: the first page). */
function pagePath(path, limit, cursor) {
  return `${path}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
}

/** Pages of a paged list until `wanted` items (or the list's end): {items, next} (next: the cursor after). */
async function readPages(path, wanted = Infinity, cursor = null) {
  const items = [];
  let next = cursor;
  do {
    const page = await api("GET", pagePath(path, Math.min(MAX_PAGE, wanted - items.length), next));
    items.push(...listOf(page, "items"));
    next = page?.next_cursor ?? null;
  } while (next && items.length < wanted);
  return { items, next };
}

const exportsList = {
  items: [],
  next: null, // the cursor of the exports after those shown; null: all are shown
  reads: 0, // a read of the list counts here: a Show more answered after one was begun is out of date

  mount(section) {
    this.section = section;
    this.list = part(section, "list");
    part(section, "reload").addEventListener("click", (event) => this.reload(event.currentTarget));
  },

  /** "Refresh list": a refusal or an outage is said above the list, which is left as it was last read. */
  async reload(button) {
    busy(button, true, "Refreshing…");
    try {
      await this.load();
    } catch (error) {
      this.problem(`The list could not be refreshed: ${error.message}`);
    } finally {
      busy(button, false);
    }
  },

  problem(text) {
    const banner = part(this.section, "problem");
    banner.textContent = text;
    banner.hidden = !text;
  },

  update() {
    if (this.probed) return;
    this.probed = true;
    loadSection(this.section, () => this.load(), this.list);
  },

  load() {
    this.loading = this.read();
    return this.loading;
  },

  async read() {
    // read again (Refresh list, after a retry): as many as were shown, so the rows the person was at stay
    const mine = ++this.reads;
    let answer;
    try {
      answer = await readPages("/exports", Math.max(this.items.length, EXPORTS_PAGE));
    } catch (error) {
      if (mine === this.reads) throw error;
      return; // a newer read began meanwhile: its answer, or its failure, is the one to show
    }
    if (mine !== this.reads) return; // an older answer must not replace a newer read's list or its problem
    const { items, next } = answer;
    this.problem(""); // read again, by Refresh list or after a retry: what it said of a failed read is over
    this.items = items;
    this.next = next;
    this.render();
  },

  /** Show more: the next page after those shown, added below them. */
  async more(button) {
    const { reads, next } = this;
    busy(button, true, "Loading…");
    try {
      const page = await readPages("/exports", EXPORTS_PAGE, next);
      // the list was read again meanwhile (or is being read): it is the current one, and ends elsewhere
      if (reads !== this.reads || next !== this.next) return;
      this.problem("");
      this.items = [...this.items, ...page.items];
      this.next = page.next;
      this.render();
      announce(`${plural(page.items.length, "more export")} shown${this.next ? "" : ": that is all of them"}.`);
      if (!this.next) part(this.list, "all-shown")?.focus(); // Show more is gone: focus stays at the list's end
    } catch (error) {
      this.problem(`More exports could not be shown: ${error.message}`);
    } finally {
      busy(button, false);
    }
  },

  render() {
    const { items } = this;
    if (!items.length) {
      replaceKeepingFocus(this.list, h("p", { class: "muted" }, "Nothing has been exported yet."));
      return;
    }
    const end = this.next
      ? h("div", { class: "actions" }, h("button", { type: "button", dataset: { role: "more", key: "exports-more" },
        onclick: (event) => this.more(event.currentTarget) }, "Show more"),
      h("span", { class: "muted" }, `The latest ${plural(items.length, "export")} shown.`))
      : items.length > EXPORTS_PAGE && h("p", { class: "muted", tabindex: "-1", dataset: { role: "all-shown" } },
        `All ${plural(items.length, "export")} shown.`);
    replaceKeepingFocus(this.list, table({ text: "Exports", visible: false }, [
      { label: "What", cell: (e) => h("span", { dataset: { role: "sentence" } }, exportSentence(e)) },
      { label: "Date", cell: (e) => when(e.happened_at, { dateOnly: true }) ?? "" },
      { label: "Status", cell: (e) => h("span", { class: `badge export-${e.status}` },
        EXPORT_WORDS[e.status] ?? capitalised(e.status ?? "")) },
      { label: "Reason", class: "problems", cell: (e) => exportReason(e) },
      { label: "Document", cell: providerLink },
      { label: "Action", cell: (e) => (e.status !== "failed" ? null : h("span", { class: "actions" },
        h("button", { type: "button", dataset: { key: `retry-${e.export_id}` },
          "aria-label": `Retry ${exportSubject(e)}`, onclick: (event) => this.retry(e, event.currentTarget) },
        "Retry"),
        LOCKED_PERIOD.test(e.last_error ?? "") ? this.laterDay(e) : null)) },
    ], items.map((e) => ({ value: e, dataset: { exportId: String(e.export_id), status: e.status ?? "",
      kind: e.kind ?? "" } }))), end);
  },

  /** A date to post on, for a document the provider refused because its own date is in a locked period. */
  laterDay(item) {
    const id = `post-on-${item.export_id}`;
    const input = h("input", { type: "date", id, required: true, dataset: { key: id } });
    return h("span", { class: "later-day" },
      h("label", { for: id }, "or post on"), input,
      // the visible words lead the accessible name (WCAG 2.5.3, label in name): speech users say what they see
      h("button", { type: "button", dataset: { key: `post-on-retry-${item.export_id}` },
        "aria-label": `Retry on that day: ${exportSubject(item)}`,
        onclick: (event) => this.retry(item, event.currentTarget, input.value || "", input) },
      "Retry on that day"));
  },

  async retry(item, button, postOn = null, dayInput = null) {
    // one problem per row, replaced by the next attempt's: a second refusal does not pile up beside the first
    const row = button.closest("tr");
    row?.querySelector('[data-role="retry-problem"]')?.remove();
    dayInput?.removeAttribute("aria-invalid");
    const said = (text) => h("span", { class: "problem block", role: "alert",
      dataset: { role: "retry-problem" } }, text);
    if (postOn === "") { // the day is the field's problem: said and marked there, and focus goes to it
      const id = `${dayInput.id}-error`;
      dayInput.setAttribute("aria-invalid", "true");
      dayInput.setAttribute("aria-describedby", id);
      dayInput.closest(".later-day").append(Object.assign(said("Choose the day to post it on first."), { id }));
      dayInput.focus();
      return;
    }
    busy(button, true, "Retrying…");
    const query = postOn === null ? "" : `?post_on=${encodeURIComponent(postOn)}`;
    try {
      await api("POST", `/exports/${encodeURIComponent(item.export_id)}/retry${query}`);
      announce(`${exportSubject(item)} queued again${postOn ? `, to be dated ${calendarDay(postOn)}` : ""}.`);
      await this.load();
      part(this.section, "reload").focus(); // the row's button is gone with the retry
    } catch (error) {
      busy(button, false);
      button.focus();
      button.closest(".actions, .later-day").append(said(error.message));
    }
  },
};

function providerLink(item) {
  const where = item.provider ? providerWords(item.provider) : "";
  const text = item.document_id ? `${capitalised(documentWords(item.document_type))} ${item.document_id}` : "";
  const url = item.document_link;
  if (url && /^https?:\/\//.test(url)) {
    return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text || `Open in ${where}`, " ",
      h("span", { class: "visually-hidden" }, `in ${where} (opens in a new tab)`));
  }
  return text || "—";
}

/** What the provider calls the books Partsemble connects to: a Xero organisation, a QuickBooks company. */
const companyWord = (provider) => (provider === "xero" ? "organisation" : "company");
const plural = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;
const capitalised = (text) => (text ? `${text[0].toUpperCase()}${text.slice(1).replaceAll("_", " ")}` : "");

// ---- items -> products ----------------------------------------------------------------------------------
// GET /integrations/{provider}/items?limit=&cursor= -> {items: [{item_id, name, sku, kind, active}],
// next_cursor}; GET /products?limit=&cursor= -> {items: [{product_id, sku, name, provider_links}], next_cursor}
// (every page of both is read: an item's status needs every product);
// POST /products/import-from-provider {provider, item_ids} -> {created, updated,
// skipped: [{item_id, name, reason}], warnings: [{product_id, item_id, sku, reason}]}: an item whose SKU a
// product has is linked to it, otherwise it becomes a product (a bundle brings its components); warnings: a
// kit linked to a QuickBooks item that is no bundle.

const sameSku = (a, b) => Boolean(a) && Boolean(b) && a.trim().toLowerCase() === b.trim().toLowerCase();

const items = {
  async show(provider, label, target) {
    this.provider = provider;
    this.label = label;
    this.target = target;
    const [found, products] = await Promise.all([
      readPages(`/integrations/${provider}/items`), readPages("/products"),
    ]);
    this.render(found.items, products.items);
  },

  status(item, products) {
    const linked = products.find((p) => p.provider_links?.[this.provider] === item.item_id);
    if (linked) return { text: `Linked to ${linked.sku || linked.name}`, choosable: false };
    const match = products.find((p) => !p.provider_links?.[this.provider] && sameSku(p.sku, item.sku));
    if (match) return { text: `Same SKU as product ${match.sku}: will be linked`, choosable: true };
    const clash = products.find((p) => p.provider_links?.[this.provider] && sameSku(p.sku, item.sku));
    if (clash) return { text: `SKU already used by ${clash.sku}, linked to another item`, choosable: false };
    if (!item.sku) return { text: `No SKU in ${this.label}: give it one there first`, choosable: false };
    return { text: "New: will become a product", choosable: true };
  },

  render(found, products) {
    const rows = found.filter((i) => i.active !== false).map((i) => ({ item: i, ...this.status(i, products) }));
    const choosable = rows.filter((r) => r.choosable);
    const heading = h("h3", {}, `Items in ${this.label}`);
    if (!rows.length) {
      replaceKeepingFocus(this.target, heading, h("p", { class: "muted" }, "No items synced yet."));
      return;
    }
    const button = h("button", { type: "button", class: "primary", dataset: { role: "import-items" },
      onclick: (event) => this.importChosen(event.currentTarget) }, "Link or import the chosen items");
    button.disabled = !choosable.length;
    replaceKeepingFocus(this.target, heading,
      h("p", { class: "section-note" }, `Link ${this.label} items to products by SKU, or make them products, `
        + "so receipts, builds and sales of them can be exported."),
      table({ text: `Items in ${this.label}`, visible: false }, [
        { label: "Choose", cell: (r) => (r.choosable ? h("input", { type: "checkbox", value: r.item.item_id,
          checked: true, "aria-label": `Choose ${r.item.name}` }) : "") },
        { label: "Item", cell: (r) => r.item.name },
        { label: "SKU", cell: (r) => r.item.sku ?? "" },
        { label: "In Partsemble", cell: (r) => r.text },
      ], rows.map((r) => ({ value: r, dataset: { item: r.item.item_id } }))),
      h("div", { class: "actions" }, button, h("span", { class: "form-status", role: "status", tabindex: "-1",
        dataset: { role: "items-status" } })));
  },

  async importChosen(button) {
    const status = this.target.querySelector('[data-role="items-status"]');
    const chosen = [...this.target.querySelectorAll('input[type="checkbox"]:checked')].map((c) => c.value);
    if (!chosen.length) {
      status.textContent = "Choose at least one item.";
      return;
    }
    busy(button, true, "Linking…");
    try {
      const result = await api("POST", "/products/import-from-provider",
        { provider: this.provider, item_ids: chosen });
      const skipped = listOf(result, "skipped");
      const words = [`${plural(listOf(result, "created").length, "product")} created`,
        `${listOf(result, "updated").length} linked`];
      if (skipped.length) words.push(`${skipped.length} skipped (${skipped.map((s) => `${s.name ?? s.item_id}: ${s.reason}`).join("; ")})`);
      const apart = listOf(result, "warnings");
      if (apart.length) words.push(`to check: ${apart.map((w) => `${w.sku}: ${w.reason}`).join("; ")}`);
      await this.show(this.provider, this.label, this.target);
      const said = this.target.querySelector('[data-role="items-status"]');
      said.textContent = `${words.join(", ")}.`;
      const again = this.target.querySelector('[data-role="import-items"]');
      (again && !again.disabled ? again : said).focus();  // focus stays by the control that acted
    } catch (error) {
      status.textContent = error.message;
    } finally {
      busy(button, false);
    }
  },
};

// ---- sales and margins ------------------------------------------------------------------------------
// POST /sales/pull -> 202 [{provider, queued_at}]; GET /sales/status -> [{provider, enabled, pulling,
// stalled, last_pull: {at, ok, read, stored, error}}] (stalled: a pull stopped part way, kept its place); GET /margins?group=product|period|document -> {home_currency,
// totals, groups: [{key, label, figures}], documents: [{number, date, figures, ...}]}, figures being
// {revenue, cogs, uncosted, incomplete, margin, margin_pct}. Amounts are decimal strings, shown as given.

const SVG = "http://www.w3.org/2000/svg";
const STALLED = "A pull stopped part way: the next one (hourly, or Pull sales now) goes on from where it stopped.";

function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

// Margin by product or document as bars, by month as a line; the table below holds the same figures in
// words, so the picture is an image with a summary for screen readers.
function marginChart(rows, group, currency) {
  const points = rows.filter((r) => present(r.figures.margin))
    // the number only places the mark; the words say the amount as the API gave it (a float would round it)
    .map((r) => ({ label: String(r.label ?? r.key), value: Number(r.figures.margin), text: r.figures.margin }));
  if (!points.length) return h("p", { class: "muted" }, "No margin to chart yet: no sale is fully costed.");
  const width = 640, height = 200, pad = 36;
  const top = Math.max(0, ...points.map((p) => p.value)), bottom = Math.min(0, ...points.map((p) => p.value));
  const span = top - bottom || 1;
  const y = (value) => pad / 2 + (height - pad) * (top - value) / span;
  const step = (width - pad) / points.length;
  const summary = `Margin by ${GROUP_WORDS[group]}${currency}: `
    + points.map((p) => `${p.label} ${amount(p.text)}`).join(", ");
  const marks = group === "period"
    ? [svg("polyline", { points: points.map((p, i) => `${pad + step * (i + 0.5)},${y(p.value)}`).join(" "),
      fill: "none", stroke: "currentColor", "stroke-width": 2 }),
    ...points.map((p, i) => svg("circle", { cx: pad + step * (i + 0.5), cy: y(p.value), r: 3 }))]
    : points.map((p, i) => svg("rect", { x: pad + step * i + step * 0.15, width: step * 0.7,
      y: Math.min(y(p.value), y(0)), height: Math.max(1, Math.abs(y(p.value) - y(0))),
      class: p.value < 0 ? "bar negative" : "bar" }));
  const labels = points.map((p, i) => svg("text", { x: pad + step * (i + 0.5), y: height - 2,
    "text-anchor": "middle", "font-size": 11 }, p.label.length > 14 ? `${p.label.slice(0, 13)}…` : p.label));
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": summary,
    class: "margin-chart", "data-role": "margin-chart" },
  svg("line", { x1: pad, x2: width, y1: y(0), y2: y(0), stroke: "currentColor", "stroke-width": 1 }),
  ...marks, ...labels);
}

// What the period's figures rest on, in words: e.g. a credit that matched no sale and where its units went.
function marginNotes(notes) {
  if (!notes.length) return null;
  return h("div", { class: "margin-notes", dataset: { role: "margin-notes" } },
    h("h4", {}, "Notes"), h("ul", {}, notes.map((note) => h("li", {}, String(note)))));
}

const GROUP_WORDS = { product: "product", period: "month", document: "document" };

const sales = {
  provider: null,

  mount(section) {
    this.section = section;
    this.margins = part(section, "margins");
    part(section, "pull").addEventListener("click", (event) => this.pull(event.currentTarget));
    // a refusal or an outage replaces the margins with what went wrong: the figures of the grouping chosen
    // before would read as this one's
    part(section, "period").addEventListener("change", () => this.load().catch((error) => {
      replaceKeepingFocus(this.margins, h("p", { class: "banner banner-error", role: "alert" },
        `The margins could not be read: ${error.message}`));
    }));
    tracking.mount(part(section, "tracking"));
  },

  update() {
    const provider = connections.active()?.provider ?? null;
    if (provider === this.provider) return;
    this.provider = provider;
    if (!provider) {
      this.section.hidden = true;
      return;
    }
    tracking.forget(connections.active());
    part(this.section, "status").textContent = ""; // "pulled" there was the other provider's pull
    loadSection(this.section, () => this.load(), this.margins);
  },

  // Each load is numbered: a slower answer to an earlier one (the grouping chosen before, a pull's reload)
  // is dropped, so the margins shown are always those of the grouping chosen last.
  async load() {
    const turn = (this.turn = (this.turn ?? 0) + 1);
    try {
      await this.read(turn);
    } catch (error) {
      if (turn === this.turn) throw error;
    }
  },

  async read(turn) {
    const group = part(this.section, "period").value;
    const status = listOf(await api("GET", "/sales/status"));
    if (turn !== this.turn) return;
    // the connected provider's pull only: one disconnected keeps its status, and its last pull is not this one's
    const mine = status.find((s) => s.provider === this.provider) ?? null;
    this.showLastPull(mine?.last_pull ?? null, Boolean(mine?.stalled));
    tracking.show(mine);
    // Margins exist once tracking was ever on; before that the API refuses them (409): don't ask.
    part(this.section, "download").hidden = !status.length;
    if (!status.length) {
      replaceKeepingFocus(this.margins, h("p", { class: "muted" },
        "Turn sales tracking on to see your margins here."));
      return;
    }
    this.download(null);
    const report = await api("GET", `/margins?group=${encodeURIComponent(group)}`);
    if (turn !== this.turn) return;
    const documents = listOf(report, "documents");
    const named = (d) => `${capitalised(d.kind)} ${d.number}`;
    const rows = group === "document"
      // a voided or deleted document stays listed (its revenue reversed): its status says why it is 0.00
      ? documents.map((d) => ({ label: `${named(d)}${d.status && d.status !== "active" ? ` (${d.status})` : ""}`,
        key: d.date, figures: d.figures }))
      : listOf(report, "groups");
    // what the figures leave out, in words: a document's lines that name no product, a document not counted
    const notes = [...listOf(report, "notes"),
      ...documents.flatMap((d) => (d.issues ?? []).map((issue) => `${named(d)}: ${issue}`)),
      ...listOf(report, "excluded").map((e) => `${e.number ?? e.document_id} is not counted: ${e.reason}`)];
    const currency = report?.home_currency ? ` (${report.home_currency})` : "";
    if (!rows.length) {
      // pulled, yet none of it on a product: the sales name items no product is linked to (yet)
      replaceKeepingFocus(this.margins, h("p", { class: "muted" }, status.some((s) => s.last_pull)
        ? "No sale pulled so far names a Partsemble product: link or import the items your sales name "
          + "(Sync items, above), and their margins show here."
        : "No sales pulled yet."));
      return;
    }
    this.download(group);
    const totals = { label: "Total", figures: report.totals, total: true };
    replaceKeepingFocus(this.margins, h("div", {},
      marginChart(rows, group, currency),
      table({ text: `Margins by ${GROUP_WORDS[group]}`, visible: true }, [
        { label: capitalised(GROUP_WORDS[group]), cell: (r) => (r.total ? h("strong", {}, r.label) : r.label ?? r.key) },
        { label: `Revenue${currency}`, class: "number", cell: (r) => amount(r.figures.revenue) },
        { label: `Cost of goods${currency}`, class: "number", cell: (r) => [amount(r.figures.cogs), uncosted(r)] },
        { label: `Margin${currency}`, class: "number", cell: (r) => amount(r.figures.margin) },
        { label: "Margin %", class: "number",
          cell: (r) => (present(r.figures.margin_pct) ? `${r.figures.margin_pct}%` : "—") },
      ], [...rows, totals].map((r) => ({ value: r, dataset: r.total ? { total: "" } : {} }))),
      marginNotes(notes)));
  },

  // The CSV link acts only once margins are shown (group null: not yet, it does nothing).
  download(group) {
    const link = part(this.section, "download");
    link.setAttribute("aria-disabled", String(!group));
    const problem = part(this.section, "download-problem");
    problem.textContent = "";
    link.onclick = async (event) => {
      event.preventDefault();
      if (!group) return;
      problem.textContent = "";
      let blob;
      try {
        blob = await apiBlob(`/margins/export?format=csv&group=${encodeURIComponent(group)}`);
      } catch (error) {
        problem.textContent = `The CSV could not be downloaded: ${error.message}`;
        return;
      }
      const url = URL.createObjectURL(blob);
      const anchor = h("a", { href: url, download: `margins-by-${GROUP_WORDS[group]}.csv` });
      anchor.click();
      URL.revokeObjectURL(url);
    };
  },

  showLastPull(last, stalled) {
    const words = !last ? ["Sales have not been pulled yet."]
      : last.ok ? ["Last pulled ", when(last.at), "."]
        : ["The last pull failed ", when(last.at), ": ", last.error];
    if (stalled) words.push(" ", STALLED);
    part(this.section, "last-pull").replaceChildren(...words);
  },

  // "Pull now" queues the pull (202); GET /sales/status says when it has finished (pulling false).
  async finished(providers, tries = 60) {
    for (let attempt = 0; attempt < tries; attempt += 1) {
      const tracked = listOf(await api("GET", "/sales/status")).filter((t) => providers.includes(t.provider));
      if (tracked.every((t) => !t.pulling)) return tracked;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error("The pull is still running; its result will show here when it finishes.");
  },

  async pull(button) {
    const status = part(this.section, "status");
    busy(button, true, "Pulling…");
    status.textContent = "";
    try {
      const queued = listOf(await api("POST", "/sales/pull")).map((r) => r.provider);
      status.textContent = "Pull queued…";
      const done = await this.finished(queued);
      const stored = done.reduce((sum, t) => sum + (t.last_pull?.stored ?? 0), 0);
      const failed = done.find((t) => t.last_pull && !t.last_pull.ok);
      status.textContent = failed
        ? `The pull failed: ${failed.last_pull.error}`
        : `${plural(stored, "new or changed sales document")} pulled.`;
      if (done.some((t) => t.stalled)) status.textContent += ` ${STALLED}`;
      await this.load();
    } catch (error) {
      status.textContent = error.message;
    } finally {
      busy(button, false);
    }
  },
};

// PUT /integrations/{provider}/sales-tracking {enabled, start_date, time_zone} -> {provider, enabled,
// start_date, home_currency, time_zone, cursor, pulling, last_pull}; left out, time_zone stays what is stored,
// else the provider's. A 400 lists the refused fields in details [{field, problem}].

const TRACKING_FIELDS = ["start_date", "time_zone"];

/** What a fixed-offset zone (the API's guess from QuickBooks' UTC offset) means: POSIX names UTC-8
 * "Etc/GMT+8", which reads as eight hours ahead. Empty for any other zone. */
function fixedZoneWords(zone) {
  const fixed = /^Etc\/GMT([+-])(\d{1,2})$/.exec(zone ?? "");
  return fixed ? `UTC${fixed[1] === "+" ? "\u2212" : "+"}${fixed[2]} all year, no summer time` : "";
}

const tracking = {
  view: null, // the provider's stored tracking, or null before the first save
  dirty: false, // the form holds edits not saved: a refresh of the section keeps them

  mount(form) {
    this.form = form;
    this.enabled = form.elements.enabled;
    this.start = form.elements.start_date;
    this.zone = form.elements.time_zone;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    form.addEventListener("input", () => { this.dirty = true; });
    this.enabled.addEventListener("change", () => this.describe());
    // The date the API accepts: within 10 years before today and 1 year after it.
    const today = new Date();
    const iso = (date) => date.toISOString().slice(0, 10);
    const [year, month, day] = [today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate()];
    this.start.min = iso(new Date(Date.UTC(year - 10, month, day + 1)));
    this.start.max = iso(new Date(Date.UTC(year + 1, month, day)));
  },

  forget(connection) {
    this.connection = connection;
    this.view = null;
    this.dirty = false;
    this.form.reset();
    this.clearErrors();
    part(this.form, "tracking-status").textContent = "";
  },

  show(view) {
    this.view = view;
    if (!this.dirty) {
      this.enabled.checked = Boolean(view?.enabled);
      this.start.value = view?.start_date ?? "";
      this.zone.value = view?.time_zone ?? "";
    }
    const label = this.connection?.provider_label ?? "your accounting system";
    this.zone.placeholder = `${label}'s time zone`;
    const fixed = fixedZoneWords(view?.time_zone);
    part(this.form, "zone-hint").textContent = view ? "Your business day: sales are costed by the day they "
      + "were made in this time zone (an IANA name such as Australia/Sydney)."
      + (fixed ? ` ${view.time_zone} is ${fixed}: name your own zone to follow summer time.` : "")
      : `Your business day: sales are costed by the day they were made in this time zone (an IANA name such as `
        + `Australia/Sydney). Leave it empty to use ${label}'s.`;
    this.describe();
  },

  describe() {
    const label = this.connection?.provider_label ?? "your accounting system";
    part(this.form, "switch-label").textContent = `Track sales from ${label}`;
    part(this.form, "switch-hint").textContent = this.enabled.checked
      ? "On: Partsemble reads your invoices and sales receipts every hour to work out margins."
      : "Off: Partsemble does not read your sales.";
  },

  clearErrors() {
    part(this.form, "form-error").hidden = true;
    for (const field of this.form.querySelectorAll("[data-field]")) {
      field.classList.remove("invalid");
      part(field, "error").textContent = "";
      field.querySelector("input")?.removeAttribute("aria-invalid");
    }
  },

  fieldError(name, problem) {
    const field = this.form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    field.classList.add("invalid");
    part(field, "error").textContent = problem;
    field.querySelector("input").setAttribute("aria-invalid", "true");
  },

  async save() {
    const button = part(this.form, "save");
    const status = part(this.form, "tracking-status");
    this.clearErrors();
    status.textContent = "";
    const body = { enabled: this.enabled.checked };
    if (this.start.value) body.start_date = this.start.value;
    if (this.zone.value.trim()) body.time_zone = this.zone.value.trim();
    if (this.start.validity.badInput) {
      this.fieldError("start_date", "Enter a whole date: day, month and year.");
    } else if (!body.start_date && !this.view?.start_date) {
      this.fieldError("start_date", "Choose the date the first pull starts from.");
    }
    if (this.form.querySelector(".invalid")) {
      this.form.querySelector(".invalid input").focus();
      return;
    }
    busy(button, true, "Saving…");
    try {
      const saved = await api("PUT", `/integrations/${this.connection.provider}/sales-tracking`, body);
      this.dirty = false;
      this.show(saved);
      const fixed = fixedZoneWords(saved.time_zone);
      status.textContent = saved.enabled
        ? `Sales tracking is on from ${calendarDay(saved.start_date)}, in ${saved.time_zone} time`
          + `${fixed ? ` (${fixed})` : ""}.`
        : "Sales tracking is off.";
      busy(button, false);
      button.focus(); // the control that acted keeps focus; the status region announces the result
      sales.load().catch(() => {}); // margins appear once tracking is on
    } catch (error) {
      busy(button, false);
      this.showErrors(error, button);
    }
  },

  showErrors(error, button) {
    const unplaced = [];
    for (const { field, problem } of error.fieldProblems ?? []) {
      const name = String(field).split(".").pop();
      if (TRACKING_FIELDS.includes(name)) this.fieldError(name, capitalised(problem));
      else unplaced.push(capitalised(problem));
    }
    const first = this.form.querySelector(".invalid input");
    if (first) {
      first.focus();
      if (unplaced.length) this.banner(unplaced.join(" "));
      return;
    }
    this.banner(capitalised(error.message));
    button.focus();
  },

  banner(text) {
    const banner = part(this.form, "form-error");
    banner.textContent = text;
    banner.hidden = false;
  },
};

/** A quantity as a person writes it: Xero's 150.0 is 150, 2.50 is 2.5. */
const units = (quantity) => (quantity.includes(".") ? quantity.replace(/\.?0+$/, "") : quantity);

function uncosted(row) {
  const quantity = units(row.figures.uncosted ?? "");
  if (!quantity || isZero(quantity)) return null; // "0", "0.0" and "0.000" alike
  // negative: a credit gave back units its sale had found no stock for (they leave the uncosted count)
  if (quantity.startsWith("-")) {
    return h("span", { class: "problem block" },
      `${quantity.slice(1)} given back uncosted: their sale found too little stock on record`);
  }
  return h("span", { class: "problem block" }, `${quantity} not costed: too little stock on record`);
}

// ---- books check (reconciliation) ----------------------------------------------------------------------
// GET /reconciliation[?as_of=YYYY-MM-DD] -> {provider, as_of, mode: journals|inventory_adjustments, status:
// balanced|explained|discrepancy, accounts: [{account_id, code, name, roles, provider_balance (null: none),
// posted, subledger, difference, reasons: [{kind, amount, note, export_id}], unexplained}], items: [{product_id,
// item_id, label, provider_quantity, on_hand, sold_without_stock, built_without_stock, written_off_credits,
// starting_quantity (null: not known), not_in_quickbooks, kit_sales, difference, unexplained}], notes, kits:
// [{product_id, item_id, label, quantity, documents}] (QBO inventory mode: kits sold as plain items)}. 409 while not connected or without export
// settings: its message is shown instead of the panel. Amounts are decimal strings, debits positive.

const BOOKS_WORDS = {
  balanced: ["Balanced", "banner-success", "every account agrees with your stock ledger."],
  explained: ["Differences explained", "banner-warning", "every difference is named below: Partsemble's own "
    + "work in progress, which clears as exports are posted, or what the books held before Partsemble."],
  discrepancy: ["Discrepancy", "banner-error", "PROVIDER holds entries Partsemble did not make, or a difference "
    + "is left unexplained. See the accounts below."],
};
const QUANTITY_WORDS = {
  balanced: "every linked item's quantity agrees with Partsemble's stock on hand.",
  discrepancy: "some items' quantities differ from Partsemble's stock on hand. See the items below.",
};

/** "-2.01", "3.00": a decimal string with at least two decimal places, exactly as given otherwise. */
function amount(value) {
  if (value === null || value === undefined || value === "") return "—";
  const text = String(value);
  if (!/^-?\d+(\.\d*)?$/.test(text)) return text;
  const [whole, fraction = ""] = text.split(".");
  // every digit that says something, at least the cents: 1.505 stays, 318.7500 is 318.75, 12.5 is 12.50
  return `${whole}.${fraction.replace(/0+$/, "").padEnd(2, "0")}`;
}

const isZero = (value) => Number(value) === 0;

/** Each reason in words: "Receipt R-3 is not exported yet: -2.01". */
function reasonWords(reason, provider) {
  const where = PROVIDER_SHORT[provider] ?? provider;
  let words;
  if (reason.kind === "others_entries") {
    words = `Entries in ${where} not made by Partsemble`;
  } else if (reason.kind === "not_posted") {
    const item = exportsList.items.find((e) => e.export_id === reason.export_id);
    const state = item ? (EXPORT_WORDS[item.status] ?? item.status).toLowerCase() : "";
    const why = item?.last_error ? `: ${item.last_error.replace(/\.$/, "")}` : "";
    words = item ? `${exportSubject(item)} is not posted yet (${state}${why})` : capitalised(reason.note);
  } else if (reason.kind === "posted_later") {
    const item = exportsList.items.find((e) => e.export_id === reason.export_id);
    const [, own, dated] = reason.note.match(/of (\d{4}-\d{2}-\d{2}) is dated (\d{4}-\d{2}-\d{2})/) ?? [];
    words = item && own ? `${exportSubject(item)} of ${calendarDay(own)} is dated ${calendarDay(dated)}, `
      + "after the period the provider locked" : capitalised(reason.note);
  } else if (reason.kind === "deleted_in_provider") {
    const item = exportsList.items.find((e) => e.export_id === reason.export_id);
    words = item ? `${exportSubject(item)} was posted, and its journal is no longer in ${where} (deleted or `
      + "voided there)" : capitalised(reason.note);
  } else if (reason.kind === "not_exported") {
    words = capitalised(reason.note.replace(/^cost of goods sold for (\d{4}-\d{2}-\d{2})/,
      (_, day) => `cost of goods sold for ${calendarDay(day)}`));
  } else {
    words = capitalised(reason.note);
  }
  return `${words}: ${amount(reason.amount)}`;
}

const books = {
  provider: null,

  mount(section) {
    this.section = section;
    this.form = part(section, "form");
    this.asOf = part(section, "as-of");
    this.result = part(section, "result");
    this.asOf.value = localToday();
    this.asOf.max = localToday();
    const today = new Date(); // the API takes a day within 10 years before today
    this.asOf.min = new Date(Date.UTC(today.getUTCFullYear() - 10, today.getUTCMonth(), today.getUTCDate() + 1))
      .toISOString().slice(0, 10);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      // Enter in the date field submits too (as a click on the button): focus then returns to the field
      this.check(this.form.contains(document.activeElement) ? document.activeElement : event.submitter);
    });
  },

  update() {
    const active = connections.active();
    const provider = active?.status === "connected" ? active.provider : null;
    if (provider === this.provider) return;
    this.provider = provider;
    this.label = active?.provider_label;
    part(this.form, "status").textContent = ""; // the other provider's check said nothing of this one's books
    if (!provider) {
      this.section.hidden = true;
      return;
    }
    loadSection(this.section, () => this.load(), this.result);
  },

  /** Export settings saved or changed: check again. */
  refresh() {
    if (this.provider && !this.section.hidden) this.load().catch(() => {});
  },

  async load() {
    // Without export settings there is nothing to reconcile: say so rather than ask for a refusal.
    const settings = await api("GET", `/integrations/${this.provider}/export-settings?warnings=false`);
    if (!settings?.configured) {
      this.shown = null;
      replaceKeepingFocus(this.result, h("p", { class: "banner", dataset: { role: "verdict" } },
        `Choose the export accounts for ${this.label} above; then Partsemble checks your books here.`));
      return;
    }
    await exportsList.loading?.catch(() => {}); // the reasons name the exports they mention
    // the first check is of today where the organisation is (the API's default), not where the browser is
    const found = await this.fetch("");
    if (found?.as_of) {
      if (found.as_of > this.asOf.max) this.asOf.max = found.as_of;
      this.asOf.value = found.as_of;
    }
  },

  async fetch(asOf) {
    const query = asOf ? `?as_of=${encodeURIComponent(asOf)}` : "";
    try {
      const found = await api("GET", `/reconciliation${query}`);
      this.show(found);
      return found;
    } catch (error) {
      if (!(error instanceof ApiError) || ![400, 409].includes(error.status)) throw error;
      replaceKeepingFocus(this.result, h("p", { class: "banner banner-warning", dataset: { role: "verdict" } },
        `Partsemble can't check the books yet: ${error.message}.`.replace(/\.\.$/, ".")));
      return null;
    }
  },

  async check(acting) {
    const button = part(this.form, "check");
    const status = part(this.form, "status");
    const error = part(this.section, "error");
    error.textContent = "";
    this.asOf.removeAttribute("aria-invalid");
    const refused = (problem) => {
      error.textContent = problem;
      this.asOf.setAttribute("aria-invalid", "true");
      this.asOf.focus();
    };
    if (!this.asOf.value || this.asOf.validity.badInput) {
      refused("Enter a whole date: day, month and year.");
      return;
    }
    if (this.asOf.validity.rangeOverflow) { // the books of a day still to come hold nothing to compare yet
      refused(`Choose ${calendarDay(this.asOf.max)} or an earlier day.`);
      return;
    }
    if (this.asOf.validity.rangeUnderflow) {
      refused(`Choose ${calendarDay(this.asOf.min)} or a later day: Partsemble checks the last 10 years.`);
      return;
    }
    status.textContent = "Checking…";
    busy(button, true, "Checking…");
    try {
      await exportsList.load().catch(() => {}); // names the exports the reasons mention
      const found = await this.fetch(this.asOf.value);
      status.textContent = found ? `Books at the end of ${calendarDay(found.as_of)}: `
        + `${BOOKS_WORDS[found.status]?.[0] ?? found.status}.` : "The books could not be checked.";
    } catch (problem) {
      status.textContent = problem.message;
    } finally {
      busy(button, false);
      (acting ?? button).focus(); // back to the control that acted
    }
  },

  show(found) {
    const where = PROVIDER_SHORT[found.provider] ?? found.provider;
    const [word, tone, sentence] = BOOKS_WORDS[found.status] ?? [capitalised(found.status), "banner", ""];
    const detail = found.mode === "inventory_adjustments" ? QUANTITY_WORDS[found.status] ?? sentence
      : sentence.replace("PROVIDER", where);
    const verdict = h("p", { class: `banner ${tone}`, dataset: { role: "verdict", status: found.status } },
      h("strong", {}, word), ` at the end of ${calendarDay(found.as_of)}: ${detail}`);
    const notes = found.notes?.length
      ? h("ul", { class: "notes", dataset: { role: "notes" } }, found.notes.map((note) => h("li", {}, note)))
      : null;
    if (found.mode === "inventory_adjustments") {
      replaceKeepingFocus(this.result, verdict, this.deleted(found, where), this.items(found), notes);
      return;
    }
    const accounts = found.accounts ?? [];
    replaceKeepingFocus(this.result, verdict, this.deleted(found, where), accounts.length ? table(
      { text: `Accounts at the end of ${calendarDay(found.as_of)}`, visible: true }, [
        { label: "Account", cell: (a) => [h("strong", {}, a.code || "—"), " ", a.name] },
        { label: "Used for", cell: (a) => (a.roles ?? []).map((role) => ACCOUNT_ROLES[role]?.[0] ?? role)
          .join(", ") },
        { label: `In ${where}`, class: "number", cell: (a) => amount(a.provider_balance) },
        { label: "Posted by Partsemble", class: "number", cell: (a) => amount(a.posted) },
        { label: "Stock ledger value", class: "number", cell: (a) => amount(a.subledger) },
        { label: "Difference", class: "number", cell: (a) => amount(a.difference) },
        { label: "Why", class: "problems", cell: (a) => this.reasons(a, found.provider) },
      ], accounts.map((a) => ({ value: a, dataset: { account: a.code || a.account_id,
        status: isZero(a.unexplained) ? "ok" : "error" } })))
      : h("p", { class: "muted" }, "No accounts are mapped yet."), notes);
  },

  reasons(account, provider) {
    const lines = (account.reasons ?? []).map((r) => h("li", { dataset: { kind: r.kind } },
      reasonWords(r, provider)));
    if (!isZero(account.unexplained)) {
      lines.push(h("li", { class: "error", dataset: { kind: "unexplained" } },
        `Not explained: ${amount(account.unexplained)}`));
    }
    if (!lines.length) return isZero(account.difference) ? "Agrees" : "";
    return h("ul", { class: "problems" }, lines);
  },

  /** The documents Partsemble posted that the provider no longer has, each with "Post it again". */
  deleted(found, where) {
    if (!found.deleted?.length) return null;
    return h("div", { dataset: { role: "deleted" } },
      h("p", {}, `Posted by Partsemble, then deleted or voided in ${where}:`),
      h("ul", { class: "problems" }, found.deleted.map((d) => {
        const subject = exportSubject(d);
        return h("li", { class: "actions", dataset: { export: d.export_id } },
          `${subject} (${documentWords(d.document_type)} ${d.document_id}) `,
          h("button", { type: "button", dataset: { key: `post-again-${d.export_id}` },
            "aria-label": `Post again: ${subject}`,
            onclick: (event) => this.postAgain(d.export_id, subject, event.currentTarget) }, "Post it again"));
      })));
  },

  async postAgain(exportId, subject, button) {
    const cell = button.closest(".actions");
    cell.querySelector('[data-role="retry-problem"]')?.remove();
    busy(button, true, "Posting again…");
    try {
      await api("POST", `/exports/${encodeURIComponent(exportId)}/retry`);
      announce(`${subject} queued to be posted again.`);
      await this.check(part(this.form, "check")); // the button is gone with the check's new result
    } catch (error) {
      busy(button, false);
      button.focus();
      cell.append(h("span", { class: "problem block", role: "alert", dataset: { role: "retry-problem" } },
        error.message));
    }
  },

  items(found) {
    const items = found.items ?? [];
    if (!items.length) return h("p", { class: "muted" }, "No products are linked to QuickBooks items yet.");
    return table({ text: `Item quantities (today)`, visible: true }, [
      { label: "Item", cell: (i) => i.label || i.item_id },
      { label: "In QuickBooks", class: "number", cell: (i) => (present(i.provider_quantity)
        ? String(i.provider_quantity) : "Not in QuickBooks") },
      { label: "On hand in Partsemble", class: "number", cell: (i) => String(i.on_hand) },
      { label: "Difference", class: "number", cell: (i) => (present(i.difference) ? String(i.difference) : "—") },
      { label: "Known causes", cell: (i) => knownCauses(i) },
      { label: "Unexplained", class: "number", cell: (i) => (present(i.unexplained) ? String(i.unexplained)
        : "—") },
    ], items.map((i) => ({ value: i, dataset: { item: String(i.item_id),
      status: !present(i.unexplained) || isZero(i.unexplained) ? "ok" : "error" } })));
  },
};

// What an item's difference is known to hold (see the notes): QuickBooks' own stock before Partsemble, units
// QuickBooks counted out that Partsemble had no stock for, and credits' units it counted back in.
const ITEM_CAUSES = [
  ["starting_quantity", "QuickBooks' own before Partsemble"],
  ["sold_without_stock", "sold without stock"],
  ["built_without_stock", "used by builds without stock"],
  ["written_off_credits", "credited, written off here"],
  ["not_in_quickbooks", "held here only (not posted yet, or in the company before)"],
  ["deleted_in_quickbooks", "in Partsemble's adjustments deleted in QuickBooks"],
  ["kit_sales", "moved by a kit sold as this plain QuickBooks item, or by its sales' use of this part here"],
];

/** "3 sold without stock; 1 credited, written off here", or "—" when there is none. */
function knownCauses(item) {
  const said = ITEM_CAUSES.filter(([key]) => present(item[key]) && !isZero(item[key]))
    .map(([key, words]) => `${item[key]} ${words}`);
  return said.length ? said.join("; ") : "—";
}

/** Today's date where the reader is, as YYYY-MM-DD. */
function localToday() {
  const now = new Date();
  return new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
}

// ---- start ------------------------------------------------------------------------------------------

const SECTIONS = [
  ["export-settings", exportSettings],
  ["product-import", productImport],
  ["exports", exportsList],
  ["reconciliation", books],
  ["sales", sales],
];

async function start() {
  try {
    await session.start();
  } catch (error) {
    showPageProblem(error.message);
    part(document.getElementById("connections"), "cards").replaceChildren();
    return;
  }
  for (const [id, section] of SECTIONS) section.mount(document.getElementById(id));
  connections.mount(document.getElementById("connections"), () => {
    for (const [, section] of SECTIONS) section.update();
  });
  await connections.refresh();
  api("GET", "/me").then((me) => {
    const organisation = document.getElementById("organisation");
    organisation.textContent = `Organisation: ${me.organisation_id}`;
    organisation.hidden = false;
  }, () => {});
}

start();
