//! No bytes a member sends can make the shared document unavailable or lose
//! what others wrote: an update is checked by applying it before it is
//! stored, and a stored row that does not apply is moved aside
//! (`document_quarantine`) while the rest of the document loads.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use uuid::Uuid;
use yrs::{
    sync::{Message as YMessage, SyncMessage},
    updates::encoder::Encode,
};

use crate::{
    eventually::eventually,
    fixtures::{User, pair, session_code},
    helpers::{TestApp, spawn_app, spawn_app_sharing},
    sockets::{YClient, close_code, raw, upgrade_status},
};

fn var(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A Yjs update (format v1) built by hand: one item of client `attacker`
/// holding the string "X", whose parent is the item `parent` — an existing
/// character, not a shared type. It decodes; it cannot be integrated.
fn crafted_update(attacker: u64, parent: (u64, u64)) -> Vec<u8> {
    let mut update = Vec::new();
    var(&mut update, 1); // one group of structs
    var(&mut update, 1); // of one struct
    var(&mut update, attacker); // its client
    var(&mut update, 0); // and first clock
    update.push(0x04); // info: string content, no origins, no parent key
    var(&mut update, 0); // parent info 0: the parent is an item ID
    var(&mut update, parent.0);
    var(&mut update, parent.1);
    var(&mut update, 1); // the content: "X"
    update.push(b'X');
    var(&mut update, 0); // an empty delete set
    update
}

fn update_message(update: Vec<u8>) -> Message {
    Message::Binary(
        YMessage::Sync(SyncMessage::Update(update))
            .encode_v1()
            .into(),
    )
}

async fn wait_code(app: &TestApp, who: &User, session: Uuid, want: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("the session's code to become {want:?}"),
        || async {
            let code = session_code(app, who, session).await;
            if code == want { Ok(()) } else { Err(code) }
        },
    )
    .await;
}

/// A host and a guest in a session whose document the host's client (still
/// connected) wrote `text` into, stored.
async fn written(app: &TestApp, text: &str) -> (User, User, Uuid, YClient) {
    let (host, guest, session) = pair(app).await;
    let mut writer = YClient::connect(app, &host, session).await;
    writer.insert(0, text).await;
    wait_code(app, &host, session, text).await;
    (host, guest, session, writer)
}

