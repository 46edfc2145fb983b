/**
 * Small python3 programs the lab runs inside its namespaces to observe behaviour from the inside: a peer-address
 * echo service (TCP: writes back the "ip:port" it saw, then closes; UDP: echoes datagrams), a client that connects
 * to several servers from one local port, an unsolicited-SYN probe that watches for RST / ICMP with raw sockets,
 * a UDP round-trip/loss prober, and a TCP simultaneous-open attempt with plain kernel sockets.
 * python3 is used because it starts fast, has raw sockets and stays out of the way of the node process.
 */

/** argv: PORT. Serves TCP and UDP on [::]:PORT (dual stack). Prints "ready" once listening. */
export const ECHO_SERVER_PY = String.raw`
import socket, sys, threading
port = int(sys.argv[1])
def norm(a):
    h = a[0]
    return h[7:] if h.startswith('::ffff:') else h
def tcp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::', port)); s.listen(128)
    ready.set()
    while True:
        c, a = s.accept()
        try:
            c.sendall(('%s:%d\n' % (norm(a), a[1])).encode())
        except OSError:
            pass
        c.close()
def udp():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(('::', port))
    uready.set()
    while True:
        d, a = u.recvfrom(2048)
        u.sendto(d, a)
ready = threading.Event(); uready = threading.Event()
threading.Thread(target=tcp, daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
ready.wait(); uready.wait()
print('ready', flush=True)
threading.Event().wait()
`;

/** argv: LOCAL_IP LOCAL_PORT DST_PORT DST_IP... Connects from one local port to each destination in turn. */
export const SEEN_CLIENT_PY = String.raw`
import json, socket, sys
lip, lport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ':' in lip else socket.AF_INET
seen = []
for dst in sys.argv[4:]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.settimeout(3)
    try:
        s.bind((lip, lport)); s.connect((dst, dport))
        buf = b''
        while not buf.endswith(b'\n'):
            d = s.recv(100)
            if not d: break
            buf += d
        txt = buf.decode().strip()
        ip, _, port = txt.rpartition(':')
        seen.append({'dst': dst, 'ip': ip, 'port': int(port)})
    except Exception as e:
        seen.append({'dst': dst, 'error': type(e).__name__ + ': ' + str(e)})
    finally:
        s.close()
print(json.dumps({'localIp': lip, 'localPort': lport, 'seen': seen}))
`;

/**
 * argv: TARGET_IP TARGET_PORT TIMEOUT_S [SRC_PORT]. Sends one unsolicited SYN (a connect), optionally from a
 * given source port, and reports what came back.
 */
export const INBOUND_PROBE_PY = String.raw`
import json, select, socket, struct, sys, time
tip, tport, tmo = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sport = int(sys.argv[4]) if len(sys.argv) > 4 else 0
v6 = ':' in tip
raws = []
if not v6:
    rt = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP); rt.setblocking(False)
    ri = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); ri.setblocking(False)
    raws = [rt, ri]
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
if sport:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::' if v6 else '0.0.0.0', sport))
s.settimeout(tmo)
t0 = time.time()
try:
    s.connect((tip, tport)); result = 'connected'
except socket.timeout:
    result = 'timeout'
except ConnectionRefusedError:
    result = 'refused'
except OSError as e:
    result = 'error:' + (e.strerror or str(e))
ms = (time.time() - t0) * 1000
s.close()
rst = False; icmp = None
end = time.time() + 0.2
while raws and time.time() < end:
    r, _, _ = select.select(raws, [], [], 0.05)
    for sock in r:
        while True:
            try:
                pkt = sock.recv(4096)
            except BlockingIOError:
                break
            ihl = (pkt[0] & 15) * 4
            src = socket.inet_ntoa(pkt[12:16])
            if sock is raws[0]:
                sport = struct.unpack('!H', pkt[ihl:ihl+2])[0]
                flags = pkt[ihl+13]
                if src == tip and sport == tport and flags & 4:
                    rst = True
            else:
                typ, code = pkt[ihl], pkt[ihl+1]
                if typ in (3, 11) and len(pkt) >= ihl + 8 + 20:
                    inner = pkt[ihl+8:]
                    idst = socket.inet_ntoa(inner[16:20])
                    if idst == tip:
                        icmp = {'type': typ, 'code': code, 'from': src}
print(json.dumps({'target': tip + ':' + str(tport), 'result': result, 'ms': round(ms, 2), 'rst': rst, 'icmp': icmp}))
`;

