//! What several benches share: a null provider and the repository root.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::frame::{split_frame, DEFAULT_PAYLOAD};
use dubbo_wasm_host::protocol::dubbo::message::{encode_response, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers every two-way request frame on `listener` with `"Hello world"`, decoding nothing.
pub async fn serve_null(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let reply = Value::String("Hello world".into());
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let mut out = BytesMut::new();
            loop {
                while let Ok(Some(frame)) = split_frame(&mut buf, DEFAULT_PAYLOAD) {
                    let h = frame.header;
                    if h.is_request() && h.is_two_way() && !h.is_event() {
                        encode_response(&mut out, h.id, &Reply::Value(&reply), None);
                    }
                }
                if !out.is_empty() {
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
    }
}

/// The repository root (the host crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}
