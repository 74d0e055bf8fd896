//! TLS endpoints: a self-signed server is trusted through a CA bundle, rejected with a different
//! bundle, and reachable with the opt-in skip-verify (omni-api.md §1.1).

use std::{pin::Pin, time::Duration};

use futures::Stream;
use omni_api::cosi::resource::{
    self as cosi,
    state_server::{State, StateServer},
};
use omni_client::{resources::Cluster, Api, Client, Error, RetryPolicy};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    codec::CompressionEncoding,
    transport::{Identity, Server, ServerTlsConfig},
    Request, Response, Status,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Answers every Get with NotFound: reaching it proves the TLS handshake worked.
struct Empty;

#[tonic::async_trait]
impl State for Empty {
    async fn get(
        &self,
        _: Request<cosi::GetRequest>,
    ) -> Result<Response<cosi::GetResponse>, Status> {
        Err(Status::not_found("nothing here"))
    }
    type ListStream = BoxStream<cosi::ListResponse>;
    async fn list(
        &self,
        _: Request<cosi::ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        Err(Status::unimplemented("list"))
    }
    async fn create(
        &self,
        _: Request<cosi::CreateRequest>,
    ) -> Result<Response<cosi::CreateResponse>, Status> {
        Err(Status::unimplemented("create"))
    }
    async fn update(
        &self,
        _: Request<cosi::UpdateRequest>,
    ) -> Result<Response<cosi::UpdateResponse>, Status> {
        Err(Status::unimplemented("update"))
    }
    async fn destroy(
        &self,
        _: Request<cosi::DestroyRequest>,
    ) -> Result<Response<cosi::DestroyResponse>, Status> {
        Err(Status::unimplemented("destroy"))
    }
    type WatchStream = BoxStream<cosi::WatchResponse>;
    async fn watch(
        &self,
        _: Request<cosi::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
    async fn teardown(
        &self,
        _: Request<cosi::TeardownRequest>,
    ) -> Result<Response<cosi::TeardownResponse>, Status> {
        Err(Status::unimplemented("teardown"))
    }
    async fn teardown_and_destroy(
        &self,
        _: Request<cosi::TeardownAndDestroyRequest>,
    ) -> Result<Response<cosi::TeardownAndDestroyResponse>, Status> {
        Err(Status::unimplemented("teardown_and_destroy"))
    }
}

async fn tls_server() -> (u16, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    let identity = Identity::from_pem(cert_pem.clone(), ck.signing_key.serialize_pem());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        Server::builder()
            .tls_config(ServerTlsConfig::new().identity(identity))
            .unwrap()
            .add_service(StateServer::new(Empty).accept_compressed(CompressionEncoding::Gzip))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (port, cert_pem)
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(10),
    }
}

#[tokio::test]
async fn ca_bundle_trusts_the_server_and_a_wrong_one_does_not() {
    let (port, cert_pem) = tls_server().await;
    let endpoint = format!("https://localhost:{port}");

    let trusted = Client::builder(&endpoint)
        .ca_bundle_pem(cert_pem)
        .retry_policy(quick())
        .build()
        .unwrap();
    let got = Api::<Cluster>::new(trusted).get_opt("c1").await;
    assert!(matches!(got, Ok(None)), "{got:?}");

    let other_ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap()
        .cert
        .pem();
    let untrusted = Client::builder(&endpoint)
        .ca_bundle_pem(other_ca)
        .retry_policy(quick())
        .build()
        .unwrap();
    match Api::<Cluster>::new(untrusted).get("c1").await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected the handshake to fail, got {other:?}"),
    }

    let skip = Client::builder(&endpoint)
        .insecure_skip_tls_verify(true)
        .retry_policy(quick())
        .build()
        .unwrap();
    let got = Api::<Cluster>::new(skip).get_opt("c1").await;
    assert!(matches!(got, Ok(None)), "{got:?}");
}
