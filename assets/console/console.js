// Teller agent console. Plain ES module, no framework. Everything a customer, the
// assistant, a document or a colleague wrote is put on the page as text nodes only
// (textContent / createElement), never parsed as HTML.

const STRINGS = {
  en: {
    title: "Teller console",
    language: "Language",
    signOut: "Sign out",
    signInTitle: "Sign in to the staff console",
    signInHelp: "Use the staff token you were given (role agent, compliance or admin). It is sent once; the console then keeps a session.",
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
    err_forbidden: "This token's role may not use this view.",
    err_session_invalid: "Your session has ended. Please sign in again.",
    err_csrf_token_invalid: "The page lost its session; please reload it.",
    err_network: "Teller cannot be reached. Check the connection and try again.",
    err_empty: "Write something first.",
    err_generic: "That did not work: {message}",
    review: "Review",
    gaps: "Knowledge gaps",
    from: "From",
    to: "To (exclusive)",
    modeFilter: "Mode",
    any: "Any",
    reasonFilter: "Handoff reason",
    riskFilter: "Risk alert",
    withRisk: "With a risk alert",
    withoutRisk: "Without",
    feedbackFilter: "Feedback",
    ratedDown: "Rated not helpful",
    ratedUp: "Rated helpful",
    textFilter: "Text (masked messages)",
    search: "Search",
    previous: "Previous",
    next: "Next",
    exportCsv: "Export CSV",
    exportJsonl: "Export JSON Lines",
    exportNote: "Every event of the search's period, streamed.",
    chain: "The chain",
    verifyNow: "Verify now",
    verifying: "Verifying the whole chain…",
    verifiedOk: "Intact: all {events} events verified.",
    verifiedBad: "NOT intact: the first bad event is seq {seq} ({error}).",
    chainLastOk: "Last verified intact up to seq {seq} at {at}; {since} events since (head seq {head}).",
    chainLastBad: "The last verification, at {at}, found the chain broken; {since} events since (head seq {head}).",
    chainNever: "Not verified yet; head seq {head}.",
    record: "Conversation record",
    backToResults: "Back to results",
    recordMeta: "{id} · {events} events",
    holdReason: "Reason for the hold",
    placeHold: "Place legal hold",
    releaseHold: "Release legal hold",
    heldSince: "On legal hold since {at}: {reason}",
    notHeld: "Not on legal hold.",
    timeline: "Timeline",
    turns: "{turns} turns",
    riskAlerts: "{n} risk alerts",
    onHold: "Legal hold",
    resultsShown: "{n} conversations on page {page}.",
    noResults: "No conversation matches.",
    pageNumber: "Page {page}",
    erased: "(erased by a retention purge)",
    evidence: "Evidence",
    query: "Search query",
    retrieved: "Retrieved sources",
    source: "Source",
    score: "Score",
    snippet: "Cited snippet",
    answerability: "Answerability",
    answerabilityValue: "probability unanswerable {p} (threshold {threshold})",
    signals: "Signals",
    decision: "Decision",
    templates: "Templates",
    model: "Model",
    noModel: "none (no model used)",
    tokens: "Tokens (prompt + completion)",
    latency: "Latency",
    latencyValue: "condense {c} ms · retrieval {r} ms · answer {a} ms",
    riskAlert: "Risk alert",
    kind_handoff_requested: "Handed over to a person",
    kind_conversation_claimed: "Taken over by a colleague",
    kind_conversation_released: "Handed back to the assistant",
    kind_conversation_resolved: "Closed",
    kind_reply_cancelled: "The customer left before the reply",
    kind_reply_interrupted: "The reply was interrupted",
    show: "Show",
    topics: "Refused and handed-over questions, by topic",
    gapsSummary: "{questions} questions refused or handed over, in {topics} topics (largest first).",
    topicCounts: "{count} asked · {refused} refused · {handed} handed over",
    closestSources: "Closest sources",
    perDay: "Per day",
    chartModes: "Replies by mode",
    chartHandoffs: "Handoffs by reason",
    chartRisk: "Risk alerts by reason",
    nothing: "nothing in the period",
  },
  "zh-CN": {
    title: "Teller 坐席控制台",
    language: "语言",
    signOut: "退出登录",
    signInTitle: "登录员工控制台",
    signInHelp: "请使用发给您的员工令牌（角色为 agent、compliance 或 admin）。令牌只发送一次，之后控制台保持会话。",
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
    err_forbidden: "此令牌的角色无权使用该视图。",
    err_session_invalid: "您的会话已结束，请重新登录。",
    err_csrf_token_invalid: "页面会话已失效，请刷新页面。",
    err_network: "无法连接 Teller。请检查网络后重试。",
    err_empty: "请先输入内容。",
    err_generic: "操作未成功：{message}",
    review: "审查",
    gaps: "知识缺口",
    from: "起始日期",
    to: "截止日期（不含）",
    modeFilter: "模式",
    any: "全部",
    reasonFilter: "转人工原因",
    riskFilter: "风险警报",
    withRisk: "有风险警报",
    withoutRisk: "无风险警报",
    feedbackFilter: "客户反馈",
    ratedDown: "评为没有帮助",
    ratedUp: "评为有帮助",
    textFilter: "文本（已脱敏的消息）",
    search: "搜索",
    previous: "上一页",
    next: "下一页",
    exportCsv: "导出 CSV",
    exportJsonl: "导出 JSON Lines",
    exportNote: "导出搜索期间内的全部事件（流式传输）。",
    chain: "哈希链",
    verifyNow: "立即验证",
    verifying: "正在验证整条哈希链…",
    verifiedOk: "完整：全部 {events} 个事件已验证。",
    verifiedBad: "不完整：第一个有问题的事件序号为 {seq}（{error}）。",
    chainLastOk: "上次于 {at} 验证至序号 {seq}，结果完整；此后新增 {since} 个事件（最新序号 {head}）。",
    chainLastBad: "上次于 {at} 的验证发现哈希链已损坏；此后新增 {since} 个事件（最新序号 {head}）。",
    chainNever: "尚未验证；最新序号 {head}。",
    record: "会话记录",
    backToResults: "返回搜索结果",
    recordMeta: "{id} · {events} 个事件",
    holdReason: "法律保全原因",
    placeHold: "设置法律保全",
    releaseHold: "解除法律保全",
    heldSince: "自 {at} 起处于法律保全：{reason}",
    notHeld: "未设置法律保全。",
    timeline: "时间线",
    turns: "{turns} 轮",
    riskAlerts: "{n} 个风险警报",
    onHold: "法律保全",
    resultsShown: "第 {page} 页，共 {n} 个会话。",
    noResults: "没有符合条件的会话。",
    pageNumber: "第 {page} 页",
    erased: "（已被保留期清理删除）",
    evidence: "依据",
    query: "检索查询",
    retrieved: "检索到的来源",
    source: "来源",
    score: "得分",
    snippet: "引用片段",
    answerability: "可回答性",
    answerabilityValue: "无法回答的概率 {p}（阈值 {threshold}）",
    signals: "信号",
    decision: "决定",
    templates: "模板",
    model: "模型",
    noModel: "无（未使用模型）",
    tokens: "令牌数（提示 + 生成）",
    latency: "耗时",
    latencyValue: "改写 {c} 毫秒 · 检索 {r} 毫秒 · 回答 {a} 毫秒",
    riskAlert: "风险警报",
    kind_handoff_requested: "已转人工",
    kind_conversation_claimed: "同事已接手",
    kind_conversation_released: "已交还给智能助手",
    kind_conversation_resolved: "已结束",
    kind_reply_cancelled: "客户在回复前离开",
    kind_reply_interrupted: "回复被中断",
    show: "显示",
    topics: "被拒答和转人工的问题（按主题）",
    gapsSummary: "{questions} 个问题被拒答或转人工，共 {topics} 个主题（按数量排序）。",
    topicCounts: "提问 {count} 次 · 拒答 {refused} 次 · 转人工 {handed} 次",
    closestSources: "最接近的来源",
    perDay: "每日统计",
    chartModes: "按模式统计的回复",
    chartHandoffs: "按原因统计的转人工",
    chartRisk: "按原因统计的风险警报",
    nothing: "该期间没有记录",
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
  if (review.view) {
    renderResults();
    renderRecord();
    renderGaps();
  }
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
  $("sign-out").hidden = view === "sign-in";
  if (view !== "staff") resetStaffViews();
}

function signedIn(session) {
  state.me = { name: session.name, role: session.role };
  state.csrf = session.csrf_token;
  $("who").textContent = t("signedInAs", { name: session.name });
  // Each role sees the views it may use (agent: the queue; compliance: review and
  // gaps; admin: gaps); the API refuses the rest whatever the page shows.
  if (session.role === "agent") {
    show("desk");
    startStream();
  } else {
    show("staff");
    staffSignedIn();
  }
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
    $(session.role === "agent" ? "queue-title" : review.view === "gaps" ? "gaps-title" : "review-title").focus();
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

// ---- compliance review and knowledge gaps (issue #16) -------------------------------------

/** The views each role may use; the API refuses the others whatever the page shows. */
const ROLE_VIEWS = { compliance: ["review", "gaps"], admin: ["gaps"] };

const review = { page: 1, perPage: 20, query: null, results: [], record: null, view: null, gaps: null };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function defaultPeriod(fromId, toId, days) {
  const to = new Date(Date.now() + 86400000);
  const from = new Date(to.getTime() - days * 86400000);
  if (!$(fromId).value) $(fromId).value = isoDay(from);
  if (!$(toId).value) $(toId).value = isoDay(to);
}

function showStaffView(view) {
  const allowed = ROLE_VIEWS[state.me?.role] ?? [];
  if (!allowed.includes(view)) view = allowed[0];
  review.view = view;
  for (const name of ["review", "gaps"]) {
    const tab = $(`tab-${name}`);
    tab.hidden = !allowed.includes(name);
    tab.setAttribute("aria-pressed", String(name === view));
  }
  $("review-view").hidden = view !== "review" || review.record !== null;
  $("record-view").hidden = view !== "review" || review.record === null;
  $("gaps-view").hidden = view !== "gaps";
  if (view === "gaps" && !review.gaps) loadGaps();
  if (view === "review" && !review.query) {
    search();
    loadChain();
  }
}

function searchQuery() {
  const params = new URLSearchParams();
  const put = (name, id) => {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  };
  put("from", "f-from");
  put("to", "f-to");
  put("mode", "f-mode");
  put("handoff_reason", "f-reason");
  put("risk_alert", "f-risk");
  put("feedback", "f-feedback");
  put("q", "f-q");
  return params;
}

function updateExports() {
  const params = new URLSearchParams();
  params.set("from", $("f-from").value || "2000-01-01");
  params.set("to", $("f-to").value || isoDay(new Date(Date.now() + 86400000)));
  for (const format of ["csv", "jsonl"]) {
    params.set("format", format);
    const link = $(`export-${format}`);
    link.href = `/v1/audit/export?${params}`;
    link.setAttribute("download", `teller-audit-${params.get("from")}-${params.get("to")}.${format}`);
  }
}

async function search(event, page = 1) {
  event?.preventDefault();
  review.query = searchQuery();
  review.page = page;
  const params = new URLSearchParams(review.query);
  params.set("page", String(page));
  params.set("per_page", String(review.perPage));
  updateExports();
  $("review-error").textContent = "";
  $("results").setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", `/v1/audit/conversations?${params}`);
    review.results = data.conversations ?? [];
    renderResults();
  } catch (e) {
    $("review-error").textContent = inWords(e);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}

function renderResults() {
  const list = $("results");
  list.replaceChildren();
  for (const c of review.results) {
    const li = el("li", "entry" + (c.risk_alerts > 0 ? " urgent" : ""));
    const button = el("button", "entry-open", `${c.created_at.slice(0, 16).replace("T", " ")} · ${c.id}`);
    button.type = "button";
    button.addEventListener("click", () => openRecord(c.id));
    const meta = el("div", "entry-meta");
    meta.id = `result-${c.id}`;
    button.setAttribute("aria-describedby", meta.id);
    meta.append(el("span", "", t("turns", { turns: c.turns })));
    if (c.last_mode) meta.append(el("span", "", modeLabel(c.last_mode)));
    if (c.handoff_reason) meta.append(badge(c.handoff_reason));
    if (c.risk_alerts > 0) meta.append(el("span", "badge urgent", t("riskAlerts", { n: c.risk_alerts })));
    if (c.legal_hold) meta.append(el("span", "badge care", t("onHold")));
    li.append(button, meta);
    list.append(li);
  }
  $("review-status").textContent = review.results.length
    ? t("resultsShown", { n: review.results.length, page: review.page })
    : t("noResults");
  $("page-number").textContent = t("pageNumber", { page: review.page });
  $("prev-page").disabled = review.page <= 1;
  $("next-page").disabled = review.results.length < review.perPage;
}

async function loadChain() {
  try {
    const chain = await api("GET", "/v1/audit/chain");
    renderChain(chain);
  } catch (e) {
    $("chain-status").textContent = inWords(e);
  }
}

function renderChain(chain) {
  const last = chain.last_verification;
  $("chain-status").textContent = last
    ? t(last.intact ? "chainLastOk" : "chainLastBad", {
        seq: last.verified_seq,
        at: last.at.slice(0, 19).replace("T", " "),
        since: chain.events_since_verified,
        head: chain.head_seq,
      })
    : t("chainNever", { head: chain.head_seq });
}

async function verifyNow() {
  const button = $("verify");
  const progress = $("verify-progress");
  button.disabled = true;
  progress.hidden = false;
  $("chain-status").textContent = t("verifying");
  try {
    const result = await api("GET", "/v1/audit/verify");
    const r = result.report;
    $("chain-status").textContent = result.intact
      ? t("verifiedOk", { events: r.events })
      : t("verifiedBad", { seq: r.first_bad_seq ?? "?", error: r.error ?? "" });
  } catch (e) {
    $("chain-status").textContent = inWords(e);
  } finally {
    button.disabled = false;
    progress.hidden = true;
  }
}

async function openRecord(id) {
  $("record-error").textContent = "";
  try {
    review.record = await api("GET", `/v1/audit/conversations/${encodeURIComponent(id)}`);
  } catch (e) {
    $("review-error").textContent = inWords(e);
    return;
  }
  showStaffView("review");
  renderRecord();
  $("record-title").focus();
}

function closeRecord() {
  const id = review.record?.conversation_id;
  review.record = null;
  showStaffView("review");
  const again = id && document.querySelector(`#results [aria-describedby="result-${id}"]`);
  (again || $("review-title")).focus();
}

function line(label, value) {
  const row = el("div", "fact");
  row.append(el("span", "fact-label", label), el("span", "fact-value", value));
  return row;
}

/** One timeline entry for one event of the record, with the evidence of a bot turn. */
function eventItem(event, citations) {
  const p = event.payload ?? {};
  const li = el("li", `event kind-${event.kind}`);
  const head = el("div", "event-head");
  head.append(el("span", "seq", `#${event.seq}`), el("time", "", event.occurred_at.slice(0, 19).replace("T", " ")));
  li.append(head);
  const body = el("div", "event-body");
  switch (event.kind) {
    case "message_received":
    case "message_relayed":
      li.classList.add("from-user");
      body.append(el("strong", "", t("customer")), el("p", "text", p.content ?? t("erased")));
      if (p.screen?.escalation) body.append(badge(p.screen.escalation));
      break;
    case "retrieval": {
      body.append(el("strong", "", t("evidence")));
      if (p.query) body.append(line(t("query"), p.query));
      const table = el("table", "hits");
      const caption = el("caption", "", t("retrieved"));
      const header = el("tr");
      for (const h of [t("source"), t("score"), t("snippet")]) header.append(el("th", "", h));
      table.append(caption, header);
      for (const hit of p.hits ?? []) {
        const tr = el("tr");
        const cited = citations.get(hit.source_id);
        tr.append(el("td", "", hit.source_id), el("td", "", Number(hit.score).toFixed(3)), el("td", "", cited?.snippet ?? ""));
        table.append(tr);
      }
      body.append(table);
      if (p.answerability) {
        body.append(
          line(
            t("answerability"),
            t("answerabilityValue", {
              p: Number(p.answerability.unanswerable).toFixed(2),
              threshold: Number(p.answerability.threshold).toFixed(2),
            }),
          ),
        );
        body.append(line(t("signals"), JSON.stringify(p.answerability.signals ?? {})));
      }
      break;
    }
    case "answer": {
      li.classList.add("from-assistant");
      body.append(el("strong", "", `${t("assistant")} · ${modeLabel(p.mode)}`), el("p", "text", p.answer ?? t("erased")));
      const why = [modeLabel(p.mode)];
      if (p.handoff?.reason) why.push(reasonLabel(p.handoff.reason));
      for (const flag of p.flags ?? []) why.push(flag);
      if (p.fallback) why.push(p.fallback);
      body.append(line(t("decision"), why.join(" · ")));
      const templates = (p.templates ?? []).map((tpl) => `${tpl.name} v${tpl.version}`).join(", ");
      if (templates) body.append(line(t("templates"), templates));
      body.append(line(t("model"), p.model ?? t("noModel")));
      if (p.usage) body.append(line(t("tokens"), `${p.usage.prompt_tokens ?? "?"} + ${p.usage.completion_tokens ?? "?"}`));
      if (p.latency_ms) {
        const l = p.latency_ms;
        body.append(line(t("latency"), t("latencyValue", { c: l.condense.toFixed(0), r: l.retrieval.toFixed(0), a: l.answer.toFixed(0) })));
      }
      break;
    }
    case "agent_message_sent":
      li.classList.add("from-agent");
      body.append(el("strong", "", t("agentNamed", { name: event.actor.replace(/^staff:/, "") })), el("p", "text", p.text ?? p.content ?? ""));
      break;
    case "note_added":
      body.append(el("strong", "", t("notes")), el("p", "text", p.text ?? ""));
      break;
    case "feedback_given":
      body.append(el("strong", "", t(p.rating === "down" ? "ratedDown" : "ratedUp")));
      if (p.comment) body.append(el("p", "text", p.comment));
      break;
    case "risk_alert":
      body.append(el("strong", "", t("riskAlert")), badge(p.reason));
      break;
    default:
      body.append(el("strong", "", t(`kind_${event.kind}`) !== `kind_${event.kind}` ? t(`kind_${event.kind}`) : event.kind.replaceAll("_", " ")));
      if (p.reason) body.append(badge(p.reason));
      if (p.agent) body.append(el("span", "", ` ${p.agent}`));
      if (p.outcome) body.append(el("span", "", ` ${p.outcome}`));
  }
  li.append(body);
  return li;
}

function renderRecord() {
  const r = review.record;
  if (!r) return;
  $("record-meta").textContent = t("recordMeta", { id: r.conversation_id, events: r.events.length });
  // The citations of each answer, by source, for the snippets next to the hits before it.
  const list = $("timeline");
  list.replaceChildren();
  const events = r.events;
  for (let i = 0; i < events.length; i++) {
    const answer = events.slice(i).find((e) => e.kind === "answer");
    const citations = new Map((answer?.payload?.citations ?? []).map((c) => [c.source_id, c]));
    list.append(eventItem(events[i], citations));
  }
  const held = r.legal_hold;
  $("hold-state").textContent = held ? t("heldSince", { reason: held.reason, at: held.created_at.slice(0, 10) }) : t("notHeld");
  $("hold-toggle").textContent = held ? t("releaseHold") : t("placeHold");
  $("hold-reason").disabled = Boolean(held);
  $("hold-reason").parentElement.querySelector("label[for=hold-reason]").hidden = Boolean(held);
  $("hold-reason").hidden = Boolean(held);
}

async function toggleHold(event) {
  event.preventDefault();
  const r = review.record;
  const path = `/v1/audit/conversations/${encodeURIComponent(r.conversation_id)}/hold`;
  try {
    if (r.legal_hold) {
      r.legal_hold = (await api("DELETE", path)).legal_hold;
    } else {
      const reason = $("hold-reason").value.trim();
      if (!reason) {
        $("record-error").textContent = t("err_empty");
        $("hold-reason").focus();
        return;
      }
      r.legal_hold = (await api("PUT", path, { reason })).legal_hold;
      $("hold-reason").value = "";
    }
    $("record-error").textContent = "";
    renderRecord();
  } catch (e) {
    $("record-error").textContent = inWords(e);
  }
}

// ---- knowledge gaps -----------------------------------------------------------------------

async function loadGaps(event) {
  event?.preventDefault();
  defaultPeriod("g-from", "g-to", 30);
  const params = new URLSearchParams({ from: $("g-from").value, to: $("g-to").value });
  $("gaps-error").textContent = "";
  $("topics").setAttribute("aria-busy", "true");
  try {
    const [gaps, daily] = await Promise.all([
      api("GET", `/v1/insights/gaps?${params}`),
      api("GET", `/v1/insights/daily?${params}`),
    ]);
    review.gaps = { gaps, daily };
    renderGaps();
  } catch (e) {
    $("gaps-error").textContent = inWords(e);
  } finally {
    $("topics").removeAttribute("aria-busy");
  }
}

function renderGaps() {
  if (!review.gaps) return;
  const { gaps, daily } = review.gaps;
  $("gaps-status").textContent = t("gapsSummary", { questions: gaps.questions, topics: gaps.topics.length });
  const list = $("topics");
  list.replaceChildren();
  for (const topic of gaps.topics.slice(0, 50)) {
    const li = el("li", "topic");
    li.append(el("h4", "topic-label", topic.label));
    li.append(el("p", "topic-counts", t("topicCounts", { count: topic.count, refused: topic.refused, handed: topic.handed_over })));
    const examples = el("ul", "examples");
    for (const example of topic.examples) examples.append(el("li", "", example));
    li.append(examples);
    if (topic.closest_sources.length) {
      const closest = topic.closest_sources.map((s) => `${s.title ?? s.source_id} (${s.best_score.toFixed(2)})`).join(", ");
      li.append(line(t("closestSources"), closest));
    }
    list.append(li);
  }
  const charts = $("charts");
  charts.replaceChildren();
  for (const [key, title] of [["modes", "chartModes"], ["handoff_reasons", "chartHandoffs"], ["risk_alerts", "chartRisk"]]) {
    charts.append(chart(t(title), daily.days, daily[key]));
  }
}

const PALETTE = ["#0b57a4", "#a4001d", "#2e7d32", "#6a1b9a", "#8d5b00", "#00695c", "#37474f", "#c2185b"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

/** Stacked bars per day, one colour per label, drawn as SVG by the page. */
function chart(title, days, series) {
  const figure = el("figure", "chart");
  const caption = el("figcaption", "", title);
  figure.append(caption);
  const totals = days.map((_, i) => series.reduce((sum, s) => sum + s.counts[i], 0));
  const max = Math.max(1, ...totals);
  const width = 640;
  const height = 160;
  const bar = width / Math.max(1, days.length);
  const image = svg("svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img", width: "100%" });
  const summary = series.length
    ? series.map((s) => `${s.label.replaceAll("_", " ")} ${s.total}`).join(", ")
    : t("nothing");
  image.setAttribute("aria-label", `${title}: ${summary}`);
  days.forEach((day, i) => {
    let y = height;
    series.forEach((s, k) => {
      const h = (s.counts[i] / max) * (height - 10);
      if (h <= 0) return;
      y -= h;
      const rect = svg("rect", { x: i * bar + 1, y, width: Math.max(1, bar - 2), height: h, fill: PALETTE[k % PALETTE.length] });
      const tip = svg("title", {});
      tip.textContent = `${day} ${s.label}: ${s.counts[i]}`;
      rect.append(tip);
      image.append(rect);
    });
  });
  const axis = svg("text", { x: 0, y: height + 16, "font-size": 12, fill: "#1a1a1a" });
  axis.textContent = days.length ? `${days[0]} … ${days[days.length - 1]} · max ${max}` : "";
  image.append(axis);
  figure.append(image);
  const legend = el("ul", "legend");
  series.forEach((s, k) => {
    const item = el("li", "");
    const swatch = el("span", "swatch");
    swatch.style.background = PALETTE[k % PALETTE.length];
    item.append(swatch, el("span", "", `${reasonOrMode(s.label)}: ${s.total}`));
    legend.append(item);
  });
  figure.append(legend);
  return figure;
}

function reasonOrMode(label) {
  if (`mode_${label}` in STRINGS.en) return modeLabel(label);
  return reasonLabel(label);
}

function staffSignedIn() {
  $("views").hidden = false;
  defaultPeriod("f-from", "f-to", 7);
  showStaffView(ROLE_VIEWS[state.me.role]?.[0]);
}

function wireStaffViews() {
  for (const name of ["review", "gaps"]) $(`tab-${name}`).addEventListener("click", () => showStaffView(name));
  $("search-form").addEventListener("submit", (e) => search(e, 1));
  $("prev-page").addEventListener("click", () => search(null, Math.max(1, review.page - 1)));
  $("next-page").addEventListener("click", () => search(null, review.page + 1));
  $("verify").addEventListener("click", verifyNow);
  $("close-record").addEventListener("click", closeRecord);
  $("hold-form").addEventListener("submit", toggleHold);
  $("gaps-form").addEventListener("submit", loadGaps);
  for (const id of ["record-title", "review-title", "gaps-title"]) $(id).tabIndex = -1;
}

function resetStaffViews() {
  Object.assign(review, { page: 1, query: null, results: [], record: null, view: null, gaps: null });
  $("views").hidden = true;
  for (const id of ["review-view", "record-view", "gaps-view"]) $(id).hidden = true;
  $("results").replaceChildren();
  $("topics").replaceChildren();
  $("charts").replaceChildren();
  $("timeline").replaceChildren();
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
  wireStaffViews();
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