/** argv: DST_IP DST_PORT COUNT INTERVAL_MS TIMEOUT_MS. UDP echo probes; reports RTT statistics and loss. */
export const UDP_PROBE_PY = String.raw`
import json, select, socket, struct, sys, time
dst, dport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ivl, tmo = float(sys.argv[4]) / 1000, float(sys.argv[5]) / 1000
u = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
u.connect((dst, dport)); u.setblocking(False)
sent = {}; rtts = []
nxt = time.monotonic(); i = 0
def drain():
    while True:
        try:
            d = u.recv(64)
        except (BlockingIOError, ConnectionRefusedError):
            return
        seq, ts = struct.unpack('!Id', d[:12])
        if seq in sent:
            del sent[seq]; rtts.append((time.monotonic() - ts) * 1000)
while i < count:
    now = time.monotonic()
    if now >= nxt:
        sent[i] = now
        try:
            u.send(struct.pack('!Id', i, now) + b'x' * 52)
        except OSError:
            pass
        i += 1; nxt += ivl
    select.select([u], [], [], max(0, nxt - time.monotonic()))
    drain()
end = time.monotonic() + tmo
while sent and time.monotonic() < end:
    select.select([u], [], [], 0.01); drain()
rtts.sort()
n = len(rtts)
def q(p):
    return round(rtts[min(n - 1, int(p * n))], 3) if n else None
print(json.dumps({'sent': count, 'received': n, 'lossPct': round(100 * (count - n) / count, 3),
                  'rttMs': {'min': q(0), 'median': q(0.5), 'mean': round(sum(rtts) / n, 3) if n else None,
                            'p95': q(0.95), 'max': q(0.9999)}}))
`;

/**
 * argv: LOCAL_IP LOCAL_PORT REMOTE_IP REMOTE_PORT START_EPOCH_MS DEADLINE_MS LABEL [PRIME_TTL RETRY_MS LISTEN].
 * TCP simultaneous open with plain sockets: at the start instant, bind the local port and connect() to the peer;
 * on failure retry every RETRY_MS (default 50) until the deadline. With PRIME_TTL > 0, first send one SYN with
 * that IP TTL (it opens our own NAT's mapping and expires inside the simulated internet; the socket's TTL is
 * put back to 64 right after, so its own answers travel the full path), wait up to 100 ms on it, then start
 * the full-TTL attempts from fresh sockets on the same port. With LISTEN=1 a listening socket on the same
 * port (SO_REUSEPORT) also accepts the peer's SYN. Once connected, exchange one line.
 */
