//! When a customer needs a person rather than the bot, and why; and which requests the
//! bot must decline as advice. Runs on the masked message, before retrieval decides
//! anything, in English and Chinese.
//!
//! Patterns describe the customer's *situation* ("my card was stolen", "I gave the OTP to
//! a caller"), not the topic: "how do I report a lost card?" is a question the knowledge
//! base answers, "I lost my card" is a handoff. The labelled phrasings and look-alikes in
//! tests/fixtures/guard/escalation.jsonl measure both sides (BENCHMARKS.md).

use crate::conversation::HandoffReason;
use regex::RegexSet;
use std::sync::LazyLock;

/// A set of patterns, with room for the lazy DFA to cache what these long, bounded
/// patterns need (with the default cache it gives up and falls back to a much slower
/// engine on most messages).
fn set(patterns: &[&str]) -> RegexSet {
    regex::RegexSetBuilder::new(patterns)
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
        .expect("escalation patterns compile")
}

// Shared fragments.
const CARDS: &str = r"(cards?|debit ?cards?|credit ?cards?|supplementary cards?|wallet|purse|bag|backpack|handbag|phone|mobile|cheque ?book)";

static FRAUD: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        // Typed details into something fake (typing a PIN at the bank's own app is not).
        r"(?i)(?-u:\b)(typed|entered|put in|filled in|keyed in)(?-u:\b)[^.?!]{0,60}(?-u:\b)(site|website|link|page|fake|phishing|form|looked like|pop-?up)(?-u:\b)|(?-u:\b)(site|website|link|fake|phishing|form|pop-?up|message)(?-u:\b)[^.?!]{0,60}(?-u:\b)(typed|entered|put in|filled in|keyed in)(?-u:\b)",
        r"(?i)(?-u:\b)(read out|gave out|gave away|told (him|her|them))(?-u:\b)[^.?!]{0,25}(?-u:\b)(code|digits|pin|password|otp)",
        r#"(?i)["“'‘](\w+\s)?(advisor|adviser|broker|mentor|investigator|officer|security|fraud team)["”'’]"#,
        r"(?i)(?-u:\b)(stopped replying|stopped answering|stopped responding|blocked me|disappeared|vanished|can'?t reach (him|her|them))(?-u:\b)[^.?!]{0,60}(?-u:\b)(wired|sent|paid|transferred|invested|money|savings|everything)(?-u:\b)|(?-u:\b)(wired|sent|paid|transferred|invested)(?-u:\b)[^.?!]{0,60}(?-u:\b)(stopped replying|stopped answering|blocked me|disappeared|vanished)",
        r"(?i)(?-u:\b)(paid|sent|transferred|wired|invested|gave)(?-u:\b)[^.?!]{0,60}(?-u:\b)(blocked me|stopped replying|stopped answering|disappeared|promised \d+ ?%|guaranteed)|(?-u:\b)(money|sending|sent|transfer\w*|pay\w*)(?-u:\b)[^.?!]{0,60}(?-u:\b)never met(?-u:\b)|[\x22'‘“](girlfriend|boyfriend|lover|investor|friend|advisor|adviser)[\x22'’”]|(?-u:\b)never met(?-u:\b)[^.?!]{0,60}(?-u:\b)(money|sent|transfer|pay)|(?-u:\b)dating (app|site)(?-u:\b)[^.?!]{0,60}(?-u:\b)(money|sent|transfer|pay)|(?-u:\b)(it'?s|is) a con(?-u:\b)",
        r"(?i)(?-u:\b)(someone|somebody)('s| has)? (logged|signed) (into|in to|onto)(?-u:\b)|(?-u:\b)changed my (email|password|phone number|mobile number)(?-u:\b)[^.?!]{0,20}(?-u:\b)(not me|wasn'?t me|didn'?t)",
        r"(?i)(?-u:\b)(put|move|transfer|keep|withdraw)(?-u:\b)[^.?!]{0,20}(?-u:\b)(savings|money|funds|cash)(?-u:\b)[^.?!]{0,20}(?-u:\b)(somewhere safe|safe place|safe account|for safekeeping)|(?-u:\b)telling (him|her|me|them|us) to (move|put|transfer|withdraw|send|buy|pay)(?-u:\b)",
        r"(?i)(?-u:\b)(ported|port(ed)? out|sim (card )?(swap|replaced|changed|deactivated))(?-u:\b)|(?-u:\b)(network|signal|phone) (went dead|died|stopped)(?-u:\b)[^.?!]{0,60}(?-u:\b)(log ?in|code|password|text|sms)",
        r#"(接到|打来)[^。！？]{0,4}[“"「][^”"」]{0,12}(银行|安全|客服|部门|灯塔)[^”"」]{0,6}[”"」]|念了?[^。！？]{0,8}(数字|验证码|密码)|被转走|转走了[^。！？]{0,4}(钱|笔)"#,
        r"(导师|老师|群里|拉进群)[^。！？]{0,20}(投了|转了|充值|充了)|(投了|转了|汇了|充了)[^。！？]{0,20}(联系不上|拉黑|失联|跑路|提不了现)",
        r"有人(登进|登录了?|登入)|用我的名义|冒用我的|手机卡[^。！？]{0,6}(失效|没信号|被补)",
        // Gave away credentials or codes.
        r"(?i)(?-u:\b)(i|we|my (mum|mom|dad|father|mother|wife|husband|gran|grandma|grandpa|parents?|son|daughter))(?-u:\b)[^.?!]{0,40}(?-u:\b)(gave|told|read|shared|sent|said|disclosed|handed)(?-u:\b)[^.?!]{0,50}(?-u:\b)(otp|one[- ]?time|code|codes|pin|password|passcode|login|details|card details|card number|cvv|security)(?-u:\b)",
        r"(?i)(?-u:\b)(otp|one[- ]?time (code|password|passcode)|verification code|code|pin|password|card details)(?-u:\b)[^.?!]{0,40}(?-u:\b)(to|with)(?-u:\b)[^.?!]{0,20}(?-u:\b)(a |some |the )?(guy|man|woman|lady|caller|someone|somebody|person|stranger|scammer|fraudster|him|her|them)(?-u:\b)",
        // Someone claiming to be the bank / police / an official, or a "safe account".
        r"(?i)(?-u:\b)(claim(ing|ed|s)?|said|says|saying|pretend(ing|ed)?|posing|supposedly|who said|so-called|called himself|called herself)(?-u:\b)[^.?!]{0,30}(?-u:\b)(to be |he was |she was |they were |they are |he is |she is |from |a |an )?(the |your |a |an |her |his |my )?(bank|fraud (team|department)|security team|police|detective|officer|customs|immigration|court|tax|government|investigator|grandson|granddaughter|son|daughter|nephew|niece)",
        r#"(?i)(?-u:\b)(safe|safety|secure|protected|holding|special) account(?-u:\b)|["'“]bank investigator|(?-u:\b)bank investigator(?-u:\b)"#,
        // Money already gone or being taken.
        r"(?i)(?-u:\b)(i|we|my \w+|she|he)(?-u:\b)[^.?!]{0,40}(?-u:\b)(transferred|sent|paid|wired|moved|invested|gave|withdrew|bought)(?-u:\b)[^.?!]{0,60}(?-u:\b)(scam|scammer|fraud|fake|blocked me|disappeared|stopped (answering|replying)|never (met|heard|received|got)|promised|guaranteed|police|officer|detective|investment|crypto|girlfriend|boyfriend|lover|online|whatsapp|telegram|stranger|in trouble|courier|gift cards?|tax fine|fine|visa)(?-u:\b)",
        r"(?i)(?-u:\b)(scammed|defrauded|conned|swindled|ripped off|been hacked|got hacked|was hacked|is hacked|hacked into|identity (theft|stolen)|sim (card )?(swap|swapped|hijack)|sim was swapped|phished|fraudsters|scammers) ",
        r"(?i)(?-u:\b)(scammed|defrauded|conned|swindled|hacked|phished)(?-u:\b)",
        r"(?i)(?-u:\b)(i|we)(?-u:\b)[^.?!]{0,20}(?-u:\b)(think|fear|suspect|believe|worried|afraid|scared)(?-u:\b)[^.?!]{0,40}(?-u:\b)(scam|scammed|fraud|hacked|phishing|compromised|stolen|fake|swapped)",
        r"(?i)(?-u:\b)(transactions?|charges?|payments?|withdrawals?|transfers?|purchases?|login|logged in|log-?ins?|sign[- ]?in|debits?)(?-u:\b)[^.?!]{0,60}(?-u:\b)(i (did ?n[o']?t|never|do ?n[o']?t) (make|made|do|did|recogni[sz]e|authori[sz]e)|(wasn'?t|was not|were not|weren'?t|not|isn'?t|aren'?t) (me|mine|made by me|authori[sz]ed)|unauthori[sz]ed|don'?t recogni[sz]e|do not recogni[sz]e|unknown|unfamiliar|strange|suspicious)",
        r"(?i)(?-u:\b)(unauthori[sz]ed|fraudulent|suspicious|unknown|strange|unrecogni[sz]ed)(?-u:\b)[^.?!]{0,20}(?-u:\b)(transactions?|charges?|payments?|withdrawals?|transfers?|activity|logins?|log-?ins?|purchases?|debits?|access)(?-u:\b)",
        r"(?i)(?-u:\b)(my|our)(?-u:\b)[^.?!]{0,30}(?-u:\b)(account|card|app|online banking|banking|savings|email)(?-u:\b)[^.?!]{0,30}(?-u:\b)(hacked|compromised|taken over|accessed by someone|emptied|drained|cleaned out)",
        r"(?i)(?-u:\b)(someone|somebody)(?-u:\b)[^.?!]{0,20}(?-u:\b)(is using|used|has used|logged in|took money|taken money|accessed|changed my)(?-u:\b)",
        r"(?i)(?-u:\b)(money|cash|funds|savings)(?-u:\b)[^.?!]{0,30}(?-u:\b)(is missing|are missing|missing|gone|disappeared|taken out|stolen|vanished)(?-u:\b)|(?-u:\b)(taken|stole|withdrawn) (money|cash|funds)(?-u:\b)[^.?!]{0,20}(?-u:\b)(from|out of) my(?-u:\b)|(?-u:\b)taken money out of my(?-u:\b)",
        r"(?i)(?-u:\b)(clicked|opened|tapped|followed)(?-u:\b)[^.?!]{0,40}(?-u:\b)(link|attachment|sms|text|email|message)(?-u:\b)[^.?!]{0,80}(?-u:\b)(entered|typed|gave|put in|filled|logged in|login|details|password|pin|card)",
        r"(?i)(?-u:\b)(fake|phishing|spoof|scam)(?-u:\b)[^.?!]{0,30}(?-u:\b)(website|site|page|link|app|text|email|call)(?-u:\b)[^.?!]{0,40}(?-u:\b)(entered|typed|gave|put in|logged in|clicked)|(?-u:\b)(entered|typed|gave|put)(?-u:\b)[^.?!]{0,40}(?-u:\b)(fake|phishing|spoof)(?-u:\b)",
        r"(?i)(?-u:\b)(someone|somebody|a (man|woman|guy|lady|caller|stranger))(?-u:\b)[^.?!]{0,40}(?-u:\b)(is |was |keeps? )?(still )?(on the (phone|line)|calling me|asking (me )?for|asked (me )?for|wants? me to|told me to|made me|threaten)",
        r"(?i)(?-u:\b)(told|asked|instructed|made)(?-u:\b)[^.?!]{0,10}(?-u:\b)to (buy|purchase|get)(?-u:\b)[^.?!]{0,10}(?-u:\b)(gift|itunes|apple|google play|steam|prepaid) cards",
        r"(?i)(?-u:\b)(remote access|anydesk|teamviewer|screen ?shar(e|ing)|made me install|install an app|installed an app)(?-u:\b)",
        r"(?i)(?-u:\b)(money mule|launder|laundering)(?-u:\b)[^.?!]{0,40}(?-u:\b)(me|my|i)(?-u:\b)",
        r"(?i)(?-u:\b)(being|been|was|were|got|am|is|are)\s+(scammed|defrauded|targeted by (a )?scam|blackmailed|extorted)(?-u:\b)",
        r"(?i)(?-u:\b)password reset(?-u:\b)[^.?!]{0,40}(?-u:\b)(didn'?t|did not|never|not me)|(?-u:\b)no signal(?-u:\b)[^.?!]{0,60}(?-u:\b)(password|code|sim)",
        // Chinese.
        r"(自称|冒充|假冒|声称|说是|说他是|说她是|说自己是|所谓的?)[^。！？]{0,12}(银行|公安|警察|警官|检察|法院|公检法|客服|海关|税务|工作人员|反诈|风控|调查员|孙子|儿子|女儿)",
        r"(安全账户|安全帐户|保护账户|监管账户|核查账户|银行调查员)",
        r"(被骗|受骗|上当了|被诈骗|遭遇诈骗|遇到诈骗了|骗了我|被骗子|被盗刷|盗刷了|被盗号|被盗了|账户被盗|帐户被盗|网银被盗|被黑了|被入侵|涉嫌洗钱|杀猪盘|被冒用|被人骗|是诈骗|觉得是诈骗|像是诈骗)",
        r"(验证码|密码|动态码|卡号|银行卡信息|CVV|短信码|登录密码)[^。！？]{0,12}(给了|告诉了|发给了|报给了|念给|给对方|给他|给她|透露|泄露|输入|输了|填了)",
        r"(给了|告诉了|发给了|报给了|念给了?|透露了?|泄露了?|输了|填了)[^。！？]{0,12}(验证码|密码|动态码|卡号|银行卡信息|CVV|短信码)",
        r"(不是我|我没有?|并非本人|非本人|陌生|可疑|不明|不认识的?)[^。！？]{0,10}(交易|扣款|消费|转账|登录|支出|刷卡|取款|登入)",
        r"(交易|扣款|消费|转账|登录|支出|刷卡|取款)[^。！？]{0,10}(不是我|不是本人|非本人|我没有?做|我不认识|不明)",
        r"(有人|别人|陌生人)[^。！？]{0,10}(在用我的|用我的卡|盗用|登录了?我的|改了我的|转走|在国外用)",
        r"(点了|点击了?|打开了?)[^。！？]{0,20}(链接|短信|网址|附件)[^。！？]{0,30}(输入|填了|登录|填写|账号|密码)",
        r"(假的?|钓鱼|仿冒)[^。！？]{0,10}(网站|网银|链接|App|APP|短信)[^。！？]{0,20}(输了?|填了?|登录)",
        r"(远程|共享屏幕|屏幕共享|下载了?[^。！？]{0,10}(软件|APP|app))",
        r"(补办了?手机卡|手机卡被补办|SIM卡被|没信号[^。！？]{0,30}(密码|验证码))",
        r"(转|汇|打)[^。！？]{0,8}(钱|款)[^。！？]{0,30}(拉黑|联系不上|失联|不回|骗|投资|网友|男友|女友|警察|公安|签证|网恋)",
        r"(网恋|网友|交友)[^。！？]{0,20}(打钱|转钱|汇钱|转账|借钱)",
        r"(保证|承诺|稳赚)[^。！？]{0,20}(收益|回报|利润)[^。！？]{0,20}(提不了现|取不出|拿不回|联系不上|跑路)",
        r"(买礼品卡|买游戏卡|买充值卡)[^。！？]{0,20}(罚款|交税|缴费|还款)",
        r"(现在|正在)[^。！？]{0,10}(有人|对方)[^。！？]{0,16}(让我|要我|叫我)[^。！？]{0,10}(转账|汇款|打钱|取现|告诉)",
        r"(取了?现金|取钱)[^。！？]{0,10}(交给|给了?)[^。！？]{0,6}(快递员|陌生人|上门)",
    ])
});

