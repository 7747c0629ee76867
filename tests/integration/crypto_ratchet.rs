//! Double Ratchet sessions through the public API: round trips, out-of-order delivery, the
//! skipped-key limits, serialization, and every failure leaving the session unchanged.

use e2ee_harness::crypto::identity::IdentityKeyPair;
use e2ee_harness::crypto::params::{MAX_SKIP, MAX_STORED_SKIPPED_KEYS};
use e2ee_harness::crypto::prekeys::{generate_one_time_batch, SignedPreKey};
use e2ee_harness::crypto::ratchet::{Header, Session};
use e2ee_harness::crypto::x3dh::{self, InitialMessage, PreKeyBundle};
use e2ee_harness::crypto::CryptoError;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Alice and Bob after X3DH and ratchet initialization (Bob has not received yet).
fn sessions(seed: u64, with_opk: bool) -> (Session, Session, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob, 1, &mut rng);
    let mut opks = generate_one_time_batch(1, 5, &mut rng);
    let bundle = PreKeyBundle {
        identity_key: bob.public(),
        signed_prekey_id: spk.id,
        signed_prekey: spk.public(),
        signed_prekey_signature: spk.signature,
        one_time_prekey: with_opk.then(|| (opks[2].id, opks[2].public())),
    };
    let (msg, a_out) = x3dh::initiate(&alice, &bundle, &mut rng).unwrap();
    let msg = InitialMessage::from_bytes(&msg.to_bytes()).unwrap();
    let b_out = x3dh::respond(&bob, &spk, &mut opks, &msg).unwrap();
    assert_eq!(opks.len(), if with_opk { 4 } else { 5 });
    let a = Session::initiator(&a_out, &spk.public(), &mut rng).unwrap();
    let b = Session::responder(&b_out, &spk);
    (a, b, rng)
}

/// Decrypts expecting `err`, and asserts the session is byte-for-byte what it was.
fn assert_refused_unchanged(
    s: &mut Session,
    h: &Header,
    ct: &[u8],
    rng: &mut ChaCha20Rng,
    err: impl Fn(&CryptoError) -> bool,
) {
    let before = s.to_bytes();
    let clone = s.clone();
    let got = s.decrypt(h, ct, rng).unwrap_err();
    assert!(err(&got), "unexpected error {got:?}");
    assert_eq!(
        s.to_bytes(),
        before,
        "serialized state changed after {got:?}"
    );
    assert!(*s == clone, "state changed after {got:?}");
}

#[test]
fn round_trips_in_both_directions_with_and_without_one_time_prekey() {
    for with_opk in [true, false] {
        let (mut a, mut b, mut rng) = sessions(1, with_opk);
        assert_eq!(a.associated_data(), b.associated_data());
        for turn in 0..6u32 {
            for i in 0..=turn % 3 {
                let text = format!("alice turn {turn} msg {i}");
                let (h, ct) = a.encrypt(text.as_bytes(), &mut rng).unwrap();
                assert_eq!(b.decrypt(&h, &ct, &mut rng).unwrap(), text.as_bytes());
            }
            for i in 0..=(turn + 1) % 3 {
                let text = format!("bob turn {turn} msg {i}");
                let (h, ct) = b.encrypt(text.as_bytes(), &mut rng).unwrap();
                assert_eq!(a.decrypt(&h, &ct, &mut rng).unwrap(), text.as_bytes());
            }
        }
        assert_eq!(a.skipped_key_count() + b.skipped_key_count(), 0);
    }
}

#[test]
fn each_turn_moves_to_a_new_ratchet_key() {
    let (mut a, mut b, mut rng) = sessions(2, true);
    let (h1, c1) = a.encrypt(b"1", &mut rng).unwrap();
    let (h2, _) = a.encrypt(b"2", &mut rng).unwrap();
    assert_eq!(
        (h1.dh, h1.n, h2.n),
        (h2.dh, 0, 1),
        "same chain, same key, counting up"
    );
    b.decrypt(&h1, &c1, &mut rng).unwrap();
    let (hb, cb) = b.encrypt(b"3", &mut rng).unwrap();
    a.decrypt(&hb, &cb, &mut rng).unwrap();
    let (h4, _) = a.encrypt(b"4", &mut rng).unwrap();
    assert_ne!(h4.dh, h1.dh);
    assert_eq!((h4.pn, h4.n), (2, 0));
}

