//! Speed of the client cryptography: key generation, X3DH on both sides, and the Double
//! Ratchet's encrypt / decrypt (same chain, and with a new DH ratchet step).
//! Run: `cargo bench --bench crypto`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use e2ee_harness::crypto::identity::IdentityKeyPair;
use e2ee_harness::crypto::keypair::KeyPair;
use e2ee_harness::crypto::prekeys::{generate_one_time_batch, OneTimePreKey, SignedPreKey};
use e2ee_harness::crypto::ratchet::Session;
use e2ee_harness::crypto::x3dh::{self, InitialMessage, PreKeyBundle};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A typical chat message.
const PLAINTEXT: &[u8] = &[0x61; 256];

struct Bob {
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: Vec<OneTimePreKey>,
    bundle: PreKeyBundle,
}

fn bob(rng: &mut ChaCha20Rng) -> Bob {
    let identity = IdentityKeyPair::generate(rng);
    let signed = SignedPreKey::generate(&identity, 1, rng);
    let one_time = generate_one_time_batch(1, 1, rng);
    let bundle = PreKeyBundle {
        identity_key: identity.public(),
        signed_prekey_id: signed.id,
        signed_prekey: signed.public(),
        signed_prekey_signature: signed.signature,
        one_time_prekey: Some((one_time[0].id, one_time[0].public())),
    };
    Bob {
        identity,
        signed,
        one_time,
        bundle,
    }
}

fn keygen(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("keygen");
    g.bench_function("identity_ed25519", |b| {
        b.iter(|| IdentityKeyPair::generate(&mut rng))
    });
    g.bench_function("x25519_key_pair", |b| {
        b.iter(|| KeyPair::generate(&mut rng))
    });
    let identity = IdentityKeyPair::generate(&mut rng);
    g.bench_function("signed_prekey", |b| {
        b.iter(|| SignedPreKey::generate(&identity, 1, &mut rng))
    });
    g.finish();
}

fn x3dh_bench(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let alice = IdentityKeyPair::generate(&mut rng);
    let b = bob(&mut rng);
    let mut g = c.benchmark_group("x3dh");
    g.bench_function("initiate", |bench| {
        bench.iter(|| x3dh::initiate(&alice, black_box(&b.bundle), &mut rng).unwrap())
    });
    let (msg, _) = x3dh::initiate(&alice, &b.bundle, &mut rng).unwrap();
    let wire = msg.to_bytes();
    g.bench_function("respond", |bench| {
        bench.iter_batched(
            || b.one_time.clone(),
            |mut one_time| {
                let msg = InitialMessage::from_bytes(black_box(&wire)).unwrap();
                x3dh::respond(&b.identity, &b.signed, &mut one_time, &msg).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn ratchet(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let mut b = bob(&mut rng);
    let (msg, a_out) = x3dh::initiate(&alice_id, &b.bundle, &mut rng).unwrap();
    let b_out = x3dh::respond(&b.identity, &b.signed, &mut b.one_time, &msg).unwrap();
    let mut alice = Session::initiator(&a_out, &b.signed.public(), &mut rng).unwrap();
    let mut bob = Session::responder(&b_out, &b.signed);
    let (h0, c0) = alice.encrypt(PLAINTEXT, &mut rng).unwrap();
    bob.decrypt(&h0, &c0, &mut rng).unwrap();

    let mut g = c.benchmark_group("ratchet");
    let mut sender = alice.clone();
    g.bench_function("encrypt", |bench| {
        bench.iter(|| sender.encrypt(black_box(PLAINTEXT), &mut rng).unwrap())
    });

    // Bob already has Alice's receiving chain: no DH step, one KDF_CK and the cipher.
    let (h1, c1) = alice.encrypt(PLAINTEXT, &mut rng).unwrap();
    g.bench_function("decrypt_same_chain", |bench| {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        bench.iter_batched(
            || bob.clone(),
            |mut s| s.decrypt(&h1, black_box(&c1), &mut rng).unwrap(),
            BatchSize::SmallInput,
        )
    });

    // Bob's reply carries a new ratchet key: Alice does a DH ratchet step (two DHs, one
    // key-pair generation, two KDF_RKs) before decrypting.
    let (hb, cb) = bob.encrypt(PLAINTEXT, &mut rng).unwrap();
    g.bench_function("decrypt_new_dh_step", |bench| {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        bench.iter_batched(
            || alice.clone(),
            |mut s| s.decrypt(&hb, black_box(&cb), &mut rng).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, keygen, x3dh_bench, ratchet);
criterion_main!(benches);
