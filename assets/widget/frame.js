// The chat frame, served from Teller's own origin and embedded by the loader (widget.js).
// The conversation's id and token live here only (sessionStorage, or localStorage when the
// bank opts in), never in the host page. Nothing from a reply, a passage or a colleague is
// inserted as HTML: text nodes only, with the guard's limited Markdown built element by
// element.

const VERSION = 1;
const params = new URLSearchParams(location.search);

const STRINGS = {
  en: {
    title: "Lantern Bank", new: "New conversation", close: "Close", closeLabel: "Close chat",
    message: "Message", placeholder: "Ask a question…", send: "Send", retry: "Try again", log: "Conversation",
    recent: "Your recent conversations", switchTo: "中文", switchLabel: "切换到中文",
    you: "You", assistant: "Lantern Bank assistant",
    sources: "Sources", helpful: "Helpful", notHelpful: "Not helpful", commentLabel: "What was missing? (optional)",
    sendComment: "Send comment", thanks: "Thank you for your feedback.", person: "Talk to a person",
    thinking: "The assistant is writing…", agentTyping: (n) => `${n} is typing…`,
    waiting: (p) => p ? `You are waiting for a colleague: number ${p} in the queue. Please keep this window open; we will tell you here when someone joins.`
      : "You are waiting for a colleague. Please keep this window open; we will tell you here when someone joins.",
    estimate: (m) => ` A colleague usually joins within about ${m} minute${m === 1 ? "" : "s"}.`,
    noEstimate: "",
    afterHours: (at) => ` Our colleagues are not working right now; someone will reply from ${at}. You can leave this window open, or come back later.`,
    joined: (n) => `${n || "A colleague"} from Lantern Bank has joined.`,
    withAgent: "You are now talking to a colleague.", closed: "This conversation has ended. Write again to start a new one.",
    backToBot: "The assistant is answering again.",
    safetyTitle: "Keep your money safe while you wait",
    safetyFraud: "If you think you have been scammed, stop any payments and call the 24-hour Fraud Hotline on 0800-520-9110 now.",
    safetyCard: "To block a lost or stolen card at once, freeze it in the app or call the 24-hour Card Loss Hotline on 0800-520-7777.",
    offline: "You seem to be offline. Check your connection, then try again.",
    busy: "We cannot answer right now. Please try again in a moment.",
    limited: (s) => `You are sending messages faster than we can answer. Please wait ${s} seconds, then try again.`,
    failed: "Something went wrong and your message was not answered. Please try again.",
    tooLong: "Your message is too long. Please shorten it to 2,000 characters.",
    conversationEnded: "This conversation has reached its limit. Please start a new conversation.",
    identityRefused: "We could not confirm your sign-in; you are chatting as a guest.",
    reconnecting: "Reconnecting…",
  },
  "zh-CN": {
    title: "灯塔银行", new: "新对话", close: "关闭", closeLabel: "关闭聊天",
    message: "输入消息", placeholder: "请输入您的问题…", send: "发送", retry: "重试", log: "对话记录",
    recent: "您最近的对话", switchTo: "English", switchLabel: "Switch to English",
    you: "您", assistant: "灯塔银行智能助手",
    sources: "来源", helpful: "有帮助", notHelpful: "没有帮助", commentLabel: "缺少了什么？（可选）",
    sendComment: "提交意见", thanks: "感谢您的反馈。", person: "转人工",
    thinking: "助手正在输入…", agentTyping: (n) => `${n} 正在输入…`,
    waiting: (p) => p ? `正在为您转接人工客服：您排在第 ${p} 位。请保持此窗口打开，有同事接入时会在这里通知您。`
      : "正在为您转接人工客服。请保持此窗口打开，有同事接入时会在这里通知您。",
    estimate: (m) => ` 通常约 ${m} 分钟内会有同事接入。`,
    noEstimate: "",
    afterHours: (at) => ` 人工客服目前不在服务时间；将于 ${at} 起回复您。您可以保持此窗口打开，或稍后再来。`,
    joined: (n) => `灯塔银行的 ${n || "同事"} 已加入对话。`,
    withAgent: "您现在正在与人工客服对话。", closed: "本次对话已结束。再次发送消息即可开始新的对话。",
    backToBot: "智能助手将继续为您解答。",
    safetyTitle: "等待期间请保护好您的资金",
    safetyFraud: "如果您认为自己遭遇了诈骗，请立即停止付款，并拨打 24 小时反诈骗热线 0800-520-9110。",
    safetyCard: "如需立即冻结丢失或被盗的银行卡，请在手机银行中冻结，或拨打 24 小时挂失热线 0800-520-7777。",
    offline: "您的网络似乎已断开。请检查网络连接后重试。",
    busy: "我们暂时无法回答。请稍后再试。",
    limited: (s) => `您发送消息的速度过快。请等待 ${s} 秒后再试。`,
    failed: "出现问题，您的消息未得到回答。请重试。",
    tooLong: "您的消息过长，请缩短到 2000 字以内。",
    conversationEnded: "本次对话已达到上限。请开始新的对话。",
    identityRefused: "无法确认您的登录状态；您将以访客身份继续对话。",
    reconnecting: "正在重新连接…",
  },
};