#[test]
fn responder_cannot_send_first_and_nothing_changes() {
    let (_, mut b, mut rng) = sessions(3, true);
    let before = b.to_bytes();
    assert!(!b.can_send());
    assert_eq!(
        b.encrypt(b"hi", &mut rng).unwrap_err(),
        CryptoError::NoSendingChain
    );
    assert_eq!(b.to_bytes(), before);
}

#[test]
fn out_of_order_within_a_chain() {
    let (mut a, mut b, mut rng) = sessions(4, true);
    let mut sent: Vec<_> = (0..20)
        .map(|i| (i, a.encrypt(format!("m{i}").as_bytes(), &mut rng).unwrap()))
        .collect();
    sent.shuffle(&mut rng);
    for (i, (h, ct)) in &sent {
        assert_eq!(
            b.decrypt(h, ct, &mut rng).unwrap(),
            format!("m{i}").as_bytes()
        );
    }
    assert_eq!(
        b.skipped_key_count(),
        0,
        "every skipped key was used and deleted"
    );
}

#[test]
fn skipped_messages_of_an_earlier_chain_arrive_after_a_dh_step() {
    let (mut a, mut b, mut rng) = sessions(5, false);
    let m0 = a.encrypt(b"a0", &mut rng).unwrap();
    let m1 = a.encrypt(b"a1", &mut rng).unwrap();
    let m2 = a.encrypt(b"a2", &mut rng).unwrap();
    assert_eq!(b.decrypt(&m0.0, &m0.1, &mut rng).unwrap(), b"a0");
    let r = b.encrypt(b"b0", &mut rng).unwrap();
    assert_eq!(a.decrypt(&r.0, &r.1, &mut rng).unwrap(), b"b0");
    let m3 = a.encrypt(b"a3", &mut rng).unwrap();
    let m4 = a.encrypt(b"a4", &mut rng).unwrap();
    // Bob gets the new chain's second message first: a1, a2 (old chain, via pn) and a3 are skipped.
    assert_eq!(b.decrypt(&m4.0, &m4.1, &mut rng).unwrap(), b"a4");
    assert_eq!(b.skipped_key_count(), 3);
    assert_eq!(b.decrypt(&m2.0, &m2.1, &mut rng).unwrap(), b"a2");
    assert_eq!(b.decrypt(&m3.0, &m3.1, &mut rng).unwrap(), b"a3");
    assert_eq!(b.decrypt(&m1.0, &m1.1, &mut rng).unwrap(), b"a1");
    assert_eq!(b.skipped_key_count(), 0);
}

#[test]
fn tampered_ciphertext_is_refused_and_changes_nothing() {
    let (mut a, mut b, mut rng) = sessions(6, true);
    let (h, ct) = a.encrypt(b"the message", &mut rng).unwrap();
    // First message: a DH ratchet step is staged and must be thrown away.
    for byte in 0..ct.len() {
        let mut bad = ct.clone();
        bad[byte] ^= 0x01;
        assert_refused_unchanged(&mut b, &h, &bad, &mut rng, |e| *e == CryptoError::BadMac);
    }
    assert_refused_unchanged(&mut b, &h, &ct[..ct.len() - 1], &mut rng, |e| {
        matches!(e, CryptoError::BadLength { .. })
    });
    assert_refused_unchanged(&mut b, &h, &[], &mut rng, |e| {
        matches!(e, CryptoError::BadLength { .. })
    });
    assert_eq!(b.decrypt(&h, &ct, &mut rng).unwrap(), b"the message");
    // Same chain now, with skipped keys staged: still nothing committed on failure.
    let _skipped = a.encrypt(b"skipped", &mut rng).unwrap();
    let (h2, ct2) = a.encrypt(b"later", &mut rng).unwrap();
    let mut bad = ct2.clone();
    bad[3] ^= 0x80;
    assert_refused_unchanged(&mut b, &h2, &bad, &mut rng, |e| *e == CryptoError::BadMac);
    assert_eq!(b.skipped_key_count(), 0);
    assert_eq!(b.decrypt(&h2, &ct2, &mut rng).unwrap(), b"later");
}

