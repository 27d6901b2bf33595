"""Load test of `electra-tf serve` on loopback: dynamic batching vs --max-batch-size 1.

Exports a classifier end to end (strings in), then for each server setting
(dynamic batching: --max-batch-size 32 --batch-timeout-ms 5; and no batching:
--max-batch-size 1) starts a real server process and runs closed-loop load
from 16 and 64 concurrent clients (keep-alive HTTP connections, one movie
review per request) for --duration seconds each. Prints, per run: throughput
(requests/s), p50/p99 latency, errors (must be 0) and the server's RSS before
and after, then the batching speed-up at 16 clients (target >= 3x): each figure
is the median of --repeats runs. Before the servers start, the exported model
is timed in process at batch 1 and at batch N (N = clients): the speed-up the
model itself allows, a ceiling no server can beat on this CPU. The same
runs are repeated over TF Serving's gRPC API (`--grpc-port`; one shared channel,
tensorflow-serving-api's `PredictionServiceStub`, one review per
`PredictRequest`), whose requests join the same dynamic batches.

Last, SIGTERM under load: 16 clients keep sending (a fresh connection per
request) while the batched server receives SIGTERM; every request the server
read must be answered 200: the server prints how many requests it received and
answered. Connections refused, or closed before the server read their request
(the listening socket closes at SIGTERM), are counted apart.

    python benchmarks/serving_load.py                     # 30 s per run, the "small" preset
    python benchmarks/serving_load.py --duration 8 \
        --classifier benchmarks/results/finetune_sentiment/model

Writes results.json (with the machine it ran on) and serving_load.png to --output-dir.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np

import electra_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf

from electra_tf import (
    PRESETS,
    ElectraClassifier,
    ServedModel,
    build_from_preset,
    describe_machine,
    export_task_saved_model,
    packaged_sentiment,
    read_classification_file,
)

HOST = "127.0.0.1"
DEV_FILE = packaged_sentiment("dev")  # packaged with electra_tf
SETTINGS = {
    "batched": ["--max-batch-size", "32", "--batch-timeout-ms", "5"],
    "batch_size_1": ["--max-batch-size", "1", "--batch-timeout-ms", "0"],
}


def build_model(args):
    if args.classifier:
        return ElectraClassifier.from_pretrained(args.classifier), f"classifier {args.classifier}"
    encoder = build_from_preset(args.preset, "encoder")
    return (ElectraClassifier(encoder, num_classes=2),
            f"ElectraClassifier, {args.preset} preset (random weights)")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, model_dir, options, log_path):
        self.port = free_port()
        self.grpc_target = f"{HOST}:{free_port()}"
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "electra_tf.cli.main", "serve", model_dir, "--name", "model",
             "--port", str(self.port), "--max-queue", "4096",
             "--grpc-port", self.grpc_target.rsplit(":", 1)[1], *options],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}); see {log_path}")
            try:
                status, _ = request(self.port, "GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"server not ready after 300 s; see {log_path}")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
        self.log.close()


def request(port, method, path, body=None, connection=None):
    own = connection is None
    connection = connection or http.client.HTTPConnection(HOST, port, timeout=120)
    headers = {"Content-Type": "application/json"} if body else {}
    if own:
        headers["Connection"] = "close"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if own:
        connection.close()
    return response.status, data


def batch_counts(port):
    """(batches run, instances in them) so far, from the server's Prometheus /metrics."""
    _, data = request(port, "GET", "/metrics")
    values = {}
    for line in data.decode().splitlines():
        match = re.match(r"electra_tf_batch_size_(count|sum) ([0-9.e+]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values.get("count", 0.0), values.get("sum", 0.0)


def rest_sender(port, texts):
    """A client's `send(i) -> ok` over REST: one keep-alive connection per client."""
    connection = [http.client.HTTPConnection(HOST, port, timeout=120)]

    def send(i):
        body = json.dumps({"instances": [texts[i % len(texts)]]})
        try:
            status, data = request(port, "POST", "/v1/models/model:predict", body, connection[0])
            return status == 200 and "predictions" in json.loads(data)
        except (OSError, http.client.HTTPException):
            connection[0] = http.client.HTTPConnection(HOST, port, timeout=120)
            return False

    return send


class GrpcSenders:
    """Clients' `send(i) -> ok` over gRPC: TF Serving's PredictionServiceStub, one channel."""

    def __init__(self, target, texts):
        import grpc
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self.grpc = grpc
        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.requests = []
        for text in texts:  # built once: the load measures the server, not proto building
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "model"
            request.inputs["text"].CopyFrom(tf.make_tensor_proto([text]))
            self.requests.append(request)

    def __call__(self):
        def send(i):
            try:
                response = self.stub.Predict(self.requests[i % len(self.requests)], 120)
                return "probabilities" in response.outputs
            except self.grpc.RpcError:
                return False

        return send

    def close(self):
        self.channel.close()


def run_load(new_sender, clients, duration):
    """Closed loop: each client sends its next request when the last is answered.

    `new_sender()` gives each client its `send(i) -> ok` (a connection of its own).
    """
    stop_at = time.perf_counter() + duration
    latencies, errors, lock = [], [0], threading.Lock()

    def client(index):
        send = new_sender()
        mine, i = [], index
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            ok = send(i)
            i += clients
            if ok:
                mine.append(time.perf_counter() - start)
            else:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    start, client_cpu = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    latencies = np.array(latencies)
    return {"clients": clients, "requests": int(latencies.size), "errors": errors[0],
            "client_cpu_cores": client_cpu / elapsed,
            "throughput_rps": latencies.size / elapsed,
            "p50_ms": float(np.percentile(latencies, 50) * 1000) if latencies.size else None,
            "p99_ms": float(np.percentile(latencies, 99) * 1000) if latencies.size else None}


def sigterm_under_load(server, texts, clients=16, before_s=3.0):
    """Clients send on fresh connections; SIGTERM after `before_s`; classify every request."""
    # "closed_unanswered": the connection was closed with no response, i.e. the server
    # shut down before it read that request (it answers every request it read:
    # compare server_received with server_answered).
    outcome = {"answered_200": 0, "refused_at_connect": 0, "closed_unanswered": 0,
               "other_status": 0}
    lock = threading.Lock()
    stopped = threading.Event()

    def client(index):
        i = index
        while not stopped.is_set():
            connection = http.client.HTTPConnection(HOST, server.port, timeout=120)
            try:
                connection.connect()
            except ConnectionRefusedError:
                with lock:
                    outcome["refused_at_connect"] += 1
                return
            body = json.dumps({"instances": [texts[i % len(texts)]]})
            i += clients
            try:
                connection.request("POST", "/v1/models/model:predict", body=body,
                                   headers={"Content-Type": "application/json",
                                            "Connection": "close"})
                status = connection.getresponse().status
                key = "answered_200" if status == 200 else "other_status"
            except (OSError, http.client.HTTPException):
                key = "closed_unanswered"
            with lock:
                outcome[key] += 1
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, i) for i in range(clients)]
        time.sleep(before_s)
        server.process.send_signal(signal.SIGTERM)
        sent_at = time.perf_counter()
        server.process.wait(120)
        outcome["shutdown_s"] = time.perf_counter() - sent_at
        outcome["exit_code"] = server.process.returncode
        stopped.set()
        for future in futures:
            future.result()
    server.log.close()
    # The server's own count: every request it read was answered.
    with open(server.log.name) as f:
        log = f.read()
    match = re.search(r"answered (\d+) of (\d+) requests received", log)
    outcome["server_answered"], outcome["server_received"] = map(int, match.groups())
    by_status = re.search(r"\(by status: ([^)]*)\)", log)
    outcome["server_by_status"] = {status: int(count) for status, count in re.findall(
        r"(\d+): (\d+)", by_status.group(1))} if by_status else None
    return outcome


