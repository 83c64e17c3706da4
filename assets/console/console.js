// Teller agent console. Plain ES module, no framework. Everything a customer, the
// assistant, a document or a colleague wrote is put on the page as text nodes only
// (textContent / createElement), never parsed as HTML.

const STRINGS = {
  en: {
    title: "Teller console",
    language: "Language",
    signOut: "Sign out",
    signInTitle: "Sign in to the agent console",
    signInHelp: "Use the staff token you were given (role agent). It is sent once; the console then keeps a session.",
    staffToken: "Staff token",
    signIn: "Sign in",
    signingIn: "Signing in…",
    signedInAs: "Signed in as {name}",
    queue: "Queue",
    queueHeading: "Queue ({waiting} waiting)",
    queueEmpty: "No customer is waiting for a person.",
    queueArrived: "A customer is waiting: {reason}",
    queueLeft: "A conversation left the queue",
    live: "Live",
    reconnecting: "Connection lost; reconnecting…",
    waiting: "waiting {time}",
    withAgent: "With {agent}",
    withYou: "With you",
    conversation: "Conversation",
    backToQueue: "Back to queue",
    meta: "{state} · {reason} · language {lang}",
    state_waiting: "Waiting for a person",
    state_with_agent: "With an agent",
    state_bot: "With the assistant",
    state_closed: "Closed",
    takeOver: "Take over",
    handBack: "Hand back to assistant",
    outcome: "Outcome",
    outcome_resolved: "Resolved",
    outcome_referred: "Referred",
    outcome_no_response: "No response",
    outcome_duplicate: "Duplicate",
    resolve: "Resolve",
    transcript: "Transcript",
    reply: "Reply",
    send: "Send",
    suggest: "Suggest reply",
    suggesting: "Asking for a suggestion…",
    suggestionNote: "Suggested reply ({mode}). Check and edit it; it is sent only when you press Send.",
    notes: "Internal notes",
    notesPrivate: "Only colleagues see these notes. They are never shown to the customer.",
    noteLabel: "Internal note (never shown to the customer)",
    addNote: "Add note",
    noNotes: "No notes yet.",
    customer: "Customer",
    assistant: "Assistant",
    agent: "Agent",
    agentNamed: "Agent {name}",
    mode: "mode: {mode}",
    handoff: "handed over: {reason}",
    sources: "Sources",
    tookOver: "You have taken over this conversation.",
    handedBack: "The conversation is back with the assistant.",
    resolved: "The conversation is closed ({outcome}).",
    sent: "Reply sent.",
    noteAdded: "Note added.",
    reason_fraud_or_scam: "Fraud or scam",
    reason_lost_card: "Lost or stolen card",
    reason_vulnerable_customer: "Vulnerable customer",
    reason_customer_request: "Asked for a person",
    reason_complaint: "Complaint",
    reason_account_specific: "About their account",
    reason_missing_knowledge: "Not in the knowledge base",
    reason_policy_restriction: "Outside what the assistant may answer",
    reason_tool_failure: "A system was unavailable",
    reason_other: "Other",
    mode_approved: "approved answer",
    mode_generated: "written by the model",
    mode_extractive: "quoted from sources",
    mode_refusal: "declined",
    mode_handoff: "handed over",
    err_already_claimed: "Another colleague has already taken this conversation.",
    err_invalid_staff_token: "That staff token is not valid or has been revoked.",
    err_staff_token_required: "Enter your staff token.",
    err_forbidden: "This token is not an agent's token; the console is for agents.",
    err_session_invalid: "Your session has ended. Please sign in again.",
    err_csrf_token_invalid: "The page lost its session; please reload it.",
    err_network: "Teller cannot be reached. Check the connection and try again.",
    err_empty: "Write something first.",
    err_generic: "That did not work: {message}",
  },
  "zh-CN": {
    title: "Teller 坐席控制台",
    language: "语言",
    signOut: "退出登录",
    signInTitle: "登录坐席控制台",
    signInHelp: "请使用发给您的员工令牌（角色为 agent）。令牌只发送一次，之后控制台保持会话。",
    staffToken: "员工令牌",
    signIn: "登录",
    signingIn: "正在登录…",
    signedInAs: "已登录：{name}",
    queue: "排队",
    queueHeading: "排队（{waiting} 位等待）",
    queueEmpty: "目前没有客户在等待人工服务。",
    queueArrived: "有客户在等待：{reason}",
    queueLeft: "一个会话已离开队列",
    live: "实时",
    reconnecting: "连接中断，正在重新连接…",
    waiting: "已等待 {time}",
    withAgent: "由 {agent} 处理",
    withYou: "由您处理",
    conversation: "会话",
    backToQueue: "返回队列",
    meta: "{state} · {reason} · 语言 {lang}",
    state_waiting: "等待人工服务",
    state_with_agent: "坐席处理中",
    state_bot: "由智能助手处理",
    state_closed: "已结束",
    takeOver: "接手",
    handBack: "交还给智能助手",
    outcome: "处理结果",
    outcome_resolved: "已解决",
    outcome_referred: "已转介",
    outcome_no_response: "客户未回应",
    outcome_duplicate: "重复会话",
    resolve: "结束会话",
    transcript: "对话记录",
    reply: "回复",
    send: "发送",
    suggest: "建议回复",
    suggesting: "正在生成建议…",
    suggestionNote: "建议回复（{mode}）。请检查并修改；只有按“发送”后才会发出。",
    notes: "内部备注",
    notesPrivate: "备注仅同事可见，绝不会显示给客户。",
    noteLabel: "内部备注（绝不显示给客户）",
    addNote: "添加备注",
    noNotes: "暂无备注。",
    customer: "客户",
    assistant: "智能助手",
    agent: "坐席",
    agentNamed: "坐席 {name}",
    mode: "模式：{mode}",
    handoff: "已转人工：{reason}",
    sources: "来源",
    tookOver: "您已接手此会话。",
    handedBack: "会话已交还给智能助手。",
    resolved: "会话已结束（{outcome}）。",
    sent: "回复已发送。",
    noteAdded: "备注已添加。",
    reason_fraud_or_scam: "欺诈或诈骗",
    reason_lost_card: "银行卡丢失或被盗",
    reason_vulnerable_customer: "需特别关照的客户",
    reason_customer_request: "要求人工服务",
    reason_complaint: "投诉",
    reason_account_specific: "涉及本人账户",
    reason_missing_knowledge: "知识库中没有答案",
    reason_policy_restriction: "超出智能助手可回答的范围",
    reason_tool_failure: "系统暂不可用",
    reason_other: "其他",
    mode_approved: "已审核的标准答案",
    mode_generated: "由模型撰写",
    mode_extractive: "摘自来源",
    mode_refusal: "已拒答",
    mode_handoff: "已转人工",
    err_already_claimed: "另一位同事已经接手了此会话。",
    err_invalid_staff_token: "该员工令牌无效或已被撤销。",
    err_staff_token_required: "请输入您的员工令牌。",
    err_forbidden: "此令牌不是坐席令牌；控制台仅供坐席使用。",
    err_session_invalid: "您的会话已结束，请重新登录。",
    err_csrf_token_invalid: "页面会话已失效，请刷新页面。",
    err_network: "无法连接 Teller。请检查网络后重试。",
    err_empty: "请先输入内容。",
    err_generic: "操作未成功：{message}",
  },
};

