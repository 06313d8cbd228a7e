"""Benchmark: the local KServe model server over HTTP next to the model's own speed in process.

Measured side by side in one run, in alternating rounds (these machines are shared and noisy;
compare the ratios), one-row requests: p50/p95 latency at 1 client and rows/s at 32 concurrent
clients (over HTTP: keep-alive connections from a load-client process of its own, sharing the
cores with the server; in process: threads) for

- the floor: the SavedModel's signature called with prepared tensors, in process (and with
  32 prepared rows per call: what one batched call costs);
- ``model_io.predict`` in process, from a one-row DataFrame and from a request's values;
- kserve's model server answering a constant (no TensorFlow): kserve's own request handling;
- ``components.model_server`` before batching (``--baseline-src``: a copy of the tree before
  the change, e.g. ``git archive <commit> components | tar -x -C DIR``), with batching off
  (``--max-batch-rows 1``) and with its defaults (batching on), v1 and v2.

Every server runs with the request check and prediction logging on. A second table prices
the check and the logging (``--no-request-check`` and no ``--log-dir`` vs both on).

    bash scripts/in-runtime.sh python bench/serving.py > bench/results/serving.md
    bash scripts/in-runtime.sh python bench/serving.py --model-dir /path/to/model   # your model

The Markdown goes to stdout (or ``--output PATH``); logs go to stderr. By default the model is
``train_model``'s on 4,000 demo rows (a Keras MLP with its preprocessing in the SavedModel).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from report import header

logger = logging.getLogger("bench.serving")

CLIENTS = 32
NAME = "bench"


def build_model(model_dir: Path) -> None:
    """The model the pipeline serves: train_model on 4,000 demo rows (2 epochs)."""
    import tensorflow_data_validation as tfdv

    from components.make_demo_data import runtime as demo
    from components.train_model import runtime as train

    work = model_dir.parent
    df = demo.generate(4000, seed=0)
    data = demo.write(df, work / "data.csv")
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(df))
    tfdv.write_schema_text(schema, str(work / "schema.pbtxt"))
    train.run(
        data_uri=str(data),
        schema_path=str(work / "schema.pbtxt"),
        model_dir=str(model_dir),
        eval_data_path=str(work / "eval.parquet"),
        tensorboard_dir=str(work / "tensorboard"),
        label=demo.LABEL,
        epochs=2,
        verbose=0,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_threads(clients: int, requests: int, work) -> tuple[list[float], float]:
    """``requests`` calls of ``work(state)`` spread over ``clients`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def worker(count: int) -> None:
        state: dict = {}
        local = []
        barrier.wait()
        for _ in range(count):
            start = time.perf_counter()
            work(state)
            local.append(time.perf_counter() - start)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def in_process(call):
    """A path measured by threads in this process calling ``call()``."""
    return lambda clients, requests: run_threads(clients, requests, lambda state: call())


def over_http(port: int, path: str, body: bytes):
    """A path measured over HTTP by a load client in its own process (``--load``): client
    threads in this process would take, under the GIL, the cores the server needs."""

    def run(clients: int, requests: int) -> tuple[list[float], float]:
        order = {"port": port, "path": path, "body": body.decode(), "clients": clients, "requests": requests}
        command = [sys.executable, __file__, "--load", json.dumps(order)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the load client failed: {done.stderr[-2000:]}")
        answer = json.loads(done.stdout)
        return answer["latencies"], answer["wall"]

    return run


async def load(port: int, path: str, body: str, clients: int, requests: int) -> dict:
    """``requests`` POSTs spread over ``clients`` keep-alive connections, each sending its next
    request when the last is answered; per-request latencies and the wall time."""
    import asyncio

    payload = body.encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    latencies: list[float] = []

    async def client(count: int, reader, writer) -> None:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            answer = await reader.readexactly(int(headers["content-length"]))
            if not lines[0].startswith("HTTP/1.1 200"):
                raise RuntimeError(f"{lines[0]}: {answer[:200]!r}")
            latencies.append(time.perf_counter() - start)
        writer.close()

    counts = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in counts]  # before the clock
    start = time.perf_counter()
    await asyncio.gather(*(client(n, *connection) for n, connection in zip(counts, connections, strict=True)))
    return {"latencies": latencies, "wall": time.perf_counter() - start}


def http_work(port: int, path: str, body: bytes):
    def work(state: dict) -> bytes:
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")
        return payload

    return work


@contextlib.contextmanager
def server(args: list[str], log_path: Path, src: str = ""):
    """A model server subprocess on a free port (``python <args>``), from ``src`` when given
    (another copy of the tree), ready when this yields its port."""
    from components.deploy_model import _local, _smoke

    port = _local.free_port()
    env = {**os.environ, "PYTHONPATH": src} if src else None
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, *args, "--http-port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=src or None,
        )
        try:
            _smoke.wait_until_ready(f"http://127.0.0.1:{port}", NAME, 180, process)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=30)


def model_server(model_dir: Path, *options: str) -> list[str]:
    return ["-m", "components.model_server", "--model-dir", str(model_dir), "--model-name", NAME, *options]


def constant_server() -> None:
    """kserve's ModelServer with a model that answers 0.5 per row without TensorFlow."""
    import kserve

    port = int(sys.argv[sys.argv.index("--http-port") + 1])
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when it starts

    class Constant(kserve.Model):
        def __init__(self):
            super().__init__(NAME)
            self.ready = True

        async def predict(self, payload, headers=None, response_headers=None):
            return {"predictions": [0.5] * len(payload["instances"])}

    kserve.ModelServer(http_port=port, enable_grpc=False, enable_latency_logging=False).start([Constant()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default="", help="model to serve (default: train one on demo data)")
    parser.add_argument("--baseline-src", default="", help="a copy of the tree before batching, to compare")
    parser.add_argument("--requests", type=int, default=200, help="one-client requests per path and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds over all paths")
    parser.add_argument("--output", default="", help="also write the Markdown here")
    parser.add_argument("--constant-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", default="", help=argparse.SUPPRESS)  # the load client: JSON order
    args, _ = parser.parse_known_args(argv)
    if args.constant_server:
        constant_server()
        return 0
    if args.load:
        import asyncio

        print(json.dumps(asyncio.run(load(**json.loads(args.load)))))
        return 0
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")

    from components import model_io, request_contract
    from components.deploy_model import _smoke
    from components.make_demo_data import runtime as demo

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model_dir = Path(args.model_dir).resolve() if args.model_dir else tmp / "model"
    if not args.model_dir:
        logger.info("building the benchmark model in %s", model_dir)
        build_model(model_dir)
    loaded = model_io.load(str(model_dir))
    inputs = model_io.serving_inputs(loaded)
    dtypes = {n: d.name for n, d in inputs.items()}
    version_dir = model_io.version_dir(str(model_dir))
    if request_contract.load(version_dir) is None:  # a --model-dir from before contracts
        contract = request_contract.build(demo.generate(2000, seed=0), _kinds(dtypes))
        request_contract.write(version_dir, contract)
    frame = demo.generate(CLIENTS, seed=1)[list(inputs)].reset_index(drop=True)
    one = frame.head(1)
    rows = _smoke.instances(frame, dtypes)
    v1_body = json.dumps({"instances": rows[:1]}).encode()
    v2_body = json.dumps({"inputs": _smoke.v2_inputs(one, dtypes)}).encode()
    signature = loaded.signatures[model_io.SIGNATURE]
    tensors = model_io.to_tensors(one, inputs)
    batch_tensors = model_io.to_tensors(frame, inputs)
    values = {name: [row[name] for row in rows[:1]] for name in inputs}  # what a request carries

    paths = [  # (label, work, rows per call)
        ("signature, prepared tensors (floor)", in_process(lambda: signature(**tensors)), 1),
        (
            f"signature, prepared tensors, {CLIENTS} rows per call",
            in_process(lambda: signature(**batch_tensors)),
            CLIENTS,
        ),
        ("model_io.predict, one-row DataFrame", in_process(lambda: model_io.predict(loaded, one)), 1),
        ("model_io.predict, a request's values", in_process(lambda: model_io.predict(loaded, values)), 1),
    ]
    logs = tmp / "logs"
    with contextlib.ExitStack() as stack:
        def start(label: str, command: list[str], src: str = "", body: bytes = v1_body, path=None) -> int:
            port = stack.enter_context(server(command, tmp / f"{len(paths)}.log", src))
            path = path or f"/v1/models/{NAME}:predict"
            paths.append((label, over_http(port, path, body), 1))
            return port

        start("kserve server, constant answer (no TensorFlow)", [__file__, "--constant-server"])
        checked = ("--log-dir", str(logs))  # the request check is on unless turned off
        if args.baseline_src:
            baseline = str(Path(args.baseline_src).resolve())
            before = model_server(model_dir, *checked)
            start("model server before this change (baseline tree)", before, baseline)
        off = model_server(model_dir, *checked, "--max-batch-rows", "1")
        start("model server, batching off (--max-batch-rows 1)", off)
        port = start("model server, batching on (defaults)", model_server(model_dir, *checked))
        v2 = over_http(port, f"/v2/models/{NAME}/infer", v2_body)
        paths.append(("model server, batching on, v2", v2, 1))
        identity = served_vs_in_process(port, rows, frame, loaded)
        results = measure(paths, args.requests, args.rounds)
    checks = check_overhead(model_dir, v1_body, tmp, args.requests, args.rounds)

    command = "bash scripts/in-runtime.sh python bench/serving.py"
    command += "".join(f" {a}" for a in (argv or sys.argv[1:]))
    floor = results[paths[0][0]]
    lines = [
        *header("Serving benchmark: the local model server next to the model's own speed", command),
        f"- model: {args.model_dir or 'train_model on 4,000 demo rows (Keras MLP, preprocessing inside)'}",
        f"- servers: kserve {_kserve_version()} ModelServer, 1 uvicorn worker, loopback HTTP, keep-alive "
        "connections; model servers with the request check and prediction logging on; HTTP clients "
        "are asyncio connections in a load-client process of their own (it shares the cores with the "
        "server); in-process paths are measured by threads",
        f"- {args.rounds} alternating rounds; per path and round {args.requests} requests at 1 client and "
        f"{CLIENTS} x 10 at {CLIENTS} clients",
        f"- identity: {CLIENTS} concurrent one-row requests (batched) vs in-process `model_io.predict` of "
        f"the same rows: max |diff| {identity['frame']:.2g} vs one call on all {CLIENTS} rows, "
        f"{identity['single']:.2g} vs one call per row; model calls in that burst: {identity['calls']}",
        "",
        "One-row requests. p50 / floor: against the signature's p50; rows/s at 32 clients: each client "
        "sends its next request when the last is answered.",
        "",
        "| path | p50 ms (1 client) | p95 ms (1 client) | p50 / floor | rows/s (32 clients) |",
        "|---|---|---|---|---|",
    ]
    for label, _, _ in paths:
        r = results[label]
        lines.append(
            f"| {label} | {r['p50']:.2f} | {r['p95']:.2f} | {r['p50'] / floor['p50']:.1f}x "
            f"| {r['rows_s']:.0f} |"
        )
    lines += [
        "",
        "## Request check and prediction logging",
        "",
        f"One-row v1 requests, 1 client, {checks['rounds']} alternating rounds of {checks['per_round']} "
        "requests per server (batching on in both); the model carries its request contract.",
        "",
        "| server | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| check off, no logging | {checks['off_p50']:.2f} | {checks['off_p99']:.2f} |",
        f"| check on, logging on | {checks['on_p50']:.2f} | {checks['on_p99']:.2f} |",
        "",
        f"p50 ratio (on / off): **{checks['on_p50'] / checks['off_p50']:.3f}** (target: at most 1.10)",
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.output:
        Path(args.output).write_text(markdown)
    return 0


def measure(paths: list, requests: int, rounds: int) -> dict:
    """p50/p95 at 1 client and rows/s at CLIENTS clients per path, in alternating rounds."""
    latencies = {label: [] for label, _, _ in paths}
    walls = {label: [0.0, 0] for label, _, _ in paths}
    for _, run, _ in paths:  # warm-up: connections, graph tracing, thread pools
        run(CLIENTS, CLIENTS * 2)
    for round_ in range(rounds):
        for label, run, rows in paths:
            latencies[label] += run(1, requests)[0]
            wall = run(CLIENTS, CLIENTS * 10)[1]
            walls[label][0] += wall
            walls[label][1] += CLIENTS * 10 * rows
        logger.info("round %d of %d done", round_ + 1, rounds)
    results = {}
    for label, values in latencies.items():
        results[label] = {
            "p50": percentile(values, 50) * 1e3,
            "p95": percentile(values, 95) * 1e3,
            "rows_s": walls[label][1] / walls[label][0],
        }
        logger.info("%s: %s", label, {k: round(v, 3) for k, v in results[label].items()})
    return results


def served_vs_in_process(port: int, rows: list[dict], frame, loaded) -> dict:
    """One burst of concurrent one-row requests (one row each) against in-process predictions,
    with the rows per model call the server's /metrics counted meanwhile."""
    import numpy as np

    from components import model_io

    before = _batch_calls(port)
    answers: dict[int, float] = {}
    barrier = threading.Barrier(len(rows))

    def ask(index: int) -> None:
        body = json.dumps({"instances": [rows[index]]}).encode()
        work = http_work(port, f"/v1/models/{NAME}:predict", body)
        barrier.wait()
        answers[index] = json.loads(work({}))["predictions"][0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served = np.array([answers[i] for i in range(len(rows))], dtype=np.float32)
    whole = model_io.predict(loaded, frame)
    single = np.concatenate([model_io.predict(loaded, frame.iloc[[i]]) for i in range(len(frame))])
    after = _batch_calls(port)
    calls, total = after[0] - before[0], after[1] - before[1]
    return {
        "frame": float(np.max(np.abs(served - whole))),
        "single": float(np.max(np.abs(served - single))),
        "calls": f"{total:.0f} rows in {calls:.0f} calls",
    }


def _batch_calls(port: int) -> tuple[float, float]:
    """(model calls, rows) so far, from the server's kfp_ct_batch_rows histogram."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {}
    for line in text.splitlines():
        for key in ("count", "sum"):
            if line.startswith(f"kfp_ct_batch_rows_{key}{{") and f'model="{NAME}"' in line:
                values[key] = float(line.rsplit(" ", 1)[1])
    return values.get("count", 0.0), values.get("sum", 0.0)


def check_overhead(model_dir: Path, body: bytes, tmp: Path, requests: int, rounds: int) -> dict:
    """p50/p99 of one-row requests with the request check and logging on and off, interleaved."""
    per_round = max(requests // 2, 20)
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    with (
        server(model_server(model_dir, "--no-request-check"), tmp / "off.log") as off,
        server(model_server(model_dir, "--log-dir", str(tmp / "logs-on")), tmp / "on.log") as on,
    ):
        path = f"/v1/models/{NAME}:predict"
        runs = {name: over_http(port, path, body) for name, port in (("off", off), ("on", on))}
        for run in runs.values():
            run(1, 20)  # warm-up
        for _ in range(rounds * 2):
            for name, run in runs.items():
                latencies[name] += run(1, per_round)[0]
    result = {"rounds": rounds * 2, "per_round": per_round}
    for name, values in latencies.items():
        result[f"{name}_p50"] = percentile(values, 50) * 1e3
        result[f"{name}_p99"] = percentile(values, 99) * 1e3
    logger.info("request check and logging: %s", result)
    return result


def _kinds(dtypes: dict[str, str]) -> dict[str, str]:
    kinds = {"float32": "float", "int64": "int", "string": "string"}
    return {name: kinds[dtype] for name, dtype in dtypes.items()}


def _kserve_version() -> str:
    from importlib.metadata import version

    return version("kserve")


if __name__ == "__main__":
    sys.exit(main())
