"""A stranger on the venue network (issue 13.3): runs in its own namespace,
listens to every mDNS packet on the LAN and browses ``_relsec._tcp`` with
python-zeroconf's own ``ServiceBrowser``; prints one JSON line per thing it
learns, with a monotonic time, until its stdin closes.

Lines: ``{"packet": ..., "src", "query": bool, "records": [[name, type, ttl]]}``
for every packet that mentions relsec, and ``{"browser": "Added"|"Removed"|
"Updated", "name", "txt", "addresses", "port"}`` for the browser's events."""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf._protocol.incoming import DNSIncoming

SERVICE = "_relsec._tcp.local."
lock = threading.Lock()


def emit(line: dict[str, object]) -> None:
    with lock:
        print(json.dumps({"t": time.monotonic(), **line}), flush=True)


def sniff(address: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("224.0.0.251", 5353))
    membership = struct.pack("4s4s", socket.inet_aton("224.0.0.251"), socket.inet_aton(address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
    while True:
        data, (src, _) = sock.recvfrom(9000)
        if src == address:
            continue  # our own browser's queries
        message = DNSIncoming(data)
        names = [q.name for q in message.questions] + [r.name for r in message.answers()]
        if (
            not any(
                "_relsec" in name.lower() or name.lower().endswith("._relsec._tcp.local.")
                for name in names
            )
            and b"_relsec" not in data
        ):
            continue
        emit(
            {
                "packet": True,
                "src": src,
                "query": message.is_query(),
                "questions": [q.name for q in message.questions],
                "records": [[r.name, r.type, r.ttl] for r in message.answers()],
            }
        )


def main() -> None:
    address = sys.argv[1]
    threading.Thread(target=sniff, args=(address,), daemon=True).start()
    zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        line: dict[str, object] = {"browser": state_change.name, "name": name}
        if state_change is not ServiceStateChange.Removed:
            info = ServiceInfo(service_type, name)
            if info.request(zeroconf, 3000):
                line["txt"] = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
                line["addresses"] = info.parsed_addresses()
                line["port"] = info.port
        emit(line)

    browser = ServiceBrowser(zc, SERVICE, handlers=[on_change])
    emit({"ready": True})
    sys.stdin.read()
    browser.cancel()
    zc.close()


if __name__ == "__main__":
    main()