const URGENT = new Set(["fraud_or_scam", "lost_card"]);
const $ = (id) => document.getElementById(id);

const state = {
  lang: "en",
  me: null, // { name, role }
  csrf: null,
  queue: new Map(), // conversation_id -> { entry, receivedAt }
  current: null, // conversation detail being shown
  seen: new Set(), // message and note ids already on the page
  suggestionId: null,
  lastEventId: null,
  stream: null, // AbortController of the running stream
  lastTyping: 0,
  live: null, // whether the stream is connected, once it has been tried
};

// ---- strings ----------------------------------------------------------------------------

function t(key, vars = {}) {
  const table = STRINGS[state.lang] || STRINGS.en;
  const text = table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

function reasonLabel(reason) {
  if (!reason) return t("reason_other");
  const key = `reason_${reason}`;
  return key in STRINGS.en ? t(key) : reason.replaceAll("_", " ");
}

function modeLabel(mode) {
  const key = `mode_${mode}`;
  return key in STRINGS.en ? t(key) : String(mode ?? "");
}

function initialLang() {
  const saved = localStorage.getItem("teller.console.lang");
  if (saved && saved in STRINGS) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

function applyStrings() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  $("lang").value = state.lang;
  $("who").textContent = state.me ? t("signedInAs", { name: state.me.name }) : "";
  if (state.live !== null) setConnection(state.live);
  renderQueue();
  if (state.current) renderConversation(true);
}

// ---- the API ----------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiFailure(0, "network", t("err_network"));
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = data?.error?.code ?? "http_" + response.status;
    const failure = new ApiFailure(response.status, code, data?.error?.message ?? response.statusText);
    if (code === "session_invalid") sessionEnded();
    throw failure;
  }
  return data;
}