static LOST_CARD: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)(got|was|been|i was|we were) (pickpocketed|mugged|robbed)(?-u:\b)|(?-u:\b)card'?s? (is )?gone(?-u:\b)|(?-u:\b)(grabbed|snatched|swiped|took) my(?-u:\b)",
        r"(被拿走|顺走了?|遗落|拎走|偷走|进贼|小偷|扒手)|(钱夹|钱包|卡包|卡套)[^。！？]{0,4}(掉了|丢了|没了)",
        &format!(
            r"(?i)(?-u:\b)(lost|misplaced|can'?t find|cannot find|can not find|left|dropped)\s+(both\s+|all\s+)?(of\s+)?(my|our|the|his|her)\s+(\w+\s+){{0,2}}{CARDS}(?-u:\b)"
        ),
        &format!(
            r"(?i)(?-u:\b)(my|our|his|her)(?-u:\b)[^.?!]{{0,20}}(?-u:\b){CARDS}(?-u:\b)[^.?!]{{0,30}}(?-u:\b)(stolen|nicked|pinched|taken|robbed|snatched|lost|missing|gone|swallowed|retained|eaten|kept|went missing)(?-u:\b)"
        ),
        &format!(r"(?i)^\s*{CARDS}\s+(was\s+|got\s+|has been\s+)?(stolen|lost|nicked|taken|missing)(?-u:\b)"),
        r"(?i)(?-u:\b)(stole|nicked|pinched|snatched|took|robbed|pickpocketed|mugged)(?-u:\b)[^.?!]{0,30}(?-u:\b)(my|our|me)(?-u:\b)",
        r"(?i)(?-u:\b)(i|we)(?-u:\b)[^.?!]{0,10}(?-u:\b)(was|were|got|have been|'ve been|been)\s+(robbed|mugged|pickpocketed|burgled)(?-u:\b)",
        r"(?i)(?-u:\b)(atm|cash machine|machine)(?-u:\b)[^.?!]{0,20}(?-u:\b)(ate|swallowed|kept|retained|took|eaten|didn'?t give back|did not return)(?-u:\b)",
        r"(?i)(?-u:\b)(card)(?-u:\b)[^.?!]{0,20}(?-u:\b)(swallowed|retained|eaten|stuck in)(?-u:\b)",
        r"(?i)(?-u:\b)can'?t find (my|our)(?-u:\b)[^.?!]{0,15}(?-u:\b)(card|wallet|purse)|(?-u:\b)where('s| is) my (card|wallet)(?-u:\b)|(?-u:\b)my (card|wallet) is missing(?-u:\b)|(?-u:\b)I'?ve lost my(?-u:\b)",
        r"(?i)(?-u:\b)(stolen|lost) (card|wallet|purse)(?-u:\b)[^.?!]{0,30}(?-u:\b)(cancel|block|report|freeze|lock)(?-u:\b)|(?-u:\b)(cancel|block|freeze|lock)(?-u:\b)[^.?!]{0,20}(?-u:\b)(it|card)(?-u:\b)[^.?!]{0,20}(?-u:\b)(stolen|lost)(?-u:\b)",
        // Chinese.
        r"(钱包|卡|银行卡|信用卡|借记卡|储蓄卡|手机|包)[^。！？，,]{0,8}(丢了|丢失了|被偷了?|被偷走了?|被盗了?|被抢了?|不见了|找不到了?|找不回来?了?|落在|掉了|掉在|被吞了?|遗失了|被扒|没了)",
        r"(丢了|丢失了|被偷了?|被盗了?|被抢了?|不见了|找不到|弄丢了?|遗失了|掉了|把卡掉)[^。！？]{0,6}(钱包|卡|银行卡|信用卡|借记卡|储蓄卡|手机)",
        r"(ATM|提款机|取款机)[^。！？]{0,10}(吞卡|吞了|没吐|不退卡|卡住)",
        r"(吞卡|被偷|被扒|遭窃|被抢劫|被人偷)",
    ])
});

