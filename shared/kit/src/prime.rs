//! Opening a function's connections during init, when init is off the request path.
//!
//! A new sandbox's first call to DynamoDB pays a TCP and a TLS handshake that later calls do
//! not (docs/performance.md, "The first request with TLS"). Under provisioned concurrency
//! (`AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency`) Lambda runs init before any
//! request arrives, so [`dynamodb`] sends one cheap call there: a `GetItem` of [`PRIME_KEY`], a
//! key no item has, which every function's policy allows on its table. The answer is ignored;
//! the kept-alive connection stays in the client's pool for the first request, and the first
//! TLS connection's one-time costs (AWS-LC seeding its random generator, the handshake) are
//! paid in init. On demand init is on the first request's path, and priming made init + first
//! request slower in the bench (the same costs plus one round trip), so it is off there.
//!
//! The SDK's pool drops a connection idle for 90 s, so a provisioned sandbox whose first
//! request comes later opens a new connection (the random generator stays seeded).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;

/// The variable in which Lambda says how this sandbox was initialised.
pub const INITIALIZATION_TYPE_VAR: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";

/// The `pk` and `sk` of the priming `GetItem`: no item is ever written under it.
pub const PRIME_KEY: &str = "kit#prime";

/// The longest priming may hold up init: a handshake takes milliseconds, and a connection that
/// cannot be opened by then is left to the first request (with its own timeouts and retries).
pub const PRIME_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a function opens its connections during init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priming {
    /// On demand (and anything else): init is on the first request's path.
    Off,
    /// Under provisioned concurrency: init runs before any request.
    DuringInit,
}

impl Priming {
    /// From [`INITIALIZATION_TYPE_VAR`].
    pub fn from_env() -> Self {
        Self::for_initialization_type(std::env::var(INITIALIZATION_TYPE_VAR).ok().as_deref())
    }

    fn for_initialization_type(initialization_type: Option<&str>) -> Self {
        match initialization_type.map(str::trim) {
            Some("provisioned-concurrency") => Priming::DuringInit,
            _ => Priming::Off,
        }
    }
}

/// The DynamoDB client of a function whose requests use `table` (keyed `pk`, `sk`, as every
/// table of the template), its connection opened when [`Priming::from_env`] says so.
pub async fn dynamodb(config: &aws_config::SdkConfig, table: &str) -> aws_sdk_dynamodb::Client {
    let client = aws_sdk_dynamodb::Client::new(config);
    prime_dynamodb(&client, table, Priming::from_env()).await;
    client
}

/// Sends the priming `GetItem` when `priming` is [`Priming::DuringInit`]; a failure is logged,
/// never returned: the first request then opens its connection as it would have.
async fn prime_dynamodb(client: &aws_sdk_dynamodb::Client, table: &str, priming: Priming) {
    if priming == Priming::Off {
        return;
    }
    let started = Instant::now();
    let call = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(PRIME_KEY.to_owned()))
        .key("sk", AttributeValue::S(PRIME_KEY.to_owned()))
        .send();
    match tokio::time::timeout(PRIME_TIMEOUT, call).await {
        Ok(Ok(_)) => tracing::debug!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "DynamoDB connection opened during init"
        ),
        Ok(Err(e)) => tracing::warn!(
            error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
            "priming the DynamoDB connection failed: the first request opens it"
        ),
        Err(_) => tracing::warn!(
            timeout_ms = PRIME_TIMEOUT.as_millis() as u64,
            "priming the DynamoDB connection timed out: the first request opens it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

    use super::*;

    #[test]
    fn only_provisioned_concurrency_primes() {
        let of = Priming::for_initialization_type;
        assert_eq!(of(Some("provisioned-concurrency")), Priming::DuringInit);
        assert_eq!(of(Some("on-demand")), Priming::Off);
        assert_eq!(of(Some("snap-start")), Priming::Off);
        assert_eq!(of(None), Priming::Off);
    }

    /// What the fake DynamoDB saw: one entry per connection, the `X-Amz-Target` and body of
    /// each request on it.
    type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

    /// A plain-HTTP DynamoDB that answers every request `{}` on kept-alive connections.
    async fn fake_dynamodb() -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let connection = {
                    let mut all = record.lock().unwrap();
                    all.push(Vec::new());
                    all.len() - 1
                };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    loop {
                        let (mut target, mut length) = (String::new(), 0);
                        loop {
                            let mut line = String::new();
                            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            let (name, value) = line.split_once(':').unwrap_or((line, ""));
                            match name.to_ascii_lowercase().as_str() {
                                "x-amz-target" => target = value.trim().to_owned(),
                                "content-length" => length = value.trim().parse().unwrap(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; length];
                        socket.read_exact(&mut body).await.unwrap();
                        record.lock().unwrap()[connection]
                            .push((target, String::from_utf8(body).unwrap()));
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 2\r\n\r\n{}";
                        socket.get_mut().write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (endpoint, seen)
    }

    async fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .load()
            .await;
        aws_sdk_dynamodb::Client::new(&config)
    }

    async fn a_request(client: &aws_sdk_dynamodb::Client) {
        client
            .get_item()
            .table_name("t")
            .key("pk", AttributeValue::S("ORDER#1".into()))
            .key("sk", AttributeValue::S("ORDER".into()))
            .send()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn under_provisioned_concurrency_the_first_request_reuses_the_connection_opened_in_init()
    {
        let (endpoint, seen) = fake_dynamodb().await;
        let client = client(&endpoint).await;
        prime_dynamodb(&client, "t", Priming::DuringInit).await;
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "init opened one connection");
            let (target, body) = &seen[0][0];
            assert_eq!(target, "DynamoDB_20120810.GetItem");
            assert!(body.contains(PRIME_KEY) && body.contains("\"t\""), "{body}");
        }
        a_request(&client).await;
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the first request opened no connection");
        assert_eq!(seen[0].len(), 2);
    }

    #[tokio::test]
    async fn on_demand_init_opens_no_connection() {
        let (endpoint, seen) = fake_dynamodb().await;
        let client = client(&endpoint).await;
        prime_dynamodb(&client, "t", Priming::Off).await;
        assert!(seen.lock().unwrap().is_empty());
        a_request(&client).await;
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
