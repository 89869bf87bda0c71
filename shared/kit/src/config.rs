//! Reading a function's settings from environment variables, once, at start.
//!
//! Every service declares, per function binary, which variables its config reads
//! ([`FunctionEnv`]); a test checks that list against the service templates.

use std::{env, path::PathBuf, str::FromStr, time::Duration};

/// The environment variables one function binary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionEnv {
    /// The binary (and Lambda function) name, e.g. `orders-http`.
    pub binary: &'static str,
    /// The variables its config reads.
    pub vars: &'static [&'static str],
}

/// A missing or unusable setting; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "environment variable {0} is not set (see services/<name>/template.yaml for its value)"
    )]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name)?.ok_or(ConfigError::Missing(name))
}

/// An optional variable; empty counts as unset.
pub fn optional(name: &'static str) -> Result<Option<String>, ConfigError> {
    match env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(env::VarError::NotPresent) => Ok(None),
        Err(env::VarError::NotUnicode(_)) => Err(ConfigError::Invalid {
            name,
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// An optional variable parsed with [`FromStr`], or `default` when unset.
pub fn parsed_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match optional(name)? {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

/// Settings of a function that needs only its service's table (the HTTP and events functions
/// of every service), read from the variable `var`, e.g. `ORDERS_TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    pub table: String,
}

impl TableConfig {
    pub fn from_env(var: &'static str) -> Result<Self, ConfigError> {
        Ok(TableConfig {
            table: required(var)?,
        })
    }
}

/// Connecting (TCP and TLS) to a regional endpoint takes milliseconds; a connect slower than
/// this is a network fault, better retried on a new connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of one call. DynamoDB and EventBridge answer in milliseconds (a transaction in
/// tens); an attempt taking seconds is stuck, and retrying it is safe: the SDK sends the same
/// idempotency token (`ClientRequestToken`) with every attempt of a `TransactWriteItems`.
pub const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A call with all its attempts and backoffs: below the shortest default function timeout
/// (`HttpTimeout`, 10 s), so a brownout fails the call, not the whole invocation.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
/// Attempts per call (the first and two retries), the SDK's standard retry mode: throttling,
/// 5xx, timeouts and I/O errors are retried, with exponential backoff and full jitter.
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's backoff ceiling (the SDK's default, 1 s, is too long for a function with
/// a few seconds to run); it doubles per retry up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The ceiling of one backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The variable naming a PEM file of CAs the HTTPS client trusts besides the Amazon roots (the
/// name the other AWS SDKs and the CLI read), e.g. a local TLS endpoint's CA.
pub const CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// The AWS SDK configuration for this process: region and credentials from the Lambda
/// environment, and the standard `AWS_ENDPOINT_URL` override (used locally for moto). Every
/// client built from it has explicit timeouts ([`CONNECT_TIMEOUT`],
/// [`OPERATION_ATTEMPT_TIMEOUT`], [`OPERATION_TIMEOUT`]) and the standard retry mode with
/// [`MAX_ATTEMPTS`] and [`INITIAL_BACKOFF`].
///
/// The HTTPS client is the SDK's default one (rustls with aws-lc, proxy from the environment)
/// but trusts the Amazon Trust Services roots that every AWS endpoint chains to, instead of
/// loading the system store: reading and parsing ~140 system roots was ~4.5 ms of a ~8 ms
/// init (docs/performance.md). A CA bundle named by [`CA_BUNDLE_VAR`] is trusted besides them
/// (and the system roots are still not loaded); without one, the system roots are added back
/// when an `AWS_ENDPOINT_URL*` points at a non-AWS HTTPS endpoint. A bundle that cannot be used
/// is logged as a warning and left out.
pub async fn aws() -> aws_config::SdkConfig {
    let loader =
        with_timeouts_and_retries(aws_config::defaults(aws_config::BehaviorVersion::latest()));
    let roots = match roots(trust(std::env::vars())) {
        Ok(roots) => roots,
        Err(e) => {
            tracing::warn!(error = %e, "{CA_BUNDLE_VAR} not used");
            roots(trust(
                std::env::vars().filter(|(name, _)| name != CA_BUNDLE_VAR),
            ))
            .unwrap_or_default()
        }
    };
    let loader = match tls_context(&roots) {
        Ok(context) => with_https_client(loader, context),
        Err(e) => {
            tracing::warn!(error = %e, "custom trust store unusable: using the SDK's default HTTPS client");
            loader
        }
    };
    loader.load().await
}

/// `loader` with this module's timeouts and retry configuration.
fn with_timeouts_and_retries(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    use aws_config::{retry::RetryConfig, timeout::TimeoutConfig};
    loader
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
}

/// Amazon Root CA 1–4 and Starfield Services Root CA - G2 (which cross-signs them), from
/// <https://www.amazontrust.com/repository/>.
const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("amazon-trust-services-roots.pem");

/// Which roots the HTTPS client trusts, besides the Amazon ones.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Trust {
    /// Only the Amazon roots: AWS endpoints, and plain-HTTP overrides such as moto's.
    Amazon,
    /// The system roots too: an `AWS_ENDPOINT_URL*` at a non-AWS HTTPS endpoint, whose
    /// certificate may chain to any of them.
    System,
    /// The CAs of this PEM file ([`CA_BUNDLE_VAR`]), and not the system roots.
    Bundle(PathBuf),
}

/// The trust the environment `vars` asks for.
fn trust(vars: impl IntoIterator<Item = (String, String)>) -> Trust {
    let mut native = false;
    for (name, value) in vars {
        if name == CA_BUNDLE_VAR && !value.trim().is_empty() {
            return Trust::Bundle(PathBuf::from(value.trim()));
        }
        native |= name.starts_with("AWS_ENDPOINT_URL")
            && value.trim().to_ascii_lowercase().starts_with("https://")
            && !value.contains(".amazonaws.com")
            && !value.contains(".api.aws");
    }
    if native { Trust::System } else { Trust::Amazon }
}

/// A CA bundle that cannot be trusted; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("cannot read the CA bundle {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the CA bundle {path} holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("the CA bundle {path} holds a certificate that is not a usable root: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The certificates the trust store gets: the Amazon roots, plus a bundle's.
#[derive(Debug, Clone, Default)]
struct Roots {
    native: bool,
    bundle: Option<Vec<u8>>,
}

/// The roots of `trust`, reading and checking its bundle: the SDK's client panics on a
/// certificate it cannot use, so only the bundle's usable roots reach it (the others are left
/// out with a warning, as a system bundle may hold a few that rustls rejects).
fn roots(trust: Trust) -> Result<Roots, CaBundleError> {
    match trust {
        Trust::Amazon => Ok(Roots::default()),
        Trust::System => Ok(Roots {
            native: true,
            bundle: None,
        }),
        Trust::Bundle(path) => {
            let pem = std::fs::read(&path).map_err(|source| CaBundleError::Unreadable {
                path: path.clone(),
                source,
            })?;
            let (usable, left_out) =
                usable_roots(&pem).map_err(|reason| CaBundleError::Invalid {
                    path: path.clone(),
                    reason,
                })?;
            if usable.is_empty() {
                return Err(if left_out == 0 {
                    CaBundleError::Empty { path }
                } else {
                    CaBundleError::Invalid {
                        path,
                        reason: format!("none of its {left_out} certificate(s) is a usable root"),
                    }
                });
            }
            if left_out > 0 {
                tracing::warn!(
                    path = %path.display(),
                    left_out,
                    "{CA_BUNDLE_VAR}: certificates that are not usable roots left out"
                );
            }
            Ok(Roots {
                native: false,
                bundle: Some(usable),
            })
        }
    }
}

/// The certificates of `pem` that are usable roots, as PEM, and how many were left out; an
/// error when `pem` is not well-formed PEM.
fn usable_roots(pem: &[u8]) -> Result<(Vec<u8>, usize), String> {
    use base64::Engine as _;
    use rustls_pki_types::{CertificateDer, pem::PemObject as _};
    let mut store = rustls::RootCertStore::empty();
    let (mut usable, mut left_out) = (Vec::new(), 0);
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("{e:?}"))?;
        if store.add(cert.clone()).is_err() {
            left_out += 1;
            continue;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        usable.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            usable.extend_from_slice(line);
            usable.push(b'\n');
        }
        usable.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    Ok((usable, left_out))
}

/// The Amazon roots, plus the system's or a bundle's as `roots` says.
fn tls_context(
    roots: &Roots,
) -> Result<aws_smithy_http_client::tls::TlsContext, aws_smithy_http_client::HttpClientError> {
    use aws_smithy_http_client::tls::{TlsContext, TrustStore};
    let mut trust = TrustStore::empty()
        .with_native_roots(roots.native)
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
    if let Some(bundle) = &roots.bundle {
        trust = trust.with_pem_certificate(bundle.clone());
    }
    TlsContext::builder().with_trust_store(trust).build()
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy from the environment) with the
/// trust store of `context`.
fn with_https_client(
    loader: aws_config::ConfigLoader,
    context: aws_smithy_http_client::tls::TlsContext,
) -> aws_config::ConfigLoader {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    loader.http_client(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let err = required("KIT_TEST_SURELY_UNSET").unwrap_err();
        assert_eq!(err, ConfigError::Missing("KIT_TEST_SURELY_UNSET"));
        assert!(err.to_string().contains("KIT_TEST_SURELY_UNSET"));
    }

    #[test]
    fn a_table_config_names_its_missing_variable() {
        assert_eq!(
            TableConfig::from_env("KIT_TEST_SURELY_UNSET_TABLE"),
            Err(ConfigError::Missing("KIT_TEST_SURELY_UNSET_TABLE"))
        );
    }

    fn var(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn aws_endpoints_and_local_http_endpoints_need_only_the_amazon_roots() {
        assert_eq!(
            trust([var("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")]),
            Trust::Amazon
        );
        assert_eq!(
            trust([var(
                "AWS_ENDPOINT_URL_DYNAMODB",
                "https://dynamodb.eu-west-1.amazonaws.com"
            )]),
            Trust::Amazon
        );
        assert_eq!(trust([var("HOME", "https://example.com")]), Trust::Amazon);
        assert_eq!(
            trust([var("AWS_ENDPOINT_URL", "https://localstack.internal:4566")]),
            Trust::System
        );
    }

    #[test]
    fn a_ca_bundle_replaces_the_system_roots_for_a_local_https_endpoint() {
        assert_eq!(
            trust([
                var("AWS_ENDPOINT_URL", "https://127.0.0.1:8443"),
                var("AWS_CA_BUNDLE", "/tmp/local-ca.pem"),
            ]),
            Trust::Bundle(PathBuf::from("/tmp/local-ca.pem")),
            "with AWS_CA_BUNDLE the system roots are not loaded"
        );
        assert_eq!(
            trust([var("AWS_CA_BUNDLE", " ")]),
            Trust::Amazon,
            "an empty AWS_CA_BUNDLE counts as unset"
        );
    }

    /// A file in the system temp directory, unique to the test, holding `contents`.
    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("kit-{}-{name}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The number of certificates in `pem` that the SDK's client would parse as roots, and the
    /// number it would choke on.
    fn parsed_by_the_client(pem: &[u8]) -> (usize, usize) {
        let (usable, left_out) = usable_roots(pem).unwrap();
        (
            usable.windows(11).filter(|w| w == b"BEGIN CERTI").count(),
            left_out,
        )
    }

    #[test]
    fn a_readable_ca_bundle_is_trusted_without_the_system_roots() {
        let path = temp_file("ca.pem", AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
        let roots = roots(Trust::Bundle(path.clone())).unwrap();
        assert!(!roots.native);
        let bundle = roots.bundle.as_deref().unwrap();
        assert_eq!(parsed_by_the_client(bundle), (5, 0));
        assert!(tls_context(&roots).is_ok());
        std::fs::remove_file(path).unwrap();
    }

    const NOT_A_CERTIFICATE: &[u8] =
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_bundle_s_unusable_certificates_are_left_out_and_the_others_trusted() {
        let mut pem = NOT_A_CERTIFICATE.to_vec();
        pem.extend_from_slice(AMAZON_TRUST_SERVICES_ROOTS.as_bytes());
        let path = temp_file("mixed.pem", &pem);
        let roots = roots(Trust::Bundle(path.clone())).unwrap();
        assert_eq!(
            parsed_by_the_client(roots.bundle.as_deref().unwrap()),
            (5, 0),
            "only the usable roots reach the client"
        );
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_unusable_ca_bundle_is_an_error_that_names_the_file() {
        let missing = PathBuf::from("/surely/not/here/ca.pem");
        let err = roots(Trust::Bundle(missing)).unwrap_err();
        assert!(matches!(err, CaBundleError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("/surely/not/here/ca.pem"));

        let empty = temp_file("empty.pem", b"no certificate here\n");
        let err = roots(Trust::Bundle(empty.clone())).unwrap_err();
        assert!(matches!(err, CaBundleError::Empty { .. }), "{err}");

        let garbage = temp_file("garbage.pem", NOT_A_CERTIFICATE);
        let err = roots(Trust::Bundle(garbage.clone())).unwrap_err();
        assert!(matches!(err, CaBundleError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("garbage.pem"));

        let broken = temp_file(
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        let err = roots(Trust::Bundle(broken.clone())).unwrap_err();
        assert!(matches!(err, CaBundleError::Invalid { .. }), "{err}");
        for path in [empty, garbage, broken] {
            std::fs::remove_file(path).unwrap();
        }
    }

    #[test]
    fn the_embedded_amazon_roots_make_a_client() {
        assert_eq!(
            AMAZON_TRUST_SERVICES_ROOTS
                .matches("BEGIN CERTIFICATE")
                .count(),
            5
        );
        assert_eq!(
            parsed_by_the_client(AMAZON_TRUST_SERVICES_ROOTS.as_bytes()),
            (5, 0)
        );
        assert!(tls_context(&Roots::default()).is_ok());
    }

    #[tokio::test]
    async fn every_client_gets_explicit_timeouts_and_a_bounded_retry() {
        let config = with_timeouts_and_retries(
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1")),
        )
        .load()
        .await;
        let timeouts = config.timeout_config().expect("a timeout config");
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(OPERATION_ATTEMPT_TIMEOUT)
        );
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        let retry = config.retry_config().expect("a retry config");
        assert_eq!(retry.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(retry.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(retry.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(retry.max_backoff(), MAX_BACKOFF);
        // The attempts fit in the operation budget.
        assert!(OPERATION_ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
    }

    #[test]
    fn defaults_apply_only_when_unset() {
        assert_eq!(parsed_or("KIT_TEST_SURELY_UNSET_2", 7_u32), Ok(7));
    }
}
