//! Knowledge insights (issue #16): `/v1/insights/...` on both audit stores, by role, each
//! read recorded; and the grouping of refused questions into topics on a fixture whose
//! topics are known.

use crate::app::{spawn_app_with, AppOptions, TestApp};
use crate::audit::databases;
use crate::helpers::{fixture, indexes, ingest_dir};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use teller::audit::{GapQuestion, StaffRole};
use teller::insights::{topics, Method, Period};

const ENDPOINTS: [&str; 4] = ["gaps", "feedback", "sources", "daily"];

fn period_today() -> String {
    let today = chrono::Utc::now().date_naive();
    format!("from={}&to={}", today, today.succ_opt().unwrap())
}

async fn rate(app: &TestApp, reply: &Value, rating: &str) {
    let id = reply["conversation_id"].as_str().unwrap();
    let message_id = reply["message_id"].as_str().unwrap();
    let response = app
        .client
        .post(format!(
            "{}/v1/conversations/{id}/messages/{message_id}/feedback",
            app.address
        ))
        .bearer_auth(reply["conversation_token"].as_str().unwrap())
        .json(&json!({ "rating": rating, "comment": "did not answer my question" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn insights_are_for_compliance_and_admin_tokens_and_every_read_is_recorded() {
    for (url, _dir) in databases("insights_roles").await {
        let app = spawn_app_with(AppOptions {
            database_url: Some(url),
            // The fixture documents date from January 2026: stale after 30 days.
            tweak: |s| s.stale_source_days = 30,
            ..Default::default()
        })
        .await;
        let approved = app.ask("What is the annual fee for the Gold card?").await;
        // Which of these the answer policy refuses is its business, not this test's: the
        // report must count exactly the refused ones.
        let mut travel = 0;
        for question in [
            "do you sell travel insurance for trips abroad?",
            "do you sell travel insurance for skiing trips?",
            "Does Lantern offer travel insurance for a holiday abroad?",
        ] {
            travel += u64::from(app.ask(question).await["mode"] == "refusal");
        }
        assert!(travel >= 2, "{travel} travel-insurance questions refused");
        // Refused as advice (a policy refusal) or for missing knowledge: only the latter is a
        // knowledge gap.
        let bitcoin_reply = app.ask("can I buy bitcoin here").await;
        let bitcoin_refusal = u64::from(bitcoin_reply["mode"] == "refusal");
        let bitcoin = u64::from(bitcoin_reply["handoff"]["reason"] == "missing_knowledge");
        let scam = app
            .ask("a man who said he was from your fraud team asked for my one-time code and I read it out to him")
            .await;
        assert_eq!(scam["mode"], "handoff");
        rate(&app, &approved, "down").await;

        let compliance = app.staff_token("carol", StaffRole::Compliance).await;
        let admin = app.staff_token("ada", StaffRole::Admin).await;
        let agent = app.staff_token("adam", StaffRole::Agent).await;
        let period = period_today();
        for endpoint in ENDPOINTS {
            let path = format!("/v1/insights/{endpoint}?{period}");
            let (status, body) = app.get(&path, None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("staff_token_required"))
            );
            let (status, body) = app.get(&path, Some(&agent)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("forbidden")),
                "{path}"
            );
            for token in [&compliance, &admin] {
                let (status, body) = app.get(&path, Some(token)).await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
            }
            let (status, body) = app
                .get(
                    &format!("/v1/insights/{endpoint}?from=2026-12-02&to=2026-12-01"),
                    Some(&admin),
                )
                .await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
            );
            let (status, body) = app.get(&format!("/v1/insights/{endpoint}"), Some(&admin)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_query"))
            );
        }
        let reads = app.audit_events("insights_read").await;
        assert_eq!(reads.len(), 8, "two roles times four reports");
        assert_eq!(reads[0]["actor"], "staff:carol");
        assert_eq!(reads[0]["payload"]["report"], "gaps");

        // The two travel-insurance questions are one topic, the largest; the scam handoff
        // and the bitcoin question are topics of their own.
        let (_, gaps) = app.get(&format!("/v1/insights/gaps?{period}"), Some(&compliance)).await;
        assert_eq!(gaps["questions"], travel + bitcoin + 1, "{gaps}");
        assert_eq!(gaps["method"], "terms");
        let top = &gaps["topics"][0];
        assert_eq!(top["count"], travel, "{gaps}");
        assert_eq!(top["refused"], travel);
        let terms: Vec<&str> = top["terms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(terms.contains(&"insurance") && terms.contains(&"travel"), "{terms:?}");
        assert_eq!(gaps["topics"].as_array().unwrap().len() as u64, 2 + bitcoin, "{gaps}");
        let handed: Vec<&Value> = gaps["topics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["handed_over"] == 1)
            .collect();
        assert_eq!(handed[0]["handoff_reasons"], json!({ "fraud_or_scam": 1 }));

        let (_, feedback) = app
            .get(&format!("/v1/insights/feedback?{period}"), Some(&compliance))
            .await;
        assert_eq!(feedback["rated_down"], 1, "{feedback}");
        assert_eq!(feedback["by_source"][0]["source_id"], "faq-basics-001");
        assert_eq!(
            feedback["by_source"][0]["answers"][0]["question"],
            "What is the annual fee for the Gold card?"
        );

        let (_, sources) = app.get(&format!("/v1/insights/sources?{period}"), Some(&admin)).await;
        let ids = |key: &str| -> BTreeSet<String> {
            sources[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["source_id"].as_str().unwrap().to_string())
                .collect()
        };
        assert!(!ids("never_cited").contains("faq-basics-001"), "{sources}");
        // Only English questions were asked: the Chinese guide was never cited.
        assert!(ids("never_cited").contains("doc-zh-guide"), "{sources}");
        assert!(ids("never_cited").len() < sources["indexed"].as_u64().unwrap() as usize);
        assert_eq!(
            ids("stale"),
            BTreeSet::from(["doc-guide".into(), "doc-zh-guide".into()]),
            "{sources}"
        );
        assert_eq!(sources["stale_after_days"], 30);

        let (_, daily) = app.get(&format!("/v1/insights/daily?{period}"), Some(&admin)).await;
        assert_eq!(daily["days"].as_array().unwrap().len(), 1, "{daily}");
        let totals = |key: &str| -> BTreeMap<String, u64> {
            daily[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["label"].as_str().unwrap().to_string(), s["total"].as_u64().unwrap()))
                .collect()
        };
        assert_eq!(totals("modes")["refusal"], travel + bitcoin_refusal, "{daily}");
        assert_eq!(totals("modes")["approved"], 1);
        assert_eq!(totals("handoff_reasons"), BTreeMap::from([("fraud_or_scam".into(), 1)]));
        assert_eq!(totals("risk_alerts"), BTreeMap::from([("fraud_or_scam".into(), 1)]));
    }
}

/// One line of `tests/fixtures/insights/gap-questions.jsonl`.
#[derive(serde::Deserialize)]
struct Labelled {
    topic: Option<String>,
    text: String,
}

#[tokio::test]
async fn each_topic_of_the_fixture_is_recovered_as_one_group() {
    let labelled: Vec<Labelled> = std::fs::read_to_string(fixture("insights/gap-questions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let questions: Vec<GapQuestion> = labelled
        .iter()
        .enumerate()
        .map(|(i, l)| GapQuestion {
            conversation_id: format!("c{i}"),
            turn: 1,
            question: l.text.clone(),
            mode: "refusal".into(),
            handoff_reason: Some("missing_knowledge".into()),
            created_at: "2026-11-02T10:00:00.000000Z".into(),
            retrieval: None,
        })
        .collect();
    let period = Period::parse("2026-11-01", "2026-12-01").unwrap();
    // Weighted by the test knowledge base's own term frequencies, as the server does.
    let test_index = indexes("insights_topics").await.remove(0);
    ingest_dir(&test_index.index, &fixture("kb"), false).await;
    test_index.index.refresh_vocabulary().await.unwrap();
    let sources = test_index.index.store.sources().await.unwrap();
    let report = topics::report(&period, &questions, &test_index.index, &sources).await;
    assert_eq!(report.method, Method::Terms);

    // The fixture topic of each example question, per reported topic.
    let topic_of: BTreeMap<&str, Option<&str>> =
        labelled.iter().map(|l| (l.text.as_str(), l.topic.as_deref())).collect();
    let wanted: BTreeSet<&str> = labelled.iter().filter_map(|l| l.topic.as_deref()).collect();
    let mut recovered = Vec::new();
    for topic in &wanted {
        let size = labelled.iter().filter(|l| l.topic.as_deref() == Some(topic)).count();
        // The group holding the topic's questions: exactly that many, none of another.
        let found = report.topics.iter().find(|t| {
            t.count as usize == size
                && t.conversations.iter().all(|c| {
                    let i: usize = c[1..].parse().unwrap();
                    labelled[i].topic.as_deref() == Some(topic)
                })
        });
        recovered.push((topic, found.map(|t| t.label.clone())));
    }
    let described: Vec<String> = report
        .topics
        .iter()
        .map(|t| {
            let labels: Vec<_> = t.examples.iter().map(|e| topic_of[e.as_str()]).collect();
            format!("{} ({}): {labels:?}", t.label, t.count)
        })
        .collect();
    assert!(
        recovered.iter().all(|(_, label)| label.is_some()),
        "recovered: {recovered:?}\ntopics: {described:#?}"
    );
    // Topics come largest first.
    let counts: Vec<u64> = report.topics.iter().map(|t| t.count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
}
