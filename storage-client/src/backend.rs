//! Object stores opened by URL.
//!
//! | URL | store |
//! |---|---|
//! | `memory://NAME` | in-process; every open of the same NAME shares one store |
//! | `file:///abs/dir` | local directory; writes fsync file and directories before returning |
//! | `s3://bucket[/prefix]?endpoint=…&region=…&access_key_id=…&secret_access_key=…` | S3 protocol, path-style requests |
//!
//! S3 credentials not in the URL come from the usual `AWS_*` environment variables. Each may
//! instead name a file holding it (`access_key_id_file=`, `secret_access_key_file=`,
//! `session_token_file=`: a mounted Kubernetes Secret), so no secret sits in a config file. Plain
//! `http://` endpoints are allowed (loopback test servers, in-cluster MinIO); set
//! `virtual_hosted=true` for stores that require virtual-hosted-style requests. An `https://`
//! endpoint whose certificate a private CA issued takes `ca_file=/path/to/ca.pem`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ObjectStore;
use object_store::RetryConfig;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use strata_config::{Config, StorageSection};
use url::Url;

use crate::error::{Result, StorageError};

/// Options that apply to every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendOptions {
    /// fsync `file://` writes before acknowledging them. Turning this off makes "durable" acks
    /// lose data on power failure; it exists only for benchmarks that want to measure the rest.
    pub fsync: bool,
}

impl From<&StorageSection> for BackendOptions {
    fn from(s: &StorageSection) -> Self {
        Self { fsync: s.fsync }
    }
}

/// The shipped `[storage]` settings.
impl Default for BackendOptions {
    fn default() -> Self {
        Self::from(&Config::shipped().storage)
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// The URL with any secret query parameter masked, safe for logs and errors.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.query().is_some() => {
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let secret = k.contains("secret") || k.contains("token");
                    (
                        k.into_owned(),
                        if secret {
                            "***".to_owned()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Opens the object store a URL names.
pub fn open(url: &str, options: BackendOptions) -> Result<Arc<dyn ObjectStore>> {
    let parsed = Url::parse(url)
        .map_err(|e| invalid(url, format!("{e}; expected e.g. file:///var/lib/strata")))?;
    match parsed.scheme() {
        "memory" => open_memory(url, &parsed),
        "file" => open_file(url, &parsed, options),
        "s3" => open_s3(url, &parsed),
        other => Err(invalid(
            url,
            format!("scheme `{other}` is not supported; use file://, memory:// or s3://"),
        )),
    }
}

fn open_memory(url: &str, parsed: &Url) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let name = format!("{}{}", parsed.host_str().unwrap_or_default(), parsed.path());
    if name.is_empty() {
        return Err(invalid(
            url,
            "give the in-memory store a name, e.g. memory://node1",
        ));
    }
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory store registry poisoned");
    Ok(stores
        .entry(name)
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone())
}

fn open_file(url: &str, parsed: &Url, options: BackendOptions) -> Result<Arc<dyn ObjectStore>> {
    let dir = parsed.to_file_path().map_err(|()| {
        invalid(
            url,
            "a file URL needs an absolute path, e.g. file:///var/lib/strata",
        )
    })?;
    std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    if !options.fsync {
        tracing::warn!(dir = %dir.display(), "file storage fsync is off: acknowledged writes can be lost on power failure");
    }
    // object_store's `with_fsync` syncs the staged file before the rename that publishes it,
    // then the parent directory and any directory it had to create.
    let store = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| invalid(url, format!("cannot use directory {}: {e}", dir.display())))?
        .with_automatic_cleanup(true)
        .with_fsync(options.fsync);
    Ok(Arc::new(store))
}

fn open_s3(url: &str, parsed: &Url) -> Result<Arc<dyn ObjectStore>> {
    let bucket = parsed
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid(url, "missing bucket name, e.g. s3://my-bucket"))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        // The node pool moves a failing write to another node; long client-side retries
        // against a dead node would only delay that switch.
        .with_retry(RetryConfig {
            max_retries: 2,
            retry_timeout: std::time::Duration::from_secs(5),
            ..RetryConfig::default()
        });
    // Client options replace each other whole, so the CA goes in before the settings below
    // (allow_http) add theirs.
    if let Some((_, ca)) = parsed.query_pairs().find(|(k, _)| k == "ca_file") {
        let pem = std::fs::read(ca.as_ref())
            .map_err(|e| invalid(url, format!("cannot read ca_file {ca}: {e}")))?;
        let mut options = object_store::ClientOptions::new();
        let certs = object_store::Certificate::from_pem_bundle(&pem)
            .map_err(|e| invalid(url, format!("ca_file {ca} is not a PEM CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(invalid(
                url,
                format!("ca_file {ca} holds no PEM certificate"),
            ));
        }
        for cert in certs {
            options = options.with_root_certificate(cert);
        }
        builder = builder.with_client_options(options);
    }
    let mut region_set = false;
    for (key, value) in parsed.query_pairs() {
        // A secret from a file: the file's text, without the line end a Secret may carry.
        let (key, value) = match key
            .strip_suffix("_file")
            .filter(|k| matches!(*k, "access_key_id" | "secret_access_key" | "session_token"))
        {
            Some(setting) => {
                let text = std::fs::read_to_string(value.as_ref())
                    .map_err(|e| invalid(url, format!("cannot read {key} {value}: {e}")))?;
                (
                    std::borrow::Cow::Owned(setting.to_owned()),
                    std::borrow::Cow::Owned(text.trim().to_owned()),
                )
            }
            None => (key, value),
        };
        builder = match key.as_ref() {
            "ca_file" => builder,
            "endpoint" => {
                let allow_http = value.starts_with("http://");
                builder
                    .with_endpoint(value.as_ref())
                    .with_allow_http(allow_http)
            }
            "region" => {
                region_set = true;
                builder.with_region(value.as_ref())
            }
            "access_key_id" => builder.with_access_key_id(value.as_ref()),
            "secret_access_key" => builder.with_secret_access_key(value.as_ref()),
            "session_token" => builder.with_token(value.as_ref()),
            "virtual_hosted" => builder.with_virtual_hosted_style_request(value == "true"),
            other => {
                return Err(invalid(
                    url,
                    format!(
                        "unknown parameter `{other}`; accepted: endpoint, region, access_key_id, \
                         secret_access_key, session_token (each also as NAME_file=PATH), \
                         virtual_hosted, ca_file"
                    ),
                ));
            }
        };
    }
    if !region_set
        && std::env::var_os("AWS_REGION").is_none()
        && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        builder = builder.with_region("us-east-1");
    }
    let store = builder.build().map_err(|e| invalid(url, e.to_string()))?;
    let prefix = parsed.path().trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(store))
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}
