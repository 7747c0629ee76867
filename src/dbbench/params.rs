//! Generated parameter values for an operation: random picks of seeded rows, unique sequence
//! numbers, random key material. Deterministic for a given RNG seed, so runs are repeatable.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use tokio_postgres::types::ToSql;

use super::workload::Param;

/// One value, sent with the type its [`Param`] declares.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Uuid(uuid::Uuid),
}

impl Value {
    pub(crate) fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int(v) => v,
            Value::Bytes(v) => v,
            Value::Text(v) => v,
            Value::Uuid(v) => v,
        }
    }
}

/// Produces parameter values; owned by the (single) arrival dispatcher.
pub(crate) struct ParamGenerator {
    rng: ChaCha8Rng,
    counts: BTreeMap<String, u64>,
    seq: i64,
}

impl ParamGenerator {
    pub(crate) fn new(rng: ChaCha8Rng, counts: BTreeMap<String, u64>) -> ParamGenerator {
        ParamGenerator {
            rng,
            counts,
            seq: 0,
        }
    }

    pub(crate) fn values(&mut self, params: &[Param]) -> Vec<Value> {
        params.iter().map(|p| self.value(p)).collect()
    }

    fn value(&mut self, p: &Param) -> Value {
        match p {
            Param::Pick(count) => {
                let n = self.counts.get(count).copied().unwrap_or(1).max(1);
                Value::Int(self.rng.gen_range(1..=n) as i64)
            }
            Param::Int(lo, hi) => Value::Int(self.rng.gen_range(*lo..=*hi)),
            Param::Seq => {
                self.seq += 1;
                Value::Int(self.seq)
            }
            Param::Bytes(n) => Value::Bytes(self.bytes(*n)),
            Param::Hex(n) => Value::Text(hex::encode(self.bytes(*n))),
            Param::Base64(n) => {
                Value::Text(base64::engine::general_purpose::STANDARD.encode(self.bytes(*n)))
            }
            Param::Uuid => {
                let mut b = [0u8; 16];
                self.rng.fill_bytes(&mut b);
                Value::Uuid(uuid::Builder::from_random_bytes(b).into_uuid())
            }
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn values_follow_their_declaration() {
        let counts = BTreeMap::from([("devices".to_string(), 10u64)]);
        let mut g = ParamGenerator::new(ChaCha8Rng::seed_from_u64(7), counts);
        let params = [
            Param::Pick("devices".into()),
            Param::Seq,
            Param::Seq,
            Param::Bytes(32),
            Param::Hex(4),
            Param::Base64(3),
            Param::Uuid,
            Param::Int(5, 5),
        ];
        for _ in 0..100 {
            let v = g.values(&params);
            assert!(matches!(v[0], Value::Int(n) if (1..=10).contains(&n)));
            assert!(matches!(&v[3], Value::Bytes(b) if b.len() == 32));
            assert!(matches!(&v[4], Value::Text(t) if t.len() == 8));
            assert!(matches!(&v[5], Value::Text(t) if t.len() == 4));
            assert!(matches!(&v[6], Value::Uuid(u) if u.get_version_num() == 4));
            assert!(matches!(v[7], Value::Int(5)));
        }
        // seq is unique and increasing across calls
        let v = g.values(&[Param::Seq]);
        assert!(matches!(v[0], Value::Int(201)));
    }
}
