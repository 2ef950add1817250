//! Who sees what of a run. A run is read by its author and by the members
//! of its session; a session's submission (its code against the problem's
//! hidden tests, `runs.kind = 'submission'`) is the interviewer's to read
//! whole, and everyone else gets it [redacted](RunView::redacted): each
//! test's verdict, time and memory, never what the program printed, which
//! may echo a hidden input. Every answer that holds runs goes through
//! [`for_viewer`] (`GET /api/runs/{id}`, `GET /api/sessions/{id}/runs`, a
//! submission's own answer, the review document).

use run_contract::{RunKind, RunRow, RunView};
use uuid::Uuid;

use crate::error::Result;

/// The columns of a run's view: a [`RunRow`] and what the run was for.
pub struct StoredRun {
    pub id: Uuid,
    pub user_id: Uuid,
    pub session_id: Option<Uuid>,
    pub language: String,
    pub status: String,
    pub result: Option<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub kind: String,
    pub problem_id: Option<Uuid>,
}

impl StoredRun {
    pub fn view(self) -> RunView {
        let mut view = RunView::from(RunRow {
            id: self.id,
            user_id: self.user_id,
            session_id: self.session_id,
            language: self.language,
            status: self.status,
            result: self.result,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        });
        view.kind = RunKind::parse(&self.kind);
        view.problem_id = self.problem_id;
        view
    }
}

/// A run as a viewer may see it: a submission is redacted for everyone but
/// the session's interviewer.
pub fn for_viewer(view: RunView, interviewer: bool) -> RunView {
    if view.kind.is_hidden() && !interviewer {
        view.redacted()
    } else {
        view
    }
}

/// Whether `user` is the interviewer of `session` now.
pub async fn is_interviewer(
    db: &mut sqlx::PgConnection,
    session: Option<Uuid>,
    user: Uuid,
) -> Result<bool> {
    let Some(session) = session else {
        return Ok(false);
    };
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM session_members
                          WHERE session_id = $1 AND user_id = $2 AND role = 'interviewer') AS "e!""#,
        session,
        user
    )
    .fetch_one(db)
    .await?)
}
