"""`hello-py`: the hello-http example guest of dubbo-wasm-host, in Python.

A Wasm component (built by componentize-py, see build.sh) that serves
`wasi:http/incoming-handler` and answers every request by calling the Dubbo
service `org.apache.dubbo.demo.DemoService`, which it imports as
`org-apache-dubbo:demo/demo-service@1.0.0`:

* `GET /?name=Bob` calls `say-hello("Bob")` (`name` defaults to `world`);
* a greeting answers 200 with it as a `text/plain` body;
* an `rpc-error` answers 502 with e.g. `rpc error: timeout: <message>`.

The import returns `result<string, rpc-error>`: componentize-py returns the
`ok` value and raises `componentize_py_types.Err` with the `rpc-error` as
`.value`.
"""

from urllib.parse import parse_qsl

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import demo_service
from wit_world.imports.dubbo_host_types import (
    RpcError,
    RpcError_BizException,
    RpcError_Forbidden,
    RpcError_LimitExceeded,
    RpcError_Network,
    RpcError_NoProvider,
    RpcError_Other,
    RpcError_Serialization,
    RpcError_Timeout,
)
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

# `rpc-error` cases as spelled in the WIT.
CASES = {
    RpcError_Timeout: "timeout",
    RpcError_NoProvider: "no-provider",
    RpcError_Network: "network",
    RpcError_BizException: "biz-exception",
    RpcError_Forbidden: "forbidden",
    RpcError_Serialization: "serialization",
    RpcError_LimitExceeded: "limit-exceeded",
    RpcError_Other: "other",
}

# `blocking-write-and-flush` takes at most 4096 bytes a call.
CHUNK = 4096


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        name = query_param(request.path_with_query() or "", "name")
        if name is None:
            name = "world"
        try:
            status, body = 200, demo_service.say_hello(name)
        except Err as e:
            status, body = 502, f"rpc error: {describe(e.value)}"
        respond(response_out, status, body)


def respond(response_out: ResponseOutparam, status: int, body: str) -> None:
    """Sends `body` as a `text/plain` response with the given status."""
    headers = Fields.from_list([("content-type", b"text/plain; charset=utf-8")])
    response = OutgoingResponse(headers)
    response.set_status_code(status)
    outgoing = response.body()
    # Hand the response head to the host before streaming the body.
    ResponseOutparam.set(response_out, Ok(response))
    data = body.encode("utf-8")
    # An `Err` while writing means the client went away; nobody is left to tell.
    try:
        # The stream must be dropped (`with`) before the body is finished.
        with outgoing.write() as stream:
            for i in range(0, len(data), CHUNK):
                stream.blocking_write_and_flush(data[i : i + CHUNK])
        OutgoingBody.finish(outgoing, None)
    except Err:
        pass


def describe(err: RpcError) -> str:
    """`rpc-error` as `<case>: <text>`, the case name spelled as in the WIT."""
    case = CASES.get(type(err), "other")
    if isinstance(err, RpcError_BizException):
        return f"{case}: {err.value.class_name}: {err.value.message}"
    return f"{case}: {err.value}"


def query_param(path_with_query: str, key: str) -> str | None:
    """The first value of `key` in the query of `path_with_query`, form-decoded
    (`+` is a space, malformed escapes kept, bad UTF-8 becomes U+FFFD); `None`
    when the key is absent."""
    _, sep, query = path_with_query.partition("?")
    if not sep:
        return None
    for k, v in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if k == key:
            return v
    return None