static COMPLAINT: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)grievance(?-u:\b)|(?-u:\b)(official|formal|officially|formally)(?-u:\b)[^.?!]{0,25}(?-u:\b)(complaint|grievance|objection|record|recorded)(?-u:\b)|(?-u:\b)complaints? (team|unit|department)(?-u:\b)|(?-u:\b)dissatisf(ied|action)(?-u:\b)|(?-u:\b)(on record|on file)(?-u:\b)|(?-u:\b)(raise|take) (it|this) (formally|further)(?-u:\b)|(?-u:\b)registering my objection(?-u:\b)|(?-u:\b)not good enough(?-u:\b)|(?-u:\b)ignored (three|two|\d+|my|all)(?-u:\b)[^.?!]{0,20}(?-u:\b)(emails|calls|letters|messages)|(?-u:\b)unhappy customer(?-u:\b)|(?-u:\b)fed up(?-u:\b)",
        r"(给我一个说法|上级部门|向你们[^。！？]{0,6}反映|正式的?申诉|申诉专员|告你们|记录在案|太离谱|不合理)",
        r"(?i)(?-u:\b)(i|we)('d| would| want| wanna| need| am going| 'm going| wish| have| intend)?(?-u:\b)[^.?!]{0,20}(?-u:\b)(complain|complaint|make a complaint|file a complaint|lodge a complaint|raise a complaint|formal complaint)(?-u:\b)",
        r"(?i)(?-u:\b)(file|lodge|raise|make|submit|open|register|escalate|escalated)(?-u:\b)[^.?!]{0,20}(?-u:\b)(a |my |an |as a )?(formal |official )?(complaint|grievance)(?-u:\b)",
        r"(?i)^\s*complaint\s*[:：-]",
        r"(?i)(?-u:\b)(this is|it'?s|that'?s|you are|you'?re|your (service|staff|bank|app|branch) (is|are|was|were))(?-u:\b)[^.?!]{0,20}(?-u:\b)(unacceptable|disgraceful|appalling|outrageous|ridiculous|a joke|disgusting|terrible|awful|useless|pathetic|worst)",
        r"(?i)(?-u:\b)(report|reporting)(?-u:\b)[^.?!]{0,20}(?-u:\b)(you|your bank|this bank|them)(?-u:\b)[^.?!]{0,20}(?-u:\b)(to|with)(?-u:\b)[^.?!]{0,10}(?-u:\b)(ombudsman|regulator|authority|hkma|monetary authority|financial)",
        r"(?i)(?-u:\b)(very|extremely|really|so|deeply|totally|completely)\s+(unhappy|dissatisfied|disappointed|angry|upset|furious|annoyed|fed up)(?-u:\b)",
        r"(?i)(?-u:\b)(staff|teller|employee|agent|banker|manager|advisor|adviser|person|cashier|guard)(?-u:\b)[^.?!]{0,40}(?-u:\b)(rude|unhelpful|disrespectful|shouted|yelled|insulted|ignored (me|us)|treated (me|us|my)|racist|discriminat|laughed at)",
        r"(?i)(?-u:\b)(i want|i demand|i expect|i need|i deserve)(?-u:\b)[^.?!]{0,20}(?-u:\b)(compensation|an apology|my money back|a refund|someone to be held accountable)(?-u:\b)",
        r"(?i)(?-u:\b)(nobody|no one|noone)(?-u:\b)[^.?!]{0,30}(?-u:\b)(fix|fixes|fixed|replied|responded|called back|helped|apologi[sz]ed|cares)(?-u:\b)|(?-u:\b)for (a|two|three|\d+) (week|weeks|month|months)(?-u:\b)[^.?!]{0,30}(?-u:\b)(still|nobody|no one|no reply|no response)",
        // Chinese.
        r"(投诉|申诉|举报你们|告你们|曝光你们)",
        r"(服务|态度|柜员|员工|客服|职员|经理|保安)[^。！？]{0,12}(太差|很差|恶劣|太烂|极差|差劲|不耐烦|粗鲁|无礼|骂|冷漠|嘲笑)",
        r"(太不像话|忍无可忍|非常不满|很不满意|极其不满|强烈不满|要求赔偿|要求道歉|讨个说法|给个说法|太过分|气死|没人管|没人处理|没人理)",
    ])
});