async fn quarantine_rows(app: &TestApp, session: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM document_quarantine WHERE session_id = $1")
        .bind(session)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

#[tokio::test]
async fn a_crafted_update_is_refused_and_the_document_stays_whole_for_everyone() {
    let app = spawn_app().await;
    let (host, guest, session, mut writer) = written(&app, "hello world").await;

    // The guest names the first character's ID as the parent of its item.
    let mut attacker = raw(&app, &guest, session).await;
    attacker
        .send(update_message(crafted_update(
            424_242,
            (writer.client_id, 0),
        )))
        .await
        .expect("send");
    let refused = close_code(&mut attacker).await;

    // The writer keeps editing, and everything it wrote is stored.
    writer.insert(11, "!").await;
    wait_code(&app, &host, session, "hello world!").await;

    // Another replica loads the document from PostgreSQL for another member.
    let replica = spawn_app_sharing(&app, &[]).await;
    assert_eq!(
        upgrade_status(&replica, session, "doc", Some(&guest.token)).await,
        101,
        "the document loads from what is stored"
    );
    let mut reader = YClient::connect(&replica, &guest, session).await;
    reader.wait_text(|t| t == "hello world!").await;
    assert_eq!(
        session_code(&replica, &guest, session).await,
        "hello world!"
    );
    reader.close().await;
    writer.close().await;

    assert_eq!(
        refused,
        Some(CloseCode::Library(4422)),
        "the attacker's socket is closed with the documented code"
    );
    // The update was never stored, so nothing needed quarantine.
    assert_eq!(quarantine_rows(&app, session).await, 0);
}

#[tokio::test]
async fn stored_rows_that_do_not_apply_are_quarantined_and_the_rest_loads() {
    let app = spawn_app().await;
    let (host, guest, session, mut writer) = written(&app, "keep me").await;

    // Rows no check let through (written before this api checked updates,
    // a bug, a bad restore): one that does not apply, one that does not decode.
    let bad = [
        crafted_update(424_242, (writer.client_id, 0)),
        vec![0xff; 11],
    ];
    for payload in &bad {
        sqlx::query("INSERT INTO document_updates (session_id, payload) VALUES ($1, $2)")
            .bind(session)
            .bind(payload)
            .execute(&app.db)
            .await
            .expect("insert");
    }
    // Stored after them.
    writer.insert(7, " too").await;

    // A replica without the document in memory loads it from PostgreSQL.
    let replica = spawn_app_sharing(&app, &[]).await;
    assert_eq!(
        upgrade_status(&replica, session, "doc", Some(&guest.token)).await,
        101
    );
    let mut reader = YClient::connect(&replica, &guest, session).await;
    reader.wait_text(|t| t == "keep me too").await;
    assert_eq!(session_code(&replica, &guest, session).await, "keep me too");

    // The bad rows were moved aside, with their bytes and a reason.
    let quarantined: Vec<(Option<i64>, Vec<u8>, String)> = sqlx::query_as(
        "SELECT update_id, payload, reason FROM document_quarantine WHERE session_id = $1 ORDER BY update_id",
    )
    .bind(session)
    .fetch_all(&app.db)
    .await
    .expect("quarantine");
    assert_eq!(quarantined.len(), 2, "{quarantined:?}");
    for ((id, payload, reason), expected) in quarantined.iter().zip(&bad) {
        assert!(id.is_some());
        assert_eq!(payload, expected);
        assert!(!reason.is_empty());
    }
    assert!(
        quarantined[0].2.contains("does not apply"),
        "{}",
        quarantined[0].2
    );
    assert!(
        quarantined[1].2.contains("does not decode"),
        "{}",
        quarantined[1].2
    );
    for payload in &bad {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM document_updates WHERE session_id = $1 AND payload = $2",
        )
        .bind(session)
        .bind(payload)
        .fetch_one(&app.db)
        .await
        .expect("count");
        assert_eq!(
            left, 0,
            "a quarantined row is no longer part of the document"
        );
    }

    // Both keep editing; the text survives the last socket's compaction.
    writer.insert(0, "> ").await;
    reader.wait_text(|t| t == "> keep me too").await;
    reader.close().await;
    writer.close().await;
    wait_code(&app, &host, session, "> keep me too").await;
    assert_eq!(quarantine_rows(&app, session).await, 2);
}

/// Mutated real Yjs updates, fed to the checks a member's update goes
/// through and to the load of stored rows: whatever the bytes, the document
/// stays loadable, refused input changes nothing, and others keep editing.
mod mutated_updates {
    use std::sync::OnceLock;

    use codecall_api::documents::{
        MAX_PENDING_BYTES, MAX_PENDING_UPDATES, TEXT_NAME,
        checked::{Checked, Limits, Refused},
        store::{self, Part},
    };
    use proptest::{collection::vec, prelude::*};
    use yrs::{
        Doc, GetString, Map, MapPrelim, ReadTxn, StateVector, Text, TextPrelim, Transact, Update,
        updates::decoder::Decode,
    };

    /// A client id no mutation is likely to produce.
    const FOLLOW_UP_CLIENT: u64 = 0x5eed_c0de;
    const FOLLOW_UP_TEXT: &str = "// still editing";

    struct Corpus {
        /// The document everyone has.
        base: Vec<u8>,
        /// Real updates made on top of it (the inputs to mutate).
        updates: Vec<Vec<u8>>,
        /// Another member's edit on top of `base`.
        follow_up: Vec<u8>,
    }

    fn edit(doc: &Doc, change: impl FnOnce(&mut yrs::TransactionMut)) -> Vec<u8> {
        let before = doc.transact().state_vector();
        change(&mut doc.transact_mut());
        doc.transact().encode_state_as_update_v1(&before)
    }

