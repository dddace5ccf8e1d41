//! SASL's mechanisms as Strata serves them, with no I/O: SCRAM-SHA-256 and -512 (RFC 5802,
//! RFC 7677) credentials, arithmetic and the server's side of one exchange, and PLAIN's
//! message. The catalog stores the credentials; the Kafka listener drives the exchanges.
//! Everything here reads bytes a client sent before it proved anything, so it is fuzzed
//! (`sasl/fuzz`).

mod error;
pub mod plain;
mod scram;

use serde::{Deserialize, Serialize};

pub use error::{Result, SaslError};
pub use scram::{ScramExchange, ScramStep};

/// The hash a SCRAM credential is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

/// Fewer iterations are refused (RFC 7677's floor; Kafka's too).
pub const MIN_ITERATIONS: u32 = 4096;
/// The iterations a password set without a count gets: twice RFC 7677's floor.
pub const DEFAULT_ITERATIONS: u32 = 8192;
/// More would let one login cost seconds of a proxy's CPU.
pub const MAX_ITERATIONS: u32 = 16384;

impl ScramMechanism {
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Kafka's numbering in Describe/AlterUserScramCredentials.
    pub fn kafka_type(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(t: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.kafka_type() == t)
    }
}

/// What a login with one mechanism is checked against: the salt and iteration count a
/// client needs to salt its password, and the two keys the server keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
}

/// Names the mechanism and iterations only: keys are secrets.
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// A credential for `password` with a new random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: u32) -> Self {
        let salt: [u8; 24] = strata_clock::secret_bytes();
        let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, salt.to_vec(), iterations, &salted)
    }

    /// The credential for a password already salted by the client (Kafka's
    /// AlterUserScramCredentials sends it so).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted_password: &[u8],
    ) -> Self {
        let (stored_key, server_key) = scram::keys(mechanism, salted_password);
        Self {
            mechanism,
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }

    /// Whether `password` is this credential's (for SASL PLAIN), in constant time.
    pub fn matches_password(&self, password: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let salted = scram::salted_password(
            self.mechanism,
            password.as_bytes(),
            &self.salt,
            self.iterations,
        );
        let (stored, _) = scram::keys(self.mechanism, &salted);
        stored.ct_eq(&self.stored_key).into()
    }

    /// Refuses a credential a login could not use safely.
    pub fn check(&self) -> Result<()> {
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&self.iterations) {
            return Err(SaslError::InvalidCredential(format!(
                "{} iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}",
                self.mechanism.name(),
                self.iterations
            )));
        }
        if self.salt.len() < 16 {
            return Err(SaslError::InvalidCredential(
                "a SCRAM salt must be at least 16 bytes".into(),
            ));
        }
        Ok(())
    }
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