#[test]
fn wrong_header_is_refused_and_changes_nothing() {
    let (mut a, mut b, mut rng) = sessions(7, true);
    let first = a.encrypt(b"first", &mut rng).unwrap();
    b.decrypt(&first.0, &first.1, &mut rng).unwrap();
    let (h, ct) = a.encrypt(b"second", &mut rng).unwrap();
    let wrong = [
        Header {
            n: h.n + 1,
            ..h.clone()
        },
        Header {
            pn: h.pn + 1,
            ..h.clone()
        },
        Header {
            dh: {
                let mut d = h.dh;
                d[5] ^= 0x10;
                d
            },
            ..h.clone()
        },
        Header {
            dh: first.0.dh,
            pn: 0,
            n: 7,
        },
    ];
    for w in &wrong {
        assert_refused_unchanged(&mut b, w, &ct, &mut rng, |e| {
            matches!(e, CryptoError::BadMac | CryptoError::NonContributory { .. })
        });
    }
    // A small-order ratchet key (all-zero DH output) is refused too.
    let zero = Header {
        dh: [0u8; 32],
        ..h.clone()
    };
    assert_refused_unchanged(&mut b, &zero, &ct, &mut rng, |e| {
        matches!(e, CryptoError::NonContributory { .. })
    });
    assert_eq!(b.decrypt(&h, &ct, &mut rng).unwrap(), b"second");
}

#[test]
fn replayed_messages_are_refused_and_change_nothing() {
    let (mut a, mut b, mut rng) = sessions(8, true);
    let m0 = a.encrypt(b"m0", &mut rng).unwrap();
    let m1 = a.encrypt(b"m1", &mut rng).unwrap();
    let m2 = a.encrypt(b"m2", &mut rng).unwrap();
    b.decrypt(&m0.0, &m0.1, &mut rng).unwrap();
    b.decrypt(&m2.0, &m2.1, &mut rng).unwrap(); // m1's key is stored as skipped
    b.decrypt(&m1.0, &m1.1, &mut rng).unwrap(); // ... and deleted once used
                                                // Replays on the current chain, of a message that was delivered in order and of one that used a skipped key.
    for (h, ct) in [&m0, &m1, &m2] {
        assert_refused_unchanged(&mut b, h, ct, &mut rng, |e| {
            matches!(e, CryptoError::DuplicateMessage { .. })
        });
    }
    // After both sides stepped the ratchet, a replay from the old chain is still refused.
    let r = b.encrypt(b"r", &mut rng).unwrap();
    a.decrypt(&r.0, &r.1, &mut rng).unwrap();
    let n = a.encrypt(b"new chain", &mut rng).unwrap();
    b.decrypt(&n.0, &n.1, &mut rng).unwrap();
    for (h, ct) in [&m0, &m2] {
        assert_refused_unchanged(&mut b, h, ct, &mut rng, |e| {
            matches!(e, CryptoError::BadMac)
        });
    }
    // And Alice refuses a replay of Bob's message.
    assert_refused_unchanged(&mut a, &r.0, &r.1, &mut rng, |e| {
        matches!(e, CryptoError::DuplicateMessage { .. })
    });
}

#[test]
fn max_skip_is_the_limit_in_one_chain_and_refusals_change_nothing() {
    let (mut a, mut b, mut rng) = sessions(9, true);
    let msgs: Vec<_> = (0..=MAX_SKIP + 1)
        .map(|i| a.encrypt(&i.to_be_bytes(), &mut rng).unwrap())
        .collect();
    // Skipping MAX_SKIP + 1 keys (message MAX_SKIP + 1 as the first one) is too many.
    let (h, ct) = &msgs[MAX_SKIP as usize + 1];
    assert_refused_unchanged(
        &mut b,
        h,
        ct,
        &mut rng,
        |e| matches!(e, CryptoError::TooManySkipped { skip, max, .. } if *skip == u64::from(MAX_SKIP) + 1 && *max == MAX_SKIP),
    );
    // Skipping exactly MAX_SKIP is allowed.
    let (h, ct) = &msgs[MAX_SKIP as usize];
    assert_eq!(b.decrypt(h, ct, &mut rng).unwrap(), MAX_SKIP.to_be_bytes());
    assert_eq!(b.skipped_key_count(), MAX_SKIP as usize);
    // A forged header claiming a huge n on the current chain is refused without storing keys.
    let huge = Header {
        n: u32::MAX,
        ..h.clone()
    };
    assert_refused_unchanged(&mut b, &huge, ct, &mut rng, |e| {
        matches!(e, CryptoError::TooManySkipped { .. })
    });
    // ... and a new chain with a huge pn is refused the same way.
    let r = b.encrypt(b"r", &mut rng).unwrap();
    a.decrypt(&r.0, &r.1, &mut rng).unwrap();
    let (nh, nct) = a.encrypt(b"next", &mut rng).unwrap();
    let forged = Header {
        pn: nh.pn + MAX_SKIP + 2,
        ..nh.clone()
    };
    assert_refused_unchanged(&mut b, &forged, &nct, &mut rng, |e| {
        matches!(e, CryptoError::TooManySkipped { .. })
    });
    assert_eq!(b.decrypt(&nh, &nct, &mut rng).unwrap(), b"next");
    assert_eq!(
        b.decrypt(&msgs[0].0, &msgs[0].1, &mut rng).unwrap(),
        0u32.to_be_bytes()
    );
}