const pick = (tag) => (/^zh/i.test(tag || "") ? "zh-CN" : /^en/i.test(tag || "") ? "en" : null);
let lang = pick(params.get("lang")) || pick(navigator.language) || "en";
const t = (key, ...args) => {
  const value = STRINGS[lang][key];
  return typeof value === "function" ? value(...args) : value;
};

// The page that embeds us: only its exact origin is written to and listened to, and only
// if the browser confirms that it is our parent.
const embedded = window.parent !== window;
let parentOrigin = null;
try {
  const claimed = new URL(params.get("origin") || "").origin;
  const ancestors = location.ancestorOrigins;
  if (embedded && claimed !== "null" && (!ancestors || ancestors[0] === claimed)) parentOrigin = claimed;
} catch { parentOrigin = null; }

const tell = (type, extra = {}) => {
  if (parentOrigin) window.parent.postMessage({ v: VERSION, type, ...extra }, parentOrigin);
};

// Where the conversation is kept: this tab by default; the bank may opt in to the device.
const store = params.get("storage") === "local" ? window.localStorage : window.sessionStorage;
const KEY = "teller.conversation";
const load = () => {
  try { return JSON.parse(store.getItem(KEY)) || null; } catch { return null; }
};
const save = () => {
  if (conversation) store.setItem(KEY, JSON.stringify(conversation)); else store.removeItem(KEY);
};

const $ = (id) => document.getElementById(id);
const log = $("log");
const input = $("message");
const sendButton = $("send");
const status = $("status");

let conversation = load(); // { id, token, state, reason, lastEventId }
let identity = null;
let streaming = false;
let lastFailed = null;
let events = null; // AbortController of the live event stream
let retryTimer = null;
let backoff = 1000;
const seen = new Set(); // ids of messages shown, so a replayed event is never shown twice

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- the limited Markdown the output guard lets through, built as elements ------------