/** An API failure in the agent's language. */
function inWords(error) {
  if (error instanceof ApiFailure) {
    const key = `err_${error.code}`;
    if (key in STRINGS.en) return t(key);
    return t("err_generic", { message: error.message });
  }
  return t("err_generic", { message: String(error?.message ?? error) });
}

const convPath = (id, action = "") =>
  `/v1/agent/conversations/${encodeURIComponent(id)}${action ? "/" + action : ""}`;

// ---- signing in and out -----------------------------------------------------------------

function show(view) {
  $("sign-in-view").hidden = view !== "sign-in";
  $("desk").hidden = view !== "desk";
  $("sign-out").hidden = view !== "desk";
}

function signedIn(session) {
  state.me = { name: session.name, role: session.role };
  state.csrf = session.csrf_token;
  $("who").textContent = t("signedInAs", { name: session.name });
  show("desk");
  startStream();
}

function resetDesk() {
  state.stream?.abort();
  state.stream = null;
  state.me = null;
  state.csrf = null;
  state.queue.clear();
  state.current = null;
  state.seen.clear();
  state.lastEventId = null;
  state.suggestionId = null;
  state.live = null;
  $("connection").textContent = "";
  $("who").textContent = "";
  $("conversation-view").hidden = true;
  renderQueue();
}

function sessionEnded() {
  if (!state.me) return;
  resetDesk();
  show("sign-in");
  $("sign-in-error").textContent = t("err_session_invalid");
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const field = $("token");
  const token = field.value.trim();
  const error = $("sign-in-error");
  if (!token) {
    error.textContent = t("err_staff_token_required");
    field.focus();
    return;
  }
  error.textContent = "";
  $("sign-in").disabled = true;
  $("sign-in").textContent = t("signingIn");
  try {
    const session = await api("POST", "/console/session", { token });
    field.value = "";
    signedIn(session);
    $("queue-title").focus();
  } catch (e) {
    error.textContent = inWords(e);
    field.focus();
  } finally {
    $("sign-in").disabled = false;
    $("sign-in").textContent = t("signIn");
  }
}

async function signOut() {
  try {
    await api("DELETE", "/console/session");
  } catch {
    // The session is gone either way once the page forgets it.
  }
  resetDesk();
  show("sign-in");
  $("sign-in-error").textContent = "";
  $("token").focus();
}

// ---- the live stream --------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setConnection(live) {
  state.live = live;
  const el = $("connection");
  el.textContent = live ? t("live") : t("reconnecting");
  el.classList.toggle("down", !live);
}

