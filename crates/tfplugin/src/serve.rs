//! Process entry: magic-cookie check, listener, AutoMTLS, the go-plugin
//! handshake line, signals and graceful shutdown, and the `--debug` mode.

use std::io::Write as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::server::proto::{health, plugin, tfplugin6};
use crate::server::{
    Controller, Health, ProviderService, Server, Shutdown, Stdio, MAX_MESSAGE_SIZE,
};
use crate::traits::Provider;

/// Terraform's go-plugin handshake cookie; a process without it was not
/// started by Terraform.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// The cookie's value (fixed for all Terraform providers).
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// Serves `provider` as Terraform plugin protocol 6 until Terraform (or, in
/// `--debug` mode, Ctrl-C) stops it. `name` is the short provider name
/// (`omni`, used for logging); `address` its source address for the debug
/// reattach line (e.g. `siderolabs/omni`).
///
/// Call it from `main` and return its exit code.
pub fn serve<P: Provider>(name: &str, address: &str, provider: P) -> ExitCode {
    let debug = std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug");
    crate::log::init(name);
    install_panic_hook(name);
    if !debug && std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE) {
        eprintln!(
            "This binary is a Terraform provider plugin ({address}). It is not meant to be run \
             directly: Terraform or OpenTofu start it when a configuration uses the provider.\n\
             To debug it, run it with --debug and follow the printed instructions."
        );
        return ExitCode::from(1);
    }
    // One thread: handlers are short and mostly wait on I/O, and Terraform itself keeps both
    // cores of a small CI machine busy. Measured on a 500-patch refresh against the emulator,
    // two workers cost 25% more provider CPU (cross-thread wake-ups) for no gain in latency.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failed to start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(address, provider, debug)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("provider failed: {e}");
            eprintln!(
                "{}",
                crate::log::format_line(
                    tracing::Level::ERROR,
                    &format!("provider.{name}"),
                    &format!("provider failed: {e}"),
                    Default::default(),
                )
                .trim_end()
            );
            ExitCode::from(1)
        }
    }
}

