//! A throwaway certificate authority for tests: a CA, server certificates for loopback and
//! client certificates with a chosen common name, written as PEM files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA whose certificate is `ca.crt` in `dir`; it signs what the tests ask for.
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`, writing its files into `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.crt"), issuer.pem()).unwrap();
        Self {
            dir: dir.to_owned(),
            issuer,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A server certificate for `localhost`, 127.0.0.1 and `names`, as `{file}.crt/.key`;
    /// it also serves as a client certificate with common name `file`.
    pub fn server(&self, file: &str, names: &[&str]) -> Pair {
        let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        sans.extend(names.iter().map(|n| (*n).to_owned()));
        self.issue(file, file, &sans)
    }

    /// A client certificate with common name `cn` (and `sans` as DNS names).
    pub fn client(&self, file: &str, cn: &str, sans: &[&str]) -> Pair {
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        self.issue(file, cn, &sans)
    }

    fn issue(&self, file: &str, cn: &str, sans: &[String]) -> Pair {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(s.clone().try_into().unwrap()),
            })
            .collect();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pair = Pair {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        // Written whole, then renamed: a reloading reader never sees half a file.
        write_atomically(&pair.cert, cert.pem().as_bytes());
        write_atomically(&pair.key, key.serialize_pem().as_bytes());
        pair
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, path).unwrap();
}
