//! hello-http: the smallest `lambda_http` function, the cold-start reference of HTTP functions.
//! It answers every request with `200 hello world`.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello world")))
    }))
    .await
}
