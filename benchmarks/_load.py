"""A fixed-concurrency HTTP/1.1 load generator: one keep-alive connection per process.

    python -m benchmarks._load --port P --path /v1/... --body FILE --out FILE \\
        --warmup 1 --duration 5

``run_load`` starts ``connections`` such processes; each connects, prints "ready",
waits for the start time on stdin, then sends the same POST back to back: requests
that complete during the warm-up are dropped, those that complete in the next
``duration`` seconds are counted and timed. The client is a raw socket with the
request bytes prepared once, so it costs far less CPU per request than the server:
the same generator, byte for byte, measures the service and its peer.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
RECEIVE_BYTES = 1 << 16
SOCKET_TIMEOUT = 30.0  # a server that stops answering fails the run instead of hanging it
START_DELAY = 0.05  # seconds between "go" and the start, so every process sees it in time


class ResponseError(RuntimeError):
    pass


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket) -> tuple[int, int]:
    """(status, body bytes) of one response with a Content-Length (uvicorn's JSON answers)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(RECEIVE_BYTES)
        if not chunk:
            raise ResponseError("the server closed the connection")
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ResponseError(f"a response without Content-Length: {head[:200]!r}")
    received = len(body)
    while received < length:
        chunk = sock.recv(min(RECEIVE_BYTES, length - received))
        if not chunk:
            raise ResponseError("the server closed the connection mid-body")
        received += len(chunk)
    return status, length


def generate(args: argparse.Namespace) -> None:
    """One connection's loop (the child process)."""
    request = request_bytes(args.port, args.path, Path(args.body).read_bytes())
    sock = socket.create_connection((HOST, args.port), timeout=SOCKET_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("ready", flush=True)
    start = float(sys.stdin.readline())  # time.monotonic() is one clock for every process
    measure_from, measure_until = start + args.warmup, start + args.warmup + args.duration
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    size = 0
    while time.monotonic() < start:
        time.sleep(0.001)
    while True:
        sent = time.monotonic()
        if sent >= measure_until:
            break
        sock.sendall(request)
        status, size = read_response(sock)
        done = time.monotonic()
        if measure_from <= done < measure_until:
            latencies.append(done - sent)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    sock.close()
    result = {"latencies": latencies, "statuses": statuses, "response_bytes": size}
    Path(args.out).write_text(json.dumps(result))


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50: float  # seconds
    p99: float
    requests: int
    failed: int  # answers other than 200
    response_bytes: int  # the body of the last answer
    server_cores: float  # CPU seconds per second of the server process in the window
    generator_cores: float  # ... and of the generator processes together: far below 1 is good


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between order statistics (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_load(
    *,
    port: int,
    server_pid: int,
    path: str,
    body_file: Path,
    out_dir: Path,
    connections: int,
    warmup: float,
    duration: float,
) -> LoadResult:
    """``connections`` generator processes against 127.0.0.1:port; their merged figures.

    The CPU time of the server (``server_pid``) and of the generators is sampled at the
    start and the end of the counted window.
    """
    outputs = [out_dir / f"load-{port}-{index}.json" for index in range(connections)]
    command = [sys.executable, "-m", "benchmarks._load", "--port", str(port), "--path", path]
    command += ["--body", str(body_file), "--warmup", str(warmup), "--duration", str(duration)]
    processes: list[subprocess.Popen] = []
    try:
        for output in outputs:
            processes.append(
                subprocess.Popen(
                    [*command, "--out", str(output)],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            if process.stdout is None or process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"load generator pid {process.pid} did not connect")
        start = time.monotonic() + START_DELAY
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(f"{start!r}\n")
            process.stdin.close()
        pids = [server_pid, *(process.pid for process in processes)]
        sleep_until(start + warmup)
        before = [cpu_seconds(pid) for pid in pids]
        sleep_until(start + warmup + duration)
        used = [cpu_seconds(pid) - spent for pid, spent in zip(pids, before, strict=True)]
        for process in processes:
            if process.wait(warmup + duration + SOCKET_TIMEOUT + 10) != 0:
                raise RuntimeError(f"load generator pid {process.pid} failed")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    results = [json.loads(output.read_text()) for output in outputs]
    latencies = [value for result in results for value in result["latencies"]]
    statuses: dict[str, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return LoadResult(
        requests_per_second=len(latencies) / duration,
        p50=statistics.median(latencies) if latencies else float("nan"),
        p99=percentile(latencies, 99),
        requests=len(latencies),
        failed=sum(count for status, count in statuses.items() if status != "200"),
        response_bytes=max(result["response_bytes"] for result in results),
        server_cores=used[0] / duration,
        generator_cores=sum(used[1:]) / duration,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="the URL path to POST to")
    parser.add_argument("--body", required=True, help="a file holding the JSON body")
    parser.add_argument("--out", required=True, help="where to write the latencies (JSON)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds counted")
    return parser.parse_args(argv)


if __name__ == "__main__":
    generate(parse_args(None))
