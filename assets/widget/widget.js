// Teller's chat widget loader. A bank adds one tag:
//   <script src="https://teller.example/widget.js" async></script>
// Options (attributes on that tag): data-lang ("en" | "zh-CN"; default: the page's lang),
// data-identity-token (a signed-in customer's token minted by the bank's server),
// data-storage="local" (keep the conversation across tabs and visits; default: this tab).
// It renders a launcher in a shadow root; the chat lives in an iframe from Teller's origin,
// so the page's scripts cannot read the conversation. No inline script or style is needed
// on the page: styles are constructed stylesheets, which a strict CSP allows.
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__tellerWidget) return;
  const teller = new URL(script.src).origin;
  const VERSION = 1;
  const LABELS = {
    en: { open: "Open chat", close: "Close chat", frame: "Chat with us" },
    "zh-CN": { open: "打开聊天", close: "关闭聊天", frame: "在线客服" },
  };
  const pick = (tag) => (/^zh/i.test(tag || "") ? "zh-CN" : /^en/i.test(tag || "") ? "en" : null);
  let lang = pick(script.dataset.lang) || pick(document.documentElement.lang) || pick(navigator.language) || "en";
  let identity = script.dataset.identityToken || null;
  const storage = script.dataset.storage === "local" ? "local" : "session";

  const host = document.createElement("div");
  host.setAttribute("data-teller-widget", "");
  // The page's CSS cannot reach into the shadow root, but it can style the host element
  // itself (think `* { all: unset }`): inline !important declarations set through the
  // CSSOM (allowed under a strict CSP) win over the page's stylesheets.
  for (const [name, value] of [["all", "initial"], ["position", "fixed"], ["z-index", "2147483000"],
    ["inset", "auto 0 0 auto"], ["display", "block"], ["width", "0"], ["height", "0"]]) {
    host.style.setProperty(name, value, "important");
  }
  const root = host.attachShadow({ mode: "open" });
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`
    :host { all: initial; }
    * { box-sizing: border-box; }
    .launcher { position: fixed; right: 20px; bottom: 20px; min-width: 56px; min-height: 56px;
      padding: 0 20px; border: 2px solid #fff; border-radius: 28px; background: #0b4f8a; color: #fff;
      font: 600 16px/1.2 system-ui, -apple-system, "Segoe UI", "Noto Sans SC", sans-serif; cursor: pointer;
      box-shadow: 0 4px 14px rgba(0,0,0,.3); display: flex; align-items: center; gap: 8px; }
    .launcher:hover { background: #083b68; }
    .launcher:focus-visible { outline: 3px solid #f6b400; outline-offset: 3px; }
    .launcher[hidden], .panel[hidden] { display: none; }
    .dot { width: 10px; height: 10px; border-radius: 50%; background: #f6b400; display: none; }
    .launcher.unread .dot { display: inline-block; }
    .panel { position: fixed; right: 20px; bottom: 20px; width: 400px; height: min(640px, calc(100vh - 40px));
      border: 0; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.35); background: #fff; overflow: hidden; }
    .panel iframe { width: 100%; height: 100%; border: 0; display: block; }
    @media (max-width: 640px) {
      .panel { inset: 0; width: 100vw; height: 100vh; height: 100dvh; border-radius: 0; }
    }
    @media (prefers-reduced-motion: no-preference) { .panel { transition: opacity .15s; } }
  `);
  root.adoptedStyleSheets = [sheet];

  const launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "launcher";
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  const text = document.createElement("span");
  launcher.append(dot, text);
  const panel = document.createElement("div");
  panel.className = "panel";
  panel.hidden = true;
  root.append(launcher, panel);

  let frame = null;
  let ready = false;
  const queue = [];

  const label = () => {
    text.textContent = LABELS[lang].open;
    launcher.setAttribute("aria-label", LABELS[lang].open);
    if (frame) frame.title = LABELS[lang].frame;
  };
  label();

  const send = (message) => {
    if (!frame) return;
    if (!ready) { queue.push(message); return; }
    // Only ever to Teller's exact origin.
    frame.contentWindow.postMessage({ v: VERSION, ...message }, teller);
  };

  const ensureFrame = () => {
    if (frame) return;
    frame = document.createElement("iframe");
    const url = new URL("/widget/frame", teller);
    url.searchParams.set("lang", lang);
    url.searchParams.set("origin", location.origin);
    url.searchParams.set("storage", storage);
    frame.src = url.href;
    frame.title = LABELS[lang].frame;
    frame.setAttribute("allow", "clipboard-write");
    panel.append(frame);
  };

  const open = () => {
    ensureFrame();
    panel.hidden = false;
    launcher.hidden = true;
    launcher.classList.remove("unread");
    frame.focus();
    send({ type: "open" });
  };

  const close = () => {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.focus();
  };

  launcher.addEventListener("click", open);

  window.addEventListener("message", (event) => {
    // Only the frame we made, from Teller's origin, is listened to.
    if (!frame || event.source !== frame.contentWindow || event.origin !== teller) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.v !== VERSION) return;
    switch (data.type) {
      case "ready":
        ready = true;
        if (identity) frame.contentWindow.postMessage({ v: VERSION, type: "identity", token: identity }, teller);
        while (queue.length) frame.contentWindow.postMessage({ v: VERSION, ...queue.shift() }, teller);
        break;
      case "close":
        close();
        break;
      case "lang":
        if (LABELS[data.lang]) { lang = data.lang; label(); }
        break;
      case "unread":
        if (panel.hidden) launcher.classList.add("unread");
        break;
    }
  });

  // A conversation already under way (this tab's, or stored if the bank opted in) comes
  // back after a reload: the frame is loaded at once, hidden, so it can say so.
  ensureFrame();

  const mount = () => document.body.append(host);
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // For the bank's page: open or close the chat, or hand over a fresh identity token.
  window.__tellerWidget = Object.freeze({
    open,
    close,
    setIdentity(token) { identity = token || null; send({ type: "identity", token: identity }); },
  });
})();