static VULNERABLE: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)better off gone(?-u:\b)|(?-u:\b)what'?s the point(?-u:\b)|(?-u:\b)(brain|head) injury(?-u:\b)|(?-u:\b)learning (difficult|disabilit)|(?-u:\b)confused with numbers(?-u:\b)|(?-u:\b)frightens me(?-u:\b)|(?-u:\b)i'?m (8\d|9\d)(?-u:\b)",
        r"(葬礼|一了百了|受过伤|糊涂|晚期|病人|都在哭|还款跟不上|跟不上还款)",
        r"(?i)(?-u:\b)(kill myself|end my life|ending it all|end it all|suicid|self[- ]harm|want to die|don'?t want to (live|be here)|no reason to live|better off dead|can'?t go on|hurt myself|not worth living|don'?t see the point)",
        r"(?i)(?-u:\b)(lost my job|lost our jobs?|laid off|made redundant|been fired|got fired|unemployed|out of work|lost (my|our) income|no income|can'?t work|business (collapsed|failed|went under)|lose the house|lose our home)(?-u:\b)",
        r"(?i)(?-u:\b)(can'?t|cannot|can not|unable to|struggling to|won'?t be able to|no way to|not able to)\s+(afford|pay|make|keep up|repay|cover|meet)(?-u:\b)[^.?!]{0,40}(?-u:\b)(payments?|repayments?|bills?|mortgage|loan|rent|card|debts?|instal?ments?|minimum|food)",
        r"(?i)(?-u:\b)(in|drowning in|buried in|crushed by|overwhelmed by|with all this|so much)\s+(so much |huge |serious |this )?(debt|arrears)(?-u:\b)|(?-u:\b)(financial|money) (hardship|difficult|difficulty|difficulties|trouble|problems|stress|worries)(?-u:\b)|(?-u:\b)struggling with (money|debt|bills)(?-u:\b)|(?-u:\b)behind on(?-u:\b)[^.?!]{0,20}(?-u:\b)(payments?|repayments?|bills|mortgage|rent)(?-u:\b)|(?-u:\b)missed (all )?(my|our) (payments?|repayments?)(?-u:\b)",
        r"(?i)(?-u:\b)(passed away|died|death of|bereave|widow|funeral|lost my (husband|wife|mother|father|mum|mom|dad|son|daughter|partner|parent)|my late (husband|wife|father|mother))(?-u:\b)",
        r"(?i)(?-u:\b)(dementia|alzheimer|cognitive|diagnosed|cancer|terminal|hospitali[sz]ed|in hospital|disabled|disability|mental health|depress|anxiety|panic attack|breakdown|chemo|stroke|carer|partially sighted|blind|deaf|hard of hearing|visually impaired)",
        r"(?i)(?-u:\b)(desperate|hopeless|at my wit'?s end|can'?t cope|cannot cope|can cope|falling apart|breaking down|can'?t sleep|cannot sleep|crying|terrified|scared for|scared of (him|her)|panicking|making me ill|no money left|kids to feed|can'?t afford food)(?-u:\b)",
        r"(?i)(?-u:\b)(domestic (abuse|violence)|abusive (partner|husband|wife)|controlling (partner|husband|wife)|controls (all )?my money|coerc|financial abuse|being abused|he hits me|she hits me)",
        r"(?i)(?-u:\b)(elderly|old|aging|ageing|vulnerable)(?-u:\b)[^.?!]{0,20}(?-u:\b)(mother|father|mum|mom|dad|parent|grandmother|grandfather|relative)(?-u:\b)[^.?!]{0,60}(?-u:\b)(confused|can'?t manage|taken advantage|exploit|memory|help managing|power of attorney)",
        // Chinese.
        r"(不想活|活不下去|活着没意思|轻生|自杀|寻死|想死|了结自己|结束生命|跳楼)",
        r"(失业|被裁|裁员|下岗|没了工作|丢了工作|没有收入|断了收入|收入没了|生意倒闭|倒闭了|保不住)",
        r"(还不上|还不起|付不起|交不起|吃不起|拿不出|无力偿还|无法偿还|还款困难|还不了|欠了很多|债务缠身|负债累累|债务太多|拖欠|逾期了?好几|错过了?[^。！？]{0,4}还款|一分钱都没有)",
        r"(去世|过世|离世|病逝|老伴走了|丧事|丧葬|遗产)",
        r"(压力(好|很|太|非常)?大|睡不着|崩溃|绝望|焦虑|抑郁|走投无路|撑不下去|坚持多久|不知道怎么办才好|好无助|很害怕|我很慌|很慌)",
        r"(老年痴呆|阿尔茨海默|认知障碍|失智|确诊|查出癌|癌症|住院|残疾|重病|化疗|中风|视力不好|看不清|听不清|照顾者)",
        r"(家暴|家庭暴力|被控制|控制了我|被逼|被威胁)",
    ])
});