/// Writes panics as one hclog ERROR line: no default Rust panic text and no
/// backtrace (RUST_BACKTRACE=1 must not leak frames anywhere).
fn install_panic_hook(name: &str) {
    let module = format!("provider.{name}");
    std::panic::set_hook(Box::new(move |info| {
        let msg = crate::server::panic_message(info.payload());
        let loc = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let line = crate::log::format_line(
            tracing::Level::ERROR,
            &module,
            &format!("provider panicked: {msg}{loc}"),
            Default::default(),
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }));
}

/// A boxed connection so Unix/TCP and plain/TLS streams share one type.
struct Conn(Pin<Box<dyn Io>>);

trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.as_mut().poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.0.as_mut().poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

enum Listener {
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// go-plugin listens on a Unix socket in a private temp dir; TCP on
    /// 127.0.0.1 is the fallback (and is forced by `TF_PLUGIN_TRANSPORT=tcp`).
    fn bind() -> std::io::Result<Listener> {
        let force_tcp = std::env::var("TF_PLUGIN_TRANSPORT").as_deref() == Ok("tcp");
        if !force_tcp {
            match Self::bind_unix() {
                Ok(l) => return Ok(l),
                Err(e) => tracing::debug!("unix socket unavailable ({e}); using TCP"),
            }
        }
        let std = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std.set_nonblocking(true)?;
        Ok(Listener::Tcp(tokio::net::TcpListener::from_std(std)?))
    }

    fn bind_unix() -> std::io::Result<Listener> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = base.join(format!("tfplugin-{}-{nanos:x}", std::process::id()));
        // 0700: only our user may connect (the socket is the plugin's door).
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join("plugin.sock");
        match tokio::net::UnixListener::bind(&path) {
            Ok(l) => Ok(Listener::Unix(l, dir)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn network_and_addr(&self) -> std::io::Result<(&'static str, String)> {
        match self {
            Listener::Unix(_, dir) => Ok(("unix", dir.join("plugin.sock").display().to_string())),
            Listener::Tcp(l) => Ok(("tcp", l.local_addr()?.to_string())),
        }
    }
}

/// Accepts connections forever, optionally doing the TLS handshake off the
/// accept loop so one slow client cannot block others.
fn spawn_acceptor(
    listener: Listener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let io: Pin<Box<dyn Io>> = match &listener {
                Listener::Unix(l, _) => match l.accept().await {
                    Ok((s, _)) => Box::pin(s),
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        // E.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                Listener::Tcp(l) => match l.accept().await {
                    Ok((s, _)) => {
                        // Without this every response waits for a delayed ACK (~40 ms).
                        let _ = s.set_nodelay(true);
                        Box::pin(s)
                    }
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        // E.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            match &acceptor {
                None => {
                    if tx.send(Ok(Conn(io))).await.is_err() {
                        return;
                    }
                }
                Some(acc) => {
                    let acc = acc.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match acc.accept(Conn(io)).await {
                            Ok(s) => {
                                let _ = tx.send(Ok(Conn(Box::pin(s)))).await;
                            }
                            Err(e) => tracing::warn!("TLS handshake rejected: {e}"),
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

async fn run<P: Provider>(address: &str, provider: P, debug: bool) -> Result<(), String> {
    let mut server = Server::new(provider);
    server.stop_ends_server = !debug;
    let server = Arc::new(server);
    let shutdown_tx = server.shutdown_tx.clone();

    // Before the handshake: once Terraform has the address it may signal us.
    signal_watch(shutdown_tx.clone(), debug);
    let listener = Listener::bind().map_err(|e| format!("cannot listen: {e}"))?;
    let (network, addr) = listener
        .network_and_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let cleanup_dir = match &listener {
        Listener::Unix(_, dir) => Some(dir.clone()),
        Listener::Tcp(_) => None,
    };

    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|c| !c.is_empty());
    let tls = match (&client_cert, debug) {
        (Some(pem), false) => Some(crate::tls::auto_mtls(pem)?),
        _ => None,
    };
    let cert_field = tls
        .as_ref()
        .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der))
        .unwrap_or_default();
    let incoming = spawn_acceptor(listener, tls.map(|t| t.config));

    let provider_svc =
        tfplugin6::provider_server::ProviderServer::new(ProviderService(server.clone()))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let router = tonic::transport::Server::builder()
        // h2's 64 KiB default windows make multi-MiB states crawl through
        // WINDOW_UPDATE round trips; Terraform sends config, prior and proposed.
        .initial_stream_window_size(4 << 20)
        .initial_connection_window_size(8 << 20)
        .add_service(provider_svc)
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            Controller(shutdown_tx.clone()),
        ))
        .add_service(plugin::grpc_stdio_server::GrpcStdioServer::new(Stdio(
            shutdown_tx.subscribe(),
        )))
        .add_service(health::health_server::HealthServer::new(Health));

    {
        let mut out = std::io::stdout().lock();
        if debug {
            let reattach = serde_json::json!({
                address: {
                    "Protocol": "grpc",
                    "ProtocolVersion": 6,
                    "Pid": std::process::id(),
                    "Test": true,
                    "Addr": {"Network": network, "String": addr},
                }
            });
            let _ = writeln!(
                out,
                "Provider started. To attach Terraform, set this in the shell that runs it:\n\n\
                 \tTF_REATTACH_PROVIDERS='{reattach}'\n\n\
                 Press Ctrl-C to stop the provider."
            );
        } else {
            // The go-plugin handshake: core version 1, app protocol 6.
            let _ = writeln!(out, "1|6|{network}|{addr}|grpc|{cert_field}");
        }
        let _ = out.flush();
    }
    tracing::debug!(network, address = addr.as_str(), "plugin serving");

    let mut rx = shutdown_tx.subscribe();
    let shutdown = async move {
        let _ = rx.wait_for(|v| *v != Shutdown::Running).await;
    };
    let mut rx2 = shutdown_tx.subscribe();
    let serve = router.serve_with_incoming_shutdown(incoming, shutdown);
    // Graceful shutdown waits for open connections; do not wait forever.
    let deadline = async move {
        let _ = rx2.wait_for(|v| *v == Shutdown::Now).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let result = tokio::select! {
        r = serve => r.map_err(|e| format!("server error: {e}")),
        _ = deadline => Ok(()),
    };
    if let Some(dir) = cleanup_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// SIGTERM ends the server; SIGINT too in debug mode. Otherwise SIGINT is
/// swallowed, as go-plugin does: Terraform forwards Ctrl-C to the whole
/// process group and then asks us to stop through StopProvider, letting
/// in-flight operations finish instead of dying mid-apply.
fn signal_watch(shutdown: watch::Sender<Shutdown>, debug: bool) {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            return;
        };
        loop {
            tokio::select! {
                _ = term.recv() => {
                    let _ = shutdown.send(Shutdown::Now);
                    return;
                }
                _ = int.recv() => {
                    if debug {
                        let _ = shutdown.send(Shutdown::Now);
                        return;
                    }
                    tracing::trace!("ignoring interrupt; waiting for StopProvider");
                }
            }
        }
    });
}