def in_process_ceiling(model_dir, texts, client_counts, repeats=20):
    """The speed-up the model itself allows: per-review time at batch 1 over that at batch N.

    Runs the exported SavedModel in this process (no HTTP, no batcher) on the
    same reviews. With N closed-loop clients a batch holds at most N requests,
    and the server's own work per request (HTTP, JSON) runs beside the model
    on the other core, so the served speed-up stays close to this ratio: where
    the ratio is below the target, the model's compute on this CPU, not the
    server, is what stands in the way.
    """
    model = ServedModel(model_dir)

    def median_ms(size):
        times = []
        for r in range(repeats + 3):
            batch = [texts[(r * size + i) % len(texts)] for i in range(size)]
            start = time.perf_counter()
            model.predict("serving_default", {"text": batch})
            times.append(time.perf_counter() - start)
        return float(np.median(times[3:])) * 1000  # the first 3 warm up

    one = median_ms(1)
    rows = {}
    for clients in client_counts:
        size = min(clients, int(SETTINGS["batched"][1]))
        per_review = median_ms(size) / size
        rows[clients] = {"batch_1_ms": one, "batch_size": size, "batched_ms_per_review": per_review,
                         "ceiling": one / per_review}
    return rows


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.2
    series = [(key, setting) for key in ("runs", "grpc_runs")
              for setting in ("batched", "batch_size_1") if results.get(key, {}).get(setting)]
    for position, (key, setting) in enumerate(series):
        runs = results[key][setting]
        label = f"{'gRPC' if key == 'grpc_runs' else 'REST'} {setting}"
        x = np.arange(len(runs)) + (position - (len(series) - 1) / 2) * width
        bars = left.bar(x, [r["throughput_rps"] for r in runs], width, label=label)
        left.bar_label(bars, fmt="%.0f", fontsize=7)
        bars = right.bar(x, [r["p99_ms"] for r in runs], width, label=label)
        right.bar_label(bars, fmt="%.0f", fontsize=7)
    for axis, title in ((left, "throughput (requests/s)"), (right, "p99 latency (ms)")):
        axis.set_xticks(range(len(results["runs"]["batched"])))
        axis.set_xticklabels([f"{r['clients']} clients" for r in results["runs"]["batched"]])
        axis.set_title(title)
        axis.set_ylim(top=axis.get_ylim()[1] * 1.5)  # room for the legend above the bars
        axis.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"electra-tf serve on loopback: {results['model']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--classifier", help="a saved ElectraClassifier directory instead")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per load run")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--output-dir", default="serving_load")
    parser.add_argument("--workers", type=int, default=1,
                        help="--workers of both servers (model threads)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="load runs per (setting, protocol, clients); the median is reported")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; received {args.repeats}")
    os.makedirs(args.output_dir, exist_ok=True)

    texts = read_classification_file(DEV_FILE)[0]["text"] if os.path.exists(DEV_FILE) else [
        "A graceful, contemplative film that artfully draws us into its world."]
    model, description = build_model(args)
    model_dir = os.path.join(args.output_dir, "export", "1")
    export_task_saved_model(model, model_dir, max_seq_length=args.max_seq_length,
                            label_names=[str(i) for i in range(model.num_classes)], overwrite=True)
    del model
    tf.keras.backend.clear_session()
    print(f"model: {description}, max_seq_length {args.max_seq_length}; "
          f"{len(texts)} dev reviews; {args.duration:g} s per run; {os.cpu_count()} CPUs")

    results = {"model": description, "duration_s": args.duration, "workers": args.workers,
               "repeats": args.repeats, "machine": describe_machine(), "runs": {}, "grpc_runs": {},
               "in_process": in_process_ceiling(model_dir, texts, args.clients)}
    for clients, row in results["in_process"].items():
        print(f"in process, no server: batch 1 {row['batch_1_ms']:.1f} ms a review, batch {clients} "
              f"{row['batched_ms_per_review']:.1f} ms a review -> the model itself allows at most "
              f"{row['ceiling']:.2f}x at {clients} clients", flush=True)
    for setting, options in SETTINGS.items():
        server = Server(os.path.dirname(model_dir), [*options, "--workers", str(args.workers)],
                        os.path.join(args.output_dir, f"server_{setting}.log"))
        runs, grpc_runs = [], []
        try:
            request(server.port, "POST", "/v1/models/model:predict",
                    json.dumps({"instances": texts[:32]}))  # warm up
            rss_before = rss_mib(server.process.pid)
            grpc_senders = GrpcSenders(server.grpc_target, texts)
            protocols = {"rest": lambda: rest_sender(server.port, texts), "grpc": grpc_senders}
            for protocol, new_sender in protocols.items():
                for clients in args.clients:
                    batches, instances = batch_counts(server.port)
                    server_cpu, start = cpu_seconds(server.process.pid), time.perf_counter()
                    repeats = [run_load(new_sender, clients, args.duration)
                               for _ in range(args.repeats)]
                    run = dict(sorted(repeats, key=lambda r: r["throughput_rps"])[len(repeats) // 2])
                    run["throughput_rps_runs"] = [r["throughput_rps"] for r in repeats]
                    run["errors"] = sum(r["errors"] for r in repeats)  # in every run, not the median's
                    run["protocol"] = protocol
                    run["server_cpu_cores"] = ((cpu_seconds(server.process.pid) - server_cpu)
                                               / (time.perf_counter() - start))
                    batches_after, instances_after = batch_counts(server.port)
                    run["mean_batch_size"] = ((instances_after - instances)
                                              / max(batches_after - batches, 1))
                    run["rss_before_mib"] = rss_before
                    run["rss_after_mib"] = rss_mib(server.process.pid)
                    rss_before = run["rss_after_mib"]
                    (runs if protocol == "rest" else grpc_runs).append(run)
                    print(f"{setting:>13} {protocol:>4} {clients:3d} clients: "
                          f"{run['throughput_rps']:7.1f} req/s  "
                          f"p50 {run['p50_ms']:7.1f} ms  p99 {run['p99_ms']:7.1f} ms  "
                          f"errors {run['errors']}  ({run['requests']} requests, mean batch "
                          f"{run['mean_batch_size']:.1f})  CPU cores: server "
                          f"{run['server_cpu_cores']:.2f}, clients "
                          f"{run['client_cpu_cores']:.2f}  "
                          f"RSS {run['rss_before_mib']:.0f} -> {run['rss_after_mib']:.0f} MiB",
                          flush=True)
            grpc_senders.close()
            if setting == "batched":
                results["sigterm"] = sigterm_under_load(server, texts)
                print(f"SIGTERM under load (16 clients): {results['sigterm']}", flush=True)
        finally:
            server.stop()
        results["runs"][setting] = runs
        results["grpc_runs"][setting] = grpc_runs

    for key, prefix in (("runs", ""), ("grpc_runs", "grpc_")):
        for index, clients in enumerate(args.clients):
            ratio = (results[key]["batched"][index]["throughput_rps"]
                     / results[key]["batch_size_1"][index]["throughput_rps"])
            results[f"{prefix}speedup_{clients}_clients"] = ratio
            print(f"dynamic batching speed-up over {'gRPC' if prefix else 'REST'} at {clients} "
                  f"clients: {ratio:.2f}x (median of {args.repeats} runs each; the model in process "
                  f"allows {results['in_process'][clients]['ceiling']:.2f}x)"
                  + (" (target >= 3x)" if clients == 16 else ""))
    errors = sum(r["errors"] for key in ("runs", "grpc_runs")
                 for runs in results[key].values() for r in runs)
    sigterm = results["sigterm"]
    print(f"errors in all load runs: {errors}; at SIGTERM the server answered "
          f"{sigterm['server_answered']} of the {sigterm['server_received']} requests it received "
          f"({sigterm['server_received'] - sigterm['server_answered']} lost)")
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.join(args.output_dir, "serving_load.png"))
    print(f"wrote {args.output_dir}/results.json and serving_load.png")


if __name__ == "__main__":
    main()