    fn corpus() -> &'static Corpus {
        static CORPUS: OnceLock<Corpus> = OnceLock::new();
        CORPUS.get_or_init(|| {
            let a = Doc::with_client_id(1);
            let text = a.get_or_insert_text(TEXT_NAME);
            let meta = a.get_or_insert_map("meta");
            edit(&a, |t| text.insert(t, 0, "def two_sum(nums, target):\n"));
            edit(&a, |t| text.insert(t, 27, "    seen = {}\n"));
            edit(&a, |t| {
                let notes = meta.insert(t, "notes", TextPrelim::new("hash map"));
                notes.insert(t, 0, "O(n) ");
            });
            let base = a
                .transact()
                .encode_state_as_update_v1(&StateVector::default());

            let b = Doc::with_client_id(2);
            let b_text = b.get_or_insert_text(TEXT_NAME);
            let b_meta = b.get_or_insert_map("meta");
            b.transact_mut()
                .apply_update(Update::decode_v1(&base).unwrap())
                .unwrap();
            let mut updates = vec![
                edit(&a, |t| text.insert(t, 4, "x")),
                edit(&a, |t| text.remove_range(t, 0, 4)),
                edit(&b, |t| b_text.insert(t, 10, "héllo ✓")),
                edit(&b, |t| {
                    b_meta.insert(t, "nested", MapPrelim::default());
                }),
                edit(&b, |t| {
                    b_text.remove_range(t, 2, 5);
                    b_text.insert(t, 2, "  ");
                }),
            ];
            // A sync step 2: everything one client has.
            updates.push(
                b.transact()
                    .encode_state_as_update_v1(&StateVector::default()),
            );

            let c = Doc::with_client_id(FOLLOW_UP_CLIENT);
            let c_text = c.get_or_insert_text(TEXT_NAME);
            c.transact_mut()
                .apply_update(Update::decode_v1(&base).unwrap())
                .unwrap();
            let follow_up = edit(&c, |t| c_text.insert(t, 0, FOLLOW_UP_TEXT));
            Corpus {
                base,
                updates,
                follow_up,
            }
        })
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        FlipBit(usize, u8),
        Truncate(usize),
        SetByte(usize, u8),
        InsertByte(usize, u8),
        RemoveByte(usize),
        /// Replace a range with one taken from another real update.
        Splice {
            at: usize,
            len: usize,
            from: usize,
            from_at: usize,
            from_len: usize,
        },
        /// Rewrite the varint starting at a byte with another value.
        Varint(usize, u64),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
            any::<usize>().prop_map(Mutation::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::InsertByte(at, b)),
            any::<usize>().prop_map(Mutation::RemoveByte),
            (
                any::<usize>(),
                0usize..8,
                any::<usize>(),
                any::<usize>(),
                0usize..16
            )
                .prop_map(|(at, len, from, from_at, from_len)| Mutation::Splice {
                    at,
                    len,
                    from,
                    from_at,
                    from_len
                }),
            (
                any::<usize>(),
                prop_oneof![
                    Just(0u64),
                    Just(1),
                    Just(2),
                    Just(3),
                    Just(127),
                    Just(128),
                    Just(u64::from(u32::MAX)),
                    Just(1 << 53),
                    any::<u64>()
                ]
            )
                .prop_map(|(at, value)| Mutation::Varint(at, value)),
        ]
    }

    fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], others: &[Vec<u8>]) -> Vec<u8> {
        for mutation in mutations {
            let len = bytes.len().max(1);
            match *mutation {
                Mutation::FlipBit(at, bit) => {
                    if let Some(b) = bytes.get_mut(at % len) {
                        *b ^= 1 << bit;
                    }
                }
                Mutation::Truncate(at) => bytes.truncate(at % len),
                Mutation::SetByte(at, value) => {
                    if let Some(b) = bytes.get_mut(at % len) {
                        *b = value;
                    }
                }
                Mutation::InsertByte(at, value) => bytes.insert(at % (bytes.len() + 1), value),
                Mutation::RemoveByte(at) => {
                    if !bytes.is_empty() {
                        bytes.remove(at % len);
                    }
                }
                Mutation::Splice {
                    at,
                    len: cut,
                    from,
                    from_at,
                    from_len,
                } => {
                    let source = &others[from % others.len()];
                    let start = from_at % source.len();
                    let piece = &source[start..(start + from_len).min(source.len())];
                    let at = at % (bytes.len() + 1);
                    let end = (at + cut).min(bytes.len());
                    bytes.splice(at..end, piece.iter().copied());
                }
                Mutation::Varint(at, mut value) => {
                    let at = at % (bytes.len() + 1);
                    let mut end = at;
                    while end < bytes.len() && bytes[end] & 0x80 != 0 {
                        end += 1;
                    }
                    let end = (end + 1).min(bytes.len());
                    let mut encoded = Vec::new();
                    while value >= 0x80 {
                        encoded.push((value as u8 & 0x7f) | 0x80);
                        value >>= 7;
                    }
                    encoded.push(value as u8);
                    bytes.splice(at..end, encoded);
                }
            }
        }
        bytes
    }

    fn loaded(state: &[u8]) -> Doc {
        let built = store::build(&[Part {
            id: None,
            payload: state.to_vec(),
        }]);
        assert!(built.refused.is_empty(), "{:?}", built.refused);
        built.doc
    }

    fn text(doc: &Doc) -> String {
        doc.get_or_insert_text(TEXT_NAME)
            .get_string(&doc.transact())
    }

    fn state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    const LIMITS: Limits = Limits {
        max_pending_bytes: MAX_PENDING_BYTES,
        max_pending_updates: MAX_PENDING_UPDATES,
    };

    proptest! {
        // A fixed seed: the suite must not turn red by chance. The cases it
        // explores are still hundreds of real updates, mutated; change the
        // seed (or set PROPTEST_RNG_SEED) to explore others.
        #![proptest_config(ProptestConfig {
            cases: 400,
            failure_persistence: None,
            rng_seed: proptest::test_runner::RngSeed::Fixed(1),
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_mutated_update_never_breaks_the_live_document(
            which in any::<usize>(),
            mutations in vec(mutation(), 1..5),
        ) {
            let corpus = corpus();
            let original = &corpus.updates[which % corpus.updates.len()];
            let update = mutate(original.clone(), &mutations, &corpus.updates);

            let mut live = Checked::new(loaded(&corpus.base));
            let before = text(live.doc());
            let outcome = live.apply(&update, Some(&LIMITS));
            let accepted = outcome.is_ok();
            if !accepted {
                prop_assert_eq!(text(live.doc()), before.clone(), "refused input changed the text");
            }
            // Whatever happened, the document's state loads as a snapshot
            // (`loaded` asserts no row is refused). Its text is not always
            // the live text: an accepted update with forged origins can
            // integrate differently on reload — a known yrs limit, noted in
            // the README; what is promised is that nothing stops loading.
            let _ = loaded(&state(live.doc()));
            // And another member's edit still applies.
            prop_assert!(live.apply(&corpus.follow_up, Some(&LIMITS)).is_ok());
            prop_assert!(text(live.doc()).contains(FOLLOW_UP_TEXT));
            let _ = loaded(&state(live.doc()));

            // Stored as a row between the document and the other member's
            // edit, it never costs either of them: only it can be left out.
            let built = store::build(&[
                Part { id: None, payload: corpus.base.clone() },
                Part { id: Some(1), payload: update.clone() },
                Part { id: Some(2), payload: corpus.follow_up.clone() },
            ]);
            prop_assert!(
                built.refused.iter().all(|(id, _)| *id == Some(1)),
                "{:?}", built.refused
            );
            let rebuilt = text(&built.doc);
            prop_assert!(rebuilt.contains(FOLLOW_UP_TEXT), "{rebuilt:?}");
            if accepted {
                prop_assert!(
                    store::build(&[
                        Part { id: None, payload: corpus.base.clone() },
                        Part { id: Some(1), payload: update },
                    ]).refused.is_empty(),
                    "an update the live check took does not load"
                );
            } else if matches!(outcome, Err(Refused::Invalid(_))) {
                let expected = store::build(&[
                    Part { id: None, payload: corpus.base.clone() },
                    Part { id: Some(2), payload: corpus.follow_up.clone() },
                ]);
                prop_assert_eq!(rebuilt, text(&expected.doc));
            }
        }
    }
}
