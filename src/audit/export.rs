//! Exporting a period of the log as JSON Lines or CSV, a page at a time, so memory stays
//! flat whatever the period holds.

use super::records::{StoredEvent, EVENT_COLUMNS};
use super::store::{AuditError, AuditStore};
use super::verify::PAGE;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Columns of a CSV export.
const EXPORT_COLUMNS: [&str; 9] = [
    "seq",
    "occurred_at",
    "actor",
    "kind",
    "conversation_id",
    "payload",
    "payload_hash",
    "prev_hash",
    "hash",
];

/// Export formats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::Display, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// One page of an export: its bytes, the last seq written and the events in it.
pub struct ExportPage {
    pub bytes: Vec<u8>,
    pub last_seq: i64,
    pub events: u64,
}

impl AuditStore {
    /// One page of an export: the events after `after_seq` that occurred in [from, to)
    /// (RFC 3339 UTC), rendered in `format` (the CSV header comes with the first page).
    /// `None` when the period is done. Callers loop over pages.
    pub async fn export_page(
        &self,
        from: &str,
        to: &str,
        format: ExportFormat,
        after_seq: i64,
    ) -> anyhow::Result<Option<ExportPage>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq > $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY seq LIMIT $4"
        );
        let events: Vec<StoredEvent> = sqlx::query_as(&sql)
            .bind(after_seq)
            .bind(from)
            .bind(to)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(AuditError::from)?;
        let Some(last) = events.last() else {
            return Ok(None);
        };
        let last_seq = last.seq;
        let bytes = match format {
            ExportFormat::Jsonl => {
                let mut out = Vec::new();
                for e in &events {
                    serde_json::to_writer(&mut out, &e.to_json())?;
                    out.push(b'\n');
                }
                out
            }
            ExportFormat::Csv => {
                let mut w = csv::Writer::from_writer(Vec::new());
                if after_seq == 0 {
                    w.write_record(EXPORT_COLUMNS)?;
                }
                for e in &events {
                    w.write_record([
                        e.seq.to_string().as_str(),
                        &e.occurred_at,
                        &e.actor,
                        &e.kind,
                        e.conversation_id.as_deref().unwrap_or(""),
                        e.payload.as_deref().unwrap_or(""),
                        &e.payload_hash,
                        &e.prev_hash,
                        &e.hash,
                    ])?;
                }
                w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?
            }
        };
        Ok(Some(ExportPage {
            bytes,
            last_seq,
            events: events.len() as u64,
        }))
    }

    /// Writes a whole period to `out`; returns the number of events.
    pub async fn export(
        &self,
        from: &str,
        to: &str,
        format: ExportFormat,
        out: &mut (dyn Write + Send),
    ) -> anyhow::Result<u64> {
        let mut after = 0;
        let mut total = 0;
        // The CSV header is keyed to the first page (after_seq = 0); later pages continue
        // after the last seq written.
        while let Some(page) = self.export_page(from, to, format, after).await? {
            out.write_all(&page.bytes)?;
            after = page.last_seq;
            total += page.events;
        }
        out.flush()?;
        Ok(total)
    }
}