#[test]
fn stored_skipped_keys_are_capped_per_session_oldest_first() {
    let (mut a, mut b, mut rng) = sessions(10, false);
    let chains = MAX_STORED_SKIPPED_KEYS / MAX_SKIP as usize + 1;
    let mut oldest_skipped = None;
    let mut newest_skipped = None;
    for chain in 0..chains {
        let mut sent: Vec<_> = (0..=MAX_SKIP)
            .map(|i| a.encrypt(&i.to_be_bytes(), &mut rng).unwrap())
            .collect();
        let (h, ct) = sent.pop().unwrap();
        b.decrypt(&h, &ct, &mut rng).unwrap();
        assert!(b.skipped_key_count() <= MAX_STORED_SKIPPED_KEYS);
        if chain == 0 {
            oldest_skipped = Some(sent[0].clone());
        }
        newest_skipped = Some(sent[sent.len() - 1].clone());
        let r = b.encrypt(b"turn", &mut rng).unwrap();
        a.decrypt(&r.0, &r.1, &mut rng).unwrap();
    }
    assert_eq!(
        b.skipped_key_count(),
        MAX_STORED_SKIPPED_KEYS,
        "the cap holds"
    );
    let (h, ct) = oldest_skipped.unwrap();
    assert_refused_unchanged(&mut b, &h, &ct, &mut rng, |e| {
        matches!(e, CryptoError::BadMac)
    });
    let (h, ct) = newest_skipped.unwrap();
    assert_eq!(
        b.decrypt(&h, &ct, &mut rng).unwrap(),
        (MAX_SKIP - 1).to_be_bytes()
    );
}

#[test]
fn sessions_serialize_and_resume_after_a_restart() {
    let (mut a, mut b, mut rng) = sessions(11, true);
    let m0 = a.encrypt(b"m0", &mut rng).unwrap();
    let m1 = a.encrypt(b"m1", &mut rng).unwrap();
    let m2 = a.encrypt(b"m2", &mut rng).unwrap();
    b.decrypt(&m0.0, &m0.1, &mut rng).unwrap();
    b.decrypt(&m2.0, &m2.1, &mut rng).unwrap();
    // Restart both devices.
    let b_bytes = b.to_bytes();
    let mut b2 = Session::from_bytes(&b_bytes).unwrap();
    assert!(b2 == b);
    assert_eq!(b2.to_bytes(), b_bytes);
    let mut a2 = Session::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(b2.skipped_key_count(), 1);
    assert_eq!(b2.decrypt(&m1.0, &m1.1, &mut rng).unwrap(), b"m1");
    let r = b2.encrypt(b"reply", &mut rng).unwrap();
    assert_eq!(a2.decrypt(&r.0, &r.1, &mut rng).unwrap(), b"reply");
    let m3 = a2.encrypt(b"m3", &mut rng).unwrap();
    assert_eq!(b2.decrypt(&m3.0, &m3.1, &mut rng).unwrap(), b"m3");
}

#[test]
fn bad_session_bytes_and_headers_are_refused_with_a_reason() {
    let (a, _, _) = sessions(12, true);
    let bytes = a.to_bytes();
    assert!(matches!(
        Session::from_bytes(&bytes[..bytes.len() / 2]),
        Err(CryptoError::BadSession(_))
    ));
    assert!(matches!(
        Session::from_bytes(b"{}"),
        Err(CryptoError::BadSession(_))
    ));
    let text = String::from_utf8(bytes)
        .unwrap()
        .replacen("\"version\":1", "\"version\":99", 1);
    let err = Session::from_bytes(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, CryptoError::BadSession(m) if m.contains("version 99")),
        "{err}"
    );
    let h = Header {
        dh: [9; 32],
        pn: 3,
        n: 0x0102_0304,
    };
    let hb = h.to_bytes();
    assert_eq!(&hb[32..], &[0, 0, 0, 3, 1, 2, 3, 4]);
    assert_eq!(Header::from_bytes(&hb).unwrap(), h);
    assert!(matches!(
        Header::from_bytes(&hb[..39]),
        Err(CryptoError::BadLength { got: 39, .. })
    ));
}
