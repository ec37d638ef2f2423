// `hello-js`: the hello-http example guest of dubbo-wasm-host, in JavaScript.
//
// A Wasm component (built by componentize-js, see build.sh) that serves
// `wasi:http/incoming-handler` and answers every request by calling the Dubbo
// service `org.apache.dubbo.demo.DemoService`, which it imports as
// `org-apache-dubbo:demo/demo-service@1.0.0`:
//
// * `GET /?name=Bob` calls `say-hello("Bob")` (`name` defaults to `world`);
// * a greeting answers 200 with it as a `text/plain` body;
// * an `rpc-error` answers 502 with e.g. `rpc error: timeout: <message>`.
//
// The import returns `result<string, rpc-error>`: the bindings return the `ok`
// value and throw an error whose `payload` is the `rpc-error`, a `{ tag, val }`
// object whose tag is the case name as spelled in the WIT.

import { sayHello } from 'org-apache-dubbo:demo/demo-service@1.0.0';
import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from 'wasi:http/types@0.2.12';

// `blocking-write-and-flush` takes at most 4096 bytes a call.
const CHUNK = 4096;

// Dropping a resource handle; the engine may predate `Symbol.dispose`.
const dispose = Symbol.dispose ?? Symbol.for('dispose');

function handle(request, responseOut) {
  const name = queryParam(request.pathWithQuery() ?? '', 'name') ?? 'world';
  let status;
  let body;
  try {
    body = sayHello(name);
    status = 200;
  } catch (e) {
    if (e?.payload === undefined) {
      throw e;
    }
    status = 502;
    body = `rpc error: ${describe(e.payload)}`;
  }
  respond(responseOut, status, body);
}

export const incomingHandler = { handle };

// Sends `body` as a `text/plain` response with the given status.
function respond(responseOut, status, body) {
  const utf8 = new TextEncoder();
  const headers = Fields.fromList([
    ['content-type', utf8.encode('text/plain; charset=utf-8')],
  ]);
  const response = new OutgoingResponse(headers);
  response.setStatusCode(status);
  const outgoing = response.body();
  // Hand the response head to the host before streaming the body.
  ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
  const data = utf8.encode(body);
  // A failed write means the client went away; nobody is left to tell.
  try {
    const stream = outgoing.write();
    try {
      for (let i = 0; i < data.length; i += CHUNK) {
        stream.blockingWriteAndFlush(data.subarray(i, i + CHUNK));
      }
    } finally {
      // The stream must be dropped before the body is finished.
      stream[dispose]();
    }
    OutgoingBody.finish(outgoing, undefined);
  } catch {
    // Nothing to do.
  }
}

// `rpc-error` as `<case>: <text>`, the case name spelled as in the WIT.
function describe(err) {
  if (err.tag === 'biz-exception') {
    return `${err.tag}: ${err.val.className}: ${err.val.message}`;
  }
  return `${err.tag}: ${err.val}`;
}

// The first value of `key` in the query of `pathWithQuery`, form-decoded as
// Python's `urllib.parse.parse_qsl(query, keep_blank_values=True,
// errors="replace")` does (`+` is a space, malformed escapes kept, bad UTF-8
// becomes U+FFFD); `undefined` when the key is absent.
function queryParam(pathWithQuery, key) {
  const at = pathWithQuery.indexOf('?');
  if (at < 0) {
    return undefined;
  }
  for (const pair of pathWithQuery.slice(at + 1).split('&')) {
    if (pair === '') {
      continue;
    }
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? '' : pair.slice(eq + 1);
    if (formDecode(k) === key) {
      return formDecode(v);
    }
  }
  return undefined;
}

// `+` as a space, then `%XX` escapes as UTF-8 bytes. A `%` not followed by two
// hex digits stays as it is; so do characters outside ASCII, which also end
// the bytes decoded before them (as Python's `unquote` does).
function formDecode(text) {
  const s = text.replaceAll('+', ' ');
  if (!s.includes('%')) {
    return s;
  }
  // Like Python, keep a leading byte order mark.
  const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  let out = '';
  let bytes = [];
  const flush = () => {
    if (bytes.length > 0) {
      out += utf8.decode(new Uint8Array(bytes));
      bytes = [];
    }
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) {
      flush();
      out += s[i];
    } else if (c === 0x25 && isHex(s[i + 1]) && isHex(s[i + 2])) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  flush();
  return out;
}

function isHex(ch) {
  return ch !== undefined && /^[0-9A-Fa-f]$/.test(ch);
}
