//! The per-request store data: WASI and wasi-http contexts over one resource table, and the
//! store's resource limits.

use std::future::Future;
use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// Outgoing HTTP is not part of a guest's sandbox: guests reach services through Dubbo
/// references, which the host controls.
pub struct DenyOutgoingHttp;

/// The future a `send_request` hook returns.
type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for DenyOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// What one guest instance may touch: nothing beyond stderr unless its config grants it.
pub struct GuestState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    pub hooks: DenyOutgoingHttp,
    /// Attachments the guest set with `dubbo:host/context.set-attachment`, sent with every
    /// later call of this request.
    pub attachments_out: Vec<(String, String)>,
    /// Attachments of the last reply, for `dubbo:host/context.attachment`.
    pub attachments_in: Vec<(String, String)>,
    /// When the request being served runs out of time (read by the epoch callback, so an
    /// instance that serves several requests gets each its own limit).
    pub deadline: std::time::Instant,
}

impl GuestState {
    /// A sandboxed state for a request: no files, sockets, environment or arguments; stderr
    /// passes through so guest logs reach the host's log.
    pub fn new(limits: StoreLimits) -> Self {
        GuestState::with_wasi(limits, WasiCtx::builder().inherit_stderr().build())
    }

    /// A state with the given WASI context (e.g. a CLI job's arguments and stdio).
    pub fn with_wasi(limits: StoreLimits, wasi: WasiCtx) -> Self {
        GuestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits,
            hooks: DenyOutgoingHttp,
            attachments_out: Vec::new(),
            attachments_in: Vec::new(),
            deadline: std::time::Instant::now(),
        }
    }
}

impl GuestState {
    /// Starts a request with `limit` to run: its deadline, and none of the attachments of an
    /// earlier request this instance served.
    pub fn begin_request(&mut self, limit: std::time::Duration) {
        self.deadline = std::time::Instant::now() + limit;
        self.attachments_out.clear();
        self.attachments_in.clear();
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