/** Reads server-sent events from a byte stream, calling `onEvent` for each one. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "message", data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (event.id !== null) state.lastEventId = event.id;
        if (event.data.length) onEvent(event.type, event.data.join("\n"));
        event = { type: "message", data: [], id: null };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id" && !value.includes("\0")) event.id = value;
    }
  }
}

async function startStream() {
  const controller = new AbortController();
  state.stream = controller;
  let backoff = 1000;
  while (state.stream === controller) {
    try {
      const headers = { Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch("/v1/agent/stream", {
        headers,
        signal: controller.signal,
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 401) {
        sessionEnded();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
      setConnection(true);
      backoff = 1000;
      // A fresh connection starts with a `snapshot` of the queue; a resumed one
      // (Last-Event-ID) replays exactly the events missed.
      await readEvents(response.body, dispatch);
    } catch {
      if (controller.signal.aborted) return;
    }
    if (state.stream !== controller) return;
    setConnection(false);
    await sleep(backoff + Math.random() * 500);
    backoff = Math.min(backoff * 2, 30000);
  }
}

function dispatch(type, raw) {
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    return;
  }
  apply(type, data);
}

function apply(type, data) {
  const current = state.current;
  const here = current && data.conversation_id === current.conversation_id;
  switch (type) {
    case "snapshot": {
      const now = performance.now();
      state.queue.clear();
      for (const entry of data.conversations ?? []) state.queue.set(entry.conversation_id, { entry, receivedAt: now });
      renderQueue();
      break;
    }
    case "queue": {
      const known = state.queue.has(data.conversation_id);
      if (data.state === "bot" || data.state === "closed") {
        state.queue.delete(data.conversation_id);
        if (known) announce(t("queueLeft"));
      } else {
        state.queue.set(data.conversation_id, { entry: data, receivedAt: performance.now() });
        if (!known && data.state === "waiting") announce(t("queueArrived", { reason: reasonLabel(data.reason) }));
      }
      if (here) {
        current.state = data.state;
        current.agent = data.agent ?? null;
        renderConversation();
      }
      renderQueue();
      break;
    }
    case "customer_message":
      if (here) addMessage({ id: data.id, role: "user", content: data.text, created_at: data.created_at });
      break;
    case "agent_message":
      if (here) addMessage({ id: data.id, role: "agent", content: data.text, agent: data.agent, created_at: data.created_at });
      break;
    case "note":
      if (here) addNote(data);
      break;
    default:
      break;
  }
}

function announce(text) {
  $("queue-status").textContent = text;
}

// ---- the queue --------------------------------------------------------------------------

function waitingSeconds({ entry, receivedAt }) {
  return Math.max(0, (entry.waiting_seconds ?? 0) + (performance.now() - receivedAt) / 1000);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function sortedQueue() {
  const rank = (item) => (item.entry.state === "waiting" ? 0 : 1);
  return [...state.queue.values()].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.entry.priority ?? 99) - (b.entry.priority ?? 99) ||
      waitingSeconds(b) - waitingSeconds(a),
  );
}

function badge(reason) {
  const el = document.createElement("span");
  el.className = "badge" + (URGENT.has(reason) ? " urgent" : reason === "vulnerable_customer" ? " care" : "");
  el.textContent = reasonLabel(reason);
  return el;
}

function renderQueue() {
  const list = $("queue-list");
  const focused = document.activeElement?.closest?.("#queue-list li")?.dataset.id;
  list.replaceChildren();
  const items = sortedQueue();
  for (const item of items) {
    const { entry } = item;
    const li = document.createElement("li");
    li.dataset.id = entry.conversation_id;
    li.className = "entry" + (URGENT.has(entry.reason) ? " urgent" : "") + (entry.state === "waiting" ? "" : " held");
    if (state.current?.conversation_id === entry.conversation_id) li.classList.add("open");

    const button = document.createElement("button");
    button.type = "button";
    button.className = "entry-open";
    button.textContent = entry.first_message?.trim() || reasonLabel(entry.reason);
    button.addEventListener("click", () => openConversation(entry.conversation_id));

    const meta = document.createElement("div");
    meta.className = "entry-meta";
    meta.id = `meta-${entry.conversation_id}`;
    button.setAttribute("aria-describedby", meta.id);
    meta.append(badge(entry.reason));
    const wait = document.createElement("span");
    wait.className = "wait";
    wait.dataset.id = entry.conversation_id;
    wait.textContent = t("waiting", { time: duration(waitingSeconds(item)) });
    if (entry.state === "waiting") meta.append(wait);
    else {
      const who = document.createElement("span");
      who.className = "holder";
      who.textContent = entry.agent === state.me?.name ? t("withYou") : t("withAgent", { agent: entry.agent ?? "?" });
      meta.append(who);
    }
    const lang = document.createElement("span");
    lang.className = "lang";
    lang.textContent = entry.lang;
    meta.append(lang);

    li.append(button, meta);
    list.append(li);
  }
  $("queue-empty").hidden = items.length > 0;
  if (focused) list.querySelector(`li[data-id="${CSS.escape(focused)}"] button`)?.focus();
  const waiting = items.filter((i) => i.entry.state === "waiting").length;
  if (state.me) $("queue-title").textContent = t("queueHeading", { waiting });
  $("queue-title").dataset.count = String(waiting);
}

function tick() {
  for (const el of document.querySelectorAll("#queue-list .wait")) {
    const item = state.queue.get(el.dataset.id);
    if (item) el.textContent = t("waiting", { time: duration(waitingSeconds(item)) });
  }
}

// ---- a conversation ---------------------------------------------------------------------

function holdsCurrent() {
  const c = state.current;
  return Boolean(c && c.state === "with_agent" && c.agent === state.me?.name);
}

function conversationError(text) {
  $("conversation-error").textContent = text;
}

async function openConversation(id) {
  conversationError("");
  try {
    const detail = await api("GET", convPath(id));
    state.current = detail;
    state.seen.clear();
    $("reply").value = "";
    clearSuggestion();
    $("conversation-view").hidden = false;
    renderConversation(true);
    renderQueue();
    $("conversation-title").focus();
  } catch (e) {
    announce(inWords(e));
  }
}

function closeConversation() {
  const id = state.current?.conversation_id;
  state.current = null;
  $("conversation-view").hidden = true;
  renderQueue();
  const back = id && $("queue-list").querySelector(`li[data-id="${CSS.escape(id)}"] button`);
  (back || $("queue-title")).focus();
}

function speaker(message) {
  if (message.role === "user") return t("customer");
  if (message.role === "assistant") return t("assistant");
  return message.agent ? t("agentNamed", { name: message.agent }) : t("agent");
}

function messageElement(message) {
  const li = document.createElement("div");
  li.className = `message from-${message.role}`;
  const head = document.createElement("p");
  head.className = "message-head";
  const who = document.createElement("strong");
  who.textContent = speaker(message);
  head.append(who);
  // A handoff's reason says all its mode would.
  if (message.mode && !(message.mode === "handoff" && message.handoff_reason)) {
    const mode = document.createElement("span");
    mode.className = "mode";
    mode.textContent = t("mode", { mode: modeLabel(message.mode) });
    head.append(" · ", mode);
  }
  if (message.handoff_reason) {
    const handoff = document.createElement("span");
    handoff.className = "mode";
    handoff.textContent = t("handoff", { reason: reasonLabel(message.handoff_reason) });
    head.append(" · ", handoff);
  }
  if (message.created_at) {
    const time = document.createElement("time");
    time.dateTime = message.created_at;
    const at = new Date(message.created_at);
    time.textContent = Number.isNaN(at.getTime()) ? message.created_at : at.toLocaleTimeString(state.lang);
    head.append(" ", time);
  }
  const body = document.createElement("p");
  body.className = "message-text";
  body.textContent = message.content ?? "";
  li.append(head, body);
  const citations = Array.isArray(message.citations) ? message.citations : [];
  if (citations.length) li.append(sourcesElement(citations));
  return li;
}

function sourcesElement(citations) {
  const box = document.createElement("div");
  box.className = "sources";
  const title = document.createElement("p");
  title.className = "sources-title";
  title.textContent = t("sources");
  const list = document.createElement("ol");
  for (const citation of citations) {
    const item = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = citation.title || citation.source_id || "";
    const snippet = document.createElement("span");
    snippet.className = "snippet";
    snippet.textContent = citation.snippet ?? "";
    item.append(name, " — ", snippet);
    list.append(item);
  }
  box.append(title, list);
  return box;
}

function addMessage(message) {
  const c = state.current;
  if (!c || (message.id && state.seen.has(message.id))) return;
  if (message.id) state.seen.add(message.id);
  c.messages.push(message);
  $("transcript").append(messageElement(message));
  scrollTranscript();
}

function noteElement(note) {
  const li = document.createElement("li");
  const head = document.createElement("p");
  head.className = "message-head";
  const who = document.createElement("strong");
  who.textContent = note.author ?? note.agent ?? "";
  head.append(who);
  if (note.created_at) {
    const time = document.createElement("time");
    time.dateTime = note.created_at;
    const at = new Date(note.created_at);
    time.textContent = Number.isNaN(at.getTime()) ? note.created_at : at.toLocaleTimeString(state.lang);
    head.append(" ", time);
  }
  const text = document.createElement("p");
  text.className = "message-text";
  text.textContent = note.text ?? "";
  li.append(head, text);
  return li;
}

function addNote(note) {
  const c = state.current;
  if (!c || (note.id && state.seen.has(note.id))) return;
  if (note.id) state.seen.add(note.id);
  c.notes.push(note);
  renderNotes();
}

function renderNotes() {
  const notes = state.current?.notes ?? [];
  const list = $("notes");
  list.replaceChildren(...notes.map(noteElement));
  if (!notes.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = t("noNotes");
    list.append(empty);
  }
}

function scrollTranscript() {
  const log = $("transcript");
  log.scrollTop = log.scrollHeight;
}

function renderConversation(full = false) {
  const c = state.current;
  if (!c) return;
  c.messages ??= [];
  c.notes ??= [];
  $("conversation-meta").textContent = t("meta", {
    state: c.state === "with_agent" && c.agent ? t(c.agent === state.me?.name ? "withYou" : "withAgent", { agent: c.agent }) : t(`state_${c.state}`),
    reason: reasonLabel(c.reason),
    lang: c.lang ?? "",
  });
  if (full || $("transcript").childElementCount !== c.messages.length) {
    for (const m of c.messages) if (m.id) state.seen.add(m.id);
    for (const n of c.notes) if (n.id) state.seen.add(n.id);
    $("transcript").replaceChildren(...c.messages.map(messageElement));
    scrollTranscript();
  }
  renderNotes();
  const mine = holdsCurrent();
  const closed = c.state === "closed";
  $("take-over").hidden = mine || closed;
  $("take-over").disabled = mine || closed;
  for (const id of ["hand-back", "resolve", "outcome", "send", "suggest", "reply"]) $(id).disabled = !mine;
}

function clearSuggestion() {
  state.suggestionId = null;
  $("suggestion-note").textContent = "";
  $("suggestion-sources").replaceChildren();
}

async function act(button, work) {
  button.disabled = true;
  conversationError("");
  try {
    await work();
  } catch (e) {
    conversationError(inWords(e));
  } finally {
    button.disabled = false;
    // The conversation's own buttons follow who holds it.
    if (state.current) renderConversation();
  }
}

function takeOver() {
  const c = state.current;
  return act($("take-over"), async () => {
    const result = await api("POST", convPath(c.conversation_id, "claim"));
    c.state = result.state;
    c.agent = result.agent;
    announce(t("tookOver"));
    renderConversation();
    renderQueue();
    $("reply").focus();
  });
}

function handBack() {
  const c = state.current;
  return act($("hand-back"), async () => {
    const result = await api("POST", convPath(c.conversation_id, "release"));
    c.state = result.state;
    c.agent = null;
    announce(t("handedBack"));
    state.queue.delete(c.conversation_id);
    closeConversation();
  });
}

function resolve() {
  const c = state.current;
  const outcome = $("outcome").value;
  return act($("resolve"), async () => {
    const result = await api("POST", convPath(c.conversation_id, "resolve"), { outcome });
    c.state = result.state;
    announce(t("resolved", { outcome: t(`outcome_${outcome}`) }));
    state.queue.delete(c.conversation_id);
    closeConversation();
  });
}

function sendReply(event) {
  event.preventDefault();
  const c = state.current;
  const box = $("reply");
  const text = box.value.trim();
  if (!text) {
    conversationError(t("err_empty"));
    box.focus();
    return undefined;
  }
  return act($("send"), async () => {
    const body = { text };
    if (state.suggestionId) body.suggestion_id = state.suggestionId;
    const sent = await api("POST", convPath(c.conversation_id, "messages"), body);
    box.value = "";
    clearSuggestion();
    addMessage({ id: sent.id, role: "agent", content: sent.text, agent: state.me?.name, created_at: sent.created_at });
    announce(t("sent"));
    box.focus();
  });
}

function suggest() {
  const c = state.current;
  return act($("suggest"), async () => {
    $("suggestion-note").textContent = t("suggesting");
    try {
      const suggestion = await api("POST", convPath(c.conversation_id, "suggest"));
      $("reply").value = suggestion.text ?? "";
      state.suggestionId = suggestion.suggestion_id ?? null;
      $("suggestion-note").textContent = t("suggestionNote", { mode: modeLabel(suggestion.mode) });
      const citations = Array.isArray(suggestion.citations) ? suggestion.citations : [];
      $("suggestion-sources").replaceChildren(...(citations.length ? [sourcesElement(citations)] : []));
      $("reply").focus();
    } catch (e) {
      clearSuggestion();
      throw e;
    }
  });
}

function typing() {
  const c = state.current;
  if (!$("reply").value) clearSuggestion();
  if (!holdsCurrent() || performance.now() - state.lastTyping < 3000) return;
  state.lastTyping = performance.now();
  api("POST", convPath(c.conversation_id, "typing")).catch(() => {});
}

function addNoteFromForm(event) {
  event.preventDefault();
  const c = state.current;
  const box = $("note");
  const text = box.value.trim();
  if (!text) {
    conversationError(t("err_empty"));
    box.focus();
    return undefined;
  }
  return act($("add-note"), async () => {
    const note = await api("POST", convPath(c.conversation_id, "notes"), { text });
    box.value = "";
    addNote(note);
    announce(t("noteAdded"));
  });
}

// ---- start ------------------------------------------------------------------------------

async function start() {
  state.lang = initialLang();
  applyStrings();
  $("lang").addEventListener("change", () => {
    state.lang = $("lang").value in STRINGS ? $("lang").value : "en";
    localStorage.setItem("teller.console.lang", state.lang);
    applyStrings();
  });
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("close-conversation").addEventListener("click", closeConversation);
  $("take-over").addEventListener("click", takeOver);
  $("hand-back").addEventListener("click", handBack);
  $("resolve").addEventListener("click", resolve);
  $("reply-form").addEventListener("submit", sendReply);
  $("suggest").addEventListener("click", suggest);
  $("reply").addEventListener("input", typing);
  $("note-form").addEventListener("submit", addNoteFromForm);
  for (const id of ["queue-title", "conversation-title"]) $(id).tabIndex = -1;
  setInterval(tick, 1000);
  try {
    signedIn(await api("GET", "/console/session"));
  } catch {
    show("sign-in");
    $("token").focus();
  }
}

start();