static HUMAN_REQUEST: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)(living|breathing|actual|real) (person|human)(?-u:\b)|(?-u:\b)staff member(?-u:\b)|(?-u:\b)is anyone (actually )?there(?-u:\b)|(?-u:\b)step aside(?-u:\b)|(?-u:\b)call ?back from(?-u:\b)",
        r"(?i)(?-u:\b)(connected|connect|put|pass|passed|transfer|transferred)(?-u:\b)[^.?!]{0,10}(?-u:\b)(me |us )?(with|to|through to)\s+(one of your|someone|somebody|an?)(?-u:\b)[^.?!]{0,25}(?-u:\b)(advisers?|advisors?|team|staff|colleagues?|agents?|people|works)(?-u:\b)",
        r"(换个人|换人来|接线员|叫一位|专人|客服同事|人工来|真人来)|(叫|找|请|让)[^。！？]{0,6}(工作人员|同事|专人|接线员|客服人员)",
        r"(?i)(?-u:\b)(speak|talk|chat)\s+(to|with)\s+(a\s+|an\s+|some\s*one\s*|somebody\s*|your\s+)?(real\s+|actual\s+|live\s+|proper\s+)?(human|person|agent|advisor|adviser|representative|staff|someone|somebody|operator|manager|supervisor|people|being)(?-u:\b)",
        r"(?i)(?-u:\b)(get|give|connect|transfer|put|pass|send|escalate|hand)\s+(me\s+|this\s+(chat\s+|conversation\s+)?|us\s+)?(to\s+|through\s+to\s+|with\s+|over\s+to\s+|over\s+)?(a\s+|an\s+|your\s+|the\s+)?(real\s+|live\s+|actual\s+)?(human|person|agent|representative|operator|advisor|adviser|manager|supervisor|staff|member of staff|someone real|someone|customer service|contact cent(re|er)|team)(?-u:\b)",
        r"(?i)(?-u:\b)(human|live|real)\s+(agent|person|representative|support|help|being|staff)(?-u:\b)|(?-u:\b)member of staff(?-u:\b)",
        r"(?i)^\s*(agent|human|operator|representative|person)\s*(please|pls|plz|now)?[.!?]*\s*$",
        r"(?i)(?-u:\b)(not|no|don'?t want|stop)\s+(to talk to\s+)?(a\s+|the\s+|this\s+|talking to a\s+)?(bot|robot|machine|ai|chatbot|computer)(?-u:\b)",
        r"(?i)(?-u:\b)(is there|are there|can i get|i need|i want|i'd like)(?-u:\b)[^.?!]{0,15}(?-u:\b)(a real person|a human|someone real|an actual person|a person|a human being|human help|a live agent|a staff member)\s*(to (talk|speak|chat)|please|pls|i can|who|now|[?!.]|$)",
        r"(?i)(?-u:\b)call me back(?-u:\b)|(?-u:\b)(want|need|like) a call ?back(?-u:\b)|(?-u:\b)have someone call me(?-u:\b)",
        // Chinese.
        r"(转|找|要|接|换)\s*(人工|真人|客服人员|人工客服|工作人员|经理|客户经理|坐席|客服专员)",
        r"^\s*(人工|人工客服|真人客服|真人|人工服务)\s*[!！。]?\s*$",
        r"(和|跟|与|同)\s*(真人|人工|客服人员|工作人员|活人|你们的员工|员工)\s*(直接)?(说|谈|聊|沟通|对话|讲|通话)",
        r"(不要|不想)(跟|和)?(机器人|AI|人工智能|自动回复)",
        r"(真人|活人|人工坐席|人工客服)",
        r"(接通|转接|转给)[^。！？]{0,8}(客服|人工|坐席|专员|工作人员)",
        r"(回电|给我打电话|打电话给我|回个电话|联系我)",
    ])
});