function inline(text) {
  const nodes = [];
  const pattern = /\*\*([^*]+)\*\*|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)|`([^`]+)`/g;
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > at) nodes.push(document.createTextNode(text.slice(at, match.index)));
    if (match[1] !== undefined) nodes.push(el("strong", { text: match[1] }));
    else if (match[2] !== undefined) {
      nodes.push(el("a", { href: match[3], target: "_blank", rel: "noopener noreferrer", text: match[2] }));
    } else nodes.push(el("code", { text: match[4] }));
    at = match.index + match[0].length;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

function markdown(text) {
  const fragment = document.createDocumentFragment();
  let list = null;
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) fragment.append(el("p", {}, ...inline(paragraph.join(" "))));
    paragraph = [];
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const bullet = line.match(/^[-*•]\s+(.*)$/);
    const numbered = line.match(/^\d+[.)]\s+(.*)$/);
    if (bullet || numbered) {
      flush();
      const kind = bullet ? "ul" : "ol";
      if (!list || list.tagName.toLowerCase() !== kind) { list = el(kind); fragment.append(list); }
      list.append(el("li", {}, ...inline((bullet || numbered)[1])));
    } else if (!line) {
      flush();
      list = null;
    } else {
      list = null;
      paragraph.push(line.replace(/^#+\s+/, ""));
    }
  }
  flush();
  return fragment;
}

// ---- messages -------------------------------------------------------------------------

function scroll() { log.scrollTop = log.scrollHeight; }

function bubble(role, name) {
  const body = el("div", { class: "body" });
  const item = el("div", { class: `msg ${role}` }, el("span", { class: "who", text: name }), body);
  log.append(item);
  scroll();
  return { item, body };
}

function notice(text, kind = "event") {
  log.append(el("div", { class: kind, text }));
  scroll();
}

function sources(citations) {
  if (!citations || !citations.length) return null;
  const list = el("ol", { class: "sources", "aria-label": t("sources") });
  for (const c of citations) {
    list.append(el("li", {}, el("details", {}, el("summary", { text: c.title || c.source_id }),
      el("p", { text: c.snippet || "" }))));
  }
  return list;
}

const LOW_CONFIDENCE = [
  "This may not be exactly what you asked.",
  "以上内容可能与您的问题不完全一致。",
];

function offersPerson(mode, answer) {
  if (conversation && (conversation.state === "waiting" || conversation.state === "with_agent")) return false;
  return mode === "refusal" || LOW_CONFIDENCE.some((s) => (answer || "").includes(s));
}

function feedback(item, messageId) {
  const actions = el("div", { class: "actions" });
  const up = el("button", { type: "button", class: "rate-up", "aria-pressed": "false", text: t("helpful") });
  const down = el("button", { type: "button", class: "rate-down", "aria-pressed": "false", text: t("notHelpful") });
  const rate = async (rating, comment) => {
    const response = await api(`/v1/conversations/${conversation.id}/messages/${messageId}/feedback`, {
      method: "POST", body: JSON.stringify(comment ? { rating, comment } : { rating }),
    });
    if (!response.ok) { await showError(response); return false; }
    up.setAttribute("aria-pressed", String(rating === "up"));
    down.setAttribute("aria-pressed", String(rating === "down"));
    return true;
  };
  up.addEventListener("click", async () => {
    if (await rate("up")) actions.querySelector(".comment")?.remove();
  });
  down.addEventListener("click", async () => {
    if (!(await rate("down")) || actions.querySelector(".comment")) return;
    const id = `comment-${messageId}`;
    const field = el("input", { id, type: "text", maxlength: "1000", autocomplete: "off" });
    const label = el("label", { for: id, class: "sr-only", text: t("commentLabel") });
    field.placeholder = t("commentLabel");
    const submit = el("button", { type: "button", text: t("sendComment") });
    const row = el("div", { class: "comment" }, label, field, submit);
    submit.addEventListener("click", async () => {
      if (!field.value.trim()) return;
      if (await rate("down", field.value.trim())) row.replaceWith(el("span", { class: "thanks", text: t("thanks") }));
    });
    actions.append(row);
    field.focus();
  });
  actions.append(up, down);
  item.append(actions);
}

function personButton(item) {
  const button = el("button", { type: "button", class: "person", text: t("person") });
  button.addEventListener("click", async () => {
    button.disabled = true;
    const response = await api(`/v1/conversations/${conversation.id}/handoff`, { method: "POST", body: "{}" });
    if (!response.ok) { button.disabled = false; await showError(response); return; }
    const reply = await response.json();
    button.remove();
    setState(reply.state, reply.queue_position, reply.reason, reply.wait);
    follow();
  });
  let actions = item.querySelector(".actions");
  if (!actions) { actions = el("div", { class: "actions" }); item.append(actions); }
  actions.prepend(button);
}

function assistantMessage(message, shown = null) {
  const { item, body } = shown || bubble("assistant", t("assistant"));
  body.replaceChildren(markdown(message.answer ?? message.content ?? ""));
  const cited = sources(message.citations);
  if (cited) body.append(cited);
  const id = message.message_id || message.id;
  seen.add(id);
  if (message.mode !== "handoff" && message.mode !== "relayed") feedback(item, id);
  if (offersPerson(message.mode, message.answer ?? message.content)) personButton(item);
}

function agentMessage(message) {
  if (seen.has(message.id)) return;
  seen.add(message.id);
  const { body } = bubble("agent", message.name || t("assistant"));
  body.append(markdown(message.text ?? message.content ?? ""));
}

function userMessage(text, id) {
  if (id) seen.add(id);
  const { body } = bubble("user", t("you"));
  body.append(el("p", { text }));
}

// ---- state: waiting, with a colleague, safety steps -----------------------------------

/** What the customer is told of the wait: an estimate when the server has one, or when
 * colleagues will be there outside staffed hours; nothing invented. */
function waitText(wait) {
  if (!wait) return "";
  if (wait.staffed === false && wait.next_staffed_at) {
    const at = new Date(wait.next_staffed_at).toLocaleString(lang === "zh-CN" ? "zh-CN" : "en-GB",
      { weekday: "long", hour: "2-digit", minute: "2-digit" });
    return t("afterHours", at);
  }
  if (wait.estimated_wait_seconds != null) return t("estimate", Math.max(1, Math.ceil(wait.estimated_wait_seconds / 60)));
  return t("noEstimate");
}

function setState(state, position, reason, wait) {
  if (!conversation) return;
  const previous = conversation.state;
  conversation.state = state;
  if (reason) conversation.reason = reason;
  save();
  const risky = conversation.reason === "fraud_or_scam" || conversation.reason === "lost_card";
  const safety = $("safety");
  safety.hidden = !(risky && (state === "waiting" || state === "with_agent"));
  if (!safety.hidden) {
    $("safety-title").textContent = t("safetyTitle");
    $("safety-text").textContent = conversation.reason === "lost_card" ? t("safetyCard") : t("safetyFraud");
  }
  if (state === "waiting") status.textContent = t("waiting", position) + waitText(wait);
  else if (state === "with_agent" && previous !== "with_agent") status.textContent = t("withAgent");
  else if (state === "closed") status.textContent = t("closed");
  else if (state === "bot" && previous && previous !== "bot") status.textContent = t("backToBot");
  document.querySelectorAll(".person").forEach((b) => { if (state !== "bot") b.remove(); });
}

// ---- HTTP -----------------------------------------------------------------------------

function headers(extra = {}) {
  const h = { "content-type": "application/json", ...extra };
  if (conversation?.token) h.authorization = `Bearer ${conversation.token}`;
  if (identity) h["x-teller-identity"] = identity;
  return h;
}

async function api(path, options = {}) {
  try {
    return await fetch(path, { ...options, headers: headers(options.headers) });
  } catch {
    return { ok: false, status: 0, json: async () => ({}) };
  }
}

async function showError(response, retry) {
  let code = "";
  try { code = (await response.json()).error?.code || ""; } catch { /* not JSON */ }
  let text;
  if (response.status === 0) text = t("offline");
  else if (response.status === 429) text = t("limited", response.headers?.get("retry-after") || "30");
  else if (code === "message_too_long") text = t("tooLong");
  else if (code === "conversation_too_long") text = t("conversationEnded");
  else if (response.status === 503 || response.status === 504) text = t("busy");
  else text = t("failed");
  if (code === "invalid_identity_token") { identity = null; text = t("identityRefused"); }
  $("error-text").textContent = text;
  $("retry").hidden = !retry;
  $("error").hidden = false;
  lastFailed = retry || null;
}

function clearError() { $("error").hidden = true; lastFailed = null; }

// Server-sent events over fetch: the token travels in a header, never in the URL.
async function* sse(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message", data = "", id = null;
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
      if (!data) continue;
      try { yield { event, id, data: JSON.parse(data) }; } catch { /* a malformed event is skipped */ }
    }
  }
}

// ---- a turn ---------------------------------------------------------------------------

function busy(on) {
  streaming = on;
  sendButton.disabled = on;
  log.setAttribute("aria-busy", String(on));
  $("typing").hidden = !on;
  $("typing-text").textContent = t("thinking");
}

async function ask(text) {
  clearError();
  busy(true);
  const body = { message: text, lang };
  if (conversation?.id && conversation?.token && conversation.state !== "closed") {
    body.conversation_id = conversation.id;
    body.conversation_token = conversation.token;
  }
  const retry = () => ask(text);
  let response;
  try {
    response = await fetch("/v1/chat/stream", {
      method: "POST", body: JSON.stringify(body), headers: headers({ accept: "text/event-stream" }),
    });
  } catch {
    busy(false);
    await showError({ status: 0, json: async () => ({}) }, retry);
    return;
  }
  if (!response.ok) {
    busy(false);
    await showError(response, retry);
    return;
  }
  let shown = null;
  let raw = "";
  try {
    for await (const { event, data } of sse(response)) {
      if (event === "meta" || event === "delta") {
        if (!shown) {
          shown = bubble("assistant", t("assistant"));
          shown.item.setAttribute("aria-busy", "true");
        }
        if (event === "delta") {
          raw += data.text;
          shown.body.textContent = raw;
          $("typing").hidden = true;
          scroll();
        }
      } else if (event === "done") {
        const first = !conversation || conversation.id !== data.conversation_id;
        if (first) {
          conversation = { id: data.conversation_id, token: data.conversation_token, state: "bot" };
          save();
          tell("conversation");
        }
        if (data.mode === "relayed") {
          shown?.item.remove();
        } else {
          if (!shown) shown = bubble("assistant", t("assistant"));
          shown.item.removeAttribute("aria-busy");
          assistantMessage(data, shown);
        }
        if (data.handoff?.reason) conversation.reason = data.handoff.reason;
        setState(data.state, data.queue_position, data.handoff?.reason);
        if (data.state === "waiting" || data.state === "with_agent") follow();
      } else if (event === "error") {
        shown?.item.remove();
        const code = data.error?.code;
        const status = code === "audit_unavailable" || code === "retrieval_unavailable" ? 503 : 500;
        await showError({ status, json: async () => data }, retry);
      }
    }
  } catch {
    shown?.item.remove();
    await showError({ status: 0, json: async () => ({}) }, retry);
  } finally {
    busy(false);
  }
}

// ---- the colleague's side: the conversation's live events, resumed after any drop ------

function follow() {
  if (!conversation || events) return;
  clearTimeout(retryTimer);
  const controller = new AbortController();
  events = controller;
  (async () => {
    const extra = { accept: "text/event-stream" };
    if (conversation.lastEventId) extra["last-event-id"] = conversation.lastEventId;
    let response;
    try {
      response = await fetch(`/v1/conversations/${conversation.id}/events`, {
        headers: headers(extra), signal: controller.signal,
      });
      if (!response.ok) throw new Error(String(response.status));
      backoff = 1000;
      for await (const { event, id, data } of sse(response)) {
        if (event === "state") setState(data.state, data.queue_position, data.reason, data.wait);
        else if (event === "agent_joined") {
          status.textContent = t("joined", data.name);
          notice(t("joined", data.name));
        } else if (event === "message") {
          $("typing").hidden = true;
          agentMessage(data);
          tell("unread");
        } else if (event === "typing") {
          $("typing-text").textContent = t("agentTyping", data.name || t("assistant"));
          $("typing").hidden = false;
          setTimeout(() => { if (!streaming) $("typing").hidden = true; }, 4000);
        }
        if (id && conversation) { conversation.lastEventId = id; save(); }
      }
    } catch { /* dropped: reconnect below */ }
    if (events === controller) events = null;
    if (controller.signal.aborted || !conversation) return;
    if (conversation.state === "waiting" || conversation.state === "with_agent") {
      retryTimer = setTimeout(follow, backoff);
      backoff = Math.min(backoff * 2, 15000);
    }
  })();
}

function reconnectNow() {
  if (conversation && !events && (conversation.state === "waiting" || conversation.state === "with_agent")) {
    backoff = 1000;
    follow();
  }
}
window.addEventListener("online", reconnectNow);
document.addEventListener("visibilitychange", () => { if (!document.hidden) reconnectNow(); });

// ---- the transcript after a reload, and starting over ----------------------------------

async function restore() {
  if (!conversation?.id) return;
  const response = await api(`/v1/conversations/${conversation.id}`);
  if (response.status === 404 || response.status === 401) { conversation = null; save(); return; }
  if (!response.ok) { await showError(response); return; }
  const transcript = await response.json();
  log.replaceChildren();
  for (const m of transcript.messages) {
    if (m.role === "user") userMessage(m.content, m.id);
    else if (m.role === "assistant") assistantMessage(m);
    else if (m.role === "agent") agentMessage({ id: m.id, text: m.content, name: null });
  }
  setState(conversation.state || "bot", null, conversation.reason);
  if (conversation.state === "waiting" || conversation.state === "with_agent") follow();
}

function startOver() {
  events?.abort();
  events = null;
  clearTimeout(retryTimer);
  conversation = null;
  save();
  seen.clear();
  log.replaceChildren();
  status.textContent = "";
  $("safety").hidden = true;
  clearError();
  input.focus();
}

async function recent() {
  if (!identity) { $("recent").hidden = true; return; }
  const response = await api("/v1/customer/conversations");
  if (!response.ok) { if (response.status === 401) await showError(response); return; }
  const { conversations } = await response.json();
  const list = $("recent-list");
  list.replaceChildren(...conversations.map((c) => el("li", {
    text: `${new Date(c.created_at).toLocaleDateString(lang)} · ${c.first_message || ""}`,
  })));
  $("recent").hidden = conversations.length === 0;
}

// ---- language -------------------------------------------------------------------------

function labels() {
  document.documentElement.lang = lang;
  document.title = t("title");
  document.querySelectorAll("[data-text]").forEach((node) => { node.textContent = t(node.dataset.text); });
  input.placeholder = t("placeholder");
  $("close").setAttribute("aria-label", t("closeLabel"));
  const switcher = $("lang");
  switcher.textContent = t("switchTo");
  switcher.setAttribute("lang", lang === "en" ? "zh-CN" : "en");
  switcher.setAttribute("aria-label", t("switchLabel"));
  // Buttons that already exist take the new language too.
  document.querySelectorAll(".rate-up").forEach((b) => { b.textContent = t("helpful"); });
  document.querySelectorAll(".rate-down").forEach((b) => { b.textContent = t("notHelpful"); });
  document.querySelectorAll(".person").forEach((b) => { b.textContent = t("person"); });
}

// ---- wiring ---------------------------------------------------------------------------

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || streaming) return;
  input.value = "";
  userMessage(text);
  ask(text);
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("retry").addEventListener("click", () => { const again = lastFailed; clearError(); again?.(); });
$("new").addEventListener("click", startOver);
$("close").addEventListener("click", () => tell("close"));
$("lang").addEventListener("click", () => {
  lang = lang === "en" ? "zh-CN" : "en";
  labels();
  tell("lang", { lang });
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") tell("close");
});

window.addEventListener("message", (event) => {
  // Only our parent, from the origin it was confirmed to have; anything else is ignored.
  if (!parentOrigin || event.source !== window.parent || event.origin !== parentOrigin) return;
  const data = event.data;
  if (!data || typeof data !== "object" || data.v !== VERSION) return;
  if (data.type === "open") input.focus();
  else if (data.type === "identity") {
    identity = typeof data.token === "string" && data.token.length < 4096 ? data.token : null;
    recent();
  }
});

labels();
// The AI disclosure opens the first reply (the server writes it).
if (conversation) restore();
tell("ready");
