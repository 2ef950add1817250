//! A document that only takes updates it can integrate.
//!
//! yrs decodes many byte strings it cannot integrate: an item whose parent
//! is an existing character rather than a shared type decodes fine and
//! fails to apply (`InvalidParent`), after the update's earlier items were
//! integrated; other malformed input makes yrs panic half-way through a
//! transaction. Either leaves a document that no longer loads. So a
//! [`Checked`] document keeps a *twin* — a second yrs `Doc` with the same
//! content — and every update is first applied to the twin, inside
//! `catch_unwind`. Only an update the twin took is applied to the document
//! (and so, in the socket path, stored and relayed); a twin that failed is
//! rebuilt from the document, which was never touched.
//!
//! Updates can also stay *pending*: they refer to items the document has
//! not seen, and yrs keeps them aside until those arrive. Nothing can say
//! yet whether they will apply, so their size and number are bounded
//! ([`Limits`]), and when an update fails only because of what was pending
//! (it applies to the document without it) the pending part is dropped
//! rather than the update: a member cannot park an item that makes another
//! member's next edit fail.
//!
//! The same checks serve the live documents ([`super::live`]) and loading
//! what is stored ([`super::store::build`]).

use std::panic::{AssertUnwindSafe, catch_unwind};

use yrs::{
    Doc, ReadTxn, StateVector, Transact, Update, WriteTxn,
    updates::{decoder::Decode, encoder::Encode},
};

use super::TEXT_NAME;

/// Bounds on what may stay pending after a member's update.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Encoded size of everything pending.
    pub max_pending_bytes: usize,
    /// Updates that added to what is pending since nothing was.
    pub max_pending_updates: usize,
}

/// Why an update was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// It does not decode, does not apply, or makes yrs panic.
    Invalid(String),
    /// It would leave more pending than [`Limits`] allow.
    Pending { bytes: usize, updates: usize },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Invalid(reason) => f.write_str(reason),
            Refused::Pending { bytes, updates } => write!(
                f,
                "it would leave {bytes} bytes from {updates} updates pending"
            ),
        }
    }
}

/// What a checked update does to the document; hand it to [`Checked::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Check {
    /// What was pending does not apply together with this update, which
    /// applies without it: the pending part is dropped.
    pub drops_pending: bool,
    /// It adds to what is pending.
    pub adds_pending: bool,
    pending_updates: usize,
}

/// A document and its twin; see the module header.
pub struct Checked {
    doc: Doc,
    twin: Doc,
    /// Updates that added to what is pending since nothing was.
    pending_updates: usize,
}

impl Checked {
    /// Guards `doc` (which must not be changed other than through this).
    pub fn new(doc: Doc) -> Checked {
        let twin = copy(&doc, true);
        let pending_updates = usize::from(pending_bytes(&doc) > 0);
        Checked {
            doc,
            twin,
            pending_updates,
        }
    }

    /// The document (a handle on the same store).
    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// The document, once nothing else is to be checked.
    pub fn into_doc(self) -> Doc {
        self.doc
    }

    /// Encoded size of what is pending in the document.
    pub fn pending_bytes(&self) -> usize {
        pending_bytes(&self.doc)
    }

    /// Applies `update` (Yjs format v1) to the twin: `Ok` when it applies,
    /// and stays within `limits` if given. Then either [`commit`](Self::commit)
    /// it or [`rollback`](Self::rollback). A refused update left nothing
    /// behind.
    pub fn check(&mut self, update: &[u8], limits: Option<&Limits>) -> Result<Check, Refused> {
        let before = pending_bytes(&self.twin);
        let mut drops_pending = false;
        if let Err(reason) = apply(&self.twin, update) {
            if before == 0 {
                self.rollback();
                return Err(Refused::Invalid(reason));
            }
            // Is it what was pending that does not apply?
            self.twin = copy(&self.doc, false);
            if apply(&self.twin, update).is_err() {
                self.rollback();
                return Err(Refused::Invalid(reason));
            }
            drops_pending = true;
        }
        let (before, counted) = if drops_pending {
            (0, 0)
        } else {
            (before, self.pending_updates)
        };
        let after = pending_bytes(&self.twin);
        let adds_pending = after > before;
        let pending_updates = match after {
            0 => 0,
            _ if adds_pending => counted + 1,
            _ => counted,
        };
        if let Some(limits) = limits
            && adds_pending
            && (after > limits.max_pending_bytes || pending_updates > limits.max_pending_updates)
        {
            self.rollback();
            return Err(Refused::Pending {
                bytes: after,
                updates: pending_updates,
            });
        }
        Ok(Check {
            drops_pending,
            adds_pending,
            pending_updates,
        })
    }

    /// Applies to the document an update the twin took.
    pub fn commit(&mut self, update: &[u8], check: Check) {
        if check.drops_pending {
            let pruned = catch_unwind(AssertUnwindSafe(|| {
                self.doc.transact_mut().prune_pending();
            }));
            if pruned.is_err() {
                tracing::error!("dropping pending document items made yrs panic");
            }
        }
        if let Err(reason) = apply(&self.doc, update) {
            // The twin had the same content and took it; keep the two alike.
            tracing::error!(%reason, "an update the twin took does not apply to the document");
            self.twin = copy(&self.doc, true);
        }
        self.pending_updates = check.pending_updates;
    }

    /// Forgets a checked update that will not be committed (say, it could
    /// not be stored).
    pub fn rollback(&mut self) {
        self.twin = copy(&self.doc, true);
    }

    /// [`check`](Self::check) and [`commit`](Self::commit) in one step.
    pub fn apply(&mut self, update: &[u8], limits: Option<&Limits>) -> Result<Check, Refused> {
        let check = self.check(update, limits)?;
        self.commit(update, check);
        Ok(check)
    }
}

/// A new document with the editor's text type.
pub fn empty() -> Doc {
    let doc = Doc::new();
    doc.get_or_insert_text(TEXT_NAME);
    doc
}

/// Applies one update in its own transaction; a panic inside yrs is an
/// error like any other.
fn apply(doc: &Doc, update: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| {
        let update =
            Update::decode_v1(update).map_err(|e| format!("the update does not decode: {e}"))?;
        doc.transact_mut()
            .apply_update(update)
            .map_err(|e| format!("the update does not apply: {e}"))
    }))
    .unwrap_or_else(|_| Err("the update made yrs panic".to_owned()))
}

/// A new document with `doc`'s content, with or without what is pending.
fn copy(doc: &Doc, with_pending: bool) -> Doc {
    let state = catch_unwind(AssertUnwindSafe(|| {
        let txn = doc.transact();
        if with_pending {
            txn.encode_state_as_update_v1(&StateVector::default())
        } else {
            txn.encode_diff_v1(&StateVector::default())
        }
    }));
    let copy = empty();
    match state {
        Ok(state) => {
            if let Err(reason) = apply(&copy, &state) {
                tracing::error!(%reason, "a document's own state does not apply to a copy");
            }
        }
        Err(_) => tracing::error!("encoding a document made yrs panic"),
    }
    copy
}

fn pending_bytes(doc: &Doc) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        let txn = doc.transact();
        let store = txn.store();
        store
            .pending_update()
            .map_or(0, |pending| pending.update.encode_v1().len())
            + store.pending_ds().map_or(0, |ds| ds.encode_v1().len())
    }))
    .unwrap_or(usize::MAX)
}