static ACCOUNT_SPECIFIC: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)my(?-u:\b)[^.?!]{0,30}(?-u:\b)(payment|transfer|refund)(?-u:\b)[^.?!]{0,40}(?-u:\b)(hasn'?t reached|not reached|where is it|reached)|(?-u:\b)(land|landed|arrive|arrived|reach|reached|show|showed|shown) (up )?(in|on) my (account|card)(?-u:\b)",
        r"(?i)(?-u:\b)(card|payment)(?-u:\b)[^.?!]{0,10}(?-u:\b)(got |was )?(rejected|declined|refused)(?-u:\b)[^.?!]{0,40}(?-u:\b)(why|ago|just now|today)",
        r"(?i)(?-u:\b)(switch|change|move|turn)(?-u:\b)[^.?!]{0,10}(?-u:\b)my(?-u:\b)[^.?!]{0,30}(?-u:\b)(statements?|notifications|alerts)(?-u:\b)|(?-u:\b)(outstanding|amount|balance) (amount )?on my(?-u:\b)|(?-u:\b)when my(?-u:\b)[^.?!]{0,30}(?-u:\b)(matures|maturity|is due|expires|arrives)",
        r"(还没收到|钱去哪了|刷卡失败|被拒[^。！？]{0,6}什么原因|失败[^。！？]{0,4}什么原因|我的[^。！？]{0,10}有进展|(现在|目前|我)[^。！？]{0,6}(欠款多少|欠多少)|到我的?(账上|账户|卡上)了?吗)",
        r"(?i)(?-u:\b)(what'?s|what is|how much is|tell me|check|show me|give me)(?-u:\b)[^.?!]{0,10}(?-u:\b)(my|our)(?-u:\b)[^.?!]{0,15}(?-u:\b)(balance|available credit|credit limit|outstanding|statement balance|minimum payment|points balance)(?-u:\b)",
        r"(?i)(?-u:\b)how much (money )?(do i have|is (left )?in my|have i got|i have left|is left|do i owe|i owe)(?-u:\b)|(?-u:\b)how much interest (have )?i (earned|paid)(?-u:\b)|(?-u:\b)how many(?-u:\b)[^.?!]{0,30}(?-u:\b)have i (used|made|got)(?-u:\b)",
        r"(?i)(?-u:\b)why(?-u:\b)[^.?!]{0,30}(?-u:\b)(was i|am i|have i been|did you|did i get|were we|is my|was my|has my|did my|is there)(?-u:\b)",
        r"(?i)(?-u:\b)(charge|fee|debit|payment|transaction|deduction)(?-u:\b)[^.?!]{0,20}(?-u:\b)(on|from|in|to)\s+(my|our)\s+(account|card|statement)(?-u:\b)",
        r"(?i)(?-u:\b)(my|our)\s+(\w+\s+){0,2}(card|payment|transfer|transaction|application|account|bill|salary|deposit)(?-u:\b)[^.?!]{0,40}(?-u:\b)(declined|rejected|refused|blocked|frozen|locked|suspended|pending|stuck|on hold|unpaid|not (gone through|arrived|received|showing)|hasn'?t (arrived|gone through|come through)|didn'?t (go through|arrive)|any decision|shows as)",
        r"(?i)(?-u:\b)(status|progress|update)(?-u:\b)[^.?!]{0,15}(?-u:\b)(of|on)\s+(my|our)(?-u:\b)[^.?!]{0,20}(?-u:\b)(application|transfer|payment|loan|mortgage|claim|dispute|card|complaint|case|request|refund)(?-u:\b)",
        r"(?i)(?-u:\b)(has|did|have|is|was)(?-u:\b)[^.?!]{0,10}(?-u:\b)(my|our|the)(?-u:\b)[^.?!]{0,25}(?-u:\b)(transfer|payment|salary|refund|application|deposit|remittance|card|fee)(?-u:\b)[^.?!]{0,30}(?-u:\b)(arrived|gone through|been (approved|processed|received|sent|credited)|come in|come through|approved|processed|cleared|landed|dispatched|shipped|taken|charged|deducted)",
        r"(?i)(?-u:\b)(when)(?-u:\b)[^.?!]{0,10}(?-u:\b)(is|will|does)(?-u:\b)[^.?!]{0,10}(?-u:\b)(my|our)(?-u:\b)[^.?!]{0,30}(?-u:\b)(due|arrive|come|be (paid|credited|processed|approved))",
        r"(?i)(?-u:\b)(change|update|correct|increase|raise|lower|reduce)\s+(my|our|the)\s+(registered\s+)?(address|phone number|mobile number|number|email|e-mail|name|contact details|details|credit limit|limit)(?-u:\b)",
        r"(?i)(?-u:\b)(can you|could you|please|pls)(?-u:\b)[^.?!]{0,20}(?-u:\b)(change|update|increase|raise|lower|close|cancel|unfreeze|unlock|unblock|reactivate|check|waive|refund|switch)(?-u:\b)[^.?!]{0,25}(?-u:\b)(my|our)\s+(\w+\s+){0,2}(account|card|limit|balance|statements?|details|address|number|email|loan|mortgage|application|transfer|payment|fee|pin)(?-u:\b)",
        r"(?i)(?-u:\b)(close|cancel|unfreeze|unlock|unblock|reactivate)\s+(my|our)\s+(account|card|loan)(?-u:\b)|(?-u:\b)show me my(?-u:\b)|(?-u:\b)my last \d+ transactions(?-u:\b)",
        // Chinese.
        r"(我的|我)[^。！？]{0,6}(余额|还有多少钱|剩多少|可用额度|欠款|积分还有|要还多少|还多少)|(卡里|卡上)还有多少",
        r"(查|看|告诉我|查询)[^。！？]{0,3}(一下)?我的?[^。！？]{0,6}(余额|账单金额|还款额|交易记录|积分|交易|账单)",
        r"(为什么|为啥|怎么)[^。！？]{0,12}(扣了?我|扣款|被扣|收了?我|扣费|被拒|拒绝了?|冻结|被锁|锁了|停用|封了|多扣|被降|降了|显示未还|还显示)",
        r"(我的|我那笔|我这笔|我的那笔)[^。！？]{0,4}(转账|汇款|申请|贷款|款项|退款|工资|交易|定期存款|存款)[^。！？]{0,10}(到账|到了|通过|批了|进度|怎么样了|处理|还没|没到|卡住|审批|利息)",
        r"(到账了?没|到账了吗|扣了吗|扣了没|有结果了吗|到哪一步|寄到哪|什么时候扣款|什么时候到)",
        r"(进度|状态)[^。！？]{0,6}(我的)?[^。！？]{0,6}(申请|转账|退款|贷款)|(申请|转账|退款|贷款)[^。！？]{0,6}(进度|状态)",
        r"(帮我|给我|把我的|我的)[^。！？]{0,4}(修改|更改|更新|改一下|换一下|提高|调高|降低)[^。！？]{0,8}(地址|电话|手机号|邮箱|姓名|资料|额度)",
        r"帮我[^。！？]{0,10}(改|换|提高|调高|查|开通|取消|注销|解冻|解锁|激活|退)",
        r"(注销|解冻|解锁|激活)[^。！？]{0,4}我的[^。！？]{0,4}(账户|帐户|卡)",
        r"(这个月|本月|上个月)[^。！？]{0,6}我[^。！？]{0,10}(几次|多少)|(账户|帐户)里有一笔",
    ])
});

