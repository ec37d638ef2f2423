#!/usr/bin/env python3
"""A dubbo:// provider on 127.0.0.1:PORT that answers every call with one fixed reply body, to
measure what the host does with hostile replies (BENCHMARKS.md, "Hostile replies"):

    python3 fuzz/hostile-reply.py 21800 selfrefs &
    /usr/bin/time -f '%M KB max RSS' target/debug/dubbo-wasm-host call \
        --url dubbo://127.0.0.1:21800 --interface org.x.S get

Modes: selfrefs, selfrefs-var, dangling, objrefs, typenames (hostile) and users (a legitimate
2 MB reply). A measuring tool, not a test provider: it answers heartbeats and calls, nothing else.
"""
import socket, struct, sys, threading

def i32(n):  # Hessian int, 5-byte form
    return b'I' + struct.pack('>i', n)

def string(s):
    b = s.encode()
    assert len(s) < 32768
    return b'S' + struct.pack('>H', len(s)) + b

def body(mode):
    flag = b'\x91'  # response flag 1: a value
    if mode == 'selfrefs':      # fixed list of 1M `Q 0` (refs to the list itself), 2 MB
        return flag + b'\x58' + i32(1_000_000) + b'\x51\x90' * 1_000_000
    if mode == 'selfrefs-var':  # the same without a length up front
        return flag + b'\x57' + b'\x51\x90' * 1_000_000 + b'Z'
    if mode == 'dangling':      # `Q 0` with no container started
        return flag + b'\x51\x90'
    if mode == 'objrefs':       # one object with a 1 MiB string field, then 100k refs to it
        data = b'R' + struct.pack('>H', 32768) + b'x' * 32768
        s = data * 31 + b'S' + struct.pack('>H', 32768) + b'x' * 32768
        obj = b'C' + string('org.x.Blob') + b'\x91' + string('data') + b'\x60' + s
        return flag + b'\x58' + i32(100_001) + obj + b'\x51\x91' * 100_000
    if mode == 'typenames':     # a 30k-char type name copied by 1M 2-byte typed lists
        return flag + b'\x55' + string('x' * 30000) + b'\x70\x90' * 1_000_000 + b'Z'
    if mode == 'users':         # legitimate: 60k users {id, name, tags: [a, bb]}, ~2 MB
        cls = b'C' + string('org.apache.dubbo.demo.User') + b'\x93' + string('id') + string('name') + string('tags')
        users = b''.join(b'\x60' + i32(i) + string('user number %d' % i) + b'\x7a\x01a\x02bb' for i in range(60_000))
        return flag + cls + b'\x58' + i32(60_000) + users
    raise SystemExit('unknown mode ' + mode)

def serve(conn, reply):
    with conn:
        buf = b''
        while True:
            while len(buf) < 16:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            magic, flags, status, rid, blen = struct.unpack('>HBBqI', buf[:16])
            while len(buf) < 16 + blen:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf[16 + blen:]
            if flags & 0x20:  # event (heartbeat): answer with a null heartbeat response
                conn.sendall(struct.pack('>HBBqI', 0xdabb, 0x22, 20, rid, 1) + b'N')
            else:
                conn.sendall(struct.pack('>HBBqI', 0xdabb, 0x02, 20, rid, len(reply)) + reply)

port, mode = int(sys.argv[1]), sys.argv[2]
reply = body(mode)
print(f'{mode}: {len(reply)} body bytes on port {port}', flush=True)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port))
srv.listen()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c, reply), daemon=True).start()
