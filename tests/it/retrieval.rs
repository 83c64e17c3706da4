use crate::helpers::{fixture, indexes, ingest_dir};
use teller::eval::{evaluate_retrieval, load_questions};
use teller::lang::Lang;
use teller::retrieval::store::SearchFilter;
use teller::retrieval::SearchOptions;

#[tokio::test]
async fn search_finds_english_and_chinese_passages_and_applies_filters() {
    for t in indexes("search").await {
        ingest_dir(&t.index, &fixture("kb"), false).await;
        let search = |q: &'static str, filter: SearchFilter| {
            let index = t.index.clone();
            async move {
                index
                    .search(
                        q,
                        &SearchOptions {
                            k: 5,
                            lang: None,
                            filter,
                        },
                    )
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|h| h.chunk.source_id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            search("savings interest rate", SearchFilter::default()).await[0],
            "faq-basics-003",
            "{}",
            t.backend
        );
        assert_eq!(
            search("银行卡丢失 挂失", SearchFilter::default()).await[0],
            "faq-basics-005",
            "{}",
            t.backend
        );

        // Distinct sources: the multi-chunk guide appears once.
        let hits = search("safe deposit box vault key", SearchFilter::default()).await;
        assert_eq!(hits.iter().filter(|id| *id == "doc-guide").count(), 1);

        let zh_only = search(
            "card",
            SearchFilter {
                lang: Some(Lang::ZhCn),
                product: None,
            },
        )
        .await;
        assert!(
            zh_only
                .iter()
                .all(|id| id == "faq-basics-005" || id == "faq-basics-006" || id == "doc-zh-guide"),
            "{zh_only:?}"
        );
        let deposits = search(
            "rate",
            SearchFilter {
                lang: None,
                product: Some("deposits".into()),
            },
        )
        .await;
        assert_eq!(deposits, ["faq-basics-003"], "{}", t.backend);
    }
}

#[tokio::test]
async fn eval_scores_the_fixture_questions() {
    for t in indexes("eval").await {
        ingest_dir(&t.index, &fixture("kb"), false).await;
        let questions = load_questions(&fixture("questions.jsonl")).unwrap();
        let (report, results) = evaluate_retrieval(&t.index, &questions, 5).await.unwrap();
        assert_eq!((report.questions, report.answerable), (8, 7));
        let misses: Vec<_> = results
            .iter()
            .filter(|r| r.answerable && r.first_relevant_rank != Some(1))
            .collect();
        assert!(misses.is_empty(), "{}: {misses:#?}", t.backend);
        assert_eq!((report.recall_at_k, report.mrr), (1.0, 1.0));
        assert_eq!(report.by_category["multi_turn"].recall_at_k, 1.0);
        assert_eq!(report.by_lang["zh-CN"].questions, 2);
        assert!(report.p95_ms >= report.p50_ms && report.p50_ms > 0.0);
    }
}
