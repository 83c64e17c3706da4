//! The compliance and knowledge views of the staff console (issue #16) in real headless
//! Chromium: an officer finds a conversation by its handoff reason, reads its evidence,
//! verifies the chain and exports; the gaps page puts the refused topic first; an agent's
//! session is refused every one of these views.

use crate::app::spawn_app;
use crate::browser::{button, click, find, screenshots, sign_in_to_console, wait_for_text, Driver};
use fantoccini::{Client, Locator};
use serde_json::Value;
use teller::audit::StaffRole;
use tempfile::TempDir;

/// `fetch(path)` from the page (with its session cookie): the status and the body's first line.
async fn fetch_from_page(browser: &Client, path: &str) -> (u64, String) {
    let found = browser
        .execute_async(
            "const [path, done] = arguments;
             fetch(path, { credentials: 'same-origin' })
               .then(async (r) => done([r.status, (await r.text()).split('\\n')[0]]))
               .catch((e) => done([0, String(e)]));",
            vec![Value::String(path.to_string())],
        )
        .await
        .unwrap();
    (
        found[0].as_u64().unwrap(),
        found[1].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_compliance_officer_reviews_verifies_and_exports_in_the_browser_and_an_agent_is_refused() {
    let Some(driver) = Driver::start().await else {
        eprintln!("skipped: no chromedriver");
        return;
    };
    let _heavy = crate::helpers::heavy().await;
    let app = spawn_app().await;
    app.ask("What is the annual fee for the Gold card?").await;
    let mut travel = 0;
    for question in [
        "do you sell travel insurance for trips abroad?",
        "do you sell travel insurance for skiing trips?",
        "Does Lantern offer travel insurance for a holiday abroad?",
    ] {
        travel += usize::from(app.ask(question).await["mode"] == "refusal");
    }
    assert!(travel >= 2, "{travel} travel-insurance questions refused");
    let scam = app
        .ask("a man who said he was from your fraud team asked for my one-time code and I read it out to him")
        .await;
    assert_eq!(scam["handoff"]["reason"], "fraud_or_scam");
    let officer = app.staff_token("carol", StaffRole::Compliance).await;
    let agent = app.staff_token("adam", StaffRole::Agent).await;

    let profile = TempDir::new().unwrap();
    let browser = driver.browser(&profile).await;
    sign_in_to_console(&browser, &app.address, &officer).await;
    wait_for_text(&browser, "//h2[@id='review-title']", "Review").await;
    wait_for_text(&browser, "//p[@id='review-status']", "5 conversations").await;

    // Find the scam conversation by its handoff reason and open its evidence.
    find(&browser, "//select[@id='f-reason']/option[@value='fraud_or_scam']")
        .await
        .click()
        .await
        .unwrap();
    click(&browser, &button("Search")).await;
    wait_for_text(&browser, "//p[@id='review-status']", "1 conversations").await;
    click(&browser, "//ul[@id='results']/li[1]/button").await;
    wait_for_text(&browser, "//ol[@id='timeline']", "Evidence").await;
    let timeline = find(&browser, "//ol[@id='timeline']").await.text().await.unwrap();
    for expected in [
        "Customer",
        "one-time code",
        "Fraud or scam",
        "Templates",
        "Decision",
        "Latency",
    ] {
        assert!(timeline.contains(expected), "{expected:?} in {timeline}");
    }
    std::fs::write(
        screenshots().join("review-record.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // Back to the results: verify the chain and export the search's period.
    click(&browser, &button("Back to results")).await;
    click(&browser, &button("Verify now")).await;
    wait_for_text(&browser, "//p[@id='chain-status']", "Intact").await;
    let href = find(&browser, "//a[@id='export-csv']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, header) = fetch_from_page(&browser, &href).await;
    assert_eq!(status, 200, "{href}: {header}");
    assert!(header.starts_with("seq,"), "{header}");
    std::fs::write(
        screenshots().join("review-search.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // The gaps page: the refused travel-insurance questions are the largest topic.
    click(&browser, &button("Knowledge gaps")).await;
    wait_for_text(&browser, "//ol[@id='topics']/li[1]", "insurance").await;
    wait_for_text(&browser, "//ol[@id='topics']/li[1]", &format!("{travel} asked")).await;
    let charts = browser
        .find_all(Locator::XPath("//div[@id='charts']//*[local-name()='svg']"))
        .await
        .unwrap();
    assert_eq!(charts.len(), 3);
    std::fs::write(
        screenshots().join("review-gaps.png"),
        browser.screenshot().await.unwrap(),
    )
    .unwrap();

    // Every read the page made is in the record, as the officer's.
    let reads = app.audit_events("conversation_read").await;
    assert_eq!(reads.last().unwrap()["actor"], "staff:carol");
    assert!(!app.audit_events("insights_read").await.is_empty());
    browser.close().await.unwrap();

    // An agent's session sees the queue, and is refused every compliance view.
    let profile = TempDir::new().unwrap();
    let browser = driver.browser(&profile).await;
    sign_in_to_console(&browser, &app.address, &agent).await;
    wait_for_text(&browser, "//h2[@id='queue-title']", "Queue").await;
    assert!(!find(&browser, "//nav[@id='views']").await.is_displayed().await.unwrap());
    let id = scam["conversation_id"].as_str().unwrap();
    for path in [
        "/v1/audit/conversations".to_string(),
        format!("/v1/audit/conversations/{id}"),
        "/v1/audit/verify".into(),
        "/v1/audit/chain".into(),
        "/v1/audit/export?from=2000-01-01&to=2999-01-01".into(),
        "/v1/insights/gaps?from=2026-01-01&to=2026-12-31".into(),
        "/v1/insights/daily?from=2026-01-01&to=2026-12-31".into(),
    ] {
        let (status, body) = fetch_from_page(&browser, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    browser.close().await.unwrap();
}