export const SIMOPEN_PY = String.raw`
import errno, json, select, socket, sys, time
lip, lport, rip, rport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
start, deadline, label = float(sys.argv[5]) / 1000, float(sys.argv[6]) / 1000, sys.argv[7]
prime_ttl = int(sys.argv[8]) if len(sys.argv) > 8 else 0
retry = float(sys.argv[9]) / 1000 if len(sys.argv) > 9 else 0.05
listen = len(sys.argv) > 10 and sys.argv[10] == '1'
fam = socket.AF_INET6 if ':' in lip else socket.AF_INET
time.sleep(max(0, start - time.time()))
t0 = time.time(); tries = 0; errors = {}
lst = None
if listen:
    # a listener on the same port takes a peer SYN that arrives while no connecting socket exists
    lst = socket.socket(fam, socket.SOCK_STREAM)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    lst.bind((lip, lport)); lst.listen(8); lst.setblocking(False)
def finish(conn, how):
    conn.setblocking(True); conn.settimeout(3)
    got = ''
    try:
        conn.sendall(('hello from %s\n' % label).encode())
        buf = b''
        while not buf.endswith(b'\n'):
            d = conn.recv(100)
            if not d: break
            buf += d
        got = buf.decode().strip()
    except OSError as e:
        got = 'error: %s' % e
    print(json.dumps({'connected': True, 'via': how, 'tries': tries, 'ms': round((time.time() - t0) * 1000, 1),
                      'got': got, 'errors': errors}))
    conn.close(); sys.exit(0)
if prime_ttl > 0:
    p = socket.socket(fam, socket.SOCK_STREAM)
    p.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    p.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if fam == socket.AF_INET:
        p.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, prime_ttl)
    else:
        p.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, prime_ttl)
    p.bind((lip, lport)); p.setblocking(False)
    p.connect_ex((rip, rport))
    # the SYN is out with the low TTL; anything this socket sends later (a SYN-ACK of a simultaneous open,
    # retransmissions) goes out with the normal TTL again
    if fam == socket.AF_INET:
        p.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
    else:
        p.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
    # The ICMP time exceeded may kill this socket or only leave a soft error; if it survives, the peer's SYN
    # can complete a simultaneous open on it. Wait up to 100 ms for either.
    end = t0 + 0.1
    while time.time() < end:
        r, w, _ = select.select([lst] if lst else [], [p], [], max(0, end - time.time()))
        if lst is not None and lst in r:
            c, _ = lst.accept(); p.close(); finish(c, 'accept')
        if w:
            err = p.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                p.getpeername(); connected = True
            except OSError:
                connected = False
            if connected and err == 0:
                finish(p, 'prime')
            time.sleep(0.005)
    p.close()
while time.time() - t0 < deadline:
    tries += 1
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((lip, lport)); s.setblocking(False)
    t_try = time.time()
    err = s.connect_ex((rip, rport))
    if err in (0, errno.EINPROGRESS):
        r, w, _ = select.select([lst] if lst else [], [s], [], retry)
        if lst in r:
            c, _ = lst.accept(); s.close(); finish(c, 'accept')
        if w:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                finish(s, 'connect')
        else:
            err = errno.ETIMEDOUT
    errors[errno.errorcode.get(err, str(err))] = errors.get(errno.errorcode.get(err, str(err)), 0) + 1
    s.close()
    left = retry - (time.time() - t_try)
    if left > 0 and lst is not None:
        r, _, _ = select.select([lst], [], [], left)
        if r:
            c, _ = lst.accept(); finish(c, 'accept')
    elif left > 0:
        time.sleep(left)
print(json.dumps({'connected': False, 'tries': tries, 'ms': round((time.time() - t0) * 1000, 1), 'errors': errors}))
`;

/** argv: DST_IP DST_PORT TTL. Sends one UDP datagram with that TTL; reports which router's ICMP came back. */
export const TTL_PROBE_PY = String.raw`
import json, select, socket, sys, time
dst, dport, ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ri = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
u.sendto(b'ttl-probe', (dst, dport))
t0 = time.time(); out = {'ttl': ttl, 'from': None, 'type': None, 'code': None}
while time.time() - t0 < 1.0:
    r, _, _ = select.select([ri], [], [], 0.1)
    if not r: continue
    pkt = ri.recv(4096)
    ihl = (pkt[0] & 15) * 4
    typ, code = pkt[ihl], pkt[ihl + 1]
    inner = pkt[ihl + 8:]
    if typ in (3, 11) and len(inner) >= 20 and socket.inet_ntoa(inner[16:20]) == dst:
        out = {'ttl': ttl, 'from': socket.inet_ntoa(pkt[12:16]), 'type': typ, 'code': code}
        break
out['ms'] = round((time.time() - t0) * 1000, 2)
print(json.dumps(out))
`;