/// General questions about a topic ("what is a safe-account scam?", "if my card is ever
/// stolen…", "投诉流程是怎样的"): for the knowledge base, unless the message also says it is
/// happening to the customer now.
static GENERAL_QUESTION: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)(if i ever|if (a|my|the) card (ever )?(gets?|got|was|is|were)|ever (lose|got stolen|gets? stolen|misplace)|in general|generally|just curious|curious|suppose|hypothetically|what happens if|what should i do (if|to)|what is|what's (a|an|the)|what are|how (does|do|would|should|can) (a|an|the|you|people|one|i (spot|know|protect|avoid|report|make|file|lodge|complain|recogni[sz]e))|explain|tell me about|i heard (about|that|of|on|there)|i read (an|a|about|that|the news|online|somewhere)|warning signs|difference between|how long does|is there|are there|which number|where (do|can|should) i|if (you|i|we|someone|somebody|my|a|the|it)|can i (nominate|set up|add|register|name)|protect (myself|customers|me)|keep (my|your) card safe|how to|ways to|tips|(complaints?|claims?) process|the process)(?-u:\b)",
        r"(假如|假设|如果|万一|要是|一般|什么是|有哪些|怎么防|如何防|怎样防|防止|防范|识别|辨别|分辨|讲讲|介绍一下|流程|区别|不同|听说|了解一下|特征|套路|是什么|多久|怎么办理|哪个机构|可以找|论文|宣传)",
    ])
});

/// The customer's own account or card.
static FIRST_PERSON: LazyLock<RegexSet> =
    LazyLock::new(|| set(&[r"(?i)(?-u:\b)(my|our)(?-u:\b)", r"我的|我这|我那|我[^们]"]));

/// What says it is happening now, to the customer.
static HAPPENING_NOW: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)just (now|got|been|had|happened|realised|realized|noticed|saw|received|lost|sent|paid|transferred|gave|read|clicked|found|checked)(?-u:\b)|(?-u:\b)(right now|today|yesterday|this morning|tonight|last night|hours? ago|minutes? ago|still|already|i think i|i've been|i have been|we'?ve been|someone (is|has|just)|they (took|have|stole))(?-u:\b)|(?-u:\b)(was|were|got|has been|have been)\s+(stolen|taken|hacked|scammed|lost|swallowed)(?-u:\b)",
        r"(刚|刚才|今天|昨天|现在|正在|已经|还在|我的[^。！？]{0,6}被|我要(走|投诉|申诉|告)|我就去)",
    ])
});

static ADVICE: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)(?-u:\b)should i(?-u:\b)[^.?!]{0,40}(?-u:\b)(invest|buy|sell|put (my|our) (money|savings)|stocks?|shares?|funds?|crypto|bitcoin|gold|bonds?|property|etf)(?-u:\b)",
        r"(?i)(?-u:\b)(which|what)(?-u:\b)[^.?!]{0,20}(?-u:\b)(stocks?|shares?|funds?|crypto|coins?|investments?|etfs?|bonds?)(?-u:\b)[^.?!]{0,20}(?-u:\b)(should|would you|do you recommend|to buy|is best|are best|will go up)(?-u:\b)",
        r"(?i)(?-u:\b)(investment|financial|legal|tax|pension) (advice|recommendation|tips?|planning advice)(?-u:\b)",
        r"(?i)(?-u:\b)(is it (a )?(good|right|smart|wise) (time|idea|moment) to)(?-u:\b)[^.?!]{0,30}(?-u:\b)(invest|buy|sell|convert)(?-u:\b)",
        r"(?i)(?-u:\b)(avoid|evade|dodge|reduce|minimi[sz]e|not pay)(?-u:\b)[^.?!]{0,15}(?-u:\b)(tax|taxes|stamp duty|inheritance tax)(?-u:\b)",
        r"(?i)(?-u:\b)(can|should) i (sue|take legal action|go to court)(?-u:\b)|(?-u:\b)(is it legal|legally)(?-u:\b)[^.?!]{0,30}(?-u:\b)(for me|can i|should i)(?-u:\b)",
        r"(?i)(?-u:\b)(will|is)(?-u:\b)[^.?!]{0,20}(?-u:\b)(the )?(exchange rate|hvd|dollar|usd|rmb|stock market|gold price|interest rates?)(?-u:\b)[^.?!]{0,20}(?-u:\b)(go up|go down|rise|fall|drop|increase|decrease)(?-u:\b)",
        // Chinese.
        r"(投资建议|理财建议|法律建议|法律意见|税务建议|税务筹划)",
        r"(该|应该|要不要|值不值得|适不适合|推荐)[^。！？]{0,10}(买|卖|投资|入手|炒)[^。！？]{0,6}(股票|基金|黄金|比特币|加密货币|外汇|债券|房|美元|港币|理财)",
        r"(该不该|应不应该|要不要|值不值得)(投资|理财|炒股)",
        r"(哪只|哪个|哪支|什么)(股票|基金|理财产品|币)[^。！？]{0,8}(好|能涨|会涨|值得|推荐|赚钱)",
        r"(避税|逃税|少交税|少缴税|不交税)",
        r"(能不能|可以|应该)[^。！？]{0,6}(起诉|告|打官司)",
        r"(汇率|股市|金价|利率)[^。！？]{0,10}(会涨|会跌|会不会涨|会不会跌|走势|涨还是跌)",
    ])
});

