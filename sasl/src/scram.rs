//! SCRAM's arithmetic (RFC 5802) and the server's side of one login.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq as _;

use crate::error::{Result, SaslError};
use crate::{MIN_ITERATIONS, ScramCredential, ScramMechanism};

pub(crate) fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
            out.to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
            out.to_vec()
        }
    }
}

fn hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => {
            let mut mac = <Hmac<Sha256>>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = <Hmac<Sha512>>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

fn hash(mechanism: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match mechanism {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// StoredKey and ServerKey of a salted password.
pub(crate) fn keys(mechanism: ScramMechanism, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let client_key = hmac(mechanism, salted_password, b"Client Key");
    let stored_key = hash(mechanism, &client_key);
    let server_key = hmac(mechanism, salted_password, b"Server Key");
    (stored_key, server_key)
}

fn malformed(what: &str) -> SaslError {
    SaslError::Malformed {
        mechanism: "SCRAM",
        reason: what.to_owned(),
    }
}

/// What the server says next in a SCRAM login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramStep {
    /// The server-first message; the client answers with its proof.
    Challenge(Vec<u8>),
    /// The proof held: the user is authenticated; the server-final message proves the
    /// server knew the credential too.
    Success { user: String, server_final: Vec<u8> },
}

/// The server's side of one SCRAM login: client-first, then client-final.
#[derive(Debug)]
pub struct ScramExchange {
    mechanism: ScramMechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    /// The client named `user`; its credential is being looked up.
    Named {
        user: String,
        client_first_bare: String,
        client_nonce: String,
        gs2_header: String,
    },
    Challenged {
        user: String,
        credential: Option<ScramCredential>,
        auth_prefix: String,
        nonce: String,
        gs2_header: String,
    },
    Done,
}

impl ScramExchange {
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self {
            mechanism,
            state: State::Start,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// The user the client claims to be, once its first message is read.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Named { user, .. } | State::Challenged { user, .. } => Some(user),
            State::Start | State::Done => None,
        }
    }

    /// Reads the client-first message; the user name it claims, whose credential the
    /// caller looks up and passes to [`ScramExchange::challenge`].
    pub fn client_first(&mut self, message: &[u8]) -> Result<String> {
        if !matches!(self.state, State::Start) {
            return Err(malformed("client-first message out of order"));
        }
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        // gs2-header: a channel-binding flag, an optional authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or_else(|| malformed("no client-first-bare"))?;
        match flag {
            "n" | "y" => {}
            _ if flag.starts_with("p=") => {
                return Err(malformed("channel binding is not supported"));
            }
            _ => return Err(malformed("bad channel-binding flag")),
        }
        let mut user = None;
        let mut nonce = None;
        for attribute in bare.split(',') {
            match attribute.split_once('=') {
                Some(("n", name)) => user = Some(unescape(name)?),
                Some(("r", r)) if !r.is_empty() => nonce = Some(r.to_owned()),
                // Kafka's delegation tokens ride on an extension; there are none here.
                Some(("tokenauth", "true")) => {
                    return Err(malformed("delegation tokens are not supported"));
                }
                Some(("m", _)) => return Err(malformed("mandatory extension not supported")),
                _ => {}
            }
        }
        let user = user.ok_or_else(|| malformed("no user name (n=)"))?;
        let client_nonce = nonce.ok_or_else(|| malformed("no nonce (r=)"))?;
        if let Some(authzid) = authzid.strip_prefix("a=")
            && unescape(authzid)? != user
        {
            return Err(malformed(
                "an authorization id other than the user is not supported",
            ));
        }
        self.state = State::Named {
            user: user.clone(),
            client_first_bare: bare.to_owned(),
            client_nonce,
            gs2_header: format!("{flag},{authzid},"),
        };
        Ok(user)
    }

    /// The server-first message, salting with `credential`'s salt. An unknown user
    /// (`None`) gets a made-up salt, so the answer does not tell who exists; its proof fails.
    pub fn challenge(&mut self, credential: Option<ScramCredential>) -> Result<ScramStep> {
        let server_nonce = STANDARD.encode(strata_clock::secret_bytes::<18>());
        self.challenge_with(credential, &server_nonce)
    }

    fn challenge_with(
        &mut self,
        credential: Option<ScramCredential>,
        server_nonce: &str,
    ) -> Result<ScramStep> {
        let State::Named {
            user,
            client_first_bare,
            client_nonce,
            gs2_header,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(malformed("challenge out of order"));
        };
        let credential = credential.filter(|c| c.mechanism == self.mechanism);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (strata_clock::secret_bytes::<24>().to_vec(), MIN_ITERATIONS),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(&salt));
        let auth_prefix = format!("{client_first_bare},{server_first}");
        self.state = State::Challenged {
            user,
            credential,
            auth_prefix,
            nonce,
            gs2_header,
        };
        Ok(ScramStep::Challenge(server_first.into_bytes()))
    }

    /// Checks the client-final message's proof. A wrong proof, nonce or user is
    /// `Ok(None)`: the login failed (the caller says so without saying why).
    pub fn client_final(&mut self, message: &[u8]) -> Result<Option<ScramStep>> {
        let State::Challenged {
            user,
            credential,
            auth_prefix,
            nonce,
            gs2_header,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(malformed("client-final message out of order"));
        };
        let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof (p=)"))?;
        let mut binding = None;
        let mut echoed = None;
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", c)) => binding = Some(c),
                Some(("r", r)) => echoed = Some(r),
                _ => {}
            }
        }
        let binding = binding.ok_or_else(|| malformed("no channel binding (c=)"))?;
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        let Some(credential) = credential else {
            return Ok(None);
        };
        // librdkafka echoes its own nonce in front of the whole one; Kafka accepts a nonce
        // that ends with the server's, so this does too (the proof covers what was sent).
        let echoes = echoed.is_some_and(|r| r.ends_with(nonce.as_str()));
        if !echoes || binding != STANDARD.encode(&gs2_header) {
            return Ok(None);
        }
        let auth_message = format!("{auth_prefix},{without_proof}");
        let signature = hmac(
            self.mechanism,
            &credential.stored_key,
            auth_message.as_bytes(),
        );
        if proof.len() != signature.len() {
            return Ok(None);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored = hash(self.mechanism, &client_key);
        if !bool::from(stored.ct_eq(&credential.stored_key)) {
            return Ok(None);
        }
        let server_signature = hmac(
            self.mechanism,
            &credential.server_key,
            auth_message.as_bytes(),
        );
        let server_final = format!("v={}", STANDARD.encode(server_signature)).into_bytes();
        Ok(Some(ScramStep::Success { user, server_final }))
    }
}

/// SCRAM's escaping of `,` and `=` in names.
fn unescape(name: &str) -> Result<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 3)
            .ok_or_else(|| malformed("bad escape in name"))?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return Err(malformed("bad escape in name")),
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests;
