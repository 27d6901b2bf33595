"""`electra-tf serve`: argument parsing only; the service is electra_tf.serving."""

import dataclasses


def add_subcommands(subparsers):
    """Adds `serve` to the top-level subparsers."""
    from electra_tf.serving.serving_config import ServingConfig

    defaults = ServingConfig()
    parser = subparsers.add_parser(
        "serve",
        help="serve an exported model over TensorFlow Serving's REST API",
        description="Serve an end-to-end SavedModel (`electra-tf export`) with TensorFlow "
        "Serving's REST API: GET /v1/models/NAME, GET /v1/models/NAME/metadata, POST "
        "/v1/models/NAME:predict (row {\"instances\": ...} or columnar {\"inputs\": ...}). "
        "Concurrent requests are batched; /metrics (Prometheus), /healthz, /readyz and a demo "
        "page at / are served too. SIGTERM finishes requests in flight, then exits.",
    )
    parser.add_argument("model_dir", help="a SavedModel directory, or a TF Serving base "
                        "directory with numeric version subdirectories (the latest is served), "
                        "or a fine-tuned task model directory (or its run directory): exported "
                        "to a temporary SavedModel first, with the settings its task.json records")
    parser.add_argument("--name", help="model name in URLs (default: the directory's name)")
    parser.add_argument("--host", default=defaults.host,
                        help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help="TCP port (default: %(default)s, TF Serving's REST port)")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size,
                        help="most instances per model batch (default: %(default)s)")
    parser.add_argument("--batch-timeout-ms", type=float, default=defaults.batch_timeout_ms,
                        help="how long a batch waits for more requests; it runs sooner once it "
                        "holds as many as the last batch (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=defaults.workers,
                        help="model threads: batches run at the same time (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                        help="largest request body, else HTTP 413 (default: %(default)s)")
    parser.add_argument("--max-instances", type=int, default=defaults.max_instances,
                        help="most instances per request (default: %(default)s)")
    parser.add_argument("--max-text-length", type=int, default=defaults.max_text_length,
                        help="most characters per text (default: %(default)s)")
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue,
                        help="most requests waiting for a batch, else HTTP 503 "
                        "(default: %(default)s)")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="also serve TF Serving's gRPC API (PredictionService, "
                        "ModelService) on this port; TF Serving's is 8500 (default: off)")
    parser.add_argument("--version-policy", choices=("latest", "all"),
                        default=defaults.version_policy,
                        help="which numbered versions of a base directory to serve "
                        "(default: %(default)s, as TF Serving)")
    parser.add_argument("--version-labels", type=_version_labels, default={},
                        help="labels for /v1/models/NAME/labels/LABEL, e.g. stable=1,canary=2; "
                        "labelled versions are served too")
    parser.add_argument("--file-system-poll-wait-seconds", type=float,
                        default=defaults.file_system_poll_wait_seconds,
                        help="how often to look for new version directories, loaded and "
                        "swapped in while serving; 0 never looks (default: %(default)s)")
    parser.add_argument("--intra-op-threads", type=int, default=defaults.intra_op_threads,
                        help="threads one op is split over (TF Serving's "
                        "--tensorflow_intra_op_parallelism); 1 answers single texts sooner on a "
                        "small machine (default: %(default)s, all cores)")
    parser.add_argument("--inter-op-threads", type=int, default=defaults.inter_op_threads,
                        help="threads running independent ops at once; with --intra-op-threads 1, "
                        "the cores, for a model exported with --batch-parts or --width-parts "
                        "(default: %(default)s, all cores)")
    parser.set_defaults(run=_run_serve)


def _version_labels(text):
    import argparse

    labels = {}
    for item in filter(None, text.split(",")):
        label, _, version = item.partition("=")
        if not label or not version.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f"expected LABEL=VERSION[,LABEL=VERSION...] such as stable=1,canary=2; "
                f"received {text!r}")
        labels[label.strip()] = str(int(version))
    return labels


def _run_serve(args):
    import os

    from electra_tf.serving.serving_app import run_server
    from electra_tf.serving.serving_config import ServingConfig
    from electra_tf.utils.tensorflow_threads import set_tensorflow_threads

    name = args.name or _default_name(args.model_dir)
    options = {field.name: getattr(args, field.name) for field in dataclasses.fields(ServingConfig)
               if hasattr(args, field.name)}
    config = ServingConfig(**{**options, "name": name})
    # Before a task directory's export below runs TensorFlow's first op.
    set_tensorflow_threads(config.intra_op_threads, config.inter_op_threads)
    grpc = f"; gRPC on {config.host}:{config.grpc_port}" if config.grpc_port is not None else ""
    served, temporary = servable_model_dir(args.model_dir)
    try:
        run_server(os.path.abspath(served), config, on_ready=lambda url: print(
            f"serving {name!r} at {url}/v1/models/{name} (demo page: {url}/){grpc}; "
            "Ctrl-C or SIGTERM stops", flush=True))
    finally:
        if temporary is not None:
            import shutil

            shutil.rmtree(temporary, ignore_errors=True)


def servable_model_dir(model_dir):
    """What `serve MODEL_DIR` serves: `(directory, temporary directory to delete or None)`.

    A SavedModel or a TF Serving base directory is served as it is. A task
    model directory (config, weights, vocab.txt, task.json), or the run
    directory a job wrote it into, is first exported to an end-to-end SavedModel
    (`export --format saved_model`, with the label names, sequence length,
    casing and text pairs its task.json records) as version 1 of a new
    temporary base directory, deleted when the server stops.
    """
    import os
    import shutil
    import sys
    import tempfile

    from electra_tf.tasks.task_model_io import TASK_NAME, resolve_model_dir

    task_dir = resolve_model_dir(model_dir)
    if not os.path.isfile(os.path.join(task_dir, TASK_NAME)):
        return model_dir, None
    from electra_tf.export.export_model_directory import export_model_directory

    base = tempfile.mkdtemp(prefix="electra_tf_serve_")
    print(f"{task_dir} is a task model directory: exporting it to a SavedModel in {base}/1 "
          "(`electra-tf export ... --format saved_model` keeps one for TF Serving)",
          file=sys.stderr, flush=True)
    try:
        export_model_directory(task_dir, os.path.join(base, "1"), format="saved_model")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return base, base


def _default_name(model_dir):
    import os
    import re

    from electra_tf.tasks.task_model_io import LEGACY_MODEL_DIRNAMES, MODEL_DIRNAME

    base = os.path.basename(os.path.normpath(os.path.abspath(model_dir)))
    if base.isdigit() or base in (MODEL_DIRNAME, *LEGACY_MODEL_DIRNAMES):
        # MODEL_DIR/1 or RUN/model: the model is named after the directory above
        base = os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(model_dir))))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", base) or "model"