/// Questions about how to do something ("how can I check my balance?") are for the
/// knowledge base, even when they mention the customer's own account.
static HOW_TO: LazyLock<RegexSet> = LazyLock::new(|| {
    set(&[
        r"(?i)^\s*(how (can|do|could|would|should|to) (i|we|you|one)|how to|where (can|do|could) (i|we)|can i|could i|is it possible|is there a way|what'?s the (best |quickest |easiest )?way|what is the (best |quickest |easiest )?way|does the app|do you)(?-u:\b)",
        r"(如何|怎样|怎么|在哪|哪里可以|可以在|能不能|能否|能)[^。！？]{0,8}(查|看|查询|修改|更改|改|注销|解锁|激活)",
        r"(?i)(?-u:\b)where (do|can|should) (i|we) (forward|report|send)(?-u:\b)",
    ])
});

/// Returns the handoff reason when the message needs a person rather than the bot. The
/// order matters when several apply: fraud first (it raises a risk alert), then a lost
/// card, a customer in distress, a complaint, an explicit request, and account questions.
pub fn escalation_reason(message: &str) -> Option<HandoffReason> {
    [
        (&*FRAUD, HandoffReason::FraudOrScam),
        (&*LOST_CARD, HandoffReason::LostCard),
        (&*VULNERABLE, HandoffReason::VulnerableCustomer),
        (&*COMPLAINT, HandoffReason::Complaint),
        (&*HUMAN_REQUEST, HandoffReason::CustomerRequest),
        (&*ACCOUNT_SPECIFIC, HandoffReason::AccountSpecific),
    ]
    .into_iter()
    .find(|(patterns, reason)| {
        if !patterns.is_match(message) {
            return false;
        }
        match reason {
            // "How can I check my balance?" is a question for the knowledge base.
            HandoffReason::AccountSpecific => {
                !HOW_TO.is_match(message)
                    && (!GENERAL_QUESTION.is_match(message)
                        || HAPPENING_NOW.is_match(message)
                        || FIRST_PERSON.is_match(message))
            }
            // "What is a safe-account scam?" too, unless it is happening now.
            HandoffReason::FraudOrScam | HandoffReason::LostCard | HandoffReason::Complaint => {
                !GENERAL_QUESTION.is_match(message) || HAPPENING_NOW.is_match(message)
            }
            _ => true,
        }
    })
    .map(|(_, reason)| reason)
}

/// True when the message asks for investment, legal or tax advice, which the bank's
/// assistant may not give.
pub fn asks_for_advice(message: &str) -> bool {
    ADVICE.is_match(message)
}

/// A short yes to the assistant's offer of a colleague ("yes please", "好的").
pub fn accepts_offer(message: &str) -> bool {
    static YES: LazyLock<RegexSet> = LazyLock::new(|| {
        set(&[
            r"(?i)^\s*(yes|yeah|yep|yup|sure|ok|okay|please|yes please|please do|go ahead|do it|that would be great|that'?d be great|connect me|yes connect me|y)(?-u:\b)[\s,.!]*(please|thanks|thank you|thx)?[\s.!]*$",
            r"^\s*(好|好的|好啊|可以|行|是的|是|嗯|麻烦了|麻烦你了|需要|要|请转|请帮我转)[\s,，。！!]*(谢谢|麻烦了)?[\s。！!]*$",
        ])
    });
    YES.is_match(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_examples_in_both_languages() {
        for (m, reason) in [
            ("Can I speak to a real person?", HandoffReason::CustomerRequest),
            ("转人工", HandoffReason::CustomerRequest),
            ("I think I've lost my debit card", HandoffReason::LostCard),
            ("钱包刚被偷了，卡都在里面", HandoffReason::LostCard),
            (
                "a man who said he was from the police told me to move my savings to a safe account",
                HandoffReason::FraudOrScam,
            ),
            ("有个自称公安的人要我转账到安全账户", HandoffReason::FraudOrScam),
            (
                "I want to make a formal complaint about your branch",
                HandoffReason::Complaint,
            ),
            ("你们的服务态度太差了，我要投诉", HandoffReason::Complaint),
            (
                "I lost my job and can't pay my credit card",
                HandoffReason::VulnerableCustomer,
            ),
            ("失业了，贷款还不上，压力好大", HandoffReason::VulnerableCustomer),
            ("what's my balance", HandoffReason::AccountSpecific),
            ("为什么扣了我50块", HandoffReason::AccountSpecific),
        ] {
            assert_eq!(escalation_reason(m), Some(reason), "{m}");
        }
    }

    #[test]
    fn questions_about_the_same_topics_do_not_escalate() {
        for m in [
            "What documents does a person need to open an account?",
            "how do I report a lost card?",
            "what's the fee for a replacement card?",
            "how do I spot a phishing text?",
            "what is your complaints process?",
            "how can I check my balance in the app?",
            "人工智能是什么意思",
            "信用卡丢失补卡要多少钱",
            "如何识别诈骗短信",
        ] {
            assert_eq!(escalation_reason(m), None, "{m}");
        }
    }

    #[test]
    fn advice_requests_are_recognised() {
        assert!(asks_for_advice("Should I invest my savings in gold now?"));
        assert!(asks_for_advice("我应该买哪只股票"));
        assert!(!asks_for_advice("What is the interest rate on the green time deposit?"));
    }

    #[test]
    fn a_short_yes_accepts_the_offer() {
        for m in ["yes please", "Yes", "ok thanks", "好的", "可以，谢谢"] {
            assert!(accepts_offer(m), "{m}");
        }
        for m in ["yes but what is the fee?", "no thanks", "好的，那利率是多少"] {
            assert!(!accepts_offer(m), "{m}");
        }
    }
}
