//! Omni's HTTP JSON gateway: `POST /api/<package.Service>/<Method>` with protojson bodies and
//! metadata in `Grpc-Metadata-*` headers (omni-api.md §11).
//!
//! The gateway transcodes: it turns the JSON request into a framed gRPC request, sends it through
//! the same authentication and services as native gRPC, and turns the answer back into JSON.
//! So the two paths cannot disagree on auth, validation or storage.

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::body::Body;
use tonic::{Code, Status};

use crate::convert::pool;
use crate::server::Front;

/// HTTP status for a gRPC code, the usual grpc-gateway way.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 499,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        _ => 500,
    }
}

fn error_json(st: &Status) -> serde_json::Value {
    serde_json::json!({"code": st.code() as i32, "message": st.message(), "details": []})
}

/// A JSON error response for a status.
pub fn error_response(st: &Status) -> Response<Body> {
    json_response(http_status(st.code()), error_json(st).to_string())
}

fn json_response(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::new(http_body_util::Full::new(Bytes::from(body))))
        .unwrap_or_default()
}

fn to_json(msg: &DynamicMessage) -> serde_json::Value {
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .use_enum_numbers(true);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    if msg.serialize_with_options(&mut ser, &opts).is_err() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&out).unwrap_or_default()
}

/// Pulls complete length-prefixed gRPC messages out of `buf`.
fn take_frames(buf: &mut BytesMut) -> Vec<Bytes> {
    let mut out = Vec::new();
    while buf.len() >= 5 {
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        buf.advance(5);
        out.push(buf.split_to(len).freeze());
    }
    out
}

fn status_of(headers: &http::HeaderMap) -> Option<Status> {
    headers.get("grpc-status")?;
    Status::from_header_map(headers)
}

/// Handles `/api/<rest>`.
pub async fn handle(front: &Front, rest: &str, req: Request<Incoming>) -> Response<Body> {
    let Some((svc_name, method_name)) = rest.rsplit_once('/') else {
        return error_response(&Status::not_found("Not Found"));
    };
    let Some(method) = pool()
        .get_service_by_name(svc_name)
        .and_then(|s| s.methods().find(|m| m.name() == method_name))
    else {
        return error_response(&Status::not_found("Not Found"));
    };
    if req.method() != http::Method::POST {
        return error_response(&Status::unimplemented("Method Not Allowed"));
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&Status::invalid_argument(e.to_string())),
    };
    let input: MessageDescriptor = method.input();
    let msg = if body.iter().all(u8::is_ascii_whitespace) {
        DynamicMessage::new(input)
    } else {
        let mut de = serde_json::Deserializer::from_slice(&body);
        match DynamicMessage::deserialize(input, &mut de) {
            Ok(m) => m,
            Err(e) => return error_response(&Status::invalid_argument(e.to_string())),
        }
    };
    let payload = msg.encode_to_vec();
    let mut framed = BytesMut::with_capacity(payload.len() + 5);
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(&payload);

    let mut builder = Request::builder()
        .method(http::Method::POST)
        .uri(format!("/{svc_name}/{method_name}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers");
    for (name, value) in parts.headers.iter() {
        if let Some(key) = name.as_str().strip_prefix("grpc-metadata-") {
            builder = builder.header(key, value.clone());
        }
    }
    let Ok(grpc_req) = builder.body(Body::new(http_body_util::Full::new(framed.freeze()))) else {
        return error_response(&Status::invalid_argument("bad metadata header"));
    };
    let resp = front.grpc(grpc_req).await;
    if let Some(st) = status_of(resp.headers()) {
        if st.code() != Code::Ok {
            return error_response(&st);
        }
    }
    let output = method.output();
    let mut body = resp.into_body();
    if !method.is_server_streaming() {
        let collected = match body.collect().await {
            Ok(c) => c,
            Err(e) => return error_response(&Status::internal(e.to_string())),
        };
        let trailers = collected.trailers().cloned();
        let mut buf = BytesMut::from(&collected.to_bytes()[..]);
        if let Some(st) = trailers.as_ref().and_then(status_of) {
            if st.code() != Code::Ok {
                return error_response(&st);
            }
        }
        let frames = take_frames(&mut buf);
        let Some(first) = frames.first() else {
            return error_response(&Status::internal("empty response"));
        };
        return match DynamicMessage::decode(output, first.clone()) {
            Ok(m) => json_response(200, to_json(&m).to_string()),
            Err(e) => error_response(&Status::internal(e.to_string())),
        };
    }
    // Server streaming: newline-delimited `{"result": <message>}` objects, `{"error": ...}` last
    // if the call fails mid-stream.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, Status>>(64);
    tokio::spawn(async move {
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return };
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                for m in take_frames(&mut buf) {
                    let Ok(dm) = DynamicMessage::decode(output.clone(), m) else {
                        return;
                    };
                    let line = format!("{}\n", serde_json::json!({"result": to_json(&dm)}));
                    if tx
                        .send(Ok(http_body::Frame::data(Bytes::from(line))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            } else if let Some(t) = frame.trailers_ref() {
                if let Some(st) = status_of(t) {
                    if st.code() != Code::Ok {
                        let line = format!("{}\n", serde_json::json!({"error": error_json(&st)}));
                        let _ = tx.send(Ok(http_body::Frame::data(Bytes::from(line)))).await;
                    }
                }
            }
        }
    });
    Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
        .unwrap_or_default()
}
